//! Prometheus metrics: one process-wide registry, rendered at `/metrics`.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: String,
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    provider: String,
    operation: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    reconcile_seconds: Family<KindLabels, Histogram>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_panics: Family<KindLabels, Counter>,
    provider_requests: Family<RequestLabels, Counter>,
    provider_seconds: Family<LatencyLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantline");
        let m = Self {
            reconciles: Family::default(),
            reconcile_seconds: Family::new_with_constructor(latency_histogram),
            reconcile_errors: Family::default(),
            reconcile_panics: Family::default(),
            provider_requests: Family::default(),
            provider_seconds: Family::new_with_constructor(latency_histogram),
            registry: Registry::default(),
        };
        registry.register("reconcile", "Reconciles started, by kind", m.reconciles.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration, by kind", m.reconcile_seconds.clone());
        registry.register("reconcile_errors", "Failed reconciles, by kind and error class", m.reconcile_errors.clone());
        registry.register(
            "reconcile_panics",
            "Reconciles that panicked (a bug; the object is retried with backoff), by kind",
            m.reconcile_panics.clone(),
        );
        registry.register(
            "provider_requests",
            "Provider API requests, by provider, operation and status",
            m.provider_requests.clone(),
        );
        registry.register("provider_request_duration_seconds", "Provider API latency", m.provider_seconds.clone());
        Self { registry, ..m }
    }

    /// Count a reconcile; its duration is observed when the timer is dropped.
    pub fn reconcile_started(&self, kind: &str) -> ReconcileTimer<'_> {
        let labels = KindLabels { kind: kind.to_owned() };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer { metrics: self, labels, start: Instant::now() }
    }

    pub fn reconcile_error(&self, kind: &str, reason: &str) {
        self.reconcile_errors.get_or_create(&ErrorLabels { kind: kind.to_owned(), reason: reason.to_owned() }).inc();
    }

    pub fn reconcile_panicked(&self, kind: &str) {
        self.reconcile_panics.get_or_create(&KindLabels { kind: kind.to_owned() }).inc();
    }

    pub fn provider_request(&self, provider: &str, operation: &str, status: &str, seconds: f64) {
        let labels =
            RequestLabels { provider: provider.to_owned(), operation: operation.to_owned(), status: status.to_owned() };
        self.provider_requests.get_or_create(&labels).inc();
        self.provider_seconds
            .get_or_create(&LatencyLabels { provider: provider.to_owned(), operation: operation.to_owned() })
            .observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: KindLabels,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics.reconcile_seconds.get_or_create(&self.labels).observe(self.start.elapsed().as_secs_f64());
    }
}
