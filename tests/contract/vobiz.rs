use std::time::Duration;

use serde_json::{Value, json};
use tenantline::provider::{self, Credentials, ErrorClass, NumberSearch, NumberSpec, ProviderKind, VobizOptions};
use tenantline_sim::seed::{DEV_VOBIZ_AUTH_ID as PARENT, DEV_VOBIZ_AUTH_TOKEN};

use crate::support::{Sim, bad_credentials, items, sub_account};

const P: ProviderKind = ProviderKind::Vobiz;
const SUBS: &str = "/api/v1/accounts/{auth_id}/sub-accounts/";

fn sub<'a>(state: &'a Value, id: &str) -> &'a Value {
    items(state, "/vobiz/subAccounts").iter().find(|s| s["auth_id"] == id).unwrap_or_else(|| panic!("{id}"))
}

#[tokio::test]
async fn sub_accounts_round_trip_with_one_time_tokens_and_hard_delete() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let caps = subs.capabilities();
    assert!(caps.update && caps.deactivate && caps.delete && caps.lookup && caps.one_time_credentials);

    let mut spec = sub_account(P, "Support");
    spec.vobiz = Some(VobizOptions { rate_limit: Some(500), description: Some("Line".into()), ..Default::default() });
    let created = subs.create(&spec).await.unwrap();
    let state = sim.state().await;
    let stored = sub(&state, &created.id);
    assert_eq!(created.credentials.get("authToken"), stored["auth_token"].as_str(), "the one-time token");
    assert_eq!(stored["description"], "Line [tenantline.io/key=default/contract/Support]");
    assert_eq!(stored["rate_limit"], 500);

    let seen = subs.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.active && seen.drift.is_empty(), "{:?}", seen.drift);
    assert_eq!(seen.credentials.get("authId"), Some(created.id.as_str()));
    assert_eq!(seen.credentials.get("authToken"), None, "the token is never shown again");

    spec.display_name = "Support Desk".into();
    assert_eq!(subs.observe(&created.id, &spec).await.unwrap().unwrap().drift, ["displayName"]);
    subs.update(&created.id, &spec, &Credentials::default()).await.unwrap();
    assert_eq!(sub(&sim.state().await, &created.id)["name"], "Support Desk");

    subs.set_active(&created.id, false).await.unwrap();
    assert_eq!(sub(&sim.state().await, &created.id)["enabled"], false);
    assert!(!subs.observe(&created.id, &spec).await.unwrap().unwrap().active);
    subs.set_active(&created.id, true).await.unwrap();
    assert_eq!(sub(&sim.state().await, &created.id)["enabled"], true);
    assert!(subs.observe(&created.id, &spec).await.unwrap().unwrap().active);

    subs.delete(&created.id, &spec).await.unwrap();
    assert!(items(&sim.state().await, "/vobiz/subAccounts").is_empty());
    assert!(subs.observe(&created.id, &spec).await.unwrap().is_none());
    subs.delete(&created.id, &spec).await.expect("deleting a deleted sub-account is done");
}

#[tokio::test]
async fn drift_made_behind_our_back_is_seen_and_corrected() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Drifty");
    let id = subs.create(&spec).await.unwrap().id;
    let r = sim
        .raw()
        .put(format!("{}/accounts/{PARENT}/sub-accounts/{id}", sim.endpoint(P)))
        .header("X-Auth-ID", PARENT)
        .header("X-Auth-Token", DEV_VOBIZ_AUTH_TOKEN)
        .json(&json!({"name": "Renamed", "description": "someone edited this"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(subs.observe(&id, &spec).await.unwrap().unwrap().drift, ["displayName", "vobiz.description"]);
    subs.update(&id, &spec, &Credentials::default()).await.unwrap();
    let state = sim.state().await;
    assert_eq!(sub(&state, &id)["name"], "Drifty", "the provider holds the spec's name again");
    assert_eq!(sub(&state, &id)["description"], "[tenantline.io/key=default/contract/Drifty]", "and our marker alone");
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_the_marker_across_pages() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    // 150 others (two pages of 100, newest first) with the same name.
    for i in 0..150 {
        subs.create(&sub_account(P, &format!("other-{i}"))).await.unwrap();
    }
    let spec = sub_account(P, "Lost");
    sim.fault("vobiz", "POST", Some(SUBS), json!({"kind": "afterApply"}), 1).await;
    let err = subs.create(&spec).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let found = subs.find(&spec).await.unwrap().expect("the sub-account the lost create made");
    assert!(
        sub(&sim.state().await, &found)["description"]
            .as_str()
            .unwrap()
            .contains("[tenantline.io/key=default/contract/Lost]")
    );
    assert_eq!(items(&sim.state().await, "/vobiz/subAccounts").len(), 151);
    // The first-created one sits on the last page.
    let first = sub_account(P, "other-0");
    assert!(subs.find(&first).await.unwrap().is_some());
}

#[tokio::test]
async fn accounts_made_before_the_client_existed_are_found_from_one_listing() {
    let sim = Sim::start().await;
    let earlier = sim.clients(P).sub_accounts;
    for i in 0..120 {
        earlier.create(&sub_account(P, &format!("other-{i}"))).await.unwrap();
    }
    let old = earlier.create(&sub_account(P, "Old")).await.unwrap().id;
    let gone = earlier.create(&sub_account(P, "Gone")).await.unwrap().id;
    let list = || sim.calls("vobiz", "GET", SUBS);

    // A new client, as after an operator restart or in a rebuilt cluster.
    let subs = sim.clients(P).sub_accounts;
    assert_eq!(subs.find_made_earlier(&sub_account(P, "Old")).await.unwrap(), Some(old));
    let listed = list().await;
    assert_eq!(listed, 2, "two pages, once");
    assert_eq!(subs.find_made_earlier(&sub_account(P, "New-0")).await.unwrap(), None);
    let new = subs.create(&sub_account(P, "New-1")).await.unwrap().id;
    assert_eq!(subs.find_made_earlier(&sub_account(P, "New-1")).await.unwrap(), Some(new), "our own creates count");
    assert_eq!(list().await, listed, "no listing per lookup");
    // An account deleted since the listing is not handed out.
    earlier.delete(&gone, &sub_account(P, "Gone")).await.unwrap();
    assert_eq!(subs.find_made_earlier(&sub_account(P, "Gone")).await.unwrap(), None);
    // An older release's UID marker is recognised.
    let raw = sim
        .raw()
        .post(format!("{}/accounts/{PARENT}/sub-accounts/", sim.endpoint(P)))
        .header("X-Auth-ID", PARENT)
        .header("X-Auth-Token", DEV_VOBIZ_AUTH_TOKEN)
        .json(&json!({"name": "Legacy", "description": "Line [tenantline.io/uid=9f2-uid]"}))
        .send()
        .await
        .unwrap();
    let legacy = raw.json::<Value>().await.unwrap()["auth_credentials"]["auth_id"].as_str().unwrap().to_owned();
    let spec = provider::SubAccountSpec { legacy_key: Some("9f2-uid".into()), ..sub_account(P, "Legacy") };
    assert_eq!(subs.find(&spec).await.unwrap(), Some(legacy));
}

#[tokio::test]
async fn errors_are_classified() {
    let sim = Sim::start().await;
    let subs = sim.clients(P).sub_accounts;
    let spec = sub_account(P, "Errors");

    sim.fault("vobiz", "POST", Some(SUBS), json!({"kind": "status", "status": 503}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().class(), ErrorClass::Transient);
    sim.fault("vobiz", "POST", Some(SUBS), json!({"kind": "rateLimit", "retryAfter": 7}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().retry_after(), Some(Duration::from_secs(7)));
    sim.fault("vobiz", "POST", Some(SUBS), json!({"kind": "drop"}), 1).await;
    assert_eq!(subs.create(&spec).await.unwrap_err().class(), ErrorClass::Transient);

    let mut bad = spec.clone();
    bad.owner = Some(provider::Owner { phone: Some("12345".into()), ..Default::default() });
    let err = subs.create(&bad).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("phone"), "{err}");

    let wrong = provider::connect(bad_credentials(&sim, P)).unwrap().sub_accounts;
    let err = wrong.find(&spec).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(!format!("{err} {err:?}").contains(DEV_VOBIZ_AUTH_TOKEN));
    assert!(items(&sim.state().await, "/vobiz/subAccounts").is_empty());
}

#[tokio::test]
async fn numbers_are_bought_assigned_found_and_released() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Numbers")).await.unwrap().id;
    let numbers = clients.numbers.expect("Vobiz has numbers");
    let spec = NumberSpec {
        sub_account_id: account.clone(),
        search: Some(NumberSearch { country: "US".into(), area_code: Some("415".into()) }),
        ..Default::default()
    };
    let created = numbers.create(&spec).await.unwrap();
    assert!(created.id.starts_with("+1415"), "{}", created.id);
    let state = sim.state().await;
    let held = items(&state, "/vobiz/numbers").iter().find(|n| n["e164"] == created.id.as_str()).unwrap();
    assert_eq!(held["sub_account_id"], account.as_str());

    let seen = numbers.observe(&created.id, &spec).await.unwrap().unwrap();
    assert!(seen.drift.is_empty() && seen.number.as_deref() == Some(created.id.as_str()));
    assert_eq!(numbers.find(&spec).await.unwrap(), Some(created.id.clone()));
    let sibling = NumberSpec { claimed: vec![created.id.clone()], ..spec.clone() };
    assert_eq!(numbers.find(&sibling).await.unwrap(), None, "a number another resource holds is not found");

    // Unassigned behind our back: reported, and update assigns it again.
    let r = sim
        .raw()
        .delete(format!(
            "{}/account/{PARENT}/numbers/{}/assign-subaccount",
            sim.endpoint(P),
            created.id.replace('+', "%2B")
        ))
        .header("X-Auth-ID", PARENT)
        .header("X-Auth-Token", DEV_VOBIZ_AUTH_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(numbers.observe(&created.id, &spec).await.unwrap().unwrap().drift, ["subAccountRef"]);
    numbers.update(&created.id, &spec, &Credentials::default()).await.unwrap();
    let state = sim.state().await;
    let held = items(&state, "/vobiz/numbers").iter().find(|n| n["e164"] == created.id.as_str()).unwrap();
    assert_eq!(held["sub_account_id"], account.as_str(), "assigned to the sub-account again");

    numbers.delete(&created.id, &spec).await.unwrap();
    let state = sim.state().await;
    assert!(items(&state, "/vobiz/numbers").is_empty());
    assert!(items(&state, "/vobiz/inventory").iter().any(|n| n["e164"] == created.id.as_str()), "back in inventory");
    assert!(numbers.observe(&created.id, &spec).await.unwrap().is_none());
    numbers.delete(&created.id, &spec).await.expect("releasing a released number is done");

    let nowhere = NumberSpec {
        search: Some(NumberSearch { country: "US".into(), area_code: Some("999".into()) }),
        ..spec.clone()
    };
    assert_eq!(numbers.create(&nowhere).await.unwrap_err().class(), ErrorClass::Invalid);
}

const PURCHASE: &str = "/api/v1/Account/{auth_id}/numbers/purchase-from-inventory";
const ASSIGN: &str = "/api/v1/account/{auth_id}/numbers/{e164}/assign-subaccount";

/// A number for sub-account `account` searched by US area code (or any longer prefix), bought
/// for the resource `buyer`.
fn searched(account: &str, area: &str, buyer: &str) -> NumberSpec {
    NumberSpec {
        sub_account_id: account.to_owned(),
        search: Some(NumberSearch { country: "US".into(), area_code: Some(area.to_owned()) }),
        buyer: buyer.to_owned(),
        ..Default::default()
    }
}

/// Where `e164` is: `Some(sub-account id or "")` while the parent owns it.
fn holder(state: &Value, e164: &str) -> Option<String> {
    let n = items(state, "/vobiz/numbers").iter().find(|n| n["e164"] == e164)?;
    Some(n["sub_account_id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_lost_purchase_is_found_by_what_was_picked_even_after_a_restart_and_bought_once() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Lost number")).await.unwrap().id;
    let numbers = clients.numbers.unwrap();
    let named =
        NumberSpec { sub_account_id: account.clone(), number: Some("+14155550105".into()), ..Default::default() };
    assert_eq!(numbers.pick(&named).await.unwrap(), None, "a named number is not picked");
    let mut searched = searched(&account, "4155550107", "uid-searched");
    // The reconciler records the pick before the create.
    searched.picked = numbers.pick(&searched).await.unwrap();
    assert_eq!(searched.picked.as_deref(), Some("+14155550107"));

    for (spec, e164) in [(&named, "+14155550105"), (&searched, "+14155550107")] {
        sim.fault("vobiz", "POST", Some(PURCHASE), json!({"kind": "afterApply"}), 1).await;
        // The purchase went through but its answer was lost: an error to retry, and the lookup
        // before the next attempt finds the number, the parent's and not yet assigned.
        assert!(numbers.create(spec).await.unwrap_err().is_retryable());
        assert_eq!(holder(&sim.state().await, e164).as_deref(), Some(""));
        if spec.picked.is_some() {
            let other = NumberSpec { buyer: "uid-other".into(), ..spec.clone() };
            assert_eq!(numbers.find(&other).await.unwrap(), None, "picked by another resource");
            let unpicked = NumberSpec { picked: None, ..spec.clone() };
            assert_eq!(numbers.find(&unpicked).await.unwrap(), None, "the parent's own unassigned number");
            // A new process (new clients) knows the pick only from the record.
            let restarted = sim.clients(P).numbers.unwrap();
            assert_eq!(restarted.find(spec).await.unwrap().as_deref(), Some(e164));
        }
        assert_eq!(numbers.find(spec).await.unwrap().as_deref(), Some(e164));
        assert_eq!(numbers.observe(e164, spec).await.unwrap().unwrap().drift, ["subAccountRef"]);
        numbers.update(e164, spec, &Credentials::default()).await.unwrap();
        assert_eq!(holder(&sim.state().await, e164), Some(account.clone()));
    }
    assert_eq!(items(&sim.state().await, "/vobiz/numbers").len(), 2);
    assert_eq!(sim.calls("vobiz", "POST", PURCHASE).await, 2, "each bought once");
}

#[tokio::test]
async fn a_refused_purchase_never_takes_the_number_someone_else_bought() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Too late")).await.unwrap().id;
    let numbers = clients.numbers.unwrap();
    let mut spec = searched(&account, "4155550109", "uid-late");
    spec.picked = numbers.pick(&spec).await.unwrap();
    let e164 = "+14155550109";
    // Between the pick and the purchase, someone else buys the number and keeps it unassigned.
    buy_behind_our_back(&sim, e164).await;
    assert_eq!(numbers.create(&spec).await.unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(numbers.find(&spec).await.unwrap(), None, "refused: not ours, though picked and unassigned");
    assert_eq!(holder(&sim.state().await, e164).as_deref(), Some(""));
}

/// Buy `e164` from the parent's inventory behind the client's back, leaving it unassigned.
async fn buy_behind_our_back(sim: &Sim, e164: &str) {
    let r = sim
        .raw()
        .post(format!("{}/Account/{PARENT}/numbers/purchase-from-inventory", sim.endpoint(P)))
        .header("X-Auth-ID", PARENT)
        .header("X-Auth-Token", DEV_VOBIZ_AUTH_TOKEN)
        .json(&json!({"e164": e164}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn after_a_restart_the_recorded_pick_is_bought_again_and_a_late_purchase_of_it_is_ours() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let account = clients.sub_accounts.create(&sub_account(P, "Late")).await.unwrap().id;
    let mut spec = searched(&account, "415555011", "uid-late");
    spec.picked = clients.numbers.unwrap().pick(&spec).await.unwrap();
    let e164 = spec.picked.clone().unwrap();
    // The process dies with the purchase sent. The next one finds the number not bought yet and
    // picks the same one again, out of the ten that match.
    let numbers = sim.clients(P).numbers.unwrap();
    assert_eq!(numbers.find(&spec).await.unwrap(), None);
    assert_eq!(numbers.pick(&spec).await.unwrap().as_deref(), Some(e164.as_str()));
    // The old purchase lands first: the new one is refused, and the number is still found as ours.
    buy_behind_our_back(&sim, &e164).await;
    assert_eq!(numbers.create(&spec).await.unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(numbers.find(&spec).await.unwrap().as_deref(), Some(e164.as_str()));
    numbers.update(&e164, &spec, &Credentials::default()).await.unwrap();
    assert_eq!(holder(&sim.state().await, &e164), Some(account));
    assert_eq!(items(&sim.state().await, "/vobiz/numbers").len(), 1, "bought once");
}

#[tokio::test]
async fn two_resources_racing_for_the_last_matching_number_never_both_get_it() {
    let sim = Sim::start().await;
    let clients = sim.clients(P);
    let numbers = clients.numbers.unwrap();
    let mut specs = Vec::new();
    for name in ["Racer A", "Racer B"] {
        let account = clients.sub_accounts.create(&sub_account(P, name)).await.unwrap().id;
        specs.push(searched(&account, "4155550105", &format!("uid-{name}")));
    }
    let (a, b) = (&specs[0], &specs[1]);
    // B picks the one matching number, and its purchase hangs until A has tried, then fails
    // without reaching the provider. A tries once B's purchase has arrived (so after B's pick);
    // were A to buy the number, its assignment fails, so that the number sits with the parent,
    // unassigned, when B's purchase fails.
    sim.fault("vobiz", "POST", Some(PURCHASE), json!({"kind": "hang"}), 1).await;
    sim.fault("vobiz", "POST", Some(ASSIGN), json!({"kind": "status", "status": 503}), 1).await;
    let slow = numbers.create(b);
    let fast = async {
        sim.wait_for_calls("vobiz", "POST", PURCHASE, 1).await;
        let a_first = numbers.create(a).await;
        sim.clear_faults().await; // B's purchase is let go: closed, never applied
        a_first
    };
    let (b_first, a_first) = tokio::join!(slow, fast);
    let e164 = "+14155550105";
    assert!(b_first.is_err() && a_first.as_ref().is_err_and(|e| e.is_retryable()), "{a_first:?}");
    sim.clear_faults().await;

    // Retried as the reconciler does, look up first: B gets the number, A is told none is left.
    assert_eq!(numbers.find(b).await.unwrap(), None);
    assert_eq!(numbers.create(b).await.unwrap().id, e164);
    assert_eq!(numbers.find(a).await.unwrap(), None);
    assert_eq!(numbers.create(a).await.unwrap_err().class(), ErrorClass::Invalid);
    assert_eq!(holder(&sim.state().await, e164), Some(b.sub_account_id.clone()));
    assert_eq!(items(&sim.state().await, "/vobiz/numbers").len(), 1);
}
