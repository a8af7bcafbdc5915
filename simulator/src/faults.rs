//! Fault injection and call counting: an axum middleware put on every provider route
//! (`route_layer`, so the matched route template is known), plus the per-connection kill
//! switch that lets a handler close the TCP connection without answering.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use serde::{Deserialize, Serialize};

use crate::state::Sim;

/// One fault rule, as posted to `POST /_sim/faults`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    #[serde(default)]
    pub id: String,
    pub provider: String,
    /// Omitted = every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Route template as in `/_sim/calls` (without the provider prefix); omitted = every route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub fault: FaultKind,
    /// Apply to the next N matching calls (then the rule is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Apply to each matching call with this chance. With neither count nor probability the
    /// rule applies to every matching call until `DELETE /_sim/faults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum FaultKind {
    /// Wait `ms`, then handle normally.
    Latency { ms: u64 },
    /// Answer with this status and the provider's error envelope; nothing is applied.
    Status { status: u16 },
    /// 429 with `Retry-After: retryAfter` and the provider's rate-limit error; nothing applied.
    #[serde(rename_all = "camelCase")]
    RateLimit {
        #[serde(default = "one")]
        retry_after: u64,
    },
    /// Never answer: the connection is held for `ms` (default one hour), or until
    /// `DELETE /_sim/faults` or `POST /_sim/reset`, then closed.
    Hang {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
    /// Close the connection without a response; nothing is applied.
    Drop,
    /// Run the real handler (the change is applied), then lose the response: close the
    /// connection, or answer `status` (e.g. 502) with the provider's envelope if given.
    AfterApply {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
}

fn one() -> u64 {
    1
}

pub const PROVIDERS: [(&str, &str); 5] = [
    ("recoverbiz", "/recoverbiz"),
    ("vobiz", "/vobiz"),
    ("agentphone", "/agentphone"),
    ("vobizPartner", "/vobiz-partner"),
    ("yardstik", "/yardstik"),
];

/// Accepts the state key (`vobizPartner`) or the URL prefix form (`vobiz-partner`).
pub fn provider_name(s: &str) -> Option<&'static str> {
    let s = s.trim_start_matches('/');
    PROVIDERS.iter().find(|(n, p)| n.eq_ignore_ascii_case(s) || p[1..].eq_ignore_ascii_case(s)).map(|(n, _)| *n)
}

fn prefix_of(provider: &str) -> &'static str {
    PROVIDERS.iter().find(|(n, _)| *n == provider).map(|(_, p)| *p).unwrap_or("")
}

fn toggle_slash(p: &str) -> String {
    match p.strip_suffix('/') {
        Some(s) => s.to_string(),
        None => format!("{p}/"),
    }
}

impl Fault {
    pub fn validate(&mut self) -> Result<(), String> {
        self.provider = provider_name(&self.provider)
            .ok_or_else(|| {
                format!(
                    "unknown provider {:?}; one of recoverbiz, vobiz, agentphone, vobizPartner, yardstik",
                    self.provider
                )
            })?
            .to_string();
        if let Some(r) = &self.route {
            let prefix = prefix_of(&self.provider);
            if let Some(rest) = r.strip_prefix(prefix).filter(|rest| rest.starts_with('/')) {
                self.route = Some(rest.to_string());
            }
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err("probability must be between 0 and 1".into());
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        if let FaultKind::Status { status } | FaultKind::AfterApply { status: Some(status) } = self.fault
            && (StatusCode::from_u16(status).is_err() || status < 200)
        {
            return Err(format!("invalid status {status}"));
        }
        Ok(())
    }

    fn matches(&self, provider: &str, method: &str, route: &str) -> bool {
        self.provider == provider
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.route.as_deref().is_none_or(|r| r == route || toggle_slash(r) == route)
    }
}

/// Registers routes in their canonical (documented) form and, as an alias, with the trailing
/// slash toggled; call counts and fault rules always use the canonical template.
pub struct Routes {
    pub router: Router<Sim>,
    pub canonical: Vec<String>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Routes { router: Router::new(), canonical: Vec::new() }
    }

    pub fn route(mut self, path: &str, mr: MethodRouter<Sim>) -> Self {
        self.router = self.router.route(path, mr.clone()).route(&toggle_slash(path), mr);
        self.canonical.push(path.to_string());
        self
    }
}

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
        st.arrivals.entry(ctx.provider.to_string()).or_default().push(std::time::Instant::now());
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
    let envelope = |status: u16, code: &str, msg: &str| crate::provider_error(ctx.provider, &route, status, code, msg);
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
                let reset = crate::state::now_secs() + secs as i64;
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
