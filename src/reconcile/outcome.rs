//! How one reconcile ended ([`Outcome`]): what a person reads in the conditions and the Event,
//! and when the resource is looked at again, decided together where the outcome is made. Every
//! interval the controllers wait is named in [`interval`].

use std::time::Duration;

use kube::runtime::events::EventType;

use super::conditions::reason;
use crate::provider::{self, ProviderKind};

/// Every interval the controllers wait, in one place.
pub mod interval {
    use std::time::Duration;

    /// A reference that is not there or not Ready yet. References are watched, but a Secret's
    /// content is not: look again now and then.
    pub const WAITING_FOR_REFERENCE: Duration = Duration::from_secs(15);
    /// A stall before the provider is known (an unusable config, an invalid spec): no poll
    /// interval applies yet, and a person has to act.
    pub const UNRESOLVED_STALL: Duration = Duration::from_secs(300);
    /// Straight after a round that changed which object the resource maps to (created it,
    /// or deleted it to replace it): the next round looks at the result.
    pub const NEXT_ROUND: Duration = Duration::from_millis(200);
    /// Bad parent credentials are tried again this often: their Secret is not watched, and the
    /// config readiness check picks a rotated one up within [`SECRET_RECHECK`]; one provider
    /// call per interval.
    pub const CREDENTIALS_RETRY: Duration = Duration::from_secs(30);
    /// How often a config's credentials Secret is read again. Its content is not watched (only
    /// tenantline's own Secrets are), and a deleted or emptied one must turn the config and its
    /// resources not-Ready soon; one GET per config, whatever the number of resources.
    pub const SECRET_RECHECK: Duration = Duration::from_secs(10);
    /// How long a config's successful check of its credentials at the provider holds: the
    /// check is one provider read, made again when the config or its Secret changes.
    pub const VERIFIED: Duration = Duration::from_secs(600);
    /// A config check that failed on the API server.
    pub const CONFIG_CHECK_FAILED: Duration = Duration::from_secs(30);
    /// A resource's poll interval when its ProviderConfig names none.
    pub const DEFAULT_POLL: Duration = Duration::from_secs(600);
    /// The first step of the per-object exponential backoff after a failed reconcile (the cap is
    /// `--max-backoff`).
    pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
}

/// How one reconcile attempt ended, as a person would read it, and what happens next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub phase: Phase,
    pub reason: &'static str,
    /// One sentence a person can act on. Never a credential.
    pub message: String,
    /// The type of the Event published when the outcome differs from the last one.
    pub event: EventType,
    pub requeue: Requeue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The provider object exists, matches the spec, and its Secret is written.
    Ready,
    /// Work is in progress or a transient error is being retried.
    Progressing,
    /// Progress needs a human.
    Stalled,
}

/// When the resource is looked at again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// At the resource's poll interval (jittered); [`interval::UNRESOLVED_STALL`] while no
    /// provider config resolved, so none is known.
    Poll,
    After(Duration),
    /// The reconcile fails: per-object exponential backoff, or the provider's `Retry-After`.
    Backoff,
    /// Only a change to the resource can help.
    OnChange,
}

impl Outcome {
    /// Done: looked at again at the poll interval.
    pub fn ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self { phase: Phase::Ready, reason, message: message.into(), event: EventType::Normal, requeue: Requeue::Poll }
    }
    /// Waiting for something that is on its way (a reference, a parent).
    pub fn progressing(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            phase: Phase::Progressing,
            reason,
            message: message.into(),
            event: EventType::Normal,
            requeue: Requeue::After(interval::WAITING_FOR_REFERENCE),
        }
    }
    /// A person has to act; looked at again at the poll interval, in case one did elsewhere.
    pub fn stalled(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            phase: Phase::Stalled,
            reason,
            message: message.into(),
            event: EventType::Warning,
            requeue: Requeue::Poll,
        }
    }
    pub fn requeue(self, requeue: Requeue) -> Self {
        Self { requeue, ..self }
    }
    pub fn event(self, event: EventType) -> Self {
        Self { event, ..self }
    }
}

/// Pure policy: a provider error as the condition a person reads, and when to try again.
/// Whatever is reported as in progress is retried with backoff; a stall waits for a change,
/// except bad credentials, whose Secret is not watched.
pub fn provider_outcome(e: &provider::Error, provider: ProviderKind) -> Outcome {
    use provider::ErrorClass as C;
    let message = e.to_string();
    let retried =
        |reason, message| Outcome::progressing(reason, message).event(EventType::Warning).requeue(Requeue::Backoff);
    match e.class() {
        C::Transient => retried(reason::PROVIDER_UNAVAILABLE, format!("{message}; retrying with backoff")),
        C::RateLimited => retried(reason::RATE_LIMITED, message),
        C::NotFound => retried(reason::PROVIDER_UNAVAILABLE, format!("{message} at {provider}; looking again")),
        C::Invalid => Outcome::stalled(reason::PROVIDER_REJECTED, format!("{message}; fix the spec to retry"))
            .requeue(Requeue::OnChange),
        C::Unsupported => Outcome::stalled(reason::UNSUPPORTED_BY_PROVIDER, message).requeue(Requeue::OnChange),
        C::Auth => Outcome::stalled(
            reason::CREDENTIALS_INVALID,
            format!("{message}; check the ProviderConfig's credentials Secret"),
        )
        .requeue(Requeue::After(interval::CREDENTIALS_RETRY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatever_says_it_is_in_progress_is_looked_at_again() {
        let p = ProviderKind::AgentPhone;
        let missing = provider::Error::NotFound { provider: p, what: "sub-account".into() };
        let outcome = provider_outcome(&missing, p);
        assert!(outcome.message.contains("looking again"));
        assert_eq!(outcome.requeue, Requeue::Backoff);
        for e in [
            provider::Error::Transient { provider: p, message: "503".into() },
            provider::Error::RateLimited { provider: p, retry_after: Duration::from_secs(1) },
        ] {
            let outcome = provider_outcome(&e, p);
            assert_eq!((outcome.requeue, outcome.event), (Requeue::Backoff, EventType::Warning));
        }
        let auth = provider::Error::Auth { provider: p, message: "401".into() };
        assert_eq!(provider_outcome(&auth, p).requeue, Requeue::After(interval::CREDENTIALS_RETRY));
        let invalid = provider::Error::Invalid { provider: p, field: None, message: "limit".into() };
        assert_eq!(provider_outcome(&invalid, p).requeue, Requeue::OnChange);
    }

    #[test]
    fn provider_errors_map_to_the_documented_reasons() {
        let p = ProviderKind::Vobiz;
        let invalid =
            provider::Error::Invalid { provider: p, field: Some("email".into()), message: "duplicate email".into() };
        let o = provider_outcome(&invalid, p);
        assert_eq!((o.phase, o.reason), (Phase::Stalled, reason::PROVIDER_REJECTED));
        assert!(o.message.contains("email"), "{}", o.message);
        let limited = provider::Error::RateLimited { provider: p, retry_after: Duration::from_secs(3) };
        assert_eq!(provider_outcome(&limited, p).reason, reason::RATE_LIMITED);
        let down = provider::Error::Transient { provider: p, message: "503".into() };
        assert_eq!(provider_outcome(&down, p).phase, Phase::Progressing);
        let auth = provider::Error::Auth { provider: p, message: "401".into() };
        assert_eq!(provider_outcome(&auth, p).reason, reason::CREDENTIALS_INVALID);
    }
}
