//! PhoneNumber adapter: a number bought for (or assigned to) its parent SubAccount.

use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::{Map, Value, json};

use super::conditions::{Outcome, reason};
use super::managed::{Blocked, DeletionPolicy, Managed, Resolved, Seen};
use super::{Context, Error, parent};
use crate::api::{PhoneNumber, PhoneNumberDeletionPolicy};
use crate::provider::{NumberSearch, NumberSpec};

impl Managed for PhoneNumber {
    type Spec = NumberSpec;
    const KIND: &'static str = "PhoneNumber";

    async fn resolve(&self, ctx: &Context, deleting: bool) -> Result<Result<Resolved<NumberSpec>, Blocked>, Error> {
        let p = match parent::resolve(ctx, self, &self.spec.sub_account_ref.name, deleting).await? {
            Ok(p) => p,
            Err(blocked) => return Ok(Err(blocked)),
        };
        let Some(external) = p.connected.clients.numbers.clone() else {
            return Ok(Err(Outcome::stalled(
                reason::UNSUPPORTED_BY_PROVIDER,
                format!(
                    "{} has no phone numbers; PhoneNumber is supported for Vobiz, AgentPhone and (observe only) VobizPartner",
                    p.connected.provider
                ),
            )));
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

    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }

    fn extra_status(&self, seen: &Seen) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(number) = &seen.number {
            m.insert("number".into(), json!(number));
        }
        m
    }
}

/// Numbers other PhoneNumbers of the same SubAccount already hold, so that recovering a lost
/// purchase never adopts a sibling's number.
async fn claimed_by_siblings(ctx: &Context, me: &PhoneNumber) -> Result<Vec<String>, Error> {
    let api = Api::<PhoneNumber>::namespaced(ctx.client.clone(), &me.namespace().unwrap_or_default());
    Ok(api
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|n| n.name_any() != me.name_any() && n.spec.sub_account_ref.name == me.spec.sub_account_ref.name)
        .filter_map(|n| n.status.and_then(|s| s.number).or(n.spec.number))
        .collect())
}
