//! `cairn dev`, `cairn node run` and `cairn bench`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cairn_bench::ExecutionWorkload;
use cairn_node::config::{NodeBanner, default_dev_datadir, prepare_dev_datadir};
use cairn_node::testnet::{NodeFile, RunOptions};
use cairn_node::{Node, NodeConfig};

use crate::Global;
use crate::output::print;

/// Where the RPC server listens.
#[derive(Debug, clap::Args)]
pub struct RpcListen {
    /// RPC port (0 picks a free one) [default: 8545, or the port in node.json].
    #[arg(long)]
    rpc_port: Option<u16>,
    /// RPC listen address; keep it on loopback unless a firewall protects the port.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    rpc_addr: IpAddr,
    /// Milliseconds between blocks [default: the genesis value].
    #[arg(long)]
    block_time: Option<u64>,
    /// Threads of the parallel executor (0 = one per core).
    #[arg(long, default_value_t = 0)]
    execution_threads: usize,
}

impl RpcListen {
    fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.rpc_addr, self.rpc_port.unwrap_or(8545))
    }

    fn apply(&self, config: &mut NodeConfig) -> anyhow::Result<()> {
        config.execution_threads = self.execution_threads;
        if let Some(ms) = self.block_time {
            anyhow::ensure!(ms > 0, "--block-time must be at least 1 ms");
            config.block_time = Some(Duration::from_millis(ms));
        }
        Ok(())
    }
}

/// Arguments of `cairn dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Data directory; reusing it resumes the chain [default: ~/.cairn/dev].
    #[arg(long)]
    datadir: Option<PathBuf>,
    #[command(flatten)]
    listen: RpcListen,
}

/// `cairn node ...`
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Run a node from a data directory holding genesis.json and validator.key. With a
    /// node.json (written by `cairn testnet init`) or any networking flag, the node joins its
    /// peers over libp2p and finalizes blocks by consensus; otherwise it runs the chain alone.
    Run {
        /// The data directory.
        #[arg(long)]
        datadir: PathBuf,
        /// Network configuration file [default: DATADIR/node.json, if present].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Peer to join through, e.g. /ip4/127.0.0.1/tcp/30303/p2p/12D3Koo... (repeatable).
        #[arg(long = "bootnode")]
        bootnodes: Vec<String>,
        /// libp2p listen address (repeatable) [default: /ip4/0.0.0.0/tcp/30303].
        #[arg(long = "p2p-listen")]
        p2p_listen: Vec<String>,
        /// Find peers on the local network by mDNS.
        #[arg(long)]
        mdns: bool,
        #[command(flatten)]
        listen: RpcListen,
    },
}

/// `cairn bench ...`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Signed transfers per second from submission to commit, and where the time goes.
    Transfers {
        /// Number of transfers (one per sender).
        #[arg(long, default_value_t = 20_000)]
        txs: usize,
    },
    /// Time of Cairn's precompiles against ecrecover, and the gas that time is worth.
    Precompiles,
    /// A loopback testnet under steady load: submission → finalization latency and throughput.
    Network {
        /// Validators, each a node with its own libp2p stack, all in this process.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Transfers submitted per second.
        #[arg(long, default_value_t = 200)]
        tps: u64,
        /// Seconds of load.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 250)]
        block_time: u64,
    },
    /// Storage: upload and retrieval over libp2p on loopback, chunk proofs from a large stored
    /// file, and the gas and time of verifying proofs on chain.
    Storage {
        /// MiB moved between nodes.
        #[arg(long, default_value_t = 64)]
        transfer_mib: u64,
        /// MiB of the file chunks are proven from.
        #[arg(long, default_value_t = 1024)]
        proof_file_mib: u64,
        /// Chunk proofs generated.
        #[arg(long, default_value_t = 1000)]
        proofs: usize,
        /// Proof transactions executed.
        #[arg(long, default_value_t = 64)]
        proof_txs: usize,
    },
    /// Compute: the WASM runner's fuel per second, small jobs per second, and the gas of
    /// posting, answering and verifying a job.
    Compute {
        /// Fuel the endless example job burns.
        #[arg(long, default_value_t = 2_000_000_000)]
        fuel: u64,
        /// Word-count jobs on a 4 KiB input.
        #[arg(long, default_value_t = 2_000)]
        jobs: usize,
    },
    /// The parallel executor against the sequential one on five workloads.
    Execution {
        /// Transactions per block.
        #[arg(long, default_value_t = 10_000)]
        txs: usize,
        /// Thread counts to measure, comma separated [default: 1, 2 and every core].
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// Workloads to run, comma separated: transfers, erc20, proofs, one-slot,
        /// hot-accounts [default: all].
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<ExecutionWorkload>,
    },
}

pub async fn dev(args: DevArgs, global: &Global) -> anyhow::Result<()> {
    let datadir = args.datadir.unwrap_or_else(default_dev_datadir);
    let (mut config, accounts) =
        prepare_dev_datadir(&datadir, args.listen.socket()).with_context(|| {
            format!(
                "cannot prepare the dev data directory {}",
                datadir.display()
            )
        })?;
    args.listen.apply(&mut config)?;
    let node = Node::launch(config.clone()).await?;
    let status = banner(&node, &config);
    let value = serde_json::json!({ "node": status, "accounts": accounts });
    print(global.json, &value, || status.dev(&accounts, &datadir))?;
    serve(node).await
}

pub async fn run(command: NodeCommand, global: &Global) -> anyhow::Result<()> {
    let NodeCommand::Run {
        datadir,
        config: config_file,
        bootnodes,
        p2p_listen,
        mdns,
        listen,
    } = command;
    let node_file =
        match &config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a valid node configuration", path.display())
                })?)
            }
            None => NodeFile::load(&datadir)?,
        };
    let options = RunOptions {
        node_file,
        rpc_addr: listen.rpc_addr,
        rpc_port: listen.rpc_port,
        bootnodes,
        p2p_listen,
        mdns,
    };
    let mut config = options.node_config(&datadir)?;
    listen.apply(&mut config)?;
    let node = Node::launch(config.clone()).await?;
    let status = banner(&node, &config);
    print(global.json, &status, || status.running(&datadir))?;
    serve(node).await
}

fn banner(node: &Node, config: &NodeConfig) -> NodeBanner {
    let height = node.chain().head_header().height;
    NodeBanner::new(
        config,
        node.rpc_addr(),
        height,
        node.peer_id().map(|p| p.to_string()),
    )
}

/// Runs until Ctrl-C or SIGTERM, then stops cleanly.
async fn serve(node: Node) -> anyhow::Result<()> {
    shutdown_signal().await?;
    tracing::info!("stopping");
    node.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

pub async fn bench(command: BenchCommand, global: &Global) -> anyhow::Result<()> {
    let txs = match command {
        BenchCommand::Transfers { txs } => txs,
        BenchCommand::Network {
            nodes,
            tps,
            seconds,
            block_time,
        } => return bench_network(nodes, tps, seconds, block_time, global).await,
        BenchCommand::Execution {
            txs,
            threads,
            workloads,
        } => return bench_execution(txs, threads, &workloads, global),
        BenchCommand::Compute { fuel, jobs } => {
            anyhow::ensure!(fuel >= 1, "--fuel must be at least 1");
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let r = cairn_bench::compute::run(fuel, jobs, dir.path())?;
            return print(global.json, &r, || {
                format!(
                    "WASM runner (wasmi, fuel metered), one core\n  endless job: {} fuel in {:.0} ms   {:>12.0} fuel/s\n  word count of 4 KiB ({} fuel), {} jobs   {:>10.0} jobs/s\nOn chain (3 compute providers)\n  postJob (draws the provider)        {:>9} gas\n  submitResult (draws the verifier)   {:>9} gas\n  attest (verifies, settles, pays)    {:>9} gas\nA verifier re-executes the whole job: checking costs what running it cost, plus the attest transaction.",
                    r.spin_fuel,
                    r.spin_ms,
                    r.fuel_per_sec,
                    r.small_job_fuel,
                    r.small_jobs,
                    r.small_jobs_per_sec,
                    r.post_job_gas,
                    r.submit_result_gas,
                    r.attest_gas
                )
            });
        }
        BenchCommand::Storage {
            transfer_mib,
            proof_file_mib,
            proofs,
            proof_txs,
        } => {
            let options = cairn_bench::storage::StorageBenchOptions {
                transfer_mib,
                proof_file_mib,
                proofs,
                proof_txs,
            };
            return bench_storage(options, global).await;
        }
        BenchCommand::Precompiles => {
            let costs = cairn_bench::precompiles();
            return print(global.json, &costs, || {
                let mut text = format!(
                    "{:<44} {:>7} {:>10} {:>9} {:>12}\n",
                    "precompile", "bytes", "ns/call", "charged", "at ecrecover"
                );
                for c in &costs {
                    text.push_str(&format!(
                        "{:<44} {:>7} {:>10.0} {:>9} {:>12.0}\n",
                        c.name,
                        c.input_bytes,
                        c.ns_per_call,
                        c.gas_charged,
                        c.gas_at_ecrecover_rate
                    ));
                }
                text.push_str("(at ecrecover: 3,000 gas × this call's time ÷ ecrecover's time)");
                text
            });
        }
    };
    anyhow::ensure!(txs > 0, "--txs must be at least 1");
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let report = cairn_bench::transfers(txs, dir.path())?;
    print(global.json, &report, || {
        let row = |name: &str, ms: f64| {
            format!("  {name:<22} {ms:>10.1} ms  {:>5.1} %\n", report.share(ms))
        };
        let mut text = format!(
            "Signed transfers, submission to commit ({} txs in {} blocks)\n  throughput             {:>10.0} tx/s\n\n",
            report.transactions, report.blocks, report.tx_per_sec
        );
        text.push_str(&row("admission (mempool)", report.admission_ms));
        text.push_str(&row("  of which signatures", report.signature_checks_ms));
        text.push_str(&row("execution (revm)", report.execution_ms));
        text.push_str(&row("state root (JMT)", report.state_root_ms));
        text.push_str(&row("commit (RocksDB)", report.commit_ms));
        text.push_str(&row("block assembly", report.block_assembly_ms));
        text.push_str(&row("total", report.total_ms));
        text
    })
}

async fn bench_network(
    nodes: usize,
    tps: u64,
    seconds: u64,
    block_time: u64,
    global: &Global,
) -> anyhow::Result<()> {
    anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(tps >= 1, "--tps must be at least 1");
    anyhow::ensure!(block_time >= 1, "--block-time must be at least 1 ms");
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let options = cairn_bench::network::NetworkBenchOptions {
        nodes,
        tx_per_sec: tps,
        duration: Duration::from_secs(seconds),
        block_time_ms: block_time,
    };
    let report = cairn_bench::network::run(options, dir.path()).await?;
    print(global.json, &report, || {
        format!(
            "Loopback testnet of {} validators, {} ms blocks, {tps} transfers/s for {seconds} s\n  submitted              {:>10}\n  refused (pool full)    {:>10}\n  finalized on node 1    {:>10}\n  latency p50            {:>10.0} ms\n  latency p99            {:>10.0} ms\n  latency max            {:>10.0} ms\n  finalized throughput   {:>10.1} tx/s\n  blocks finalized       {:>10.2} /s",
            report.nodes,
            report.block_time_ms,
            report.submitted,
            report.refused,
            report.finalized,
            report.p50_ms,
            report.p99_ms,
            report.max_ms,
            report.finalized_tx_per_sec,
            report.blocks_per_sec
        )
    })
}

async fn bench_storage(
    options: cairn_bench::storage::StorageBenchOptions,
    global: &Global,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.transfer_mib >= 1,
        "--transfer-mib must be at least 1"
    );
    anyhow::ensure!(
        options.proof_file_mib >= 1,
        "--proof-file-mib must be at least 1"
    );
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let r = cairn_bench::storage::run(options, dir.path()).await?;
    print(global.json, &r, || {
        format!(
            "Storage over libp2p on loopback ({} MiB, every piece checked against the root)\n  upload (provider fetches from client)   {:>9.1} MiB/s\n  retrieval (from two holders at once)    {:>9.1} MiB/s\nChunk proofs from a {} MiB file in the chunk store\n  import (hash, outboard, write)          {:>9.1} MiB/s\n  proof generation, mean                  {:>9.1} µs\n  proof generation, slowest               {:>9.1} µs\n  siblings per proof                      {:>9}\nOn-chain verification ({} chunks per proof transaction)\n  gas per proof transaction               {:>9}\n  execution time per proof transaction    {:>9.1} µs",
            options.transfer_mib,
            r.upload_mib_per_sec,
            r.retrieval_mib_per_sec,
            options.proof_file_mib,
            r.import_mib_per_sec,
            r.prove_mean_us,
            r.prove_max_us,
            r.proof_path_len,
            r.challenges_per_tx,
            r.verify_gas_per_tx,
            r.verify_us_per_tx
        )
    })
}

fn bench_execution(
    txs: usize,
    mut threads: Vec<usize>,
    workloads: &[ExecutionWorkload],
    global: &Global,
) -> anyhow::Result<()> {
    anyhow::ensure!(txs >= 1, "--txs must be at least 1");
    if threads.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        threads = vec![1, 2, cores];
    }
    threads.sort_unstable();
    threads.dedup();
    anyhow::ensure!(threads.iter().all(|t| *t >= 1), "thread counts start at 1");
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let workloads = if workloads.is_empty() {
        &ExecutionWorkload::ALL[..]
    } else {
        workloads
    };
    let reports = cairn_bench::execution(txs, &threads, workloads, dir.path())?;
    print(global.json, &reports, || {
        let mut text = format!(
            "Block execution, {txs} transactions per block; every parallel result was checked equal to the sequential one.\n\
             Medians of interleaved runs. The ceiling is the sequential executor on N shares of the block at once,\n\
             uncoordinated: as fast as this machine runs the block's work on N threads.\n\n\
             {:<40} {:>9} {:>11} {:>12} {:>9}\n",
            "workload / executor", "ms", "tx/s", "Mgas/s", "speedup"
        );
        for report in &reports {
            let runs_per_tx = report
                .runs_per_tx
                .map_or("sequential fallback".to_string(), |runs| {
                    format!("{runs:.2} Block-STM runs per tx at 2 threads")
                });
            text.push_str(&format!(
                "{} ({} gas; W/L {:.1}; {runs_per_tx})\n",
                report.workload, report.gas, report.dependency_bound
            ));
            let rows = report.runs.iter().map(|run| {
                let label = run.threads.map_or("  sequential".to_string(), |t| {
                    if t == 1 {
                        // One worker hands every block to the sequential executor.
                        "  Block-STM, 1 thread (sequential code)".to_string()
                    } else {
                        format!("  Block-STM, {t} threads")
                    }
                });
                (label, run)
            });
            let ceilings = report.ceilings.iter().map(|run| {
                (
                    format!("  ceiling, {} shares", run.threads.unwrap_or(1)),
                    run,
                )
            });
            for (label, run) in rows.chain(ceilings) {
                text.push_str(&format!(
                    "{label:<40} {:>9.1} {:>11.0} {:>12.1} {:>8.2}x\n",
                    run.ms,
                    run.tx_per_sec,
                    run.gas_per_sec / 1e6,
                    run.speedup
                ));
            }
        }
        text
    })
}
