//! Every tenantline kind in every state the operator produces, captured from a real run, reads as
//! it should to the two health evaluators GitOps tools use — kstatus (Flux) and Argo CD's
//! own Lua evaluator with the chart's argocd-cm snippet, both run by `hack/health` (Go) over the
//! captures — and `kubectl wait --for=condition=Ready` / `--for=jsonpath=…observedGeneration` work
//! on every kind.
//!
//! With `TENANTLINE_UPDATE_FIXTURES=1` the captures replace `tests/fixtures/health/`, which
//! `make go-test` checks without a cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Env, kubectl};
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/health");
const HEALTH_MODULE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/health");

/// One object the test follows: `resource` as kubectl names it, and its name.
#[derive(Clone, Copy)]
struct Obj<'a> {
    resource: &'static str,
    name: &'a str,
}

impl Obj<'_> {
    fn target(&self) -> String {
        format!("{}/{}", self.resource, self.name)
    }
}

fn get(env: &Env, o: Obj<'_>) -> Option<Value> {
    let out = kubectl(&["get", &o.target(), "-n", &env.ns.name, "-o", "json"], "");
    out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn condition<'v>(v: &'v Value, type_: &str) -> Option<&'v Value> {
    v.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}

fn has(v: &Value, type_: &str, reason: Option<&str>) -> bool {
    condition(v, type_).is_some_and(|c| c["status"] == "True" && reason.is_none_or(|r| c["reason"] == r))
}

fn observed(v: &Value) -> bool {
    v.pointer("/status/observedGeneration") == v.pointer("/metadata/generation")
}

/// Poll until `check` holds for the object; panic with its status otherwise.
async fn wait(env: &Env, o: Obj<'_>, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let found = eventually(Duration::from_secs(90), || async { get(env, o).filter(|v| check(v)) }).await;
    found.unwrap_or_else(|| {
        panic!(
            "{}: never {what}; now: {}\noperator log tail:\n{}",
            o.target(),
            get(env, o).map(|v| v["status"].to_string()).unwrap_or_else(|| "gone".into()),
            env.operator.log_tail(40)
        )
    })
}

async fn wait_state(env: &Env, o: Obj<'_>, type_: &str, reason: Option<&str>) -> Value {
    let what = format!("{type_}=True ({})", reason.unwrap_or("any reason"));
    wait(env, o, &what, |v| observed(v) && has(v, type_, reason)).await
}

/// Write the object as `<Kind>.<state>.json` (without managedFields, which only add noise).
fn save(dir: &Path, mut v: Value, state: &str) {
    v["metadata"].as_object_mut().unwrap().remove("managedFields");
    let kind = v["kind"].as_str().unwrap().to_owned();
    std::fs::write(dir.join(format!("{kind}.{state}.json")), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
}

fn output_json(args: &[&str], stdin: &str) -> Value {
    let out = kubectl(args, stdin);
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kubectl_ok(args: &[&str], stdin: &str) {
    let out = kubectl(args, stdin);
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `kubectl wait` on `o`; returns whether it succeeded.
fn kubectl_wait(env: &Env, o: Obj<'_>, condition: &str, timeout: &str) -> bool {
    let timeout = format!("--timeout={timeout}");
    let out = kubectl(&["wait", &o.target(), "-n", &env.ns.name, condition, &timeout], "");
    out.status.success()
}

async fn fault(env: &Env, provider: &str, method: Option<&str>, fault: Value, count: Option<u64>) {
    let mut rule = json!({"provider": provider, "fault": fault});
    if let Some(m) = method {
        rule["method"] = json!(m);
    }
    if let Some(c) = count {
        rule["count"] = json!(c);
    }
    let r = env.sim.http().post(env.sim.url("/_sim/faults")).json(&rule).send().await.unwrap();
    assert!(r.status().is_success(), "fault rejected: {}", r.text().await.unwrap());
}

fn request_reconcile(env: &Env, o: Obj<'_>, token: &str) {
    let annotation = format!("tenantline.io/reconcile-requested-at={token}");
    kubectl_ok(&["annotate", "--overwrite", &o.target(), "-n", &env.ns.name, &annotation], "");
}

fn merge_patch(env: &Env, o: Obj<'_>, patch: Value) {
    kubectl_ok(&["patch", &o.target(), "-n", &env.ns.name, "--type=merge", "-p", &patch.to_string()], "");
}

#[tokio::test]
async fn every_kind_in_every_state_reads_right_in_kstatus_argo_cd_and_kubectl_wait() {
    let mut env = Env::start("e2e-gitops-health").await;
    let update = std::env::var("TENANTLINE_UPDATE_FIXTURES").is_ok_and(|v| v == "1");
    let dir = if update {
        PathBuf::from(FIXTURES)
    } else {
        std::env::temp_dir().join(format!("tenantline-e2e/{}-health", env.ns.name))
    };
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(f).unwrap();
        }
    }

    let ns = env.ns.name.clone();
    let cpc_name = format!("{ns}-shared");
    let pc = Obj { resource: "providerconfig", name: "recoverbiz" };
    let cpc = Obj { resource: "clusterproviderconfig", name: &cpc_name };
    let sa = Obj { resource: "subaccount", name: "acme-lending" };
    let tm = Obj { resource: "teammember", name: "sarah-johnson" };
    let vobiz_sa = Obj { resource: "subaccount", name: "acme-support" };
    let pn = Obj { resource: "phonenumber", name: "acme-support-main" };
    let all = [pc, cpc, sa, tm, pn];
    let cluster_provider = format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: ClusterProviderConfig\nmetadata: {{name: {cpc_name}}}\nspec:\n  provider: RecoverBiz\n  endpoint: http://127.0.0.1:8787/recoverbiz/v1\n  credentialsSecretRef: {{name: recoverbiz-partner, namespace: {ns}}}\n  pollInterval: 2s\n  conditions: [{{namespaces: [{ns}]}}]\n"
    );

    // creating: the objects exist, the operator has not written status yet (the CRDs default it
    // to observedGeneration -1).
    // A ClusterProviderConfig is watched by every operator on the cluster, also those of tests
    // running alongside: its "not seen yet" states are what the API server answers to the create
    // and the change, asked as server-side dry runs.
    env.operator.kill();
    fast_provider(&env, "recoverbiz");
    fast_provider(&env, "vobiz");
    fast_provider(&env, "vobiz-partner");
    let cluster_provider = cluster_provider.replace("http://127.0.0.1:8787", &format!("http://{}", env.sim.addr));
    let cpc_creating = output_json(&["create", "--dry-run=server", "-o", "json", "-f", "-"], &cluster_provider);
    env.apply_ok(&cluster_provider);
    env.apply_example("recoverbiz");
    env.apply_example("vobiz");
    for o in all {
        let v = if o.resource == "clusterproviderconfig" { cpc_creating.clone() } else { get(&env, o).unwrap() };
        assert_eq!(v.pointer("/status/observedGeneration"), Some(&json!(-1)), "{}: {}", o.target(), v["status"]);
        save(&dir, v, "creating");
    }

    // waiting-for-parent: the providers hold the sub-accounts' creates (they never answer, and
    // nothing is made) until both children were captured waiting.
    let hang = json!({"kind": "hang"});
    env.sim.fault("recoverbiz", "POST", Some("/v1/accounts"), hang.clone(), json!({})).await;
    env.sim.fault("vobiz", "POST", Some("/api/v1/accounts/{auth_id}/sub-accounts/"), hang, json!({})).await;
    env.operator.restart();
    save(&dir, wait_state(&env, tm, "Reconciling", Some("SubAccountNotReady")).await, "waiting-for-parent");
    save(&dir, wait_state(&env, pn, "Reconciling", Some("SubAccountNotReady")).await, "waiting-for-parent");
    env.sim.clear_faults().await;

    // ready, and what `kubectl wait` sees.
    let mut waits = Vec::new();
    for o in all {
        let v = wait_state(&env, o, "Ready", None).await;
        let generation = v["metadata"]["generation"].as_i64().unwrap();
        let by_condition = kubectl_wait(&env, o, "--for=condition=Ready", "30s");
        let jsonpath = format!("--for=jsonpath={{.status.observedGeneration}}={generation}");
        let by_generation = kubectl_wait(&env, o, &jsonpath, "30s");
        waits.push((o.target(), "ready", by_condition, by_generation));
        save(&dir, v, "ready");
    }
    wait_state(&env, vobiz_sa, "Ready", None).await;

    // spec-changed: a new generation the operator has not seen yet (Ready=True is stale).
    env.operator.kill();
    let cpc_changed = output_json(
        &[
            "patch",
            &cpc.target(),
            "--type=merge",
            "-p",
            r#"{"spec":{"pollInterval":"3s"}}"#,
            "--dry-run=server",
            "-o",
            "json",
        ],
        "",
    );
    merge_patch(&env, pc, json!({"spec": {"pollInterval": "3s"}}));
    merge_patch(&env, cpc, json!({"spec": {"pollInterval": "3s"}}));
    merge_patch(&env, sa, json!({"spec": {"displayName": "Acme Lending Inc"}}));
    merge_patch(&env, tm, json!({"spec": {"deletionPolicy": "Orphan"}}));
    merge_patch(&env, pn, json!({"spec": {"deletionPolicy": "Retain"}}));
    for o in all {
        let v = if o.resource == "clusterproviderconfig" { cpc_changed.clone() } else { get(&env, o).unwrap() };
        assert!(!observed(&v) && has(&v, "Ready", None), "{}: {}", o.target(), v["status"]);
        save(&dir, v, "spec-changed");
    }
    env.operator.restart();
    // `kubectl wait --for=jsonpath` on the new generation is how a script waits for a change.
    for o in all {
        let generation = get(&env, o).unwrap()["metadata"]["generation"].as_i64().unwrap();
        let jsonpath = format!("--for=jsonpath={{.status.observedGeneration}}={generation}");
        let by_generation = kubectl_wait(&env, o, &jsonpath, "60s");
        let by_condition = kubectl_wait(&env, o, "--for=condition=Ready", "60s");
        waits.push((o.target(), "spec changed", by_condition, by_generation));
    }
    merge_patch(&env, tm, json!({"spec": {"deletionPolicy": "Delete"}}));
    merge_patch(&env, pn, json!({"spec": {"deletionPolicy": "Release"}}));
    for o in [tm, pn] {
        wait_state(&env, o, "Ready", None).await;
    }

    // provider-down: every call to RecoverBiz and Vobiz answers 503.
    fault(&env, "recoverbiz", None, json!({"kind": "status", "status": 503}), None).await;
    fault(&env, "vobiz", None, json!({"kind": "status", "status": 503}), None).await;
    request_reconcile(&env, sa, "provider-down");
    save(&dir, wait_state(&env, sa, "Reconciling", Some("ProviderUnavailable")).await, "provider-down");
    // A child first waits for its SubAccount, which is not Ready while its provider is down.
    for o in [tm, pn] {
        request_reconcile(&env, o, "provider-down");
        save(&dir, wait_state(&env, o, "Reconciling", None).await, "provider-down");
    }
    env.sim.clear_faults().await;
    for o in [sa, tm, pn] {
        wait_state(&env, o, "Ready", None).await;
    }

    // rejected: Vobiz Partner refuses an owner email already in use; RecoverBiz and Vobiz answer
    // 422 to one create.
    let owner = "  owner: {email: taken@acme.example, phone: \"+14155550100\"}\n  address: {country: US}\n";
    env.apply_ok(&sub_account("vp-first", "vobiz-partner", owner));
    wait_state(&env, Obj { resource: "subaccount", name: "vp-first" }, "Ready", None).await;
    env.apply_ok(&sub_account("vp-second", "vobiz-partner", owner));
    let rejected = Obj { resource: "subaccount", name: "vp-second" };
    save(&dir, wait_state(&env, rejected, "Stalled", Some("ProviderRejected")).await, "rejected");
    let stalled_wait = kubectl_wait(&env, rejected, "--for=condition=Stalled", "10s");
    let ready_wait = kubectl_wait(&env, rejected, "--for=condition=Ready", "3s");
    waits.push((rejected.target(), "rejected", !ready_wait, stalled_wait));

    // Each rejection aims at its own route, so that no other write takes it, and stays until the
    // Stalled condition is seen: a second attempt from a reconcile that started before the first
    // one's status write reached the operator's cache would otherwise succeed and end Ready.
    let reject = json!({"kind": "status", "status": 422});
    env.sim.fault("recoverbiz", "POST", Some("/v1/accounts/{id}/team/invite"), reject.clone(), json!({})).await;
    env.apply_ok("apiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {name: tm-rejected}\nspec:\n  subAccountRef: {name: acme-lending}\n  email: rejected@acme.example\n  name: Rejected\n");
    let o = Obj { resource: "teammember", name: "tm-rejected" };
    save(&dir, wait_state(&env, o, "Stalled", Some("ProviderRejected")).await, "rejected");
    env.sim.clear_faults().await;
    let purchase = "/api/v1/Account/{auth_id}/numbers/purchase-from-inventory";
    env.sim.fault("vobiz", "POST", Some(purchase), reject, json!({})).await;
    env.apply_ok("apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {name: pn-rejected}\nspec:\n  subAccountRef: {name: acme-support}\n  search: {country: US, areaCode: \"415\"}\n");
    let o = Obj { resource: "phonenumber", name: "pn-rejected" };
    save(&dir, wait_state(&env, o, "Stalled", Some("ProviderRejected")).await, "rejected");

    // credentials-invalid: a configuration whose Secret lacks the key, and a key rotated to a
    // wrong value (the provider answers 401).
    env.apply_ok("apiVersion: v1\nkind: Secret\nmetadata: {name: no-key}\nstringData: {unrelated: x}\n");
    env.apply_ok(
        "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {name: no-key}\nspec:\n  provider: RecoverBiz\n  endpoint: http://127.0.0.1:8787/recoverbiz/v1\n  credentialsSecretRef: {name: no-key}\n",
    );
    let no_key = Obj { resource: "providerconfig", name: "no-key" };
    save(&dir, wait_state(&env, no_key, "Stalled", Some("ProviderConfigNotReady")).await, "credentials-invalid");
    let cpc_bad_name = format!("{ns}-no-key");
    env.apply_ok(&cluster_provider.replace(&cpc_name, &cpc_bad_name).replace("recoverbiz-partner", "no-key"));
    let cpc_bad = Obj { resource: "clusterproviderconfig", name: &cpc_bad_name };
    save(&dir, wait_state(&env, cpc_bad, "Stalled", Some("ProviderConfigNotReady")).await, "credentials-invalid");

    // The provider answers 401 to the member's and the number's calls while their SubAccounts
    // stay Ready (a child whose parent is not Ready waits for it instead, as above)...
    for (provider, route) in [
        ("recoverbiz", "/v1/accounts/{id}/team/{member_id}"),
        ("recoverbiz", "/v1/accounts/{id}/team"),
        ("vobiz", "/api/v1/Account/{auth_id}/numbers"),
    ] {
        let rule = json!({"provider": provider, "route": route, "fault": {"kind": "status", "status": 401}});
        let r = env.sim.http().post(env.sim.url("/_sim/faults")).json(&rule).send().await.unwrap();
        assert!(r.status().is_success(), "fault rejected: {}", r.text().await.unwrap());
    }
    for o in [tm, pn] {
        request_reconcile(&env, o, "credentials-invalid");
        save(&dir, wait_state(&env, o, "Stalled", Some("CredentialsInvalid")).await, "credentials-invalid");
    }
    env.sim.clear_faults().await;
    for o in [tm, pn] {
        request_reconcile(&env, o, "credentials-fixed");
        wait_state(&env, o, "Ready", None).await;
    }
    // ...and the SubAccount's key is rotated to a wrong value.
    let rotate = |value: &str| {
        let patch = json!({"stringData": {"partnerKey": value}});
        merge_patch(&env, Obj { resource: "secret", name: "recoverbiz-partner" }, patch);
    };
    rotate("pk_live_sim_recoverbiz_wrongwrongwrong00");
    request_reconcile(&env, sa, "credentials-invalid");
    save(&dir, wait_state(&env, sa, "Stalled", Some("CredentialsInvalid")).await, "credentials-invalid");
    rotate(tenantline_sim::seed::DEV_RECOVERBIZ_KEY);
    request_reconcile(&env, sa, "credentials-fixed");
    for o in [sa, tm] {
        wait_state(&env, o, "Ready", None).await;
    }

    // deleting: the providers are down, so the finalizers hold. An unused configuration has no
    // finalizer (only one in use is held): the test's holds the unused ones, stalled, to show that
    // deletion reads as deletion whatever the conditions say.
    fault(&env, "recoverbiz", None, json!({"kind": "status", "status": 503}), None).await;
    fault(&env, "vobiz", None, json!({"kind": "status", "status": 503}), None).await;
    for o in [no_key, cpc_bad] {
        merge_patch(&env, o, json!({"metadata": {"finalizers": ["e2e.tenantline.io/hold"]}}));
    }
    for o in [no_key, cpc_bad, sa, tm, pn] {
        kubectl_ok(&["delete", &o.target(), "-n", &ns, "--wait=false"], "");
    }
    for o in [no_key, cpc_bad] {
        save(&dir, wait(&env, o, "deleting", |v| v.pointer("/metadata/deletionTimestamp").is_some()).await, "deleting");
    }
    for o in [sa, tm, pn] {
        let deleting =
            |v: &Value| v.pointer("/metadata/deletionTimestamp").is_some() && has(v, "Reconciling", Some("Deleting"));
        save(&dir, wait(&env, o, "deleting (Reconciling: Deleting)", deleting).await, "deleting");
    }
    env.sim.clear_faults().await;
    for o in [no_key, cpc_bad] {
        merge_patch(&env, o, json!({"metadata": {"finalizers": null}}));
    }

    // The verdicts, by kstatus and by Argo CD, over what was just captured.
    let out = Command::new("go")
        .args(["test", "-count=1", "-run", "TestHealthContract", "-v", "."])
        .current_dir(HEALTH_MODULE)
        .env("TENANTLINE_HEALTH_FIXTURES", &dir)
        .output()
        .expect("go on PATH");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "hack/health: the health contract does not hold over {}", dir.display());

    println!("{:<48} {:<13} {:<32} JSONPATH observedGeneration", "OBJECT", "STATE", "WAIT condition=Ready");
    for (target, state, by_condition, by_generation) in &waits {
        let condition = if *state == "rejected" {
            format!("{} (times out, as it must)", if *by_condition { "ok" } else { "FAIL" })
        } else {
            (if *by_condition { "ok" } else { "FAIL" }).to_owned()
        };
        let generation = if *state == "rejected" {
            format!("condition=Stalled {}", if *by_generation { "ok" } else { "FAIL" })
        } else {
            (if *by_generation { "ok" } else { "FAIL" }).to_owned()
        };
        println!("{target:<48} {state:<13} {condition:<32} {generation}");
    }
    assert!(waits.iter().all(|(_, _, a, b)| *a && *b), "a kubectl wait failed (see table)");

    for name in [&cpc_name, &cpc_bad_name] {
        kubectl(&["delete", "clusterproviderconfig", name, "--wait=false"], "");
    }
    env.finish().await;
}
