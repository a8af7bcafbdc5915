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

    /// Every text in the error passed through [`sanitize`] with `secrets`: the one place where
    /// what a provider said (or what failed on the way to it) becomes fit for status and logs.
    pub(super) fn sanitized(self, secrets: &[&str]) -> Self {
        let clean = |text: String| sanitize(&text, secrets);
        match self {
            Self::Transient { provider, message } => Self::Transient { provider, message: clean(message) },
            Self::Invalid { provider, field, message } => {
                Self::Invalid { provider, field: field.map(clean), message: clean(message) }
            }
            Self::NotFound { provider, what } => Self::NotFound { provider, what: clean(what) },
            Self::Auth { provider, message } => Self::Auth { provider, message: clean(message) },
            Self::Unsupported { provider, capability } => Self::Unsupported { provider, capability: clean(capability) },
            e @ Self::RateLimited { .. } => e,
        }
    }
}

/// Longest text, in bytes, that an error takes from a provider.
pub const MAX_MESSAGE: usize = 512;
const REDACTED: &str = "[redacted]";

/// `text` made safe to show in a status condition, an Event or a log line: control characters
/// (newlines, ANSI escapes, bidirectional overrides) become single spaces, every non-empty
/// value of `secrets` is redacted, and the result is cut to [`MAX_MESSAGE`] bytes.
pub fn sanitize(text: &str, secrets: &[&str]) -> String {
    let mut out = strip_controls(text);
    // Longest first, so that a secret that contains another is redacted whole.
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    truncate(out, MAX_MESSAGE)
}

/// Characters that rearrange or hide text on a terminal although they are not `Cc` controls.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Control characters as single spaces; an ANSI escape sequence (`ESC [ … final` or
/// `ESC ] … BEL`) goes whole, leaving neither a colour code nor a gap inside a word.
fn strip_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let space = |out: &mut String| {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    // Parameters, then one final byte in `@`..=`~`.
                    for p in chars.by_ref() {
                        if ('@'..='~').contains(&p) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for p in chars.by_ref() {
                        if p == '\u{7}' || p == '\u{1b}' {
                            break;
                        }
                    }
                }
                _ => space(&mut out),
            }
        } else if c.is_control() || is_invisible_format(c) {
            space(&mut out);
        } else {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// `text` cut to at most `max` bytes on a character boundary, with an ellipsis when cut.
fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text[..end].trim_end())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_turns_controls_and_escapes_into_single_spaces() {
        assert_eq!(sanitize("bad\nrequest\r\n\tnow", &[]), "bad request now");
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m text", &[]), "red text");
        assert_eq!(sanitize("a\u{1b}]0;owned\u{7}b", &[]), "ab");
        assert_eq!(sanitize("sk_li\u{1b}[0mve", &["sk_live"]), "[redacted]", "an escape cannot hide a secret");
        assert_eq!(sanitize("x\u{0}y\u{7f}z\u{85}w", &[]), "x y z w");
        assert_eq!(sanitize("abc\u{202e}fed", &[]), "abc fed", "a bidi override would reorder what follows");
        assert_eq!(sanitize("\n\nhello\n", &[]), "hello");
        assert_eq!(sanitize("unterminated \u{1b}[31", &[]), "unterminated");
    }

    #[test]
    fn sanitize_redacts_every_known_secret() {
        let text = "key sk_live_123 rejected; did you mean sk_live_1234? token=sk_live_123";
        assert_eq!(
            sanitize(text, &["sk_live_123", "sk_live_1234", ""]),
            "key [redacted] rejected; did you mean [redacted]? token=[redacted]"
        );
        // A control character becomes a space rather than nothing, so it cannot join a secret.
        assert_eq!(sanitize("s3cr\u{0}et", &["s3cret"]), "s3cr et");
        assert_eq!(sanitize("nothing here", &[]), "nothing here");
    }

    #[test]
    fn sanitize_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(600);
        let cut = sanitize(&long, &[]);
        assert!(cut.len() <= MAX_MESSAGE, "{}", cut.len());
        assert!(cut.ends_with('…') && cut.starts_with("éé"));
        let exact = "a".repeat(MAX_MESSAGE);
        assert_eq!(sanitize(&exact, &[]), exact);
        let secret = "s".repeat(40);
        let redacted = sanitize(&format!("{}{secret}", "a".repeat(490)), &[&secret]);
        assert!(!redacted.contains("ssss"), "a secret is redacted before the text is cut: {redacted}");
    }

    #[test]
    fn every_text_of_an_error_is_sanitized() {
        let e = Error::Invalid {
            provider: ProviderKind::Vobiz,
            field: Some("na\nme".into()),
            message: "token tok_1 is \u{1b}[1mbad".into(),
        };
        let Error::Invalid { field, message, .. } = e.sanitized(&["tok_1"]) else { panic!() };
        assert_eq!(field.as_deref(), Some("na me"));
        assert_eq!(message, "token [redacted] is bad");
    }
}
