//! A simulator per test and clients connected to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tenantline::provider::{self, Connection, Credentials, ProviderClients, ProviderKind};
use tenantline_sim::{Seed, Simulator};

pub struct Sim {
    pub addr: SocketAddr,
    http: reqwest::Client,
    _task: tokio::task::JoinHandle<()>,
}

impl Sim {
    pub async fn start() -> Self {
        let (addr, task) = Simulator::spawn_local(Seed::default()).await;
        Self { addr, http: reqwest::Client::new(), _task: task }
    }

    pub fn endpoint(&self, provider: ProviderKind) -> String {
        let prefix = match provider {
            ProviderKind::RecoverBiz => "/recoverbiz/v1",
            ProviderKind::Vobiz => "/vobiz/api/v1",
            ProviderKind::AgentPhone => "/agentphone",
            ProviderKind::VobizPartner => "/vobiz-partner/api/v1/partner",
            ProviderKind::Yardstik => "/yardstik",
        };
        format!("http://{}{prefix}", self.addr)
    }

    /// The dev seed's parent-account credentials.
    pub fn credentials(provider: ProviderKind) -> Credentials {
        let c = Credentials::default();
        match provider {
            ProviderKind::RecoverBiz => c.with("partnerKey", "pk_live_sim_recoverbiz_0000000000000000"),
            ProviderKind::Vobiz => c.with("authId", "MA_SIMVOBIZ").with("authToken", "sim-vobiz-parent-token"),
            ProviderKind::AgentPhone => c.with("apiKey", "sk_live_sim_agentphone"),
            ProviderKind::VobizPartner => c.with("authId", "PA_SIMPARTNER").with("authToken", "sim-partner-token"),
            ProviderKind::Yardstik => c.with("apiKey", "sim-yardstik-platform-key"),
        }
    }

    pub fn connection(&self, provider: ProviderKind) -> Connection {
        Connection {
            provider,
            endpoint: self.endpoint(provider),
            credentials: Self::credentials(provider),
            requests_per_second: 1000,
            burst: 1000,
            timeout: Duration::from_secs(2),
        }
    }

    pub fn clients(&self, provider: ProviderKind) -> ProviderClients {
        provider::connect(self.connection(provider)).expect("connect")
    }

    pub async fn state(&self) -> Value {
        self.http.get(format!("http://{}/_sim/state", self.addr)).send().await.unwrap().json().await.unwrap()
    }

    /// How often `method route` (route template without the provider prefix) was called.
    pub async fn calls(&self, provider: &str, method: &str, route: &str) -> u64 {
        let body: Value =
            self.http.get(format!("http://{}/_sim/calls", self.addr)).send().await.unwrap().json().await.unwrap();
        body["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["provider"] == provider && c["method"] == method && c["route"] == route)
            .map(|c| c["count"].as_u64().unwrap())
            .sum()
    }

    /// Inject a fault: `fault` is e.g. `json!({"kind": "status", "status": 503})`.
    pub async fn fault(&self, provider: &str, method: &str, route: Option<&str>, fault: Value, count: u32) {
        let mut rule = json!({"provider": provider, "method": method, "fault": fault, "count": count});
        if let Some(route) = route {
            rule["route"] = json!(route);
        }
        let r = self.http.post(format!("http://{}/_sim/faults", self.addr)).json(&rule).send().await.unwrap();
        assert!(r.status().is_success(), "fault rejected: {}", r.text().await.unwrap());
    }

    /// A raw request to the simulator (for changes made "behind the operator's back").
    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }
}
