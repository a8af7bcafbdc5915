//! Vobiz Partner: auth, profile, validation, max_accounts, pagination, balances and transfers,
//! credentials, and the absence of update/delete.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn customer(i: usize) -> Value {
    json!({"name": format!("Customer {i}"), "email": format!("c{i}@example.com"), "password": "S3cure!pass",
           "phone": "+14155550000", "country": "US"})
}

async fn create(s: &Sim, i: usize) -> Value {
    let r = post(s.vp(Method::POST, "/accounts"), customer(i)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn auth_failures_and_profile() {
    let s = start().await;
    let r = send(s.req(Method::GET, "/vobiz-partner/api/v1/partner/me")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        (r.body["status"].as_str(), r.body["error"]["code"].as_str()),
        (Some("error"), Some("INVALID_CREDENTIALS"))
    );
    let r = send(
        s.req(Method::GET, "/vobiz-partner/api/v1/partner/me").header("X-Auth-ID", VP_ID).header("X-Auth-Token", "no"),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(s.vp(Method::GET, "/me")).await;
    assert_eq!(r.status, 200);
    let shape = json!({"id": "u", "account_id": 1, "name": "n", "slug": "s", "company": "c", "auth_id": "PA_", "email": "e",
        "phone": "p", "billing_model": "b", "is_active": true, "is_verified": true, "max_accounts": 1, "account_count": 0,
        "can_create_accounts": true, "can_create_pricing_tiers": true, "can_view_cdrs": true, "can_transfer_balance": true,
        "default_pricing_tier_id": "u", "balance": "23906.83000", "currency": "INR", "created_at": "t", "updated_at": "t"});
    assert_shape(&r.body, &shape, "me");
    assert_eq!(r.body["balance"], "100000.00000");
    assert_eq!(r.body["currency"], "USD");
    assert_eq!(r.body["max_accounts"], 100);
    create(&s, 1).await;
    assert_eq!(send(s.vp(Method::GET, "/me")).await.body["account_count"], 1);
}

#[tokio::test]
async fn validation_and_duplicate_email() {
    let s = start().await;
    let with = |k: &str, v: Value| {
        let mut c = customer(1);
        c[k] = v;
        c
    };
    for (body, field) in [
        (with("name", Value::Null), "name"),
        (with("email", json!("nope")), "email"),
        (with("password", json!("password1")), "password"),
        (with("password", json!("p@ss1")), "password"),
        (with("password", json!("longpassword!")), "password"),
        (with("country", Value::Null), "country"),
        (with("country", json!("XX")), "country"),
        (with("phone", json!("98765")), "phone"),
        (with("gst_status", json!("maybe")), "gst_status"),
    ] {
        let r = post(s.vp(Method::POST, "/accounts"), body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert_eq!(r.body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], field);
    }
    create(&s, 1).await;
    let r = post(s.vp(Method::POST, "/accounts"), with("email", json!("C1@EXAMPLE.COM"))).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (422, Some("EMAIL_ALREADY_EXISTS")));
    // Emails are unique across the platform, not per partner.
    let seed = json!({"vobizPartner": {"partners": [{"authId": "PA_OTHER", "authToken": "t2", "maxAccounts": 5, "balance": "10.00000", "currency": "INR"}]}});
    send(s.req(Method::POST, "/_sim/seed").json(&seed)).await;
    let other = s
        .req(Method::POST, "/vobiz-partner/api/v1/partner/accounts")
        .header("X-Auth-ID", "PA_OTHER")
        .header("X-Auth-Token", "t2");
    assert_eq!(post(other, customer(1)).await.status, 422);
    assert_eq!(s.state().await["vobizPartner"]["accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn max_accounts_is_enforced() {
    let seed = json!({"vobizPartner": {"partners": [{"authId": "PA_SMALL", "authToken": "small", "maxAccounts": 2, "balance": "0", "currency": "USD"}]}});
    let s = start_with(serde_json::from_value(seed).unwrap()).await;
    let small = || {
        s.req(Method::POST, "/vobiz-partner/api/v1/partner/accounts")
            .header("X-Auth-ID", "PA_SMALL")
            .header("X-Auth-Token", "small")
    };
    assert_eq!(post(small(), customer(1)).await.status, 201);
    assert_eq!(post(small(), customer(2)).await.status, 201);
    let r = post(small(), customer(3)).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (403, Some("MAX_ACCOUNTS_REACHED")));
    // The dev partner does not exist in this seed.
    assert_eq!(send(s.vp(Method::GET, "/me")).await.status, 401);
}

#[tokio::test]
async fn pagination_and_credentials() {
    let s = start().await;
    let mut created = Vec::new();
    for i in 1..=5 {
        created.push(create(&s, i).await);
    }
    let mut names = Vec::new();
    for (page, n) in [(1, 2), (2, 2), (3, 1)] {
        let r = send(s.vp(Method::GET, &format!("/accounts?page={page}&per_page=2"))).await;
        assert_eq!(
            (r.body["total"].clone(), r.body["page"].clone(), r.body["size"].clone()),
            (json!(5), json!(page), json!(2))
        );
        let a = r.body["accounts"].as_array().unwrap();
        assert_eq!(a.len(), n);
        assert!(a.iter().all(|c| c["auth_token"] == "<redacted>" && c.get("password").is_none()));
        names.extend(a.iter().map(|c| c["name"].as_str().unwrap().to_string()));
    }
    assert_eq!(names, ["Customer 5", "Customer 4", "Customer 3", "Customer 2", "Customer 1"]);
    assert_eq!(send(s.vp(Method::GET, "/accounts?per_page=101")).await.status, 422);
    assert_eq!(send(s.vp(Method::GET, "/accounts?search=C3@")).await.body["total"], 1);
    // The create response and GET show the token in clear; the state too, without the password.
    let id = created[0]["auth_id"].as_str().unwrap();
    let r = send(s.vp(Method::GET, &format!("/accounts/{id}"))).await;
    assert_eq!(r.body["auth_token"], created[0]["auth_token"]);
    let st = s.state().await;
    let acc = st["vobizPartner"]["accounts"].as_array().unwrap().iter().find(|a| a["auth_id"] == id).unwrap().clone();
    assert_eq!(acc["auth_token"], created[0]["auth_token"]);
    assert!(!st.to_string().contains("S3cure!pass"));
    assert_eq!(send(s.vp(Method::GET, "/accounts/MA_NOPE")).await.status, 404);
    // No update or delete routes.
    assert_eq!(send(s.vp(Method::DELETE, &format!("/accounts/{id}"))).await.status, 405);
    assert_eq!(post(s.vp(Method::PATCH, &format!("/accounts/{id}")), json!({"name": "x"})).await.status, 405);
}

#[tokio::test]
async fn balance_transfers() {
    let s = start().await;
    let id = create(&s, 1).await["auth_id"].as_str().unwrap().to_string();
    let transfer = |body: Value| post(s.vp(Method::POST, &format!("/accounts/{id}/transfer-balance")), body);
    let r = transfer(json!({"amount": 250.5, "currency": "USD", "description": "opening balance"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_shape(
        &r.body,
        &json!({"transaction_id": "txn_", "from_account": "PA_", "to_account": "MA_", "amount": 1.0, "currency": "USD",
                "description": "d", "status": "completed", "partner_balance_after": 1.0, "customer_balance_after": 1.0,
                "timestamp": "t"}),
        "transfer",
    );
    assert!(r.body["transaction_id"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(r.body["amount"].as_f64(), Some(250.5));
    assert_eq!(r.body["partner_balance_after"].as_f64(), Some(99749.5));
    assert_eq!(r.body["customer_balance_after"].as_f64(), Some(250.5));
    assert_eq!((r.body["from_account"].as_str(), r.body["to_account"].as_str()), (Some(VP_ID), Some(id.as_str())));
    let r = send(s.vp(Method::GET, &format!("/accounts/{id}/balance"))).await;
    assert_eq!(r.body["cash_credits"], "250.50000");
    assert!(is_ts_us_offset(&r.body["updated_at"]));
    assert_eq!(send(s.vp(Method::GET, "/me")).await.body["balance"], "99749.50000");
    assert_eq!(send(s.vp(Method::GET, &format!("/accounts/{id}"))).await.body["cash_credits"], "250.50000");
    // Errors.
    let r = transfer(json!({"amount": 1_000_000, "currency": "USD"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("INSUFFICIENT_BALANCE")));
    assert_eq!(r.body["error"]["details"]["current_balance"].as_f64(), Some(99749.5));
    assert_eq!(r.body["error"]["details"]["requested_amount"].as_f64(), Some(1_000_000.0));
    let r = transfer(json!({"amount": 1, "currency": "INR"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("CURRENCY_MISMATCH")));
    assert_eq!(transfer(json!({"amount": 0, "currency": "USD"})).await.status, 422);
    assert_eq!(transfer(json!({"currency": "USD"})).await.status, 422);
    assert_eq!(
        post(s.vp(Method::POST, "/accounts/MA_NOPE/transfer-balance"), json!({"amount": 1, "currency": "USD"}))
            .await
            .status,
        404
    );
    // Nothing moved by the failures; the ledger has the one transfer.
    assert_eq!(send(s.vp(Method::GET, "/me")).await.body["balance"], "99749.50000");
    let r = send(s.vp(Method::GET, &format!("/accounts/{id}/transactions"))).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["transactions"][0]["type"], "credit");
    assert_eq!(s.state().await["vobizPartner"]["transactions"].as_array().unwrap().len(), 1);
    // Numbers are read-only.
    let r = send(s.vp(Method::GET, &format!("/accounts/{id}/numbers"))).await;
    assert_eq!(r.status, 200);
    assert_eq!((r.body["items"].clone(), r.body["account_auth_id"].as_str()), (json!([]), Some(id.as_str())));
    assert_eq!(post(s.vp(Method::POST, &format!("/accounts/{id}/numbers")), json!({})).await.status, 405);
}

#[tokio::test]
async fn concurrent_transfers_keep_the_books_balanced() {
    let seed = json!({"vobizPartner": {"partners": [{"authId": "PA_SIMPARTNER", "authToken": "sim-partner-token", "maxAccounts": 10, "balance": "100.00000", "currency": "USD"}]}});
    let s = std::sync::Arc::new(start_with(serde_json::from_value(seed).unwrap()).await);
    let id = create(&s, 1).await["auth_id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                post(
                    s.vp(Method::POST, &format!("/accounts/{id}/transfer-balance")),
                    json!({"amount": 7.5, "currency": "USD"}),
                )
                .await
                .status
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 13, "100 / 7.5 = 13 transfers fit");
    assert_eq!(send(s.vp(Method::GET, "/me")).await.body["balance"], "2.50000");
    assert_eq!(send(s.vp(Method::GET, &format!("/accounts/{id}/balance"))).await.body["cash_credits"], "97.50000");
}
