//! Vobiz Partner API (`/vobiz-partner/api/v1/partner/...`).
//!
//! Partner credentials `X-Auth-ID: PA_…` + `X-Auth-Token`. Errors use the Vobiz docs envelope
//! `{status:"error",error:{code,message,details},timestamp,requestId}` (the docs show two; we pick one).
//! Customers cannot be updated or deleted (no routes). Money: strings with 5 dp in profiles and
//! balances, numbers in the transfer response. Timestamps `+00:00` with µs like the docs.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::helpers::*;
use crate::routes::Routes;
use crate::seed::*;
use crate::vobiz::{error, error_with};

#[derive(Default)]
pub struct VobizPartner {
    pub partners: Vec<Partner>,
    pub customers: Vec<Customer>,
    pub transactions: Vec<Value>,
    next_id: u64,
}

pub struct Partner {
    pub seed: VobizPartnerAccountSeed,
    pub id: String,
    pub account_id: u64,
    pub balance: i64,
    pub created: i64,
    pub updated: i64,
}

pub struct Customer {
    pub partner: String,
    /// Customer object with the clear `auth_token` (the password is never stored).
    pub obj: Value,
    pub balance: i64,
}

impl Customer {
    fn view(&self) -> Value {
        let mut o = self.obj.clone();
        o["cash_credits"] = json!(money_str(self.balance));
        o
    }
}

impl VobizPartner {
    pub fn apply_seed(&mut self, s: &VobizPartnerSeed) {
        for p in &s.partners {
            if self.partners.iter().any(|x| x.seed.auth_id == p.auth_id) {
                continue;
            }
            let now = now_micros();
            self.partners.push(Partner {
                seed: p.clone(),
                id: uuid4(),
                account_id: 400_000 + self.partners.len() as u64,
                balance: parse_money(&p.balance).unwrap_or(0),
                created: now,
                updated: now,
            });
        }
    }

    pub fn snapshot(&self) -> Value {
        json!({
            "partners": self.partners.iter().map(|p| json!({"auth_id": p.seed.auth_id, "balance": money_str(p.balance),
                "currency": p.seed.currency, "max_accounts": p.seed.max_accounts})).collect::<Vec<_>>(),
            "accounts": self.customers.iter().map(Customer::view).collect::<Vec<_>>(),
            "transactions": self.transactions,
        })
    }
}

pub fn routes() -> Routes<Shared<VobizPartner>> {
    Routes::new()
        .route("/api/v1/partner/me", get(me))
        .route("/api/v1/partner/accounts", get(list).post(create))
        .route("/api/v1/partner/accounts/{customer_auth_id}", get(fetch))
        .route("/api/v1/partner/accounts/{customer_auth_id}/balance", get(balance))
        .route("/api/v1/partner/accounts/{customer_auth_id}/transfer-balance", post(transfer))
        .route("/api/v1/partner/accounts/{customer_auth_id}/transactions", get(customer_transactions))
        .route("/api/v1/partner/accounts/{customer_auth_id}/numbers", get(numbers))
        .route("/api/v1/partner/transactions", get(all_transactions))
}

fn auth(st: &VobizPartner, h: &HeaderMap) -> Result<usize, Response> {
    let id = header(h, "x-auth-id");
    let token = header(h, "x-auth-token");
    st.partners
        .iter()
        .position(|p| Some(p.seed.auth_id.as_str()) == id && Some(p.seed.auth_token.as_str()) == token)
        .ok_or_else(|| error(401, "INVALID_CREDENTIALS", "Invalid or missing X-Auth-ID / X-Auth-Token"))
}

fn field(field: &str, msg: &str) -> Response {
    error_with(422, "VALIDATION_ERROR", msg, json!({"field": field}))
}

fn customer(st: &VobizPartner, partner: &str, id: &str) -> Result<usize, Response> {
    st.customers
        .iter()
        .position(|c| c.partner == partner && c.obj["auth_id"] == id)
        .ok_or_else(|| error(404, "ACCOUNT_NOT_FOUND", "Customer account not found"))
}

fn paging(q: &HashMap<String, String>) -> Result<(i64, i64), Response> {
    let page = q_int(q, "page").map_err(|m| field("page", &m))?.unwrap_or(1);
    let per_page = q_int(q, "per_page").map_err(|m| field("per_page", &m))?.unwrap_or(20);
    if page < 1 {
        return Err(field("page", "page must be at least 1"));
    }
    if !(1..=100).contains(&per_page) {
        return Err(field("per_page", "per_page must be between 1 and 100"));
    }
    Ok((page, per_page))
}

fn pricing_tier(currency: &str) -> Value {
    json!({
        "id": "00000000-0000-4000-8000-000000000001",
        "name": "Standard",
        "currency": currency,
        "rate_per_minute": 0.45,
        "streaming_rate_per_minute": 0.2,
        "recording_rate_per_minute": 0.1,
        "whatsapp_voice_rate": 0.45,
        "transcription_rate_per_minute": 0.1,
        "pii_redaction_rate_per_minute": 0.3,
        "charge_non_connected_calls": true,
        "non_connected_call_fee": 0.02,
        "did_release_fee": 700,
        "is_active": true,
        "is_default": true,
        "partner_id": null,
    })
}

async fn me(State(sim): State<Shared<VobizPartner>>, h: HeaderMap) -> R {
    let st = sim.lock();
    let p = &st.partners[auth(&st, &h)?];
    let count = st.customers.iter().filter(|c| c.partner == p.seed.auth_id).count();
    let name = p.seed.auth_id.trim_start_matches("PA_").to_lowercase();
    ok(json!({
        "id": p.id,
        "account_id": p.account_id,
        "name": format!("Simulated partner {}", p.seed.auth_id),
        "slug": name,
        "company": "Simulated Partner",
        "auth_id": p.seed.auth_id,
        "email": format!("{name}@partner.sim.invalid"),
        "phone": "+14155550000",
        "billing_model": "prepaid",
        "is_active": true,
        "is_verified": true,
        "max_accounts": p.seed.max_accounts,
        "account_count": count,
        "can_create_accounts": true,
        "can_create_pricing_tiers": false,
        "can_view_cdrs": true,
        "can_transfer_balance": true,
        "default_pricing_tier_id": pricing_tier(&p.seed.currency)["id"],
        "balance": money_str(p.balance),
        "currency": p.seed.currency,
        "created_at": ts_us_offset(p.created),
        "updated_at": ts_us_offset(p.updated),
    }))
}

fn validate(b: &Map<String, Value>) -> Result<(), Response> {
    let s = |k: &str| opt_str(b, k).map_err(|m| field(k, &m));
    for k in ["name", "email", "password", "country"] {
        if s(k)?.is_none_or(|v| v.trim().is_empty()) {
            return Err(field(k, &format!("{k} is required")));
        }
    }
    if s("name")?.unwrap().chars().count() > 100 {
        return Err(field("name", "name must be at most 100 characters"));
    }
    if !is_email(&s("email")?.unwrap()) {
        return Err(field("email", "email must be a valid email address"));
    }
    if !is_strong_password(&s("password")?.unwrap()) {
        return Err(field(
            "password",
            "password must be at least 8 characters and contain a number and a special character",
        ));
    }
    if !is_iso2(&s("country")?.unwrap()) {
        return Err(field("country", "country must be an ISO 3166-1 alpha-2 code, e.g. IN"));
    }
    if s("phone")?.is_some_and(|p| !is_e164(&p)) {
        return Err(field("phone", "phone must be in E.164 format, e.g. +919876543210"));
    }
    if s("gst_status")?.is_some_and(|g| g != "active" && g != "inactive") {
        return Err(field("gst_status", "gst_status must be active or inactive"));
    }
    for k in ["description", "company", "address", "city", "state", "zip_code", "timezone", "gstin", "account_type"] {
        s(k)?;
    }
    Ok(())
}

async fn create(State(sim): State<Shared<VobizPartner>>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let pi = auth(&st, &h)?;
    let b = body_object(&body).map_err(|m| error(400, "BAD_REQUEST", &m))?;
    validate(&b)?;
    let email = b["email"].as_str().unwrap().to_string();
    // Emails are unique across the whole platform (every partner), case-insensitively.
    if st.customers.iter().any(|c| c.obj["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(&email))) {
        return Err(error_with(422, "EMAIL_ALREADY_EXISTS", "Email is already in use", json!({"field": "email"})));
    }
    let vp = &mut *st;
    let p = &vp.partners[pi];
    let count = vp.customers.iter().filter(|c| c.partner == p.seed.auth_id).count();
    if count >= p.seed.max_accounts as usize {
        return Err(error_with(
            403,
            "MAX_ACCOUNTS_REACHED",
            "Partner has reached its max_accounts limit",
            json!({"max_accounts": p.seed.max_accounts, "account_count": count}),
        ));
    }
    let country = b["country"].as_str().unwrap().to_string();
    // The wallet currency derives from the country; only IN → INR is documented, the rest USD.
    let currency = if country == "IN" { "INR" } else { "USD" };
    let partner_id = p.id.clone();
    let partner = p.seed.auth_id.clone();
    vp.next_id += 1;
    let auth_id = format!("MA_{}", rand_upper(8));
    let token = rand_alnum(40);
    let now = ts_us_offset(now_micros());
    let get = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
    let tier = pricing_tier(currency);
    let obj = json!({
        "name": get("name"), "email": email, "phone": get("phone"), "description": get("description"),
        "gstin": get("gstin"), "gst_status": get("gst_status"), "tds_enabled": false, "tds_percentage": 2,
        "business_type": "individual", "id": (500_000 + vp.next_id - 1).to_string(), "auth_id": auth_id, "api_id": uuid4(),
        "account_type": b.get("account_type").cloned().unwrap_or(json!("standard")), "role": "user", "postpaid": false,
        "address": get("address"), "city": get("city"), "state": get("state"), "timezone": get("timezone"),
        "country": country, "zip_code": get("zip_code"), "company": get("company"), "billing_mode": "prepaid",
        "auto_recharge": false, "cash_credits": "0.00000", "cps_limit": 1, "concurrent_calls_limit": 4,
        "base_cps_limit": null, "base_concurrent_calls_limit": null, "purchased_cps": null, "purchased_concurrent_calls": null,
        "is_active": true, "is_verified": false, "is_trial_account": false, "enabled": true, "kyc_status": "pending",
        "google_id": null, "referral_code": null, "referral_disabled": false, "custom_referrer_reward_amount": null,
        "custom_referee_reward_amount": null, "created_at": now, "updated_at": now, "last_login": null,
        "pricing_tier_id": tier["id"], "pricing_tier": tier, "partner_id": partner_id, "auto_recharge_config": null,
        "resource_uri": format!("/v1/Account/{auth_id}/"), "auth_token": token,
    });
    vp.customers.push(Customer { partner, obj, balance: 0 });
    created(json!({
        "auth_id": auth_id, "auth_token": token, "name": get("name"), "email": email, "status": "active",
        "balance": 0.0, "currency": currency, "country": country, "created_at": now,
    }))
}

async fn list(State(sim): State<Shared<VobizPartner>>, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> R {
    let st = sim.lock();
    let p = &st.partners[auth(&st, &h)?].seed.auth_id;
    let (page, per_page) = paging(&q)?;
    let search = q.get("search").map(|s| s.to_lowercase()).unwrap_or_default();
    let hit = |o: &Value, k: &str| o[k].as_str().unwrap_or("").to_lowercase().contains(&search);
    // Newest first, like the docs example.
    let all: Vec<Value> = st
        .customers
        .iter()
        .rev()
        .filter(|c| &c.partner == p && (hit(&c.obj, "name") || hit(&c.obj, "email")))
        .map(|c| {
            let mut o = c.view();
            o["auth_token"] = json!("<redacted>");
            o
        })
        .collect();
    let items = slice(&all, ((page - 1) * per_page) as usize, per_page as usize);
    ok(json!({"accounts": items, "total": all.len(), "page": page, "size": per_page}))
}

async fn fetch(State(sim): State<Shared<VobizPartner>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let p = st.partners[auth(&st, &h)?].seed.auth_id.clone();
    let i = customer(&st, &p, &id)?;
    ok(st.customers[i].view())
}

async fn balance(State(sim): State<Shared<VobizPartner>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let p = st.partners[auth(&st, &h)?].seed.auth_id.clone();
    let c = &st.customers[customer(&st, &p, &id)?];
    ok(json!({"auth_id": c.obj["auth_id"], "name": c.obj["name"], "cash_credits": money_str(c.balance),
              "currency": c.obj["pricing_tier"]["currency"], "updated_at": c.obj["updated_at"]}))
}

async fn transfer(State(sim): State<Shared<VobizPartner>>, h: HeaderMap, Path(id): Path<String>, body: Bytes) -> R {
    let mut st = sim.lock();
    let pi = auth(&st, &h)?;
    let pid = st.partners[pi].seed.auth_id.clone();
    let ci = customer(&st, &pid, &id)?;
    let b = body_object(&body).map_err(|m| error(400, "BAD_REQUEST", &m))?;
    let amount = match b.get("amount") {
        Some(Value::Number(n)) => n.as_f64().map(|f| (f * 100_000.0).round() as i64),
        Some(Value::String(s)) => parse_money(s),
        _ => None,
    }
    .ok_or_else(|| field("amount", "amount is required and must be a number"))?;
    if amount <= 0 {
        return Err(field("amount", "amount must be greater than 0"));
    }
    let currency = opt_str(&b, "currency")
        .map_err(|m| field("currency", &m))?
        .ok_or_else(|| field("currency", "currency is required"))?;
    let description = opt_str(&b, "description").map_err(|m| field("description", &m))?;
    let vp = &mut *st;
    let p = &mut vp.partners[pi];
    // Only the partner's currency is checked (no FX); the customer's wallet currency is not.
    if currency != p.seed.currency {
        return Err(error_with(
            400,
            "CURRENCY_MISMATCH",
            &format!("currency must be the partner currency {}", p.seed.currency),
            json!({"partner_currency": p.seed.currency, "requested_currency": currency}),
        ));
    }
    if amount > p.balance {
        return Err(error_with(
            400,
            "INSUFFICIENT_BALANCE",
            "Insufficient partner balance",
            json!({"current_balance": money_num(p.balance), "requested_amount": money_num(amount)}),
        ));
    }
    let now = now_micros();
    p.balance -= amount;
    p.updated = now;
    let partner_after = p.balance;
    let c = &mut vp.customers[ci];
    c.balance += amount;
    c.obj["updated_at"] = json!(ts_us_offset(now));
    let resp = json!({
        "transaction_id": format!("txn_{}", rand_hex(16)),
        "from_account": pid,
        "to_account": id,
        "amount": money_num(amount),
        "currency": currency,
        "description": description,
        "status": "completed",
        "partner_balance_after": money_num(partner_after),
        "customer_balance_after": money_num(c.balance),
        "timestamp": ts_us_offset(now),
    });
    vp.transactions.push(resp.clone());
    ok(resp)
}

/// Ledger rows (shape not documented beyond `type` credit/debit): transfers seen from `who`.
fn ledger(vp: &VobizPartner, partner: &str, who: Option<&str>, q: &HashMap<String, String>) -> R {
    let (page, per_page) = paging(q)?;
    let rows: Vec<Value> = vp
        .transactions
        .iter()
        .rev()
        .filter(|t| t["from_account"] == partner && who.is_none_or(|w| t["to_account"] == w))
        .map(|t| {
            json!({
                "id": t["transaction_id"], "transaction_id": t["transaction_id"],
                "account_auth_id": t["to_account"], "type": "credit", "transaction_type": "transfer",
                "amount": t["amount"], "currency": t["currency"], "description": t["description"],
                "balance_after": t["customer_balance_after"], "created_at": t["timestamp"],
            })
        })
        .collect();
    let total: f64 = rows.iter().filter_map(|r| r["amount"].as_f64()).sum();
    let items = slice(&rows, ((page - 1) * per_page) as usize, per_page as usize);
    ok(json!({"transactions": items, "total": rows.len(), "page": page, "per_page": per_page,
              "summary": {"total_credits": total, "total_debits": 0.0, "count": rows.len()}}))
}

async fn customer_transactions(
    State(sim): State<Shared<VobizPartner>>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let p = st.partners[auth(&st, &h)?].seed.auth_id.clone();
    customer(&st, &p, &id)?;
    ledger(&st, &p, Some(&id), &q)
}

async fn all_transactions(
    State(sim): State<Shared<VobizPartner>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let p = st.partners[auth(&st, &h)?].seed.auth_id.clone();
    ledger(&st, &p, None, &q)
}

/// Read-only; number assignment is not possible through the Partner API, so always empty.
async fn numbers(
    State(sim): State<Shared<VobizPartner>>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let p = st.partners[auth(&st, &h)?].seed.auth_id.clone();
    customer(&st, &p, &id)?;
    let (page, per_page) = paging(&q)?;
    ok(json!({"items": [], "page": page, "per_page": per_page, "total": 0, "account_auth_id": id}))
}
