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

/// Lays out a testnet in `workdir`, launches its nodes in this process (each with its own
/// libp2p stack on loopback), submits signed transfers at a steady rate, spread over the nodes
/// (as `cairn_sendRawTransaction` would) and watches node 1 finalize them.
pub async fn run(options: NetworkBenchOptions, workdir: &Path) -> Result<NetworkReport> {
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
            nodes: options.nodes,
            block_time_ms: options.block_time_ms,
            view_timeout_ms: cairn_node::testnet::DEFAULT_VIEW_TIMEOUT_MS,
            extra_accounts: senders.iter().map(AccountKey::address).collect(),
            storage_providers: 0,
            compute_providers: 0,
            epoch_length: cairn_chain::genesis::Genesis::dev().epoch_length,
        },
    )?;
    let mut nodes = Vec::with_capacity(layout.nodes.len());
    for entry in &layout.nodes {
        let datadir = workdir.join(&entry.datadir);
        let file = NodeFile::load(&datadir)?
            .ok_or_else(|| BenchError::Check(format!("{} has no node.json", datadir.display())))?;
        let mut config = NodeConfig::from_datadir(&datadir, file.rpc_addr)?;
        config.network = Some(file.settings(&datadir)?);
        config.execution_threads = 1;
        nodes.push(Node::launch(config).await?);
    }
    let observer = nodes[0].chain().clone();
    let chain = &observer;
    // Load starts once the network finalizes.
    let ready = Instant::now() + Duration::from_secs(60);
    while chain.head()?.height < 2 {
        if Instant::now() > ready {
            return Err(BenchError::Check(
                "the testnet finalized nothing within 60 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let genesis = chain.genesis().clone();
    let mut nonces = vec![0u64; senders.len()];
    let mut submitted_at: HashMap<B256, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let interval = Duration::from_secs_f64(1.0 / options.tx_per_sec.max(1) as f64);
    let start = Instant::now();
    let start_height = chain.head()?.height;
    let mut seen_height = start_height;
    let mut next_submit = start;
    let mut last_finalized = start;
    let mut submitted = 0usize;
    let mut refused = 0usize;
    let load_ends = start + options.duration;
    let drain_ends = load_ends + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        if now < load_ends {
            while next_submit <= now {
                let index = (submitted + refused) % senders.len();
                let tx = TxBody {
                    chain_id: genesis.chain_id,
                    nonce: nonces[index],
                    gas_limit: 21_000,
                    max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
                    max_priority_fee_per_gas: 0,
                    to: Some(Address::repeat_byte(0x77)),
                    value: U256::from(1),
                    input: Default::default(),
                }
                .sign(&senders[index]);
                // A sender talks to one node, as a wallet does: a later nonce sent to another
                // node could arrive before its predecessor has been gossiped there.
                let target = nodes[index % nodes.len()].pool();
                next_submit += interval;
                match target.submit_raw(&tx.encode()) {
                    Ok(hash) => {
                        submitted_at.insert(hash, Instant::now());
                        nonces[index] += 1;
                        submitted += 1;
                    }
                    // Overload shows as refusals (a full mempool), counted, not as an error.
                    Err(_) => refused += 1,
                }
            }
        } else if submitted_at.is_empty() || now > drain_ends {
            break;
        }
        let head = chain.head()?.height;
        while seen_height < head {
            seen_height += 1;
            let Some(block) = chain.block(seen_height)? else {
                break;
            };
            let now = Instant::now();
            for tx in &block.transactions {
                if let Some(sent) = submitted_at.remove(&tx.hash()) {
                    latencies.push(now - sent);
                    last_finalized = now;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = (last_finalized - start).as_secs_f64().max(1e-9);
    let blocks = seen_height - start_height;
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    for node in nodes {
        node.shutdown().await;
    }
    latencies.sort_unstable();
    let percentile = |p: usize| -> f64 {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(NetworkReport {
        nodes: options.nodes,
        block_time_ms: options.block_time_ms,
        submitted,
        refused,
        finalized: latencies.len(),
        p50_ms: percentile(50),
        p99_ms: percentile(99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        finalized_tx_per_sec: latencies.len() as f64 / elapsed,
        blocks_per_sec: blocks as f64 / wall,
    })
}
