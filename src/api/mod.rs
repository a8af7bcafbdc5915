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
    [ProviderConfig::crd(), ClusterProviderConfig::crd(), SubAccount::crd(), TeamMember::crd(), PhoneNumber::crd()]
        .into_iter()
        .map(unwrapped)
        .collect()
}

/// `crd` with its descriptions as `kubectl explain` should show them: the doc comments they come
/// from are wrapped at 100 columns, which would break every long sentence mid-line; a blank line
/// still separates paragraphs.
fn unwrapped(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match v {
                        serde_json::Value::String(s) if k == "description" => *s = join_lines(s),
                        _ => walk(v),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    walk(&mut value);
    serde_json::from_value(value).expect("and deserializes again")
}

/// Lines joined into paragraphs: single newlines become spaces, blank lines stay.
fn join_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
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
