//! PhoneNumber: a number bought for, or assigned to, a SubAccount.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{E164, ISO_COUNTRY, LocalObjectRef};
use super::status::ManagedStatus;

/// A phone number held by a SubAccount: a specific `number`, or any number a `search` finds.
#[derive(CustomResource, KubeSchema, Clone, Debug, Serialize, Deserialize)]
#[kube(
    group = "tenantline.io",
    version = "v1alpha1",
    kind = "PhoneNumber",
    doc = "A phone number bought for, or assigned to, a SubAccount at its provider.",
    namespaced,
    status = "PhoneNumberStatus",
    shortname = "phonenum",
    category = "tenantline",
    printcolumn = r#"{"name":"SUBACCOUNT","type":"string","jsonPath":".spec.subAccountRef.name"}"#,
    printcolumn = r#"{"name":"NUMBER","type":"string","jsonPath":".status.number"}"#,
    printcolumn = r#"{"name":"PROVIDER","type":"string","jsonPath":".status.provider"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.spec.subAccountRef == oldSelf.spec.subAccountRef || !has(oldSelf.status) || !has(oldSelf.status.externalId)")
        .message("spec.subAccountRef is immutable once the object exists at the provider (status.externalId): delete and recreate the PhoneNumber to move it")
        .field_path(".spec.subAccountRef"),
    printcolumn = r#"{"name":"EXTERNAL-ID","type":"string","jsonPath":".status.externalId","priority":1}"#,
    cel
)]
#[x_kube(validation = Rule::new("has(self.number) != has(self.search)")
    .message(Message::Expression("has(self.number) ? 'spec.number and spec.search are mutually exclusive: set exactly one of them' : 'exactly one of spec.number or spec.search must be set'".into()))
    .field_path(".number"))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberSpec {
    /// The SubAccount (same namespace) that holds the number; may be changed until the number is
    /// held at the provider (`status.externalId`), not after.
    pub sub_account_ref: LocalObjectRef,
    /// A specific E.164 number to acquire (or adopt). Exactly one of `number` and `search`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub number: Option<String>,
    /// Buy any available number matching this. Exactly one of `number` and `search`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<NumberSearch>,
    /// E.164 number calls to this number are forwarded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub forwarding_number: Option<String>,
    /// What deleting this resource does at the provider: `Release` (default) or `Retain`.
    #[serde(default)]
    pub deletion_policy: PhoneNumberDeletionPolicy,
}

/// Which number to buy.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NumberSearch {
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default = "us")]
    #[schemars(regex(pattern = ISO_COUNTRY))]
    pub country: String,
    /// Three-digit area code (US/CA), best effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]{3}$"))]
    pub area_code: Option<String>,
}

fn us() -> String {
    "US".into()
}

/// What deleting a PhoneNumber does at the provider.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum PhoneNumberDeletionPolicy {
    /// Release the number at the provider.
    #[default]
    Release,
    /// Keep the number.
    Retain,
}

/// What tenantline observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[schemars(extend("default" = {}))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The E.164 number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}
