//! RecoverBiz partner API (`/recoverbiz/v1/...`).
//!
//! Auth `X-Partner-Key` or `Authorization: Bearer`; errors `{"error":{code,message,status}}`;
//! rate limits per partner key (account creation 100/h, everything else 1000/min) with
//! `X-RateLimit-*` on every response; DELETE is a soft deactivation.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::helpers::*;
use crate::routes::Routes;
use crate::seed::*;

#[derive(Default)]
pub struct RecoverBiz {
    pub keys: Vec<String>,
    pub limits: RateLimits,
    pub accounts: Vec<Account>,
    pub members: Vec<Value>,
    /// (key, is_account_creation) → (window start, count)
    windows: HashMap<(String, bool), (i64, u32)>,
}

pub struct Account {
    pub key: String,
    /// The full account object (without `stats`, which is added on read).
    pub obj: Value,
}

impl RecoverBiz {
    pub fn apply_seed(&mut self, s: &RecoverBizSeed) {
        for k in &s.partner_keys {
            if !self.keys.contains(k) {
                self.keys.push(k.clone());
            }
        }
        if let Some(l) = &s.rate_limits {
            self.limits = l.clone();
        }
    }

    pub fn snapshot(&self) -> Value {
        json!({
            "accounts": self.accounts.iter().map(|a| with_stats(&a.obj)).collect::<Vec<_>>(),
            "members": self.members,
        })
    }

    fn find(&self, key: &str, id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.key == key && a.obj["id"] == id)
    }
}

#[derive(Clone)]
pub struct Key(pub String);

pub fn routes() -> Routes<Shared<RecoverBiz>> {
    Routes::new()
        .route("/v1/accounts", post(create).get(list))
        .route("/v1/accounts/{id}", get(fetch).patch(update).delete(deactivate))
        .route("/v1/accounts/{id}/team/invite", post(invite))
        // Not documented; our choice: list, get and remove team members.
        .route("/v1/accounts/{id}/team", get(list_members))
        .route("/v1/accounts/{id}/team/{member_id}", get(get_member).delete(remove_member))
}

pub fn error(status: u16, code: &str, message: &str) -> Response {
    let code = if !code.is_empty() {
        code
    } else {
        match status {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            422 => "validation_error",
            429 => "rate_limited",
            503 => "service_unavailable",
            _ => "internal_error",
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, json!({"error": {"code": code, "message": message, "status": status.as_u16()}}))
}

fn not_found() -> Response {
    error(404, "not_found", "Account not found")
}

/// Auth + rate limiting for every RecoverBiz route; adds `X-RateLimit-*` to every response.
pub async fn gate(State(sim): State<Shared<RecoverBiz>>, mut req: Request, next: Next) -> Response {
    let key =
        header(req.headers(), "x-partner-key").or_else(|| auth_scheme(req.headers(), &["Bearer"])).map(str::to_string);
    let creation = req.method() == Method::POST && req.uri().path().trim_end_matches('/').ends_with("/v1/accounts");
    let now = now_secs();
    let (verdict, limit, remaining, reset) = {
        let mut st = sim.lock();
        let rb = &mut *st;
        let (limit, window) =
            if creation { (rb.limits.account_create_per_hour, 3600) } else { (rb.limits.other_per_minute, 60) };
        // Fixed windows that start at a key's first call in the window (not at clock boundaries).
        match key.filter(|k| rb.keys.contains(k)) {
            None => (Err(error(401, "unauthorized", "Invalid or missing Partner API key")), limit, limit, now + window),
            Some(k) => {
                let w = rb.windows.entry((k.clone(), creation)).or_insert((now, 0));
                if now >= w.0 + window {
                    *w = (now, 0);
                }
                let start = w.0;
                if w.1 >= limit {
                    let mut r =
                        error(429, "rate_limited", "Rate limit exceeded. Retry after the time given in Retry-After.");
                    r.headers_mut().insert("retry-after", HeaderValue::from((start + window - now).max(1)));
                    (Err(r), limit, 0, start + window)
                } else {
                    w.1 += 1;
                    (Ok(k), limit, limit - w.1, start + window)
                }
            }
        }
    };
    let mut resp = match verdict {
        Ok(k) => {
            req.extensions_mut().insert(Key(k));
            next.run(req).await
        }
        Err(r) => r,
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    resp
}

fn with_stats(obj: &Value) -> Value {
    let mut o = obj.clone();
    o["stats"] = json!({"total_leads": 0, "total_conversations": 0, "active_sequences": 0});
    o
}

fn slugify(name: &str) -> String {
    let mut s = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() { "account".into() } else { s }
}

fn bad(msg: impl AsRef<str>) -> Response {
    error(422, "validation_error", msg.as_ref())
}

/// Validates the fields of a create (`creating`) or PATCH body.
fn validate(b: &Map<String, Value>, creating: bool) -> Result<(), Response> {
    match opt_str(b, "name").map_err(bad)? {
        None if creating => return Err(bad("name is required")),
        None if b.contains_key("name") => return Err(bad("name must not be null")),
        Some(n) if n.trim().is_empty() || n.chars().count() > 100 => {
            return Err(bad("name must be between 1 and 100 characters"));
        }
        _ => {}
    }
    if let Some(c) = opt_str(b, "company_name").map_err(bad)?
        && c.chars().count() > 200
    {
        return Err(bad("company_name must be at most 200 characters"));
    }
    for f in ["phone_number", "forwarding_number"] {
        if let Some(p) = opt_str(b, f).map_err(|m| error(400, "invalid_phone", &m))?
            && !is_e164(&p)
        {
            return Err(error(400, "invalid_phone", &format!("{f} must be in E.164 format, e.g. +14155551234")));
        }
    }
    match b.get("branding") {
        None | Some(Value::Null) => {}
        Some(Value::Object(br)) => {
            opt_str(br, "logo_url").map_err(|m| bad(format!("branding.{m}")))?;
            if let Some(c) = opt_str(br, "accent_color").map_err(|m| bad(format!("branding.{m}")))?
                && !is_hex_color(&c)
            {
                return Err(bad("branding.accent_color must be a hex color, e.g. #2563EB"));
            }
        }
        Some(_) => return Err(bad("branding must be an object")),
    }
    if !matches!(b.get("metadata"), None | Some(Value::Null) | Some(Value::Object(_))) {
        return Err(bad("metadata must be an object"));
    }
    if let Some(s) = opt_str(b, "status").map_err(bad)?
        && s != "active"
        && s != "deactivated"
    {
        return Err(bad("status must be active or deactivated"));
    }
    Ok(())
}

async fn create(State(sim): State<Shared<RecoverBiz>>, Extension(Key(key)): Extension<Key>, body: Bytes) -> R {
    let b = body_object(&body).map_err(bad)?;
    validate(&b, true)?;
    let mut st = sim.lock();
    let rb = &mut *st;
    let name = b["name"].as_str().unwrap_or_default().to_string();
    let base = slugify(&name);
    let mut slug = base.clone();
    // Not documented: slug collisions within a partner get a numeric suffix.
    let mut n = 1;
    while rb.accounts.iter().any(|a| a.key == key && a.obj["slug"] == slug) {
        n += 1;
        slug = format!("{base}-{n}");
    }
    let phone = match opt_str(&b, "phone_number").ok().flatten() {
        Some(p) => p,
        None => loop {
            // Auto-provisioned number (how they are chosen is not documented): a free +1415555xxxx.
            let p = format!("+1415555{:04}", fastrand::u32(0..10_000));
            if !rb.accounts.iter().any(|a| a.obj["phone_number"] == p) {
                break p;
            }
        },
    };
    let branding = b.get("branding").and_then(Value::as_object);
    let obj = json!({
        "id": format!("acc_{}", rand_hex(8)),
        "name": name,
        "company_name": opt_str(&b, "company_name").ok().flatten().unwrap_or_else(|| name.clone()),
        "slug": slug,
        "status": "active",
        "phone_number": phone,
        "forwarding_number": b.get("forwarding_number").cloned().unwrap_or(Value::Null),
        "branding": {
            "logo_url": branding.and_then(|m| m.get("logo_url")).cloned().unwrap_or(Value::Null),
            "accent_color": branding.and_then(|m| m.get("accent_color")).cloned().unwrap_or(Value::Null),
        },
        "metadata": b.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({})),
        "created_at": ts_z(now_micros()),
    });
    rb.accounts.push(Account { key, obj: obj.clone() });
    created(obj)
}

async fn list(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let limit = q_int(&q, "limit").map_err(bad)?.unwrap_or(50);
    let offset = q_int(&q, "offset").map_err(bad)?.unwrap_or(0);
    if !(1..=250).contains(&limit) {
        return Err(bad("limit must be between 1 and 250"));
    }
    if offset < 0 {
        return Err(bad("offset must be at least 0"));
    }
    let status = q.get("status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && s != "active"
        && s != "deactivated"
    {
        return Err(bad("status must be active or deactivated"));
    }
    // The search parameter's name is not visible in the docs; `search` (substring of the name,
    // case-insensitive) is our choice. Order: creation order (not documented).
    let search = q.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty());
    let st = sim.lock();
    let all: Vec<Value> = st
        .accounts
        .iter()
        .filter(|a| a.key == key)
        .filter(|a| status.is_none_or(|s| a.obj["status"] == s.as_str()))
        .filter(|a| search.as_ref().is_none_or(|s| a.obj["name"].as_str().unwrap_or("").to_lowercase().contains(s)))
        .map(|a| {
            let o = &a.obj;
            json!({"id": o["id"], "name": o["name"], "status": o["status"], "phone_number": o["phone_number"],
                   "stats": with_stats(o)["stats"], "created_at": o["created_at"]})
        })
        .collect();
    ok(
        json!({"accounts": slice(&all, offset as usize, limit as usize), "total": all.len(), "limit": limit, "offset": offset}),
    )
}

async fn fetch(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path(id): Path<String>,
) -> R {
    let st = sim.lock();
    let i = st.find(&key, &id).ok_or_else(not_found)?;
    ok(with_stats(&st.accounts[i].obj))
}

async fn update(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path(id): Path<String>,
    body: Bytes,
) -> R {
    let b = body_object(&body).map_err(bad)?;
    validate(&b, false)?;
    let mut st = sim.lock();
    let i = st.find(&key, &id).ok_or_else(not_found)?;
    let obj = &mut st.accounts[i].obj;
    let reactivating = b.get("status").and_then(Value::as_str) == Some("active");
    // Not documented which calls raise account_deactivated: we raise it for PATCHes of a
    // deactivated account unless they reactivate it.
    if obj["status"] == "deactivated" && !reactivating {
        if b.get("status").and_then(Value::as_str) == Some("deactivated") && b.len() == 1 {
            return ok(with_stats(obj));
        }
        return Err(error(403, "account_deactivated", "Account has been deactivated"));
    }
    for f in ["name", "company_name", "phone_number"] {
        if let Some(Value::String(s)) = b.get(f) {
            obj[f] = json!(s);
        }
    }
    if let Some(v) = b.get("forwarding_number") {
        obj["forwarding_number"] = v.clone();
    }
    // branding and metadata are deep-merged (RFC 7386: null removes a key).
    for f in ["branding", "metadata"] {
        if let Some(v @ Value::Object(_)) = b.get(f) {
            merge_patch(&mut obj[f], v);
        }
    }
    match b.get("status").and_then(Value::as_str) {
        Some("active") => {
            obj["status"] = json!("active");
            obj.as_object_mut().unwrap().remove("deactivated_at");
        }
        Some("deactivated") if obj["status"] == "active" => {
            obj["status"] = json!("deactivated");
            obj["deactivated_at"] = json!(ts_z(now_micros()));
        }
        _ => {}
    }
    ok(with_stats(obj))
}

async fn deactivate(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path(id): Path<String>,
) -> R {
    let mut st = sim.lock();
    let i = st.find(&key, &id).ok_or_else(not_found)?;
    let obj = &mut st.accounts[i].obj;
    // Repeating DELETE keeps the first deactivated_at (not documented).
    if obj["status"] != "deactivated" {
        obj["status"] = json!("deactivated");
        obj["deactivated_at"] = json!(ts_z(now_micros()));
    }
    ok(json!({"id": obj["id"], "status": "deactivated", "deactivated_at": obj["deactivated_at"]}))
}

async fn invite(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path(id): Path<String>,
    body: Bytes,
) -> R {
    let b = body_object(&body).map_err(bad)?;
    let mut st = sim.lock();
    let i = st.find(&key, &id).ok_or_else(not_found)?;
    if st.accounts[i].obj["status"] == "deactivated" {
        return Err(error(403, "account_deactivated", "Account has been deactivated"));
    }
    // Member validation and shape are not documented; our choice: email required,
    // role owner|admin|member (default member), phone numbers E.164.
    let email = opt_str(&b, "email").map_err(bad)?.ok_or_else(|| bad("email is required"))?;
    if !is_email(&email) {
        return Err(bad("email must be a valid email address"));
    }
    let name = opt_str(&b, "name").map_err(bad)?;
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(bad("name must be at most 100 characters"));
    }
    let role = opt_str(&b, "role").map_err(bad)?.unwrap_or_else(|| "member".into());
    if !["owner", "admin", "member"].contains(&role.as_str()) {
        return Err(bad("role must be one of owner, admin, member"));
    }
    for f in ["phone_number", "forwarding_number"] {
        if let Some(p) = opt_str(&b, f).map_err(bad)?
            && !is_e164(&p)
        {
            return Err(error(400, "invalid_phone", &format!("{f} must be in E.164 format, e.g. +14155551234")));
        }
    }
    let lower = email.to_lowercase();
    if st.members.iter().any(|m| m["account_id"] == id && m["email"].as_str().unwrap_or("").to_lowercase() == lower) {
        return Err(error(409, "duplicate_member", "A team member with this email already exists in this account"));
    }
    let m = json!({
        "id": format!("mem_{}", rand_hex(8)),
        "account_id": id,
        "email": email,
        "name": name,
        "role": role,
        "phone_number": b.get("phone_number").cloned().unwrap_or(Value::Null),
        "forwarding_number": b.get("forwarding_number").cloned().unwrap_or(Value::Null),
        "status": "invited",
        "created_at": ts_z(now_micros()),
    });
    st.members.push(m.clone());
    created(m)
}

async fn list_members(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let limit = q_int(&q, "limit").map_err(bad)?.unwrap_or(50);
    let offset = q_int(&q, "offset").map_err(bad)?.unwrap_or(0);
    if !(1..=250).contains(&limit) || offset < 0 {
        return Err(bad("limit must be between 1 and 250 and offset at least 0"));
    }
    let st = sim.lock();
    st.find(&key, &id).ok_or_else(not_found)?;
    let all: Vec<Value> = st.members.iter().filter(|m| m["account_id"] == id).cloned().collect();
    ok(
        json!({"members": slice(&all, offset as usize, limit as usize), "total": all.len(), "limit": limit, "offset": offset}),
    )
}

async fn get_member(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path((id, mid)): Path<(String, String)>,
) -> R {
    let st = sim.lock();
    st.find(&key, &id).ok_or_else(not_found)?;
    let m = st.members.iter().find(|m| m["account_id"] == id && m["id"] == mid);
    ok(m.cloned().ok_or_else(|| error(404, "not_found", "Team member not found"))?)
}

async fn remove_member(
    State(sim): State<Shared<RecoverBiz>>,
    Extension(Key(key)): Extension<Key>,
    Path((id, mid)): Path<(String, String)>,
) -> R {
    let mut st = sim.lock();
    st.find(&key, &id).ok_or_else(not_found)?;
    let i = st
        .members
        .iter()
        .position(|m| m["account_id"] == id && m["id"] == mid)
        .ok_or_else(|| error(404, "not_found", "Team member not found"))?;
    st.members.remove(i);
    ok(json!({"id": mid, "account_id": id, "status": "removed"}))
}
