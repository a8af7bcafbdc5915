//! The operator's own HTTP endpoints: `/metrics`, `/healthz`, `/readyz`, and the liveness they
//! report: `/healthz` fails once the controllers stopped making progress (reconciles running and
//! none finishing far past every timeout), so that the kubelet restarts a wedged operator instead
//! of leaving every tenant without one.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::METRICS;

/// The longest a reconcile may run, with none finishing, before the operator counts as wedged:
/// far beyond any provider timeout and pacing wait.
const STUCK: Duration = Duration::from_secs(300);

pub static HEALTH: LazyLock<Health> = LazyLock::new(Health::default);

#[derive(Default)]
pub struct Health {
    /// Milliseconds since `epoch()` when a reconcile last finished.
    last_finished: AtomicU64,
    running: AtomicUsize,
}

fn epoch() -> Instant {
    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    *EPOCH
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Health {
    /// A reconcile began; dropping the guard says it ended.
    pub fn reconcile(&self) -> Running<'_> {
        if self.running.fetch_add(1, Ordering::SeqCst) == 0 {
            // Nothing was running: the stuck clock starts now, not at the last finish.
            self.last_finished.store(now_ms(), Ordering::SeqCst);
        }
        Running(self)
    }

    /// Why the operator is not live, if it is not.
    pub fn problem(&self) -> Option<String> {
        let idle = Duration::from_millis(now_ms().saturating_sub(self.last_finished.load(Ordering::SeqCst)));
        verdict(self.running.load(Ordering::SeqCst), idle)
    }
}

/// Not live: reconciles are running and none finished for [`STUCK`].
fn verdict(running: usize, idle: Duration) -> Option<String> {
    (running > 0 && idle > STUCK)
        .then(|| format!("{running} reconcile(s) running and none finished for {}s", idle.as_secs()))
}

pub struct Running<'a>(&'a Health);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.last_finished.store(now_ms(), Ordering::SeqCst);
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn healthz() -> (StatusCode, String) {
    match HEALTH.problem() {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem),
    }
}

/// `/readyz` answers once this runs: it is started only after the API server answered.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(|| async { METRICS.render() }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_until_reconciles_stop_finishing() {
        let long = STUCK + Duration::from_secs(1);
        assert_eq!(verdict(0, long), None, "idle with nothing to do is fine");
        assert_eq!(verdict(3, Duration::from_secs(10)), None);
        assert!(verdict(3, long).unwrap().contains("none finished"));
        let h = Health::default();
        let running = h.reconcile();
        assert_eq!(h.problem(), None, "a reconcile that just began");
        drop(running);
        assert_eq!(h.running.load(Ordering::SeqCst), 0);
    }
}
