//! The operator's own writes to the objects it reconciles, until their watch delivers them. A
//! watch event that carries one shows exactly the state a round wrote and already acted on (that
//! round also chose when to look again), so it needs no reconcile of its own. Without this, each
//! round's annotation, Secret and status writes came back as as many extra reconciles, each
//! observing the provider again.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::ObjectMeta;

/// resourceVersions written by the operator and not yet delivered, by object uid.
#[derive(Default)]
pub struct OwnWrites(Mutex<HashMap<String, Vec<String>>>);

impl OwnWrites {
    /// Remember a write's result (the object or its metadata, as the API server returned it).
    pub fn record(&self, written: &ObjectMeta) {
        if let (Some(uid), Some(rv)) = (&written.uid, &written.resource_version) {
            self.0.lock().unwrap().entry(uid.clone()).or_default().push(rv.clone());
        }
    }

    /// Whether a watched object is the result of one of our own writes. A watch delivers an
    /// object's versions in order, so writes before the one delivered were passed over (a
    /// re-list) and are forgotten, and anything else (another writer) forgets them all.
    pub fn delivered(&self, seen: &ObjectMeta) -> bool {
        let (Some(uid), Some(rv)) = (&seen.uid, &seen.resource_version) else {
            return false;
        };
        let mut pending = self.0.lock().unwrap();
        let Some(rvs) = pending.get_mut(uid) else {
            return false;
        };
        let own = match rvs.iter().position(|w| w == rv) {
            Some(i) => {
                rvs.drain(..=i);
                true
            }
            None => {
                rvs.clear();
                false
            }
        };
        if rvs.is_empty() {
            pending.remove(uid);
        }
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: &str, rv: &str) -> ObjectMeta {
        ObjectMeta { uid: Some(uid.into()), resource_version: Some(rv.into()), ..Default::default() }
    }

    #[test]
    fn only_the_versions_the_operator_wrote_are_its_own() {
        let own = OwnWrites::default();
        own.record(&meta("a", "10"));
        own.record(&meta("a", "12"));
        assert!(!own.delivered(&meta("b", "10")), "another object");
        assert!(own.delivered(&meta("a", "10")));
        assert!(!own.delivered(&meta("a", "11")), "another writer's version");
        assert!(!own.delivered(&meta("a", "12")), "forgotten after another writer's version");
    }

    #[test]
    fn a_relist_that_skips_versions_forgets_them() {
        let own = OwnWrites::default();
        for rv in ["10", "11", "12"] {
            own.record(&meta("a", rv));
        }
        assert!(own.delivered(&meta("a", "11")), "10 was passed over");
        assert_eq!(own.0.lock().unwrap()["a"], ["12"], "10 forgotten");
        assert!(own.delivered(&meta("a", "12")));
        assert!(own.0.lock().unwrap().is_empty(), "nothing left once every write is delivered");
    }
}
