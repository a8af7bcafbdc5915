//! The /_sim control API: call counts, every fault kind, reset and seed; and the binary.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;
use tenantline_sim::Seed;

const RB_CREATE: &str = "/v1/accounts";
const VZ_CREATE: &str = "/api/v1/accounts/{auth_id}/sub-accounts/";

async fn rb_accounts(s: &Sim) -> usize {
    s.state().await["recoverbiz"]["accounts"].as_array().unwrap().len()
}

#[tokio::test]
async fn calls_are_counted_per_route_template() {
    let s = start().await;
    for path in ["/accounts/MA_SIMVOBIZ/sub-accounts/", "/accounts/MA_SIMVOBIZ/sub-accounts"] {
        assert_eq!(post(s.vz(Method::POST, path), json!({"name": "n"})).await.status, 201);
    }
    send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/")).await;
    send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/SA_X")).await;
    // Failed auth is a call too.
    send(s.req(Method::GET, "/vobiz/api/v1/accounts/MA_SIMVOBIZ/sub-accounts/")).await;
    assert_eq!(s.calls("vobiz", "POST", VZ_CREATE).await, 2);
    assert_eq!(s.calls("vobiz", "GET", VZ_CREATE).await, 2);
    assert_eq!(s.calls("vobiz", "GET", "/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}").await, 1);
    send(s.vp(Method::GET, "/me")).await;
    assert_eq!(s.calls("vobizPartner", "GET", "/api/v1/partner/me").await, 1);
    let r = send(s.req(Method::GET, "/_sim/calls")).await;
    assert_eq!(r.body["calls"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["peakPerSecond"]["vobizPartner"], 1, "the busiest second, per provider");
    assert_eq!(send(s.req(Method::DELETE, "/_sim/calls")).await.status, 200);
    assert_eq!(send(s.req(Method::GET, "/_sim/calls")).await.body, json!({"calls": [], "peakPerSecond": {}}));
}

#[tokio::test]
async fn status_fault_for_the_next_n_calls() {
    let s = start().await;
    let id = s.fault(json!({"provider": "recoverbiz", "method": "POST", "route": RB_CREATE, "fault": {"kind": "status", "status": 503}, "count": 2})).await;
    assert!(id.starts_with("flt_"));
    assert_eq!(send(s.req(Method::GET, "/_sim/faults")).await.body["faults"][0]["count"], 2);
    for _ in 0..2 {
        let r = post(s.rb(Method::POST, "/accounts"), json!({"name": "x"})).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.body["error"]["status"], 503, "RecoverBiz envelope: {}", r.body);
    }
    // Other routes are not affected, and the rule is used up.
    assert_eq!(send(s.rb(Method::GET, "/accounts")).await.status, 200);
    assert_eq!(post(s.rb(Method::POST, "/accounts"), json!({"name": "x"})).await.status, 201);
    assert_eq!(s.calls("recoverbiz", "POST", RB_CREATE).await, 3);
    assert_eq!(rb_accounts(&s).await, 1);
    assert_eq!(send(s.req(Method::GET, "/_sim/faults")).await.body["faults"], json!([]));
}

#[tokio::test]
async fn rate_limit_fault_in_each_providers_envelope() {
    let s = start().await;
    for p in ["agentphone", "vobiz-partner", "yardstik"] {
        s.fault(json!({"provider": p, "fault": {"kind": "rateLimit", "retryAfter": 7}, "count": 1})).await;
    }
    let r = send(s.ap(Method::GET, "/v1/numbers")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
    assert!(r.header("x-ratelimit-remaining").is_none(), "AgentPhone has no X-RateLimit-*");
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    let r = send(s.vp(Method::GET, "/me")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (429, Some("RATE_LIMIT_EXCEEDED")));
    let r = send(s.ys(Method::GET, "/sub_accounts")).await;
    assert_eq!((r.status, r.body["status"].as_u64()), (429, Some(429)));
    assert_eq!(send(s.ap(Method::GET, "/v1/numbers")).await.status, 200);
    s.fault(json!({"provider": "recoverbiz", "fault": {"kind": "rateLimit", "retryAfter": 3}, "count": 1})).await;
    let r = send(s.rb(Method::GET, "/accounts")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert_eq!((r.header("retry-after"), r.header("x-ratelimit-remaining")), (Some("3"), Some("0")));
}

#[tokio::test]
async fn latency_fault_delays_the_answer() {
    let s = start().await;
    s.fault(json!({"provider": "vobiz", "method": "GET", "fault": {"kind": "latency", "ms": 300}, "count": 1})).await;
    let t = Instant::now();
    let r = send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/")).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
}

#[tokio::test]
async fn hang_fault_outlasts_the_client_timeout() {
    let s = start().await;
    s.fault(json!({"provider": "agentphone", "method": "POST", "route": "/v1/sub-accounts", "fault": {"kind": "hang"}, "count": 1})).await;
    let err = s
        .ap(Method::POST, "/v1/sub-accounts")
        .json(&json!({"name": "slow"}))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(s.state().await["agentphone"]["subAccounts"].as_array().unwrap().is_empty());
    assert_eq!(post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": "fast"})).await.status, 200);
    assert_eq!(s.calls("agentphone", "POST", "/v1/sub-accounts").await, 2);
    // A held request is let go (its connection closed) when the faults are cleared.
    s.fault(json!({"provider": "agentphone", "fault": {"kind": "hang"}})).await;
    let held = tokio::spawn(s.ap(Method::GET, "/v1/numbers").timeout(Duration::from_secs(30)).send());
    while s.calls("agentphone", "GET", "/v1/numbers").await == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    assert_eq!(send(s.req(Method::DELETE, "/_sim/faults")).await.status, 200);
    let err = held.await.unwrap().unwrap_err();
    assert!(!err.is_timeout() && t.elapsed() < Duration::from_secs(10), "{err:?}");
}

#[tokio::test]
async fn drop_fault_closes_the_connection_without_applying() {
    let s = start().await;
    s.fault(json!({"provider": "yardstik", "method": "POST", "route": "/sub_accounts", "fault": {"kind": "drop"}, "count": 1})).await;
    let body = json!({"account_name": "Dropped", "email_address": "o@x.io", "first_name": "a", "last_name": "b",
                      "address": {}, "permissible_purpose_id": YS_PURPOSE});
    let err = s.ys(Method::POST, "/sub_accounts").json(&body).send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(s.state().await["yardstik"]["subAccounts"].as_array().unwrap().is_empty());
    assert_eq!(post(s.ys(Method::POST, "/sub_accounts"), body).await.status, 201);
}

#[tokio::test]
async fn after_apply_fault_loses_the_response_but_keeps_the_change() {
    let s = start().await;
    s.fault(json!({"provider": "recoverbiz", "method": "POST", "route": RB_CREATE, "fault": {"kind": "afterApply"}, "count": 1})).await;
    let err = s.rb(Method::POST, "/accounts").json(&json!({"name": "Lost Response"})).send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    // The account exists and a lookup finds it.
    assert_eq!(rb_accounts(&s).await, 1);
    let r = send(s.rb(Method::GET, "/accounts?search=Lost%20Response")).await;
    assert_eq!(r.body["total"], 1);
    // With a status, the client gets that status instead, and the change is applied too.
    s.fault(json!({"provider": "vobiz", "method": "POST", "route": VZ_CREATE, "fault": {"kind": "afterApply", "status": 502}, "count": 1})).await;
    let r = post(s.vz(Method::POST, "/accounts/MA_SIMVOBIZ/sub-accounts/"), json!({"name": "applied"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (502, Some("BAD_GATEWAY")));
    assert_eq!(s.state().await["vobiz"]["subAccounts"][0]["name"], "applied");
    assert_eq!(s.calls("vobiz", "POST", VZ_CREATE).await, 1);
}

#[tokio::test]
async fn probability_faults() {
    let s = start().await;
    let id = s.fault(json!({"provider": "agentphone", "method": "GET", "fault": {"kind": "status", "status": 500}, "probability": 0.5})).await;
    let mut failed = 0;
    for _ in 0..200 {
        if send(s.ap(Method::GET, "/v1/numbers")).await.status == 500 {
            failed += 1;
        }
    }
    assert!((50..=150).contains(&failed), "{failed} of 200");
    assert_eq!(send(s.req(Method::DELETE, &format!("/_sim/faults/{id}"))).await.status, 200);
    s.fault(json!({"provider": "agentphone", "fault": {"kind": "status", "status": 500}, "probability": 0.0})).await;
    for _ in 0..20 {
        assert_eq!(send(s.ap(Method::GET, "/v1/numbers")).await.status, 200);
    }
    // Without count or probability a rule applies until cleared.
    s.fault(json!({"provider": "agentphone", "method": "GET", "route": "/v1/numbers", "fault": {"kind": "status", "status": 503}})).await;
    for _ in 0..3 {
        assert_eq!(send(s.ap(Method::GET, "/v1/numbers")).await.status, 503);
    }
    assert_eq!(send(s.req(Method::DELETE, "/_sim/faults")).await.status, 200);
    assert_eq!(send(s.ap(Method::GET, "/v1/numbers")).await.status, 200);
}

#[tokio::test]
async fn bad_fault_rules_are_rejected() {
    let s = start().await;
    for f in [
        json!({"provider": "twilio", "fault": {"kind": "drop"}}),
        json!({"provider": "vobiz", "fault": {"kind": "explode"}}),
        json!({"provider": "vobiz", "fault": {"kind": "drop"}, "probability": 2.0}),
        json!({"provider": "vobiz", "fault": {"kind": "status", "status": 42}}),
        json!({"provider": "vobiz", "fault": {"kind": "drop"}, "count": 0}),
    ] {
        let r = send(s.req(Method::POST, "/_sim/faults").json(&f)).await;
        assert_eq!(r.status, 400, "{f}");
        assert!(r.body["error"].is_string());
    }
    // The route may be given with the provider prefix.
    s.fault(json!({"provider": "vobizPartner", "route": "/vobiz-partner/api/v1/partner/me", "fault": {"kind": "status", "status": 500}, "count": 1})).await;
    assert_eq!(send(s.vp(Method::GET, "/me")).await.status, 500);
}

#[tokio::test]
async fn reset_and_seed() {
    let s = start().await;
    let seed = json!({"agentphone": {"apiKeys": ["sk_live_extra"]}});
    assert_eq!(send(s.req(Method::POST, "/_sim/seed").json(&seed)).await.status, 200);
    let extra = |m: Method, p: &str| s.req(m, &format!("/agentphone{p}")).bearer_auth("sk_live_extra");
    assert_eq!(post(extra(Method::POST, "/v1/sub-accounts"), json!({"name": "e"})).await.status, 200);
    post(s.rb(Method::POST, "/accounts"), json!({"name": "r"})).await;
    s.fault(json!({"provider": "vobiz", "fault": {"kind": "drop"}})).await;
    assert_eq!(send(s.req(Method::POST, "/_sim/reset")).await.status, 200);
    let st = s.state().await;
    assert_eq!(
        st,
        json!({
            "recoverbiz": {"accounts": [], "members": []},
            "vobiz": {"subAccounts": [], "numbers": [], "inventory": st["vobiz"]["inventory"]},
            "agentphone": {"subAccounts": [], "numbers": [], "agents": []},
            "vobizPartner": {"partners": st["vobizPartner"]["partners"], "accounts": [], "transactions": []},
            "yardstik": {"subAccounts": []},
        })
    );
    assert_eq!(st["vobiz"]["inventory"].as_array().unwrap().len(), 20);
    assert_eq!(st["vobizPartner"]["partners"][0]["balance"], "100000.00000");
    assert_eq!(send(s.req(Method::GET, "/_sim/faults")).await.body["faults"], json!([]));
    // Dev and seeded credentials survive the reset.
    assert_eq!(send(extra(Method::GET, "/v1/sub-accounts")).await.body["total"], 0);
    assert_eq!(send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/")).await.status, 200);
    // Bad seeds are rejected.
    let r = send(s.req(Method::POST, "/_sim/seed").json(&json!({"agentphone": {"keys": []}}))).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_rotated_parent_credential_is_refused_and_the_new_one_owns_its_accounts() {
    let s = start().await;
    let rotate = |provider: &str, from: &str, to: &str| {
        s.req(Method::POST, "/_sim/rotate").json(&json!({"provider": provider, "from": from, "to": to}))
    };
    post(s.rb(Method::POST, "/accounts"), json!({"name": "kept"})).await;
    assert_eq!(send(rotate("recoverbiz", RB_KEY, "pk_live_rotated")).await.status, 200);
    assert_eq!(send(s.rb(Method::GET, "/accounts")).await.status, 401, "the old key is refused");
    let rotated = send(s.req(Method::GET, "/recoverbiz/v1/accounts").header("X-Partner-Key", "pk_live_rotated")).await;
    assert_eq!(rotated.status, 200);
    assert_eq!(rotated.body["accounts"][0]["name"], "kept", "{}", rotated.body);

    // Vobiz: the auth token changes, the auth id stays.
    assert_eq!(send(rotate("vobiz", VZ_TOKEN, "new-token")).await.status, 200);
    assert_eq!(send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/")).await.status, 401);
    let new = s.req(Method::GET, "/vobiz/api/v1/accounts/MA_SIMVOBIZ/sub-accounts/");
    assert_eq!(send(new.header("X-Auth-ID", VZ_ID).header("X-Auth-Token", "new-token")).await.status, 200);

    // A credential the provider does not have, or no such provider.
    assert_eq!(send(rotate("vobiz", VZ_TOKEN, "again")).await.status, 404);
    assert_eq!(send(rotate("nobody", "a", "b")).await.status, 400);
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_providers_envelope() {
    let s = start().await;
    let r = send(s.rb(Method::GET, "/nope")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("not_found")));
    let r = send(s.req(Method::GET, "/elsewhere")).await;
    assert_eq!(r.status, 404);
}

#[test]
fn the_documented_yaml_is_the_dev_seed() {
    let inventory: Vec<String> = (101..=120).map(|n| format!("\"+14155550{n}\"")).collect();
    let yaml = format!(
        r#"
recoverbiz:   {{ partnerKeys: ["pk_live_sim_recoverbiz_0000000000000000"] }}
vobiz:        {{ accounts: [{{ authId: "MA_SIMVOBIZ", authToken: "sim-vobiz-parent-token", inventory: [{}] }}] }}
agentphone:   {{ apiKeys: ["sk_live_sim_agentphone"] }}
vobizPartner: {{ partners: [{{ authId: "PA_SIMPARTNER", authToken: "sim-partner-token", maxAccounts: 100, balance: "100000.00000", currency: "USD" }}] }}
yardstik:     {{ apiKeys: ["sim-yardstik-platform-key"], permissiblePurposeIds: ["3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c"] }}
"#,
        inventory.join(", ")
    );
    assert_eq!(Seed::from_yaml(&yaml).unwrap(), Seed::default());
    assert!(Seed::from_yaml("recoverbiz: { partnerKey: [] }").is_err());
    let only = Seed::from_yaml("agentphone: { apiKeys: [k] }").unwrap();
    assert!(only.recoverbiz.partner_keys.is_empty() && only.agentphone.api_keys == ["k"]);
}

#[tokio::test]
async fn the_binary_serves_a_config_file_and_logs_without_credentials() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tenantline-sim")).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for needle in
        ["/recoverbiz/v1", "/vobiz-partner/api/v1/partner", "/_sim/faults", RB_KEY, VZ_TOKEN, AP_KEY, VP_TOKEN, YS_KEY]
    {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let dir = std::env::temp_dir().join(format!("tenantline-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sim.yaml");
    std::fs::write(&config, "recoverbiz: { partnerKeys: [pk_live_from_config_file] }\n").unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantline-sim"))
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr = first.split("http://").nth(1).expect("listening line").trim().to_string();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/recoverbiz/v1/accounts");
    let r = http.get(&url).header("X-Partner-Key", "pk_live_from_config_file").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(&url).header("X-Partner-Key", RB_KEY).send().await.unwrap();
    assert_eq!(r.status(), 401, "the config file replaces the dev seed");
    let mut logged = Vec::new();
    while logged.len() < 2 {
        let l = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
        logged.push(l);
    }
    assert!(logged[0].contains("GET /recoverbiz/v1/accounts 200"), "{logged:?}");
    assert!(logged[1].contains("GET /recoverbiz/v1/accounts 401"), "{logged:?}");
    assert!(logged.iter().all(|l| !l.contains("pk_live")));
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
