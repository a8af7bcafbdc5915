//! ProviderConfig (namespaced) and ClusterProviderConfig (cluster-scoped): how to reach one
//! provider account, shared by every resource that references it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{AdoptionPolicy, DNS_LABEL, DURATION, OWNER_ID, Provider};
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
    printcolumn = r#"{"name":"SUBACCOUNTS","type":"integer","jsonPath":".status.subAccounts"}"#,
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
    /// minutes and seconds such as `90s`, `10m` or `1h30m`, from 1s to 24h; jittered. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION), length(max = 32), extend("default" = "10m"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('24h')").message("spec.pollInterval must be between 1s and 24h"))]
    pub poll_interval: Option<String>,
    /// Which existing provider objects resources may take over without having created them:
    /// `OwnedOnly` (only objects carrying the resource's own key, or recorded in its status) or
    /// `Any` (whatever `tenantline.io/external-id` names, or a same-named object where the provider
    /// keeps no key). Default: `Any` for a ProviderConfig (its namespace owns the parent account),
    /// `OwnedOnly` for a ClusterProviderConfig (shared by tenants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption_policy: Option<AdoptionPolicy>,
    /// The most SubAccounts that may hold a provider account through this configuration; a
    /// SubAccount beyond it is not created (Stalled, reason LimitReached). Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000000))]
    pub max_sub_accounts: Option<i32>,
    /// The most a SubAccount may move from the parent wallet at create (Vobiz Partner
    /// `spec.vobizPartner.openingBalance`); a larger one is refused (Stalled, reason LimitReached).
    /// Default: no limit beyond the field's own maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub max_opening_balance: Option<f64>,
}

impl ProviderConfigSpec {
    /// `pollInterval` as a duration; `None` when unset or not a duration from 1s to 24h (the
    /// schema refuses such values; objects stored before it did may still hold one).
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        parse_duration(self.poll_interval.as_deref()?).filter(|d| (1..=24 * 3600).contains(&d.as_secs()))
    }
}

/// A Go-style duration of hours, minutes and seconds (`90s`, `10m`, `1h30m`); `None` for anything
/// else, zero, or a value too large to add up.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut digits = 0u64;
    let mut seen_digit = false;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            digits = digits.checked_mul(10)?.checked_add(u64::from(d))?;
            seen_digit = true;
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        if !seen_digit {
            return None;
        }
        total = total.checked_add(digits.checked_mul(unit)?)?;
        (digits, seen_digit) = (0, false);
    }
    (!seen_digit && total > 0).then(|| std::time::Duration::from_secs(total))
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Namespace of the Secret: required for a ClusterProviderConfig (put it where only the
    /// platform team can write), rejected for a ProviderConfig (which reads its own namespace).
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
    /// How many SubAccounts hold a provider account through this configuration (counted where
    /// the operator sees every namespace that may use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_accounts: Option<i32>,
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
    printcolumn = r#"{"name":"SUBACCOUNTS","type":"integer","jsonPath":".status.subAccounts"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("has(self.spec.credentialsSecretRef.__namespace__)")
        .message("spec.credentialsSecretRef.namespace is required for a ClusterProviderConfig: name the namespace of its credentials Secret")
        .field_path(".spec.credentialsSecretRef.namespace")
        .reason(Reason::FieldValueRequired),
    cel
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProviderConfigSpec {
    /// The same fields as a ProviderConfig.
    #[serde(flatten)]
    pub config: ProviderConfigSpec,
    /// The namespaces whose resources may use this configuration: a namespace is served when it
    /// matches any condition. Without conditions no namespace is served (a shared parent account
    /// is opened to tenants deliberately); `[{namespaceSelector: {}}]` serves every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub conditions: Vec<NamespaceCondition>,
}

/// Namespaces a ClusterProviderConfig serves: those named, and those whose labels match the
/// selector (like external-secrets' ClusterSecretStore conditions).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceCondition {
    /// Namespaces served by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    pub namespaces: Vec<String>,
    /// Namespaces served by their labels; `{}` matches every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}
