//! ProviderConfigs and ClusterProviderConfigs: their conditions follow their Secret, and one
//! ClusterProviderConfig serves SubAccounts of several namespaces, each with its own account.

use std::time::Duration;

use kube::Api;
use kube::api::DeleteParams;
use serde_json::Value;
use tenantline::api::{ClusterProviderConfig, ProviderConfig, SubAccount};
use tenantline_sim::seed::DEV_RECOVERBIZ_KEY;

use crate::harness::{Env, kubectl};
use crate::safety::data;
use crate::support::eventually;

/// `(status, reason)` of a condition in `status.conditions`.
fn condition(status: &Value, type_: &str) -> Option<(String, String)> {
    let conditions = status.pointer("/status/conditions")?.as_array()?;
    let c = conditions.iter().find(|c| c["type"] == type_)?;
    Some((c["status"].as_str()?.to_owned(), c["reason"].as_str()?.to_owned()))
}

fn recoverbiz_secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData:\n  partnerKey: {DEV_RECOVERBIZ_KEY}\n"
    )
}

#[tokio::test]
async fn a_provider_config_is_ready_exactly_while_its_secret_holds_the_key() {
    let env = Env::start("e2e-pc").await;
    env.apply_ok(&format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {{name: rb}}\nspec:\n  provider: RecoverBiz\n  \
         endpoint: http://{}/recoverbiz/v1\n  credentialsSecretRef: {{name: rb-partner}}\n",
        env.sim.addr
    ));
    // No Secret yet: waiting for it (Reconciling), not Ready.
    let pc = env.wait_condition::<ProviderConfig>("rb", "Ready", "False", Duration::from_secs(60)).await;
    let pc = serde_json::to_value(pc).unwrap();
    assert_eq!(condition(&pc, "Reconciling"), Some(("True".into(), "ProviderConfigNotReady".into())));

    env.apply_ok(&recoverbiz_secret("rb-partner"));
    let pc = serde_json::to_value(env.wait_ready::<ProviderConfig>("rb").await).unwrap();
    assert_eq!(condition(&pc, "Stalled").map(|c| c.0), Some("False".into()));

    // The key goes: not Ready again, and the message names the key, never a value.
    let without_key = "apiVersion: v1\nkind: Secret\nmetadata: {name: rb-partner}\nstringData:\n  other: x\n";
    let out = kubectl(&["replace", "-n", &env.ns.name, "-f", "-"], without_key);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pc = env.wait_condition::<ProviderConfig>("rb", "Ready", "False", Duration::from_secs(60)).await;
    let message = pc.status.unwrap().common.conditions.into_iter().find(|c| c.type_ == "Ready").unwrap().message;
    assert!(message.contains("partnerKey"), "{message}");
    env.assert_no_leak(&[DEV_RECOVERBIZ_KEY.to_owned()]).await;
    env.finish().await;
}

#[tokio::test]
async fn one_cluster_provider_config_serves_two_namespaces_with_an_account_each() {
    let a = Env::start("e2e-cpc-a").await;
    let b = Env::start("e2e-cpc-b").await;
    // The configuration and its Secret live with team A; team B only refers to it.
    let cpc_name = format!("{}-shared", a.ns.name);
    a.apply_ok(&recoverbiz_secret("shared-partner"));
    a.apply_ok(&format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: ClusterProviderConfig\nmetadata: {{name: {cpc_name}}}\nspec:\n  \
         provider: RecoverBiz\n  endpoint: http://{}/recoverbiz/v1\n  credentialsSecretRef: {{name: shared-partner, \
         namespace: {}}}\n  pollInterval: 2s\n  conditions: [{{namespaces: [{}, {}]}}]\n",
        a.sim.addr, a.ns.name, a.ns.name, b.ns.name
    ));
    let cpcs = Api::<ClusterProviderConfig>::all(a.client.clone());
    let ready = eventually(Duration::from_secs(60), || async {
        let cpc = serde_json::to_value(cpcs.get(&cpc_name).await.ok()?).ok()?;
        (condition(&cpc, "Ready")? == ("True".into(), "Provisioned".into())).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the ClusterProviderConfig never became Ready");

    // The same SubAccount name in both namespaces.
    let sub_account = format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: lending}}\nspec:\n  \
         providerConfigRef: {{kind: ClusterProviderConfig, name: {cpc_name}}}\n  displayName: Lending\n"
    );
    a.apply_ok(&sub_account);
    b.apply_ok(&sub_account);
    let id_a = a.wait_ready::<SubAccount>("lending").await.status.unwrap().managed.external_id.unwrap();
    let id_b = b.wait_ready::<SubAccount>("lending").await.status.unwrap().managed.external_id.unwrap();
    assert_ne!(id_a, id_b, "each namespace has an account of its own");

    let state = a.sim.state().await;
    let accounts = state["recoverbiz"]["accounts"].as_array().unwrap();
    let key_of = |id: &str| {
        let account = accounts.iter().find(|acc| acc["id"] == id).unwrap_or_else(|| panic!("{id} not at the provider"));
        account["metadata"]["tenantline.io/key"].as_str().unwrap().to_owned()
    };
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert!(key_of(&id_a).ends_with(&format!("/{}/lending", a.ns.name)), "{}", key_of(&id_a));
    assert!(key_of(&id_b).ends_with(&format!("/{}/lending", b.ns.name)), "{}", key_of(&id_b));
    assert!(
        b.sim.state().await["recoverbiz"]["accounts"].as_array().unwrap().is_empty(),
        "only the configured endpoint"
    );
    for (env, id) in [(&a, &id_a), (&b, &id_b)] {
        let secret = env.secret("lending-credentials").await.expect("the Secret in the SubAccount's namespace");
        assert_eq!(data(&secret)["accountId"], *id);
    }

    b.finish().await;
    a.finish().await;
    cpcs.delete(&cpc_name, &DeleteParams::default()).await.unwrap();
}
