//! The generic external-resource reconciler: one implementation of the finalizer, the
//! crash-safe create protocol, observe → update/drift, activation, credentials, deletion and
//! status for every managed kind. A kind supplies a thin [`Managed`] adapter; a provider supplies
//! an [`External`] client.
//!
//! A [`round`] runs these steps, each in its own file and each returning one typed result:
//! resolve (the adapter) → [`ensure_exists`] → observe → [`credentials`] → [`activation`] →
//! [`drift`] → [`publish`]. Only `publish` writes the credentials Secret and the status, once, at
//! the end of every round. Deletion is [`cleanup`].

mod activation;
mod cleanup;
mod credentials;
mod drift;
mod ensure_exists;
mod publish;
mod round;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::conditions::reason;
use super::outcome::Outcome;
use super::provider_config::{Connected, Terms};
use super::{Context, Error};
use crate::api::{KindStatus, ManagedStatus};
use crate::metrics::METRICS;
use crate::provider::{Capabilities, External, IdKind, ProviderKind};

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
/// The number picked from a search for a PhoneNumber, recorded before the purchase.
pub const NUMBER_PICKED: &str = "tenantline.io/number-picked";
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionAction {
    Delete,
    Deactivate,
    /// The provider can neither delete nor deactivate: the object stays, with a Warning Event.
    Retain,
    Orphan,
}

impl DeletionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "Delete",
            Self::Deactivate => "Deactivate",
            Self::Retain => "Retain",
            Self::Orphan => "Orphan",
        }
    }
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
    /// What the config allows the resource.
    pub terms: Terms,
}

impl<S> Resolved<S> {
    /// `desired`, to be made real by `external` through the config `c`.
    pub fn through(c: Connected, external: Arc<dyn External<S>>, desired: S) -> Self {
        Self {
            provider: c.provider,
            endpoint: c.endpoint,
            external,
            desired,
            poll_interval: c.poll_interval,
            closing: c.closing,
            terms: c.terms,
        }
    }
}

/// Why a resource's references cannot be resolved.
#[derive(Debug)]
pub enum Unresolved {
    /// Not usable (yet), for the reason this outcome reports.
    Outcome(Outcome),
    /// While deleting: the parent and its provider object are gone, so nothing is left to clean
    /// up. Says what is gone.
    ParentGone(String),
}

impl Unresolved {
    pub fn into_outcome(self) -> Outcome {
        match self {
            Self::Outcome(outcome) => outcome,
            Self::ParentGone(message) => Outcome::stalled(reason::SUB_ACCOUNT_GONE, message),
        }
    }
}

impl From<Outcome> for Unresolved {
    fn from(outcome: Outcome) -> Self {
        Self::Outcome(outcome)
    }
}

/// What a round learnt about the provider object, for status.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub provider: Option<ProviderKind>,
    pub external_id: Option<String>,
    pub active: Option<bool>,
    pub number: Option<String>,
    pub deletion: Option<DeletionAction>,
}

/// A kind managed by the generic reconciler: a thin adapter from the custom resource to the
/// provider-neutral request type `Spec`.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + HasStatus<Status: KindStatus + std::ops::DerefMut<Target = ManagedStatus>>
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
    /// What its provider ids look like (checked before an id from an annotation is used).
    const ID_KIND: IdKind;
    /// The Event reason and verb of removing its provider object (a number is released).
    const DELETED: (&'static str, &'static str) = ("Deleted", "deleted");

    /// Dereference and validate: the provider client and the desired state, or why not.
    /// `deleting` relaxes readiness requirements on references (a parent being deleted still
    /// serves its children's cleanup).
    fn resolve(
        &self,
        ctx: &Context,
        deleting: bool,
    ) -> impl Future<Output = Result<Result<Resolved<Self::Spec>, Unresolved>, Error>> + Send;

    fn deletion_policy(&self) -> DeletionPolicy;

    /// `spec.active`; kinds without activation are always active.
    fn wants_active(&self) -> bool {
        true
    }

    /// Kind-specific status fields, beside the common ones.
    fn kind_status(&self, _status: &mut Self::Status, _seen: &Seen) {}

    /// The credentials Secret this resource writes, if its kind has one.
    fn credentials_secret(&self) -> Option<String> {
        None
    }

    /// Right before a create (never for an existing object): add what only a create needs, and
    /// record what must survive the create's answer being lost; or say why nothing may be
    /// created (a limit of the configuration).
    fn before_create(
        &self,
        _ctx: &Context,
        _api: &Api<Self>,
        r: &Resolved<Self::Spec>,
    ) -> impl Future<Output = Result<Result<Self::Spec, Outcome>, Error>> + Send {
        async move { Ok(Ok(r.desired.clone())) }
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

/// The controller entry point for every managed kind. A panic (a bug, whatever input provoked it)
/// fails this object's reconcile, with backoff, instead of ending the process for every tenant.
pub async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = METRICS.reconcile_started(K::KIND);
    let _running = crate::server::HEALTH.reconcile();
    match AssertUnwindSafe(reconcile_inner(obj, ctx)).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            METRICS.reconcile_panicked(K::KIND);
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::Panicked(what))
        }
    }
}

async fn reconcile_inner<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let key = ctx.backoff_key::<K>(&obj);
    let action = if before_first_create(&*obj) {
        // Nothing to clean up yet: the round's create mark adds the finalizer in the same write.
        round::apply(&*obj, &api, &ctx).await?
    } else {
        finalizer(&api, FINALIZER, obj, |event| async {
            match event {
                Finalizer::Apply(obj) => round::apply(&*obj, &api, &ctx).await,
                Finalizer::Cleanup(obj) => cleanup::cleanup(&*obj, &api, &ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)))?
    };
    ctx.backoff.reset(&key);
    Ok(action)
}

/// Neither created nor adopted, nor about to be: no provider object can depend on the finalizer
/// yet. The first write of a round that may create or adopt (the create mark) adds it.
fn before_first_create(obj: &impl Resource) -> bool {
    obj.meta().deletion_timestamp.is_none()
        && !obj.finalizers().iter().any(|f| f == FINALIZER)
        && annotation(obj, CREATE_PENDING).is_none()
        && annotation(obj, EXTERNAL_ID).is_none()
        && !observe_only(obj)
}

/// Per-object exponential backoff, or the provider's `Retry-After`.
pub fn error_policy<K: Managed>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    METRICS.reconcile_error(K::KIND, error.metric_label());
    let (name, namespace) = (obj.name_any(), obj.namespace().unwrap_or_default());
    if error.is_gone(&K::plural(&()), &name) {
        // The object went while its reconcile ran (its finalizer was the last thing holding it):
        // nothing to retry, nothing wrong.
        tracing::debug!(kind = K::KIND, %name, %namespace, error = %error, "object gone during its reconcile");
        return Action::await_change();
    }
    let key = ctx.backoff_key::<K>(&obj);
    let delay = ctx.backoff.next(&key, error.retry_after());
    tracing::warn!(
        kind = K::KIND, %name, %namespace, error = %error, retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

fn annotation<'a>(obj: &'a impl Resource, key: &str) -> Option<&'a str> {
    obj.meta().annotations.as_ref()?.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn observe_only(obj: &impl Resource) -> bool {
    annotation(obj, MANAGEMENT_POLICY) == Some("ObserveOnly")
}

/// Merge `annotations` (`null` removes one) into the object's, as a write of this round: its
/// watch event triggers no reconcile (the round decides when to look again).
pub(super) async fn annotate<K: Managed>(
    api: &Api<K>,
    ctx: &Context,
    obj: &K,
    annotations: Value,
) -> Result<(), Error> {
    let patch = json!({"metadata": {"annotations": annotations}});
    let written = api.patch_metadata(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    ctx.own_writes.record(&written.metadata);
    Ok(())
}

/// ±10% so that many resources created together do not poll the provider in lockstep.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.9..1.1))
}
