//! RecoverBiz: auth, validation, pagination, rate limits, soft delete, team members.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use tenantline_sim::Seed;
use tenantline_sim::seed::RateLimits;

#[tokio::test]
async fn auth_failures_use_the_error_envelope_and_carry_rate_limit_headers() {
    let s = start().await;
    let r = send(s.req(Method::GET, "/recoverbiz/v1/accounts")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"error": {"code": "unauthorized", "message": "Invalid or missing Partner API key", "status": 401}})
    );
    assert!(r.header("x-ratelimit-limit").is_some());
    let r = send(s.req(Method::GET, "/recoverbiz/v1/accounts").header("X-Partner-Key", "pk_live_wrong")).await;
    assert_eq!(r.status, 401);
    // Authorization: Bearer is accepted as an alternative.
    let r = send(s.req(Method::GET, "/recoverbiz/v1/accounts").bearer_auth(RB_KEY)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-limit"), Some("1000"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("999"));
    let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > 1_700_000_000);
}

#[tokio::test]
async fn validation_errors() {
    let s = start().await;
    let cases = [
        (json!({}), 422, "validation_error"),
        (json!({"name": ""}), 422, "validation_error"),
        (json!({"name": "x".repeat(101)}), 422, "validation_error"),
        (json!({"name": "A", "phone_number": "4155551234"}), 400, "invalid_phone"),
        (json!({"name": "A", "forwarding_number": "+0123"}), 400, "invalid_phone"),
        (json!({"name": "A", "branding": {"accent_color": "blue"}}), 422, "validation_error"),
        (json!({"name": "A", "branding": {"accent_color": "#12345"}}), 422, "validation_error"),
        (json!({"name": "A", "metadata": "x"}), 422, "validation_error"),
    ];
    for (body, status, code) in cases {
        let r = post(s.rb(Method::POST, "/accounts"), body.clone()).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (status, Some(code)), "{body}");
        assert_eq!(r.body["error"]["status"], status);
    }
    let r = send(s.rb(Method::POST, "/accounts").header("content-type", "application/json").body("{not json")).await;
    assert_eq!(r.status, 422);
    for q in ["limit=0", "limit=251", "offset=-1", "status=paused", "limit=abc"] {
        let r = send(s.rb(Method::GET, &format!("/accounts?{q}"))).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (422, Some("validation_error")), "{q}");
    }
    assert!(s.state().await["recoverbiz"]["accounts"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn pagination_filters_and_search() {
    let s = start().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let r = post(s.rb(Method::POST, "/accounts"), json!({"name": format!("Tenant {i}")})).await;
        assert_eq!(r.status, 201);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    for (offset, n) in [(0, 3), (3, 3), (6, 1)] {
        let r = send(s.rb(Method::GET, &format!("/accounts?limit=3&offset={offset}"))).await;
        assert_eq!(r.body["total"], 7);
        assert_eq!(r.body["limit"], 3);
        assert_eq!(r.body["offset"], offset);
        let page = r.body["accounts"].as_array().unwrap();
        assert_eq!(page.len(), n);
        seen.extend(page.iter().map(|a| a["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen, ids);
    // Default limit 50.
    assert_eq!(send(s.rb(Method::GET, "/accounts")).await.body["limit"], 50);
    send(s.rb(Method::DELETE, &format!("/accounts/{}", ids[2]))).await;
    let r = send(s.rb(Method::GET, "/accounts?status=deactivated")).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["accounts"][0]["id"], ids[2].as_str());
    assert_eq!(send(s.rb(Method::GET, "/accounts?status=active")).await.body["total"], 6);
    let r = send(s.rb(Method::GET, "/accounts?search=tenant%205")).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["accounts"][0]["name"], "Tenant 5");
}

#[tokio::test]
async fn account_creation_is_limited_to_100_per_hour() {
    let s = start().await;
    for i in 0..100 {
        let r = post(s.rb(Method::POST, "/accounts"), json!({"name": format!("T{i}")})).await;
        assert_eq!(r.status, 201, "creation {i}");
        assert_eq!(r.header("x-ratelimit-limit"), Some("100"));
        assert_eq!(r.header("x-ratelimit-remaining").unwrap(), (99 - i).to_string());
    }
    let r = post(s.rb(Method::POST, "/accounts"), json!({"name": "one too many"})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error"]["code"], "rate_limited");
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // Other calls have their own budget.
    let r = send(s.rb(Method::GET, "/accounts?limit=1")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"], 100);
    assert_eq!(s.state().await["recoverbiz"]["accounts"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn other_calls_are_limited_per_partner_key() {
    let mut seed = Seed::default();
    seed.recoverbiz.partner_keys.push("pk_live_second".into());
    seed.recoverbiz.rate_limits = Some(RateLimits { account_create_per_hour: 100, other_per_minute: 5 });
    let s = start_with(seed).await;
    for _ in 0..5 {
        assert_eq!(send(s.rb(Method::GET, "/accounts")).await.status, 200);
    }
    let r = send(s.rb(Method::GET, "/accounts")).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").unwrap().parse::<i64>().unwrap() <= 60);
    assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
    // Another partner key is not affected.
    let r = send(s.req(Method::GET, "/recoverbiz/v1/accounts").header("X-Partner-Key", "pk_live_second")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("4"));
}

#[tokio::test]
async fn delete_is_a_soft_deactivation_and_patch_reactivates() {
    let s = start().await;
    let r = post(s.rb(Method::POST, "/accounts"), json!({"name": "Soft", "metadata": {"a": "1", "b": "2"}})).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = send(s.rb(Method::DELETE, &format!("/accounts/{id}"))).await;
    assert_eq!(r.status, 200);
    let at = r.body["deactivated_at"].clone();
    // Still there, deactivated; a second DELETE keeps the first timestamp.
    let r = send(s.rb(Method::GET, &format!("/accounts/{id}"))).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("deactivated")));
    assert_eq!(r.body["deactivated_at"], at);
    assert_eq!(send(s.rb(Method::DELETE, &format!("/accounts/{id}"))).await.body["deactivated_at"], at);
    // Changes to a deactivated account are refused unless they reactivate it.
    let r = post(s.rb(Method::PATCH, &format!("/accounts/{id}")), json!({"name": "Renamed"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (403, Some("account_deactivated")));
    let r = post(
        s.rb(Method::PATCH, &format!("/accounts/{id}")),
        json!({"status": "active", "metadata": {"b": null, "c": "3"}}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "active");
    assert!(r.body.get("deactivated_at").is_none());
    assert_eq!(r.body["metadata"], json!({"a": "1", "c": "3"}));
    let st = s.state().await;
    assert_eq!(st["recoverbiz"]["accounts"][0]["status"], "active");
    // Unknown account.
    let r = send(s.rb(Method::DELETE, "/accounts/acc_00000000")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn each_partner_key_has_its_own_accounts() {
    let s = start().await;
    let r =
        send(s.req(Method::POST, "/_sim/seed").json(&json!({"recoverbiz": {"partnerKeys": ["pk_live_other"]}}))).await;
    assert_eq!(r.status, 200);
    let id =
        post(s.rb(Method::POST, "/accounts"), json!({"name": "Mine"})).await.body["id"].as_str().unwrap().to_string();
    let other = |m: Method, p: &str| s.req(m, &format!("/recoverbiz/v1{p}")).header("X-Partner-Key", "pk_live_other");
    assert_eq!(send(other(Method::GET, &format!("/accounts/{id}"))).await.status, 404);
    assert_eq!(send(other(Method::GET, "/accounts")).await.body["total"], 0);
}

#[tokio::test]
async fn team_members_invite_list_and_remove() {
    let s = start().await;
    let id =
        post(s.rb(Method::POST, "/accounts"), json!({"name": "Team"})).await.body["id"].as_str().unwrap().to_string();
    let invite = |body| post(s.rb(Method::POST, &format!("/accounts/{id}/team/invite")), body);
    let r = invite(json!({"email": "a@team.io", "name": "A", "role": "member", "phone_number": "+14155550001"})).await;
    assert_eq!(r.status, 201);
    let mid = r.body["id"].as_str().unwrap().to_string();
    let r = invite(json!({"email": "A@TEAM.IO", "name": "A again"})).await;
    assert_eq!((r.status, r.body["error"]["status"].as_u64()), (409, Some(409)));
    assert_eq!(invite(json!({"name": "no email"})).await.status, 422);
    assert_eq!(invite(json!({"email": "b@team.io", "role": "king"})).await.status, 422);
    assert_eq!(
        invite(json!({"email": "b@team.io", "phone_number": "555"})).await.body["error"]["code"],
        "invalid_phone"
    );
    assert_eq!(invite(json!({"email": "b@team.io"})).await.body["role"], "member");
    let r = send(s.rb(Method::GET, &format!("/accounts/{id}/team"))).await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(s.state().await["recoverbiz"]["members"].as_array().unwrap().len(), 2);
    let r = send(s.rb(Method::DELETE, &format!("/accounts/{id}/team/{mid}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(send(s.rb(Method::GET, &format!("/accounts/{id}/team/{mid}"))).await.status, 404);
    assert_eq!(send(s.rb(Method::GET, &format!("/accounts/{id}/team"))).await.body["total"], 1);
    // The same email can be invited again once removed; a deactivated account refuses invites.
    assert_eq!(invite(json!({"email": "a@team.io"})).await.status, 201);
    send(s.rb(Method::DELETE, &format!("/accounts/{id}"))).await;
    let r = invite(json!({"email": "c@team.io"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (403, Some("account_deactivated")));
    assert_eq!(
        post(s.rb(Method::POST, "/accounts/acc_nope/team/invite"), json!({"email": "x@y.io"})).await.status,
        404
    );
}
