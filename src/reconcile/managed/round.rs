//! One round: resolve, run the steps in order, publish what they found whatever step the round
//! ended in, and tell the controller when to look again.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use super::credentials::{self, Checked};
use super::ensure_exists::{self, Exists};
use super::publish::{self, Delivery, Round};
use super::{
    DeletionAction, EXTERNAL_ID, Managed, RECONCILE_REQUESTED_AT, Resolved, activation, annotation, deletion_action,
    drift, jittered, observe_only,
};
use crate::api::KindStatus;
use crate::reconcile::conditions::{self, reason};
use crate::reconcile::outcome::{Outcome, Requeue, interval, provider_outcome};
use crate::reconcile::{Context, Error, tenancy};

/// One round: resolve, run the steps, publish what they found, and say when to look again.
pub async fn apply<K: Managed>(obj: &K, api: &Api<K>, ctx: &Context) -> Result<Action, Error> {
    let status = obj.status().cloned().unwrap_or_default();
    let generation = obj.meta().generation.unwrap_or_default();
    let requested = annotation(obj, RECONCILE_REQUESTED_AT);
    let request_is_new = requested.is_some() && status.reconcile_requested_at.as_deref() != requested;
    if conditions::stalled_terminally(&status.common().conditions, generation) && !request_is_new {
        // The provider refused this exact spec: asking again cannot help.
        return Ok(Action::await_change());
    }
    let r = match obj.resolve(ctx, false).await? {
        Ok(r) => r,
        Err(unresolved) => {
            let outcome = unresolved.into_outcome();
            publish::publish(obj, api, ctx, Round::default(), &outcome).await?;
            return Ok(next(outcome.requeue, interval::UNRESOLVED_STALL).unwrap_or_else(Action::await_change));
        }
    };
    let (round, ended) = steps(obj, api, ctx, &r).await;
    let (outcome, failure) = match ended {
        Ok(outcome) => (outcome, None),
        Err(Error::Provider(e)) => (provider_outcome(&e, r.provider), Some(Error::Provider(e))),
        Err(e) => return Err(e),
    };
    publish::publish(obj, api, ctx, round, &outcome).await?;
    match (next(outcome.requeue, jittered(r.poll_interval)), failure) {
        (Some(action), _) => Ok(action),
        (None, Some(e)) => Err(e),
        (None, None) => Err(Error::Blocked(outcome.message)),
    }
}

/// The controller's action for `requeue`; `None` for a backoff, which failing the reconcile
/// asks for.
fn next(requeue: Requeue, poll: Duration) -> Option<Action> {
    match requeue {
        Requeue::Poll => Some(Action::requeue(poll)),
        Requeue::After(delay) => Some(Action::requeue(delay)),
        Requeue::OnChange => Some(Action::await_change()),
        Requeue::Backoff => None,
    }
}

/// Steps from ensure-exists to drift, each returning its typed result, which only this function
/// records into the round; the round is published whatever step it ended in.
async fn steps<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
) -> (Round, Result<Outcome, Error>) {
    let caps = r.external.capabilities();
    let observe_only = observe_only(obj);
    let mut round = Round::default();
    round.seen.provider = Some(r.provider);
    round.seen.deletion =
        Some(if observe_only { DeletionAction::Orphan } else { deletion_action(obj.deletion_policy(), &caps) });
    let ended: Result<Outcome, Error> = async {
        let existing = match ensure_exists::ensure_exists(obj, api, ctx, r, observe_only).await? {
            Exists::Existing(existing) => existing,
            Exists::Created { id, number, secret, complete, settled } => {
                round.seen.external_id = Some(id.clone());
                round.secret = secret.map(|(credentials, stored)| Delivery { credentials, stored, record: complete });
                if settled && obj.wants_active() {
                    // Made from the spec a moment ago: active and without drift. The next poll
                    // observes it; observing now would cost a provider call per create.
                    round.seen.active = Some(true);
                    round.seen.number = number;
                    return Ok(settled_outcome(r, &id, false, false, true));
                }
                return Ok(Outcome::progressing(
                    reason::CREATING,
                    format!("created {id} at {}; looking at it next", r.provider),
                )
                .requeue(Requeue::After(interval::NEXT_ROUND)));
            }
            Exists::Refused(outcome) => return Ok(outcome),
        };
        let id = existing.id.clone();
        let Some(observed) = r.external.observe(&id, &r.desired).await? else {
            return Ok(Outcome::stalled(
                reason::EXTERNAL_MISSING,
                format!(
                    "{} object {id} no longer exists at {}; remove the {EXTERNAL_ID} annotation to create a new one",
                    K::KIND,
                    r.provider
                ),
            ));
        };
        // Nothing is read from, written to or reported of an object that is not the resource's
        // to manage (one a tenant named in the annotation without owning it).
        if let Err(why) = tenancy::may_manage(&id, &observed.ownership, vouched(obj, ctx, &id), r.terms.adoption) {
            return Ok(Outcome::stalled(reason::EXTERNAL_NOT_OWNED, why));
        }
        round.seen.external_id = Some(id.clone());
        round.seen.number = observed.number.clone();
        round.seen.active = Some(observed.active);

        let (credentials, stored, complete) =
            match credentials::credentials(obj, api, ctx, r, &existing, &observed, observe_only).await? {
                Checked::Usable { credentials, stored, complete } => (credentials, stored, complete),
                Checked::Stop { outcome, known } => {
                    round.secret = known.map(|(credentials, stored)| Delivery { credentials, stored, record: false });
                    return Ok(outcome);
                }
            };
        round.secret =
            Some(Delivery { credentials: credentials.clone(), stored, record: complete && !existing.recorded });

        match activation::activation(obj, ctx, r, &id, observed.active, observe_only).await? {
            Ok(active) => round.seen.active = Some(active),
            Err(outcome) => return Ok(outcome),
        }
        if let Some(outcome) = drift::drift(obj, ctx, r, &id, &observed.drift, &credentials, observe_only).await? {
            return Ok(outcome);
        }
        Ok(settled_outcome(r, &id, round.seen.active == Some(false), observe_only, complete))
    }
    .await;
    (round, ended)
}

/// Whether the operator itself recorded `id` as the resource's: in its status (which tenants
/// cannot write), or in this process's memory (made here, before the status says so).
pub(super) fn vouched<K: Managed>(obj: &K, ctx: &Context, id: &str) -> bool {
    let recorded = obj.status().and_then(|s| s.external_id.as_deref()) == Some(id);
    recorded || ctx.memory.vouches_for(&obj.uid().unwrap_or_default(), id)
}

/// Where a round that ran every step leaves the resource.
fn settled_outcome<S>(r: &Resolved<S>, id: &str, deactivated: bool, observe_only: bool, complete: bool) -> Outcome {
    if deactivated {
        Outcome::ready(reason::DEACTIVATED, format!("{id} is deactivated at {}", r.provider))
    } else if observe_only && !complete {
        Outcome::ready(
            reason::OBSERVED,
            format!(
                "{id} exists at {} and matches the spec (ObserveOnly: credentials it only issues on a write are not in the Secret)",
                r.provider
            ),
        )
    } else if observe_only {
        Outcome::ready(reason::OBSERVED, format!("{id} exists at {} and matches the spec (ObserveOnly)", r.provider))
    } else {
        Outcome::ready(reason::PROVISIONED, format!("{id} is provisioned at {}", r.provider))
    }
}
