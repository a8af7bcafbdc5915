//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never reconcile at once.
//! Acquire and renew use optimistic concurrency (the Lease's resourceVersion); a replica that
//! cannot renew within the lease duration has lost it and must stop working.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;

const LEASE_SECONDS: i32 = 15;
const RETRY: Duration = Duration::from_secs(3);

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl LeaderElection {
    pub fn new(client: Client, namespace: &str, name: &str, identity: String) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.to_owned(), identity }
    }

    /// Wait until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_hold().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: could not read or write the lease"),
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Renew until renewal fails for the lease duration; then return (leadership lost). The lease
    /// runs out for the other replicas a lease duration after the renewTime last written, which is
    /// stamped before its request is sent: so count from there, and return by then even while a
    /// request hangs, not at the next retry after a follower may have taken over. (The first deadline
    /// counts from the call: make it right after `acquire`.)
    pub async fn hold(&self) {
        let duration = Duration::from_secs(LEASE_SECONDS as u64);
        let mut expires = Instant::now() + duration;
        loop {
            tokio::time::sleep_until((Instant::now() + RETRY).min(expires)).await;
            let attempt = Instant::now();
            if attempt >= expires {
                return;
            }
            match tokio::time::timeout_at(expires, self.try_hold()).await {
                Ok(Ok(true)) => expires = attempt + duration,
                Ok(Ok(false)) | Err(_) => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election: renewal failed"),
            }
        }
    }

    /// On a clean shutdown: give the lease up (as client-go's ReleaseOnCancel does), so a
    /// follower takes over within its retry period instead of waiting for the lease to expire.
    pub async fn release(&self) {
        let released = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(()) };
            let Some(spec) = lease.spec.as_mut().filter(|s| s.holder_identity.as_deref() == Some(&self.identity))
            else {
                return Ok(());
            };
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| ())
        };
        match released.await {
            Ok(()) => tracing::info!(lease = %self.name, "released leadership"),
            Err(e) => tracing::warn!(error = %e, "leader election: could not release the lease"),
        }
    }

    /// Take or renew the lease if it is free, expired or ours. `Ok(false)`: someone else holds it.
    async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = spec.renew_time.as_ref().is_none_or(|t| {
            let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS).into());
            t.0.checked_add(duration).is_ok_and(|end| end < now)
        });
        if !ours && !expired {
            return Ok(false);
        }
        let acquired = if ours { spec.acquire_time.map(|t| t.0).unwrap_or(now) } else { now };
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(self.spec(acquired, now, transitions));
        // The resourceVersion in `lease` makes this fail if another replica wrote in between.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a mocked API server behind a real `kube::Client` (tower-test, as
    //! src/reconcile/managed/tests/fake_api.rs does) that keeps one Lease with resourceVersions, in
    //! tokio's paused time: a retry or a lease duration takes no wall time. Lease times are wall
    //! clock (as the operator writes them), so "expired" means a renewTime put in the past.

    use std::sync::{Arc, Mutex};

    use http::{Method, Request, Response, StatusCode};
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    use kube::Client;
    use kube::api::ObjectMeta;
    use kube::client::Body;
    use serde_json::{Value, json};
    use tokio::time::{Duration, Instant, sleep, timeout};

    use super::{LEASE_SECONDS, LeaderElection, RETRY};

    const NAME: &str = "tenantline-leader";
    const LEASE: Duration = Duration::from_secs(LEASE_SECONDS as u64);

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Up,
        /// Every request answered with a 500.
        Failing,
        /// Every request left unanswered.
        Hanging,
    }

    struct State {
        lease: Option<Lease>,
        version: u64,
        /// `get`, `create`, `replace` per request answered, in order.
        requests: Vec<&'static str>,
        mode: Mode,
        /// Another replica writes the lease as `holder` between our read and our next write.
        race: Option<&'static str>,
    }

    #[derive(Clone)]
    struct FakeApi(Arc<Mutex<State>>);

    impl FakeApi {
        fn start(lease: Option<Lease>) -> (Self, Client) {
            let state = State { lease: None, version: 0, requests: Vec::new(), mode: Mode::Up, race: None };
            let api = Self(Arc::new(Mutex::new(state)));
            if let Some(lease) = lease {
                api.put(lease);
            }
            let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
            let server = api.clone();
            tokio::spawn(async move {
                let mut unanswered = Vec::new();
                while let Some((request, send)) = handle.next_request().await {
                    let (parts, body) = request.into_parts();
                    let body = body.collect_bytes().await.unwrap();
                    let body: Value =
                        if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
                    if server.0.lock().unwrap().mode == Mode::Hanging {
                        unanswered.push(send);
                        continue;
                    }
                    let (code, answer) = server.answer(&parts.method, parts.uri.path(), body);
                    let response =
                        Response::builder().status(code).body(Body::from(serde_json::to_vec(&answer).unwrap()));
                    send.send_response(response.unwrap());
                }
            });
            (api, Client::new(service, "default"))
        }

        fn lease(&self) -> Lease {
            self.0.lock().unwrap().lease.clone().expect("a lease")
        }

        fn spec(&self) -> LeaseSpec {
            self.lease().spec.expect("a lease spec")
        }

        /// Store `lease` as another replica's write would, with a new resourceVersion.
        fn put(&self, mut lease: Lease) {
            let mut s = self.0.lock().unwrap();
            s.version += 1;
            lease.metadata.resource_version = Some(s.version.to_string());
            s.lease = Some(lease);
        }

        fn requests(&self) -> Vec<&'static str> {
            self.0.lock().unwrap().requests.clone()
        }

        fn writes(&self) -> usize {
            self.requests().iter().filter(|r| **r != "get").count()
        }

        fn race(&self, holder: &'static str) {
            self.0.lock().unwrap().race = Some(holder);
        }

        fn set_mode(&self, mode: Mode) {
            self.0.lock().unwrap().mode = mode;
        }

        fn answer(&self, method: &Method, path: &str, body: Value) -> (StatusCode, Value) {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let request = match (method, segments.as_slice()) {
                (&Method::GET, [.., "leases", name]) if *name == NAME => "get",
                (&Method::POST, [.., "leases"]) => "create",
                (&Method::PUT, [.., "leases", name]) if *name == NAME => "replace",
                _ => panic!("unexpected request {method} {path}"),
            };
            let mode = self.0.lock().unwrap().mode;
            self.0.lock().unwrap().requests.push(request);
            if mode == Mode::Failing {
                return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "etcdserver: request timed out");
            }
            let race = if request == "get" { None } else { self.0.lock().unwrap().race.take() };
            if let Some(holder) = race {
                self.put(held_by(holder, 0));
            }
            let stored = self.0.lock().unwrap().lease.clone();
            match (request, stored) {
                ("get", Some(lease)) => (StatusCode::OK, serde_json::to_value(lease).unwrap()),
                ("get", None) => status(StatusCode::NOT_FOUND, "NotFound", "leases \"tenantline-leader\" not found"),
                ("create", Some(_)) => status(StatusCode::CONFLICT, "AlreadyExists", "already exists"),
                ("replace", None) => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
                // The Lease strategy allows no unconditional update: a write must say what it read.
                ("replace", _) if body.pointer("/metadata/resourceVersion").is_none() => {
                    status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "metadata.resourceVersion: must be specified")
                }
                ("replace", Some(stored))
                    if body.pointer("/metadata/resourceVersion").and_then(Value::as_str)
                        != stored.metadata.resource_version.as_deref() =>
                {
                    status(StatusCode::CONFLICT, "Conflict", "the object has been modified")
                }
                (_, _) => {
                    let lease: Lease = serde_json::from_value(body).unwrap();
                    self.put(lease);
                    let code = if request == "create" { StatusCode::CREATED } else { StatusCode::OK };
                    (code, serde_json::to_value(self.lease()).unwrap())
                }
            }
        }
    }

    fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16()});
        (code, status)
    }

    /// A lease `holder` renewed `ago` seconds ago (wall clock), acquired long before, taken over twice.
    fn held_by(holder: &str, ago: i64) -> Lease {
        let at = |secs| MicroTime(Timestamp::now() - SignedDuration::from_secs(secs));
        Lease {
            metadata: ObjectMeta {
                name: Some(NAME.to_owned()),
                namespace: Some("default".to_owned()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(LEASE_SECONDS),
                acquire_time: Some(at(ago + 600)),
                renew_time: Some(at(ago)),
                lease_transitions: Some(2),
                ..Default::default()
            }),
        }
    }

    /// `f`, which must finish within a minute (of paused time): a break that makes it wait for
    /// ever fails the test instead of hanging it.
    async fn within<F: Future>(what: &str, f: F) -> F::Output {
        timeout(Duration::from_secs(60), f).await.unwrap_or_else(|_| panic!("{what} did not finish within 60 s"))
    }

    fn replica(client: &Client, identity: &str) -> LeaderElection {
        LeaderElection::new(client.clone(), "default", NAME, identity.to_owned())
    }

    /// Seconds from `t` to now, wall clock (generous bounds: a loaded machine may stall a test).
    fn age(t: &Option<MicroTime>) -> f64 {
        Timestamp::now().duration_since(t.as_ref().expect("a time").0).as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn acquires_a_free_lease_at_once() {
        let (api, client) = FakeApi::start(None);
        let start = Instant::now();
        within("acquire", replica(&client, "a").acquire()).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(api.requests(), ["get", "create"]);
        let spec = api.spec();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(LEASE_SECONDS));
        assert_eq!(spec.lease_transitions, Some(0));
        assert!(age(&spec.renew_time) < 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn takes_an_expired_lease_at_once() {
        let (api, client) = FakeApi::start(Some(held_by("b", i64::from(LEASE_SECONDS) + 5)));
        let start = Instant::now();
        within("acquire", replica(&client, "a").acquire()).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(api.requests(), ["get", "replace"]);
        let spec = api.spec();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(3), "a takeover counts as a transition");
        assert!(age(&spec.acquire_time) < 10.0, "acquired now, not when b did");
        assert!(age(&spec.renew_time) < 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn leaves_a_lease_another_holder_renewed_alone_until_it_expires() {
        let (api, client) = FakeApi::start(Some(held_by("b", 0)));
        let a = replica(&client, "a");
        assert!(timeout(Duration::from_secs(59), a.acquire()).await.is_err(), "took b's live lease");
        assert_eq!(api.writes(), 0, "wrote b's live lease: {:?}", api.requests());
        assert_eq!(api.requests().len(), 20, "reads at 0, 3, …, 57 s");
        assert_eq!(api.spec().holder_identity.as_deref(), Some("b"));

        // b stops renewing: once its renewTime is a lease duration old, a takes over on its next try.
        api.put(held_by("b", i64::from(LEASE_SECONDS) + 1));
        let start = Instant::now();
        within("acquire", a.acquire()).await;
        assert!(start.elapsed() <= RETRY);
        assert_eq!(api.spec().holder_identity.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_between_read_and_write_wins() {
        // b's lease looks expired to a, but b renews it between a's read and a's write: a's write
        // carries the resourceVersion it read, so it conflicts instead of overwriting b's renewal.
        let (api, client) = FakeApi::start(Some(held_by("b", i64::from(LEASE_SECONDS) + 5)));
        api.race("b");
        let a = replica(&client, "a");
        assert!(timeout(Duration::from_secs(30), a.acquire()).await.is_err(), "a overwrote b's renewal");
        assert_eq!(api.spec().holder_identity.as_deref(), Some("b"));
        assert_eq!(api.requests()[..3], ["get", "replace", "get"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_that_loses_the_race_is_not_leadership() {
        // b creates the lease between a's read (404) and a's create (409).
        let (api, client) = FakeApi::start(None);
        api.race("b");
        let a = replica(&client, "a");
        assert!(timeout(Duration::from_secs(10), a.acquire()).await.is_err(), "a took b's new lease");
        assert_eq!(api.requests()[..2], ["get", "create"]);
        assert_eq!(api.spec().holder_identity.as_deref(), Some("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn renews_its_own_lease_every_retry() {
        let (api, client) = FakeApi::start(None);
        let a = replica(&client, "a");
        within("acquire", a.acquire()).await;
        let acquired = api.spec().acquire_time;
        assert!(timeout(Duration::from_secs(59), a.hold()).await.is_err(), "hold gave up a lease it renews");
        let renewals = api.requests().iter().filter(|r| **r == "replace").count();
        assert_eq!(renewals, 19, "renewals at 3, 6, …, 57 s");
        let spec = api.spec();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.acquire_time, acquired, "a renewal is not a new acquisition");
        assert_eq!(spec.lease_transitions, Some(0));
        assert!(age(&spec.renew_time) < 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn rides_out_failed_renewals_shorter_than_the_lease() {
        let (api, client) = FakeApi::start(None);
        let a = replica(&client, "a");
        within("acquire", a.acquire()).await;
        api.set_mode(Mode::Failing);
        let server = api.clone();
        tokio::spawn(async move {
            // The renewals at 3, 6 and 9 s fail; the one at 12 s, within the lease, succeeds.
            sleep(Duration::from_secs(10)).await;
            server.set_mode(Mode::Up);
        });
        assert!(timeout(Duration::from_secs(60), a.hold()).await.is_err(), "gave up on a passing failure");
        assert_eq!(api.spec().holder_identity.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn reports_lost_leadership_when_renewals_fail_for_the_lease_duration() {
        let (api, client) = FakeApi::start(None);
        let a = replica(&client, "a");
        within("acquire", a.acquire()).await;
        api.set_mode(Mode::Failing);
        let start = Instant::now();
        timeout(Duration::from_secs(60), a.hold()).await.expect("hold kept a lease it could not renew");
        // Not before the lease could have run out, and not after a follower may have taken it over.
        let held = start.elapsed();
        assert!(held > LEASE - RETRY && held <= LEASE, "hold returned after {held:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reports_lost_leadership_while_a_renewal_hangs() {
        let (api, client) = FakeApi::start(None);
        let a = replica(&client, "a");
        within("acquire", a.acquire()).await;
        api.set_mode(Mode::Hanging);
        let start = Instant::now();
        timeout(Duration::from_secs(60), a.hold()).await.expect("hold waited on a hanging renewal");
        assert!(start.elapsed() <= LEASE, "hold returned after {:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn reports_lost_leadership_when_another_replica_took_the_lease() {
        let (api, client) = FakeApi::start(None);
        let a = replica(&client, "a");
        within("acquire", a.acquire()).await;
        let server = api.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(4)).await;
            server.put(held_by("b", 0));
        });
        let start = Instant::now();
        timeout(Duration::from_secs(60), a.hold()).await.expect("hold kept a lease b holds");
        assert!(start.elapsed() <= Duration::from_secs(4) + RETRY);
        assert_eq!(api.spec().holder_identity.as_deref(), Some("b"), "a wrote over b's lease");
    }

    #[tokio::test(start_paused = true)]
    async fn release_gives_the_lease_up_for_a_follower() {
        let (api, client) = FakeApi::start(None);
        let (a, b) = (replica(&client, "a"), replica(&client, "b"));
        within("acquire", a.acquire()).await;
        within("release", a.release()).await;
        let spec = api.spec();
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert!(age(&spec.renew_time) < 10.0);

        // The released lease runs out a second later (wall clock; here: its renewTime put back a
        // second), and b takes it on its first try instead of a lease duration later.
        let mut lease = api.lease();
        let renewed = lease.spec.as_ref().and_then(|s| s.renew_time.clone()).unwrap().0;
        lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(renewed - SignedDuration::from_millis(1500)));
        api.put(lease);
        let start = Instant::now();
        within("acquire", b.acquire()).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(api.spec().holder_identity.as_deref(), Some("b"));
        assert_eq!(api.spec().lease_transitions, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn release_leaves_another_holders_lease_alone() {
        let (api, client) = FakeApi::start(Some(held_by("b", 0)));
        within("release", replica(&client, "a").release()).await;
        assert_eq!(api.requests(), ["get"]);
        assert_eq!(api.spec().holder_identity.as_deref(), Some("b"));
    }
}
