use clap::{Parser, Subcommand};

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
    Run,
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", tenantline::api::crds_yaml()?);
        }
        Command::Run => {
            tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
            let client = kube::Client::try_default().await?;
            let version = client.apiserver_version().await?;
            tracing::info!(version = %version.git_version, "connected to the API server");
        }
    }
    Ok(())
}
