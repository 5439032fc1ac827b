//! Block-STM against the sequential executor on random blocks: transfers, a token, shared
//! slots, reverts, creations and reward-contract proofs, at 1, 2 and 8 threads.
use alloy_sol_types::SolCall;
use cairn_reward_contracts::bindings::BenchToken;
use cairn_storage::{PendingState, Store};
use proptest::prelude::*;

use crate::{
    BENCH_TOKEN, PROOF_CLIENT_KEYS, PROOF_PROVIDER_KEYS, Workload, bench_key, proof_workload,
    signed, token_balance_slot,
};
use cairn_chain::genesis::{Genesis, GenesisAccount, TOKEN};
use cairn_evm::execution::{BlockContext, Executor, Sequential, TxOutcome};
use cairn_evm::parallel::{Parallel, TracedRun};
use cairn_primitives::{AccountKey, Bytes, TxBody};
use cairn_primitives::{Address, B256, Transaction, U256};

const SENDERS: u8 = 16;

fn sender(i: u8) -> AccountKey {
    AccountKey::from_bytes(&[i + 1; 32])
}

fn genesis() -> Genesis {
    let mut genesis = Genesis::dev();
    genesis.contracts = None;
    genesis.alloc.clear();
    let mut token = GenesisAccount {
        code: Some(BenchToken::DEPLOYED_BYTECODE.clone()),
        ..Default::default()
    };
    for i in 0..SENDERS {
        let address = sender(i).address();
        genesis.alloc.insert(
            address,
            GenesisAccount {
                balance: U256::from(TOKEN),
                ..Default::default()
            },
        );
        token
            .storage
            .insert(token_balance_slot(address), U256::from(1_000));
    }
    genesis.alloc.insert(BENCH_TOKEN, token);
    genesis
}

#[derive(Debug, Clone)]
enum Op {
    Transfer { to: u8, value: u64 },
    TokenTransfer { to: u8, amount: u64 },
    Bump,
    Create,
    OutOfGas,
    StaleNonce,
    NonceGap,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), 0..1_000u64).prop_map(|(to, value)| Op::Transfer { to, value }),
        4 => (any::<u8>(), 0..1_500u64).prop_map(|(to, amount)| Op::TokenTransfer { to, amount }),
        1 => Just(Op::Bump),
        1 => Just(Op::Create),
        1 => Just(Op::OutOfGas),
        1 => Just(Op::StaleNonce),
        1 => Just(Op::NonceGap),
    ]
}

/// A block of `ops`, each from one of `senders` senders to one of `recipients` recipients
/// (fewer of either: more contention).
fn block(ops: &[(u8, Op)], senders: u8, recipients: u8) -> Vec<Transaction> {
    let mut nonces = [0u64; SENDERS as usize];
    let recipient = |i: u8| {
        let i = i % recipients;
        if i < SENDERS {
            sender(i).address()
        } else {
            Address::repeat_byte(0xf0 ^ i)
        }
    };
    ops.iter()
        .map(|(from, op)| {
            let from = from % senders;
            let key = sender(from);
            let nonce = &mut nonces[from as usize];
            let (to, value, input, gas, tx_nonce) = match op {
                Op::Transfer { to, value } => (
                    Some(recipient(*to)),
                    U256::from(*value),
                    Bytes::new(),
                    21_000,
                    *nonce,
                ),
                Op::TokenTransfer { to, amount } => {
                    let call = BenchToken::transferCall {
                        to: recipient(*to),
                        amount: U256::from(*amount),
                    };
                    (
                        Some(BENCH_TOKEN),
                        U256::ZERO,
                        call.abi_encode().into(),
                        100_000,
                        *nonce,
                    )
                }
                Op::Bump => (
                    Some(BENCH_TOKEN),
                    U256::ZERO,
                    BenchToken::bumpCall {}.abi_encode().into(),
                    100_000,
                    *nonce,
                ),
                Op::Create => (
                    None,
                    U256::ZERO,
                    BenchToken::BYTECODE.clone(),
                    1_000_000,
                    *nonce,
                ),
                Op::OutOfGas => (
                    Some(BENCH_TOKEN),
                    U256::ZERO,
                    BenchToken::bumpCall {}.abi_encode().into(),
                    21_500,
                    *nonce,
                ),
                Op::StaleNonce => (
                    Some(recipient(0)),
                    U256::from(1),
                    Bytes::new(),
                    21_000,
                    nonce.saturating_sub(1),
                ),
                Op::NonceGap => (
                    Some(recipient(0)),
                    U256::from(1),
                    Bytes::new(),
                    21_000,
                    *nonce + 5,
                ),
            };
            if !matches!(op, Op::StaleNonce | Op::NonceGap)
                || (*nonce == 0 && matches!(op, Op::StaleNonce))
            {
                *nonce += 1;
            }
            TxBody {
                chain_id: 31_337,
                nonce: tx_nonce,
                gas_limit: gas,
                max_fee_per_gas: 2_000_000_000,
                max_priority_fee_per_gas: 7,
                to,
                value,
                input,
            }
            .sign(&key)
        })
        .collect()
}

fn context() -> BlockContext {
    BlockContext {
        chain_id: 31_337,
        height: 1,
        timestamp_secs: 1_767_225_601,
        gas_limit: 60_000_000,
        base_fee_per_gas: 1_000_000_000,
        beneficiary: Address::with_last_byte(0xbe),
        randomness: B256::repeat_byte(3),
    }
}

/// (outcomes, state root) of running `txs` with `executor` on the store's head state.
fn run(store: &Store, executor: &dyn Executor, txs: &[Transaction]) -> (Vec<TxOutcome>, B256) {
    let view = store.state();
    let mut pending = PendingState::new(&view);
    let outcomes = executor.execute(&context(), txs, &mut pending).unwrap();
    (outcomes, store.prepare_state_root(&pending).unwrap().root())
}

/// The same, through Block-STM only (fails the test if the block fell back to sequential),
/// with the run's figures.
fn run_block_stm(store: &Store, executor: &Parallel, txs: &[Transaction]) -> (TracedRun, B256) {
    let view = store.state();
    let mut pending = PendingState::new(&view);
    let run = executor
        .execute_traced(&context(), txs, &mut pending)
        .unwrap()
        .expect("the block ran in parallel, not by falling back");
    (run, store.prepare_state_root(&pending).unwrap().root())
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    genesis().initialize(&store).unwrap();
    (dir, store)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn parallel_equals_sequential(
        ops in proptest::collection::vec((any::<u8>(), op()), 16..64),
        senders in 1..=SENDERS,
        recipients in 1..=24u8,
    ) {
        thread_local! {
            static STORE: (tempfile::TempDir, Store) = store();
            // Kept from case to case: each block runs in the memory the last one left,
            // converged or given up.
            static EXECUTORS: (Parallel, [Parallel; 2]) = (
                Parallel::new(2),
                [2, 8].map(|threads| Parallel::new(threads).exhaustive()),
            );
        }
        let txs = block(&ops, senders, recipients);
        STORE.with(|(_, store)| EXECUTORS.with(|(with_fallback, exhaustive)| {
            let expected = run(store, &Sequential, &txs);
            prop_assert_eq!(&run(store, &Parallel::new(1), &txs), &expected, "1 thread");
            prop_assert_eq!(&run(store, with_fallback, &txs), &expected, "with fallback");
            for executor in exhaustive {
                let (run, root) = run_block_stm(store, executor, &txs);
                let threads = executor.threads();
                prop_assert_eq!(&(run.outcomes, root), &expected, "{} threads", threads);
            }
            Ok(())
        }))?;
    }
}

/// Providers in the proof-transaction blocks.
const PROVIDERS: usize = 8;

#[derive(Debug, Clone)]
enum ProofOp {
    /// A provider's valid proof for the epoch.
    Proof(u8),
    /// The same proof with one byte changed: it reverts, and uses up the provider's nonce.
    ForgedProof(u8),
    /// The client pays a provider (the provider's account is read by its proof).
    ClientPays(u8, u64),
    /// A provider pays another, with the nonce its proof needs as well.
    ProviderPays(u8, u8, u64),
}

fn proof_op() -> impl Strategy<Value = ProofOp> {
    prop_oneof![
        4 => any::<u8>().prop_map(ProofOp::Proof),
        1 => any::<u8>().prop_map(ProofOp::ForgedProof),
        2 => (any::<u8>(), 1..1_000u64).prop_map(|(to, value)| ProofOp::ClientPays(to, value)),
        1 => (any::<u8>(), any::<u8>(), 1..1_000u64)
            .prop_map(|(from, to, value)| ProofOp::ProviderPays(from, to, value)),
    ]
}

/// A block of reward-contract proof transactions (each provider's proof is its nonce 3) and
/// payments between the client and the providers, in the order of `ops`.
fn proof_block(workload: &Workload, ops: &[ProofOp]) -> Vec<Transaction> {
    let provider = |i: u8| usize::from(i) % PROVIDERS;
    let key = |i: u8| bench_key(PROOF_PROVIDER_KEYS, provider(i));
    // The client opened one deal per provider, with nonces 0 to PROVIDERS - 1.
    let mut client_nonce = PROVIDERS as u64;
    ops.iter()
        .map(|op| match op {
            ProofOp::Proof(i) => workload.transactions[provider(*i)].clone(),
            ProofOp::ForgedProof(i) => {
                let mut body = workload.transactions[provider(*i)].body.clone();
                let mut input = body.input.to_vec();
                if let Some(last) = input.last_mut() {
                    *last ^= 1;
                }
                body.input = input.into();
                body.sign(&key(*i))
            }
            ProofOp::ClientPays(to, value) => {
                client_nonce += 1;
                signed(
                    &bench_key(PROOF_CLIENT_KEYS, 0),
                    client_nonce - 1,
                    key(*to).address(),
                    U256::from(*value),
                    Vec::new(),
                    21_000,
                )
            }
            ProofOp::ProviderPays(from, to, value) => signed(
                &key(*from),
                3,
                key(*to).address(),
                U256::from(*value),
                Vec::new(),
                21_000,
            ),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The reward contracts and the chunk-proof precompile, with proofs valid and forged,
    /// duplicated, and racing payments for the same nonce and accounts.
    #[test]
    fn parallel_equals_sequential_on_reward_contract_proofs(
        ops in proptest::collection::vec(proof_op(), 8..40),
    ) {
        thread_local! {
            static WORKLOAD: (tempfile::TempDir, Workload) = {
                let dir = tempfile::tempdir().unwrap();
                let workload = proof_workload(PROVIDERS, dir.path(), 2048).unwrap();
                (dir, workload)
            };
        }
        WORKLOAD.with(|(_, workload)| {
            let txs = proof_block(workload, &ops);
            let on_head = |executor: &dyn Fn(&mut PendingState<'_>) -> Vec<TxOutcome>| {
                let view = workload.chain.state();
                let mut pending = PendingState::new(&view);
                let outcomes = executor(&mut pending);
                (outcomes, workload.chain.state_root_of(&pending).unwrap())
            };
            let expected = on_head(&|pending| {
                Sequential.execute(&workload.context, &txs, pending).unwrap()
            });
            prop_assert!(expected.0.iter().any(|o| matches!(o, TxOutcome::Included(_))));
            for threads in [1, 2, 8] {
                let actual = on_head(&|pending| {
                    Parallel::new(threads)
                        .exhaustive()
                        .execute_traced(&workload.context, &txs, pending)
                        .unwrap()
                        .expect("the block ran in parallel, not by falling back")
                        .outcomes
                });
                prop_assert_eq!(&actual, &expected, "{} threads", threads);
            }
            Ok(())
        })?;
    }
}

#[test]
fn a_block_full_of_conflicts_falls_back_to_sequential_with_the_same_result() {
    let (_dir, store) = store();
    let ops: Vec<(u8, Op)> = (0..200).map(|i| (i as u8, Op::Bump)).collect();
    let txs = block(&ops, SENDERS, 20);
    let view = store.state();
    let mut pending = PendingState::new(&view);
    let parallel = Parallel::new(2);
    let attempt = parallel
        .execute_traced(&context(), &txs, &mut pending)
        .unwrap();
    assert!(
        attempt.is_none(),
        "a block of conflicts is left to the sequential executor"
    );
    assert_eq!(
        pending.changed_accounts(),
        0,
        "the abandoned attempt wrote nothing"
    );
    assert_eq!(run(&store, &parallel, &txs), run(&store, &Sequential, &txs));

    // The memory the abandoned attempt left behind serves the next block.
    let ops: Vec<(u8, Op)> = (0..48)
        .map(|i| {
            (
                i as u8,
                Op::Transfer {
                    to: i as u8,
                    value: 7,
                },
            )
        })
        .collect();
    let txs = block(&ops, SENDERS, 200);
    let (traced, root) = run_block_stm(&store, &parallel, &txs);
    assert_eq!((traced.outcomes, root), run(&store, &Sequential, &txs));
}

/// Runs `txs` with Block-STM and checks that each transaction ran exactly once, with no
/// conflict, to the sequential executor's result.
fn assert_each_runs_once(txs: &[Transaction], threads: usize) {
    let (_dir, store) = store();
    let (traced, root) = run_block_stm(&store, &Parallel::new(threads).exhaustive(), txs);
    assert!(
        traced
            .outcomes
            .iter()
            .all(|o| matches!(o, TxOutcome::Included(r) if r.succeeded()))
    );
    assert_eq!(
        (traced.executions, traced.conflicts),
        (txs.len(), 0),
        "each transaction ran once, after the one before it, without waiting"
    );
    assert_eq!((traced.outcomes, root), run(&store, &Sequential, txs));
}

#[test]
fn a_chain_of_one_sender_runs_as_one_task() {
    let ops: Vec<(u8, Op)> = (0..64)
        .map(|i| (0, Op::Transfer { to: i, value: 1 }))
        .collect();
    assert_each_runs_once(&block(&ops, 1, 20), 4);
}

#[test]
fn chains_of_several_senders_interleaved_run_once_each() {
    let ops: Vec<(u8, Op)> = (0..96)
        .map(|i| {
            (
                i % 3,
                Op::Transfer {
                    to: 100 + i,
                    value: 1,
                },
            )
        })
        .collect();
    assert_each_runs_once(&block(&ops, 3, 255), 2);
}

#[test]
fn a_block_that_is_one_chain_is_noticed_without_conflicts() {
    let (_dir, store) = store();
    // One sender's transactions: a chain the scheduler runs in order, so nothing conflicts.
    let ops: Vec<(u8, Op)> = (0..200)
        .map(|i| {
            (
                0,
                Op::Transfer {
                    to: i as u8,
                    value: 1,
                },
            )
        })
        .collect();
    let txs = block(&ops, 1, 20);
    let view = store.state();
    let mut pending = PendingState::new(&view);
    let parallel = Parallel::new(2);
    let attempt = parallel
        .execute_traced(&context(), &txs, &mut pending)
        .unwrap();
    assert!(
        attempt.is_none(),
        "a chain is left to the sequential executor"
    );
    assert_eq!(run(&store, &parallel, &txs), run(&store, &Sequential, &txs));
}
