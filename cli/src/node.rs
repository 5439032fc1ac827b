//! `cairn dev`, `cairn node run` and `cairn bench`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cairn_bench::ExecutionWorkload;
use cairn_node::config::{NodeBanner, default_dev_datadir, prepare_dev_datadir};
use cairn_node::testnet::{NodeFile, RunOptions};
use cairn_node::{Node, NodeConfig};

use crate::global::Global;
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
    /// Serve Prometheus metrics at http://RPC_ADDR:PORT/metrics (0 picks a free port) [default:
    /// node.json's metricsAddr, else none]. Same Host and Origin checks as the RPC.
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Milliseconds between blocks [default: the genesis value].
    #[arg(long)]
    block_time: Option<u64>,
    /// Threads of the parallel executor (0 = one per core).
    #[arg(long, default_value_t = 0)]
    execution_threads: usize,
    /// A host name the RPC answers to besides loopback and --rpc-addr (repeatable; `*` for
    /// any). Requests naming another Host are refused, so a web page cannot reach the node
    /// through a DNS name rebound to its address.
    #[arg(long = "rpc-allowed-host")]
    rpc_allowed_hosts: Vec<String>,
    /// The origin (e.g. https://app.example) of a web page allowed to call the RPC
    /// (repeatable; `*` for any). Requests from other pages are refused.
    #[arg(long = "rpc-allowed-origin")]
    rpc_allowed_origins: Vec<String>,
}

impl RpcListen {
    fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.rpc_addr, self.rpc_port.unwrap_or(8545))
    }

    fn apply(&self, config: &mut NodeConfig) -> anyhow::Result<()> {
        config.execution_threads = self.execution_threads;
        if let Some(port) = self.metrics_port {
            config.metrics_addr = Some(SocketAddr::new(self.rpc_addr, port));
        }
        config.rpc_allowed_hosts.clone_from(&self.rpc_allowed_hosts);
        config
            .rpc_allowed_origins
            .clone_from(&self.rpc_allowed_origins);
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

/// The signatures `cairn bench transfers` runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignatureChoice {
    /// Cairn's ed25519 transactions.
    Ed25519,
    /// Ethereum (secp256k1, EIP-1559) transactions.
    Ethereum,
    /// Both, one run after the other.
    Both,
}

/// `cairn bench ...`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Signed transfers per second from submission to commit, and where the time goes.
    Transfers {
        /// Number of transfers (one per sender).
        #[arg(long, default_value_t = 20_000)]
        txs: usize,
        /// Funded accounts in the state (at least the senders): the rest are idle, so that
        /// the state has this size.
        #[arg(long, default_value_t = 0)]
        accounts: usize,
        /// How they are signed: ed25519 (Cairn's own), ethereum (secp256k1, EIP-1559), or
        /// both, one run after the other.
        #[arg(long, value_enum, default_value_t = SignatureChoice::Ed25519)]
        signature: SignatureChoice,
    },
    /// Time of Cairn's precompiles against ecrecover, and the gas that time is worth.
    Precompiles,
    /// The adversarial economics harness: honest and cheating providers and clients (droppers,
    /// a provider that exits before its slash, a self-dealer, a free-job spammer, a lazy
    /// verifier, colluding pairs, a client that withholds input) play the real contracts for
    /// many epochs; fails unless every cheat ends below honesty, honesty pays and the supply is
    /// conserved.
    Economics {
        /// Epochs played.
        #[arg(long, default_value_t = 30)]
        epochs: u64,
        /// Seeds the agents' choices (data, lost chunks, inputs, salts, audits).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Storage deals each storage provider holds.
        #[arg(long, default_value_t = 16)]
        deals: usize,
    },
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
    /// Node 1 of a loopback testnet flooded by a misbehaving peer (replayed votes, junk
    /// proposals, forged votes, malformed requests) while transfers are sent: finality latency
    /// calm and flooded, memory, and when the attacker was cut off. Fails unless finality goes
    /// on, the attacker is disconnected and kept out, and memory stays under its ceiling.
    Flood {
        /// Validators, each a node with its own libp2p stack, all in this process.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Transfers submitted per second, in both phases.
        #[arg(long, default_value_t = 100)]
        tps: u64,
        /// Seconds of each phase.
        #[arg(long, default_value_t = 15)]
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
        /// The digits job built natively (`scripts/build-jobs --native DIR` makes DIR/digits):
        /// times it on the same images, for the interpreter's overhead.
        #[arg(long)]
        native_digits: Option<std::path::PathBuf>,
    },
    /// The state commitment: root and commit time per changed leaf at a given state size.
    StateRoot {
        /// Funded accounts in the state before the measured blocks.
        #[arg(long, default_value_t = 100_000)]
        accounts: usize,
        /// Measured blocks.
        #[arg(long, default_value_t = 20)]
        blocks: usize,
        /// Accounts each block changes (a full block of transfers changes about 5,714).
        #[arg(long, default_value_t = 5_714)]
        changes: usize,
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
        node.metrics_addr(),
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
    let (txs, accounts, signature) = match command {
        BenchCommand::Transfers {
            txs,
            accounts,
            signature,
        } => (txs, accounts, signature),
        BenchCommand::Network {
            nodes,
            tps,
            seconds,
            block_time,
        } => return bench_network(nodes, tps, seconds, block_time, global).await,
        BenchCommand::Flood {
            nodes,
            tps,
            seconds,
            block_time,
        } => {
            anyhow::ensure!(nodes >= 2, "--nodes must be at least 2");
            anyhow::ensure!(
                tps >= 1 && block_time >= 1,
                "--tps and --block-time must be at least 1"
            );
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let options = cairn_bench::flood::FloodOptions {
                nodes,
                tx_per_sec: tps,
                phase: Duration::from_secs(seconds),
                block_time_ms: block_time,
            };
            let report = cairn_bench::flood::run(options, dir.path()).await?;
            return print(global.json, &report, || {
                cairn_bench::text::flood(&report, tps, seconds)
            });
        }
        BenchCommand::Execution {
            txs,
            threads,
            workloads,
        } => return bench_execution(txs, threads, &workloads, global),
        BenchCommand::StateRoot {
            accounts,
            blocks,
            changes,
        } => {
            anyhow::ensure!(accounts >= 1, "--accounts must be at least 1");
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let options = cairn_bench::state_root::StateRootOptions {
                accounts,
                blocks,
                changes,
            };
            let r = cairn_bench::state_root::run(options, dir.path())?;
            return print(global.json, &r, || cairn_bench::text::state_root(&r));
        }
        BenchCommand::Compute {
            fuel,
            jobs,
            native_digits,
        } => {
            anyhow::ensure!(fuel >= 1, "--fuel must be at least 1");
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let r = cairn_bench::compute::run(fuel, jobs, native_digits.as_deref(), dir.path())?;
            return print(global.json, &r, || cairn_bench::text::compute(&r));
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
        BenchCommand::Economics {
            epochs,
            seed,
            deals,
        } => {
            // The contract's own cap on a provider's deals; it also bounds the data held.
            anyhow::ensure!(
                (1..=256).contains(&deals),
                "--deals must be between 1 and 256 (a provider's most active deals)"
            );
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let options = cairn_bench::economics::EconomicsOptions {
                epochs,
                seed,
                deals_per_provider: deals,
            };
            let report = cairn_bench::economics::run(options, dir.path())?;
            print(global.json, &report, || {
                cairn_bench::text::economics(&report)
            })?;
            let failures = report.failures();
            anyhow::ensure!(
                failures.is_empty(),
                "the economics do not hold: {}",
                failures.join("; ")
            );
            return Ok(());
        }
        BenchCommand::Precompiles => {
            let costs = cairn_bench::precompiles();
            return print(global.json, &costs, || {
                cairn_bench::text::precompiles(&costs)
            });
        }
    };
    anyhow::ensure!(txs > 0, "--txs must be at least 1");
    use cairn_bench::TransferSignature;
    let signatures: &[TransferSignature] = match signature {
        SignatureChoice::Ed25519 => &[TransferSignature::Ed25519],
        SignatureChoice::Ethereum => &[TransferSignature::Ethereum],
        SignatureChoice::Both => &[TransferSignature::Ed25519, TransferSignature::Ethereum],
    };
    let mut reports = Vec::new();
    for signature in signatures {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        reports.push(cairn_bench::transfers(
            txs,
            accounts,
            *signature,
            dir.path(),
        )?);
    }
    print(global.json, &reports, || {
        reports
            .iter()
            .map(cairn_bench::text::transfers)
            .collect::<Vec<_>>()
            .join("\n")
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
        cairn_bench::text::network(&report, tps, seconds)
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
    print(global.json, &r, || cairn_bench::text::storage(&r, &options))
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
        cairn_bench::text::execution(txs, &reports)
    })
}
