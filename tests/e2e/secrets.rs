//! The credentials Secret through an account's life: a spec update leaves it as it was (even
//! credentials the provider never shows again), and a token removed from it is re-issued where
//! the provider can (Yardstik), the old one revoked.

use std::time::Duration;

use serde_json::{Value, json};
use tenantline::api::SubAccount;

use crate::harness::{Env, kubectl};
use crate::lifecycle::{fast_provider, sub_account};
use crate::safety::{data, yardstik_owner};
use crate::support::eventually;

fn find<'a>(state: &'a Value, pointer: &str, key: &str, id: &str) -> &'a Value {
    let items = state.pointer(pointer).and_then(Value::as_array).unwrap_or_else(|| panic!("{pointer} in {state}"));
    items.iter().find(|i| i[key] == id).unwrap_or_else(|| panic!("{id} not in {pointer}"))
}

#[tokio::test]
async fn a_spec_update_leaves_the_secret_as_it_was() {
    let env = Env::start("e2e-secret-update").await;
    fast_provider(&env, "vobiz");
    env.apply_ok(&sub_account("support", "vobiz", ""));
    let id = env.wait_ready::<SubAccount>("support").await.status.unwrap().managed.external_id.unwrap();
    let before = data(&env.secret("support-credentials").await.expect("the credentials Secret"));
    let state = env.sim.state().await;
    assert_eq!(before["authToken"], find(&state, "/vobiz/subAccounts", "auth_id", &id)["auth_token"]);

    env.apply_ok(&sub_account("support", "vobiz", "").replace("displayName: support", "displayName: Support Desk"));
    let updated = eventually(Duration::from_secs(30), || async {
        let state = env.sim.state().await;
        (find(&state, "/vobiz/subAccounts", "auth_id", &id)["name"] == "Support Desk").then_some(())
    })
    .await;
    assert!(updated.is_some(), "the new name never reached Vobiz");
    env.wait_ready::<SubAccount>("support").await;
    let after = data(&env.secret("support-credentials").await.unwrap());
    assert_eq!(after, before, "the update changed the Secret (Vobiz shows the token only once)");
    env.finish().await;
}

#[tokio::test]
async fn a_yardstik_token_removed_from_the_secret_is_reissued_and_the_old_one_revoked() {
    let env = Env::start("e2e-secret-reissue").await;
    fast_provider(&env, "yardstik");
    env.apply_ok(&sub_account("screening", "yardstik", &yardstik_owner()));
    let id = env.wait_ready::<SubAccount>("screening").await.status.unwrap().managed.external_id.unwrap();
    let old = data(&env.secret("screening-credentials").await.unwrap())["apiToken"].clone();

    let remove = json!([{"op": "remove", "path": "/data/apiToken"}]).to_string();
    let patch = ["patch", "secret", "screening-credentials", "-n", &env.ns.name, "--type=json", "-p", &remove];
    let out = kubectl(&patch, "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fresh = eventually(Duration::from_secs(60), || async {
        let token = data(&env.secret("screening-credentials").await?).get("apiToken")?.clone();
        (token != old).then_some(token)
    })
    .await
    .expect("a new apiToken in the Secret");

    let state = env.sim.state().await;
    assert_eq!(fresh, find(&state, "/yardstik/subAccounts", "id", &id)["api_token"], "the token Yardstik holds");
    assert_eq!(state["yardstik"]["subAccounts"].as_array().unwrap().len(), 1, "the same account");
    let status_with = |token: String| {
        let request = env.sim.http().get(env.sim.url(&format!("/yardstik/accounts/{id}")));
        async move { request.header("Authorization", format!("Account {token}")).send().await.unwrap().status() }
    };
    assert!(status_with(fresh.clone()).await.is_success(), "the new token works");
    assert_eq!(status_with(old.clone()).await, 401, "the old token was revoked");
    assert!(env.wait_event("CredentialsReissued", &id).await, "no CredentialsReissued Event for {id}");
    env.assert_no_leak(&[old, fresh]).await;
    env.finish().await;
}
