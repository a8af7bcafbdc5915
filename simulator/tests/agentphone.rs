//! AgentPhone: auth, both error shapes, the 25 sub-account cap, pagination, hard delete,
//! numbers scoped by X-Sub-Account-Id with the 10-number limit.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn sub(s: &Sim, name: &str) -> String {
    let r = post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": name})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn buy(s: &Sim, sub: Option<&str>, body: Value) -> Resp {
    let mut rb = s.ap(Method::POST, "/v1/numbers");
    if let Some(id) = sub {
        rb = rb.header("X-Sub-Account-Id", id);
    }
    post(rb, body).await
}

#[tokio::test]
async fn auth_failures() {
    let s = start().await;
    let r = send(s.req(Method::GET, "/agentphone/v1/sub-accounts")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["type"], "authentication_error");
    assert!(r.body["error"]["code"].is_string() && r.body["error"]["message"].is_string());
    assert!(r.body["error"]["details"].is_array());
    let r = send(s.req(Method::GET, "/agentphone/v1/numbers").bearer_auth("sk_live_wrong")).await;
    assert_eq!(r.status, 401);
    // An unknown X-Sub-Account-Id is a 404.
    let r = send(s.ap(Method::GET, "/v1/numbers").header("X-Sub-Account-Id", "sub_unknown")).await;
    assert_eq!((r.status, r.body["error"]["type"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn body_validation_uses_fastapi_detail() {
    let s = start().await;
    for (body, typ) in [
        (json!({}), "missing"),
        (json!({"name": ""}), "string_too_short"),
        (json!({"name": "x".repeat(101)}), "string_too_long"),
        (json!({"name": 7}), "string_type"),
    ] {
        let r = post(s.ap(Method::POST, "/v1/sub-accounts"), body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", "name"]), "{body}");
        assert_eq!(r.body["detail"][0]["type"], typ);
        assert!(r.body["detail"][0]["msg"].is_string());
    }
    assert_eq!(post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": "x".repeat(100)})).await.status, 200);
    let r = send(s.ap(Method::GET, "/v1/sub-accounts?limit=101")).await;
    assert_eq!((r.status, r.body["detail"][0]["loc"].clone()), (422, json!(["query", "limit"])));
    assert_eq!(buy(&s, None, json!({"country": "USA"})).await.status, 422);
    assert_eq!(buy(&s, None, json!({"areaCode": "12"})).await.status, 422);
    let r = buy(&s, None, json!({"country": "ZZ"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")));
}

#[tokio::test]
async fn at_most_25_sub_accounts_and_pagination() {
    let s = start().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(sub(&s, &format!("sub {i}")).await);
    }
    let r = post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": "26th"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(r.body["error"]["type"], "validation_error");
    assert!(r.body["error"]["details"].is_array());
    let mut seen = Vec::new();
    for (offset, n, more) in [(0, 10, true), (10, 10, true), (20, 5, false)] {
        let r = send(s.ap(Method::GET, &format!("/v1/sub-accounts?limit=10&offset={offset}"))).await;
        assert_eq!(r.body["total"], 25);
        assert_eq!(r.body["hasMore"], more);
        let data = r.body["data"].as_array().unwrap();
        assert_eq!(data.len(), n);
        seen.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen, ids);
    assert_eq!(send(s.ap(Method::GET, "/v1/sub-accounts")).await.body["data"].as_array().unwrap().len(), 20);
    // Deleting one frees a slot.
    send(s.ap(Method::DELETE, &format!("/v1/sub-accounts/{}", ids[0]))).await;
    assert_eq!(post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": "26th"})).await.status, 200);
    // One level only.
    let r = post(s.ap(Method::POST, "/v1/sub-accounts").header("X-Sub-Account-Id", &ids[1]), json!({"name": "nested"}))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn rename_and_hard_delete_release_numbers() {
    let s = start().await;
    let id = sub(&s, "Marketing").await;
    let r = post(s.ap(Method::PATCH, &format!("/v1/sub-accounts/{id}")), json!({"name": "Growth"})).await;
    assert_eq!((r.status, r.body["name"].as_str()), (200, Some("Growth")));
    assert_eq!(post(s.ap(Method::PATCH, "/v1/sub-accounts/sub_nope"), json!({"name": "x"})).await.status, 404);
    let num = buy(&s, Some(&id), json!({"country": "US"})).await.body["id"].as_str().unwrap().to_string();
    let r = send(s.ap(Method::DELETE, &format!("/v1/sub-accounts/{id}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"success": true, "id": id}));
    assert_eq!(send(s.ap(Method::GET, "/v1/sub-accounts")).await.body["total"], 0);
    assert_eq!(send(s.ap(Method::DELETE, &format!("/v1/sub-accounts/{id}"))).await.status, 404);
    assert_eq!(send(s.ap(Method::GET, "/v1/numbers").header("X-Sub-Account-Id", &id)).await.status, 404);
    let st = s.state().await;
    assert!(st["agentphone"]["subAccounts"].as_array().unwrap().is_empty());
    assert_eq!(st["agentphone"]["numbers"][0]["id"], num.as_str());
    assert_eq!(st["agentphone"]["numbers"][0]["status"], "released");
}

#[tokio::test]
async fn numbers_limit_release_and_scope() {
    let s = start().await;
    let a = sub(&s, "A").await;
    let r = buy(&s, Some(&a), json!({"country": "US", "areaCode": "212"})).await;
    assert!(r.body["phoneNumber"].as_str().unwrap().starts_with("+1212"), "{}", r.body);
    let first = r.body["id"].as_str().unwrap().to_string();
    for _ in 1..10 {
        assert_eq!(buy(&s, Some(&a), json!({})).await.status, 200);
    }
    let r = buy(&s, Some(&a), json!({"country": "US"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "VALIDATION_ERROR_NUMBER_LIMIT");
    // The master account has its own allowance.
    assert_eq!(buy(&s, None, json!({})).await.status, 200);
    // Pagination over the sub-account's numbers.
    let r = send(s.ap(Method::GET, "/v1/numbers?limit=4&offset=8").header("X-Sub-Account-Id", &a)).await;
    assert_eq!((r.body["total"].clone(), r.body["hasMore"].clone()), (json!(10), json!(false)));
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    // Numbers are invisible outside their scope.
    let r = send(s.ap(Method::GET, &format!("/v1/numbers/{first}"))).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("PHONE_NUMBER_NOT_FOUND")));
    // Release: gone from the list, still readable, frees a slot.
    let r = send(s.ap(Method::DELETE, &format!("/v1/numbers/{first}")).header("X-Sub-Account-Id", &a)).await;
    assert_eq!(r.status, 200);
    assert_eq!((r.body["success"].clone(), r.body["status"].clone()), (json!(true), json!("released")));
    assert!(r.body["phoneNumber"].as_str().unwrap().starts_with("+1212"));
    let r = send(s.ap(Method::GET, &format!("/v1/numbers/{first}")).header("X-Sub-Account-Id", &a)).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("released")));
    assert_eq!(send(s.ap(Method::GET, "/v1/numbers").header("X-Sub-Account-Id", &a)).await.body["total"], 9);
    assert_eq!(
        send(s.ap(Method::DELETE, &format!("/v1/numbers/{first}")).header("X-Sub-Account-Id", &a)).await.status,
        404
    );
    assert_eq!(buy(&s, Some(&a), json!({})).await.status, 200);
}

#[tokio::test]
async fn agents_and_their_numbers() {
    let s = start().await;
    let r = post(s.ap(Method::POST, "/v1/agents"), json!({"name": "Bot", "voiceMode": "robot"})).await;
    assert_eq!((r.status, r.body["detail"][0]["loc"].clone()), (422, json!(["body", "voiceMode"])));
    assert_eq!(post(s.ap(Method::POST, "/v1/agents"), json!({"name": "Bot", "voiceSpeed": 3})).await.status, 422);
    let r = post(s.ap(Method::POST, "/v1/agents"), json!({"name": "Bot"})).await;
    assert_eq!(r.status, 200);
    assert_eq!((r.body["voiceMode"].as_str(), r.body["language"].as_str()), (Some("webhook"), Some("en-US")));
    let agent = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(buy(&s, None, json!({"agentId": "agt_nope"})).await.status, 404);
    let n1 = buy(&s, None, json!({"agentId": agent})).await.body["id"].as_str().unwrap().to_string();
    let n2 = buy(&s, None, json!({})).await.body["id"].as_str().unwrap().to_string();
    let r = post(s.ap(Method::POST, &format!("/v1/agents/{agent}/numbers")), json!({"numberId": n2})).await;
    assert_eq!(
        (r.status, r.body["agentId"].as_str(), r.body["number"]["id"].as_str()),
        (200, Some(agent.as_str()), Some(n2.as_str()))
    );
    let r = send(s.ap(Method::GET, &format!("/v1/agents/{agent}"))).await;
    assert_eq!(r.body["numbers"].as_array().unwrap().len(), 2);
    let r =
        post(s.ap(Method::PATCH, &format!("/v1/agents/{agent}")), json!({"name": "Bot 2", "modelTier": "max"})).await;
    assert_eq!((r.body["name"].as_str(), r.body["modelTier"].as_str()), (Some("Bot 2"), Some("max")));
    assert_eq!(
        send(s.ap(Method::DELETE, &format!("/v1/agents/{agent}/numbers/{n2}"))).await.body,
        json!({"success": true})
    );
    let r = send(s.ap(Method::DELETE, &format!("/v1/agents/{agent}"))).await;
    assert_eq!(r.body, json!({"success": true, "id": agent, "name": "Bot 2"}));
    let r = send(s.ap(Method::GET, &format!("/v1/numbers/{n1}"))).await;
    assert_eq!((r.body["status"].as_str(), r.body["agentId"].clone()), (Some("active"), json!(null)));
    assert_eq!(send(s.ap(Method::GET, &format!("/v1/agents/{agent}"))).await.status, 404);
}

#[tokio::test]
async fn the_cap_holds_under_concurrent_creates() {
    let s = std::sync::Arc::new(start().await);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": format!("c{i}")})).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 25);
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 15);
    assert_eq!(s.state().await["agentphone"]["subAccounts"].as_array().unwrap().len(), 25);
}
