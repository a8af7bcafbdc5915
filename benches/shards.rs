//! `make bench SHARDS=2`: N SubAccounts labelled `shard=0` … `shard=<S-1>` (round robin), S
//! operator processes each started with `--label-selector shard=<i>`, its own metrics port, Lease
//! and `POD_NAME` (so its Events carry its own reportingInstance). Reports the time to Ready, each
//! shard's reconciles, CPU and peak RSS, the API server's request rate, latency and CPU (and
//! etcd's) beside the operators', and the proof of the split: every SubAccount's Events come from
//! the one shard its label names, and the simulator holds exactly one Vobiz account per
//! SubAccount. Then, with nothing left to do, whether the shards write the ProviderConfig they
//! share. With `--compare-single`, one operator on another N in the same run. Asserts nothing.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;

use super::*;

/// How long the shards are left alone after onboarding, to see whether they write the shared
/// ProviderConfig (its readiness check runs every 10 s in each).
const QUIET: Duration = Duration::from_secs(35);

pub async fn run(
    client: &Client,
    sim: &Sim,
    run: &str,
    shards: usize,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = args.n;
    let mut table = Table::default();
    table.row("machine", machine());
    table.row(
        "setup",
        format!("N={n} shards={shards} latency={}ms concurrency={} per shard", args.latency_ms, args.concurrency),
    );
    let ns = namespace(client, &format!("bench-shards-{run}")).await?;
    provider_config(client, &ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 1000, 1000, "1h").await?;
    create_all(client, &ns, n, |i| labelled(i, shards)).await?;
    let config_writes = ConfigWatch::start(client, &ns);
    let ready = Ready::<SubAccount>::watch(client, &ns);

    let before = Sample::take(client).await?;
    sim.clear_calls().await;
    let instances: Vec<String> = (0..shards).map(instance).collect();
    let mut operators = Vec::new();
    for (i, name) in instances.iter().enumerate() {
        let extra = [
            format!("--label-selector=shard={i}"),
            "--leader-election".to_owned(),
            format!("--lease-name={name}"),
            format!("--lease-namespace={ns}"),
        ];
        let extra: Vec<String> = extra.into_iter().chain(args.operator_args.iter().cloned()).collect();
        operators.push(Operator::start_as(&ns, Some(name), args.concurrency, &extra)?);
    }
    let reporter = progress(&ready, n);
    let took = ready.wait_for(n, Duration::from_secs(3600)).await;
    reporter.abort();
    let after = Sample::take(client).await?;
    let calls = sim.calls().await;
    let secs = took.as_secs_f64();
    table.row("onboarding: N → Ready", format!("{secs:.1} s ({:.0} objects/s)", n as f64 / secs));
    table.row("  provider calls / object", per_object(&calls.by_route, n as f64));
    table.row("  API requests / object", per_object(&by_verb(&before.requests, &after.requests), n as f64));
    let http = sim.control.http();
    let mut reconciles = Vec::new();
    for (i, op) in operators.iter().enumerate() {
        let total = reconcile_total(op, http).await;
        reconciles.push(total);
        table.row(
            &format!("  shard {i}: SubAccount reconciles, RSS now / peak"),
            format!(
                "{total:.0} ({:.2} / object of its {}), {}",
                total / shard_size(n, shards, i) as f64,
                shard_size(n, shards, i),
                op.rss()
            ),
        );
    }
    table.row("  reconciles per shard", reconciles.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(" / "));
    cost_rows(&mut table, &before, &after, &operators, secs);

    // The split. Events go out off the reconcile's path: give the last ones a moment.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let split = split(client, &ns, n, shards).await?;
    table.row("split: SubAccounts with Events from both (or more) shards", format!("{}", split.both));
    table.row("split: SubAccounts with Events only from the wrong shard", format!("{}", split.wrong));
    table.row("split: SubAccounts without an Event", format!("{}", split.silent));
    table.row(
        "split: Events on SubAccounts by reportingInstance",
        split.by_instance.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
    );
    table.row(
        "split: Events on the ProviderConfig by reportingInstance",
        split.config.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
    );
    let accounts = vobiz_accounts(sim, &ns, n).await;
    table.row(
        "split: Vobiz accounts at the simulator",
        format!(
            "{} for {n} SubAccounts: {} with more than one, {} SubAccounts without one",
            accounts.total, accounts.duplicated, accounts.missing
        ),
    );

    // Nothing to do now: do the shards write the ProviderConfig they share?
    let (writes_before, rv_before) = config_writes.count();
    let quiet_before = apiserver_requests(client).await?;
    tokio::time::sleep(QUIET).await;
    let quiet_after = apiserver_requests(client).await?;
    let (writes_after, rv_after) = config_writes.count();
    table.row(
        "ProviderConfig: changes seen by a watch during onboarding",
        format!("{writes_before} (resourceVersion now {rv_before})"),
    );
    let config_requests: BTreeMap<String, f64> = diff(&quiet_before, &quiet_after)
        .into_iter()
        .filter(|(k, _)| k.contains("providerconfigs") || k.contains(" secrets"))
        .collect();
    table.row(
        &format!("ProviderConfig: then {} s idle: changes, requests", QUIET.as_secs()),
        format!(
            "{} changes (resourceVersion {rv_before} → {rv_after}); requests on providerconfigs and secrets: {}",
            writes_after - writes_before,
            if config_requests.is_empty() {
                "none".to_owned()
            } else {
                config_requests.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
            }
        ),
    );
    let conflicts: Vec<String> = diff(&before.by_code, &quiet_after_codes(client).await?)
        .into_iter()
        .filter(|(k, _)| k.ends_with(" 409"))
        .map(|(k, v)| format!("{}={v}", k.trim_end_matches(" 409")))
        .collect();
    table.row(
        "409 Conflict answers during the whole run",
        if conflicts.is_empty() { "none".to_owned() } else { conflicts.join(", ") },
    );

    let mut result = json!({
        "mode": "shards", "n": n, "shards": shards, "latencyMs": args.latency_ms, "concurrency": args.concurrency,
        "operatorSeconds": secs, "reconciles": reconciles,
        "bothShards": split.both, "wrongShard": split.wrong, "duplicatedAccounts": accounts.duplicated,
        "peakRssKiB": operators.iter().map(|o| o.status("VmHWM")).collect::<Vec<_>>(),
    });

    if args.compare_single {
        let single_ns = namespace(client, &format!("bench-single-{run}")).await?;
        provider_config(client, &single_ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 1000, 1000, "1h").await?;
        create_all(client, &single_ns, n, |i| sub_account(&format!("acct-{i}"), "vobiz")).await?;
        let ready = Ready::<SubAccount>::watch(client, &single_ns);
        let before = Sample::take(client).await?;
        sim.clear_calls().await;
        let single = Operator::start_as(&single_ns, Some("tenantline-single"), args.concurrency, &args.operator_args)?;
        let reporter = progress(&ready, n);
        let took = ready.wait_for(n, Duration::from_secs(3600)).await.as_secs_f64();
        reporter.abort();
        let after = Sample::take(client).await?;
        let calls = sim.calls().await;
        table.row(
            "single operator, same N: N → Ready",
            format!("{took:.1} s ({:.0} objects/s) = {:.2}× the {shards} shards", n as f64 / took, took / secs),
        );
        table.row("  provider calls / object", per_object(&calls.by_route, n as f64));
        table.row("  API requests / object", per_object(&by_verb(&before.requests, &after.requests), n as f64));
        table.row(
            "  SubAccount reconciles, RSS now / peak",
            format!("{:.0}, {}", reconcile_total(&single, http).await, single.rss()),
        );
        cost_rows(&mut table, &before, &after, std::slice::from_ref(&single), took);
        result["singleSeconds"] = json!(took);
        table.print();
        delete_namespace(client, &single_ns).await;
        drop(single);
    } else {
        table.print();
    }

    // The shards let go of their own halves' (Orphan) finalizers.
    let started = Instant::now();
    delete_namespace(client, &ns).await;
    eprintln!("bench: the {shards} shards let {n} SubAccounts go in {:.1} s", started.elapsed().as_secs_f64());
    drop(operators);
    if let Some(dir) = args.results.parent() {
        std::fs::create_dir_all(dir)?;
    }
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&args.results)?;
    writeln!(file, "{result}")?;
    Ok(())
}

/// The reportingInstance (`POD_NAME`) and Lease name of shard `i`.
fn instance(i: usize) -> String {
    format!("tenantline-shard-{i}")
}

/// SubAccount `acct-<i>`, labelled with its shard.
fn labelled(i: usize, shards: usize) -> Value {
    let mut obj = sub_account(&format!("acct-{i}"), "vobiz");
    obj["metadata"]["labels"] = json!({"shard": (i % shards).to_string()});
    obj
}

fn shard_size(n: usize, shards: usize, i: usize) -> usize {
    n / shards + usize::from(i < n % shards)
}

/// Every 30 s: how many are Ready (the run takes minutes at N = 10,000).
fn progress(ready: &Ready<SubAccount>, n: usize) -> tokio::task::JoinHandle<()> {
    let ready = ready.ready.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let count = ready.lock().unwrap().len();
            eprintln!("bench: {count}/{n} Ready after {:.0} s", started.elapsed().as_secs_f64());
        }
    })
}

async fn reconcile_total(op: &Operator, http: &reqwest::Client) -> f64 {
    op.metrics(http)
        .await
        .iter()
        .filter(|(k, _)| k.starts_with("tenantline_reconcile_total{") && k.contains("kind=\"SubAccount\""))
        .map(|(_, v)| v)
        .sum()
}

/// CPU seconds of the operators against the control plane's, the API server's request rate and
/// latency, between two samples `secs` apart.
fn cost_rows(table: &mut Table, before: &Sample, after: &Sample, operators: &[Operator], secs: f64) {
    let operators_cpu: f64 = operators.iter().map(|o| cpu_seconds(o.child.id())).sum();
    let cpu = |name: &str| match (before.cpu.get(name), after.cpu.get(name)) {
        (Some(a), Some(b)) => format!("{:.0} s ({:.0}%)", b - a, (b - a) / secs * 100.0),
        _ => "n/a".to_owned(),
    };
    table.row(
        "  CPU: operators / kube-apiserver / etcd / bench (simulator, watches)",
        format!(
            "{operators_cpu:.0} s ({:.0}%) / {} / {} / {}",
            operators_cpu / secs * 100.0,
            cpu("apiserver"),
            cpu("etcd"),
            cpu("bench")
        ),
    );
    let requests: f64 = diff(&before.all, &after.all).values().sum();
    let latency = Latency::between(&before.latency, &after.latency);
    table.row(
        "  API server: requests/s (all clients, not WATCH), latency mean / p50 / p99",
        format!(
            "{:.0}/s; {:.1} / {} / {} ms (operators' kinds: reads {:.1} ms, writes {:.1} ms mean)",
            requests / secs,
            latency.mean * 1000.0,
            latency.quantile(0.5),
            latency.quantile(0.99),
            latency.reads * 1000.0,
            latency.writes * 1000.0
        ),
    );
}

/// User + system CPU of a process, in seconds (0 when it is gone).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let path = if pid == 0 { "/proc/self/stat".to_owned() } else { format!("/proc/{pid}/stat") };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or_default();
    // utime and stime are fields 14 and 15: 11 and 12 here. Clock ticks are 100 Hz on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// The local control plane's processes (hack/cluster.sh's pid files), when it is the one in use.
pub(crate) fn control_plane() -> Vec<(&'static str, u32)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/cluster");
    ["apiserver", "etcd"]
        .into_iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(format!("{dir}/{name}.pid")).ok()?.trim().parse().ok()?;
            std::path::Path::new(&format!("/proc/{pid}")).exists().then_some((name, pid))
        })
        .collect()
}

/// Counters at one moment: the API server's requests and latency, CPU seconds by process.
struct Sample {
    /// The operators' kinds, by "VERB resource[/sub]" (as the main table).
    requests: BTreeMap<String, f64>,
    /// Every request but WATCH, by "VERB resource".
    all: BTreeMap<String, f64>,
    /// By "VERB resource code", every kind.
    by_code: BTreeMap<String, f64>,
    latency: Histogram,
    cpu: BTreeMap<&'static str, f64>,
}

impl Sample {
    async fn take(client: &Client) -> Result<Self, kube::Error> {
        let text = metrics_text(client).await?;
        let cpu = cpu(None);
        Ok(Self {
            requests: apiserver(client).await?,
            all: requests_of(&text, false),
            by_code: requests_of(&text, true),
            latency: Histogram::parse(&text),
            cpu,
        })
    }
}

async fn metrics_text(client: &Client) -> Result<String, kube::Error> {
    client.request_text(http::Request::get("/metrics").body(Vec::new()).unwrap()).await
}

async fn apiserver_requests(client: &Client) -> Result<BTreeMap<String, f64>, kube::Error> {
    Ok(requests_of(&metrics_text(client).await?, false))
}

async fn quiet_after_codes(client: &Client) -> Result<BTreeMap<String, f64>, kube::Error> {
    Ok(requests_of(&metrics_text(client).await?, true))
}

/// A metric line's label, from `a="x",b="y"`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split("\",").find_map(|kv| kv.strip_prefix(&format!("{name}=\""))).map(|v| v.trim_end_matches('"'))
}

/// `apiserver_request_total` but WATCH, by "VERB resource[/sub]" (and " code" with `codes`).
fn requests_of(text: &str, codes: bool) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("apiserver_request_total{")) {
        let Some((labels, value)) = line.rsplit_once("} ") else { continue };
        let (Some(verb), Some(resource)) = (label(labels, "verb"), label(labels, "resource")) else { continue };
        if verb == "WATCH" || verb == "CONNECT" {
            continue;
        }
        let sub = label(labels, "subresource").filter(|s| !s.is_empty()).map(|s| format!("/{s}")).unwrap_or_default();
        let code = if codes { format!(" {}", label(labels, "code").unwrap_or_default()) } else { String::new() };
        *totals.entry(format!("{verb} {resource}{sub}{code}")).or_default() += value.parse::<f64>().unwrap_or_default();
    }
    totals
}

/// `apiserver_request_duration_seconds` of every request but WATCH/CONNECT: buckets summed over
/// verbs and resources, and sum/count of the operators' kinds' reads and writes.
#[derive(Default)]
struct Histogram {
    buckets: BTreeMap<String, f64>,
    sum: f64,
    count: f64,
    /// (sum, count) of reads and writes on the tenantline kinds, Secrets, Events and Leases.
    reads: (f64, f64),
    writes: (f64, f64),
}

const OPERATOR_KINDS: [&str; 7] =
    ["subaccounts", "teammembers", "phonenumbers", "providerconfigs", "secrets", "events", "leases"];

impl Histogram {
    fn parse(text: &str) -> Self {
        let mut h = Self::default();
        for line in text.lines() {
            let Some((name, rest)) = line.split_once('{') else { continue };
            let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
            let Some(kind) = name.strip_prefix("apiserver_request_duration_seconds_") else { continue };
            let verb = label(labels, "verb").unwrap_or_default();
            if verb == "WATCH" || verb == "CONNECT" {
                continue;
            }
            let value: f64 = value.parse().unwrap_or_default();
            let ours = label(labels, "resource").is_some_and(|r| OPERATOR_KINDS.contains(&r));
            let pair = if WRITES.contains(&verb) { &mut h.writes } else { &mut h.reads };
            match kind {
                "bucket" => *h.buckets.entry(label(labels, "le").unwrap_or_default().to_owned()).or_default() += value,
                "sum" => {
                    h.sum += value;
                    if ours {
                        pair.0 += value;
                    }
                }
                "count" => {
                    h.count += value;
                    if ours {
                        pair.1 += value;
                    }
                }
                _ => {}
            }
        }
        h
    }
}

/// The latency of the requests between two histograms.
struct Latency {
    mean: f64,
    reads: f64,
    writes: f64,
    /// (upper bound in seconds, requests at or below it), ascending.
    cumulative: Vec<(f64, f64)>,
    count: f64,
}

impl Latency {
    fn between(a: &Histogram, b: &Histogram) -> Self {
        let mean = |(s1, c1): (f64, f64), (s2, c2): (f64, f64)| if c2 > c1 { (s2 - s1) / (c2 - c1) } else { 0.0 };
        let mut cumulative: Vec<(f64, f64)> = b
            .buckets
            .iter()
            .map(|(le, v)| (le.parse().unwrap_or(f64::INFINITY), v - a.buckets.get(le).unwrap_or(&0.0)))
            .collect();
        cumulative.sort_by(|x, y| x.0.total_cmp(&y.0));
        Self {
            mean: mean((a.sum, a.count), (b.sum, b.count)),
            reads: mean(a.reads, b.reads),
            writes: mean(a.writes, b.writes),
            cumulative,
            count: b.count - a.count,
        }
    }

    /// The bucket bound under which fraction `q` of the requests finished ("≤ 25 ms").
    fn quantile(&self, q: f64) -> String {
        match self.cumulative.iter().find(|(_, c)| *c >= q * self.count) {
            Some((le, _)) if le.is_finite() => format!("≤ {:.0}", le * 1000.0),
            Some(_) => "> the largest bucket".to_owned(),
            None => "n/a".to_owned(),
        }
    }
}

struct Split {
    both: usize,
    wrong: usize,
    silent: usize,
    by_instance: BTreeMap<String, usize>,
    config: BTreeMap<String, usize>,
}

/// Every Event in the namespace (events.k8s.io/v1), by the SubAccount it is about.
async fn split(client: &Client, ns: &str, n: usize, shards: usize) -> Result<Split, kube::Error> {
    let api = Api::<Event>::namespaced(client.clone(), ns);
    let mut reporters: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut split = Split { both: 0, wrong: 0, silent: 0, by_instance: BTreeMap::new(), config: BTreeMap::new() };
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        for event in &page.items {
            let instance = event.reporting_instance.clone().unwrap_or_else(|| "(none)".to_owned());
            let Some(regarding) = &event.regarding else { continue };
            match regarding.kind.as_deref() {
                Some("SubAccount") => {
                    *split.by_instance.entry(instance.clone()).or_default() += 1;
                    reporters.entry(regarding.name.clone().unwrap_or_default()).or_default().insert(instance);
                }
                Some("ProviderConfig") => *split.config.entry(instance).or_default() += 1,
                _ => {}
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    for i in 0..n {
        match reporters.get(&format!("acct-{i}")) {
            None => split.silent += 1,
            Some(set) if set.len() > 1 => split.both += 1,
            Some(set) if !set.contains(&instance(i % shards)) => split.wrong += 1,
            Some(_) => {}
        }
    }
    Ok(split)
}

struct Accounts {
    total: usize,
    duplicated: usize,
    missing: usize,
}

/// The simulator's Vobiz sub-accounts made for this namespace, by the key in their description.
async fn vobiz_accounts(sim: &Sim, ns: &str, n: usize) -> Accounts {
    let state = sim.control.state().await;
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    let marker = format!("/{ns}/");
    for sub in state["vobiz"]["subAccounts"].as_array().into_iter().flatten() {
        let description = sub["description"].as_str().unwrap_or_default();
        let Some(key) = description.split("[tenantline.io/key=").nth(1) else { continue };
        let Some((_, name)) = key.trim_end_matches(']').split_once(&marker) else { continue };
        *by_key.entry(name.to_owned()).or_default() += 1;
    }
    Accounts {
        total: by_key.values().sum(),
        duplicated: by_key.values().filter(|c| **c > 1).count(),
        missing: (0..n).filter(|i| !by_key.contains_key(&format!("acct-{i}"))).count(),
    }
}

/// Counts the changes of the namespace's ProviderConfigs (any write: spec, status, finalizers).
struct ConfigWatch {
    changes: Arc<std::sync::Mutex<(usize, String)>>,
    task: tokio::task::JoinHandle<()>,
}

use std::sync::Arc;

impl ConfigWatch {
    fn start(client: &Client, ns: &str) -> Self {
        let changes = Arc::new(std::sync::Mutex::new((0, String::new())));
        let seen = changes.clone();
        let stream = watcher(Api::<ProviderConfig>::namespaced(client.clone(), ns), watcher::Config::default())
            .default_backoff()
            .touched_objects();
        let task = tokio::spawn(stream.for_each(move |pc| {
            if let Ok(pc) = pc {
                let mut seen = seen.lock().unwrap();
                seen.0 += 1;
                seen.1 = pc.metadata.resource_version.clone().unwrap_or_default();
            }
            futures::future::ready(())
        }));
        Self { changes, task }
    }

    /// Changes seen (the first listing counts one) and the last resourceVersion.
    fn count(&self) -> (usize, String) {
        self.changes.lock().unwrap().clone()
    }
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
