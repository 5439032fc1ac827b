//! WASM jobs run by compute providers and checked by re-execution: posting a job, its status,
//! and fetching a settled job's output.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, U256};
use cairn_providers::{JobState, slots};
use cairn_reward_contracts::bindings::ComputeMarket;
use cairn_reward_contracts::{COMPUTE_MARKET, roles};
use cairn_rpc::{CairnApiClient as _, ProviderInfo};
use cairn_wasm::Outcome;
use serde::Serialize;

use crate::error::ClientError;
use crate::rpc::Client;
use crate::storage::{Progress, get, upload};
use crate::tx::{Call, submit_for_event};

/// A result a party reported for a job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultReport {
    /// The output's blake3 root.
    pub output_root: B256,
    /// Fuel the job used.
    pub fuel_used: u64,
    /// How the job ended.
    pub outcome: &'static str,
}

/// A job's state, parties, results and payment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    /// The job.
    pub id: B256,
    /// Its state.
    pub state: &'static str,
    /// Who posted it.
    pub client: Address,
    /// The provider drawn to run it.
    pub provider: Address,
    /// The provider drawn to check it (zero until the provider committed).
    pub verifier: Address,
    /// Whoever challenged an agreed result, if anyone.
    pub challenger: Option<Address>,
    /// The referees drawn to settle a dispute.
    pub referees: Vec<Address>,
    /// The module's root.
    pub module_root: B256,
    /// The input's root.
    pub input_root: B256,
    /// Its fuel limit.
    pub max_fuel: u64,
    /// Its memory limit, MiB.
    pub memory_mib: u32,
    /// Its price, wei per fuel.
    pub price_per_fuel: String,
    /// The results revealed so far, by party.
    pub revealed: Vec<(Address, ResultReport)>,
    /// The result that settled the job, once settled by agreement or by a panel's majority.
    pub decided: Option<ResultReport>,
    /// Whether the provider was paid for it.
    pub provider_paid: bool,
    /// Escrow left, CRN.
    pub escrow_left: String,
}

fn result_report(result: &ComputeMarket::Result) -> ResultReport {
    ResultReport {
        output_root: result.outputRoot,
        fuel_used: result.fuelUsed,
        outcome: Outcome::from_code(result.outcome).map_or("unknown", Outcome::name),
    }
}

/// The decided result, if the job has one: an unresolved job's is all zero, which no real
/// result is (running anything costs fuel, and an output root is a blake3 hash).
fn decided(job: &ComputeMarket::Job) -> Option<ResultReport> {
    let d = &job.decided;
    let set = d.outputRoot != B256::ZERO || d.fuelUsed != 0 || d.outcome != 0;
    set.then(|| result_report(d))
}

/// The report of job `id` and the job as the contract holds it.
async fn job(client: &Client, id: B256) -> Result<(JobReport, ComputeMarket::Job), ClientError> {
    let job = client
        .decoded(COMPUTE_MARKET, ComputeMarket::jobOfCall { id })
        .await?;
    if job.state == 0 {
        return Err(ClientError::NoJob(id));
    }
    let challenger = job.parties[slots::CHALLENGER].who;
    let report = JobReport {
        id,
        state: JobState::name(job.state),
        client: job.client,
        provider: job.parties[slots::PROVIDER].who,
        verifier: job.parties[slots::VERIFIER].who,
        challenger: (challenger != Address::ZERO).then_some(challenger),
        referees: job.parties[slots::FIRST_REFEREE..]
            .iter()
            .map(|p| p.who)
            .filter(|who| *who != Address::ZERO)
            .collect(),
        module_root: job.moduleRoot,
        input_root: job.inputRoot,
        max_fuel: job.maxFuel,
        memory_mib: job.memoryMiB,
        price_per_fuel: job.pricePerFuel.to_string(),
        revealed: job
            .parties
            .iter()
            .filter(|p| p.revealed)
            .map(|p| (p.who, result_report(&p.result)))
            .collect(),
        decided: decided(&job),
        provider_paid: job.providerPaid,
        escrow_left: format_crn(U256::from(job.escrow)),
    };
    Ok((report, job))
}

/// The state, parties, results and payment of job `id`.
pub async fn status(client: &Client, id: B256) -> Result<JobReport, ClientError> {
    Ok(job(client, id).await?.0)
}

impl fmt::Display for JobReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {}  {}\n  client    {}\n  provider  {}\n  verifier  {}\n  max fuel  {} at {} wei/fuel, {} MiB\n  escrow    {} CRN left",
            self.id,
            self.state,
            self.client,
            self.provider,
            self.verifier,
            self.max_fuel,
            self.price_per_fuel,
            self.memory_mib,
            self.escrow_left
        )?;
        if let Some(challenger) = self.challenger {
            write!(f, "\n  challenger {challenger}")?;
        }
        for referee in &self.referees {
            write!(f, "\n  referee   {referee}")?;
        }
        for (party, r) in &self.revealed {
            write!(
                f,
                "\n  revealed  {} ({} fuel, {}) by {party}",
                r.output_root, r.fuel_used, r.outcome
            )?;
        }
        if let Some(r) = &self.decided {
            let paid = if self.provider_paid {
                "provider paid"
            } else {
                "provider not paid"
            };
            write!(
                f,
                "\n  decided   {} ({} fuel, {}; {paid})",
                r.output_root, r.fuel_used, r.outcome
            )?;
        }
        Ok(())
    }
}

/// What `cairn compute submit` asks for.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The WASM module.
    pub module: PathBuf,
    /// The input file.
    pub input: PathBuf,
    /// Fuel limit.
    pub max_fuel: u64,
    /// Memory limit, MiB: only providers offering at least this much are drawn.
    pub memory_mib: u32,
    /// The most to pay per unit of fuel, wei; `None`: any price.
    pub max_price: Option<u128>,
    /// Wait until the job is settled or expired.
    pub wait: bool,
    /// How long to wait, in seconds.
    pub timeout_s: u64,
}

/// The price a job offers: what the dearest compute provider asks (any of them may be drawn),
/// if it is within `max_price`.
fn job_price(providers: &[ProviderInfo], max_price: Option<u128>) -> Result<u128, ClientError> {
    let price = providers
        .iter()
        .filter(|p| p.roles & roles::COMPUTE != 0 && p.cores > 0)
        .map(|p| p.compute_price)
        .max()
        .ok_or(ClientError::NoComputeProvider)?;
    if let Some(max) = max_price
        && price > U256::from(max)
    {
        return Err(ClientError::TooExpensive { price, max });
    }
    Ok(price.saturating_to())
}

/// Posts a job: uploads the module and the input to the node, escrows max fuel × price, and
/// lets the chain assign a provider; with `request.wait`, waits until it is settled or expired.
pub async fn submit(
    client: &Client,
    key: &AccountKey,
    request: &JobRequest,
    progress: &mut dyn Progress,
) -> Result<JobReport, ClientError> {
    let providers = client
        .rpc()
        .providers()
        .await
        .map_err(|e| client.error(e))?;
    let price = job_price(&providers, request.max_price)?;
    let (module_root, _) = upload(client, &request.module, progress).await?;
    let (input_root, _) = upload(client, &request.input, progress).await?;
    let call = ComputeMarket::postJobCall {
        moduleRoot: module_root,
        inputRoot: input_root,
        maxFuel: request.max_fuel,
        memoryMiB: request.memory_mib,
        pricePerFuel: price,
    };
    let escrow = U256::from(price) * U256::from(request.max_fuel);
    // Drawing the provider walks the compute providers as far as the block's randomness says,
    // and more may join before the job is included: the estimate at the head is not exact.
    // Unused gas is not charged.
    let call = Call::contract(COMPUTE_MARKET, escrow, call);
    let posted: ComputeMarket::JobPosted = submit_for_event(client, key, call).await?;
    let id = posted.id;
    let deadline = Instant::now() + Duration::from_secs(request.timeout_s);
    loop {
        let (report, job) = job(client, id).await?;
        if !request.wait || JobState::is_over(job.state) {
            return Ok(report);
        }
        if Instant::now() > deadline {
            return Err(ClientError::JobTimeout {
                job: id,
                timeout_s: request.timeout_s,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A settled job's output, written to a file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutput {
    /// The job.
    pub job: B256,
    /// The agreed output's root.
    pub output_root: B256,
    /// Its size, bytes.
    pub size: u64,
    /// The file written.
    pub output: PathBuf,
}

impl fmt::Display for JobOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote the {}-byte output of job {} to {}",
            self.size,
            self.job,
            self.output.display()
        )
    }
}

/// Fetches the agreed output of settled job `id`, checked against its root, into `output`.
pub async fn result(
    client: &Client,
    id: B256,
    output: &Path,
    timeout_s: u64,
    progress: &mut dyn Progress,
) -> Result<JobOutput, ClientError> {
    let (report, job) = job(client, id).await?;
    if job.state != JobState::Settled as u8 {
        return Err(ClientError::NotSettled {
            job: id,
            state: report.state,
        });
    }
    let agreed = report
        .decided
        .clone()
        .ok_or(ClientError::NoAgreedResult(id))?;
    if agreed.outcome != Outcome::Completed.name() {
        return Err(ClientError::NoOutput {
            job: id,
            outcome: agreed.outcome,
        });
    }
    let fetched = get(client, agreed.output_root, output, timeout_s, progress).await?;
    Ok(JobOutput {
        job: id,
        output_root: agreed.output_root,
        size: fetched.size,
        output: fetched.output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compute_provider(price: u64, cores: u32) -> ProviderInfo {
        ProviderInfo {
            provider: Address::ZERO,
            peer_id: String::new(),
            addresses: Vec::new(),
            storage_capacity: 0,
            storage_free: 0,
            storage_price: U256::ZERO,
            cores,
            memory_mib: 0,
            fuel_per_second: 0,
            compute_price: U256::from(price),
            bonded: U256::ZERO,
            roles: roles::COMPUTE,
        }
    }

    #[test]
    fn a_job_offers_the_dearest_price_within_the_limit() {
        let providers = [
            compute_provider(2, 1),
            compute_provider(7, 4),
            compute_provider(99, 0),
        ];
        assert_eq!(job_price(&providers, None).unwrap(), 7);
        assert_eq!(job_price(&providers, Some(7)).unwrap(), 7);
        assert!(matches!(
            job_price(&providers, Some(6)),
            Err(ClientError::TooExpensive { max: 6, .. })
        ));
        assert!(matches!(
            job_price(&[], None),
            Err(ClientError::NoComputeProvider)
        ));
    }
}
