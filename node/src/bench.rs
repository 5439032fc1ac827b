//! Benchmarks an operator can run on their own hardware (`cairn bench ...`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::chain::Chain;
use crate::error::{NodeError, Result};
use crate::execution::Sequential;
use crate::genesis::{Genesis, GenesisAccount, TOKEN, dev_validator};
use crate::mempool::MempoolConfig;
use crate::node::Shared;
use crate::types::{AccountKey, Address, Canonical, Transaction, TxBody, U256};

/// Where the time of the transfer benchmark went, and the resulting throughput.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferReport {
    /// Transactions submitted (all were committed).
    pub transactions: usize,
    /// Blocks it took.
    pub blocks: u64,
    /// Decoding and checking each raw transaction into the mempool.
    pub admission_ms: f64,
    /// Of which ed25519 signature checks (measured separately on the same transactions).
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

/// Signs `count` transfers from distinct senders to distinct recipients, submits them as raw
/// bytes to a node's mempool (the path `cairn_sendRawTransaction` takes) and produces blocks
/// until every one is committed. The database lives in `workdir`.
pub fn transfers(count: usize, workdir: &Path) -> Result<TransferReport> {
    let senders: Vec<AccountKey> = (0..count)
        .map(|i| {
            AccountKey::from_bytes(&blake3::derive_key("cairn bench sender", &i.to_le_bytes()))
        })
        .collect();
    let mut genesis = Genesis::dev();
    genesis.alloc = senders
        .iter()
        .map(|key| {
            let balance = U256::from(TOKEN);
            (
                key.address(),
                GenesisAccount {
                    balance,
                    ..Default::default()
                },
            )
        })
        .collect();
    let raw: Vec<Vec<u8>> = senders
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let body = TxBody {
                chain_id: genesis.chain_id,
                nonce: 0,
                gas_limit: 21_000,
                max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
                max_priority_fee_per_gas: 0,
                // Hashed recipients: low addresses are precompiles.
                to: Some(Address::from_slice(
                    &blake3::hash(&i.to_le_bytes()).as_bytes()[..20],
                )),
                value: U256::from(1),
                input: Default::default(),
            };
            body.sign(key).encode()
        })
        .collect();
    let timestamp = genesis.timestamp_ms;
    let chain = Chain::open(workdir, genesis, Box::new(Sequential))?;
    let capacity = MempoolConfig {
        capacity: count.max(1),
        per_sender: 16,
    };
    let shared = Shared::new(chain, capacity, 1000);
    let validator = dev_validator();

    let started = Instant::now();
    for bytes in &raw {
        shared
            .submit_raw(bytes)
            .map_err(|e| NodeError::Execution(format!("bench transaction refused: {e}")))?;
    }
    let admission = started.elapsed();
    let (mut execute, mut state_root, mut commit) = Default::default();
    let mut blocks = 0;
    let mut committed = 0;
    while !shared.mempool().is_empty() {
        blocks += 1;
        let produced = shared.produce_block(&validator, timestamp + blocks * 1000)?;
        if let Some((hash, reason)) = produced.excluded.first() {
            return Err(NodeError::Execution(format!(
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
        return Err(NodeError::Execution(format!(
            "{committed} of {count} transfers succeeded"
        )));
    }

    let verify_started = Instant::now();
    for bytes in &raw {
        let tx = Transaction::decode(bytes)?;
        if !tx.signature_is_valid() {
            return Err(NodeError::Execution(
                "bench signature did not verify".into(),
            ));
        }
    }
    let signature_checks = verify_started.elapsed();

    Ok(TransferReport {
        transactions: count,
        blocks,
        admission_ms: ms(admission),
        signature_checks_ms: ms(signature_checks),
        execution_ms: ms(execute),
        state_root_ms: ms(state_root),
        commit_ms: ms(commit),
        block_assembly_ms: ms(total.saturating_sub(admission + execute + state_root + commit)),
        total_ms: ms(total),
        tx_per_sec: count as f64 / total.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn transfer_benchmark_commits_every_transfer() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let report = super::transfers(300, dir.path())?;
        assert_eq!(report.transactions, 300);
        assert!(report.blocks >= 1);
        assert!(report.tx_per_sec > 0.0);
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

    let set = crate::precompiles::precompiles();
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
