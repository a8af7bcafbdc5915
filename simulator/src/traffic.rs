//! Call counting and fault injection: an axum middleware put on every provider route
//! (`route_layer`, so the matched route template is known), plus the per-connection kill
//! switch that lets a handler close the TCP connection without answering.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

use crate::faults::{FaultKind, is_success, prefix_of};
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
    let (fault, mut release) = {
        let mut st = ctx.sim.lock();
        *st.calls.entry((ctx.provider.to_string(), method.clone(), route.clone())).or_insert(0) += 1;
        let at = helpers::uptime_ms();
        st.arrivals.entry(ctx.provider.to_string()).or_default().push(at);
        let mut fault = None;
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
            fault = Some(f.fault.clone());
            break;
        }
        if let Some(i) = exhausted {
            st.faults.remove(i);
        }
        (fault, st.release.subscribe())
    };
    let kill = req.extensions().get::<ConnKill>().cloned();
    let path = req.uri().path().to_string();
    let envelope = |status: u16, code: &str, msg: &str| provider_error(ctx.provider, &route, status, code, msg);
    let Some(fault) = fault else {
        return next.run(req).await;
    };
    match fault {
        FaultKind::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        FaultKind::Status { status } => envelope(status, "", "Injected fault"),
        FaultKind::RateLimit { retry_after: secs } => {
            let mut r = envelope(429, "", "Rate limit exceeded");
            let h = r.headers_mut();
            h.insert("retry-after", HeaderValue::from(secs));
            if ctx.provider == "recoverbiz" {
                // RecoverBiz puts X-RateLimit-* on every response.
                let reset = helpers::now_secs().saturating_add_unsigned(secs);
                h.insert("x-ratelimit-limit", HeaderValue::from(1000));
                h.insert("x-ratelimit-remaining", HeaderValue::from(0));
                h.insert("x-ratelimit-reset", HeaderValue::from(reset));
            }
            r
        }
        FaultKind::Hang { ms } => {
            tracing::info!(%method, %path, "fault: hanging");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms.unwrap_or(3_600_000))) => {}
                _ = release.changed() => {}
            }
            drop_connection(kill, &method, &path).await
        }
        FaultKind::Drop => drop_connection(kill, &method, &path).await,
        FaultKind::AfterApply { status } => {
            let applied = next.run(req).await;
            tracing::info!(%method, %path, status = applied.status().as_u16(), "fault: applied, response lost");
            match status {
                Some(s) => envelope(s, "", "Injected fault after the change was applied"),
                None => drop_connection(kill, &method, &path).await,
            }
        }
        FaultKind::Redirect { status, location } => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = status_code(status);
            // Checked when the rule was added.
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
        FaultKind::Body { status, bytes, text, content_type } => {
            let body = match (bytes, text) {
                (Some(n), _) => Body::new(Filler::new(n)),
                (None, Some(text)) => Body::from(text),
                (None, None) => Body::empty(),
            };
            let mut r = Response::new(body);
            *r.status_mut() = status_code(status);
            let content_type = content_type.as_deref().unwrap_or("application/json");
            if let Ok(v) = HeaderValue::from_str(content_type) {
                r.headers_mut().insert(CONTENT_TYPE, v);
            }
            r
        }
        FaultKind::Headers { status, headers } => {
            let mut r = if is_success(status) { next.run(req).await } else { envelope(status, "", "Injected fault") };
            for (name, value) in &headers {
                // Checked when the rule was added.
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                    r.headers_mut().insert(name, value);
                }
            }
            r
        }
        FaultKind::Error { status, message } => envelope(status, "", &message),
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `left` filler bytes handed out a chunk at a time, so a huge body costs one chunk of memory;
/// its exact size becomes the Content-Length.
struct Filler {
    left: u64,
    chunk: Bytes,
}

impl Filler {
    const CHUNK: usize = 64 * 1024;

    fn new(len: u64) -> Self {
        Filler { left: len, chunk: Bytes::from(vec![b'x'; Self::CHUNK]) }
    }
}

impl hyper::body::Body for Filler {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(Self::CHUNK as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
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
            let mut r = Response::new(Body::empty());
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
