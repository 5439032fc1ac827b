//! `cairn compute ...`: WASM jobs run by compute providers, checked by re-execution.

use std::path::PathBuf;

use cairn_client::compute::{JobRequest, result, status, submit};
use cairn_primitives::B256;

use crate::global::Global;
use crate::output::{Bars, show};
use crate::wallet::unlock;

/// `cairn compute ...`
#[derive(Debug, clap::Subcommand)]
pub enum ComputeCommand {
    /// Post a job: upload MODULE and the input to the node, escrow max fuel × price, and let
    /// the chain assign a provider (and later a verifier).
    Submit {
        /// The WASM module (it imports `cairn` host functions and exports `memory` and `run`).
        module: PathBuf,
        /// The input file.
        #[arg(long)]
        input: PathBuf,
        /// Key that pays.
        #[arg(long)]
        from: String,
        /// Fuel limit.
        #[arg(long, default_value_t = 1_000_000_000)]
        max_fuel: u64,
        /// Memory limit in MiB: only providers that offer at least this much are drawn, and
        /// every party runs the job under it.
        #[arg(long, default_value_t = 64)]
        memory_mib: u32,
        /// The most to pay per unit of fuel, in wei [default: any price].
        #[arg(long)]
        max_price: Option<u128>,
        /// Wait until the job is settled (or expired) and print its status.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// A job's state, parties, results and payment.
    Status {
        /// The job id (0x hex).
        job: B256,
    },
    /// Fetch a settled job's output, checked against the agreed root, into a file.
    Result {
        /// The job id (0x hex).
        job: B256,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
        /// How long to wait for the output, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

pub async fn run(command: ComputeCommand, global: &Global) -> anyhow::Result<()> {
    match command {
        ComputeCommand::Submit {
            module,
            input,
            from,
            max_fuel,
            memory_mib,
            max_price,
            wait,
            timeout,
        } => {
            anyhow::ensure!(max_fuel >= 1, "--max-fuel must be at least 1");
            anyhow::ensure!(memory_mib >= 1, "--memory-mib must be at least 1");
            let key = unlock(global, &from)?;
            let request = JobRequest {
                module,
                input,
                max_fuel,
                memory_mib,
                max_price,
                wait,
                timeout_s: timeout,
            };
            let report = submit(&global.client()?, &key, &request, &mut Bars::default()).await?;
            show(global.json, &report)
        }
        ComputeCommand::Status { job } => show(global.json, &status(&global.client()?, job).await?),
        ComputeCommand::Result {
            job,
            output,
            timeout,
        } => {
            let client = global.client()?;
            let fetched = result(&client, job, &output, timeout, &mut Bars::default()).await?;
            show(global.json, &fetched)
        }
    }
}
