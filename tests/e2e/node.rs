//! The chart as users install it, on a real node: the image `make image` built, run by kubelet
//! and containerd, reaching the API server through in-cluster config with the chart's
//! ServiceAccount, reconciling against the simulator running as a pod from its own image;
//! leader failover between two replicas; an upgrade from the previous chart version; and what
//! `make demo` runs, the simulator and the quickstart from examples/simulator and
//! examples/in-cluster, found by its Service's name through the cluster's DNS.
//!
//! These need a cluster with a schedulable node that has both images: `make test` starts one and
//! loads them; in kind, `make load` (`kind load image-archive`, once per image) does the loading.
//! Under `make e2e` a cluster without a Ready node fails them (TENANTLINE_E2E_SKIP=node skips them
//! on purpose).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{DeleteParams, ListParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tenantline::api::SubAccount;

use crate::harness::kubectl;
use crate::support::{self, TestNamespace, eventually};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/tenantline");
/// The chart as released before this one (0.1.0), rendered from git history for the upgrade test.
const PREVIOUS_CHART_COMMIT: &str = "7c2708e";
const SIM_HOST: &str = "provider.sim.test";
/// The operator's leader election (src/leader.rs): a Lease lasts this long after its last
/// renewal, and followers (and the leader's renewals) try again this often.
const LEASE: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_secs(3);

pub fn helm(args: &[&str]) -> std::process::Output {
    Command::new("helm").args(args).output().expect("helm on PATH (make test builds it)")
}

fn helm_ok(args: &[&str]) -> String {
    let out = helm(args);
    assert!(out.status.success(), "helm {args:?}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    stdout(&out)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_ok(args: &[&str], stdin: &str) -> String {
    let out = kubectl(args, stdin);
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    stdout(&out)
}

/// A Ready node to run pods on, or `None`: the test is skipped when the cluster has none, or
/// fails saying so under `make e2e` ([`support::cannot_run`]).
async fn node_or_skip(client: &Client) -> Option<()> {
    let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    let ready = nodes.iter().any(|n| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if ready {
        return Some(());
    }
    support::cannot_run(
        "node",
        "the cluster has no Ready node to run the chart's pods on (make test starts one; in kind, make load puts the images on it)",
    );
    None
}

/// The simulator as a pod from its own image, run as shipped (entrypoint and arguments), behind a
/// Service; read through the API server's service proxy, which works from the host and from kind
/// alike.
struct SimPod {
    client: Client,
    ns: String,
    ip: String,
}

impl SimPod {
    async fn start(client: &Client, ns: &str) -> Self {
        let image = sim_image();
        kubectl_ok(
            &["apply", "-n", ns, "-f", "-"],
            &format!(
                r#"
apiVersion: v1
kind: Pod
metadata: {{name: sim, labels: {{app: sim}}}}
spec:
  securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
  - name: sim
    image: {image}
    imagePullPolicy: IfNotPresent
    ports: [{{containerPort: 8787}}]
    readinessProbe: {{tcpSocket: {{port: 8787}}, periodSeconds: 1}}
    securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: [ALL]}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: sim}}
spec:
  selector: {{app: sim}}
  ports: [{{port: 8787, targetPort: 8787}}]
"#
            ),
        );
        kubectl_ok(&["wait", "-n", ns, "--for=condition=Ready", "pod/sim", "--timeout=120s"], "");
        let svc = Api::<Service>::namespaced(client.clone(), ns).get("sim").await.unwrap();
        let ip = svc.spec.unwrap().cluster_ip.unwrap();
        Self { client: client.clone(), ns: ns.to_owned(), ip }
    }

    async fn state(&self) -> Value {
        let path = format!("/api/v1/namespaces/{}/services/sim:8787/proxy/_sim/state", self.ns);
        let text = self.client.request_text(http::Request::get(path).body(Vec::new()).unwrap()).await.unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Chart values that let the operator reach the simulator by name: an /etc/hosts entry for
    /// the Service's address (name resolution inside the scratch image, through kube-proxy).
    fn host_alias(&self) -> String {
        format!("hostAliases[0].ip={},hostAliases[0].hostnames[0]={SIM_HOST}", self.ip)
    }
}

/// The operator's image, as `make image` tags it (`hack/image.sh --ref`).
fn image() -> String {
    format!("ghcr.io/tenantline/tenantline:{}", env!("CARGO_PKG_VERSION"))
}

/// The simulator's image (`hack/image.sh --sim-ref`): the operator's holds no simulator.
fn sim_image() -> String {
    format!("ghcr.io/tenantline/tenantline-sim:{}", env!("CARGO_PKG_VERSION"))
}

/// The quickstart (every provider's example), in `ns`, pointed at the simulator pod.
fn quickstart(ns: &str) -> String {
    let rendered = kubectl_ok(&["kustomize", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart")], "");
    rendered
        .split("\n---\n")
        .filter(|doc| !doc.contains("kind: Namespace"))
        .collect::<Vec<_>>()
        .join("\n---\n")
        .replace("namespace: tenantline-demo", &format!("namespace: {ns}"))
        .replace("http://127.0.0.1:8787", &format!("http://{SIM_HOST}:8787"))
}

fn vobiz_sub_accounts(count: usize) -> String {
    let provider = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/vobiz/provider.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8787", &format!("http://{SIM_HOST}:8787"));
    let mut yaml = provider;
    for i in 0..count {
        yaml.push_str(&format!(
            "\n---\napiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: tenant-{i:03}}}\nspec:\n  providerConfigRef: {{name: vobiz}}\n  displayName: Tenant {i}\n  deletionPolicy: Orphan\n"
        ));
    }
    yaml
}

fn accounts(state: &Value, pointer: &str) -> usize {
    state.pointer(pointer).and_then(Value::as_array).map_or(0, Vec::len)
}

/// What the provider holds, per provider, for the quickstart.
fn quickstart_accounts(state: &Value) -> [usize; 5] {
    [
        accounts(state, "/recoverbiz/accounts"),
        accounts(state, "/vobiz/subAccounts"),
        accounts(state, "/agentphone/subAccounts"),
        accounts(state, "/vobizPartner/accounts"),
        accounts(state, "/yardstik/subAccounts"),
    ]
}

fn wait_all_ready(ns: &str, timeout: &str) {
    let out = kubectl(
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "subaccounts,teammembers,phonenumbers",
            "--all",
            &format!("--timeout={timeout}"),
        ],
        "",
    );
    if !out.status.success() {
        let now = kubectl(&["get", "tenantline", "-n", ns, "-o", "yaml"], "");
        let logs = kubectl(&["logs", "-n", ns, "-l", "app.kubernetes.io/name=tenantline", "--tail=40"], "");
        panic!(
            "not all Ready: {}\n{}\noperator log:\n{}{}",
            String::from_utf8_lossy(&out.stderr),
            stdout(&now),
            stdout(&logs),
            String::from_utf8_lossy(&logs.stderr)
        );
    }
}

/// A node test's world: the CRDs, a fresh namespace (also the Helm release's name) and the
/// simulator pod in it; `None` when the test is skipped for want of a node.
async fn node_world(prefix: &str) -> Option<(Client, TestNamespace, SimPod)> {
    let client = support::client().await;
    node_or_skip(&client).await?;
    support::install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let sim = SimPod::start(&client, &ns.name).await;
    Some((client, ns, sim))
}

/// Remove what a test left without an operator to finish it: finalizers, then the namespace.
async fn abandon(ns: TestNamespace) {
    for kind in ["subaccounts", "teammembers", "phonenumbers"] {
        let names = kubectl(&["get", kind, "-n", &ns.name, "-o", "name"], "");
        for name in stdout(&names).lines() {
            kubectl(&["patch", name, "-n", &ns.name, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#], "");
        }
    }
    ns.delete().await;
}

#[tokio::test]
async fn the_chart_runs_on_a_node_and_reconciles_the_quickstart_through_in_cluster_config() {
    let Some((client, ns, sim)) = node_world("e2e-node").await else { return };
    let release = ns.name.clone();

    let started = Instant::now();
    helm_ok(&[
        "install",
        &release,
        CHART,
        "-n",
        &ns.name,
        "--set",
        &format!("watchNamespace={}", ns.name),
        "--set",
        "allowInsecureEndpoints=true",
        "--set",
        &sim.host_alias(),
        "--wait",
        "--timeout",
        "120s",
    ]);
    let deployment = format!("deployment/{release}-tenantline");
    kubectl_ok(&["wait", "-n", &ns.name, "--for=condition=Available", &deployment, "--timeout=60s"], "");
    eprintln!("chart installed and Available in {:.1}s", started.elapsed().as_secs_f64());

    // The pod runs the image as shipped, with no kubeconfig: the ServiceAccount's token it is.
    let pods = Api::<Pod>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("app.kubernetes.io/name=tenantline"))
        .await
        .unwrap();
    let pod = &pods.items[0];
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some(image().as_str()));
    assert_eq!(spec.service_account_name.as_deref(), Some(format!("{release}-tenantline").as_str()));
    assert!(spec.containers[0].env.iter().flatten().all(|e| e.name != "KUBECONFIG"));
    let status = pod.status.as_ref().unwrap();
    assert!(
        status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True"),
        "the readiness probe answers"
    );

    let started = Instant::now();
    kubectl_ok(&["apply", "--server-side", "-f", "-"], &quickstart(&ns.name));
    wait_all_ready(&ns.name, "180s");
    eprintln!("quickstart Ready through the chart's pod in {:.1}s", started.elapsed().as_secs_f64());
    let state = sim.state().await;
    assert_eq!(quickstart_accounts(&state), [1; 5], "one account per SubAccount at each provider");
    eprintln!("operator memory after the quickstart: {}", working_set(&client, &ns.name, pod).await);
    let log = kubectl_ok(&["logs", "-n", &ns.name, &deployment], "");
    assert!(log.contains("connected to the API server"), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "the chart's RBAC denied something:\n{log}");

    // Uninstall keeps the CRDs and every user resource (and so the accounts at the provider).
    helm_ok(&["uninstall", &release, "-n", &ns.name, "--wait"]);
    kubectl_ok(&["get", "crd", "subaccounts.tenantline.io"], "");
    let left = Api::<SubAccount>::namespaced(client.clone(), &ns.name).list(&ListParams::default()).await.unwrap();
    assert_eq!(left.items.len(), 5, "uninstall left the SubAccounts alone");
    assert_eq!(quickstart_accounts(&sim.state().await), [1; 5]);
    abandon(ns).await;
}

/// `make demo`'s path: examples/simulator, and examples/in-cluster applied as they are, whose
/// endpoints name the simulator's Service in its own namespace: the operator's pod resolves it
/// through the cluster's DNS (CoreDNS on the local node, kind's own), no hostAliases.
#[tokio::test]
async fn the_in_cluster_examples_reach_the_simulator_by_its_service_name() {
    const DEMO: &str = "tenantline-demo";
    const SIM: &str = "tenantline-sim";
    let client = support::client().await;
    if node_or_skip(&client).await.is_none() {
        return;
    }
    support::install_crds(&client).await;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let rendered = kubectl_ok(&["kustomize", &format!("{examples}/in-cluster")], "");
    assert!(!rendered.contains("127.0.0.1"), "every endpoint is moved off the host:\n{rendered}");
    assert_eq!(rendered.matches("endpoint: http://tenantline-sim.tenantline-sim.svc.cluster.local:8787/").count(), 5);

    kubectl_ok(&["apply", "-k", &format!("{examples}/simulator")], "");
    kubectl_ok(&["rollout", "status", "-n", SIM, "deployment/tenantline-sim", "--timeout=120s"], "");
    // The operator watches the examples' namespace only: other tests' resources are not its own.
    helm_ok(&[
        "install",
        "e2e-in-cluster",
        CHART,
        "-n",
        DEMO,
        "--create-namespace",
        "--set",
        &format!("watchNamespace={DEMO}"),
        "--set",
        "allowInsecureEndpoints=true",
        "--wait",
        "--timeout",
        "120s",
    ]);
    kubectl_ok(&["apply", "--server-side", "-k", &format!("{examples}/in-cluster")], "");
    wait_all_ready(DEMO, "180s");
    kubectl_ok(&["wait", "-n", DEMO, "--for=condition=Ready", "providerconfigs", "--all", "--timeout=10s"], "");
    let path = format!("/api/v1/namespaces/{SIM}/services/tenantline-sim:8787/proxy/_sim/state");
    let text = client.request_text(http::Request::get(path).body(Vec::new()).unwrap()).await.unwrap();
    assert_eq!(quickstart_accounts(&serde_json::from_str(&text).unwrap()), [1; 5]);

    helm_ok(&["uninstall", "e2e-in-cluster", "-n", DEMO, "--wait"]);
    // Without the operator, its finalizers stay: on the resources, and `tenantline.io/in-use` on
    // the configs and their Secrets.
    for kind in ["subaccounts", "teammembers", "phonenumbers", "providerconfigs", "secrets"] {
        for name in kubectl_ok(&["get", kind, "-n", DEMO, "-o", "name"], "").lines() {
            kubectl_ok(&["patch", name, "-n", DEMO, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#], "");
        }
    }
    kubectl_ok(&["delete", "namespace", DEMO, SIM, "--timeout=120s"], "");
}

#[tokio::test]
async fn a_second_replica_takes_over_when_the_leader_dies_mid_create_and_nothing_is_made_twice() {
    const ACCOUNTS: usize = 30;
    let Some((client, ns, sim)) = node_world("e2e-failover").await else { return };
    let release = ns.name.clone();
    helm_ok(&[
        "install",
        &release,
        CHART,
        "-n",
        &ns.name,
        "--set",
        &format!("watchNamespace={}", ns.name),
        "--set",
        "allowInsecureEndpoints=true",
        "--set",
        &sim.host_alias(),
        "--set",
        "replicas=2",
        "--wait",
        "--timeout",
        "120s",
    ]);
    kubectl_ok(&["get", "pdb", "-n", &ns.name, &format!("{release}-tenantline")], "");
    let leases = Api::<Lease>::namespaced(client.clone(), &ns.name);
    let holder = || async { leases.get_opt("tenantline-leader").await.ok()??.spec?.holder_identity };
    let leader = eventually(Duration::from_secs(60), holder).await.expect("a replica takes the Lease");

    kubectl_ok(&["apply", "--server-side", "-n", &ns.name, "-f", "-"], &vobiz_sub_accounts(ACCOUNTS));
    // Kill the leader once it has created some accounts but not all.
    let some = eventually(Duration::from_secs(60), || async {
        let n = accounts(&sim.state().await, "/vobiz/subAccounts");
        (n >= 3).then_some(n)
    })
    .await
    .expect("the leader creates accounts");
    let killed = Instant::now();
    Api::<Pod>::namespaced(client.clone(), &ns.name)
        .delete(&leader, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    let successor = eventually(Duration::from_secs(60), || async { holder().await.filter(|h| *h != leader) })
        .await
        .expect("another replica takes the Lease");
    let takeover = killed.elapsed();
    // The dead leader's Lease runs out LEASE_SECONDS after its last renewal, at most that long
    // after the kill; a follower sees it within its retry period. A correctness bound, generous
    // for a loaded machine: a follower that never took an expired Lease, or waited for several
    // expiries, fails it.
    assert!(
        takeover <= LEASE + 2 * RETRY + Duration::from_secs(10),
        "{successor} took the dead leader's Lease only after {takeover:?} (lease {LEASE:?}, retry {RETRY:?})"
    );
    assert!(some < ACCOUNTS, "the leader was killed mid-create ({some} of {ACCOUNTS} made)");
    wait_all_ready(&ns.name, "240s");

    let state = sim.state().await;
    let ids: BTreeSet<String> = Api::<SubAccount>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.status?.managed.external_id)
        .collect();
    eprintln!(
        "failover: leader {leader} killed with {some}/{ACCOUNTS} accounts made; {successor} took the Lease after {:.1}s; provider holds {} accounts for {ACCOUNTS} SubAccounts",
        takeover.as_secs_f64(),
        accounts(&state, "/vobiz/subAccounts")
    );
    assert_eq!(accounts(&state, "/vobiz/subAccounts"), ACCOUNTS, "exactly one account per SubAccount");
    assert_eq!(ids.len(), ACCOUNTS, "every SubAccount has its own account");

    // A clean stop (a rollout, a drain) hands the Lease over at once: the leader releases it
    // (holder cleared) on SIGTERM, seen on a watch of the Lease that misses no version of it, and
    // the next holder has it well before the Lease could have run out.
    let rv = leases.get("tenantline-leader").await.unwrap().metadata.resource_version.unwrap();
    let params = WatchParams::default().fields("metadata.name=tenantline-leader").timeout(60);
    let mut versions = leases.watch(&params, &rv).await.unwrap().boxed();
    let stopped = Instant::now();
    Api::<Pod>::namespaced(client.clone(), &ns.name).delete(&successor, &DeleteParams::default()).await.unwrap();
    let (mut released, mut third) = (None, None);
    while let Some(event) = versions.try_next().await.unwrap() {
        let WatchEvent::Modified(lease) = event else { continue };
        let holder = lease.spec.and_then(|s| s.holder_identity).filter(|h| !h.is_empty());
        match holder {
            None => released = released.or(Some(stopped.elapsed())),
            Some(h) if h != successor => {
                third = Some((h, stopped.elapsed()));
                break;
            }
            Some(_) => {}
        }
    }
    let (third, handover) = third.expect("a replica takes the released Lease within the watch's 60 s");
    eprintln!(
        "graceful stop: the Lease released after {:.1}s; {third} took it after {:.1}s",
        released.unwrap_or_default().as_secs_f64(),
        handover.as_secs_f64()
    );
    assert!(released.is_some(), "{successor} stopped without releasing the Lease ({third} took it after {handover:?})");
    assert!(
        handover < LEASE,
        "the handover took {handover:?}: no faster than the Lease running out ({LEASE:?}) would allow"
    );
    helm_ok(&["uninstall", &release, "-n", &ns.name, "--wait"]);
    abandon(ns).await;
}

#[tokio::test]
async fn upgrading_from_the_previous_chart_keeps_everything_ready_and_creates_nothing_twice() {
    let Some((client, ns, sim)) = node_world("e2e-upgrade").await else { return };
    let release = ns.name.clone();

    let previous = previous_chart(&ns.name);
    // The previous chart's default image never existed; it runs today's. The cluster has today's
    // CRDs already (as after an upgrade's `kubectl apply` of them): the old ones are not installed.
    helm_ok(&[
        "install",
        &release,
        previous.to_str().unwrap(),
        "-n",
        &ns.name,
        "--skip-crds",
        "--set",
        &format!("watchNamespace={}", ns.name),
        "--set",
        &format!("image.tag={}", env!("CARGO_PKG_VERSION")),
        "--wait",
        "--timeout",
        "120s",
    ]);
    // Today's image refuses plain http unless allowed, and that chart cannot say so: allowed the
    // way its users would, on the Deployment.
    let deployment = format!("deployment/{release}-tenantline");
    kubectl_ok(&["set", "env", &deployment, "-n", &ns.name, "TENANTLINE_ALLOW_INSECURE_ENDPOINTS=true"], "");
    kubectl_ok(&["rollout", "status", &deployment, "-n", &ns.name, "--timeout=120s"], "");
    // That chart has no hostAliases: the Service's address stands in the examples.
    let manifests = quickstart(&ns.name).replace(SIM_HOST, &sim.ip);
    kubectl_ok(&["apply", "--server-side", "-f", "-"], &manifests);
    wait_all_ready(&ns.name, "180s");
    let before = sim.state().await;

    helm_ok(&[
        "upgrade",
        &release,
        CHART,
        "-n",
        &ns.name,
        "--set",
        &format!("watchNamespace={}", ns.name),
        "--set",
        "allowInsecureEndpoints=true",
        "--wait",
        "--timeout",
        "120s",
    ]);
    let revision = helm_ok(&["history", &release, "-n", &ns.name, "-o", "json"]);
    assert!(
        revision.contains("\"chart\":\"tenantline-0.1.0\"")
            && revision.contains(&format!("\"chart\":\"tenantline-{}\"", chart_version()))
    );
    // The new pod has taken over (it logs its start) and every resource is still Ready.
    eventually(Duration::from_secs(60), || async {
        let pods = Api::<Pod>::namespaced(client.clone(), &ns.name)
            .list(&ListParams::default().labels("app.kubernetes.io/name=tenantline"))
            .await
            .ok()?;
        (pods.items.len() == 1 && pods.items[0].metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await
    .expect("one operator pod after the upgrade");
    let deployment = format!("deployment/{release}-tenantline");
    eventually(Duration::from_secs(60), || async {
        stdout(&kubectl(&["logs", "-n", &ns.name, &deployment], "")).contains("controllers started").then_some(())
    })
    .await
    .expect("the upgraded operator runs its controllers");
    wait_all_ready(&ns.name, "60s");
    let after = sim.state().await;
    assert_eq!(quickstart_accounts(&before), [1; 5]);
    assert_eq!(quickstart_accounts(&after), [1; 5], "the upgrade created nothing twice");
    assert_eq!(before.pointer("/vobiz/numbers"), after.pointer("/vobiz/numbers"), "no number bought again");
    assert_eq!(before.pointer("/agentphone/numbers"), after.pointer("/agentphone/numbers"));
    helm_ok(&["uninstall", &release, "-n", &ns.name, "--wait"]);
    abandon(ns).await;
}

/// The container's working set as kubelet reports it (what the chart's memory request is sized
/// from), read through the API server's node proxy.
async fn working_set(client: &Client, ns: &str, pod: &Pod) -> String {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let path = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let Ok(text) = client.request_text(http::Request::get(path).body(Vec::new()).unwrap()).await else {
        return "unknown (no stats from kubelet)".into();
    };
    let summary: Value = serde_json::from_str(&text).unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let bytes = summary["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["podRef"]["name"] == name && p["podRef"]["namespace"] == ns)
        .find_map(|p| p["containers"][0]["memory"]["workingSetBytes"].as_u64());
    bytes.map_or("unknown".into(), |b| format!("{:.1} MiB working set", b as f64 / 1048576.0))
}

fn chart_version() -> String {
    let chart = std::fs::read_to_string(format!("{CHART}/Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&chart).unwrap();
    chart["version"].as_str().unwrap().to_owned()
}

/// The chart at PREVIOUS_CHART_COMMIT, from git.
fn previous_chart(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenantline-e2e/previous-chart-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "archive", PREVIOUS_CHART_COMMIT, "charts/tenantline"])
        .output()
        .expect("git");
    assert!(archive.status.success(), "git archive: {}", String::from_utf8_lossy(&archive.stderr));
    let mut tar = Command::new("tar").args(["-x", "-C"]).arg(&dir).stdin(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(tar.stdin.as_mut().unwrap(), &archive.stdout).unwrap();
    assert!(tar.wait().unwrap().success());
    dir.join("charts/tenantline")
}

/// The chart with every optional value on (chart.rs `every_value`), installed on the node: two
/// replicas behind a PodDisruptionBudget, one of them holding the Lease named by leaseName, the
/// pods with the values' scheduling, annotations, labels and resources, its ServiceMonitor and
/// NetworkPolicy, no aggregated tenant roles, the ServiceAccount named by the values; it
/// reconciles a SubAccount carrying its labelSelector through the hostAlias, with plain http,
/// keyed at the provider by its ownerId, and leaves an unlabelled one alone. Then upgraded to
/// leaderElection=false with one replica: no Lease taken, and it still reconciles. (The bridge
/// CNI of `make test`'s node does not enforce NetworkPolicies: the policy is admitted, not tried.)
#[tokio::test]
async fn the_chart_with_every_optional_value_installs_and_runs() {
    let Some((client, ns, sim)) = node_world("e2e-every").await else { return };
    let release = ns.name.clone();
    crate::chart::service_monitor_crd();
    let priority = format!(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {}}}\nvalue: 1000\n\
         description: tenantline e2e, deleted at the end\n",
        ns.name
    );
    kubectl_ok(&["apply", "--server-side", "-f", "-"], &priority);
    kubectl_ok(
        &[
            "create",
            "secret",
            "docker-registry",
            "regcred",
            "-n",
            &ns.name,
            "--docker-server=registry.invalid",
            "--docker-username=e2e",
            "--docker-password=e2e",
        ],
        "",
    );
    let values = crate::chart::values_file(&ns.name, &crate::chart::every_value(&ns.name, &sim.ip));
    let values = values.to_str().unwrap();
    helm_ok(&["install", &release, CHART, "-n", &ns.name, "-f", values, "--wait", "--timeout", "180s"]);
    let deployment = format!("{release}-tenantline");

    // What the values put on the pods, as the API server holds them.
    let pods = Api::<Pod>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default().labels("app.kubernetes.io/name=tenantline"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2, "replicas=2");
    let spec = serde_json::to_value(pods.items[0].spec.as_ref().unwrap()).unwrap();
    let meta = &pods.items[0].metadata;
    assert_eq!(meta.annotations.as_ref().unwrap()["e2e.tenantline.io/annotated"], "yes");
    assert_eq!(meta.labels.as_ref().unwrap()["e2e.tenantline.io/labelled"], "yes");
    assert_eq!(spec["priorityClassName"], ns.name.as_str());
    assert_eq!(spec["serviceAccountName"], "every-value-operator");
    assert_eq!(spec["imagePullSecrets"], serde_json::json!([{"name": "regcred"}]));
    assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
    assert!(spec["tolerations"].to_string().contains("e2e.tenantline.io/dedicated"), "{}", spec["tolerations"]);
    assert!(spec["affinity"]["nodeAffinity"].is_object(), "{}", spec["affinity"]);
    assert_eq!(spec["hostAliases"][0]["hostnames"][0], SIM_HOST);
    let container = &spec["containers"][0];
    assert_eq!(container["resources"]["requests"]["memory"], "40Mi");
    assert_eq!(container["resources"]["limits"]["memory"], "200Mi");
    let args = container["args"].to_string();
    for arg in [
        "--leader-election",
        "--lease-name=tenantline-every-value",
        &format!("--watch-namespace={}", ns.name),
        "--label-selector=tenantline.io/shard=every",
        "--owner-id=every-value-owner",
        "--allow-insecure-endpoints",
        "--metrics-addr=0.0.0.0:9090",
        "--log-format=text",
        "--concurrency=4",
        "--provider-timeout-seconds=5",
    ] {
        assert!(args.contains(arg), "{arg} not in {args}");
    }
    // The objects the values add, and the ones they take away.
    for object in [
        format!("poddisruptionbudget/{deployment}"),
        format!("servicemonitor/{deployment}"),
        format!("networkpolicy/{deployment}"),
        "serviceaccount/every-value-operator".to_owned(),
    ] {
        kubectl_ok(&["get", "-n", &ns.name, &object], "");
    }
    let aggregated = kubectl(&["get", "clusterrole", &format!("{deployment}-tenant-edit")], "");
    assert!(!aggregated.status.success(), "aggregateToDefaultRoles=false still installed the tenant role");
    let leases = Api::<Lease>::namespaced(client.clone(), &ns.name);
    let holder = eventually(Duration::from_secs(60), || async {
        leases.get_opt("tenantline-every-value").await.ok()??.spec?.holder_identity
    })
    .await
    .expect("a replica holds the Lease named by leaseName");
    assert!(pods.items.iter().any(|p| p.metadata.name.as_deref() == Some(holder.as_str())), "{holder}");
    assert!(leases.get_opt("tenantline-leader").await.unwrap().is_none(), "the default Lease was taken too");

    // It reconciles what carries its label, through the hostAlias and plain http, under its owner
    // id; the unlabelled SubAccount is not its own.
    let provider = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/recoverbiz/provider.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8787", &format!("http://{SIM_HOST}:8787"));
    let sub_account = |name: &str, labels: &str| {
        format!(
            "---\napiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: {name}, labels: {labels}}}\n\
             spec: {{providerConfigRef: {{name: recoverbiz}}, displayName: {name}}}\n"
        )
    };
    let labelled = "{tenantline.io/shard: every}";
    let manifests = provider + &sub_account("selected", labelled) + &sub_account("unselected", "{}");
    kubectl_ok(&["apply", "--server-side", "-n", &ns.name, "-f", "-"], &manifests);
    kubectl_ok(&["wait", "-n", &ns.name, "--for=condition=Ready", "subaccount/selected", "--timeout=120s"], "");
    let state = sim.state().await;
    let keys: Vec<String> = state["recoverbiz"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["metadata"]["tenantline.io/key"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(keys, [format!("every-value-owner/{}/selected", ns.name)], "one account, keyed by ownerId");
    let unselected = Api::<SubAccount>::namespaced(client.clone(), &ns.name).get("unselected").await.unwrap();
    let writers = support::writers(&unselected.metadata);
    assert_eq!(
        writers,
        BTreeSet::from(["kubectl".to_owned()]),
        "the unlabelled SubAccount was touched: {unselected:?}"
    );

    // leaderElection=false (with one replica, as the chart requires): no Lease, still reconciling.
    helm_ok(&[
        "upgrade",
        &release,
        CHART,
        "-n",
        &ns.name,
        "-f",
        values,
        "--set",
        "leaderElection=false",
        "--set",
        "replicas=1",
        "--wait",
        "--timeout",
        "180s",
    ]);
    let rendered = kubectl_ok(&["get", "deployment", &deployment, "-n", &ns.name, "-o", "json"], "");
    assert!(!rendered.contains("--leader-election"), "leaderElection=false still elects");
    let pdb = kubectl(&["get", "-n", &ns.name, &format!("poddisruptionbudget/{deployment}")], "");
    assert!(!pdb.status.success(), "one replica has no PodDisruptionBudget");
    kubectl_ok(&["rollout", "status", &format!("deployment/{deployment}"), "-n", &ns.name, "--timeout=120s"], "");
    // The electing replicas gone for good, not just terminating: a follower could still take it.
    eventually(Duration::from_secs(60), || async {
        let pods = Api::<Pod>::namespaced(client.clone(), &ns.name)
            .list(&ListParams::default().labels("app.kubernetes.io/name=tenantline"))
            .await
            .ok()?;
        (pods.items.len() == 1).then_some(())
    })
    .await
    .expect("one operator pod after the upgrade");
    leases.delete("tenantline-every-value", &DeleteParams::default()).await.unwrap();
    kubectl_ok(&["apply", "--server-side", "-n", &ns.name, "-f", "-"], &sub_account("later", labelled));
    kubectl_ok(&["wait", "-n", &ns.name, "--for=condition=Ready", "subaccount/later", "--timeout=120s"], "");
    assert!(leases.get_opt("tenantline-every-value").await.unwrap().is_none(), "a Lease was taken without election");

    helm_ok(&["uninstall", &release, "-n", &ns.name, "--wait"]);
    kubectl_ok(&["delete", "priorityclass", &ns.name], "");
    abandon(ns).await;
}
