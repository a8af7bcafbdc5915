use std::time::Duration;

use serde_json::{Value, json};
use tenantline::provider::{self, Credentials, ErrorClass, ProviderKind, SecretString, VobizPartnerOptions};

use crate::support::{Sim, bad_credentials, items, sub_account};

const P: ProviderKind = ProviderKind::VobizPartner;
const CREATE: &str = "/api/v1/partner/accounts";

fn customer<'a>(state: &'a Value, id: &str) -> &'a Value {
    items(state, "/vobizPartner/accounts").iter().find(|c| c["auth_id"] == id).unwrap_or_else(|| panic!("{id}"))
}

#[tokio::test]
async fn customers_are_created_funded_once_and_read_back_with_their_token() {
    let sim = Sim::start().await;
    let customers = sim.clients(P).sub_accounts;
    let caps = customers.capabilities();
    assert!(caps.lookup && caps.generated_password && !caps.update && !caps.deactivate && !caps.delete);

    let mut spec = sub_account(P, "collections");
    spec.company_name = Some("Acme Corp".into());
    spec.vobiz_partner = Some(VobizPartnerOptions { opening_balance: Some(25.0), currency: Some("USD".into()) });
    let created = customers.create(&spec).await.unwrap();
    assert!(created.warning.is_none());
    let state = sim.state().await;
    let stored = customer(&state, &created.id);
    assert_eq!(created.credentials.get("authToken"), stored["auth_token"].as_str());
    assert_eq!(stored["company"], "Acme Corp");
    assert_eq!(items(&state, "/vobizPartner/transactions").len(), 1, "the opening balance, once");

    let seen = customers.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.active && seen.drift.is_empty(), "{:?}", seen.drift);
    assert_eq!(seen.credentials.get("authToken"), created.credentials.get("authToken"), "GET shows the token");

    spec.company_name = Some("Renamed Corp".into());
    assert_eq!(customers.observe(&created.id, &spec).await.unwrap().unwrap().drift, ["companyName"]);
    for err in [
        customers.update(&created.id, &spec, &Credentials::default()).await.unwrap_err(),
        customers.set_active(&created.id, false).await.unwrap_err(),
        customers.delete(&created.id, &spec).await.unwrap_err(),
    ] {
        assert_eq!(err.class(), ErrorClass::Unsupported);
    }
    assert!(customers.observe("MA_MISSING", &spec).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_opening_transfer_keeps_the_account_and_says_so() {
    let sim = Sim::start().await;
    let customers = sim.clients(P).sub_accounts;
    let mut spec = sub_account(P, "rich");
    spec.vobiz_partner =
        Some(VobizPartnerOptions { opening_balance: Some(10_000_000.0), currency: Some("USD".into()) });
    let created = customers.create(&spec).await.unwrap();
    let warning = created.warning.expect("the failed transfer is reported");
    assert!(warning.contains("opening balance") && warning.contains(&created.id), "{warning}");
    assert_eq!(items(&sim.state().await, "/vobizPartner/accounts").len(), 1);
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_email_and_marker() {
    let sim = Sim::start().await;
    let customers = sim.clients(P).sub_accounts;
    // Other customers around: the lookup searches by email and checks the marker.
    for i in 0..30 {
        customers.create(&sub_account(P, &format!("other{i}"))).await.unwrap();
    }
    let spec = sub_account(P, "lost");
    sim.fault("vobizPartner", "POST", Some(CREATE), json!({"kind": "afterApply"}), 1).await;
    assert!(customers.create(&spec).await.unwrap_err().is_retryable());
    let found = customers.find(&spec).await.unwrap().expect("the customer the lost create made");
    assert_eq!(customer(&sim.state().await, &found)["email"], "lost@acme.example");
    assert_eq!(items(&sim.state().await, "/vobizPartner/accounts").len(), 31);

    // The same email under another resource's key is not ours to adopt.
    let someone_else = provider::SubAccountSpec { idempotency_key: "another-uid".into(), ..spec };
    assert_eq!(customers.find(&someone_else).await.unwrap(), None);
}

#[tokio::test]
async fn rejections_name_the_field() {
    let sim = Sim::start().await;
    let customers = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "taken");
    customers.create(&spec).await.unwrap();

    let again = provider::SubAccountSpec { idempotency_key: "second".into(), ..spec.clone() };
    let err = customers.create(&again).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("email"), "{err}");

    let weak = provider::SubAccountSpec { password: Some(SecretString::from("weak")), ..sub_account(P, "weak") };
    let err = customers.create(&weak).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("password") && !err.to_string().contains("weak\""), "{err}");

    sim.fault("vobizPartner", "POST", Some(CREATE), json!({"kind": "status", "status": 500}), 1).await;
    assert_eq!(customers.create(&sub_account(P, "x")).await.unwrap_err().class(), ErrorClass::Transient);
    sim.fault("vobizPartner", "POST", Some(CREATE), json!({"kind": "rateLimit", "retryAfter": 7}), 1).await;
    let err = customers.create(&sub_account(P, "x")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

    let wrong = provider::connect(bad_credentials(&sim, P)).unwrap().sub_accounts;
    let err = wrong.create(&sub_account(P, "x")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(!format!("{err} {err:?}").contains(tenantline_sim::seed::DEV_PARTNER_AUTH_TOKEN));
}
