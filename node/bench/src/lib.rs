//! # cairn-bench
//!
//! The benchmarks behind `cairn bench`: each builds its workload, runs it, checks it did what
//! it should, and prints figures as ratios against a baseline measured in the same run
//! (sequential execution, the machine's own ceiling).
//!
//! ## How data flows through it
//! ```text
//!  transfers: signed transfers ─► TxPool ─► produce_block until empty ─► admission, execution,
//!        state root and commit times
//!  execution: a Workload (native, ERC-20, proofs, one shared slot) ─► Sequential vs Parallel
//!        at each thread count, interleaved rounds ─► ratios and the machine's ceiling
//!  precompiles, compute, storage, network: the same shape over their own workloads
//! ```
//!
//! ## Example
//! ```
//! use std::str::FromStr;
//!
//! use cairn_bench::ExecutionWorkload;
//!
//! assert!(ExecutionWorkload::from_str("erc20").is_ok());
//! assert!(ExecutionWorkload::from_str("no such workload").is_err());
//! ```

pub mod compute;
pub mod economics;
pub mod error;
pub mod flood;
pub mod network;
pub mod state_root;
pub mod storage;
pub mod text;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{BenchError, Result};
use cairn_chain::chain::Chain;
use cairn_chain::genesis::{Genesis, GenesisAccount, TOKEN, dev_validator};
use cairn_evm::execution::{Executor, Sequential, TxOutcome};
use cairn_mempool::MempoolConfig;
use cairn_mempool::TxPool;
use cairn_primitives::{
    AccountKey, Address, B256, Canonical, EthereumKey, Transaction, TxBody, U256,
};

/// Where the time of the transfer benchmark went, and the resulting throughput.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferReport {
    /// How the transfers were signed.
    pub signature: TransferSignature,
    /// Transactions submitted (all were committed).
    pub transactions: usize,
    /// Blocks it took.
    pub blocks: u64,
    /// Funded accounts in the genesis state: the senders, and idle ones to give the state its
    /// size.
    pub accounts: usize,
    /// Threads that submitted the transactions at once, as concurrent RPC clients do (one a
    /// core): the node checks signatures outside the mempool's lock.
    pub submitters: usize,
    /// Decoding and checking each raw transaction into the mempool, wall time.
    pub admission_ms: f64,
    /// Decoding and checking the signatures alone (ed25519 verification, or secp256k1
    /// recovery), measured separately on the same bytes on one core: the work admission
    /// spreads over its submitters.
    pub signature_checks_ms: f64,
    /// Running the transactions on revm.
    pub execution_ms: f64,
    /// Updating the Merkle state tree.
    pub state_root_ms: f64,
    /// Writing the blocks to RocksDB.
    pub commit_ms: f64,
    /// The rest of block production: picking transactions from the mempool, assembling and
    /// encoding blocks, pruning the mempool.
    pub block_assembly_ms: f64,
    /// Everything from the first submission to the last commit.
    pub total_ms: f64,
    /// Transactions per second, submission to commit.
    pub tx_per_sec: f64,
    /// The sequential executor alone on the same transactions from the same state, in the same
    /// run: what the pipeline around it could at best reach, in transactions per second.
    pub execution_only_tx_per_sec: f64,
    /// `tx_per_sec` as a share of `execution_only_tx_per_sec`.
    pub pipeline_ratio: f64,
    /// The most memory the process held (its peak resident set), bytes; 0 where the system
    /// does not tell.
    pub peak_memory_bytes: u64,
}

impl TransferReport {
    /// The share of the total spent in a stage, in percent.
    pub fn share(&self, stage_ms: f64) -> f64 {
        100.0 * stage_ms / self.total_ms
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// How the benchmark's transfers are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TransferSignature {
    /// Cairn's own ed25519 transactions, submitted in Cairn's encoding (`cairn_sendRawTransaction`).
    Ed25519,
    /// EIP-1559 transactions signed with secp256k1, submitted as EIP-2718 bytes
    /// (`eth_sendRawTransaction`): admission recovers each sender.
    Ethereum,
}

/// One sender's signed transfer to its own hashed recipient (low addresses are precompiles),
/// as the bytes a client submits.
fn transfer_bytes(
    i: usize,
    chain: &Genesis,
    signature: TransferSignature,
) -> Result<(Address, Vec<u8>)> {
    let secret = blake3::derive_key("cairn bench sender", &i.to_le_bytes());
    let body = TxBody {
        chain_id: chain.chain_id,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: u128::from(chain.base_fee_per_gas),
        max_priority_fee_per_gas: 0,
        to: Some(Address::from_slice(
            &blake3::hash(&i.to_le_bytes()).as_bytes()[..20],
        )),
        value: U256::from(1),
        input: Default::default(),
    };
    match signature {
        TransferSignature::Ed25519 => {
            let key = AccountKey::from_bytes(&secret);
            Ok((key.address(), body.sign(&key).encode()))
        }
        TransferSignature::Ethereum => {
            let key = EthereumKey::from_bytes(&secret)
                .map_err(|e| BenchError::Check(format!("bench key {i}: {e}")))?;
            let tx = body
                .sign_ethereum(&key)
                .map_err(|e| BenchError::Check(format!("bench transaction {i}: {e}")))?;
            let envelope = tx
                .ethereum()
                .ok_or_else(|| BenchError::Check("not an Ethereum transaction".into()))?;
            Ok((key.address(), envelope.encoded().to_vec()))
        }
    }
}

/// Decodes submitted bytes as the RPC method for their kind does.
fn decode_submitted(bytes: &[u8], signature: TransferSignature) -> Result<Transaction> {
    match signature {
        TransferSignature::Ed25519 => Ok(Transaction::decode(bytes)?),
        TransferSignature::Ethereum => Transaction::from_ethereum(bytes)
            .map_err(|e| BenchError::Check(format!("bench transaction: {e}"))),
    }
}

/// Signs `count` transfers from distinct senders to distinct recipients, submits them as raw
/// bytes to a node's mempool (the path `cairn_sendRawTransaction`, or for Ethereum
/// transactions `eth_sendRawTransaction`, takes) and produces blocks until every one is
/// committed. The genesis funds the senders and, so that the state has that size, enough other
/// accounts to make `accounts` in all. The database lives in `workdir`.
pub fn transfers(
    count: usize,
    accounts: usize,
    signature: TransferSignature,
    workdir: &Path,
) -> Result<TransferReport> {
    let mut genesis = Genesis::dev();
    let signed: Vec<(Address, Vec<u8>)> = (0..count)
        .map(|i| transfer_bytes(i, &genesis, signature))
        .collect::<Result<_>>()?;
    genesis.alloc = signed
        .iter()
        .map(|(address, _)| {
            let account = GenesisAccount {
                balance: U256::from(TOKEN),
                ..Default::default()
            };
            (*address, account)
        })
        .collect();
    let idle = accounts.saturating_sub(genesis.alloc.len());
    genesis.alloc.extend((0..idle).map(|i| {
        let hash =
            blake3::hash(&[b"cairn bench idle account".as_slice(), &i.to_be_bytes()].concat());
        let account = GenesisAccount {
            balance: U256::from(TOKEN),
            ..Default::default()
        };
        (Address::from_slice(&hash.as_bytes()[..20]), account)
    }));
    let funded = genesis.alloc.len();
    let raw: Vec<Vec<u8>> = signed.into_iter().map(|(_, bytes)| bytes).collect();
    let timestamp = genesis.timestamp_ms;
    let chain = std::sync::Arc::new(Chain::open(
        &workdir.join("pipeline"),
        genesis.clone(),
        Box::new(Sequential),
    )?);
    let capacity = MempoolConfig {
        capacity: count.max(1),
        per_sender: 16,
        ..MempoolConfig::default()
    };
    let pool = TxPool::new(chain.clone(), capacity, None);
    let validator = dev_validator();

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shares: Vec<&[Vec<u8>]> = raw.chunks(raw.len().div_ceil(cores).max(1)).collect();
    let submitters = shares.len();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let pool = &pool;
                scope.spawn(move || -> Result<()> {
                    for bytes in share {
                        pool.submit(decode_submitted(bytes, signature)?)?;
                    }
                    Ok(())
                })
            })
            .collect();
        // Every thread joined, so that a panic in one is not lost behind another's error.
        let results: Vec<Result<()>> = handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(BenchError::Check("a submitting thread panicked".into()))
                })
            })
            .collect();
        results.into_iter().collect::<Result<()>>()
    })?;
    let admission = started.elapsed();
    let (mut execute, mut state_root, mut commit) = Default::default();
    let mut blocks = 0;
    let mut committed = 0;
    while !pool.is_empty() {
        blocks += 1;
        let produced = pool.produce_block(&validator, timestamp + blocks * 1000)?;
        if let Some((hash, reason)) = produced.excluded.first() {
            return Err(BenchError::Check(format!(
                "bench transaction {hash} dropped: {reason}"
            )));
        }
        committed += produced.receipts.iter().filter(|r| r.succeeded()).count();
        execute += produced.timings.execute;
        state_root += produced.timings.state_root;
        commit += produced.timings.commit;
    }
    let total = started.elapsed();
    if committed != count {
        return Err(BenchError::Check(format!(
            "{committed} of {count} transfers succeeded"
        )));
    }

    // Decoded afresh: an Ethereum transaction's sender is recovered again, not read from
    // the admission's.
    let verify_started = Instant::now();
    for bytes in &raw {
        let tx = decode_submitted(bytes, signature)?;
        if !tx.signature_is_valid() {
            return Err(BenchError::Check("bench signature did not verify".into()));
        }
    }
    let signature_checks = verify_started.elapsed();
    let blocks_run: Vec<Vec<Transaction>> = (1..=blocks)
        .map(|height| {
            let block = chain
                .block(height)?
                .ok_or_else(|| BenchError::Check(format!("block {height} is not in the chain")))?;
            Ok(block.transactions)
        })
        .collect::<Result<_>>()?;
    let execution_only = execution_only(&blocks_run, &genesis, &workdir.join("execution"))?;

    Ok(TransferReport {
        signature,
        transactions: count,
        blocks,
        accounts: funded,
        submitters,
        admission_ms: ms(admission),
        signature_checks_ms: ms(signature_checks),
        execution_ms: ms(execute),
        state_root_ms: ms(state_root),
        commit_ms: ms(commit),
        block_assembly_ms: ms(total.saturating_sub(admission + execute + state_root + commit)),
        total_ms: ms(total),
        tx_per_sec: count as f64 / total.as_secs_f64(),
        execution_only_tx_per_sec: count as f64 / execution_only.as_secs_f64(),
        pipeline_ratio: execution_only.as_secs_f64() / total.as_secs_f64(),
        peak_memory_bytes: peak_memory_bytes(),
    })
}

/// The wall time of the sequential executor alone running `blocks` (the pipeline's, in order)
/// on the genesis state, in a chain of its own in `dir`: the execution the pipeline wraps, and
/// nothing else (no admission, state root or commit). Every transaction must succeed.
fn execution_only(blocks: &[Vec<Transaction>], genesis: &Genesis, dir: &Path) -> Result<Duration> {
    let chain = Chain::open(dir, genesis.clone(), Box::new(Sequential))?;
    let view = chain.state();
    let mut pending = cairn_storage::PendingState::new(&view);
    let mut elapsed = Duration::ZERO;
    for (height, transactions) in (1..).zip(blocks) {
        let block = context(genesis, height, B256::ZERO);
        let started = Instant::now();
        let outcomes = Sequential.execute(&block, transactions, &mut pending)?;
        elapsed += started.elapsed();
        let succeeded = |outcome: &TxOutcome| matches!(outcome, TxOutcome::Included(receipt) if receipt.succeeded());
        if let Some(failed) = outcomes.iter().find(|outcome| !succeeded(outcome)) {
            return Err(BenchError::Check(format!(
                "a transfer failed when executed alone: {failed:?}"
            )));
        }
    }
    Ok(elapsed)
}

/// The process's peak resident set (`VmHWM` in /proc/self/status), bytes; 0 where there is
/// none.
pub fn peak_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod block_stm_tests;
#[cfg(test)]
mod fuzz_seeds;

#[cfg(test)]
mod tests {
    /// Every workload, the storage proofs against the real contracts included, gives the same
    /// result in parallel as sequentially (the benchmark fails otherwise).
    #[test]
    fn execution_workloads_agree_with_sequential() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let all = super::ExecutionWorkload::ALL;
        let reports = super::execution(40, &[2, 4], &all, dir.path())?;
        assert_eq!(reports.len(), all.len());
        for report in &reports {
            assert_eq!(report.runs.len(), 3);
            assert_eq!(report.ceilings.len(), 2);
            assert!(
                report.gas > 0 && report.dependency_bound >= 1.0,
                "{report:?}"
            );
        }
        assert!(
            reports[0].dependency_bound > 30.0,
            "independent transfers are not a chain"
        );
        assert!(
            reports[3].dependency_bound < 1.5,
            "one shared slot is one chain"
        );
        Ok(())
    }

    #[test]
    fn transfer_benchmark_commits_every_transfer() -> Result<(), Box<dyn std::error::Error>> {
        for signature in [
            super::TransferSignature::Ed25519,
            super::TransferSignature::Ethereum,
        ] {
            let dir = tempfile::tempdir()?;
            let report = super::transfers(300, 0, signature, dir.path())?;
            assert_eq!(report.transactions, 300);
            assert!(report.blocks >= 1);
            assert!(report.tx_per_sec > 0.0);
            // The executor alone ran the same blocks (each transfer succeeded again: it fails
            // otherwise). Which of the two is faster is a benchmark's figure, not this test's:
            // 300 transfers in a debug build can go either way.
            assert!(report.execution_only_tx_per_sec > 0.0);
            assert!(report.pipeline_ratio > 0.0 && report.pipeline_ratio.is_finite());
            assert_eq!(report.accounts, 300);
            assert!(
                report.peak_memory_bytes > 0,
                "Linux tells the peak resident set"
            );
        }
        Ok(())
    }
}

/// Measured cost of one precompile call, and the gas that cost is worth at ecrecover's rate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrecompileCost {
    /// What was measured.
    pub name: String,
    /// Input length in bytes.
    pub input_bytes: usize,
    /// Median time per call.
    pub ns_per_call: f64,
    /// Gas the precompile charges for this input.
    pub gas_charged: u64,
    /// Gas at ecrecover's price per nanosecond (3,000 gas for its measured time).
    pub gas_at_ecrecover_rate: f64,
}

/// Median nanoseconds per call of `f` over several batches.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    const CALLS: u32 = 2_000;
    let mut batches: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..CALLS {
                f();
            }
            started.elapsed().as_nanos() as f64 / f64::from(CALLS)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

/// Times ecrecover (Ethereum's reference price: 3,000 gas), Cairn's ed25519 check and chunk
/// proofs of data from 1 KiB to 1 TiB, and prices each at ecrecover's gas per nanosecond.
pub fn precompiles() -> Vec<PrecompileCost> {
    use revm::primitives::Address;

    let set = cairn_evm::precompiles::precompiles();
    let run = |address: Address, input: &[u8]| {
        let output = set
            .precompiles
            .get(&address)
            .and_then(|p| p.execute(input, u64::MAX, 0).ok());
        output.map_or(0, |o| o.gas_used)
    };

    // go-ethereum's ecrecover test vector: a valid signature, so recovery runs to the end.
    let ecrecover_input = hex::decode(concat!(
        "456e9aea5e197a1f1af7a3e85a3212fa4049a3ba34c2289b4c860fc0b0c64ef3",
        "000000000000000000000000000000000000000000000000000000000000001c",
        "9242685bf161793cc25603c231bc2f568eb630ea16aa137d2664ac8038825608",
        "4f8ae3bd7535248d0bd448298cc2e2071e56992d0774dc340c368ae950852ada"
    ))
    .unwrap_or_default();
    let ecrecover = Address::with_last_byte(1);
    let ecrecover_ns = time_per_call(|| {
        run(ecrecover, &ecrecover_input);
    });

    let key = AccountKey::from_bytes(&[9; 32]);
    let message = [7u8; 64];
    let mut ed_input = key.public_key().to_vec();
    ed_input.extend_from_slice(&key.sign_message(&message));
    ed_input.extend_from_slice(&message);

    let mut cases: Vec<(String, Address, Vec<u8>)> = vec![
        ("ecrecover (reference)".into(), ecrecover, ecrecover_input),
        (
            "ed25519, 64-byte message".into(),
            cairn_reward_contracts::ED25519_PRECOMPILE,
            ed_input,
        ),
    ];
    // A wrong proof of the right shape costs what a valid one costs: all the hashing happens
    // before the final comparison with the root.
    for (label, size) in [
        ("1 KiB", 1u64 << 10),
        ("1 MiB", 1 << 20),
        ("1 GiB", 1 << 30),
        ("1 TiB", 1 << 40),
    ] {
        let levels = cairn_storage::chunk_proof::chunk_count(size)
            .next_power_of_two()
            .trailing_zeros() as usize;
        let mut input = [0x11u8; 32].to_vec();
        input.extend_from_slice(&size.to_be_bytes());
        input.extend_from_slice(&0u64.to_be_bytes());
        input.extend_from_slice(&[0x5a; 1024][..size.min(1024) as usize]);
        input.extend(std::iter::repeat_n(0x33u8, 32 * levels));
        cases.push((
            format!("chunk proof, {label} of data ({levels} levels)"),
            cairn_reward_contracts::CHUNK_PROOF_PRECOMPILE,
            input,
        ));
    }
    cases
        .into_iter()
        .map(|(name, address, input)| {
            let ns = if address == ecrecover {
                ecrecover_ns
            } else {
                time_per_call(|| {
                    run(address, &input);
                })
            };
            PrecompileCost {
                name,
                input_bytes: input.len(),
                ns_per_call: ns,
                gas_charged: run(address, &input),
                gas_at_ecrecover_rate: 3_000.0 * ns / ecrecover_ns,
            }
        })
        .collect()
}

/// One executor's run of a workload block.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRun {
    /// Worker threads, or independent shares for a ceiling (`None`: the sequential executor).
    pub threads: Option<usize>,
    /// Median wall time of the block.
    pub ms: f64,
    /// Transactions per second.
    pub tx_per_sec: f64,
    /// Gas per second.
    pub gas_per_sec: f64,
    /// Sequential time over this time.
    pub speedup: f64,
}

/// A workload's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    /// Which workload.
    pub workload: String,
    /// Transactions in the block.
    pub transactions: usize,
    /// Gas used by the block.
    pub gas: u64,
    /// The sequential executor, then Block-STM at each thread count.
    pub runs: Vec<ExecutionRun>,
    /// The machine's ceiling at each thread count above one: the sequential executor on as many
    /// independent shares of the block at once (see `time_independent_shares`).
    pub ceilings: Vec<ExecutionRun>,
    /// W/L from the recorded read and write sets: the most any schedule could gain.
    pub dependency_bound: f64,
    /// Block-STM runs per transaction at 2 threads (1.0: nothing re-executed or waited);
    /// `None` when the block is left to the sequential executor.
    pub runs_per_tx: Option<f64>,
}

/// The workloads of `cairn bench execution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionWorkload {
    /// (a) Native transfers between distinct accounts.
    Transfers,
    /// (b) ERC-20 transfers between distinct accounts.
    Erc20,
    /// (c) Storage proofs from distinct providers against the real contracts.
    Proofs,
    /// (d) Every transaction updates one storage slot.
    OneSlot,
    /// (e) Native transfers of which 30 % go to 4 hot accounts.
    HotAccounts,
}

impl ExecutionWorkload {
    /// Every workload, in the order the benchmark runs them.
    pub const ALL: [Self; 5] = [
        Self::Transfers,
        Self::Erc20,
        Self::Proofs,
        Self::OneSlot,
        Self::HotAccounts,
    ];

    /// The name `--workloads` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Transfers => "transfers",
            Self::Erc20 => "erc20",
            Self::Proofs => "proofs",
            Self::OneSlot => "one-slot",
            Self::HotAccounts => "hot-accounts",
        }
    }

    /// What the block holds.
    pub fn description(self) -> &'static str {
        match self {
            Self::Transfers => "native transfers, distinct accounts",
            Self::Erc20 => "ERC-20 transfers, distinct accounts",
            Self::Proofs => "storage proofs, distinct providers",
            Self::OneSlot => "every transaction updates one slot",
            Self::HotAccounts => "mixed, 30% touching hot accounts",
        }
    }
}

impl std::str::FromStr for ExecutionWorkload {
    type Err = error::UnknownWorkload;

    fn from_str(name: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|workload| workload.name() == name)
            .ok_or_else(|| error::UnknownWorkload {
                name: name.to_string(),
                choices: Self::ALL
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

pub(crate) fn bench_key(purpose: &str, index: usize) -> AccountKey {
    AccountKey::from_bytes(&blake3::derive_key(purpose, &index.to_le_bytes()))
}

fn bench_genesis() -> Genesis {
    let mut genesis = Genesis::dev();
    genesis.alloc.clear();
    genesis.contracts = None;
    genesis.validators[0].stake = U256::ZERO;
    // Blocks of 10,000 contract calls: the benchmark's blocks are not bound by the dev limit.
    genesis.gas_limit = 100_000_000_000;
    genesis
}

fn context(genesis: &Genesis, height: u64, randomness: B256) -> cairn_evm::execution::BlockContext {
    cairn_evm::execution::BlockContext {
        chain_id: genesis.chain_id,
        height,
        timestamp_secs: genesis.timestamp_ms / 1000 + height,
        gas_limit: genesis.gas_limit,
        base_fee_per_gas: genesis.base_fee_per_gas,
        beneficiary: Address::with_last_byte(0xbe),
        randomness,
    }
}

pub(crate) fn signed(
    key: &AccountKey,
    nonce: u64,
    to: Address,
    value: U256,
    input: Vec<u8>,
    gas_limit: u64,
) -> Transaction {
    TxBody {
        chain_id: 31_337,
        nonce,
        gas_limit,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 0,
        to: Some(to),
        value,
        input: input.into(),
    }
    .sign(key)
}

/// A bench genesis with the reward contracts, each key funded with 1,000 CRN.
fn market_genesis<'a>(keys: impl Iterator<Item = &'a AccountKey>) -> Genesis {
    let mut genesis = bench_genesis();
    genesis.contracts = Some(cairn_chain::genesis::ContractsConfig::dev());
    for key in keys {
        genesis.alloc.insert(
            key.address(),
            GenesisAccount {
                balance: U256::from(1_000u64) * U256::from(TOKEN),
                ..Default::default()
            },
        );
    }
    genesis
}

/// Produces blocks of `chain` with `txs` until every one is included (more than a block holds
/// go on into the next ones); every one must succeed. The receipts come in the order of `txs`.
fn produce_succeeding(
    chain: &Chain,
    txs: &[Transaction],
) -> Result<Vec<cairn_primitives::Receipt>> {
    let position: std::collections::HashMap<B256, usize> = txs
        .iter()
        .enumerate()
        .map(|(i, tx)| (tx.hash(), i))
        .collect();
    let mut receipts: Vec<Option<cairn_primitives::Receipt>> = vec![None; txs.len()];
    let mut rest = txs.to_vec();
    loop {
        let time = chain.head_header().timestamp_ms + 1000;
        let produced = chain.produce_block(&dev_validator(), time, &rest)?;
        if let Some(failed) = produced.receipts.iter().find(|r| !r.succeeded()) {
            return Err(BenchError::Check(format!(
                "bench transaction failed: {failed:?}"
            )));
        }
        let included = produced.receipts.len();
        for receipt in produced.receipts {
            if let Some(slot) = position
                .get(&receipt.tx_hash)
                .and_then(|i| receipts.get_mut(*i))
            {
                *slot = Some(receipt);
            }
        }
        match produced.excluded.first() {
            None => break,
            Some((hash, reason)) if included == 0 => {
                return Err(BenchError::Check(format!(
                    "bench transaction {hash} left out of an empty block: {reason:?}"
                )));
            }
            Some(_) => {
                let left: std::collections::HashSet<B256> =
                    produced.excluded.iter().map(|(hash, _)| *hash).collect();
                rest.retain(|tx| left.contains(&tx.hash()));
            }
        }
    }
    receipts
        .into_iter()
        .map(|r| r.ok_or_else(|| BenchError::Check("a bench transaction has no receipt".into())))
        .collect()
}

/// Produces empty blocks until the head is at `height`.
fn produce_until(chain: &Chain, height: u64) -> Result<()> {
    while chain.head_header().height < height {
        produce_succeeding(chain, &[])?;
    }
    Ok(())
}

/// Each key bonds 200 CRN and advertises `advert` (its transactions 0 and 1).
fn register_providers(
    keys: &[AccountKey],
    advert: &cairn_reward_contracts::bindings::ProviderRegistry::advertiseCall,
) -> Vec<Transaction> {
    use alloy_sol_types::SolCall;
    use cairn_reward_contracts::bindings::Staking;
    let stake = U256::from(200u64) * U256::from(TOKEN);
    keys.iter()
        .flat_map(|key| {
            [
                signed(
                    key,
                    0,
                    cairn_reward_contracts::STAKING,
                    stake,
                    Staking::stakeCall {}.abi_encode(),
                    200_000,
                ),
                signed(
                    key,
                    1,
                    cairn_reward_contracts::REGISTRY,
                    U256::ZERO,
                    advert.abi_encode(),
                    1_000_000,
                ),
            ]
        })
        .collect()
}

/// Where the benchmark (and the parallel executor's tests) install `BenchToken`.
pub(crate) const BENCH_TOKEN: Address = Address::new([0xb0; 20]);

/// The storage slot of `holder`'s balance in `BenchToken` (the mapping at slot 0).
pub(crate) fn token_balance_slot(holder: Address) -> U256 {
    let mut key = [0u8; 64];
    key[12..32].copy_from_slice(holder.as_slice());
    U256::from_be_bytes(revm::primitives::keccak256(key).0)
}

/// A block of `count` transactions for a workload, with the chain it runs on.
pub(crate) struct Workload {
    pub(crate) chain: Chain,
    pub(crate) context: cairn_evm::execution::BlockContext,
    pub(crate) transactions: Vec<Transaction>,
}

fn simple_workload(kind: ExecutionWorkload, count: usize, dir: &Path) -> Result<Workload> {
    use alloy_sol_types::SolCall;
    use cairn_reward_contracts::bindings::BenchToken;

    let senders: Vec<AccountKey> = (0..count)
        .map(|i| bench_key("cairn bench execution sender", i))
        .collect();
    let recipient =
        |i: usize| Address::from_slice(&blake3::hash(&(i as u64).to_le_bytes()).as_bytes()[..20]);
    let hot = |i: usize| Address::with_last_byte(0xa0 + (i % 4) as u8);
    let mut genesis = bench_genesis();
    let mut token = GenesisAccount {
        code: Some(cairn_reward_contracts::bindings::BenchToken::DEPLOYED_BYTECODE.clone()),
        ..Default::default()
    };
    for key in &senders {
        genesis.alloc.insert(
            key.address(),
            GenesisAccount {
                balance: U256::from(TOKEN),
                ..Default::default()
            },
        );
        token
            .storage
            .insert(token_balance_slot(key.address()), U256::from(1_000_000u64));
    }
    genesis.alloc.insert(BENCH_TOKEN, token);
    let transactions = senders
        .iter()
        .enumerate()
        .map(|(i, key)| match kind {
            ExecutionWorkload::Transfers => {
                signed(key, 0, recipient(i), U256::from(1), Vec::new(), 21_000)
            }
            ExecutionWorkload::Erc20 => {
                let call = BenchToken::transferCall {
                    to: recipient(i),
                    amount: U256::from(1),
                };
                signed(key, 0, BENCH_TOKEN, U256::ZERO, call.abi_encode(), 100_000)
            }
            ExecutionWorkload::OneSlot => signed(
                key,
                0,
                BENCH_TOKEN,
                U256::ZERO,
                BenchToken::bumpCall {}.abi_encode(),
                100_000,
            ),
            // Proofs have a workload of their own (`proof_workload`).
            ExecutionWorkload::HotAccounts | ExecutionWorkload::Proofs => {
                let to = if i % 10 < 3 { hot(i) } else { recipient(i) };
                signed(key, 0, to, U256::from(1), Vec::new(), 21_000)
            }
        })
        .collect();
    let context = context(&genesis, 1, B256::repeat_byte(7));
    let chain = Chain::open(dir, genesis, Box::new(Sequential))?;
    Ok(Workload {
        chain,
        context,
        transactions,
    })
}

/// What the keys of the proof workload's providers are derived from (with [`bench_key`]).
pub(crate) const PROOF_PROVIDER_KEYS: &str = "cairn bench execution provider";
/// What the key of the proof workload's client is derived from (with [`bench_key`]).
pub(crate) const PROOF_CLIENT_KEYS: &str = "cairn bench execution client";

/// Providers stake, advertise, accept one deal each from a client, and in the deals' first
/// epoch each sends the proof of its challenges: real contracts, real blake3 proofs from the
/// chunk store, the chunk-proof precompile. Each deal stores its own `data_len` bytes; above
/// [`SHARED_DATA_ABOVE`] all deals store the same data (one copy is enough to prove from).
pub(crate) fn proof_workload(count: usize, dir: &Path, data_len: u64) -> Result<Workload> {
    use alloy_sol_types::SolCall;
    use cairn_reward_contracts::STORAGE_MARKET;
    use cairn_reward_contracts::bindings::{ProviderRegistry, StorageMarket};

    let providers: Vec<AccountKey> = (0..count)
        .map(|i| bench_key(PROOF_PROVIDER_KEYS, i))
        .collect();
    let client = bench_key(PROOF_CLIENT_KEYS, 0);
    let mut genesis = market_genesis(providers.iter().chain([&client]));
    genesis.epoch_length = 4;
    if let Some(contracts) = &mut genesis.contracts {
        contracts.proof_window_blocks = genesis.epoch_length;
    }
    let chain = Chain::open(&dir.join("chain"), genesis.clone(), Box::new(Sequential))?;
    let store = cairn_storage::ChunkStore::open(&dir.join("chunks"))?;
    let produce = |txs: &[Transaction]| produce_succeeding(&chain, txs);
    let data = |i: usize| -> Vec<u8> {
        let mut bytes = vec![0u8; data_len as usize];
        blake3::Hasher::new()
            .update(&(i as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut bytes);
        bytes
    };
    let roots: Vec<[u8; 32]> = if data_len > SHARED_DATA_ABOVE {
        vec![store.add(&data(0))?; count]
    } else {
        (0..count)
            .map(|i| store.add(&data(i)))
            .collect::<cairn_storage::Result<_>>()?
    };
    let advert = ProviderRegistry::advertiseCall {
        storageCapacity: data_len.max(1),
        storagePricePerMiBEpoch: 1,
        cores: 0,
        memoryMiB: 0,
        fuelPerSecond: 0,
        computePricePerFuel: 0,
        peerId: Default::default(),
        addresses: String::new(),
    };
    let setup = register_providers(&providers, &advert);
    produce(&setup)?;
    let opens: Vec<Transaction> = providers
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let call = StorageMarket::openDealCall {
                provider: key.address(),
                dataRoot: B256::from(roots[i]),
                size: data_len,
                epochs: 10,
                pricePerEpoch: 1,
            };
            signed(
                &client,
                i as u64,
                STORAGE_MARKET,
                U256::from(10),
                call.abi_encode(),
                1_000_000,
            )
        })
        .collect();
    let deal_ids: Vec<B256> = produce(&opens)?
        .iter()
        .map(|receipt| {
            let opened = receipt.event::<StorageMarket::DealOpened>();
            opened
                .map(|event| event.id)
                .ok_or_else(|| BenchError::Check("openDeal emitted no DealOpened".into()))
        })
        .collect::<Result<_>>()?;
    let accepts: Vec<Transaction> = providers
        .iter()
        .zip(&deal_ids)
        .map(|(key, id)| {
            signed(
                key,
                2,
                STORAGE_MARKET,
                U256::ZERO,
                StorageMarket::acceptDealCall { id: *id }.abi_encode(),
                1_000_000,
            )
        })
        .collect();
    produce(&accepts)?;
    let epoch_length = genesis.epoch_length;
    let start_epoch = chain.head_header().height / epoch_length + 1;
    while chain.head_header().height < start_epoch * epoch_length {
        produce(&[])?;
    }
    let head = chain.head_header();
    let context = context(&genesis, head.height + 1, head.randomness);
    let mut transactions = Vec::with_capacity(count);
    for (i, (key, id)) in providers.iter().zip(&deal_ids).enumerate() {
        let query = StorageMarket::challengesCall {
            id: *id,
            epoch: start_epoch,
        };
        let request = cairn_chain::chain::CallRequest {
            to: Some(STORAGE_MARKET),
            input: Some(query.abi_encode().into()),
            ..Default::default()
        };
        let output = chain.call(&request)?.into_output().unwrap_or_default();
        let indices = StorageMarket::challengesCall::abi_decode_returns(&output)
            .map_err(|e| BenchError::Check(format!("challenges: {e}")))?;
        let mut chunks = Vec::with_capacity(indices.len());
        let mut paths = Vec::with_capacity(indices.len());
        for index in indices {
            let proof = store.prove(&roots[i], index)?;
            chunks.push(cairn_primitives::Bytes::from(proof.chunk));
            paths.push(cairn_primitives::Bytes::from(proof.path.concat()));
        }
        let call = StorageMarket::submitProofCall {
            id: *id,
            chunks,
            paths,
        };
        transactions.push(signed(
            key,
            3,
            STORAGE_MARKET,
            U256::ZERO,
            call.abi_encode(),
            1_000_000,
        ));
    }
    Ok(Workload {
        chain,
        context,
        transactions,
    })
}

/// The most deals the proof workload opens: `StorageMarket.MAX_ACTIVE_DEALS`.
const PROOF_DEALS_AT_MOST: usize = 1024;

/// Deals larger than this share one copy of their data in the proof workload.
const SHARED_DATA_ABOVE: u64 = 64 * 1024;

/// Runs `executor` on the workload block from the chain's head state: outcomes, state root
/// and wall time.
fn time_block(
    workload: &Workload,
    executor: &dyn Executor,
) -> Result<(Vec<TxOutcome>, B256, Duration)> {
    let view = workload.chain.state();
    let mut pending = cairn_storage::PendingState::new(&view);
    let started = Instant::now();
    let outcomes = executor.execute(&workload.context, &workload.transactions, &mut pending)?;
    let elapsed = started.elapsed();
    let root = workload.chain.state_root_of(&pending)?;
    Ok((outcomes, root, elapsed))
}

/// The wall time of the sequential executor running `shares` contiguous shares of the workload
/// block at once, each on its own thread and its own pending state, with no coordination at
/// all: the same work as one sequential run, split as well as it can be. Its results are thrown
/// away (a share does not see the writes of the shares before it). On an idle machine with
/// `shares` real cores this is close to `shares` times faster than one sequential run; where it
/// is not, the machine itself is the limit (an executor whose per-transaction work is lighter
/// than the sequential one's can still beat it a little).
fn time_independent_shares(workload: &Workload, shares: usize) -> Result<Duration> {
    let view = workload.chain.state();
    let share_len = workload.transactions.len().div_ceil(shares).max(1);
    let run_share = |share: &[Transaction]| -> Result<()> {
        let mut pending = cairn_storage::PendingState::new(&view);
        Sequential.execute(&workload.context, share, &mut pending)?;
        Ok(())
    };
    let mut shares = workload.transactions.chunks(share_len);
    let started = Instant::now();
    std::thread::scope(|scope| {
        // Like Block-STM, the calling thread runs one share itself.
        let first = shares.next().unwrap_or_default();
        let others: Vec<_> = shares
            .map(|share| scope.spawn(move || run_share(share)))
            .collect();
        run_share(first)?;
        others.into_iter().try_for_each(|share| {
            share
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })?;
    Ok(started.elapsed())
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// Timed runs of each workload block: the sequential executor, Block-STM at each thread count,
/// and the independent shares, interleaved round by round so that a slow spell of a shared
/// machine slows all of them alike.
const ROUNDS: usize = 7;

/// Runs each of `workloads` (a block of `count` transactions) sequentially and with Block-STM
/// at each thread count, checks that every parallel result equals the sequential one, and
/// reports throughput, speedup, the machine's own ceiling and the dependency bound.
pub fn execution(
    count: usize,
    threads: &[usize],
    workloads: &[ExecutionWorkload],
    workdir: &Path,
) -> Result<Vec<WorkloadReport>> {
    let executors: Vec<cairn_evm::parallel::Parallel> = threads
        .iter()
        .map(|&threads| cairn_evm::parallel::Parallel::new(threads))
        .collect();
    let shares: Vec<usize> = threads.iter().copied().filter(|&t| t > 1).collect();
    let mut reports = Vec::new();
    for &kind in workloads {
        let name = kind.description();
        let dir = workdir.join(format!("workload-{}", kind.name()));
        let workload = if kind == ExecutionWorkload::Proofs {
            // A proof carries its chunks: a block holds fewer of them than of other calls, and
            // the market holds at most MAX_ACTIVE_DEALS deals, one a provider here.
            let mut workload = proof_workload(count.min(PROOF_DEALS_AT_MOST), &dir, 2048)?;
            let mut bytes = 0;
            let fit = workload
                .transactions
                .iter()
                .take_while(|tx| {
                    bytes += tx.encoded_len();
                    bytes <= cairn_primitives::MAX_BLOCK_TRANSACTION_BYTES
                })
                .count();
            workload.transactions.truncate(fit);
            workload
        } else {
            simple_workload(kind, count, &dir)?
        };
        let count = workload.transactions.len();
        let (expected, expected_root, first_time) = time_block(&workload, &Sequential)?;
        let gas_per_tx: Vec<u64> = expected
            .iter()
            .map(|outcome| match outcome {
                TxOutcome::Included(receipt) => receipt.gas_used,
                TxOutcome::Excluded(_) => 0,
            })
            .collect();
        let gas: u64 = gas_per_tx.iter().sum();
        let failures: Vec<&TxOutcome> = expected
            .iter()
            .filter(|o| !matches!(o, TxOutcome::Included(r) if r.succeeded()))
            .collect();
        let failed = failures.len();
        if let Some(first) = failures.first() {
            return Err(BenchError::Check(format!(
                "{name}: {failed} transactions did not succeed (the first: {first:?})"
            )));
        }
        let mut sequential_times = vec![first_time];
        let mut parallel_times = vec![Vec::with_capacity(ROUNDS); executors.len()];
        let mut share_times = vec![Vec::with_capacity(ROUNDS); shares.len()];
        for round in 0..ROUNDS {
            if round > 0 {
                sequential_times.push(time_block(&workload, &Sequential)?.2);
            }
            for (executor, times) in executors.iter().zip(&mut parallel_times) {
                let (outcomes, root, elapsed) = time_block(&workload, executor)?;
                if outcomes != expected || root != expected_root {
                    return Err(BenchError::Check(format!(
                        "{name}: Block-STM at {} threads differs from sequential",
                        executor.threads()
                    )));
                }
                times.push(elapsed);
            }
            for (&shares, times) in shares.iter().zip(&mut share_times) {
                times.push(time_independent_shares(&workload, shares)?);
            }
        }
        let sequential_time = median(sequential_times);
        let figures = |threads: Option<usize>, elapsed: Duration| {
            let seconds = elapsed.as_secs_f64();
            ExecutionRun {
                threads,
                ms: seconds * 1000.0,
                tx_per_sec: count as f64 / seconds,
                gas_per_sec: gas as f64 / seconds,
                speedup: sequential_time.as_secs_f64() / seconds,
            }
        };
        let mut runs = vec![figures(None, sequential_time)];
        runs.extend(
            threads
                .iter()
                .zip(parallel_times)
                .map(|(&threads, times)| figures(Some(threads), median(times))),
        );
        let ceilings = shares
            .iter()
            .zip(share_times)
            .map(|(&shares, times)| figures(Some(shares), median(times)))
            .collect();
        let view = workload.chain.state();
        let mut pending = cairn_storage::PendingState::new(&view);
        let traced = cairn_evm::parallel::Parallel::new(2).execute_traced(
            &workload.context,
            &workload.transactions,
            &mut pending,
        )?;
        let (dependency_bound, runs_per_tx) = traced.map_or((1.0, None), |traced| {
            (
                cairn_evm::parallel::dependency_bound(&traced.footprints, &gas_per_tx),
                Some(traced.executions as f64 / count as f64),
            )
        });
        reports.push(WorkloadReport {
            workload: name.to_string(),
            transactions: count,
            gas,
            runs,
            ceilings,
            dependency_bound,
            runs_per_tx,
        });
    }
    Ok(reports)
}
