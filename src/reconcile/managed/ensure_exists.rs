//! Ensure exists: the crash-safe create protocol. Mark the create as pending (optimistic lock),
//! look for an object an earlier attempt (or an earlier life of the cluster) made, and only then
//! create; the new id is persisted before anything else, and the round then ends by publishing
//! the credentials to the Secret. ObserveOnly only looks.

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use super::credentials::assemble;
use super::{CREATE_PENDING, CREDENTIALS_DELIVERED, EXTERNAL_ID, FINALIZER, Managed, Resolved, annotate, annotation};
use crate::api::AdoptionPolicy;
use crate::provider::Credentials;
use crate::reconcile::conditions::reason;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::{Context, Error};
use crate::secrets::{Held, not_ours};

/// How the resource stands with its provider object.
pub enum Exists {
    /// It has one, made earlier or found now.
    Existing(Existing),
    /// One was created this round. `secret` (for kinds with a Secret): what the Secret must
    /// hold now, and what it held, `complete` when that is every credential the provider issues (always, for kinds
    /// without a Secret). `settled`: the create's response says all there is to know (nothing
    /// failed after it, every credential is in hand), so it stands for the first observation.
    Created {
        id: String,
        number: Option<String>,
        secret: Option<(Credentials, Credentials)>,
        complete: bool,
        settled: bool,
    },
    /// Nothing may be created or adopted, and why.
    Refused(Outcome),
}

pub struct Existing {
    pub id: String,
    /// This resource created it (or was creating it): only such an object may ever be replaced,
    /// as one a user handed over for adoption may be in use.
    pub created_here: bool,
    /// A durable record says its credentials were (or may have been) handed out.
    pub recorded: bool,
}

pub async fn ensure_exists<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    observe_only: bool,
) -> Result<Exists, Error> {
    let earlier_attempt = annotation(obj, CREATE_PENDING).is_some();
    let recorded = annotation(obj, CREDENTIALS_DELIVERED).is_some();
    if let Some(id) = annotation(obj, EXTERNAL_ID) {
        // Anyone who may edit the resource may write the annotation: it must be an id, and only
        // an id, before it goes into a request.
        if let Err(why) = r.provider.descriptor().check_id(K::ID_KIND, id) {
            return Ok(Exists::Refused(Outcome::stalled(reason::INVALID_EXTERNAL_ID, format!("{EXTERNAL_ID}: {why}"))));
        }
        return Ok(Exists::Existing(Existing { id: id.to_owned(), created_here: earlier_attempt, recorded }));
    }
    let caps = r.external.capabilities();
    if !observe_only && !earlier_attempt {
        // Optimistic lock: if another writer (or a stale cache) got here first this fails with a
        // conflict and the object is looked at again with fresh data. The finalizer goes on with
        // the mark (see `before_first_create`); the lock makes replacing the list safe.
        let mut finalizers = obj.finalizers().to_vec();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            finalizers.push(FINALIZER.to_owned());
        }
        let patch = json!({"metadata": {
            "resourceVersion": obj.resource_version(),
            "finalizers": finalizers,
            "annotations": {CREATE_PENDING: k8s_openapi::jiff::Timestamp::now().to_string()},
        }});
        let written = api.patch_metadata(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
        ctx.own_writes.record(&written.metadata);
    }
    // A first attempt can only find what an earlier life of the cluster made, long ago; after an
    // attempt whose response may have been lost, what it made moments ago.
    let found = match (caps.lookup, earlier_attempt) {
        (false, _) => None,
        (true, true) => r.external.find(&r.desired).await?,
        (true, false) => r.external.find_made_earlier(&r.desired).await?,
    };
    if let Some(id) = found {
        return adopt(obj, api, ctx, r, id, earlier_attempt, observe_only, recorded).await;
    }
    if observe_only {
        return Ok(Exists::Refused(Outcome::stalled(
            reason::EXTERNAL_MISSING,
            format!(
                "ObserveOnly: no matching object found at {}; set the {EXTERNAL_ID} annotation to the object to observe",
                r.provider
            ),
        )));
    }
    if let Some(closing) = &r.closing {
        return Ok(Exists::Refused(Outcome::stalled(
            reason::PROVIDER_CONFIG_NOT_READY,
            format!("{closing}: the config serves only the resources it already has, so no new {} is created", K::KIND),
        )));
    }
    let desired = match obj.before_create(ctx, api, r).await? {
        Ok(desired) => desired,
        Err(refused) => return Ok(Exists::Refused(refused)),
    };
    let uid = obj.uid().unwrap_or_default();
    ctx.memory.attempted(&uid);
    let created = r.external.create(&desired).await?;
    tracing::info!(kind = K::KIND, namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any(),
        id = %created.id, provider = %r.provider, "created at the provider");
    ctx.memory.made(&uid, &created.id);
    if obj.credentials_secret().is_some() && !created.credentials.0.is_empty() {
        ctx.memory.undelivered(&uid, &created.id, created.credentials.clone());
    }
    annotate(api, ctx, obj, json!({EXTERNAL_ID: created.id})).await?;
    let mut complete = true;
    let secret = match obj.credentials_secret() {
        Some(secret) => {
            let stored = match ctx.secrets.read_own(obj, &secret).await? {
                Held::Ours(stored) => stored,
                // Made one moment ago (checked before the create): its credentials wait in
                // memory for the Secret to be sorted out.
                Held::Foreign(why) => {
                    return Ok(Exists::Refused(Outcome::stalled(reason::SECRET_NOT_OWNED, not_ours(&secret, &why))));
                }
            };
            let credentials = assemble(stored.clone(), r, &created.id, created.number.as_deref(), created.credentials);
            complete = credentials.has_all(caps.issued_credential_keys);
            Some((credentials, stored))
        }
        None => None,
    };
    let settled = complete && created.warning.is_none();
    if let Some(warning) = created.warning {
        ctx.event(obj, EventType::Warning, "CreateIncomplete", "Create", warning).await;
    }
    Ok(Exists::Created { id: created.id, number: created.number, secret, complete, settled })
}

/// Take over `id`, found by the idempotency lookup, unless another resource manages it. Found on
/// a first attempt, it was made in an earlier life of the cluster (rebuilt from the same
/// manifests), and its credentials may be in use.
#[allow(clippy::too_many_arguments)]
async fn adopt<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    id: String,
    earlier_attempt: bool,
    observe_only: bool,
    recorded: bool,
) -> Result<Exists, Error> {
    // A same-named object proves nothing where the provider keeps no key: under a config that
    // takes over only what its resources made, it is this resource's only if this process just
    // sent the create it may be the result of.
    let caps = r.external.capabilities();
    let vouched = ctx.memory.vouches_for(&obj.uid().unwrap_or_default(), &id);
    if !caps.provable && r.terms.adoption == AdoptionPolicy::OwnedOnly && !vouched {
        return Ok(Exists::Refused(Outcome::stalled(
            reason::EXTERNAL_NOT_OWNED,
            format!(
                "found {id} at {} under the name this {} would use, but nothing shows it is this resource's, and {} takes over only what its own resources made (adoptionPolicy OwnedOnly); rename it here, or have the platform team set adoptionPolicy Any",
                r.provider,
                K::KIND,
                r.terms.name
            ),
        )));
    }
    if let Some(other) = obj.managed_elsewhere(ctx, &id).await? {
        return Ok(Exists::Refused(Outcome::stalled(
            reason::EXTERNAL_IN_USE,
            format!(
                "the {} object {id} that this {} would map to is already managed by {other}; change this one (e.g. its name at {}), or set the {EXTERNAL_ID} annotation to {id} to share it deliberately",
                r.provider,
                K::KIND,
                r.provider
            ),
        )));
    }
    let from_earlier_life = !earlier_attempt && !observe_only;
    if from_earlier_life {
        annotate(api, ctx, obj, json!({EXTERNAL_ID: id, CREDENTIALS_DELIVERED: "earlier-life"})).await?;
    } else {
        annotate(api, ctx, obj, json!({EXTERNAL_ID: id})).await?;
    }
    let when = if earlier_attempt { "an earlier attempt" } else { "an earlier life of this resource" };
    ctx.acted(
        obj,
        EventType::Normal,
        "Adopted",
        "Create",
        format!("found {id} at {} (created by {when}) and adopted it", r.provider),
    )
    .await;
    Ok(Exists::Existing(Existing { id, created_here: earlier_attempt, recorded: recorded || from_earlier_life }))
}
