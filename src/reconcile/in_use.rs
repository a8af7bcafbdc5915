//! The in-use finalizer of a ProviderConfig (or ClusterProviderConfig) and its credentials Secret:
//! they stay while a SubAccount still has a provider object to clean up through them, so deleting
//! a namespace (or the config by mistake) cannot strand resources whose deletion needs the
//! provider. TeamMembers and PhoneNumbers reach the config only through their SubAccount, which
//! keeps its own finalizer until they are gone, so counting SubAccounts covers them too.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::managed::{EXTERNAL_ID, FINALIZER};
use crate::api::{ProviderConfigKind, ProviderConfigRef, SubAccount};

pub const IN_USE: &str = "tenantline.io/in-use";

/// Whether `sa` needs its config to be deleted: it has a provider object and still has to clean
/// it up. One without a provider object lets go without calling the provider.
pub fn is_user(sa: &SubAccount) -> bool {
    sa.finalizers().iter().any(|f| f == FINALIZER) && sa.annotations().get(EXTERNAL_ID).is_some_and(|id| !id.is_empty())
}

/// The names (`namespace/name`) of the SubAccounts that use config `r`; a ProviderConfig is
/// referenced from its own `namespace` only.
pub fn users<'a>(
    sub_accounts: impl IntoIterator<Item = &'a SubAccount>,
    r: &ProviderConfigRef,
    namespace: Option<&str>,
) -> Vec<String> {
    let mut names: Vec<String> = sub_accounts
        .into_iter()
        .filter(|sa| sa.spec.provider_config_ref == *r && is_user(sa))
        .filter(|sa| r.kind == ProviderConfigKind::ClusterProviderConfig || sa.namespace().as_deref() == namespace)
        .map(|sa| format!("{}/{}", sa.namespace().unwrap_or_default(), sa.name_any()))
        .collect();
    names.sort();
    names
}

/// `users` as a person reads it: how many, and the first few by name.
pub fn describe(users: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut names = users.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if users.len() > SHOWN {
        names.push_str(", …");
    }
    format!("{} SubAccount(s) ({names})", users.len())
}

/// Add or remove [`IN_USE`] on `obj` when it is not as wanted. The write carries the
/// resourceVersion it was computed from, so it never drops a finalizer someone added meanwhile.
pub async fn mark<K>(api: &Api<K>, obj: &impl Resource, in_use: bool) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut finalizers = obj.meta().finalizers.clone().unwrap_or_default();
    if finalizers.iter().any(|f| f == IN_USE) == in_use {
        return Ok(());
    }
    if in_use {
        finalizers.push(IN_USE.to_owned());
    } else {
        finalizers.retain(|f| f != IN_USE);
    }
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.meta().resource_version}});
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch_metadata(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(namespace: &str, name: &str, r: &ProviderConfigRef, finalized: bool, id: Option<&str>) -> SubAccount {
        let mut sa: SubAccount = serde_json::from_value(json!({
            "apiVersion": "tenantline.io/v1alpha1", "kind": "SubAccount",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"providerConfigRef": r, "displayName": name},
        }))
        .unwrap();
        if finalized {
            sa.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        }
        if let Some(id) = id {
            sa.metadata.annotations = Some([(EXTERNAL_ID.to_owned(), id.to_owned())].into());
        }
        sa
    }

    fn config(kind: ProviderConfigKind, name: &str) -> ProviderConfigRef {
        ProviderConfigRef { kind, name: name.to_owned() }
    }

    #[test]
    fn a_config_is_used_by_the_sub_accounts_with_a_provider_object_left_to_clean_up() {
        let pc = config(ProviderConfigKind::ProviderConfig, "vobiz");
        let other = config(ProviderConfigKind::ProviderConfig, "recoverbiz");
        let all = [
            sa("acme", "b", &pc, true, Some("SA_2")),
            sa("acme", "a", &pc, true, Some("SA_1")),
            sa("acme", "never-created", &pc, true, None),
            sa("acme", "finalized", &pc, false, Some("SA_3")),
            sa("acme", "elsewhere", &other, true, Some("SA_4")),
            sa("globex", "same-name-other-namespace", &pc, true, Some("SA_5")),
        ];
        assert_eq!(users(&all, &pc, Some("acme")), ["acme/a", "acme/b"]);
        assert!(users(&all, &pc, Some("initech")).is_empty());
    }

    #[test]
    fn a_cluster_config_is_used_from_every_namespace() {
        let cpc = config(ProviderConfigKind::ClusterProviderConfig, "shared");
        let same_name = config(ProviderConfigKind::ProviderConfig, "shared");
        let all = [
            sa("acme", "a", &cpc, true, Some("SA_1")),
            sa("globex", "g", &cpc, true, Some("SA_2")),
            sa("acme", "namespaced", &same_name, true, Some("SA_3")),
        ];
        assert_eq!(users(&all, &cpc, None), ["acme/a", "globex/g"]);
    }

    #[test]
    fn users_read_as_a_count_and_the_first_names() {
        assert_eq!(describe(&["acme/a".into()]), "1 SubAccount(s) (acme/a)");
        let many: Vec<String> = (0..5).map(|i| format!("acme/s{i}")).collect();
        assert_eq!(describe(&many), "5 SubAccount(s) (acme/s0, acme/s1, acme/s2, …)");
    }
}
