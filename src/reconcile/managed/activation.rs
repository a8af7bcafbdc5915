//! Activation: bring the object's active state at the provider to `spec.active`.

use kube::runtime::events::EventType;

use super::{Managed, Resolved};
use crate::reconcile::conditions::reason;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::{Context, Error};

/// Whether the object is active now, or why its state cannot be changed.
pub async fn activation<K: Managed>(
    obj: &K,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    id: &str,
    active: bool,
    observe_only: bool,
) -> Result<Result<bool, Outcome>, Error> {
    let wanted = obj.wants_active();
    if active == wanted || observe_only {
        return Ok(Ok(active));
    }
    if !r.external.capabilities().deactivate {
        return Ok(Err(Outcome::stalled(
            reason::UNSUPPORTED_BY_PROVIDER,
            format!("{} cannot deactivate or reactivate a {}; set spec.active to true", r.provider, K::KIND),
        )));
    }
    r.external.set_active(id, wanted).await?;
    let (reason, verb) = if wanted { ("Reactivated", "reactivated") } else { ("Deactivated", "deactivated") };
    ctx.acted(obj, EventType::Normal, reason, "SetActive", format!("{id} {verb} at {}", r.provider)).await;
    Ok(Ok(wanted))
}
