//! Disaster recovery the GitOps way: the cluster is lost without cleanup and rebuilt from the same
//! manifests; tenantline finds the accounts it made in the cluster's earlier life instead of making
//! them again, and buys no number twice.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, ProviderConfig, SubAccount, TeamMember};

use crate::harness::{Env, kubectl};
use crate::lifecycle::{fast_provider, sub_account};
use crate::safety::{condition, data, items};
use crate::support::eventually;

/// A second Vobiz SubAccount, whose credentials Secret nobody backs up.
const NO_BACKUP: &str = "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata:\n  name: acme-billing\nspec:\n  providerConfigRef: {name: vobiz}\n  displayName: Acme Billing\n";

const DIRS: [&str; 5] = ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"];
const ACCOUNTS: [(&str, &str, &str); 5] = [
    ("acme-lending", "/recoverbiz/accounts", "id"),
    ("acme-support", "/vobiz/subAccounts", "auth_id"),
    ("acme-marketing", "/agentphone/subAccounts", "id"),
    ("acme-collections", "/vobizPartner/accounts", "auth_id"),
    ("acme-screening", "/yardstik/subAccounts", "id"),
];

/// What the provider holds: every account id and number, per provider.
fn holdings(state: &Value) -> BTreeMap<&'static str, Vec<String>> {
    let ids = |pointer: &str, key: &str| -> Vec<String> {
        let mut v: Vec<String> =
            items(state, pointer).iter().map(|i| i[key].as_str().unwrap_or_default().to_owned()).collect();
        v.sort();
        v
    };
    let mut h = BTreeMap::new();
    for (_, pointer, key) in ACCOUNTS {
        h.insert(pointer, ids(pointer, key));
    }
    h.insert("/recoverbiz/members", ids("/recoverbiz/members", "id"));
    h.insert("/vobiz/numbers", ids("/vobiz/numbers", "e164"));
    h.insert("/agentphone/numbers", ids("/agentphone/numbers", "phoneNumber"));
    h
}

async fn purchases(env: &Env) -> (u64, u64) {
    (
        env.sim.calls("vobiz", "POST", "/api/v1/Account/{auth_id}/numbers/purchase-from-inventory").await,
        env.sim.calls("agentphone", "POST", "/v1/numbers").await,
    )
}

/// A lost cluster: the operator is gone, and so is every object, without any cleanup.
async fn lose_the_cluster(env: &mut Env) {
    env.operator.kill();
    let unfinalize = PatchParams::default();
    let patch = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    for sa in env.api::<SubAccount>().list(&ListParams::default()).await.unwrap() {
        env.api::<SubAccount>().patch(&sa.metadata.name.unwrap(), &unfinalize, &patch).await.unwrap();
    }
    for m in env.api::<TeamMember>().list(&ListParams::default()).await.unwrap() {
        env.api::<TeamMember>().patch(&m.metadata.name.unwrap(), &unfinalize, &patch).await.unwrap();
    }
    for n in env.api::<PhoneNumber>().list(&ListParams::default()).await.unwrap() {
        env.api::<PhoneNumber>().patch(&n.metadata.name.unwrap(), &unfinalize, &patch).await.unwrap();
    }
    for pc in env.api::<ProviderConfig>().list(&ListParams::default()).await.unwrap() {
        env.api::<ProviderConfig>().patch(&pc.metadata.name.unwrap(), &unfinalize, &patch).await.unwrap();
    }
    for s in env.api::<Secret>().list(&ListParams::default()).await.unwrap() {
        env.api::<Secret>().patch(&s.metadata.name.unwrap(), &unfinalize, &patch).await.unwrap();
    }
    let out = kubectl(
        &["delete", "subaccounts,teammembers,phonenumbers,providerconfigs,secrets", "--all", "-n", &env.ns.name],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let empty = eventually(Duration::from_secs(30), || async {
        let left = env.api::<SubAccount>().list(&ListParams::default()).await.ok()?.items.len()
            + env.api::<PhoneNumber>().list(&ListParams::default()).await.ok()?.items.len()
            + env.api::<TeamMember>().list(&ListParams::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    assert!(empty.is_some(), "the objects were not deleted");
}

fn settled(v: &Value) -> bool {
    let conditions = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    conditions.iter().any(|c| (c["type"] == "Ready" || c["type"] == "Stalled") && c["status"] == "True")
}

#[tokio::test]
async fn rebuilding_the_cluster_from_the_same_manifests_gets_the_same_accounts_back() {
    let mut env = Env::start("e2e-restore").await;
    for dir in DIRS {
        env.apply_example(dir);
    }
    env.apply_ok(NO_BACKUP);
    for (name, ..) in ACCOUNTS {
        env.wait_ready::<SubAccount>(name).await;
    }
    env.wait_ready::<SubAccount>("acme-billing").await;
    env.wait_ready::<TeamMember>("sarah-johnson").await;
    env.wait_ready::<PhoneNumber>("acme-support-main").await;
    env.wait_ready::<PhoneNumber>("acme-marketing-sms").await;
    let before = holdings(&env.sim.state().await);
    let bought = purchases(&env).await;
    // The user's backup (README, "Restoring a cluster"): the Vobiz credentials Secret.
    let backup = data(&env.secret("acme-support-credentials").await.unwrap());

    lose_the_cluster(&mut env).await;

    // The new cluster: the backed-up Secret first (with its labels, as `kubectl get -o yaml`
    // keeps them: they hand it to its SubAccount), then the same manifests, then the operator.
    let labels = json!({"app.kubernetes.io/managed-by": "tenantline", "tenantline.io/sub-account": "acme-support"});
    let restored = json!({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "acme-support-credentials", "labels": labels},
                          "stringData": {"authId": backup["authId"], "authToken": backup["authToken"]}});
    env.api::<Secret>()
        .patch("acme-support-credentials", &PatchParams::apply("backup").force(), &Patch::Apply(restored))
        .await
        .unwrap();
    for dir in DIRS {
        env.apply_example(dir);
    }
    env.apply_ok(NO_BACKUP);
    env.operator.restart();

    let all = ["subaccounts", "teammembers", "phonenumbers"];
    let done = eventually(Duration::from_secs(120), || async {
        let out = kubectl(&["get", &all.join(","), "-n", &env.ns.name, "-o", "json"], "");
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        let objects = list["items"].as_array()?.clone();
        (objects.len() == 9 && objects.iter().all(settled)).then_some(())
    })
    .await;
    let after = holdings(&env.sim.state().await);
    assert_eq!(after, before, "the provider holds other accounts than before the rebuild");
    assert_eq!(purchases(&env).await, bought, "a number was bought again");
    assert!(done.is_some(), "not every resource settled\n{}", env.operator.log_tail(40));

    for (name, pointer, key) in ACCOUNTS {
        let sa = env.api::<SubAccount>().get(name).await.unwrap();
        let id = sa.status.clone().and_then(|s| s.managed.external_id);
        let held = items(&env.sim.state().await, pointer).iter().map(|i| i[key].as_str().map(str::to_owned)).collect();
        let held: Vec<Option<String>> = held;
        assert!(held.contains(&id), "{name} holds {id:?}, not one of the old accounts");
        let ready = condition(&sa, "Ready");
        if name == "acme-collections" {
            // Its generated login password was not backed up: a person has to act.
            assert_eq!(ready.reason, "CredentialsLost", "{ready:?}");
        } else {
            assert_eq!(ready.status, "True", "{name}: {ready:?}");
        }
    }
    let secret = data(&env.secret("acme-support-credentials").await.unwrap());
    assert_eq!(secret["authToken"], backup["authToken"]);

    // A Vobiz account whose token nobody backed up is kept and waits for a person, however often
    // it is looked at.
    let billing = |sa: &SubAccount| sa.status.clone().and_then(|s| s.managed.external_id);
    let sa = env.api::<SubAccount>().get("acme-billing").await.unwrap();
    assert_eq!(condition(&sa, "Ready").reason, "CredentialsLost", "{:?}", condition(&sa, "Ready"));
    let id = billing(&sa);
    for token in ["again-1", "again-2"] {
        let request = json!({"metadata": {"annotations": {"tenantline.io/reconcile-requested-at": token}}});
        env.api::<SubAccount>().patch("acme-billing", &PatchParams::default(), &Patch::Merge(request)).await.unwrap();
        let seen = eventually(Duration::from_secs(30), || async {
            let sa = env.api::<SubAccount>().get("acme-billing").await.ok()?;
            (sa.status?.reconcile_requested_at.as_deref() == Some(token)).then_some(())
        })
        .await;
        assert!(seen.is_some(), "reconcile {token} never happened");
    }
    let sa = env.api::<SubAccount>().get("acme-billing").await.unwrap();
    assert_eq!(billing(&sa), id);
    assert_eq!(condition(&sa, "Ready").reason, "CredentialsLost");
    assert_eq!(holdings(&env.sim.state().await), before, "the account without a backup was replaced");
    env.finish().await;
}

#[tokio::test]
async fn a_cluster_with_another_owner_id_never_adopts_these_accounts() {
    let mut env = Env::start("e2e-owner").await;
    for dir in ["recoverbiz", "vobiz"] {
        fast_provider(&env, dir);
    }
    env.apply_ok(&sub_account("tenant", "recoverbiz", ""));
    env.apply_ok(&sub_account("line", "vobiz", ""));
    env.wait_ready::<SubAccount>("tenant").await;
    env.wait_ready::<SubAccount>("line").await;
    lose_the_cluster(&mut env).await;

    // Another cluster, sharing the provider accounts, with the same manifests but its own owner id.
    for dir in ["recoverbiz", "vobiz"] {
        let path = format!("{}/examples/{dir}/provider.yaml", env!("CARGO_MANIFEST_DIR"));
        let yaml = std::fs::read_to_string(path).unwrap();
        env.apply_ok(&yaml.replace("  credentialsSecretRef:", "  ownerId: cluster-b\n  credentialsSecretRef:"));
    }
    env.apply_ok(&sub_account("tenant", "recoverbiz", ""));
    env.apply_ok(&sub_account("line", "vobiz", ""));
    env.operator.restart();
    env.wait_ready::<SubAccount>("tenant").await;
    env.wait_ready::<SubAccount>("line").await;
    let state = env.sim.state().await;
    assert_eq!(items(&state, "/recoverbiz/accounts").len(), 2, "cluster-b adopted the other cluster's account");
    assert_eq!(items(&state, "/vobiz/subAccounts").len(), 2, "cluster-b adopted the other cluster's account");
    env.finish().await;
}
