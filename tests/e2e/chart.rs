//! The Helm chart lints, renders, passes a server-side dry run, installs, and its RBAC is enough
//! for the operator (which every other operator test also runs under).

use std::process::Command;
use std::time::Duration;

use crate::harness::{Env, kubectl};
use crate::support::{self, eventually};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/tenantline");

fn helm(args: &[&str]) -> String {
    let out = Command::new("helm").args(args).output().expect("helm on PATH (make test builds it)");
    assert!(
        out.status.success(),
        "helm {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_chart_lints_renders_dry_runs_and_installs() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::TestNamespace::new(&client, "e2e-chart").await;
    helm(&["lint", CHART, "--strict"]);
    let rendered = helm(&["template", "tl", CHART, "--namespace", &ns.name]);
    let dry = kubectl(&["apply", "--server-side", "--dry-run=server", "-n", &ns.name, "-f", "-"], &rendered);
    assert!(dry.status.success(), "server-side dry run: {}", String::from_utf8_lossy(&dry.stderr));
    // Its operator watches only this test's namespace: a cluster-wide one would reconcile every
    // other test's resources beside their own operators.
    let watch = format!("watchNamespace={}", ns.name);
    helm(&["install", "tl", CHART, "--namespace", &ns.name, "--set", &watch, "--set", "allowInsecureEndpoints=true"]);
    let deployment = kubectl(&["get", "deployment", "tl-tenantline", "-n", &ns.name, "-o", "name"], "");
    assert!(deployment.status.success(), "the chart's Deployment exists");
    helm(&["uninstall", "tl", "--namespace", &ns.name]);
    ns.delete().await;
}

/// Chart values with every optional value set (see values.yaml): what the chart renders beyond its
/// defaults. `sim_ip`: the address `provider.sim.test` resolves to in the pod (hostAliases).
pub fn every_value(ns: &str, sim_ip: &str) -> String {
    format!(
        r#"
image: {{pullPolicy: IfNotPresent}}
imagePullSecrets: [{{name: regcred}}]
replicas: 2
leaderElection: true
leaseName: tenantline-every-value
podDisruptionBudget: {{minAvailable: 1}}
logFormat: text
logLevel: debug
metricsPort: 9090
concurrency: 4
providerTimeoutSeconds: 5
ownerId: every-value-owner
watchNamespace: {ns}
allowInsecureEndpoints: true
aggregateToDefaultRoles: false
labelSelector: tenantline.io/shard=every
serviceAccount: {{name: every-value-operator}}
resources: {{requests: {{cpu: 20m, memory: 40Mi}}, limits: {{memory: 200Mi}}}}
podAnnotations: {{e2e.tenantline.io/annotated: "yes"}}
podLabels: {{e2e.tenantline.io/labelled: "yes"}}
priorityClassName: {ns}
hostAliases: [{{ip: "{sim_ip}", hostnames: [provider.sim.test]}}]
serviceMonitor: {{enabled: true, interval: 15s, labels: {{release: prometheus}}}}
networkPolicy:
  enabled: true
  metricsFrom: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}}}]
nodeSelector: {{kubernetes.io/os: linux}}
tolerations: [{{key: e2e.tenantline.io/dedicated, operator: Exists, effect: NoSchedule}}]
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms: [{{matchExpressions: [{{key: kubernetes.io/os, operator: In, values: [linux]}}]}}]
"#
    )
}

/// Write `values` to a file for `helm -f`, named after the namespace.
pub fn values_file(ns: &str, values: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tenantline-e2e/{ns}.values.yaml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, values).unwrap();
    path
}

/// A minimal copy of the Prometheus Operator's ServiceMonitor CRD (any object accepted), created
/// unless the cluster has one, so the chart's ServiceMonitor can be dry-run and installed. Never
/// replaced (a cluster may have the real one) and never deleted: a CRD cannot be named after a
/// test, another test may be using it, and it is inert.
pub fn service_monitor_crd() {
    const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;
    let out = kubectl(&["create", "-f", "-"], CRD);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || stderr.contains("AlreadyExists"), "ServiceMonitor CRD: {stderr}");
    let out = kubectl(
        &["wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com", "--timeout=30s"],
        "",
    );
    assert!(out.status.success(), "ServiceMonitor CRD: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every optional value on: `helm template` renders it, and the API server accepts every object
/// in a server-side dry run (its own schemas and admission: the check kubeconform would make
/// offline, but kubeconform needs Kubernetes' JSON schemas downloaded, and this machine reaches
/// no network). The install itself runs on a node (node.rs,
/// `the_chart_with_every_optional_value_installs_and_runs`).
#[tokio::test]
async fn the_chart_with_every_optional_value_renders_and_passes_a_server_side_dry_run() {
    let client = support::client().await;
    support::install_crds(&client).await;
    service_monitor_crd();
    let ns = support::TestNamespace::new(&client, "e2e-chart-every").await;
    let values = values_file(&ns.name, &every_value(&ns.name, "10.0.0.1"));
    let values = values.to_str().unwrap();
    // `helm template` asks no cluster: the ServiceMonitor kind the chart checks for is named here.
    let rendered = helm(&[
        "template",
        &ns.name,
        CHART,
        "--namespace",
        &ns.name,
        "-f",
        values,
        "--api-versions",
        "monitoring.coreos.com/v1/ServiceMonitor",
    ]);
    let kinds: Vec<&str> = rendered.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
    for kind in
        ["Deployment", "PodDisruptionBudget", "ServiceMonitor", "NetworkPolicy", "Role", "RoleBinding", "Service"]
    {
        assert!(kinds.contains(&kind), "no {kind} rendered: {kinds:?}");
    }
    assert!(!rendered.contains("aggregate-to-edit"), "aggregateToDefaultRoles=false still aggregates");
    let dry = kubectl(&["apply", "--server-side", "--dry-run=server", "-n", &ns.name, "-f", "-"], &rendered);
    assert!(dry.status.success(), "server-side dry run: {}", String::from_utf8_lossy(&dry.stderr));
    let accepted = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(accepted.lines().count(), kinds.len(), "every object was checked:\n{accepted}");
    ns.delete().await;
}

#[tokio::test]
async fn the_operator_runs_under_the_charts_rbac_and_serves_probes_and_metrics() {
    let env = Env::start("e2e-smoke").await;
    let http = reqwest::Client::new();
    let ready = eventually(Duration::from_secs(30), || async {
        let r = http.get(format!("http://{}/readyz", env.operator.metrics)).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(ready.is_some(), "/readyz never answered 200\n{}", env.operator.log_tail(20));
    env.apply_example("yardstik");
    env.wait_ready::<tenantline::api::SubAccount>("acme-screening").await;
    let metrics =
        http.get(format!("http://{}/metrics", env.operator.metrics)).send().await.unwrap().text().await.unwrap();
    for name in ["tenantline_reconcile_total", "tenantline_provider_requests_total"] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    let log = env.operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the chart's RBAC denied something:\n{}",
        env.operator.log_tail(30)
    );
    env.finish().await;
}

#[test]
fn the_image_tag_the_charts_app_version_and_the_crate_version_agree() {
    let version = env!("CARGO_PKG_VERSION");
    let chart: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(format!("{CHART}/Chart.yaml")).unwrap()).unwrap();
    assert_eq!(chart["appVersion"], version, "Chart.yaml appVersion");
    let image = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/image.sh")).arg("--ref").output().unwrap();
    let image = String::from_utf8(image.stdout).unwrap();
    assert_eq!(image.trim(), format!("ghcr.io/tenantline/tenantline:{version}"), "make image's tag");
    let sim = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/image.sh")).arg("--sim-ref").output().unwrap();
    let sim = String::from_utf8(sim.stdout).unwrap();
    assert_eq!(sim.trim(), format!("ghcr.io/tenantline/tenantline-sim:{version}"), "the simulator's image");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/simulator/deployment.yaml"));
    assert!(
        example.unwrap().contains(&format!("image: {}\n", sim.trim())),
        "examples/simulator runs the image make image builds"
    );
    let rendered = helm(&["template", "tl", CHART, "--show-only", "templates/deployment.yaml"]);
    assert!(rendered.contains(&format!("image: \"{}\"", image.trim())), "the chart's default image:\n{rendered}");
}

#[tokio::test]
async fn a_bad_value_fails_helm_install_naming_the_value() {
    let client = support::client().await;
    let ns = support::TestNamespace::new(&client, "e2e-chart-values").await;
    for (set, named) in [
        ("logFormat=xml", "logFormat"),
        ("replicas=two", "replicas"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("watchNamespace=Not_A_Namespace", "watchNamespace"),
        ("imagePullSecret=regcred", "imagePullSecret"),
        ("leaseName=Shard_A", "leaseName"),
        ("replicas=2,leaderElection=false", "leaderElection"),
    ] {
        let out = Command::new("helm").args(["install", "bad", CHART, "-n", &ns.name, "--set", set]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(stderr.contains(named), "--set {set}: the error names {named}: {stderr}");
    }
    let releases = helm(&["list", "-n", &ns.name, "-q"]);
    assert!(releases.trim().is_empty(), "nothing was installed: {releases}");
    ns.delete().await;
}

/// With watchNamespace set, Secrets and the namespaced kinds are granted in that namespace only:
/// the operator's identity is Forbidden from a Secret anywhere else.
#[tokio::test]
async fn with_watch_namespace_the_operator_can_read_secrets_only_there() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::Api;
    use kube::api::{ListParams, PostParams};
    use tenantline::api::SubAccount;

    let client = support::client().await;
    support::install_crds(&client).await;
    let release_ns = support::TestNamespace::new(&client, "e2e-scoped").await;
    let watched = support::TestNamespace::new(&client, "e2e-scoped-watched").await;
    let elsewhere = support::TestNamespace::new(&client, "e2e-scoped-other").await;
    let release = release_ns.name.clone();
    let rbac = helm(&[
        "template",
        &release,
        CHART,
        "--namespace",
        &release_ns.name,
        "--set",
        &format!("watchNamespace={}", watched.name),
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    ]);
    let applied = kubectl(&["apply", "--server-side", "-f", "-"], &rbac);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let secret: Secret =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "parent"}, "stringData": {"k": "v"}})).unwrap();
    for ns in [&watched.name, &elsewhere.name] {
        Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await.unwrap();
    }

    let kubeconfig =
        support::service_account_kubeconfig(&client, &release_ns.name, &format!("{release}-tenantline")).await;
    let operator = support::client_from(&kubeconfig).await;
    let allowed = eventually(Duration::from_secs(10), || async {
        Api::<Secret>::namespaced(operator.clone(), &watched.name).get("parent").await.ok()
    })
    .await;
    assert!(allowed.is_some(), "the operator reads Secrets in the watched namespace");
    Api::<SubAccount>::namespaced(operator.clone(), &watched.name).list(&ListParams::default()).await.unwrap();
    for denied in [
        Api::<Secret>::namespaced(operator.clone(), &elsewhere.name).get("parent").await.map(|_| ()),
        Api::<Secret>::all(operator.clone()).list(&ListParams::default()).await.map(|_| ()),
        Api::<SubAccount>::namespaced(operator.clone(), &elsewhere.name).list(&ListParams::default()).await.map(|_| ()),
    ] {
        match denied {
            Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "Forbidden: {e:?}"),
            other => panic!("expected Forbidden, got {other:?}"),
        }
    }
    let deleted = kubectl(&["delete", "clusterrole,clusterrolebinding", &format!("{release}-tenantline")], "");
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    for ns in [release_ns, watched, elsewhere] {
        ns.delete().await;
    }
}
