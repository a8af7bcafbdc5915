//! ProviderConfig and ClusterProviderConfig: resolving a reference into connected provider
//! clients (cached, so every resource of one config shares its token bucket), and the small
//! controller that reports whether a config's credentials Secret is usable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::core::object::HasStatus;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

use super::conditions::reason;
use super::outcome::{Outcome, interval};
use super::report::report;
use super::{Context, Error, Settings};
use crate::api::{
    ClusterProviderConfig, ProviderConfig, ProviderConfigKind, ProviderConfigRef, ProviderConfigSpec,
    ProviderConfigStatus,
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
}

/// Clients per ProviderConfig, rebuilt when its spec or Secret changes; the configs themselves
/// are read from the readiness controllers' watches.
pub struct ProviderCache {
    entries: Mutex<HashMap<String, Entry>>,
    configs: Store<ProviderConfig>,
    cluster_configs: Store<ClusterProviderConfig>,
}

struct Entry {
    /// The config's uid and generation, and its credentials Secret's resourceVersion.
    config: String,
    secret: String,
    connected: Connected,
}

impl ProviderCache {
    pub fn new(configs: Store<ProviderConfig>, cluster_configs: Store<ClusterProviderConfig>) -> Self {
        Self { entries: Mutex::default(), configs, cluster_configs }
    }
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

/// The config a reference names, and the namespace its credentials Secret lives in: from the
/// watch, or from the API server while the watch has not seen it.
async fn fetch(
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
) -> Result<Option<(ProviderConfigSpec, String, String)>, Error> {
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
            pc.map(|pc| (pc.spec.clone(), namespace.to_owned(), fingerprint(&*pc)))
        }
        ProviderConfigKind::ClusterProviderConfig => {
            let pc = match cache.cluster_configs.get(&ObjectRef::new(&r.name)) {
                Some(pc) => Some(pc),
                None => Api::<ClusterProviderConfig>::all(ctx.client.clone()).get_opt(&r.name).await?.map(Arc::new),
            };
            pc.map(|pc| {
                let ns =
                    pc.spec.config.credentials_secret_ref.namespace.clone().unwrap_or_else(|| "default".to_owned());
                (pc.spec.config.clone(), ns, fingerprint(&*pc))
            })
        }
    })
}

fn fingerprint(obj: &impl Resource) -> String {
    format!("{}/{}", obj.meta().uid.as_deref().unwrap_or_default(), obj.meta().generation.unwrap_or_default())
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
    let Some((spec, secret_ns, fp)) = fetch(ctx, namespace, r).await? else {
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("{kind} {} not found", r.name),
        )));
    };
    let cached = |secret: Option<&str>| {
        let entries = ctx.providers.entries.lock().unwrap();
        let entry = entries.get(&cache_key)?;
        (entry.config == fp && secret.is_none_or(|rv| entry.secret == rv)).then(|| entry.connected.clone())
    };
    if !recheck && let Some(connected) = cached(None) {
        return Ok(Ok(connected));
    }
    let provider = spec.provider;
    let secret_name = &spec.credentials_secret_ref.name;
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(ctx.client.clone(), &secret_ns)
        .get_opt(secret_name)
        .await?;
    let Some(secret) = secret else {
        ctx.providers.entries.lock().unwrap().remove(&cache_key);
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("credentials Secret {secret_ns}/{secret_name} of {kind} {} not found", r.name),
        )));
    };
    let secret_rv = secret.resource_version().unwrap_or_default();
    if let Some(connected) = cached(Some(&secret_rv)) {
        return Ok(Ok(connected));
    }
    // What follows either connects anew or finds the config unusable: resources must not go on
    // with the old clients either way.
    ctx.providers.entries.lock().unwrap().remove(&cache_key);
    let credentials = secrets::get(&ctx.client, &secret_ns, secret_name).await?.unwrap_or_default();
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
    };
    let clients = match provider::connect(connection) {
        Ok(clients) => clients,
        Err(e) => {
            return Ok(Err(Outcome::stalled(reason::PROVIDER_CONFIG_NOT_READY, e.to_string())));
        }
    };
    let poll_interval = spec.poll_interval.as_deref().and_then(parse_duration).unwrap_or(interval::DEFAULT_POLL);
    let owner_id = spec.owner_id.clone().unwrap_or_else(|| ctx.settings.owner_id.clone());
    let connected = Connected { clients, provider, endpoint, poll_interval, owner_id };
    let entry = Entry { config: fp, secret: secret_rv, connected: connected.clone() };
    ctx.providers.entries.lock().unwrap().insert(cache_key, entry);
    Ok(Ok(connected))
}

/// The controllers that report whether each config's credentials Secret exists with the keys its
/// provider needs. Their watches fill the caches every resource's [`connect`] reads, and only then
/// pass a change on ([`Controllers::changes`]): a resource re-queued by a config change reads it.
pub struct Controllers {
    configs: Store<ProviderConfig>,
    cluster_configs: Store<ClusterProviderConfig>,
    changes: (ReflectHandle<ProviderConfig>, ReflectHandle<ClusterProviderConfig>),
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
        let watches = async move {
            tokio::join!(namespaced, cluster);
        }
        .boxed();
        Self { configs, cluster_configs, changes, watches }
    }

    pub fn cache(&self) -> ProviderCache {
        ProviderCache::new(self.configs.clone(), self.cluster_configs.clone())
    }

    /// Each config once it is in the cache.
    pub fn changes(&self) -> (ReflectHandle<ProviderConfig>, ReflectHandle<ClusterProviderConfig>) {
        self.changes.clone()
    }

    pub async fn run(
        self,
        ctx: Arc<Context>,
        stop_namespaced: impl std::future::Future<Output = ()> + Send + Sync + 'static,
        stop_cluster: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let namespaced = Controller::for_shared_stream(self.changes.0, self.configs);
        let cluster = Controller::for_shared_stream(self.changes.1, self.cluster_configs);
        let controllers = run(namespaced, cluster, ctx, stop_namespaced, stop_cluster);
        // The watches end with the process; the controllers with `stop_*`.
        tokio::select! {
            () = controllers => {}
            () = self.watches => {}
        }
    }
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
                let r = ProviderConfigRef { kind: ProviderConfigKind::ProviderConfig, name: pc.name_any() };
                let api = Api::<ProviderConfig>::namespaced(ctx.client.clone(), &pc.namespace().unwrap_or_default());
                check(&*pc, &api, &ctx, &pc.namespace().unwrap_or_default(), &r).await
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
                check(&*pc, &api, &ctx, "", &r).await
            },
            |_, _, _| Action::requeue(interval::CONFIG_CHECK_FAILED),
            ctx,
        )
        .for_each(|_| async {});
    tokio::join!(namespaced, cluster);
}

/// Report whether the config `r` names can be used; a config that cannot is a Warning on it.
async fn check<K>(pc: &K, api: &Api<K>, ctx: &Context, namespace: &str, r: &ProviderConfigRef) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + HasStatus<Status = ProviderConfigStatus> + Clone + DeserializeOwned + Debug,
{
    let outcome = match connect_checked(ctx, namespace, r, true).await? {
        Ok(c) => {
            Outcome::ready(reason::PROVISIONED, format!("credentials for {} at {} are present", c.provider, c.endpoint))
        }
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
}
