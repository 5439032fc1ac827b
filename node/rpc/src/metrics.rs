//! What the RPC server tells Prometheus: calls and their latency by method.
//!
//! The method label takes only the names the server registered (anything else is counted as
//! `unknown`), so a client sending made-up method names cannot grow the metric without bound.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::types::Request;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A call's method, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// The method name, or `unknown`.
    pub method: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The RPC server's metrics: clone handles onto the same series.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    requests: Family<MethodLabel, Counter>,
    latency: Family<MethodLabel, Histogram, fn() -> Histogram>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl RpcMetrics {
    /// The metrics, registered in `registry` (`rpc_requests_total` and
    /// `rpc_request_duration_seconds` under its prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "rpc_requests",
            "JSON-RPC calls received, by method (batched calls counted one by one)",
            metrics.requests.clone(),
        );
        registry.register(
            "rpc_request_duration_seconds",
            "Time to answer a JSON-RPC call that came alone, by method",
            metrics.latency.clone(),
        );
        metrics
    }

    /// Calls counted so far for `method`.
    pub fn requests(&self, method: &'static str) -> u64 {
        self.requests.get_or_create(&MethodLabel { method }).get()
    }
}

/// The jsonrpsee layer that feeds [`RpcMetrics`].
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: RpcMetrics,
    known: Arc<BTreeSet<&'static str>>,
}

impl RpcMetricsLayer {
    /// Counts calls into `metrics`, by the names in `known` (the server's methods).
    pub fn new(metrics: RpcMetrics, known: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            metrics,
            known: Arc::new(known.into_iter().collect()),
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around the server's.
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    layer: RpcMetricsLayer,
}

impl<S> Metered<S> {
    fn label(&self, method: &str) -> MethodLabel {
        MethodLabel {
            method: self.layer.known.get(method).copied().unwrap_or("unknown"),
        }
    }
}

impl<S> RpcServiceT for Metered<S>
where
    S: RpcServiceT + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let label = self.label(request.method_name());
        let metrics = self.layer.metrics.clone();
        let inner = self.inner.clone();
        async move {
            let started = Instant::now();
            let response = inner.call(request).await;
            metrics.requests.get_or_create(&label).inc();
            metrics
                .latency
                .get_or_create(&label)
                .observe(started.elapsed().as_secs_f64());
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter().flatten() {
            let method = match entry {
                BatchEntry::Call(request) => request.method_name(),
                BatchEntry::Notification(notification) => notification.method_name(),
            };
            self.layer
                .metrics
                .requests
                .get_or_create(&self.label(method))
                .inc();
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.layer
            .metrics
            .requests
            .get_or_create(&self.label(notification.method_name()))
            .inc();
        self.inner.notification(notification)
    }
}
