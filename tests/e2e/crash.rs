//! Crash safety: the operator is SIGKILLed again and again while 50 SubAccounts are created and
//! the providers lose create responses; each kill is aimed at a create in flight (marked pending,
//! its id not yet persisted). In the end every account exists exactly once and every Secret holds
//! credentials the provider accepts. Likewise for numbers picked from a search and bought.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, SubAccount};

use crate::fleet::is_ready;
use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

const PER_PROVIDER: usize = 10;
const KILLS: usize = 12;
/// The annotations of the create protocol: a create is marked pending, then made, then its id is
/// persisted.
const CREATE_PENDING: &str = "tenantline.io/create-pending";
const EXTERNAL_ID: &str = "tenantline.io/external-id";
/// The number picked from a search, recorded before it is bought.
const NUMBER_PICKED: &str = "tenantline.io/number-picked";

/// `(provider, create route, accounts in /_sim/state, the field holding the display name)`.
const PROVIDERS: [(&str, &str, &str, &str); 5] = [
    ("recoverbiz", "/v1/accounts", "/recoverbiz/accounts", "name"),
    ("vobiz", "/api/v1/accounts/{auth_id}/sub-accounts/", "/vobiz/subAccounts", "name"),
    ("agentphone", "/v1/sub-accounts", "/agentphone/subAccounts", "name"),
    ("vobizPartner", "/api/v1/partner/accounts", "/vobizPartner/accounts", "name"),
    ("yardstik", "/sub_accounts", "/yardstik/subAccounts", "account_name"),
];

fn extra(config: &str, i: usize) -> String {
    match config {
        "vobiz-partner" => {
            format!("  owner: {{email: crash{i}@acme.example, phone: \"+14155550100\"}}\n  address: {{country: US}}\n")
        }
        "yardstik" => crate::safety::yardstik_owner(),
        _ => String::new(),
    }
}

/// SubAccounts whose create was marked pending at or after `since` (by the operator running
/// since then) and whose id is not persisted.
fn creating(list: &[SubAccount], since: Timestamp) -> Vec<String> {
    let marked = |sa: &SubAccount| {
        let at = sa.annotations().get(CREATE_PENDING)?.parse::<Timestamp>().ok()?;
        (at >= since && !sa.annotations().contains_key(EXTERNAL_ID)).then(|| sa.name_any())
    };
    list.iter().filter_map(marked).collect()
}

/// The display names of the accounts each provider holds.
fn provider_names(state: &Value) -> Vec<String> {
    PROVIDERS
        .iter()
        .flat_map(|(_, _, pointer, field)| {
            let items = state.pointer(pointer).and_then(Value::as_array).cloned().unwrap_or_default();
            items.into_iter().filter_map(|i| i[*field].as_str().map(str::to_owned)).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn fifty_sub_accounts_survive_sigkills_and_lost_responses_without_duplicates() {
    let mut env = Env::start("e2e-crash").await;
    let configs = ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"];
    for config in configs {
        fast_provider(&env, config);
    }
    // Every provider loses some create responses after having created the account, and takes
    // its time over the others, so that kills find creates in flight.
    for (provider, route, _, _) in PROVIDERS {
        env.sim.fault(provider, "POST", Some(route), json!({"kind": "afterApply"}), json!({"probability": 0.3})).await;
        env.sim.fault(provider, "POST", Some(route), json!({"kind": "latency", "ms": 400}), json!({})).await;
    }
    let mut names = Vec::new();
    for config in configs {
        for i in 0..PER_PROVIDER {
            let name = format!("{config}-{i}");
            env.apply_ok(&sub_account(&name, config, &extra(config, i)));
            names.push(name);
        }
    }

    // Kill whenever the running operator has marked a create and not yet persisted its id. While
    // it is down nothing moves, so what the API server and the provider hold then is what the
    // kill interrupted: a create this life marked whose account the provider does not have was
    // cut between mark and create (a lost response always leaves the account behind).
    let api = env.api::<SubAccount>();
    let (mut kills, mut before_create, mut after_create) = (0, Vec::new(), Vec::new());
    let mut life_started = env.operator.started_at;
    while kills < KILLS {
        let in_flight = eventually(Duration::from_secs(30), || async {
            let list = api.list(&ListParams::default()).await.ok()?.items;
            (!creating(&list, life_started).is_empty()).then_some(())
        })
        .await;
        if in_flight.is_none() {
            break;
        }
        env.operator.kill();
        kills += 1;
        let list = api.list(&ListParams::default()).await.unwrap().items;
        let made = provider_names(&env.sim.state().await);
        for name in creating(&list, life_started) {
            if made.contains(&name) { after_create.push(name) } else { before_create.push(name) }
        }
        env.operator.restart();
        life_started = env.operator.started_at;
    }
    eprintln!(
        "crash: {kills} kills; creates cut between mark and create: {before_create:?}; \
         after the create, before the id was persisted (or whose response was lost): {after_create:?}"
    );
    assert!(!before_create.is_empty(), "no kill landed between a create's mark and the create ({kills} kills)");
    env.sim.clear_faults().await;

    let all_ready = eventually(Duration::from_secs(240), || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        let ready = list
            .iter()
            .filter(|sa| {
                sa.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        (ready == names.len()).then_some(())
    })
    .await;
    if all_ready.is_none() {
        let list = api.list(&ListParams::default()).await.unwrap();
        let not_ready: Vec<_> = list
            .iter()
            .filter(|sa| {
                !sa.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .map(|sa| (sa.metadata.name.clone(), sa.status.as_ref().map(|s| s.conditions.clone())))
            .collect();
        panic!("not Ready after {kills} kills: {not_ready:?}\n{}", env.operator.log_tail(40));
    }

    // Exactly one provider account per SubAccount.
    let state = env.sim.state().await;
    let count = |p: &str| state.pointer(p).and_then(Value::as_array).map_or(0, Vec::len);
    let counts = BTreeMap::from([
        ("recoverbiz", count("/recoverbiz/accounts")),
        ("vobiz", count("/vobiz/subAccounts")),
        ("agentphone", count("/agentphone/subAccounts")),
        ("vobizPartner", count("/vobizPartner/accounts")),
        ("yardstik", count("/yardstik/subAccounts")),
    ]);
    assert!(counts.values().all(|n| *n == PER_PROVIDER), "duplicates or losses: {counts:?}");
    let made = provider_names(&state);
    for name in before_create.iter().chain(&after_create) {
        let accounts = made.iter().filter(|n| *n == name).count();
        assert_eq!(accounts, 1, "{name}, whose create a kill interrupted, has {accounts} accounts");
    }

    // Every Secret holds what the provider issued (and so would accept).
    let mut issued = Vec::new();
    for sa in api.list(&ListParams::default()).await.unwrap() {
        let name = sa.metadata.name.clone().unwrap();
        let id = sa.status.unwrap().managed.external_id.unwrap();
        let secret = env.secret(&format!("{name}-credentials")).await.unwrap_or_else(|| panic!("{name}: no Secret"));
        let data: BTreeMap<String, String> =
            secret.data.unwrap().into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect();
        assert_eq!(data["accountId"], id);
        let check = |pointer: &str, key: &str, field: &str, secret_key: &str| {
            let item = state.pointer(pointer).unwrap().as_array().unwrap().iter().find(|i| i[key] == id.as_str());
            let item = item.unwrap_or_else(|| panic!("{name}: {id} not at the provider"));
            assert_eq!(
                item[field].as_str().unwrap(),
                data[secret_key],
                "{name}: {secret_key} differs from the provider's"
            );
        };
        if name.starts_with("vobiz-partner") {
            check("/vobizPartner/accounts", "auth_id", "auth_token", "authToken");
            issued.push(data["authToken"].clone());
        } else if name.starts_with("vobiz") {
            check("/vobiz/subAccounts", "auth_id", "auth_token", "authToken");
            issued.push(data["authToken"].clone());
        } else if name.starts_with("yardstik") {
            check("/yardstik/subAccounts", "id", "api_token", "apiToken");
            issued.push(data["apiToken"].clone());
        } else if name.starts_with("agentphone") {
            check("/agentphone/subAccounts", "id", "id", "subAccountId");
        }
    }
    env.assert_no_leak(&issued).await;
    env.finish().await;
}

/// `(PhoneNumber, picked number)` of the PhoneNumbers whose picked number is not yet persisted as
/// their id: the purchase is in flight, or its answer was lost.
fn buying(list: &[PhoneNumber]) -> Vec<(String, String)> {
    let picked = |pn: &PhoneNumber| {
        let number = pn.annotations().get(NUMBER_PICKED)?;
        (!pn.annotations().contains_key(EXTERNAL_ID)).then(|| (pn.name_any(), number.clone()))
    };
    list.iter().filter_map(picked).collect()
}

#[tokio::test]
async fn searched_numbers_survive_sigkills_after_lost_purchases_and_none_is_bought_twice() {
    const NUMBERS: usize = 8;
    const KILLS: usize = 3;
    let mut env = Env::start("e2e-crash-numbers").await;
    fast_provider(&env, "vobiz");
    env.apply_ok(&sub_account("vobiz-0", "vobiz", ""));
    env.wait_ready::<SubAccount>("vobiz-0").await;
    // Half the purchases go through with their answer lost, all of them slowly.
    let purchase = "/api/v1/Account/{auth_id}/numbers/purchase-from-inventory";
    env.sim.fault("vobiz", "POST", Some(purchase), json!({"kind": "afterApply"}), json!({"probability": 0.5})).await;
    env.sim.fault("vobiz", "POST", Some(purchase), json!({"kind": "latency", "ms": 400}), json!({})).await;
    for i in 0..NUMBERS {
        env.apply_ok(&format!(
            "apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {{name: number-{i}}}\nspec:\n  subAccountRef: {{name: vobiz-0}}\n  search: {{country: US, areaCode: \"415\"}}\n"
        ));
    }

    // Kill whenever a PhoneNumber's picked number was bought but is not yet persisted as its id
    // (the purchase's answer was lost: the number is the parent's and unassigned), once per pick.
    let api = env.api::<PhoneNumber>();
    let mut kills = Vec::new();
    while kills.len() < KILLS {
        let next = eventually(Duration::from_secs(30), || async {
            let list = api.list(&ListParams::default()).await.ok()?.items;
            let state = env.sim.state().await;
            let numbers = state.pointer("/vobiz/numbers").and_then(Value::as_array).cloned().unwrap_or_default();
            let bought = |e164: &str| numbers.iter().any(|n| n["e164"] == e164 && n["sub_account_id"].is_null());
            buying(&list).into_iter().find(|p| !kills.contains(p) && bought(&p.1))
        })
        .await;
        let Some(pick) = next else { break };
        env.operator.kill();
        kills.push(pick);
        // A request the dead process sent (a purchase slowed down at the provider, an annotation
        // on its way) can still land. A replacement starts later than that: a pod restart takes
        // seconds, and a new leader first waits out the Lease. Were it quicker, the worst case is
        // one spare number, as two PhoneNumbers recording one pick never take it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        env.operator.restart();
    }
    eprintln!("crash: {} kills, each after a purchase went through and before its id was kept: {kills:?}", kills.len());
    assert!(kills.len() >= 2, "too few kills landed after a purchase went through and before its id was kept");
    env.sim.clear_faults().await;

    let ready = eventually(Duration::from_secs(180), || async {
        let list = api.list(&ListParams::default()).await.ok()?.items;
        let ready = list.iter().filter(|pn| is_ready(&serde_json::to_value(pn).unwrap())).count();
        (ready == NUMBERS).then_some(list)
    })
    .await;
    let Some(list) = ready else { panic!("not all PhoneNumbers Ready\n{}", env.operator.log_tail(40)) };

    // Each number bought once: the parent holds exactly one per PhoneNumber, each assigned to the
    // sub-account and reported by exactly one PhoneNumber.
    let state = env.sim.state().await;
    let numbers = state.pointer("/vobiz/numbers").and_then(Value::as_array).cloned().unwrap_or_default();
    let held: Vec<(&str, &str)> = numbers
        .iter()
        .filter_map(|n| Some((n["e164"].as_str()?, n["sub_account_id"].as_str().unwrap_or("unassigned"))))
        .collect();
    let records: Vec<_> = list
        .iter()
        .map(|pn| {
            let a = pn.annotations();
            (
                pn.name_any(),
                a.get(NUMBER_PICKED).cloned(),
                a.get(EXTERNAL_ID).cloned(),
                pn.status.as_ref().and_then(|s| s.number.clone()),
            )
        })
        .collect();
    eprintln!("crash: the parent holds {held:?}; (PhoneNumber, picked, id, status number): {records:?}");
    assert_eq!(held.len(), NUMBERS, "a number bought twice, or two PhoneNumbers hold one");
    let reported: std::collections::BTreeSet<String> =
        list.iter().filter_map(|pn| pn.status.as_ref()?.number.clone()).collect();
    assert_eq!(reported.len(), NUMBERS, "two PhoneNumbers report one number: {reported:?}");
    for n in &numbers {
        assert!(reported.contains(n["e164"].as_str().unwrap()), "{} is bought but no PhoneNumber has it", n["e164"]);
        assert!(!n["sub_account_id"].is_null(), "{} is bought but not assigned", n["e164"]);
    }
    env.finish().await;
}
