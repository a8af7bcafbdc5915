//! Vobiz sub-accounts and numbers (`/vobiz/api/v1/...`).
//!
//! Parent credentials `X-Auth-ID` + `X-Auth-Token`; the path's `{auth_id}` must be the caller's.
//! Error envelopes (our choice): the docs envelope
//! `{status:"error",error:{code,message,details},timestamp,requestId}` on every documented
//! route, and the Plivo `{api_id,error}` on the seed's capitalised `/Account/{id}/Subaccount/`
//! alias. The alias serves the same objects as the lowercase routes, also accepts POST for update
//! (Plivo) and `?cascade=true` on delete. DELETE is a hard delete.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use crate::helpers::*;
use crate::routes::Routes;
use crate::seed::*;

#[derive(Default)]
pub struct Vobiz {
    pub parents: Vec<Parent>,
    /// Sub-account objects with the clear `auth_token`.
    pub subs: Vec<Value>,
    /// Numbers owned by parents (assigned to a sub-account or not).
    pub numbers: Vec<Value>,
    /// (parent auth_id, e164) buyable from inventory.
    pub inventory: Vec<(String, String)>,
    next_id: u64,
}

pub struct Parent {
    pub auth_id: String,
    pub token: String,
    pub account_id: String,
}

impl Vobiz {
    pub fn apply_seed(&mut self, s: &VobizSeed) {
        for p in &s.accounts {
            if !self.parents.iter().any(|x| x.auth_id == p.auth_id) {
                let account_id = (510_762 + self.parents.len()).to_string();
                self.parents.push(Parent { auth_id: p.auth_id.clone(), token: p.auth_token.clone(), account_id });
            }
            for n in &p.inventory {
                let owned = self.numbers.iter().any(|x| x["e164"] == n.as_str());
                if !owned && !self.inventory.iter().any(|(_, e)| e == n) {
                    self.inventory.push((p.auth_id.clone(), n.clone()));
                }
            }
        }
    }

    pub fn snapshot(&self) -> Value {
        json!({
            "subAccounts": self.subs,
            "numbers": self.numbers,
            "inventory": self.inventory.iter().map(|(p, e)| json!({"parent_auth_id": p, "e164": e})).collect::<Vec<_>>(),
        })
    }

    fn sub(&self, parent: &str, sub: &str) -> Option<usize> {
        self.subs.iter().position(|s| s["parent_auth_id"] == parent && s["auth_id"] == sub)
    }

    /// Pending releases whose 24 h cooldown has passed become released (back to inventory).
    fn sweep(&mut self) {
        let now = now_micros();
        let (gone, keep): (Vec<Value>, Vec<Value>) = std::mem::take(&mut self.numbers)
            .into_iter()
            .partition(|n| n["status"] == "pending_release" && n["_release_at"].as_i64().is_some_and(|t| t <= now));
        self.numbers = keep;
        for n in gone {
            self.inventory
                .push((n["parent_auth_id"].as_str().unwrap_or("").into(), n["e164"].as_str().unwrap_or("").into()));
        }
    }
}

pub fn routes() -> Routes<Shared<Vobiz>> {
    Routes::new()
        .route("/api/v1/accounts/{auth_id}/sub-accounts/", post(create).get(list))
        .route("/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}", get(fetch).put(update).delete(remove))
        .route("/api/v1/Account/{auth_id}/Subaccount/", post(create).get(list))
        .route(
            "/api/v1/Account/{auth_id}/Subaccount/{sub_auth_id}/",
            get(fetch).post(update).put(update).delete(remove),
        )
        .route("/api/v1/Account/{auth_id}/inventory/numbers", get(inventory))
        .route("/api/v1/Account/{auth_id}/numbers/purchase-from-inventory", post(purchase))
        .route("/api/v1/Account/{auth_id}/numbers", get(list_numbers))
        .route("/api/v1/Account/{auth_id}/numbers/{e164}", delete(release))
        .route("/api/v1/account/{auth_id}/numbers/{e164}/assign-subaccount", post(assign).delete(unassign))
        .route("/api/v1/account/{auth_id}/numbers/{e164}/cancel-release", post(cancel_release))
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "INVALID_CREDENTIALS",
        402 => "INSUFFICIENT_BALANCE",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        422 => "VALIDATION_ERROR",
        429 => "RATE_LIMIT_EXCEEDED",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        _ => "INTERNAL_ERROR",
    }
}

/// The docs envelope (also used by the Vobiz Partner API).
pub fn error_with(status: u16, code: &str, message: &str, details: Value) -> Response {
    let code = if code.is_empty() { default_code(status) } else { code };
    let body = json!({
        "status": "error",
        "error": {"code": code, "message": message, "details": details},
        "timestamp": ts_us_z(now_micros()),
        "requestId": format!("req_{}", rand_hex(16)),
    });
    json(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

pub fn error(status: u16, code: &str, message: &str) -> Response {
    error_with(status, code, message, json!({}))
}

/// Plivo's `{api_id, error}`.
pub fn plivo_error(status: u16, message: &str) -> Response {
    let body = json!({"api_id": uuid4(), "error": message});
    json(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

/// Error builder that knows which envelope the route uses.
#[derive(Clone, Copy)]
struct E(bool);

impl E {
    fn of(uri: &Uri) -> E {
        E(uri.path().contains("/Subaccount"))
    }
    fn err(self, status: u16, code: &str, msg: &str) -> Response {
        if self.0 { plivo_error(status, msg) } else { error(status, code, msg) }
    }
    fn field(self, status: u16, field: &str, msg: &str) -> Response {
        if self.0 {
            plivo_error(status, msg)
        } else {
            error_with(status, "VALIDATION_ERROR", msg, json!({"field": field}))
        }
    }
}

fn auth(st: &Vobiz, h: &HeaderMap, auth_id: &str, e: E) -> Result<(), Response> {
    // X-Auth-ID + X-Auth-Token (Vobiz), or HTTP Basic auth_id:auth_token (Plivo, for the alias).
    let basic = auth_scheme(h, &["Basic"]).and_then(base64_decode).and_then(|b| String::from_utf8(b).ok());
    let (id, token) = match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some((i, t)) => (Some(i), Some(t)),
        None => (header(h, "x-auth-id"), header(h, "x-auth-token")),
    };
    let p = st.parents.iter().find(|p| Some(p.auth_id.as_str()) == id && Some(p.token.as_str()) == token);
    match p {
        None => Err(e.err(401, "INVALID_CREDENTIALS", "Invalid or missing X-Auth-ID / X-Auth-Token")),
        Some(p) if p.auth_id != auth_id => Err(e.err(403, "FORBIDDEN", "Credentials do not belong to this account")),
        Some(_) => Ok(()),
    }
}

const BUSINESS_TYPES: [&str; 10] = [
    "individual",
    "proprietorship",
    "private_limited",
    "llp",
    "partnership",
    "public_limited",
    "trust",
    "society",
    "huf",
    "government",
];

/// Validates create (`creating`) / update bodies.
fn validate(b: &Map<String, Value>, creating: bool, e: E) -> Result<(), Response> {
    let s = |k: &str| opt_str(b, k).map_err(|m| e.field(422, k, &m));
    match s("name")? {
        None if creating => return Err(e.field(422, "name", "name is required")),
        Some(n) if n.trim().is_empty() || n.chars().count() > 100 => {
            return Err(e.field(422, "name", "name must be between 1 and 100 characters"));
        }
        _ => {}
    }
    if let Some(m) = s("email")?
        && !is_email(&m)
    {
        return Err(e.field(422, "email", "email must be a valid email address"));
    }
    if let Some(p) = s("phone")?
        && !is_e164(&p)
    {
        return Err(e.field(422, "phone", "phone must be in E.164 format, e.g. +919876543210"));
    }
    s("description")?;
    s("password")?;
    if let Some(v) = b.get("rate_limit").filter(|v| !v.is_null())
        && v.as_i64().is_none_or(|n| n <= 0)
    {
        return Err(e.field(422, "rate_limit", "rate_limit must be a positive integer"));
    }
    match b.get("permissions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) if p.values().all(Value::is_boolean) => {}
        Some(_) => {
            return Err(e.field(
                422,
                "permissions",
                "permissions must be an object of booleans, e.g. {\"calls\":true,\"cdr\":true}",
            ));
        }
    }
    if !matches!(b.get("enabled"), None | Some(Value::Null) | Some(Value::Bool(_))) {
        return Err(e.field(422, "enabled", "enabled must be a boolean"));
    }
    if let Some(k) = s("kyc_mode")?
        && k != "personal_use"
        && k != "customer_use"
    {
        return Err(e.field(422, "kyc_mode", "kyc_mode must be personal_use or customer_use"));
    }
    if let Some(t) = s("business_type")?
        && !BUSINESS_TYPES.contains(&t.as_str())
    {
        return Err(e.field(422, "business_type", "business_type is not one of the allowed values"));
    }
    Ok(())
}

fn redacted(s: &Value) -> Value {
    let mut s = s.clone();
    s["auth_token"] = json!("<redacted>");
    s
}

fn paging(q: &HashMap<String, String>, size_key: &str, default: i64, e: E) -> Result<(i64, i64), Response> {
    let page = q_int(q, "page").map_err(|m| e.field(422, "page", &m))?.unwrap_or(1);
    let size = q_int(q, size_key).map_err(|m| e.field(422, size_key, &m))?.unwrap_or(default);
    if page < 1 {
        return Err(e.field(422, "page", "page must be at least 1"));
    }
    // The maximum page size is not documented for sub-accounts; 100 like the numbers routes.
    if !(1..=100).contains(&size) {
        return Err(e.field(422, size_key, &format!("{size_key} must be between 1 and 100")));
    }
    Ok((page, size))
}

fn q_bool(q: &HashMap<String, String>, k: &str, default: bool, e: E) -> Result<bool, Response> {
    match q.get(k).map(|s| s.to_ascii_lowercase()) {
        None => Ok(default),
        Some(s) if s == "true" || s == "1" => Ok(true),
        Some(s) if s == "false" || s == "0" => Ok(false),
        Some(_) => Err(e.field(422, k, &format!("{k} must be true or false"))),
    }
}

async fn create(
    State(sim): State<Shared<Vobiz>>,
    uri: Uri,
    h: HeaderMap,
    Path(auth_id): Path<String>,
    body: Bytes,
) -> R {
    let e = E::of(&uri);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let b = body_object(&body).map_err(|m| e.err(400, "BAD_REQUEST", &m))?;
    validate(&b, true, e)?;
    let kyc_mode = opt_str(&b, "kyc_mode").ok().flatten().unwrap_or_else(|| "personal_use".into());
    let email = opt_str(&b, "email").ok().flatten();
    if kyc_mode == "customer_use" && email.is_none() {
        return Err(e.field(400, "email", "email is required when kyc_mode is customer_use"));
    }
    // Duplicate names/emails are not documented as errors; they are allowed.
    let vz = &mut *st;
    vz.next_id += 1;
    let parent = vz.parents.iter().find(|p| p.auth_id == auth_id).unwrap();
    let sub_id = format!("SA_{}", rand_upper(8));
    let token = rand_alnum(40);
    let now = now_micros();
    let get = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
    let obj = json!({
        "id": (500_000 + vz.next_id).to_string(),
        "name": get("name"),
        "email": email,
        "phone": get("phone"),
        "description": get("description"),
        "permissions": b.get("permissions").filter(|v| v.is_object()).cloned().unwrap_or(json!({"calls": true, "cdr": true})),
        "rate_limit": b.get("rate_limit").and_then(Value::as_i64).unwrap_or(1000),
        "parent_account_id": parent.account_id,
        "parent_auth_id": auth_id,
        "auth_id": sub_id,
        "auth_token": token,
        "api_id": uuid4(),
        "email_verified": false,
        "enabled": b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        "is_active": true,
        "created": date(now),
        "modified": date(now),
        "created_at": ts_us_z(now),
        "updated_at": ts_us_z(now),
        "last_used": null,
        "account": format!("/v1/Account/{auth_id}/"),
        "resource_uri": format!("/v1/Account/{auth_id}/Subaccount/{sub_id}/"),
        "kyc_mode": kyc_mode,
        "kyc_calls_blocked": kyc_mode == "customer_use",
        "business_type": get("business_type"),
    });
    vz.subs.push(obj.clone());
    created(json!({
        "message": "Sub-account created successfully",
        "sub_account": obj,
        "auth_credentials": {"auth_id": sub_id, "auth_token": token},
        "tokens": {"access_token": rand_alnum(64), "refresh_token": rand_alnum(64), "token_type": "bearer", "expires_in": 1800},
    }))
}

async fn list(
    State(sim): State<Shared<Vobiz>>,
    uri: Uri,
    h: HeaderMap,
    Path(auth_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let e = E::of(&uri);
    let st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let (page, size) = paging(&q, "size", 25, e)?;
    let active_only = q_bool(&q, "active_only", false, e)?;
    // Newest first; `active_only` keeps sub-accounts that are both enabled and active.
    let all: Vec<Value> = st
        .subs
        .iter()
        .rev()
        .filter(|s| s["parent_auth_id"] == auth_id.as_str())
        .filter(|s| !active_only || (s["enabled"] == true && s["is_active"] == true))
        .map(redacted)
        .collect();
    let items = slice(&all, ((page - 1) * size) as usize, size as usize);
    ok(json!({"sub_accounts": items, "total": all.len(), "page": page, "size": size}))
}

async fn fetch(
    State(sim): State<Shared<Vobiz>>,
    uri: Uri,
    h: HeaderMap,
    Path((auth_id, sub)): Path<(String, String)>,
) -> R {
    let e = E::of(&uri);
    let st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let i = st.sub(&auth_id, &sub).ok_or_else(|| e.err(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"))?;
    ok(redacted(&st.subs[i]))
}

async fn update(
    State(sim): State<Shared<Vobiz>>,
    uri: Uri,
    h: HeaderMap,
    Path((auth_id, sub)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let e = E::of(&uri);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let i = st.sub(&auth_id, &sub).ok_or_else(|| e.err(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"))?;
    let b = body_object(&body).map_err(|m| e.err(400, "BAD_REQUEST", &m))?;
    validate(&b, false, e)?;
    let obj = &mut st.subs[i];
    let kyc = b.get("kyc_mode").and_then(Value::as_str);
    let email_after = b.get("email").filter(|v| v.is_string()).or(obj.get("email").filter(|v| v.is_string()));
    if kyc == Some("customer_use") && email_after.is_none() {
        return Err(e.field(400, "email", "email is required when kyc_mode is customer_use"));
    }
    // Partial update: fields not sent stay unchanged.
    for k in ["name", "email", "phone", "description", "rate_limit", "permissions", "enabled", "business_type"] {
        if let Some(v) = b.get(k).filter(|v| !v.is_null()) {
            obj[k] = v.clone();
        }
    }
    if let Some(k) = kyc {
        if obj["kyc_mode"] != k {
            obj["kyc_calls_blocked"] = json!(k == "customer_use");
        }
        obj["kyc_mode"] = json!(k);
    }
    let now = now_micros();
    obj["updated_at"] = json!(ts_us_z(now));
    obj["modified"] = json!(date(now));
    ok(redacted(obj))
}

async fn remove(
    State(sim): State<Shared<Vobiz>>,
    uri: Uri,
    h: HeaderMap,
    Path((auth_id, sub)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let e = E::of(&uri);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let i = st.sub(&auth_id, &sub).ok_or_else(|| e.err(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"))?;
    let cascade = e.0 && q_bool(&q, "cascade", false, e)?;
    st.subs.remove(i);
    // What happens to its numbers is not documented: like Plivo, they go back to the parent,
    // or with `?cascade=true` (alias only) they are released.
    let vz = &mut *st;
    let mut released = Vec::new();
    vz.numbers.retain_mut(|n| {
        if n["sub_account_id"] != sub.as_str() {
            return true;
        }
        if cascade {
            released.push((auth_id.clone(), n["e164"].as_str().unwrap_or("").to_string()));
            return false;
        }
        n["sub_account_id"] = Value::Null;
        true
    });
    vz.inventory.extend(released);
    ok(json!({"message": "Sub-account deleted successfully"}))
}

// ----- numbers -----------------------------------------------------------------------------

fn country_of(e164: &str) -> &'static str {
    const CC: [(&str, &str); 8] = [
        ("+1", "US"),
        ("+91", "IN"),
        ("+44", "GB"),
        ("+61", "AU"),
        ("+49", "DE"),
        ("+33", "FR"),
        ("+65", "SG"),
        ("+971", "AE"),
    ];
    CC.iter().rev().find(|(p, _)| e164.starts_with(p)).map(|(_, c)| *c).unwrap_or("US")
}

fn inventory_item(e164: &str) -> Value {
    json!({
        "e164": e164,
        "country": country_of(e164),
        "region": null,
        "capabilities": {"voice": true, "sms": true, "mms": false, "fax": false},
        "setup_fee": 0.0,
        "monthly_fee": 1.0,
        "currency": "USD",
    })
}

async fn inventory(
    State(sim): State<Shared<Vobiz>>,
    h: HeaderMap,
    Path(auth_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let e = E(false);
    let st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let (page, per_page) = paging(&q, "per_page", 25, e)?;
    let country = q.get("country").map(|c| c.to_uppercase());
    let search = q.get("search").cloned().unwrap_or_default();
    let exclude: Vec<&str> = q.get("exclude").map(|x| x.split(',').map(str::trim).collect()).unwrap_or_default();
    let all: Vec<Value> = st
        .inventory
        .iter()
        .filter(|(p, n)| p == &auth_id && n.contains(search.as_str()) && !exclude.contains(&n.as_str()))
        .filter(|(_, n)| country.as_ref().is_none_or(|c| country_of(n) == c))
        .map(|(_, n)| inventory_item(n))
        .collect();
    let items = slice(&all, ((page - 1) * per_page) as usize, per_page as usize);
    ok(json!({"items": items, "page": page, "per_page": per_page, "total": all.len()}))
}

async fn purchase(State(sim): State<Shared<Vobiz>>, h: HeaderMap, Path(auth_id): Path<String>, body: Bytes) -> R {
    let e = E(false);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    let b = body_object(&body).map_err(|m| e.err(400, "BAD_REQUEST", &m))?;
    let e164 = opt_str(&b, "e164")
        .map_err(|m| e.field(422, "e164", &m))?
        .ok_or_else(|| e.field(422, "e164", "e164 is required"))?;
    let currency = opt_str(&b, "currency").map_err(|m| e.field(422, "currency", &m))?.unwrap_or_else(|| "USD".into());
    let vz = &mut *st;
    let i = vz
        .inventory
        .iter()
        .position(|(p, n)| p == &auth_id && n == &e164)
        .ok_or_else(|| e.err(404, "NUMBER_NOT_FOUND", "Number is not available in inventory"))?;
    vz.inventory.remove(i);
    let now = now_micros();
    let parent = vz.parents.iter().find(|p| p.auth_id == auth_id).unwrap();
    let mut n = inventory_item(&e164);
    let extra = json!({
        "id": uuid4(),
        "account_id": parent.account_id,
        "parent_auth_id": auth_id,
        "sub_account_id": null,
        "status": "active",
        "provider": "vobiz",
        "currency": currency,
        "application_id": null,
        "voice_enabled": true,
        "tags": [],
        "purchased_at": ts_us_z(now),
        "is_blocked": false,
        "created_at": ts_us_z(now),
        "updated_at": ts_us_z(now),
        "is_trial_number": false,
        "last_billing_date": date(now),
        "next_billing_date": date(now + 30 * 86_400_000_000),
        "minimum_commitment_months": 0,
        "source": "inventory",
    });
    merge_patch(&mut n, &extra);
    n["sub_account_id"] = Value::Null;
    n["application_id"] = Value::Null;
    vz.numbers.push(n.clone());
    created(json!({"message": "Number purchased successfully", "status": "success", "number": n}))
}

fn public_number(n: &Value) -> Value {
    let mut n = n.clone();
    n.as_object_mut().unwrap().remove("_release_at");
    n
}

async fn list_numbers(
    State(sim): State<Shared<Vobiz>>,
    h: HeaderMap,
    Path(auth_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let e = E(false);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    st.sweep();
    let (page, per_page) = paging(&q, "per_page", 25, e)?;
    let include_subs = q_bool(&q, "include_subaccounts", true, e)?;
    let search = q.get("search").cloned().unwrap_or_default();
    let all: Vec<Value> = st
        .numbers
        .iter()
        .filter(|n| {
            n["parent_auth_id"] == auth_id.as_str() && n["e164"].as_str().unwrap_or("").contains(search.as_str())
        })
        .filter(|n| include_subs || n["sub_account_id"].is_null())
        .map(public_number)
        .collect();
    let items = slice(&all, ((page - 1) * per_page) as usize, per_page as usize);
    ok(json!({"items": items, "page": page, "per_page": per_page, "total": all.len()}))
}

/// The parent's number, 403 if it belongs to another parent, 404 if nobody owns it.
fn owned(st: &Vobiz, auth_id: &str, e164: &str) -> Result<usize, Response> {
    match st.numbers.iter().position(|n| n["e164"] == e164) {
        Some(i) if st.numbers[i]["parent_auth_id"] == auth_id => Ok(i),
        Some(_) => Err(error(403, "FORBIDDEN", "Number is not owned by this account")),
        None => Err(error(404, "NUMBER_NOT_FOUND", "Number not found")),
    }
}

async fn release(
    State(sim): State<Shared<Vobiz>>,
    h: HeaderMap,
    Path((auth_id, e164)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let e = E(false);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    st.sweep();
    let i = owned(&st, &auth_id, &e164)?;
    let immediate = q_bool(&q, "immediate", false, e)?;
    if immediate {
        // Released numbers go back to the parent's inventory so demos never run out.
        let n = st.numbers.remove(i);
        st.inventory.push((auth_id, n["e164"].as_str().unwrap_or("").into()));
        return ok(json!({"message": "Number released successfully", "status": "released", "cooldown_ends_at": null,
                          "cancel_url": null, "release_fee": 0.0}));
    }
    let at = now_micros() + 86_400_000_000;
    let n = &mut st.numbers[i];
    n["status"] = json!("pending_release");
    n["_release_at"] = json!(at);
    let cancel = format!("/api/v1/account/{auth_id}/numbers/{}/cancel-release", e164.replace('+', "%2B"));
    ok(json!({"message": "Number scheduled for release", "status": "pending_release", "cooldown_ends_at": ts_us_z(at),
              "cancel_url": cancel, "release_fee": 0.0,
              "note": "The number is released after a 24-hour cooldown; pass ?immediate=true to release it now."}))
}

async fn cancel_release(
    State(sim): State<Shared<Vobiz>>,
    h: HeaderMap,
    Path((auth_id, e164)): Path<(String, String)>,
) -> R {
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, E(false))?;
    st.sweep();
    let i = owned(&st, &auth_id, &e164)?;
    let n = &mut st.numbers[i];
    if n["status"] != "pending_release" {
        return Err(error(400, "NOT_PENDING_RELEASE", "Number has no pending release"));
    }
    n["status"] = json!("active");
    n.as_object_mut().unwrap().remove("_release_at");
    ok(json!({"message": "Release cancelled", "status": "active"}))
}

async fn assign(
    State(sim): State<Shared<Vobiz>>,
    h: HeaderMap,
    Path((auth_id, e164)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let e = E(false);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    st.sweep();
    let b = body_object(&body).map_err(|m| e.err(400, "BAD_REQUEST", &m))?;
    let sub = opt_str(&b, "sub_account_id")
        .map_err(|m| e.field(422, "sub_account_id", &m))?
        .ok_or_else(|| e.field(422, "sub_account_id", "sub_account_id is required"))?;
    let i = owned(&st, &auth_id, &e164)?;
    if st.sub(&auth_id, &sub).is_none() {
        return Err(error(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"));
    }
    let n = &mut st.numbers[i];
    if n["status"] != "active" {
        return Err(error(409, "NUMBER_NOT_ACTIVE", "Number is pending release"));
    }
    n["sub_account_id"] = json!(sub);
    n["updated_at"] = json!(ts_us_z(now_micros()));
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unassign(
    State(sim): State<Shared<Vobiz>>,
    h: HeaderMap,
    Path((auth_id, e164)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let e = E(false);
    let mut st = sim.lock();
    auth(&st, &h, &auth_id, e)?;
    if q_bool(&q, "force", false, e)? {
        return Err(error(403, "FORBIDDEN", "force=true requires an admin account"));
    }
    // The 15-day cool-off (409) depends on call history, which the simulator does not have.
    let i = owned(&st, &auth_id, &e164)?;
    let n = &mut st.numbers[i];
    n["sub_account_id"] = Value::Null;
    n["updated_at"] = json!(ts_us_z(now_micros()));
    Ok(StatusCode::NO_CONTENT.into_response())
}
