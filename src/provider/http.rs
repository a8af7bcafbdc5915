//! Shared HTTP plumbing, once for every provider: base URL, auth headers, JSON, a timeout on
//! every call, the account's token bucket, `Retry-After` and `X-RateLimit-*`, pagination, and
//! the mapping of every failure onto [`Error`].
//!
//! The endpoint is not trusted more than it must be: redirects are never followed (they would
//! carry the auth headers elsewhere), bodies are read up to [`MAX_BODY`], waits it asks for are
//! clamped, and what it says reaches an [`Error`] only through [`Error::sanitized`].

use std::error::Error as StdError;
use std::io;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url, redirect};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{Connection, Error, ProviderKind, Result};
use crate::metrics::METRICS;

/// Longest a call waits in-process for the token bucket or a provider-announced reset before
/// giving up with `RateLimited` (the reconciler then requeues instead of holding a worker).
const MAX_PACING_WAIT: Duration = Duration::from_secs(20);
/// Bounds of `Connection::max_wait`, so that no setting makes a deadline overflow or a
/// `RateLimited` ask for an immediate retry.
const MIN_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT_CEILING: Duration = Duration::from_secs(24 * 3600);
/// Upper bound on pages read by one listing.
const MAX_PAGES: u32 = 200;
/// Largest response body read; a larger one is an error, not a bigger buffer.
pub const MAX_BODY: usize = 1 << 20;
/// Shortest value taken as a secret from a call's headers or body: shorter ones cannot be told
/// from ordinary words of a message.
const MIN_SECRET: usize = 4;
/// Body fields whose string values are redacted from messages.
const SECRET_FIELDS: &[&str] = &["password", "token", "secret", "key"];

/// A provider account's HTTP client. Cheap to clone; clones share the token bucket.
#[derive(Clone)]
pub struct HttpClient(Arc<Inner>);

struct Inner {
    provider: ProviderKind,
    base: String,
    http: reqwest::Client,
    credentials: super::Credentials,
    /// The account's auth headers and `accept`, built once; values marked sensitive.
    headers: HeaderMap,
    limiter: DefaultDirectRateLimiter,
    /// Set when the provider said `X-RateLimit-Remaining: 0`: no calls before its reset.
    hold_until: Mutex<Option<Instant>>,
    /// `Connection::max_wait`, within [`MIN_WAIT`]..=[`MAX_WAIT_CEILING`].
    max_wait: Duration,
    timeout: Duration,
    connect_timeout: Duration,
}

/// One request. `operation` names it in metrics (`create`, `get`, `list`, …).
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    pub operation: &'static str,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: impl Into<String>, operation: &'static str) -> Self {
        Self { method, path: path.into(), query: Vec::new(), body: None, headers: Vec::new(), operation }
    }
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, "get")
    }
    pub fn query(mut self, key: &'a str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }
    /// Named `operation` in metrics instead of the method's default.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.operation = operation;
        self
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Everything but RFC 3986's unreserved letters, digits, `-`, `_` and `~` is escaped in a
/// path segment; `.` too, so that an id is never read as part of a dot segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// `value` as exactly one URL path segment: an id can neither add segments (`/`), nor escape
/// its own (`%2F`), nor go up (`..`). An empty, `.` or `..` value is refused, not sent.
pub fn segment(provider: ProviderKind, value: &str) -> Result<String> {
    if matches!(value, "" | "." | "..") {
        return Err(Error::Invalid {
            provider,
            field: None,
            message: format!("{value:?} is not an id that can go into a URL path; the request was not sent"),
        });
    }
    Ok(utf8_percent_encode(value, SEGMENT).to_string())
}

impl HttpClient {
    pub fn new(connection: &Connection) -> Result<Self> {
        let provider = connection.provider;
        if let Some(missing) = provider.descriptor().missing_parent_key(&connection.credentials) {
            return Err(Error::Auth { provider, message: format!("the credentials Secret has no {missing}") });
        }
        let base = connection.endpoint.trim_end_matches('/').to_owned();
        check_endpoint(provider, &base, connection.allow_insecure)?;
        let headers = account_headers(provider, &connection.credentials)?;
        let connect_timeout = connection.timeout.min(Duration::from_secs(5));
        let http = reqwest::Client::builder()
            .timeout(connection.timeout)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("tenantline/", env!("CARGO_PKG_VERSION")))
            // A redirect would take the auth headers to wherever it points.
            .redirect(redirect::Policy::none())
            .https_only(!connection.allow_insecure)
            .build()
            .map_err(|e| Error::Transient { provider, message: format!("HTTP client: {}", e.without_url()) })?;
        let per_second = NonZeroU32::new(connection.requests_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(connection.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(Self(Arc::new(Inner {
            provider,
            base,
            http,
            credentials: connection.credentials.clone(),
            headers,
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            hold_until: Mutex::new(None),
            max_wait: connection.max_wait.clamp(MIN_WAIT, MAX_WAIT_CEILING),
            timeout: connection.timeout,
            connect_timeout,
        })))
    }

    /// A parent-account credential (e.g. the Vobiz `authId` that appears in paths).
    pub fn credential(&self, key: &str) -> &str {
        self.0.credentials.get(key).unwrap_or_default()
    }

    /// [`segment`] for this client's provider.
    pub fn segment(&self, value: &str) -> Result<String> {
        segment(self.0.provider, value)
    }

    /// Send `call` and return the JSON body of a 2xx answer (`Null` when empty).
    pub async fn send(&self, call: Call<'_>) -> Result<Value> {
        let secrets = self.secrets(&call);
        // Reads are safe to repeat; a write whose answer was lost must go back through the
        // idempotency lookup instead, so only GETs are retried here.
        let attempts = if call.method == Method::GET { 3 } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(&call).await.map_err(|e| e.sanitized(&secrets)) {
                Err(e @ Error::Transient { .. }) if attempt < attempts => {
                    tracing::debug!(provider = %self.0.provider, operation = call.operation, error = %e, "retrying read");
                    let jitter = rand::random_range(0..100);
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt) + jitter)).await;
                }
                other => return other,
            }
        }
    }

    /// Every value that must not appear in a message about `call`: the account's credentials,
    /// the call's own header values (and the token after an auth scheme word), and the string
    /// values of body fields named like a password, token, secret or key.
    fn secrets<'c>(&'c self, call: &'c Call<'_>) -> Vec<&'c str> {
        let mut own = Vec::new();
        for (_, value) in &call.headers {
            own.push(value.as_str());
            own.extend(value.split_once(' ').map(|(_, token)| token.trim()));
        }
        if let Some(body) = &call.body {
            secret_fields(body, &mut own);
        }
        let parent = self.0.credentials.0.values().map(|v| v.expose_secret());
        parent.chain(own.into_iter().filter(|s| s.len() >= MIN_SECRET)).collect()
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Value> {
        let provider = self.0.provider;
        let headers = self.headers(call)?;
        self.pace().await?;
        let url = format!("{}{}", self.0.base, call.path);
        let mut request = self.0.http.request(call.method.clone(), &url).headers(headers);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let started = Instant::now();
        let result = request.send().await;
        let elapsed = started.elapsed().as_secs_f64();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                METRICS.provider_request(provider.as_str(), call.operation, "error", elapsed);
                return Err(self.transport_error(&call.method, &url, e));
            }
        };
        let status = response.status();
        METRICS.provider_request(provider.as_str(), call.operation, status.as_str(), elapsed);
        self.note_rate_limit(response.headers());
        let retry_after = self.retry_after(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(wait) = retry_after
        {
            // The provider asked this account's client, not one resource, to wait: every call
            // through it holds until then (a reconcile of another resource, or of this one
            // triggered by a watch event before its requeue, would otherwise come back early).
            self.hold_for(wait);
        }
        if status.is_redirection() {
            return Err(redirect_error(provider, status, response.url(), response.headers()));
        }
        let body = self.read_body(call, response).await?;
        if status.is_success() {
            return if body.iter().all(u8::is_ascii_whitespace) {
                Ok(Value::Null)
            } else {
                serde_json::from_slice(&body).map_err(|e| Error::Transient {
                    provider,
                    message: format!("unreadable {} response: {e}", call.operation),
                })
            };
        }
        Err(classify(provider, status, &String::from_utf8_lossy(&body), retry_after))
    }

    /// The account's headers with the call's own over them (Yardstik updates authenticate as
    /// the sub-account; AgentPhone targets one with `X-Sub-Account-Id`). A call header that
    /// cannot be sent fails the call: dropping it would send the request as the parent.
    fn headers(&self, call: &Call<'_>) -> Result<HeaderMap> {
        let provider = self.0.provider;
        let mut headers = self.0.headers.clone();
        for (name, value) in &call.headers {
            let invalid = |message: String| Error::Invalid { provider, field: Some((*name).to_owned()), message };
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("{name:?} is not a valid header name; the request was not sent")))?;
            let value = sensitive(value).ok_or_else(|| {
                invalid(format!(
                    "the {name} header's value has characters a header cannot carry (control characters or \
                     non-ASCII); the request was not sent"
                ))
            })?;
            headers.insert(header, value);
        }
        Ok(headers)
    }

    /// The body of `response`, read as it arrives and never beyond [`MAX_BODY`].
    async fn read_body(&self, call: &Call<'_>, mut response: reqwest::Response) -> Result<Vec<u8>> {
        let provider = self.0.provider;
        let too_large = || Error::Transient {
            provider,
            message: format!(
                "the {} response is larger than {} MiB, more than tenantline reads",
                call.operation,
                MAX_BODY >> 20
            ),
        };
        if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let url = response.url().to_string();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&call.method, &url, e))? {
            if body.len().saturating_add(chunk.len()) > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Wait for the token bucket and for any reset the provider announced, in-process for at
    /// most [`MAX_PACING_WAIT`] (and never beyond `max_wait`).
    async fn pace(&self) -> Result<()> {
        let provider = self.0.provider;
        let limit = MAX_PACING_WAIT.min(self.0.max_wait);
        let hold = *self.0.hold_until.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = hold {
            let wait = until.saturating_duration_since(Instant::now());
            if wait > limit {
                return Err(Error::RateLimited { provider, retry_after: wait.min(self.0.max_wait) });
            }
            tokio::time::sleep(wait).await;
        }
        tokio::time::timeout(limit, self.0.limiter.until_ready())
            .await
            .map_err(|_| Error::RateLimited { provider, retry_after: limit })
    }

    /// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (unix seconds): hold calls until
    /// then, or for `max_wait` at most.
    fn note_rate_limit(&self, headers: &HeaderMap) {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        if number("x-ratelimit-remaining") != Some(0) {
            return;
        }
        let Some(reset) = number("x-ratelimit-reset") else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let wait = Duration::from_secs(reset.saturating_sub(now)).min(self.0.max_wait);
        self.hold_for(wait);
    }

    /// Hold every call through this client for `wait` (already clamped to `max_wait`), or until
    /// a later hold already set ends.
    fn hold_for(&self, wait: Duration) {
        if let Some(until) = Instant::now().checked_add(wait) {
            let mut hold = self.0.hold_until.lock().unwrap_or_else(PoisonError::into_inner);
            *hold = Some(hold.map_or(until, |h| h.max(until)));
        }
    }

    /// `Retry-After` as seconds or an HTTP date, at most `max_wait`.
    fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        retry_after(headers).map(|d| d.min(self.0.max_wait))
    }

    /// Every item of an offset-paginated list (`limit`/`offset`); stops at a short page, at
    /// `total`, or when `hasMore` is false.
    pub async fn list_offset(&self, call: impl Fn() -> Call<'static>, items: &str, limit: u32) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let body = self.send(call().query("limit", limit).query("offset", page * limit)).await?;
            let batch = body.get(items).and_then(Value::as_array).cloned().unwrap_or_default();
            let n = batch.len() as u32;
            out.extend(batch);
            let total = body.get("total").and_then(Value::as_u64);
            let more = body.get("hasMore").and_then(Value::as_bool);
            if n < limit || more == Some(false) || total.is_some_and(|t| out.len() as u64 >= t) {
                break;
            }
        }
        Ok(out)
    }

    /// Every item of a page-numbered list (1-based `page` and a size parameter); stops at a
    /// short page or at `total`.
    pub async fn list_pages(
        &self,
        call: impl Fn() -> Call<'static>,
        items: &str,
        size_param: &'static str,
        size: u32,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let body = self.send(call().query("page", page).query(size_param, size)).await?;
            let batch = body.get(items).and_then(Value::as_array).cloned().unwrap_or_default();
            let n = batch.len() as u32;
            out.extend(batch);
            let total = body.get("total").or_else(|| body.pointer("/meta/total_count")).and_then(Value::as_u64);
            if n < size || total.is_some_and(|t| out.len() as u64 >= t) {
                break;
            }
        }
        Ok(out)
    }

    /// A transport failure in plain words, with the URL it tried (no query string; the
    /// credentials in its path are redacted with the rest of the message) and never a header.
    fn transport_error(&self, method: &Method, url: &str, e: reqwest::Error) -> Error {
        let url = e.url().cloned().or_else(|| Url::parse(url).ok());
        let cause = self.cause(&e, url.as_ref());
        let target = url.as_ref().map(describe).unwrap_or_default();
        Error::Transient { provider: self.0.provider, message: format!("{cause} ({method} {target})") }
    }

    /// What went wrong, found by walking the error's sources.
    fn cause(&self, e: &reqwest::Error, url: Option<&Url>) -> String {
        const CLOSED: &str = "connection closed before a response";
        let host = url.and_then(Url::host_str).unwrap_or_default();
        if e.is_timeout() {
            let limit = if e.is_connect() { self.0.connect_timeout } else { self.0.timeout };
            return format!("timed out after {}s", limit.as_secs_f64());
        }
        if e.is_body() || e.is_decode() {
            return "the response was cut off".into();
        }
        if e.is_dns() {
            return format!("DNS lookup failed for {host}");
        }
        let causes = causes(e);
        for err in &causes {
            if let Some(tls) = err.downcast_ref::<rustls::Error>() {
                return format!("TLS handshake failed ({tls})");
            }
            let kind = err.downcast_ref::<io::Error>().map(io::Error::kind);
            if kind == Some(io::ErrorKind::ConnectionRefused) {
                return "connection refused".into();
            }
            let closed = matches!(
                kind,
                Some(
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                )
            ) || err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message);
            if closed {
                // Closed while connecting to an https endpoint: the TLS handshake did not finish.
                let handshake = e.is_connect() && url.is_some_and(|u| u.scheme() == "https");
                return if handshake {
                    "TLS handshake failed (the connection was closed)".into()
                } else {
                    CLOSED.into()
                };
            }
        }
        let last = causes.last().map(|c| c.to_string()).unwrap_or_default();
        format!("the request failed ({last})")
    }
}

/// `e` and its sources, innermost last. An `io::Error`'s `source()` skips the error it wraps
/// (a rustls error, say), so that one is taken from `get_ref()`.
fn causes(e: &reqwest::Error) -> Vec<&(dyn StdError + 'static)> {
    let mut out: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next.take() {
        out.push(err);
        let wrapped = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
        next = match wrapped {
            Some(inner) => Some(inner),
            None => err.source(),
        };
        if out.len() > 16 {
            break;
        }
    }
    out
}

/// `scheme://host:port/path`: where a request went, without user info or query string.
fn describe(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}{}", url.scheme(), url.path())
}

/// A 3xx answer: named with its target's host only (the rest of the URL is the provider's).
fn redirect_error(provider: ProviderKind, status: StatusCode, from: &Url, headers: &HeaderMap) -> Error {
    let target = headers.get(LOCATION).and_then(|l| l.to_str().ok()).and_then(|l| from.join(l.trim()).ok());
    let to = target.as_ref().and_then(Url::host_str).map(|h| format!(" to {h}")).unwrap_or_default();
    Error::Transient {
        provider,
        message: format!(
            "the endpoint answered a redirect{to} (HTTP {}); tenantline does not follow redirects, so the \
             ProviderConfig endpoint must name the final URL",
            status.as_u16()
        ),
    }
}

/// An endpoint the credentials may be sent to: an absolute `https://` URL (or `http://` when
/// insecure endpoints are allowed) with no user info, query or fragment.
fn check_endpoint(provider: ProviderKind, endpoint: &str, allow_insecure: bool) -> Result<()> {
    let invalid = |message: String| Error::Invalid { provider, field: Some("endpoint".into()), message };
    let url = Url::parse(endpoint).map_err(|e| invalid(format!("the endpoint is not an absolute URL ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the endpoint has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("the endpoint carries user info; credentials belong in the credentials Secret".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the endpoint has a query string or fragment; it must be a base URL".into()));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure => Ok(()),
        "http" => Err(invalid(format!(
            "{} is plain http://; tenantline sends provider credentials only over https:// unless insecure \
             endpoints are allowed (for a local simulator)",
            describe(&url)
        ))),
        other => Err(invalid(format!("the endpoint's scheme is {other:?}; it must be https://"))),
    }
}

/// The provider's auth headers made from the parent credentials, and `accept`. A credential
/// that cannot be a header value is an error rather than a request without it.
fn account_headers(provider: ProviderKind, credentials: &super::Credentials) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for h in provider.descriptor().auth {
        let value = format!("{}{}", h.prefix, credentials.get(h.key).unwrap_or_default());
        let value = sensitive(&value).ok_or_else(|| Error::Auth {
            provider,
            message: format!("the credentials Secret's {} has characters a header cannot carry", h.key),
        })?;
        headers.insert(HeaderName::from_static(h.name), value);
    }
    Ok(headers)
}

/// The string values of `body`'s fields named like a secret, at any depth.
fn secret_fields<'v>(body: &'v Value, out: &mut Vec<&'v str>) {
    match body {
        Value::Object(fields) => {
            for (name, value) in fields {
                let name = name.to_ascii_lowercase();
                if let Some(text) = value.as_str().filter(|_| SECRET_FIELDS.iter().any(|w| name.contains(w))) {
                    out.push(text);
                }
                secret_fields(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| secret_fields(item, out)),
        _ => {}
    }
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The provider's code, message and offending field, from whichever envelope it used:
/// `{error:{code,message,details}}` (RecoverBiz, Vobiz, AgentPhone), `{api_id,error,message}`
/// (Plivo-style Vobiz), `{detail:[{loc,msg}]}` (FastAPI AgentPhone), `{message,errors:{f:[…]}}`.
pub fn error_parts(body: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let error = body.get("error");
    let code = text(error.and_then(|e| e.get("code"))).or_else(|| text(body.get("code")));
    let message = text(error.and_then(|e| e.get("message")))
        .or_else(|| text(body.get("message")))
        .or_else(|| text(error))
        .or_else(|| text(body.pointer("/detail/0/msg")))
        .or_else(|| text(body.get("detail")));
    let field = text(error.and_then(|e| e.pointer("/details/0/field")))
        .or_else(|| text(error.and_then(|e| e.pointer("/details/field"))))
        .or_else(|| {
            body.pointer("/detail/0/loc")
                .and_then(Value::as_array)
                .and_then(|loc| loc.last())
                .and_then(|l| l.as_str().map(str::to_owned))
        })
        .or_else(|| body.get("errors").and_then(Value::as_object).and_then(|o| o.keys().next().cloned()));
    (code, message, field)
}

/// Codes that mean "your credentials", as opposed to a business rule answered with 403.
fn is_credentials_code(code: Option<&str>) -> bool {
    code.is_none_or(|c| {
        matches!(
            c.to_ascii_lowercase().as_str(),
            "unauthorized" | "forbidden" | "invalid_credentials" | "token_expired" | "authentication_failed"
        )
    })
}

/// Map a non-2xx answer onto the error classes the reconciler acts on.
pub fn classify(provider: ProviderKind, status: StatusCode, body: &str, retry_after: Option<Duration>) -> Error {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let (code, message, field) = error_parts(&parsed);
    let message = message
        .map(|m| match &code {
            Some(c) if !m.contains(c.as_str()) => format!("{m} ({c})"),
            _ => m,
        })
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    match status.as_u16() {
        429 => Error::RateLimited { provider, retry_after: retry_after.unwrap_or(Duration::from_secs(1)) },
        401 => Error::Auth { provider, message },
        403 if is_credentials_code(code.as_deref()) => Error::Auth { provider, message },
        404 => Error::NotFound { provider, what: message },
        408 | 500..=599 => Error::Transient { provider, message: format!("HTTP {}: {message}", status.as_u16()) },
        _ => Error::Invalid { provider, field, message },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::provider::{Credentials, ErrorClass};

    const P: ProviderKind = ProviderKind::Vobiz;

    fn class(status: u16, body: Value) -> Error {
        classify(P, StatusCode::from_u16(status).unwrap(), &body.to_string(), None)
    }

    #[test]
    fn every_documented_envelope_yields_message_and_field() {
        let rb = json!({"error": {"code": "invalid_phone", "message": "phone format invalid", "status": 400}});
        assert_eq!(error_parts(&rb).1.as_deref(), Some("phone format invalid"));
        let vobiz = json!({"status": "error", "error": {"code": "VALIDATION_ERROR", "message": "bad", "details": {"field": "email"}}});
        assert_eq!(error_parts(&vobiz), (Some("VALIDATION_ERROR".into()), Some("bad".into()), Some("email".into())));
        let plivo = json!({"api_id": "x", "error": "not found"});
        assert_eq!(error_parts(&plivo).1.as_deref(), Some("not found"));
        let ap = json!({"error": {"message": "m", "code": "VALIDATION_ERROR", "type": "validation_error", "details": [{"field": "name", "message": "too long"}]}});
        assert_eq!(error_parts(&ap).2.as_deref(), Some("name"));
        let fastapi = json!({"detail": [{"loc": ["body", "name"], "msg": "field required", "type": "missing"}]});
        assert_eq!(error_parts(&fastapi), (None, Some("field required".into()), Some("name".into())));
        let yardstik = json!({"status": 422, "error": "Unprocessable Entity", "message": "email_address is invalid", "errors": {"email_address": ["is invalid"]}});
        assert_eq!(error_parts(&yardstik).2.as_deref(), Some("email_address"));
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(class(401, json!({"error": {"code": "unauthorized", "message": "no"}})).class(), ErrorClass::Auth);
        assert_eq!(class(403, json!({"error": {"code": "FORBIDDEN", "message": "no"}})).class(), ErrorClass::Auth);
        let limit =
            class(403, json!({"status": "error", "error": {"code": "MAX_ACCOUNTS_REACHED", "message": "limit"}}));
        assert_eq!(limit.class(), ErrorClass::Invalid, "a business 403 is a rejection, not bad credentials");
        assert_eq!(class(404, json!({})).class(), ErrorClass::NotFound);
        assert_eq!(class(409, json!({})).class(), ErrorClass::Invalid);
        assert_eq!(class(422, json!({"detail": [{"loc": ["body", "name"], "msg": "x"}]})).class(), ErrorClass::Invalid);
        assert_eq!(class(402, json!({})).class(), ErrorClass::Invalid);
        assert_eq!(class(503, json!({})).class(), ErrorClass::Transient);
        assert!(class(502, Value::Null).is_retryable());
        let limited = classify(P, StatusCode::TOO_MANY_REQUESTS, "", Some(Duration::from_secs(7)));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn rejection_messages_name_the_field() {
        let e = class(
            422,
            json!({"status": "error", "error": {"code": "EMAIL_ALREADY_EXISTS", "message": "Email is already in use", "details": {"field": "email"}}}),
        );
        let text = e.to_string();
        assert!(text.contains("email") && text.contains("EMAIL_ALREADY_EXISTS"), "{text}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
    }

    #[test]
    fn missing_credentials_fail_before_any_request() {
        let connection =
            Connection { credentials: Default::default(), ..connection(ProviderKind::Yardstik, "http://127.0.0.1:1") };
        let err = HttpClient::new(&connection).err().unwrap();
        assert_eq!(err.class(), ErrorClass::Auth);
        assert!(err.to_string().contains("apiKey"));
    }

    const PARENT_KEY: &str = "sk_live_parent_key";

    fn connection(provider: ProviderKind, endpoint: &str) -> Connection {
        let credentials = match provider {
            ProviderKind::Vobiz | ProviderKind::VobizPartner => {
                Credentials::default().with("authId", "MA_PARENT").with("authToken", PARENT_KEY)
            }
            ProviderKind::RecoverBiz => Credentials::default().with("partnerKey", PARENT_KEY),
            _ => Credentials::default().with("apiKey", PARENT_KEY),
        };
        Connection {
            provider,
            endpoint: endpoint.into(),
            credentials,
            requests_per_second: 100,
            burst: 100,
            timeout: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            allow_insecure: true,
        }
    }

    fn client(endpoint: &str) -> HttpClient {
        HttpClient::new(&connection(ProviderKind::AgentPhone, endpoint)).unwrap()
    }

    /// A local HTTP/1.1 server on plain TCP, one answer per connection: `answer` is written once
    /// the request has been read (`None`: the connection is held open without an answer).
    /// Returns its base URL and the requests it read (head and body).
    fn serve(answer: Option<Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                // The head, then as much body as it announces.
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                log.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
                match &answer {
                    Some(bytes) => {
                        let _ = stream.write_all(bytes);
                    }
                    None => std::thread::sleep(Duration::from_secs(5)),
                }
            }
        });
        (base, seen)
    }

    fn answer(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        format!("{head}\r\n{body}").into_bytes()
    }

    fn post(path: &str) -> Call<'static> {
        Call::new(Method::POST, path, "create")
    }

    #[test]
    fn a_value_is_one_path_segment() {
        let seg = |v: &str| segment(P, v).unwrap();
        assert_eq!(seg("SA_AB12cd"), "SA_AB12cd");
        assert_eq!(seg("3f0b6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"), "3f0b6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(seg("+14155550100"), "%2B14155550100");
        assert_eq!(seg("../admin"), "%2E%2E%2Fadmin");
        assert_eq!(seg("a%2Fb"), "a%252Fb");
        assert_eq!(seg("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(seg("é"), "%C3%A9");
        for bad in ["", ".", ".."] {
            let e = segment(P, bad).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Invalid, "{bad:?}");
        }
        // The URL parser does not fold an encoded id back into the path.
        let url = Url::parse(&format!("https://h/v1/numbers/{}/x", seg("../../admin"))).unwrap();
        assert_eq!(url.path(), "/v1/numbers/%2E%2E%2F%2E%2E%2Fadmin/x");
    }

    #[test]
    fn a_plain_http_endpoint_needs_insecure_endpoints_allowed() {
        let secure = Connection { allow_insecure: false, ..connection(P, "http://api.example:8080/v1") };
        let Err(Error::Invalid { field, message, .. }) = HttpClient::new(&secure) else { panic!("http accepted") };
        assert_eq!(field.as_deref(), Some("endpoint"));
        assert!(message.contains("http://api.example:8080/v1") && message.contains("https://"), "{message}");
        assert!(
            HttpClient::new(&Connection { allow_insecure: false, ..connection(P, "https://api.example/v1") }).is_ok()
        );
        assert!(HttpClient::new(&connection(P, "http://127.0.0.1:8787/vobiz/api/v1")).is_ok());
        for bad in ["https://user:pw@api.example", "https://api.example/v1?x=1", "ftp://api.example", "api.example"] {
            let e = HttpClient::new(&connection(P, bad)).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(e.class(), ErrorClass::Invalid, "{bad}");
            assert!(!e.to_string().contains("pw"), "{e}");
        }
    }

    #[test]
    fn waits_a_provider_asks_for_are_clamped() {
        let c = client("https://api.example");
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("18446744073709551615"));
        assert_eq!(c.retry_after(&h), Some(Duration::from_secs(60)));
        h.insert("retry-after", HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"));
        assert_eq!(c.retry_after(&h), Some(Duration::from_secs(60)));
        h.insert("retry-after", HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert_eq!(c.retry_after(&h), Some(Duration::ZERO));

        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("18446744073709551615"));
        c.note_rate_limit(&h);
        let hold = c.0.hold_until.lock().unwrap().expect("a hold");
        assert!(hold <= Instant::now() + Duration::from_secs(60), "the hold is clamped to max_wait");
        // A setting too large for a deadline is clamped too.
        let huge = Connection { max_wait: Duration::MAX, ..connection(P, "https://api.example") };
        HttpClient::new(&huge).unwrap().note_rate_limit(&h);
    }

    #[tokio::test]
    async fn a_hold_longer_than_the_pacing_wait_fails_fast_with_its_clamped_length() {
        let c = client("https://api.example");
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("99999999999"));
        c.note_rate_limit(&h);
        let started = Instant::now();
        let e = c.pace().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "other callers are not blocked");
        let wait = e.retry_after().unwrap();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50), "{wait:?}");
    }

    #[tokio::test]
    async fn a_429s_retry_after_holds_every_later_call_through_the_client() {
        let (base, seen) = serve(Some(answer("429 Too Many Requests", &["retry-after: 30"], "{}")));
        let c = client(&base);
        let first = c.send(post("/v1/sub-accounts")).await.unwrap_err();
        assert_eq!(first.retry_after(), Some(Duration::from_secs(30)));
        // Another call (another resource's, or this one's retried early) is not sent: it fails at
        // once with what is left of the wait.
        let started = Instant::now();
        let second = c.send(post("/v1/sub-accounts")).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "not held in-process beyond the pacing wait");
        let left = second.retry_after().unwrap();
        assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(25), "{left:?}");
        assert_eq!(seen.lock().unwrap().len(), 1, "the second call reached the provider");
    }

    #[tokio::test]
    async fn redirects_are_reported_not_followed() {
        let (elsewhere, reached) = serve(Some(answer("200 OK", &[], "{}")));
        let location = format!("location: {elsewhere}/steal?token=abc");
        let (base, _) = serve(Some(answer("302 Found", &[&location], "")));
        let e = client(&base).send(post("/v1/sub-accounts")).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Transient);
        let text = e.to_string();
        assert!(text.contains("redirect to 127.0.0.1") && text.contains("does not follow redirects"), "{text}");
        assert!(!text.contains("steal") && !text.contains("abc"), "{text}");
        assert!(reached.lock().unwrap().is_empty(), "the credentials never reach the redirect's target");
    }

    #[tokio::test]
    async fn a_call_header_that_cannot_be_sent_fails_the_call() {
        let (base, seen) = serve(Some(answer("200 OK", &[], "{}")));
        let call = post("/v1/numbers").header("X-Sub-Account-Id", "sub_1\r\nX-Other: 1");
        let e = client(&base).send(call).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Invalid);
        assert!(e.to_string().contains("X-Sub-Account-Id"), "{e}");
        assert!(seen.lock().unwrap().is_empty(), "nothing is sent as the parent account");
        let ok = client(&base).send(post("/v1/numbers").header("X-Sub-Account-Id", "sub_1")).await;
        assert_eq!(ok.unwrap(), serde_json::json!({}));
        assert!(seen.lock().unwrap()[0].to_ascii_lowercase().contains("x-sub-account-id: sub_1"));
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused() {
        let big = format!("\"{}\"", "x".repeat(MAX_BODY));
        let (base, _) = serve(Some(answer("200 OK", &[], &big)));
        let e = client(&base).send(post("/v1/x")).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        // Without a length up front, the body is cut off once past the cap.
        let chunk = "x".repeat(64 * 1024);
        let mut chunked = b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..20 {
            chunked.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let (base, _) = serve(Some(chunked));
        let e = client(&base).send(post("/v1/x")).await.unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        let fits = format!("\"{}\"", "x".repeat(1000));
        let (base, _) = serve(Some(answer("200 OK", &[], &fits)));
        assert!(client(&base).send(post("/v1/x")).await.is_ok());
    }

    #[tokio::test]
    async fn provider_messages_are_sanitized_and_redacted() {
        let body = serde_json::json!({"error": {"code": "bad", "message":
            "key sk_live_parent_key, sub sub_abc1, pw hunter22, x\n\u{1b}[31mred"}})
        .to_string();
        let (base, _) = serve(Some(answer("400 Bad Request", &["content-type: application/json"], &body)));
        let call = post("/v1/sub-accounts")
            .header("X-Sub-Account-Id", "sub_abc1")
            .json(serde_json::json!({"name": "n", "nested": {"password": "hunter22"}}));
        let text = client(&base).send(call).await.unwrap_err().to_string();
        assert_eq!(text, "AgentPhone rejected the request: key [redacted], sub [redacted], pw [redacted], x red (bad)");
        let long = serde_json::json!({"message": "é".repeat(2000)}).to_string();
        let (base, _) = serve(Some(answer("422 Unprocessable Entity", &[], &long)));
        let Error::Invalid { message, .. } = client(&base).send(post("/v1/x")).await.unwrap_err() else { panic!() };
        assert!(message.len() <= crate::provider::error::MAX_MESSAGE && message.ends_with('…'));
    }

    #[tokio::test]
    async fn transport_errors_say_what_happened_and_where() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let call = post("/v1/numbers").query("token", "q_secret");
        let text = client(&format!("http://127.0.0.1:{port}")).send(call).await.unwrap_err().to_string();
        assert_eq!(
            text,
            format!("AgentPhone is unavailable: connection refused (POST http://127.0.0.1:{port}/v1/numbers)")
        );

        let (base, _) = serve(Some(Vec::new()));
        let text = client(&base).send(post("/v1/numbers")).await.unwrap_err().to_string();
        assert!(text.contains("connection closed before a response"), "{text}");

        let (base, _) = serve(None);
        let text = client(&base).send(post("/v1/numbers")).await.unwrap_err().to_string();
        assert!(text.contains("timed out after 1s"), "{text}");

        // An https endpoint that answers in plain HTTP, without waiting for the request.
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for mut stream in plain.incoming().flatten() {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
            }
        });
        let https = Connection { allow_insecure: false, ..connection(P, &format!("https://{addr}")) };
        let call = Call::get("/accounts/MA_PARENT/sub-accounts/");
        let text = HttpClient::new(&https).unwrap().send(call).await.unwrap_err().to_string();
        assert!(text.contains("TLS handshake failed"), "{text}");
        assert!(text.contains(&format!("GET https://{addr}/accounts/[redacted]/sub-accounts/")), "{text}");
        assert!(!text.contains("MA_PARENT"), "the parent id in a path is a credential: {text}");
    }
}
