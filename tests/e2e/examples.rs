//! The examples a user copies reach Ready for every provider, with Secrets holding exactly the
//! credentials the provider issued, and no credential anywhere it should not be.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use tenantline::api::{PhoneNumber, SubAccount, TeamMember};

use crate::harness::{Env, kubectl};

fn data(secret: &Secret) -> BTreeMap<String, String> {
    secret.data.iter().flatten().map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap())).collect()
}

fn only<'a>(state: &'a Value, pointer: &str) -> &'a Value {
    let items = state.pointer(pointer).and_then(Value::as_array).unwrap_or_else(|| panic!("{pointer} in {state}"));
    assert_eq!(items.len(), 1, "exactly one object at {pointer}: {items:?}");
    &items[0]
}

#[tokio::test]
async fn every_providers_example_becomes_ready_with_the_issued_credentials() {
    let env = Env::start("e2e-examples").await;
    for dir in ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"] {
        env.apply_example(dir);
    }
    for name in ["acme-lending", "acme-support", "acme-marketing", "acme-collections", "acme-screening"] {
        let sa = env.wait_ready::<SubAccount>(name).await;
        let status = sa.status.unwrap();
        assert!(status.external_id.is_some(), "{name} has no externalId");
        assert_eq!(status.observed_generation, sa.metadata.generation.unwrap());
    }
    env.wait_ready::<TeamMember>("sarah-johnson").await;
    let vobiz_number = env.wait_ready::<PhoneNumber>("acme-support-main").await;
    let agentphone_number = env.wait_ready::<PhoneNumber>("acme-marketing-sms").await;

    let state = env.sim.state().await;
    let mut issued = Vec::new();

    let rb = only(&state, "/recoverbiz/accounts");
    let secret = data(&env.secret("acme-lending-credentials").await.unwrap());
    assert_eq!(secret["accountId"], rb["id"].as_str().unwrap());
    assert_eq!(secret["phoneNumber"], rb["phone_number"].as_str().unwrap());
    assert_eq!(secret["provider"], "RecoverBiz");
    let member = only(&state, "/recoverbiz/members");
    assert_eq!(member["email"], "sarah@acme.example");

    let vobiz = only(&state, "/vobiz/subAccounts");
    let secret = data(&env.secret("acme-support-credentials").await.unwrap());
    assert_eq!(secret["authId"], vobiz["auth_id"].as_str().unwrap());
    assert_eq!(secret["authToken"], vobiz["auth_token"].as_str().unwrap(), "the one-time token reached the Secret");
    issued.push(secret["authToken"].clone());
    let number = vobiz_number.status.unwrap().number.unwrap();
    let held = state["vobiz"]["numbers"].as_array().unwrap().iter().find(|n| n["e164"] == number.as_str());
    let held = held.unwrap_or_else(|| panic!("Vobiz holds {number}: {}", state["vobiz"]["numbers"]));
    assert_eq!(held["sub_account_id"], vobiz["auth_id"], "the bought number is assigned to the sub-account");

    let ap = only(&state, "/agentphone/subAccounts");
    let secret = data(&env.secret("acme-marketing-credentials").await.unwrap());
    assert_eq!(secret["subAccountId"], ap["id"].as_str().unwrap());
    let number = agentphone_number.status.unwrap().number.unwrap();
    let bought =
        state["agentphone"]["numbers"].as_array().unwrap().iter().find(|n| n["phoneNumber"] == number.as_str());
    assert_eq!(bought.unwrap()["subAccountId"], ap["id"]);

    let vp = only(&state, "/vobizPartner/accounts");
    let secret = data(&env.secret("acme-collections-credentials").await.unwrap());
    assert_eq!(secret["authId"], vp["auth_id"].as_str().unwrap());
    assert_eq!(secret["authToken"], vp["auth_token"].as_str().unwrap());
    assert!(secret["password"].len() >= 12, "a generated login password is kept");
    issued.push(secret["authToken"].clone());
    issued.push(secret["password"].clone());

    let ys = only(&state, "/yardstik/subAccounts");
    let secret = data(&env.secret("acme-screening-credentials").await.unwrap());
    assert_eq!(secret["apiToken"], ys["api_token"].as_str().unwrap());
    issued.push(secret["apiToken"].clone());

    // What `kubectl get` shows a person.
    let out = kubectl(&["get", "subaccounts", "-n", &env.ns.name], "");
    let table = String::from_utf8(out.stdout).unwrap();
    for id in [&rb["id"], &vobiz["auth_id"], &ap["id"], &vp["auth_id"], &ys["id"]] {
        assert!(table.contains(id.as_str().unwrap()), "kubectl get subaccounts shows {id}:\n{table}");
    }
    let out = kubectl(&["get", "phonenumbers", "-n", &env.ns.name], "");
    assert!(String::from_utf8(out.stdout).unwrap().contains(&number), "kubectl get phonenumbers shows the number");

    env.assert_no_leak(&issued).await;
    env.finish().await;
}
