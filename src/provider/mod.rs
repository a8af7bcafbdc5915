//! Provider clients, in the Crossplane shape: one [`External`] trait per kind of provider object
//! (`observe` never mutates; `find`, `create`, `update`, `set_active`, `delete`), provider-neutral
//! request and observation types, shared HTTP plumbing, and one small module per provider.
//!
//! Nothing here knows about Kubernetes: the reconciler turns custom resources into the `*Spec`
//! types below and turns [`Observation`]s and [`Error`]s back into status.

mod agentphone;
mod drift;
mod error;
mod http;
mod ids;
mod recoverbiz;
mod vobiz;
mod vobiz_partner;
mod yardstik;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use error::{Error, ErrorClass, Result, sanitize};
pub use ids::{IdKind, IdShape};
use schemars::JsonSchema;
pub use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The provider API a ProviderConfig talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum ProviderKind {
    RecoverBiz,
    Vobiz,
    AgentPhone,
    VobizPartner,
    Yardstik,
}

/// Every provider's descriptor. A new provider is a module with its descriptor, a variant above
/// (which is also the value of `spec.provider`) and a line here.
static PROVIDERS: &[&Descriptor] =
    &[&recoverbiz::PROVIDER, &vobiz::PROVIDER, &agentphone::PROVIDER, &vobiz_partner::PROVIDER, &yardstik::PROVIDER];

impl ProviderKind {
    pub fn descriptor(self) -> &'static Descriptor {
        PROVIDERS.iter().find(|d| d.kind == self).expect("every provider has a descriptor in PROVIDERS")
    }

    /// The name used in `spec.provider`, metrics labels and messages.
    pub fn as_str(self) -> &'static str {
        self.descriptor().name
    }
}

/// Everything tenantline knows about one provider beyond its clients' code: declared in that
/// provider's module.
pub struct Descriptor {
    pub kind: ProviderKind,
    /// The name used in `spec.provider`, metrics labels and messages.
    pub name: &'static str,
    /// The production endpoint used when a ProviderConfig names none.
    pub default_endpoint: &'static str,
    /// The keys the ProviderConfig's credentials Secret (the parent account's) must hold.
    pub parent_credential_keys: &'static [&'static str],
    /// How the parent credentials become request headers.
    pub auth: &'static [AuthHeader],
    /// What the provider can do with a sub-account, and the keys of the credentials it issues
    /// for one (`issued_credential_keys`: what a SubAccount's Secret holds beyond `provider`,
    /// `endpoint`, `accountId` and `phoneNumber`).
    pub sub_accounts: Capabilities,
    /// The first SubAccount field this provider requires that `spec` lacks, as a camelCase path
    /// under `spec` (e.g. `owner.email`).
    pub missing_field: fn(&SubAccountSpec) -> Option<&'static str>,
    /// What a valid id looks like for each kind of object the provider has.
    pub ids: &'static [IdShape],
    /// The clients of one account, sharing its HTTP client.
    clients: fn(http::HttpClient) -> ProviderClients,
}

impl Descriptor {
    /// The first parent credential key that `credentials` lacks or holds empty.
    pub fn missing_parent_key(&self, credentials: &Credentials) -> Option<&'static str> {
        self.parent_credential_keys.iter().find(|k| credentials.get(k).is_none_or(str::is_empty)).copied()
    }

    /// Whether `id` can be this provider's id of an `object`; otherwise one sentence naming
    /// the provider and the shape it expected.
    pub fn check_id(&self, object: IdKind, id: &str) -> Result<(), String> {
        let Some(shape) = self.ids.iter().find(|s| s.kind == object) else {
            return Err(format!("{} has no {}s", self.name, object.as_str()));
        };
        if (shape.matches)(id) {
            return Ok(());
        }
        Err(format!("{} is not a {} {} id ({})", ids::quoted(id), self.name, object.as_str(), shape.shape))
    }
}

/// One request header made from a parent credential: `prefix` followed by the value of `key`.
pub struct AuthHeader {
    /// Lowercase, as `HeaderName::from_static` needs it.
    pub name: &'static str,
    pub prefix: &'static str,
    pub key: &'static str,
}

/// Every key a provider may issue into a SubAccount's Secret, over all providers.
pub fn issued_credential_keys() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().flat_map(|d| d.sub_accounts.issued_credential_keys.iter().copied())
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials, keyed by the stable camelCase Secret keys (`accountId`, `authId`, `authToken`,
/// `apiToken`, `subAccountId`, `password`, `phoneNumber`, …). Values never print.
#[derive(Clone, Default)]
pub struct Credentials(pub BTreeMap<String, SecretString>);

impl Credentials {
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_owned(), SecretString::from(value.into()));
    }
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.expose_secret())
    }
    /// Whether every key in `keys` is present.
    pub fn has_all(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| self.0.contains_key(*k))
    }
    /// `other`'s values added over ours.
    pub fn merge(&mut self, other: Credentials) {
        self.0.extend(other.0);
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key names only: a credential must never reach a log line through `{:?}`.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// How a provider client reaches its API: the parent account's endpoint, credentials and pacing.
#[derive(Clone, Debug)]
pub struct Connection {
    pub provider: ProviderKind,
    /// Base URL; [`Descriptor::default_endpoint`] when the ProviderConfig names none.
    pub endpoint: String,
    /// The parent-account credentials, keyed as [`Descriptor::parent_credential_keys`].
    pub credentials: Credentials,
    pub requests_per_second: u32,
    pub burst: u32,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Longest wait a provider can impose through `Retry-After`, `X-RateLimit-Reset` or
    /// `X-RateLimit-Remaining: 0` (the reconciler's `--max-backoff`): longer asks are clamped.
    pub max_wait: Duration,
    /// Allow a plain `http://` endpoint (a local simulator); otherwise only `https://`.
    pub allow_insecure: bool,
}

/// What one kind of provider object supports at one provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Spec changes can be applied in place; otherwise drift is only reported.
    pub update: bool,
    /// The object can be deactivated and reactivated.
    pub deactivate: bool,
    /// The object can be removed at the provider (hard delete, or release for numbers).
    pub delete: bool,
    /// `find` can locate an object this resource created earlier (the idempotency lookup).
    pub lookup: bool,
    /// Keys of the credentials the provider issues for the object (the Secret's keys beyond
    /// `provider`, `endpoint`, `accountId`).
    pub issued_credential_keys: &'static [&'static str],
    /// Credentials are shown only in the create response and can't be re-read or re-issued:
    /// losing them means delete and re-create.
    pub one_time_credentials: bool,
    /// `reissue_credentials` can issue new credentials for an existing object (a provider write).
    pub reissue: bool,
    /// The provider needs a login password that tenantline generates and keeps in the Secret.
    pub generated_password: bool,
    /// `observe` can tell whether an object is the resource's ([`Ownership`]: a key it carries, or
    /// where it lives); without it, a same-named object found by `find` proves nothing.
    pub provable: bool,
}

impl Capabilities {
    /// Nothing supported: what a provider's capabilities are written over (`..NONE`).
    pub const NONE: Self = Self {
        update: false,
        deactivate: false,
        delete: false,
        lookup: false,
        issued_credential_keys: &[],
        one_time_credentials: false,
        reissue: false,
        generated_password: false,
        provable: false,
    };
}

/// The desired state of a sub-account, provider-neutral.
#[derive(Clone, Debug, Default)]
pub struct SubAccountSpec {
    /// A stable key this object can be found by later, in this cluster or in one rebuilt from
    /// the same manifests: `<owner id>/<namespace>/<name>`. Stored where the provider lets us
    /// (RecoverBiz metadata, Vobiz and Vobiz Partner description).
    pub idempotency_key: String,
    /// The key older releases stored (the resource UID): still recognised by `find`.
    pub legacy_key: Option<String>,
    pub display_name: String,
    pub company_name: Option<String>,
    pub active: bool,
    pub owner: Option<Owner>,
    pub address: Option<Address>,
    pub timezone: Option<String>,
    pub phone_number: Option<String>,
    pub forwarding_number: Option<String>,
    pub branding: Option<Branding>,
    pub metadata: BTreeMap<String, String>,
    /// The login password tenantline generated, for providers with `generated_password`.
    pub password: Option<SecretString>,
    pub vobiz: Option<VobizOptions>,
    pub vobiz_partner: Option<VobizPartnerOptions>,
    pub yardstik: Option<YardstikOptions>,
}

impl SubAccountSpec {
    /// The idempotency key as a marker in a free-text field, for providers that have no better
    /// place to keep it (Vobiz and Vobiz Partner descriptions).
    fn key_marker(&self) -> String {
        format!("[tenantline.io/key={}]", self.idempotency_key)
    }

    /// Whether a free-text field carries this resource's marker, or the UID marker of an older
    /// release.
    fn is_marked(&self, text: &str) -> bool {
        let legacy = self.legacy_key.as_deref().filter(|k| !k.is_empty());
        text.contains(&self.key_marker())
            || legacy.is_some_and(|uid| text.contains(&format!("[tenantline.io/uid={uid}]")))
    }

    /// Whose a provider object is, by the marker in its free-text field.
    fn ownership_by_marker(&self, text: &str) -> Ownership {
        if self.is_marked(text) {
            Ownership::Ours
        } else if text.contains("[tenantline.io/key=") || text.contains("[tenantline.io/uid=") {
            Ownership::Foreign("it carries another resource's tenantline key".to_owned())
        } else {
            Ownership::Unproven
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branding {
    pub logo_url: Option<String>,
    pub accent_color: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VobizOptions {
    pub rate_limit: Option<u32>,
    pub permissions_calls: Option<bool>,
    pub permissions_cdr: Option<bool>,
    pub kyc_mode: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct VobizPartnerOptions {
    /// Opening wallet transfer made once, right after create.
    pub opening_balance: Option<f64>,
    pub currency: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YardstikOptions {
    pub permissible_purpose_ids: Vec<String>,
    pub legal_business_name: Option<String>,
    pub url: Option<String>,
}

/// The desired state of a team member of a sub-account.
#[derive(Clone, Debug, Default)]
pub struct MemberSpec {
    /// The provider id of the parent sub-account.
    pub sub_account_id: String,
    pub email: String,
    pub name: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub phone_number: Option<String>,
    pub forwarding_number: Option<String>,
}

/// The desired state of a phone number held by a sub-account.
#[derive(Clone, Debug, Default)]
pub struct NumberSpec {
    /// The provider id of the parent sub-account.
    pub sub_account_id: String,
    /// A specific E.164 number to acquire or adopt.
    pub number: Option<String>,
    /// Or buy any number that matches.
    pub search: Option<NumberSearch>,
    pub forwarding_number: Option<String>,
    /// Numbers (E.164, or provider ids) that other resources hold or are buying: `find` never
    /// returns one and `pick` never chooses one, so that recovering a lost purchase never takes
    /// another resource's number.
    pub claimed: Vec<String>,
    /// The number `pick` chose for this resource, recorded before the purchase: `create` buys
    /// it, and `find` recovers it if an earlier purchase's answer was lost.
    pub picked: Option<String>,
    /// The resource that buys (its uid): no two resources pick the same number at once.
    pub buyer: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberSearch {
    pub country: String,
    pub area_code: Option<String>,
}

/// Whether a provider object is the resource's to manage, as far as the provider can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// It carries the resource's own key, or belongs to what the resource already manages (a
    /// member or number of its sub-account, or a number in the parent's own pool).
    Ours,
    /// The provider keeps nothing that could tell (a name is all there is).
    #[default]
    Unproven,
    /// It belongs to someone else, and why one thinks so.
    Foreign(String),
}

/// What `observe` saw at the provider.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// False when the object is deactivated (soft-deleted) at the provider.
    pub active: bool,
    /// Names of the spec fields (camelCase, e.g. `displayName`) whose value differs at the
    /// provider. Empty when the object is up to date.
    pub drift: Vec<String>,
    /// Credentials the provider shows on read (may be a subset of what create returned).
    pub credentials: Credentials,
    /// The E.164 number the object holds, if any.
    pub number: Option<String>,
    /// Whether it is the resource's, by the key it carries or where it lives.
    pub ownership: Ownership,
}

/// What `create` returned: the new id first, then whatever the provider issued with it.
#[derive(Clone, Debug, Default)]
pub struct Created {
    pub id: String,
    pub credentials: Credentials,
    pub number: Option<String>,
    /// A follow-up step that failed although the object exists (e.g. the opening balance
    /// transfer), for a person to finish; the object is kept.
    pub warning: Option<String>,
}

/// One kind of provider object (sub-account, team member or phone number) at one provider.
///
/// `id` is the provider's id of the object. Every method is a single logical operation; pacing
/// and error classification are done by the shared HTTP plumbing, retries by the reconciler.
#[async_trait]
pub trait External<S>: Send + Sync
where
    S: Sync,
{
    fn capabilities(&self) -> Capabilities;

    /// One cheap authenticated read that shows the endpoint answers and accepts the parent's
    /// credentials (the config's readiness check). Never mutates. `Ok` where there is nothing to
    /// check.
    async fn verify(&self) -> Result<()> {
        Ok(())
    }

    /// Look up an object an earlier `create` for this spec made, moments ago included (the
    /// idempotency lookup after an attempt whose response may have been lost).
    async fn find(&self, desired: &S) -> Result<Option<String>>;

    /// Look up an object made for this spec before this client existed (in an earlier life of
    /// the cluster, rebuilt from the same manifests): used before a first create, so a client
    /// may answer from one listing taken when it first needs one rather than list every time.
    async fn find_made_earlier(&self, desired: &S) -> Result<Option<String>> {
        self.find(desired).await
    }

    /// Read the object and compare it with `desired`. `Ok(None)` when it does not exist.
    async fn observe(&self, id: &str, desired: &S) -> Result<Option<Observation>>;

    /// Where the client, not the provider, chooses the object to create (a number bought from
    /// an inventory): choose it, so that the choice is recorded before `create` and a create
    /// whose answer was lost is found by it. `None` where there is nothing to choose.
    async fn pick(&self, _desired: &S) -> Result<Option<String>> {
        Ok(None)
    }

    async fn create(&self, desired: &S) -> Result<Created>;

    /// Apply `desired` to the object. `credentials` are the object's own (some providers
    /// require them for updates).
    async fn update(&self, id: &str, desired: &S, credentials: &Credentials) -> Result<()>;

    async fn set_active(&self, id: &str, active: bool) -> Result<()>;

    /// Remove the object (hard delete, or release for a number). A missing object is `Ok`.
    /// `desired` says where it lives (children are addressed through their sub-account).
    async fn delete(&self, id: &str, desired: &S) -> Result<()>;

    /// Re-issue credentials for an existing object where the provider allows it (Yardstik,
    /// `capabilities().reissue`). `Ok(None)` when it cannot.
    async fn reissue_credentials(&self, _id: &str, _desired: &S) -> Result<Option<Credentials>> {
        Ok(None)
    }

    /// Whether the provider still accepts the object's own `credentials`, where it can tell with
    /// one cheap read (Yardstik); `true` where it cannot tell. Never mutates.
    async fn credentials_accepted(&self, _id: &str, _credentials: &Credentials) -> Result<bool> {
        Ok(true)
    }
}

pub type SubAccounts = Arc<dyn External<SubAccountSpec>>;
pub type Members = Arc<dyn External<MemberSpec>>;
pub type Numbers = Arc<dyn External<NumberSpec>>;

/// The clients of one provider account, sharing one HTTP client and one token bucket.
#[derive(Clone)]
pub struct ProviderClients {
    pub sub_accounts: SubAccounts,
    /// `None` when the provider has no team members.
    pub members: Option<Members>,
    /// `None` when the provider has no phone numbers.
    pub numbers: Option<Numbers>,
}

/// Build the clients for one provider account. Fails only on missing credential keys or a
/// credential that cannot be a header (`Error::Auth`), or on an endpoint that is not a usable
/// base URL, plain `http://` included unless `allow_insecure` (`Error::Invalid`, field
/// `endpoint`); no request is made.
pub fn connect(connection: Connection) -> Result<ProviderClients> {
    let http = http::HttpClient::new(&connection)?;
    Ok((connection.provider.descriptor().clients)(http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_in_the_crd_enum_has_its_descriptor() {
        let schema = serde_json::to_value(schemars::schema_for!(ProviderKind)).unwrap();
        let names = schema["enum"].as_array().expect("spec.provider is an enum of names");
        assert_eq!(names.len(), PROVIDERS.len(), "one descriptor per provider");
        for name in names {
            let kind: ProviderKind = serde_json::from_value(name.clone()).unwrap();
            assert_eq!(kind.descriptor().name, name, "a descriptor's name is its spec.provider value");
        }
    }

    #[test]
    fn auth_headers_use_only_the_parent_credentials() {
        for d in PROVIDERS {
            for h in d.auth {
                assert!(d.parent_credential_keys.contains(&h.key), "{}: header {} uses {}", d.name, h.name, h.key);
                assert_eq!(h.name, h.name.to_ascii_lowercase(), "{}: header names are lowercase", d.name);
            }
        }
    }

    /// Each provider's ids as the simulator and the provider's docs write them, then values that
    /// must never reach a URL path.
    #[test]
    fn each_provider_knows_its_ids() {
        use IdKind::{Member, Number, SubAccount};
        let accepted: &[(ProviderKind, IdKind, &[&str])] = &[
            (ProviderKind::RecoverBiz, SubAccount, &["acc_8f3a1b2c", "acc_0a1b2c3d"]),
            (ProviderKind::RecoverBiz, Member, &["mem_1a2b3c4d", "usr-42", "7"]),
            (
                ProviderKind::Vobiz,
                SubAccount,
                &["SA_XXXXXXXX", "SA_Q2M7Z0AB", "SA_1", "SAODJ2YJQ5ZMY4NWQ4MZ", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"],
            ),
            (ProviderKind::Vobiz, Number, &["+14155550100", "+919876543210", "+447911123456"]),
            (ProviderKind::AgentPhone, SubAccount, &["sub_0123456789ab", "c0ffee-1"]),
            (ProviderKind::AgentPhone, Number, &["num_xyz789", "num_0123456789ab"]),
            (ProviderKind::VobizPartner, SubAccount, &["MA_XXXXXXXX", "MA_MISSING", "MA_7K2P9QZD"]),
            (
                ProviderKind::Yardstik,
                SubAccount,
                &["3f0b6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "3F0B6A5E-1C2D-4E5F-8A9B-0C1D2E3F4A5B"],
            ),
        ];
        let long = "a".repeat(129);
        let hostile = ["", ".", "..", "../x", "a/b", "a%2Fb", "a b", " acc_1", "acc_1\n", "acc_\u{0}1", "SA_é", &long];
        for (provider, kind, ids) in accepted {
            let d = provider.descriptor();
            for id in *ids {
                assert_eq!(d.check_id(*kind, id), Ok(()), "{} {kind:?} {id}", d.name);
            }
            for id in hostile {
                assert!(d.check_id(*kind, id).is_err(), "{} {kind:?} accepted {id:?}", d.name);
            }
        }
        let wrong = |p: ProviderKind, k: IdKind, id: &str| p.descriptor().check_id(k, id).unwrap_err();
        assert_eq!(
            wrong(ProviderKind::Vobiz, SubAccount, "../x"),
            "\"../x\" is not a Vobiz sub-account id (SA_ followed by letters and digits)"
        );
        assert!(wrong(ProviderKind::RecoverBiz, SubAccount, "SA_1").contains("acc_"));
        assert!(wrong(ProviderKind::Vobiz, Number, "14155550100").contains("E.164"));
        assert!(wrong(ProviderKind::Yardstik, SubAccount, "acc_1").contains("UUID"));
        assert!(wrong(ProviderKind::VobizPartner, SubAccount, "SA_1").contains("MA_"));
        assert!(wrong(ProviderKind::AgentPhone, Number, "+14155550100").contains("num_"));
        assert_eq!(wrong(ProviderKind::Yardstik, Member, "x"), "Yardstik has no team members");
        assert!(wrong(ProviderKind::Vobiz, SubAccount, "a\u{1b}[2Jb").contains("\\u{1b}"), "escaped, never raw");
    }

    #[test]
    fn every_kind_of_object_a_provider_has_has_an_id_shape() {
        for d in PROVIDERS {
            let connection = Connection {
                provider: d.kind,
                endpoint: d.default_endpoint.into(),
                credentials: Credentials(
                    d.parent_credential_keys.iter().map(|k| (k.to_string(), "x".into())).collect(),
                ),
                requests_per_second: 1,
                burst: 1,
                timeout: Duration::from_secs(1),
                max_wait: Duration::from_secs(1),
                allow_insecure: false,
            };
            let clients = connect(connection).unwrap();
            let has = |k: IdKind| d.ids.iter().any(|s| s.kind == k);
            assert!(has(IdKind::SubAccount), "{}", d.name);
            assert_eq!(has(IdKind::Member), clients.members.is_some(), "{}", d.name);
            assert_eq!(has(IdKind::Number), clients.numbers.is_some(), "{}", d.name);
        }
    }

    #[test]
    fn each_provider_names_the_first_sub_account_field_it_lacks() {
        let bare = SubAccountSpec::default();
        let missing = |kind: ProviderKind, spec: &SubAccountSpec| (kind.descriptor().missing_field)(spec);
        assert_eq!(missing(ProviderKind::RecoverBiz, &bare), None);
        assert_eq!(missing(ProviderKind::AgentPhone, &bare), None);
        assert_eq!(missing(ProviderKind::Vobiz, &bare), None);
        assert_eq!(missing(ProviderKind::VobizPartner, &bare), Some("owner.email"));
        assert_eq!(missing(ProviderKind::Yardstik, &bare), Some("owner.email"));

        let customer_use = SubAccountSpec {
            vobiz: Some(VobizOptions { kyc_mode: Some("customer_use".into()), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(missing(ProviderKind::Vobiz, &customer_use), Some("owner.email (for kycMode customer_use)"));

        let owner = Owner {
            email: Some("a@x.io".into()),
            first_name: Some("A".into()),
            last_name: Some("B".into()),
            phone: Some("+14155550100".into()),
        };
        let with_owner = SubAccountSpec { owner: Some(owner), ..customer_use };
        assert_eq!(missing(ProviderKind::Vobiz, &with_owner), None);
        assert_eq!(missing(ProviderKind::VobizPartner, &with_owner), Some("address.country"));
        assert_eq!(missing(ProviderKind::Yardstik, &with_owner), Some("address"));

        let complete = SubAccountSpec {
            address: Some(Address { country: Some("US".into()), ..Default::default() }),
            yardstik: Some(YardstikOptions { permissible_purpose_ids: vec!["p".into()], ..Default::default() }),
            ..with_owner
        };
        for d in PROVIDERS {
            assert_eq!((d.missing_field)(&complete), None, "{}", d.name);
        }
        let no_purpose = SubAccountSpec { yardstik: None, ..complete };
        assert_eq!(missing(ProviderKind::Yardstik, &no_purpose), Some("yardstik.permissiblePurposeIds"));
    }
}
