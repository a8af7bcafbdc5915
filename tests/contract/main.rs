//! Provider contract tests: every client operation against tenantline-sim over real HTTP on a
//! loopback port, one module per provider.

mod agentphone;
mod recoverbiz;
mod support;
mod vobiz;
mod vobiz_partner;
mod yardstik;
