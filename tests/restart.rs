//! The control plane crashes under the operator: etcd and kube-apiserver are killed (SIGKILL) and
//! started again (`hack/cluster.sh restart`) while a fleet of SubAccounts is being created. The
//! operator reconnects by itself, and nothing is lost or made twice.
//!
//! A binary of its own, run by `make e2e` after the e2e binary: the restart would break the e2e
//! tests running in parallel against the same control plane. It needs the local control plane
//! (`hack/with-cluster.sh`, `make up`) and skips on any other cluster.

#[path = "e2e/fleet.rs"]
mod fleet;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fleet::Fleet;
use crate::harness::Env;
use crate::support::eventually;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// 40 SubAccounts, 8 TeamMembers, 16 PhoneNumbers.
const PER_PROVIDER: usize = 8;
/// Slow enough that the fleet is still being created when the control plane goes.
const RATE: u64 = 2;
const BURST: u64 = 2;
/// Restart when this share of the SubAccounts is Ready (each restart once).
const RESTART_AT: [f64; 2] = [0.25, 0.6];

/// Whether `KUBECONFIG` names the control plane `hack/cluster.sh` runs from this checkout.
fn local_control_plane() -> bool {
    let cluster = Path::new(ROOT).join(".cache/cluster");
    let named = std::env::var_os("KUBECONFIG").map(PathBuf::from).and_then(|p| p.canonicalize().ok());
    cluster.join("apiserver.pid").exists() && named == cluster.join("kubeconfig").canonicalize().ok()
}

/// `hack/cluster.sh restart`; returns how long the API server was away.
async fn restart_control_plane() -> Duration {
    let started = Instant::now();
    let script = Path::new(ROOT).join("hack/cluster.sh");
    let out = tokio::process::Command::new(script).arg("restart").output().await.unwrap();
    assert!(out.status.success(), "hack/cluster.sh restart: {}", String::from_utf8_lossy(&out.stderr));
    started.elapsed()
}

#[tokio::test]
async fn a_fleet_survives_etcd_and_the_api_server_crashing_without_losses_or_duplicates() {
    if !local_control_plane() {
        eprintln!("skipped: KUBECONFIG does not name the local control plane (hack/with-cluster.sh) to restart");
        return;
    }
    let mut env = Env::start("e2e-restart").await;
    let fleet = Fleet { per_provider: PER_PROVIDER };
    fleet.configure(&env, RATE, BURST, "10s").await;
    let started = Instant::now();
    env.apply_ok(&fleet.manifests());
    let total = fleet.expected().0;

    let mut restarts = Vec::new();
    for share in RESTART_AT {
        let at = (total as f64 * share) as usize;
        let ready = eventually(Duration::from_secs(300), || async {
            let [(ready, _), ..] = Fleet::ready(&env).await?;
            (ready >= at).then_some(ready)
        })
        .await
        .unwrap_or_else(|| panic!("{at} SubAccounts never became Ready\n{}", env.operator.log_tail(40)));
        let down = restart_control_plane().await;
        restarts.push((ready, started.elapsed(), down));
    }
    let last_restart = Instant::now();
    let done = eventually(Duration::from_secs(300), || async { fleet.all_ready(&env).await.then_some(()) }).await;
    let after_restart = last_restart.elapsed();
    let ready = Fleet::ready(&env).await;
    for (i, (ready, at, down)) in restarts.iter().enumerate() {
        eprintln!(
            "restart {}: at {:.1} s with {ready}/{total} SubAccounts Ready; API server away {:.1} s (kill -9 → /readyz)",
            i + 1,
            at.as_secs_f64(),
            down.as_secs_f64()
        );
    }
    eprintln!(
        "restart: everything Ready {:.1} s after the last restart, {:.1} s in all; (ready, total) of SubAccounts, \
         TeamMembers, PhoneNumbers: {ready:?}",
        after_restart.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if done.is_none() {
        panic!(
            "not everything Ready: {ready:?}; e.g. {:?}\n{}",
            Fleet::not_ready(&env).await,
            env.operator.log_tail(40)
        );
    }
    // Mid-way: the first restart came while SubAccounts were still being created.
    assert!(restarts[0].0 < total, "the fleet was Ready before the first restart: {restarts:?}");

    fleet.assert_at_providers(&env, "restart").await;
    // The process that started is the one still serving: it reconnected by itself, and did not
    // exit to be restarted (nothing here would restart it).
    assert!(env.operator.running(), "the operator exited:\n{}", env.operator.log_tail(40));
    let calls = env.sim.control().calls().await.matching(|_| true);
    eprintln!("restart: {calls} provider calls; operator process the same throughout");
    env.finish().await;
}
