use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tenantline::leader::LeaderElection;
use tenantline::reconcile::{self, Settings};
use tenantline::server;
use tenantline::telemetry::{self, LogFormat};

/// tenantline: manage customer sub-accounts at telephony providers as Kubernetes resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster named by KUBECONFIG or the in-cluster config.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Log format.
    #[arg(long, env = "TENANTLINE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log filter (overridden by RUST_LOG), e.g. `info` or `tenantline=debug`.
    #[arg(long, env = "TENANTLINE_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "TENANTLINE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Take a coordination.k8s.io Lease before reconciling (for more than one replica).
    #[arg(long, env = "TENANTLINE_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "TENANTLINE_LEASE_NAME", default_value = "tenantline-leader")]
    lease_name: String,
    /// Namespace of the leader-election Lease (default: POD_NAMESPACE, else `default`).
    #[arg(long, env = "TENANTLINE_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "TENANTLINE_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Manage only resources matching this label selector (sharding across deployments).
    #[arg(long, env = "TENANTLINE_LABEL_SELECTOR")]
    label_selector: Option<String>,
    /// Reconciles running at once, per kind.
    #[arg(long, env = "TENANTLINE_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Who owns the provider objects this operator makes, where a ProviderConfig names no
    /// `spec.ownerId`: part of the key that finds them again after a lost response or a cluster
    /// rebuild. Give each cluster that shares a provider account its own (like external-dns's
    /// --txt-owner-id).
    #[arg(long, env = "TENANTLINE_OWNER_ID", default_value = "default", value_parser = owner_id)]
    owner_id: String,
    /// Timeout of one provider API call, in seconds.
    #[arg(long, env = "TENANTLINE_PROVIDER_TIMEOUT_SECONDS", default_value_t = 10)]
    provider_timeout_seconds: u64,
    /// Longest wait before retrying a resource whose last reconcile failed (exponential backoff
    /// from 2 s up to this), in seconds; also the longest a provider's Retry-After or rate-limit
    /// reset is honoured.
    #[arg(long, env = "TENANTLINE_MAX_BACKOFF_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(2..=86400))]
    max_backoff_seconds: u64,
    /// Let ProviderConfig endpoints use plain http:// (development and tests against
    /// tenantline-sim). Without it only https:// endpoints are used: credentials never cross the
    /// network in clear text.
    #[arg(long, env = "TENANTLINE_ALLOW_INSECURE_ENDPOINTS")]
    allow_insecure_endpoints: bool,
}

fn owner_id(s: &str) -> Result<String, String> {
    if tenantline::api::valid_owner_id(s) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not an owner id (letters, digits, '-', '_', '.'; at most 63)"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Crds => print!("{}", tenantline::api::crds_yaml()?),
        Command::Run(args) => run(args).await?,
    }
    Ok(())
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init(args.log_format, &args.log_level);
    let client = kube::Client::try_default().await?;
    let version = client.apiserver_version().await?;
    tracing::info!(version = %version.git_version, "connected to the API server");

    // Serving starts once the API server answered; a follower serves (and is ready) too, so a
    // rolling update of two replicas proceeds while the old leader still holds the Lease.
    let server = tokio::spawn(server::serve(args.metrics_addr));

    let leader = args.leader_election.then(|| {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("tenantline-{}", std::process::id()));
        LeaderElection::new(client.clone(), &namespace, &args.lease_name, identity)
    });
    if let Some(leader) = &leader {
        tokio::select! {
            () = leader.acquire() => {}
            // A follower asked to stop (a rollout, a drain) stops now, not after its grace period.
            () = shutdown_signal() => return Ok(()),
        }
    }

    let settings = Settings {
        watch_namespace: args.watch_namespace,
        label_selector: args.label_selector,
        concurrency: args.concurrency,
        provider_timeout: Duration::from_secs(args.provider_timeout_seconds),
        owner_id: args.owner_id,
        max_backoff: Duration::from_secs(args.max_backoff_seconds),
        allow_insecure_endpoints: args.allow_insecure_endpoints,
    };
    let controllers = reconcile::run(client, settings, shutdown_signal());
    match &leader {
        Some(leader) => tokio::select! {
            result = controllers => result?,
            () = leader.hold() => {
                // Another replica may already be reconciling: stop at once, and exit non-zero so
                // the Deployment restarts this one as a follower.
                tracing::error!("lost leadership; exiting");
                std::process::exit(1);
            }
        },
        None => controllers.await?,
    }
    if let Some(leader) = &leader {
        leader.release().await;
    }
    server.abort();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
