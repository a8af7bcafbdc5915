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
    helm(&["install", "tl", CHART, "--namespace", &ns.name]);
    let deployment = kubectl(&["get", "deployment", "tl-tenantline", "-n", &ns.name, "-o", "name"], "");
    assert!(deployment.status.success(), "the chart's Deployment exists");
    helm(&["uninstall", "tl", "--namespace", &ns.name]);
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
