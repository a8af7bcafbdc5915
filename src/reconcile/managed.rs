//! The generic external-resource reconciler (DESIGN §4, §5): one implementation of the finalizer,
//! the crash-safe create protocol, observe → update/drift, activation, credentials, deletion and
//! status for every managed kind. A kind supplies a thin [`Managed`] adapter; a provider supplies
//! an [`External`] client.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::conditions::{self, Outcome, Phase, reason};
use super::{Context, Error};
use crate::metrics::METRICS;
use crate::provider::{self, Capabilities, Credentials, External, Observation, ProviderKind};

pub const FINALIZER: &str = "tenantline.io/finalizer";
/// The provider's id of the object: set by the operator the moment the provider returns it, or
/// by a user beforehand to adopt an existing object.
pub const EXTERNAL_ID: &str = "tenantline.io/external-id";
/// Set (with an optimistic-locked write) before the first create is attempted, and kept: it
/// marks objects this resource created, as opposed to adopted ones.
pub const CREATE_PENDING: &str = "tenantline.io/create-pending";
/// Set once the object's credentials were written to its Secret (or the object was found from an
/// earlier life of the cluster, when they may have been): from then on they may be in use, and
/// the object is never replaced because the Secret went missing.
pub const CREDENTIALS_DELIVERED: &str = "tenantline.io/credentials-delivered";
/// Set by a person to the provider id of an object whose lost one-time credentials cannot be
/// recovered: that object (and only that one) is deleted and created anew.
pub const ALLOW_REPLACE: &str = "tenantline.io/allow-replace";
pub const MANAGEMENT_POLICY: &str = "tenantline.io/management-policy";
pub const RECONCILE_REQUESTED_AT: &str = "tenantline.io/reconcile-requested-at";

/// What the user asked deletion to do, normalised across kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete (or release) at the provider.
    Delete,
    Deactivate,
    /// Leave the provider object alone (`Orphan`, `Retain`).
    Orphan,
}

/// What deletion will actually do at this provider; shown in `status.deletion` beforehand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DeletionAction {
    Delete,
    Deactivate,
    /// The provider can neither delete nor deactivate: the object stays, with a Warning Event.
    Retain,
    Orphan,
}

/// Delete → hard delete where possible, else deactivate, else retain; Deactivate → deactivate
/// where possible, else retain; Orphan → nothing.
pub fn deletion_action(policy: DeletionPolicy, caps: &Capabilities) -> DeletionAction {
    match policy {
        DeletionPolicy::Orphan => DeletionAction::Orphan,
        DeletionPolicy::Delete if caps.delete => DeletionAction::Delete,
        DeletionPolicy::Delete | DeletionPolicy::Deactivate if caps.deactivate => DeletionAction::Deactivate,
        DeletionPolicy::Delete | DeletionPolicy::Deactivate => DeletionAction::Retain,
    }
}

/// Everything a resource needs to talk to its provider, resolved from its references.
pub struct Resolved<S> {
    pub provider: ProviderKind,
    pub endpoint: String,
    pub external: Arc<dyn External<S>>,
    pub desired: S,
    pub poll_interval: Duration,
    /// Why nothing new may be created through the config (see `Connected::closing`).
    pub closing: Option<String>,
}

/// Why a resource cannot proceed yet (`Progressing`: re-queued) or at all (`Stalled`).
pub type Blocked = Outcome;

/// What the reconciler learnt this round, for status.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub external_id: Option<String>,
    pub active: Option<bool>,
    pub number: Option<String>,
    pub deletion: Option<DeletionAction>,
}

/// A kind managed by the generic reconciler: a thin adapter from the custom resource to the
/// provider-neutral request type `Spec`.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Spec: Clone + Send + Sync + 'static;
    const KIND: &'static str;

    /// Dereference and validate: the provider client and the desired state, or why not.
    /// `deleting` relaxes readiness requirements on references (a parent being deleted still
    /// serves its children's cleanup).
    fn resolve(
        &self,
        ctx: &Context,
        deleting: bool,
    ) -> impl Future<Output = Result<Result<Resolved<Self::Spec>, Blocked>, Error>> + Send;

    fn deletion_policy(&self) -> DeletionPolicy;

    /// `spec.active`; kinds without activation are always active.
    fn wants_active(&self) -> bool {
        true
    }

    /// The current status as JSON (`Null` when there is none).
    fn status_json(&self) -> Value;

    /// Kind-specific status fields, beside the common ones.
    fn extra_status(&self, _seen: &Seen) -> Map<String, Value> {
        Map::new()
    }

    /// The credentials Secret this resource writes, if its kind has one.
    fn credentials_secret(&self) -> Option<String> {
        None
    }

    /// Right before a create (never for an existing object): add what only a create needs.
    fn before_create(
        &self,
        _ctx: &Context,
        _caps: &Capabilities,
        desired: Self::Spec,
    ) -> impl Future<Output = Result<Self::Spec, Error>> + Send {
        async move { Ok(desired) }
    }

    /// The name of another resource that already manages provider object `id`, if any: a lookup
    /// that lands on it must not silently share it.
    fn managed_elsewhere(
        &self,
        _ctx: &Context,
        _id: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send {
        async { Ok(None) }
    }

    /// Before the provider object goes: ask the API server to delete what depends on it and
    /// say how many are still there.
    fn delete_dependents(&self, _ctx: &Context) -> impl Future<Output = Result<usize, Error>> + Send {
        async { Ok(0) }
    }
}

/// The controller entry point for every managed kind.
pub async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = METRICS.reconcile_started(K::KIND);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let key = ctx.backoff_key::<K>(&obj);
    let action = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(obj) => apply(&*obj, &api, &ctx).await,
            Finalizer::Cleanup(obj) => cleanup(&*obj, &api, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.backoff.reset(&key);
    Ok(action)
}

/// Per-object exponential backoff, or the provider's `Retry-After`.
pub fn error_policy<K: Managed>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    METRICS.reconcile_error(K::KIND, error.metric_label());
    let key = ctx.backoff_key::<K>(&obj);
    let delay = ctx.backoff.next(&key, error.retry_after());
    tracing::warn!(
        kind = K::KIND, name = %obj.name_any(), namespace = ?obj.namespace(), error = %error,
        retry_in_ms = delay.as_millis() as u64, "reconcile failed"
    );
    Action::requeue(delay)
}

fn annotation<'a>(obj: &'a impl Resource, key: &str) -> Option<&'a str> {
    obj.meta().annotations.as_ref()?.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn observe_only(obj: &impl Resource) -> bool {
    annotation(obj, MANAGEMENT_POLICY) == Some("ObserveOnly")
}

fn status_conditions(status: &Value) -> Vec<Condition> {
    status.get("conditions").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default()
}

async fn apply<K: Managed>(obj: &K, api: &Api<K>, ctx: &Context) -> Result<Action, Error> {
    let status = obj.status_json();
    let generation = obj.meta().generation.unwrap_or_default();
    let requested = annotation(obj, RECONCILE_REQUESTED_AT);
    let request_is_new = requested.is_some() && status.get("reconcileRequestedAt").and_then(Value::as_str) != requested;
    if conditions::stalled_terminally(&status_conditions(&status), generation) && !request_is_new {
        // The provider refused this exact spec: asking again cannot help.
        return Ok(Action::await_change());
    }
    let resolved = match obj.resolve(ctx, false).await? {
        Ok(resolved) => resolved,
        Err(blocked) => {
            report(obj, api, ctx, &blocked, &Seen::default()).await?;
            // References are watched, but a Secret's content is not: look again now and then.
            return Ok(Action::requeue(Duration::from_secs(if blocked.phase == Phase::Stalled { 300 } else { 15 })));
        }
    };
    let mut seen = Seen::default();
    match sync(obj, api, ctx, &resolved, &mut seen).await {
        Ok(Step::Done(outcome)) => {
            report(obj, api, ctx, &outcome, &seen).await?;
            Ok(Action::requeue(jittered(resolved.poll_interval)))
        }
        Ok(Step::Again(outcome)) => {
            report(obj, api, ctx, &outcome, &seen).await?;
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(Error::Provider(e)) => {
            let outcome = provider_outcome(&e, resolved.provider);
            report(obj, api, ctx, &outcome, &seen).await?;
            match after_provider_error(&outcome) {
                Retry::Backoff => Err(Error::Provider(e)),
                Retry::After(delay) => Ok(Action::requeue(delay)),
                Retry::OnChange => Ok(Action::await_change()),
            }
        }
        Err(e) => Err(e),
    }
}

/// When to look again after a provider error.
#[derive(Debug, PartialEq, Eq)]
enum Retry {
    /// Per-object exponential backoff (or the provider's `Retry-After`).
    Backoff,
    After(Duration),
    /// Only a change to the resource can help.
    OnChange,
}

/// Bad credentials are tried again this often: their Secret is not watched, and the readiness
/// check picks a rotated one up within `SECRET_RECHECK`; one provider call per interval.
const CREDENTIALS_RETRY: Duration = Duration::from_secs(30);

/// Pure policy: whatever the outcome tells a person is in progress is retried; a stall waits for
/// a change, except bad credentials, whose Secret is not watched.
fn after_provider_error(outcome: &Outcome) -> Retry {
    match outcome.phase {
        Phase::Progressing | Phase::Ready => Retry::Backoff,
        Phase::Stalled if outcome.reason == reason::CREDENTIALS_INVALID => Retry::After(CREDENTIALS_RETRY),
        Phase::Stalled => Retry::OnChange,
    }
}

/// What to do about credentials the Secret lacks and the provider will not show again.
#[derive(Debug, PartialEq, Eq)]
enum Recovery {
    /// Have the provider issue new ones (a write).
    Reissue,
    /// Delete the object and create it again: only when nobody can have received them.
    Replace,
    /// ObserveOnly: report the object without them.
    Without,
    /// A person has to act.
    Stall,
}

/// Pure policy for lost credentials. `replaceable`: the object was created here and its
/// credentials provably never reached a Secret, or a person allowed replacing exactly it.
fn recovery(caps: &Capabilities, observe_only: bool, replaceable: bool) -> Recovery {
    if observe_only {
        Recovery::Without
    } else if caps.reissue {
        Recovery::Reissue
    } else if caps.one_time_credentials && caps.delete && replaceable {
        Recovery::Replace
    } else {
        Recovery::Stall
    }
}

/// Whether the credentials of provider object `id` may have left the operator: the record says
/// so, or the Secret `stored` was written for it, or (for objects made before the record existed
/// whose Secret is gone) the resource was Ready, which it only is once its Secret is written.
fn delivered(obj: &impl Resource, status: &Value, stored: &Credentials, id: &str) -> bool {
    annotation(obj, CREDENTIALS_DELIVERED).is_some()
        || stored.get("accountId") == Some(id)
        || status_conditions(status).iter().any(|c| c.type_ == conditions::READY && c.status == "True")
}

/// Where `sync` left the object: settled until the next poll, or to be looked at again soon.
enum Step {
    Done(Outcome),
    Again(Outcome),
}

/// Steps 4–6 of DESIGN §4: create or adopt, observe, credentials, activation, drift, Secret.
async fn sync<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    seen: &mut Seen,
) -> Result<Step, Error> {
    let caps = r.external.capabilities();
    let observe_only = observe_only(obj);
    seen.deletion =
        Some(if observe_only { DeletionAction::Orphan } else { deletion_action(obj.deletion_policy(), &caps) });
    // Only an object this resource created (or was creating) may ever be replaced: one a user
    // handed over for adoption may be in use.
    let mut created_here = annotation(obj, CREATE_PENDING).is_some();
    let mut recorded = annotation(obj, CREDENTIALS_DELIVERED).is_some();
    let id = match annotation(obj, EXTERNAL_ID) {
        Some(id) => id.to_owned(),
        None => match create_or_adopt(obj, api, ctx, r, observe_only).await? {
            Made::Created { id, delivered } => {
                created_here = true;
                recorded |= delivered;
                id
            }
            Made::Recovered(id) => {
                created_here |= !observe_only;
                id
            }
            Made::FromEarlierLife(id) => {
                recorded = true;
                id
            }
            Made::Refused(outcome) => return Ok(Step::Done(outcome)),
        },
    };
    seen.external_id = Some(id.clone());

    let Some(observed) = r.external.observe(&id, &r.desired).await? else {
        return Ok(Step::Done(Outcome::stalled(
            reason::EXTERNAL_MISSING,
            format!(
                "{} object {id} no longer exists at {}; remove the {EXTERNAL_ID} annotation to create a new one",
                K::KIND,
                r.provider
            ),
        )));
    };
    seen.number = observed.number.clone();
    seen.active = Some(observed.active);

    let stored = match obj.credentials_secret() {
        Some(secret) => ctx.secrets.read(&namespace(obj), &secret).await?,
        None => Credentials::default(),
    };
    let delivered = recorded || delivered(obj, &obj.status_json(), &stored, &id);
    let replaceable = (created_here && !delivered) || annotation(obj, ALLOW_REPLACE) == Some(id.as_str());
    let on_loss = recovery(&caps, observe_only, replaceable);
    let (credentials, complete) = match credentials(obj, api, ctx, r, &observed, stored, on_loss).await? {
        Ok(found) => found,
        Err(step) => return Ok(step),
    };

    let wants_active = obj.wants_active();
    if observed.active != wants_active && !observe_only {
        if !caps.deactivate {
            return Ok(Step::Done(Outcome::stalled(
                reason::UNSUPPORTED_BY_PROVIDER,
                format!("{} cannot deactivate or reactivate a {}; set spec.active to true", r.provider, K::KIND),
            )));
        }
        r.external.set_active(&id, wants_active).await?;
        seen.active = Some(wants_active);
        let (reason, verb) = if wants_active { ("Reactivated", "reactivated") } else { ("Deactivated", "deactivated") };
        ctx.event(obj, EventType::Normal, reason, "SetActive", format!("{id} {verb} at {}", r.provider)).await;
    }

    if !observed.drift.is_empty() {
        let fields = observed.drift.join(", ");
        if observe_only || !caps.update {
            deliver(obj, api, ctx, &credentials, complete && !recorded).await?;
            let why = if observe_only {
                "the management policy is ObserveOnly".to_owned()
            } else {
                format!("{} cannot update it in place", r.provider)
            };
            return Ok(Step::Done(Outcome::stalled(
                reason::DRIFT_DETECTED,
                format!(
                    "{fields} at {} differ from the spec and {why}; change the spec back or recreate the resource",
                    r.provider
                ),
            )));
        }
        r.external.update(&id, &r.desired, &credentials).await?;
        ctx.event(obj, EventType::Normal, "Updated", "Update", format!("updated {fields} of {id} at {}", r.provider))
            .await;
    }

    deliver(obj, api, ctx, &credentials, complete && !recorded).await?;
    Ok(Step::Done(if seen.active == Some(false) {
        Outcome::ready(reason::DEACTIVATED, format!("{id} is deactivated at {}", r.provider))
    } else if observe_only && !complete {
        Outcome::ready(
            reason::OBSERVED,
            format!(
                "{id} exists at {} and matches the spec (ObserveOnly: credentials it only issues on a write are not in the Secret)",
                r.provider
            ),
        )
    } else if observe_only {
        Outcome::ready(reason::OBSERVED, format!("{id} exists at {} and matches the spec (ObserveOnly)", r.provider))
    } else {
        Outcome::ready(reason::PROVISIONED, format!("{id} is provisioned at {}", r.provider))
    }))
}

/// The credentials for the object's Secret: what the Secret holds (`stored`), what the provider
/// shows, and what becomes of the ones it will not show again (`on_loss`, DESIGN §4c), plus
/// whether they are all there. `Err(step)` when the reconcile ends here.
async fn credentials<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    observed: &Observation,
    stored: Credentials,
    on_loss: Recovery,
) -> Result<Result<(Credentials, bool), Step>, Error> {
    let caps = r.external.capabilities();
    let id = observed.id.as_str();
    let Some(secret) = obj.credentials_secret() else { return Ok(Ok((stored, true))) };
    let mut credentials = stored;
    credentials.merge(base_credentials(r, id, observed.number.as_deref()));
    credentials.merge(observed.credentials.clone());
    let missing: Vec<&str> = caps.credential_keys.iter().copied().filter(|k| credentials.get(k).is_none()).collect();
    if missing.is_empty() {
        if r.external.credentials_accepted(id, &credentials).await? {
            return Ok(Ok((credentials, true)));
        }
        let keys = caps.credential_keys.join(", ");
        let fix = if on_loss == Recovery::Reissue {
            format!("put valid ones in the Secret, or remove {keys} from it to have new ones issued")
        } else {
            "put valid ones in the Secret".to_owned()
        };
        return Ok(Err(Step::Done(Outcome::stalled(
            reason::CREDENTIALS_REJECTED,
            format!(
                "{} rejects the {keys} of {id} in Secret {secret} (re-issued or revoked elsewhere?); {fix}",
                r.provider
            ),
        ))));
    }
    match on_loss {
        Recovery::Reissue => {
            let Some(reissued) = r.external.reissue_credentials(id, &r.desired).await? else {
                let what = format!("{id} to issue new credentials for");
                return Err(Error::Provider(provider::Error::NotFound { provider: r.provider, what }));
            };
            credentials.merge(reissued);
            let note = format!("{} issued new credentials for {id}; the Secret {secret} was updated", r.provider);
            ctx.event(obj, EventType::Normal, "CredentialsReissued", "Reissue", note).await;
            Ok(Ok((credentials, true)))
        }
        Recovery::Replace => recreate_for_lost_credentials(obj, api, ctx, r, id).await.map(Err),
        Recovery::Without => Ok(Ok((credentials, false))),
        Recovery::Stall => {
            // What is known goes into the Secret, so a person only has to add the rest.
            ctx.secrets.apply(obj, &secret, &credentials).await?;
            let keys = missing.join(", ");
            Ok(Err(Step::Done(Outcome::stalled(
                reason::CREDENTIALS_LOST,
                format!(
                    "{keys} of {id} are not in Secret {secret} and {p} cannot show them again; the account is kept: rotate them at {p} and add them to the Secret, or annotate {ALLOW_REPLACE}={id} to delete it and create a new one",
                    p = r.provider
                ),
            ))))
        }
    }
}

/// Write the credentials Secret and then, when asked (it holds every credential and no record
/// says so yet), record durably that they were delivered.
async fn deliver<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    credentials: &Credentials,
    record: bool,
) -> Result<(), Error> {
    let Some(secret) = obj.credentials_secret() else { return Ok(()) };
    ctx.secrets.apply(obj, &secret, credentials).await?;
    if record {
        annotate(api, obj, json!({CREDENTIALS_DELIVERED: k8s_openapi::jiff::Timestamp::now().to_string()})).await?;
    }
    Ok(())
}

/// How the resource came by its provider object when it had no id.
enum Made {
    /// `delivered`: its credentials are in the Secret and the record says so.
    Created { id: String, delivered: bool },
    /// Found by the idempotency key after an earlier attempt in this cluster.
    Recovered(String),
    /// Found by the idempotency key on a first attempt: made in an earlier life of the cluster
    /// (rebuilt from the same manifests), whose credentials may be in use.
    FromEarlierLife(String),
    /// Nothing may be created or adopted, and why.
    Refused(Outcome),
}

/// Step 4 (a–c): mark the create as pending, look for an object an earlier attempt (or an earlier
/// life of the cluster) made, and only then create; the new id is persisted before anything
/// else. ObserveOnly only looks.
async fn create_or_adopt<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    observe_only: bool,
) -> Result<Made, Error> {
    let caps = r.external.capabilities();
    let earlier_attempt = annotation(obj, CREATE_PENDING).is_some();
    if !observe_only && !earlier_attempt {
        // Optimistic lock: if another writer (or a stale cache) got here first this fails with a
        // conflict and the object is looked at again with fresh data.
        let patch = json!({"metadata": {
            "resourceVersion": obj.resource_version(),
            "annotations": {CREATE_PENDING: k8s_openapi::jiff::Timestamp::now().to_string()},
        }});
        api.patch_metadata(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    // A first attempt can only find what an earlier life of the cluster made, long ago; after an
    // attempt whose response may have been lost, what it made moments ago.
    let found = match (caps.lookup, earlier_attempt) {
        (false, _) => None,
        (true, true) => r.external.find(&r.desired).await?,
        (true, false) => r.external.find_made_earlier(&r.desired).await?,
    };
    if let Some(id) = found {
        if let Some(other) = obj.managed_elsewhere(ctx, &id).await? {
            return Ok(Made::Refused(Outcome::stalled(
                reason::EXTERNAL_IN_USE,
                format!(
                    "the {} object {id} that this {} would map to is already managed by {other}; change this one (e.g. its name at {}), or set the {EXTERNAL_ID} annotation to {id} to share it deliberately",
                    r.provider,
                    K::KIND,
                    r.provider
                ),
            )));
        }
        if earlier_attempt || observe_only {
            persist_external_id(api, obj, &id).await?;
        } else {
            annotate(api, obj, json!({EXTERNAL_ID: id, CREDENTIALS_DELIVERED: "earlier-life"})).await?;
        }
        let when = if earlier_attempt { "an earlier attempt" } else { "an earlier life of this resource" };
        ctx.event(
            obj,
            EventType::Normal,
            "Adopted",
            "Create",
            format!("found {id} at {} (created by {when}) and adopted it", r.provider),
        )
        .await;
        return Ok(if earlier_attempt || observe_only { Made::Recovered(id) } else { Made::FromEarlierLife(id) });
    }
    if observe_only {
        return Ok(Made::Refused(Outcome::stalled(
            reason::EXTERNAL_MISSING,
            format!(
                "ObserveOnly: no matching object found at {}; set the {EXTERNAL_ID} annotation to the object to observe",
                r.provider
            ),
        )));
    }
    if let Some(closing) = &r.closing {
        return Ok(Made::Refused(Outcome::stalled(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("{closing}: the config serves only the resources it already has, so no new {} is created", K::KIND),
        )));
    }
    let desired = obj.before_create(ctx, &caps, r.desired.clone()).await?;
    let created = r.external.create(&desired).await?;
    persist_external_id(api, obj, &created.id).await?;
    let mut delivered = false;
    if let Some(secret) = obj.credentials_secret() {
        let mut credentials = ctx.secrets.read(&namespace(obj), &secret).await?;
        credentials.merge(base_credentials(r, &created.id, created.number.as_deref()));
        credentials.merge(created.credentials);
        delivered = credentials.has_all(caps.credential_keys);
        deliver(obj, api, ctx, &credentials, delivered).await?;
    }
    ctx.event(obj, EventType::Normal, "Created", "Create", format!("created {} at {}", created.id, r.provider)).await;
    if let Some(warning) = created.warning {
        ctx.event(obj, EventType::Warning, "CreateIncomplete", "Create", warning).await;
    }
    Ok(Made::Created { id: created.id, delivered })
}

/// A credential the provider shows only once was lost before it reached the Secret. Nobody can
/// have used the object, so it is replaced: forget the id first (a crash after this line is
/// recovered by the idempotency lookup), then delete, then create afresh.
async fn recreate_for_lost_credentials<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    id: &str,
) -> Result<Step, Error> {
    annotate(api, obj, json!({EXTERNAL_ID: null, CREDENTIALS_DELIVERED: null})).await?;
    r.external.delete(id, &r.desired).await?;
    let why = if annotation(obj, ALLOW_REPLACE) == Some(id) {
        format!("as {ALLOW_REPLACE} allowed")
    } else {
        "they were never handed out".to_owned()
    };
    ctx.event(
        obj,
        EventType::Warning,
        "Recreating",
        "Recreate",
        format!(
            "the one-time credentials of {id} were lost; {why}, so it was deleted at {} and is being created again",
            r.provider
        ),
    )
    .await;
    Ok(Step::Again(Outcome::progressing(
        reason::CREATING,
        format!("replacing {id}, whose one-time credentials were lost"),
    )))
}

async fn persist_external_id<K: Managed>(api: &Api<K>, obj: &K, id: &str) -> Result<(), Error> {
    annotate(api, obj, json!({EXTERNAL_ID: id})).await
}

/// Merge `annotations` (`null` removes one) into the object's.
async fn annotate<K: Managed>(api: &Api<K>, obj: &K, annotations: Value) -> Result<(), Error> {
    let patch = json!({"metadata": {"annotations": annotations}});
    api.patch_metadata(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

/// The Secret keys every credentials Secret has, whatever the provider.
fn base_credentials<S>(r: &Resolved<S>, id: &str, number: Option<&str>) -> Credentials {
    let mut c = Credentials::default()
        .with("provider", r.provider.as_str())
        .with("endpoint", r.endpoint.clone())
        .with("accountId", id);
    if let Some(number) = number {
        c.insert("phoneNumber", number);
    }
    c
}

/// DESIGN §5: act by `deletionPolicy` and capability; keep the finalizer (by returning an error)
/// until the provider has done it.
async fn cleanup<K: Managed>(obj: &K, api: &Api<K>, ctx: &Context) -> Result<Action, Error> {
    let policy = obj.deletion_policy();
    let Some(id) = annotation(obj, EXTERNAL_ID).map(str::to_owned) else {
        return Ok(Action::await_change()); // never created at the provider
    };
    if policy == DeletionPolicy::Orphan || observe_only(obj) {
        ctx.event(obj, EventType::Normal, "Orphaned", "Delete", format!("{id} was left at the provider")).await;
        return Ok(Action::await_change());
    }
    let remaining = obj.delete_dependents(ctx).await?;
    if remaining > 0 {
        let outcome = Outcome::progressing(
            reason::DELETING,
            format!("waiting for {remaining} dependent resource(s) to be deleted first"),
        );
        report(obj, api, ctx, &outcome, &Seen::default()).await?;
        return Err(Error::WaitingForDependents(remaining));
    }
    let r = match obj.resolve(ctx, true).await? {
        Ok(r) => r,
        Err(blocked) if blocked.reason == reason::SUB_ACCOUNT_GONE => {
            ctx.event(
                obj,
                EventType::Normal,
                "Orphaned",
                "Delete",
                format!("{}; {id} was left as it is", blocked.message),
            )
            .await;
            return Ok(Action::await_change());
        }
        Err(blocked) => {
            report(obj, api, ctx, &blocked, &Seen::default()).await?;
            return Err(Error::Blocked(blocked.message));
        }
    };
    let result = match deletion_action(policy, &r.external.capabilities()) {
        DeletionAction::Delete => {
            r.external.delete(&id, &r.desired).await.map(|()| ("Deleted", format!("deleted {id} at {}", r.provider)))
        }
        DeletionAction::Deactivate => match r.external.set_active(&id, false).await {
            Err(provider::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
        .map(|()| ("Deactivated", format!("deactivated {id} at {}", r.provider))),
        DeletionAction::Retain | DeletionAction::Orphan => {
            ctx.event(
                obj,
                EventType::Warning,
                "Retained",
                "Delete",
                format!("{} can neither delete nor deactivate {id}; it was left as it is", r.provider),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    match result {
        Ok((reason, message)) => {
            ctx.event(obj, EventType::Normal, reason, "Delete", message).await;
            Ok(Action::await_change())
        }
        Err(e) => {
            let outcome = provider_outcome(&e, r.provider);
            report(obj, api, ctx, &Outcome { reason: reason::DELETING, ..outcome }, &Seen::default()).await?;
            Err(Error::Provider(e))
        }
    }
}

/// Pure policy: a provider error as the condition a person reads.
pub fn provider_outcome(e: &provider::Error, provider: ProviderKind) -> Outcome {
    use provider::ErrorClass as C;
    let message = e.to_string();
    match e.class() {
        C::Transient => Outcome::progressing(reason::PROVIDER_UNAVAILABLE, format!("{message}; retrying with backoff")),
        C::RateLimited => Outcome::progressing(reason::RATE_LIMITED, message),
        C::Invalid => Outcome::stalled(reason::PROVIDER_REJECTED, format!("{message}; fix the spec to retry")),
        C::Auth => Outcome::stalled(
            reason::CREDENTIALS_INVALID,
            format!("{message}; check the ProviderConfig's credentials Secret"),
        ),
        C::Unsupported => Outcome::stalled(reason::UNSUPPORTED_BY_PROVIDER, message),
        C::NotFound => {
            Outcome::progressing(reason::PROVIDER_UNAVAILABLE, format!("{message} at {provider}; looking again"))
        }
    }
}

/// Write status only when it changes, and an Event when the state does.
async fn report<K: Managed>(obj: &K, api: &Api<K>, ctx: &Context, outcome: &Outcome, seen: &Seen) -> Result<(), Error> {
    let current = obj.status_json();
    let old = status_conditions(&current);
    let generation = obj.meta().generation.unwrap_or_default();
    let conditions = conditions::conditions(&old, outcome, generation, k8s_openapi::jiff::Timestamp::now());
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    status.insert("conditions".into(), json!(conditions));
    if let Some(id) = &seen.external_id {
        status.insert("externalId".into(), json!(id));
    }
    if let Some(active) = seen.active {
        status.insert("state".into(), json!(if active { "Active" } else { "Deactivated" }));
    }
    if let Some(deletion) = seen.deletion {
        status.insert("deletion".into(), json!(deletion));
    }
    if let Some(token) = annotation(obj, RECONCILE_REQUESTED_AT) {
        status.insert("reconcileRequestedAt".into(), json!(token));
    }
    status.extend(obj.extra_status(seen));
    let unchanged = status.iter().all(|(k, v)| current.get(k) == Some(v));
    if !unchanged {
        let patch = json!({"status": status});
        api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    let old_ready = old.iter().find(|c| c.type_ == conditions::READY);
    let changed = old_ready.is_none_or(|c| c.reason != outcome.reason || c.message != outcome.message);
    if changed {
        let type_ = if outcome.phase == Phase::Stalled
            || matches!(outcome.reason, reason::PROVIDER_UNAVAILABLE | reason::RATE_LIMITED)
        {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.event(obj, type_, outcome.reason, "Reconcile", outcome.message.clone()).await;
    }
    Ok(())
}

fn namespace(obj: &impl Resource) -> String {
    obj.meta().namespace.clone().unwrap_or_default()
}

/// ±10% so that many resources created together do not poll the provider in lockstep.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.9..1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn lost_credentials_are_replaced_only_when_nobody_can_have_them() {
        let vobiz = Capabilities { delete: true, one_time_credentials: true, ..Default::default() };
        let yardstik = Capabilities { reissue: true, ..Default::default() };
        let partner = Capabilities::default();
        assert_eq!(recovery(&vobiz, false, true), Recovery::Replace);
        assert_eq!(recovery(&vobiz, false, false), Recovery::Stall, "delivered: never deleted");
        assert_eq!(recovery(&vobiz, true, true), Recovery::Without, "ObserveOnly never writes");
        assert_eq!(recovery(&yardstik, false, false), Recovery::Reissue);
        assert_eq!(recovery(&yardstik, true, false), Recovery::Without, "a re-issue is a write");
        assert_eq!(recovery(&partner, false, true), Recovery::Stall, "no delete: nothing to replace with");
    }

    #[test]
    fn credentials_count_as_delivered_by_the_record_the_secret_or_for_older_objects_readiness() {
        let mut obj = k8s_openapi::api::core::v1::ConfigMap::default();
        let ready = |status: &str| {
            json!({"conditions": [{"type": "Ready", "status": status, "reason": "Provisioned",
            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
        };
        let none = Credentials::default();
        assert!(!delivered(&obj, &Value::Null, &none, "SA_1"));
        assert!(!delivered(&obj, &ready("False"), &none, "SA_1"));
        assert!(delivered(&obj, &ready("True"), &none, "SA_1"), "made before the record, and Ready: Secret written");
        let written = Credentials::default().with("accountId", "SA_1");
        assert!(delivered(&obj, &Value::Null, &written, "SA_1"), "the Secret was written for this account");
        assert!(!delivered(&obj, &Value::Null, &written, "SA_2"), "a Secret of the account it replaced");
        let password_only = Credentials::default().with("password", "generated before the create");
        assert!(!delivered(&obj, &Value::Null, &password_only, "SA_1"));
        obj.metadata.annotations = Some([(CREDENTIALS_DELIVERED.to_owned(), "2026-01-01T00:00:00Z".to_owned())].into());
        assert!(delivered(&obj, &ready("False"), &none, "SA_1"));
    }

    #[test]
    fn whatever_says_it_is_in_progress_is_looked_at_again() {
        let p = ProviderKind::AgentPhone;
        let missing = provider::Error::NotFound { provider: p, what: "sub-account".into() };
        let outcome = provider_outcome(&missing, p);
        assert!(outcome.message.contains("looking again"));
        assert_eq!(after_provider_error(&outcome), Retry::Backoff);
        for e in [
            provider::Error::Transient { provider: p, message: "503".into() },
            provider::Error::RateLimited { provider: p, retry_after: Duration::from_secs(1) },
        ] {
            assert_eq!(after_provider_error(&provider_outcome(&e, p)), Retry::Backoff);
        }
        let auth = provider::Error::Auth { provider: p, message: "401".into() };
        assert_eq!(after_provider_error(&provider_outcome(&auth, p)), Retry::After(CREDENTIALS_RETRY));
        let invalid = provider::Error::Invalid { provider: p, field: None, message: "limit".into() };
        assert_eq!(after_provider_error(&provider_outcome(&invalid, p)), Retry::OnChange);
    }

    #[test]
    fn provider_errors_map_to_the_documented_reasons() {
        let p = ProviderKind::Vobiz;
        let invalid =
            provider::Error::Invalid { provider: p, field: Some("email".into()), message: "duplicate email".into() };
        let o = provider_outcome(&invalid, p);
        assert_eq!((o.phase, o.reason), (Phase::Stalled, reason::PROVIDER_REJECTED));
        assert!(o.message.contains("email"), "{}", o.message);
        let limited = provider::Error::RateLimited { provider: p, retry_after: Duration::from_secs(3) };
        assert_eq!(provider_outcome(&limited, p).reason, reason::RATE_LIMITED);
        let down = provider::Error::Transient { provider: p, message: "503".into() };
        assert_eq!(provider_outcome(&down, p).phase, Phase::Progressing);
        let auth = provider::Error::Auth { provider: p, message: "401".into() };
        assert_eq!(provider_outcome(&auth, p).reason, reason::CREDENTIALS_INVALID);
    }
}
