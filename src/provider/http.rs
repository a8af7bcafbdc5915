//! Shared HTTP plumbing, once for every provider: base URL, auth headers, JSON, a timeout on
//! every call, the account's token bucket, `Retry-After` and `X-RateLimit-*`, pagination, and
//! the mapping of every failure onto [`Error`].

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Connection, Error, ProviderKind, Result};
use crate::metrics::METRICS;

/// Longest a call waits for the token bucket or a provider-announced reset before giving up
/// with `RateLimited` (the reconciler then requeues instead of holding a worker).
const MAX_PACING_WAIT: Duration = Duration::from_secs(20);
/// Upper bound on pages read by one listing.
const MAX_PAGES: u32 = 200;

/// A provider account's HTTP client. Cheap to clone; clones share the token bucket.
#[derive(Clone)]
pub struct HttpClient(Arc<Inner>);

struct Inner {
    provider: ProviderKind,
    base: String,
    http: reqwest::Client,
    credentials: super::Credentials,
    limiter: DefaultDirectRateLimiter,
    /// Set when the provider said `X-RateLimit-Remaining: 0`: no calls before its reset.
    hold_until: Mutex<Option<Instant>>,
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
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl HttpClient {
    pub fn new(connection: &Connection) -> Result<Self> {
        let provider = connection.provider;
        if let Some(missing) = provider.descriptor().missing_parent_key(&connection.credentials) {
            return Err(Error::Auth { provider, message: format!("the credentials Secret has no {missing}") });
        }
        let http = reqwest::Client::builder()
            .timeout(connection.timeout)
            .connect_timeout(connection.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("tenantline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Transient { provider, message: format!("HTTP client: {}", e.without_url()) })?;
        let per_second = NonZeroU32::new(connection.requests_per_second.max(1)).unwrap();
        let burst = NonZeroU32::new(connection.burst.max(1)).unwrap();
        Ok(Self(Arc::new(Inner {
            provider,
            base: connection.endpoint.trim_end_matches('/').to_owned(),
            http,
            credentials: connection.credentials.clone(),
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            hold_until: Mutex::new(None),
        })))
    }

    /// A parent-account credential (e.g. the Vobiz `authId` that appears in paths).
    pub fn credential(&self, key: &str) -> &str {
        self.0.credentials.get(key).unwrap_or_default()
    }

    /// The provider's auth headers; values marked sensitive so they never print.
    fn auth_headers(&self) -> HeaderMap {
        let auth = self.0.provider.descriptor().auth.iter();
        auth.filter_map(|h| {
            let value = format!("{}{}", h.prefix, self.credential(h.key));
            Some((HeaderName::from_static(h.name), sensitive(&value)?))
        })
        .collect()
    }

    /// Send `call` and return the JSON body of a 2xx answer (`Null` when empty).
    pub async fn send(&self, call: Call<'_>) -> Result<Value> {
        // Reads are safe to repeat; a write whose answer was lost must go back through the
        // idempotency lookup instead, so only GETs are retried here.
        let attempts = if call.method == Method::GET { 3 } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(&call).await {
                Err(e @ Error::Transient { .. }) if attempt < attempts => {
                    tracing::debug!(provider = %self.0.provider, operation = call.operation, error = %e, "retrying read");
                    let jitter = rand::random_range(0..100);
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt) + jitter)).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Value> {
        let provider = self.0.provider;
        self.pace().await?;
        let url = format!("{}{}", self.0.base, call.path);
        let mut headers = self.auth_headers();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        // A call's own headers replace the account's (Yardstik updates authenticate as the
        // sub-account; AgentPhone targets one with X-Sub-Account-Id).
        for (name, value) in &call.headers {
            if let (Ok(name), Some(value)) = (HeaderName::from_bytes(name.as_bytes()), sensitive(value)) {
                headers.insert(name, value);
            }
        }
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
                return Err(transport_error(provider, e));
            }
        };
        let status = response.status();
        METRICS.provider_request(provider.as_str(), call.operation, status.as_str(), elapsed);
        self.note_rate_limit(response.headers());
        let retry_after = retry_after(response.headers());
        let text = response.text().await.map_err(|e| transport_error(provider, e))?;
        if status.is_success() {
            return if text.trim().is_empty() {
                Ok(Value::Null)
            } else {
                serde_json::from_str(&text).map_err(|e| Error::Transient {
                    provider,
                    message: format!("unreadable {} response: {e}", call.operation),
                })
            };
        }
        Err(classify(provider, status, &text, retry_after))
    }

    /// Wait for the token bucket and for any reset the provider announced.
    async fn pace(&self) -> Result<()> {
        let provider = self.0.provider;
        let hold = *self.0.hold_until.lock().unwrap();
        if let Some(until) = hold {
            let wait = until.saturating_duration_since(Instant::now());
            if wait > MAX_PACING_WAIT {
                return Err(Error::RateLimited { provider, retry_after: wait });
            }
            tokio::time::sleep(wait).await;
        }
        tokio::time::timeout(MAX_PACING_WAIT, self.0.limiter.until_ready())
            .await
            .map_err(|_| Error::RateLimited { provider, retry_after: MAX_PACING_WAIT })
    }

    /// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (unix seconds): hold calls until then.
    fn note_rate_limit(&self, headers: &HeaderMap) {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        if number("x-ratelimit-remaining") != Some(0) {
            return;
        }
        if let Some(reset) = number("x-ratelimit-reset") {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let until = Instant::now() + Duration::from_secs(reset.saturating_sub(now));
            *self.0.hold_until.lock().unwrap() = Some(until);
        }
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
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// A transport failure, without the URL (which may carry ids) and never with headers.
fn transport_error(provider: ProviderKind, e: reqwest::Error) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else {
        "the request failed"
    };
    let e = e.without_url();
    let detail = std::error::Error::source(&e).map(|s| format!(" ({s})")).unwrap_or_default();
    Error::Transient { provider, message: format!("{what}{detail}") }
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
    use crate::provider::ErrorClass;

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
        let connection = Connection {
            provider: ProviderKind::Yardstik,
            endpoint: "http://127.0.0.1:1".into(),
            credentials: Default::default(),
            requests_per_second: 1,
            burst: 1,
            timeout: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            allow_insecure: true,
        };
        let err = HttpClient::new(&connection).err().unwrap();
        assert_eq!(err.class(), ErrorClass::Auth);
        assert!(err.to_string().contains("apiKey"));
    }
}
