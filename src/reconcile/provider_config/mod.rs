//! ProviderConfig and ClusterProviderConfig: connecting a resource to its provider through one
//! ([`connect`]: the client cache and the tenancy checks), the caches and change streams of configs,
//! their users and the namespaces ([`watches`]), and the small controller that reports on each
//! config and keeps one in use from going ([`check`]).

mod check;
mod connect;
mod watches;

pub use connect::{Connected, ProviderCache, Terms, config_key, connect};
pub use watches::Controllers;
