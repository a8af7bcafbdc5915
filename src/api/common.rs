//! Types shared by the kinds: the provider enum, references, and the validation patterns.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec.provider` is the provider layer's own list, so that a new provider is added in one place.
pub use crate::provider::ProviderKind as Provider;

/// E.164: a plus sign, a country code and up to 15 digits in all.
pub const E164: &str = r"^\+[1-9][0-9]{1,14}$";
/// ISO 3166-1 alpha-2 country code.
pub const ISO_COUNTRY: &str = "^[A-Z]{2}$";
/// `#RRGGBB`.
pub const HEX_COLOUR: &str = "^#[0-9A-Fa-f]{6}$";
/// A Go-style duration such as `90s`, `10m` or `1h30m`.
pub const DURATION: &str = "^([0-9]+[hms])+$";
/// The longest poll interval: a longer one is a typo (and an unbounded one overflowed timers).
pub const MAX_POLL_INTERVAL: &str = "24h";
/// An RFC 4122 UUID (any version, either case).
pub const UUID: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// An owner id (`ProviderConfig.spec.ownerId`, `--owner-id`): letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit; it becomes part of a marker stored at the provider.
pub const OWNER_ID: &str = "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";

/// Whether `id` matches [`OWNER_ID`] (for the operator flag, which no schema checks).
pub fn valid_owner_id(id: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (1..=63).contains(&id.len()) && id.chars().all(inner) && edge(id.chars().next()) && edge(id.chars().last())
}

/// A DNS-1123 subdomain: the name of most Kubernetes objects, Secrets included.
pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Which kind of provider configuration a reference names.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum ProviderConfigKind {
    /// A ProviderConfig in the resource's own namespace.
    #[default]
    ProviderConfig,
    /// A cluster-scoped ClusterProviderConfig.
    ClusterProviderConfig,
}

impl ProviderConfigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProviderConfig => "ProviderConfig",
            Self::ClusterProviderConfig => "ClusterProviderConfig",
        }
    }
}

/// A reference to the ProviderConfig (same namespace) or ClusterProviderConfig to use.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigRef {
    /// `ProviderConfig` (default, same namespace) or `ClusterProviderConfig`.
    #[serde(default)]
    pub kind: ProviderConfigKind,
    /// Name of the configuration.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which provider objects that tenantline did not create a configuration lets its resources take
/// over (through `tenantline.io/external-id`, or found by name where the provider keeps no key).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum AdoptionPolicy {
    /// Only objects that carry the resource's own key (owner id, namespace and name), or that
    /// tenantline recorded in the resource's status: the default of a ClusterProviderConfig,
    /// shared by tenants who must not reach each other's accounts.
    OwnedOnly,
    /// Any object the resource names: the default of a ProviderConfig, whose namespace owns the
    /// parent account.
    Any,
}

/// A reference to an object in the same namespace.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct LocalObjectRef {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The default for `status.observedGeneration`: -1, so that kstatus (Flux) never takes a new
/// object without status for a reconciled one.
pub fn unobserved() -> i64 {
    -1
}
