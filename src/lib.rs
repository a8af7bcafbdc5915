//! tenantline: a Kubernetes operator that manages customer sub-accounts at telephony providers.

pub mod api;
pub mod leader;
pub mod listed;
pub mod metrics;
pub mod provider;
pub mod reconcile;
pub mod secrets;
pub mod server;
pub mod telemetry;
