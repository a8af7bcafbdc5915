//! The simulated world: each provider's state, the call counts and the fault rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::agentphone::AgentPhone;
use crate::control::SinkRequest;
use crate::faults::Fault;
use crate::helpers::Shared;
use crate::recoverbiz::RecoverBiz;
use crate::seed::Seed;
use crate::vobiz::Vobiz;
use crate::vobiz_partner::VobizPartner;
use crate::yardstik::Yardstik;

/// Each provider's state, under its own lock: its routes hold a clone of its handle.
#[derive(Clone, Default)]
pub struct Providers {
    pub recoverbiz: Shared<RecoverBiz>,
    pub vobiz: Shared<Vobiz>,
    pub agentphone: Shared<AgentPhone>,
    pub vobiz_partner: Shared<VobizPartner>,
    pub yardstik: Shared<Yardstik>,
}

impl Providers {
    /// Adds the credentials of `seed` (existing ones are kept; nothing is removed).
    pub fn apply_seed(&self, seed: &Seed) {
        self.recoverbiz.lock().apply_seed(&seed.recoverbiz);
        self.vobiz.lock().apply_seed(&seed.vobiz);
        self.agentphone.lock().apply_seed(&seed.agentphone);
        self.vobiz_partner.lock().apply_seed(&seed.vobiz_partner);
        self.yardstik.lock().apply_seed(&seed.yardstik);
    }

    /// Forgets everything each provider holds (the handles stay, so the routes see the change).
    fn clear(&self) {
        *self.recoverbiz.lock() = Default::default();
        *self.vobiz.lock() = Default::default();
        *self.agentphone.lock() = Default::default();
        *self.vobiz_partner.lock() = Default::default();
        *self.yardstik.lock() = Default::default();
    }

    /// The state as served by `GET /_sim/state`.
    pub fn snapshot(&self) -> Value {
        json!({
            "recoverbiz": self.recoverbiz.lock().snapshot(),
            "vobiz": self.vobiz.lock().snapshot(),
            "agentphone": self.agentphone.lock().snapshot(),
            "vobizPartner": self.vobiz_partner.lock().snapshot(),
            "yardstik": self.yardstik.lock().snapshot(),
        })
    }
}

#[derive(Default)]
pub struct State {
    pub seed: Option<Seed>,
    pub providers: Providers,
    /// (provider, method, route template) → count
    pub calls: BTreeMap<(String, String, String), u64>,
    /// provider → arrival time (ms since the simulator started) of every call, for the peak
    /// request rate in any one-second window (`GET /_sim/rate`).
    pub arrivals: BTreeMap<String, Vec<u64>>,
    pub faults: Vec<Fault>,
    /// What `/_sim/sink/…` received, oldest first.
    pub sink: Vec<SinkRequest>,
    pub seq: u64,
    /// Lets go of requests held by `hang` faults (on reset and when faults are cleared).
    pub release: Release,
}

/// A generation counter: a held request subscribes under the state lock, so a release that
/// happens after it was counted is never missed.
pub struct Release(tokio::sync::watch::Sender<u64>);

impl Default for Release {
    fn default() -> Self {
        Release(tokio::sync::watch::channel(0).0)
    }
}

impl Release {
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
    pub fn release_all(&self) {
        self.0.send_modify(|g| *g += 1);
    }
}

impl State {
    pub fn new(seed: Seed) -> State {
        let s = State::default();
        s.providers.apply_seed(&seed);
        State { seed: Some(seed), ..s }
    }

    /// Empty state with the current seed re-applied. Call counters, faults and the sink are
    /// cleared too.
    pub fn reset(&mut self) {
        let seed = self.seed.take().unwrap_or_else(Seed::empty);
        let providers = self.providers.clone();
        let release = std::mem::take(&mut self.release);
        providers.clear();
        providers.apply_seed(&seed);
        *self = State { seed: Some(seed), providers, release, ..State::default() };
        self.release.release_all();
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

#[derive(Clone)]
pub struct Sim(pub Arc<Mutex<State>>);

impl Sim {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A handler never panics while holding the lock on purpose; recover if one did.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
