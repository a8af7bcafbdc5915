//! Chaos: every route of all five providers fails 20% of the time, in every way a provider
//! fails, while 200 SubAccounts with their TeamMembers and PhoneNumbers are created. The figures
//! go to stderr (`cargo test --test e2e chaos -- --nocapture`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, Resource};
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, ProviderConfig, SubAccount, TeamMember};
use tenantline_sim::seed::{
    DEV_AGENTPHONE_KEY, DEV_PARTNER_AUTH_ID, DEV_PARTNER_AUTH_TOKEN, DEV_RECOVERBIZ_KEY, DEV_VOBIZ_AUTH_ID,
    DEV_VOBIZ_AUTH_TOKEN, DEV_YARDSTIK_KEY,
};

use crate::harness::Env;
use crate::support::eventually;

/// SubAccounts per provider (AgentPhone: split over two master keys, 25 is its limit per key).
const PER_PROVIDER: usize = 40;
const RATE: u64 = 10;
const BURST: u64 = 5;
const MAX_BACKOFF_SECONDS: u64 = 10;
/// Calls per second the simulator may see above the bucket's rate + burst: half a second's worth,
/// for requests that took their token on time but arrived late (see below).
const ARRIVAL_JITTER: u64 = RATE / 2;
/// Each fault kind hits this share of calls; five kinds make 1 - 0.956^5 ≈ 20%.
const PER_KIND: f64 = 0.044;

/// `(config, provider, endpoint path, Secret, Secret data)`.
type Config = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

const CONFIGS: [Config; 6] = [
    ("recoverbiz", "RecoverBiz", "/recoverbiz/v1", "recoverbiz-partner", &[("partnerKey", DEV_RECOVERBIZ_KEY)]),
    (
        "vobiz",
        "Vobiz",
        "/vobiz/api/v1",
        "vobiz-parent",
        &[("authId", DEV_VOBIZ_AUTH_ID), ("authToken", DEV_VOBIZ_AUTH_TOKEN)],
    ),
    ("agentphone", "AgentPhone", "/agentphone", "agentphone-master", &[("apiKey", DEV_AGENTPHONE_KEY)]),
    ("agentphone-2", "AgentPhone", "/agentphone", "agentphone-master-2", &[("apiKey", SECOND_AGENTPHONE_KEY)]),
    (
        "vobiz-partner",
        "VobizPartner",
        "/vobiz-partner/api/v1/partner",
        "vobiz-partner",
        &[("authId", DEV_PARTNER_AUTH_ID), ("authToken", DEV_PARTNER_AUTH_TOKEN)],
    ),
    ("yardstik", "Yardstik", "/yardstik", "yardstik-platform", &[("apiKey", DEV_YARDSTIK_KEY)]),
];

/// A second AgentPhone master key, seeded by the test: AgentPhone allows 25 sub-accounts per key.
const SECOND_AGENTPHONE_KEY: &str = "sk_live_sim_agentphone_chaos_2";

fn config_yaml(env: &Env, (name, provider, path, secret, data): Config) -> String {
    let data: String = data.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {secret}}}\nstringData:\n{data}---\n\
         apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {{name: {name}}}\nspec:\n  \
         provider: {provider}\n  endpoint: http://{}{path}\n  credentialsSecretRef: {{name: {secret}}}\n  \
         rateLimit: {{requestsPerSecond: {RATE}, burst: {BURST}}}\n  pollInterval: 30s\n",
        env.sim.addr
    )
}

/// The SubAccount `i` of `config`, with its TeamMember or PhoneNumber where the provider has them.
fn resources(config: &str, i: usize) -> String {
    let name = format!("{config}-{i}");
    let spec = match config {
        "vobiz-partner" => {
            format!("  owner: {{email: chaos{i}@acme.example, phone: \"+14155550100\"}}\n  address: {{country: US}}\n")
        }
        "yardstik" => crate::safety::yardstik_owner(),
        _ => String::new(),
    };
    let mut yaml = format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: {name}}}\nspec:\n  providerConfigRef: {{name: {config}}}\n  displayName: {name}\n  deletionPolicy: Orphan\n{spec}"
    );
    match config {
        "recoverbiz" => yaml.push_str(&format!(
            "---\napiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {{name: {name}-tm}}\nspec:\n  subAccountRef: {{name: {name}}}\n  email: member{i}@acme.example\n  name: Member {i}\n  role: Member\n  deletionPolicy: Orphan\n"
        )),
        "vobiz" | "agentphone" | "agentphone-2" => yaml.push_str(&format!(
            "---\napiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {{name: {name}-pn}}\nspec:\n  subAccountRef: {{name: {name}}}\n  search: {{country: US, areaCode: \"415\"}}\n  deletionPolicy: Retain\n"
        )),
        _ => {}
    }
    yaml
}

fn is_ready(v: &Value) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

async fn ready_count<K>(api: &Api<K>) -> (usize, usize)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + serde::Serialize,
{
    let list = api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    let ready = list.iter().filter(|o| is_ready(&serde_json::to_value(o).unwrap())).count();
    (ready, list.len())
}

/// The largest `retry_in_ms` the operator logged for a failed reconcile, and how many failed.
fn backoffs(log: &str) -> (u64, usize) {
    let delays: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("reconcile failed"))
        .filter_map(|l| {
            let rest = strip_colours(l.split("retry_in_ms").nth(1)?);
            rest.strip_prefix('=')?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect();
    (delays.iter().copied().max().unwrap_or(0), delays.len())
}

/// `s` without ANSI colour sequences (`ESC [ … m`), as the text log writes them.
fn strip_colours(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn two_hundred_sub_accounts_end_ready_and_unique_under_twenty_percent_provider_faults() {
    let env = Env::start_with("e2e-chaos", &["--max-backoff-seconds", &MAX_BACKOFF_SECONDS.to_string()]).await;
    // Enough Vobiz numbers in 415, and a second AgentPhone master key (25 sub-accounts per key).
    env.sim
        .seed(json!({
            "vobiz": {"accounts": [{"authId": DEV_VOBIZ_AUTH_ID, "authToken": DEV_VOBIZ_AUTH_TOKEN,
                "inventory": (0..PER_PROVIDER).map(|n| format!("+1415555{:04}", 3000 + n)).collect::<Vec<_>>()}]},
            "agentphone": {"apiKeys": [SECOND_AGENTPHONE_KEY]},
        }))
        .await;
    for c in CONFIGS {
        env.apply_ok(&config_yaml(&env, c));
    }
    let faults = [
        json!({"kind": "status", "status": 503}),
        json!({"kind": "rateLimit", "retryAfter": 1}),
        json!({"kind": "drop"}),
        json!({"kind": "hang", "ms": 5000}), // the operator's timeout is 3 s
        json!({"kind": "afterApply"}),
    ];
    for provider in ["recoverbiz", "vobiz", "agentphone", "vobizPartner", "yardstik"] {
        for fault in &faults {
            let rule = json!({"provider": provider, "fault": fault, "probability": PER_KIND});
            let r = env.sim.http().post(env.sim.url("/_sim/faults")).json(&rule).send().await.unwrap();
            assert!(r.status().is_success());
        }
    }

    let started = Instant::now();
    let mut per_config: Vec<(&str, usize)> = vec![("recoverbiz", PER_PROVIDER), ("vobiz", PER_PROVIDER)];
    per_config.extend([("agentphone", PER_PROVIDER / 2), ("agentphone-2", PER_PROVIDER / 2)]);
    per_config.extend([("vobiz-partner", PER_PROVIDER), ("yardstik", PER_PROVIDER)]);
    let all: String =
        per_config.iter().flat_map(|(c, n)| (0..*n).map(|i| resources(c, i))).collect::<Vec<_>>().join("---\n");
    env.apply_ok(&all);

    let (subs, members, numbers) = (env.api::<SubAccount>(), env.api::<TeamMember>(), env.api::<PhoneNumber>());
    let expected = (5 * PER_PROVIDER, PER_PROVIDER, 2 * PER_PROVIDER);
    let done = eventually(Duration::from_secs(420), || async {
        let got = (ready_count(&subs).await.0, ready_count(&members).await.0, ready_count(&numbers).await.0);
        (got == expected).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    let ready = (ready_count(&subs).await, ready_count(&members).await, ready_count(&numbers).await);
    eprintln!(
        "chaos: all Ready after {elapsed:?}: SubAccounts {:?}, TeamMembers {:?}, PhoneNumbers {:?} (ready, total)",
        ready.0, ready.1, ready.2
    );
    if done.is_none() {
        let not_ready: Vec<_> = subs
            .list(&ListParams::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|s| !is_ready(&serde_json::to_value(s).unwrap()))
            .map(|s| (s.metadata.name.clone(), s.status.map(|s| s.managed.common.conditions)))
            .take(5)
            .collect();
        panic!("not everything Ready after {elapsed:?}: {ready:?}; e.g. {not_ready:?}\n{}", env.operator.log_tail(40));
    }
    // The figures of the faulty run, before the faults go.
    let rate = env.sim.rate().await;
    let (max_backoff_ms, failed_reconciles) = backoffs(&env.operator.log());
    env.sim.clear_faults().await;

    // Exactly one account per SubAccount, each number bought once.
    let state = env.sim.state().await;
    let list = |p: &str| state.pointer(p).and_then(Value::as_array).cloned().unwrap_or_default();
    let accounts = BTreeMap::from([
        ("recoverbiz", list("/recoverbiz/accounts").len()),
        ("vobiz", list("/vobiz/subAccounts").len()),
        ("agentphone", list("/agentphone/subAccounts").len()),
        ("vobizPartner", list("/vobizPartner/accounts").len()),
        ("yardstik", list("/yardstik/subAccounts").len()),
    ]);
    eprintln!("chaos: accounts at the providers {accounts:?}");
    assert!(accounts.values().all(|n| *n == PER_PROVIDER), "duplicates or losses: {accounts:?}");
    let vobiz_numbers: Vec<String> =
        list("/vobiz/numbers").iter().map(|n| n["e164"].as_str().unwrap().to_owned()).collect();
    let agentphone_numbers: Vec<String> =
        list("/agentphone/numbers").iter().map(|n| n["phoneNumber"].as_str().unwrap().to_owned()).collect();
    eprintln!("chaos: numbers bought: Vobiz {}, AgentPhone {}", vobiz_numbers.len(), agentphone_numbers.len());
    for bought in [&vobiz_numbers, &agentphone_numbers] {
        assert_eq!(bought.len(), PER_PROVIDER, "a number bought twice or not at all");
        assert_eq!(bought.iter().collect::<BTreeSet<_>>().len(), PER_PROVIDER);
    }
    let owned: BTreeSet<String> = vobiz_numbers.into_iter().chain(agentphone_numbers).collect();
    for pn in numbers.list(&ListParams::default()).await.unwrap() {
        let number = pn.status.and_then(|s| s.number).unwrap_or_default();
        assert!(owned.contains(&number), "{:?}: {number} is not at the provider", pn.metadata.name);
    }

    // Every Secret holds the credentials the provider issued for that very account.
    let mut valid = 0;
    for sa in subs.list(&ListParams::default()).await.unwrap() {
        let name = sa.metadata.name.clone().unwrap();
        let id = sa.status.unwrap().managed.external_id.unwrap();
        let secret = env.secret(&format!("{name}-credentials")).await.unwrap_or_else(|| panic!("{name}: no Secret"));
        let data: BTreeMap<String, String> =
            secret.data.unwrap().into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect();
        assert_eq!(data["accountId"], id, "{name}");
        let (pointer, key, field, secret_key) = match name.rsplit_once('-').unwrap().0 {
            "recoverbiz" => ("/recoverbiz/accounts", "id", "id", "accountId"),
            "vobiz" => ("/vobiz/subAccounts", "auth_id", "auth_token", "authToken"),
            "agentphone" | "agentphone-2" => ("/agentphone/subAccounts", "id", "id", "subAccountId"),
            "vobiz-partner" => ("/vobizPartner/accounts", "auth_id", "auth_token", "authToken"),
            _ => ("/yardstik/subAccounts", "id", "api_token", "apiToken"),
        };
        let item = list(pointer).into_iter().find(|i| i[key] == id.as_str());
        let item = item.unwrap_or_else(|| panic!("{name}: {id} not at the provider"));
        assert_eq!(item[field].as_str().unwrap(), data[secret_key], "{name}: {secret_key} is not the provider's");
        valid += 1;
    }
    eprintln!("chaos: Secrets holding the provider's credentials: {valid}/{}", 5 * PER_PROVIDER);

    // The token bucket held: no provider saw more than rate + burst calls in any one second
    // (AgentPhone has two configs, so two buckets). The simulator counts arrivals, not sends: a
    // request that took its token on time but was delayed on its way (a busy machine: the suite
    // runs its tests in parallel) arrives next to later ones; up to half a second's worth of
    // them is allowed for.
    let objects = (5 + 1 + 2) * PER_PROVIDER;
    let total: u64 = rate.values().map(|r| r.calls).sum();
    for (provider, r) in &rate {
        let (calls, peak) = (&r.calls, &r.peak_per_second);
        let buckets = if provider == "agentphone" { 2 } else { 1 };
        let limit = buckets * (RATE + BURST);
        eprintln!("chaos: {provider}: {calls} calls, peak {peak}/s, limit {limit}/s");
        assert!(*calls > 0);
        assert!(*peak <= limit + ARRIVAL_JITTER, "{provider}: {peak} calls within one second, above the limit {limit}");
    }
    // Backoff stays bounded: never longer than the cap (+10% jitter), and no hot loop.
    let calls_per_object = total as f64 / objects as f64;
    eprintln!(
        "chaos: {total} provider calls for {objects} objects ({calls_per_object:.1} per object); \
         {failed_reconciles} failed reconciles, longest backoff {max_backoff_ms} ms (cap {MAX_BACKOFF_SECONDS} s)"
    );
    assert!(failed_reconciles > 0, "the faults never hit");
    assert!(max_backoff_ms <= MAX_BACKOFF_SECONDS * 1100, "a backoff above the cap: {max_backoff_ms} ms");
    assert!(calls_per_object < 25.0, "a hot loop: {calls_per_object:.1} calls per object");

    // Orphan everywhere: cleaning up 320 objects must not wait on the provider.
    env.finish().await;
}

/// The Ready condition's `(status, reason, message)` of SubAccount `name`.
async fn ready_condition(env: &Env, name: &str) -> (String, String, String) {
    let sa = env.api::<SubAccount>().get(name).await.unwrap();
    let c = sa.status.unwrap().managed.common.conditions.into_iter().find(|c| c.type_ == "Ready").unwrap();
    (c.status, c.reason, c.message)
}

/// The Ready condition of ProviderConfig `name` once `done` holds for it: `(status, reason, message)`.
async fn config_condition(
    env: &Env,
    name: &str,
    done: impl Fn(&ProviderConfig, &str) -> bool,
) -> (String, String, String) {
    let found = eventually(Duration::from_secs(30), || async {
        let pc = env.api::<ProviderConfig>().get(name).await.ok()?;
        let c = pc.status.clone()?.common.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        done(&pc, &c.message).then_some((c.status, c.reason, c.message))
    })
    .await;
    found.unwrap_or_else(|| panic!("ProviderConfig {name} never said so\n{}", env.operator.log_tail(30)))
}

#[tokio::test]
async fn a_provider_config_or_secret_in_use_stays_until_its_sub_accounts_are_gone() {
    let env = Env::start("e2e-pcgone").await;
    crate::lifecycle::fast_provider(&env, "vobiz");
    env.apply_ok(&crate::lifecycle::sub_account("sa", "vobiz", "  deletionPolicy: Delete\n"));
    env.wait_ready::<SubAccount>("sa").await;
    let accounts = |state: Value| state.pointer("/vobiz/subAccounts").and_then(Value::as_array).map_or(0, Vec::len);
    assert_eq!(accounts(env.sim.state().await), 1);

    // The credentials Secret in use stays, terminating; the config says so, and its SubAccount
    // goes on working.
    let out = crate::harness::kubectl(&["delete", "secret", "vobiz-parent", "-n", &env.ns.name, "--wait=false"], "");
    assert!(out.status.success());
    let (status, reason, message) = config_condition(&env, "vobiz", |_, message| {
        message.contains("vobiz-parent") && message.contains("1 SubAccount(s)")
    })
    .await;
    eprintln!("Secret deleted: ProviderConfig Ready={status} {reason}: {message}");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Deleting"));
    assert!(env.secret("vobiz-parent").await.is_some_and(|s| s.metadata.deletion_timestamp.is_some()));
    assert_eq!(ready_condition(&env, "sa").await.0, "True");

    // Nothing new is made through a config on its way out.
    env.apply_ok(&crate::lifecycle::sub_account("late", "vobiz", ""));
    env.wait_condition::<SubAccount>("late", "Stalled", "True", Duration::from_secs(30)).await;
    let (_, reason, message) = ready_condition(&env, "late").await;
    eprintln!("a new SubAccount: {reason}: {message}");
    assert_eq!(reason, "ProviderConfigNotReady");
    assert!(message.contains("being deleted"), "{message}");
    assert_eq!(accounts(env.sim.state().await), 1, "no account was made for it");

    // The config in use stays too, naming its user.
    let out = crate::harness::kubectl(&["delete", "providerconfig", "vobiz", "-n", &env.ns.name, "--wait=false"], "");
    assert!(out.status.success());
    let (_, reason, message) = config_condition(&env, "vobiz", |pc, message| {
        pc.metadata.deletion_timestamp.is_some() && message.contains("being deleted: waits")
    })
    .await;
    eprintln!("ProviderConfig deleted: {reason}: {message}");
    assert!(message.contains("1 SubAccount(s)") && message.contains("/sa)"), "{message}");

    // Its SubAccount's deletion still reaches the provider; then the config and Secret go.
    let out = crate::harness::kubectl(&["delete", "subaccount", "sa", "-n", &env.ns.name, "--wait=false"], "");
    assert!(out.status.success());
    assert!(env.wait_gone::<SubAccount>("sa", Duration::from_secs(60)).await, "{}", env.operator.log_tail(30));
    assert_eq!(accounts(env.sim.state().await), 0, "the Delete policy deleted the account");
    assert!(env.wait_gone::<ProviderConfig>("vobiz", Duration::from_secs(30)).await, "the config went once unused");
    assert!(env.wait_gone::<Secret>("vobiz-parent", Duration::from_secs(30)).await, "the Secret went once unused");
    env.finish().await;
}
