//! Credentials: what the object's Secret must hold, from what it holds, what the provider shows,
//! and what becomes of the ones the provider will not show again (re-issue, replace the object,
//! or stall for a person).

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use super::ensure_exists::Existing;
use super::{ALLOW_REPLACE, CREDENTIALS_DELIVERED, EXTERNAL_ID, Managed, Resolved, annotation};
use crate::api::KindStatus;
use crate::provider::{self, Capabilities, Credentials, Observation};
use crate::reconcile::conditions::{self, reason};
use crate::reconcile::outcome::{Outcome, Requeue, interval};
use crate::reconcile::{Context, Error};
use crate::secrets::{Held, not_ours};

/// What the credentials step found.
pub enum Checked {
    /// The Secret's content; `complete`: every credential the provider issues is in it.
    /// `stored`: what the Secret holds now.
    Usable { credentials: Credentials, stored: Credentials, complete: bool },
    /// The round ends here; what is `known` still goes into the Secret.
    Stop { outcome: Outcome, known: Option<(Credentials, Credentials)> },
}

/// What to do about credentials the Secret lacks and the provider will not show again.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Recovery {
    /// Have the provider issue new ones (a write).
    Reissue,
    /// Delete the object and create it again: only when nobody can have received them.
    Replace,
    /// ObserveOnly: report the object without them.
    Without,
    /// A person has to act.
    Stall,
}

/// What the Secret of provider object `id` must hold: what it holds (`stored`), the keys every
/// credentials Secret has, and what the provider issued or shows (`issued`), later ones winning.
pub(super) fn assemble<S>(
    stored: Credentials,
    r: &Resolved<S>,
    id: &str,
    number: Option<&str>,
    issued: Credentials,
) -> Credentials {
    let mut credentials = stored;
    credentials.insert("provider", r.provider.as_str());
    credentials.insert("endpoint", r.endpoint.clone());
    credentials.insert("accountId", id);
    if let Some(number) = number {
        credentials.insert("phoneNumber", number);
    }
    credentials.merge(issued);
    credentials
}

/// Pure policy for lost credentials. `replaceable`: the object was created here and its
/// credentials provably never reached a Secret, or a person allowed replacing exactly it.
pub(super) fn recovery(caps: &Capabilities, observe_only: bool, replaceable: bool) -> Recovery {
    if observe_only {
        Recovery::Without
    } else if caps.reissue {
        Recovery::Reissue
    } else if caps.one_time_credentials && caps.delete && replaceable {
        Recovery::Replace
    } else {
        Recovery::Stall
    }
}

/// Whether the credentials of provider object `id` may have left the operator: the record says
/// so, or the Secret `stored` was written for it, or (for objects made before the record existed
/// whose Secret is gone) the resource was Ready, which it only is once its Secret is written.
pub(super) fn delivered<K: Managed>(obj: &K, stored: &Credentials, id: &str) -> bool {
    annotation(obj, CREDENTIALS_DELIVERED).is_some()
        || stored.get("accountId") == Some(id)
        || obj.status().is_some_and(|s| conditions::is_ready(&s.common().conditions))
}

pub async fn credentials<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    existing: &Existing,
    observed: &Observation,
    observe_only: bool,
) -> Result<Checked, Error> {
    let Some(secret) = obj.credentials_secret() else {
        return Ok(Checked::Usable {
            credentials: Credentials::default(),
            stored: Credentials::default(),
            complete: true,
        });
    };
    let caps = r.external.capabilities();
    let id = existing.id.as_str();
    let stored = match ctx.secrets.read(obj, &secret).await? {
        Held::Ours(stored) => stored,
        Held::Foreign(why) => {
            let outcome = Outcome::stalled(reason::SECRET_NOT_OWNED, not_ours(&secret, &why));
            return Ok(Checked::Stop { outcome, known: None });
        }
    };
    let delivered = existing.recorded || delivered(obj, &stored, id);
    let replaceable = (existing.created_here && !delivered) || annotation(obj, ALLOW_REPLACE) == Some(id);
    let on_loss = recovery(&caps, observe_only, replaceable);

    let mut credentials = assemble(stored.clone(), r, id, observed.number.as_deref(), observed.credentials.clone());
    // Issued by this process's create and not in the Secret yet (its write failed): ours to write
    // again, not lost.
    if let Some(issued) = ctx.memory.issued(&obj.uid().unwrap_or_default(), id) {
        credentials.merge(issued);
    }
    let missing: Vec<&str> =
        caps.issued_credential_keys.iter().copied().filter(|k| credentials.get(k).is_none()).collect();
    if missing.is_empty() {
        if r.external.credentials_accepted(id, &credentials).await? {
            return Ok(Checked::Usable { credentials, stored, complete: true });
        }
        let keys = caps.issued_credential_keys.join(", ");
        let fix = if on_loss == Recovery::Reissue {
            format!("put valid ones in the Secret, or remove {keys} from it to have new ones issued")
        } else {
            "put valid ones in the Secret".to_owned()
        };
        let outcome = Outcome::stalled(
            reason::CREDENTIALS_REJECTED,
            format!(
                "{} rejects the {keys} of {id} in Secret {secret} (re-issued or revoked elsewhere?); {fix}",
                r.provider
            ),
        );
        return Ok(Checked::Stop { outcome, known: None });
    }
    match on_loss {
        Recovery::Reissue => {
            let Some(reissued) = r.external.reissue_credentials(id, &r.desired).await? else {
                let what = format!("{id} to issue new credentials for");
                return Err(Error::Provider(provider::Error::NotFound { provider: r.provider, what }));
            };
            credentials.merge(reissued);
            let note = format!("{} issued new credentials for {id}; the Secret {secret} was updated", r.provider);
            ctx.acted(obj, EventType::Normal, "CredentialsReissued", "Reissue", note).await;
            Ok(Checked::Usable { credentials, stored, complete: true })
        }
        Recovery::Replace => {
            let outcome = replace(obj, api, ctx, r, id).await?;
            Ok(Checked::Stop { outcome, known: None })
        }
        Recovery::Without => Ok(Checked::Usable { credentials, stored, complete: false }),
        Recovery::Stall => {
            // What is known goes into the Secret, so a person only has to add the rest.
            let keys = missing.join(", ");
            let outcome = Outcome::stalled(
                reason::CREDENTIALS_LOST,
                format!(
                    "{keys} of {id} are not in Secret {secret} and {p} cannot show them again; the account is kept: rotate them at {p} and add them to the Secret, or annotate {ALLOW_REPLACE}={id} to delete it and create a new one",
                    p = r.provider
                ),
            );
            Ok(Checked::Stop { outcome, known: Some((credentials, stored)) })
        }
    }
}

/// A credential the provider shows only once was lost before it reached the Secret. Nobody can
/// have used the object, so it is replaced: forget the id first (a crash after this line is
/// recovered by the idempotency lookup), then delete, then create afresh in the next round.
async fn replace<K: Managed>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    r: &Resolved<K::Spec>,
    id: &str,
) -> Result<Outcome, Error> {
    // Not `annotate`: the watch event of this write re-queues the resource, so that the next
    // round starts from a cache that no longer holds the old id.
    let patch = json!({"metadata": {"annotations": {EXTERNAL_ID: null, CREDENTIALS_DELIVERED: null}}});
    api.patch_metadata(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    r.external.delete(id, &r.desired).await?;
    let why = if annotation(obj, ALLOW_REPLACE) == Some(id) {
        format!("as {ALLOW_REPLACE} allowed")
    } else {
        "they were never handed out".to_owned()
    };
    ctx.acted(
        obj,
        EventType::Warning,
        "Recreating",
        "Recreate",
        format!(
            "the one-time credentials of {id} were lost; {why}, so it was deleted at {} and is being created again",
            r.provider
        ),
    )
    .await;
    Ok(Outcome::progressing(reason::CREATING, format!("replacing {id}, whose one-time credentials were lost"))
        .requeue(Requeue::After(interval::NEXT_ROUND)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_credentials_are_replaced_only_when_nobody_can_have_them() {
        let vobiz = Capabilities { delete: true, one_time_credentials: true, ..Default::default() };
        let yardstik = Capabilities { reissue: true, ..Default::default() };
        let partner = Capabilities::default();
        assert_eq!(recovery(&vobiz, false, true), Recovery::Replace);
        assert_eq!(recovery(&vobiz, false, false), Recovery::Stall, "delivered: never deleted");
        assert_eq!(recovery(&vobiz, true, true), Recovery::Without, "ObserveOnly never writes");
        assert_eq!(recovery(&yardstik, false, false), Recovery::Reissue);
        assert_eq!(recovery(&yardstik, true, false), Recovery::Without, "a re-issue is a write");
        assert_eq!(recovery(&partner, false, true), Recovery::Stall, "no delete: nothing to replace with");
    }
}
