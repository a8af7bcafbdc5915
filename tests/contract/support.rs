//! A simulator per test and clients connected to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tenantline::provider::{
    self, Address, Connection, Credentials, Owner, ProviderClients, ProviderKind, SecretString, SubAccountSpec,
    YardstikOptions,
};
use tenantline_sim::client::ControlClient;
use tenantline_sim::seed::{
    DEV_AGENTPHONE_KEY, DEV_PARTNER_AUTH_ID, DEV_PARTNER_AUTH_TOKEN, DEV_PERMISSIBLE_PURPOSE_ID, DEV_RECOVERBIZ_KEY,
    DEV_VOBIZ_AUTH_ID, DEV_VOBIZ_AUTH_TOKEN, DEV_YARDSTIK_KEY,
};
use tenantline_sim::{Seed, Simulator};

pub struct Sim {
    pub addr: SocketAddr,
    control: ControlClient,
    _task: tokio::task::JoinHandle<()>,
}

impl Sim {
    pub async fn start() -> Self {
        Self::start_with(Seed::default()).await
    }

    pub async fn start_with(seed: Seed) -> Self {
        let (addr, task) = Simulator::spawn_local(seed).await;
        Self { addr, control: ControlClient::new(addr), _task: task }
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
            ProviderKind::RecoverBiz => c.with("partnerKey", DEV_RECOVERBIZ_KEY),
            ProviderKind::Vobiz => c.with("authId", DEV_VOBIZ_AUTH_ID).with("authToken", DEV_VOBIZ_AUTH_TOKEN),
            ProviderKind::AgentPhone => c.with("apiKey", DEV_AGENTPHONE_KEY),
            ProviderKind::VobizPartner => {
                c.with("authId", DEV_PARTNER_AUTH_ID).with("authToken", DEV_PARTNER_AUTH_TOKEN)
            }
            ProviderKind::Yardstik => c.with("apiKey", DEV_YARDSTIK_KEY),
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
            max_wait: Duration::from_secs(30),
            // The simulator serves plain http on 127.0.0.1.
            allow_insecure: true,
        }
    }

    pub fn clients(&self, provider: ProviderKind) -> ProviderClients {
        provider::connect(self.connection(provider)).expect("connect")
    }

    /// How often `method route` (route template without the provider prefix) was called.
    pub async fn calls(&self, provider: &str, method: &str, route: &str) -> u64 {
        self.control.calls_to(provider, method, route).await
    }

    /// Wait until `method route` was called `n` times (a call is counted when it arrives,
    /// before any fault holds it); fails after 30 s.
    pub async fn wait_for_calls(&self, provider: &str, method: &str, route: &str, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.calls(provider, method, route).await < n {
            assert!(tokio::time::Instant::now() < deadline, "{method} {route} was not called {n} times in 30 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Inject a fault on the next `count` matching calls: `fault` is e.g.
    /// `json!({"kind": "status", "status": 503})`.
    pub async fn fault(&self, provider: &str, method: &str, route: Option<&str>, fault: Value, count: u32) {
        self.control.fault(provider, method, route, fault, json!({ "count": count })).await;
    }

    /// A raw request to the simulator (for changes made "behind the operator's back").
    pub fn raw(&self) -> &reqwest::Client {
        self.control.http()
    }
}

impl std::ops::Deref for Sim {
    type Target = ControlClient;

    fn deref(&self) -> &ControlClient {
        &self.control
    }
}

/// A sub-account spec each provider accepts, named `name`, with its own idempotency key.
pub fn sub_account(provider: ProviderKind, name: &str) -> SubAccountSpec {
    let mut spec = SubAccountSpec {
        idempotency_key: format!("default/contract/{name}"),
        display_name: name.to_owned(),
        active: true,
        ..Default::default()
    };
    match provider {
        ProviderKind::VobizPartner => {
            spec.owner = Some(Owner {
                email: Some(format!("{name}@acme.example")),
                phone: Some("+14155550100".into()),
                ..Default::default()
            });
            spec.address = Some(Address { country: Some("US".into()), ..Default::default() });
            spec.password = Some(SecretString::from("S3cure!pass-123"));
        }
        ProviderKind::Yardstik => {
            spec.owner = Some(Owner {
                email: Some("owner@acme.example".into()),
                first_name: Some("Ana".into()),
                last_name: Some("Diaz".into()),
                ..Default::default()
            });
            spec.address = Some(Address {
                line1: Some("1 Main St".into()),
                city: Some("Austin".into()),
                state: Some("TX".into()),
                postal_code: Some("78701".into()),
                country: Some("US".into()),
                ..Default::default()
            });
            spec.yardstik = Some(YardstikOptions {
                permissible_purpose_ids: vec![PURPOSE.into()],
                legal_business_name: Some(format!("{name} LLC")),
                url: None,
            });
        }
        _ => {}
    }
    spec
}

/// The dev seed's Yardstik permissible purpose.
pub const PURPOSE: &str = DEV_PERMISSIBLE_PURPOSE_ID;

/// The items of `pointer` in the simulator's state.
pub fn items<'a>(state: &'a Value, pointer: &str) -> &'a Vec<Value> {
    state.pointer(pointer).and_then(Value::as_array).unwrap_or_else(|| panic!("{pointer} in {state}"))
}

/// A connection to `provider` whose key the simulator does not know.
pub fn bad_credentials(sim: &Sim, provider: ProviderKind) -> Connection {
    let mut connection = sim.connection(provider);
    let keys: Vec<String> = connection.credentials.0.keys().cloned().collect();
    for key in keys {
        let value = connection.credentials.get(&key).unwrap().to_owned();
        let value = if key == "authId" { value } else { format!("{value}-wrong") };
        connection.credentials.insert(&key, value);
    }
    connection
}
