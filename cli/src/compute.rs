//! `cairn compute ...`: WASM jobs run by compute providers, checked by re-execution.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_primitives::units::format_crn;
use cairn_primitives::{Address, B256, U256};
use cairn_providers::JobState;
use cairn_reward_contracts::bindings::ComputeMarket;
use cairn_reward_contracts::{COMPUTE_MARKET, roles};
use cairn_rpc::CairnApiClient;
use cairn_wasm::Outcome;
use serde::Serialize;

use crate::Global;
use crate::output::rpc_error;
use crate::output::{client, print};
use crate::storage::{get, upload};
use crate::tx::{Call, decoded, submit_for_event};
use crate::wallet::{keystore, unlock};

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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultReport {
    output_root: B256,
    fuel_used: u64,
    outcome: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JobReport {
    id: B256,
    state: &'static str,
    client: Address,
    provider: Address,
    verifier: Address,
    referee: Address,
    module_root: B256,
    input_root: B256,
    max_fuel: u64,
    price_per_fuel: String,
    claimed: Option<ResultReport>,
    attested: Option<ResultReport>,
    liar: Option<Address>,
    escrow_left: String,
}

fn result_report(result: &ComputeMarket::Result, present: bool) -> Option<ResultReport> {
    present.then(|| ResultReport {
        output_root: result.outputRoot,
        fuel_used: result.fuelUsed,
        outcome: Outcome::from_code(result.outcome).map_or("unknown", Outcome::name),
    })
}

async fn job_report(global: &Global, id: B256) -> anyhow::Result<(JobReport, ComputeMarket::Job)> {
    let job = decoded(global, COMPUTE_MARKET, ComputeMarket::jobOfCall { id }).await?;
    if job.state == 0 {
        bail!("no job {id} on this chain");
    }
    let report = JobReport {
        id,
        state: JobState::name(job.state),
        client: job.client,
        provider: job.provider,
        verifier: job.verifier,
        referee: job.referee,
        module_root: job.moduleRoot,
        input_root: job.inputRoot,
        max_fuel: job.maxFuel,
        price_per_fuel: job.pricePerFuel.to_string(),
        claimed: result_report(
            &job.claimed,
            job.state >= JobState::Resulted as u8 && job.verifier != Address::ZERO,
        ),
        attested: result_report(&job.attested, job.referee != Address::ZERO),
        liar: (job.liar != Address::ZERO).then_some(job.liar),
        escrow_left: format_crn(U256::from(job.escrow)),
    };
    Ok((report, job))
}

fn describe(report: &JobReport) -> String {
    let mut text = format!(
        "job {}  {}\n  client    {}\n  provider  {}\n  verifier  {}\n  max fuel  {} at {} wei/fuel\n  escrow    {} CRN left",
        report.id,
        report.state,
        report.client,
        report.provider,
        report.verifier,
        report.max_fuel,
        report.price_per_fuel,
        report.escrow_left
    );
    for (name, result) in [("result", &report.claimed), ("disputed", &report.attested)] {
        if let Some(r) = result {
            text.push_str(&format!(
                "\n  {name:<9} {} ({} fuel, {})",
                r.output_root, r.fuel_used, r.outcome
            ));
        }
    }
    if report.referee != Address::ZERO {
        text.push_str(&format!("\n  referee   {}", report.referee));
    }
    if let Some(liar) = report.liar {
        text.push_str(&format!("\n  slashed   {liar} (lied)"));
    }
    text
}

pub async fn run(command: ComputeCommand, global: &Global) -> anyhow::Result<()> {
    match command {
        ComputeCommand::Submit {
            module,
            input,
            from,
            max_fuel,
            max_price,
            wait,
            timeout,
        } => {
            anyhow::ensure!(max_fuel >= 1, "--max-fuel must be at least 1");
            let key = unlock(global, &keystore(global), &from)?;
            let rpc = client(&global.rpc)?;
            let providers = rpc
                .providers()
                .await
                .map_err(|e| rpc_error(&global.rpc, e))?;
            // Any compute provider may be drawn: offer what the dearest of them asks.
            let price = providers
                .iter()
                .filter(|p| p.roles & roles::COMPUTE != 0 && p.cores > 0)
                .map(|p| p.compute_price)
                .max()
                .context("no compute provider has advertised yet; check `cairn provider list`")?;
            if let Some(max) = max_price
                && price > U256::from(max)
            {
                bail!("compute providers ask up to {price} wei per fuel, above --max-price {max}");
            }
            let price: u128 = price.saturating_to();
            let (module_root, _) = upload(global, &module).await?;
            let (input_root, _) = upload(global, &input).await?;
            let call = ComputeMarket::postJobCall {
                moduleRoot: module_root,
                inputRoot: input_root,
                maxFuel: max_fuel,
                pricePerFuel: price,
            };
            let escrow = U256::from(price) * U256::from(max_fuel);
            // Drawing the provider walks the compute providers as far as the block's
            // randomness says, and more may join before the job is included: the estimate at
            // the head is not exact. Unused gas is not charged.
            let posted: ComputeMarket::JobPosted = submit_for_event(
                global,
                &key,
                Call::contract(COMPUTE_MARKET, escrow, call),
                50,
            )
            .await?;
            let id = posted.id;
            let deadline = Instant::now() + Duration::from_secs(timeout);
            let (report, _) = loop {
                let (report, job) = job_report(global, id).await?;
                if !wait || JobState::is_over(job.state) {
                    break (report, job);
                }
                if Instant::now() > deadline {
                    bail!("job {id} not settled within {timeout} s; `cairn compute status {id}`");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            print(global.json, &report, || describe(&report))
        }
        ComputeCommand::Status { job } => {
            let (report, _) = job_report(global, job).await?;
            print(global.json, &report, || describe(&report))
        }
        ComputeCommand::Result {
            job,
            output,
            timeout,
        } => {
            let (report, state) = job_report(global, job).await?;
            if state.state != JobState::Settled as u8 {
                bail!("job {job} is {}, not settled", report.state);
            }
            // After a dispute that the provider lost, the verifier's result is the true one.
            let agreed = match (&report.attested, &report.claimed) {
                (Some(attested), _) if state.liar == state.provider => attested,
                (_, Some(claimed))
                    if state.referee == Address::ZERO || state.liar == state.verifier =>
                {
                    claimed
                }
                _ => bail!(
                    "job {job} was settled without an agreed result (the client was refunded)"
                ),
            };
            if agreed.outcome != Outcome::Completed.name() {
                bail!("job {job} ended {}: it has no output", agreed.outcome);
            }
            let size = get(global, agreed.output_root, &output, timeout).await?;
            print(
                global.json,
                &serde_json::json!({ "job": job, "outputRoot": agreed.output_root, "size": size, "output": output }),
                || {
                    format!(
                        "wrote the {size}-byte output of job {job} to {}",
                        output.display()
                    )
                },
            )
        }
    }
}
