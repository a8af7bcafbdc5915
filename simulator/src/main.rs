//! `tenantline-sim`: serve the simulated provider APIs on one port.

use clap::Parser;
use tenantline_sim::{Seed, Simulator};

const ABOUT: &str = "A local simulator of the five provider APIs tenantline manages \
(RecoverBiz, Vobiz, AgentPhone, Vobiz Partner, Yardstik), all on one port, state in memory.";

const AFTER: &str = r#"PREFIXES (client base URLs for --listen 127.0.0.1:8787)
  RecoverBiz     http://127.0.0.1:8787/recoverbiz/v1                 X-Partner-Key: <key>  (or Authorization: Bearer <key>)
  Vobiz          http://127.0.0.1:8787/vobiz/api/v1                  X-Auth-ID + X-Auth-Token (parent MA_…) or Basic
                   /accounts/{auth_id}/sub-accounts/…   and the seed's /Account/{auth_id}/Subaccount/… alias,
                   numbers: /Account/{id}/inventory/numbers, /Account/{id}/numbers[/purchase-from-inventory|/{e164}],
                   /account/{id}/numbers/{e164}/assign-subaccount
  AgentPhone     http://127.0.0.1:8787/agentphone                     Authorization: Bearer <key> [+ X-Sub-Account-Id]
  Vobiz Partner  http://127.0.0.1:8787/vobiz-partner/api/v1/partner   X-Auth-ID + X-Auth-Token (partner PA_…)
  Yardstik       http://127.0.0.1:8787/yardstik                       Authorization: Account <key>

DEV CREDENTIALS (used when no --config is given)
  RecoverBiz     partner key  pk_live_sim_recoverbiz_0000000000000000
  Vobiz          auth id MA_SIMVOBIZ, token sim-vobiz-parent-token, inventory +14155550101 … +14155550120
  AgentPhone     API key      sk_live_sim_agentphone
  Vobiz Partner  auth id PA_SIMPARTNER, token sim-partner-token, max_accounts 100, balance 100000.00000 USD
  Yardstik       API key      sim-yardstik-platform-key, permissible purpose 3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c

CONFIG FILE (--config sim.yaml; replaces the dev credentials; omitted providers get none)
  recoverbiz:   { partnerKeys: [pk_live_…], rateLimits: { accountCreatePerHour: 100, otherPerMinute: 1000 } }
  vobiz:        { accounts: [{ authId: MA_…, authToken: …, inventory: ["+14155550101"] }] }
  agentphone:   { apiKeys: [sk_live_…] }
  vobizPartner: { partners: [{ authId: PA_…, authToken: …, maxAccounts: 100, balance: "100000.00000", currency: USD }] }
  yardstik:     { apiKeys: [ … ], permissiblePurposeIds: [<uuid>] }

CONTROL API (no auth, JSON)
  POST   /_sim/reset    empty state, the current seed re-applied (also clears calls and faults)
  POST   /_sim/seed     body: a seed (JSON, shape above) → adds those credentials
  GET    /_sim/state    every provider's objects, with credentials in clear
  GET    /_sim/calls    {"calls":[{"provider","method","route","count"}],"peakPerSecond":{"vobiz":N}}
                        (the most calls within any one second); DELETE resets the counters
  POST   /_sim/faults   {"provider":"vobiz","method":"POST","route":"/api/v1/accounts/{auth_id}/sub-accounts/",
                         "fault":{"kind":"latency","ms":200} | {"kind":"status","status":503}
                               | {"kind":"rateLimit","retryAfter":2} | {"kind":"hang"} | {"kind":"drop"}
                               | {"kind":"afterApply"} (apply, then close the connection; "status":502 to answer instead)
                               | {"kind":"redirect","status":307,"location":"http://other:8787/_sim/sink/x"}
                               | {"kind":"body","status":200,"text":"{\"id\": "} | {"kind":"body","bytes":67108864}
                               | {"kind":"headers","headers":{"Retry-After":"999999999999"}} (2xx: applied, headers added)
                               | {"kind":"error","status":422,"message":"any text"},
                         "count":N | "probability":0.3}  → {"id":"flt_…"}
  GET    /_sim/faults   list;  DELETE /_sim/faults clears all;  DELETE /_sim/faults/{id} removes one
  ANY    /_sim/sink/…   records method, path and credential headers (Authorization, X-Auth-ID, X-Auth-Token,
                        X-Partner-Key, X-Sub-Account-Id): another host to redirect to
  GET    /_sim/sink     {"requests":[{"method","path","query","headers"}]};  DELETE /_sim/sink clears
  Providers in calls/faults: recoverbiz, vobiz, agentphone, vobizPartner, yardstik; routes are the route
  templates without the provider prefix, e.g. /v1/accounts/{id}.

Logs one line per request (method, path, status) to stderr; RUST_LOG=warn silences them."#;

#[derive(Parser)]
#[command(name = "tenantline-sim", version, about = ABOUT, after_help = AFTER)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "TENANTLINE_SIM_LISTEN")]
    listen: std::net::SocketAddr,
    /// YAML seed file with the parent credentials (see CONFIG FILE below). Default: the dev seed.
    #[arg(long, env = "TENANTLINE_SIM_CONFIG")]
    config: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let seed = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            Seed::from_yaml(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?
        }
        None => Seed::default(),
    };
    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.map_err(|e| format!("binding {}: {e}", cli.listen))?;
    tracing::info!("tenantline-sim listening on http://{}", listener.local_addr()?);
    tokio::select! {
        r = Simulator::new(seed).serve(listener) => r?,
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
    Ok(())
}
