//! Pending transactions: checked on entry, ordered per sender by nonce, bounded.
//!
//! The pool takes only [`VerifiedTransaction`]s: the signature, the costly check, is done
//! before the pool's lock is taken. A transaction is admitted only if it could run in the next
//! blocks: right chain, enough gas for its intrinsic cost and no more than a block holds, a fee cap at
//! or above the base fee, the sender's next nonce (counting its pending transactions), and a
//! balance covering the worst case of all its pending transactions. Each refusal is a distinct
//! [`TxRejection`] and leaves the pool unchanged.
//!
//! Blocks take transactions in arrival order across senders and nonce order within a sender.

use std::collections::{BTreeMap, HashMap};

use cairn_evm::rules::{ChainRules, SenderState, intrinsic_gas, max_tx_gas};
use cairn_primitives::CodecError;

use crate::error::TxRejection;
use cairn_primitives::{Address, B256, Canonical, Transaction, U256, VerifiedTransaction};

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held in total.
    pub capacity: usize,
    /// Most pending transactions of one sender.
    pub per_sender: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            capacity: 50_000,
            per_sender: 256,
        }
    }
}

#[derive(Debug, Clone)]
struct PoolTx {
    tx: VerifiedTransaction,
    arrival: u64,
}

/// The least gas any transaction uses (a plain transfer).
const MIN_TX_GAS: u64 = 21_000;

/// The pool.
#[derive(Debug, Default)]
pub struct Mempool {
    config: MempoolConfig,
    by_sender: BTreeMap<Address, BTreeMap<u64, PoolTx>>,
    by_hash: HashMap<B256, (Address, u64)>,
    /// Sender of each pending transaction, by arrival: the order blocks serve senders in.
    arrivals: BTreeMap<u64, Address>,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// A pending transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<&Transaction> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce).map(|p| p.tx.tx())
    }

    /// The nonce the sender's next transaction should carry, counting pending ones.
    pub fn next_nonce(&self, sender: &Address, committed: u64) -> u64 {
        self.by_sender
            .get(sender)
            .and_then(|queue| queue.last_key_value())
            .map_or(committed, |(nonce, _)| (nonce + 1).max(committed))
    }

    /// Checks a transaction without keeping it.
    pub fn check(
        &self,
        verified: &VerifiedTransaction,
        rules: &ChainRules,
        sender_state: SenderState,
    ) -> Result<(), TxRejection> {
        let tx = verified.tx();
        let body = &tx.body;
        if body.chain_id != rules.chain_id {
            return Err(TxRejection::WrongChain {
                expected: rules.chain_id,
                got: body.chain_id,
            });
        }
        let intrinsic = intrinsic_gas(tx);
        if body.gas_limit < intrinsic {
            return Err(TxRejection::GasLimitTooLow {
                intrinsic,
                got: body.gas_limit,
            });
        }
        let max_gas = max_tx_gas(rules.block_gas_limit);
        if body.gas_limit > max_gas {
            return Err(TxRejection::GasLimitTooHigh {
                max: max_gas,
                got: body.gas_limit,
            });
        }
        if body.max_fee_per_gas < u128::from(rules.base_fee_per_gas) {
            return Err(TxRejection::FeeTooLow {
                base_fee: rules.base_fee_per_gas,
                got: body.max_fee_per_gas,
            });
        }
        if body.max_priority_fee_per_gas > body.max_fee_per_gas {
            return Err(TxRejection::TipAboveFeeCap {
                priority: body.max_priority_fee_per_gas,
                max_fee: body.max_fee_per_gas,
            });
        }
        let sender = verified.sender();
        if self.by_hash.contains_key(&verified.hash()) {
            return Err(TxRejection::AlreadyKnown);
        }
        if body.nonce < sender_state.nonce {
            return Err(TxRejection::NonceTooLow {
                sender,
                next: sender_state.nonce,
                got: body.nonce,
            });
        }
        let queue = self.by_sender.get(&sender);
        let replaced = queue.and_then(|q| q.get(&body.nonce));
        if let Some(old) = replaced.map(|p| &p.tx.tx().body)
            && !(bumped(old.max_fee_per_gas, body.max_fee_per_gas)
                && bumped(old.max_priority_fee_per_gas, body.max_priority_fee_per_gas))
        {
            return Err(TxRejection::ReplacementUnderpriced { nonce: body.nonce });
        }
        let next = self.next_nonce(&sender, sender_state.nonce);
        if body.nonce > next {
            return Err(TxRejection::NonceGap {
                sender,
                next,
                got: body.nonce,
            });
        }
        if replaced.is_none() {
            let pending = queue.map_or(0, BTreeMap::len);
            if pending >= self.config.per_sender {
                return Err(TxRejection::SenderQueueFull {
                    sender,
                    limit: self.config.per_sender,
                });
            }
            if self.len() >= self.config.capacity {
                return Err(TxRejection::PoolFull {
                    capacity: self.config.capacity,
                });
            }
        }
        let others: U256 = queue
            .into_iter()
            .flat_map(|q| q.values())
            .filter(|p| p.tx.tx().body.nonce != body.nonce)
            .fold(U256::ZERO, |sum, p| {
                sum.saturating_add(p.tx.tx().max_cost())
            });
        let cost = others.saturating_add(tx.max_cost());
        if cost > sender_state.balance {
            return Err(TxRejection::InsufficientFunds {
                sender,
                balance: sender_state.balance,
                cost,
            });
        }
        Ok(())
    }

    /// Checks and admits a transaction, replacing a pending one with the same nonce if the
    /// new one pays enough more. Returns its hash.
    pub fn insert(
        &mut self,
        tx: VerifiedTransaction,
        rules: &ChainRules,
        sender_state: SenderState,
    ) -> Result<B256, TxRejection> {
        let size = tx.tx().encode().len();
        if size > Transaction::MAX_SIZE {
            let (what, max) = (Transaction::NAME, Transaction::MAX_SIZE);
            return Err(CodecError::TooLarge { what, size, max }.into());
        }
        self.check(&tx, rules, sender_state)?;
        let (hash, sender, nonce) = (tx.hash(), tx.sender(), tx.tx().body.nonce);
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let queue = self.by_sender.entry(sender).or_default();
        if let Some(old) = queue.insert(nonce, PoolTx { tx, arrival }) {
            self.by_hash.remove(&old.tx.hash());
            self.arrivals.remove(&old.arrival);
        }
        self.by_hash.insert(hash, (sender, nonce));
        self.arrivals.insert(arrival, sender);
        Ok(hash)
    }

    /// Transactions for the next block whose gas limits add up to at most `gas_budget`:
    /// senders in order of their oldest pending transaction, taken round-robin so that one busy
    /// sender cannot fill a block alone, each sender's in nonce order from its committed nonce.
    pub fn select(
        &self,
        gas_budget: u64,
        committed_nonce: impl Fn(&Address) -> u64,
    ) -> Vec<Transaction> {
        // No block holds more transactions than this, so no more senders need a look: the cost
        // of a block does not grow with the size of the pool.
        let max_senders = usize::try_from(gas_budget / MIN_TX_GAS).unwrap_or(usize::MAX);
        let mut senders = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for sender in self.arrivals.values() {
            if senders.len() >= max_senders {
                break;
            }
            if seen.insert(sender) {
                senders.push(sender);
            }
        }
        // Each sender's ready run: consecutive nonces starting at its committed nonce.
        let mut runs: Vec<Vec<&PoolTx>> = Vec::new();
        for sender in senders {
            let Some(queue) = self.by_sender.get(sender) else {
                continue;
            };
            let first = committed_nonce(sender);
            let run: Vec<&PoolTx> = (first..)
                .zip(queue.range(first..))
                .take_while(|(expected, (nonce, _))| expected == *nonce)
                .map(|(_, (_, entry))| entry)
                .collect();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let mut selected = Vec::new();
        let mut gas_left = gas_budget;
        let mut depth = 0;
        loop {
            let mut took = false;
            for run in &mut runs {
                let Some(entry) = run.get(depth) else {
                    continue;
                };
                let tx = entry.tx.tx();
                if tx.body.gas_limit > gas_left {
                    // Later nonces of this sender cannot go before this one: the run ends here.
                    run.truncate(depth);
                    continue;
                }
                gas_left -= tx.body.gas_limit;
                selected.push(tx.clone());
                took = true;
            }
            if !took {
                return selected;
            }
            depth += 1;
        }
    }

    /// Drops what a new block made obsolete: each listed sender's transactions below its new
    /// committed nonce (those in the block, and any the block made stale).
    pub fn prune(&mut self, committed: impl IntoIterator<Item = (Address, u64)>) {
        for (sender, next) in committed {
            let Some(queue) = self.by_sender.get_mut(&sender) else {
                continue;
            };
            let kept = queue.split_off(&next);
            for entry in std::mem::replace(queue, kept).into_values() {
                self.by_hash.remove(&entry.tx.hash());
                self.arrivals.remove(&entry.arrival);
            }
            if queue.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }

    /// Removes one transaction and every later one of the same sender (they can no longer run
    /// in order). Used when a block proposer finds it cannot be included.
    pub fn evict(&mut self, hash: &B256) {
        let Some((sender, nonce)) = self.by_hash.get(hash).copied() else {
            return;
        };
        if let Some(queue) = self.by_sender.get_mut(&sender) {
            for (_, entry) in queue.split_off(&nonce) {
                self.by_hash.remove(&entry.tx.hash());
                self.arrivals.remove(&entry.arrival);
            }
            if queue.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }
}

/// A replacement must raise a fee by at least 10%.
fn bumped(old: u128, new: u128) -> bool {
    new >= old.saturating_add(old / 10) && new > old
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_primitives::{AccountKey, Bytes, MAX_TX_SIZE, TxBody};

    trait SignVerified {
        fn signed(self, key: &AccountKey) -> VerifiedTransaction;
    }

    impl SignVerified for TxBody {
        fn signed(self, key: &AccountKey) -> VerifiedTransaction {
            VerifiedTransaction::verify(self.sign(key)).unwrap()
        }
    }

    const RULES: ChainRules = ChainRules {
        chain_id: 7,
        block_gas_limit: 1_000_000,
        base_fee_per_gas: 10,
    };

    fn key(byte: u8) -> AccountKey {
        AccountKey::from_bytes(&[byte; 32])
    }

    fn body(nonce: u64) -> TxBody {
        TxBody {
            chain_id: 7,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            max_priority_fee_per_gas: 0,
            to: Some(Address::repeat_byte(0xee)),
            value: U256::from(1),
            input: Bytes::new(),
        }
    }

    fn rich() -> SenderState {
        SenderState {
            nonce: 0,
            balance: U256::from(10u64.pow(18)),
        }
    }

    #[test]
    fn every_bad_transaction_gets_its_own_error_and_changes_nothing() {
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 10,
            per_sender: 3,
        });
        let alice = key(1);
        let first = pool.insert(body(0).signed(&alice), &RULES, rich()).unwrap();
        let snapshot = |pool: &Mempool| (pool.len(), pool.select(u64::MAX, |_| 0));
        let before = snapshot(&pool);

        type Case = (VerifiedTransaction, SenderState, fn(&TxRejection) -> bool);
        let cases: Vec<Case> = vec![
            (
                TxBody {
                    chain_id: 8,
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| {
                    matches!(
                        e,
                        TxRejection::WrongChain {
                            expected: 7,
                            got: 8
                        }
                    )
                },
            ),
            (
                body(0).signed(&key(2)),
                SenderState { nonce: 1, ..rich() },
                |e| {
                    matches!(
                        e,
                        TxRejection::NonceTooLow {
                            next: 1,
                            got: 0,
                            ..
                        }
                    )
                },
            ),
            (body(5).signed(&alice), rich(), |e| {
                matches!(
                    e,
                    TxRejection::NonceGap {
                        next: 1,
                        got: 5,
                        ..
                    }
                )
            }),
            (
                body(0).signed(&key(3)),
                SenderState {
                    nonce: 0,
                    balance: U256::from(1000),
                },
                |e| matches!(e, TxRejection::InsufficientFunds { .. }),
            ),
            (
                TxBody {
                    gas_limit: 20_999,
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| {
                    matches!(
                        e,
                        TxRejection::GasLimitTooLow {
                            intrinsic: 21_000,
                            got: 20_999
                        }
                    )
                },
            ),
            (
                TxBody {
                    input: vec![1u8; 100].into(),
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| matches!(e, TxRejection::GasLimitTooLow { intrinsic, .. } if *intrinsic > 21_000),
            ),
            (
                TxBody {
                    gas_limit: 1_000_001,
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| matches!(e, TxRejection::GasLimitTooHigh { max: 1_000_000, .. }),
            ),
            (
                TxBody {
                    max_fee_per_gas: 9,
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| {
                    matches!(
                        e,
                        TxRejection::FeeTooLow {
                            base_fee: 10,
                            got: 9
                        }
                    )
                },
            ),
            (
                TxBody {
                    max_priority_fee_per_gas: 11,
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| matches!(e, TxRejection::TipAboveFeeCap { .. }),
            ),
            (body(0).signed(&alice), rich(), |e| {
                matches!(e, TxRejection::AlreadyKnown)
            }),
            (
                TxBody {
                    value: U256::from(2),
                    ..body(0)
                }
                .signed(&alice),
                rich(),
                |e| matches!(e, TxRejection::ReplacementUnderpriced { nonce: 0 }),
            ),
            (
                TxBody {
                    input: vec![0u8; MAX_TX_SIZE].into(),
                    gas_limit: 900_000,
                    ..body(1)
                }
                .signed(&alice),
                rich(),
                |e| matches!(e, TxRejection::Encoding(CodecError::TooLarge { .. })),
            ),
        ];
        let mut messages = std::collections::BTreeSet::new();
        for (tx, state, expected) in cases {
            let error = pool.insert(tx, &RULES, state).unwrap_err();
            assert!(expected(&error), "unexpected refusal: {error:?}");
            messages.insert(error.to_string());
            assert_eq!(snapshot(&pool), before, "refusal {error} changed the pool");
        }
        assert_eq!(messages.len(), 12, "each refusal reads differently");
        assert!(pool.contains(&first));
    }

    #[test]
    fn pending_costs_add_up_against_the_balance() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let alice = key(1);
        let one_tx = body(0).signed(&alice).tx().max_cost();
        let state = SenderState {
            nonce: 0,
            balance: one_tx * U256::from(2),
        };
        pool.insert(body(0).signed(&alice), &RULES, state).unwrap();
        pool.insert(body(1).signed(&alice), &RULES, state).unwrap();
        let third = pool
            .insert(body(2).signed(&alice), &RULES, state)
            .unwrap_err();
        assert!(matches!(third, TxRejection::InsufficientFunds { .. }));
        assert_eq!(pool.next_nonce(&alice.address(), 0), 2);
    }

    #[test]
    fn limits_bound_the_pool() {
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 3,
            per_sender: 2,
        });
        let alice = key(1);
        pool.insert(body(0).signed(&alice), &RULES, rich()).unwrap();
        pool.insert(body(1).signed(&alice), &RULES, rich()).unwrap();
        let full = pool
            .insert(body(2).signed(&alice), &RULES, rich())
            .unwrap_err();
        assert!(matches!(
            full,
            TxRejection::SenderQueueFull { limit: 2, .. }
        ));
        pool.insert(body(0).signed(&key(2)), &RULES, rich())
            .unwrap();
        let full = pool
            .insert(body(0).signed(&key(3)), &RULES, rich())
            .unwrap_err();
        assert_eq!(full, TxRejection::PoolFull { capacity: 3 });
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn a_replacement_must_raise_both_fees() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let alice = key(1);
        let original = TxBody {
            max_fee_per_gas: 20,
            max_priority_fee_per_gas: 10,
            ..body(0)
        };
        let old = pool
            .insert(original.clone().signed(&alice), &RULES, rich())
            .unwrap();
        let fee_only = TxBody {
            max_fee_per_gas: 30,
            ..original.clone()
        };
        assert!(
            pool.insert(fee_only.signed(&alice), &RULES, rich())
                .is_err()
        );
        let both = TxBody {
            max_fee_per_gas: 30,
            max_priority_fee_per_gas: 11,
            ..original
        };
        let new = pool.insert(both.signed(&alice), &RULES, rich()).unwrap();
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&new) && !pool.contains(&old));
    }

    #[test]
    fn selection_is_fair_ordered_and_within_the_gas_budget() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let (alice, bob) = (key(1), key(2));
        for nonce in 0..3 {
            pool.insert(body(nonce).signed(&alice), &RULES, rich())
                .unwrap();
        }
        pool.insert(body(0).signed(&bob), &RULES, rich()).unwrap();
        let picked: Vec<(Address, u64)> = pool
            .select(u64::MAX, |_| 0)
            .iter()
            .map(|t| (t.sender(), t.body.nonce))
            .collect();
        let (a, b) = (alice.address(), bob.address());
        assert_eq!(picked, vec![(a, 0), (b, 0), (a, 1), (a, 2)]);
        assert_eq!(pool.select(2 * 21_000, |_| 0).len(), 2);
        // Alice's committed nonce is already 1: her nonce-0 transaction is not offered.
        let offered = pool.select(u64::MAX, |s| u64::from(*s == a));
        assert_eq!(offered.len(), 3);

        // A budget of two transfers looks at two senders, however many are waiting.
        let looked_up = std::cell::Cell::new(0);
        let picked = pool.select(2 * 21_000, |_| {
            looked_up.set(looked_up.get() + 1);
            0
        });
        assert_eq!((picked.len(), looked_up.get()), (2, 2));

        pool.prune([(a, 2)]);
        assert_eq!(pool.len(), 2);
        let evicted = body(0).signed(&bob).hash();
        pool.evict(&evicted);
        assert_eq!(pool.len(), 1);
        assert!(!pool.contains(&evicted));
        assert_eq!(pool.arrivals.len(), pool.len());
    }
}
