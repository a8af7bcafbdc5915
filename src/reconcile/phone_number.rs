//! PhoneNumber adapter: a number bought for (or assigned to) its parent SubAccount.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use super::conditions::reason;
use super::managed::{DeletionPolicy, EXTERNAL_ID, Managed, NUMBER_PICKED, Resolved, Seen, Unresolved, annotate};
use super::outcome::Outcome;
use super::provider_config::config_key;
use super::{Context, Error, parent};
use crate::api::{PhoneNumber, PhoneNumberDeletionPolicy, PhoneNumberStatus};
use crate::provider::{IdKind, NumberSearch, NumberSpec};

impl Managed for PhoneNumber {
    type Spec = NumberSpec;
    const KIND: &'static str = "PhoneNumber";
    const ID_KIND: IdKind = IdKind::Number;
    const DELETED: (&'static str, &'static str) = ("Released", "released");

    async fn resolve(&self, ctx: &Context, deleting: bool) -> Result<Result<Resolved<NumberSpec>, Unresolved>, Error> {
        let p = match parent::resolve(ctx, self, &self.spec.sub_account_ref.name, deleting).await? {
            Ok(p) => p,
            Err(unresolved) => return Ok(Err(unresolved)),
        };
        let Some(external) = p.connected.clients.numbers.clone() else {
            return Ok(Err(Outcome::stalled(
                reason::UNSUPPORTED_BY_PROVIDER,
                format!(
                    "{} has no phone numbers; PhoneNumber is supported for Vobiz, AgentPhone and (observe only) VobizPartner",
                    p.connected.provider
                ),
            )
            .into()));
        };
        let s = &self.spec;
        let desired = NumberSpec {
            sub_account_id: p.external_id,
            number: s.number.clone(),
            search: s
                .search
                .as_ref()
                .map(|q| NumberSearch { country: q.country.clone(), area_code: q.area_code.clone() }),
            forwarding_number: s.forwarding_number.clone(),
            claimed: claimed_by_others(ctx, self, &p.connected.terms.key).await,
            picked: self.annotations().get(NUMBER_PICKED).cloned(),
            buyer: self.uid().unwrap_or_default(),
        };
        Ok(Ok(Resolved::through(p.connected, external, desired)))
    }

    /// A number the operator picks (from a search) is recorded before it is bought: were the
    /// purchase's answer lost with the process, nothing else would tell that it is ours.
    async fn before_create(
        &self,
        ctx: &Context,
        api: &Api<Self>,
        r: &Resolved<NumberSpec>,
    ) -> Result<Result<NumberSpec, Outcome>, Error> {
        let mut desired = r.desired.clone();
        if let Some(picked) = r.external.pick(&desired).await? {
            annotate(api, ctx, self, json!({NUMBER_PICKED: picked})).await?;
            desired.picked = Some(picked);
        }
        Ok(Ok(desired))
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        match self.spec.deletion_policy {
            PhoneNumberDeletionPolicy::Release => DeletionPolicy::Delete,
            PhoneNumberDeletionPolicy::Retain => DeletionPolicy::Orphan,
        }
    }

    fn kind_status(&self, status: &mut PhoneNumberStatus, seen: &Seen) {
        if let Some(number) = &seen.number {
            status.number = Some(number.clone());
        }
    }
}

/// Numbers the other PhoneNumbers of the same provider account hold or are buying, in every
/// namespace that shares its config (and, whatever their config, in this namespace): their
/// number, their id at the provider (recorded before their status) and the number they picked
/// (recorded before its purchase). A lookup never takes one of them, and a pick never chooses
/// one, even after a restart that forgot which purchases were in flight. Read from the
/// PhoneNumbers' watch, complete from its first listing on.
async fn claimed_by_others(ctx: &Context, me: &PhoneNumber, config: &str) -> Vec<String> {
    ctx.phone_numbers.ready().await;
    let namespace = me.namespace().unwrap_or_default();
    let same_account = |n: &PhoneNumber| {
        let ns = n.namespace().unwrap_or_default();
        let parent = ObjectRef::new(&n.spec.sub_account_ref.name).within(&ns);
        ns == namespace
            || ctx
                .providers
                .sub_accounts
                .get(&parent)
                .is_some_and(|p| config_key(&ns, &p.spec.provider_config_ref) == config)
    };
    ctx.phone_numbers
        .state()
        .iter()
        .filter(|n| n.uid() != me.uid() && same_account(n))
        .flat_map(|n| {
            let a = n.annotations();
            let recorded = [a.get(EXTERNAL_ID).cloned(), a.get(NUMBER_PICKED).cloned()];
            let status = n.status.as_ref().and_then(|s| s.number.clone());
            [status, n.spec.number.clone()].into_iter().chain(recorded).flatten()
        })
        .collect()
}
