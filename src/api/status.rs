//! The status fields every kind shares, flattened into each kind's status: [`CommonStatus`] for
//! every kind, [`ManagedStatus`] for the kinds mirrored at a provider.

use std::ops::{Deref, DerefMut};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::common::unobserved;
use super::{PhoneNumberStatus, ProviderConfigStatus, SubAccountStatus, TeamMemberStatus};

/// What every kind reports: which generation was reconciled, and the kstatus conditions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The generation last reconciled; -1 before the first reconcile.
    #[serde(default = "unobserved")]
    #[schemars(extend("default" = -1))]
    pub observed_generation: i64,
    /// The kstatus conditions `Ready`, `Reconciling` and `Stalled`, one of each type, with a
    /// PascalCase reason and a message a person can act on.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// What a kind mirrored at a provider reports beside the common fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, KubeSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The provider's id of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The provider the object lives at (its configuration's `spec.provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `Active` or `Deactivated` at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Active", "Deactivated"]))]
    pub state: Option<String>,
    /// What deleting this resource will do at this provider, known in advance: `Delete` (the
    /// object is deleted, or a number released), `Deactivate`, `Retain` (the provider can neither
    /// delete nor deactivate it: it stays) or `Orphan` (left alone: the resource's deletion policy,
    /// or the ObserveOnly management policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Delete", "Deactivate", "Retain", "Orphan"]))]
    pub deletion: Option<String>,
    /// The last `tenantline.io/reconcile-requested-at` token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_requested_at: Option<String>,
}

/// A kind's status: the common fields are in it, so one reporting function serves every kind.
pub trait KindStatus: Clone + Default + PartialEq + Serialize + Send + Sync {
    fn common(&self) -> &CommonStatus;
    fn common_mut(&mut self) -> &mut CommonStatus;
}

impl KindStatus for ProviderConfigStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }
    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
}

/// The kinds mirrored at a provider: their status reads (and is written) as a [`ManagedStatus`]
/// with their own fields beside it.
macro_rules! managed_status {
    ($($status:ty),*) => {$(
        impl KindStatus for $status {
            fn common(&self) -> &CommonStatus {
                &self.managed.common
            }
            fn common_mut(&mut self) -> &mut CommonStatus {
                &mut self.managed.common
            }
        }
        impl Deref for $status {
            type Target = ManagedStatus;
            fn deref(&self) -> &ManagedStatus {
                &self.managed
            }
        }
        impl DerefMut for $status {
            fn deref_mut(&mut self) -> &mut ManagedStatus {
                &mut self.managed
            }
        }
    )*};
}
managed_status!(SubAccountStatus, TeamMemberStatus, PhoneNumberStatus);

impl Deref for ProviderConfigStatus {
    type Target = CommonStatus;
    fn deref(&self) -> &CommonStatus {
        &self.common
    }
}

impl Deref for ManagedStatus {
    type Target = CommonStatus;
    fn deref(&self) -> &CommonStatus {
        &self.common
    }
}
