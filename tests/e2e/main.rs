//! End-to-end tests against a real control plane (`make test` starts one; any cluster named by
//! `KUBECONFIG` works) and the provider simulator over real HTTP.

mod controlplane;
mod examples;
mod harness;
mod support;
mod validation;
