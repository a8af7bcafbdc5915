//! The control API under `/_sim/` (no auth, JSON): reset, seed, state, call counts, faults.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::state::*;

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/_sim/reset", post(reset))
        .route("/_sim/seed", post(seed))
        .route("/_sim/state", get(state))
        .route("/_sim/calls", get(calls).delete(clear_calls))
        .route("/_sim/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/_sim/faults/{id}", delete(remove_fault))
}

fn bad(msg: impl std::fmt::Display) -> axum::response::Response {
    json(StatusCode::BAD_REQUEST, json!({"error": msg.to_string()}))
}

pub fn snapshot(st: &crate::state::State) -> Value {
    json!({
        "recoverbiz": st.rb.snapshot(),
        "vobiz": st.vz.snapshot(),
        "agentphone": st.ap.snapshot(),
        "vobizPartner": st.vp.snapshot(),
        "yardstik": st.ys.snapshot(),
    })
}

async fn reset(AxState(sim): AxState<Sim>) -> R {
    sim.lock().reset();
    ok(json!({"status": "ok"}))
}

async fn seed(AxState(sim): AxState<Sim>, body: Bytes) -> R {
    let seed: Seed = serde_json::from_slice(&body).map_err(bad)?;
    let mut st = sim.lock();
    st.apply_seed(&seed);
    st.seed.get_or_insert_with(Seed::empty).merge(&seed);
    ok(json!({"status": "ok"}))
}

async fn state(AxState(sim): AxState<Sim>) -> R {
    ok(snapshot(&sim.lock()))
}

async fn calls(AxState(sim): AxState<Sim>) -> R {
    let st = sim.lock();
    let calls: Vec<Value> = st
        .calls
        .iter()
        .map(|((provider, method, route), count)| json!({"provider": provider, "method": method, "route": route, "count": count}))
        .collect();
    let peak: serde_json::Map<String, Value> =
        st.arrivals.iter().map(|(provider, at)| (provider.clone(), json!(busiest_second(at)))).collect();
    ok(json!({ "calls": calls, "peakPerSecond": peak }))
}

/// The most calls that arrived within any one second (a sliding window, not clock seconds).
fn busiest_second(arrivals: &[std::time::Instant]) -> usize {
    let mut start = 0;
    let mut peak = 0;
    for (end, at) in arrivals.iter().enumerate() {
        while at.duration_since(arrivals[start]) >= std::time::Duration::from_secs(1) {
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn the_busiest_second_slides_across_clock_seconds() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        assert_eq!(super::busiest_second(&[]), 0);
        // 3 calls late in one second and 3 early in the next: 6 within one second.
        let calls = [at(0), at(700), at(800), at(900), at(1100), at(1200), at(1300), at(2500)];
        assert_eq!(super::busiest_second(&calls), 6);
    }
}
