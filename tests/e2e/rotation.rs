//! Parent credentials rotated at the provider: the operator's calls are refused and its
//! resources say so; once the ProviderConfig's Secret holds the new credential, everything is
//! Ready again, without a restart and without a second account.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, ProviderConfig, SubAccount, TeamMember};
use tenantline_sim::seed::{DEV_RECOVERBIZ_KEY, DEV_VOBIZ_AUTH_TOKEN};

use crate::harness::Env;
use crate::lifecycle::fast_provider;
use crate::safety::example_sub_account as example;
use crate::support::eventually;

/// `(simulator provider, credentials Secret, its key, old value, new value)`.
const ROTATIONS: [(&str, &str, &str, &str, &str); 2] = [
    ("recoverbiz", "recoverbiz-partner", "partnerKey", DEV_RECOVERBIZ_KEY, "pk_live_rotated_1111"),
    ("vobiz", "vobiz-parent", "authToken", DEV_VOBIZ_AUTH_TOKEN, "vobiz-rotated-token"),
];

/// The Ready condition's `(status, reason)` of SubAccount `name`, if it has one.
async fn ready(env: &Env, name: &str) -> Option<(String, String)> {
    let sa = env.api::<SubAccount>().get(name).await.ok()?;
    let c = sa.status?.managed.common.conditions.into_iter().find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason))
}

fn accounts(state: &Value) -> (usize, usize) {
    let n = |p: &str| state.pointer(p).and_then(Value::as_array).map_or(0, Vec::len);
    (n("/recoverbiz/accounts"), n("/vobiz/subAccounts"))
}

#[tokio::test]
async fn rotated_parent_credentials_are_refused_then_picked_up_from_the_secret_without_a_restart() {
    let mut env = Env::start("e2e-rotate").await;
    fast_provider(&env, "recoverbiz");
    fast_provider(&env, "vobiz");
    env.apply_ok(&example("recoverbiz"));
    env.apply_ok(&example("vobiz"));
    env.wait_ready::<SubAccount>("acme-lending").await;
    env.wait_ready::<SubAccount>("acme-support").await;
    env.wait_ready::<TeamMember>("sarah-johnson").await;
    env.wait_ready::<PhoneNumber>("acme-support-main").await;
    let before = env.sim.state().await;
    assert_eq!(accounts(&before), (1, 1));

    // Rotated at the provider: the old credentials get 401.
    for (provider, _, _, old, new) in ROTATIONS {
        let body = json!({"provider": provider, "from": old, "to": new});
        let r = env.sim.http().post(env.sim.url("/_sim/rotate")).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "rotate: {}", r.text().await.unwrap());
    }
    let rotated = Instant::now();
    for name in ["acme-lending", "acme-support"] {
        let invalid = eventually(Duration::from_secs(60), || async {
            ready(&env, name).await.filter(|(s, r)| s == "False" && r == "CredentialsInvalid")
        })
        .await;
        assert!(invalid.is_some(), "{name}: now {:?}\n{}", ready(&env, name).await, env.operator.log_tail(30));
    }
    let refused_after = rotated.elapsed();
    // The config's own check only sees that its Secret has the keys: the provider's answer is
    // reported on the resources that got it.
    let config = env.api::<ProviderConfig>().get("recoverbiz").await.unwrap();
    let config_ready = config.status.and_then(|s| s.common.conditions.into_iter().find(|c| c.type_ == "Ready"));
    let config_ready = config_ready.map(|c| format!("{} {}", c.status, c.reason));

    // The Secrets get the new credentials; nobody restarts anything.
    for (_, secret, key, _, new) in ROTATIONS {
        let patch = json!({"stringData": {key: new}});
        env.api::<Secret>().patch(secret, &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    }
    let updated = Instant::now();
    env.wait_ready::<SubAccount>("acme-lending").await;
    env.wait_ready::<SubAccount>("acme-support").await;
    env.wait_ready::<TeamMember>("sarah-johnson").await;
    env.wait_ready::<PhoneNumber>("acme-support-main").await;
    eprintln!(
        "rotation: CredentialsInvalid {:.1} s after the rotation (ProviderConfig Ready: {config_ready:?}); \
         Ready {:.1} s after the Secret update",
        refused_after.as_secs_f64(),
        updated.elapsed().as_secs_f64()
    );

    // Nobody restarted it (the test never does), and it did not exit to be restarted by one.
    assert!(env.operator.running(), "the operator exited:\n{}", env.operator.log_tail(30));
    let after = env.sim.state().await;
    assert_eq!(accounts(&after), (1, 1), "a second account was made");
    assert_eq!(before["vobiz"]["numbers"], after["vobiz"]["numbers"], "a number was bought again");
    let credentials: Vec<String> = ROTATIONS.iter().flat_map(|r| [r.3.to_owned(), r.4.to_owned()]).collect();
    env.assert_no_leak(&credentials).await;
    env.finish().await;
}
