//! Upgrading the operator in place: the previous release, built from git at a pinned commit by
//! hack/previous-operator.sh (`make previous-operator`, which `make test` runs), reconciles a set
//! of objects; today's binary then takes over the same objects. Nothing at the providers is made
//! again or replaced, every credentials Secret keeps what it delivered, and everything ends
//! Ready.
//!
//! TENANTLINE_E2E_PREVIOUS_OPERATOR names another binary to upgrade from. Without one built, the
//! tests fail under `make e2e` (TENANTLINE_E2E_SKIP=upgrade skips them on purpose).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams};
use serde_json::Value;
use tenantline::api::{PhoneNumber, SubAccount, TeamMember};

use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::safety::{condition, data, items, wait_for};
use crate::support::{self, eventually};

/// The previous release's binary: TENANTLINE_E2E_PREVIOUS_OPERATOR, else where
/// hack/previous-operator.sh builds it; `None` when the test is to be skipped
/// ([`support::cannot_run`]).
fn previous_operator() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TENANTLINE_E2E_PREVIOUS_OPERATOR") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "TENANTLINE_E2E_PREVIOUS_OPERATOR names {}, which is not a file", path.display());
        return Some(path);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/previous-operator.sh");
    let out = Command::new(script).arg("--path").output().expect("run hack/previous-operator.sh");
    assert!(out.status.success(), "hack/previous-operator.sh --path: {}", String::from_utf8_lossy(&out.stderr));
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    if path.is_file() {
        // The pinned release's flags differ from today's (it predates --allow-insecure-endpoints):
        // a binary that answers exactly as today's is not it, and the upgrade would be from and to
        // the same code.
        let help = |binary: &std::ffi::OsStr| {
            Command::new(binary).args(["run", "--help"]).output().expect("run an operator binary").stdout
        };
        assert_ne!(
            help(path.as_os_str()),
            help(env!("CARGO_BIN_EXE_tenantline").as_ref()),
            "{} answers `run --help` exactly as today's operator: it is not the previous release (rm -r .cache/previous; make previous-operator)",
            path.display()
        );
        return Some(path);
    }
    support::cannot_run(
        "upgrade",
        &format!(
            "the previous release's operator is not built ({} is missing): make previous-operator builds it",
            path.display()
        ),
    );
    None
}

/// `tenantline_reconcile_duration_seconds_count` of `kind` on the operator's /metrics: reconciles
/// finished by that process.
async fn reconciles_finished(env: &Env, kind: &str) -> f64 {
    let url = format!("http://{}/metrics", env.operator.metrics);
    let Ok(response) = reqwest::get(url).await else { return 0.0 };
    let text = response.text().await.unwrap_or_default();
    let prefix = format!("tenantline_reconcile_duration_seconds_count{{kind=\"{kind}\"}}");
    text.lines().filter_map(|l| l.strip_prefix(&prefix)).filter_map(|v| v.trim().parse::<f64>().ok()).sum()
}

fn names<K: kube::Resource + Clone>(list: kube::api::ObjectList<K>) -> Vec<String> {
    list.into_iter().map(|o| o.meta().name.clone().unwrap_or_default()).collect()
}

/// What each provider holds, by the ids of its objects: accounts, numbers, members.
fn held(state: &Value) -> BTreeMap<&'static str, Vec<String>> {
    let ids = |pointer: &str, keys: &[&str]| {
        let mut ids: Vec<String> = state
            .pointer(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|o| keys.iter().find_map(|k| o[*k].as_str()).unwrap_or_default().to_owned())
            .collect();
        ids.sort();
        ids
    };
    BTreeMap::from([
        ("recoverbiz accounts", ids("/recoverbiz/accounts", &["id"])),
        ("recoverbiz members", ids("/recoverbiz/members", &["id"])),
        ("vobiz accounts", ids("/vobiz/subAccounts", &["auth_id"])),
        ("vobiz numbers", ids("/vobiz/numbers", &["number", "e164"])),
        ("agentphone accounts", ids("/agentphone/subAccounts", &["id"])),
        ("agentphone numbers", ids("/agentphone/numbers", &["phoneNumber", "id"])),
        ("vobiz partner accounts", ids("/vobizPartner/accounts", &["auth_id"])),
        ("yardstik accounts", ids("/yardstik/subAccounts", &["id"])),
    ])
}

/// Every provider's example (a SubAccount each, a TeamMember, PhoneNumbers) made by the previous
/// release, then taken over by today's: the same provider objects, the same credentials, Ready.
#[tokio::test]
async fn the_current_operator_takes_over_what_the_previous_release_made_without_making_anything_again() {
    let Some(previous) = previous_operator() else { return };
    let mut env = Env::start("e2e-upgrade-all").await;
    env.operator.replace_with(previous);
    const EXAMPLES: [&str; 5] = ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"];
    for dir in EXAMPLES {
        env.apply_example(dir);
    }
    let sub_accounts = names(env.api::<SubAccount>().list(&ListParams::default()).await.unwrap());
    let members = names(env.api::<TeamMember>().list(&ListParams::default()).await.unwrap());
    let numbers = names(env.api::<PhoneNumber>().list(&ListParams::default()).await.unwrap());
    assert_eq!(
        (sub_accounts.len(), members.len(), numbers.len()),
        (5, 1, 2),
        "the examples changed: {sub_accounts:?} {members:?} {numbers:?}"
    );
    let mut ids = BTreeMap::new();
    for name in &sub_accounts {
        let sa = env.wait_ready::<SubAccount>(name).await;
        ids.insert(name.clone(), sa.status.unwrap().managed.external_id.expect("an id"));
    }
    for name in &members {
        env.wait_ready::<TeamMember>(name).await;
    }
    for name in &numbers {
        env.wait_ready::<PhoneNumber>(name).await;
    }
    let mut secrets = BTreeMap::new();
    for name in &sub_accounts {
        let secret = env.secret(&format!("{name}-credentials")).await.expect("the previous release delivered a Secret");
        secrets.insert(name.clone(), data(&secret));
    }
    let before = env.sim.state().await;
    let previous_log = env.operator.log();

    // The upgrade: the old process stops, today's starts over the same objects.
    env.sim.clear_calls().await;
    env.operator.replace_with(env!("CARGO_BIN_EXE_tenantline").into());
    // Every object reconciled by the new process at least once (its start reconciles them all).
    let expected = [("SubAccount", sub_accounts.len()), ("TeamMember", members.len()), ("PhoneNumber", numbers.len())];
    let reconciled = eventually(Duration::from_secs(90), || async {
        for (kind, n) in expected {
            if reconciles_finished(&env, kind).await < n as f64 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(reconciled.is_some(), "today's operator never reconciled everything\n{}", env.operator.log_tail(40));

    for name in &sub_accounts {
        let sa = env.wait_ready::<SubAccount>(name).await;
        assert_eq!(sa.status.unwrap().managed.external_id.as_ref(), Some(&ids[name]), "{name}'s account was replaced");
        let now = data(&env.secret(&format!("{name}-credentials")).await.expect("the Secret stays"));
        for (key, value) in &secrets[name] {
            assert_eq!(now.get(key), Some(value), "{name}-credentials: {key} changed in the upgrade");
        }
    }
    for name in &members {
        env.wait_ready::<TeamMember>(name).await;
    }
    for name in &numbers {
        env.wait_ready::<PhoneNumber>(name).await;
    }
    let after = env.sim.state().await;
    assert_eq!(held(&after), held(&before), "the provider objects changed in the upgrade");
    for (what, ids) in &held(&before) {
        assert!(!ids.is_empty(), "{what}: the previous release made none");
    }
    let calls = env.sim.control().calls().await;
    let creates = calls.matching(|c| c.method == "POST" && !c.route.contains("search"));
    assert_eq!(creates, 0, "today's operator created something after the upgrade: {:?}", calls.calls);
    assert!(!previous_log.is_empty(), "the previous release ran");
    env.finish().await;
}

/// An account the previous release made and delivered is never replaced after the upgrade,
/// whether its Secret goes while no operator runs (today's first sight of it is without a Secret)
/// or after today's has seen it: both end Stalled, CredentialsLost, with the same account.
#[tokio::test]
async fn accounts_delivered_before_an_upgrade_are_never_replaced() {
    let Some(previous) = previous_operator() else { return };
    let mut env = Env::start("e2e-upgrade").await;
    fast_provider(&env, "vobiz");
    env.operator.replace_with(previous);
    env.apply_ok(&sub_account("early", "vobiz", ""));
    env.apply_ok(&sub_account("late", "vobiz", ""));
    let early = env.wait_ready::<SubAccount>("early").await.status.unwrap().managed.external_id.unwrap();
    let late = env.wait_ready::<SubAccount>("late").await.status.unwrap().managed.external_id.unwrap();

    // "early" loses its Secret while no operator runs; "late" after the new one has seen it.
    env.operator.kill();
    env.api::<Secret>().delete("early-credentials", &DeleteParams::default()).await.unwrap();
    env.operator.replace_with(env!("CARGO_BIN_EXE_tenantline").into());
    wait_for(&env, "late", "recorded as delivered", |sa| {
        sa.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("tenantline.io/credentials-delivered"))
    })
    .await;
    env.api::<Secret>().delete("late-credentials", &DeleteParams::default()).await.unwrap();
    for (name, id) in [("early", &early), ("late", &late)] {
        let sa = env.wait_condition::<SubAccount>(name, "Stalled", "True", Duration::from_secs(60)).await;
        assert_eq!(condition(&sa, "Ready").reason, "CredentialsLost");
        assert_eq!(sa.status.unwrap().external_id.as_ref(), Some(id));
    }
    let state = env.sim.state().await;
    let mut held: Vec<&str> =
        items(&state, "/vobiz/subAccounts").iter().filter_map(|s| s["auth_id"].as_str()).collect();
    held.sort();
    let mut before = vec![early.as_str(), late.as_str()];
    before.sort();
    assert_eq!(held, before, "an account delivered before the upgrade was replaced");
    env.finish().await;
}
