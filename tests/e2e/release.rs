//! Deleting a PhoneNumber with `deletionPolicy: Release` gives the number back at the provider:
//! AgentPhone's number (the account stays; deleting an AgentPhone sub-account would release its
//! numbers by itself, so only the number is deleted here).

use std::time::Duration;

use tenantline::api::{PhoneNumber, SubAccount};

use crate::harness::Env;
use crate::safety::items;

#[tokio::test]
async fn deleting_an_agentphone_number_with_release_releases_it_at_the_provider() {
    let env = Env::start("e2e-release").await;
    let path = format!("{}/examples/agentphone/provider.yaml", env!("CARGO_MANIFEST_DIR"));
    env.apply_ok(&std::fs::read_to_string(path).unwrap());
    env.apply_ok(
        "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {name: agents}\nspec:\n  providerConfigRef: {name: agentphone}\n  displayName: Agents\n\
         ---\napiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {name: line}\nspec:\n  subAccountRef: {name: agents}\n  search: {country: US, areaCode: \"415\"}\n  deletionPolicy: Release\n",
    );
    let account = env.wait_ready::<SubAccount>("agents").await.status.unwrap().managed.external_id.unwrap();
    let number = env.wait_ready::<PhoneNumber>("line").await.status.unwrap().managed.external_id.unwrap();
    let status = |state: &serde_json::Value| {
        items(state, "/agentphone/numbers")
            .iter()
            .find(|n| n["id"] == number.as_str())
            .unwrap_or_else(|| panic!("number {number} at AgentPhone: {state}"))["status"]
            .clone()
    };
    assert_eq!(status(&env.sim.state().await), "active");

    env.sim.clear_calls().await;
    env.api::<PhoneNumber>().delete("line", &Default::default()).await.unwrap();
    assert!(env.wait_gone::<PhoneNumber>("line", Duration::from_secs(60)).await, "{}", env.operator.log_tail(30));
    let state = env.sim.state().await;
    assert_eq!(status(&state), "released", "the number was not released at AgentPhone");
    assert_eq!(env.sim.calls("agentphone", "DELETE", "/v1/numbers/{number_id}").await, 1);
    let subs = items(&state, "/agentphone/subAccounts");
    assert!(subs.iter().any(|s| s["id"] == account.as_str()), "the account stays: {subs:?}");
    env.finish().await;
}
