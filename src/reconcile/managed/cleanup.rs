//! Deletion: act by the deletion policy and what the provider can do, and keep the finalizer (by
//! returning an error) until the provider has done it.

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::publish::{Round, publish};
use super::round::vouched;
use super::{
    DeletionAction, DeletionPolicy, EXTERNAL_ID, Managed, Unresolved, annotation, deletion_action, observe_only,
};
use crate::provider::{self, ProviderKind};
use crate::reconcile::conditions::reason;
use crate::reconcile::outcome::{Outcome, provider_outcome};
use crate::reconcile::{Context, Error, tenancy};

pub async fn cleanup<K: Managed>(obj: &K, api: &Api<K>, ctx: &Context) -> Result<Action, Error> {
    let policy = obj.deletion_policy();
    let Some(id) = annotation(obj, EXTERNAL_ID).map(str::to_owned) else {
        return Ok(Action::await_change()); // never created at the provider
    };
    if policy == DeletionPolicy::Orphan || observe_only(obj) {
        ctx.acted(obj, EventType::Normal, "Orphaned", "Delete", format!("{id} was left at the provider")).await;
        return Ok(Action::await_change());
    }
    let remaining = obj.delete_dependents(ctx).await?;
    if remaining > 0 {
        let outcome = Outcome::progressing(
            reason::DELETING,
            format!("waiting for {remaining} dependent resource(s) to be deleted first"),
        );
        publish(obj, api, ctx, Round::default(), &outcome).await?;
        return Err(Error::WaitingForDependents(remaining));
    }
    let r = match obj.resolve(ctx, true).await? {
        Ok(r) => r,
        Err(Unresolved::ParentGone(gone)) => {
            ctx.acted(obj, EventType::Normal, "Orphaned", "Delete", format!("{gone}; {id} was left as it is")).await;
            return Ok(Action::await_change());
        }
        Err(Unresolved::Outcome(outcome)) => {
            publish(obj, api, ctx, Round::default(), &outcome).await?;
            return Err(Error::Blocked(outcome.message));
        }
    };
    // An id the operator never recorded as this resource's (one a tenant put in the annotation)
    // is looked at first: what is not the resource's to manage is left alone, never deleted.
    if let Err(why) = r.provider.descriptor().check_id(K::ID_KIND, &id) {
        ctx.acted(obj, EventType::Warning, "Orphaned", "Delete", format!("{EXTERNAL_ID}: {why}; nothing was deleted"))
            .await;
        return Ok(Action::await_change());
    }
    if !vouched(obj, ctx, &id) {
        let owned = match r.external.observe(&id, &r.desired).await {
            Ok(observed) => {
                observed.map_or(Ok(()), |o| tenancy::may_manage(&id, &o.ownership, false, r.terms.adoption))
            }
            Err(e) => return failed(obj, api, ctx, r.provider, e).await,
        };
        if let Err(why) = owned {
            ctx.acted(obj, EventType::Warning, "Orphaned", "Delete", format!("{why}; it was left at the provider"))
                .await;
            return Ok(Action::await_change());
        }
    }
    let result = match deletion_action(policy, &r.external.capabilities()) {
        DeletionAction::Delete => {
            let (reason, verb) = K::DELETED;
            r.external.delete(&id, &r.desired).await.map(|()| (reason, format!("{verb} {id} at {}", r.provider)))
        }
        DeletionAction::Deactivate => match r.external.set_active(&id, false).await {
            Err(provider::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
        .map(|()| ("Deactivated", format!("deactivated {id} at {}", r.provider))),
        DeletionAction::Retain | DeletionAction::Orphan => {
            ctx.acted(
                obj,
                EventType::Warning,
                "Retained",
                "Delete",
                format!("{} can neither delete nor deactivate {id}; it was left as it is", r.provider),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    match result {
        Ok((reason, message)) => {
            ctx.acted(obj, EventType::Normal, reason, "Delete", message).await;
            Ok(Action::await_change())
        }
        Err(e) => failed(obj, api, ctx, r.provider, e).await,
    }
}

/// The provider failed the deletion: say so, and keep the finalizer (the error asks for backoff).
async fn failed<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    provider: ProviderKind,
    e: provider::Error,
) -> Result<Action, Error> {
    let outcome = Outcome { reason: reason::DELETING, ..provider_outcome(&e, provider) };
    publish(obj, api, ctx, Round::default(), &outcome).await?;
    Err(Error::Provider(e))
}
