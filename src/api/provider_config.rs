//! ProviderConfig (namespaced) and ClusterProviderConfig (cluster-scoped): how to reach one
//! provider account, shared by every resource that references it.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DNS_LABEL, DURATION, OWNER_ID, Provider};
use super::status::CommonStatus;

/// How to reach one account at a provider.
#[derive(CustomResource, KubeSchema, Clone, Debug, Serialize, Deserialize, PartialEq)]
#[kube(
    group = "tenantline.io",
    version = "v1alpha1",
    kind = "ProviderConfig",
    doc = "How to reach one provider account from this namespace: the provider, its endpoint, the credentials Secret and request pacing.",
    namespaced,
    status = "ProviderConfigStatus",
    shortname = "tlpc",
    category = "tenantline",
    printcolumn = r#"{"name":"PROVIDER","type":"string","jsonPath":".spec.provider"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("!has(self.spec.credentialsSecretRef.__namespace__)")
        .message("spec.credentialsSecretRef.namespace is only for a ClusterProviderConfig: a ProviderConfig always reads the Secret from its own namespace")
        .field_path(".spec.credentialsSecretRef.namespace")
        .reason(Reason::FieldValueForbidden),
    cel
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    /// The provider API: RecoverBiz, Vobiz, AgentPhone, VobizPartner or Yardstik. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.provider is immutable: create a new configuration for another provider"))]
    pub provider: Provider,
    /// Base URL of the provider API (`http://` or `https://`); each provider has a production
    /// default. Point it at a sandbox or at `tenantline-sim` for tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/\S*)?$"), length(max = 2048))]
    pub endpoint: Option<String>,
    /// The Secret holding the parent-account credentials. Keys per provider: RecoverBiz
    /// `partnerKey`; Vobiz and VobizPartner `authId`, `authToken`; AgentPhone and Yardstik `apiKey`.
    pub credentials_secret_ref: SecretRef,
    /// Request pacing shared by every resource using this configuration. Default 5 requests per
    /// second with a burst of 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub rate_limit: Option<RateLimit>,
    /// Who owns the provider objects made through this configuration. tenantline finds an object
    /// it made earlier (after a lost response, or in a cluster rebuilt from the same manifests) by
    /// this owner id with the resource's namespace and name, so give each cluster that shares one
    /// provider account its own value. Default: the operator's `--owner-id` (itself `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = OWNER_ID))]
    pub owner_id: Option<String>,
    /// How often each resource is compared with the provider (drift check): a duration of hours,
    /// minutes and seconds such as `90s`, `10m` or `1h30m`; jittered. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION), length(max = 32), extend("default" = "10m"))]
    pub poll_interval: Option<String>,
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Namespace of the Secret; only for a ClusterProviderConfig, where it defaults to `default`
    /// (a ProviderConfig always reads its own namespace and rejects this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
}

/// A token bucket: sustained rate and burst.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Sustained requests per second to the provider.
    #[serde(default = "default_rps")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: i32,
    /// Requests that may be sent at once after a quiet period.
    #[serde(default = "default_burst")]
    #[schemars(range(min = 1, max = 1000))]
    pub burst: i32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { requests_per_second: default_rps(), burst: default_burst() }
    }
}

fn default_rps() -> i32 {
    5
}
fn default_burst() -> i32 {
    10
}

/// Whether the configuration is usable.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[schemars(extend("default" = {}))]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
}

/// The cluster-scoped twin of ProviderConfig, usable from any namespace.
#[derive(CustomResource, KubeSchema, Clone, Debug, Serialize, Deserialize, PartialEq)]
#[kube(
    group = "tenantline.io",
    version = "v1alpha1",
    kind = "ClusterProviderConfig",
    doc = "How to reach one provider account from any namespace: the cluster-scoped twin of ProviderConfig.",
    status = "ProviderConfigStatus",
    shortname = "tlcpc",
    category = "tenantline",
    printcolumn = r#"{"name":"PROVIDER","type":"string","jsonPath":".spec.provider"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    cel
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProviderConfigSpec {
    /// The same fields as a ProviderConfig.
    #[serde(flatten)]
    pub config: ProviderConfigSpec,
}
