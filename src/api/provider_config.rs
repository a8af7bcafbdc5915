//! ProviderConfig (namespaced) and ClusterProviderConfig (cluster-scoped): how to reach one
//! provider account, shared by every resource that references it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DURATION, Provider, unobserved};

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
    cel
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    /// The provider API: RecoverBiz, Vobiz, AgentPhone, VobizPartner or Yardstik. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.provider is immutable"))]
    pub provider: Provider,
    /// Base URL of the provider API; each provider has a production default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// The Secret holding the parent-account credentials. Keys per provider: RecoverBiz
    /// `partnerKey`; Vobiz and VobizPartner `authId`, `authToken`; AgentPhone and Yardstik `apiKey`.
    pub credentials_secret_ref: SecretRef,
    /// Request pacing shared by every resource using this configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// How often each resource is compared with the provider (drift check), e.g. `10m`; jittered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub poll_interval: Option<String>,
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret; only for ClusterProviderConfig (a ProviderConfig always reads
    /// its own namespace). Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigStatus {
    /// The generation last reconciled; -1 before the first reconcile.
    #[serde(default = "unobserved")]
    #[schemars(extend("default" = -1))]
    pub observed_generation: i64,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The cluster-scoped twin of ProviderConfig, usable from any namespace.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
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
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProviderConfigSpec {
    /// The same fields as a ProviderConfig.
    #[serde(flatten)]
    pub config: ProviderConfigSpec,
}
