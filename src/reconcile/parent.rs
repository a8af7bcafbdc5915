//! Children of a SubAccount (TeamMember, PhoneNumber): finding the parent, waiting for it to be
//! Ready, owning the child to it, and connecting through its ProviderConfig.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::conditions::{self, reason};
use super::managed::{EXTERNAL_ID, Managed, Unresolved};
use super::outcome::Outcome;
use super::provider_config::{Connected, connect};
use super::{Context, Error};
use crate::api::SubAccount;

/// A ready parent: its provider id and its provider's clients.
pub struct Parent {
    pub external_id: String,
    pub connected: Connected,
}

/// Resolve `child`'s parent SubAccount `name`. While deleting, a parent that is gone (or never
/// reached the provider) is [`Unresolved::ParentGone`]: nothing is left to clean up.
pub async fn resolve<K: Managed>(
    ctx: &Context,
    child: &K,
    name: &str,
    deleting: bool,
) -> Result<Result<Parent, Unresolved>, Error> {
    let namespace = child.namespace().unwrap_or_default();
    let gone = || Unresolved::ParentGone(format!("SubAccount {name} and its provider account are gone"));
    let Some(parent) = Api::<SubAccount>::namespaced(ctx.client.clone(), &namespace).get_opt(name).await? else {
        return Ok(Err(if deleting {
            gone()
        } else {
            Outcome::progressing(reason::SUB_ACCOUNT_NOT_READY, format!("SubAccount {name} not found")).into()
        }));
    };
    // The id the operator recorded in the parent's status (which tenants cannot write), and only
    // while its annotation agrees: a changed annotation is the parent's to check first.
    let annotated = parent.annotations().get(EXTERNAL_ID).cloned();
    let recorded = parent.status.as_ref().and_then(|s| s.external_id.clone());
    let external_id = match (recorded, annotated) {
        (Some(recorded), Some(annotated)) if recorded == annotated => Some(recorded),
        // Cleaning up: where the children were made, or (never recorded) where they may be.
        (Some(recorded), _) if deleting => Some(recorded),
        (None, annotated) if deleting => annotated,
        _ => None,
    };
    if deleting {
        let Some(external_id) = external_id else {
            return Ok(Err(gone()));
        };
        return Ok(connect(ctx, &namespace, &parent.spec.provider_config_ref)
            .await?
            .map(|connected| Parent { external_id, connected })
            .map_err(Unresolved::from));
    }
    own(ctx, child, &parent).await?;
    let ready = parent.status.as_ref().is_some_and(|s| conditions::is_ready(&s.conditions));
    let (true, Some(external_id)) = (ready, external_id) else {
        return Ok(Err(Outcome::progressing(
            reason::SUB_ACCOUNT_NOT_READY,
            format!("waiting for SubAccount {name} to be Ready"),
        )
        .into()));
    };
    Ok(connect(ctx, &namespace, &parent.spec.provider_config_ref)
        .await?
        .map(|connected| Parent { external_id, connected })
        .map_err(Unresolved::from))
}

/// The owner reference that lets the garbage collector remove the child with its parent.
async fn own<K: Managed>(ctx: &Context, child: &K, parent: &SubAccount) -> Result<(), Error> {
    let Some(owner) = parent.controller_owner_ref(&()) else {
        return Ok(());
    };
    let refs = child.owner_references();
    if refs.iter().any(|r| r.uid == owner.uid) {
        return Ok(());
    }
    let mut all = refs.to_vec();
    all.push(owner);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &child.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"ownerReferences": all, "resourceVersion": child.resource_version()}});
    api.patch_metadata(&child.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}
