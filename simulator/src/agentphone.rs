//! AgentPhone sub-accounts and numbers (`/agentphone/v1/...`), PROVIDERS.md §3, seed 002.
//!
//! `Authorization: Bearer sk_live_…` (master key) plus optional `X-Sub-Account-Id`.
//! Errors: the docs envelope `{error:{message,code,type,details}}` for business errors and
//! FastAPI's `{detail:[{loc,msg,type}]}` for request-body validation (both exist).
//! Reasoned choices (PROVIDERS §6.2): sub-account `{id:"sub_…",name,createdAt}`, list
//! `{data,hasMore,total}`, 26th sub-account → 422 VALIDATION_ERROR, unknown
//! `X-Sub-Account-Id` → 404, DELETE is hard and releases the sub-account's numbers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch};
use serde_json::{Map, Value, json};

use crate::faults::Routes;
use crate::state::*;

pub const MAX_SUB_ACCOUNTS: usize = 25;
pub const MAX_NUMBERS: usize = 10;

#[derive(Default)]
pub struct Ap {
    pub keys: Vec<String>,
    pub subs: Vec<Owned>,
    pub numbers: Vec<Owned>,
}

/// An object plus who owns it: the master key and, for numbers, the sub-account (or master).
pub struct Owned {
    pub key: String,
    pub sub: Option<String>,
    pub obj: Value,
}

impl Ap {
    pub fn apply_seed(&mut self, s: &AgentPhoneSeed) {
        for k in &s.api_keys {
            if !self.keys.contains(k) {
                self.keys.push(k.clone());
            }
        }
    }

    pub fn snapshot(&self) -> Value {
        let numbers: Vec<Value> = self
            .numbers
            .iter()
            .map(|n| {
                let mut o = n.obj.clone();
                o["subAccountId"] = json!(n.sub);
                o
            })
            .collect();
        json!({"subAccounts": self.subs.iter().map(|s| &s.obj).collect::<Vec<_>>(), "numbers": numbers})
    }
}

pub fn routes() -> Routes {
    Routes::new()
        .route("/v1/sub-accounts", get(list_subs).post(create_sub))
        .route(
            "/v1/sub-accounts/{sub_account_id}",
            patch(rename_sub).delete(delete_sub),
        )
        .route("/v1/numbers", get(list_numbers).post(buy_number))
        .route(
            "/v1/numbers/{number_id}",
            get(get_number).delete(release_number),
        )
}

fn type_of(status: u16, code: &str) -> &'static str {
    match (status, code) {
        (_, "PHONE_NUMBER_NOT_FOUND") | (404, _) => "not_found",
        (401, _) => "authentication_error",
        (403, _) => "permission_error",
        (429, _) => "rate_limit_error",
        (502, _) => "carrier_error",
        (400 | 409 | 422, _) => "validation_error",
        _ => "api_error",
    }
}

pub fn error_details(status: u16, code: &str, message: &str, details: Value) -> Response {
    let code = if !code.is_empty() {
        code
    } else {
        match status {
            400 | 422 => "VALIDATION_ERROR",
            401 => "UNAUTHORIZED",
            403 => "FORBIDDEN",
            404 => "NOT_FOUND",
            429 => "RATE_LIMIT_EXCEEDED",
            502 => "CARRIER_ERROR",
            503 => "SERVICE_UNAVAILABLE",
            504 => "GATEWAY_TIMEOUT",
            _ => "INTERNAL_ERROR",
        }
    };
    let body = json!({"error": {"message": message, "code": code, "type": type_of(status, code), "details": details}});
    json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

pub fn error(status: u16, code: &str, message: &str) -> Response {
    error_details(status, code, message, json!([]))
}

/// FastAPI/pydantic request validation error (422).
fn detail(loc: &str, msg: &str, typ: &str) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"detail": [{"loc": ["body", loc], "msg": msg, "type": typ}]}),
    )
}

fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    body_object(bytes).map_err(|m| {
        json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body"], "msg": m, "type": "json_invalid"}]}),
        )
    })
}

/// The master key and the targeted sub-account (None = master).
fn auth(st: &crate::state::State, h: &HeaderMap) -> Result<(String, Option<String>), Response> {
    let key = auth_scheme(h, &["Bearer"])
        .filter(|k| st.ap.keys.iter().any(|x| x == k))
        .ok_or_else(|| error(401, "UNAUTHORIZED", "Invalid or missing API key"))?;
    let sub = header(h, "x-sub-account-id").map(str::to_string);
    if let Some(s) = &sub
        && !st
            .ap
            .subs
            .iter()
            .any(|x| x.key == key && x.obj["id"] == s.as_str())
    {
        return Err(error(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"));
    }
    Ok((key.to_string(), sub))
}

/// Sub-account management is master-only (one level of sub-accounts).
fn master_only(sub: &Option<String>) -> Result<(), Response> {
    match sub {
        Some(_) => Err(error(
            403,
            "FORBIDDEN",
            "Sub-accounts cannot manage sub-accounts",
        )),
        None => Ok(()),
    }
}

fn name_of(b: &Map<String, Value>) -> Result<String, Response> {
    match b.get("name") {
        None => Err(detail("name", "Field required", "missing")),
        Some(Value::String(s)) if s.chars().count() < 1 => Err(detail(
            "name",
            "String should have at least 1 character",
            "string_too_short",
        )),
        Some(Value::String(s)) if s.chars().count() > 100 => Err(detail(
            "name",
            "String should have at most 100 characters",
            "string_too_long",
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(detail(
            "name",
            "Input should be a valid string",
            "string_type",
        )),
    }
}

/// `limit` (default 20, max 100) and `offset` (default 0); FastAPI-style 422 on bad values.
fn paging(q: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let qerr = |k: &str, msg: &str, typ: &str| {
        json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["query", k], "msg": msg, "type": typ}]}),
        )
    };
    let limit = q_int(q, "limit")
        .map_err(|_| qerr("limit", "Input should be a valid integer", "int_parsing"))?
        .unwrap_or(20);
    let offset = q_int(q, "offset")
        .map_err(|_| qerr("offset", "Input should be a valid integer", "int_parsing"))?
        .unwrap_or(0);
    if !(1..=100).contains(&limit) {
        return Err(qerr(
            "limit",
            "Input should be between 1 and 100",
            "less_than_equal",
        ));
    }
    if offset < 0 {
        return Err(qerr(
            "offset",
            "Input should be greater than or equal to 0",
            "greater_than_equal",
        ));
    }
    Ok((limit as usize, offset as usize))
}

fn page(all: Vec<Value>, limit: usize, offset: usize) -> Value {
    let data = slice(&all, offset, limit);
    json!({"data": data, "hasMore": offset + limit < all.len(), "total": all.len()})
}

async fn list_subs(
    State(sim): State<Sim>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let (limit, offset) = paging(&q)?;
    let all = st
        .ap
        .subs
        .iter()
        .filter(|s| s.key == key)
        .map(|s| s.obj.clone())
        .collect();
    ok(page(all, limit, offset))
}

async fn create_sub(State(sim): State<Sim>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let name = name_of(&parse_body(&body)?)?;
    if st.ap.subs.iter().filter(|s| s.key == key).count() >= MAX_SUB_ACCOUNTS {
        return Err(error_details(
            422,
            "VALIDATION_ERROR",
            "Maximum of 25 sub-accounts per master account reached",
            json!([{"field": "name", "message": "sub-account limit (25) reached", "type": "value_error"}]),
        ));
    }
    let obj = json!({"id": format!("sub_{}", rand_hex(12)), "name": name, "createdAt": ts_us_z(now_micros())});
    st.ap.subs.push(Owned {
        key,
        sub: None,
        obj: obj.clone(),
    });
    ok(obj)
}

fn find_sub(st: &crate::state::State, key: &str, id: &str) -> Result<usize, Response> {
    st.ap
        .subs
        .iter()
        .position(|s| s.key == key && s.obj["id"] == id)
        .ok_or_else(|| error(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"))
}

async fn rename_sub(
    State(sim): State<Sim>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let name = name_of(&parse_body(&body)?)?;
    let i = find_sub(&st, &key, &id)?;
    // The API reference shows `{}`; we return the updated object (PROVIDERS §6.2).
    st.ap.subs[i].obj["name"] = json!(name);
    ok(st.ap.subs[i].obj.clone())
}

async fn delete_sub(State(sim): State<Sim>, h: HeaderMap, Path(id): Path<String>) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let i = find_sub(&st, &key, &id)?;
    st.ap.subs.remove(i);
    for n in st
        .ap
        .numbers
        .iter_mut()
        .filter(|n| n.key == key && n.sub.as_deref() == Some(id.as_str()))
    {
        n.obj["status"] = json!("released");
    }
    ok(json!({"success": true, "id": id}))
}

fn in_scope(n: &Owned, key: &str, sub: &Option<String>) -> bool {
    n.key == key && &n.sub == sub
}

async fn list_numbers(
    State(sim): State<Sim>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let (limit, offset) = paging(&q)?;
    let all = st
        .ap
        .numbers
        .iter()
        .filter(|n| in_scope(n, &key, &sub) && n.obj["status"] == "active")
        .map(|n| n.obj.clone())
        .collect();
    ok(page(all, limit, offset))
}

const COUNTRIES: [(&str, &str); 4] = [("US", "+1"), ("CA", "+1"), ("GB", "+44"), ("AU", "+61")];

async fn buy_number(State(sim): State<Sim>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let b = parse_body(&body)?;
    let country = match b.get("country") {
        None | Some(Value::Null) => "US".to_string(),
        Some(Value::String(c)) if c.len() == 2 && c.bytes().all(|x| x.is_ascii_alphabetic()) => {
            c.to_uppercase()
        }
        Some(Value::String(_)) => {
            return Err(detail(
                "country",
                "String should match pattern '^[A-Za-z]{2}$'",
                "string_pattern_mismatch",
            ));
        }
        Some(_) => {
            return Err(detail(
                "country",
                "Input should be a valid string",
                "string_type",
            ));
        }
    };
    let area = match b.get("areaCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(a))
            if a.len() == 3
                && a.bytes().all(|x| x.is_ascii_digit())
                && !a.starts_with(['0', '1']) =>
        {
            Some(a.clone())
        }
        Some(Value::String(_)) => {
            return Err(detail(
                "areaCode",
                "areaCode must be a 3-digit area code",
                "value_error",
            ));
        }
        Some(_) => {
            return Err(detail(
                "areaCode",
                "Input should be a valid string",
                "string_type",
            ));
        }
    };
    let agent = match b.get("agentId") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(a)) => json!(a),
        Some(_) => {
            return Err(detail(
                "agentId",
                "Input should be a valid string",
                "string_type",
            ));
        }
    };
    let Some((_, cc)) = COUNTRIES.iter().find(|(c, _)| *c == country) else {
        return Err(error_details(
            400,
            "VALIDATION_ERROR",
            &format!("Phone numbers are not available in {country}"),
            json!([{"field": "country", "message": "supported: US, CA, GB, AU", "type": "value_error"}]),
        ));
    };
    // The 10-number self-serve limit counts active numbers per account (master or sub-account).
    let active = st
        .ap
        .numbers
        .iter()
        .filter(|n| in_scope(n, &key, &sub) && n.obj["status"] == "active")
        .count();
    if active >= MAX_NUMBERS {
        return Err(error_details(
            400,
            "VALIDATION_ERROR_NUMBER_LIMIT",
            "Phone number limit reached (10). Contact AgentPhone to increase the limit.",
            json!([]),
        ));
    }
    let phone = loop {
        // areaCode is honoured for US/CA (best effort in the real API); others get a random number.
        let p = match (&area, *cc) {
            (Some(a), "+1") => format!("+1{a}{:07}", fastrand::u32(2_000_000..10_000_000)),
            (None, "+1") => format!("+1415{:07}", fastrand::u32(2_000_000..10_000_000)),
            (_, cc) => format!("{cc}{:09}", fastrand::u32(100_000_000..1_000_000_000)),
        };
        if !st.ap.numbers.iter().any(|n| n.obj["phoneNumber"] == p) {
            break p;
        }
    };
    let obj = json!({
        "id": format!("num_{}", rand_hex(12)),
        "phoneNumber": phone,
        "country": country,
        "status": "active",
        "type": "sms",
        "agentId": agent,
        "createdAt": ts_us_z(now_micros()),
    });
    st.ap.numbers.push(Owned {
        key,
        sub,
        obj: obj.clone(),
    });
    ok(obj)
}

fn find_number(
    st: &crate::state::State,
    key: &str,
    sub: &Option<String>,
    id: &str,
) -> Result<usize, Response> {
    st.ap
        .numbers
        .iter()
        .position(|n| in_scope(n, key, sub) && n.obj["id"] == id)
        .ok_or_else(|| error(404, "PHONE_NUMBER_NOT_FOUND", "Phone number not found"))
}

async fn get_number(State(sim): State<Sim>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_number(&st, &key, &sub, &id)?;
    ok(st.ap.numbers[i].obj.clone())
}

async fn release_number(State(sim): State<Sim>, h: HeaderMap, Path(id): Path<String>) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_number(&st, &key, &sub, &id)?;
    let n = &mut st.ap.numbers[i].obj;
    // Releasing twice is not documented; a released number is no longer releasable → 404.
    if n["status"] == "released" {
        return Err(error(
            404,
            "PHONE_NUMBER_NOT_FOUND",
            "Phone number already released",
        ));
    }
    n["status"] = json!("released");
    ok(json!({"success": true, "phoneNumber": n["phoneNumber"], "status": "released"}))
}
