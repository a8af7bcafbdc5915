//! Yardstik platform sub-accounts (`/yardstik/...`).
//!
//! `Authorization: Account <key>` (platform key for `/sub_accounts`, the sub-account's own token
//! for `/accounts/{id}`). POST /sub_accounts is idempotent on `account_name` (per platform key,
//! exact match): 200 with the existing account and a new token; the old token stops working.
//! Not documented, our choices: the error body `{status, error, message, errors:{field:[msg]}}`,
//! list `meta {current_page, per_page, total_count, total_pages}`, per_page default 25
//! (max 100), repeat POSTs ignore fields other than `account_name`/`create_api_key`, no delete.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::helpers::*;
use crate::routes::Routes;
use crate::seed::*;

#[derive(Default)]
pub struct Yardstik {
    pub keys: Vec<String>,
    pub purposes: Vec<String>,
    pub subs: Vec<Sub>,
    pub ignore_list_filters: bool,
}

pub struct Sub {
    pub key: String,
    /// Full account object (GET shape plus `owner_email` and `created_at`).
    pub obj: Value,
    /// Current API token entry `{id,name,api_token,header}`, if any.
    pub token: Option<Value>,
}

impl Yardstik {
    pub fn apply_seed(&mut self, s: &YardstikSeed) {
        for k in &s.api_keys {
            if !self.keys.contains(k) {
                self.keys.push(k.clone());
            }
        }
        self.ignore_list_filters |= s.ignore_list_filters;
        for p in &s.permissible_purpose_ids {
            if !self.purposes.contains(p) {
                self.purposes.push(p.clone());
            }
        }
    }

    pub fn snapshot(&self) -> Value {
        let subs: Vec<Value> = self
            .subs
            .iter()
            .map(|s| {
                let mut o = s.obj.clone();
                o["api_token"] = s.token.as_ref().map(|t| t["api_token"].clone()).unwrap_or(Value::Null);
                o
            })
            .collect();
        json!({ "subAccounts": subs })
    }
}

pub fn routes() -> Routes<Shared<Yardstik>> {
    Routes::new()
        .route("/sub_accounts", get(list).post(create))
        .route("/sub_accounts/{sub_account_id}", get(fetch))
        .route("/accounts/{account_id}", get(get_account).patch(update))
}

pub fn error_fields(status: u16, message: &str, errors: Value) -> Response {
    let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"status": status, "error": s.canonical_reason().unwrap_or("Error"), "message": message, "errors": errors});
    json(s, body)
}

pub fn error(status: u16, _code: &str, message: &str) -> Response {
    error_fields(status, message, json!({}))
}

fn invalid(field: &str, msg: &str) -> Response {
    error_fields(422, &format!("{field} {msg}"), json!({ field: [msg] }))
}

fn token_of(h: &HeaderMap) -> Option<&str> {
    auth_scheme(h, &["Account", "User"])
}

fn platform(st: &Yardstik, h: &HeaderMap) -> Result<String, Response> {
    token_of(h)
        .filter(|k| st.keys.iter().any(|x| x == k))
        .map(str::to_string)
        .ok_or_else(|| error(401, "", "Invalid or missing API key"))
}

fn ts_ms(micros: i64) -> String {
    let s = ts_us_z(micros);
    format!("{}Z", &s[..s.len() - 4])
}

const STR_FIELDS: [&str; 19] = [
    "account_name",
    "first_name",
    "last_name",
    "email_address",
    "url",
    "tech_email_address",
    "support_email_address",
    "support_phone",
    "compliance_email_address",
    "actions_email_address",
    "company_phone_number",
    "additional_company_info",
    "owner_title",
    "legal_business_name",
    "state_of_incorporation",
    "ein",
    "legal_entity_type",
    "billing_contact_first_name",
    "billing_contact_last_name",
];

const ENTITY_TYPES: [&str; 7] = [
    "b-corporation",
    "corporation",
    "c-corporation",
    "limited-liability-partnership",
    "limited-liability-corporation",
    "limited-partnership",
    "non-profit",
];

/// Field checks shared by create and PATCH.
fn validate_fields(b: &Map<String, Value>) -> Result<(), Response> {
    for k in STR_FIELDS.iter().chain(["billing_email"].iter()) {
        opt_str(b, k).map_err(|_| invalid(k, "must be a string"))?;
    }
    for k in [
        "email_address",
        "tech_email_address",
        "support_email_address",
        "compliance_email_address",
        "actions_email_address",
        "billing_email",
    ] {
        if opt_str(b, k).ok().flatten().is_some_and(|e| !is_email(&e)) {
            return Err(invalid(k, "is not a valid email address"));
        }
    }
    for k in ["company_phone_number", "support_phone"] {
        if opt_str(b, k).ok().flatten().is_some_and(|p| !is_e164(&p)) {
            return Err(invalid(k, "must be E.164 format, e.g. +14155552671"));
        }
    }
    if opt_str(b, "legal_entity_type").ok().flatten().is_some_and(|t| !ENTITY_TYPES.contains(&t.as_str())) {
        return Err(invalid("legal_entity_type", "is not a valid legal entity type"));
    }
    match b.get("address") {
        None | Some(Value::Null) => {}
        Some(Value::Object(a)) => {
            if a.get("state").and_then(Value::as_str).is_some_and(|s| s.len() != 2) {
                return Err(invalid("address.state", "must be a 2-letter state code"));
            }
            if a.get("zip_code")
                .and_then(Value::as_str)
                .is_some_and(|z| z.len() != 5 || !z.bytes().all(|c| c.is_ascii_digit()))
            {
                return Err(invalid("address.zip_code", "must be 5 digits"));
            }
        }
        Some(_) => return Err(invalid("address", "must be an object")),
    }
    Ok(())
}

fn address(a: Option<&Value>, id: Option<&Value>) -> Value {
    let a = a.and_then(Value::as_object);
    let g = |k: &str| a.and_then(|a| a.get(k)).cloned().unwrap_or(Value::Null);
    json!({"id": id.cloned().unwrap_or_else(|| json!(uuid4())), "line1": g("line1"), "line2": g("line2"), "city": g("city"),
           "state": g("state"), "zip_code": g("zip_code"), "current": true})
}

/// The permissible purposes named by the request, validated against the seeded ones.
fn purposes(st: &Yardstik, b: &Map<String, Value>) -> Result<Vec<String>, Response> {
    let mut ids: Vec<String> = Vec::new();
    if let Some(id) =
        opt_str(b, "permissible_purpose_id").map_err(|_| invalid("permissible_purpose_id", "must be a string"))?
    {
        ids.push(id);
    }
    let list = |k: &str, inner: Option<&str>| -> Result<Vec<String>, Response> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    match inner {
                        Some(f) => v.get(f),
                        None => Some(v),
                    }
                    .and_then(Value::as_str)
                    .map(str::to_string)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(k, "is invalid")),
            Some(_) => Err(invalid(k, "must be an array")),
        }
    };
    let explicit = list("permissible_purpose_ids", None)?;
    let packages = list("account_packages", Some("permissible_purpose_id"))?;
    if !explicit.is_empty() && packages.iter().any(|p| !explicit.contains(p)) {
        return Err(invalid("permissible_purpose_ids", "must include the permissible purposes of account_packages"));
    }
    for id in explicit.into_iter().chain(packages) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(invalid("permissible_purpose_id", "is required (or permissible_purpose_ids / account_packages)"));
    }
    if let Some(bad) = ids.iter().find(|id| !st.purposes.contains(id)) {
        return Err(error_fields(404, &format!("Permissible purpose {bad} not found"), json!({})));
    }
    Ok(ids)
}

fn new_token(sub_id: &str) -> Value {
    let t = format!("ys_{}", rand_alnum(40));
    let _ = sub_id;
    json!({"id": uuid4(), "name": "Default", "api_token": t, "header": format!("Authorization: Account {t}")})
}

/// The create/refresh response shape.
fn create_view(s: &Sub, tokens: Vec<Value>) -> Value {
    let o = &s.obj;
    let mut v = json!({});
    for k in [
        "id",
        "account_name",
        "first_name",
        "last_name",
        "owner_email",
        "email_address",
        "url",
        "tech_email_address",
        "support_email_address",
        "support_phone",
        "compliance_email_address",
        "actions_email_address",
        "address",
        "logo",
        "meta",
        "permissible_purposes",
    ] {
        v[k] = o[k].clone();
    }
    v["api_tokens"] = json!(tokens);
    v
}

/// The GET shape (no tokens, no owner_email).
fn get_view(s: &Sub) -> Value {
    let mut o = s.obj.clone();
    o.as_object_mut().unwrap().remove("owner_email");
    o
}

async fn create(State(sim): State<Shared<Yardstik>>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let key = platform(&st, &h)?;
    let b = body_object(&body).map_err(|m| error_fields(400, &m, json!({})))?;
    let name = opt_str(&b, "account_name").map_err(|_| invalid("account_name", "must be a string"))?;
    let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| invalid("account_name", "can't be blank"))?;
    let want_token = b.get("create_api_key").and_then(Value::as_bool).unwrap_or(true);
    if let Some(s) = st.subs.iter_mut().find(|s| s.key == key && s.obj["account_name"] == name.as_str()) {
        let tokens = if want_token {
            let t = new_token(s.obj["id"].as_str().unwrap_or(""));
            s.token = Some(t.clone());
            vec![t]
        } else {
            vec![]
        };
        return ok(create_view(s, tokens));
    }
    for k in ["email_address", "first_name", "last_name"] {
        if opt_str(&b, k).ok().flatten().is_none_or(|v| v.trim().is_empty()) {
            return Err(invalid(k, "can't be blank"));
        }
    }
    if !b.get("address").is_some_and(Value::is_object) {
        return Err(invalid("address", "can't be blank"));
    }
    validate_fields(&b)?;
    let ids = purposes(&st, &b)?;
    let id = uuid4();
    let g = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
    let mut obj = json!({
        "id": id,
        "owner_email": g("email_address"),
        "configurations": {
            "client_app": {"disable_invite_button": false},
            "sub_accounts": {"receive_webhooks": false},
            "managed_adverse_action": false,
            "allow_candidate_consented": false,
        },
        "features": {
            "view:reports": true, "create:reports": true, "view:candidates": true, "view:invitations": true,
            "create:api_tokens": true, "create:candidates": true, "create:web_tokens": true, "create:invitations": true,
            "create:sub_accounts": false, "create:account_webhooks": true,
        },
        "billing_email": g("billing_email"),
        "address": address(b.get("address"), None),
        "logo": null,
        "meta": {"entity": g("legal_entity_type")},
        "permissible_purposes": ids.iter().enumerate().map(|(i, p)| json!({
            "id": p, "name": if i == 0 { "Employment".to_string() } else { format!("Permissible purpose {}", i + 1) },
            "default": i == 0, "required_signed_documents": [], "signed_documents": [],
        })).collect::<Vec<_>>(),
        "created_at": ts_ms(now_micros()),
    });
    for k in STR_FIELDS {
        obj[k] = g(k);
    }
    let token = want_token.then(|| new_token(&id));
    let sub = Sub { key, obj, token: token.clone() };
    let resp = create_view(&sub, token.into_iter().collect());
    st.subs.push(sub);
    created(resp)
}

async fn list(State(sim): State<Shared<Yardstik>>, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> R {
    let st = sim.lock();
    let key = platform(&st, &h)?;
    let page = q_int(&q, "page").map_err(|m| error_fields(400, &m, json!({})))?.unwrap_or(1);
    let per_page = q_int(&q, "per_page").map_err(|m| error_fields(400, &m, json!({})))?.unwrap_or(25);
    if page < 1 || !(1..=100).contains(&per_page) {
        return Err(error_fields(400, "page must be ≥ 1 and per_page between 1 and 100", json!({})));
    }
    let order = q.get("order").map(String::as_str).unwrap_or("asc");
    if order != "asc" && order != "desc" {
        return Err(error_fields(400, "order must be asc or desc", json!({})));
    }
    let order_by = q.get("order_by").map(String::as_str).unwrap_or("created_at");
    if !["created_at", "account_name", "id", "email_address"].contains(&order_by) {
        return Err(error_fields(400, &format!("cannot order by {order_by}"), json!({})));
    }
    // ransack-style filters: query[<field>_<eq|cont|start|gt|gteq|lt|lteq>]=value; unknown ones are ignored.
    let filters: Vec<(String, String, String)> = q
        .iter()
        .filter(|_| !st.ignore_list_filters)
        .filter_map(|(k, v)| {
            let inner = k.strip_prefix("query[")?.strip_suffix(']')?;
            ["_gteq", "_lteq", "_cont", "_start", "_eq", "_gt", "_lt"]
                .iter()
                .find_map(|p| inner.strip_suffix(p).map(|f| (f.to_string(), p[1..].to_string(), v.clone())))
        })
        .collect();
    let pass = |o: &Value| {
        filters.iter().all(|(f, p, v)| {
            let Some(x) = o.get(f).and_then(Value::as_str) else {
                return !["account_name", "email_address", "created_at", "id"].contains(&f.as_str());
            };
            match p.as_str() {
                "eq" => x == v,
                "cont" => x.to_lowercase().contains(&v.to_lowercase()),
                "start" => x.starts_with(v.as_str()),
                "gt" => x > v.as_str(),
                "gteq" => x >= v.as_str(),
                "lt" => x < v.as_str(),
                _ => x <= v.as_str(),
            }
        })
    };
    let mut all: Vec<&Sub> = st.subs.iter().filter(|s| s.key == key && pass(&s.obj)).collect();
    all.sort_by(|a, b| a.obj[order_by].as_str().cmp(&b.obj[order_by].as_str()));
    if order == "desc" {
        all.reverse();
    }
    let total = all.len() as i64;
    let data: Vec<Value> =
        all.iter().skip(((page - 1) * per_page) as usize).take(per_page as usize).map(|s| get_view(s)).collect();
    ok(json!({
        "object": "list",
        "meta": {"current_page": page, "per_page": per_page, "total_count": total, "total_pages": (total + per_page - 1) / per_page},
        "data": data,
    }))
}

async fn fetch(State(sim): State<Shared<Yardstik>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let key = platform(&st, &h)?;
    let s = st.subs.iter().find(|s| s.key == key && s.obj["id"] == id.as_str());
    ok(get_view(s.ok_or_else(|| error(404, "", "Subaccount not found"))?))
}

/// `/accounts/{id}` is driven with the sub-account's own token; its platform may read it too.
fn own(st: &Yardstik, h: &HeaderMap, id: &str, write: bool) -> Result<usize, Response> {
    let tok = token_of(h).ok_or_else(|| error(401, "", "Invalid or missing API key"))?;
    let i = st.subs.iter().position(|s| s.obj["id"] == id);
    let owner = st.subs.iter().position(|s| s.token.as_ref().is_some_and(|t| t["api_token"] == tok));
    let platform = st.keys.iter().any(|k| k == tok);
    match (i, owner) {
        (Some(i), Some(o)) if i == o => Ok(i),
        (Some(i), None) if platform && !write && st.subs[i].key == tok => Ok(i),
        (_, Some(_)) => Err(error(403, "", "This API key cannot access that account")),
        (_, None) if platform => Err(error(403, "", "Use the sub-account's own API key for this account")),
        _ => Err(error(401, "", "Invalid or missing API key")),
    }
}

async fn get_account(State(sim): State<Shared<Yardstik>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let i = own(&st, &h, &id, false)?;
    ok(get_view(&st.subs[i]))
}

async fn update(State(sim): State<Shared<Yardstik>>, h: HeaderMap, Path(id): Path<String>, body: Bytes) -> R {
    let mut st = sim.lock();
    let i = own(&st, &h, &id, true)?;
    let b = body_object(&body).map_err(|m| error_fields(400, &m, json!({})))?;
    validate_fields(&b)?;
    if let Some(n) = opt_str(&b, "account_name").ok().flatten() {
        let key = st.subs[i].key.clone();
        if n.trim().is_empty() {
            return Err(invalid("account_name", "can't be blank"));
        }
        if st.subs.iter().enumerate().any(|(j, s)| j != i && s.key == key && s.obj["account_name"] == n.as_str()) {
            return Err(invalid("account_name", "has already been taken"));
        }
    }
    let obj = &mut st.subs[i].obj;
    for k in STR_FIELDS.iter().chain(["billing_email"].iter()) {
        if let Some(v) = b.get(*k).filter(|v| v.is_string() || v.is_null()) {
            if *k == "account_name" && v.is_null() {
                continue;
            }
            obj[*k] = v.clone();
        }
    }
    if let Some(Value::Object(_)) = b.get("address") {
        let mut merged = obj["address"].clone();
        merge_patch(&mut merged, &b["address"]);
        obj["address"] = address(Some(&merged), obj["address"].get("id"));
    }
    if b.contains_key("legal_entity_type") {
        obj["meta"]["entity"] = obj["legal_entity_type"].clone();
    }
    ok(get_view(&st.subs[i]))
}
