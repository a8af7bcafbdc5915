//! AgentPhone sub-accounts and numbers (`/agentphone/v1/...`).
//!
//! `Authorization: Bearer sk_live_…` (master key) plus optional `X-Sub-Account-Id`.
//! Errors: the docs envelope `{error:{message,code,type,details}}` for business errors and
//! FastAPI's `{detail:[{loc,msg,type}]}` for request-body validation (both exist).
//! Our choices where the docs are silent: sub-account `{id:"sub_…",name,createdAt}`, list
//! `{data,hasMore,total}`, 26th sub-account → 422 VALIDATION_ERROR, unknown
//! `X-Sub-Account-Id` → 404, DELETE is hard and releases the sub-account's numbers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use serde_json::{Map, Value, json};

use crate::helpers::*;
use crate::routes::Routes;
use crate::seed::*;

pub const MAX_SUB_ACCOUNTS: usize = 25;
pub const MAX_NUMBERS: usize = 10;

#[derive(Default)]
pub struct AgentPhone {
    pub keys: Vec<String>,
    pub subs: Vec<Owned>,
    pub numbers: Vec<Owned>,
    pub agents: Vec<Owned>,
}

/// An object plus who owns it: the master key and, for numbers, the sub-account (or master).
pub struct Owned {
    pub key: String,
    pub sub: Option<String>,
    pub obj: Value,
}

impl AgentPhone {
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
        let agents: Vec<Value> = self
            .agents
            .iter()
            .map(|a| {
                let mut o = a.obj.clone();
                o["subAccountId"] = json!(a.sub);
                o
            })
            .collect();
        json!({"subAccounts": self.subs.iter().map(|s| &s.obj).collect::<Vec<_>>(), "numbers": numbers, "agents": agents})
    }
}

pub fn routes() -> Routes<Shared<AgentPhone>> {
    Routes::new()
        .route("/v1/sub-accounts", get(list_subs).post(create_sub))
        .route("/v1/sub-accounts/{sub_account_id}", patch(rename_sub).delete(delete_sub))
        .route("/v1/numbers", get(list_numbers).post(buy_number))
        .route("/v1/numbers/{number_id}", get(get_number).delete(release_number))
        .route("/v1/agents", get(list_agents).post(create_agent))
        .route("/v1/agents/{agent_id}", get(get_agent).patch(update_agent).delete(delete_agent))
        .route("/v1/agents/{agent_id}/numbers", post(attach_number))
        .route("/v1/agents/{agent_id}/numbers/{number_id}", delete(detach_number))
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
    json(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

pub fn error(status: u16, code: &str, message: &str) -> Response {
    error_details(status, code, message, json!([]))
}

/// FastAPI/pydantic request validation error (422).
fn detail(loc: &str, msg: &str, typ: &str) -> Response {
    json(StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": [{"loc": ["body", loc], "msg": msg, "type": typ}]}))
}

fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    body_object(bytes).map_err(|m| {
        json(StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": [{"loc": ["body"], "msg": m, "type": "json_invalid"}]}))
    })
}

/// The master key and the targeted sub-account (None = master).
fn auth(st: &AgentPhone, h: &HeaderMap) -> Result<(String, Option<String>), Response> {
    let key = auth_scheme(h, &["Bearer"])
        .filter(|k| st.keys.iter().any(|x| x == k))
        .ok_or_else(|| error(401, "UNAUTHORIZED", "Invalid or missing API key"))?;
    let sub = header(h, "x-sub-account-id").map(str::to_string);
    if let Some(s) = &sub
        && !st.subs.iter().any(|x| x.key == key && x.obj["id"] == s.as_str())
    {
        return Err(error(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"));
    }
    Ok((key.to_string(), sub))
}

/// Sub-account management is master-only (one level of sub-accounts).
fn master_only(sub: &Option<String>) -> Result<(), Response> {
    match sub {
        Some(_) => Err(error(403, "FORBIDDEN", "Sub-accounts cannot manage sub-accounts")),
        None => Ok(()),
    }
}

fn name_of(b: &Map<String, Value>) -> Result<String, Response> {
    match b.get("name") {
        None => Err(detail("name", "Field required", "missing")),
        Some(Value::String(s)) if s.chars().count() < 1 => {
            Err(detail("name", "String should have at least 1 character", "string_too_short"))
        }
        Some(Value::String(s)) if s.chars().count() > 100 => {
            Err(detail("name", "String should have at most 100 characters", "string_too_long"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(detail("name", "Input should be a valid string", "string_type")),
    }
}

/// `limit` (default 20, max 100) and `offset` (default 0); FastAPI-style 422 on bad values.
fn paging(q: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let qerr = |k: &str, msg: &str, typ: &str| {
        json(StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": [{"loc": ["query", k], "msg": msg, "type": typ}]}))
    };
    let limit =
        q_int(q, "limit").map_err(|_| qerr("limit", "Input should be a valid integer", "int_parsing"))?.unwrap_or(20);
    let offset =
        q_int(q, "offset").map_err(|_| qerr("offset", "Input should be a valid integer", "int_parsing"))?.unwrap_or(0);
    if !(1..=100).contains(&limit) {
        return Err(qerr("limit", "Input should be between 1 and 100", "less_than_equal"));
    }
    if offset < 0 {
        return Err(qerr("offset", "Input should be greater than or equal to 0", "greater_than_equal"));
    }
    Ok((limit as usize, offset as usize))
}

fn page(all: Vec<Value>, limit: usize, offset: usize) -> Value {
    let data = slice(&all, offset, limit);
    json!({"data": data, "hasMore": offset + limit < all.len(), "total": all.len()})
}

async fn list_subs(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let (limit, offset) = paging(&q)?;
    let all = st.subs.iter().filter(|s| s.key == key).map(|s| s.obj.clone()).collect();
    ok(page(all, limit, offset))
}

async fn create_sub(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let name = name_of(&parse_body(&body)?)?;
    if st.subs.iter().filter(|s| s.key == key).count() >= MAX_SUB_ACCOUNTS {
        return Err(error_details(
            422,
            "VALIDATION_ERROR",
            "Maximum of 25 sub-accounts per master account reached",
            json!([{"field": "name", "message": "sub-account limit (25) reached", "type": "value_error"}]),
        ));
    }
    let obj = json!({"id": format!("sub_{}", rand_hex(12)), "name": name, "createdAt": ts_us_z(now_micros())});
    st.subs.push(Owned { key, sub: None, obj: obj.clone() });
    ok(obj)
}

fn find_sub(st: &AgentPhone, key: &str, id: &str) -> Result<usize, Response> {
    st.subs
        .iter()
        .position(|s| s.key == key && s.obj["id"] == id)
        .ok_or_else(|| error(404, "SUB_ACCOUNT_NOT_FOUND", "Sub-account not found"))
}

async fn rename_sub(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let name = name_of(&parse_body(&body)?)?;
    let i = find_sub(&st, &key, &id)?;
    // The API reference shows `{}`; we return the updated object.
    st.subs[i].obj["name"] = json!(name);
    ok(st.subs[i].obj.clone())
}

async fn delete_sub(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    master_only(&sub)?;
    let i = find_sub(&st, &key, &id)?;
    st.subs.remove(i);
    for n in st.numbers.iter_mut().filter(|n| n.key == key && n.sub.as_deref() == Some(id.as_str())) {
        n.obj["status"] = json!("released");
    }
    // Its agents go with it (they are isolated per sub-account).
    st.agents.retain(|a| !(a.key == key && a.sub.as_deref() == Some(id.as_str())));
    ok(json!({"success": true, "id": id}))
}

fn in_scope(n: &Owned, key: &str, sub: &Option<String>) -> bool {
    n.key == key && &n.sub == sub
}

async fn list_numbers(
    State(sim): State<Shared<AgentPhone>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let (limit, offset) = paging(&q)?;
    let all = st
        .numbers
        .iter()
        .filter(|n| in_scope(n, &key, &sub) && n.obj["status"] == "active")
        .map(|n| n.obj.clone())
        .collect();
    ok(page(all, limit, offset))
}

const COUNTRIES: [(&str, &str); 4] = [("US", "+1"), ("CA", "+1"), ("GB", "+44"), ("AU", "+61")];

async fn buy_number(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let b = parse_body(&body)?;
    let country = match b.get("country") {
        None | Some(Value::Null) => "US".to_string(),
        Some(Value::String(c)) if c.len() == 2 && c.bytes().all(|x| x.is_ascii_alphabetic()) => c.to_uppercase(),
        Some(Value::String(_)) => {
            return Err(detail("country", "String should match pattern '^[A-Za-z]{2}$'", "string_pattern_mismatch"));
        }
        Some(_) => {
            return Err(detail("country", "Input should be a valid string", "string_type"));
        }
    };
    let area = match b.get("areaCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(a))
            if a.len() == 3 && a.bytes().all(|x| x.is_ascii_digit()) && !a.starts_with(['0', '1']) =>
        {
            Some(a.clone())
        }
        Some(Value::String(_)) => {
            return Err(detail("areaCode", "areaCode must be a 3-digit area code", "value_error"));
        }
        Some(_) => {
            return Err(detail("areaCode", "Input should be a valid string", "string_type"));
        }
    };
    let agent = match b.get("agentId") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(a)) if st.agents.iter().any(|x| in_scope(x, &key, &sub) && x.obj["id"] == a.as_str()) => {
            json!(a)
        }
        Some(Value::String(_)) => return Err(error(404, "AGENT_NOT_FOUND", "Agent not found")),
        Some(_) => {
            return Err(detail("agentId", "Input should be a valid string", "string_type"));
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
    let active = st.numbers.iter().filter(|n| in_scope(n, &key, &sub) && n.obj["status"] == "active").count();
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
        if !st.numbers.iter().any(|n| n.obj["phoneNumber"] == p) {
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
    st.numbers.push(Owned { key, sub, obj: obj.clone() });
    ok(obj)
}

fn find_number(st: &AgentPhone, key: &str, sub: &Option<String>, id: &str) -> Result<usize, Response> {
    st.numbers
        .iter()
        .position(|n| in_scope(n, key, sub) && n.obj["id"] == id)
        .ok_or_else(|| error(404, "PHONE_NUMBER_NOT_FOUND", "Phone number not found"))
}

async fn get_number(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_number(&st, &key, &sub, &id)?;
    ok(st.numbers[i].obj.clone())
}

async fn release_number(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_number(&st, &key, &sub, &id)?;
    let n = &mut st.numbers[i].obj;
    // Releasing twice is not documented; a released number is no longer releasable → 404.
    if n["status"] == "released" {
        return Err(error(404, "PHONE_NUMBER_NOT_FOUND", "Phone number already released"));
    }
    n["status"] = json!("released");
    ok(json!({"success": true, "phoneNumber": n["phoneNumber"], "status": "released"}))
}

// ----- agents (enough for a voice agent's workflow) ------------------------------------------

/// Agent fields with their defaults; `numbers` is computed on read.
fn agent_defaults() -> Value {
    json!({
        "description": null, "voiceMode": "webhook", "systemPrompt": null, "beginMessage": null, "voice": null,
        "modelTier": "balanced", "transferNumber": null, "enableMessaging": true, "customTools": [],
        "voicemailMessage": null, "sttMode": "fast", "ambientSound": null, "denoisingMode": null,
        "maxSilenceMs": 600000, "voiceSpeed": 1.0, "interruptionSensitivity": 0.8, "enableBackchannel": false,
        "language": "en-US",
    })
}

/// FastAPI-style validation of the agent fields present in `b`.
fn validate_agent(b: &Map<String, Value>, creating: bool) -> Result<(), Response> {
    if creating || b.contains_key("name") {
        name_of(b)?;
    }
    let one_of = |k: &str, allowed: &[&str]| -> Result<(), Response> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(()),
            Some(_) => Err(detail(k, &format!("Input should be {}", allowed.join(" or ")), "enum")),
        }
    };
    one_of("voiceMode", &["webhook", "hosted"])?;
    one_of("modelTier", &["turbo", "balanced", "max"])?;
    one_of("sttMode", &["fast", "accurate"])?;
    let range = |k: &str, lo: f64, hi: f64| -> Result<(), Response> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| (lo..=hi).contains(&v)) => Ok(()),
            Some(_) => Err(detail(k, &format!("Input should be between {lo} and {hi}"), "value_error")),
        }
    };
    range("maxSilenceMs", 10_000.0, 3_600_000.0)?;
    range("voiceSpeed", 0.5, 2.0)?;
    range("interruptionSensitivity", 0.0, 1.0)?;
    if b.get("customTools").and_then(Value::as_array).is_some_and(|t| t.len() > 20) {
        return Err(detail("customTools", "List should have at most 20 items", "too_long"));
    }
    if let Some(Value::String(t)) = b.get("transferNumber")
        && !is_e164(t)
    {
        return Err(detail("transferNumber", "transferNumber must be E.164", "value_error"));
    }
    Ok(())
}

fn agent_view(st: &AgentPhone, a: &Owned) -> Value {
    let mut o = a.obj.clone();
    o["numbers"] = json!(
        st
            .numbers
            .iter()
            .filter(|n| n.key == a.key && n.obj["agentId"] == a.obj["id"] && n.obj["status"] == "active")
            .map(|n| json!({"id": n.obj["id"], "phoneNumber": n.obj["phoneNumber"], "status": n.obj["status"], "type": n.obj["type"]}))
            .collect::<Vec<_>>()
    );
    o
}

fn find_agent(st: &AgentPhone, key: &str, sub: &Option<String>, id: &str) -> Result<usize, Response> {
    st.agents
        .iter()
        .position(|a| in_scope(a, key, sub) && a.obj["id"] == id)
        .ok_or_else(|| error(404, "AGENT_NOT_FOUND", "Agent not found"))
}

async fn list_agents(
    State(sim): State<Shared<AgentPhone>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let (limit, offset) = paging(&q)?;
    let all: Vec<Value> = st.agents.iter().filter(|a| in_scope(a, &key, &sub)).map(|a| agent_view(&st, a)).collect();
    ok(json!({"data": slice(&all, offset, limit), "total": all.len()}))
}

async fn create_agent(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let b = parse_body(&body)?;
    validate_agent(&b, true)?;
    let mut obj = agent_defaults();
    merge_patch(&mut obj, &Value::Object(b.clone()));
    for (k, v) in agent_defaults().as_object().unwrap() {
        obj.as_object_mut().unwrap().entry(k.clone()).or_insert(v.clone());
    }
    obj["id"] = json!(format!("agt_{}", rand_hex(12)));
    obj["createdAt"] = json!(ts_us_z(now_micros()));
    let agent = Owned { key, sub, obj };
    let view = agent_view(&st, &agent);
    st.agents.push(agent);
    ok(view)
}

async fn get_agent(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_agent(&st, &key, &sub, &id)?;
    ok(agent_view(&st, &st.agents[i]))
}

async fn update_agent(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_agent(&st, &key, &sub, &id)?;
    let b = parse_body(&body)?;
    validate_agent(&b, false)?;
    for (k, v) in b.into_iter().filter(|(k, _)| k != "id" && k != "createdAt" && k != "numbers") {
        st.agents[i].obj[k.as_str()] = v;
    }
    ok(agent_view(&st, &st.agents[i]))
}

async fn delete_agent(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    let i = find_agent(&st, &key, &sub, &id)?;
    let a = st.agents.remove(i);
    // Numbers keep existing with agentId null.
    for n in st.numbers.iter_mut().filter(|n| n.key == key && n.obj["agentId"] == id.as_str()) {
        n.obj["agentId"] = Value::Null;
    }
    ok(json!({"success": true, "id": id, "name": a.obj["name"]}))
}

async fn attach_number(State(sim): State<Shared<AgentPhone>>, h: HeaderMap, Path(id): Path<String>, body: Bytes) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    find_agent(&st, &key, &sub, &id)?;
    let b = parse_body(&body)?;
    let Some(Value::String(num)) = b.get("numberId") else {
        return Err(detail("numberId", "Field required", "missing"));
    };
    let n = find_number(&st, &key, &sub, num)?;
    let n = &mut st.numbers[n].obj;
    if n["status"] != "active" {
        return Err(error(404, "PHONE_NUMBER_NOT_FOUND", "Phone number has been released"));
    }
    n["agentId"] = json!(id);
    ok(
        json!({"agentId": id, "number": {"id": n["id"], "phoneNumber": n["phoneNumber"], "status": n["status"], "type": n["type"]}}),
    )
}

async fn detach_number(
    State(sim): State<Shared<AgentPhone>>,
    h: HeaderMap,
    Path((id, num)): Path<(String, String)>,
) -> R {
    let mut st = sim.lock();
    let (key, sub) = auth(&st, &h)?;
    find_agent(&st, &key, &sub, &id)?;
    let n = find_number(&st, &key, &sub, &num)?;
    let n = &mut st.numbers[n].obj;
    if n["agentId"] != id.as_str() {
        return Err(error(404, "PHONE_NUMBER_NOT_FOUND", "Phone number is not attached to this agent"));
    }
    n["agentId"] = Value::Null;
    ok(json!({"success": true}))
}
