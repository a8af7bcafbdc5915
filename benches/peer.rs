//! `make bench PEER=1` (`--peer`): the operator beside the nearest thing a platform team would use
//! instead, Crossplane's provider-http (`hack/tools.sh provider-http`, its CRDs read from the Go
//! module cache), both onboarding N Vobiz sub-accounts at the same simulator with the same
//! latency. provider-http runs as a host process against the same API server: one `Request`
//! (`http.crossplane.io/v1alpha2`) per sub-account, with a POST mapping (the operator's create:
//! same route, parent headers, name/email/description), a GET mapping (observe) and the token
//! written into a Secret by `secretInjectionConfigs`. Then a smaller run of each with part of
//! the creates applied but their response lost, counting duplicate sub-accounts. Prints one table;
//! asserts nothing. See BENCHMARKS.md.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::*;

const MODULE: &str = "github.com/crossplane-contrib/provider-http";

/// One row of the table: what it shows of an outcome.
type Cell = fn(&Outcome) -> String;

/// What one run of one controller measured.
#[derive(Default)]
struct Outcome {
    ready: usize,
    seconds: f64,
    provider: String,
    creates: f64,
    api: String,
    writes: f64,
    by_resource: String,
    rss: String,
    duplicates: Duplicates,
}

#[derive(Default)]
struct Duplicates {
    accounts: usize,
    names: usize,
    extra: usize,
}

impl std::fmt::Display for Duplicates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} extra sub-accounts ({} of {} names more than once)",
            self.extra,
            self.names,
            self.accounts - self.extra
        )
    }
}

pub async fn run(client: &Client, sim: &Sim, run: &str, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = module_dir()?;
    let binary = std::env::var_os("TENANTLINE_BENCH_PEER")
        .map_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/bin/provider-http")), PathBuf::from);
    kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &format!("{}/package/crds", dir.display())])?;
    kubectl(&["wait", "--for", "condition=established", "-f", &format!("{}/package/crds", dir.display())])?;
    let version = dir.file_name().and_then(|d| d.to_str()).and_then(|d| d.split_once('@')).map_or("?", |(_, v)| v);

    let mut table = Table::default();
    table.row("machine", machine());
    table.row(
        "setup",
        format!(
            "N={} latency={}ms; tenantline --concurrency={}; provider-http {version} --max-reconcile-rate={} --poll=1m; \
             lost-response run: {} objects, {:.0}% of creates applied with the response lost",
            args.n,
            args.latency_ms,
            args.concurrency,
            args.peer_rate,
            args.peer_lost,
            args.lost_probability * 100.0
        ),
    );
    let mut cleanup = Vec::new();

    sim.reset(args.latency_ms).await;
    let ours = run_ours(client, sim, &format!("bench-peer-{run}"), args.n, args, &mut cleanup).await?;
    sim.reset(args.latency_ms).await;
    let theirs = run_provider_http(client, sim, &binary, &format!("peer-{run}"), args.n, args).await?;
    let mut rows: Vec<(&str, Cell)> = vec![
        ("N → Ready", |o| format!("{:.1} s ({} Ready)", o.seconds, o.ready)),
        ("provider calls / object", |o| o.provider.clone()),
        ("API requests / object", |o| o.api.clone()),
        ("API writes / object", |o| format!("{:.2}", o.writes)),
        ("API requests / object by resource", |o| o.by_resource.clone()),
        ("RSS now / peak", |o| o.rss.clone()),
        ("duplicates", |o| o.duplicates.to_string()),
    ];
    for (name, cell) in &rows {
        table.row(&format!("{name}: tenantline"), cell(&ours));
        table.row(&format!("{name}: provider-http"), cell(&theirs));
    }

    if args.peer_lost > 0 {
        let n = args.peer_lost;
        lose_responses(sim, args).await;
        let ours = run_ours(client, sim, &format!("bench-peer-lost-{run}"), n, args, &mut cleanup).await?;
        lose_responses(sim, args).await;
        let theirs = run_provider_http(client, sim, &binary, &format!("peer-lost-{run}"), n, args).await?;
        rows.truncate(0);
        rows.push(("lost responses: N → Ready", |o| format!("{:.1} s ({} Ready)", o.seconds, o.ready)));
        rows.push(("lost responses: creates / object", |o| format!("{:.2}", o.creates)));
        rows.push(("lost responses: provider calls / object", |o| o.provider.clone()));
        rows.push(("lost responses: duplicates", |o| o.duplicates.to_string()));
        for (name, cell) in &rows {
            table.row(&format!("{name}: tenantline"), cell(&ours));
            table.row(&format!("{name}: provider-http"), cell(&theirs));
        }
    }
    table.print();

    // The operator lets go of its (Orphan) finalizers, so the namespaces go before the next run.
    for ns in cleanup {
        let operator = Operator::start(&ns, args.concurrency, &args.operator_args)?;
        delete_namespace(client, &ns).await;
        drop(operator);
    }
    Ok(())
}

/// The operator onboarding `n` SubAccounts in a fresh namespace, as in the main table.
async fn run_ours(
    client: &Client,
    sim: &Sim,
    ns: &str,
    n: usize,
    args: &Args,
    cleanup: &mut Vec<String>,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let ns = namespace(client, ns).await?;
    cleanup.push(ns.clone());
    provider_config(client, &ns, "vobiz", "Vobiz", &sim.endpoint("vobiz/api/v1"), 1000, 1000, "1h").await?;
    create_all(client, &ns, n, |i| sub_account(&format!("acct-{i}"), "vobiz")).await?;
    let ready = Ready::<SubAccount>::watch(client, &ns);
    sim.clear_calls().await;
    let before = apiserver(client).await?;
    let operator = Operator::start(&ns, args.concurrency, &args.operator_args)?;
    let took = ready.wait_for(n, Duration::from_secs(1800)).await;
    let after = apiserver(client).await?;
    let rss = operator.rss();
    drop(operator);
    Ok(outcome(sim, n, ready.count(), took, &before, &after, rss).await)
}

/// provider-http onboarding `n` Requests (cluster-scoped, named `<name>-<i>`), their Secrets in
/// the namespace `<name>`; stopped, and its objects removed, after.
async fn run_provider_http(
    client: &Client,
    sim: &Sim,
    binary: &std::path::Path,
    name: &str,
    n: usize,
    args: &Args,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let ns = namespace(client, name).await?;
    let apply = PatchParams::apply("bench").force();
    let parent = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vobiz-parent"},
        "stringData": {"authId": PARENT_ID, "authToken": PARENT_TOKEN}});
    Api::<Secret>::namespaced(client.clone(), &ns).patch("vobiz-parent", &apply, &Patch::Apply(parent)).await?;
    let configs = Api::<DynamicObject>::all_with(client.clone(), &http_resource("v1alpha1", "ProviderConfig"));
    let config = json!({"apiVersion": "http.crossplane.io/v1alpha1", "kind": "ProviderConfig",
        "metadata": {"name": name}, "spec": {"credentials": {"source": "None"}}});
    configs.patch(name, &apply, &Patch::Apply(config)).await?;

    let requests = http_resource("v1alpha2", "Request");
    let api = Api::<DynamicObject>::all_with(client.clone(), &requests);
    stream::iter(0..n)
        .map(|i| {
            let (api, obj) = (&api, request(name, &ns, i, &sim.endpoint("vobiz/api/v1")));
            async move { api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap()).await.map(drop) }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await?;
    let selector = format!("bench.tenantline.io/run={name}");
    let ready = ReadyRequests::watch(client, &requests, &selector);
    sim.clear_calls().await;
    let before = apiserver(client).await?;
    let peer = Peer::start(binary, name, args.peer_rate)?;
    let took = ready.wait_for(n, Duration::from_secs(1800)).await;
    let after = apiserver(client).await?;
    let rss = format!(
        "{:.1} MiB / {:.1} MiB",
        proc_status(peer.0.id(), "VmRSS") as f64 / 1024.0,
        proc_status(peer.0.id(), "VmHWM") as f64 / 1024.0
    );
    drop(peer);
    let outcome = outcome(sim, n, ready.count(), took, &before, &after, rss).await;

    // Stopped: drop the finalizers it holds (Orphan: nothing to delete at the provider), then
    // the objects; the ProviderConfigUsages go with their Requests (owner references).
    let unfinalize = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    for obj in api.list(&ListParams::default().labels(&selector)).await? {
        let name = obj.metadata.name.unwrap_or_default();
        let _ = api.patch(&name, &PatchParams::default(), &unfinalize).await;
        let _ = api.delete(&name, &Default::default()).await;
    }
    let _ = configs.patch(name, &PatchParams::default(), &unfinalize).await;
    let _ = configs.delete(name, &Default::default()).await;
    delete_namespace(client, &ns).await;
    Ok(outcome)
}

/// One sub-account as a Request: the operator's create (POST `…/sub-accounts/` with the parent's
/// `X-Auth-ID`/`X-Auth-Token` from a Secret, name, email, a description), observed by GET of the
/// created `auth_id`; the token goes to the Secret `acct-<i>-credentials` as the docs show
/// (`secretInjectionConfigs`). No PUT mapping (nothing to update) and no DELETE mapping
/// (`deletionPolicy: Orphan`, as the operator's bench objects).
fn request(run: &str, ns: &str, i: usize, endpoint: &str) -> Value {
    let name = format!("acct-{i}");
    let body = json!({"name": format!("Customer {name}"), "email": format!("{name}@acme.example"),
        "description": format!("[bench/{run}/{name}]"), "enabled": true});
    let auth = |key: &str| json!([format!("(\"{{{{ vobiz-parent:{ns}:{key} }}}}\")")]);
    json!({"apiVersion": "http.crossplane.io/v1alpha2", "kind": "Request",
    "metadata": {"name": format!("{run}-{i}"), "labels": {"bench.tenantline.io/run": run}},
    "spec": {"deletionPolicy": "Orphan", "providerConfigRef": {"name": run},
        "forProvider": {
            "headers": {"Content-Type": ["application/json"], "X-Auth-ID": auth("authId"), "X-Auth-Token": auth("authToken")},
            "payload": {"baseUrl": format!("{endpoint}/accounts/{PARENT_ID}/sub-accounts"), "body": body.to_string()},
            "mappings": [
                {"method": "POST", "url": "(.payload.baseUrl + \"/\")", "body": ".payload.body"},
                {"method": "GET",
                    "url": "(.payload.baseUrl + \"/\" + (.response.body.auth_credentials.auth_id // .response.body.auth_id))"},
            ],
            "secretInjectionConfigs": [{"secretRef": {"name": format!("{name}-credentials"), "namespace": ns},
                "secretKey": "authToken", "responsePath": ".body.auth_credentials.auth_token"}],
        }}})
}

/// Part of Vobiz's creates applied with their response lost (the connection closed); the rule
/// goes first, as the simulator applies the first matching rule, then the latency.
async fn lose_responses(sim: &Sim, args: &Args) {
    sim.reset(args.latency_ms).await;
    sim.control.clear_faults().await;
    let lost = json!({"kind": "afterApply"});
    let probability = json!({"probability": args.lost_probability});
    sim.control.fault("vobiz", "POST", Some("/api/v1/accounts/{auth_id}/sub-accounts/"), lost, probability).await;
    for provider in ["recoverbiz", "vobiz", "agentphone", "vobizPartner", "yardstik"] {
        sim.control.add_fault(json!({"provider": provider, "fault": {"kind": "latency", "ms": args.latency_ms}})).await;
    }
}

async fn outcome(
    sim: &Sim,
    n: usize,
    ready: usize,
    took: Duration,
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    rss: String,
) -> Outcome {
    let calls = sim.calls().await;
    let creates = calls.by_route.iter().filter(|(k, _)| k.starts_with("vobiz POST")).map(|(_, v)| v).sum::<f64>();
    let verbs = by_verb(before, after);
    Outcome {
        ready,
        seconds: took.as_secs_f64(),
        provider: per_object(&calls.by_route, n as f64),
        creates: creates / n as f64,
        writes: verbs.get("writes").copied().unwrap_or_default() / n as f64,
        api: per_object(&verbs, n as f64),
        by_resource: per_object(&diff(before, after), n as f64),
        rss,
        duplicates: duplicates(sim).await,
    }
}

/// Vobiz sub-accounts that share a name with an earlier one.
async fn duplicates(sim: &Sim) -> Duplicates {
    let state = sim.control.state().await;
    let mut names = BTreeMap::<String, usize>::new();
    for sub in state["vobiz"]["subAccounts"].as_array().into_iter().flatten() {
        *names.entry(sub["name"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    Duplicates {
        accounts: names.values().sum(),
        names: names.values().filter(|&&c| c > 1).count(),
        extra: names.values().map(|c| c - 1).sum(),
    }
}

fn http_resource(version: &str, kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("http.crossplane.io", version, kind);
    ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_lowercase()))
}

/// The module's directory in the Go module cache, at the version hack/provider-http pins.
fn module_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let out = Command::new("go")
        .args(["list", "-m", "-f", "{{.Dir}}", MODULE])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/provider-http"))
        .output()?;
    let dir = String::from_utf8(out.stdout)?.trim().to_owned();
    if !out.status.success() || dir.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{MODULE} is not in the module cache (hack/tools.sh provider-http): {err}").into());
    }
    Ok(PathBuf::from(dir))
}

fn kubectl(args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new("kubectl").args(args).output()?;
    if !out.status.success() {
        return Err(format!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A field of /proc/<pid>/status, in KiB.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_default()
}

/// provider-http as a host process against the KUBECONFIG the bench uses; its log in
/// .cache/bench/<name>.provider-http.log.
struct Peer(Child);

impl Peer {
    fn start(binary: &std::path::Path, name: &str, rate: u32) -> Result<Self, Box<dyn std::error::Error>> {
        if !binary.exists() {
            return Err(format!("{} is missing: hack/tools.sh provider-http", binary.display()).into());
        }
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/bench"));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join(format!("{name}.provider-http.log")))?;
        let child = Command::new(binary)
            .arg(format!("--max-reconcile-rate={rate}"))
            .arg("--poll=1m")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(Self(child))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Counts the Requests (cluster-scoped, by label) whose Ready condition is True, from a watch.
struct ReadyRequests {
    store: reflector::Store<DynamicObject>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyRequests {
    fn watch(client: &Client, resource: &ApiResource, selector: &str) -> Self {
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let api = Api::<DynamicObject>::all_with(client.clone(), resource);
        let stream = watcher(api, watcher::Config::default().labels(selector))
            .default_backoff()
            .reflect(writer)
            .applied_objects();
        let task = tokio::spawn(stream.for_each(|_| async {}));
        Self { store, task }
    }

    fn count(&self) -> usize {
        let ready = |obj: &DynamicObject| {
            obj.data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        };
        self.store.state().iter().filter(|o| ready(o)).count()
    }

    async fn wait_for(&self, n: usize, limit: Duration) -> Duration {
        let started = Instant::now();
        while self.count() < n {
            if started.elapsed() > limit {
                eprintln!("bench: only {} of {n} Requests Ready after {limit:?}", self.count());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    }
}

impl Drop for ReadyRequests {
    fn drop(&mut self) {
        self.task.abort();
    }
}
