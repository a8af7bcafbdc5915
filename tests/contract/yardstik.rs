use std::time::Duration;

use serde_json::{Value, json};
use tenantline::provider::{self, Credentials, ErrorClass, ProviderKind};
use tenantline_sim::Seed;
use tenantline_sim::seed::DEV_YARDSTIK_KEY as KEY;

use crate::support::{Sim, bad_credentials, items, sub_account};

const P: ProviderKind = ProviderKind::Yardstik;

fn stored<'a>(state: &'a Value, id: &str) -> &'a Value {
    items(state, "/yardstik/subAccounts").iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("{id}"))
}

#[tokio::test]
async fn sub_accounts_round_trip_with_their_own_token() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let caps = subs.capabilities();
    assert!(caps.update && caps.lookup && !caps.deactivate && !caps.delete);

    let mut spec = sub_account(P, "Screening");
    let created = subs.create(&spec).await.unwrap();
    let token = created.credentials.get("apiToken").unwrap().to_owned();
    assert_eq!(stored(&sim.state().await, &created.id)["api_token"], token.as_str());

    let seen = subs.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.drift.is_empty(), "{:?}", seen.drift);
    assert!(seen.credentials.get("apiToken").is_none(), "reads never show the token");

    spec.address.as_mut().unwrap().city = Some("Dallas".into());
    spec.owner.as_mut().unwrap().first_name = Some("Ann".into());
    assert_eq!(subs.observe(&created.id, &spec).await.unwrap().unwrap().drift, ["owner.firstName", "address.city"]);
    let own = Credentials::default().with("apiToken", token);
    subs.update(&created.id, &spec, &own).await.unwrap();
    let state = sim.state().await;
    assert_eq!(stored(&state, &created.id)["address"]["city"], "Dallas");
    assert_eq!(stored(&state, &created.id)["first_name"], "Ann");

    let err = subs.update(&created.id, &spec, &Credentials::default()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "updates need the sub-account's own token");
    assert_eq!(subs.delete(&created.id, &spec).await.unwrap_err().class(), ErrorClass::Unsupported);
    assert!(subs.observe("00000000-0000-4000-8000-000000000000", &spec).await.unwrap().is_none());
}

#[tokio::test]
async fn reissued_credentials_replace_the_old_token() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let mut spec = sub_account(P, "Reissue");
    let created = subs.create(&spec).await.unwrap();
    let old = created.credentials.get("apiToken").unwrap().to_owned();
    let fresh = subs.reissue_credentials(&created.id, &spec).await.unwrap().unwrap();
    let fresh = fresh.get("apiToken").unwrap().to_owned();
    assert_ne!(fresh, old);
    assert_eq!(stored(&sim.state().await, &created.id)["api_token"], fresh.as_str());
    assert_eq!(items(&sim.state().await, "/yardstik/subAccounts").len(), 1, "the same account");

    let with = |token: &str| Credentials::default().with("apiToken", token);
    assert!(subs.credentials_accepted(&created.id, &with(&fresh)).await.unwrap());
    assert!(!subs.credentials_accepted(&created.id, &with(&old)).await.unwrap(), "a revoked token is told apart");
    let writes = sim.calls("yardstik", "POST", "/sub_accounts").await
        + sim.calls("yardstik", "PATCH", "/accounts/{account_id}").await;
    assert_eq!(writes, 2, "checking a token writes nothing");

    spec.owner.as_mut().unwrap().last_name = Some("Díaz".into());
    let err = subs.update(&created.id, &spec, &Credentials::default().with("apiToken", old)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "the old token stopped working: {err}");
    subs.update(&created.id, &spec, &Credentials::default().with("apiToken", fresh)).await.unwrap();
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_account_name_across_pages() {
    // A platform whose list ignores the name filter: the client pages through everything.
    let mut seed = Seed::default();
    seed.yardstik.ignore_list_filters = true;
    let sim = Sim::start_with(seed).await;
    let subs = sim.clients(P).sub_accounts;
    for i in 0..120 {
        subs.create(&sub_account(P, &format!("other-{i:03}"))).await.unwrap();
    }
    let spec = sub_account(P, "Lost");
    sim.fault("yardstik", "POST", Some("/sub_accounts"), json!({"kind": "afterApply"}), 1).await;
    assert!(subs.create(&spec).await.unwrap_err().is_retryable());
    sim.clear_calls().await;
    let found = subs.find(&spec).await.unwrap().expect("the account the lost create made");
    assert_eq!(stored(&sim.state().await, &found)["account_name"], "Lost");
    assert_eq!(items(&sim.state().await, "/yardstik/subAccounts").len(), 121);
    let pages = sim.calls("yardstik", "GET", "/sub_accounts").await;
    assert!(pages >= 2, "the newest account is on the second page of 100; read {pages} page(s)");
}

#[tokio::test]
async fn errors_are_classified() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Errors");
    sim.fault("yardstik", "POST", Some("/sub_accounts"), json!({"kind": "status", "status": 503}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().class(), ErrorClass::Transient);
    sim.fault("yardstik", "POST", Some("/sub_accounts"), json!({"kind": "rateLimit", "retryAfter": 7}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().retry_after(), Some(Duration::from_secs(7)));
    // A read that hangs past the timeout is retried; one dropped three times in a row is transient.
    let get = "/sub_accounts/{sub_account_id}";
    sim.fault("yardstik", "GET", Some(get), json!({"kind": "hang", "ms": 5000}), 1).await;
    sim.clear_calls().await;
    assert!(subs.observe("any", &spec).await.unwrap().is_none());
    assert_eq!(sim.calls("yardstik", "GET", get).await, 2, "the hung read, then the retry that answered");
    sim.fault("yardstik", "GET", Some(get), json!({"kind": "drop"}), 3).await;
    assert_eq!(subs.observe("any", &spec).await.unwrap_err().class(), ErrorClass::Transient);

    let mut bad = spec.clone();
    bad.owner.as_mut().unwrap().email = Some("not-an-email".into());
    let err = subs.create(&bad).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("email_address"), "{err}");

    let wrong = provider::connect(bad_credentials(&sim, P)).unwrap().sub_accounts;
    let err = wrong.create(&spec).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(!format!("{err} {err:?}").contains(KEY));
    assert!(items(&sim.state().await, "/yardstik/subAccounts").is_empty());
}
