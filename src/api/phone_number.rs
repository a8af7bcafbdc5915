//! PhoneNumber: a number bought for, or assigned to, a SubAccount.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{E164, ISO_COUNTRY, LocalObjectRef, unobserved};

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
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    cel
)]
#[x_kube(validation = Rule::new("has(self.number) != has(self.search)")
    .message(Message::Expression("has(self.number) ? 'spec.number and spec.search are mutually exclusive: set exactly one of them' : 'exactly one of spec.number or spec.search must be set'".into()))
    .field_path(".number"))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberSpec {
    /// The SubAccount (same namespace) that holds the number. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.subAccountRef is immutable: delete and recreate the PhoneNumber to move it"))]
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
    /// The generation last reconciled; -1 before the first reconcile.
    #[serde(default = "unobserved")]
    #[schemars(extend("default" = -1))]
    pub observed_generation: i64,
    /// The kstatus conditions `Ready`, `Reconciling` and `Stalled`, one of each type, with a
    /// PascalCase reason and a message a person can act on.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The provider's id of the number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The E.164 number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// `Active` or `Deactivated` at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Active", "Deactivated"]))]
    pub state: Option<String>,
    /// What deleting this resource will do at this provider, known in advance: `Delete` (the
    /// number is released), `Deactivate`, `Retain` (the provider cannot release it: it stays) or
    /// `Orphan` (left alone: deletionPolicy `Retain`, or the ObserveOnly management policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Delete", "Deactivate", "Retain", "Orphan"]))]
    pub deletion: Option<String>,
    /// The last `tenantline.io/reconcile-requested-at` token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_requested_at: Option<String>,
}
