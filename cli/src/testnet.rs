//! `cairn testnet init|start`: a multi-validator network of node processes on this machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cairn_node::testnet::{DEFAULT_VIEW_TIMEOUT_MS, Testnet, TestnetOptions};
use cairn_rpc::CairnApiClient;
use jsonrpsee::http_client::HttpClientBuilder;

use crate::global::Global;
use crate::output::print;

/// `cairn testnet ...`
#[derive(Debug, clap::Subcommand)]
pub enum TestnetCommand {
    /// Write a testnet: the genesis (every validator staked) and one data directory per node,
    /// each with its keys and a node.json naming free loopback ports and the other nodes.
    Init {
        /// Number of validator nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Where to write it.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 250)]
        block_time: u64,
        /// Milliseconds a consensus view may go without a notarization.
        #[arg(long, default_value_t = DEFAULT_VIEW_TIMEOUT_MS)]
        view_timeout: u64,
        /// How many of the nodes also run a storage provider (staked and advertised at start).
        #[arg(long, default_value_t = 0)]
        storage_providers: usize,
        /// How many of the nodes also run a compute provider (jobs need at least two).
        #[arg(long, default_value_t = 0)]
        compute_providers: usize,
        /// Blocks per epoch (storage proofs are due once per epoch).
        #[arg(long, default_value_t = 30)]
        epoch_length: u64,
    },
    /// Start every node of a testnet as its own process; Ctrl-C stops them all.
    Start {
        /// The testnet directory written by `cairn testnet init`.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
        /// Leave node N (as in `node-N`) for you to start yourself, e.g. under a debugger
        /// (`cairn node run --datadir DIR/node-N`); repeatable.
        #[arg(long, value_name = "N")]
        except: Vec<usize>,
    },
}

pub async fn run(command: TestnetCommand, global: &Global) -> anyhow::Result<()> {
    match command {
        TestnetCommand::Init {
            nodes,
            dir,
            block_time,
            view_timeout,
            storage_providers,
            compute_providers,
            epoch_length,
        } => {
            anyhow::ensure!(
                epoch_length >= 4,
                "--epoch-length must be at least 4 blocks"
            );
            anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
            anyhow::ensure!(block_time >= 1, "--block-time must be at least 1 ms");
            anyhow::ensure!(
                view_timeout > block_time,
                "--view-timeout must be longer than --block-time"
            );
            let options = TestnetOptions {
                nodes,
                block_time_ms: block_time,
                view_timeout_ms: view_timeout,
                extra_accounts: Vec::new(),
                storage_providers,
                compute_providers,
                epoch_length,
            };
            let testnet = cairn_node::testnet::init(&dir, &options)?;
            print(global.json, &testnet, || options.summary(&dir))
        }
        TestnetCommand::Start { dir, except } => start(&dir, &except, global).await,
    }
}

/// The node processes; dropping it stops them.
struct Processes(Vec<(PathBuf, Child)>);

impl Processes {
    fn stop(&mut self) {
        for (_, child) in &mut self.0 {
            terminate(child);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (_, child) in &mut self.0 {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks a node to stop cleanly (SIGTERM).
fn terminate(child: &Child) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    #[cfg(not(unix))]
    let _ = child;
}

fn spawn_node(dir: &Path, datadir: &Path) -> anyhow::Result<Child> {
    let datadir = dir.join(datadir);
    let log_path = datadir.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let child = Command::new(std::env::current_exe().context("cannot find the cairn binary")?)
        .arg("node")
        .arg("run")
        .arg("--datadir")
        .arg(&datadir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start the node in {}", datadir.display()))?;
    std::fs::write(datadir.join("node.pid"), child.id().to_string())
        .with_context(|| format!("cannot write {}", datadir.join("node.pid").display()))?;
    Ok(child)
}

async fn start(dir: &Path, except: &[usize], global: &Global) -> anyhow::Result<()> {
    let testnet = Testnet::load(dir).with_context(|| {
        format!(
            "no testnet in {}; create one with: cairn testnet init --dir {}",
            dir.display(),
            dir.display()
        )
    })?;
    if let Some(missing) = except
        .iter()
        .find(|n| **n == 0 || **n > testnet.nodes.len())
    {
        anyhow::bail!(
            "--except {missing}: the testnet has nodes 1 to {}",
            testnet.nodes.len()
        );
    }
    let started: Vec<_> = (1..)
        .zip(&testnet.nodes)
        .filter(|(number, _)| !except.contains(number))
        .map(|(_, node)| node)
        .collect();
    let mut processes = Processes(Vec::new());
    for node in &started {
        let child = spawn_node(dir, &node.datadir)?;
        processes.0.push((node.datadir.clone(), child));
    }
    // Every node started answers RPC before the banner is printed.
    for node in &started {
        let client = HttpClientBuilder::default().build(&node.rpc_url)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.chain_status().await.is_err() {
            for (datadir, child) in &mut processes.0 {
                if let Some(status) = child.try_wait()? {
                    let log = dir.join(&*datadir).join("node.log");
                    anyhow::bail!(
                        "the node in {} exited ({status}); see {}",
                        datadir.display(),
                        log.display()
                    );
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not answer within 60 s",
                node.rpc_url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    print(global.json, &testnet, || testnet.describe(dir))?;

    let mut watch = tokio::time::interval(Duration::from_secs(1));
    let signal = crate::node::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            result = &mut signal => {
                result?;
                break;
            }
            _ = watch.tick() => {
                for (datadir, child) in &mut processes.0 {
                    if let Ok(Some(status)) = child.try_wait() {
                        tracing::warn!(
                            datadir = %datadir.display(),
                            %status,
                            "a node stopped; the others go on (restart it with cairn node run --datadir)"
                        );
                    }
                }
                // Forget the exited ones so the warning is given once.
                processes.0.retain_mut(|(_, child)| matches!(child.try_wait(), Ok(None)));
            }
        }
    }
    eprintln!("stopping {} nodes", processes.0.len());
    processes.stop();
    Ok(())
}
