//! Deletion does what `status.deletion` announced, children go first, and a provider outage keeps
//! the finalizer with backoff instead of a hot loop.

use std::time::{Duration, Instant};

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

/// What deletion leaves at the provider.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Left {
    Nothing,
    Deactivated,
    /// As it was (Orphan), or as it was with a Warning Event saying so (Retain).
    Untouched,
}

/// `(config, accounts in /_sim/state, the id field, the field and value of an active account)`.
fn provider_state(config: &str) -> (&'static str, &'static str, Option<(&'static str, Value)>) {
    match config {
        "recoverbiz" => ("/recoverbiz/accounts", "id", Some(("status", json!("active")))),
        "vobiz" => ("/vobiz/subAccounts", "auth_id", Some(("enabled", json!(true)))),
        "agentphone" => ("/agentphone/subAccounts", "id", None),
        "vobiz-partner" => ("/vobizPartner/accounts", "auth_id", None),
        _ => ("/yardstik/subAccounts", "id", None),
    }
}

#[tokio::test]
async fn each_deletion_policy_leaves_the_provider_as_status_announced() {
    let env = Env::start("e2e-delete").await;
    let configs = ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"];
    for dir in configs {
        fast_provider(&env, dir);
    }
    // Every provider × policy: what status.deletion announces and what is left at the provider.
    let expected = |config: &str, policy: &str| match (config, policy) {
        (_, "Orphan") => ("Orphan", Left::Untouched),
        ("recoverbiz", _) | ("vobiz", "Deactivate") => ("Deactivate", Left::Deactivated),
        ("vobiz" | "agentphone", "Delete") => ("Delete", Left::Nothing),
        _ => ("Retain", Left::Untouched),
    };
    let mut cases = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        for policy in ["Delete", "Deactivate", "Orphan"] {
            let name = format!("{config}-{}", policy.to_lowercase());
            let extra = match *config {
                "vobiz-partner" => format!(
                    "  owner: {{email: keep-{i}-{}@acme.example, phone: \"+14155550100\"}}\n  address: {{country: US}}\n",
                    policy.to_lowercase()
                ),
                "yardstik" => crate::safety::yardstik_owner(),
                _ => String::new(),
            };
            env.apply_ok(&sub_account(&name, config, &format!("  deletionPolicy: {policy}\n{extra}")));
            cases.push((name, *config, policy));
        }
    }
    let mut ids = Vec::new();
    for (name, config, policy) in &cases {
        let status = env.wait_ready::<SubAccount>(name).await.status.unwrap();
        let (announced, _) = expected(config, policy);
        assert_eq!(status.deletion.as_deref(), Some(announced), "{name}: status.deletion");
        ids.push(status.managed.external_id.unwrap());
        delete(&env, name).await;
    }
    for (name, ..) in &cases {
        assert!(env.wait_gone::<SubAccount>(name, Duration::from_secs(60)).await, "{name} kept its finalizer");
    }
    let state = env.sim.state().await;
    for ((name, config, policy), id) in cases.iter().zip(&ids) {
        let (announced, left) = expected(config, policy);
        let (pointer, key, active) = provider_state(config);
        let account = find(&state, pointer, key, id);
        match left {
            Left::Nothing => assert!(account.is_none(), "{name}: {id} is still at the provider"),
            Left::Deactivated => {
                let (field, active_value) = active.unwrap();
                let account = account.unwrap_or_else(|| panic!("{name}: {id} is gone"));
                assert_ne!(account[field], active_value, "{name}: {id} is still active");
            }
            Left::Untouched => {
                let account = account.unwrap_or_else(|| panic!("{name}: {id} is gone"));
                if let Some((field, active_value)) = active {
                    assert_eq!(account[field], active_value, "{name}: {id} was deactivated");
                }
            }
        }
        if announced == "Retain" {
            assert!(env.wait_event("Retained", id).await, "{name}: no Retained Event names {id}");
        }
    }
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

    // Hold the children's own removal at the provider: the member's DELETE and the number's
    // release hang until the test lets them go (the operator gives up on each after 3 s and
    // tries again). Whatever reaches the accounts meanwhile was sent before their children went.
    let member = "/v1/accounts/{id}/team/{member_id}";
    let release = "/api/v1/Account/{auth_id}/numbers/{e164}";
    let vobiz_account = "/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}";
    let rb_account = "/v1/accounts/{id}";
    env.sim.fault("recoverbiz", "DELETE", Some(member), json!({"kind": "hang"}), json!({})).await;
    env.sim.fault("vobiz", "DELETE", Some(release), json!({"kind": "hang"}), json!({})).await;
    delete(&env, "acme-lending").await;
    delete(&env, "acme-support").await;

    // Each child's removal reached the provider twice, held both times (seconds in which a
    // parent could have gone ahead), and each parent says that it waits for its child.
    let held = eventually(Duration::from_secs(60), || async {
        let tries =
            (env.sim.calls("recoverbiz", "DELETE", member).await, env.sim.calls("vobiz", "DELETE", release).await);
        let mut waiting = 0;
        for name in ["acme-lending", "acme-support"] {
            waiting += usize::from(waits_for_one_child(&env.api::<SubAccount>().get_opt(name).await.ok()??));
        }
        (tries.0 >= 2 && tries.1 >= 2 && waiting == 2).then_some(())
    })
    .await;
    let touched = (
        env.sim.calls("vobiz", "DELETE", vobiz_account).await,
        env.sim.calls("recoverbiz", "DELETE", rb_account).await,
    );
    if held.is_none() {
        let mut parents = Vec::new();
        for name in ["acme-lending", "acme-support"] {
            let sa = env.api::<SubAccount>().get_opt(name).await.unwrap();
            parents.push(sa.and_then(|sa| sa.status).map(|s| s.managed.common.conditions));
        }
        panic!(
            "the children's removal was not held twice while both parents waited for it; account removals \
             sent (Vobiz, RecoverBiz): {touched:?}; parents' conditions: {parents:?}\n{}",
            env.operator.log_tail(40)
        );
    }
    assert_eq!(touched, (0, 0), "an account's removal (Vobiz, RecoverBiz) was sent while its child was still there");
    let state = env.sim.state().await;
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &vobiz_id).is_some(), "the Vobiz account is still there");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &rb_id).unwrap()["status"], "active");
    assert_eq!(state["recoverbiz"]["members"].as_array().unwrap().len(), 1, "the member is still there");
    assert_eq!(find(&state, "/vobiz/numbers", "e164", &number).unwrap()["sub_account_id"], vobiz_id.as_str());

    // Let the children go: they go, and then their parents' accounts.
    env.sim.clear_faults().await;
    assert!(env.wait_gone::<TeamMember>("sarah-johnson", Duration::from_secs(60)).await, "the member stayed");
    assert!(env.wait_gone::<PhoneNumber>("acme-support-main", Duration::from_secs(60)).await, "the number stayed");
    for name in ["acme-lending", "acme-support"] {
        assert!(env.wait_gone::<SubAccount>(name, Duration::from_secs(90)).await, "{name} was not deleted");
    }
    let state = env.sim.state().await;
    let members = state["recoverbiz"]["members"].as_array().unwrap();
    assert!(members.is_empty(), "the member was removed: {}", state["recoverbiz"]);
    assert!(
        find(&state, "/vobiz/numbers", "e164", &number).is_none(),
        "{number} is gone from the sub-account and the parent"
    );
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &vobiz_id).is_none());
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &rb_id).unwrap()["status"], "deactivated");
    env.finish().await;
}

/// Whether SubAccount `sa` is being deleted and says that it waits for its one child to go first.
fn waits_for_one_child(sa: &SubAccount) -> bool {
    let conditions = sa.status.as_ref().map(|s| s.managed.common.conditions.as_slice()).unwrap_or_default();
    sa.metadata.deletion_timestamp.is_some()
        && conditions.iter().any(|c| {
            c.type_ == "Reconciling" && c.reason == "Deleting" && c.message.contains("waiting for 1 dependent resource")
        })
}

#[tokio::test]
async fn a_provider_outage_during_deletion_keeps_the_finalizer_without_a_hot_loop() {
    let env = Env::start("e2e-outage").await;
    fast_provider(&env, "vobiz");
    env.apply_ok(&sub_account("doomed", "vobiz", ""));
    env.apply_ok(&sub_account("orphan", "vobiz", "  deletionPolicy: Orphan\n"));
    env.wait_ready::<SubAccount>("doomed").await;
    env.wait_ready::<SubAccount>("orphan").await;

    env.sim.fault("vobiz", "DELETE", None, json!({"kind": "status", "status": 503}), json!({})).await;
    delete(&env, "doomed").await;
    delete(&env, "orphan").await;
    assert!(env.wait_gone::<SubAccount>("orphan", Duration::from_secs(10)).await, "Orphan lets go at once");

    // The provider sees attempts spaced out by backoff: four of them take seconds (a hot loop
    // would make them within milliseconds), and the gaps are reported.
    let route = "/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}";
    let mut seen_at = Vec::new();
    for attempt in 1..=4 {
        let made = eventually(Duration::from_secs(60), || async {
            (env.sim.calls("vobiz", "DELETE", route).await >= attempt).then_some(Instant::now())
        })
        .await;
        seen_at.push(made.unwrap_or_else(|| panic!("DELETE attempt {attempt} never came")));
    }
    let gaps: Vec<Duration> = seen_at.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("deletion: gaps between DELETE attempts while the provider is down: {gaps:?}");
    let spread = seen_at[3] - seen_at[0];
    assert!(spread >= Duration::from_secs(3), "four DELETE attempts within {spread:?}: no backoff");
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
