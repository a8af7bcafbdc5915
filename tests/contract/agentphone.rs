use std::time::Duration;

use serde_json::json;
use tenantline::provider::{self, Credentials, ErrorClass, NumberSearch, NumberSpec, ProviderKind};
use tenantline_sim::seed::DEV_AGENTPHONE_KEY as KEY;

use crate::support::{Sim, bad_credentials, items, sub_account};

const P: ProviderKind = ProviderKind::AgentPhone;

#[tokio::test]
async fn sub_accounts_round_trip() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let caps = subs.capabilities();
    assert!(caps.update && caps.delete && caps.lookup && !caps.deactivate);

    let mut spec = sub_account(P, "Marketing");
    let created = subs.create(&spec).await.unwrap();
    assert_eq!(created.credentials.get("subAccountId"), Some(created.id.as_str()));
    assert_eq!(items(&sim.state().await, "/agentphone/subAccounts")[0]["id"], created.id.as_str());

    let seen = subs.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.active && seen.drift.is_empty());
    spec.display_name = "Growth".into();
    assert_eq!(subs.observe(&created.id, &spec).await.unwrap().unwrap().drift, ["displayName"]);
    subs.update(&created.id, &spec, &Credentials::default()).await.unwrap();
    assert_eq!(items(&sim.state().await, "/agentphone/subAccounts")[0]["name"], "Growth");

    assert_eq!(subs.set_active(&created.id, false).await.unwrap_err().class(), ErrorClass::Unsupported);
    subs.delete(&created.id, &spec).await.unwrap();
    assert!(items(&sim.state().await, "/agentphone/subAccounts").is_empty());
    assert!(subs.observe(&created.id, &spec).await.unwrap().is_none());
    subs.delete(&created.id, &spec).await.expect("deleting a deleted sub-account is done");
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_name() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Lost");
    sim.fault("agentphone", "POST", Some("/v1/sub-accounts"), json!({"kind": "afterApply"}), 1).await;
    assert!(subs.create(&spec).await.unwrap_err().is_retryable());
    let found = subs.find(&spec).await.unwrap().expect("the sub-account the lost create made");
    let state = sim.state().await;
    assert_eq!(items(&state, "/agentphone/subAccounts").len(), 1);
    assert_eq!(items(&state, "/agentphone/subAccounts")[0]["id"], found.as_str());
}

#[tokio::test]
async fn the_twenty_sixth_sub_account_is_rejected() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    for i in 0..25 {
        subs.create(&sub_account(P, &format!("sub-{i}"))).await.unwrap();
    }
    let err = subs.create(&sub_account(P, "sub-25")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("25"), "{err}");
    // More than the API's default page of 20: the last one is still found.
    assert!(subs.find(&sub_account(P, "sub-24")).await.unwrap().is_some());
    assert!(subs.find(&sub_account(P, "sub-25")).await.unwrap().is_none());
}

#[tokio::test]
async fn errors_are_classified() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Errors");
    sim.fault("agentphone", "POST", Some("/v1/sub-accounts"), json!({"kind": "status", "status": 502}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().class(), ErrorClass::Transient);
    sim.fault("agentphone", "POST", Some("/v1/sub-accounts"), json!({"kind": "rateLimit", "retryAfter": 7}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().retry_after(), Some(Duration::from_secs(7)));

    let long = sub_account(P, &"x".repeat(101));
    let err = subs.create(&long).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("name"), "FastAPI's detail names the field: {err}");

    let wrong = provider::connect(bad_credentials(&sim, P)).unwrap().sub_accounts;
    let err = wrong.create(&spec).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(!format!("{err} {err:?}").contains(KEY));
    assert!(items(&sim.state().await, "/agentphone/subAccounts").is_empty());
}

#[tokio::test]
async fn numbers_are_bought_for_a_sub_account_found_and_released() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Numbers")).await.unwrap().id;
    let numbers = clients.numbers.expect("AgentPhone has numbers");
    let spec = NumberSpec {
        sub_account_id: account.clone(),
        search: Some(NumberSearch { country: "US".into(), area_code: Some("415".into()) }),
        ..Default::default()
    };
    let created = numbers.create(&spec).await.unwrap();
    let phone = created.number.clone().unwrap();
    assert!(phone.starts_with("+1415"), "{phone}");
    let state = sim.state().await;
    let bought = &items(&state, "/agentphone/numbers")[0];
    assert_eq!(bought["subAccountId"], account.as_str(), "bought for the sub-account, not the master");

    let seen = numbers.observe(&created.id, &spec).await.unwrap().unwrap();
    assert_eq!(seen.number.as_deref(), Some(phone.as_str()));
    assert_eq!(numbers.find(&spec).await.unwrap(), Some(created.id.clone()));
    for claim in [&phone, &created.id] {
        let sibling = NumberSpec { claimed: vec![claim.clone()], ..spec.clone() };
        assert_eq!(numbers.find(&sibling).await.unwrap(), None, "held by a sibling that recorded {claim}");
    }

    numbers.delete(&created.id, &spec).await.unwrap();
    assert_eq!(items(&sim.state().await, "/agentphone/numbers")[0]["status"], "released");
    assert!(numbers.observe(&created.id, &spec).await.unwrap().is_none(), "a released number is gone");
    numbers.delete(&created.id, &spec).await.expect("releasing twice is done");

    let named = NumberSpec { number: Some("+14155550000".into()), search: None, ..spec };
    assert_eq!(numbers.create(&named).await.unwrap_err().class(), ErrorClass::Unsupported);
}

#[tokio::test]
async fn a_lost_purchase_is_found_instead_of_buying_again() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Lost number")).await.unwrap().id;
    let numbers = clients.numbers.unwrap();
    let spec = NumberSpec {
        sub_account_id: account,
        search: Some(NumberSearch { country: "US".into(), area_code: None }),
        ..Default::default()
    };
    sim.fault("agentphone", "POST", Some("/v1/numbers"), json!({"kind": "afterApply"}), 1).await;
    assert!(numbers.create(&spec).await.unwrap_err().is_retryable());
    assert!(numbers.find(&spec).await.unwrap().is_some());
    assert_eq!(items(&sim.state().await, "/agentphone/numbers").len(), 1);
}

#[tokio::test]
async fn numbers_of_a_deleted_sub_account_are_gone() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let spec = sub_account(P, "Short-lived");
    let account = clients.sub_accounts.create(&spec).await.unwrap().id;
    let numbers = clients.numbers.unwrap();
    let number = NumberSpec {
        sub_account_id: account.clone(),
        search: Some(NumberSearch { country: "US".into(), area_code: None }),
        ..Default::default()
    };
    let id = numbers.create(&number).await.unwrap().id;
    clients.sub_accounts.delete(&account, &spec).await.unwrap();
    assert!(numbers.observe(&id, &number).await.unwrap().is_none());
    numbers.delete(&id, &number).await.expect("nothing left to release");
}
