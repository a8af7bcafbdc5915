//! Fault rules (`/_sim/faults`): which calls of which provider fail, and how.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use crate::routes::toggle_slash;

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
    /// Answer a redirect (301, 302, 303, 307 or 308; default 307) to `location`, an absolute
    /// URL (e.g. another simulator's `/_sim/sink/…`); nothing is applied.
    Redirect {
        #[serde(default = "temporary_redirect")]
        status: u16,
        location: String,
    },
    /// Answer exactly this body: `text` as given (garbage JSON, HTML…) or `bytes` filler bytes
    /// (streamed, never held in memory at once), or an empty one; nothing is applied.
    #[serde(rename_all = "camelCase")]
    Body {
        #[serde(default = "ok_status")]
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Default `application/json`: the provider claims JSON, whatever it sends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
    },
    /// Add `headers` to the answer. With a 2xx `status` (default 200) the real handler runs (the
    /// change is applied) and keeps its own status; otherwise the provider's error envelope with
    /// that status is answered and nothing is applied.
    Headers {
        #[serde(default = "ok_status")]
        status: u16,
        headers: BTreeMap<String, String>,
    },
    /// The provider's error envelope with `status` (4xx or 5xx) and a message chosen by the test
    /// (long, multi-line, escape sequences, an echoed secret…); nothing is applied.
    Error { status: u16, message: String },
}

fn one() -> u64 {
    1
}

fn ok_status() -> u16 {
    200
}

fn temporary_redirect() -> u16 {
    307
}

/// Headers that decide where a response ends: set by the server from the body, never by a rule.
const FRAMING_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

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

pub fn prefix_of(provider: &str) -> &'static str {
    PROVIDERS.iter().find(|(n, _)| *n == provider).map(|(_, p)| *p).unwrap_or("")
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
        match &self.fault {
            FaultKind::Status { status }
            | FaultKind::AfterApply { status: Some(status) }
            | FaultKind::Body { status, .. }
            | FaultKind::Headers { status, .. } => check_status(*status)?,
            FaultKind::Redirect { status, location } => {
                if ![301, 302, 303, 307, 308].contains(status) {
                    return Err(format!("invalid redirect status {status}; one of 301, 302, 303, 307, 308"));
                }
                let uri: Uri = location.parse().map_err(|_| format!("invalid location {location:?}"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
                    return Err(format!("location {location:?} is not an absolute http(s) URL"));
                }
            }
            FaultKind::Error { status, .. } if !(400..=599).contains(status) => {
                return Err(format!("invalid error status {status}; 400 to 599"));
            }
            _ => {}
        }
        match &self.fault {
            FaultKind::Body { bytes: Some(_), text: Some(_), .. } => {
                return Err("give `bytes` or `text`, not both".into());
            }
            FaultKind::Body { content_type: Some(t), .. } if HeaderValue::from_str(t).is_err() => {
                return Err(format!("invalid contentType {t:?}"));
            }
            FaultKind::Headers { headers, .. } => {
                for (name, value) in headers {
                    let name =
                        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
                    if FRAMING_HEADERS.contains(&name.as_str()) {
                        return Err(format!("header {name} would break the response's framing; use a body fault"));
                    }
                    HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn matches(&self, provider: &str, method: &str, route: &str) -> bool {
        self.provider == provider
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.route.as_deref().is_none_or(|r| r == route || toggle_slash(r) == route)
    }
}

fn check_status(status: u16) -> Result<(), String> {
    if StatusCode::from_u16(status).is_err() || status < 200 {
        return Err(format!("invalid status {status}"));
    }
    Ok(())
}

pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}
