//! The node's metrics in Prometheus's text format, served on their own listener.
//!
//! Three kinds of source, each read where it is cheapest:
//! - **committed blocks** ([`ChainMetrics::follow`]): the chain's commit broadcast gives each
//!   block once; its header gives the height, the interval since its parent, its transactions,
//!   the views that went by without a block, and the time from its proposal to its commit here.
//! - **state read at each scrape** ([`Sampled`]): the mempool's size, the consensus view, peers,
//!   timeouts and equivocations (the driver's [`NetworkView`]), and the executor's counts of
//!   blocks run by Block-STM or handed to the sequential executor.
//! - **components that count for themselves**: the RPC server ([`cairn_rpc::RpcMetrics`]).
//!
//! The listener answers `GET /metrics` only, behind the RPC's Host and Origin checks
//! ([`cairn_rpc::access`]): it shows counts, never keys, and runs no RPC method.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use cairn_chain::Chain;
use cairn_consensus::NetworkView;
use cairn_mempool::TxPool;
use cairn_primitives::Header;
use cairn_primitives::clock::now_ms;

use crate::error::{NodeError, Result};

/// What committed blocks tell.
#[derive(Debug, Clone)]
pub struct ChainMetrics {
    height: Gauge,
    finalized_height: Gauge,
    block_interval: Histogram,
    block_transactions: Histogram,
    block_gas: Histogram,
    finalization_latency: Histogram,
    nullified_views: Counter,
}

impl ChainMetrics {
    /// The metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            height: Gauge::default(),
            finalized_height: Gauge::default(),
            // 50 ms to about 25 s.
            block_interval: Histogram::new(exponential_buckets(0.05, 2.0, 10)),
            // 1 to 16,384 transactions.
            block_transactions: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            // 21,000 gas (a transfer) to the whole block.
            block_gas: Histogram::new(exponential_buckets(21_000.0, 4.0, 8)),
            finalization_latency: Histogram::new(exponential_buckets(0.05, 2.0, 10)),
            nullified_views: Counter::default(),
        };
        registry.register(
            "chain_height",
            "Height of the newest block this node holds",
            metrics.height.clone(),
        );
        registry.register(
            "chain_finalized_height",
            "Height of the newest finalized block (every committed block is final)",
            metrics.finalized_height.clone(),
        );
        registry.register(
            "block_interval_seconds",
            "Time between a block's timestamp and its parent's",
            metrics.block_interval.clone(),
        );
        registry.register(
            "block_transactions",
            "Transactions in each committed block",
            metrics.block_transactions.clone(),
        );
        registry.register(
            "block_gas_used",
            "Gas used by each committed block",
            metrics.block_gas.clone(),
        );
        registry.register(
            "finalization_latency_seconds",
            "Time from a block's proposal (its timestamp) to its commit on this node",
            metrics.finalization_latency.clone(),
        );
        registry.register(
            "consensus_nullified_views",
            "Consensus views that ended without a finalized block of their own",
            metrics.nullified_views.clone(),
        );
        metrics
    }

    /// Follows the chain's commits until `stopped`, from its head.
    pub async fn follow(self, chain: Arc<Chain>, mut stopped: watch::Receiver<bool>) {
        let mut commits = chain.subscribe();
        let mut previous = chain.head_header();
        self.height.set(gauge_value(previous.height));
        self.finalized_height.set(gauge_value(previous.height));
        loop {
            let commit = tokio::select! {
                commit = commits.recv() => commit,
                _ = stopped.changed() => return,
            };
            let height = match commit {
                Ok(commit) => commit.height,
                // Fell behind the broadcast: go on from the head, skipping what was missed.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    chain.head_header().height
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let block = match chain.block(height) {
                Ok(Some(block)) => block,
                Ok(None) => continue,
                Err(error) => {
                    tracing::debug!(%error, height, "metrics cannot read a committed block");
                    continue;
                }
            };
            self.observe(&previous, &block.header, block.transactions.len());
            previous = block.header;
        }
    }

    fn observe(&self, parent: &Header, header: &Header, transactions: usize) {
        self.height.set(gauge_value(header.height));
        self.finalized_height.set(gauge_value(header.height));
        self.block_transactions.observe(transactions as f64);
        self.block_gas.observe(header.gas_used as f64);
        // The genesis timestamp is the chain's birthday, not a block time.
        if header.height == parent.height + 1 && parent.height > 0 {
            let interval = header.timestamp_ms.saturating_sub(parent.timestamp_ms);
            self.block_interval.observe(interval as f64 / 1000.0);
            self.nullified_views
                .inc_by(header.view.saturating_sub(parent.view + 1));
        }
        let latency = now_ms().saturating_sub(header.timestamp_ms);
        self.finalization_latency.observe(latency as f64 / 1000.0);
    }
}

fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// How a block was executed: `block_stm` (Block-STM ran it to the end),
/// `handed_to_sequential` (Block-STM started and handed it over), `sequential` (run
/// sequentially from the start: too small, or one thread).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecutorLabel {
    /// How the block ran.
    pub executor: &'static str,
}

/// What is read from the node's components at each scrape.
#[derive(Debug, Clone)]
pub struct Sampled {
    mempool: Gauge,
    peers: Gauge,
    view: Gauge,
    timeouts: Counter,
    equivocations: Counter,
    executed: Family<ExecutorLabel, Counter>,
}

impl Sampled {
    /// The metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let sampled = Self {
            mempool: Gauge::default(),
            peers: Gauge::default(),
            view: Gauge::default(),
            timeouts: Counter::default(),
            equivocations: Counter::default(),
            executed: Family::default(),
        };
        registry.register(
            "mempool_transactions",
            "Transactions waiting in the mempool",
            sampled.mempool.clone(),
        );
        registry.register("peers", "Connected peers", sampled.peers.clone());
        registry.register(
            "consensus_view",
            "The consensus view this node is in",
            sampled.view.clone(),
        );
        registry.register(
            "consensus_timeouts",
            "Views this node's validator voted to nullify because they timed out",
            sampled.timeouts.clone(),
        );
        registry.register(
            "consensus_equivocations",
            "Conflicting votes from one validator seen by this node",
            sampled.equivocations.clone(),
        );
        registry.register(
            "blocks_executed",
            "Blocks executed, by how: Block-STM to the end, handed to sequential, or sequential",
            sampled.executed.clone(),
        );
        sampled
    }

    fn refresh(&self, sources: &Sources) {
        self.mempool.set(gauge_value(sources.pool.len() as u64));
        let view = sources.network.borrow().clone();
        self.peers.set(gauge_value(view.peers as u64));
        self.view.set(gauge_value(view.view));
        raise(&self.timeouts, view.timeouts);
        raise(&self.equivocations, view.equivocations);
        let stats = sources.pool.chain().execution_stats();
        for (executor, count) in [
            ("block_stm", stats.parallel_blocks),
            ("handed_to_sequential", stats.handed_over_blocks),
            ("sequential", stats.small_blocks),
        ] {
            raise(
                &self.executed.get_or_create(&ExecutorLabel { executor }),
                count,
            );
        }
    }
}

/// Moves a counter up to `total`, a count its source keeps (it never goes down).
fn raise(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// The components [`Sampled`] reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The mempool, and through it the chain.
    pub pool: TxPool,
    /// The consensus driver's view (a default one on a dev node).
    pub network: watch::Receiver<NetworkView>,
}

/// What the listener serves.
#[derive(Debug)]
struct Scrape {
    registry: Registry,
    sampled: Sampled,
    sources: Sources,
}

impl Scrape {
    /// The metrics in OpenMetrics's text format.
    fn encode(&self) -> std::result::Result<String, std::fmt::Error> {
        self.sampled.refresh(&self.sources);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Content type of OpenMetrics's text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of Prometheus's classic text format.
const CLASSIC_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus's classic text format (0.0.4) from the OpenMetrics text prometheus-client
/// writes: the same samples, but a counter's `# HELP` and `# TYPE` lines name it with the
/// `_total` suffix its samples carry, and no `# EOF`. Prometheus itself asks for OpenMetrics;
/// `promtool check metrics` and older scrapers read this one.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let header = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match header {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) && !name.ends_with("_total") {
                    "_total"
                } else {
                    ""
                };
                text.push_str(&format!("{prefix}{name}{suffix} {tail}"));
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// Binds `addr` and serves `GET /metrics` from `registry` (after refreshing `sampled` from
/// `sources`) behind `access`, until `stopped`. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    sampled: Sampled,
    sources: Sources,
    access: &cairn_rpc::AccessPolicy,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let scrape = Arc::new(Scrape {
        registry,
        sampled,
        sources,
    });
    // OpenMetrics for a scraper that asks for it (Prometheus does), the classic format else.
    let metrics = move |headers: axum::http::HeaderMap| {
        let scrape = scrape.clone();
        async move {
            let openmetrics = headers
                .get(header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("application/openmetrics-text"));
            match scrape.encode() {
                Ok(text) if openmetrics => {
                    ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
                }
                Ok(text) => {
                    ([(header::CONTENT_TYPE, CLASSIC_TEXT)], classic_text(&text)).into_response()
                }
                Err(error) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
                }
            }
        }
    };
    let socket = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::MetricsBind { addr, source })?;
    let bound = socket
        .local_addr()
        .map_err(|source| NodeError::MetricsBind { addr, source })?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .layer(cairn_rpc::access::AccessLayer::new(access, bound));
    let server = axum::serve(socket, app).with_graceful_shutdown(async move {
        let _ = stopped.changed().await;
    });
    let task = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters get their `_total` name on the header lines, nothing else changes, and the
    /// OpenMetrics end marker goes.
    #[test]
    fn the_classic_format_names_counters_as_their_samples_do() {
        let openmetrics = "# HELP cairn_peers Connected peers.\n# TYPE cairn_peers gauge\n\
                           cairn_peers 3\n# HELP cairn_rpc_requests Calls.\n\
                           # TYPE cairn_rpc_requests counter\n\
                           cairn_rpc_requests_total{method=\"eth_chainId\"} 2\n# EOF\n";
        assert_eq!(
            classic_text(openmetrics),
            "# HELP cairn_peers Connected peers.\n# TYPE cairn_peers gauge\ncairn_peers 3\n\
             # HELP cairn_rpc_requests_total Calls.\n# TYPE cairn_rpc_requests_total counter\n\
             cairn_rpc_requests_total{method=\"eth_chainId\"} 2\n"
        );
    }
}
