//! The node's metrics in Prometheus's text format, served by [`crate::listener`].
//!
//! Three kinds of source, each read where it is cheapest:
//! - **committed blocks** ([`ChainMetrics::follow`]): the chain's commit broadcast gives each
//!   block once; its header gives the height, the interval since its parent, its transactions,
//!   the views that went by without a block, and the time from its proposal to its commit here.
//! - **state read at each scrape** ([`Sampled`]): the mempool's size, the consensus view, peers,
//!   timeouts and equivocations (the driver's [`NetworkView`]), and the executor's counts of
//!   blocks run by Block-STM or handed to the sequential executor.
//! - **components that count for themselves**: the RPC server ([`cairn_rpc::RpcMetrics`]), and
//!   on a provider the data plane and agent's counters (proofs, deals, pieces, jobs, fuel),
//!   read at each scrape with the provider's standing on chain ([`ProviderMetrics`]: its
//!   deals, their faults and bytes, its bond against its minimum, its locked collateral and
//!   claimable rewards, and the agent's warnings by kind).
//!
//! The series show counts, heights and CRN amounts, never keys.

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
use cairn_primitives::clock::now_ms;
use cairn_primitives::{Address, Header, U256};

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

    /// Follows the chain's commits until `stopped`, from its head. Blocks are read on the
    /// blocking pool (a RocksDB read and a decode each), never on the async workers.
    pub async fn follow(self, chain: Arc<Chain>, mut stopped: watch::Receiver<bool>) {
        use tokio::sync::broadcast::error::RecvError;
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
                // Fell behind the broadcast: the next ones received are the oldest it still
                // holds; those already passed are skipped below.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            if height <= previous.height {
                continue;
            }
            let reader = chain.clone();
            let block = match tokio::task::spawn_blocking(move || reader.block(height)).await {
                Ok(Ok(Some(block))) => block,
                Ok(Ok(None)) => continue,
                Ok(Err(error)) => {
                    tracing::debug!(%error, height, "metrics cannot read a committed block");
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, height, "metrics block reader failed");
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
        // A block this old was fetched by sync (after a restart, or by a new node): its age is
        // how far behind the node was, not how long finality took.
        let latency = now_ms().saturating_sub(header.timestamp_ms);
        if latency <= SYNCED_BLOCK_AGE_MS {
            self.finalization_latency.observe(latency as f64 / 1000.0);
        }
    }
}

/// Blocks older than this when committed here came through sync, and are left out of the
/// finalization latency.
const SYNCED_BLOCK_AGE_MS: u64 = 60_000;

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
    provider: Option<ProviderMetrics>,
    mempool: Gauge,
    peers: Gauge,
    view: Gauge,
    timeouts: Counter,
    equivocations: Counter,
    executed: Family<ExecutorLabel, Counter>,
}

impl Sampled {
    /// The metrics, registered in `registry`; a provider's too on a provider node.
    pub fn register(registry: &mut Registry, provider: bool) -> Self {
        let sampled = Self {
            provider: provider.then(|| ProviderMetrics::register(registry)),
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

    pub(crate) fn refresh(&self, sources: &Sources) {
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
        if let (Some(metrics), Some(provider)) = (&self.provider, &sources.provider) {
            metrics.refresh(provider, sources.pool.chain());
        }
    }
}

/// A provider's own counters and standing.
#[derive(Debug, Clone)]
pub struct ProviderMetrics {
    deals_active: Gauge,
    deal_faults: Gauge,
    stored_bytes: Gauge,
    proofs: Family<ResultLabel, Counter>,
    deals_accepted: Counter,
    offers_refused: Counter,
    served_bytes: Counter,
    pieces_rejected: Counter,
    jobs: Family<KindLabel, Counter>,
    job_failures: Family<ResultLabel, Counter>,
    fuel: Counter,
    job_blobs_released: Counter,
    bonded: Gauge<f64, std::sync::atomic::AtomicU64>,
    minimum_bond: Gauge<f64, std::sync::atomic::AtomicU64>,
    locked: Gauge<f64, std::sync::atomic::AtomicU64>,
    claimable: Gauge<f64, std::sync::atomic::AtomicU64>,
    warnings: Family<KindLabel, Gauge>,
}

/// An outcome, as a label: `sent` or `failed` for proofs, `send_failed` or `dropped` for jobs.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The outcome.
    pub result: &'static str,
}

/// A kind, as a label: what a compute job was to this provider (`run`: its provider,
/// `verified`: its verifier, `disputed`: a referee or challenger of a dispute), or a warning's
/// kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: &'static str,
}

impl ProviderMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            deals_active: Gauge::default(),
            deal_faults: Gauge::default(),
            stored_bytes: Gauge::default(),
            proofs: Family::default(),
            deals_accepted: Counter::default(),
            offers_refused: Counter::default(),
            served_bytes: Counter::default(),
            pieces_rejected: Counter::default(),
            jobs: Family::default(),
            job_failures: Family::default(),
            fuel: Counter::default(),
            job_blobs_released: Counter::default(),
            bonded: Gauge::default(),
            minimum_bond: Gauge::default(),
            locked: Gauge::default(),
            claimable: Gauge::default(),
            warnings: Family::default(),
        };
        registry.register(
            "storage_deals_active",
            "Storage deals this provider holds data for",
            metrics.deals_active.clone(),
        );
        registry.register(
            "storage_deal_faults",
            "Faults recorded on chain against this provider's deals",
            metrics.deal_faults.clone(),
        );
        registry.register(
            "storage_stored_bytes",
            "Bytes of data this provider holds for its deals",
            metrics.stored_bytes.clone(),
        );
        registry.register(
            "storage_proofs",
            "Storage proofs, by result: sent, or failed to make or send",
            metrics.proofs.clone(),
        );
        registry.register(
            "storage_deals_accepted",
            "Storage deals this provider accepted",
            metrics.deals_accepted.clone(),
        );
        registry.register(
            "storage_offers_refused",
            "Storage deal offers this provider refused",
            metrics.offers_refused.clone(),
        );
        registry.register(
            "storage_served_bytes",
            "Bytes of pieces served to peers",
            metrics.served_bytes.clone(),
        );
        registry.register(
            "storage_pieces_rejected",
            "Pieces received from peers that failed their check",
            metrics.pieces_rejected.clone(),
        );
        registry.register(
            "compute_jobs",
            "Compute jobs answered, by this provider's part: run, verified, disputed",
            metrics.jobs.clone(),
        );
        registry.register(
            "compute_job_failures",
            "Compute jobs not answered: send_failed, or dropped for a full queue",
            metrics.job_failures.clone(),
        );
        registry.register(
            "compute_fuel",
            "Fuel burnt running and re-executing compute jobs",
            metrics.fuel.clone(),
        );
        registry.register(
            "compute_job_blobs_released",
            "Blobs (module, input, output) a compute job brought in, deleted after the job ended",
            metrics.job_blobs_released.clone(),
        );
        registry.register(
            "provider_bonded_crn",
            "This provider's bond, CRN",
            metrics.bonded.clone(),
        );
        registry.register(
            "provider_minimum_bond_crn",
            "The least bond its roles need, CRN: below it a role is lost",
            metrics.minimum_bond.clone(),
        );
        registry.register(
            "provider_locked_crn",
            "Bond locked as collateral for deals and jobs, CRN",
            metrics.locked.clone(),
        );
        registry.register(
            "provider_claimable_crn",
            "Rewards and payments waiting to be claimed, CRN",
            metrics.claimable.clone(),
        );
        registry.register(
            "provider_warnings",
            "What puts the provider at risk of a slash now, by kind (see cairn provider status)",
            metrics.warnings.clone(),
        );
        metrics
    }

    fn refresh(&self, provider: &ProviderSource, chain: &Chain) {
        let counters = provider.data.metrics().snapshot();
        raise(
            &self.proofs.get_or_create(&ResultLabel { result: "sent" }),
            counters.proofs_sent,
        );
        raise(
            &self.proofs.get_or_create(&ResultLabel { result: "failed" }),
            counters.proofs_failed,
        );
        raise(&self.deals_accepted, counters.deals_accepted);
        raise(&self.offers_refused, counters.offers_refused);
        raise(&self.served_bytes, counters.bytes_served);
        raise(&self.pieces_rejected, counters.pieces_rejected);
        for (kind, count) in [
            ("run", counters.jobs_run),
            ("verified", counters.jobs_verified),
            ("disputed", counters.jobs_disputed),
        ] {
            raise(&self.jobs.get_or_create(&KindLabel { kind }), count);
        }
        raise(
            &self.job_failures.get_or_create(&ResultLabel {
                result: "send_failed",
            }),
            counters.jobs_failed,
        );
        raise(
            &self
                .job_failures
                .get_or_create(&ResultLabel { result: "dropped" }),
            counters.jobs_dropped,
        );
        raise(&self.fuel, counters.fuel_used);
        raise(&self.job_blobs_released, counters.job_blobs_released);
        let report = provider.data.report();
        for kind in cairn_providers::WarningKind::ALL {
            let label = KindLabel { kind: kind.name() };
            let count = u64::try_from(report.count(kind)).unwrap_or(u64::MAX);
            self.warnings.get_or_create(&label).set(gauge_value(count));
        }
        if let Err(error) = self.refresh_standing(provider, chain) {
            tracing::debug!(%error, "metrics cannot read the provider's standing");
        }
    }

    /// What the chain says of the provider: its deals, bond and rewards.
    fn refresh_standing(
        &self,
        provider: &ProviderSource,
        chain: &Chain,
    ) -> std::result::Result<(), cairn_providers::error::DataError> {
        use cairn_providers::contracts::{DealState, view};
        use cairn_reward_contracts::STORAGE_MARKET;
        use cairn_reward_contracts::bindings::StorageMarket;

        let me = provider.account;
        let (mut deals, mut faults) = (0u64, 0u64);
        let mut held = std::collections::BTreeMap::new();
        // The deals the agent keeps, each read once a scrape: bounded by the deals a provider
        // may hold (`StorageMarket.MAX_DEALS_PER_PROVIDER`, 256).
        for (id, root) in provider.data.store().deals()? {
            let deal = view(
                chain,
                STORAGE_MARKET,
                StorageMarket::dealOfCall { id: id.into() },
            )?;
            if deal.provider == me && deal.state == DealState::Active as u8 {
                deals += 1;
                faults += u64::from(deal.faults);
                // Two deals of one file hold it once.
                held.insert(root, deal.size);
            }
        }
        self.deals_active.set(gauge_value(deals));
        self.deal_faults.set(gauge_value(faults));
        self.stored_bytes.set(gauge_value(held.values().sum()));
        let standing = Standing::read(chain, me)?;
        self.bonded.set(crn(standing.bonded));
        self.minimum_bond.set(crn(standing.minimum));
        self.locked.set(crn(standing.locked));
        self.claimable.set(crn(standing.claimable));
        Ok(())
    }
}

/// A provider's standing on chain: its roles, its bond against their minimum, what of it is
/// locked as collateral, and what it can claim.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// Its role bits in Staking.
    pub roles: u8,
    /// Its bond, wei.
    pub bonded: U256,
    /// The least bond its roles need, wei.
    pub minimum: U256,
    /// Bond locked as collateral, wei.
    pub locked: U256,
    /// Rewards and payments waiting to be claimed, wei.
    pub claimable: U256,
}

impl Standing {
    /// Reads `account`'s standing from the committed state.
    pub fn read(
        chain: &Chain,
        account: Address,
    ) -> std::result::Result<Self, cairn_providers::error::DataError> {
        use cairn_providers::contracts::view;
        use cairn_reward_contracts::bindings::{ComputeMarket, RewardPool, Staking, StorageMarket};
        use cairn_reward_contracts::{COMPUTE_MARKET, REWARD_POOL, STAKING, STORAGE_MARKET};

        let stake = view(chain, STAKING, Staking::stakeOfCall { staker: account })?;
        let mut minimum = U256::ZERO;
        if stake.roles & cairn_reward_contracts::roles::STORAGE != 0 {
            minimum = minimum.max(view(chain, STAKING, Staking::minStorageStakeCall {})?);
        }
        if stake.roles & cairn_reward_contracts::roles::COMPUTE != 0 {
            minimum = minimum.max(view(chain, STAKING, Staking::minComputeStakeCall {})?);
        }
        let locked = view(chain, STAKING, Staking::lockedOfCall { staker: account })?;
        let claimable = view(chain, REWARD_POOL, RewardPool::owedCall(account))?
            + view(chain, STORAGE_MARKET, StorageMarket::claimableCall(account))?
            + view(chain, COMPUTE_MARKET, ComputeMarket::claimableCall(account))?;
        Ok(Self {
            roles: stake.roles,
            bonded: stake.bonded,
            minimum,
            locked,
            claimable,
        })
    }
}

/// Wei as CRN, for a gauge (an approximation past 2^53 wei, which a dashboard does not see).
fn crn(wei: U256) -> f64 {
    let whole = wei / U256::from(cairn_chain::genesis::TOKEN);
    let fraction = wei % U256::from(cairn_chain::genesis::TOKEN);
    f64::from(whole) + f64::from(fraction) / cairn_chain::genesis::TOKEN as f64
}

/// The provider a node runs.
#[derive(Debug, Clone)]
pub struct ProviderSource {
    /// The data plane, with the agent's counters and the deals' data.
    pub data: Arc<cairn_providers::DataNet>,
    /// The provider's account.
    pub account: Address,
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
    /// The provider this node runs, if any.
    pub provider: Option<ProviderSource>,
}

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
                // prometheus-client adds `_total` to every counter's samples, whatever its name.
                let suffix = if counters.contains(name) {
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
