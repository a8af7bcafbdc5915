//! Chaos: every route of all five providers fails 20% of the time, in every way a provider
//! fails, while 200 SubAccounts with their TeamMembers and PhoneNumbers are created. The figures
//! go to stderr (`cargo test --test e2e chaos -- --nocapture`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use tenantline::api::{ProviderConfig, SubAccount};
use tenantline_sim::client::Rate;

use crate::fleet::Fleet;
use crate::harness::Env;
use crate::support::eventually;

/// SubAccounts per provider (AgentPhone: split over two master keys, 25 is its limit per key).
const PER_PROVIDER: usize = 40;
const RATE: u64 = 10;
const BURST: u64 = 5;
const MAX_BACKOFF_SECONDS: u64 = 10;
/// Each fault kind hits this share of calls; five kinds make 1 - 0.956^5 ≈ 20%.
const PER_KIND: f64 = 0.044;

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

/// What the token buckets allowed, checked against what the simulator counted.
#[derive(Default)]
struct Pacing {
    checks: usize,
    /// `(provider, calls, bound, seconds since the origin)` of the check nearest its bound.
    closest: Option<(String, u64, f64, f64)>,
    /// Every check above its bound.
    over: Vec<(String, u64, f64, f64)>,
}

impl Pacing {
    /// Each provider's calls counted (`rate`), bounded by what its buckets can have handed out
    /// in the `seconds` from the origin to after the simulator's answer.
    fn check(&mut self, rate: BTreeMap<String, Rate>, seconds: f64) {
        self.checks += 1;
        for (provider, r) in rate {
            let buckets = if provider == "agentphone" { 2.0 } else { 1.0 };
            let bound = buckets * (BURST as f64 + RATE as f64 * seconds);
            let seen = (provider, r.calls, bound, seconds);
            if r.calls as f64 > bound {
                self.over.push(seen.clone());
            }
            let margin = |(_, calls, bound, _): &(String, u64, f64, f64)| bound - *calls as f64;
            if self.closest.as_ref().is_none_or(|c| margin(&seen) < margin(c)) {
                self.closest = Some(seen);
            }
        }
    }
}

#[tokio::test]
async fn two_hundred_sub_accounts_end_ready_and_unique_under_twenty_percent_provider_faults() {
    let env = Env::start_with("e2e-chaos", &["--max-backoff-seconds", &MAX_BACKOFF_SECONDS.to_string()]).await;
    let fleet = Fleet { per_provider: PER_PROVIDER };
    // No provider call can be made before the configs exist: every call the simulator counts
    // took its token from a bucket that started after this instant.
    let origin = Instant::now();
    fleet.configure(&env, RATE, BURST, "30s").await;
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
    env.apply_ok(&fleet.manifests());
    // The token bucket, checked while the fleet is made: a config's bucket hands out at most
    // burst + rate·t tokens in the t seconds since it was made, so the calls counted by the time
    // the simulator answers can be no more than that for t up to that answer. A stall anywhere
    // only makes t longer: the check holds however the calls bunch up on their way.
    let paced = RefCell::new(Pacing::default());
    let done = eventually(Duration::from_secs(420), || async {
        let rate = env.sim.rate().await;
        paced.borrow_mut().check(rate, origin.elapsed().as_secs_f64());
        fleet.all_ready(&env).await.then_some(())
    })
    .await;
    let paced = paced.into_inner();
    let elapsed = started.elapsed();
    let ready = Fleet::ready(&env).await;
    eprintln!("chaos: after {elapsed:?}, (ready, total) of SubAccounts, TeamMembers, PhoneNumbers: {ready:?}");
    if done.is_none() {
        let not_ready = Fleet::not_ready(&env).await;
        panic!("not everything Ready after {elapsed:?}: {ready:?}; e.g. {not_ready:?}\n{}", env.operator.log_tail(40));
    }
    // The figures of the faulty run, before the faults go.
    let rate = env.sim.rate().await;
    let (max_backoff_ms, failed_reconciles) = backoffs(&env.operator.log());
    env.sim.clear_faults().await;

    // Exactly one account per SubAccount, each number bought once, every Secret the provider's.
    fleet.assert_at_providers(&env, "chaos").await;

    // The token bucket held, every time it was looked at (AgentPhone has two configs, so two
    // buckets); the busiest second is shown, not judged: arrivals bunch up on a busy machine.
    let objects = (5 + 1 + 2) * PER_PROVIDER;
    let total: u64 = rate.values().map(|r| r.calls).sum();
    for (provider, r) in &rate {
        eprintln!("chaos: {provider}: {} calls, busiest second {} calls", r.calls, r.peak_per_second);
        assert!(r.calls > 0);
    }
    eprintln!("chaos: pacing checked {} times; closest to the bound: {:?}", paced.checks, paced.closest);
    assert!(paced.checks > 0, "the pacing was never checked");
    assert!(paced.over.is_empty(), "more calls than the token buckets allow: {:?}", paced.over);
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
