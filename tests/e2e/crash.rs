//! Crash safety: the operator is SIGKILLed again and again while 50 SubAccounts are created and
//! the providers lose create responses; in the end every account exists exactly once and every
//! Secret holds credentials the provider accepts.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;
use serde_json::{Value, json};
use tenantline::api::SubAccount;

use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

const PER_PROVIDER: usize = 10;

fn extra(config: &str, i: usize) -> String {
    match config {
        "vobiz-partner" => format!("  owner: {{email: crash{i}@acme.example, phone: \"+14155550100\"}}\n  address: {{country: US}}\n"),
        "yardstik" => "  owner: {email: o@acme.example, firstName: Ana, lastName: Diaz}\n  address: {line1: 1 Main St, city: Austin, state: TX, postalCode: \"78701\", country: US}\n  yardstik: {permissiblePurposeIds: [\"3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c\"]}\n".to_owned(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn fifty_sub_accounts_survive_sigkills_and_lost_responses_without_duplicates() {
    let mut env = Env::start("e2e-crash").await;
    let configs = ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"];
    for config in configs {
        fast_provider(&env, config);
    }
    // Every provider loses some create responses after having created the account.
    for (provider, route) in [
        ("recoverbiz", "/v1/accounts"),
        ("vobiz", "/api/v1/accounts/{auth_id}/sub-accounts/"),
        ("agentphone", "/v1/sub-accounts"),
        ("vobizPartner", "/api/v1/partner/accounts"),
        ("yardstik", "/sub_accounts"),
    ] {
        env.sim
            .fault(provider, "POST", json!({"kind": "afterApply"}), json!({"route": route, "probability": 0.3}))
            .await;
    }
    let mut names = Vec::new();
    for config in configs {
        for i in 0..PER_PROVIDER {
            let name = format!("{config}-{i}");
            env.apply_ok(&sub_account(&name, config, &extra(config, i)));
            names.push(name);
        }
    }

    // Kill at irregular moments while the creates are in flight.
    let mut kills = 0;
    for delay_ms in [700u64, 1900, 400, 2600, 1100, 300, 3100, 1500, 800, 2200, 600, 1700] {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        env.operator.restart();
        kills += 1;
    }
    assert!(kills >= 10);
    env.sim.clear_faults().await;

    let api = env.api::<SubAccount>();
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
