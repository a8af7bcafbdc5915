//! Call counting and fault injection: an axum middleware put on every provider route
//! (`route_layer`, so the matched route template is known), plus the per-connection kill
//! switch that lets a handler close the TCP connection without answering.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::faults::{FaultKind, prefix_of};
use crate::routes::toggle_slash;
use crate::state::Sim;
use crate::{agentphone, helpers, recoverbiz, vobiz, yardstik};

/// Per-connection kill switch, put into every request's extensions by `Simulator::serve`.
#[derive(Clone)]
pub struct ConnKill(pub Arc<tokio::sync::Notify>);

#[derive(Clone)]
pub struct Ctx {
    pub sim: Sim,
    pub provider: &'static str,
    pub canonical: Arc<HashSet<String>>,
}

enum Action {
    Pass,
    Latency(u64),
    Status(u16),
    RateLimit(u64),
    Hang(u64),
    Drop,
    AfterApply(Option<u16>),
}

/// The route template of this request without the provider prefix, in canonical form.
fn route_of(ctx: &Ctx, req: &Request) -> String {
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str()).unwrap_or(req.uri().path());
    let prefix = prefix_of(ctx.provider);
    let r = matched.strip_prefix(prefix).filter(|r| r.starts_with('/')).unwrap_or(matched);
    if ctx.canonical.contains(r) { r.to_string() } else { toggle_slash(r) }
}

pub async fn middleware(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = route_of(&ctx, &req);
    let (action, mut release) = {
        let mut st = ctx.sim.lock();
        *st.calls.entry((ctx.provider.to_string(), method.clone(), route.clone())).or_insert(0) += 1;
        let at = helpers::uptime_ms();
        st.arrivals.entry(ctx.provider.to_string()).or_default().push(at);
        let mut action = Action::Pass;
        let mut exhausted = None;
        for (i, f) in st.faults.iter_mut().enumerate() {
            if !f.matches(ctx.provider, &method, &route) {
                continue;
            }
            if let Some(p) = f.probability
                && fastrand::f64() >= p
            {
                continue;
            }
            if let Some(c) = f.count.as_mut() {
                *c -= 1;
                if *c == 0 {
                    exhausted = Some(i);
                }
            }
            action = match f.fault {
                FaultKind::Latency { ms } => Action::Latency(ms),
                FaultKind::Status { status } => Action::Status(status),
                FaultKind::RateLimit { retry_after } => Action::RateLimit(retry_after),
                FaultKind::Hang { ms } => Action::Hang(ms.unwrap_or(3_600_000)),
                FaultKind::Drop => Action::Drop,
                FaultKind::AfterApply { status } => Action::AfterApply(status),
            };
            break;
        }
        if let Some(i) = exhausted {
            st.faults.remove(i);
        }
        (action, st.release.subscribe())
    };
    let kill = req.extensions().get::<ConnKill>().cloned();
    let path = req.uri().path().to_string();
    let envelope = |status: u16, code: &str, msg: &str| provider_error(ctx.provider, &route, status, code, msg);
    match action {
        Action::Pass => next.run(req).await,
        Action::Latency(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        Action::Status(s) => envelope(s, "", "Injected fault"),
        Action::RateLimit(secs) => {
            let mut r = envelope(429, "", "Rate limit exceeded");
            let h = r.headers_mut();
            h.insert("retry-after", HeaderValue::from(secs));
            if ctx.provider == "recoverbiz" {
                // RecoverBiz puts X-RateLimit-* on every response.
                let reset = helpers::now_secs() + secs as i64;
                h.insert("x-ratelimit-limit", HeaderValue::from(1000));
                h.insert("x-ratelimit-remaining", HeaderValue::from(0));
                h.insert("x-ratelimit-reset", HeaderValue::from(reset));
            }
            r
        }
        Action::Hang(ms) => {
            tracing::info!(%method, %path, "fault: hanging");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                _ = release.changed() => {}
            }
            drop_connection(kill, &method, &path).await
        }
        Action::Drop => drop_connection(kill, &method, &path).await,
        Action::AfterApply(status) => {
            let applied = next.run(req).await;
            tracing::info!(%method, %path, status = applied.status().as_u16(), "fault: applied, response lost");
            match status {
                Some(s) => envelope(s, "", "Injected fault after the change was applied"),
                None => drop_connection(kill, &method, &path).await,
            }
        }
    }
}

/// Closes the connection without a response. Outside `Simulator::serve` (a plain
/// `axum::serve` of `Simulator::router()`) there is no connection handle; answer an empty 502.
async fn drop_connection(kill: Option<ConnKill>, method: &str, path: &str) -> Response {
    tracing::info!(%method, %path, "fault: connection dropped");
    match kill {
        Some(k) => {
            k.0.notify_one();
            std::future::pending::<Response>().await
        }
        None => {
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    }
}

/// An error in the envelope the provider uses on that route (for faults and fallbacks).
pub fn provider_error(provider: &str, route: &str, status: u16, code: &str, msg: &str) -> Response {
    match provider {
        "recoverbiz" => recoverbiz::error(status, code, msg),
        "vobiz" if route.starts_with("/api/v1/Account/{auth_id}/Subaccount") => vobiz::plivo_error(status, msg),
        "vobiz" | "vobizPartner" => vobiz::error(status, code, msg),
        "agentphone" => agentphone::error(status, code, msg),
        _ => yardstik::error(status, code, msg),
    }
}
