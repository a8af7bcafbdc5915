//! End-to-end tests against a real control plane (`make test` starts one; any cluster named by
//! `KUBECONFIG` works), the operator binary under the Helm chart's RBAC, and the provider
//! simulator over real HTTP.

mod chaos;
mod chart;
mod controlplane;
mod crash;
mod deletion;
mod examples;
mod fields;
mod fleet;
mod flux;
mod gitops;
mod gitops_examples;
mod gitops_health;
mod harness;
mod hostile;
mod lifecycle;
mod namespace_deletion;
mod node;
mod provider_configs;
mod rejections;
mod release;
mod restore;
mod retry_after;
mod rotation;
mod safety;
mod secrets;
mod shards;
mod support;
mod upgrade;
mod validation;
