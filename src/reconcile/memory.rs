//! What this process did itself, which no tenant can forge (annotations can be written by anyone
//! who may edit a resource; this memory and the status only by the operator): the resources it
//! sent a create for, the provider objects it made for them until their status records them, and
//! credentials a create issued until their Secret holds them. Lost with the process, by design:
//! after a restart the status is the record.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::provider::Credentials;

#[derive(Default)]
pub struct Memory {
    /// Resources (by uid) that sent a create in this process: a same-named object found after
    /// its answer was lost is theirs.
    attempted: Mutex<HashSet<String>>,
    /// uid → the provider id created for it, until its status records the id.
    made: Mutex<HashMap<String, String>>,
    /// uid → the credentials a create issued, until the Secret holds them: a failed Secret write
    /// is ours to retry, never a reason to replace the object they belong to.
    undelivered: Mutex<HashMap<String, (String, Credentials)>>,
}

impl Memory {
    pub fn attempted(&self, uid: &str) {
        self.attempted.lock().unwrap().insert(uid.to_owned());
    }

    pub fn made(&self, uid: &str, id: &str) {
        self.made.lock().unwrap().insert(uid.to_owned(), id.to_owned());
    }

    /// Whether this process made `id` for `uid`, or sent a create for `uid` whose
    /// answer may have been lost.
    pub fn vouches_for(&self, uid: &str, id: &str) -> bool {
        self.made.lock().unwrap().get(uid).is_some_and(|made| made == id)
            || self.attempted.lock().unwrap().contains(uid)
    }

    /// The resource's status now records `id`: nothing left to remember for it.
    pub fn recorded(&self, uid: &str) {
        self.made.lock().unwrap().remove(uid);
        self.attempted.lock().unwrap().remove(uid);
    }

    pub fn undelivered(&self, uid: &str, id: &str, credentials: Credentials) {
        self.undelivered.lock().unwrap().insert(uid.to_owned(), (id.to_owned(), credentials));
    }

    /// The credentials issued for `id` that no Secret holds yet.
    pub fn issued(&self, uid: &str, id: &str) -> Option<Credentials> {
        let undelivered = self.undelivered.lock().unwrap();
        undelivered.get(uid).filter(|(made, _)| made == id).map(|(_, c)| c.clone())
    }

    pub fn delivered(&self, uid: &str) {
        self.undelivered.lock().unwrap().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vouches_only_for_what_this_process_did() {
        let m = Memory::default();
        assert!(!m.vouches_for("u1", "SA_1"));
        m.made("u1", "SA_1");
        assert!(m.vouches_for("u1", "SA_1"));
        assert!(!m.vouches_for("u1", "SA_2"), "another object");
        assert!(!m.vouches_for("u2", "SA_1"), "another resource");
        m.attempted("u2");
        assert!(m.vouches_for("u2", "SA_9"), "a create whose answer was lost");
        m.recorded("u1");
        m.recorded("u2");
        assert!(!m.vouches_for("u1", "SA_1") && !m.vouches_for("u2", "SA_9"));

        m.undelivered("u1", "SA_1", Credentials::default().with("authToken", "t"));
        assert_eq!(m.issued("u1", "SA_1").unwrap().get("authToken"), Some("t"));
        assert!(m.issued("u1", "SA_2").is_none());
        m.delivered("u1");
        assert!(m.issued("u1", "SA_1").is_none());
    }
}
