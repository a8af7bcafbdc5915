//! One error type for every provider call, classified the way the reconciler acts on it.

use std::time::Duration;

use super::ProviderKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed provider call. Messages name the provider and what it said, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 5xx, timeout, connection refused or dropped: worth retrying with backoff. The request
    /// may or may not have been applied.
    #[error("{provider} is unavailable: {message}")]
    Transient { provider: ProviderKind, message: String },

    /// 429 (or our own bucket ran dry): retry after `retry_after`.
    #[error("{provider} is rate-limiting requests; retrying in {}s", retry_after.as_secs().max(1))]
    RateLimited { provider: ProviderKind, retry_after: Duration },

    /// The provider rejected the request as invalid (validation, duplicate, limit reached).
    /// Retrying the same request cannot succeed.
    #[error("{provider} rejected the request{}: {message}", field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Invalid { provider: ProviderKind, field: Option<String>, message: String },

    /// The object does not exist at the provider.
    #[error("{provider} has no {what}")]
    NotFound { provider: ProviderKind, what: String },

    /// The provider refused our credentials (401/403).
    #[error("{provider} refused the credentials: {message}")]
    Auth { provider: ProviderKind, message: String },

    /// The provider cannot do this at all.
    #[error("{provider} does not support {capability}")]
    Unsupported { provider: ProviderKind, capability: String },
}

/// How the reconciler treats an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    RateLimited,
    Invalid,
    NotFound,
    Auth,
    Unsupported,
}

impl ErrorClass {
    /// A stable label for metrics and condition reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::RateLimited => "rate_limited",
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::Auth => "auth",
            Self::Unsupported => "unsupported",
        }
    }
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Transient { .. } => ErrorClass::Transient,
            Self::RateLimited { .. } => ErrorClass::RateLimited,
            Self::Invalid { .. } => ErrorClass::Invalid,
            Self::NotFound { .. } => ErrorClass::NotFound,
            Self::Auth { .. } => ErrorClass::Auth,
            Self::Unsupported { .. } => ErrorClass::Unsupported,
        }
    }

    /// Whether retrying the same request later can succeed without a spec change.
    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Transient | ErrorClass::RateLimited)
    }

    /// The delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn unsupported(provider: ProviderKind, capability: impl Into<String>) -> Self {
        Self::Unsupported { provider, capability: capability.into() }
    }
}

/// A read or removal where "the object does not exist" is an answer, not a failure.
pub(super) trait Absent<T> {
    /// `NotFound` becomes `Ok(None)`.
    fn absent_ok(self) -> Result<Option<T>>;
}

impl<T> Absent<T> for Result<T> {
    fn absent_ok(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
