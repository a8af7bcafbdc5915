//! TeamMember: a person invited into a SubAccount (RecoverBiz).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{E164, LocalObjectRef};
use super::status::ManagedStatus;

/// A team member of a SubAccount.
#[derive(CustomResource, KubeSchema, Clone, Debug, Serialize, Deserialize)]
#[kube(
    group = "tenantline.io",
    version = "v1alpha1",
    kind = "TeamMember",
    doc = "A person invited into a SubAccount at its provider.",
    namespaced,
    status = "TeamMemberStatus",
    shortname = "tmember",
    category = "tenantline",
    printcolumn = r#"{"name":"SUBACCOUNT","type":"string","jsonPath":".spec.subAccountRef.name"}"#,
    printcolumn = r#"{"name":"EMAIL","type":"string","jsonPath":".spec.email"}"#,
    printcolumn = r#"{"name":"PROVIDER","type":"string","jsonPath":".status.provider"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"EXTERNAL-ID","type":"string","jsonPath":".status.externalId"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.spec.subAccountRef == oldSelf.spec.subAccountRef || !has(oldSelf.status) || !has(oldSelf.status.externalId)")
        .message("spec.subAccountRef is immutable once the object exists at the provider (status.externalId): delete and recreate the TeamMember to move it")
        .field_path(".spec.subAccountRef"),
    printcolumn = r#"{"name":"ROLE","type":"string","jsonPath":".spec.role","priority":1}"#,
    cel
)]
#[serde(rename_all = "camelCase")]
pub struct TeamMemberSpec {
    /// The SubAccount (same namespace) the member belongs to; may be changed until the member
    /// exists at the provider (`status.externalId`), not after.
    pub sub_account_ref: LocalObjectRef,
    /// The member's email address; the invitation goes there.
    #[schemars(email, length(min = 3, max = 254))]
    pub email: String,
    /// The member's full name.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// `Owner`, `Admin` or `Member` (default).
    #[serde(default)]
    pub role: Role,
    /// The member's own E.164 number for multi-agent routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub phone_number: Option<String>,
    /// E.164 number the member's calls are forwarded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164))]
    pub forwarding_number: Option<String>,
    /// What deleting this resource does at the provider: `Delete` (default) or `Orphan`.
    #[serde(default)]
    pub deletion_policy: TeamMemberDeletionPolicy,
}

/// A member's role.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    #[default]
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

/// What deleting a TeamMember does at the provider.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum TeamMemberDeletionPolicy {
    /// Remove the member at the provider.
    #[default]
    Delete,
    /// Leave the member at the provider.
    Orphan,
}

/// What tenantline observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[schemars(extend("default" = {}))]
#[serde(rename_all = "camelCase")]
pub struct TeamMemberStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
}
