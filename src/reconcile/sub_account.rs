//! SubAccount adapter: spec → provider-neutral request, provider-specific required fields, the
//! generated login password, the credentials Secret, and children removed before the account.

use kube::api::{Api, DeleteParams, ListParams};
use kube::{Resource, ResourceExt};
use rand::Rng;

use super::conditions::reason;
use super::managed::{DeletionPolicy, EXTERNAL_ID, Managed, Resolved, Seen, Unresolved};
use super::outcome::{Outcome, Requeue};
use super::provider_config::{config_key, connect};
use super::{Context, Error, tenancy};
use crate::api::{PhoneNumber, SubAccount, SubAccountDeletionPolicy, SubAccountStatus, TeamMember};
use crate::provider::{self, IdKind, ProviderKind, SecretString};
use crate::secrets::{Held, not_ours};

impl Managed for SubAccount {
    type Spec = provider::SubAccountSpec;
    const KIND: &'static str = "SubAccount";
    const ID_KIND: IdKind = IdKind::SubAccount;

    async fn resolve(&self, ctx: &Context, deleting: bool) -> Result<Result<Resolved<Self::Spec>, Unresolved>, Error> {
        let namespace = self.namespace().unwrap_or_default();
        let c = match connect(ctx, &namespace, &self.spec.provider_config_ref).await? {
            Ok(c) => c,
            Err(outcome) => return Ok(Err(outcome.into())),
        };
        let desired = match desired(self, c.provider, &c.owner_id) {
            Ok(desired) => desired,
            Err(message) => return Ok(Err(Outcome::stalled(reason::INVALID_SPEC, message).into())),
        };
        // The credentials Secret must be one tenantline may write (absent, or made by it for this
        // SubAccount) before anything is asked of the provider; deleting needs no Secret.
        let secret = self.credentials_secret().unwrap_or_default();
        if !deleting {
            if (namespace.as_str(), secret.as_str()) == (c.terms.secret.0.as_str(), c.terms.secret.1.as_str()) {
                let message = format!(
                    "spec.credentialsSecretName {secret} is the credentials Secret of {}: name another Secret",
                    c.terms.name
                );
                return Ok(Err(Outcome::stalled(reason::INVALID_SPEC, message).requeue(Requeue::OnChange).into()));
            }
            if let Held::Foreign(why) = ctx.secrets.read(self, &secret).await? {
                return Ok(Err(Outcome::stalled(reason::SECRET_NOT_OWNED, not_ours(&secret, &why)).into()));
            }
        }
        let external = c.clients.sub_accounts.clone();
        Ok(Ok(Resolved::through(c, external, desired)))
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        match self.spec.deletion_policy {
            SubAccountDeletionPolicy::Delete => DeletionPolicy::Delete,
            SubAccountDeletionPolicy::Deactivate => DeletionPolicy::Deactivate,
            SubAccountDeletionPolicy::Orphan => DeletionPolicy::Orphan,
        }
    }

    fn wants_active(&self) -> bool {
        self.spec.active
    }

    fn kind_status(&self, status: &mut SubAccountStatus, seen: &Seen) {
        if let Some(number) = &seen.number {
            status.phone_number = Some(number.clone());
        }
        if seen.external_id.is_some() {
            status.credentials_secret_name = self.credentials_secret();
        }
    }

    /// The configuration's limits hold for a new account (and this one is counted against
    /// them), and the login password is generated only when an account is about to be created:
    /// an existing account's password is whatever it was, and a new one would be wrong.
    async fn before_create(
        &self,
        ctx: &Context,
        _api: &Api<Self>,
        r: &Resolved<Self::Spec>,
    ) -> Result<Result<Self::Spec, Outcome>, Error> {
        let t = &r.terms;
        let opening = r.desired.vobiz_partner.as_ref().and_then(|v| v.opening_balance);
        if let Some(why) = tenancy::opening_balance_over(opening, t.max_opening_balance, &t.name) {
            return Ok(Err(Outcome::stalled(reason::LIMIT_REACHED, why).requeue(Requeue::OnChange)));
        }
        let me = format!("{}/{}", self.namespace().unwrap_or_default(), self.name_any());
        if let Err(holding) = ctx.providers.reserve(&t.key, &me, t.max_sub_accounts) {
            let why = tenancy::sub_accounts_over(holding, t.max_sub_accounts, &t.name).unwrap_or_default();
            return Ok(Err(Outcome::stalled(reason::LIMIT_REACHED, why)));
        }
        let mut desired = r.desired.clone();
        if r.external.capabilities().generated_password {
            match ensure_password(ctx, self).await? {
                Ok(password) => desired.password = Some(password),
                Err(outcome) => return Ok(Err(outcome)),
            }
        }
        Ok(Ok(desired))
    }

    /// Another SubAccount of the same config that already holds `id`, from the config
    /// controllers' cache of every SubAccount.
    async fn managed_elsewhere(&self, ctx: &Context, id: &str) -> Result<Option<String>, Error> {
        let namespace = self.namespace().unwrap_or_default();
        let key = config_key(&namespace, &self.spec.provider_config_ref);
        let me = (self.namespace(), self.name_any());
        let all = ctx.providers.sub_accounts.state();
        Ok(all.iter().find_map(|other| {
            let same = config_key(&other.namespace().unwrap_or_default(), &other.spec.provider_config_ref) == key
                && other.annotations().get(EXTERNAL_ID).map(String::as_str) == Some(id);
            let elsewhere = (other.namespace(), other.name_any()) != me;
            (same && elsewhere).then(|| format!("{}/{}", other.namespace().unwrap_or_default(), other.name_any()))
        }))
    }

    fn credentials_secret(&self) -> Option<String> {
        Some(self.spec.credentials_secret_name.clone().unwrap_or_else(|| format!("{}-credentials", self.name_any())))
    }

    async fn delete_dependents(&self, ctx: &Context) -> Result<usize, Error> {
        let ns = self.namespace().unwrap_or_default();
        let name = self.name_any();
        let members = Api::<TeamMember>::namespaced(ctx.client.clone(), &ns);
        let numbers = Api::<PhoneNumber>::namespaced(ctx.client.clone(), &ns);
        let mut remaining = 0;
        for m in members.list(&ListParams::default()).await?.into_iter().filter(|m| m.spec.sub_account_ref.name == name)
        {
            remaining += 1;
            if m.meta().deletion_timestamp.is_none() {
                members.delete(&m.name_any(), &DeleteParams::default()).await.map(drop).or_else(already_gone)?;
            }
        }
        for n in numbers.list(&ListParams::default()).await?.into_iter().filter(|n| n.spec.sub_account_ref.name == name)
        {
            remaining += 1;
            if n.meta().deletion_timestamp.is_none() {
                numbers.delete(&n.name_any(), &DeleteParams::default()).await.map(drop).or_else(already_gone)?;
            }
        }
        Ok(remaining)
    }
}

/// The login password some providers need at create (VobizPartner): generated once and stored in
/// the credentials Secret *before* the create, so a crash can never lose it. Only ever read from
/// a Secret tenantline made for this SubAccount.
async fn ensure_password(ctx: &Context, sa: &SubAccount) -> Result<Result<SecretString, Outcome>, Error> {
    let secret = sa.credentials_secret().unwrap_or_default();
    let stored = match ctx.secrets.read(sa, &secret).await? {
        Held::Ours(stored) => stored,
        Held::Foreign(why) => return Ok(Err(Outcome::stalled(reason::SECRET_NOT_OWNED, not_ours(&secret, &why)))),
    };
    if let Some(password) = stored.get("password") {
        return Ok(Ok(SecretString::from(password.to_owned())));
    }
    let password = generate_password();
    let mut with_password = stored.clone();
    with_password.insert("password", password.clone());
    ctx.secrets.apply(sa, &secret, &with_password, &stored).await?;
    Ok(Ok(SecretString::from(password)))
}

/// 24 characters with at least one digit and one special character (VobizPartner's rule).
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let mut p: String = (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    p.push_str(&format!("{}!{}#", rng.random_range(0..10), rng.random_range(0..10)));
    p
}

/// Pure: the provider-neutral desired state, or a message naming the field the provider needs.
/// `owner_id` scopes the idempotency key: `<owner id>/<namespace>/<name>`.
pub fn desired(sa: &SubAccount, provider: ProviderKind, owner_id: &str) -> Result<provider::SubAccountSpec, String> {
    let s = &sa.spec;
    // The schema refuses these; objects stored before it did are refused here: a key of
    // tenantline's written by a tenant would make another resource's lookup take this account.
    let planted =
        s.vobiz.as_ref().and_then(|v| v.description.as_deref()).is_some_and(|d| d.contains("[tenantline.io/"));
    if planted || s.metadata.iter().flatten().any(|(k, _)| k.starts_with("tenantline.io/")) {
        return Err(
            "spec.vobiz.description and spec.metadata may not carry tenantline's own keys (tenantline.io/…)".into()
        );
    }
    let owner = s.owner.as_ref().map(|o| provider::Owner {
        email: o.email.clone(),
        first_name: o.first_name.clone(),
        last_name: o.last_name.clone(),
        phone: o.phone.clone(),
    });
    let address = s.address.as_ref().map(|a| provider::Address {
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
    });
    let spec = provider::SubAccountSpec {
        idempotency_key: format!("{owner_id}/{}/{}", sa.namespace().unwrap_or_default(), sa.name_any()),
        legacy_key: sa.uid(),
        display_name: s.display_name.clone(),
        company_name: s.company_name.clone(),
        active: s.active,
        owner,
        address,
        timezone: s.timezone.clone(),
        phone_number: s.phone_number.clone(),
        forwarding_number: s.forwarding_number.clone(),
        branding: s
            .branding
            .as_ref()
            .map(|b| provider::Branding { logo_url: b.logo_url.clone(), accent_color: b.accent_color.clone() }),
        metadata: s.metadata.clone().unwrap_or_default(),
        password: None,
        vobiz: s.vobiz.as_ref().map(|v| provider::VobizOptions {
            rate_limit: v.rate_limit.map(i32::unsigned_abs),
            permissions_calls: v.permissions.as_ref().and_then(|p| p.calls),
            permissions_cdr: v.permissions.as_ref().and_then(|p| p.cdr),
            kyc_mode: v.kyc_mode.map(|m| m.as_str().to_owned()),
            description: v.description.clone(),
        }),
        vobiz_partner: s.vobiz_partner.as_ref().map(|v| provider::VobizPartnerOptions {
            opening_balance: v.opening_balance,
            currency: v.currency.clone(),
        }),
        yardstik: s.yardstik.as_ref().map(|y| provider::YardstikOptions {
            permissible_purpose_ids: y.permissible_purpose_ids.clone(),
            legal_business_name: y.legal_business_name.clone(),
            url: y.url.clone(),
        }),
    };
    match (provider.descriptor().missing_field)(&spec) {
        Some(field) => Err(format!("{provider} needs spec.{field}")),
        None => Ok(spec),
    }
}

/// A child deleted by someone else between the list and the delete is as good as deleted.
fn already_gone(e: kube::Error) -> Result<(), kube::Error> {
    match e {
        kube::Error::Api(s) if s.code == 404 => Ok(()),
        e => Err(e),
    }
}
