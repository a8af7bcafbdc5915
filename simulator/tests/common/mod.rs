//! Shared helpers for the simulator's HTTP tests: start a simulator on a loopback port and
//! call it with each provider's dev credentials.
#![allow(dead_code)]

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tenantline_sim::{Seed, Simulator};

pub const RB_KEY: &str = "pk_live_sim_recoverbiz_0000000000000000";
pub const VZ_ID: &str = "MA_SIMVOBIZ";
pub const VZ_TOKEN: &str = "sim-vobiz-parent-token";
pub const AP_KEY: &str = "sk_live_sim_agentphone";
pub const VP_ID: &str = "PA_SIMPARTNER";
pub const VP_TOKEN: &str = "sim-partner-token";
pub const YS_KEY: &str = "sim-yardstik-platform-key";
pub const YS_PURPOSE: &str = "3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c";

pub struct Sim {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn start() -> Sim {
    start_with(Seed::default()).await
}

pub async fn start_with(seed: Seed) -> Sim {
    let (addr, _task) = Simulator::spawn_local(seed).await;
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
    Sim { base: format!("http://{addr}"), http }
}

impl Sim {
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }
    /// RecoverBiz with the dev partner key; `path` is below `/recoverbiz/v1`.
    pub fn rb(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, &format!("/recoverbiz/v1{path}")).header("X-Partner-Key", RB_KEY)
    }
    /// Vobiz with the dev parent credentials; `path` is below `/vobiz/api/v1`.
    pub fn vz(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, &format!("/vobiz/api/v1{path}")).header("X-Auth-ID", VZ_ID).header("X-Auth-Token", VZ_TOKEN)
    }
    /// AgentPhone with the dev key; `path` is below `/agentphone`.
    pub fn ap(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, &format!("/agentphone{path}")).bearer_auth(AP_KEY)
    }
    /// Vobiz Partner with the dev partner; `path` is below `/vobiz-partner/api/v1/partner`.
    pub fn vp(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, &format!("/vobiz-partner/api/v1/partner{path}"))
            .header("X-Auth-ID", VP_ID)
            .header("X-Auth-Token", VP_TOKEN)
            .header("Accept", "application/json")
    }
    /// Yardstik with the dev platform key; `path` is below `/yardstik`.
    pub fn ys(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, &format!("/yardstik{path}")).header("Authorization", format!("Account {YS_KEY}"))
    }

    pub async fn state(&self) -> Value {
        send(self.req(Method::GET, "/_sim/state")).await.body
    }

    pub async fn fault(&self, f: Value) -> String {
        let r = send(self.req(Method::POST, "/_sim/faults").json(&f)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// The call count for (provider, method, route), 0 if never called.
    pub async fn calls(&self, provider: &str, method: &str, route: &str) -> u64 {
        let r = send(self.req(Method::GET, "/_sim/calls")).await;
        r.body["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["provider"] == provider && c["method"] == method && c["route"] == route)
            .map(|c| c["count"].as_u64().unwrap())
            .unwrap_or(0)
    }
}

pub async fn send(rb: RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request failed");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Resp { status, headers, body }
}

pub async fn post(rb: RequestBuilder, body: Value) -> Resp {
    send(rb.json(&body)).await
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Field for field: every key of `expected` exists in `actual` with the same JSON type (null in
/// `expected` matches anything), recursively; arrays compare their first elements.
pub fn assert_shape(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (_, Value::Null) => {}
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                let av = a.get(k).unwrap_or_else(|| panic!("missing field {at}.{k} in {actual}"));
                assert_shape(av, ev, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(a0), Some(e0)) = (a.first(), e.first()) {
                assert_shape(a0, e0, &format!("{at}[0]"));
            }
        }
        (a, e) => assert_eq!(kind(a), kind(e), "type of {at}: {a} vs {e}"),
    }
}

/// `2026-02-15T10:30:00Z`
pub fn is_ts_z(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 20 && s.ends_with('Z') && &s[10..11] == "T"
}

/// `2026-05-06T07:12:40.437143+00:00`
pub fn is_ts_us_offset(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 32 && s.ends_with("+00:00") && &s[19..20] == "."
}

pub fn is_e164(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.starts_with('+') && s.len() >= 3 && s[1..].bytes().all(|b| b.is_ascii_digit()) && !s.starts_with("+0")
}
