//! The custom resource types of `tenantline.io/v1alpha1`: one file per kind, shared types in
//! `common`, and the status fields every kind shares in `status`.

mod common;
mod phone_number;
mod provider_config;
mod status;
mod sub_account;
mod team_member;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::*;
pub use phone_number::*;
pub use provider_config::*;
pub use status::*;
pub use sub_account::*;
pub use team_member::*;

/// Every CRD of tenantline, in the order `tenantline crds` prints them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![ProviderConfig::crd(), ClusterProviderConfig::crd(), SubAccount::crd(), TeamMember::crd(), PhoneNumber::crd()]
}

/// `tenantline crds`: every CRD as a YAML document.
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
