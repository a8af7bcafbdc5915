//! Tenancy policy (DESIGN §4a): which namespaces a configuration serves, the limits it sets, and
//! which provider objects a resource may take over. Pure functions, each answering with what a
//! person reads when the answer is no; the reconciler asks them before any provider call.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use crate::api::{AdoptionPolicy, NamespaceCondition, ProviderConfigKind, ProviderConfigSpec};
pub use crate::provider::Ownership;

/// Whether a ClusterProviderConfig with `conditions` serves `namespace` (labelled `labels`): it
/// does when any condition names it or selects it. No condition serves no namespace.
pub fn serves(conditions: &[NamespaceCondition], namespace: &str, labels: &BTreeMap<String, String>) -> bool {
    conditions.iter().any(|c| {
        c.namespaces.iter().any(|n| n == namespace)
            || c.namespace_selector.clone().and_then(|s| Selector::try_from(s).ok()).is_some_and(|s| s.matches(labels))
    })
}

/// Why `namespace` may not use ClusterProviderConfig `config`, as a person reads it.
pub fn not_served(config: &str, conditions: &[NamespaceCondition], namespace: &str) -> String {
    if conditions.is_empty() {
        format!(
            "ClusterProviderConfig {config} serves no namespace: its spec.conditions name none, so namespace {namespace} may not use it (a platform admin adds the namespace by name or label there)"
        )
    } else {
        format!(
            "ClusterProviderConfig {config} does not serve namespace {namespace}: neither its name nor its labels match spec.conditions"
        )
    }
}

/// The adoption policy in force for a configuration of `kind`.
pub fn adoption_policy(kind: ProviderConfigKind, spec: &ProviderConfigSpec) -> AdoptionPolicy {
    spec.adoption_policy.unwrap_or(match kind {
        ProviderConfigKind::ProviderConfig => AdoptionPolicy::Any,
        ProviderConfigKind::ClusterProviderConfig => AdoptionPolicy::OwnedOnly,
    })
}

/// Whether the resource may manage (write to, read credentials of, delete) provider object `id`:
/// its own by the provider's word, or the configuration lets its resources take over what they
/// name, or — where the provider cannot tell — recorded as its own by the operator (in its status,
/// which tenants cannot write, or in this process's memory of its creates). What the provider
/// shows is someone else's stays theirs, whatever was recorded.
pub fn may_manage(id: &str, ownership: &Ownership, recorded: bool, policy: AdoptionPolicy) -> Result<(), String> {
    match (ownership, recorded, policy) {
        (Ownership::Ours, ..) | (_, _, AdoptionPolicy::Any) | (Ownership::Unproven, true, _) => Ok(()),
        (Ownership::Foreign(why), ..) => Err(format!(
            "{id} is not this resource's to manage ({why}) and its configuration takes over only what its own resources made (adoptionPolicy OwnedOnly)"
        )),
        (Ownership::Unproven, ..) => Err(format!(
            "nothing at the provider shows that {id} belongs to this resource, and its configuration takes over only what its own resources made (adoptionPolicy OwnedOnly)"
        )),
    }
}

/// A Vobiz Partner opening balance over the configuration's ceiling, as a person reads it.
pub fn opening_balance_over(requested: Option<f64>, ceiling: Option<f64>, config: &str) -> Option<String> {
    let (requested, ceiling) = (requested?, ceiling?);
    (requested > ceiling).then(|| {
        format!("spec.vobizPartner.openingBalance {requested} is over the {ceiling} that {config} allows (maxOpeningBalance)")
    })
}

/// A new account that would go over the configuration's `maxSubAccounts`, as a person reads it.
pub fn sub_accounts_over(holding: usize, max: Option<i32>, config: &str) -> Option<String> {
    let max = usize::try_from(max?).unwrap_or(0);
    (holding >= max).then(|| {
        format!("{config} already has {holding} of its {max} SubAccounts (maxSubAccounts); no new account is created")
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_cluster_config_serves_the_namespaces_its_conditions_name_or_select() {
        let tenants = NamespaceCondition {
            namespace_selector: Some(LabelSelector {
                match_labels: Some([("tenant".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let by_name = NamespaceCondition { namespaces: vec!["ops".into()], ..Default::default() };
        let conditions = [tenants, by_name];
        assert!(serves(&conditions, "acme", &labels(&[("tenant", "true")])));
        assert!(serves(&conditions, "ops", &labels(&[])));
        assert!(!serves(&conditions, "globex", &labels(&[("tenant", "false")])));
        assert!(!serves(&[], "acme", &labels(&[("tenant", "true")])), "no condition serves nobody");
        let everyone =
            [NamespaceCondition { namespace_selector: Some(LabelSelector::default()), ..Default::default() }];
        assert!(serves(&everyone, "anything", &labels(&[])));
        assert!(not_served("shared", &[], "acme").contains("serves no namespace"));
    }

    #[test]
    fn a_shared_config_adopts_only_what_is_provably_the_resources() {
        let spec: ProviderConfigSpec =
            serde_json::from_value(serde_json::json!({"provider": "Vobiz", "credentialsSecretRef": {"name": "s"}}))
                .unwrap();
        assert_eq!(adoption_policy(ProviderConfigKind::ProviderConfig, &spec), AdoptionPolicy::Any);
        assert_eq!(adoption_policy(ProviderConfigKind::ClusterProviderConfig, &spec), AdoptionPolicy::OwnedOnly);
        let explicit = ProviderConfigSpec { adoption_policy: Some(AdoptionPolicy::Any), ..spec };
        assert_eq!(adoption_policy(ProviderConfigKind::ClusterProviderConfig, &explicit), AdoptionPolicy::Any);

        let owned = AdoptionPolicy::OwnedOnly;
        assert!(may_manage("SA_1", &Ownership::Ours, false, owned).is_ok());
        assert!(may_manage("SA_1", &Ownership::Unproven, true, owned).is_ok(), "recorded by the operator");
        let foreign = Ownership::Foreign("it carries another resource's key".into());
        let err = may_manage("SA_1", &foreign, false, owned).unwrap_err();
        assert!(err.contains("another resource's key") && err.contains("OwnedOnly"), "{err}");
        assert!(may_manage("SA_1", &Ownership::Unproven, false, owned).is_err());
        assert!(may_manage("SA_1", &foreign, true, owned).is_err(), "a record never outweighs the provider's word");
        assert!(may_manage("SA_1", &foreign, false, AdoptionPolicy::Any).is_ok(), "the config allows it");
    }

    #[test]
    fn limits_name_the_rule() {
        assert_eq!(opening_balance_over(Some(10.0), None, "c"), None);
        assert_eq!(opening_balance_over(None, Some(5.0), "c"), None);
        assert_eq!(opening_balance_over(Some(5.0), Some(5.0), "c"), None);
        assert!(opening_balance_over(Some(5.5), Some(5.0), "c").unwrap().contains("maxOpeningBalance"));
        assert_eq!(sub_accounts_over(2, None, "c"), None);
        assert_eq!(sub_accounts_over(2, Some(3), "c"), None);
        assert!(sub_accounts_over(3, Some(3), "c").unwrap().contains("3 of its 3"));
        assert!(sub_accounts_over(0, Some(0), "c").is_some());
    }
}
