//! Fault rules (`/_sim/faults`): which calls of which provider fail, and how.

use axum::http::StatusCode;
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
        if let FaultKind::Status { status } | FaultKind::AfterApply { status: Some(status) } = self.fault
            && (StatusCode::from_u16(status).is_err() || status < 200)
        {
            return Err(format!("invalid status {status}"));
        }
        Ok(())
    }

    pub fn matches(&self, provider: &str, method: &str, route: &str) -> bool {
        self.provider == provider
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.route.as_deref().is_none_or(|r| r == route || toggle_slash(r) == route)
    }
}
