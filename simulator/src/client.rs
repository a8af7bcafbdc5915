//! A client of the control API under `/_sim/` (feature `client`), for tests and benchmarks that
//! drive a simulator over HTTP. It panics on failure: a control call that fails is a broken test.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::FaultKind;

#[derive(Clone)]
pub struct ControlClient {
    pub addr: SocketAddr,
    http: reqwest::Client,
}

/// How often one route was called (`GET /_sim/calls`).
#[derive(Clone, Debug, Deserialize)]
pub struct RouteCalls {
    pub provider: String,
    pub method: String,
    /// The route template without the provider prefix, e.g. `/v1/accounts/{id}`.
    pub route: String,
    pub count: u64,
}

/// The calls counted since the last clear.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calls {
    pub calls: Vec<RouteCalls>,
    /// Per provider, the most calls that arrived within any one second.
    pub peak_per_second: BTreeMap<String, u64>,
}

impl Calls {
    /// Calls to `provider` with `method` on `route`.
    pub fn count(&self, provider: &str, method: &str, route: &str) -> u64 {
        self.matching(|c| c.provider == provider && c.method == method && c.route == route)
    }

    /// Calls to `provider` whose method is (`get: true`) or is not (`get: false`) GET.
    pub fn count_by_kind(&self, provider: &str, get: bool) -> u64 {
        self.matching(|c| c.provider == provider && (c.method == "GET") == get)
    }

    pub fn matching(&self, select: impl Fn(&RouteCalls) -> bool) -> u64 {
        self.calls.iter().filter(|c| select(c)).map(|c| c.count).sum()
    }
}

/// One provider's traffic (`GET /_sim/rate`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    pub calls: u64,
    pub peak_per_second: u64,
}

/// One request the sink received (`GET /_sim/sink`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SinkRequest {
    pub method: String,
    /// The full path, e.g. `/_sim/sink/vobiz/api/v1/accounts/MA_X/sub-accounts/`.
    pub path: String,
    #[serde(default)]
    pub query: Option<String>,
    /// Lower-case name → value of each credential header it carried (`authorization`,
    /// `x-auth-id`, `x-auth-token`, `x-partner-key`, `x-sub-account-id`).
    pub headers: BTreeMap<String, String>,
}

impl ControlClient {
    pub fn new(addr: SocketAddr) -> Self {
        ControlClient { addr, http: reqwest::Client::new() }
    }

    /// `http://<addr><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A plain HTTP client, for calls to the provider APIs themselves.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.expect("the simulator answers");
        let status = response.status();
        let body = response.text().await.expect("the simulator's answer");
        assert!(status.is_success(), "the simulator refused a control call ({status}): {body}");
        serde_json::from_str(&body).expect("the simulator answers JSON")
    }

    /// Everything each provider holds (`GET /_sim/state`).
    pub async fn state(&self) -> Value {
        self.send(self.http.get(self.url("/_sim/state"))).await
    }

    pub async fn calls(&self) -> Calls {
        serde_json::from_value(self.send(self.http.get(self.url("/_sim/calls"))).await).expect("calls")
    }

    /// Calls to `provider` (`recoverbiz`, `vobiz`, …) with `method` on `route` (the route
    /// template without the provider prefix, e.g. `/v1/accounts`).
    pub async fn calls_to(&self, provider: &str, method: &str, route: &str) -> u64 {
        self.calls().await.count(provider, method, route)
    }

    pub async fn clear_calls(&self) {
        self.send(self.http.delete(self.url("/_sim/calls"))).await;
    }

    pub async fn rate(&self) -> BTreeMap<String, Rate> {
        serde_json::from_value(self.send(self.http.get(self.url("/_sim/rate"))).await).expect("rate")
    }

    /// Per provider, when each call counted since the last clear arrived (`GET /_sim/arrivals`):
    /// milliseconds since the simulator started, ascending.
    pub async fn arrivals(&self) -> BTreeMap<String, Vec<u64>> {
        serde_json::from_value(self.send(self.http.get(self.url("/_sim/arrivals"))).await).expect("arrivals")
    }

    /// Adds a fault rule (`{"provider", "method", "route", "fault", "count" | "probability"}`,
    /// see README.md); returns its id.
    pub async fn add_fault(&self, rule: Value) -> String {
        let added = self.send(self.http.post(self.url("/_sim/faults")).json(&rule)).await;
        added["id"].as_str().expect("fault id").to_owned()
    }

    /// A fault on `method route` of `provider` (every route if `None`); `limit` holds `count`
    /// or `probability` (or nothing: every matching call).
    pub async fn fault(&self, provider: &str, method: &str, route: Option<&str>, fault: Value, limit: Value) -> String {
        let mut rule = json!({"provider": provider, "method": method, "fault": fault});
        if let Some(route) = route {
            rule["route"] = json!(route);
        }
        rule.as_object_mut().unwrap().extend(limit.as_object().cloned().unwrap_or_default());
        self.add_fault(rule).await
    }

    /// A fault rule of this kind (see [`ControlClient::fault`]), e.g.
    /// `FaultKind::Redirect { status: 307, location: other.sink_url("/x") }`.
    pub async fn inject(
        &self,
        provider: &str,
        method: &str,
        route: Option<&str>,
        kind: &FaultKind,
        limit: Value,
    ) -> String {
        let fault = serde_json::to_value(kind).expect("a fault kind is JSON");
        self.fault(provider, method, route, fault, limit).await
    }

    /// A URL of this simulator's sink (`path` below `/_sim/sink`, starting with `/`): the
    /// `location` of a redirect fault on another simulator, to see what a client carries there.
    pub fn sink_url(&self, path: &str) -> String {
        self.url(&format!("/_sim/sink{path}"))
    }

    /// The requests the sink received since the last clear, oldest first.
    pub async fn sink(&self) -> Vec<SinkRequest> {
        let sink = self.send(self.http.get(self.url("/_sim/sink"))).await;
        serde_json::from_value(sink["requests"].clone()).expect("sink requests")
    }

    pub async fn clear_sink(&self) {
        self.send(self.http.delete(self.url("/_sim/sink"))).await;
    }

    pub async fn clear_faults(&self) {
        self.send(self.http.delete(self.url("/_sim/faults"))).await;
    }

    /// Adds credentials or inventory (`POST /_sim/seed`).
    pub async fn seed(&self, seed: Value) {
        self.send(self.http.post(self.url("/_sim/seed")).json(&seed)).await;
    }

    /// Empty state with the seed re-applied; calls, faults and the sink cleared.
    pub async fn reset(&self) {
        self.send(self.http.post(self.url("/_sim/reset"))).await;
    }
}
