//! Reporting an [`Outcome`] on any kind: its status from the typed status struct, written only
//! when it changes, and an Event when the outcome differs from the last one reported.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::conditions;
use super::outcome::Outcome;
use super::{Context, Error};
use crate::api::KindStatus;

/// `fill` adds the kind's own fields to the status; the conditions and observedGeneration come
/// from `outcome`. `action` is the Event's action. Returns the object as written, if the status
/// changed.
pub async fn report<K>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    outcome: &Outcome,
    action: &str,
    fill: impl FnOnce(&mut K::Status),
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + Debug,
    K::Status: KindStatus,
{
    let current = obj.status().cloned().unwrap_or_default();
    let old = &current.common().conditions;
    let generation = obj.meta().generation.unwrap_or_default();
    let mut status = current.clone();
    fill(&mut status);
    let common = status.common_mut();
    common.observed_generation = generation;
    common.conditions = conditions::conditions(old, outcome, generation, k8s_openapi::jiff::Timestamp::now());
    let mut written = None;
    if obj.status() != Some(&status) {
        let patch = json!({ "status": status });
        written = Some(api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?);
    }
    let old_ready = conditions::ready(old);
    if old_ready.is_none_or(|c| c.reason != outcome.reason || c.message != outcome.message) {
        ctx.event(obj, outcome.event, outcome.reason, action, outcome.message.clone()).await;
    }
    Ok(written)
}
