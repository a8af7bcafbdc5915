//! Flux drives tenantline for real: source-controller and kustomize-controller (built from their
//! Go modules) sync `examples/gitops/tenants/` from a Git repository served over HTTP, through the
//! three Kustomizations of `examples/gitops/flux/tenants.yaml` (providers → sub-accounts →
//! members and numbers, ordered by dependsOn, `wait: true`, `prune: true`, `timeout: 5m`).
//!
//! - The first sync turns every Kustomization Ready only after its objects are Ready.
//! - A commit the provider rejects fails the sub-accounts stage fast (kstatus Failed from
//!   `Stalled`), long before the timeout; a fixing commit recovers.
//! - A commit that deletes the SubAccounts prunes them; each provider shows what `status.deletion`
//!   promised and the credentials Secrets are gone.
//!
//! The repository holds the example tree with the simulator's address in place of
//! `127.0.0.1:8787`, as `Env::apply` does for the other tests; the Flux objects are the example's
//! with this test's namespace and repository URL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::flux::{Flux, GitServer};
use crate::harness::{Env, kubectl};
use crate::support::eventually;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gitops");
const TREE: &str = "examples/gitops/tenants";
const STAGES: [&str; 3] = ["tenants-providers", "tenants-sub-accounts", "tenants-members-and-numbers"];
const KUSTOMIZATION_TIMEOUT: Duration = Duration::from_secs(300);

fn copy_tree(from: &Path, to: &Path, sim: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target, sim);
        } else {
            let text =
                std::fs::read_to_string(&path).unwrap().replace("http://127.0.0.1:8787", &format!("http://{sim}"));
            std::fs::write(target, text).unwrap();
        }
    }
}

fn get(ns: &str, target: &str) -> Option<Value> {
    let out = kubectl(&["get", target, "-n", ns, "-o", "json"], "");
    out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn list(ns: &str, resource: &str) -> Vec<Value> {
    get(ns, resource).map(|v| v["items"].as_array().unwrap().clone()).unwrap_or_default()
}

fn ready(v: &Value) -> Option<&Value> {
    v.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready")
}

/// The Kustomization `name` once `check` holds for its Ready condition and status.
async fn wait_kustomization(
    env: &Env,
    flux: &Flux,
    name: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&Value, &Value) -> bool,
) -> Value {
    let target = format!("kustomization.kustomize.toolkit.fluxcd.io/{name}");
    let found = eventually(timeout, || async {
        let v = get(&env.ns.name, &target)?;
        let c = ready(&v)?.clone();
        check(&v, &c).then_some(v)
    })
    .await;
    found.unwrap_or_else(|| {
        panic!(
            "Kustomization {name}: never {what} within {timeout:?}; status: {}\n{}\noperator log tail:\n{}",
            get(&env.ns.name, &target).map(|v| v["status"].to_string()).unwrap_or_default(),
            flux.log_tail(30),
            env.operator.log_tail(30)
        )
    })
}

/// Every stage Ready at `sha`.
async fn wait_synced(env: &Env, flux: &Flux, sha: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for stage in STAGES {
        out.push(
            wait_kustomization(env, flux, stage, Duration::from_secs(240), &format!("Ready at {sha}"), |v, c| {
                c["status"] == "True" && v["status"]["lastAppliedRevision"].as_str().is_some_and(|r| r.ends_with(sha))
            })
            .await,
        );
    }
    out
}

/// Ask source-controller to fetch now, as a Git push webhook (Flux's Receiver) does.
fn poke(env: &Env, token: &str) {
    let annotation = format!("reconcile.fluxcd.io/requestedAt={token}");
    let out = kubectl(
        &["annotate", "--overwrite", "gitrepository.source.toolkit.fluxcd.io/tenants", "-n", &env.ns.name, &annotation],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An API server timestamp: RFC 3339 at whole seconds in UTC, so text order is time order.
fn time_of(c: &Value) -> String {
    c["lastTransitionTime"].as_str().unwrap().to_owned()
}

fn created(v: &Value) -> String {
    v["metadata"]["creationTimestamp"].as_str().unwrap().to_owned()
}

const TENANTLINE_KINDS: [&str; 3] = ["subaccounts", "teammembers", "phonenumbers"];

#[tokio::test]
async fn flux_syncs_fails_fast_recovers_and_prunes() {
    let env = Env::start("e2e-gitops").await;
    let ns = env.ns.name.clone();
    let root = std::env::temp_dir().join(format!("tenantline-e2e/{ns}-git"));
    let git = GitServer::start(&root).await;
    let flux = Flux::start(&env.client, &ns).await;
    let sim = env.sim.addr.to_string();
    let tree = git.work.join(TREE);
    copy_tree(&Path::new(EXAMPLES).join("tenants"), &tree, &sim);

    // 1. First sync.
    let sha = git.commit("tenants: five providers' sub-accounts, a member and two numbers");
    let flux_objects = std::fs::read_to_string(Path::new(EXAMPLES).join("flux/tenants.yaml"))
        .unwrap()
        .replace("namespace: flux-system", &format!("namespace: {ns}"))
        .replace("targetNamespace: tenants", &format!("targetNamespace: {ns}"))
        .replace("https://github.com/acme/tenants", &git.url());
    let start = Instant::now();
    let out = kubectl(&["apply", "--server-side", "-f", "-"], &flux_objects);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stages = wait_synced(&env, &flux, &sha).await;
    let first_sync = start.elapsed();

    // Each stage turned Ready only after its objects did, and each started only after the one
    // before it was Ready (API server timestamps, whole seconds).
    let stage_ready: Vec<_> = stages.iter().map(|s| time_of(ready(s).unwrap())).collect();
    let providers = list(&ns, "providerconfigs");
    let sub_accounts = list(&ns, "subaccounts");
    let children: Vec<Value> = [list(&ns, "teammembers"), list(&ns, "phonenumbers")].concat();
    assert_eq!((providers.len(), sub_accounts.len(), children.len()), (5, 5, 3));
    for (objects, stage) in [(&providers, 0), (&sub_accounts, 1), (&children, 2)] {
        for o in objects {
            let name = o["metadata"]["name"].as_str().unwrap();
            let c = ready(o).unwrap_or_else(|| panic!("{name} has no Ready condition"));
            assert_eq!(c["status"], "True", "{name} is not Ready although {} is: {c}", STAGES[stage]);
            assert!(time_of(c) <= stage_ready[stage], "{name} turned Ready after {} did", STAGES[stage]);
            if stage > 0 {
                assert!(
                    created(o) >= stage_ready[stage - 1],
                    "{name} was applied before {} was Ready",
                    STAGES[stage - 1]
                );
            }
        }
    }
    let deletion: Vec<(String, String, String, String)> = sub_accounts
        .iter()
        .map(|s| {
            let st = &s["status"];
            (
                s["metadata"]["name"].as_str().unwrap().to_owned(),
                s["spec"]["providerConfigRef"]["name"].as_str().unwrap().to_owned(),
                st["deletion"].as_str().unwrap_or_default().to_owned(),
                st["externalId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let secrets: Vec<String> =
        sub_accounts.iter().map(|s| s["status"]["credentialsSecretName"].as_str().unwrap().to_owned()).collect();

    // 2. A SubAccount the provider rejects: Vobiz Partner refuses an owner email already in use.
    let duplicate = std::fs::read_to_string(tree.join("sub-accounts/acme-collections.yaml"))
        .unwrap()
        .replace("name: acme-collections", "name: acme-recoveries")
        .replace("displayName: Acme Collections", "displayName: Acme Recoveries");
    std::fs::write(tree.join("sub-accounts/acme-recoveries.yaml"), &duplicate).unwrap();
    let kustomization = tree.join("sub-accounts/kustomization.yaml");
    let k = std::fs::read_to_string(&kustomization).unwrap() + "- acme-recoveries.yaml\n";
    std::fs::write(&kustomization, k).unwrap();
    let bad = git.commit("tenants: acme-recoveries (the owner email is taken at Vobiz Partner)");
    let start = Instant::now();
    poke(&env, "bad");
    let failed = wait_kustomization(&env, &flux, STAGES[1], Duration::from_secs(120), "failed", |v, c| {
        c["status"] == "False"
            && c["reason"] == "HealthCheckFailed"
            && v["status"]["lastAttemptedRevision"].as_str().is_some_and(|r| r.ends_with(&bad))
    })
    .await;
    let fail_time = start.elapsed();
    let message = ready(&failed).unwrap()["message"].as_str().unwrap().to_owned();
    assert!(fail_time < KUSTOMIZATION_TIMEOUT / 2, "failed only after {fail_time:?} (timeout 5m)");
    assert!(
        message.contains(&format!("SubAccount/{ns}/acme-recoveries")) && message.contains("Failed"),
        "the Kustomization names the failed SubAccount: {message}"
    );
    let rejected = get(&ns, "subaccount/acme-recoveries").unwrap();
    let stalled = rejected["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Stalled").unwrap();
    assert_eq!((stalled["status"].as_str(), stalled["reason"].as_str()), (Some("True"), Some("ProviderRejected")));
    let stalled_message = stalled["message"].as_str().unwrap().to_owned();
    assert!(stalled_message.contains("email"), "{stalled_message}");
    // The next stage does not roll forward on a broken one.
    let children_stage = get(&ns, &format!("kustomization.kustomize.toolkit.fluxcd.io/{}", STAGES[2])).unwrap();
    assert!(
        children_stage["status"]["lastAppliedRevision"].as_str().is_some_and(|r| r.ends_with(&sha)),
        "{} moved on to the broken revision",
        STAGES[2]
    );

    // 3. The fix: another email.
    let fixed = duplicate.replace("collections@acme.example", "recoveries@acme.example");
    std::fs::write(tree.join("sub-accounts/acme-recoveries.yaml"), fixed).unwrap();
    let fix = git.commit("tenants: acme-recoveries gets its own owner email");
    let start = Instant::now();
    poke(&env, "fix");
    wait_synced(&env, &flux, &fix).await;
    let recovery = start.elapsed();

    // 4. Prune: the five original SubAccounts (and their members and numbers) leave Git.
    for (name, ..) in &deletion {
        std::fs::remove_file(tree.join(format!("sub-accounts/{name}.yaml"))).unwrap();
        let _ = std::fs::remove_file(tree.join(format!("members-and-numbers/{name}.yaml")));
    }
    std::fs::write(
        &kustomization,
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- acme-recoveries.yaml\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("members-and-numbers/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
    )
    .unwrap();
    let prune = git.commit("tenants: offboard the five acme sub-accounts");
    let start = Instant::now();
    poke(&env, "prune");
    wait_synced(&env, &flux, &prune).await;
    for (name, ..) in &deletion {
        let gone = eventually(Duration::from_secs(120), || async {
            get(&ns, &format!("subaccount/{name}")).is_none().then_some(())
        })
        .await;
        assert!(gone.is_some(), "{name} was not pruned\n{}", env.operator.log_tail(30));
    }
    for secret in &secrets {
        let gone = eventually(Duration::from_secs(60), || async {
            get(&ns, &format!("secret/{secret}")).is_none().then_some(())
        })
        .await;
        assert!(gone.is_some(), "Secret {secret} outlived its SubAccount");
    }
    let pruned = start.elapsed();
    for kind in TENANTLINE_KINDS {
        let left: Vec<_> = list(&ns, kind).iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_owned()).collect();
        let expected: Vec<&str> = if kind == "subaccounts" { vec!["acme-recoveries"] } else { vec![] };
        assert_eq!(left, expected, "{kind} left after the prune");
    }

    // What each provider shows, against what status.deletion promised.
    let state = env.sim.state().await;
    let find = |pointer: &str, key: &str, id: &str| -> Option<Value> {
        state.pointer(pointer)?.as_array()?.iter().find(|o| o[key] == id).cloned()
    };
    let mut rows = Vec::new();
    for (name, provider, promised, id) in &deletion {
        let shown = match provider.as_str() {
            "recoverbiz" => find("/recoverbiz/accounts", "id", id).map(|a| a["status"].as_str().unwrap().to_owned()),
            "vobiz" => find("/vobiz/subAccounts", "auth_id", id).map(|_| "exists".to_owned()),
            "agentphone" => find("/agentphone/subAccounts", "id", id).map(|_| "exists".to_owned()),
            "vobiz-partner" => find("/vobizPartner/accounts", "auth_id", id).map(|_| "exists".to_owned()),
            "yardstik" => find("/yardstik/subAccounts", "id", id).map(|_| "exists".to_owned()),
            other => panic!("unknown provider {other}"),
        }
        .unwrap_or_else(|| "gone".to_owned());
        let kept = match promised.as_str() {
            "Delete" => shown == "gone",
            "Deactivate" => shown == "deactivated",
            "Retain" | "Orphan" => shown == "exists" || shown == "active",
            other => panic!("{name}: unknown status.deletion {other}"),
        };
        assert!(kept, "{name} at {provider}: status.deletion promised {promised}, the provider shows {shown}");
        rows.push(format!("{provider:<14} {name:<18} {promised:<11} {shown:<12} gone"));
    }

    println!("Flux e2e (source-controller + kustomize-controller v1.9.6, 3 stages with dependsOn):");
    println!("  first sync, apply to all stages Ready:         {first_sync:.1?}");
    println!("  bad commit to sub-accounts stage failed:       {fail_time:.1?} (timeout 5m)");
    println!("    Kustomization: {message}");
    println!("    SubAccount acme-recoveries Stalled: {stalled_message}");
    println!("  fixing commit to all stages Ready:             {recovery:.1?}");
    println!("  prune commit to SubAccounts and Secrets gone:  {pruned:.1?}");
    println!("  {:<14} {:<18} {:<11} {:<12} SECRET", "PROVIDER", "SUBACCOUNT", "PROMISED", "PROVIDER NOW");
    for row in rows {
        println!("  {row}");
    }

    // Leave nothing behind: Flux prunes the rest when its Kustomizations go. Stage by stage, in
    // reverse: a SubAccount being deleted needs its ProviderConfig (deleting every stage at once
    // removes the configurations first and leaves the SubAccounts waiting for them).
    for stage in STAGES.iter().rev() {
        let target = format!("kustomization.kustomize.toolkit.fluxcd.io/{stage}");
        let out = kubectl(&["delete", &target, "-n", &ns, "--timeout=120s"], "");
        assert!(out.status.success(), "deleting {stage}: {}", String::from_utf8_lossy(&out.stderr));
        if *stage == STAGES[1] {
            let gone =
                eventually(Duration::from_secs(120), || async { list(&ns, "subaccounts").is_empty().then_some(()) })
                    .await;
            assert!(gone.is_some(), "SubAccounts left after their Kustomization was deleted");
        }
    }
    let out = kubectl(&["delete", "gitrepository.source.toolkit.fluxcd.io/tenants", "-n", &ns, "--timeout=60s"], "");
    assert!(out.status.success(), "deleting the GitRepository: {}", String::from_utf8_lossy(&out.stderr));
    drop(flux);
    env.finish().await;
}
