//! `make bench`: the operator (release build, as a process) against the local control plane and
//! an in-process tenantline-sim that adds a fixed latency to every provider call. Prints one
//! table: onboarding against the floor, steady state, pacing and children. It reports; nothing
//! timed is asserted. See BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, ProviderConfig, SubAccount, TeamMember};
use tenantline_sim::client::ControlClient;
use tenantline_sim::seed::{
    DEV_PERMISSIBLE_PURPOSE_ID, DEV_RECOVERBIZ_KEY, DEV_VOBIZ_AUTH_ID as PARENT_ID,
    DEV_VOBIZ_AUTH_TOKEN as PARENT_TOKEN, DEV_YARDSTIK_KEY, RateLimits,
};
use tenantline_sim::{Seed, SimulatorThread};

mod peer;
mod shards;
mod soak;

#[derive(Parser)]
struct Args {
    /// SubAccounts onboarded at once.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Latency added to every provider call, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// The operator's --concurrency, and the floor client's.
    #[arg(long, default_value_t = 8)]
    concurrency: u16,
    /// The ProviderConfig's pollInterval during the steady-state window, in seconds.
    #[arg(long, default_value_t = 10)]
    poll_seconds: u64,
    /// Poll intervals in the steady-state window.
    #[arg(long, default_value_t = 3)]
    polls: u32,
    /// Pacing: the ProviderConfig's rateLimit (requests per second, burst) and how many
    /// SubAccounts are onboarded under it.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    #[arg(long, default_value_t = 10)]
    burst: u32,
    #[arg(long, default_value_t = 50)]
    paced: usize,
    /// Skip the children phase (1,000 TeamMembers and 200 PhoneNumbers under 100 SubAccounts).
    #[arg(long)]
    no_children: bool,
    /// Skip the steady-state window.
    #[arg(long)]
    no_steady: bool,
    /// Append the results as one JSON line to this file (for hack/bench-plot.py).
    #[arg(long, default_value = ".cache/bench/results.jsonl")]
    results: PathBuf,
    /// Instead of the table: the soak (`make soak`) for this many minutes.
    #[arg(long)]
    soak_minutes: Option<u64>,
    /// Instead of the table: the operator beside Crossplane's provider-http (`make bench PEER=1`,
    /// benches/peer.rs): N objects, then --peer-lost objects with lost create responses.
    #[arg(long)]
    peer: bool,
    /// Peer: objects in the lost-response run (0: none).
    #[arg(long, default_value_t = 100)]
    peer_lost: usize,
    /// Peer: the share of creates applied with their response lost in that run.
    #[arg(long, default_value_t = 0.2)]
    lost_probability: f64,
    /// Peer: provider-http's --max-reconcile-rate (also its workers; its default is 10).
    #[arg(long, default_value_t = 10)]
    peer_rate: u32,
    /// Instead of the table: this many operator processes, each `--label-selector shard=<i>`,
    /// on N SubAccounts labelled round robin (`make bench SHARDS=2`, benches/shards.rs).
    #[arg(long)]
    shards: Option<usize>,
    /// With --shards: also one operator on another N SubAccounts, in the same run.
    #[arg(long)]
    compare_single: bool,
    /// Extra flags for the operator, e.g. --operator-args=--concurrency=16.
    #[arg(long, allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

const WRITES: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = Client::try_default().await?;
    install_crds()?;
    let sim = Sim::start(args.latency_ms).await;
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() % 0xfffff);
    if let Some(minutes) = args.soak_minutes {
        return soak::run(&client, &sim, &run, minutes, &args).await;
    }
    if args.peer {
        return peer::run(&client, &sim, &run, &args).await;
    }
    if let Some(shards) = args.shards {
        return shards::run(&client, &sim, &run, shards, &args).await;
    }
    let mut table = Table::default();
    table.row("machine", machine());
    table.row(
        "setup",
        format!(
            "N={} latency={}ms concurrency={} poll={}s×{} rate={}/s burst {}",
            args.n, args.latency_ms, args.concurrency, args.poll_seconds, args.polls, args.rate, args.burst
        ),
    );

    // The floor: only the essential work per object, same concurrency, same simulator.
    let floor_ns = namespace(&client, &format!("bench-floor-{run}")).await?;
    create_all(&client, &floor_ns, args.n, |i| sub_account(&format!("acct-{i}"), "absent")).await?;
    let cpu_before = cpu(None);
    let floor = floor(&client, &floor_ns, &sim, args.n, args.concurrency.into()).await?;
    table.row("floor: N → Ready", format!("{:.1} s", floor.as_secs_f64()));
    table.row("  CPU / object", cpu_per_object(&cpu_before, &cpu(None), args.n, floor));

    // Onboarding: N SubAccounts exist, then the operator starts.
    sim.reset(args.latency_ms).await;
    let ns = namespace(&client, &format!("bench-{run}")).await?;
    provider_config(&client, &ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 1000, 1000, "1h").await?;
    create_all(&client, &ns, args.n, |i| sub_account(&format!("acct-{i}"), "vobiz")).await?;
    let ready = Ready::<SubAccount>::watch(&client, &ns);
    let before = apiserver(&client).await?;
    let cpu_before = cpu(None);
    let mut operator = Operator::start(&ns, args.concurrency, &args.operator_args)?;
    let onboarding = ready.wait_for(args.n, Duration::from_secs(3600)).await;
    let cpu_after = cpu(Some(operator.child.id()));
    let after = apiserver(&client).await?;
    let calls = sim.calls().await;
    table.row(
        "onboarding: N → Ready",
        format!("{:.1} s = {:.2}× the floor", onboarding.as_secs_f64(), onboarding.as_secs_f64() / floor.as_secs_f64()),
    );
    table.row("  provider calls / object", per_object(&calls.by_route, args.n as f64));
    table.row("  API requests / object", per_object(&by_verb(&before, &after), args.n as f64));
    table.row("  API requests / object by resource", per_object(&diff(&before, &after), args.n as f64));
    table.row("  operator RSS now / peak", operator.rss());
    table.row("  CPU / object", cpu_per_object(&cpu_before, &cpu_after, args.n, onboarding));

    let mut result = json!({
        "n": args.n, "latencyMs": args.latency_ms, "concurrency": args.concurrency,
        "floorSeconds": floor.as_secs_f64(), "operatorSeconds": onboarding.as_secs_f64(),
        "onboardingPeakRssKiB": operator.status("VmHWM"),
    });

    if !args.no_steady {
        let poll = format!("{}s", args.poll_seconds);
        provider_config(&client, &ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 1000, 1000, &poll).await?;
        // The config change re-queues every object once; let that and one poll pass.
        tokio::time::sleep(Duration::from_secs(args.poll_seconds * 3 / 2)).await;
        let before = apiserver(&client).await?;
        sim.clear_calls().await;
        tokio::time::sleep(Duration::from_secs(args.poll_seconds * u64::from(args.polls))).await;
        let after = apiserver(&client).await?;
        let calls = sim.calls().await;
        let polls = args.n as f64 * f64::from(args.polls);
        table.row("steady: provider calls / object / poll", per_object(&calls.by_route, polls));
        table.row("steady: API requests / object / poll", per_object(&by_verb(&before, &after), polls));
        table.row("  by resource", per_object(&diff(&before, &after), polls));
        table.row("steady: operator RSS now / peak", operator.rss());
        result["steadyRssKiB"] = json!(operator.status("VmRSS"));
    }

    let yardstik = sim.endpoint("yardstik");
    let (rate, burst) = (args.rate as i32, args.burst as i32);
    provider_config(&client, &ns, "paced", "Yardstik", &yardstik, rate, burst, "1h").await?;
    sim.clear_calls().await;
    let paced = Ready::<SubAccount>::watch(&client, &ns);
    let started = Instant::now();
    create_all(&client, &ns, args.paced, |i| {
        let mut obj = sub_account(&format!("paced-{i}"), "paced");
        obj["spec"]["address"] =
            json!({"line1": "1 Main St", "city": "Austin", "state": "TX", "postalCode": "78701", "country": "US"});
        obj["spec"]["yardstik"] =
            json!({"permissiblePurposeIds": [DEV_PERMISSIBLE_PURPOSE_ID], "legalBusinessName": "Acme"});
        obj
    })
    .await?;
    paced.wait_for(args.n + args.paced, Duration::from_secs(3600)).await;
    let peak = sim.calls().await.peak.get("yardstik").copied().unwrap_or_default();
    table.row(
        "pacing: busiest 1 s at the provider",
        format!(
            "{peak} calls (limit {} + burst {}) onboarding {} Yardstik SubAccounts in {:.1} s",
            args.rate,
            args.burst,
            args.paced,
            started.elapsed().as_secs_f64()
        ),
    );
    result["pacingPeak"] = json!(peak);

    if !args.no_children {
        let (took, rss) = children(&client, &sim, &run, args.concurrency, &args.operator_args, &mut operator).await?;
        table.row("children: 100 SubAccounts, 1000 TeamMembers, 200 PhoneNumbers → Ready", format!("{took:.1} s"));
        table.row("  operator RSS now / peak", rss);
    }
    table.print();
    // The operator lets go of its (Orphan) finalizers, so the namespaces go before the next run.
    drop(operator);
    let operator = Operator::start(&ns, args.concurrency, &args.operator_args)?;
    for ns in [&ns, &floor_ns] {
        delete_namespace(&client, ns).await;
    }
    drop(operator);
    if let Some(dir) = args.results.parent() {
        std::fs::create_dir_all(dir)?;
    }
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&args.results)?;
    writeln!(file, "{result}")?;
    Ok(())
}

/// 50 RecoverBiz SubAccounts with 20 TeamMembers each, 50 Vobiz SubAccounts with 4 PhoneNumbers
/// each, all applied at once; the operator is restarted to watch their namespace.
async fn children(
    client: &Client,
    sim: &Sim,
    run: &str,
    concurrency: u16,
    operator_args: &[String],
    operator: &mut Operator,
) -> Result<(f64, String), Box<dyn std::error::Error>> {
    let ns = namespace(client, &format!("bench-children-{run}")).await?;
    let rb = sim.endpoint("recoverbiz/v1");
    provider_config(client, &ns, "recoverbiz", "RecoverBiz", &rb, 1000, 1000, "1h").await?;
    provider_config(client, &ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 1000, 1000, "1h").await?;
    *operator = Operator::start(&ns, concurrency, operator_args)?;
    let started = Instant::now();
    let accounts = Ready::<SubAccount>::watch(client, &ns);
    let members = Ready::<TeamMember>::watch(client, &ns);
    let numbers = Ready::<PhoneNumber>::watch(client, &ns);
    create_all(client, &ns, 50, |i| sub_account(&format!("rb-{i}"), "recoverbiz")).await?;
    create_all(client, &ns, 50, |i| sub_account(&format!("vz-{i}"), "vobiz")).await?;
    create_all(client, &ns, 1000, |i| {
        json!({"apiVersion": "tenantline.io/v1alpha1", "kind": "TeamMember",
            "metadata": {"name": format!("member-{i}")},
            "spec": {"subAccountRef": {"name": format!("rb-{}", i % 50)}, "email": format!("m{i}@acme.example"),
                "name": format!("Member {i}"), "role": "Member", "deletionPolicy": "Orphan"}})
    })
    .await?;
    create_all(client, &ns, 200, |i| {
        json!({"apiVersion": "tenantline.io/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": format!("number-{i}")},
            "spec": {"subAccountRef": {"name": format!("vz-{}", i % 50)}, "search": {"country": "US"},
                "deletionPolicy": "Retain"}})
    })
    .await?;
    let deadline = Duration::from_secs(1800);
    accounts.wait_for(100, deadline).await;
    members.wait_for(1000, deadline).await;
    numbers.wait_for(200, deadline).await;
    let took = started.elapsed().as_secs_f64();
    let rss = operator.rss();
    delete_namespace(client, &ns).await;
    Ok((took, rss))
}

/// Per object, the essential work: one provider create, one Secret write, one status write.
async fn floor(client: &Client, ns: &str, sim: &Sim, n: usize, concurrency: usize) -> Result<Duration, kube::Error> {
    let accounts = Api::<SubAccount>::namespaced(client.clone(), ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let url = sim.endpoint(&format!("vobiz/api/v1/accounts/{PARENT_ID}/sub-accounts/"));
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let (accounts, secrets, url) = (&accounts, &secrets, &url);
            async move {
                let name = format!("acct-{i}");
                let created: Value = sim
                    .control
                    .http()
                    .post(url)
                    .header("X-Auth-ID", PARENT_ID)
                    .header("X-Auth-Token", PARENT_TOKEN)
                    .json(&json!({"name": name, "email": format!("{name}@acme.example")}))
                    .send()
                    .await
                    .expect("provider create")
                    .json()
                    .await
                    .expect("provider answer");
                let creds = &created["auth_credentials"];
                let id = creds["auth_id"].as_str().unwrap_or_default();
                let secret = json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("{name}-credentials")},
                    "stringData": {"authId": id, "authToken": creds["auth_token"]}});
                let apply = PatchParams::apply("bench-floor").force();
                secrets.patch(&format!("{name}-credentials"), &apply, &Patch::Apply(secret)).await?;
                let status = json!({"status": {"observedGeneration": 1, "externalId": id, "conditions": [{
                    "type": "Ready", "status": "True", "reason": "Provisioned", "message": "provisioned",
                    "observedGeneration": 1, "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string()}]}});
                accounts.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed())
}

fn sub_account(name: &str, config: &str) -> Value {
    json!({"apiVersion": "tenantline.io/v1alpha1", "kind": "SubAccount", "metadata": {"name": name},
        "spec": {"providerConfigRef": {"name": config}, "displayName": format!("Customer {name}"),
            "owner": {"email": format!("{name}@acme.example"), "firstName": "Ana", "lastName": "Diaz"},
            "deletionPolicy": "Orphan"}})
}

/// Create every object (32 at a time), before anything watches them.
async fn create_all(client: &Client, ns: &str, n: usize, object: impl Fn(usize) -> Value) -> Result<(), kube::Error> {
    let api = Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), ns, &resource(&object(0)));
    stream::iter(0..n)
        .map(|i| {
            let (api, obj) = (&api, object(i));
            async move { api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap()).await.map(drop) }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await
}

fn resource(obj: &Value) -> kube::api::ApiResource {
    let kind = obj["kind"].as_str().unwrap();
    let gvk = kube::api::GroupVersionKind::gvk("tenantline.io", "v1alpha1", kind);
    kube::api::ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_lowercase()))
}

async fn namespace(client: &Client, name: &str) -> Result<String, kube::Error> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await?;
    Ok(name.to_owned())
}

/// Delete a namespace and wait (up to ten minutes) until it is gone.
async fn delete_namespace(client: &Client, name: &str) {
    let api = Api::<Namespace>::all(client.clone());
    let _ = api.delete(name, &Default::default()).await;
    for _ in 0..600 {
        if matches!(api.get_opt(name).await, Ok(None)) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("bench: namespace {name} is still there");
}

#[allow(clippy::too_many_arguments)]
async fn provider_config(
    client: &Client,
    ns: &str,
    name: &str,
    provider: &str,
    endpoint: &str,
    rate: i32,
    burst: i32,
    poll: &str,
) -> Result<(), kube::Error> {
    let credentials = match provider {
        "Vobiz" => json!({"authId": PARENT_ID, "authToken": PARENT_TOKEN}),
        "Yardstik" => json!({"apiKey": DEV_YARDSTIK_KEY}),
        _ => json!({"partnerKey": DEV_RECOVERBIZ_KEY}),
    };
    let apply = PatchParams::apply("bench").force();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{name}-parent")},
        "stringData": credentials});
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(&format!("{name}-parent"), &apply, &Patch::Apply(secret))
        .await?;
    let spec = json!({"provider": provider, "endpoint": endpoint,
        "credentialsSecretRef": {"name": format!("{name}-parent")},
        "rateLimit": {"requestsPerSecond": rate, "burst": burst}, "pollInterval": poll});
    let pc = json!({"apiVersion": "tenantline.io/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": name},
        "spec": spec});
    Api::<ProviderConfig>::namespaced(client.clone(), ns).patch(name, &apply, &Patch::Apply(pc)).await?;
    Ok(())
}

fn install_crds() -> Result<(), Box<dyn std::error::Error>> {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/tenantline.io.yaml");
    let new = !Command::new("kubectl").args(["get", "crd", "subaccounts.tenantline.io"]).output()?.status.success();
    for args in [
        vec!["apply", "--server-side", "--force-conflicts", "-f", crds],
        vec!["wait", "--for", "condition=established", "-f", crds],
    ] {
        let out = Command::new("kubectl").args(&args).output()?;
        if !out.status.success() {
            return Err(format!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
    }
    if new {
        // The garbage collector looks for new kinds every 30 s; until it watches SubAccounts it
        // GETs the owner of each new Secret, requests the tables would count as the operator's.
        eprintln!("bench: CRDs installed; waiting 35 s for the garbage collector to watch them");
        std::thread::sleep(Duration::from_secs(35));
    }
    Ok(())
}

/// Counts the objects of a kind in a namespace whose Ready condition is True, from a watch.
struct Ready<K: kube::Resource<DynamicType = ()> + 'static> {
    /// The names of the objects whose latest version is Ready, each judged once per watch event
    /// (not the whole cache every count: at 10,000 objects that cost the bench most of a core).
    ready: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    task: tokio::task::JoinHandle<()>,
    kind: std::marker::PhantomData<K>,
}

impl<K> Ready<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize
        + Send
        + Sync
        + 'static,
{
    fn watch(client: &Client, ns: &str) -> Self {
        let ready = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let seen = ready.clone();
        let stream = watcher(Api::<K>::namespaced(client.clone(), ns), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let task = tokio::spawn(stream.for_each(move |obj| {
            if let Ok(obj) = obj {
                let is_ready =
                    serde_json::to_value(&obj).ok().and_then(|v| v.pointer("/status/conditions").cloned()).is_some_and(
                        |c| c.as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True"),
                    );
                let name = obj.meta().name.clone().unwrap_or_default();
                let mut ready = seen.lock().unwrap();
                if is_ready {
                    ready.insert(name)
                } else {
                    ready.remove(&name)
                };
            }
            futures::future::ready(())
        }));
        Self { ready, task, kind: std::marker::PhantomData }
    }

    fn count(&self) -> usize {
        self.ready.lock().unwrap().len()
    }

    /// Time until `n` are Ready (or `limit` passed: then what it took so far, with a warning).
    async fn wait_for(&self, n: usize, limit: Duration) -> Duration {
        let started = Instant::now();
        while self.count() < n {
            if started.elapsed() > limit {
                eprintln!("bench: only {} of {n} {} Ready after {limit:?}", self.count(), K::kind(&()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    }
}

impl<K: kube::Resource<DynamicType = ()>> Drop for Ready<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The operator's release binary as users run it (`CARGO_BIN_EXE_tenantline`, built by
/// `cargo bench` with the release profile; TENANTLINE_BENCH_OPERATOR names another build),
/// watching one namespace, with admin credentials. Its log (`TENANTLINE_BENCH_LOG`, default `warn`)
/// goes to `.cache/bench/<namespace>.operator.log`.
struct Operator {
    child: Child,
    metrics: std::net::SocketAddr,
}

impl Operator {
    fn start(ns: &str, concurrency: u16, extra: &[String]) -> std::io::Result<Self> {
        Self::start_as(ns, None, concurrency, extra)
    }

    /// `instance`: its POD_NAME (its Events' reportingInstance), and part of its log's name.
    fn start_as(ns: &str, instance: Option<&str>, concurrency: u16, extra: &[String]) -> std::io::Result<Self> {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/bench"));
        std::fs::create_dir_all(&dir)?;
        let name = instance.map_or_else(|| format!("{ns}.operator.log"), |i| format!("{ns}.{i}.operator.log"));
        let log = std::fs::File::create(dir.join(name))?;
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let binary = std::env::var_os("TENANTLINE_BENCH_OPERATOR")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tenantline")), PathBuf::from);
        // The simulator answers plain http; a release before the flag existed took it anyway.
        let help = Command::new(&binary).args(["run", "--help"]).output()?;
        let insecure = String::from_utf8_lossy(&help.stdout).contains("--allow-insecure-endpoints");
        let mut command = Command::new(binary);
        command
            .args(["run", "--watch-namespace", ns, "--metrics-addr", &metrics.to_string()])
            .args(insecure.then_some("--allow-insecure-endpoints"))
            .arg(format!("--concurrency={concurrency}"))
            .args(extra)
            .env("RUST_LOG", std::env::var("TENANTLINE_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(instance) = instance {
            command.env("POD_NAME", instance);
        }
        let child = command.spawn()?;
        Ok(Self { child, metrics })
    }

    /// A field of /proc/<pid>/status, in KiB.
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_default()
    }

    /// Its /metrics samples, `name{labels}` → value (empty while it does not answer).
    async fn metrics(&self, http: &reqwest::Client) -> Vec<(String, f64)> {
        let text = match http.get(format!("http://{}/metrics", self.metrics)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
            .collect()
    }

    fn rss(&self) -> String {
        format!("{:.1} MiB / {:.1} MiB", self.status("VmRSS") as f64 / 1024.0, self.status("VmHWM") as f64 / 1024.0)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds so far of the local control plane's processes, this process (the simulator, the
/// floor client, the Ready watch) and the operator `pid`.
fn cpu(operator: Option<u32>) -> BTreeMap<&'static str, f64> {
    let mut cpu: BTreeMap<_, _> =
        shards::control_plane().into_iter().map(|(name, pid)| (name, shards::cpu_seconds(pid))).collect();
    cpu.insert("bench", shards::cpu_seconds(0));
    if let Some(pid) = operator {
        cpu.insert("operator", shards::cpu_seconds(pid));
    }
    cpu
}

/// CPU milliseconds per object by process over a phase, and the share of the machine's cores
/// they kept busy: where the time went, and whether the machine was the limit.
fn cpu_per_object(before: &BTreeMap<&str, f64>, after: &BTreeMap<&str, f64>, n: usize, took: Duration) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let used: Vec<(&str, f64)> =
        after.iter().map(|(name, s)| (*name, s - before.get(name).copied().unwrap_or_default())).collect();
    let busy = used.iter().map(|(_, s)| s).sum::<f64>() / took.as_secs_f64() / cores * 100.0;
    let each: Vec<String> = used.iter().map(|(name, s)| format!("{name} {:.1} ms", s * 1000.0 / n as f64)).collect();
    format!("{}; {busy:.0}% of {cores} cores busy", each.join(", "))
}

/// The simulator on its own thread, every provider call delayed by the latency fault.
struct Sim {
    control: ControlClient,
    _thread: SimulatorThread,
}

struct Calls {
    by_route: BTreeMap<String, f64>,
    peak: BTreeMap<String, u64>,
}

impl Sim {
    async fn start(latency_ms: u64) -> Self {
        let mut seed = Seed::default();
        seed.recoverbiz.rate_limits =
            Some(RateLimits { account_create_per_hour: 100_000, other_per_minute: 1_000_000 });
        seed.vobiz.accounts[0].inventory = (0..400).map(|i| format!("+1415556{i:04}")).collect();
        let thread = SimulatorThread::start(seed);
        let sim = Self { control: ControlClient::new(thread.addr), _thread: thread };
        sim.reset(latency_ms).await;
        sim
    }

    fn endpoint(&self, path: &str) -> String {
        self.control.url(&format!("/{path}"))
    }

    /// Empty state, then the latency fault on every provider.
    async fn reset(&self, latency_ms: u64) {
        self.control.reset().await;
        for provider in ["recoverbiz", "vobiz", "agentphone", "vobizPartner", "yardstik"] {
            self.control.add_fault(json!({"provider": provider, "fault": {"kind": "latency", "ms": latency_ms}})).await;
        }
    }

    async fn clear_calls(&self) {
        self.control.clear_calls().await;
    }

    /// Calls since the last clear, by provider, method and route; and the busiest second.
    async fn calls(&self) -> Calls {
        let calls = self.control.calls().await;
        let mut by_route = BTreeMap::new();
        for c in &calls.calls {
            *by_route.entry(format!("{} {} {}", c.provider, c.method, c.route)).or_default() += c.count as f64;
        }
        Calls { by_route, peak: calls.peak_per_second }
    }
}

/// `apiserver_request_total` from the API server's own /metrics, by "VERB resource[/sub]".
async fn apiserver(client: &Client) -> Result<BTreeMap<String, f64>, kube::Error> {
    let text = client.request_text(http::Request::get("/metrics").body(Vec::new()).unwrap()).await?;
    let mut totals = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("apiserver_request_total{")) {
        let Some((labels, value)) = line.rsplit_once("} ") else { continue };
        let label = |name: &str| {
            labels.split("\",").find_map(|kv| kv.strip_prefix(&format!("{name}=\""))).map(|v| v.trim_end_matches('"'))
        };
        let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else { continue };
        // The operator's kinds and what it writes; `requests` and `providerconfigusages` for --peer.
        let kinds = ["subaccounts", "teammembers", "phonenumbers", "providerconfigs", "secrets", "events", "leases"];
        if !kinds.contains(&resource) && !["requests", "providerconfigusages"].contains(&resource) {
            continue;
        }
        let sub = label("subresource").filter(|s| !s.is_empty()).map(|s| format!("/{s}")).unwrap_or_default();
        *totals.entry(format!("{verb} {resource}{sub}")).or_default() += value.parse::<f64>().unwrap_or_default();
    }
    Ok(totals)
}

fn diff(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).unwrap_or(&0.0))).filter(|(_, v)| *v > 0.0).collect()
}

/// Totals by verb, plus all writes together.
fn by_verb(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut verbs = BTreeMap::new();
    for (key, v) in diff(before, after) {
        let verb = key.split(' ').next().unwrap().to_owned();
        if WRITES.contains(&verb.as_str()) {
            *verbs.entry("writes".to_owned()).or_default() += v;
        }
        *verbs.entry(verb).or_default() += v;
    }
    verbs
}

fn per_object(counts: &BTreeMap<String, f64>, objects: f64) -> String {
    let total: f64 = counts.iter().filter(|(k, _)| *k != "writes").map(|(_, v)| v).sum();
    // What rounds to 0.00 per object is the control plane's own background, not the operator.
    let parts: Vec<String> =
        counts.iter().filter(|(_, v)| *v / objects >= 0.005).map(|(k, v)| format!("{k}={:.2}", v / objects)).collect();
    format!("{:.2} total: {}", total / objects, parts.join(", "))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!("{cores} cores, {cpu}; load average {}", load.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

#[derive(Default)]
struct Table(Vec<(String, String)>);

impl Table {
    fn row(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        eprintln!("bench: {name}: {value}");
        self.0.push((name.to_owned(), value));
    }

    fn print(&self) {
        let width = self.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!("| {:width$} | result |", "what");
        println!("|{}|--------|", "-".repeat(width + 2));
        for (k, v) in &self.0 {
            println!("| {k:width$} | {v} |");
        }
    }
}
