//! The controllers: one generic external-resource reconciler ([`managed`]) with a thin adapter
//! per kind, plus the ProviderConfig readiness controller.

mod backoff;
pub mod conditions;
mod events;
mod in_use;
pub mod managed;
mod memory;
pub mod outcome;
mod own_writes;
mod parent;
mod phone_number;
mod provider_config;
mod report;
mod sub_account;
mod team_member;
mod tenancy;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer;
use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{PhoneNumber, SubAccount, TeamMember};
use crate::provider;
use backoff::Backoff;
pub use own_writes::OwnWrites;
pub use provider_config::ProviderCache;

/// How the controllers run (from the CLI).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch only this namespace; all when `None`.
    pub watch_namespace: Option<String>,
    /// Manage only resources matching this label selector (sharding).
    pub label_selector: Option<String>,
    /// Reconciles running at once, per kind.
    pub concurrency: u16,
    /// Per-call timeout for provider requests.
    pub provider_timeout: Duration,
    /// The owner id of configurations that name none (`--owner-id`).
    pub owner_id: String,
    /// The cap of the per-object exponential backoff after a failed reconcile, and of any wait a
    /// provider asks for.
    pub max_backoff: Duration,
    /// Let ProviderConfig endpoints use plain `http://` (development: the simulator).
    pub allow_insecure_endpoints: bool,
}

/// One error type for the controllers; `metric_label` is stable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Provider(#[from] provider::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    #[error("waiting for {0} dependent resource(s) to be deleted")]
    WaitingForDependents(usize),
    #[error("{0}")]
    Blocked(String),
    /// A reconcile panicked: a bug, contained to the object it was reconciling.
    #[error("internal error while reconciling (reported as a bug): {0}")]
    Panicked(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Provider(e) => e.class().as_str(),
            Self::Finalizer(e) => match &**e {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
            Self::WaitingForDependents(_) => "waiting_for_dependents",
            Self::Blocked(_) => "blocked",
            Self::Panicked(_) => "panicked",
        }
    }

    /// Whether this is the API server saying that object `name` of resource `plural` itself is
    /// gone (a finalizer removal or status write racing its deletion), not some other object.
    pub fn is_gone(&self, plural: &str, name: &str) -> bool {
        let gone = |e: &kube::Error| {
            matches!(e, kube::Error::Api(s) if s.code == 404
                && s.details.as_ref().is_some_and(|d| d.kind == plural && d.name == name))
        };
        match self {
            Self::Kube(e) => gone(e),
            Self::Finalizer(e) => match &**e {
                finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => gone(e),
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.is_gone(plural, name),
                _ => false,
            },
            _ => false,
        }
    }

    /// The provider's requested delay, through the finalizer wrapper.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Provider(e) => e.retry_after(),
            Self::Finalizer(e) => match &**e {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.retry_after(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    events: Arc<events::Events>,
    pub providers: ProviderCache,
    /// The credentials Secrets, read from the operator's watch of them.
    pub secrets: crate::secrets::Secrets,
    /// Written by the reconciles, read by the watches (their own writes trigger nothing).
    own_writes: Arc<OwnWrites>,
    backoff: Backoff,
    /// What this process did itself (see [`memory`]).
    memory: memory::Memory,
    /// Every PhoneNumber, from their controller's watch: which numbers are claimed.
    phone_numbers: crate::listed::Listed<PhoneNumber>,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        secrets: reflector::Store<Secret>,
        providers: ProviderCache,
        own_writes: Arc<OwnWrites>,
        phone_numbers: reflector::Store<PhoneNumber>,
    ) -> Self {
        Self {
            memory: memory::Memory::default(),
            phone_numbers: crate::listed::Listed::new(phone_numbers),
            events: Arc::new(events::Events::new(client.clone(), std::env::var("POD_NAME").ok())),
            secrets: crate::secrets::Secrets::new(client.clone(), secrets, own_writes.clone()),
            own_writes,
            client,
            providers,
            backoff: Backoff::new(outcome::interval::FIRST_BACKOFF, settings.max_backoff),
            settings,
        }
    }

    /// Publish an Event on `obj`, off the reconcile's path: failing to record an Event never
    /// fails a reconcile, and waiting for it never slows one down.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let (events, reference, reason, action) =
            (self.events.clone(), obj.object_ref(&()), reason.to_owned(), action.to_owned());
        tokio::spawn(async move {
            let event = events::Note { type_, reason: &reason, action: &action, note };
            match events.publish(event, reference).await {
                // A namespace being deleted takes no new Events: expected, and nothing to do.
                Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
                    tracing::debug!(%reason, "no event: the namespace is being deleted")
                }
                Err(e) => tracing::warn!(error = %e, %reason, "could not publish event"),
                Ok(()) => {}
            }
        });
    }

    /// Something done at the provider (or deliberately left undone there): logged at info, for
    /// the operator's log to tell what happened to each account, and published as an Event.
    pub async fn acted<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let (kind, namespace, name) = (K::kind(&()), obj.namespace().unwrap_or_default(), obj.name_any());
        tracing::info!(%kind, %namespace, %name, %reason, "{note}");
        self.event(obj, type_, reason, action, note).await;
    }

    fn backoff_key<K: Resource<DynamicType = ()>>(&self, obj: &K) -> String {
        format!("{}/{}/{}", K::kind(&()), obj.namespace().unwrap_or_default(), obj.name_any())
    }
}

fn api<K>(client: &Client, settings: &Settings) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match &settings.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn watch_config(settings: &Settings) -> watcher::Config {
    let config = watcher::Config::default().any_semantic();
    match &settings.label_selector {
        Some(selector) => config.labels(selector),
        None => config,
    }
}

/// Run every controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), kube::Error> {
    // Only our own Secrets (by label), without their managed fields: read from this cache, a
    // poll that changes nothing costs the API server nothing.
    let secrets_api: Api<Secret> = match &settings.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let own_writes = Arc::new(OwnWrites::default());
    let (secrets_cache, secrets_writer) = reflector::store();
    let secrets = watcher(secrets_api, watcher::Config::default().labels(crate::secrets::MANAGED_BY_SELECTOR))
        .default_backoff()
        .modify(|s| s.managed_fields_mut().clear())
        .reflect(secrets_writer)
        .touched_objects();
    let secrets = not_own(secrets, own_writes.clone());
    let provider_configs = provider_config::Controllers::new(&client, &settings);
    let wc = watch_config(&settings);
    let phone_numbers =
        child_controller::<PhoneNumber>(&client, &settings, wc.clone(), &own_writes, |n| &n.spec.sub_account_ref.name);
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings.clone(),
        secrets_cache,
        provider_configs.cache(),
        own_writes.clone(),
        phone_numbers.store(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let config = controller::Config::default().concurrency(settings.concurrency);

    let (config_changes, cluster_config_changes) = provider_configs.changes();
    let sub_accounts = controller::<SubAccount>(&client, &settings, wc.clone(), &own_writes);
    let store = sub_accounts.store();
    let by_config = move |kind: &'static str, namespace: Option<String>, name: String| {
        store
            .state()
            .into_iter()
            .filter(move |sa| {
                let r = &sa.spec.provider_config_ref;
                r.kind.as_str() == kind && r.name == name && (namespace.is_none() || sa.namespace() == namespace)
            })
            .map(|sa| kube::runtime::reflector::ObjectRef::from_obj(&*sa))
            .collect::<Vec<_>>()
    };
    let by_cluster_config = by_config.clone();
    let sub_accounts = sub_accounts
        .owns_stream(secrets)
        .watches_shared_stream(config_changes, move |pc| by_config("ProviderConfig", pc.namespace(), pc.name_any()))
        .watches_shared_stream(cluster_config_changes, move |pc| {
            by_cluster_config("ClusterProviderConfig", None, pc.name_any())
        })
        .with_config(config.clone())
        .graceful_shutdown_on(stopped())
        .run(managed::reconcile::<SubAccount>, managed::error_policy::<SubAccount>, ctx.clone())
        .for_each(|_| async {});

    let team_members =
        child_controller::<TeamMember>(&client, &settings, wc.clone(), &own_writes, |m| &m.spec.sub_account_ref.name)
            .with_config(config.clone())
            .graceful_shutdown_on(stopped())
            .run(managed::reconcile::<TeamMember>, managed::error_policy::<TeamMember>, ctx.clone())
            .for_each(|_| async {});

    let phone_numbers = phone_numbers
        .with_config(config)
        .graceful_shutdown_on(stopped())
        .run(managed::reconcile::<PhoneNumber>, managed::error_policy::<PhoneNumber>, ctx.clone())
        .for_each(|_| async {});

    let provider_configs = provider_configs.run(ctx.clone(), stopped(), stopped());

    let watching = settings.watch_namespace.as_deref().unwrap_or("all namespaces");
    tracing::info!(%watching, "controllers started");
    tokio::join!(sub_accounts, team_members, phone_numbers, provider_configs);
    Ok(())
}

/// A controller whose cache holds its objects without `managedFields` and `kubectl apply`'s
/// record (nothing here reads them, and they are most of each object kept in memory), triggered by every change but the
/// operator's own writes.
fn controller<K: managed::Managed>(
    client: &Client,
    settings: &Settings,
    wc: watcher::Config,
    own_writes: &Arc<OwnWrites>,
) -> Controller<K> {
    let (cache, writer) = reflector::store();
    let objects = watcher(api::<K>(client, settings), wc)
        .default_backoff()
        .modify(|o| {
            o.managed_fields_mut().clear();
            // `kubectl apply`'s copy of the whole object: nothing here reads it.
            o.annotations_mut().remove("kubectl.kubernetes.io/last-applied-configuration");
        })
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(not_own(objects, own_writes.clone()), cache)
}

/// `objects` without the ones that are the operator's own writes (see [`OwnWrites`]).
fn not_own<K: Resource, E>(
    objects: impl futures::Stream<Item = Result<K, E>>,
    own_writes: Arc<OwnWrites>,
) -> impl futures::Stream<Item = Result<K, E>> {
    objects.try_filter(move |o| std::future::ready(!own_writes.delivered(o.meta())))
}

/// A controller for a kind that belongs to a SubAccount: re-queued when its parent changes.
fn child_controller<K>(
    client: &Client,
    settings: &Settings,
    wc: watcher::Config,
    own_writes: &Arc<OwnWrites>,
    parent_name: fn(&K) -> &String,
) -> Controller<K>
where
    K: managed::Managed,
{
    let controller = controller::<K>(client, settings, wc, own_writes);
    let store = controller.store();
    // Only the parent's facts a child reads: its status and annotation writes would otherwise
    // re-queue every child of it.
    let parents = watcher(api::<SubAccount>(client, settings), watcher::Config::default())
        .default_backoff()
        .touched_objects()
        .predicate_filter(parent_facts, PredicateConfig::default());
    controller.watches_stream(parents, move |parent| {
        store
            .state()
            .into_iter()
            .filter(|child| child.namespace() == parent.namespace() && *parent_name(child) == parent.name_any())
            .map(|child| kube::runtime::reflector::ObjectRef::from_obj(&*child))
            .collect::<Vec<_>>()
    })
}

/// What a child reads of its parent SubAccount: readiness, provider id, config and deletion.
fn parent_facts(parent: &SubAccount) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let ready = parent.status.as_ref().and_then(|s| conditions::ready(&s.conditions));
    ready.map(|c| &c.status).hash(&mut h);
    parent.annotations().get(managed::EXTERNAL_ID).hash(&mut h);
    parent.meta().deletion_timestamp.is_some().hash(&mut h);
    parent.meta().uid.hash(&mut h);
    let config = &parent.spec.provider_config_ref;
    (config.kind.as_str(), &config.name).hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SubAccountStatus;

    #[test]
    fn only_a_404_about_the_object_itself_means_it_is_gone() {
        let not_found = |kind: &str, name: &str| {
            let status: kube::core::Status = serde_json::from_value(serde_json::json!({
                "code": 404, "reason": "NotFound", "message": "not found",
                "details": {"kind": kind, "name": name, "group": "tenantline.io"},
            }))
            .unwrap();
            kube::Error::Api(Box::new(status))
        };
        let removal = |e| Error::Finalizer(Box::new(finalizer::Error::RemoveFinalizer(e)));
        assert!(removal(not_found("subaccounts", "acme")).is_gone("subaccounts", "acme"));
        // A child deleted by someone else while the parent's cleanup ran: the parent must retry.
        let cleanup =
            Error::Finalizer(Box::new(finalizer::Error::CleanupFailed(Error::Kube(not_found("teammembers", "m")))));
        assert!(!cleanup.is_gone("subaccounts", "acme"));
        assert!(!Error::Kube(not_found("subaccounts", "other")).is_gone("subaccounts", "acme"));
    }

    #[test]
    fn children_are_requeued_only_by_the_parent_facts_they_read() {
        let mut parent: SubAccount = serde_json::from_value(serde_json::json!({
            "apiVersion": "tenantline.io/v1alpha1", "kind": "SubAccount",
            "metadata": {"name": "acme", "namespace": "ns", "uid": "u1"},
            "spec": {"providerConfigRef": {"name": "vobiz"}, "displayName": "Acme"},
        }))
        .unwrap();
        let ready = |status: &str, message: &str| {
            let mut s = SubAccountStatus::default();
            s.managed.common.conditions.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: conditions::READY.into(),
                status: status.into(),
                message: message.into(),
                reason: "R".into(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                observed_generation: None,
            });
            Some(s)
        };
        parent.status = ready("False", "creating");
        let creating = parent_facts(&parent);
        parent.status = ready("False", "still creating");
        assert_eq!(parent_facts(&parent), creating, "a message is not a fact a child reads");
        parent.annotations_mut().insert("tenantline.io/create-pending".into(), "now".into());
        assert_eq!(parent_facts(&parent), creating, "nor is the create mark");
        parent.status = ready("True", "provisioned");
        let ready_facts = parent_facts(&parent);
        assert_ne!(ready_facts, creating);
        parent.annotations_mut().insert(managed::EXTERNAL_ID.into(), "SA1".into());
        assert_ne!(parent_facts(&parent), ready_facts);
    }
}
