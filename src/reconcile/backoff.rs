//! Per-object exponential backoff for failed reconciles, capped and jittered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, failures: Mutex::default() }
    }

    /// The delay before the next attempt at `key`: the provider's `retry_after` when it named
    /// one, else base·2ⁿ (±10%) up to the cap.
    pub fn next(&self, key: &str, retry_after: Option<Duration>) -> Duration {
        let mut failures = self.failures.lock().unwrap();
        let n = failures.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        if let Some(delay) = retry_after {
            return delay;
        }
        let exp = self.base.saturating_mul(1u32 << (*n - 1).min(16));
        exp.min(self.cap).mul_f64(rand::random_range(0.9..1.1))
    }

    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        let secs: Vec<f64> = (0..8).map(|_| b.next("k", None).as_secs_f64()).collect();
        for (got, want) in secs.iter().zip([2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]) {
            assert!((got / want - 1.0).abs() <= 0.1 + 1e-9, "{got} vs {want}");
        }
        b.reset("k");
        assert!(b.next("k", None) <= Duration::from_millis(2200));
    }

    #[test]
    fn retry_after_wins() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(b.next("k", Some(Duration::from_secs(7))), Duration::from_secs(7));
    }
}
