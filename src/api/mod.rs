//! The custom resource types of `tenantline.io/v1alpha1`: one file per kind, shared types in
//! `common`.

mod common;
mod phone_number;
mod provider_config;
mod sub_account;
mod team_member;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::*;
pub use phone_number::*;
pub use provider_config::*;
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
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn crds_folder_and_chart_are_current() {
        let generated = crds_yaml().unwrap();
        for path in ["crds/tenantline.io.yaml", "charts/tenantline/crds/tenantline.io.yaml"] {
            let committed = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert!(committed == generated, "{path} is stale: run `make crds`");
        }
    }

    #[test]
    fn design_example_parses_with_defaults() {
        let yaml = r##"
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: acme-lending, namespace: acme}
spec:
  providerConfigRef: {name: vobiz}
  displayName: Acme Lending
  companyName: Acme Lending Corp
  owner: {email: ops@acme.example, firstName: Ana, lastName: Diaz, phone: "+14155550100"}
  address: {line1: 1 Main St, city: Austin, state: TX, postalCode: "78701", country: US}
  timezone: America/Chicago
  phoneNumber: "+14155551234"
  forwardingNumber: "+14155559999"
  branding: {logoUrl: https://acme.example/logo.png, accentColor: "#1E40AF"}
  metadata: {tier: premium}
  credentialsSecretName: acme-lending-credentials
"##;
        let sa: SubAccount = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(sa.spec.provider_config_ref.kind, ProviderConfigKind::ProviderConfig);
        assert!(sa.spec.active);
        assert_eq!(sa.spec.deletion_policy, SubAccountDeletionPolicy::Delete);
        assert_eq!(sa.spec.branding.unwrap().accent_color.as_deref(), Some("#1E40AF"));
    }

    #[test]
    fn observed_generation_defaults_to_minus_one() {
        let yaml = crds_yaml().unwrap();
        assert_eq!(yaml.matches("default: -1").count(), 5, "one per kind's status.observedGeneration");
        let status: SubAccountStatus = serde_json::from_value(json!({})).unwrap();
        assert_eq!(status.observed_generation, -1);
    }

    fn number(spec: serde_json::Value) -> PhoneNumber {
        PhoneNumber::new("n", serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn cel_phone_number_needs_exactly_one_of_number_and_search() {
        let sub = json!({"name": "acme"});
        assert!(number(json!({"subAccountRef": sub, "number": "+14155550100"})).validate_cel().is_ok());
        assert!(number(json!({"subAccountRef": sub, "search": {"country": "US"}})).validate_cel().is_ok());
        let both = number(json!({"subAccountRef": sub, "number": "+14155550100", "search": {"country": "US"}}));
        assert!(both.validate_cel().is_err());
        assert!(number(json!({"subAccountRef": sub})).validate_cel().is_err());
    }

    #[test]
    fn cel_references_are_immutable() {
        let old = number(json!({"subAccountRef": {"name": "a"}, "number": "+14155550100"}));
        let same = number(json!({"subAccountRef": {"name": "a"}, "number": "+14155550101"}));
        let moved = number(json!({"subAccountRef": {"name": "b"}, "number": "+14155550100"}));
        assert!(same.validate_cel_update(&old).is_ok());
        assert!(moved.validate_cel_update(&old).is_err());

        let sa = |config: &str| {
            SubAccount::new(
                "s",
                serde_json::from_value(json!({"providerConfigRef": {"name": config}, "displayName": "S"})).unwrap(),
            )
        };
        assert!(sa("one").validate_cel_update(&sa("one")).is_ok());
        assert!(sa("two").validate_cel_update(&sa("one")).is_err());

        let member = |sub: &str| {
            TeamMember::new(
                "m",
                serde_json::from_value(json!({"subAccountRef": {"name": sub}, "email": "a@b.c", "name": "A"})).unwrap(),
            )
        };
        assert!(member("b").validate_cel_update(&member("a")).is_err());

        let pc = |provider: &str| {
            ProviderConfig::new(
                "p",
                serde_json::from_value(json!({"provider": provider, "credentialsSecretRef": {"name": "x"}})).unwrap(),
            )
        };
        assert!(pc("Vobiz").validate_cel_update(&pc("Vobiz")).is_ok());
        assert!(pc("Yardstik").validate_cel_update(&pc("Vobiz")).is_err());
    }
}
