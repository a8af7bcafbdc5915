//! tenantline-sim: a local simulator of the five provider APIs tenantline manages
//! (RecoverBiz, Vobiz, AgentPhone, Vobiz Partner, Yardstik), served on one port under a
//! prefix per provider, plus a control API under `/_sim/`. See README.md.
//!
//! ```no_run
//! # async fn demo() {
//! let (addr, _task) = tenantline_sim::Simulator::spawn_local(tenantline_sim::Seed::default()).await;
//! let base = format!("http://{addr}/recoverbiz/v1");
//! # }
//! ```

#![recursion_limit = "256"]
// Handlers return `Result<Response, Response>` on purpose; the error is the answer.
#![allow(clippy::result_large_err)]

pub mod agentphone;
#[cfg(feature = "client")]
pub mod client;
pub mod control;
pub mod faults;
pub mod helpers;
pub mod recoverbiz;
pub mod routes;
pub mod seed;
pub mod state;
pub mod traffic;
pub mod vobiz;
pub mod vobiz_partner;
pub mod yardstik;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::ServiceExt;

pub use crate::faults::{Fault, FaultKind};
use crate::helpers::Shared;
use crate::routes::Routes;
pub use crate::seed::Seed;
use crate::state::{Sim, State};
use crate::traffic::{ConnKill, Ctx, provider_error};

/// The simulator: shared in-memory state plus the HTTP surface over it.
#[derive(Clone)]
pub struct Simulator {
    sim: Sim,
}

impl Simulator {
    /// A simulator whose credentials come from `seed` (`Seed::default()` = the dev seed).
    pub fn new(seed: Seed) -> Self {
        Simulator { sim: Sim(Arc::new(Mutex::new(State::new(seed)))) }
    }

    /// All five APIs under their prefixes, plus `/_sim/`. Served with plain `axum::serve`,
    /// the `drop`/`afterApply` faults answer an empty 502 instead of closing the connection;
    /// use [`Simulator::serve`] for the real thing.
    pub fn router(&self) -> Router {
        let sim = &self.sim;
        let providers = sim.lock().providers.clone();
        let recoverbiz = recoverbiz::routes();
        let gate = from_fn_with_state(providers.recoverbiz.clone(), recoverbiz::gate);
        let recoverbiz = Routes { router: recoverbiz.router.route_layer(gate), ..recoverbiz };
        Router::new()
            .nest("/recoverbiz", mount(sim, "recoverbiz", recoverbiz, providers.recoverbiz))
            .nest("/vobiz", mount(sim, "vobiz", vobiz::routes(), providers.vobiz))
            .nest("/agentphone", mount(sim, "agentphone", agentphone::routes(), providers.agentphone))
            .nest("/vobiz-partner", mount(sim, "vobizPartner", vobiz_partner::routes(), providers.vobiz_partner))
            .nest("/yardstik", mount(sim, "yardstik", yardstik::routes(), providers.yardstik))
            .merge(control::routes())
            .fallback(|| async {
                helpers::json(
                    axum::http::StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "no such route; see tenantline-sim --help"}),
                )
            })
            .layer(from_fn(log))
            .with_state(sim.clone())
    }

    /// The current state as served by `GET /_sim/state`.
    pub fn state(&self) -> serde_json::Value {
        self.sim.lock().providers.snapshot()
    }

    /// Serves until the listener fails. Each connection carries a kill switch so the
    /// `drop`, `hang` and `afterApply` faults can close it without a response.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let router = self.router();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) if is_transient_accept_error(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            tokio::spawn(async move {
                let kill = Arc::new(tokio::sync::Notify::new());
                let handle = ConnKill(kill.clone());
                let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(handle.clone());
                    router.clone().oneshot(req.map(axum::body::Body::new))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = kill.notified() => {} // dropping `conn` closes the socket
                }
            });
        }
    }

    /// Binds 127.0.0.1:0, serves in a background task, returns the address and the task.
    pub async fn spawn_local(seed: Seed) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            if let Err(e) = Simulator::new(seed).serve(listener).await {
                tracing::error!("tenantline-sim stopped: {e}");
            }
        });
        (addr, task)
    }
}

/// A simulator serving from a thread of its own, so that a caller blocked on something else (a
/// kubectl child, a busy test runtime) never keeps it from answering. Stops when dropped.
pub struct SimulatorThread {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SimulatorThread {
    pub fn start(seed: Seed) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let (addr, task) = Simulator::spawn_local(seed).await;
                ready.send(addr).expect("the starter waits");
                tokio::select! { _ = task => {}, _ = stopped => {} }
            });
        });
        SimulatorThread { addr: addr.recv().expect("the simulator starts"), _stop: stop }
    }
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock) || e.raw_os_error() == Some(24)
}

/// One provider's routes over its state, with fault injection / call counting and a 404 in
/// its own envelope.
fn mount<T: Send + 'static>(
    sim: &Sim,
    provider: &'static str,
    routes: Routes<Shared<T>>,
    state: Shared<T>,
) -> Router<Sim> {
    let ctx = Ctx { sim: sim.clone(), provider, canonical: Arc::new(routes.canonical.into_iter().collect()) };
    routes
        .router
        .route_layer(from_fn_with_state(ctx, traffic::middleware))
        .fallback(move || async move { provider_error(provider, "", 404, "", "Not found") })
        .with_state(state)
}

/// One log line per request: method, path (no query string, no headers), status.
async fn log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::info!("{method} {path} {}", resp.status().as_u16());
    resp
}
