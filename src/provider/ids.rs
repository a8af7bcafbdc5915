//! What a provider's ids look like, so that an id from a resource (an adopted external id, a
//! status field, a parent's id) is checked before it goes into a request. Small matchers rather
//! than regular expressions; none accepts `/`, `%`, `.`, whitespace or a control character, and
//! none accepts more than [`MAX_ID`] bytes.

/// Longest id any provider is expected to issue.
pub const MAX_ID: usize = 128;

/// The kinds of provider objects tenantline addresses by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    SubAccount,
    Member,
    Number,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubAccount => "sub-account",
            Self::Member => "team member",
            Self::Number => "phone number",
        }
    }
}

/// What a valid id of one kind of object looks like at one provider.
pub struct IdShape {
    pub kind: IdKind,
    /// The shape in words, for messages: `SA_ followed by letters and digits`.
    pub shape: &'static str,
    pub matches: fn(&str) -> bool,
}

fn alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `prefix` followed by letters and digits.
pub fn prefixed(id: &str, prefix: &str) -> bool {
    id.len() <= MAX_ID && id.strip_prefix(prefix).is_some_and(alnum)
}

/// Between `min` and `max` letters and digits.
pub fn letters_digits(id: &str, min: usize, max: usize) -> bool {
    (min..=max.min(MAX_ID)).contains(&id.len()) && alnum(id)
}

/// Letters, digits, `_` and `-`, starting with a letter or digit: the shape of an id whose
/// format the provider does not document.
pub fn token(id: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    id.len() <= MAX_ID && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) && id.bytes().all(word)
}

/// `prefix` followed by a [`token`].
pub fn prefixed_token(id: &str, prefix: &str) -> bool {
    id.len() <= MAX_ID && id.strip_prefix(prefix).is_some_and(token)
}

/// A UUID in its 8-4-4-4-12 hex form, either case.
pub fn uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// E.164: `+`, a non-zero digit, then at most 14 more digits.
pub fn e164(id: &str) -> bool {
    let Some(digits) = id.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `id` shortened and quoted for a message: it may be anything a resource holds.
pub fn quoted(id: &str) -> String {
    const SHOWN: usize = 64;
    let mut end = id.len().min(SHOWN);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    let tail = if end < id.len() { "…" } else { "" };
    format!("{:?}{tail}", &id[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_accept_their_shape_only() {
        assert!(prefixed("SA_ABC123", "SA_") && !prefixed("SA_", "SA_") && !prefixed("SA_a-b", "SA_"));
        assert!(letters_digits(&"a".repeat(32), 20, 40) && !letters_digits("short", 20, 40));
        assert!(token("sub_4f2a-9") && !token("-x") && !token("") && !token("a.b") && !token(&"a".repeat(129)));
        assert!(prefixed_token("num_xyz789", "num_") && !prefixed_token("num_", "num_"));
        assert!(uuid("3f0b6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b") && uuid("3F0B6A5E-1C2D-4E5F-8A9B-0C1D2E3F4A5B"));
        assert!(!uuid("3f0b6a5e-1c2d-4e5f-8a9b-0c1d2e3f4a5") && !uuid("3f0b6a5e/1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(e164("+14155550100") && e164("+919876543210") && !e164("+0123") && !e164("14155550100"));
        assert!(!e164("+1") && !e164(&format!("+1{}", "2".repeat(15))) && !e164("+1 415"));
    }

    #[test]
    fn quoted_ids_are_escaped_and_short() {
        assert_eq!(quoted("../x"), "\"../x\"");
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        let long = quoted(&"é".repeat(100));
        assert!(long.ends_with('…') && long.len() < 80, "{long}");
    }
}
