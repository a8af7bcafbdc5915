//! The seed documents' curl examples (adapted to the simulator's prefix and port) get the
//! responses the seeds show, field for field.

#![recursion_limit = "256"]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn acme_create() -> Value {
    json!({
        "name": "Acme Lending",
        "company_name": "Acme Lending Corp",
        "forwarding_number": "+14155559999",
        "branding": {"logo_url": "https://acme.com/logo.png", "accent_color": "#1E40AF"},
        "metadata": {"internal_id": "lender_42", "tier": "premium"}
    })
}

#[tokio::test]
async fn recoverbiz_seed_000_examples() {
    let s = start().await;
    // Create Account → 201 with the seed's object.
    let r = post(s.rb(Method::POST, "/accounts"), acme_create()).await;
    assert_eq!(r.status, 201);
    let seed_create = json!({
        "id": "acc_8f3a1b2c", "name": "Acme Lending", "company_name": "Acme Lending Corp", "slug": "acme-lending",
        "status": "active", "phone_number": "+14155551234", "forwarding_number": "+14155559999",
        "branding": {"logo_url": "https://acme.com/logo.png", "accent_color": "#1E40AF"},
        "metadata": {"internal_id": "lender_42", "tier": "premium"}, "created_at": "2026-02-15T10:30:00Z"
    });
    assert_shape(&r.body, &seed_create, "create");
    for k in ["name", "company_name", "slug", "status", "forwarding_number", "branding", "metadata"] {
        assert_eq!(r.body[k], seed_create[k], "{k}");
    }
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("acc_") && id.len() == 12, "{id}");
    assert!(is_e164(&r.body["phone_number"]), "auto-provisioned number: {}", r.body["phone_number"]);
    assert!(is_ts_z(&r.body["created_at"]));

    // List Accounts ?limit=10&status=active
    let r = send(s.rb(Method::GET, "/accounts?limit=10&status=active")).await;
    assert_eq!(r.status, 200);
    let seed_list = json!({
        "accounts": [{"id": "acc_8f3a1b2c", "name": "Acme Lending", "status": "active", "phone_number": "+14155551234",
                      "stats": {"total_leads": 342, "total_conversations": 289, "active_sequences": 15},
                      "created_at": "2026-02-15T10:30:00Z"}],
        "total": 47, "limit": 10, "offset": 0
    });
    assert_shape(&r.body, &seed_list, "list");
    assert_eq!(
        (r.body["total"].clone(), r.body["limit"].clone(), r.body["offset"].clone()),
        (json!(1), json!(10), json!(0))
    );
    assert_eq!(r.body["accounts"][0]["id"], id.as_str());

    // Get Account: the full object including branding, metadata, phone number and current stats.
    let r = send(s.rb(Method::GET, &format!("/accounts/{id}"))).await;
    assert_eq!(r.status, 200);
    assert_shape(&r.body, &seed_create, "get");
    assert_shape(
        &r.body,
        &json!({"stats": {"total_leads": 0, "total_conversations": 0, "active_sequences": 0}}),
        "get",
    );

    // Update Account: partial branding is deep-merged.
    let r = post(
        s.rb(Method::PATCH, &format!("/accounts/{id}")),
        json!({"company_name": "Acme Financial Services", "branding": {"accent_color": "#DC2626"}}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["company_name"], "Acme Financial Services");
    assert_eq!(r.body["branding"], json!({"logo_url": "https://acme.com/logo.png", "accent_color": "#DC2626"}));
    assert_eq!(r.body["name"], "Acme Lending");

    // Deactivate Account → 200 {id, status, deactivated_at}.
    let r = send(s.rb(Method::DELETE, &format!("/accounts/{id}"))).await;
    assert_eq!(r.status, 200);
    assert_shape(
        &r.body,
        &json!({"id": "acc_8f3a1b2c", "status": "deactivated", "deactivated_at": "2026-02-15T18:00:00Z"}),
        "delete",
    );
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["status"], "deactivated");
    assert!(is_ts_z(&r.body["deactivated_at"]));

    // To reactivate, PATCH {"status": "active"}.
    let r = post(s.rb(Method::PATCH, &format!("/accounts/{id}")), json!({"status": "active"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "active");

    // Team Members invite.
    let invite = json!({"email": "sarah@acme.com", "name": "Sarah Johnson", "role": "member",
                        "phone_number": "+14155555678", "forwarding_number": "+14155559999"});
    let r = post(s.rb(Method::POST, &format!("/accounts/{id}/team/invite")), invite.clone()).await;
    assert_eq!(r.status, 201);
    for k in ["email", "name", "role", "phone_number", "forwarding_number"] {
        assert_eq!(r.body[k], invite[k], "{k}");
    }
    assert_eq!(r.body["account_id"], id.as_str());
    assert_eq!(r.body["status"], "invited");
    assert!(r.body["id"].as_str().unwrap().starts_with("mem_"));
}

#[tokio::test]
async fn vobiz_seed_001_both_url_schemes() {
    let s = start().await;
    // The seed's Plivo-style base URI and the documented lowercase one serve the same objects.
    let r =
        post(s.vz(Method::POST, "/Account/MA_SIMVOBIZ/Subaccount/"), json!({"name": "Sales", "enabled": true})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sub = r.body["auth_credentials"]["auth_id"].as_str().unwrap().to_string();
    assert!(sub.starts_with("SA_"));
    assert!(!r.body["auth_credentials"]["auth_token"].as_str().unwrap().is_empty());
    let r = send(s.vz(Method::GET, &format!("/accounts/MA_SIMVOBIZ/sub-accounts/{sub}"))).await;
    assert_eq!(r.status, 200);
    let object = json!({
        "name": "Sales", "email": null, "phone": null, "description": null, "permissions": {"calls": true, "cdr": true},
        "rate_limit": 1000, "id": "500001", "parent_account_id": "510762", "parent_auth_id": "MA_XXXXXXXX",
        "auth_id": "SA_XXXXXXXX", "auth_token": "<redacted>", "api_id": "uuid", "email_verified": false, "enabled": true,
        "created": "2026-03-25", "modified": "2026-03-25", "is_active": true, "created_at": "2025-10-22T03:57:35.997500Z",
        "updated_at": "2025-10-22T03:57:35.997500Z", "last_used": null, "account": "/v1/Account/MA_X/",
        "resource_uri": "/v1/Account/MA_X/Subaccount/SA_X/"
    });
    assert_shape(&r.body, &object, "get");
    assert_eq!(r.body["auth_token"], "<redacted>");
    assert_eq!(r.body["resource_uri"], format!("/v1/Account/MA_SIMVOBIZ/Subaccount/{sub}/"));
    assert_eq!(r.body["account"], "/v1/Account/MA_SIMVOBIZ/");
    // Update = POST on the alias, PUT on the documented route.
    let r = post(
        s.vz(Method::POST, &format!("/Account/MA_SIMVOBIZ/Subaccount/{sub}/")),
        json!({"name": "Sales EU", "enabled": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["name"].clone(), r.body["enabled"].clone()), (json!("Sales EU"), json!(false)));
    let r = send(s.vz(Method::GET, "/Account/MA_SIMVOBIZ/Subaccount/")).await;
    assert_eq!(r.body["total"], 1);
    let r = send(s.vz(Method::DELETE, &format!("/Account/MA_SIMVOBIZ/Subaccount/{sub}/"))).await;
    assert_eq!(r.status, 200);
    let r = send(s.vz(Method::GET, &format!("/accounts/MA_SIMVOBIZ/sub-accounts/{sub}"))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn agentphone_seed_002_workflow() {
    let s = start().await;
    // 1. Create a sub-account; the guide reads `.id`.
    let r = post(s.ap(Method::POST, "/v1/sub-accounts"), json!({"name": "Marketing"})).await;
    assert_eq!(r.status, 200);
    assert_shape(&r.body, &json!({"id": "sub_x", "name": "Marketing", "createdAt": "t"}), "create");
    let sub = r.body["id"].as_str().unwrap().to_string();
    // 2. Buy a number in it.
    let r = post(s.ap(Method::POST, "/v1/numbers").header("X-Sub-Account-Id", &sub), json!({"country": "US"})).await;
    assert_eq!(r.status, 200);
    assert_shape(
        &r.body,
        &json!({"id": "num_xyz789", "phoneNumber": "+1", "country": "US", "status": "active", "type": "sms", "agentId": null, "createdAt": "t"}),
        "number",
    );
    assert_eq!((r.body["country"].clone(), r.body["status"].clone()), (json!("US"), json!("active")));
    // The number lives in the sub-account, not in the master.
    let r = send(s.ap(Method::GET, "/v1/numbers").header("X-Sub-Account-Id", &sub)).await;
    assert_eq!(r.body["total"], 1);
    let r = send(s.ap(Method::GET, "/v1/numbers")).await;
    assert_eq!(r.body["total"], 0);
    // 3. Create an agent in it.
    let r = post(
        s.ap(Method::POST, "/v1/agents").header("X-Sub-Account-Id", &sub),
        json!({"name": "Marketing Bot", "voiceMode": "hosted", "systemPrompt": "You help with marketing inquiries."}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_shape(
        &r.body,
        &json!({"id": "agt_", "name": "Marketing Bot", "description": null, "voiceMode": "hosted", "systemPrompt": "s",
                "createdAt": "t", "numbers": []}),
        "agent",
    );
    assert_eq!(
        (r.body["voiceMode"].as_str(), r.body["systemPrompt"].as_str()),
        (Some("hosted"), Some("You help with marketing inquiries."))
    );
    assert_eq!(send(s.ap(Method::GET, "/v1/agents").header("X-Sub-Account-Id", &sub)).await.body["total"], 1);
    assert_eq!(send(s.ap(Method::GET, "/v1/agents")).await.body["total"], 0);
    // 4. List all sub-accounts.
    let r = send(s.ap(Method::GET, "/v1/sub-accounts")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"][0]["id"], sub.as_str());
    assert_eq!((r.body["hasMore"].clone(), r.body["total"].clone()), (json!(false), json!(1)));
}

fn customer_shape() -> Value {
    json!({
        "name": "John Doe", "email": "john@example.com", "phone": "+919876543210", "description": null, "gstin": null,
        "gst_status": null, "tds_enabled": false, "tds_percentage": 2, "business_type": "individual", "id": "500000",
        "auth_id": "MA_XXXXXXXX", "api_id": "aabbccdd-1234-5678-90ab-cdef12345678", "account_type": "standard",
        "role": "user", "postpaid": false, "address": "1 MG Road", "city": "Bengaluru", "state": "KA",
        "timezone": "Asia/Kolkata", "country": "IN", "zip_code": "560001", "company": "Acme Corp",
        "billing_mode": "prepaid", "auto_recharge": false, "cash_credits": "1300.00000", "cps_limit": 1,
        "concurrent_calls_limit": 4, "base_cps_limit": null, "base_concurrent_calls_limit": null, "purchased_cps": null,
        "purchased_concurrent_calls": null, "is_active": true, "is_verified": false, "is_trial_account": false,
        "enabled": true, "kyc_status": "pending", "google_id": null, "referral_code": null, "referral_disabled": false,
        "custom_referrer_reward_amount": null, "custom_referee_reward_amount": null,
        "created_at": "2026-05-06T07:12:40.437143+00:00", "updated_at": "2026-05-07T11:54:13.620089+00:00",
        "last_login": null, "pricing_tier_id": "11223344-1234-5678-90ab-cdef12345678",
        "pricing_tier": {"id": "11223344-1234-5678-90ab-cdef12345678", "name": "Standard", "currency": "INR",
            "rate_per_minute": 0.45, "streaming_rate_per_minute": 0.2, "recording_rate_per_minute": 0.1,
            "whatsapp_voice_rate": 0.45, "transcription_rate_per_minute": 0.1, "pii_redaction_rate_per_minute": 0.3,
            "charge_non_connected_calls": true, "non_connected_call_fee": 0.02, "did_release_fee": 700, "is_active": true,
            "is_default": false, "partner_id": null},
        "partner_id": "aabbccdd-1234-5678-90ab-cdef12345678", "auto_recharge_config": null,
        "resource_uri": "/v1/Account/MA_XXXXXXXX/", "auth_token": "<redacted>"
    })
}

#[tokio::test]
async fn vobiz_partner_seed_003_examples() {
    let s = start().await;
    let create = json!({
        "name": "John Doe", "email": "admin@example.com", "password": "S3cure!pass", "phone": "+919876543210",
        "description": "Outbound collections calling team", "company": "Acme Corp", "address": "1 MG Road",
        "city": "Bengaluru", "state": "KA", "zip_code": "560001", "country": "IN", "timezone": "Asia/Kolkata",
        "gstin": "29AAPFU0939F1ZV", "gst_status": "active", "account_type": "standard"
    });
    let r = post(s.vp(Method::POST, "/accounts"), create.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_shape(
        &r.body,
        &json!({"auth_id": "MA_XXXXXXXX", "auth_token": "<redacted>", "name": "John Doe", "email": "john@example.com",
                "status": "active", "balance": 0.00, "currency": "INR", "country": "IN", "created_at": "2026-03-25T10:00:00Z"}),
        "create",
    );
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["balance"].as_f64(), Some(0.0));
    assert_eq!(r.body["currency"], "INR", "IN → INR");
    let auth_id = r.body["auth_id"].as_str().unwrap().to_string();
    let token = r.body["auth_token"].as_str().unwrap().to_string();
    assert!(auth_id.starts_with("MA_") && token != "<redacted>" && !token.is_empty());

    // List ?page=1&per_page=20 and with &search=Acme (the company is not searched; name/email are).
    let r = send(s.vp(Method::GET, "/accounts?page=1&per_page=20")).await;
    assert_eq!(r.status, 200);
    assert_shape(&r.body, &json!({"accounts": [customer_shape()], "total": 23, "page": 1, "size": 20}), "list");
    assert_eq!(
        (r.body["total"].clone(), r.body["page"].clone(), r.body["size"].clone()),
        (json!(1), json!(1), json!(20))
    );
    assert_eq!(r.body["accounts"][0]["auth_token"], "<redacted>");
    assert_eq!(r.body["accounts"][0]["cash_credits"], "0.00000");
    assert!(is_ts_us_offset(&r.body["accounts"][0]["created_at"]));
    let r = send(s.vp(Method::GET, "/accounts?page=1&per_page=20&search=john")).await;
    assert_eq!(r.body["total"], 1);
    let r = send(s.vp(Method::GET, "/accounts?page=1&per_page=20&search=nobody")).await;
    assert_eq!(r.body["total"], 0);

    // Get: the full profile with the auth token in clear.
    let r = send(s.vp(Method::GET, &format!("/accounts/{auth_id}"))).await;
    assert_eq!(r.status, 200);
    assert_shape(&r.body, &customer_shape(), "get");
    assert_eq!(r.body["auth_token"], token.as_str());
    for k in [
        "name",
        "phone",
        "company",
        "address",
        "city",
        "state",
        "zip_code",
        "country",
        "timezone",
        "gstin",
        "gst_status",
    ] {
        assert_eq!(r.body[k], create[k], "{k}");
    }
    assert_eq!(r.body["resource_uri"], format!("/v1/Account/{auth_id}/"));

    // Balance.
    let r = send(s.vp(Method::GET, &format!("/accounts/{auth_id}/balance"))).await;
    assert_eq!(r.status, 200);
    assert_shape(
        &r.body,
        &json!({"auth_id": "MA_XXXXXXXX", "name": "John Doe", "cash_credits": "1300.00000", "currency": "INR",
                "updated_at": "2026-05-07T11:54:13.620089+00:00"}),
        "balance",
    );
    assert_eq!(r.body["cash_credits"], "0.00000");
}

#[tokio::test]
async fn yardstik_seed_004_examples() {
    let s = start().await;
    let body = json!({"email_address": "owner@acme.com", "account_name": "Acme", "first_name": "Ada", "last_name": "Lovelace",
                      "address": {"line1": "1 Main St", "city": "Austin", "state": "TX", "zip_code": "78701"},
                      "permissible_purpose_id": YS_PURPOSE});
    let r = post(s.ys(Method::POST, "/sub_accounts"), body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sample = json!({
        "id": "497f6eca-6276-4993-bfeb-53cbbbba6f08", "account_name": "string", "first_name": "string", "last_name": "string",
        "owner_email": "user@example.com", "email_address": "user@example.com", "url": null, "tech_email_address": null,
        "support_email_address": null, "support_phone": null, "compliance_email_address": null, "actions_email_address": null,
        "address": {}, "logo": null, "meta": {}, "permissible_purposes": [], "api_tokens": []
    });
    assert_shape(&r.body, &sample, "create");
    for k in [
        "url",
        "tech_email_address",
        "support_email_address",
        "support_phone",
        "compliance_email_address",
        "actions_email_address",
        "logo",
    ] {
        assert!(r.body.as_object().unwrap().contains_key(k), "{k}");
    }
    assert_eq!(r.body["owner_email"], "owner@acme.com");
    assert_eq!(r.body["api_tokens"].as_array().unwrap().len(), 1);
    assert_shape(&r.body["api_tokens"][0], &json!({"id": "u", "name": "n", "api_token": "t", "header": "h"}), "token");
    assert_eq!(r.body["permissible_purposes"][0]["id"], YS_PURPOSE);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);

    // Same account_name again → 200 with the existing account.
    let r = post(s.ys(Method::POST, "/sub_accounts"), body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], id.as_str());

    let r = send(s.ys(Method::GET, &format!("/sub_accounts/{id}"))).await;
    assert_eq!(r.status, 200);
    let get_sample = json!({
        "id": "u", "account_name": "s", "first_name": "s", "last_name": "s", "email_address": "e", "url": null,
        "tech_email_address": null, "support_email_address": null, "support_phone": null, "compliance_email_address": null,
        "actions_email_address": null,
        "configurations": {"client_app": {"disable_invite_button": false}, "sub_accounts": {"receive_webhooks": false},
                           "managed_adverse_action": false, "allow_candidate_consented": false},
        "features": {"view:reports": true, "create:sub_accounts": true},
        "company_phone_number": null, "additional_company_info": null, "owner_title": null, "legal_business_name": null,
        "state_of_incorporation": null, "ein": null, "legal_entity_type": null, "billing_contact_first_name": null,
        "billing_contact_last_name": null, "billing_email": null, "address": {"line1": "s"}, "logo": null, "meta": {},
        "permissible_purposes": [{"id": "u", "name": "n", "default": true, "required_signed_documents": [], "signed_documents": []}]
    });
    assert_shape(&r.body, &get_sample, "get");
    for k in get_sample.as_object().unwrap().keys() {
        assert!(r.body.as_object().unwrap().contains_key(k), "{k}");
    }
    assert!(r.body.get("api_tokens").is_none());

    let r = send(s.ys(Method::GET, "/sub_accounts")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["meta"], json!({"current_page": 1, "per_page": 25, "total_count": 1, "total_pages": 1}));
    assert_eq!(r.body["data"][0]["id"], id.as_str());
}
