//! ProviderConfig and ClusterProviderConfig: resolving a reference into connected provider
//! clients (cached, so every resource of one config shares its token bucket), and the small
//! controller that reports whether a config's credentials Secret is usable and keeps a config in
//! use, and its Secret, from going ([`in_use`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::object::HasStatus;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

use super::conditions::reason;
use super::in_use;
use super::outcome::{Outcome, interval};
use super::report::report;
use super::{Context, Error, Settings};
use crate::api::{
    ClusterProviderConfig, ProviderConfig, ProviderConfigKind, ProviderConfigRef, ProviderConfigSpec,
    ProviderConfigStatus, SubAccount,
};
use crate::provider::{self, Connection, ProviderClients, ProviderKind};
use crate::secrets;

/// A ProviderConfig resolved into clients.
#[derive(Clone)]
pub struct Connected {
    pub clients: ProviderClients,
    pub provider: ProviderKind,
    pub endpoint: String,
    pub poll_interval: Duration,
    /// The config's `spec.ownerId`, else the operator's.
    pub owner_id: String,
    /// Why the config is on its way out (it or its Secret is being deleted): it still serves the
    /// resources that use it, down to their deletion, but nothing new is created through it.
    pub closing: Option<String>,
}

/// Clients per ProviderConfig, rebuilt when its spec or Secret changes; the configs themselves
/// (and the SubAccounts using them) are read from the readiness controllers' watches.
pub struct ProviderCache {
    entries: Mutex<HashMap<String, Entry>>,
    configs: Store<ProviderConfig>,
    cluster_configs: Store<ClusterProviderConfig>,
    sub_accounts: Store<SubAccount>,
}

struct Entry {
    /// The config's uid and generation, and a digest of its credentials Secret's data.
    config: String,
    secret: u64,
    /// Whether the Secret was being deleted when last read.
    secret_deleting: bool,
    connected: Connected,
}

impl ProviderCache {
    pub(crate) fn new(
        configs: Store<ProviderConfig>,
        cluster_configs: Store<ClusterProviderConfig>,
        sub_accounts: Store<SubAccount>,
    ) -> Self {
        Self { entries: Mutex::default(), configs, cluster_configs, sub_accounts }
    }

    /// The SubAccounts that use `r` (resolved from `namespace`); see [`in_use::users`].
    fn users(&self, r: &ProviderConfigRef, namespace: &str) -> Vec<String> {
        let all = self.sub_accounts.state();
        in_use::users(all.iter().map(|sa| &**sa), r, Some(namespace))
    }

    /// Whether any config naming Secret `namespace/name` is in use. ClusterProviderConfigs count
    /// only where their users are all visible (`cluster_wide`).
    fn secret_in_use(&self, namespace: &str, name: &str, cluster_wide: bool) -> bool {
        let configs = self.configs.state();
        let mut naming_it = configs
            .iter()
            .filter(|pc| pc.namespace().as_deref() == Some(namespace) && pc.spec.credentials_secret_ref.name == name);
        let pc_ref = |name: String| ProviderConfigRef { kind: ProviderConfigKind::ProviderConfig, name };
        if naming_it.any(|pc| !self.users(&pc_ref(pc.name_any()), namespace).is_empty()) {
            return true;
        }
        let cluster_configs = if cluster_wide { self.cluster_configs.state() } else { Vec::new() };
        cluster_configs.iter().filter(|pc| secret_location(pc) == (namespace.to_owned(), name.to_owned())).any(|pc| {
            let r = ProviderConfigRef { kind: ProviderConfigKind::ClusterProviderConfig, name: pc.name_any() };
            !self.users(&r, namespace).is_empty()
        })
    }
}

/// A ClusterProviderConfig's credentials Secret: `(namespace, name)`.
fn secret_location(pc: &ClusterProviderConfig) -> (String, String) {
    let r = &pc.spec.config.credentials_secret_ref;
    (r.namespace.clone().unwrap_or_else(|| "default".to_owned()), r.name.clone())
}

/// A Go-style duration (`90s`, `10m`, `1h30m`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        total += digits.parse::<u64>().ok()? * unit;
        digits.clear();
    }
    (digits.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// The config a reference names, as far as connecting goes.
struct Fetched {
    spec: ProviderConfigSpec,
    /// Where its credentials Secret lives.
    secret_namespace: String,
    fingerprint: String,
    deleting: bool,
}

impl Fetched {
    fn new(pc: &impl Resource, spec: &ProviderConfigSpec, secret_namespace: String) -> Self {
        let deleting = pc.meta().deletion_timestamp.is_some();
        Self { spec: spec.clone(), secret_namespace, fingerprint: fingerprint(pc), deleting }
    }
}

/// The config a reference names: from the watch, or from the API server while the watch has not
/// seen it.
async fn fetch(ctx: &Context, namespace: &str, r: &ProviderConfigRef) -> Result<Option<Fetched>, Error> {
    let cache = &ctx.providers;
    Ok(match r.kind {
        ProviderConfigKind::ProviderConfig => {
            let cached = cache.configs.get(&ObjectRef::new(&r.name).within(namespace));
            let pc = match cached {
                Some(pc) => Some(pc),
                None => Api::<ProviderConfig>::namespaced(ctx.client.clone(), namespace)
                    .get_opt(&r.name)
                    .await?
                    .map(Arc::new),
            };
            pc.map(|pc| Fetched::new(&*pc, &pc.spec, namespace.to_owned()))
        }
        ProviderConfigKind::ClusterProviderConfig => {
            let pc = match cache.cluster_configs.get(&ObjectRef::new(&r.name)) {
                Some(pc) => Some(pc),
                None => Api::<ClusterProviderConfig>::all(ctx.client.clone()).get_opt(&r.name).await?.map(Arc::new),
            };
            pc.map(|pc| Fetched::new(&*pc, &pc.spec.config, secret_location(&pc).0))
        }
    })
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
    let ready = config.status().and_then(|s| super::conditions::ready(&s.common.conditions));
    ready.map(|c| &c.status).hash(&mut h);
    h.finish()
}

fn fingerprint(obj: &impl Resource) -> String {
    format!("{}/{}", obj.meta().uid.as_deref().unwrap_or_default(), obj.meta().generation.unwrap_or_default())
}

/// A digest of a Secret's data, the only part of it the clients depend on: a finalizer or label
/// written to it must not rebuild them, and with them the config's token bucket.
fn content(secret: &Secret) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (k, v) in secret.data.iter().flatten() {
        (k, &v.0).hash(&mut h);
    }
    h.finish()
}

/// Resolve `r` (from a resource in `namespace`) into clients, or say why it can't be used yet.
pub async fn connect(
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
) -> Result<Result<Connected, Outcome>, Error> {
    connect_checked(ctx, namespace, r, false).await
}

/// `recheck`: read the credentials Secret even when the config did not change. Its content is
/// not watched: the readiness controller rechecks every config now and then, so resources
/// reconcile without reading it.
async fn connect_checked(
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
    recheck: bool,
) -> Result<Result<Connected, Outcome>, Error> {
    let kind = r.kind.as_str();
    let cache_key = match r.kind {
        ProviderConfigKind::ProviderConfig => format!("{kind}/{namespace}/{}", r.name),
        ProviderConfigKind::ClusterProviderConfig => format!("{kind}/{}", r.name),
    };
    let Some(Fetched { spec, secret_namespace: secret_ns, fingerprint: fp, deleting }) =
        fetch(ctx, namespace, r).await?
    else {
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("{kind} {} not found", r.name),
        )));
    };
    let secret_name = &spec.credentials_secret_ref.name;
    let closing = |secret_deleting: bool| {
        if deleting {
            Some(format!("{kind} {} is being deleted", r.name))
        } else if secret_deleting {
            Some(format!("credentials Secret {secret_ns}/{secret_name} of {kind} {} is being deleted", r.name))
        } else {
            None
        }
    };
    // The entry's clients when it was made from this config (and, given `(content, deleting)`
    // of the Secret as just read, from this Secret, whose deletion it then records).
    let cached = |secret: Option<(u64, bool)>| {
        let mut entries = ctx.providers.entries.lock().unwrap();
        let entry = entries.get_mut(&cache_key).filter(|e| e.config == fp)?;
        if let Some((content, deleting)) = secret {
            if entry.secret != content {
                return None;
            }
            entry.secret_deleting = deleting;
        }
        Some(Connected { closing: closing(entry.secret_deleting), ..entry.connected.clone() })
    };
    if !recheck && let Some(connected) = cached(None) {
        return Ok(Ok(connected));
    }
    let provider = spec.provider;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &secret_ns).get_opt(secret_name).await?;
    let Some(secret) = secret else {
        ctx.providers.entries.lock().unwrap().remove(&cache_key);
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("credentials Secret {secret_ns}/{secret_name} of {kind} {} not found", r.name),
        )));
    };
    let (secret_content, secret_deleting) = (content(&secret), secret.metadata.deletion_timestamp.is_some());
    if let Some(connected) = cached(Some((secret_content, secret_deleting))) {
        return Ok(Ok(connected));
    }
    // What follows either connects anew or finds the config unusable: resources must not go on
    // with clients of an older config or Secret either way.
    let stale = |e: &Entry| e.config != fp || e.secret != secret_content;
    let mut entries = ctx.providers.entries.lock().unwrap();
    if entries.get(&cache_key).is_some_and(stale) {
        entries.remove(&cache_key);
    }
    drop(entries);
    let credentials = secrets::credentials(&secret);
    if let Some(missing) = provider.descriptor().missing_parent_key(&credentials) {
        return Ok(Err(Outcome::stalled(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("credentials Secret {secret_ns}/{secret_name} has no key {missing:?}, which {provider} needs"),
        )));
    }
    let endpoint = spec.endpoint.clone().unwrap_or_else(|| provider.descriptor().default_endpoint.to_owned());
    let rate = spec.rate_limit.clone().unwrap_or_default();
    let connection = Connection {
        provider,
        endpoint: endpoint.clone(),
        credentials,
        requests_per_second: rate.requests_per_second.max(1).unsigned_abs(),
        burst: rate.burst.max(1).unsigned_abs(),
        timeout: ctx.settings.provider_timeout,
        max_wait: ctx.settings.max_backoff,
        // TODO(reconciler): from the ProviderConfig (e.g. spec.allowInsecure); true keeps
        // today's behaviour for the http:// simulator endpoints the examples and e2e tests use.
        allow_insecure: true,
    };
    let clients = match provider::connect(connection) {
        Ok(clients) => clients,
        Err(e) => {
            return Ok(Err(Outcome::stalled(reason::PROVIDER_CONFIG_NOT_READY, e.to_string())));
        }
    };
    let poll_interval = spec.poll_interval.as_deref().and_then(parse_duration).unwrap_or(interval::DEFAULT_POLL);
    let owner_id = spec.owner_id.clone().unwrap_or_else(|| ctx.settings.owner_id.clone());
    let closing = closing(secret_deleting);
    let connected = Connected { clients, provider, endpoint, poll_interval, owner_id, closing };
    // Resources that connected at the same time (after a restart) all use the clients made
    // first: one token bucket per provider account, and one view of the purchases in flight.
    let mut entries = ctx.providers.entries.lock().unwrap();
    if let Some(e) = entries.get(&cache_key).filter(|e| !stale(e)) {
        return Ok(Ok(Connected { closing: connected.closing, ..e.connected.clone() }));
    }
    let entry = Entry { config: fp, secret: secret_content, secret_deleting, connected: connected.clone() };
    entries.insert(cache_key, entry);
    Ok(Ok(connected))
}

/// The controllers that report whether each config's credentials Secret exists with the keys its
/// provider needs, and keep configs in use, and their Secrets, from going ([`in_use`]). Their
/// watches fill the caches every resource's [`connect`] reads, and only then pass a change on
/// ([`Controllers::changes`]): a resource re-queued by a config change reads it.
pub struct Controllers {
    configs: Store<ProviderConfig>,
    cluster_configs: Store<ClusterProviderConfig>,
    sub_accounts: Store<SubAccount>,
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
        let namespaced = watcher(super::api::<ProviderConfig>(client, settings), watcher::Config::default())
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
        let users = watcher(super::api::<SubAccount>(client, settings), watcher::Config::default().any_semantic())
            .default_backoff()
            // Only who uses which config is read from this cache: keep little else of each.
            .modify(|sa| {
                sa.managed_fields_mut().clear();
                sa.labels_mut().clear();
                sa.annotations_mut().retain(|k, _| k == super::managed::EXTERNAL_ID);
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
        let watches = async move {
            tokio::join!(namespaced, cluster, users);
        }
        .boxed();
        Self { configs, cluster_configs, sub_accounts, changes, used: (used_rx, cluster_used_rx), watches }
    }

    pub fn cache(&self) -> ProviderCache {
        ProviderCache::new(self.configs.clone(), self.cluster_configs.clone(), self.sub_accounts.clone())
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
                run(namespaced, cluster, ctx, stop_namespaced, stop_cluster).await;
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

async fn run(
    namespaced: Controller<ProviderConfig>,
    cluster: Controller<ClusterProviderConfig>,
    ctx: Arc<Context>,
    stop_namespaced: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    stop_cluster: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let namespaced = namespaced
        .graceful_shutdown_on(stop_namespaced)
        .run(
            |pc: Arc<ProviderConfig>, ctx: Arc<Context>| async move {
                let namespace = pc.namespace().unwrap_or_default();
                let r = ProviderConfigRef { kind: ProviderConfigKind::ProviderConfig, name: pc.name_any() };
                let api = Api::<ProviderConfig>::namespaced(ctx.client.clone(), &namespace);
                let secret = (namespace.clone(), pc.spec.credentials_secret_ref.name.clone());
                check(&*pc, &api, &ctx, &namespace, &r, Some(secret)).await
            },
            |_, _, _| Action::requeue(interval::CONFIG_CHECK_FAILED),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let cluster = cluster
        .graceful_shutdown_on(stop_cluster)
        .run(
            |pc: Arc<ClusterProviderConfig>, ctx: Arc<Context>| async move {
                let r = ProviderConfigRef { kind: ProviderConfigKind::ClusterProviderConfig, name: pc.name_any() };
                let api = Api::<ClusterProviderConfig>::all(ctx.client.clone());
                // An operator limited to one namespace sees only that namespace's users.
                let secret = ctx.settings.watch_namespace.is_none().then(|| secret_location(&pc));
                check(&*pc, &api, &ctx, "", &r, secret).await
            },
            |_, _, _| Action::requeue(interval::CONFIG_CHECK_FAILED),
            ctx,
        )
        .for_each(|_| async {});
    tokio::join!(namespaced, cluster);
}

/// Report on config `pc` and, when its users are known (`secret`, where its credentials Secret
/// is, is given), keep the in-use finalizer on it and its Secret exactly while it has users.
async fn check<K>(
    pc: &K,
    api: &Api<K>,
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
    secret: Option<(String, String)>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + HasStatus<Status = ProviderConfigStatus> + Clone + DeserializeOwned + Debug,
{
    let connected = connect_checked(ctx, namespace, r, true).await?;
    let deleting = pc.meta().deletion_timestamp.is_some();
    let users = match &secret {
        Some(_) => ctx.providers.users(r, namespace),
        None => Vec::new(),
    };
    if let Some((secret_namespace, secret_name)) = &secret {
        // The Secret first: once the config lets go it is gone, and nothing would release it.
        let secrets = Api::<Secret>::namespaced(ctx.client.clone(), secret_namespace);
        if let Some(s) = secrets.get_metadata_opt(secret_name).await? {
            let cluster_wide = ctx.settings.watch_namespace.is_none();
            in_use::mark(&secrets, &s, ctx.providers.secret_in_use(secret_namespace, secret_name, cluster_wide))
                .await?;
        }
        in_use::mark(api, pc, !users.is_empty()).await?;
        if deleting && users.is_empty() {
            return Ok(Action::await_change());
        }
    }
    let outcome = match connected {
        Ok(_) if deleting && !users.is_empty() => Outcome::progressing(
            reason::DELETING,
            format!(
                "being deleted: waits until the {} using it are deleted, with their TeamMembers and PhoneNumbers",
                in_use::describe(&users)
            ),
        ),
        Ok(c) => match c.closing {
            Some(closing) if !users.is_empty() => Outcome::progressing(
                reason::DELETING,
                format!(
                    "{closing}: it stays while the {} using it exist; nothing new is created through this config",
                    in_use::describe(&users)
                ),
            ),
            Some(closing) => Outcome::progressing(reason::DELETING, closing),
            None => Outcome::ready(
                reason::PROVISIONED,
                format!("credentials for {} at {} are present", c.provider, c.endpoint),
            ),
        },
        Err(unusable) => unusable.event(EventType::Warning),
    };
    report(pc, api, ctx, &outcome, "Check", |_| {}).await?;
    Ok(Action::requeue(interval::SECRET_RECHECK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5d"), None);
    }

    #[test]
    fn only_a_secrets_data_counts_as_a_change_of_its_credentials() {
        let secret = |key: &str, finalizers: Vec<String>| Secret {
            metadata: kube::api::ObjectMeta { finalizers: Some(finalizers), ..Default::default() },
            data: Some([("apiKey".to_owned(), k8s_openapi::ByteString(key.as_bytes().to_vec()))].into()),
            ..Default::default()
        };
        let before = content(&secret("sk_1", vec![]));
        assert_eq!(before, content(&secret("sk_1", vec![in_use::IN_USE.to_owned()])), "a finalizer is no change");
        assert_ne!(before, content(&secret("sk_2", vec![])), "a rotated key is");
    }

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
