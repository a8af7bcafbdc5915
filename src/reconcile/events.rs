//! Events, published as kube's `Recorder` publishes them (events.k8s.io/v1; the same type, action,
//! reason and message on the same object within 6 minutes counted as a series on the first Event:
//! a new message is a new Event, so the latest one never shows an outdated cause), but
//! remembering each recent Event as its name, count and time instead of a whole Event object.
//! Measured at 10,000 SubAccounts, the Recorder's cache held tens of MiB (its table never
//! shrinks) and was scanned in full on every publish.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Client};
use serde_json::json;

/// How long a repeat joins the earlier Event's series (as client-go and kube's Recorder).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
const CONTROLLER: &str = "tenantline";

pub struct Events {
    client: Client,
    /// `POD_NAME`: which replica (or shard) reported it.
    instance: String,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    series: HashMap<u64, Series>,
    purged: Option<Instant>,
}

struct Series {
    name: String,
    count: i32,
    last: Instant,
}

/// What to publish about `regarding`.
pub struct Note<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: String,
}

impl Events {
    pub fn new(client: Client, instance: Option<String>) -> Self {
        Self { client, instance: instance.unwrap_or_else(|| CONTROLLER.to_owned()), recent: Mutex::default() }
    }

    pub async fn publish(&self, note: Note<'_>, regarding: ObjectReference) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let key = key(&note, &regarding);
        let now = Timestamp::now();
        let repeat = self.recent.lock().unwrap().repeat(key, Instant::now());
        if let Some((name, count)) = repeat {
            let series = EventSeries { count, last_observed_time: MicroTime(now) };
            // Not the deprecated fields (deprecatedLastTimestamp, deprecatedCount): the API server
            // refuses them on an events.k8s.io/v1 write ("needs to be unset").
            let patch = json!({"series": series});
            return api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await.map(drop);
        }
        let name = format!("{}.{:x}", regarding.name.as_deref().unwrap_or(CONTROLLER), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(namespace), ..Default::default() },
            action: Some(note.action.to_owned()),
            reason: Some(note.reason.to_owned()),
            note: Some(note.note),
            type_: Some(type_name(note.type_).to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding),
            reporting_controller: Some(CONTROLLER.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &event).await?;
        self.recent.lock().unwrap().first(key, name, Instant::now());
        Ok(())
    }
}

impl Recent {
    /// The series `key` continues, with its new count, if an Event started it recently.
    fn repeat(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        self.purge(now);
        let series = self.series.get_mut(&key).filter(|s| now.duration_since(s.last) < SERIES_WINDOW)?;
        series.count += 1;
        series.last = now;
        Some((series.name.clone(), series.count))
    }

    fn first(&mut self, key: u64, name: String, now: Instant) {
        self.series.insert(key, Series { name, count: 1, last: now });
    }

    /// At most once a minute: forget series that ended, and give their memory back.
    fn purge(&mut self, now: Instant) {
        if self.purged.is_some_and(|p| now.duration_since(p) < Duration::from_secs(60)) {
            return;
        }
        self.purged = Some(now);
        self.series.retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
        self.series.shrink_to_fit();
    }
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// Events of the same type, action, reason and message about the same object form one series.
fn key(note: &Note, regarding: &ObjectReference) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (type_name(note.type_), note.action, note.reason, &note.note).hash(&mut h);
    (&regarding.uid, &regarding.kind, &regarding.namespace, &regarding.name).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_six_minutes_continues_the_series_and_later_starts_a_new_one() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        assert_eq!(recent.repeat(1, t0), None);
        recent.first(1, "acme.1".into(), t0);
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(10)), Some(("acme.1".into(), 2)));
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(20)), Some(("acme.1".into(), 3)));
        assert_eq!(recent.repeat(2, t0 + Duration::from_secs(20)), None, "another key");
        let later = t0 + Duration::from_secs(20) + SERIES_WINDOW;
        assert_eq!(recent.repeat(1, later), None, "the series ended");
        assert!(recent.series.is_empty(), "and was forgotten");
    }
}
