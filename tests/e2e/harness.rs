//! The operator as users run it: its binary, under exactly the Helm chart's RBAC, talking to a
//! tenantline-sim over real HTTP, watching one fresh namespace per test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tenantline::api::{ProviderConfig, SubAccount};
use tenantline_sim::client::ControlClient;
use tenantline_sim::{Seed, SimulatorThread};
use tokio::sync::OnceCell;

use crate::support::{self, TestNamespace, eventually};

pub const RELEASE_NAMESPACE: &str = "tenantline-system";
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/tenantline");

/// One test's world: a namespace, a simulator and an operator watching that namespace.
pub struct Env {
    pub client: Client,
    pub ns: TestNamespace,
    pub sim: Sim,
    pub operator: Operator,
}

impl Env {
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, &[]).await
    }

    /// As [`Env::start`], with extra operator flags (e.g. `--max-backoff-seconds`).
    pub async fn start_with(prefix: &str, operator_args: &[&str]) -> Self {
        let mut env = Self::start_paused(prefix).await;
        env.operator.args = operator_args.iter().map(|a| a.to_string()).collect();
        env.operator.restart();
        env
    }

    /// As [`Env::start`], with the operator configured but not started: set its `args`, `env`,
    /// `watch_namespace`, then `operator.restart()`.
    pub async fn start_paused(prefix: &str) -> Self {
        let client = support::client().await;
        support::install_crds(&client).await;
        let kubeconfig = chart_identity(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        let sim = Sim::start().await;
        let operator = Operator::start_paused(kubeconfig, &ns.name);
        Self { client, ns, sim, operator }
    }

    /// Another operator process beside [`Env::operator`], under the same identity and watching
    /// the same namespace, named `instance` (its `POD_NAME`, and so the reportingInstance of its
    /// Events; its log is `<namespace>.<instance>.operator.log`); not started.
    pub fn another_operator(&self, instance: &str) -> Operator {
        let mut op = Operator::start_paused(self.operator.kubeconfig.clone(), &self.ns.name);
        op.log_path = op.log_path.with_file_name(format!("{}.{instance}.operator.log", self.ns.name));
        op.env.push(("POD_NAME".into(), instance.into()));
        op
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// `kubectl apply` YAML into the test namespace, with the examples' simulator address
    /// replaced by this test's.
    pub fn apply(&self, yaml: &str) -> std::process::Output {
        let yaml = yaml.replace("http://127.0.0.1:8787", &format!("http://{}", self.sim.addr));
        kubectl(&["apply", "--server-side", "--field-manager=e2e", "-n", &self.ns.name, "-f", "-"], &yaml)
    }

    pub fn apply_ok(&self, yaml: &str) {
        let out = self.apply(yaml);
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The namespace's tenant ([`Tenant`]), granted `edit` here.
    pub async fn tenant(&self) -> Tenant {
        Tenant { sim: Some(self.sim.addr), ..Tenant::of(&self.ns.name).await }
    }

    /// Every manifest of `examples/<dir>/` (kustomization files aside).
    pub fn apply_example(&self, dir: &str) {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().filter(|f| !f.ends_with("kustomization.yaml")) {
            self.apply_ok(&std::fs::read_to_string(f).unwrap());
        }
    }

    /// Wait until `name` of kind `K` has condition `type_` = `status`; returns the object.
    pub async fn wait_condition<K>(&self, name: &str, type_: &str, status: &str, timeout: Duration) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + serde::Serialize,
    {
        let api = self.api::<K>();
        let found = eventually(timeout, || async {
            let obj = api.get_opt(name).await.ok()??;
            let v = serde_json::to_value(&obj).ok()?;
            let conditions = v.pointer("/status/conditions")?.as_array()?.clone();
            conditions.iter().any(|c| c["type"] == type_ && c["status"] == status).then_some(obj)
        })
        .await;
        match found {
            Some(obj) => obj,
            None => {
                let current = api.get_opt(name).await.ok().flatten().map(|o| serde_json::to_value(o).unwrap());
                panic!(
                    "{} {name}: {type_} never became {status} within {timeout:?}; now: {}\noperator log tail:\n{}",
                    K::kind(&()),
                    current.map(|v| v["status"].to_string()).unwrap_or_else(|| "gone".into()),
                    self.operator.log_tail(40)
                )
            }
        }
    }

    pub async fn wait_ready<K>(&self, name: &str) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + serde::Serialize,
    {
        self.wait_condition::<K>(name, "Ready", "True", Duration::from_secs(90)).await
    }

    /// Wait until the object is gone from the API server.
    pub async fn wait_gone<K>(&self, name: &str, timeout: Duration) -> bool
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api = self.api::<K>();
        eventually(timeout, || async { api.get_opt(name).await.ok()?.is_none().then_some(()) }).await.is_some()
    }

    pub async fn secret(&self, name: &str) -> Option<Secret> {
        self.api::<Secret>().get_opt(name).await.unwrap()
    }

    /// Events on objects of this namespace, as `(reason, message)`.
    pub async fn events(&self) -> Vec<(String, String)> {
        let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(self.client.clone(), &self.ns.name)
            .list(&ListParams::default())
            .await
            .unwrap();
        let core =
            Api::<Event>::namespaced(self.client.clone(), &self.ns.name).list(&ListParams::default()).await.unwrap();
        events
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .chain(core.into_iter().map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default())))
            .collect()
    }

    /// Wait until an Event with `reason` whose message contains `text` is recorded: the operator
    /// publishes Events off the reconcile's path, so one may land after the state it reports.
    pub async fn wait_event(&self, reason: &str, text: &str) -> bool {
        let found = eventually(Duration::from_secs(20), || async {
            self.events().await.iter().any(|(r, message)| r == reason && message.contains(text)).then_some(())
        })
        .await;
        found.is_some()
    }

    /// Fail if any of `secrets` appears in the operator's log, in an Event, or in the status of a
    /// SubAccount of this namespace.
    pub async fn assert_no_leak(&self, secrets: &[String]) {
        let log = self.operator.log();
        let events = format!("{:?}", self.events().await);
        let statuses: Vec<Value> = self
            .api::<SubAccount>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| serde_json::to_value(s.status).unwrap())
            .collect();
        let statuses = serde_json::to_string(&statuses).unwrap();
        for s in secrets.iter().filter(|s| s.len() >= 6) {
            assert!(!log.contains(s.as_str()), "a credential appears in the operator log");
            assert!(!events.contains(s.as_str()), "a credential appears in an Event");
            assert!(!statuses.contains(s.as_str()), "a credential appears in a status");
        }
    }

    /// Delete the test's resources while the operator still runs (their finalizers need it),
    /// then the namespace.
    /// A deletion that does not finish is a bug the test reports.
    pub async fn finish(self) {
        let out = kubectl(
            &["delete", "subaccounts,teammembers,phonenumbers", "--all", "-n", &self.ns.name, "--timeout=60s"],
            "",
        );
        if !out.status.success() {
            let left = kubectl(&["get", "tenantline", "-n", &self.ns.name, "-o", "yaml"], "");
            panic!(
                "the test's resources were not deleted: {}\n{}\noperator log tail:\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&left.stdout),
                self.operator.log_tail(60)
            );
        }
        // The configs and their Secrets are held (in use) until their SubAccounts are gone: the
        // operator lets go of them before it stops, or the namespace could never go.
        let configs = self.api::<ProviderConfig>();
        let released = eventually(Duration::from_secs(30), || async {
            let configs = configs.list(&ListParams::default()).await.ok()?;
            configs.iter().all(|pc| !pc.finalizers().iter().any(|f| f == "tenantline.io/in-use")).then_some(())
        })
        .await;
        assert!(released.is_some(), "a ProviderConfig stayed in use\n{}", self.operator.log_tail(60));
        self.ns.delete().await;
    }
}

/// The tenant of a namespace: user `tenant-<namespace>` holding Kubernetes' built-in `edit` role
/// there (which the chart's aggregated tenant role extends with SubAccounts, TeamMembers and
/// PhoneNumbers), as a platform team hands a team its namespace. Its kubectl runs as that user,
/// impersonated by the admin kubeconfig.
pub struct Tenant {
    pub user: String,
    pub namespace: String,
    /// The simulator that replaces the examples' address in what it applies (see [`Env::apply`]).
    sim: Option<SocketAddr>,
}

impl Tenant {
    /// Bind `edit` to the tenant in `namespace`, and wait until the API server lets it create
    /// SubAccounts: the chart's RBAC ([`chart_identity`]) reaches `edit` by aggregation, which
    /// the controller manager does asynchronously.
    pub async fn of(namespace: &str) -> Self {
        let user = format!("tenant-{namespace}");
        let binding = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: tenant-edit, namespace: {namespace}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}\n\
             subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]\n"
        );
        let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-f", "-"], &binding);
        assert!(out.status.success(), "binding edit to {user}: {}", String::from_utf8_lossy(&out.stderr));
        let tenant = Self { user, namespace: namespace.to_owned(), sim: None };
        let granted =
            eventually(Duration::from_secs(30), || async { tenant.can_i(&["create", "subaccounts"]).then_some(()) })
                .await;
        assert!(granted.is_some(), "{} never got tenantline's kinds through `edit`", tenant.user);
        tenant
    }

    /// kubectl as the tenant, in its namespace.
    pub fn kubectl(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let who = format!("--as={}", self.user);
        let all: Vec<&str> =
            [who.as_str(), "-n", self.namespace.as_str()].into_iter().chain(args.iter().copied()).collect();
        kubectl(&all, stdin)
    }

    /// `kubectl apply` as the tenant, with the examples' simulator address replaced as [`Env::apply`] does.
    pub fn apply(&self, yaml: &str) -> std::process::Output {
        let yaml = match self.sim {
            Some(addr) => yaml.replace("http://127.0.0.1:8787", &format!("http://{addr}")),
            None => yaml.to_owned(),
        };
        self.kubectl(&["apply", "--server-side", "--field-manager=tenant", "-f", "-"], &yaml)
    }

    pub fn apply_ok(&self, yaml: &str) {
        let out = self.apply(yaml);
        assert!(out.status.success(), "kubectl apply as {}: {}", self.user, String::from_utf8_lossy(&out.stderr));
    }

    /// Ask for the deletion of `resource` (e.g. `subaccount/x`) as the tenant, without waiting for it.
    pub fn delete(&self, resource: &str) {
        let out = self.kubectl(&["delete", resource, "--wait=false"], "");
        assert!(out.status.success(), "kubectl delete as {}: {}", self.user, String::from_utf8_lossy(&out.stderr));
    }

    /// `kubectl auth can-i <request…>` (e.g. `["patch", "subaccounts", "--subresource=status"]`)
    /// as the tenant, in its namespace.
    pub fn can_i(&self, request: &[&str]) -> bool {
        let args: Vec<&str> = ["auth", "can-i"].into_iter().chain(request.iter().copied()).collect();
        let out = self.kubectl(&args, "");
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    }
}

/// Run kubectl (the one `make` built, on PATH) with the admin KUBECONFIG.
pub fn kubectl(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH (make test puts the built one there)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

static CHART_IDENTITY: OnceCell<PathBuf> = OnceCell::const_new();

/// Install the chart's ServiceAccount and RBAC (rendered by helm, nothing else) and return a
/// kubeconfig for that ServiceAccount: the operator runs in tests with exactly the chart's rights.
pub async fn chart_identity(client: &Client) -> PathBuf {
    CHART_IDENTITY
        .get_or_init(|| async {
            let rendered = Command::new("helm")
                .args(["template", "tenantline", CHART, "--namespace", RELEASE_NAMESPACE])
                .args(["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"])
                .output()
                .expect("helm on PATH (make test builds it)");
            assert!(rendered.status.success(), "helm template: {}", String::from_utf8_lossy(&rendered.stderr));
            let ns = kubectl(&["create", "namespace", RELEASE_NAMESPACE], "");
            assert!(
                ns.status.success() || String::from_utf8_lossy(&ns.stderr).contains("AlreadyExists"),
                "{}",
                String::from_utf8_lossy(&ns.stderr)
            );
            let applied = kubectl(&["apply", "--server-side", "-f", "-"], &String::from_utf8(rendered.stdout).unwrap());
            assert!(
                applied.status.success(),
                "applying the chart's RBAC: {}",
                String::from_utf8_lossy(&applied.stderr)
            );
            support::service_account_kubeconfig(client, RELEASE_NAMESPACE, "tenantline").await
        })
        .await
        .clone()
}

/// The operator binary, as a child process with its log captured to a file.
pub struct Operator {
    child: Option<Child>,
    /// The binary started; TENANTLINE_E2E_OPERATOR runs the tests against another build (a
    /// release, an older commit).
    binary: PathBuf,
    kubeconfig: PathBuf,
    /// `--watch-namespace`: the test's namespace; `None` runs it cluster-wide, as the chart does
    /// by default (see tests/cluster_wide.rs for what that takes on a shared cluster).
    pub watch_namespace: Option<String>,
    pub log_path: PathBuf,
    pub metrics: SocketAddr,
    pub starts: u32,
    /// When the running process was started.
    pub started_at: k8s_openapi::jiff::Timestamp,
    /// Extra flags for `tenantline run`.
    pub args: Vec<String>,
    /// Extra environment variables (e.g. `POD_NAME`).
    pub env: Vec<(String, String)>,
}

impl Operator {
    pub fn start(kubeconfig: PathBuf, namespace: &str) -> Self {
        let mut op = Self::start_paused(kubeconfig, namespace);
        op.spawn();
        op
    }

    /// The operator, configured but not yet running (call `restart`).
    pub fn start_paused(kubeconfig: PathBuf, namespace: &str) -> Self {
        let log_path = std::env::temp_dir().join(format!("tenantline-e2e/{namespace}.operator.log"));
        std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
        let metrics = free_addr();
        let binary = std::env::var_os("TENANTLINE_E2E_OPERATOR")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tenantline")), PathBuf::from);
        Self {
            child: None,
            binary,
            kubeconfig,
            watch_namespace: Some(namespace.to_owned()),
            log_path,
            metrics,
            starts: 0,
            started_at: k8s_openapi::jiff::Timestamp::now(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn spawn(&mut self) {
        self.started_at = k8s_openapi::jiff::Timestamp::now();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).unwrap();
        let watch = self.watch_namespace.iter().flat_map(|ns| ["--watch-namespace", ns.as_str()]);
        let child = Command::new(&self.binary)
            .args(["run", "--provider-timeout-seconds", "3"])
            .args(watch)
            // The simulator answers plain http on loopback (builds from before the flag allow it
            // anyway, and refuse a flag they do not know).
            .args(knows_flag(&self.binary, "--allow-insecure-endpoints").then_some("--allow-insecure-endpoints"))
            .args(["--metrics-addr", &self.metrics.to_string()])
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,tenantline=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the operator binary");
        self.child = Some(child);
        self.starts += 1;
    }

    /// SIGKILL: no shutdown, no cleanup, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process started last is still running (it did not exit on its own).
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stop this operator and start `binary` in its place (an upgrade or a downgrade).
    pub fn replace_with(&mut self, binary: PathBuf) {
        self.binary = binary;
        self.restart();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `binary run --help` lists `flag`: TENANTLINE_E2E_OPERATOR may name an older build that
/// does not know a flag the tests pass to the current one. Asked once per binary.
fn knows_flag(binary: &std::path::Path, flag: &str) -> bool {
    static HELP: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
    let mut help = HELP.lock().unwrap();
    let text = help.entry(binary.to_owned()).or_insert_with(|| {
        let out = Command::new(binary).args(["run", "--help"]).output().expect("run the operator binary");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    text.split(|c: char| c.is_whitespace() || c == ',').any(|word| word == flag)
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A tenantline-sim for one test, over real HTTP on loopback, on its own thread (a test blocked
/// on kubectl must not stop the provider from answering the operator); its control API through
/// the simulator's own client.
pub struct Sim {
    pub addr: SocketAddr,
    control: ControlClient,
    _thread: SimulatorThread,
}

impl Sim {
    pub async fn start() -> Self {
        let thread = SimulatorThread::start(Seed::default());
        Self { addr: thread.addr, control: ControlClient::new(thread.addr), _thread: thread }
    }

    /// Calls to `provider` (`recoverbiz`, `vobiz`, …) with `method` on `route` (the simulator's
    /// route template without the provider prefix, e.g. `/v1/accounts`).
    pub async fn calls(&self, provider: &str, method: &str, route: &str) -> u64 {
        self.control.calls_to(provider, method, route).await
    }

    /// The simulator's control client itself (its `calls` counts every route at once).
    pub fn control(&self) -> &ControlClient {
        &self.control
    }

    /// Calls to `provider` whose method is (`get: true`) or is not (`get: false`) GET.
    pub async fn calls_by_kind(&self, provider: &str, get: bool) -> u64 {
        self.control.calls().await.count_by_kind(provider, get)
    }
}

impl std::ops::Deref for Sim {
    type Target = ControlClient;

    fn deref(&self) -> &ControlClient {
        &self.control
    }
}
