//! Pure status policy: how a reconcile attempt ended ([`Outcome`]) becomes the kstatus
//! conditions `Ready`, `Reconciling` and `Stalled`, with `lastTransitionTime` moving only when a
//! condition's status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::outcome::{Outcome, Phase};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Condition reasons (PascalCase, stable: dashboards and alerts key on them).
pub mod reason {
    pub const PROVISIONED: &str = "Provisioned";
    pub const OBSERVED: &str = "Observed";
    pub const CREATING: &str = "Creating";
    pub const DEACTIVATED: &str = "Deactivated";
    pub const RATE_LIMITED: &str = "RateLimited";
    pub const PROVIDER_UNAVAILABLE: &str = "ProviderUnavailable";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const PROVIDER_REJECTED: &str = "ProviderRejected";
    pub const UNSUPPORTED_BY_PROVIDER: &str = "UnsupportedByProvider";
    pub const PROVIDER_CONFIG_NOT_READY: &str = "ProviderConfigNotReady";
    pub const SUB_ACCOUNT_NOT_READY: &str = "SubAccountNotReady";
    pub const SUB_ACCOUNT_GONE: &str = "SubAccountGone";
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    pub const CREDENTIALS_LOST: &str = "CredentialsLost";
    pub const CREDENTIALS_REJECTED: &str = "CredentialsRejected";
    pub const EXTERNAL_IN_USE: &str = "ExternalObjectInUse";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const EXTERNAL_MISSING: &str = "ExternalObjectMissing";
    pub const DELETING: &str = "Deleting";
    /// A ClusterProviderConfig that does not serve the resource's namespace.
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    /// A limit of the configuration (`maxSubAccounts`, `maxOpeningBalance`).
    pub const LIMIT_REACHED: &str = "LimitReached";
    /// A provider object the resource may not manage (adoptionPolicy OwnedOnly).
    pub const EXTERNAL_NOT_OWNED: &str = "ExternalObjectNotOwned";
    /// A `tenantline.io/external-id` that is no id of the provider's.
    pub const INVALID_EXTERNAL_ID: &str = "InvalidExternalId";
    /// A credentials Secret that tenantline did not create for this resource.
    pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
}

/// The three conditions for `outcome`, keeping `lastTransitionTime` of conditions whose status
/// did not change. Other condition types already present are kept as they are.
pub fn conditions(existing: &[Condition], outcome: &Outcome, generation: i64, now: Timestamp) -> Vec<Condition> {
    let flag = |on: bool| if on { "True" } else { "False" };
    let wanted = [
        (READY, outcome.phase == Phase::Ready),
        (RECONCILING, outcome.phase == Phase::Progressing),
        (STALLED, outcome.phase == Phase::Stalled),
    ];
    let mut out: Vec<Condition> =
        existing.iter().filter(|c| !wanted.iter().any(|(t, _)| *t == c.type_)).cloned().collect();
    for (type_, on) in wanted {
        let status = flag(on).to_owned();
        let last_transition_time = existing
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(Condition {
            type_: type_.to_owned(),
            status,
            reason: outcome.reason.to_owned(),
            message: outcome.message.clone(),
            observed_generation: Some(generation),
            last_transition_time,
        });
    }
    out
}

/// The `Ready` condition among `conditions`.
pub fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

/// Whether `conditions` say Ready=True.
pub fn is_ready(conditions: &[Condition]) -> bool {
    ready(conditions).is_some_and(|c| c.status == "True")
}

/// Whether the object was left stalled on a terminal provider answer for exactly this generation:
/// then nothing is sent to the provider again until the spec changes.
pub fn stalled_terminally(conditions: &[Condition], generation: i64) -> bool {
    conditions.iter().any(|c| {
        c.type_ == STALLED
            && c.status == "True"
            && c.observed_generation == Some(generation)
            && matches!(
                c.reason.as_str(),
                reason::PROVIDER_REJECTED | reason::UNSUPPORTED_BY_PROVIDER | reason::INVALID_SPEC
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn get<'a>(c: &'a [Condition], t: &str) -> &'a Condition {
        c.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn ready_sets_all_three_kstatus_conditions() {
        let c = conditions(&[], &Outcome::ready(reason::PROVISIONED, "ok"), 3, at(10));
        assert_eq!(get(&c, READY).status, "True");
        assert_eq!(get(&c, RECONCILING).status, "False");
        assert_eq!(get(&c, STALLED).status, "False");
        assert!(c.iter().all(|c| c.observed_generation == Some(3) && c.reason == "Provisioned"));
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = conditions(&[], &Outcome::progressing(reason::CREATING, "creating"), 1, at(10));
        let again = conditions(&first, &Outcome::progressing(reason::RATE_LIMITED, "wait"), 1, at(20));
        assert_eq!(get(&again, RECONCILING).last_transition_time, Time(at(10)));
        assert_eq!(get(&again, RECONCILING).reason, "RateLimited");
        let ready = conditions(&again, &Outcome::ready(reason::PROVISIONED, "ok"), 1, at(30));
        assert_eq!(get(&ready, READY).last_transition_time, Time(at(30)));
        assert_eq!(get(&ready, RECONCILING).last_transition_time, Time(at(30)));
        // Stalled was False throughout.
        assert_eq!(get(&ready, STALLED).last_transition_time, Time(at(10)));
    }

    #[test]
    fn foreign_conditions_are_kept() {
        let foreign = Condition {
            type_: "Custom".into(),
            status: "True".into(),
            reason: "X".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(at(1)),
        };
        let c = conditions(&[foreign], &Outcome::ready(reason::PROVISIONED, "ok"), 1, at(2));
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn terminal_stall_holds_only_for_its_generation() {
        let c = conditions(&[], &Outcome::stalled(reason::PROVIDER_REJECTED, "dup"), 4, at(1));
        assert!(stalled_terminally(&c, 4));
        assert!(!stalled_terminally(&c, 5));
        let c = conditions(&[], &Outcome::stalled(reason::CREDENTIALS_INVALID, "401"), 4, at(1));
        assert!(!stalled_terminally(&c, 4), "a credentials problem is retried when the Secret is fixed");
    }
}
