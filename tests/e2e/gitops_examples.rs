//! The GitOps examples a user copies pass `kubectl apply --dry-run=server` on a real API server
//! with tenantline's, Flux's and Argo CD's CRDs installed: `examples/gitops/flux/` (GitRepository,
//! Kustomizations, HelmRelease), `examples/gitops/argocd/` (Applications, the argocd-cm health
//! snippet) and the tenants tree, plain and as Argo CD renders it with sync waves.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::flux::{install_crds_from, install_flux_crds, module_dir_in};
use crate::harness::kubectl;
use crate::support::{self, TestNamespace};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn namespace(name: &str) {
    let out = kubectl(&["create", "namespace", name], "");
    assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"));
}

/// helm-controller's HelmRelease CRD, generated from its api module by controller-gen (built by
/// hack/tools.sh), as helm-controller's `make manifests` does.
fn helm_release_crd() -> PathBuf {
    let dir = std::env::temp_dir().join("tenantline-e2e/helm-controller-crds");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("controller-gen")
        .args([
            "crd:crdVersions=v1",
            "paths=github.com/fluxcd/helm-controller/api/...",
            &format!("output:crd:dir={}", dir.display()),
        ])
        .current_dir(Path::new(ROOT).join("hack/flux-crds"))
        .output()
        .expect("controller-gen (hack/tools.sh builds it into .cache/bin)");
    ok(out, "controller-gen");
    dir
}

fn dry_run(args: &[&str], stdin: &str, what: &str) -> String {
    let mut all = vec!["apply", "--dry-run=server", "--server-side", "--field-manager=e2e-dry-run"];
    all.extend_from_slice(args);
    ok(kubectl(&all, stdin), what)
}

#[tokio::test]
async fn gitops_examples_pass_a_server_side_dry_run() {
    let client = support::client().await;
    support::install_crds(&client).await;
    install_flux_crds().await;
    install_crds_from(&helm_release_crd());
    install_crds_from(
        &module_dir_in(&Path::new(ROOT).join("hack/health"), "github.com/argoproj/argo-cd/v3").join("manifests/crds"),
    );
    namespace("flux-system");
    namespace("argocd");
    let ns = TestNamespace::new(&client, "e2e-gitops-examples").await;
    let examples = Path::new(ROOT).join("examples/gitops");

    let mut checked = Vec::new();
    for f in [
        "flux/tenantline.yaml",
        "flux/tenants.yaml",
        "argocd/tenantline.yaml",
        "argocd/tenants.yaml",
        "argocd/argocd-cm.yaml",
    ] {
        let out = dry_run(&["-f", examples.join(f).to_str().unwrap()], "", f);
        checked.push(format!("{f}: {}", out.trim().replace('\n', "; ")));
    }
    for stage in ["providers", "sub-accounts", "members-and-numbers"] {
        let dir = examples.join("tenants").join(stage);
        let out = dry_run(&["-n", &ns.name, "-k", dir.to_str().unwrap()], "", stage);
        checked.push(format!("tenants/{stage}: {} objects", out.lines().count()));
    }

    // As Argo CD renders the tenants Application's source: kustomize, with a sync wave on each object.
    let rendered = ok(kubectl(&["kustomize", examples.join("argocd/tenants").to_str().unwrap()], ""), "kustomize");
    let mut waves = Vec::new();
    for doc in rendered.split("\n---\n").filter(|d| !d.trim().is_empty()) {
        let v: Value = serde_saphyr::from_str(doc).unwrap();
        let wave = v.pointer("/metadata/annotations/argocd.argoproj.io~1sync-wave").and_then(Value::as_str);
        let kind = v["kind"].as_str().unwrap().to_owned();
        let want = match kind.as_str() {
            "Secret" | "ProviderConfig" => Some("-2"),
            "SubAccount" => Some("-1"),
            _ => None,
        };
        assert_eq!(wave, want, "{kind} {}: sync wave", v["metadata"]["name"]);
        let options = v.pointer("/metadata/annotations/argocd.argoproj.io~1sync-options").and_then(Value::as_str);
        let prune_last = matches!(kind.as_str(), "Secret" | "ProviderConfig").then_some("PruneLast=true");
        assert_eq!(options, prune_last, "{kind} {}: sync options", v["metadata"]["name"]);
        waves.push(format!("{kind}:{}", wave.unwrap_or("0")));
    }
    let out = dry_run(&["-n", &ns.name, "-f", "-"], &rendered, "argocd/tenants rendered");
    checked.push(format!("argocd/tenants (kustomize, {} objects, waves {})", out.lines().count(), waves.join(" ")));

    // The snippet users copy is the one the chart ships and hack/health tests.
    let chart = std::fs::read_to_string(Path::new(ROOT).join("charts/tenantline/argocd/argocd-cm.yaml")).unwrap();
    let example = std::fs::read_to_string(examples.join("argocd/argocd-cm.yaml")).unwrap();
    assert_eq!(chart, example, "examples/gitops/argocd/argocd-cm.yaml differs from the chart's");

    for line in checked {
        println!("dry-run ok: {line}");
    }
    ns.delete().await;
}
