//! `cairn bench network`: a loopback testnet of validators under a steady load of transfers,
//! measuring submission → finalization latency and finalized throughput.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{BenchError, Result};
use cairn_node::testnet::{NodeFile, TestnetOptions};
use cairn_node::{Node, NodeConfig};
use cairn_primitives::{AccountKey, Address, B256, Canonical, TxBody, U256};

/// Funded accounts the load comes from: enough that no one sender's pending transactions
/// reach the mempool's per-sender limit at thousands of transfers per second.
const SENDERS: u64 = 256;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct NetworkBenchOptions {
    /// Validators (one node each, all in this process).
    pub nodes: usize,
    /// Transfers submitted per second, each sender's to one node, the senders spread over the nodes.
    pub tx_per_sec: u64,
    /// How long the load lasts.
    pub duration: Duration,
    /// Target block interval.
    pub block_time_ms: u64,
}

/// Latency and throughput of a loopback testnet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkReport {
    /// Validators.
    pub nodes: usize,
    /// Target block interval (ms).
    pub block_time_ms: u64,
    /// Transfers submitted and accepted by a mempool.
    pub submitted: usize,
    /// Transfers a mempool refused (it was full): the load was more than the network takes.
    pub refused: usize,
    /// Of which seen finalized on node 1 before the end.
    pub finalized: usize,
    /// Submission → finalized on node 1, median (ms).
    pub p50_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Slowest (ms).
    pub max_ms: f64,
    /// Finalized transfers per second over the load.
    pub finalized_tx_per_sec: f64,
    /// Blocks finalized per second over the load.
    pub blocks_per_sec: f64,
}

/// A loopback testnet whose nodes run in this process, each with its own libp2p stack.
pub(crate) struct Testnet {
    /// The nodes, in layout order.
    pub nodes: Vec<Node>,
    /// Each node's libp2p address, with its peer id.
    pub addresses: Vec<cairn_p2p::Multiaddr>,
    /// Funded accounts to send the load from.
    pub senders: Vec<AccountKey>,
}

impl Testnet {
    /// Lays out a testnet of `nodes` validators in `workdir` with [`SENDERS`] funded
    /// accounts, launches it and waits until it finalizes.
    pub async fn launch(workdir: &Path, nodes: usize, block_time_ms: u64) -> Result<Self> {
        let senders: Vec<AccountKey> = (0..SENDERS)
            .map(|i| {
                AccountKey::from_bytes(&blake3::derive_key(
                    "cairn network bench sender",
                    &i.to_le_bytes(),
                ))
            })
            .collect();
        let layout = cairn_node::testnet::init(
            workdir,
            &TestnetOptions {
                nodes,
                block_time_ms,
                view_timeout_ms: cairn_node::testnet::DEFAULT_VIEW_TIMEOUT_MS,
                extra_accounts: senders.iter().map(AccountKey::address).collect(),
                storage_providers: 0,
                compute_providers: 0,
                epoch_length: cairn_chain::genesis::Genesis::dev().epoch_length,
            },
        )?;
        let mut launched = Vec::with_capacity(layout.nodes.len());
        let mut addresses = Vec::with_capacity(layout.nodes.len());
        for entry in &layout.nodes {
            let datadir = workdir.join(&entry.datadir);
            let file = NodeFile::load(&datadir)?.ok_or_else(|| {
                BenchError::Check(format!("{} has no node.json", datadir.display()))
            })?;
            let mut config = NodeConfig::from_datadir(&datadir, file.rpc_addr)?;
            let settings = file.settings(&datadir)?;
            let listen = settings.listen.first().cloned();
            config.network = Some(settings);
            config.execution_threads = 1;
            let node = Node::launch(config).await?;
            if let (Some(listen), Some(peer)) = (listen, node.peer_id()) {
                addresses.push(listen.with(cairn_p2p::multiaddr::Protocol::P2p(peer)));
            }
            launched.push(node);
        }
        let testnet = Self {
            nodes: launched,
            addresses,
            senders,
        };
        // Load starts once the network finalizes.
        let chain = testnet.nodes[0].chain();
        let ready = Instant::now() + Duration::from_secs(60);
        while chain.head()?.height < 2 {
            if Instant::now() > ready {
                return Err(BenchError::Check(
                    "the testnet finalized nothing within 60 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(testnet)
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// A steady load of signed transfers, spread over the nodes (as `cairn_sendRawTransaction`
/// would), and the latency from submission until node 1 (the observer) finalizes each.
pub(crate) struct Load {
    nonces: Vec<u64>,
    submitted_at: HashMap<B256, Instant>,
    latencies: Vec<Duration>,
    interval: Duration,
    next_submit: Instant,
    seen_height: u64,
    start_height: u64,
    start: Instant,
    last_finalized: Instant,
    submitted: usize,
    refused: usize,
}

impl Load {
    /// A load of `tx_per_sec` transfers starting now, on `testnet`.
    pub fn new(testnet: &Testnet, tx_per_sec: u64) -> Result<Self> {
        let now = Instant::now();
        let height = testnet.nodes[0].chain().head()?.height;
        Ok(Self {
            nonces: vec![0; testnet.senders.len()],
            submitted_at: HashMap::new(),
            latencies: Vec::new(),
            interval: Duration::from_secs_f64(1.0 / tx_per_sec.max(1) as f64),
            next_submit: now,
            seen_height: height,
            start_height: height,
            start: now,
            last_finalized: now,
            submitted: 0,
            refused: 0,
        })
    }

    /// Starts a new phase: latencies, counts and the clock start again (nonces carry on).
    pub fn restart(&mut self) {
        let now = Instant::now();
        self.submitted_at.clear();
        self.latencies.clear();
        self.next_submit = now;
        self.start_height = self.seen_height;
        self.start = now;
        self.last_finalized = now;
        self.submitted = 0;
        self.refused = 0;
    }

    /// Submits transfers on schedule until `load_ends`, then waits (at most until
    /// `drain_ends`) for those submitted to be finalized.
    pub async fn run(
        &mut self,
        testnet: &Testnet,
        load_ends: Instant,
        drain_ends: Instant,
    ) -> Result<()> {
        let chain = testnet.nodes[0].chain();
        let genesis = chain.genesis().clone();
        loop {
            let now = Instant::now();
            if now < load_ends {
                while self.next_submit <= now {
                    let index = (self.submitted + self.refused) % testnet.senders.len();
                    let tx = TxBody {
                        chain_id: genesis.chain_id,
                        nonce: self.nonces[index],
                        gas_limit: 21_000,
                        max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
                        max_priority_fee_per_gas: 0,
                        to: Some(Address::repeat_byte(0x77)),
                        value: U256::from(1),
                        input: Default::default(),
                    }
                    .sign(&testnet.senders[index]);
                    // A sender talks to one node, as a wallet does.
                    let target = testnet.nodes[index % testnet.nodes.len()].pool();
                    self.next_submit += self.interval;
                    match target.submit_raw(&tx.encode()) {
                        Ok(hash) => {
                            self.submitted_at.insert(hash, Instant::now());
                            self.nonces[index] += 1;
                            self.submitted += 1;
                        }
                        // Overload shows as refusals (a full mempool), counted, not an error.
                        Err(_) => self.refused += 1,
                    }
                }
            } else if self.submitted_at.is_empty() || now > drain_ends {
                return Ok(());
            }
            let head = chain.head()?.height;
            while self.seen_height < head {
                self.seen_height += 1;
                let Some(block) = chain.block(self.seen_height)? else {
                    break;
                };
                let now = Instant::now();
                for tx in &block.transactions {
                    if let Some(sent) = self.submitted_at.remove(&tx.hash()) {
                        self.latencies.push(now - sent);
                        self.last_finalized = now;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The phase's figures.
    pub fn report(&mut self, nodes: usize, block_time_ms: u64) -> NetworkReport {
        let elapsed = (self.last_finalized - self.start).as_secs_f64().max(1e-9);
        let blocks = self.seen_height - self.start_height;
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let latencies = &mut self.latencies;
        latencies.sort_unstable();
        let percentile = |p: usize| -> f64 {
            latencies
                .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        NetworkReport {
            nodes,
            block_time_ms,
            submitted: self.submitted,
            refused: self.refused,
            finalized: latencies.len(),
            p50_ms: percentile(50),
            p99_ms: percentile(99),
            max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            finalized_tx_per_sec: latencies.len() as f64 / elapsed,
            blocks_per_sec: blocks as f64 / wall,
        }
    }
}

/// Lays out a testnet in `workdir`, launches its nodes in this process (each with its own
/// libp2p stack on loopback), submits signed transfers at a steady rate, spread over the nodes
/// (as `cairn_sendRawTransaction` would) and watches node 1 finalize them.
pub async fn run(options: NetworkBenchOptions, workdir: &Path) -> Result<NetworkReport> {
    let testnet = Testnet::launch(workdir, options.nodes, options.block_time_ms).await?;
    let mut load = Load::new(&testnet, options.tx_per_sec)?;
    let load_ends = Instant::now() + options.duration;
    load.run(&testnet, load_ends, load_ends + Duration::from_secs(10))
        .await?;
    testnet.shutdown().await;
    Ok(load.report(options.nodes, options.block_time_ms))
}
