//! `make soak`: the operator for `--soak-minutes` against the simulator, every object polled
//! every 5 s, about 15% of provider calls failing. Once a minute: the operator's RSS (from /proc),
//! its reconciles and failed reconciles (from its /metrics) and the provider calls the simulator
//! saw. Prints a table and a verdict; asserts nothing.

use super::*;

const RECOVERBIZ: usize = 20;
const MEMBERS_PER_ACCOUNT: usize = 2;
const VOBIZ: usize = 20;
const YARDSTIK: usize = 10;
const POLL: &str = "5s";
/// Per provider: the share of calls each kind of failure hits (together ≈ 15%).
fn faults() -> [(f64, Value); 3] {
    [
        (0.08, json!({"kind": "status", "status": 503})),
        (0.05, json!({"kind": "rateLimit"})),
        (0.02, json!({"kind": "drop"})),
    ]
}
/// After the failures: every call takes this long, as a real provider's would.
const LATENCY_MS: u64 = 20;

/// One minute's sample: counters are totals since the operator started.
struct Sample {
    minute: u64,
    rss_kib: u64,
    reconciles: f64,
    errors: f64,
    provider_calls: f64,
    ready: usize,
}

pub async fn run(
    client: &Client,
    sim: &Sim,
    run: &str,
    minutes: u64,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    sim.control.clear_faults().await;
    for provider in ["recoverbiz", "vobiz", "yardstik"] {
        for (probability, fault) in faults() {
            let rule = json!({"provider": provider, "fault": fault, "probability": probability});
            sim.control.add_fault(rule).await;
        }
        let latency = json!({"provider": provider, "fault": {"kind": "latency", "ms": LATENCY_MS}});
        sim.control.add_fault(latency).await;
    }

    let ns = namespace(client, &format!("soak-{run}")).await?;
    provider_config(client, &ns, "recoverbiz", "RecoverBiz", &sim.endpoint("recoverbiz/v1"), 100, 100, POLL).await?;
    provider_config(client, &ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 100, 100, POLL).await?;
    provider_config(client, &ns, "yardstik", "Yardstik", &sim.endpoint("yardstik"), 100, 100, POLL).await?;
    let accounts = Ready::<SubAccount>::watch(client, &ns);
    let members = Ready::<TeamMember>::watch(client, &ns);
    let numbers = Ready::<PhoneNumber>::watch(client, &ns);
    let operator = Operator::start(&ns, args.concurrency, &args.operator_args)?;
    create_all(client, &ns, RECOVERBIZ, |i| sub_account(&format!("rb-{i}"), "recoverbiz")).await?;
    create_all(client, &ns, VOBIZ, |i| sub_account(&format!("vz-{i}"), "vobiz")).await?;
    create_all(client, &ns, YARDSTIK, |i| yardstik_sub_account(&format!("ys-{i}"), "yardstik")).await?;
    create_all(client, &ns, RECOVERBIZ * MEMBERS_PER_ACCOUNT, |i| {
        json!({"apiVersion": "tenantline.io/v1alpha1", "kind": "TeamMember",
            "metadata": {"name": format!("member-{i}")},
            "spec": {"subAccountRef": {"name": format!("rb-{}", i % RECOVERBIZ)}, "email": format!("m{i}@acme.example"),
                "name": format!("Member {i}"), "role": "Member", "deletionPolicy": "Orphan"}})
    })
    .await?;
    create_all(client, &ns, VOBIZ, |i| {
        json!({"apiVersion": "tenantline.io/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": format!("number-{i}")},
            "spec": {"subAccountRef": {"name": format!("vz-{i}")}, "search": {"country": "US"},
                "deletionPolicy": "Retain"}})
    })
    .await?;
    let objects = RECOVERBIZ + VOBIZ + YARDSTIK + RECOVERBIZ * MEMBERS_PER_ACCOUNT + VOBIZ;
    let count = || accounts.count() + members.count() + numbers.count();
    let started = Instant::now();
    while count() < objects && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "soak: {}/{objects} objects Ready after {:.1} s; sampling every minute",
        count(),
        started.elapsed().as_secs_f64()
    );

    let mut samples = Vec::new();
    for minute in 0..=minutes {
        if minute > 0 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let metrics = operator.metrics(sim.control.http()).await;
        let sum = |name: &str| metrics.iter().filter(|(k, _)| k.starts_with(name)).map(|(_, v)| v).sum::<f64>();
        let calls = sim.calls().await.by_route.values().sum();
        let sample = Sample {
            minute,
            rss_kib: operator.status("VmRSS"),
            reconciles: sum("tenantline_reconcile_total"),
            errors: sum("tenantline_reconcile_errors_total"),
            provider_calls: calls,
            ready: count(),
        };
        eprintln!("soak: minute {minute}: RSS {} KiB, {} Ready", sample.rss_kib, sample.ready);
        samples.push(sample);
    }
    print(&samples, objects);

    sim.control.clear_faults().await;
    drop(operator);
    // A fresh operator lets go of the (Orphan) finalizers, so the namespace goes.
    let operator = Operator::start(&ns, args.concurrency, &args.operator_args)?;
    delete_namespace(client, &ns).await;
    drop(operator);
    Ok(())
}

fn yardstik_sub_account(name: &str, config: &str) -> Value {
    let mut obj = sub_account(name, config);
    obj["spec"]["address"] =
        json!({"line1": "1 Main St", "city": "Austin", "state": "TX", "postalCode": "78701", "country": "US"});
    obj["spec"]["yardstik"] =
        json!({"permissiblePurposeIds": ["3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c"], "legalBusinessName": "Acme"});
    obj
}

/// The table (rates per minute, from one sample to the next) and the verdict.
fn print(samples: &[Sample], objects: usize) {
    println!("| minute | operator RSS MiB | reconciles/min | failed reconciles/min | provider calls/min | Ready |");
    println!("|---|---|---|---|---|---|");
    let mut error_rates = Vec::new();
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let errors = b.errors - a.errors;
        error_rates.push(errors);
        println!(
            "| {} | {:.1} | {:.0} | {:.0} | {:.0} | {}/{objects} |",
            b.minute,
            b.rss_kib as f64 / 1024.0,
            b.reconciles - a.reconciles,
            errors,
            b.provider_calls - a.provider_calls,
            b.ready
        );
    }
    let (Some(first), Some(last)) = (samples.get(1).or(samples.first()), samples.last()) else { return };
    let half = error_rates.len() / 2;
    let mean = |r: &[f64]| if r.is_empty() { 0.0 } else { r.iter().sum::<f64>() / r.len() as f64 };
    let (early, late) = (mean(&error_rates[..half]), mean(&error_rates[half..]));
    let rss_change = (last.rss_kib as f64 / first.rss_kib.max(1) as f64 - 1.0) * 100.0;
    let trend = if late > early * 1.25 + 1.0 { "rising" } else { "not rising" };
    println!(
        "verdict: RSS {:.1} MiB at minute {} → {:.1} MiB at minute {} ({rss_change:+.1}%); failed reconciles/min \
         {early:.1} in the first half, {late:.1} in the second: {trend}",
        first.rss_kib as f64 / 1024.0,
        first.minute,
        last.rss_kib as f64 / 1024.0,
        last.minute
    );
}
