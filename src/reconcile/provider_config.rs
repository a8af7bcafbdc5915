//! ProviderConfig and ClusterProviderConfig: resolving a reference into connected provider
//! clients (cached, so every resource of one config shares its token bucket), and the small
//! controller that reports whether a config's credentials Secret is usable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::conditions::{self, Outcome, reason};
use super::managed::Blocked;
use super::{Context, Error, Settings};
use crate::api::{
    ClusterProviderConfig, Provider, ProviderConfig, ProviderConfigKind, ProviderConfigRef, ProviderConfigSpec,
};
use crate::provider::{self, Connection, Credentials, ProviderClients, ProviderKind};
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

/// Clients per ProviderConfig, rebuilt when its spec or Secret changes.
#[derive(Default)]
pub struct ProviderCache {
    entries: Mutex<HashMap<String, (String, Connected)>>,
}

pub fn provider_kind(p: &Provider) -> ProviderKind {
    match p {
        Provider::RecoverBiz => ProviderKind::RecoverBiz,
        Provider::Vobiz => ProviderKind::Vobiz,
        Provider::AgentPhone => ProviderKind::AgentPhone,
        Provider::VobizPartner => ProviderKind::VobizPartner,
        Provider::Yardstik => ProviderKind::Yardstik,
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

/// The config a reference names, and the namespace its credentials Secret lives in.
async fn fetch(
    client: &Client,
    namespace: &str,
    r: &ProviderConfigRef,
) -> Result<Option<(ProviderConfigSpec, String, String)>, Error> {
    Ok(match r.kind {
        ProviderConfigKind::ProviderConfig => {
            Api::<ProviderConfig>::namespaced(client.clone(), namespace).get_opt(&r.name).await?.map(|pc| {
                let fp = fingerprint(&pc);
                (pc.spec, namespace.to_owned(), fp)
            })
        }
        ProviderConfigKind::ClusterProviderConfig => {
            Api::<ClusterProviderConfig>::all(client.clone()).get_opt(&r.name).await?.map(|pc| {
                let fp = fingerprint(&pc);
                let ns =
                    pc.spec.config.credentials_secret_ref.namespace.clone().unwrap_or_else(|| "default".to_owned());
                (pc.spec.config, ns, fp)
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
) -> Result<Result<Connected, Blocked>, Error> {
    let kind = r.kind.as_str();
    let Some((spec, secret_ns, fp)) = fetch(&ctx.client, namespace, r).await? else {
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("{kind} {} not found", r.name),
        )));
    };
    let provider = provider_kind(&spec.provider);
    let secret_name = &spec.credentials_secret_ref.name;
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(ctx.client.clone(), &secret_ns)
        .get_opt(secret_name)
        .await?;
    let Some(secret) = secret else {
        return Ok(Err(Outcome::progressing(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("credentials Secret {secret_ns}/{secret_name} of {kind} {} not found", r.name),
        )));
    };
    let cache_key = match r.kind {
        ProviderConfigKind::ProviderConfig => format!("{kind}/{namespace}/{}", r.name),
        ProviderConfigKind::ClusterProviderConfig => format!("{kind}/{}", r.name),
    };
    let fp = format!("{fp}/{}", secret.resource_version().unwrap_or_default());
    if let Some((cached_fp, connected)) = ctx.providers.entries.lock().unwrap().get(&cache_key)
        && *cached_fp == fp
    {
        return Ok(Ok(connected.clone()));
    }
    let credentials = secrets::get(&ctx.client, &secret_ns, secret_name).await?.unwrap_or_default();
    if let Some(missing) = missing_key(provider, &credentials) {
        return Ok(Err(Outcome::stalled(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("credentials Secret {secret_ns}/{secret_name} has no key {missing:?}, which {provider} needs"),
        )));
    }
    let endpoint = spec.endpoint.clone().unwrap_or_else(|| provider.default_endpoint().to_owned());
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
    let poll_interval = spec.poll_interval.as_deref().and_then(parse_duration).unwrap_or(Duration::from_secs(600));
    let owner_id = spec.owner_id.clone().unwrap_or_else(|| ctx.settings.owner_id.clone());
    let connected = Connected { clients, provider, endpoint, poll_interval, owner_id };
    ctx.providers.entries.lock().unwrap().insert(cache_key, (fp, connected.clone()));
    Ok(Ok(connected))
}

fn missing_key(provider: ProviderKind, credentials: &Credentials) -> Option<&'static str> {
    provider.credential_keys().iter().find(|k| credentials.get(k).is_none_or(str::is_empty)).copied()
}

/// Report whether each config's credentials Secret exists with the keys its provider needs.
pub async fn controllers(
    client: &Client,
    settings: &Settings,
    ctx: Arc<Context>,
    stop_namespaced: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    stop_cluster: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let namespaced = Controller::new(super::api::<ProviderConfig>(client, settings), watcher::Config::default())
        .graceful_shutdown_on(stop_namespaced)
        .run(
            |pc: Arc<ProviderConfig>, ctx: Arc<Context>| async move {
                let r = ProviderConfigRef { kind: ProviderConfigKind::ProviderConfig, name: pc.name_any() };
                let api = Api::<ProviderConfig>::namespaced(ctx.client.clone(), &pc.namespace().unwrap_or_default());
                let status = pc.status.as_ref().map(|s| (s.conditions.clone(), s.observed_generation));
                check(&*pc, &api, &ctx, &pc.namespace().unwrap_or_default(), &r, status).await
            },
            |_, _, _| Action::requeue(Duration::from_secs(30)),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let cluster = Controller::new(Api::<ClusterProviderConfig>::all(client.clone()), watcher::Config::default())
        .graceful_shutdown_on(stop_cluster)
        .run(
            |pc: Arc<ClusterProviderConfig>, ctx: Arc<Context>| async move {
                let r = ProviderConfigRef { kind: ProviderConfigKind::ClusterProviderConfig, name: pc.name_any() };
                let api = Api::<ClusterProviderConfig>::all(ctx.client.clone());
                let status = pc.status.as_ref().map(|s| (s.conditions.clone(), s.observed_generation));
                check(&*pc, &api, &ctx, "", &r, status).await
            },
            |_, _, _| Action::requeue(Duration::from_secs(30)),
            ctx,
        )
        .for_each(|_| async {});
    tokio::join!(namespaced, cluster);
}

async fn check<K>(
    pc: &K,
    api: &Api<K>,
    ctx: &Context,
    namespace: &str,
    r: &ProviderConfigRef,
    status: Option<(Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>, i64)>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let outcome = match connect(ctx, namespace, r).await? {
        Ok(c) => {
            Outcome::ready(reason::PROVISIONED, format!("credentials for {} at {} are present", c.provider, c.endpoint))
        }
        Err(blocked) => blocked,
    };
    let generation = pc.meta().generation.unwrap_or_default();
    let (old, observed) = status.unwrap_or_default();
    let new = conditions::conditions(&old, &outcome, generation, k8s_openapi::jiff::Timestamp::now());
    if new != old || observed != generation {
        let patch = json!({"status": {"observedGeneration": generation, "conditions": new}});
        api.patch_status(&pc.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
        if conditions::ready_reason(&old) != Some(outcome.reason) {
            let type_ = if outcome.phase == conditions::Phase::Ready {
                kube::runtime::events::EventType::Normal
            } else {
                kube::runtime::events::EventType::Warning
            };
            ctx.event(pc, type_, outcome.reason, "Check", outcome.message).await;
        }
    }
    // The Secret's content is not watched (only our own Secrets are): look again now and then.
    Ok(Action::requeue(Duration::from_secs(60)))
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
