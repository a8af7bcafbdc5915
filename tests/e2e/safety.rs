//! A customer's account is never destroyed, replaced or touched by mistake, and what says it is
//! being retried is retried.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::{Value, json};
use tenantline::api::SubAccount;

use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

pub fn condition(sa: &SubAccount, type_: &str) -> Condition {
    let conditions = sa.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    conditions.into_iter().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_} condition: {sa:?}"))
}

pub fn items<'a>(state: &'a Value, pointer: &str) -> &'a Vec<Value> {
    state.pointer(pointer).and_then(Value::as_array).unwrap_or_else(|| panic!("{pointer} in {state}"))
}

#[tokio::test]
async fn a_provider_not_found_during_apply_is_looked_at_again() {
    let env = Env::start("e2e-notfound").await;
    fast_provider(&env, "agentphone");
    let route = json!({"route": "/v1/sub-accounts"});
    env.sim.fault("agentphone", "POST", json!({"kind": "status", "status": 404}), route).await;
    env.apply_ok(&sub_account("marketing", "agentphone", ""));
    let sa = env.wait_condition::<SubAccount>("marketing", "Reconciling", "True", Duration::from_secs(30)).await;
    assert!(condition(&sa, "Ready").message.contains("looking again"), "{:?}", condition(&sa, "Ready"));
    eventually(Duration::from_secs(30), || async {
        (env.sim.calls("agentphone", "POST", "/v1/sub-accounts").await >= 2).then_some(())
    })
    .await
    .expect("a second attempt");
    env.sim.clear_faults().await;
    // Nothing about the resource changes now: only the operator's own retry can make it Ready.
    env.wait_ready::<SubAccount>("marketing").await;
    assert_eq!(items(&env.sim.state().await, "/agentphone/subAccounts").len(), 1);
    env.finish().await;
}
