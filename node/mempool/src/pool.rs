//! Pending transactions: checked on entry, ordered by the tip they pay, bounded.
//!
//! The pool takes only [`VerifiedTransaction`]s: the signature, the costly check, is done
//! before the pool's lock is taken. A transaction is admitted only if it could run in the next
//! blocks: right chain, enough gas for its intrinsic cost and no more than a block holds, a fee
//! cap at or above the base fee, a nonce not used yet and at most [`MempoolConfig::per_sender`]
//! ahead, and a balance covering the worst case of all the sender's transactions here. Each
//! refusal is a distinct [`TxRejection`] and leaves the pool unchanged.
//!
//! A transaction whose nonce follows a gap (an earlier nonce has not arrived yet) waits as
//! *future*, a bounded number per sender, until the gap fills: a wallet's burst sent over
//! several connections arrives out of order and is not lost. When the pool is full, a new
//! transaction takes the place of the cheapest: a future one first (it cannot run, so holding
//! it is free for its sender), else a ready one paying a lower tip, with its sender's later
//! nonces. Blocks take ready transactions by effective tip, highest first, each sender's in
//! nonce order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use cairn_evm::rules::{ChainRules, SenderState, intrinsic_gas, max_tx_gas};
use cairn_primitives::CodecError;

use crate::error::TxRejection;
use cairn_primitives::{Address, B256, Canonical, Transaction, U256, VerifiedTransaction};

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held in total.
    pub capacity: usize,
    /// Most transactions of one sender, and how far past its next nonce one may be.
    pub per_sender: usize,
    /// Most of one sender's transactions that wait behind a gap in its nonces.
    pub future_per_sender: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            capacity: 50_000,
            per_sender: 256,
            future_per_sender: 64,
        }
    }
}

#[derive(Debug, Clone)]
struct PoolTx {
    tx: VerifiedTransaction,
    arrival: u64,
    /// What it pays the proposer per gas at the pool's base fee.
    tip: u128,
    /// Its encoded bytes.
    size: usize,
}

/// One sender's transactions by nonce, and the first nonce of theirs not yet committed, as the
/// pool last learnt it.
#[derive(Debug, Clone, Default)]
struct SenderQueue {
    committed: u64,
    txs: BTreeMap<u64, PoolTx>,
}

impl SenderQueue {
    /// The first nonce missing from the run that starts at `committed`.
    fn next_nonce_from(&self, committed: u64) -> u64 {
        let mut next = committed;
        while self.txs.contains_key(&next) {
            next += 1;
        }
        next
    }
}

/// The least gas any transaction uses (a plain transfer).
const MIN_TX_GAS: u64 = 21_000;

/// An index entry: effective tip, then arrival (earlier first among equals).
type TipKey = (u128, Reverse<u64>);

/// The pool.
#[derive(Debug, Default)]
pub struct Mempool {
    config: MempoolConfig,
    by_sender: BTreeMap<Address, SenderQueue>,
    by_hash: HashMap<B256, (Address, u64)>,
    /// Sender and nonce of every transaction, by arrival.
    arrivals: BTreeMap<u64, (Address, u64)>,
    /// Transactions that can run once the ones before them do, by tip.
    ready: BTreeSet<TipKey>,
    /// Transactions behind a gap in their sender's nonces, by tip.
    future: BTreeSet<TipKey>,
    next_arrival: u64,
}

/// What admitting a transaction takes: the transaction it replaces (same sender and nonce),
/// or the cheapest one it pushes out of a full pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Room,
    Replaces,
    Evicts(B256),
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

    /// Transactions waiting behind a gap in their sender's nonces.
    pub fn future_len(&self) -> usize {
        self.future.len()
    }

    fn entry(&self, sender: &Address, nonce: u64) -> Option<&PoolTx> {
        self.by_sender.get(sender)?.txs.get(&nonce)
    }

    /// A pending transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<&Transaction> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.entry(sender, *nonce).map(|p| p.tx.tx())
    }

    /// The nonce the sender's next transaction should carry: the first one missing from the
    /// run of its pending transactions that starts at its committed nonce.
    pub fn next_nonce(&self, sender: &Address, committed: u64) -> u64 {
        self.by_sender
            .get(sender)
            .map_or(committed, |queue| queue.next_nonce_from(committed))
    }

    /// Checks a transaction without keeping it.
    pub fn check(
        &self,
        verified: &VerifiedTransaction,
        rules: &ChainRules,
        sender_state: SenderState,
    ) -> Result<(), TxRejection> {
        self.admission(verified, rules, sender_state).map(|_| ())
    }

    fn admission(
        &self,
        verified: &VerifiedTransaction,
        rules: &ChainRules,
        sender_state: SenderState,
    ) -> Result<Admission, TxRejection> {
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
        let replaced = queue.and_then(|q| q.txs.get(&body.nonce));
        if let Some(old) = replaced.map(|p| &p.tx.tx().body)
            && !(bumped(old.max_fee_per_gas, body.max_fee_per_gas)
                && bumped(old.max_priority_fee_per_gas, body.max_priority_fee_per_gas))
        {
            return Err(TxRejection::ReplacementUnderpriced { nonce: body.nonce });
        }
        let next = self.next_nonce(&sender, sender_state.nonce);
        let is_future = body.nonce > next;
        let reach = sender_state
            .nonce
            .saturating_add(self.config.per_sender as u64);
        if is_future && body.nonce >= reach {
            return Err(TxRejection::NonceGap {
                sender,
                next,
                got: body.nonce,
            });
        }
        if is_future && replaced.is_none() {
            let waiting = queue.map_or(0, |q| q.txs.range(next..).count());
            if waiting >= self.config.future_per_sender {
                return Err(TxRejection::TooManyFuture {
                    sender,
                    next,
                    limit: self.config.future_per_sender,
                });
            }
        }
        let others: U256 = queue
            .into_iter()
            .flat_map(|q| q.txs.values())
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
        if replaced.is_some() {
            return Ok(Admission::Replaces);
        }
        let pending = queue.map_or(0, |q| q.txs.len());
        if pending >= self.config.per_sender {
            return Err(TxRejection::SenderQueueFull {
                sender,
                limit: self.config.per_sender,
            });
        }
        if self.len() < self.config.capacity {
            return Ok(Admission::Room);
        }
        let tip = effective_tip(tx, rules.base_fee_per_gas);
        match self.cheapest(is_future, tip, &sender) {
            Some(victim) => Ok(Admission::Evicts(victim)),
            None => Err(TxRejection::PoolFull {
                capacity: self.config.capacity,
                tip,
            }),
        }
    }

    /// The transaction a new one with `tip` may push out of a full pool: the cheapest future
    /// one (any tip, if the new one can run), else the cheapest ready one paying less; never
    /// one of the newcomer's own (that would open a gap before it).
    fn cheapest(&self, new_is_future: bool, tip: u128, sender: &Address) -> Option<B256> {
        let hash_of = |key: &TipKey| -> Option<B256> {
            let (owner, nonce) = self.arrivals.get(&key.1.0)?;
            if owner == sender {
                return None;
            }
            self.entry(owner, *nonce).map(|p| p.tx.hash())
        };
        let future = self
            .future
            .iter()
            .take_while(|key| !new_is_future || key.0 < tip)
            .find_map(hash_of);
        if future.is_some() || new_is_future {
            return future;
        }
        self.ready
            .iter()
            .take_while(|key| key.0 < tip)
            .find_map(hash_of)
    }

    /// Checks and admits a transaction, replacing a pending one with the same nonce if the
    /// new one pays enough more, or pushing the cheapest out of a full pool. Returns its hash.
    pub fn insert(
        &mut self,
        tx: VerifiedTransaction,
        rules: &ChainRules,
        sender_state: SenderState,
    ) -> Result<B256, TxRejection> {
        let size = tx.tx().encoded_len();
        if size > Transaction::MAX_SIZE {
            let (what, max) = (Transaction::NAME, Transaction::MAX_SIZE);
            return Err(CodecError::TooLarge { what, size, max }.into());
        }
        let admission = self.admission(&tx, rules, sender_state)?;
        if let Admission::Evicts(victim) = admission {
            self.evict(&victim);
        }
        let (hash, sender, nonce) = (tx.hash(), tx.sender(), tx.tx().body.nonce);
        let tip = effective_tip(tx.tx(), rules.base_fee_per_gas);
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let queue = self.by_sender.entry(sender).or_default();
        queue.committed = queue.committed.max(sender_state.nonce);
        let entry = PoolTx {
            tx,
            arrival,
            tip,
            size,
        };
        if let Some(old) = queue.txs.insert(nonce, entry) {
            self.by_hash.remove(&old.tx.hash());
            self.arrivals.remove(&old.arrival);
            let key = (old.tip, Reverse(old.arrival));
            self.ready.remove(&key);
            self.future.remove(&key);
        }
        self.by_hash.insert(hash, (sender, nonce));
        self.arrivals.insert(arrival, (sender, nonce));
        self.classify(&sender);
        Ok(hash)
    }

    /// Files each of the sender's transactions as ready or future, after its nonces or its
    /// committed nonce changed.
    fn classify(&mut self, sender: &Address) {
        let Some(queue) = self.by_sender.get(sender) else {
            return;
        };
        let next = queue.next_nonce_from(queue.committed);
        for (nonce, entry) in &queue.txs {
            let key = (entry.tip, Reverse(entry.arrival));
            if *nonce < next {
                self.future.remove(&key);
                self.ready.insert(key);
            } else {
                self.ready.remove(&key);
                self.future.insert(key);
            }
        }
    }

    /// Removes the sender's transactions from nonce `from` on.
    fn remove_from(&mut self, sender: &Address, from: u64) {
        let Some(queue) = self.by_sender.get_mut(sender) else {
            return;
        };
        for (_, entry) in queue.txs.split_off(&from) {
            self.by_hash.remove(&entry.tx.hash());
            self.arrivals.remove(&entry.arrival);
            let key = (entry.tip, Reverse(entry.arrival));
            self.ready.remove(&key);
            self.future.remove(&key);
        }
    }

    /// Transactions for the next block, highest effective tip first (each sender's in nonce
    /// order from its committed nonce), at most as many as `gas_budget` holds plain transfers
    /// and at most `byte_budget` bytes. The block's executor then includes them while the gas
    /// they *use* fits: a transaction asking for a large gas limit takes room only for what it
    /// burns, and one that does not fit is left for a later block.
    pub fn select(
        &self,
        gas_budget: u64,
        byte_budget: usize,
        committed_nonce: impl Fn(&Address) -> u64,
    ) -> Vec<Transaction> {
        // No block holds more transactions than this, so no more senders need a look: the cost
        // of a block does not grow with the size of the pool.
        let max_txs = usize::try_from(gas_budget / MIN_TX_GAS).unwrap_or(usize::MAX);
        let mut senders: Vec<&Address> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for key in self.ready.iter().rev() {
            if senders.len() >= max_txs {
                break;
            }
            if let Some((sender, _)) = self.arrivals.get(&key.1.0)
                && seen.insert(sender)
            {
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
                .zip(queue.txs.range(first..))
                .take_while(|(expected, (nonce, _))| expected == *nonce)
                .map(|(_, (_, entry))| entry)
                .collect();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        // The head of every run on a heap by tip: the best transaction that can go next.
        let mut heads: BinaryHeap<(TipKey, usize, usize)> = runs
            .iter()
            .enumerate()
            .map(|(run, txs)| ((txs[0].tip, Reverse(txs[0].arrival)), run, 0))
            .collect();
        let mut selected = Vec::new();
        let mut bytes_left = byte_budget;
        while let Some((_, run, position)) = heads.pop() {
            if selected.len() >= max_txs {
                break;
            }
            let entry = runs[run][position];
            if entry.size > bytes_left {
                // Later nonces of this sender cannot go before this one: the run ends here.
                continue;
            }
            bytes_left -= entry.size;
            selected.push(entry.tx.tx().clone());
            if let Some(next) = runs[run].get(position + 1) {
                heads.push(((next.tip, Reverse(next.arrival)), run, position + 1));
            }
        }
        selected
    }

    /// Drops what a new block made obsolete: each listed sender's transactions below its new
    /// committed nonce (those in the block, and any the block made stale).
    pub fn prune(&mut self, committed: impl IntoIterator<Item = (Address, u64)>) {
        for (sender, next) in committed {
            let Some(queue) = self.by_sender.get_mut(&sender) else {
                continue;
            };
            queue.committed = queue.committed.max(next);
            let kept = queue.txs.split_off(&next);
            let stale = std::mem::replace(&mut queue.txs, kept);
            for entry in stale.into_values() {
                self.by_hash.remove(&entry.tx.hash());
                self.arrivals.remove(&entry.arrival);
                let key = (entry.tip, Reverse(entry.arrival));
                self.ready.remove(&key);
                self.future.remove(&key);
            }
            self.classify(&sender);
            self.drop_if_empty(&sender);
        }
    }

    /// Removes one transaction and every later one of the same sender (they can no longer run
    /// in order). Used when a block proposer finds it cannot be included, and to make room.
    pub fn evict(&mut self, hash: &B256) {
        let Some((sender, nonce)) = self.by_hash.get(hash).copied() else {
            return;
        };
        self.remove_from(&sender, nonce);
        self.drop_if_empty(&sender);
    }

    fn drop_if_empty(&mut self, sender: &Address) {
        if self.by_sender.get(sender).is_some_and(|q| q.txs.is_empty()) {
            self.by_sender.remove(sender);
        }
    }
}

/// What a transaction pays the proposer per gas: its tip, capped by what its fee cap leaves
/// above the base fee.
pub fn effective_tip(tx: &Transaction, base_fee: u64) -> u128 {
    let body = &tx.body;
    body.max_priority_fee_per_gas
        .min(body.max_fee_per_gas.saturating_sub(u128::from(base_fee)))
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
            future_per_sender: 1,
        });
        let alice = key(1);
        let first = pool.insert(body(0).signed(&alice), &RULES, rich()).unwrap();
        let snapshot = |pool: &Mempool| (pool.len(), pool.select(u64::MAX, usize::MAX, |_| 0));
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
            future_per_sender: 1,
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
        assert_eq!(
            full,
            TxRejection::PoolFull {
                capacity: 3,
                tip: 0
            }
        );
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

    fn tipped(nonce: u64, tip: u128) -> TxBody {
        TxBody {
            max_fee_per_gas: 10 + tip,
            max_priority_fee_per_gas: tip,
            ..body(nonce)
        }
    }

    fn picked(transactions: &[Transaction]) -> Vec<(Address, u64)> {
        transactions
            .iter()
            .map(|t| (t.sender(), t.body.nonce))
            .collect()
    }

    #[test]
    fn blocks_take_the_highest_tip_first_each_sender_in_nonce_order() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let (alice, bob, carol) = (key(1), key(2), key(3));
        pool.insert(tipped(0, 1).signed(&alice), &RULES, rich())
            .unwrap();
        pool.insert(tipped(1, 9).signed(&alice), &RULES, rich())
            .unwrap();
        pool.insert(tipped(0, 5).signed(&bob), &RULES, rich())
            .unwrap();
        pool.insert(tipped(0, 3).signed(&carol), &RULES, rich())
            .unwrap();
        let (a, b, c) = (alice.address(), bob.address(), carol.address());
        // Alice's tip-9 transaction waits for her tip-1 one, which goes last of the heads.
        assert_eq!(
            picked(&pool.select(u64::MAX, usize::MAX, |_| 0)),
            vec![(b, 0), (c, 0), (a, 0), (a, 1)]
        );
        assert_eq!(pool.select(2 * 21_000, usize::MAX, |_| 0).len(), 2);
        // Alice's committed nonce is already 1: her nonce-1 transaction leads.
        let offered = pool.select(u64::MAX, usize::MAX, |s| u64::from(*s == a));
        assert_eq!(offered[0].sender(), a);
        // A byte budget of two transactions' bytes takes two.
        let size = tipped(0, 1).signed(&alice).tx().encoded_len();
        assert_eq!(pool.select(u64::MAX, 2 * size + 1, |_| 0).len(), 2);

        // A budget of two transfers looks at two senders, however many are waiting.
        let looked_up = std::cell::Cell::new(0);
        let picked = pool.select(2 * 21_000, usize::MAX, |_| {
            looked_up.set(looked_up.get() + 1);
            0
        });
        assert_eq!((picked.len(), looked_up.get()), (2, 2));

        pool.prune([(a, 1)]);
        assert_eq!(pool.len(), 3);
        let evicted = tipped(0, 5).signed(&bob).hash();
        pool.evict(&evicted);
        assert_eq!(pool.len(), 2);
        assert!(!pool.contains(&evicted));
        assert_eq!(pool.arrivals.len(), pool.len());
        assert_eq!(pool.ready.len() + pool.future.len(), pool.len());
    }

    /// Three transactions asking for the most gas a transaction may have do not take the
    /// block's room from forty transfers: the builder counts the gas they use.
    #[test]
    fn attack_large_gas_limits_do_not_reserve_the_block() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let greedy = key(1);
        for nonce in 0..3 {
            let body = TxBody {
                gas_limit: RULES.block_gas_limit,
                ..tipped(nonce, 2)
            };
            pool.insert(body.signed(&greedy), &RULES, rich()).unwrap();
        }
        for sender in 10..50 {
            pool.insert(body(0).signed(&key(sender)), &RULES, rich())
                .unwrap();
        }
        let offered = pool.select(RULES.block_gas_limit, usize::MAX, |_| 0);
        assert_eq!(
            offered.len(),
            43,
            "every transaction is offered to the builder"
        );
        assert!(offered[..3].iter().all(|t| t.sender() == greedy.address()));
    }

    /// A wallet's burst sent over several connections arrives out of order: every transaction
    /// is kept until the gap before it fills, and the block takes them in nonce order.
    #[test]
    fn attack_a_burst_arriving_out_of_order_is_not_lost() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let wallet = key(1);
        // Eight connections, each carrying every eighth nonce; the later a connection, the
        // further its transactions fall behind (up to 49 places).
        let mut order: Vec<u64> = (0..200).collect();
        order.sort_by_key(|nonce| nonce + 7 * (7 - nonce % 8));
        for nonce in order {
            pool.insert(body(nonce).signed(&wallet), &RULES, rich())
                .unwrap_or_else(|e| panic!("nonce {nonce} refused: {e}"));
        }
        assert_eq!(pool.len(), 200);
        assert_eq!(pool.future_len(), 0);
        assert_eq!(pool.next_nonce(&wallet.address(), 0), 200);
        let nonces: Vec<u64> = pool
            .select(u64::MAX, usize::MAX, |_| 0)
            .iter()
            .map(|t| t.body.nonce)
            .collect();
        assert_eq!(nonces, (0..200).collect::<Vec<_>>());
    }

    /// Transactions behind a gap that never fills cannot run, so holding them is free for the
    /// sender: there are few of them per sender, a full pool pushes them out first, and
    /// nothing is admitted too far ahead.
    #[test]
    fn attack_unrunnable_future_nonces_cannot_pin_the_pool() {
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 6,
            per_sender: 8,
            future_per_sender: 2,
        });
        let squatter = key(1);
        pool.insert(tipped(1, 100).signed(&squatter), &RULES, rich())
            .unwrap();
        pool.insert(tipped(2, 100).signed(&squatter), &RULES, rich())
            .unwrap();
        let third = pool
            .insert(tipped(3, 100).signed(&squatter), &RULES, rich())
            .unwrap_err();
        assert!(matches!(
            third,
            TxRejection::TooManyFuture {
                next: 0,
                limit: 2,
                ..
            }
        ));
        let far = pool
            .insert(tipped(8, 100).signed(&squatter), &RULES, rich())
            .unwrap_err();
        assert!(matches!(far, TxRejection::NonceGap { got: 8, .. }));
        assert_eq!(pool.future_len(), 2);
        for sender in 10..14 {
            pool.insert(tipped(0, 1).signed(&key(sender)), &RULES, rich())
                .unwrap();
        }
        assert_eq!(pool.len(), 6);
        // Full: a ready transaction paying a tip of 1 pushes out a future one paying 100.
        pool.insert(tipped(0, 1).signed(&key(20)), &RULES, rich())
            .unwrap();
        assert_eq!((pool.len(), pool.future_len()), (6, 1));
        assert!(!pool.contains(&tipped(2, 100).signed(&squatter).hash()));
    }

    #[test]
    fn attack_a_full_pool_keeps_the_best_paying_transactions() {
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 3,
            per_sender: 4,
            future_per_sender: 1,
        });
        let cheap = key(1);
        pool.insert(tipped(0, 1).signed(&cheap), &RULES, rich())
            .unwrap();
        pool.insert(tipped(1, 7).signed(&cheap), &RULES, rich())
            .unwrap();
        pool.insert(tipped(0, 5).signed(&key(2)), &RULES, rich())
            .unwrap();
        // No better than the cheapest: refused with the tip to beat in words.
        let refused = pool
            .insert(tipped(0, 1).signed(&key(3)), &RULES, rich())
            .unwrap_err();
        assert_eq!(
            refused,
            TxRejection::PoolFull {
                capacity: 3,
                tip: 1
            }
        );
        assert!(refused.to_string().contains("raise the priority fee"));
        // Better: the cheapest goes, and with it its sender's later nonce (it cannot run).
        pool.insert(tipped(0, 2).signed(&key(3)), &RULES, rich())
            .unwrap();
        assert_eq!(pool.len(), 2);
        assert!(pool.next_nonce(&cheap.address(), 0) == 0);
        // A sender never pushes out its own earlier nonce.
        let spender = key(4);
        pool.insert(tipped(0, 1).signed(&spender), &RULES, rich())
            .unwrap();
        let own = pool
            .insert(tipped(1, 2).signed(&spender), &RULES, rich())
            .unwrap_err();
        assert!(matches!(own, TxRejection::PoolFull { .. }));
    }
}
