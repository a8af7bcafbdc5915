//! Vobiz: auth, both error envelopes, validation, newest-first pagination, one-time tokens,
//! hard delete, and the numbers routes.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SUBS: &str = "/accounts/MA_SIMVOBIZ/sub-accounts/";

async fn create(s: &Sim, name: &str) -> Value {
    let r = post(s.vz(Method::POST, SUBS), json!({"name": name, "email": format!("{name}@x.io")})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn auth_failures_in_both_envelopes() {
    let s = start().await;
    let r = send(s.req(Method::GET, "/vobiz/api/v1/accounts/MA_SIMVOBIZ/sub-accounts/")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["error"]["code"], "INVALID_CREDENTIALS");
    assert!(r.body["error"]["message"].is_string() && r.body["error"]["details"].is_object());
    assert!(r.body["requestId"].as_str().unwrap().starts_with("req_"));
    assert!(r.body["timestamp"].is_string());
    let r = send(
        s.req(Method::GET, "/vobiz/api/v1/accounts/MA_SIMVOBIZ/sub-accounts/")
            .header("X-Auth-ID", VZ_ID)
            .header("X-Auth-Token", "wrong"),
    )
    .await;
    assert_eq!(r.status, 401);
    // Right credentials, someone else's account in the path.
    let r = send(s.vz(Method::GET, "/accounts/MA_OTHER/sub-accounts/")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (403, Some("FORBIDDEN")));
    // The Plivo-style alias answers with Plivo's {api_id, error}.
    let r = send(s.req(Method::GET, "/vobiz/api/v1/Account/MA_SIMVOBIZ/Subaccount/")).await;
    assert_eq!(r.status, 401);
    assert!(r.body["api_id"].is_string() && r.body["error"].is_string(), "{}", r.body);
    // Plivo clients authenticate with HTTP Basic auth_id:auth_token.
    let r = send(s.req(Method::GET, "/vobiz/api/v1/Account/MA_SIMVOBIZ/Subaccount/").basic_auth(VZ_ID, Some(VZ_TOKEN)))
        .await;
    assert_eq!(r.status, 200);
    let r =
        send(s.req(Method::GET, "/vobiz/api/v1/Account/MA_SIMVOBIZ/Subaccount/").basic_auth(VZ_ID, Some("nope"))).await;
    assert_eq!(r.status, 401);
    let r = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/Subaccount/SA_NOPE/")).await;
    assert_eq!(r.status, 404);
    assert!(r.body["api_id"].is_string() && r.body["error"].is_string());
}

#[tokio::test]
async fn validation_errors() {
    let s = start().await;
    for (body, status, field) in [
        (json!({}), 422, "name"),
        (json!({"name": ""}), 422, "name"),
        (json!({"name": "x".repeat(101)}), 422, "name"),
        (json!({"name": "a", "email": "not-an-email"}), 422, "email"),
        (json!({"name": "a", "phone": "12345"}), 422, "phone"),
        (json!({"name": "a", "rate_limit": 0}), 422, "rate_limit"),
        (json!({"name": "a", "permissions": "all"}), 422, "permissions"),
        (json!({"name": "a", "kyc_mode": "business"}), 422, "kyc_mode"),
        (json!({"name": "a", "business_type": "pirate"}), 422, "business_type"),
        (json!({"name": "a", "kyc_mode": "customer_use"}), 400, "email"),
    ] {
        let r = post(s.vz(Method::POST, SUBS), body.clone()).await;
        assert_eq!(r.status, status, "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    assert!(s.state().await["vobiz"]["subAccounts"].as_array().unwrap().is_empty());
    // customer_use with an email blocks KYC calls until KYC passes.
    let r = post(s.vz(Method::POST, SUBS), json!({"name": "c", "email": "c@x.io", "kyc_mode": "customer_use"})).await;
    assert_eq!(r.body["sub_account"]["kyc_calls_blocked"], true);
}

#[tokio::test]
async fn auth_token_is_shown_once() {
    let s = start().await;
    let body = create(&s, "once").await;
    let token = body["auth_credentials"]["auth_token"].as_str().unwrap().to_string();
    let sub = body["auth_credentials"]["auth_id"].as_str().unwrap().to_string();
    assert_eq!(body["sub_account"]["auth_token"], token.as_str());
    assert_eq!(body["message"], "Sub-account created successfully");
    assert_eq!(body["tokens"]["token_type"], "bearer");
    assert_eq!(body["tokens"]["expires_in"], 1800);
    assert!(token.len() >= 20);
    let r = send(s.vz(Method::GET, &format!("{SUBS}{sub}"))).await;
    assert_eq!(r.body["auth_token"], "<redacted>");
    let r = send(s.vz(Method::GET, SUBS)).await;
    assert_eq!(r.body["sub_accounts"][0]["auth_token"], "<redacted>");
    let r = post(s.vz(Method::PUT, &format!("{SUBS}{sub}")), json!({"description": "d"})).await;
    assert_eq!(r.body["auth_token"], "<redacted>");
    // The control API shows it in clear.
    assert_eq!(s.state().await["vobiz"]["subAccounts"][0]["auth_token"], token.as_str());
}

#[tokio::test]
async fn list_is_paginated_newest_first() {
    let s = start().await;
    for i in 1..=5 {
        create(&s, &format!("s{i}")).await;
    }
    let mut names = Vec::new();
    for (page, n) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
        let r = send(s.vz(Method::GET, &format!("{SUBS}?page={page}&size=2"))).await;
        assert_eq!(
            (r.body["total"].clone(), r.body["page"].clone(), r.body["size"].clone()),
            (json!(5), json!(page), json!(2))
        );
        let items = r.body["sub_accounts"].as_array().unwrap();
        assert_eq!(items.len(), n);
        names.extend(items.iter().map(|i| i["name"].as_str().unwrap().to_string()));
    }
    assert_eq!(names, ["s5", "s4", "s3", "s2", "s1"]);
    let r = send(s.vz(Method::GET, SUBS)).await;
    assert_eq!((r.body["page"].clone(), r.body["size"].clone()), (json!(1), json!(25)));
    for q in ["page=0", "size=0", "size=101", "active_only=maybe"] {
        assert_eq!(send(s.vz(Method::GET, &format!("{SUBS}?{q}"))).await.status, 422, "{q}");
    }
    // active_only hides disabled sub-accounts; the path without the trailing slash works too.
    let sub = send(s.vz(Method::GET, SUBS)).await.body["sub_accounts"][0]["auth_id"].as_str().unwrap().to_string();
    let r = post(s.vz(Method::PUT, &format!("{SUBS}{sub}")), json!({"enabled": false})).await;
    assert_eq!((r.status, r.body["enabled"].as_bool()), (200, Some(false)));
    let r = send(s.vz(Method::GET, "/accounts/MA_SIMVOBIZ/sub-accounts?active_only=true")).await;
    assert_eq!(r.body["total"], 4);
}

#[tokio::test]
async fn put_is_a_partial_update() {
    let s = start().await;
    let body = create(&s, "p").await;
    let sub = body["auth_credentials"]["auth_id"].as_str().unwrap();
    let r = post(
        s.vz(Method::PUT, &format!("{SUBS}{sub}")),
        json!({"rate_limit": 50, "permissions": {"calls": false, "cdr": true}}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "p");
    assert_eq!(r.body["email"], "p@x.io");
    assert_eq!(r.body["rate_limit"], 50);
    assert_eq!(r.body["permissions"], json!({"calls": false, "cdr": true}));
    assert!(r.body["updated_at"].as_str().unwrap() >= body["sub_account"]["updated_at"].as_str().unwrap());
    assert_eq!(post(s.vz(Method::PUT, &format!("{SUBS}{sub}")), json!({"phone": "x"})).await.status, 422);
    assert_eq!(post(s.vz(Method::PUT, &format!("{SUBS}SA_NOPE")), json!({"name": "x"})).await.status, 404);
}

#[tokio::test]
async fn delete_is_permanent() {
    let s = start().await;
    let sub = create(&s, "gone").await["auth_credentials"]["auth_id"].as_str().unwrap().to_string();
    create(&s, "stays").await;
    let r = send(s.vz(Method::DELETE, &format!("{SUBS}{sub}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"message": "Sub-account deleted successfully"}));
    assert_eq!(send(s.vz(Method::GET, &format!("{SUBS}{sub}"))).await.status, 404);
    assert_eq!(send(s.vz(Method::DELETE, &format!("{SUBS}{sub}"))).await.status, 404);
    assert_eq!(send(s.vz(Method::GET, SUBS)).await.body["total"], 1);
    let st = s.state().await;
    assert_eq!(st["vobiz"]["subAccounts"].as_array().unwrap().len(), 1);
    assert_eq!(st["vobiz"]["subAccounts"][0]["name"], "stays");
}

#[tokio::test]
async fn numbers_inventory_purchase_assign_release() {
    let s = start().await;
    let inv = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers?per_page=100")).await;
    assert_eq!(inv.status, 200);
    assert_eq!(inv.body["total"], 20);
    let r = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers?per_page=5&page=4")).await;
    assert_eq!((r.body["items"].as_array().unwrap().len(), r.body["per_page"].clone()), (5, json!(5)));
    assert_eq!(r.body["items"][4]["e164"], "+14155550120");
    let r = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers?search=0105&country=US")).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers?country=IN")).await.body["total"], 0);
    let e164 = "+14155550101";
    let enc = "%2B14155550101";
    // Buy.
    let r =
        post(s.vz(Method::POST, "/Account/MA_SIMVOBIZ/numbers/purchase-from-inventory"), json!({"e164": e164})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["number"]["e164"], e164);
    assert_eq!(r.body["number"]["status"], "active");
    let r =
        post(s.vz(Method::POST, "/Account/MA_SIMVOBIZ/numbers/purchase-from-inventory"), json!({"e164": e164})).await;
    assert_eq!(r.status, 404, "no longer in inventory");
    assert_eq!(send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers")).await.body["total"], 19);
    let owned = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/numbers")).await;
    assert_eq!(owned.body["total"], 1);
    assert_shape(
        &owned.body,
        &json!({"items": [{"e164": "+1", "status": "active", "sub_account_id": null}], "page": 1, "per_page": 25, "total": 1}),
        "owned",
    );
    // Assign to a sub-account and back.
    let sub = create(&s, "numbers").await["auth_credentials"]["auth_id"].as_str().unwrap().to_string();
    let assign = format!("/account/MA_SIMVOBIZ/numbers/{enc}/assign-subaccount");
    assert_eq!(post(s.vz(Method::POST, &assign), json!({"sub_account_id": "SA_NOPE"})).await.status, 404);
    assert_eq!(post(s.vz(Method::POST, &assign), json!({"sub_account_id": sub})).await.status, 204);
    let owned = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/numbers")).await;
    assert_eq!(owned.body["items"][0]["sub_account_id"], sub.as_str());
    assert_eq!(
        send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/numbers?include_subaccounts=false")).await.body["total"],
        0
    );
    assert_eq!(send(s.vz(Method::DELETE, &format!("{assign}?force=true"))).await.status, 403);
    assert_eq!(send(s.vz(Method::DELETE, &assign)).await.status, 204);
    assert!(s.state().await["vobiz"]["numbers"][0]["sub_account_id"].is_null());
    // Deleting a sub-account returns its numbers to the parent.
    post(s.vz(Method::POST, &assign), json!({"sub_account_id": sub})).await;
    send(s.vz(Method::DELETE, &format!("{SUBS}{sub}"))).await;
    let n = &s.state().await["vobiz"]["numbers"][0];
    assert!(n["sub_account_id"].is_null() && n["e164"] == e164);
    // Release with the 24 h cooldown, cancel, then release immediately.
    let r = send(s.vz(Method::DELETE, &format!("/Account/MA_SIMVOBIZ/numbers/{enc}"))).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("pending_release")));
    assert!(r.body["cooldown_ends_at"].is_string() && r.body["cancel_url"].is_string());
    let r = send(s.vz(Method::POST, &format!("/account/MA_SIMVOBIZ/numbers/{enc}/cancel-release"))).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("active")));
    let r = send(s.vz(Method::DELETE, &format!("/Account/MA_SIMVOBIZ/numbers/{enc}?immediate=true"))).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("released")));
    assert_eq!(send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/numbers")).await.body["total"], 0);
    assert_eq!(send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers")).await.body["total"], 20);
    assert_eq!(
        send(s.vz(Method::DELETE, &format!("/Account/MA_SIMVOBIZ/numbers/{enc}?immediate=true"))).await.status,
        404
    );
}

#[tokio::test]
async fn parents_are_isolated() {
    let s = start().await;
    let seed = json!({"vobiz": {"accounts": [{"authId": "MA_SECOND", "authToken": "second-token", "inventory": ["+442071234567"]}]}});
    assert_eq!(send(s.req(Method::POST, "/_sim/seed").json(&seed)).await.status, 200);
    let second = |m: Method, p: &str| {
        s.req(m, &format!("/vobiz/api/v1{p}")).header("X-Auth-ID", "MA_SECOND").header("X-Auth-Token", "second-token")
    };
    create(&s, "first-parent").await;
    assert_eq!(send(second(Method::GET, "/accounts/MA_SECOND/sub-accounts/")).await.body["total"], 0);
    let r = post(
        second(Method::POST, "/Account/MA_SECOND/numbers/purchase-from-inventory"),
        json!({"e164": "+442071234567"}),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["number"]["country"], "GB");
    // The first parent cannot release the second parent's number.
    let r = send(s.vz(Method::DELETE, "/Account/MA_SIMVOBIZ/numbers/%2B442071234567?immediate=true")).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn plivo_alias_delete_can_cascade_to_numbers() {
    let s = start().await;
    let sub = create(&s, "cascade").await["auth_credentials"]["auth_id"].as_str().unwrap().to_string();
    for n in ["+14155550101", "+14155550102"] {
        let r =
            post(s.vz(Method::POST, "/Account/MA_SIMVOBIZ/numbers/purchase-from-inventory"), json!({"e164": n})).await;
        assert_eq!(r.status, 201);
        let path = format!("/account/MA_SIMVOBIZ/numbers/{}/assign-subaccount", n.replace('+', "%2B"));
        assert_eq!(post(s.vz(Method::POST, &path), json!({"sub_account_id": sub})).await.status, 204);
    }
    let r = send(s.vz(Method::DELETE, &format!("/Account/MA_SIMVOBIZ/Subaccount/{sub}/?cascade=true"))).await;
    assert_eq!(r.status, 200);
    assert!(s.state().await["vobiz"]["numbers"].as_array().unwrap().is_empty());
    assert_eq!(send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/inventory/numbers")).await.body["total"], 20);
}
