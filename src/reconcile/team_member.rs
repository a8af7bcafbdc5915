//! TeamMember adapter: a member invited into its parent SubAccount's provider account.

use super::conditions::reason;
use super::managed::{DeletionPolicy, Managed, Resolved, Unresolved};
use super::outcome::Outcome;
use super::{Context, Error, parent};
use crate::api::{TeamMember, TeamMemberDeletionPolicy};
use crate::provider::IdKind;
use crate::provider::MemberSpec;

impl Managed for TeamMember {
    type Spec = MemberSpec;
    const KIND: &'static str = "TeamMember";
    const ID_KIND: IdKind = IdKind::Member;

    async fn resolve(&self, ctx: &Context, deleting: bool) -> Result<Result<Resolved<MemberSpec>, Unresolved>, Error> {
        let p = match parent::resolve(ctx, self, &self.spec.sub_account_ref.name, deleting).await? {
            Ok(p) => p,
            Err(unresolved) => return Ok(Err(unresolved)),
        };
        let Some(external) = p.connected.clients.members.clone() else {
            return Ok(Err(Outcome::stalled(
                reason::UNSUPPORTED_BY_PROVIDER,
                format!("{} has no team members; TeamMember is supported for RecoverBiz", p.connected.provider),
            )
            .into()));
        };
        let s = &self.spec;
        let desired = MemberSpec {
            sub_account_id: p.external_id,
            email: s.email.clone(),
            name: s.name.clone(),
            role: s.role.as_str().to_ascii_lowercase(),
            phone_number: s.phone_number.clone(),
            forwarding_number: s.forwarding_number.clone(),
        };
        Ok(Ok(Resolved::through(p.connected, external, desired)))
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        match self.spec.deletion_policy {
            TeamMemberDeletionPolicy::Delete => DeletionPolicy::Delete,
            TeamMemberDeletionPolicy::Orphan => DeletionPolicy::Orphan,
        }
    }
}
