//! Drift: fields that differ at the provider are updated in place, or reported where the
//! provider cannot update them (or the management policy is ObserveOnly).

use kube::runtime::events::EventType;

use super::{Managed, Resolved};
use crate::provider::Credentials;
use crate::reconcile::conditions::reason;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::{Context, Error};

/// `None` when the object matches the spec (again); else the drift reported.
pub async fn drift<K: Managed>(
    obj: &K,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    id: &str,
    drift: &[String],
    credentials: &Credentials,
    observe_only: bool,
) -> Result<Option<Outcome>, Error> {
    if drift.is_empty() {
        return Ok(None);
    }
    let fields = drift.join(", ");
    if observe_only || !r.external.capabilities().update {
        let why = if observe_only {
            "the management policy is ObserveOnly".to_owned()
        } else {
            format!("{} cannot update it in place", r.provider)
        };
        return Ok(Some(Outcome::stalled(
            reason::DRIFT_DETECTED,
            format!(
                "{fields} at {} differ from the spec and {why}; change the spec back or recreate the resource",
                r.provider
            ),
        )));
    }
    r.external.update(id, &r.desired, credentials).await?;
    ctx.acted(obj, EventType::Normal, "Updated", "Update", format!("updated {fields} of {id} at {}", r.provider)).await;
    Ok(None)
}
