//! `cairn`: run a Cairn node, manage keys, send transactions and inspect the chain.
//!
//! The binary only parses arguments, asks for passwords and prints; the work is done by
//! [`cairn_client`] (the client flows) and [`cairn_node`] (running nodes).

mod chain;
mod compute;
mod contracts;
mod global;
mod node;
mod output;
mod storage;
mod testnet;
mod wallet;

use clap::{Parser, Subcommand};

use crate::global::Global;

/// Cairn: a DePIN compute-and-storage reward network.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a one-node dev chain with funded accounts (like anvil).
    Dev(node::DevArgs),
    /// Run a node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Run a multi-validator network of node processes on this machine.
    #[command(subcommand)]
    Testnet(testnet::TestnetCommand),
    /// Manage keys and send tokens.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Bond, unbond and withdraw stake.
    #[command(subcommand)]
    Stake(contracts::StakeCommand),
    /// Register and advertise as a storage or compute provider.
    #[command(subcommand)]
    Provider(contracts::ProviderCommand),
    /// Store files with providers and get them back.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Run WASM jobs on compute providers and fetch their output.
    #[command(subcommand)]
    Compute(compute::ComputeCommand),
    /// Show and claim rewards and payments.
    #[command(subcommand)]
    Rewards(contracts::RewardsCommand),
    /// Inspect the chain.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Measure this machine.
    #[command(subcommand)]
    Bench(node::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => node::dev(args, &cli.global).await,
            Command::Node(command) => node::run(command, &cli.global).await,
            Command::Testnet(command) => testnet::run(command, &cli.global).await,
            Command::Wallet(command) => wallet::run(command, &cli.global).await,
            Command::Stake(command) => contracts::stake(command, &cli.global).await,
            Command::Provider(command) => contracts::provider(command, &cli.global).await,
            Command::Storage(command) => storage::run(command, &cli.global).await,
            Command::Compute(command) => compute::run(command, &cli.global).await,
            Command::Rewards(command) => contracts::rewards(command, &cli.global).await,
            Command::Chain(command) => chain::run(command, &cli.global).await,
            Command::Bench(command) => node::bench(command, &cli.global).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
