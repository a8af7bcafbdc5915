//! Deletion does what `status.deletion` announced, children go first, and a provider outage keeps
//! the finalizer with backoff instead of a hot loop.

use std::time::Duration;

use kube::api::DeleteParams;
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, SubAccount, TeamMember};

use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

async fn delete(env: &Env, name: &str) {
    env.api::<SubAccount>().delete(name, &DeleteParams::default()).await.unwrap();
}

fn find<'a>(state: &'a Value, pointer: &str, key: &str, id: &str) -> Option<&'a Value> {
    state.pointer(pointer).and_then(Value::as_array).and_then(|items| items.iter().find(|i| i[key] == id))
}

#[tokio::test]
async fn each_deletion_policy_leaves_the_provider_as_status_announced() {
    let env = Env::start("e2e-delete").await;
    for dir in ["recoverbiz", "vobiz", "vobiz-partner", "agentphone"] {
        fast_provider(&env, dir);
    }
    let partner_owner = "  owner: {email: keep@acme.example, phone: \"+14155550100\"}\n  address: {country: US}\n";
    let cases = [
        ("vz-delete", "vobiz", "Delete", "", "Delete"),
        ("rb-delete", "recoverbiz", "Delete", "", "Deactivate"),
        ("rb-deactivate", "recoverbiz", "Deactivate", "", "Deactivate"),
        ("rb-orphan", "recoverbiz", "Orphan", "", "Orphan"),
        ("vp-delete", "vobiz-partner", "Delete", partner_owner, "Retain"),
        ("ap-deactivate", "agentphone", "Deactivate", "", "Retain"),
    ];
    let mut ids = Vec::new();
    for (name, config, policy, extra, _) in &cases {
        env.apply_ok(&sub_account(name, config, &format!("  deletionPolicy: {policy}\n{extra}")));
    }
    for (name, _, _, _, announced) in &cases {
        let status = env.wait_ready::<SubAccount>(name).await.status.unwrap();
        assert_eq!(status.deletion.as_deref(), Some(*announced), "{name}: status.deletion");
        ids.push(status.managed.external_id.unwrap());
        delete(&env, name).await;
    }
    for (name, ..) in &cases {
        assert!(env.wait_gone::<SubAccount>(name, Duration::from_secs(60)).await, "{name} kept its finalizer");
    }
    let state = env.sim.state().await;
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &ids[0]).is_none(), "Vobiz Delete is a hard delete");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &ids[1]).unwrap()["status"], "deactivated");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &ids[2]).unwrap()["status"], "deactivated");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &ids[3]).unwrap()["status"], "active", "Orphan left it");
    assert!(find(&state, "/vobizPartner/accounts", "auth_id", &ids[4]).is_some(), "Vobiz Partner cannot delete");
    assert!(find(&state, "/agentphone/subAccounts", "id", &ids[5]).is_some(), "AgentPhone cannot deactivate");
    let retained = env.events().await.into_iter().filter(|(reason, _)| reason == "Retained").count();
    assert!(retained >= 2, "a Warning Event says what was retained");
    env.finish().await;
}

#[tokio::test]
async fn deleting_a_sub_account_removes_its_members_and_numbers_first() {
    let env = Env::start("e2e-children").await;
    env.apply_example("recoverbiz");
    env.apply_example("vobiz");
    env.wait_ready::<TeamMember>("sarah-johnson").await;
    let number = env.wait_ready::<PhoneNumber>("acme-support-main").await.status.unwrap().number.unwrap();
    let vobiz_id = env.wait_ready::<SubAccount>("acme-support").await.status.unwrap().managed.external_id.unwrap();
    let rb_id = env.wait_ready::<SubAccount>("acme-lending").await.status.unwrap().managed.external_id.unwrap();

    // Hold both accounts' own removal at the provider: what goes while they are held went first.
    let vobiz_account = "/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}";
    let rb_account = "/v1/accounts/{id}";
    env.sim.fault("vobiz", "DELETE", json!({"kind": "status", "status": 503}), json!({"route": vobiz_account})).await;
    env.sim.fault("recoverbiz", "DELETE", json!({"kind": "status", "status": 503}), json!({"route": rb_account})).await;
    delete(&env, "acme-lending").await;
    delete(&env, "acme-support").await;
    assert!(env.wait_gone::<TeamMember>("sarah-johnson", Duration::from_secs(60)).await, "the member went first");
    assert!(env.wait_gone::<PhoneNumber>("acme-support-main", Duration::from_secs(60)).await, "the number went first");
    let held = eventually(Duration::from_secs(30), || async {
        let calls = (
            env.sim.calls("vobiz", "DELETE", vobiz_account).await,
            env.sim.calls("recoverbiz", "DELETE", rb_account).await,
        );
        (calls.0 > 0 && calls.1 > 0).then_some(calls)
    })
    .await;
    assert!(held.is_some(), "the accounts' removal was attempted (and held) after their children");
    let state = env.sim.state().await;
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &vobiz_id).is_some(), "the Vobiz account is still there");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &rb_id).unwrap()["status"], "active");
    assert!(
        state["recoverbiz"]["members"].as_array().unwrap().is_empty(),
        "the member was removed: {}",
        state["recoverbiz"]
    );
    let releases = env.sim.calls("vobiz", "DELETE", "/api/v1/Account/{auth_id}/numbers/{e164}").await;
    assert!(releases >= 1, "the number was released ({releases} calls; a repeat finds it gone)");
    assert!(
        find(&state, "/vobiz/numbers", "e164", &number).is_none(),
        "{number} is gone from the sub-account and the parent"
    );

    env.sim.clear_faults().await;
    for name in ["acme-lending", "acme-support"] {
        assert!(env.wait_gone::<SubAccount>(name, Duration::from_secs(90)).await, "{name} was not deleted");
    }
    let state = env.sim.state().await;
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &vobiz_id).is_none());
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &rb_id).unwrap()["status"], "deactivated");
    env.finish().await;
}

#[tokio::test]
async fn a_provider_outage_during_deletion_keeps_the_finalizer_without_a_hot_loop() {
    let env = Env::start("e2e-outage").await;
    fast_provider(&env, "vobiz");
    env.apply_ok(&sub_account("doomed", "vobiz", ""));
    env.apply_ok(&sub_account("orphan", "vobiz", "  deletionPolicy: Orphan\n"));
    env.wait_ready::<SubAccount>("doomed").await;
    env.wait_ready::<SubAccount>("orphan").await;

    env.sim.fault("vobiz", "DELETE", json!({"kind": "status", "status": 503}), json!({})).await;
    delete(&env, "doomed").await;
    delete(&env, "orphan").await;
    assert!(env.wait_gone::<SubAccount>("orphan", Duration::from_secs(10)).await, "Orphan lets go at once");

    let route = "/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}";
    let window = Duration::from_secs(20);
    tokio::time::sleep(window).await;
    let attempts = env.sim.calls("vobiz", "DELETE", route).await;
    assert!((2..=8).contains(&attempts), "{attempts} DELETE attempts in {window:?}: expected a few, with backoff");
    let sa =
        env.api::<SubAccount>().get("doomed").await.expect("the finalizer holds the object while the provider is down");
    let reconciling =
        sa.status.unwrap().managed.common.conditions.into_iter().find(|c| c.type_ == "Reconciling").unwrap();
    assert_eq!((reconciling.status.as_str(), reconciling.reason.as_str()), ("True", "Deleting"));

    env.sim.clear_faults().await;
    assert!(env.wait_gone::<SubAccount>("doomed", Duration::from_secs(90)).await, "deleted once the provider is back");
    let gone = eventually(Duration::from_secs(5), || async {
        env.sim.state().await["vobiz"]["subAccounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "doomed")
            .then_some(())
    })
    .await;
    assert!(gone.is_some());
    env.finish().await;
}
