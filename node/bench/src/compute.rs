//! `cairn bench compute`: the runner's speed and what checking a job costs.
//!
//! - **Fuel per second**: the example `spin` job (a loop that never stops) run to its fuel
//!   limit; this is the figure a compute provider advertises.
//! - **Small jobs**: the example word count on a 4 KiB input, run again and again on one core:
//!   jobs per second, each time compiling the module, instantiating it and running it.
//! - **Verification overhead**: a verifier re-executes the whole job (its cost equals the
//!   provider's) and sends one transaction. The gas of posting a job, of the provider's
//!   result, and of the verifier's attestation (which settles and pays) is measured against the
//!   real `ComputeMarket`.

use std::path::Path;
use std::time::Instant;

use alloy_sol_types::SolCall;
use cairn_reward_contracts::COMPUTE_MARKET;
use cairn_reward_contracts::bindings::{ComputeMarket, ProviderRegistry};
use serde::Serialize;

use super::{bench_key, signed};
use crate::error::{BenchError, Result};
use cairn_chain::chain::Chain;
use cairn_evm::execution::Sequential;
use cairn_primitives::{Transaction, U256};
use cairn_wasm::{Limits, Outcome, run as run_job};

/// The example jobs, as built from `examples/jobs/*.wat`.
const WORDCOUNT: &[u8] = include_bytes!("../../../examples/jobs/wordcount.wasm");
const SPIN: &[u8] = include_bytes!("../../../examples/jobs/spin.wasm");

/// The figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeReport {
    /// Fuel the spin job burnt.
    pub spin_fuel: u64,
    /// Its wall time, ms.
    pub spin_ms: f64,
    /// Fuel per second of the runner.
    pub fuel_per_sec: f64,
    /// Small jobs run.
    pub small_jobs: usize,
    /// Fuel each used.
    pub small_job_fuel: u64,
    /// Small jobs per second on one core.
    pub small_jobs_per_sec: f64,
    /// Gas of `postJob` (drawing the provider among three).
    pub post_job_gas: u64,
    /// Gas of the provider's `submitResult` (drawing the verifier).
    pub submit_result_gas: u64,
    /// Gas of the verifier's `attest`, which settles and pays.
    pub attest_gas: u64,
}

/// Runs the compute benchmark: `spin_fuel` fuel for the speed, `small_jobs` word counts.
pub fn run(spin_fuel: u64, small_jobs: usize, workdir: &Path) -> Result<ComputeReport> {
    let limits = Limits {
        max_fuel: spin_fuel,
        ..Limits::default()
    };
    let started = Instant::now();
    let spin = run_job(SPIN, b"", limits);
    let spin_time = started.elapsed();
    if spin.outcome != Outcome::OutOfFuel {
        return Err(BenchError::Check(format!("spin ended {:?}", spin.outcome)));
    }

    let input: Vec<u8> = b"the quick brown fox jumps over the lazy dog\n"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    let small_jobs = small_jobs.max(1);
    let mut fuel = 0;
    let started = Instant::now();
    for _ in 0..small_jobs {
        let result = run_job(WORDCOUNT, &input, Limits::default());
        if result.outcome != Outcome::Completed {
            return Err(BenchError::Check(format!(
                "word count ended {:?}",
                result.outcome
            )));
        }
        fuel = result.fuel_used;
    }
    let small_time = started.elapsed();

    let (post_job_gas, submit_result_gas, attest_gas) = market_gas(workdir)?;
    Ok(ComputeReport {
        spin_fuel: spin.fuel_used,
        spin_ms: spin_time.as_secs_f64() * 1000.0,
        fuel_per_sec: spin.fuel_used as f64 / spin_time.as_secs_f64(),
        small_jobs,
        small_job_fuel: fuel,
        small_jobs_per_sec: small_jobs as f64 / small_time.as_secs_f64(),
        post_job_gas,
        submit_result_gas,
        attest_gas,
    })
}

/// Three compute providers register; a client posts a job; its provider posts the result and
/// the verifier attests: the gas of the three job transactions.
fn market_gas(dir: &Path) -> Result<(u64, u64, u64)> {
    let providers: Vec<_> = (0..3)
        .map(|i| bench_key("cairn bench compute provider", i))
        .collect();
    let client = bench_key("cairn bench compute client", 0);
    let genesis = super::market_genesis(providers.iter().chain([&client]));
    let chain = Chain::open(dir, genesis, Box::new(Sequential))?;
    let produce = |txs: &[Transaction]| super::produce_succeeding(&chain, txs);
    let advert = ProviderRegistry::advertiseCall {
        storageCapacity: 0,
        storagePricePerMiBEpoch: 0,
        cores: 2,
        memoryMiB: 64,
        fuelPerSecond: 1,
        computePricePerFuel: 1,
        peerId: Default::default(),
        addresses: String::new(),
    };
    let setup = super::register_providers(&providers, &advert);
    produce(&setup)?;
    let post = ComputeMarket::postJobCall {
        moduleRoot: blake3::hash(WORDCOUNT).as_bytes().into(),
        inputRoot: [7; 32].into(),
        maxFuel: 1_000_000,
        pricePerFuel: 1,
    };
    let receipts = produce(&[signed(
        &client,
        0,
        COMPUTE_MARKET,
        U256::from(1_000_000u64),
        post.abi_encode(),
        2_000_000,
    )])?;
    let posted = receipts[0]
        .event::<ComputeMarket::JobPosted>()
        .ok_or_else(|| BenchError::Check("postJob emitted no JobPosted".into()))?;
    // The provider's and the verifier's answer: each one's third transaction (after staking
    // and registering).
    let answer = |by: cairn_primitives::Address, input: Vec<u8>| {
        let key = providers
            .iter()
            .find(|k| k.address() == by)
            .ok_or_else(|| BenchError::Check(format!("{by} is no bench provider")))?;
        produce(&[signed(key, 2, COMPUTE_MARKET, U256::ZERO, input, 2_000_000)])
    };
    let (output_root, fuel_used, outcome) =
        (blake3::hash(b"1\n").as_bytes().into(), 50_000u64, 0u8);
    let submit = ComputeMarket::submitResultCall {
        id: posted.id,
        outputRoot: output_root,
        fuelUsed: fuel_used,
        outcome,
    };
    let resulted = answer(posted.provider, submit.abi_encode())?;
    let verifier = resulted[0]
        .event::<ComputeMarket::ResultSubmitted>()
        .ok_or_else(|| BenchError::Check("submitResult emitted no ResultSubmitted".into()))?
        .verifier;
    let attest = ComputeMarket::attestCall {
        id: posted.id,
        outputRoot: output_root,
        fuelUsed: fuel_used,
        outcome,
    };
    let attested = answer(verifier, attest.abi_encode())?;
    if attested[0].event::<ComputeMarket::JobSettled>().is_none() {
        return Err(BenchError::Check(
            "the attestation did not settle the job".into(),
        ));
    }
    Ok((
        receipts[0].gas_used,
        resulted[0].gas_used,
        attested[0].gas_used,
    ))
}
