//! The config controller: reports whether each config is usable (its credentials Secret holds
//! the keys its provider needs, it serves some namespace), how many SubAccounts hold an account
//! through it, and keeps a config in use, and its Secret, from going ([`in_use`]).

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::object::HasStatus;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::connect::{Connected, connect_checked, secret_location};
use crate::api::{ClusterProviderConfig, ProviderConfig, ProviderConfigKind, ProviderConfigRef, ProviderConfigStatus};
use crate::provider::ErrorClass;
use crate::reconcile::conditions::reason;
use crate::reconcile::in_use;
use crate::reconcile::outcome::{Outcome, interval};
use crate::reconcile::report::report;
use crate::reconcile::{Context, Error};

pub(super) async fn run(
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
                check(&*pc, &api, &ctx, Some(&namespace), &r, Some(secret), false).await
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
                let secret = secret_location(&pc).filter(|_| ctx.settings.watch_namespace.is_none());
                check(&*pc, &api, &ctx, None, &r, secret, pc.spec.conditions.is_empty()).await
            },
            |_, _, _| Action::requeue(interval::CONFIG_CHECK_FAILED),
            ctx,
        )
        .for_each(|_| async {});
    tokio::join!(namespaced, cluster);
}

/// Whether the config's endpoint answers and accepts its credentials: one read, made when the
/// config or its Secret changed and again now and then (a failure sooner), so that a wrong
/// endpoint or key shows on the config itself rather than on each of its resources.
async fn verified(ctx: &Context, c: &Connected) -> Result<(), Outcome> {
    if let Some(result) = ctx.providers.verified(&c.terms.key) {
        return result;
    }
    let result = c.clients.sub_accounts.verify().await.map_err(|e| {
        let (secret_ns, secret) = &c.terms.secret;
        match e.class() {
            ErrorClass::Auth => Outcome::stalled(
                reason::CREDENTIALS_INVALID,
                format!("{e}; check the credentials in Secret {secret_ns}/{secret}"),
            ),
            _ => Outcome::progressing(
                reason::PROVIDER_UNAVAILABLE,
                format!("{e} (checking {} at {})", c.provider, c.endpoint),
            )
            .event(EventType::Warning),
        }
    });
    ctx.providers.record_verified(&c.terms.key, result.clone());
    result
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Report on config `pc` and, when its users are known (`secret`, where its credentials Secret
/// is, is given), keep the in-use finalizer on it and its Secret exactly while it has users.
/// `serves_none`: a ClusterProviderConfig without conditions, usable by no namespace: said on it,
/// where its owner looks (after an upgrade from a release without `spec.conditions`, its
/// resources stop until it names some).
async fn check<K>(
    pc: &K,
    api: &Api<K>,
    ctx: &Context,
    namespace: Option<&str>,
    r: &ProviderConfigRef,
    secret: Option<(String, String)>,
    serves_none: bool,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + HasStatus<Status = ProviderConfigStatus> + Clone + DeserializeOwned + Debug,
{
    let connected = connect_checked(ctx, namespace.unwrap_or_default(), r, true, None).await?;
    let deleting = pc.meta().deletion_timestamp.is_some();
    let users = secret.as_ref().map(|_| ctx.providers.users(r, namespace.unwrap_or_default()));
    if let (Some((secret_namespace, secret_name)), Some(users)) = (&secret, &users) {
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
    let in_use = users.as_deref().unwrap_or_default();
    let outcome = match connected {
        Ok(_) if deleting && !in_use.is_empty() => Outcome::progressing(
            reason::DELETING,
            format!(
                "being deleted: waits until the {} using it are deleted, with their TeamMembers and PhoneNumbers",
                in_use::describe(in_use)
            ),
        ),
        Ok(c) => match c.closing {
            Some(closing) if !in_use.is_empty() => Outcome::progressing(
                reason::DELETING,
                format!(
                    "{closing}: it stays while the {} using it exist; nothing new is created through this config",
                    in_use::describe(in_use)
                ),
            ),
            Some(closing) => Outcome::progressing(reason::DELETING, closing),
            None if serves_none => Outcome::stalled(
                reason::NAMESPACE_NOT_ALLOWED,
                "serves no namespace: spec.conditions names none; add the tenants' namespaces by name or label selector ([{namespaceSelector: {}}] serves every namespace)",
            ),
            None => match verified(ctx, &c).await {
                Ok(()) => Outcome::ready(
                    reason::PROVISIONED,
                    format!("{} at {} accepts the credentials", c.provider, c.endpoint),
                ),
                Err(refused) => refused,
            },
        },
        Err(unusable) => unusable.event(EventType::Warning),
    };
    let counted = users.as_ref().map(|u| count(u.len()));
    report(pc, api, ctx, &outcome, "Check", |s| s.sub_accounts = counted).await?;
    Ok(Action::requeue(interval::SECRET_RECHECK))
}
