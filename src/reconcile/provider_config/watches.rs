//! The config controllers' watches: the configs (shared with their resources' controllers, to
//! which [`Controllers::changes`] passes on what a resource reads of a config), every SubAccount
//! (who uses which config), and the namespaces' labels (which namespaces a ClusterProviderConfig
//! serves). Their caches are what every resource's [`connect`](super::connect) reads.

use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::core::object::HasStatus;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use super::connect::{ProviderCache, fingerprint};
use crate::api::{ClusterProviderConfig, ProviderConfig, ProviderConfigKind, ProviderConfigStatus, SubAccount};
use crate::reconcile::managed::{CREATE_PENDING, EXTERNAL_ID};
use crate::reconcile::{Context, Settings, in_use};

/// The controllers that report whether each config's credentials Secret exists with the keys its
/// provider needs, and keep configs in use, and their Secrets, from going ([`in_use`]). Their
/// watches fill the caches every resource's [`connect`] reads, and only then pass a change on
/// ([`Controllers::changes`]): a resource re-queued by a config change reads it.
pub struct Controllers {
    configs: Store<ProviderConfig>,
    cluster_configs: Store<ClusterProviderConfig>,
    sub_accounts: Store<SubAccount>,
    namespaces: Store<kube::core::PartialObjectMeta<Namespace>>,
    changes: (ReflectHandle<ProviderConfig>, ReflectHandle<ClusterProviderConfig>),
    /// Configs that may have gained or lost a user.
    used:
        (mpsc::UnboundedReceiver<ObjectRef<ProviderConfig>>, mpsc::UnboundedReceiver<ObjectRef<ClusterProviderConfig>>),
    watches: futures::future::BoxFuture<'static, ()>,
}

impl Controllers {
    pub fn new(client: &Client, settings: &Settings) -> Self {
        let (configs, writer) = reflector::store_shared(1024);
        let (cluster_configs, cluster_writer) = reflector::store_shared(1024);
        let changes = (writer.subscribe().expect("shared"), cluster_writer.subscribe().expect("shared"));
        let namespaced = watcher(crate::reconcile::api::<ProviderConfig>(client, settings), watcher::Config::default())
            .default_backoff()
            .reflect_shared(writer)
            .for_each(|_| async {});
        let cluster = watcher(Api::<ClusterProviderConfig>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .reflect_shared(cluster_writer)
            .for_each(|_| async {});
        // Every SubAccount, whatever `--label-selector`: shards must agree on who uses a config.
        let (sub_accounts, sub_account_writer) = reflector::store();
        let (used, used_rx) = mpsc::unbounded();
        let (cluster_used, cluster_used_rx) = mpsc::unbounded();
        let users =
            watcher(crate::reconcile::api::<SubAccount>(client, settings), watcher::Config::default().any_semantic())
                .default_backoff()
                // Only who uses which config is read from this cache: keep little else of each.
                .modify(|sa| {
                    sa.managed_fields_mut().clear();
                    sa.labels_mut().clear();
                    // The id and the create mark: who holds (or is getting) an account through a config.
                    sa.annotations_mut().retain(|k, _| k == EXTERNAL_ID || k == CREATE_PENDING);
                    sa.status = None;
                })
                .reflect(sub_account_writer)
                .touched_objects()
                .predicate_filter(config_use, Default::default())
                .for_each({
                    let (configs, cluster_configs) = (configs.clone(), cluster_configs.clone());
                    move |sa| {
                        if let Ok(sa) = sa {
                            let r = &sa.spec.provider_config_ref;
                            // One more user of a config already marked in use changes nothing: during an
                            // onboarding, checking it for each new account cost two Secret reads each.
                            let marked = |meta: Option<&kube::api::ObjectMeta>| {
                                in_use::is_user(&sa)
                                    && meta.is_some_and(|m| m.finalizers.iter().flatten().any(|f| f == in_use::IN_USE))
                            };
                            // A closed channel means the controllers stopped: nobody to tell.
                            match r.kind {
                                ProviderConfigKind::ProviderConfig => {
                                    let config = ObjectRef::new(&r.name).within(&sa.namespace().unwrap_or_default());
                                    if !marked(configs.get(&config).as_deref().map(Resource::meta)) {
                                        let _ = used.unbounded_send(config);
                                    }
                                }
                                ProviderConfigKind::ClusterProviderConfig => {
                                    let config = ObjectRef::new(&r.name);
                                    if !marked(cluster_configs.get(&config).as_deref().map(Resource::meta)) {
                                        let _ = cluster_used.unbounded_send(config);
                                    }
                                }
                            }
                        }
                        futures::future::ready(())
                    }
                });
        // Namespaces' labels, for ClusterProviderConfig conditions: only the one namespace watched,
        // if one (the chart then grants reading just that namespace).
        let (namespaces, namespace_writer) = reflector::store();
        let only = settings.watch_namespace.as_ref().map(|ns| format!("metadata.name={ns}"));
        let namespace_config = match &only {
            Some(field) => watcher::Config::default().fields(field),
            None => watcher::Config::default(),
        };
        let namespace_labels =
            watcher(Api::<kube::core::PartialObjectMeta<Namespace>>::all(client.clone()), namespace_config)
                .default_backoff()
                .modify(|ns| {
                    ns.managed_fields_mut().clear();
                    ns.annotations_mut().clear();
                })
                .reflect(namespace_writer)
                .for_each(|_| async {});
        let watches = async move {
            tokio::join!(namespaced, cluster, users, namespace_labels);
        }
        .boxed();
        let used = (used_rx, cluster_used_rx);
        Self { configs, cluster_configs, sub_accounts, namespaces, changes, used, watches }
    }

    pub fn cache(&self) -> ProviderCache {
        ProviderCache::new(
            self.configs.clone(),
            self.cluster_configs.clone(),
            self.sub_accounts.clone(),
            self.namespaces.clone(),
        )
    }

    /// Each change of a config that its resources read, once it is in the cache.
    pub fn changes(
        &self,
    ) -> (impl Stream<Item = Arc<ProviderConfig>> + use<>, impl Stream<Item = Arc<ClusterProviderConfig>> + use<>) {
        (read_by_resources(self.changes.0.clone()), read_by_resources(self.changes.1.clone()))
    }

    pub async fn run(
        self,
        ctx: Arc<Context>,
        stop_namespaced: impl std::future::Future<Output = ()> + Send + Sync + 'static,
        stop_cluster: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let stores = (self.configs.clone(), self.cluster_configs.clone(), self.sub_accounts);
        let namespaced = Controller::for_shared_stream(self.changes.0, self.configs).reconcile_on(self.used.0);
        let cluster = Controller::for_shared_stream(self.changes.1, self.cluster_configs).reconcile_on(self.used.1);
        let controllers = async move {
            // A config's users are known only once every cache is full: before, an in-use config
            // would look unused and lose its finalizer.
            let (configs, cluster_configs, sub_accounts) = stores;
            let ready = futures::future::try_join3(
                configs.wait_until_ready(),
                cluster_configs.wait_until_ready(),
                sub_accounts.wait_until_ready(),
            );
            if ready.await.is_ok() {
                super::check::run(namespaced, cluster, ctx, stop_namespaced, stop_cluster).await;
            }
        };
        // The watches end with the process; the controllers with `stop_*`.
        tokio::select! {
            () = controllers => {}
            () = self.watches => {}
        }
    }
}

/// What about a SubAccount matters to its config: whether it uses it, and which config it is.
fn config_use(sa: &SubAccount) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (in_use::is_user(sa), sa.spec.provider_config_ref.kind.as_str(), &sa.spec.provider_config_ref.name).hash(&mut h);
    Some(h.finish())
}

/// `changes` without those that leave what a resource reads of a config as it was: its spec,
/// its deletion, and whether it is Ready (its Secret became usable or not). The config
/// controller's own writes (a message, the in-use finalizer) would otherwise re-queue every
/// resource of the config, each observing its provider again.
fn read_by_resources<K>(changes: impl Stream<Item = Arc<K>>) -> impl Stream<Item = Arc<K>>
where
    K: Resource<DynamicType = ()> + HasStatus<Status = ProviderConfigStatus> + 'static,
{
    let mut last = HashMap::<ObjectRef<K>, u64>::new();
    changes.filter(move |config| {
        let facts = resource_facts(&**config);
        futures::future::ready(last.insert(ObjectRef::from_obj(&**config), facts) != Some(facts))
    })
}

fn resource_facts<K: Resource + HasStatus<Status = ProviderConfigStatus>>(config: &K) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    fingerprint(config).hash(&mut h);
    config.meta().deletion_timestamp.is_some().hash(&mut h);
    let ready = config.status().and_then(|s| crate::reconcile::conditions::ready(&s.common.conditions));
    ready.map(|c| &c.status).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resources_are_requeued_only_by_the_config_changes_they_read() {
        let config = |generation: i64, ready: &str, message: &str, finalizer: bool| {
            let mut pc: ProviderConfig = serde_json::from_value(serde_json::json!({
                "apiVersion": "tenantline.io/v1alpha1", "kind": "ProviderConfig",
                "metadata": {"name": "vobiz", "namespace": "ns", "uid": "u1", "generation": generation},
                "spec": {"provider": "Vobiz", "credentialsSecretRef": {"name": "s"}},
                "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "R", "message": message,
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
            .unwrap();
            if finalizer {
                pc.metadata.finalizers = Some(vec![in_use::IN_USE.to_owned()]);
            }
            Arc::new(pc)
        };
        let changes = [
            config(1, "False", "no Secret", false),
            config(1, "True", "usable", false),
            config(1, "True", "usable", true),
            config(1, "True", "usable, checked again", true),
            config(2, "True", "usable", true),
        ];
        let passed: Vec<_> = read_by_resources(futures::stream::iter(changes)).collect().await;
        let seen: Vec<_> =
            passed.iter().map(|pc| (pc.meta().generation.unwrap(), pc.meta().finalizers.is_some())).collect();
        // The first sight, Ready turning True, and a spec change; not the in-use finalizer or a message.
        assert_eq!(seen, [(1, false), (1, false), (2, true)]);
    }
}
