//! Connecting a resource to its provider: resolve its config reference (from the watches'
//! caches), check that the config serves the resource's namespace and may be used as it is, and
//! hand out the config's clients — cached, so every resource of one config shares its token
//! bucket until the config or its Secret changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};

use crate::api::{
    AdoptionPolicy, ClusterProviderConfig, NamespaceCondition, ProviderConfig, ProviderConfigKind, ProviderConfigRef,
    ProviderConfigSpec, SubAccount,
};
use crate::provider::{self, Connection, ProviderClients, ProviderKind};
use crate::reconcile::conditions::reason;
use crate::reconcile::in_use;
use crate::reconcile::outcome::{Outcome, interval};
use crate::reconcile::{Context, Error, tenancy};
use crate::secrets;

/// A ProviderConfig resolved into clients, with what the config allows its resources.
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
    pub terms: Terms,
}

/// What a config allows the resources that use it (DESIGN §4a), and how to name it.
#[derive(Clone, Debug)]
pub struct Terms {
    /// The config as a person names it: `ClusterProviderConfig shared`.
    pub name: String,
    /// One key for the config across namespaces ([`config_key`]).
    pub key: String,
    /// Where its credentials Secret lives: `(namespace, name)`.
    pub secret: (String, String),
    pub adoption: AdoptionPolicy,
    pub max_sub_accounts: Option<i32>,
    pub max_opening_balance: Option<f64>,
}

/// The config `r` names from `namespace`, as one key whatever namespace a resource using it is in:
/// `ClusterProviderConfig/shared`, `ProviderConfig/acme/vobiz`.
pub fn config_key(namespace: &str, r: &ProviderConfigRef) -> String {
    match r.kind {
        ProviderConfigKind::ProviderConfig => format!("ProviderConfig/{namespace}/{}", r.name),
        ProviderConfigKind::ClusterProviderConfig => format!("ClusterProviderConfig/{}", r.name),
    }
}

/// Clients per ProviderConfig, rebuilt when its spec or Secret changes; the configs themselves,
/// the SubAccounts using them and the namespaces' labels are read from the config controllers'
/// watches.
pub struct ProviderCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Per config key, the SubAccounts let through [`ProviderCache::reserve`].
    reserved: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    pub(super) configs: Store<ProviderConfig>,
    pub(super) cluster_configs: Store<ClusterProviderConfig>,
    /// Every SubAccount (whatever `--label-selector`), with only its spec, external id and create
    /// mark: who uses which config.
    pub(crate) sub_accounts: Store<SubAccount>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
}

struct Entry {
    /// The config's uid and generation, and a digest of its credentials Secret's data.
    config: String,
    secret: u64,
    /// Whether the Secret was being deleted when last read.
    secret_deleting: bool,
    connected: Connected,
    /// The last check that the endpoint accepts these credentials, and when: gone with the entry
    /// when the config or its Secret changes.
    verified: Option<(Instant, Result<(), Outcome>)>,
}

impl ProviderCache {
    pub(crate) fn new(
        configs: Store<ProviderConfig>,
        cluster_configs: Store<ClusterProviderConfig>,
        sub_accounts: Store<SubAccount>,
        namespaces: Store<PartialObjectMeta<Namespace>>,
    ) -> Self {
        Self {
            entries: Mutex::default(),
            reserved: Mutex::default(),
            configs,
            cluster_configs,
            sub_accounts,
            namespaces,
        }
    }

    /// The SubAccounts that use `r` (resolved from `namespace`); see [`in_use::users`].
    pub(super) fn users(&self, r: &ProviderConfigRef, namespace: &str) -> Vec<String> {
        let all = self.sub_accounts.state();
        in_use::users(all.iter().map(|sa| &**sa), r, Some(namespace))
    }

    /// Whether any config naming Secret `namespace/name` is in use. ClusterProviderConfigs count
    /// only where their users are all visible (`cluster_wide`).
    pub(super) fn secret_in_use(&self, namespace: &str, name: &str, cluster_wide: bool) -> bool {
        let configs = self.configs.state();
        let mut naming_it = configs
            .iter()
            .filter(|pc| pc.namespace().as_deref() == Some(namespace) && pc.spec.credentials_secret_ref.name == name);
        let pc_ref = |name: String| ProviderConfigRef { kind: ProviderConfigKind::ProviderConfig, name };
        if naming_it.any(|pc| !self.users(&pc_ref(pc.name_any()), namespace).is_empty()) {
            return true;
        }
        let cluster_configs = if cluster_wide { self.cluster_configs.state() } else { Vec::new() };
        let here = (namespace.to_owned(), name.to_owned());
        cluster_configs.iter().filter(|pc| secret_location(pc).as_ref() == Some(&here)).any(|pc| {
            let r = ProviderConfigRef { kind: ProviderConfigKind::ClusterProviderConfig, name: pc.name_any() };
            !self.users(&r, namespace).is_empty()
        })
    }

    /// Count `me` (`namespace/name`) among the SubAccounts holding an account through config
    /// `key`, unless that would take them over `max`: then how many hold one. SubAccounts count
    /// from their create mark on, and those let through here before their mark reaches the
    /// cache, so that creates at the same time cannot go over the limit together.
    pub fn reserve(&self, key: &str, me: &str, max: Option<i32>) -> Result<(), usize> {
        let Some(max) = max else { return Ok(()) };
        let all = self.sub_accounts.state();
        let name = |sa: &SubAccount| format!("{}/{}", sa.namespace().unwrap_or_default(), sa.name_any());
        let holds = |sa: &SubAccount| {
            let a = sa.annotations();
            a.contains_key(crate::reconcile::managed::EXTERNAL_ID)
                || a.contains_key(crate::reconcile::managed::CREATE_PENDING)
        };
        let uses =
            |sa: &SubAccount| config_key(&sa.namespace().unwrap_or_default(), &sa.spec.provider_config_ref) == key;
        let mut holding: std::collections::HashSet<String> =
            all.iter().filter(|sa| uses(sa) && holds(sa)).map(|sa| name(sa)).collect();
        let mut reserved = self.reserved.lock().unwrap();
        let mine = reserved.entry(key.to_owned()).or_default();
        // A reservation lasts as long as its SubAccount.
        mine.retain(|n| all.iter().any(|sa| name(sa) == *n));
        holding.extend(mine.iter().cloned());
        holding.remove(me);
        if holding.len() >= usize::try_from(max).unwrap_or(0) {
            return Err(holding.len());
        }
        mine.insert(me.to_owned());
        Ok(())
    }

    /// The last check of config `key`'s credentials at its endpoint, while it is recent enough:
    /// a success for [`interval::VERIFIED`], a failure for [`interval::CREDENTIALS_RETRY`].
    pub(super) fn verified(&self, key: &str) -> Option<Result<(), Outcome>> {
        let entries = self.entries.lock().unwrap();
        let (at, result) = entries.get(key)?.verified.as_ref()?;
        let fresh = if result.is_ok() { interval::VERIFIED } else { interval::CREDENTIALS_RETRY };
        (at.elapsed() < fresh).then(|| result.clone())
    }

    pub(super) fn record_verified(&self, key: &str, result: Result<(), Outcome>) {
        if let Some(entry) = self.entries.lock().unwrap().get_mut(key) {
            entry.verified = Some((Instant::now(), result));
        }
    }

    /// The labels of `namespace`, once the namespaces' watch has listed them.
    async fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let _ = self.namespaces.wait_until_ready().await;
        let ns = self.namespaces.get(&ObjectRef::new(namespace));
        ns.and_then(|ns| ns.metadata.labels.clone()).unwrap_or_default()
    }
}

/// A ClusterProviderConfig's credentials Secret, `(namespace, name)`; `None` when it names no
/// namespace (older objects: the field is required since namespace `default`, which it used to
/// default to, is writable by many).
pub(super) fn secret_location(pc: &ClusterProviderConfig) -> Option<(String, String)> {
    let r = &pc.spec.config.credentials_secret_ref;
    Some((r.namespace.clone()?, r.name.clone()))
}

/// The config a reference names, as far as connecting goes.
struct Fetched {
    spec: ProviderConfigSpec,
    /// Where its credentials Secret lives; `None` for a ClusterProviderConfig that does not say.
    secret_namespace: Option<String>,
    /// The namespaces a ClusterProviderConfig serves; `None` for a ProviderConfig (its own).
    conditions: Option<Vec<NamespaceCondition>>,
    fingerprint: String,
    deleting: bool,
}

impl Fetched {
    fn new(
        pc: &impl Resource,
        spec: &ProviderConfigSpec,
        secret_namespace: Option<String>,
        conditions: Option<Vec<NamespaceCondition>>,
    ) -> Self {
        let deleting = pc.meta().deletion_timestamp.is_some();
        Self { spec: spec.clone(), secret_namespace, conditions, fingerprint: fingerprint(pc), deleting }
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
            pc.map(|pc| Fetched::new(&*pc, &pc.spec, Some(namespace.to_owned()), None))
        }
        ProviderConfigKind::ClusterProviderConfig => {
            let pc = match cache.cluster_configs.get(&ObjectRef::new(&r.name)) {
                Some(pc) => Some(pc),
                None => Api::<ClusterProviderConfig>::all(ctx.client.clone()).get_opt(&r.name).await?.map(Arc::new),
            };
            pc.map(|pc| {
                let secret_namespace = secret_location(&pc).map(|(namespace, _)| namespace);
                Fetched::new(&*pc, &pc.spec.config, secret_namespace, Some(pc.spec.conditions.clone()))
            })
        }
    })
}

pub(super) fn fingerprint(obj: &impl Resource) -> String {
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

/// Resolve `r` (from a resource in `namespace`) into clients, or say why it can't be used: not
/// there (yet), not serving this namespace, or not usable as it is.
pub async fn connect(
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
) -> Result<Result<Connected, Outcome>, Error> {
    connect_checked(ctx, namespace, r, false, Some(namespace)).await
}

/// `namespace`: where `r` is resolved (a ProviderConfig's own). `served`: the namespace of the
/// resource that connects, checked against what the config serves; `None` for the config
/// controller's own check. `recheck`: read the credentials Secret even when the config did not
/// change. Its content is not watched: the readiness controller rechecks every config now and
/// then, so resources reconcile without reading it.
pub(super) async fn connect_checked(
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
    recheck: bool,
    served: Option<&str>,
) -> Result<Result<Connected, Outcome>, Error> {
    let name = format!("{} {}", r.kind.as_str(), r.name);
    let cache_key = config_key(namespace, r);
    let Some(Fetched { spec, secret_namespace, conditions, fingerprint: fp, deleting }) =
        fetch(ctx, namespace, r).await?
    else {
        let in_namespace = match r.kind {
            ProviderConfigKind::ProviderConfig => format!(" in namespace {namespace}"),
            ProviderConfigKind::ClusterProviderConfig => String::new(),
        };
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("{name} not found{in_namespace}"),
        )));
    };
    // Before anything else, and whatever the cache holds: a namespace it does not serve gets
    // nothing from a shared config, not even a provider call.
    if let (Some(conditions), Some(namespace)) = (&conditions, served)
        && !tenancy::serves(conditions, namespace, &ctx.providers.namespace_labels(namespace).await)
    {
        return Ok(Err(Outcome::stalled(
            reason::NAMESPACE_NOT_ALLOWED,
            tenancy::not_served(&r.name, conditions, namespace),
        )));
    }
    let Some(secret_ns) = secret_namespace else {
        return Ok(Err(Outcome::stalled(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!(
                "{name} names no namespace for its credentials Secret: set spec.credentialsSecretRef.namespace (it no longer defaults to `default`)"
            ),
        )));
    };
    let secret_name = &spec.credentials_secret_ref.name;
    let closing = |secret_deleting: bool| {
        if deleting {
            Some(format!("{name} is being deleted"))
        } else if secret_deleting {
            Some(format!("credentials Secret {secret_ns}/{secret_name} of {name} is being deleted"))
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
    let endpoint = spec.endpoint.clone().unwrap_or_else(|| provider.descriptor().default_endpoint.to_owned());
    if !endpoint.starts_with("https://") && !ctx.settings.allow_insecure_endpoints {
        ctx.providers.entries.lock().unwrap().remove(&cache_key);
        return Ok(Err(Outcome::stalled(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!(
                "{name}'s endpoint {endpoint} is not https: credentials would cross the network in clear text (the operator allows plain http only with --allow-insecure-endpoints, for development)"
            ),
        )));
    }
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &secret_ns).get_opt(secret_name).await?;
    let Some(secret) = secret else {
        ctx.providers.entries.lock().unwrap().remove(&cache_key);
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("credentials Secret {secret_ns}/{secret_name} of {name} not found"),
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
    let rate = spec.rate_limit.clone().unwrap_or_default();
    let connection = Connection {
        provider,
        endpoint: endpoint.clone(),
        credentials,
        requests_per_second: rate.requests_per_second.max(1).unsigned_abs(),
        burst: rate.burst.max(1).unsigned_abs(),
        timeout: ctx.settings.provider_timeout,
        max_wait: ctx.settings.max_backoff,
        allow_insecure: ctx.settings.allow_insecure_endpoints,
    };
    let clients = match provider::connect(connection) {
        Ok(clients) => clients,
        Err(e) => {
            return Ok(Err(Outcome::stalled(reason::PROVIDER_CONFIG_NOT_READY, e.to_string())));
        }
    };
    let connected = Connected {
        clients,
        provider,
        endpoint,
        poll_interval: spec.poll_interval().unwrap_or(interval::DEFAULT_POLL),
        owner_id: spec.owner_id.clone().unwrap_or_else(|| ctx.settings.owner_id.clone()),
        closing: closing(secret_deleting),
        terms: Terms {
            name,
            key: cache_key.clone(),
            secret: (secret_ns.clone(), secret_name.clone()),
            adoption: tenancy::adoption_policy(r.kind, &spec),
            max_sub_accounts: spec.max_sub_accounts,
            max_opening_balance: spec.max_opening_balance,
        },
    };
    // Resources that connected at the same time (after a restart) all use the clients made
    // first: one token bucket per provider account, and one view of the purchases in flight.
    let mut entries = ctx.providers.entries.lock().unwrap();
    if let Some(e) = entries.get(&cache_key).filter(|e| !stale(e)) {
        return Ok(Ok(Connected { closing: connected.closing, ..e.connected.clone() }));
    }
    let entry =
        Entry { config: fp, secret: secret_content, secret_deleting, connected: connected.clone(), verified: None };
    entries.insert(cache_key, entry);
    Ok(Ok(connected))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
