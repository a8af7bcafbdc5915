//! Publish: the end of every round. The credentials Secret is written here and only here (then,
//! when it holds every credential for the first time, the record that they were delivered), and
//! then the status and its Event.

use kube::ResourceExt;
use kube::api::Api;
use serde_json::json;

use super::{CREDENTIALS_DELIVERED, Managed, RECONCILE_REQUESTED_AT, Seen, annotate, annotation};
use crate::provider::Credentials;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::report::report;
use crate::reconcile::{Context, Error};

/// What a round learnt, to publish at its end.
#[derive(Default)]
pub struct Round {
    pub seen: Seen,
    /// What the credentials Secret must hold, for kinds that have one.
    pub secret: Option<Delivery>,
}

pub struct Delivery {
    pub credentials: Credentials,
    /// What the Secret held when this round read it: nothing is written when that is current.
    pub stored: Credentials,
    /// Record durably that the credentials were delivered: the Secret now holds every one of
    /// them and no record says so yet.
    pub record: bool,
}

pub async fn publish<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    round: Round,
    outcome: &Outcome,
) -> Result<(), Error> {
    let uid = obj.uid().unwrap_or_default();
    if let (Some(secret), Some(delivery)) = (obj.credentials_secret(), round.secret) {
        ctx.secrets.apply(obj, &secret, &delivery.credentials, &delivery.stored).await?;
        ctx.memory.delivered(&uid);
        if delivery.record {
            annotate(api, ctx, obj, json!({CREDENTIALS_DELIVERED: k8s_openapi::jiff::Timestamp::now().to_string()}))
                .await?;
        }
    }
    let seen = &round.seen;
    let written = report(obj, api, ctx, outcome, "Reconcile", |status: &mut K::Status| {
        if let Some(id) = &seen.external_id {
            status.external_id = Some(id.clone());
        }
        if let Some(provider) = seen.provider {
            status.provider = Some(provider.as_str().to_owned());
        }
        if let Some(active) = seen.active {
            status.state = Some(if active { "Active" } else { "Deactivated" }.to_owned());
        }
        if let Some(deletion) = seen.deletion {
            status.deletion = Some(deletion.as_str().to_owned());
        }
        if let Some(token) = annotation(obj, RECONCILE_REQUESTED_AT) {
            status.reconcile_requested_at = Some(token.to_owned());
        }
        obj.kind_status(status, seen);
    })
    .await?;
    if let Some(written) = written {
        ctx.own_writes.record(written.meta());
    }
    if seen.external_id.is_some() {
        // The status holds the id now: the record of it.
        ctx.memory.recorded(&uid);
    }
    Ok(())
}
