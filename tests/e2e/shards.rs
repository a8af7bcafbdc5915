//! Sharding by label, as README "Sharding" tells users to: two operator processes in one
//! namespace, started with `--label-selector tenantline.io/shard=a` and `=b`, each its own
//! `POD_NAME`. Every object is reconciled by exactly one of them, the one its label names (the
//! Events on it come from that shard only), children labelled like their SubAccount go with it,
//! and an object no shard selects is left alone. The provider holds exactly one account per
//! selected SubAccount.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use tenantline::api::{PhoneNumber, SubAccount, TeamMember};

use crate::harness::Env;
use crate::safety::items;
use crate::support::eventually;

/// A Vobiz SubAccount with a PhoneNumber and a RecoverBiz SubAccount with a TeamMember, all
/// labelled `shard` (or unlabelled when `None`), named after it.
fn objects(shard: Option<&str>) -> String {
    let (prefix, labels) = match shard {
        Some(s) => (s.to_owned(), format!("{{tenantline.io/shard: {s}}}")),
        None => ("none".to_owned(), "{}".to_owned()),
    };
    format!(
        r#"
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {{name: {prefix}-voice, labels: {labels}}}
spec: {{providerConfigRef: {{name: vobiz}}, displayName: {prefix} voice, deletionPolicy: Delete}}
---
apiVersion: tenantline.io/v1alpha1
kind: PhoneNumber
metadata: {{name: {prefix}-line, labels: {labels}}}
spec: {{subAccountRef: {{name: {prefix}-voice}}, search: {{country: US, areaCode: "415"}}, deletionPolicy: Release}}
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {{name: {prefix}-lending, labels: {labels}}}
spec: {{providerConfigRef: {{name: recoverbiz}}, displayName: {prefix} lending}}
---
apiVersion: tenantline.io/v1alpha1
kind: TeamMember
metadata: {{name: {prefix}-agent, labels: {labels}}}
spec: {{subAccountRef: {{name: {prefix}-lending}}, email: {prefix}@acme.example, name: Agent {prefix}, role: Member}}
"#
    )
}

/// `(kind, name)` → the reportingInstances of the Events on it.
async fn reporters(env: &Env) -> BTreeMap<(String, String), BTreeSet<String>> {
    let events = Api::<Event>::namespaced(env.client.clone(), &env.ns.name).list(&ListParams::default()).await.unwrap();
    let mut by_object: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for e in events {
        let Some(regarding) = e.regarding else { continue };
        let key = (regarding.kind.unwrap_or_default(), regarding.name.unwrap_or_default());
        by_object.entry(key).or_default().insert(e.reporting_instance.unwrap_or_default());
    }
    by_object
}

#[tokio::test]
async fn two_shards_each_reconcile_only_their_labelled_objects_and_children_follow_their_parent() {
    let mut env = Env::start_paused("e2e-shards").await;
    env.operator.args = vec!["--label-selector".into(), "tenantline.io/shard=a".into()];
    env.operator.env.push(("POD_NAME".into(), "shard-a".into()));
    env.operator.restart();
    let mut b = env.another_operator("shard-b");
    b.args = vec!["--label-selector".into(), "tenantline.io/shard=b".into()];
    b.restart();

    for dir in ["vobiz", "recoverbiz"] {
        let path = format!("{}/examples/{dir}/provider.yaml", env!("CARGO_MANIFEST_DIR"));
        env.apply_ok(&std::fs::read_to_string(path).unwrap());
    }
    for shard in [Some("a"), Some("b"), None] {
        env.apply_ok(&objects(shard));
    }
    for shard in ["a", "b"] {
        env.wait_ready::<SubAccount>(&format!("{shard}-voice")).await;
        env.wait_ready::<SubAccount>(&format!("{shard}-lending")).await;
        env.wait_ready::<PhoneNumber>(&format!("{shard}-line")).await;
        env.wait_ready::<TeamMember>(&format!("{shard}-agent")).await;
    }

    // Every Ready object has the Event of its Ready, from its own shard only. The report's
    // Events are published off the reconcile's path: wait until each has one.
    let objects: Vec<(&str, String, &str)> = ["a", "b"]
        .into_iter()
        .flat_map(|s| {
            [
                ("SubAccount", format!("{s}-voice"), s),
                ("SubAccount", format!("{s}-lending"), s),
                ("PhoneNumber", format!("{s}-line"), s),
                ("TeamMember", format!("{s}-agent"), s),
            ]
        })
        .collect();
    let all_reported = eventually(Duration::from_secs(30), || async {
        let by = reporters(&env).await;
        objects.iter().all(|(kind, name, _)| by.contains_key(&(kind.to_string(), name.clone()))).then_some(by)
    })
    .await;
    let by = all_reported.unwrap_or_else(|| {
        panic!("not every object has an Event\nshard a:\n{}\nshard b:\n{}", env.operator.log_tail(30), b.log_tail(30))
    });
    for (kind, name, shard) in &objects {
        let instances = &by[&(kind.to_string(), name.clone())];
        assert_eq!(
            instances,
            &BTreeSet::from([format!("shard-{shard}")]),
            "{kind} {name} (shard {shard}) was reconciled by {instances:?}"
        );
    }

    // The unlabelled ones: no shard selects them, so nothing happened to them at all.
    for (kind, name) in [
        ("SubAccount", "none-voice"),
        ("SubAccount", "none-lending"),
        ("PhoneNumber", "none-line"),
        ("TeamMember", "none-agent"),
    ] {
        assert!(!by.contains_key(&(kind.to_owned(), name.to_owned())), "{kind} {name}: an Event from {by:?}");
    }
    for name in ["none-voice", "none-lending"] {
        let sa = env.api::<SubAccount>().get(name).await.unwrap();
        let writers = crate::support::writers(&sa.metadata);
        assert_eq!(writers, BTreeSet::from(["e2e".to_owned()]), "{name} was written by an operator: {sa:?}");
        assert!(sa.metadata.finalizers.is_none(), "{name} was touched: {sa:?}");
    }

    // One account per selected SubAccount, one number, one member: nothing made twice.
    let state = env.sim.state().await;
    assert_eq!(items(&state, "/vobiz/subAccounts").len(), 2, "{state}");
    assert_eq!(items(&state, "/recoverbiz/accounts").len(), 2, "{state}");
    assert_eq!(items(&state, "/vobiz/numbers").len(), 2, "{state}");
    assert_eq!(items(&state, "/recoverbiz/members").len(), 2, "{state}");

    // The unlabelled objects go without an operator (they hold no finalizer); then each shard
    // deletes its own.
    env.api::<TeamMember>().delete("none-agent", &Default::default()).await.unwrap();
    env.api::<PhoneNumber>().delete("none-line", &Default::default()).await.unwrap();
    for name in ["none-voice", "none-lending"] {
        env.api::<SubAccount>().delete(name, &Default::default()).await.unwrap();
    }
    env.finish().await;
    drop(b);
}
