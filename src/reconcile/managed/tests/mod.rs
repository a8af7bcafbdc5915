//! The reconciler's pure policies, and its rounds run against a mocked API server and an
//! in-memory provider.

use super::*;
use crate::provider::Credentials;
use crate::reconcile::conditions;
use crate::reconcile::outcome::interval;

fn caps(delete: bool, deactivate: bool) -> Capabilities {
    Capabilities { delete, deactivate, ..Default::default() }
}

#[test]
fn deletion_falls_back_from_delete_to_deactivate_to_retain() {
    use DeletionAction as A;
    use DeletionPolicy as P;
    assert_eq!(deletion_action(P::Delete, &caps(true, true)), A::Delete);
    assert_eq!(deletion_action(P::Delete, &caps(false, true)), A::Deactivate);
    assert_eq!(deletion_action(P::Delete, &caps(false, false)), A::Retain);
    assert_eq!(deletion_action(P::Deactivate, &caps(true, false)), A::Retain);
    assert_eq!(deletion_action(P::Deactivate, &caps(true, true)), A::Deactivate);
    assert_eq!(deletion_action(P::Orphan, &caps(true, true)), A::Orphan);
}

#[test]
fn credentials_count_as_delivered_by_the_record_the_secret_or_for_older_objects_readiness() {
    use crate::api::{SubAccount, SubAccountStatus};
    let with_ready = |status: &str| {
        let mut sa: SubAccount = serde_json::from_value(json!({
            "apiVersion": "tenantline.io/v1alpha1", "kind": "SubAccount", "metadata": {"name": "a"},
            "spec": {"providerConfigRef": {"name": "p"}, "displayName": "A"}}))
        .unwrap();
        if !status.is_empty() {
            sa.status = Some(serde_json::from_value::<SubAccountStatus>(json!({"conditions": [{"type": "Ready",
                "status": status, "reason": "Provisioned", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})).unwrap());
        }
        sa
    };
    let delivered = credentials::delivered::<SubAccount>;
    let none = Credentials::default();
    assert!(!delivered(&with_ready(""), &none, "SA_1"));
    assert!(!delivered(&with_ready("False"), &none, "SA_1"));
    assert!(delivered(&with_ready("True"), &none, "SA_1"), "made before the record, and Ready: Secret written");
    let written = Credentials::default().with("accountId", "SA_1");
    assert!(delivered(&with_ready(""), &written, "SA_1"), "the Secret was written for this account");
    assert!(!delivered(&with_ready(""), &written, "SA_2"), "a Secret of the account it replaced");
    let password_only = Credentials::default().with("password", "generated before the create");
    assert!(!delivered(&with_ready(""), &password_only, "SA_1"));
    let mut recorded = with_ready("False");
    recorded.metadata.annotations =
        Some([(CREDENTIALS_DELIVERED.to_owned(), "2026-01-01T00:00:00Z".to_owned())].into());
    assert!(delivered(&recorded, &none, "SA_1"));
}

// ---- Rounds of the generic reconciler against a mocked API server and an in-memory provider.

mod fake_api;
mod fake_provider;

use std::cell::RefCell;

use kube::CustomResource;
use kube::runtime::reflector;
use serde::Deserialize;

use crate::api::{AdoptionPolicy, SubAccountStatus};
use crate::reconcile::provider_config::ProviderCache;
use crate::reconcile::{Context, Settings};
use fake_api::FakeApi;
use fake_provider::{Failure, FakeProvider, TOKEN};

/// A kind that exists only here, so that the rounds exercise the generic reconciler alone.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize)]
#[kube(group = "test.tenantline.io", version = "v1", kind = "Fake", namespaced, status = "SubAccountStatus")]
#[kube(schema = "disabled")]
pub struct FakeSpec {
    active: bool,
    deletion: String,
}

thread_local! {
    /// The provider of the test running on this thread (each test has its own runtime thread).
    static PROVIDER: RefCell<Option<Arc<FakeProvider>>> = const { RefCell::new(None) };
    /// The adoption policy of its config: `Any`, as a ProviderConfig's, unless a test says.
    static ADOPTION: std::cell::Cell<AdoptionPolicy> = const { std::cell::Cell::new(AdoptionPolicy::Any) };
}

impl Managed for Fake {
    type Spec = String;
    const KIND: &'static str = "Fake";
    const ID_KIND: crate::provider::IdKind = crate::provider::IdKind::SubAccount;

    async fn resolve(&self, _ctx: &Context, _deleting: bool) -> Result<Result<Resolved<String>, Unresolved>, Error> {
        let external = PROVIDER.with(|p| p.borrow().clone()).expect("a provider for this test");
        Ok(Ok(Resolved {
            provider: ProviderKind::Vobiz,
            endpoint: "https://fake.example".to_owned(),
            external,
            desired: self.name_any(),
            poll_interval: Duration::from_secs(600),
            closing: None,
            terms: Terms {
                name: "ProviderConfig fake".to_owned(),
                key: "ProviderConfig/ns/fake".to_owned(),
                secret: ("ns".to_owned(), "parent".to_owned()),
                adoption: ADOPTION.with(|a| a.get()),
                max_sub_accounts: None,
                max_opening_balance: None,
            },
        }))
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        match self.spec.deletion.as_str() {
            "Delete" => DeletionPolicy::Delete,
            "Deactivate" => DeletionPolicy::Deactivate,
            _ => DeletionPolicy::Orphan,
        }
    }

    fn wants_active(&self) -> bool {
        self.spec.active
    }

    fn credentials_secret(&self) -> Option<String> {
        Some(SECRET.to_owned())
    }
}

const SECRET: &str = "fake-credentials";

/// Vobiz-like: credentials shown once, objects can be deleted and found again.
fn one_time() -> Capabilities {
    Capabilities {
        update: true,
        deactivate: true,
        delete: true,
        lookup: true,
        one_time_credentials: true,
        ..Default::default()
    }
}

/// Yardstik-like: credentials can be issued anew; nothing is ever deleted.
fn reissuable() -> Capabilities {
    Capabilities { lookup: true, reissue: true, ..Default::default() }
}

struct World {
    api: FakeApi,
    client: kube::Client,
    provider: Arc<FakeProvider>,
}

impl World {
    fn new(caps: Capabilities) -> Self {
        Self::with(caps, json!({}))
    }

    /// A resource with these annotations, at a provider with these capabilities.
    fn with(caps: Capabilities, annotations: Value) -> Self {
        let object = json!({
            "apiVersion": "test.tenantline.io/v1", "kind": "Fake",
            "metadata": {"name": "fake", "namespace": "ns", "uid": "uid-1", "generation": 1,
                "resourceVersion": "0", "annotations": annotations},
            "spec": {"active": true, "deletion": "Delete"},
        });
        let (api, client) = FakeApi::start(object);
        let provider = Arc::new(FakeProvider::new(caps));
        PROVIDER.with(|p| *p.borrow_mut() = Some(provider.clone()));
        Self { api, client, provider }
    }

    /// A fresh operator (as after a restart), with empty caches.
    fn context(&self) -> Context {
        let settings = Settings {
            watch_namespace: None,
            label_selector: None,
            concurrency: 1,
            provider_timeout: Duration::from_secs(1),
            owner_id: "test".to_owned(),
            max_backoff: Duration::from_secs(1),
            allow_insecure_endpoints: false,
        };
        let providers =
            ProviderCache::new(reflector::store().0, reflector::store().0, reflector::store().0, reflector::store().0);
        let phone_numbers = reflector::store().0;
        Context::new(self.client.clone(), settings, reflector::store().0, providers, Default::default(), phone_numbers)
    }

    fn fake(&self) -> Fake {
        serde_json::from_value(self.api.object()).unwrap()
    }

    /// One round on the resource as the API server has it now.
    async fn round(&self) -> Result<Action, Error> {
        self.round_in(&self.context()).await
    }

    /// One round by the operator process `ctx` (rounds in one context share its memory).
    async fn round_in(&self, ctx: &Context) -> Result<Action, Error> {
        let api = Api::namespaced(self.client.clone(), "ns");
        round::apply(&self.fake(), &api, ctx).await
    }

    async fn delete(&self) -> Result<Action, Error> {
        let api = Api::namespaced(self.client.clone(), "ns");
        cleanup::cleanup(&self.fake(), &api, &self.context()).await
    }

    /// Rounds until one leaves the resource to its poll interval (or a person), failed rounds
    /// included: a crash or an error is followed by another round, as the controller does.
    async fn settle(&self) -> ReadyCondition {
        for _ in 0..8 {
            if let Ok(action) = self.round().await
                && action != Action::requeue(interval::NEXT_ROUND)
            {
                return self.ready();
            }
        }
        panic!("not settled after 8 rounds: {:?}", self.ready());
    }

    /// The Ready condition's status and reason.
    fn ready(&self) -> ReadyCondition {
        let fake = self.fake();
        let c = fake.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::READY).cloned());
        c.map(|c| (c.status, c.reason)).unwrap_or_default()
    }

    fn external_id(&self) -> Option<String> {
        self.fake().status.and_then(|s| s.managed.external_id)
    }

    /// Wait for the Event (they are published off the reconcile's path).
    async fn event(&self, reason: &str) -> bool {
        for _ in 0..100 {
            if self.api.events().iter().any(|e| e == reason) {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    }

    /// Exactly one object at the provider, and the Secret holds its id and current token.
    fn assert_one_object_with_its_credentials_in_the_secret(&self) {
        let objects = self.provider.objects();
        assert_eq!(objects.len(), 1, "one object at the provider: {objects:?}");
        let (id, object) = objects.into_iter().next().unwrap();
        let secret = self.api.secret(SECRET);
        assert_eq!(secret.get("accountId"), Some(&id), "{secret:?}");
        assert_eq!(secret.get(TOKEN), Some(&object.token));
        assert_eq!(self.external_id(), Some(id.clone()));
        assert_eq!(self.fake().annotations().get(EXTERNAL_ID), Some(&id));
        assert!(self.fake().annotations().contains_key(CREDENTIALS_DELIVERED));
    }
}

type ReadyCondition = (String, String);

fn ready(reason: &str) -> ReadyCondition {
    ("True".to_owned(), reason.to_owned())
}

fn not_ready(reason: &str) -> ReadyCondition {
    ("False".to_owned(), reason.to_owned())
}

#[tokio::test]
async fn a_create_round_marks_creates_and_persists_the_id_then_writes_the_secret_the_record_and_status() {
    let w = World::new(one_time());
    let action = w.round().await.unwrap();
    // The mark, then the id (the create happened between them), then the Secret, the record
    // that it holds every credential, and only then the status.
    assert_eq!(w.api.writes(), ["mark", "annotate", "secret", "annotate", "status"]);
    assert_eq!(w.fake().finalizers(), [FINALIZER], "the mark adds the finalizer");
    assert_eq!(w.provider.calls("create"), 1);
    // The create's response, with every credential, stands for the first observation.
    assert_eq!(w.ready(), ready(reason::PROVISIONED));
    assert_eq!(w.provider.calls("observe"), 0);
    assert_ne!(action, Action::requeue(interval::NEXT_ROUND), "left to its poll interval");
    // One Event tells of the create: its result.
    assert!(w.event(reason::PROVISIONED).await);
    assert_eq!(w.api.events(), [reason::PROVISIONED]);
    w.assert_one_object_with_its_credentials_in_the_secret();
    // The next round (the poll) observes it and changes nothing.
    assert_eq!(w.settle().await, ready(reason::PROVISIONED));
    assert_eq!(w.provider.calls("observe"), 1);
    assert_eq!(w.api.writes().len(), 5, "{:?}", w.api.writes());
    assert_eq!(w.provider.calls("create"), 1);
}

/// A create whose response lacks a credential the provider issues, or whose follow-up step
/// failed, is not taken for an observation: the next round looks at the object.
#[tokio::test]
async fn a_create_that_does_not_say_everything_is_observed_next_round() {
    let w = World::new(one_time());
    w.provider.fail_next("create", Failure::Incomplete);
    let action = w.round().await.unwrap();
    assert_eq!(action, Action::requeue(interval::NEXT_ROUND));
    assert_eq!(w.ready(), not_ready(reason::CREATING));
    assert_eq!(w.settle().await, ready(reason::PROVISIONED));
    assert_eq!(w.provider.calls("observe"), 1);
    assert_eq!(w.provider.calls("create"), 1);
}

/// A crash (or a failed write) at each point of the create protocol: whatever the point, the
/// resource ends Ready with exactly one object at the provider and that object's credentials in
/// its Secret. Where the one-time credentials were lost, the object nobody could have used is
/// replaced; where they can be issued again, they are.
#[tokio::test]
async fn every_crash_point_of_the_create_protocol_ends_with_one_object_and_its_credentials() {
    enum Crash {
        /// The nth write of this kind fails.
        Api(&'static str, usize),
        Provider(&'static str, Failure),
    }
    use Crash::{Api, Provider};
    let (lost, down) = (Failure::LostResponse, Failure::Down);
    let cases = [
        ("before the mark", one_time(), Api("mark", 1), 1, None),
        ("after the mark, before the create", one_time(), Provider("create", down), 2, None),
        ("create response lost", one_time(), Provider("create", lost), 2, Some("Recreating")),
        ("create response lost, reissuable", reissuable(), Provider("create", lost), 1, Some("CredentialsReissued")),
        ("after the create, before the id is persisted", one_time(), Api("annotate", 1), 2, Some("Recreating")),
        ("after the id, before the Secret", one_time(), Api("secret", 1), 2, Some("Recreating")),
        ("after the id, before the Secret, reissuable", reissuable(), Api("secret", 1), 1, Some("CredentialsReissued")),
        ("after the Secret, before the record", one_time(), Api("annotate", 2), 1, None),
        ("after the record, before the status", one_time(), Api("status", 1), 1, None),
    ];
    for (name, caps, crash, creates, event) in cases {
        let w = World::new(caps);
        match crash {
            Api(write, nth) => w.api.fail(write, nth),
            Provider(op, failure) => w.provider.fail_next(op, failure),
        }
        w.round().await.expect_err(name);
        assert_eq!(w.settle().await, ready(reason::PROVISIONED), "{name}");
        w.assert_one_object_with_its_credentials_in_the_secret();
        assert_eq!(w.provider.calls("create"), creates, "{name}: creates");
        if let Some(event) = event {
            assert!(w.event(event).await, "{name}: no {event} Event in {:?}", w.api.events());
        }
    }
}

/// Credentials missing from the Secret of an object that exists: re-issued where the provider
/// can; otherwise the object is replaced only when nobody can have received them (or a person
/// allowed it), and else the resource stalls with the object kept.
#[tokio::test]
async fn lost_credentials_are_reissued_replaced_or_stall_by_who_may_have_them() {
    let cases = [
        ("delivered, reissuable", reissuable(), true, false, ready(reason::PROVISIONED), 0, "CredentialsReissued"),
        ("delivered, one-time", one_time(), true, false, not_ready(reason::CREDENTIALS_LOST), 0, ""),
        ("delivered, one-time, replace allowed", one_time(), true, true, ready(reason::PROVISIONED), 1, "Recreating"),
        (
            "never delivered, created here, one-time",
            one_time(),
            false,
            false,
            ready(reason::PROVISIONED),
            1,
            "Recreating",
        ),
    ];
    for (name, caps, delivered, allowed, expected, creates, event) in cases {
        let w = World::new(caps);
        let id = w.provider.insert("fake");
        let mut annotations = json!({EXTERNAL_ID: id, CREATE_PENDING: "2026-01-01T00:00:00Z"});
        if delivered {
            annotations[CREDENTIALS_DELIVERED] = json!("2026-01-01T00:00:00Z");
        }
        if allowed {
            annotations[ALLOW_REPLACE] = json!(id);
        }
        w.api.update_object(|o| o["metadata"]["annotations"] = annotations);
        assert_eq!(w.settle().await, expected, "{name}");
        assert_eq!(w.provider.calls("create"), creates, "{name}: creates");
        if expected.0 == "True" {
            w.assert_one_object_with_its_credentials_in_the_secret();
        } else {
            assert!(w.provider.objects().contains_key(&id), "{name}: the object is kept");
            assert_eq!(w.provider.calls("delete"), 0, "{name}");
            let secret = w.api.secret(SECRET);
            assert_eq!(secret.get("accountId"), Some(&id), "{name}: what is known is in the Secret");
            assert_eq!(secret.get(TOKEN), None);
        }
        if !event.is_empty() {
            assert!(w.event(event).await, "{name}: no {event} Event in {:?}", w.api.events());
        }
    }
}

#[tokio::test]
async fn drift_is_updated_where_the_provider_can_and_reported_where_it_cannot() {
    let fixed = Capabilities { update: true, ..one_time() };
    let reported = Capabilities { update: false, ..one_time() };
    for (caps, expected, updates) in
        [(fixed, ready(reason::PROVISIONED), 1), (reported, not_ready(reason::DRIFT_DETECTED), 0)]
    {
        let w = World::new(caps);
        w.settle().await;
        let id = w.external_id().unwrap();
        w.provider.update_object(&id, |o| o.drifted = true);
        assert_eq!(w.settle().await, expected);
        assert_eq!(w.provider.calls("update"), updates);
        assert_eq!(w.provider.objects()[&id].drifted, updates == 0);
        // The credentials stay in the Secret either way.
        w.assert_one_object_with_its_credentials_in_the_secret();
    }
}

#[tokio::test]
async fn spec_active_false_deactivates_where_the_provider_can_and_stalls_where_it_cannot() {
    let can = one_time();
    let cannot = Capabilities { deactivate: false, ..one_time() };
    for (caps, expected, active_at_provider) in
        [(can, ready(reason::DEACTIVATED), false), (cannot, not_ready(reason::UNSUPPORTED_BY_PROVIDER), true)]
    {
        let w = World::new(caps);
        w.settle().await;
        w.api.update_object(|o| o["spec"]["active"] = json!(false));
        assert_eq!(w.settle().await, expected);
        let id = w.external_id().unwrap();
        assert_eq!(w.provider.objects()[&id].active, active_at_provider);
        let state = w.fake().status.unwrap().managed.state;
        assert_eq!(state.as_deref(), Some(if active_at_provider { "Active" } else { "Deactivated" }));
    }
    // And back.
    let w = World::new(can);
    w.api.update_object(|o| o["spec"]["active"] = json!(false));
    w.settle().await;
    w.api.update_object(|o| o["spec"]["active"] = json!(true));
    assert_eq!(w.settle().await, ready(reason::PROVISIONED));
    assert!(w.event("Reactivated").await);
}

/// Each deletion policy against what the provider can do: the call made at the provider, the
/// Event, and `status.deletion` announcing it beforehand.
#[tokio::test]
async fn deletion_acts_by_policy_and_capability() {
    let (both, deactivate_only, neither) = (
        one_time(),
        Capabilities { delete: false, ..one_time() },
        Capabilities { delete: false, deactivate: false, ..one_time() },
    );
    let cases = [
        ("Delete", both, "Delete", "Deleted"),
        ("Delete", deactivate_only, "Deactivate", "Deactivated"),
        ("Delete", neither, "Retain", "Retained"),
        ("Deactivate", both, "Deactivate", "Deactivated"),
        ("Deactivate", neither, "Retain", "Retained"),
        ("Orphan", both, "Orphan", "Orphaned"),
    ];
    for (policy, caps, announced, event) in cases {
        let w = World::new(caps);
        w.api.update_object(|o| o["spec"]["deletion"] = json!(policy));
        w.settle().await;
        let id = w.external_id().unwrap();
        assert_eq!(w.fake().status.unwrap().managed.deletion.as_deref(), Some(announced), "{policy}");
        assert_eq!(w.delete().await.unwrap(), Action::await_change(), "{policy}");
        let objects = w.provider.objects();
        let (deleted, deactivated) = (!objects.contains_key(&id), objects.get(&id).is_some_and(|o| !o.active));
        assert_eq!((deleted, deactivated), (announced == "Delete", announced == "Deactivate"), "{policy} {announced}");
        assert!(w.event(event).await, "{policy}: no {event} Event in {:?}", w.api.events());
    }
}

#[tokio::test]
async fn a_failed_delete_keeps_the_finalizer_and_reports_deleting() {
    let w = World::new(one_time());
    w.settle().await;
    w.provider.fail_next("delete", Failure::Down);
    assert!(matches!(w.delete().await, Err(Error::Provider(_))));
    assert_eq!(w.ready(), not_ready(reason::DELETING));
    assert_eq!(w.delete().await.unwrap(), Action::await_change());
    assert!(w.provider.objects().is_empty());
}

/// An object the idempotency lookup finds on a first attempt was made in an earlier life of the
/// cluster: adopted, and since its credentials may be in use there, never replaced for them.
#[tokio::test]
async fn an_object_from_an_earlier_life_is_adopted_and_never_replaced() {
    let w = World::new(one_time());
    let id = w.provider.insert("fake");
    assert_eq!(w.settle().await, not_ready(reason::CREDENTIALS_LOST));
    assert_eq!((w.provider.calls("create"), w.provider.calls("delete")), (0, 0));
    assert_eq!(w.external_id(), Some(id));
    assert!(w.event("Adopted").await);
}

/// ObserveOnly looks and never writes to the provider: an object found is reported, none found
/// is never created.
#[tokio::test]
async fn observe_only_never_writes_to_the_provider() {
    let w = World::with(reissuable(), json!({MANAGEMENT_POLICY: "ObserveOnly"}));
    assert_eq!(w.settle().await, not_ready(reason::EXTERNAL_MISSING));
    let w = World::with(reissuable(), json!({MANAGEMENT_POLICY: "ObserveOnly"}));
    w.provider.insert("fake");
    assert_eq!(w.settle().await, ready(reason::OBSERVED));
    w.api.update_object(|o| o["spec"]["active"] = json!(false));
    assert_eq!(w.settle().await, ready(reason::OBSERVED));
    for write in ["create", "reissue", "set_active", "update", "delete"] {
        assert_eq!(w.provider.calls(write), 0, "{write}");
    }
    assert_eq!(w.fake().status.unwrap().managed.deletion.as_deref(), Some("Orphan"));
}

/// The create mark is written with an optimistic lock: a round working from a stale view of the
/// resource (another writer got there first) fails before anything is created.
#[tokio::test]
async fn a_stale_view_cannot_mark_a_create_and_creates_nothing() {
    let w = World::new(one_time());
    let stale = w.fake();
    w.api.update_object(|o| o["metadata"]["resourceVersion"] = json!("7"));
    let api = Api::namespaced(w.client.clone(), "ns");
    assert!(matches!(round::apply(&stale, &api, &w.context()).await, Err(Error::Kube(_))));
    assert_eq!(w.provider.calls("create"), 0);
    assert!(w.api.writes().is_empty());
}

/// Through a config that takes over only what its resources made (a shared
/// ClusterProviderConfig), an object a tenant names in the annotation, which nothing shows to be
/// the resource's, is neither read into its Secret, written, nor deleted with it.
#[tokio::test]
async fn an_object_named_by_a_tenant_that_is_not_the_resources_is_never_touched() {
    ADOPTION.with(|a| a.set(AdoptionPolicy::OwnedOnly));
    let w = World::new(reissuable());
    let theirs = w.provider.insert("another tenant's");
    w.api.update_object(|o| o["metadata"]["annotations"] = json!({EXTERNAL_ID: theirs, CREATE_PENDING: "forged"}));
    assert_eq!(w.settle().await, not_ready(reason::EXTERNAL_NOT_OWNED));
    for write in ["create", "reissue", "set_active", "update", "delete"] {
        assert_eq!(w.provider.calls(write), 0, "{write}");
    }
    assert!(w.api.secret(SECRET).is_empty(), "nothing of it reaches the Secret");
    assert_eq!(w.external_id(), None, "nor the status");
    w.api.update_object(|o| o["metadata"]["finalizers"] = json!([FINALIZER]));
    assert_eq!(w.delete().await.unwrap(), Action::await_change());
    assert!(w.provider.objects().contains_key(&theirs), "deleting the resource leaves it alone");
    assert!(w.event("Orphaned").await);

    // What it created itself is its own, and so recorded.
    let w = World::new(reissuable());
    assert_eq!(w.settle().await, ready(reason::PROVISIONED));
    w.assert_one_object_with_its_credentials_in_the_secret();
    ADOPTION.with(|a| a.set(AdoptionPolicy::Any));
}

/// The Secret write after a create fails (the operator's own write): the process keeps the
/// credentials the create issued and writes them again, with backoff; the object is never
/// replaced for it. (After a restart the memory is gone: see the crash-point test.)
#[tokio::test]
async fn a_failed_secret_write_of_ours_never_replaces_the_object() {
    let w = World::new(one_time());
    let ctx = w.context();
    w.api.fail("secret", 1);
    assert!(w.round_in(&ctx).await.is_err());
    for _ in 0..4 {
        if w.round_in(&ctx).await.is_ok() && w.ready() == ready(reason::PROVISIONED) {
            break;
        }
    }
    assert_eq!(w.ready(), ready(reason::PROVISIONED));
    assert_eq!((w.provider.calls("create"), w.provider.calls("delete")), (1, 0));
    w.assert_one_object_with_its_credentials_in_the_secret();
}
