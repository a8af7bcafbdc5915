//! PhoneNumber adapter: a number bought for (or assigned to) its parent SubAccount.

use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::conditions::reason;
use super::managed::{DeletionPolicy, EXTERNAL_ID, Managed, Resolved, Seen, Unresolved};
use super::outcome::Outcome;
use super::{Context, Error, parent};
use crate::api::{PhoneNumber, PhoneNumberDeletionPolicy, PhoneNumberStatus};
use crate::provider::{NumberSearch, NumberSpec};

impl Managed for PhoneNumber {
    type Spec = NumberSpec;
    const KIND: &'static str = "PhoneNumber";

    async fn resolve(&self, ctx: &Context, deleting: bool) -> Result<Result<Resolved<NumberSpec>, Unresolved>, Error> {
        let p = match parent::resolve(ctx, self, &self.spec.sub_account_ref.name, deleting).await? {
            Ok(p) => p,
            Err(unresolved) => return Ok(Err(unresolved)),
        };
        let Some(external) = p.connected.clients.numbers.clone() else {
            return Ok(Err(Outcome::stalled(
                reason::UNSUPPORTED_BY_PROVIDER,
                format!(
                    "{} has no phone numbers; PhoneNumber is supported for Vobiz, AgentPhone and (observe only) VobizPartner",
                    p.connected.provider
                ),
            )
            .into()));
        };
        let s = &self.spec;
        let desired = NumberSpec {
            sub_account_id: p.external_id,
            number: s.number.clone(),
            search: s
                .search
                .as_ref()
                .map(|q| NumberSearch { country: q.country.clone(), area_code: q.area_code.clone() }),
            forwarding_number: s.forwarding_number.clone(),
            claimed: claimed_by_siblings(ctx, self).await?,
            buyer: self.uid().unwrap_or_default(),
        };
        Ok(Ok(Resolved {
            provider: p.connected.provider,
            endpoint: p.connected.endpoint,
            external,
            desired,
            poll_interval: p.connected.poll_interval,
            closing: p.connected.closing,
        }))
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        match self.spec.deletion_policy {
            PhoneNumberDeletionPolicy::Release => DeletionPolicy::Delete,
            PhoneNumberDeletionPolicy::Retain => DeletionPolicy::Orphan,
        }
    }

    fn kind_status(&self, status: &mut PhoneNumberStatus, seen: &Seen) {
        if let Some(number) = &seen.number {
            status.number = Some(number.clone());
        }
    }
}

/// Numbers other PhoneNumbers of the same SubAccount already hold (their number, or their id at
/// the provider, which a sibling records before its status), so that recovering a lost purchase
/// never adopts a sibling's number.
async fn claimed_by_siblings(ctx: &Context, me: &PhoneNumber) -> Result<Vec<String>, Error> {
    let api = Api::<PhoneNumber>::namespaced(ctx.client.clone(), &me.namespace().unwrap_or_default());
    Ok(api
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|n| n.name_any() != me.name_any() && n.spec.sub_account_ref.name == me.spec.sub_account_ref.name)
        .flat_map(|n| {
            let id = n.annotations().get(EXTERNAL_ID).cloned();
            [n.status.and_then(|s| s.number), n.spec.number, id].into_iter().flatten()
        })
        .collect())
}
