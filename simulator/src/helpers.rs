//! Helpers every provider module shares: responses and request parsing, time formatting,
//! random ids, validators, pagination, money, and the lock around one provider's state.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// One provider's state behind its own lock; its routes get a clone as their axum state.
pub struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared(Arc::new(Mutex::new(T::default())))
    }
}

impl<T> Shared<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // A handler never panics while holding the lock on purpose; recover if one did.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

pub type R = Result<Response, Response>;

pub fn json(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

pub fn ok(v: Value) -> R {
    Ok(json(StatusCode::OK, v))
}

pub fn created(v: Value) -> R {
    Ok(json(StatusCode::CREATED, v))
}

pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty())
}

/// `Authorization: <scheme> <token>` → token, scheme compared case-insensitively.
pub fn auth_scheme<'a>(h: &'a HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    let v = header(h, "authorization")?;
    let (scheme, token) = v.split_once(' ')?;
    schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)).then(|| token.trim())
}

/// Parses a JSON object body. Empty body → empty object.
pub fn body_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("request body must be a JSON object".into()),
        Err(e) => Err(format!("request body is not valid JSON: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Time

pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Milliseconds on a monotonic clock since the first call (the process's simulators share it).
pub fn uptime_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
}

pub fn now_secs() -> i64 {
    now_micros() / 1_000_000
}

fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn parts(micros: i64) -> (String, String, i64) {
    let secs = micros.div_euclid(1_000_000);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60),
        micros.rem_euclid(1_000_000),
    )
}

/// `2026-02-15T10:30:00Z`
pub fn ts_z(micros: i64) -> String {
    let (d, t, _) = parts(micros);
    format!("{d}T{t}Z")
}

/// `2025-10-22T03:57:35.997500Z`
pub fn ts_us_z(micros: i64) -> String {
    let (d, t, us) = parts(micros);
    format!("{d}T{t}.{us:06}Z")
}

/// `2026-05-06T07:12:40.437143+00:00`
pub fn ts_us_offset(micros: i64) -> String {
    let (d, t, us) = parts(micros);
    format!("{d}T{t}.{us:06}+00:00")
}

/// `2026-03-25`
pub fn date(micros: i64) -> String {
    parts(micros).0
}

// ---------------------------------------------------------------------------------------------
// Random ids

pub fn rand_hex(n: usize) -> String {
    (0..n).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap()).collect()
}

pub fn rand_upper(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n).map(|_| A[fastrand::usize(0..A.len())] as char).collect()
}

pub fn rand_alnum(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

pub fn uuid4() -> String {
    let h = rand_hex(32);
    let variant = ["8", "9", "a", "b"][fastrand::usize(0..4)];
    format!("{}-{}-4{}-{}{}-{}", &h[0..8], &h[8..12], &h[13..16], variant, &h[17..20], &h[20..32])
}

// ---------------------------------------------------------------------------------------------
// Validators

/// `^\+[1-9]\d{1,14}$`
pub fn is_e164(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && b.len() <= 16
        && b[0] == b'+'
        && (b'1'..=b'9').contains(&b[1])
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// `^#[0-9A-Fa-f]{6}$`
pub fn is_hex_color(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7 && b[0] == b'#' && b[1..].iter().all(u8::is_ascii_hexdigit)
}

/// Something `@` something `.` something, no spaces.
pub fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !s.contains(char::is_whitespace)
                && !d.contains('@')
        }
        None => false,
    }
}

/// ≥ 8 characters, at least one digit and one non-alphanumeric character.
pub fn is_strong_password(s: &str) -> bool {
    s.chars().count() >= 8 && s.chars().any(|c| c.is_ascii_digit()) && s.chars().any(|c| !c.is_alphanumeric())
}

const ISO2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL \
GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR \
LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK \
PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR \
TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// ISO 3166-1 alpha-2, upper case.
pub fn is_iso2(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) && ISO2.split(' ').any(|c| c == s)
}

/// Optional string field: absent/null → Ok(None); non-string → Err.
pub fn opt_str(m: &Map<String, Value>, k: &str) -> Result<Option<String>, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{k} must be a string")),
    }
}

/// Standard base64 (padding optional).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Parses an optional non-negative integer query parameter.
pub fn q_int(q: &std::collections::HashMap<String, String>, k: &str) -> Result<Option<i64>, String> {
    match q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| format!("{k} must be an integer")),
    }
}

/// `items[offset .. offset+limit]`
pub fn slice<T: Clone>(items: &[T], offset: usize, limit: usize) -> Vec<T> {
    items.iter().skip(offset).take(limit).cloned().collect()
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` removes a key.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Money kept as integer 1e-5 units.
pub fn parse_money(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = s.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, s));
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) || f.len() > 5 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = i.parse::<i64>().ok()? * 100_000 + format!("{f:0<5}").parse::<i64>().ok()?;
    Some(if neg { -v } else { v })
}

/// `"1300.00000"`
pub fn money_str(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:05}", v.abs() / 100_000, v.abs() % 100_000)
}

pub fn money_num(v: i64) -> Value {
    serde_json::Number::from_f64(v as f64 / 100_000.0).map(Value::Number).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        // 2026-02-15T10:30:00Z = 1771151400
        assert_eq!(ts_z(1_771_151_400_000_000), "2026-02-15T10:30:00Z");
        assert_eq!(ts_us_z(1_771_151_400_997_500), "2026-02-15T10:30:00.997500Z");
        assert_eq!(ts_us_offset(1_771_151_400_000_001), "2026-02-15T10:30:00.000001+00:00");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400_000_000), "2000-02-29");
    }

    #[test]
    fn validators() {
        assert!(is_e164("+14155551234"));
        assert!(!is_e164("+04155551234"));
        assert!(!is_e164("14155551234"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1234567890123456"));
        assert!(is_hex_color("#2563eb"));
        assert!(!is_hex_color("#2563e"));
        assert!(!is_hex_color("2563EB0"));
        assert!(is_iso2("IN") && is_iso2("US") && !is_iso2("XX") && !is_iso2("in"));
        assert!(is_strong_password("s3cret!pw"));
        assert!(!is_strong_password("password1"));
        assert!(!is_strong_password("p@ss1"));
        assert!(is_email("a@b.co") && !is_email("a@b") && !is_email("@b.co"));
    }

    #[test]
    fn money_and_merge() {
        assert_eq!(parse_money("100000.00000"), Some(10_000_000_000));
        assert_eq!(parse_money("1.5"), Some(150_000));
        assert_eq!(parse_money("1.123456"), None);
        assert_eq!(money_str(130_000_000), "1300.00000");
        let mut t = serde_json::json!({"a": {"b": 1, "c": 2}, "d": 1});
        merge_patch(&mut t, &serde_json::json!({"a": {"b": 3, "c": null}}));
        assert_eq!(t, serde_json::json!({"a": {"b": 3}, "d": 1}));
        assert_eq!(base64_decode("TUFfWDp0b2tlbg==").unwrap(), b"MA_X:token");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
