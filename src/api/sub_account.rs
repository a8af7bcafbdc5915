//! SubAccount: a customer account at a provider.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DNS_LABEL, E164, HEX_COLOUR, ISO_COUNTRY, ProviderConfigRef, UUID};
use super::status::ManagedStatus;

/// A customer sub-account at a provider, with its credentials written to a Secret.
#[derive(CustomResource, KubeSchema, Clone, Debug, Serialize, Deserialize)]
#[kube(
    group = "tenantline.io",
    version = "v1alpha1",
    kind = "SubAccount",
    doc = "A customer sub-account at a telephony provider, kept in line with this spec; its issued credentials are written to a Secret.",
    namespaced,
    status = "SubAccountStatus",
    shortname = "subacct",
    category = "tenantline",
    printcolumn = r#"{"name":"PROVIDER","type":"string","jsonPath":".status.provider"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"EXTERNAL-ID","type":"string","jsonPath":".status.externalId"}"#,
    printcolumn = r#"{"name":"STATE","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"CONFIG","type":"string","jsonPath":".spec.providerConfigRef.name","priority":1}"#,
    printcolumn = r#"{"name":"PHONE","type":"string","jsonPath":".status.phoneNumber","priority":1}"#,
    printcolumn = r#"{"name":"SECRET","type":"string","jsonPath":".status.credentialsSecretName","priority":1}"#,
    validation = Rule::new("self.spec.providerConfigRef == oldSelf.spec.providerConfigRef || !has(oldSelf.status) || !has(oldSelf.status.externalId)")
        .message("spec.providerConfigRef is immutable once the account exists (status.externalId): the account lives at the provider it was created with")
        .field_path(".spec.providerConfigRef"),
    validation = Rule::new("self.metadata.name.size() <= 63")
        .message("metadata.name: a SubAccount name is at most 63 characters (it is the tenantline.io/sub-account label of its credentials Secret)")
        .reason(Reason::FieldValueInvalid),
    cel
)]
#[x_kube(validation = Rule::new("!has(self.vobiz) || !has(self.vobiz.kycMode) || self.vobiz.kycMode != 'customer_use' || (has(self.owner) && has(self.owner.email))")
    .message("spec.owner.email is required when spec.vobiz.kycMode is customer_use")
    .field_path(".owner.email")
    .reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
pub struct SubAccountSpec {
    /// The ProviderConfig (or ClusterProviderConfig) to create the account with. It may be changed
    /// (a typo fixed) until the account exists at the provider (`status.externalId`), not after.
    pub provider_config_ref: ProviderConfigRef,
    /// The account's display name at the provider.
    #[schemars(length(min = 1, max = 100))]
    pub display_name: String,
    /// Legal or trading name; RecoverBiz defaults it to displayName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub company_name: Option<String>,
    /// `false` deactivates the account at the provider, `true` reactivates it (RecoverBiz, Vobiz).
    #[serde(default = "yes")]
    pub active: bool,
    /// What deleting this resource does at the provider. `Delete` (the default): hard delete where
    /// the provider has one (a Vobiz or AgentPhone sub-account is gone for good, with its numbers),
    /// else deactivate (RecoverBiz), else retain (Vobiz Partner, Yardstik). `Deactivate`:
    /// deactivate where possible, else retain. `Orphan`: nothing. `status.deletion` shows which.
    #[serde(default)]
    pub deletion_policy: SubAccountDeletionPolicy,
    /// The person who owns the account at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The account's postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// IANA time zone, e.g. `America/Chicago`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timezone: Option<String>,
    /// RecoverBiz: the E.164 number to give the account; one is provisioned when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub phone_number: Option<String>,
    /// E.164 number voice calls are forwarded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub forwarding_number: Option<String>,
    /// White-label branding (RecoverBiz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
    /// Free key/value pairs stored with the account (RecoverBiz metadata): at most 50, values of
    /// at most 500 characters; keys starting with `tenantline.io/` are tenantline's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('tenantline.io/') && k.size() <= 100 && self[k].size() <= 500)").message("spec.metadata keys may not start with tenantline.io/ (tenantline's own), and keys are at most 100 and values at most 500 characters"))]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Vobiz sub-account settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vobiz: Option<VobizSettings>,
    /// Vobiz Partner customer-account settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vobiz_partner: Option<VobizPartnerSettings>,
    /// AgentPhone sub-account settings (none yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_phone: Option<AgentPhoneSettings>,
    /// Yardstik sub-account settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yardstik: Option<YardstikSettings>,
    /// The Secret the issued credentials are written to, in this namespace. Default
    /// `<name>-credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_LABEL))]
    pub credentials_secret_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// What deleting a SubAccount does at the provider.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SubAccountDeletionPolicy {
    /// Hard delete where the provider has one, else deactivate, else retain (with a Warning Event).
    #[default]
    Delete,
    /// Deactivate where the provider can, else retain (with a Warning Event).
    Deactivate,
    /// Leave the provider account as it is.
    Orphan,
}

/// The account owner.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// Owner's email address (Vobiz Partner: unique across the platform; its login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(email, length(max = 254))]
    pub email: Option<String>,
    /// Owner's first name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub first_name: Option<String>,
    /// Owner's last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub last_name: Option<String>,
    /// Owner's E.164 phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub phone: Option<String>,
}

/// A postal address.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Street and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub line1: Option<String>,
    /// Apartment, suite, floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub line2: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub city: Option<String>,
    /// State or region (Yardstik: two letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub state: Option<String>,
    /// Postal or ZIP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ISO_COUNTRY))]
    pub country: Option<String>,
}

/// White-label branding.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    /// URL of the logo shown in the embedded UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"), length(max = 2048))]
    pub logo_url: Option<String>,
    /// UI accent colour as `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HEX_COLOUR))]
    pub accent_color: Option<String>,
}

/// Vobiz sub-account settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VobizSettings {
    /// API requests allowed per period (Vobiz default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub rate_limit: Option<i32>,
    /// What the sub-account may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<VobizPermissions>,
    /// `personal_use` (default) or `customer_use` (needs owner.email and KYC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc_mode: Option<KycMode>,
    /// Free-text description; tenantline adds its own idempotency key to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    #[x_kube(validation = Rule::new("!self.contains('[tenantline.io/')").message("spec.vobiz.description may not contain [tenantline.io/: that is tenantline's own key marker"))]
    pub description: Option<String>,
}

/// Vobiz permissions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct VobizPermissions {
    /// May place and receive calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<bool>,
    /// May read call detail records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr: Option<bool>,
}

/// Vobiz KYC mode.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KycMode {
    PersonalUse,
    CustomerUse,
}

impl KycMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PersonalUse => "personal_use",
            Self::CustomerUse => "customer_use",
        }
    }
}

/// Vobiz Partner customer-account settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VobizPartnerSettings {
    /// Amount moved from the partner wallet once, right after the account is created (at most
    /// 1,000,000, and at most the configuration's `maxOpeningBalance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub opening_balance: Option<f64>,
    /// Currency of the opening transfer; must equal the partner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Z]{3}$"))]
    pub currency: Option<String>,
}

/// AgentPhone sub-account settings (reserved).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AgentPhoneSettings {}

/// Yardstik sub-account settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct YardstikSettings {
    /// Permissible purpose ids (UUIDs) the account may order reports for; at least one.
    #[schemars(length(min = 1, max = 50), inner(regex(pattern = UUID)))]
    pub permissible_purpose_ids: Vec<String>,
    /// The account's legal business name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub legal_business_name: Option<String>,
    /// A relevant URL for the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: Option<String>,
}

/// What tenantline observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[schemars(extend("default" = {}))]
#[serde(rename_all = "camelCase")]
pub struct SubAccountStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The account's phone number at the provider, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The Secret holding the issued credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
}
