//! The hostile provider: redirect, body, headers and error faults, and the sink that plays
//! another host, each over real HTTP.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const RB_CREATE: &str = "/v1/accounts";
const VZ_CREATE: &str = "/api/v1/accounts/{auth_id}/sub-accounts/";

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn count(state: &serde_json::Value, pointer: &str) -> usize {
    state.pointer(pointer).and_then(|v| v.as_array()).map_or(0, Vec::len)
}

#[tokio::test]
async fn redirect_fault_points_elsewhere_and_applies_nothing() {
    let s = start().await;
    let other = start().await;
    let location = format!("{}/_sim/sink/elsewhere", other.base);
    s.fault(json!({"provider": "vobiz", "method": "POST", "route": VZ_CREATE, "fault": {"kind": "redirect", "location": location}})).await;
    let url = format!("{}/vobiz/api/v1/accounts/{VZ_ID}/sub-accounts/", s.base);
    let vobiz = |http: &reqwest::Client| {
        http.post(&url).header("X-Auth-ID", VZ_ID).header("X-Auth-Token", VZ_TOKEN).json(&json!({"name": "moved"}))
    };
    let r = vobiz(&no_redirects()).send().await.unwrap();
    assert_eq!(r.status(), 307, "the default status");
    assert_eq!(r.headers()["location"], location.as_str());
    assert_eq!(count(&s.state().await, "/vobiz/subAccounts"), 0, "nothing applied");

    // A client that follows it carries the request, and whatever headers it keeps, to the sink.
    let r = vobiz(&s.http).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sink = send(other.req(Method::GET, "/_sim/sink")).await.body;
    assert_eq!(sink["requests"][0]["method"], "POST", "307 keeps the method: {sink}");
    assert_eq!(sink["requests"][0]["path"], "/_sim/sink/elsewhere");
    assert_eq!(sink["requests"][0]["headers"]["x-auth-token"], VZ_TOKEN, "{sink}");
    assert_eq!(count(&s.state().await, "/vobiz/subAccounts"), 0);
    assert_eq!(s.calls("vobiz", "POST", VZ_CREATE).await, 2, "redirected calls are counted");

    // Any redirect status, on a route given with its prefix.
    s.fault(json!({"provider": "recoverbiz", "route": "/recoverbiz/v1/accounts", "fault": {"kind": "redirect", "status": 301, "location": "https://example.invalid/v1/accounts"}, "count": 1})).await;
    let url = format!("{}/recoverbiz/v1/accounts", s.base);
    let r = no_redirects().get(url).header("X-Partner-Key", RB_KEY).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "https://example.invalid/v1/accounts");
}

#[tokio::test]
async fn body_fault_answers_exactly_the_given_text() {
    let s = start().await;
    s.fault(json!({"provider": "recoverbiz", "method": "POST", "route": RB_CREATE, "fault": {"kind": "body", "text": "{\"id\": "}, "count": 1})).await;
    let r = s.rb(Method::POST, "/accounts").json(&json!({"name": "garbage"})).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "application/json"));
    assert_eq!(r.text().await.unwrap(), "{\"id\": ");
    assert_eq!(count(&s.state().await, "/recoverbiz/accounts"), 0, "nothing applied");

    s.fault(json!({"provider": "agentphone", "fault": {"kind": "body", "status": 502, "text": "<html>Bad Gateway</html>", "contentType": "text/html"}, "count": 1})).await;
    let r = s.ap(Method::GET, "/v1/numbers").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (502, "text/html"));
    assert_eq!(r.text().await.unwrap(), "<html>Bad Gateway</html>");

    // Neither text nor bytes: an empty body where JSON was promised.
    s.fault(json!({"provider": "yardstik", "fault": {"kind": "body"}, "count": 1})).await;
    let r = s.ys(Method::GET, "/sub_accounts").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.content_length()), (200, Some(0)));
    assert_eq!(s.calls("recoverbiz", "POST", RB_CREATE).await, 1);
    assert_eq!(s.calls("yardstik", "GET", "/sub_accounts").await, 1);
}

#[tokio::test]
async fn body_fault_streams_a_huge_body_of_the_exact_size() {
    const SIZE: u64 = 64 * 1024 * 1024 + 7;
    let s = start().await;
    s.fault(json!({"provider": "vobiz", "method": "GET", "fault": {"kind": "body", "bytes": SIZE}, "count": 1})).await;
    let mut r = s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.content_length()), (200, Some(SIZE)), "the size is announced");
    let mut read = 0u64;
    let mut largest = 0;
    while let Some(chunk) = r.chunk().await.unwrap() {
        assert!(chunk.iter().all(|b| *b == b'x'));
        read += chunk.len() as u64;
        largest = largest.max(chunk.len());
    }
    assert_eq!(read, SIZE);
    assert!(largest <= 1024 * 1024, "streamed in chunks, not one {largest}-byte piece");
    assert_eq!(send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts/")).await.status, 200, "the rule is used up");
}

#[tokio::test]
async fn headers_fault_with_2xx_applies_the_change_and_adds_the_headers() {
    let s = start().await;
    let headers = json!({"Retry-After": "999999999999", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": "18446744073709551615"});
    s.fault(json!({"provider": "recoverbiz", "method": "POST", "route": RB_CREATE, "fault": {"kind": "headers", "headers": headers}, "count": 1})).await;
    let r = post(s.rb(Method::POST, "/accounts"), json!({"name": "Applied"})).await;
    assert_eq!(r.status, 201, "the handler's own status: {}", r.body);
    assert_eq!(r.body["name"], "Applied");
    assert_eq!(r.header("retry-after"), Some("999999999999"));
    // They replace the ones RecoverBiz sets itself.
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("18446744073709551615"));
    assert_eq!(count(&s.state().await, "/recoverbiz/accounts"), 1, "the change is applied");
    assert_eq!(s.calls("recoverbiz", "POST", RB_CREATE).await, 1);
}

#[tokio::test]
async fn headers_fault_with_an_error_status_answers_the_envelope_and_applies_nothing() {
    let s = start().await;
    let fault = json!({"kind": "headers", "status": 429, "headers": {"retry-after": "999999999999"}});
    s.fault(
        json!({"provider": "agentphone", "method": "POST", "route": "/v1/sub-accounts", "fault": fault, "count": 1}),
    )
    .await;
    let r = post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": "limited"})).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("999999999999")));
    assert_eq!(r.body["error"]["code"], "RATE_LIMIT_EXCEEDED", "AgentPhone's envelope: {}", r.body);
    assert_eq!(count(&s.state().await, "/agentphone/subAccounts"), 0);
    assert_eq!(s.calls("agentphone", "POST", "/v1/sub-accounts").await, 1);
}

#[tokio::test]
async fn error_fault_carries_the_tests_message_in_each_providers_envelope() {
    let s = start().await;
    let message = format!("\u{1b}[31mboom\u{1b}[0m\nline two\r\ntoken {VZ_TOKEN}\n{}", "x".repeat(8 * 1024));
    for p in ["recoverbiz", "vobiz", "yardstik"] {
        s.fault(json!({"provider": p, "method": "POST", "fault": {"kind": "error", "status": 422, "message": message}, "count": 1})).await;
    }
    let r = post(s.rb(Method::POST, "/accounts"), json!({"name": "n"})).await;
    assert_eq!((r.status, r.body["error"]["message"].as_str()), (422, Some(message.as_str())));
    assert_eq!(r.body["error"]["code"], "validation_error");
    let r = post(s.vz(Method::POST, "/accounts/MA_SIMVOBIZ/sub-accounts/"), json!({"name": "n"})).await;
    assert_eq!((r.status, r.body["error"]["message"].as_str()), (422, Some(message.as_str())));
    assert_eq!(r.body["status"], "error");
    let body = json!({"account_name": "N", "email_address": "o@x.io", "first_name": "a", "last_name": "b",
                      "address": {}, "permissible_purpose_id": YS_PURPOSE});
    let r = post(s.ys(Method::POST, "/sub_accounts"), body).await;
    assert_eq!((r.status, r.body["message"].as_str()), (422, Some(message.as_str())));
    let st = s.state().await;
    assert_eq!(
        count(&st, "/recoverbiz/accounts") + count(&st, "/vobiz/subAccounts") + count(&st, "/yardstik/subAccounts"),
        0
    );
    assert_eq!(s.calls("vobiz", "POST", VZ_CREATE).await, 1);
}

#[tokio::test]
async fn the_sink_records_credential_headers_only() {
    let s = start().await;
    let r = s
        .req(Method::PUT, "/_sim/sink/vobiz/api/v1/x?token=t")
        .header("Authorization", "Bearer secret")
        .header("X-Auth-ID", VZ_ID)
        .header("X-Auth-Token", VZ_TOKEN)
        .header("X-Partner-Key", RB_KEY)
        .header("X-Sub-Account-Id", "sub_1")
        .header("Cookie", "c=1")
        .header("X-Other", "o")
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    send(s.req(Method::GET, "/_sim/sink/")).await;
    let sink = send(s.req(Method::GET, "/_sim/sink")).await.body;
    assert_eq!(
        sink,
        json!({"requests": [
            {"method": "PUT", "path": "/_sim/sink/vobiz/api/v1/x", "query": "token=t", "headers": {
                "authorization": "Bearer secret", "x-auth-id": VZ_ID, "x-auth-token": VZ_TOKEN,
                "x-partner-key": RB_KEY, "x-sub-account-id": "sub_1"}},
            {"method": "GET", "path": "/_sim/sink/", "headers": {}},
        ]})
    );
    // Not a provider call; cleared by DELETE and by a reset.
    assert_eq!(send(s.req(Method::GET, "/_sim/calls")).await.body["calls"], json!([]));
    assert_eq!(send(s.req(Method::DELETE, "/_sim/sink")).await.status, 200);
    assert_eq!(send(s.req(Method::GET, "/_sim/sink")).await.body, json!({"requests": []}));
    send(s.req(Method::POST, "/_sim/sink/again")).await;
    send(s.req(Method::POST, "/_sim/reset")).await;
    assert_eq!(send(s.req(Method::GET, "/_sim/sink")).await.body, json!({"requests": []}));
}

#[tokio::test]
async fn bad_hostile_rules_are_rejected() {
    let s = start().await;
    for fault in [
        json!({"kind": "redirect", "status": 200, "location": "http://a.test/"}),
        json!({"kind": "redirect", "status": 304, "location": "http://a.test/"}),
        json!({"kind": "redirect", "location": "/relative"}),
        json!({"kind": "redirect", "location": "ftp://a.test/"}),
        json!({"kind": "redirect", "location": "http://a.test/\nx"}),
        json!({"kind": "redirect"}),
        json!({"kind": "body", "bytes": 1, "text": "x"}),
        json!({"kind": "body", "status": 99}),
        json!({"kind": "body", "text": "x", "contentType": "text/\nhtml"}),
        json!({"kind": "body", "bytes": -1}),
        json!({"kind": "headers", "status": 1000, "headers": {}}),
        json!({"kind": "headers", "headers": {"bad name": "v"}}),
        json!({"kind": "headers", "headers": {"x-a": "line\nbreak"}}),
        json!({"kind": "headers", "headers": {"Content-Length": "1"}}),
        json!({"kind": "headers", "headers": {"x-a": 1}}),
        json!({"kind": "error", "status": 200, "message": "m"}),
        json!({"kind": "error", "status": 503}),
        json!({"kind": "error", "status": 503, "message": "m", "extra": 1}),
    ] {
        let r = send(s.req(Method::POST, "/_sim/faults").json(&json!({"provider": "vobiz", "fault": fault}))).await;
        assert_eq!(r.status, 400, "{fault}");
        assert!(r.body["error"].is_string(), "{fault}: {}", r.body);
    }
    assert_eq!(send(s.req(Method::GET, "/_sim/faults")).await.body["faults"], json!([]));
}

/// The same through the Rust ControlClient (feature `client`: `cargo test -p tenantline-sim
/// --features client`; the workspace's tests turn it on).
#[cfg(feature = "client")]
#[tokio::test]
async fn control_client_redirects_to_another_simulators_sink() {
    use tenantline_sim::FaultKind;
    use tenantline_sim::client::ControlClient;

    let (a, _a) = tenantline_sim::Simulator::spawn_local(tenantline_sim::Seed::default()).await;
    let (b, _b) = tenantline_sim::Simulator::spawn_local(tenantline_sim::Seed::default()).await;
    let (provider, other) = (ControlClient::new(a), ControlClient::new(b));
    let redirect = FaultKind::Redirect { status: 308, location: other.sink_url("/moved") };
    let id = provider.inject("agentphone", "GET", Some("/v1/numbers"), &redirect, json!({"count": 1})).await;
    assert!(id.starts_with("flt_"));
    let r =
        provider.http().get(provider.url("/agentphone/v1/numbers")).header("X-Partner-Key", "k").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sink = other.sink().await;
    assert_eq!((sink.len(), sink[0].method.as_str(), sink[0].path.as_str()), (1, "GET", "/_sim/sink/moved"));
    assert_eq!(sink[0].headers.get("x-partner-key").map(String::as_str), Some("k"));
    assert_eq!(provider.calls_to("agentphone", "GET", "/v1/numbers").await, 1);
    other.clear_sink().await;
    assert!(other.sink().await.is_empty());
    let error = FaultKind::Error { status: 500, message: "\u{1b}[31m".into() };
    provider.inject("agentphone", "GET", None, &error, json!({})).await;
    let r = provider.http().get(provider.url("/agentphone/v1/numbers")).bearer_auth(AP_KEY).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["message"], "\u{1b}[31m");
}
