use std::time::Duration;

use serde_json::json;
use tenantline::provider::{self, Credentials, ErrorClass, MemberSpec, ProviderKind};

use tenantline_sim::Seed;
use tenantline_sim::seed::DEV_RECOVERBIZ_KEY as KEY;
use tenantline_sim::seed::RateLimits;

use crate::support::{Sim, bad_credentials, items, sub_account};

const P: ProviderKind = ProviderKind::RecoverBiz;

#[tokio::test]
async fn accounts_round_trip_with_soft_delete() {
    let sim = Sim::start().await;
    let accounts = sim.clients(P).sub_accounts;
    let caps = accounts.capabilities();
    assert!(caps.update && caps.deactivate && caps.lookup && !caps.delete);

    let mut spec = sub_account(P, "Acme Lending");
    spec.company_name = Some("Acme Lending Corp".into());
    spec.metadata.insert("tier".into(), "gold".into());
    let created = accounts.create(&spec).await.unwrap();
    let state = sim.state().await;
    let stored = &items(&state, "/recoverbiz/accounts")[0];
    assert_eq!(stored["id"], created.id.as_str());
    assert_eq!(stored["metadata"]["tenantline.io/key"], "default/contract/Acme Lending");
    assert_eq!(created.number.as_deref(), stored["phone_number"].as_str(), "the auto-provisioned number");

    let seen = accounts.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.active && seen.drift.is_empty(), "{:?}", seen.drift);
    assert_eq!(seen.number, created.number);

    spec.company_name = Some("Acme Financial".into());
    assert_eq!(accounts.observe(&created.id, &spec).await.unwrap().unwrap().drift, ["companyName"]);
    accounts.update(&created.id, &spec, &Credentials::default()).await.unwrap();
    assert_eq!(items(&sim.state().await, "/recoverbiz/accounts")[0]["company_name"], "Acme Financial");

    accounts.set_active(&created.id, false).await.unwrap();
    assert_eq!(items(&sim.state().await, "/recoverbiz/accounts")[0]["status"], "deactivated");
    assert!(!accounts.observe(&created.id, &spec).await.unwrap().unwrap().active);
    accounts.set_active(&created.id, true).await.unwrap();
    assert_eq!(items(&sim.state().await, "/recoverbiz/accounts")[0]["status"], "active");
    assert!(accounts.observe(&created.id, &spec).await.unwrap().unwrap().active);

    let err = accounts.delete(&created.id, &spec).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unsupported);
    assert!(accounts.observe("acc_missing", &spec).await.unwrap().is_none());
}

#[tokio::test]
async fn drift_made_behind_our_back_is_seen_and_corrected() {
    let sim = Sim::start().await;
    let accounts = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Drifty");
    let id = accounts.create(&spec).await.unwrap().id;
    let r = sim
        .raw()
        .patch(format!("{}/accounts/{id}", sim.endpoint(P)))
        .header("X-Partner-Key", KEY)
        .json(&json!({"name": "Renamed", "metadata": {"tenantline.io/key": "default/contract/Drifty"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(accounts.observe(&id, &spec).await.unwrap().unwrap().drift, ["displayName"]);
    accounts.update(&id, &spec, &Credentials::default()).await.unwrap();
    let state = sim.state().await;
    let stored = items(&state, "/recoverbiz/accounts").iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(stored["name"], "Drifty", "the provider holds the spec's name again");
    assert_eq!(stored["metadata"]["tenantline.io/key"], "default/contract/Drifty", "and still our key");
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_the_key_in_metadata() {
    let sim = Sim::start().await;
    let accounts = sim.clients(P).sub_accounts;
    // Another account of the same name, created by someone else, must not be taken.
    let other = sub_account(P, "Twin");
    let other_id = accounts.create(&provider::SubAccountSpec { idempotency_key: "someone-else".into(), ..other }).await;
    let spec = sub_account(P, "Twin");
    sim.fault("recoverbiz", "POST", Some("/v1/accounts"), json!({"kind": "afterApply"}), 1).await;
    let err = accounts.create(&spec).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let found = accounts.find(&spec).await.unwrap().expect("the account the lost create made");
    assert_ne!(found, other_id.unwrap().id);
    assert_eq!(items(&sim.state().await, "/recoverbiz/accounts").len(), 2, "no second create was needed");
}

#[tokio::test]
async fn an_account_an_older_release_made_is_found_by_its_uid() {
    let sim = Sim::start().await;
    let accounts = sim.clients(P).sub_accounts;
    let r = sim
        .raw()
        .post(format!("{}/accounts", sim.endpoint(P)))
        .header("X-Partner-Key", KEY)
        .json(&json!({"name": "Old", "metadata": {"tenantline.io/uid": "3c9e-old-uid"}}))
        .send()
        .await
        .unwrap();
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let spec = sub_account(P, "Old");
    assert_eq!(accounts.find(&spec).await.unwrap(), None, "another resource's account of the same name");
    let mine = provider::SubAccountSpec { legacy_key: Some("3c9e-old-uid".into()), ..spec };
    assert_eq!(accounts.find(&mine).await.unwrap(), Some(id));
}

#[tokio::test]
async fn find_reads_every_page() {
    // More accounts than the documented 100 creates per hour allow, to fill two pages of 250.
    let mut seed = Seed::default();
    seed.recoverbiz.rate_limits = Some(RateLimits { account_create_per_hour: 1000, other_per_minute: 10_000 });
    let sim = Sim::start_with(seed).await;
    let accounts = sim.clients(P).sub_accounts;
    for i in 0..260 {
        let r = sim
            .raw()
            .post(format!("{}/accounts", sim.endpoint(P)))
            .header("X-Partner-Key", KEY)
            .json(&json!({"name": "Same", "metadata": {"tenantline.io/key": format!("default/contract/other-{i}")}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let ours = accounts.create(&sub_account(P, "Same")).await.unwrap().id;
    assert_eq!(accounts.find(&sub_account(P, "Same")).await.unwrap(), Some(ours), "found on the second page");
    assert_eq!(accounts.find(&sub_account(P, "Other")).await.unwrap(), None);
}

#[tokio::test]
async fn errors_are_classified() {
    let sim = Sim::start().await;
    let accounts = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Errors");

    sim.fault("recoverbiz", "POST", Some("/v1/accounts"), json!({"kind": "status", "status": 503}), 1).await;
    assert_eq!(accounts.create(&spec).await.unwrap_err().class(), ErrorClass::Transient);

    sim.fault("recoverbiz", "POST", Some("/v1/accounts"), json!({"kind": "rateLimit", "retryAfter": 7}), 1).await;
    assert_eq!(accounts.create(&spec).await.unwrap_err().retry_after(), Some(Duration::from_secs(7)));

    let bad = provider::SubAccountSpec { forwarding_number: Some("0415 555".into()), ..spec.clone() };
    let err = accounts.create(&bad).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("forwarding_number"), "{err}");

    let wrong = provider::connect(bad_credentials(&sim, P)).unwrap().sub_accounts;
    let err = wrong.create(&spec).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(!format!("{err} {err:?}").contains(KEY), "no key in errors");
    assert!(items(&sim.state().await, "/recoverbiz/accounts").is_empty(), "nothing was created");
}

#[tokio::test]
async fn team_members_are_invited_found_and_removed() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Team")).await.unwrap().id;
    let members = clients.members.expect("RecoverBiz has team members");
    let caps = members.capabilities();
    assert!(caps.delete && caps.lookup && !caps.update && !caps.deactivate);

    let spec = MemberSpec {
        sub_account_id: account.clone(),
        email: "Sarah@Acme.example".into(),
        name: "Sarah Johnson".into(),
        role: "member".into(),
        phone_number: Some("+14155555678".into()),
        forwarding_number: None,
    };
    let created = members.create(&spec).await.unwrap();
    assert_eq!(created.number.as_deref(), Some("+14155555678"));
    let seen = members.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.drift.is_empty(), "{:?}", seen.drift);
    let renamed = MemberSpec { name: "Sarah J.".into(), ..spec.clone() };
    assert_eq!(members.observe(&created.id, &renamed).await.unwrap().unwrap().drift, ["name"]);

    let lower = MemberSpec { email: "sarah@acme.example".into(), ..spec.clone() };
    assert_eq!(members.find(&lower).await.unwrap(), Some(created.id.clone()), "emails match case-insensitively");
    let err = members.create(&lower).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid, "a duplicate member is a rejection: {err}");

    members.delete(&created.id, &spec).await.unwrap();
    assert!(items(&sim.state().await, "/recoverbiz/members").is_empty());
    assert!(members.observe(&created.id, &spec).await.unwrap().is_none());
    members.delete(&created.id, &spec).await.expect("removing a removed member is done");
}
