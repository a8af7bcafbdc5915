//! Yardstik: auth, validation, idempotent create with token refresh, PATCH with the
//! sub-account's own token, list envelope and pagination, no delete.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn body(name: &str) -> Value {
    json!({"account_name": name, "email_address": "owner@acme.com", "first_name": "Ada", "last_name": "Lovelace",
           "address": {"line1": "1 Main St", "city": "Austin", "state": "TX", "zip_code": "78701"},
           "permissible_purpose_id": YS_PURPOSE})
}

fn with(mut b: Value, k: &str, v: Value) -> Value {
    if v.is_null() {
        b.as_object_mut().unwrap().remove(k);
    } else {
        b[k] = v;
    }
    b
}

#[tokio::test]
async fn auth_failures() {
    let s = start().await;
    assert_eq!(send(s.req(Method::GET, "/yardstik/sub_accounts")).await.status, 401);
    let r = send(s.req(Method::GET, "/yardstik/sub_accounts").header("Authorization", "Account wrong")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["status"], 401);
    assert!(r.body["message"].is_string());
    let r = send(s.req(Method::GET, "/yardstik/sub_accounts").bearer_auth(YS_KEY)).await;
    assert_eq!(r.status, 401, "the scheme word is Account");
}

#[tokio::test]
async fn validation_errors() {
    let s = start().await;
    for (b, status, field) in [
        (with(body("a"), "account_name", Value::Null), 422, "account_name"),
        (with(body("a"), "email_address", Value::Null), 422, "email_address"),
        (with(body("a"), "first_name", json!("")), 422, "first_name"),
        (with(body("a"), "last_name", Value::Null), 422, "last_name"),
        (with(body("a"), "address", Value::Null), 422, "address"),
        (with(body("a"), "email_address", json!("nope")), 422, "email_address"),
        (with(body("a"), "support_phone", json!("555-1234")), 422, "support_phone"),
        (with(body("a"), "company_phone_number", json!("+0")), 422, "company_phone_number"),
        (with(body("a"), "legal_entity_type", json!("llc")), 422, "legal_entity_type"),
        (with(body("a"), "permissible_purpose_id", Value::Null), 422, "permissible_purpose_id"),
    ] {
        let r = post(s.ys(Method::POST, "/sub_accounts"), b.clone()).await;
        assert_eq!(r.status, status, "{b}");
        assert!(r.body["errors"][field].is_array(), "{field}: {}", r.body);
    }
    let r = post(
        s.ys(Method::POST, "/sub_accounts"),
        with(body("a"), "permissible_purpose_id", json!("00000000-0000-4000-8000-000000000000")),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        s.ys(Method::POST, "/sub_accounts"),
        with(body("a"), "account_packages", json!([{"permissible_purpose_id": YS_PURPOSE}])),
    )
    .await;
    assert_eq!(r.status, 201, "consistent packages are accepted: {}", r.body);
    assert_eq!(s.state().await["yardstik"]["subAccounts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn repeat_post_refreshes_the_token_and_patch_needs_it() {
    let s = start().await;
    let r = post(s.ys(Method::POST, "/sub_accounts"), body("Acme")).await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    let t1 = r.body["api_tokens"][0]["api_token"].as_str().unwrap().to_string();
    assert_eq!(r.body["api_tokens"][0]["header"], format!("Authorization: Account {t1}"));
    let own = |tok: &str, m: Method| {
        s.req(m, &format!("/yardstik/accounts/{id}")).header("Authorization", format!("Account {tok}"))
    };
    assert_eq!(send(own(&t1, Method::GET)).await.status, 200);
    // Same account_name → 200, same account, a new token; the old one stops working.
    let r = post(s.ys(Method::POST, "/sub_accounts"), with(body("Acme"), "first_name", json!("Ignored"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["first_name"], "Ada");
    let t2 = r.body["api_tokens"][0]["api_token"].as_str().unwrap().to_string();
    assert_ne!(t1, t2);
    assert_eq!(post(own(&t1, Method::PATCH), json!({"url": "https://acme.com"})).await.status, 401);
    assert_eq!(s.state().await["yardstik"]["subAccounts"][0]["api_token"], t2.as_str());
    assert_eq!(s.state().await["yardstik"]["subAccounts"].as_array().unwrap().len(), 1);
    // PATCH with the platform key or another sub-account's token is refused.
    assert_eq!(post(s.ys(Method::PATCH, &format!("/accounts/{id}")), json!({"url": "x"})).await.status, 403);
    let other = post(s.ys(Method::POST, "/sub_accounts"), body("Other")).await.body["api_tokens"][0]["api_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post(own(&other, Method::PATCH), json!({"url": "x"})).await.status, 403);
    // With its own current token it works, and the platform sees the change.
    let r = post(
        own(&t2, Method::PATCH),
        json!({"url": "https://acme.com", "address": {"city": "Dallas"}, "support_phone": "+14155552671"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(s.ys(Method::GET, &format!("/sub_accounts/{id}"))).await;
    assert_eq!(r.body["url"], "https://acme.com");
    assert_eq!(
        (r.body["address"]["city"].as_str(), r.body["address"]["line1"].as_str()),
        (Some("Dallas"), Some("1 Main St"))
    );
    assert_eq!(post(own(&t2, Method::PATCH), json!({"support_phone": "555"})).await.status, 422);
    assert_eq!(post(own(&t2, Method::PATCH), json!({"account_name": "Other"})).await.status, 422);
    // create_api_key=false: no token issued or refreshed.
    let r = post(s.ys(Method::POST, "/sub_accounts"), with(body("Acme"), "create_api_key", json!(false))).await;
    assert_eq!((r.status, r.body["api_tokens"].clone()), (200, json!([])));
    assert_eq!(send(own(&t2, Method::GET)).await.status, 200);
    let r = post(s.ys(Method::POST, "/sub_accounts"), with(body("Tokenless"), "create_api_key", json!(false))).await;
    assert_eq!((r.status, r.body["api_tokens"].clone()), (201, json!([])));
}

#[tokio::test]
async fn list_pagination_ordering_and_filters() {
    let s = start().await;
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        assert_eq!(post(s.ys(Method::POST, "/sub_accounts"), body(name)).await.status, 201);
    }
    let mut names = Vec::new();
    for page in 1..=3 {
        let r =
            send(s.ys(Method::GET, &format!("/sub_accounts?page={page}&per_page=2&order_by=account_name&order=desc")))
                .await;
        assert_eq!(r.body["meta"], json!({"current_page": page, "per_page": 2, "total_count": 5, "total_pages": 3}));
        names
            .extend(r.body["data"].as_array().unwrap().iter().map(|d| d["account_name"].as_str().unwrap().to_string()));
        assert!(r.body["data"].as_array().unwrap().iter().all(|d| d.get("api_tokens").is_none()));
    }
    assert_eq!(names, ["echo", "delta", "charlie", "bravo", "alpha"]);
    let r = send(s.ys(Method::GET, "/sub_accounts?query[account_name_cont]=HAR")).await;
    assert_eq!(r.body["meta"]["total_count"], 1);
    assert_eq!(r.body["data"][0]["account_name"], "charlie");
    let r = send(s.ys(Method::GET, "/sub_accounts?query[created_at_gteq]=2000-01-01T00:00:00.000Z")).await;
    assert_eq!(r.body["meta"]["total_count"], 5);
    assert_eq!(send(s.ys(Method::GET, "/sub_accounts?order=sideways")).await.status, 400);
    // There is no delete.
    let id = send(s.ys(Method::GET, "/sub_accounts")).await.body["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(send(s.ys(Method::DELETE, &format!("/sub_accounts/{id}"))).await.status, 405);
    assert_eq!(send(s.ys(Method::GET, "/sub_accounts/00000000-0000-4000-8000-000000000000")).await.status, 404);
}
