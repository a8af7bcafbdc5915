//! The control API under `/_sim/` (no auth, JSON): reset, seed, state, call counts, faults,
//! parent credential rotation, and the sink that records who calls it with which credentials.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{any, delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::{Fault, provider_name};
use crate::helpers::*;
use crate::seed::Seed;
use crate::state::{Providers, Sim};

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/_sim/reset", post(reset))
        .route("/_sim/seed", post(seed))
        .route("/_sim/state", get(state))
        .route("/_sim/calls", get(calls).delete(clear_calls))
        .route("/_sim/rate", get(rate))
        .route("/_sim/arrivals", get(arrivals))
        .route("/_sim/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/rotate", post(rotate))
        .route("/_sim/sink", get(sink).delete(clear_sink))
        .route("/_sim/sink/", any(record))
        .route("/_sim/sink/{*rest}", any(record))
}

fn bad(msg: impl std::fmt::Display) -> axum::response::Response {
    json(StatusCode::BAD_REQUEST, json!({"error": msg.to_string()}))
}

async fn reset(AxState(sim): AxState<Sim>) -> R {
    sim.lock().reset();
    ok(json!({"status": "ok"}))
}

async fn seed(AxState(sim): AxState<Sim>, body: Bytes) -> R {
    let seed: Seed = serde_json::from_slice(&body).map_err(bad)?;
    let mut st = sim.lock();
    st.providers.apply_seed(&seed);
    st.seed.get_or_insert_with(Seed::empty).merge(&seed);
    ok(json!({"status": "ok"}))
}

async fn state(AxState(sim): AxState<Sim>) -> R {
    let providers = sim.lock().providers.clone();
    ok(providers.snapshot())
}

async fn calls(AxState(sim): AxState<Sim>) -> R {
    let st = sim.lock();
    let calls: Vec<Value> = st
        .calls
        .iter()
        .map(|((provider, method, route), count)| json!({"provider": provider, "method": method, "route": route, "count": count}))
        .collect();
    let peak: serde_json::Map<String, Value> =
        st.arrivals.iter().map(|(provider, at)| (provider.clone(), json!(peak_per_second(at)))).collect();
    ok(json!({ "calls": calls, "peakPerSecond": peak }))
}

/// Per provider: calls counted, and the most calls that arrived within any one second.
async fn rate(AxState(sim): AxState<Sim>) -> R {
    let st = sim.lock();
    let rate: serde_json::Map<String, Value> = st
        .arrivals
        .iter()
        .map(|(provider, times)| {
            let json = json!({"calls": times.len(), "peakPerSecond": peak_per_second(times)});
            (provider.clone(), json)
        })
        .collect();
    ok(Value::Object(rate))
}

/// Per provider: when each call counted since the last clear arrived (ms since the simulator
/// started, ascending), to measure the spacing of a client's calls.
async fn arrivals(AxState(sim): AxState<Sim>) -> R {
    let st = sim.lock();
    ok(json!(st.arrivals))
}

/// The largest number of `times` (ascending, ms) inside any window of 1000 ms.
pub fn peak_per_second(times: &[u64]) -> usize {
    let mut start = 0;
    let mut peak = 0;
    for (end, t) in times.iter().enumerate() {
        while times[start] + 1000 <= *t {
            start += 1;
        }
        peak = peak.max(end + 1 - start);
    }
    peak
}

async fn clear_calls(AxState(sim): AxState<Sim>) -> R {
    let mut st = sim.lock();
    st.calls.clear();
    st.arrivals.clear();
    ok(json!({"status": "ok"}))
}

async fn list_faults(AxState(sim): AxState<Sim>) -> R {
    ok(json!({"faults": sim.lock().faults}))
}

async fn add_fault(AxState(sim): AxState<Sim>, body: Bytes) -> R {
    let mut f: Fault = serde_json::from_slice(&body).map_err(bad)?;
    f.validate().map_err(bad)?;
    let mut st = sim.lock();
    f.id = format!("flt_{}", st.next_seq());
    let id = f.id.clone();
    st.faults.push(f);
    ok(json!({ "id": id }))
}

async fn clear_faults(AxState(sim): AxState<Sim>) -> R {
    let mut st = sim.lock();
    st.faults.clear();
    st.release.release_all();
    ok(json!({"status": "ok"}))
}

async fn remove_fault(AxState(sim): AxState<Sim>, Path(id): Path<String>) -> R {
    let mut st = sim.lock();
    let n = st.faults.len();
    st.faults.retain(|f| f.id != id);
    if st.faults.len() == n {
        return Err(json(StatusCode::NOT_FOUND, json!({"error": "no such fault"})));
    }
    ok(json!({"status": "ok"}))
}

/// The headers that carry a provider credential: the sink records these, and no others.
pub const CREDENTIAL_HEADERS: [&str; 5] =
    ["authorization", "x-auth-id", "x-auth-token", "x-partner-key", "x-sub-account-id"];

/// Requests kept by the sink; later ones are answered but not recorded (a redirect loop must not
/// grow memory without end).
const SINK_CAPACITY: usize = 10_000;

/// One request the sink received: which credentials it carried, and where to.
#[derive(Clone, Debug, Serialize)]
pub struct SinkRequest {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Lower-case name → value, for each credential header present (repeats joined by ", ").
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Plays another host that a provider might redirect to: records the request's credential
/// headers and answers 200, so a test can tell whether a client carried them across.
async fn record(AxState(sim): AxState<Sim>, method: Method, uri: Uri, headers: HeaderMap) -> R {
    let mut seen = std::collections::BTreeMap::new();
    for name in CREDENTIAL_HEADERS {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        if !values.is_empty() {
            seen.insert(name.to_owned(), values.join(", "));
        }
    }
    let request = SinkRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: seen,
    };
    let mut st = sim.lock();
    if st.sink.len() < SINK_CAPACITY {
        st.sink.push(request);
    }
    ok(json!({"recorded": true}))
}

async fn sink(AxState(sim): AxState<Sim>) -> R {
    ok(json!({"requests": sim.lock().sink}))
}

async fn clear_sink(AxState(sim): AxState<Sim>) -> R {
    sim.lock().sink.clear();
    ok(json!({"status": "ok"}))
}

/// A parent credential replaced, as a person rotating it in the provider's console would: the
/// old one is refused from now on, the new one owns everything the old one did.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    provider: String,
    /// The partner key, API key or platform key; for Vobiz and Vobiz Partner the auth token
    /// (the auth id stays).
    from: String,
    to: String,
}

async fn rotate(AxState(sim): AxState<Sim>, body: Bytes) -> R {
    let r: Rotation = serde_json::from_slice(&body).map_err(bad)?;
    let provider = provider_name(&r.provider).ok_or_else(|| bad(format!("unknown provider {:?}", r.provider)))?;
    if r.to.is_empty() {
        return Err(bad("`to` is empty"));
    }
    let providers = sim.lock().providers.clone();
    let rotated = rotate_parent(&providers, provider, &r.from, &r.to);
    if !rotated {
        return Err(json(StatusCode::NOT_FOUND, json!({"error": format!("no such {provider} parent credential")})));
    }
    ok(json!({"status": "ok"}))
}

fn rotate_parent(providers: &Providers, provider: &str, from: &str, to: &str) -> bool {
    let swap = |key: &mut String| {
        if key == from {
            *key = to.to_owned();
        }
    };
    match provider {
        "recoverbiz" => {
            let mut st = providers.recoverbiz.lock();
            if !st.keys.iter().any(|k| k == from) {
                return false;
            }
            st.keys.iter_mut().for_each(swap);
            st.accounts.iter_mut().for_each(|a| swap(&mut a.key));
        }
        "agentphone" => {
            let mut st = providers.agentphone.lock();
            if !st.keys.iter().any(|k| k == from) {
                return false;
            }
            st.keys.iter_mut().for_each(swap);
            let st = &mut *st;
            let owned = st.subs.iter_mut().chain(st.numbers.iter_mut()).chain(st.agents.iter_mut());
            owned.for_each(|o| swap(&mut o.key));
        }
        "yardstik" => {
            let mut st = providers.yardstik.lock();
            if !st.keys.iter().any(|k| k == from) {
                return false;
            }
            st.keys.iter_mut().for_each(swap);
            st.subs.iter_mut().for_each(|s| swap(&mut s.key));
        }
        "vobiz" => {
            let mut st = providers.vobiz.lock();
            if !st.parents.iter().any(|p| p.token == from) {
                return false;
            }
            st.parents.iter_mut().for_each(|p| swap(&mut p.token));
        }
        "vobizPartner" => {
            let mut st = providers.vobiz_partner.lock();
            if !st.partners.iter().any(|p| p.seed.auth_token == from) {
                return false;
            }
            st.partners.iter_mut().for_each(|p| swap(&mut p.seed.auth_token));
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::peak_per_second;

    #[test]
    fn peak_is_the_busiest_sliding_second() {
        assert_eq!(peak_per_second(&[]), 0);
        assert_eq!(peak_per_second(&[0, 999, 1000, 1998, 1999]), 3);
        assert_eq!(peak_per_second(&[0, 500, 1500, 2600]), 2);
        // 3 calls late in one second and 3 early in the next: 6 within one second.
        assert_eq!(peak_per_second(&[0, 700, 800, 900, 1100, 1200, 1300, 2500]), 6);
    }
}
