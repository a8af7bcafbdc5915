//! The operator's own HTTP endpoints: `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;

use crate::metrics::METRICS;

/// `/readyz` answers once this runs: it is started only after the API server answered.
pub async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(|| async { METRICS.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await
}
