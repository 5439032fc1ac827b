//! `cairn bench compute`: the runner's speed and what checking a job costs.
//!
//! - **Fuel per second**: the example `spin` job (a loop that never stops) run to its fuel
//!   limit; this is the figure a compute provider advertises.
//! - **Small jobs**: the example word count on a 4 KiB input, run again and again on one core:
//!   jobs per second, each time compiling the module, instantiating it and running it.
//! - **Verification overhead**: a verifier re-executes the whole job (its cost equals the
//!   provider's) and sends two transactions (commit, reveal). The gas of posting a job, of the
//!   provider's commitment (which draws the verifier), of a reveal (the second one agrees) and
//!   of the settlement after the challenge window is measured against the real
//!   `ComputeMarket`.
//! - **Inference**: the example digits classifier (`examples/jobs/digits.wasm`, a quantized
//!   neural network) on its 450 held-out images: fuel per image, images per second on the
//!   runner, and, given the same job built natively (`scripts/build-jobs --native DIR`), images
//!   per second natively on the same batch: the interpreter's overhead. The price of a
//!   1,000-image job follows from the fuel at the testnet's fuel price.

use std::path::Path;
use std::time::Instant;

use alloy_sol_types::SolCall;
use cairn_reward_contracts::bindings::{ComputeMarket, ProviderRegistry};
use cairn_reward_contracts::{COMPUTE_MARKET, job_commitment};
use serde::Serialize;

use super::{bench_key, signed};
use crate::error::{BenchError, Result};
use cairn_chain::chain::Chain;
use cairn_evm::execution::Sequential;
use cairn_primitives::{Address, B256, Transaction, U256};
use cairn_wasm::{Limits, Outcome, run as run_job};

/// The example jobs, as built from `examples/jobs/*.wat`.
const WORDCOUNT: &[u8] = include_bytes!("../../../examples/jobs/wordcount.wasm");
const SPIN: &[u8] = include_bytes!("../../../examples/jobs/spin.wasm");
/// The digits classifier, as built from `examples/jobs/digits/digits.c`, and its held-out batch.
const DIGITS: &[u8] = include_bytes!("../../../examples/jobs/digits.wasm");
const DIGITS_BATCH: &[u8] = include_bytes!("../../../examples/jobs/digits/heldout.bin");
/// Bytes of one image in the digits job's input.
const DIGITS_IMAGE_BYTES: usize = 64;

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
    /// Size of the digits module, bytes.
    pub digits_module_bytes: usize,
    /// Images in the digits batch.
    pub digits_images: usize,
    /// Fuel per image (the batch's fuel over its images).
    pub digits_fuel_per_image: f64,
    /// Images per second on the runner, one core (batches run back to back).
    pub digits_images_per_sec: f64,
    /// Images per second of the native build on the same batch, when it was given.
    pub digits_native_images_per_sec: Option<f64>,
    /// Native speed over the runner's.
    pub digits_interpreter_overhead: Option<f64>,
    /// Wei a 1,000-image job costs at the testnet's fuel price.
    pub digits_price_of_1000_images_wei: u128,
    /// Gas of `postJob` (drawing the provider among three).
    pub post_job_gas: u64,
    /// Gas of the provider's `commit` (drawing the verifier).
    pub commit_gas: u64,
    /// Gas of the second `reveal`, which finds the results agree.
    pub reveal_gas: u64,
    /// Gas of the `expire` that pays the agreed job after its challenge window.
    pub settle_gas: u64,
}

/// Runs the compute benchmark: `spin_fuel` fuel for the speed, `small_jobs` word counts, the
/// digits job on its held-out batch (and its native build at `native_digits`, if given).
pub fn run(
    spin_fuel: u64,
    small_jobs: usize,
    native_digits: Option<&Path>,
    workdir: &Path,
) -> Result<ComputeReport> {
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

    let digits = inference(native_digits)?;
    let gas = market_gas(workdir)?;
    Ok(ComputeReport {
        digits_module_bytes: DIGITS.len(),
        digits_images: digits.images,
        digits_fuel_per_image: digits.fuel_per_image,
        digits_images_per_sec: digits.images_per_sec,
        digits_native_images_per_sec: digits.native_images_per_sec,
        digits_interpreter_overhead: digits
            .native_images_per_sec
            .map(|native| native / digits.images_per_sec),
        digits_price_of_1000_images_wei: (digits.fuel_per_image * 1000.0).ceil() as u128
            * u128::from(cairn_node::testnet::TESTNET_FUEL_PRICE),
        spin_fuel: spin.fuel_used,
        spin_ms: spin_time.as_secs_f64() * 1000.0,
        fuel_per_sec: spin.fuel_used as f64 / spin_time.as_secs_f64(),
        small_jobs,
        small_job_fuel: fuel,
        small_jobs_per_sec: small_jobs as f64 / small_time.as_secs_f64(),
        post_job_gas: gas.post_job,
        commit_gas: gas.commit,
        reveal_gas: gas.reveal,
        settle_gas: gas.settle,
    })
}

/// The digits job's figures.
struct Inference {
    images: usize,
    fuel_per_image: f64,
    images_per_sec: f64,
    native_images_per_sec: Option<f64>,
}

/// Batches of the digits job run for at least this long on each side.
const INFERENCE_MIN_SECONDS: f64 = 2.0;

fn inference(native: Option<&Path>) -> Result<Inference> {
    let images = DIGITS_BATCH.len() / DIGITS_IMAGE_BYTES;
    let first = run_job(DIGITS, DIGITS_BATCH, Limits::default());
    if first.outcome != Outcome::Completed
        || first.output.split(|b| *b == b'\n').count() != images + 1
    {
        return Err(BenchError::Check(format!(
            "the digits job ended {:?} with {} bytes of output",
            first.outcome,
            first.output.len()
        )));
    }
    let (mut batches, started) = (0u32, Instant::now());
    while batches == 0 || started.elapsed().as_secs_f64() < INFERENCE_MIN_SECONDS {
        if run_job(DIGITS, DIGITS_BATCH, Limits::default()) != first {
            return Err(BenchError::Check(
                "the digits job gave another result on a second run".into(),
            ));
        }
        batches += 1;
    }
    let images_per_sec = f64::from(batches) * images as f64 / started.elapsed().as_secs_f64();
    let native_images_per_sec = native
        .map(|program| native_inference(program, images, images_per_sec, &first.output))
        .transpose()?;
    Ok(Inference {
        images,
        fuel_per_image: first.fuel_used as f64 / images as f64,
        images_per_sec,
        native_images_per_sec,
    })
}

/// Runs the native build over the batch as many times as the runner's speed suggests fills
/// [`INFERENCE_MIN_SECONDS`] natively at 100× the speed; it times itself ("K runs in N ns" on
/// standard error) and must print what the runner wrote.
fn native_inference(
    program: &Path,
    images: usize,
    runner_images_per_sec: f64,
    expected: &[u8],
) -> Result<f64> {
    use std::io::Write as _;
    let repeat = ((100.0 * runner_images_per_sec * INFERENCE_MIN_SECONDS) / images as f64)
        .ceil()
        .max(1.0) as u64;
    let failed = |detail: String| {
        BenchError::Check(format!(
            "the native digits build {}: {detail}",
            program.display()
        ))
    };
    let mut child = std::process::Command::new(program)
        .args(["--repeat", &repeat.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            failed(format!(
                "cannot start: {e} (build it with scripts/build-jobs --native DIR)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(DIGITS_BATCH)
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() || out.stdout != expected {
        return Err(failed(format!(
            "exited {} with another output than the runner's",
            out.status
        )));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let nanos: f64 = stderr
        .split_whitespace()
        .rev()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| failed(format!("no timing in {stderr:?}")))?;
    Ok(repeat as f64 * images as f64 / (nanos / 1e9))
}

/// Gas of the job transactions.
struct MarketGas {
    post_job: u64,
    commit: u64,
    reveal: u64,
    settle: u64,
}

/// Three compute providers register and wait two epochs (draws weigh seasoned bond); a client
/// posts a job; its provider and the drawn verifier commit and reveal the same result; after
/// the challenge window the job is paid: the gas of those transactions.
fn market_gas(dir: &Path) -> Result<MarketGas> {
    let providers: Vec<_> = (0..3)
        .map(|i| bench_key("cairn bench compute provider", i))
        .collect();
    let client = bench_key("cairn bench compute client", 0);
    let genesis = super::market_genesis(providers.iter().chain([&client]));
    let epoch_length = genesis.epoch_length;
    let challenge_window = genesis
        .contracts
        .as_ref()
        .map_or(0, |c| c.challenge_window_blocks);
    let chain = Chain::open(dir, genesis, Box::new(Sequential))?;
    let produce = |txs: &[Transaction]| super::produce_succeeding(&chain, txs);
    let advert = ProviderRegistry::advertiseCall {
        storageCapacity: 0,
        storagePricePerMiBEpoch: 0,
        cores: 2,
        memoryMiB: 64,
        fuelPerSecond: 1_000_000,
        computePricePerFuel: 1,
        peerId: Default::default(),
        addresses: String::new(),
    };
    let setup = super::register_providers(&providers, &advert);
    produce(&setup)?;
    // Draws weigh bonds at least a whole epoch old.
    super::produce_until(&chain, 2 * epoch_length)?;
    let post = ComputeMarket::postJobCall {
        moduleRoot: blake3::hash(WORDCOUNT).as_bytes().into(),
        inputRoot: [7; 32].into(),
        maxFuel: 1_000_000,
        memoryMiB: 64,
        pricePerFuel: 1,
    };
    let receipts = produce(&[signed(
        &client,
        0,
        COMPUTE_MARKET,
        U256::from(1_000_000u64),
        post.abi_encode(),
        8_000_000,
    )])?;
    let posted = receipts[0]
        .event::<ComputeMarket::JobPosted>()
        .ok_or_else(|| BenchError::Check("postJob emitted no JobPosted".into()))?;
    let (output_root, fuel_used, outcome) =
        (B256::from(*blake3::hash(b"1\n").as_bytes()), 50_000u64, 0u8);
    let salt = B256::repeat_byte(0x5a);
    // Each provider's transactions after staking and registering (nonces 0 and 1).
    let mut nonces = std::collections::BTreeMap::new();
    let mut send = |by: Address, call: Vec<u8>| {
        let key = providers
            .iter()
            .find(|k| k.address() == by)
            .ok_or_else(|| BenchError::Check(format!("{by} is no bench provider")))?;
        let nonce = nonces.entry(by).or_insert(2u64);
        let tx = signed(key, *nonce, COMPUTE_MARKET, U256::ZERO, call, 8_000_000);
        *nonce += 1;
        produce(&[tx])
    };
    let commit = |by: Address| {
        let commitment = job_commitment(posted.id, by, output_root, fuel_used, outcome, salt);
        ComputeMarket::commitCall {
            id: posted.id,
            commitment,
        }
        .abi_encode()
    };
    let reveal = ComputeMarket::revealCall {
        id: posted.id,
        outputRoot: output_root,
        fuelUsed: fuel_used,
        outcome,
        salt,
    }
    .abi_encode();
    let committed = send(posted.provider, commit(posted.provider))?;
    let verifier = committed[0]
        .event::<ComputeMarket::VerifierDrawn>()
        .ok_or_else(|| BenchError::Check("the commitment drew no verifier".into()))?
        .verifier;
    send(verifier, commit(verifier))?;
    send(posted.provider, reveal.clone())?;
    let agreed = send(verifier, reveal)?;
    if agreed[0].event::<ComputeMarket::JobAgreed>().is_none() {
        return Err(BenchError::Check("the reveals did not agree".into()));
    }
    let head = chain.head_header().height;
    super::produce_until(&chain, head + challenge_window + 1)?;
    let settled = send(
        verifier,
        ComputeMarket::expireCall { id: posted.id }.abi_encode(),
    )?;
    if settled[0].event::<ComputeMarket::JobSettled>().is_none() {
        return Err(BenchError::Check("the job was not paid".into()));
    }
    Ok(MarketGas {
        post_job: receipts[0].gas_used,
        commit: committed[0].gas_used,
        reveal: agreed[0].gas_used,
        settle: settled[0].gas_used,
    })
}
