//! The chart's default mode: one operator for the whole cluster (no `--watch-namespace`), under
//! the chart's default RBAC (the harness's identity, rendered with no values). It watches
//! SubAccounts, TeamMembers, PhoneNumbers and ProviderConfigs in every namespace, and keeps a
//! ClusterProviderConfig and its credentials Secret in use (finalizer `tenantline.io/in-use`)
//! while SubAccounts of any namespace hold accounts through it, counting them in its status.
//!
//! A binary of its own, run alone by `make e2e` after the e2e binary. On a shared cluster a
//! cluster-wide operator reaches beyond its test: `--label-selector` scopes its SubAccount,
//! TeamMember and PhoneNumber watches, and here it selects a label only this test's objects carry
//! (`tenantline.io/e2e-scope: <namespace>`), so it never reconciles another test's resources
//! beside that test's own operator. But the config controllers are not sharded (README
//! "Sharding"): it checks every ProviderConfig and ClusterProviderConfig on the cluster, and puts
//! its in-use finalizer on every ClusterProviderConfig in use, which a namespace-scoped operator
//! never does, and which would stay on another test's ClusterProviderConfig after this operator
//! stopped, holding up that test's deletion of it. Hence alone.

#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use serde_json::Value;
use tenantline::api::{ClusterProviderConfig, PhoneNumber, ProviderConfig, SubAccount, TeamMember};
use tenantline_sim::seed::DEV_RECOVERBIZ_KEY;

use crate::harness::{Env, kubectl};
use crate::support::{TestNamespace, eventually};

const IN_USE: &str = "tenantline.io/in-use";

fn apply(namespace: &str, yaml: &str) {
    let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-n", namespace, "-f", "-"], yaml);
    assert!(out.status.success(), "kubectl apply -n {namespace}: {}", String::from_utf8_lossy(&out.stderr));
}

fn in_use(finalizers: &[String]) -> bool {
    finalizers.iter().any(|f| f == IN_USE)
}

/// `condition type → (status, reason)` of a config's status.
fn ready(config: &impl serde::Serialize) -> Option<(String, String)> {
    let v = serde_json::to_value(config).ok()?;
    let c = v.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
    Some((c["status"].as_str()?.to_owned(), c["reason"].as_str()?.to_owned()))
}

async fn wait_ready_in<K>(client: &kube::Client, namespace: &str, name: &str, env: &Env)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let done = eventually(Duration::from_secs(90), || async {
        let obj = api.get_opt(name).await.ok()??;
        (ready(&obj)?.0 == "True").then_some(())
    })
    .await;
    assert!(done.is_some(), "{namespace}/{name} never Ready\n{}", env.operator.log_tail(40));
}

#[tokio::test]
async fn a_cluster_wide_operator_serves_every_namespace_and_keeps_a_cluster_config_in_use_while_used() {
    let mut env = Env::start_paused("e2e-cluster").await;
    let scope = format!("tenantline.io/e2e-scope={}", env.ns.name);
    env.operator.watch_namespace = None;
    env.operator.args = vec!["--label-selector".into(), scope.clone()];
    env.operator.restart();
    let other = TestNamespace::new(&env.client, "e2e-cluster-other").await;
    let (here, there) = (env.ns.name.clone(), other.name.clone());
    let labels = format!("{{tenantline.io/e2e-scope: {here}}}");

    // Cluster-scoped, so named after the test's namespace; its Secret lives in that namespace.
    let cpc = here.clone();
    apply(
        &here,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: shared-partner}}\nstringData: {{partnerKey: {DEV_RECOVERBIZ_KEY}}}\n"
        ),
    );
    apply(
        &here,
        &format!(
            "apiVersion: tenantline.io/v1alpha1\nkind: ClusterProviderConfig\nmetadata: {{name: {cpc}}}\nspec:\n  \
             provider: RecoverBiz\n  endpoint: http://{}/recoverbiz/v1\n  credentialsSecretRef: {{name: shared-partner, \
             namespace: {here}}}\n  conditions: [{{namespaces: [{here}, {there}]}}]\n",
            env.sim.addr
        ),
    );
    // A namespaced config in the other namespace, with a SubAccount and a PhoneNumber of its own.
    let vobiz = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/vobiz/provider.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8787", &format!("http://{}", env.sim.addr));
    apply(&there, &vobiz);
    let lending = |labels: &str| {
        format!(
            "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: lending, labels: {labels}}}\nspec:\n  \
             providerConfigRef: {{kind: ClusterProviderConfig, name: {cpc}}}\n  displayName: Lending\n"
        )
    };
    apply(&here, &lending(&labels));
    apply(&there, &lending(&labels));
    apply(
        &there,
        &format!(
            "apiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {{name: agent, labels: {labels}}}\nspec:\n  \
             subAccountRef: {{name: lending}}\n  email: agent@acme.example\n  name: Agent\n  role: Member\n---\n\
             apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: voice, labels: {labels}}}\nspec:\n  \
             providerConfigRef: {{name: vobiz}}\n  displayName: Voice\n  deletionPolicy: Delete\n---\n\
             apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {{name: line, labels: {labels}}}\nspec:\n  \
             subAccountRef: {{name: voice}}\n  search: {{country: US, areaCode: \"415\"}}\n  deletionPolicy: Release\n---\n\
             apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: unselected}}\nspec:\n  \
             providerConfigRef: {{kind: ClusterProviderConfig, name: {cpc}}}\n  displayName: Unselected\n"
        ),
    );

    // One operator, both namespaces: everything selected becomes Ready.
    let client = env.client.clone();
    wait_ready_in::<SubAccount>(&client, &here, "lending", &env).await;
    wait_ready_in::<SubAccount>(&client, &there, "lending", &env).await;
    wait_ready_in::<TeamMember>(&client, &there, "agent", &env).await;
    wait_ready_in::<SubAccount>(&client, &there, "voice", &env).await;
    wait_ready_in::<PhoneNumber>(&client, &there, "line", &env).await;
    let pc = Api::<ProviderConfig>::namespaced(client.clone(), &there).get("vobiz").await.unwrap();
    assert_eq!(ready(&pc).map(|r| r.0).as_deref(), Some("True"), "the other namespace's config: {pc:?}");
    // The one outside the selector is left alone, and is no user of the config.
    let unselected = Api::<SubAccount>::namespaced(client.clone(), &there).get("unselected").await.unwrap();
    let writers = support::writers(&unselected.metadata);
    assert!(writers.len() == 1 && writers.contains("e2e") && unselected.finalizers().is_empty(), "{unselected:?}");

    // The ClusterProviderConfig and its Secret are in use by the two SubAccounts, and it says so.
    let cpcs = Api::<ClusterProviderConfig>::all(client.clone());
    let secrets = Api::<Secret>::namespaced(client.clone(), &here);
    let counted = |n: i32| {
        let (cpcs, secrets, cpc) = (cpcs.clone(), secrets.clone(), cpc.clone());
        async move {
            eventually(Duration::from_secs(30), || async {
                let config = cpcs.get(&cpc).await.ok()?;
                let secret = secrets.get("shared-partner").await.ok()?;
                let used = in_use(config.finalizers()) && in_use(secret.finalizers());
                (config.status.as_ref()?.sub_accounts == Some(n) && used == (n > 0)).then_some(config)
            })
            .await
        }
    };
    let config = counted(2).await;
    assert!(
        config.is_some(),
        "the ClusterProviderConfig never counted 2 users with its Secret in use: {:?}\n{}",
        cpcs.get(&cpc).await.ok().map(|c| (c.metadata.finalizers, c.status)),
        env.operator.log_tail(40)
    );

    // Deleting it while used waits for its users; each one gone is counted off.
    cpcs.delete(&cpc, &DeleteParams::default()).await.unwrap();
    let out = kubectl(&["delete", "subaccount", "lending", "-n", &here, "--timeout=60s"], "");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), env.operator.log_tail(40));
    let config =
        counted(1).await.unwrap_or_else(|| panic!("one user left, still in use\n{}", env.operator.log_tail(40)));
    assert!(config.metadata.deletion_timestamp.is_some(), "the deletion is held, not lost");
    let out = kubectl(&["delete", "teammember/agent", "subaccount/lending", "-n", &there, "--timeout=60s"], "");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), env.operator.log_tail(40));
    let gone =
        eventually(Duration::from_secs(30), || async { cpcs.get_opt(&cpc).await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "the ClusterProviderConfig stayed after its last user went\n{}", env.operator.log_tail(40));
    let secret = secrets.get("shared-partner").await.unwrap();
    assert!(!in_use(secret.finalizers()), "the Secret stayed in use: {:?}", secret.metadata.finalizers);

    // The other namespace's resources go with the operator still running (their finalizers),
    // then both namespaces.
    let _ = kubectl(&["delete", "subaccount", "unselected", "-n", &there, "--wait=false"], "");
    let out = kubectl(&["delete", "phonenumbers,subaccounts", "--all", "-n", &there, "--timeout=60s"], "");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), env.operator.log_tail(40));
    let left: Vec<Value> = Api::<SubAccount>::namespaced(client.clone(), &there)
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|s| serde_json::to_value(s.metadata).unwrap())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    other.delete().await;
    env.finish().await;
}
