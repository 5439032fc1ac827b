//! The parallel executor: Block-STM (Gelashvili et al., PPoPP '23) on revm.
//!
//! Transactions run optimistically on all workers. Each run reads through a multi-version
//! memory: for every location (an account, or one storage slot) the values written by earlier
//! transactions of the block, by transaction index and incarnation. A run records what it read
//! (and from which version); afterwards it is validated: if a transaction before it has since
//! written something it read, it is aborted and runs again, and its writes become ESTIMATE
//! markers so that later readers wait for it instead of reading stale values. A scheduler hands
//! out execution and validation tasks in index order until every transaction is executed and
//! validated.
//!
//! The result is then settled in block order by the same `Tally` as the sequential executor:
//! each transaction's final journal is committed to the pending state, receipts and fees are
//! computed in order. Since every validated run read exactly what a sequential run would have
//! read, the outcome is identical, bit for bit. The cases where that argument needs more than
//! reads and writes (an account destroyed or created over existing storage, a block whose gas
//! limits overflow) are detected and the block is run sequentially instead.
//!
//! Refinements beyond the paper: a chain of transactions of one sender runs as one task (the
//! worker that executes one goes straight on to the next), and the sender's account starts as
//! an ESTIMATE of each of its transactions, so nothing runs on a stale nonce. The workers also
//! compute senders, hashes and receipts, and each collects the final writes of its shards of
//! the multi-version memory, so that little is left serial; the memory is kept from block to
//! block, and emptied by the workers once a block is settled. A block too small to gain from
//! it, or a single thread, uses the sequential executor directly, and so does a block that
//! turns out to be one chain of dependencies or of conflicts.
//!
//! ```no_run
//! # fn example(
//! #     block: &cairn_evm::execution::BlockContext,
//! #     transactions: &[cairn_primitives::Transaction],
//! #     state: &mut cairn_storage::PendingState<'_>,
//! # ) -> cairn_evm::error::Result<()> {
//! use cairn_evm::execution::Executor;
//! use cairn_evm::parallel::Parallel;
//!
//! // One worker per core; the outcomes are those of `Sequential`, always.
//! let outcomes = Parallel::new(0).execute(block, transactions, state)?;
//! # let _ = outcomes;
//! # Ok(())
//! # }
//! ```

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use alloy_primitives::map::{DefaultHashBuilder, HashMap};
use cairn_storage::{PendingState, StorageError};
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use itertools::Itertools;
use revm::bytecode::Bytecode;
use revm::context::ContextTr;
use revm::context::result::InvalidTransaction;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{Address, B256, KECCAK_EMPTY, StorageKey, StorageValue, U256};
use revm::state::AccountInfo;
use revm::{Database, DatabaseRef};
use smallvec::SmallVec;

use crate::error::{ExecutionError, Result};
use crate::execution::{
    BlockContext, ExecutionStats, Executor, Sequential, Tally, TransactError, TxOutcome, TxRun,
    evm, receipt, transact,
};
use cairn_primitives::{Receipt, Transaction};

/// A parallel run gives up, and the block runs sequentially, once more than this many runs were
/// aborted or had to wait for an earlier transaction *and* such conflicts exceed an eighth of
/// the runs started: the block is mostly one chain of conflicts, and noticing early wastes little.
pub const CONFLICTS_BEFORE_FALLBACK: usize = 32;

/// A block is checked for being one long chain of dependencies (see `BlockRun::validated`)
/// from this transaction on: earlier, a short chain says little about the block.
pub const CHAIN_CHECK_AFTER: usize = 64;

/// Blocks with fewer transactions run sequentially: spawning workers costs more than it saves.
pub const MIN_PARALLEL_TXS: usize = 16;

/// A place in the state a transaction can read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// An account's balance, nonce and code.
    Account(Address),
    /// One storage slot.
    Slot(Address, U256),
}

#[derive(Debug, Clone)]
enum Value {
    Account(Option<AccountInfo>),
    Slot(U256),
}

/// Where a read was served from: the committed state, or the write of (transaction,
/// incarnation) in this block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Storage,
    Version(usize, usize),
}

#[derive(Debug, Clone)]
enum Entry<V> {
    Estimate,
    Written { incarnation: usize, value: V },
}

enum Read<V> {
    Written(Origin, V),
    Storage,
    Blocked(usize),
}

impl<V> Read<V> {
    fn map<W>(self, f: impl FnOnce(V) -> W) -> Read<W> {
        match self {
            Read::Written(origin, value) => Read::Written(origin, f(value)),
            Read::Storage => Read::Storage,
            Read::Blocked(writer) => Read::Blocked(writer),
        }
    }
}

/// A value a run wrote.
#[derive(Debug)]
enum Write {
    Account(Address, Option<AccountInfo>),
    Slot(Address, U256, U256),
}

impl Write {
    fn location(&self) -> Location {
        match self {
            Write::Account(address, _) => Location::Account(*address),
            Write::Slot(address, slot, _) => Location::Slot(*address, *slot),
        }
    }
}

/// A concurrent map with a fast hasher (keys are addresses and slots, not attacker-chosen
/// strings that could be made to collide cheaply).
type FastMap<K, V> = DashMap<K, V, DefaultHashBuilder>;

/// One location's versions, by transaction index. Most locations are written by one
/// transaction, which this holds without allocating.
#[derive(Debug)]
struct Versions<V>(SmallVec<[(usize, Entry<V>); 1]>);

impl<V> Default for Versions<V> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

impl<V> Versions<V> {
    fn position(&self, index: usize) -> std::result::Result<usize, usize> {
        self.0.binary_search_by_key(&index, |(writer, _)| *writer)
    }

    fn insert(&mut self, index: usize, entry: Entry<V>) {
        match self.position(index) {
            Ok(at) => self.0[at].1 = entry,
            Err(at) => self.0.insert(at, (index, entry)),
        }
    }

    fn remove(&mut self, index: usize) {
        if let Ok(at) = self.position(index) {
            self.0.remove(at);
        }
    }

    /// The version of the last transaction before `index` that wrote the location.
    fn before(&self, index: usize) -> Option<&(usize, Entry<V>)> {
        let at = self.0.partition_point(|(writer, _)| *writer < index);
        at.checked_sub(1).and_then(|at| self.0.get(at))
    }

    fn last(&self) -> Option<&(usize, Entry<V>)> {
        self.0.last()
    }
}

/// How many shards the multi-version memory is split into (a power of two): enough that the
/// workers rarely want the same lock, and that each has many to collect at the end.
const SHARDS: usize = 64;

/// A key of the multi-version memory, which knows its shard.
trait Sharded: Copy + Eq + std::hash::Hash {
    /// Addresses and mapping slots are hashes, so their last bytes are spread evenly; a key
    /// crafted to crowd one shard slows the block down a little, and changes nothing else.
    fn shard(&self) -> usize;
}

impl Sharded for Address {
    fn shard(&self) -> usize {
        usize::from(self[19]) % SHARDS
    }
}

impl Sharded for (Address, U256) {
    fn shard(&self) -> usize {
        usize::from(self.0[19] ^ self.1.byte(0)) % SHARDS
    }
}

/// The versions of one kind of location (accounts, or storage slots), in shards, each behind
/// its own lock and on its own cache line.
#[derive(Debug)]
struct VersionMap<K, V> {
    shards: Box<[Shard<K, V>]>,
}

type Shard<K, V> = CachePadded<RwLock<HashMap<K, Versions<V>>>>;

impl<K, V> Default for VersionMap<K, V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(RwLock::new(HashMap::default())))
                .collect(),
        }
    }
}

impl<K: Sharded, V: Clone> VersionMap<K, V> {
    fn shard(&self, key: &K) -> &RwLock<HashMap<K, Versions<V>>> {
        &self.shards[key.shard()]
    }

    /// The shards worker `worker` of `workers` collects and empties at the end of a block.
    fn shards_of(
        &self,
        worker: usize,
        workers: usize,
    ) -> impl Iterator<Item = &RwLock<HashMap<K, Versions<V>>>> {
        self.shards
            .iter()
            .skip(worker)
            .step_by(workers)
            .map(|shard| &**shard)
    }

    fn insert(&self, key: K, index: usize, entry: Entry<V>) {
        write_lock(self.shard(&key))
            .entry(key)
            .or_default()
            .insert(index, entry);
    }

    fn remove(&self, key: &K, index: usize) {
        if let Some(versions) = write_lock(self.shard(key)).get_mut(key) {
            versions.remove(index);
        }
    }

    fn mark_estimate(&self, key: &K, index: usize) {
        if let Some(versions) = write_lock(self.shard(key)).get_mut(key) {
            versions.insert(index, Entry::Estimate);
        }
    }

    /// What transaction `index` reads at `key`, passed through `read`: the last earlier
    /// transaction's version, or the pre-block state.
    fn read<R>(&self, key: &K, index: usize, read: impl FnOnce(&V) -> R) -> Read<R> {
        let shard = read_lock(self.shard(key));
        match shard.get(key).and_then(|versions| versions.before(index)) {
            None => Read::Storage,
            Some((writer, Entry::Estimate)) => Read::Blocked(*writer),
            Some((writer, Entry::Written { incarnation, value })) => {
                Read::Written(Origin::Version(*writer, *incarnation), read(value))
            }
        }
    }

    /// Pushes onto `values` the final value of every key in the shards of worker `worker` of
    /// `workers`: what its last writer in the block wrote. False if a key was left with an
    /// ESTIMATE (a bug).
    fn final_values(&self, worker: usize, workers: usize, values: &mut Vec<(K, V)>) -> bool {
        let mut consistent = true;
        for shard in self.shards_of(worker, workers) {
            for (key, versions) in read_lock(shard).iter() {
                match versions.last() {
                    // Every transaction that wrote it wrote elsewhere on its last run.
                    None => {}
                    Some((_, Entry::Written { value, .. })) => values.push((*key, value.clone())),
                    Some((_, Entry::Estimate)) => consistent = false,
                }
            }
        }
        consistent
    }

    fn clear_shards(&self, worker: usize, workers: usize) {
        for shard in self.shards_of(worker, workers) {
            write_lock(shard).clear();
        }
    }

    fn clear(&mut self) {
        for shard in self.shards.iter_mut() {
            shard
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }
}

/// Values written by the block's transactions, per location and transaction index. It is
/// kept from block to block (see [`MvMemory::prepare`]): its tables and buffers then have their
/// size already, and emptying them costs less than freeing and allocating them again.
#[derive(Debug, Default)]
struct MvMemory {
    accounts: VersionMap<Address, Option<AccountInfo>>,
    slots: VersionMap<(Address, U256), U256>,
    /// What each transaction's last run read and wrote.
    footprints: Vec<Mutex<RunFootprint>>,
}

#[derive(Debug, Default)]
struct RunFootprint {
    reads: Vec<(Location, Origin)>,
    writes: Vec<Location>,
}

// A worker that panicked leaves the whole block failed: what it held locked is never used
// again, so a poisoned lock is simply taken.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl MvMemory {
    /// Readies the memory for a block of `transactions` whose senders form these chains
    /// (`previous[j]`: the sender's transaction before `j`), and forgets whatever the last block
    /// left in it. A sender's account is written by each of its transactions (the nonce), so it
    /// starts as an ESTIMATE of each but the sender's last: another transaction that reads it
    /// (a transfer to the sender) waits for the chain instead of reading a stale balance and
    /// being aborted.
    fn prepare(&mut self, transactions: &[Transaction], previous: &[Option<usize>]) {
        self.accounts.clear();
        self.slots.clear();
        self.footprints.truncate(transactions.len());
        for footprint in &mut self.footprints {
            let footprint = footprint.get_mut().unwrap_or_else(PoisonError::into_inner);
            footprint.reads.clear();
            footprint.writes.clear();
        }
        self.footprints
            .resize_with(transactions.len(), Mutex::default);
        for (tx, earlier) in transactions.iter().zip(previous) {
            if let Some(earlier) = *earlier {
                let sender = tx.sender();
                self.accounts.insert(sender, earlier, Entry::Estimate);
                lock(&self.footprints[earlier])
                    .writes
                    .push(Location::Account(sender));
            }
        }
    }

    /// Empties the shards of worker `worker` of `workers`, and the footprints of the
    /// transactions in `share`, once the block no longer needs them: the workers empty the
    /// memory together, so that the next block's `prepare` finds little left to do.
    fn release(&self, worker: usize, workers: usize, share: Range<usize>) {
        self.accounts.clear_shards(worker, workers);
        self.slots.clear_shards(worker, workers);
        for footprint in &self.footprints[share] {
            let mut footprint = lock(footprint);
            footprint.reads.clear();
            footprint.writes.clear();
        }
    }

    /// Adds to `settled` the final value of every location in the shards of worker `worker`
    /// of `workers`, sorted. The workers together collect each location once.
    fn final_writes(&self, worker: usize, workers: usize, settled: &mut Settled) {
        let accounts = self
            .accounts
            .final_values(worker, workers, &mut settled.accounts);
        let slots = self.slots.final_values(worker, workers, &mut settled.slots);
        settled.inconsistent |= !(accounts && slots);
        settled
            .accounts
            .sort_unstable_by_key(|(address, _)| *address);
        settled.slots.sort_unstable_by_key(|(key, _)| *key);
    }

    fn read(&self, location: &Location, index: usize) -> Read<Value> {
        match location {
            Location::Account(address) => self
                .accounts
                .read(address, index, Clone::clone)
                .map(Value::Account),
            Location::Slot(address, slot) => self
                .slots
                .read(&(*address, *slot), index, Clone::clone)
                .map(Value::Slot),
        }
    }

    /// Which version transaction `index` reads at `location` (the value is not needed).
    fn version(&self, location: &Location, index: usize) -> Read<()> {
        match location {
            Location::Account(address) => self.accounts.read(address, index, |_| ()),
            Location::Slot(address, slot) => self.slots.read(&(*address, *slot), index, |_| ()),
        }
    }

    fn remove(&self, location: &Location, index: usize) {
        match location {
            Location::Account(address) => self.accounts.remove(address, index),
            Location::Slot(address, slot) => self.slots.remove(&(*address, *slot), index),
        }
    }

    /// Stores a run's reads and writes; true if it wrote a location its previous run did not.
    fn record(
        &self,
        index: usize,
        incarnation: usize,
        reads: &[(Location, Origin)],
        writes: Vec<Write>,
    ) -> bool {
        let mut footprint = lock(&self.footprints[index]);
        let writes_location =
            |location: &Location| writes.iter().any(|w| w.location() == *location);
        for stale in footprint.writes.iter().filter(|l| !writes_location(l)) {
            self.remove(stale, index);
        }
        let wrote_new = writes
            .iter()
            .any(|write| !footprint.writes.contains(&write.location()));
        footprint.writes.clear();
        for write in writes {
            footprint.writes.push(write.location());
            match write {
                Write::Account(address, value) => {
                    let entry = Entry::Written { incarnation, value };
                    self.accounts.insert(address, index, entry);
                }
                Write::Slot(address, slot, value) => {
                    let entry = Entry::Written { incarnation, value };
                    self.slots.insert((address, slot), index, entry);
                }
            }
        }
        footprint.reads.clear();
        footprint.reads.extend_from_slice(reads);
        wrote_new
    }

    fn convert_writes_to_estimates(&self, index: usize) {
        for location in &lock(&self.footprints[index]).writes {
            match location {
                Location::Account(address) => self.accounts.mark_estimate(address, index),
                Location::Slot(address, slot) => {
                    self.slots.mark_estimate(&(*address, *slot), index)
                }
            }
        }
    }

    /// Whether every read of the transaction's last run would still read the same version.
    /// Calls `read_from` with each transaction of the block whose write it read.
    fn validate(&self, index: usize, mut read_from: impl FnMut(usize)) -> bool {
        lock(&self.footprints[index])
            .reads
            .iter()
            .all(|(location, origin)| match self.version(location, index) {
                Read::Written(current, ()) => {
                    if let Origin::Version(writer, _) = current {
                        read_from(writer);
                    }
                    current == *origin
                }
                Read::Storage => *origin == Origin::Storage,
                Read::Blocked(_) => false,
            })
    }
}

/// What one worker collects for settling the block: the final writes of its shards of the
/// memory, each list sorted, and for its share of the transactions, the accounts created and
/// the receipts, in block order.
#[derive(Debug, Default)]
struct Settled {
    accounts: Vec<(Address, Option<AccountInfo>)>,
    slots: Vec<((Address, U256), U256)>,
    created: Vec<Address>,
    receipts: Vec<std::result::Result<Receipt, InvalidTransaction>>,
    /// What each transaction read and wrote (when traced).
    footprints: Vec<Footprint>,
    /// A location was left with an ESTIMATE (a bug).
    inconsistent: bool,
    /// A transaction has no result (a bug in the scheduler).
    never_executed: bool,
}

/// Why a run stopped without a result.
#[derive(Debug, thiserror::Error)]
enum MvError {
    #[error("waits for transaction {0}")]
    Blocked(usize),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl DBErrorMarker for MvError {}

/// The state before the block's transactions, and a cache of analyzed contract code shared by
/// the workers (analysis is costly and the code of a hash never changes).
struct BaseState<'a> {
    state: &'a PendingState<'a>,
    codes: FastMap<B256, Bytecode>,
}

impl BaseState<'_> {
    fn code(&self, code_hash: B256) -> std::result::Result<Bytecode, StorageError> {
        if let Some(code) = self.codes.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = self.state.code_by_hash_ref(code_hash)?;
        self.codes.insert(code_hash, code.clone());
        Ok(code)
    }
}

/// The state as transaction `index` sees it: earlier transactions' writes, then the state
/// before the block's transactions. Records every read.
struct MvDatabase<'a> {
    memory: &'a MvMemory,
    base: &'a BaseState<'a>,
    /// This worker's cache of the pre-block state: it does not change while the block runs,
    /// and hot locations (contracts, their settings) are read by most transactions.
    cache: HashMap<Location, Value>,
    index: usize,
    reads: Vec<(Location, Origin)>,
}

impl MvDatabase<'_> {
    fn read(&mut self, location: Location) -> std::result::Result<Value, MvError> {
        match self.memory.read(&location, self.index) {
            Read::Blocked(writer) => Err(MvError::Blocked(writer)),
            Read::Written(origin, value) => {
                self.reads.push((location, origin));
                Ok(value)
            }
            Read::Storage => {
                self.reads.push((location, Origin::Storage));
                if let Some(value) = self.cache.get(&location) {
                    return Ok(value.clone());
                }
                let value = match location {
                    Location::Account(address) => {
                        let mut info = self.base.state.basic_ref(address)?;
                        if let Some(info) = info.as_mut().filter(|info| info.code.is_none()) {
                            info.code = Some(self.base.code(info.code_hash)?);
                        }
                        Value::Account(info)
                    }
                    Location::Slot(address, slot) => {
                        Value::Slot(self.base.state.storage_ref(address, slot)?)
                    }
                };
                // Contracts are read by many transactions, and so are the slots of their state
                // variables (settings, counters), which Solidity keeps at small slot numbers. A
                // plain account, or a mapping entry (a keccak-derived slot: one holder's
                // balance), is rarely read twice, and caching it costs more than it saves.
                let worth_caching = match (&location, &value) {
                    (_, Value::Account(Some(info))) => info.code_hash != KECCAK_EMPTY,
                    (Location::Slot(_, slot), _) => *slot < U256::from(u64::MAX),
                    _ => false,
                };
                if worth_caching {
                    self.cache.insert(location, value.clone());
                }
                Ok(value)
            }
        }
    }
}

impl Database for MvDatabase<'_> {
    type Error = MvError;

    fn basic(&mut self, address: Address) -> std::result::Result<Option<AccountInfo>, MvError> {
        match self.read(Location::Account(address))? {
            Value::Account(info) => Ok(info),
            Value::Slot(_) => unreachable!("account locations hold accounts"),
        }
    }

    fn code_by_hash(&mut self, code_hash: B256) -> std::result::Result<Bytecode, MvError> {
        Ok(self.base.code(code_hash)?)
    }

    fn storage(
        &mut self,
        address: Address,
        slot: StorageKey,
    ) -> std::result::Result<StorageValue, MvError> {
        match self.read(Location::Slot(address, slot))? {
            Value::Slot(value) => Ok(value),
            Value::Account(_) => unreachable!("slot locations hold slots"),
        }
    }

    fn block_hash(&mut self, number: u64) -> std::result::Result<B256, MvError> {
        Ok(self.base.state.block_hash_ref(number)?)
    }
}

/// An account as the next transaction sees it after this one (EIP-161: empty is absent).
fn visible(info: &AccountInfo) -> Option<&AccountInfo> {
    let empty = info.nonce == 0 && info.balance.is_zero() && info.code_hash == KECCAK_EMPTY;
    (!empty).then_some(info)
}

/// A run's writes, and the accounts it created.
type WriteSet = (Vec<Write>, Vec<Address>);

/// What a run changed for the transactions after it, the same changes [`PendingState`]'s
/// commit makes: `None` if the run did something this analysis does not cover (a destroyed
/// account), and the accounts it created.
fn write_set(run: &TxRun, codes: &FastMap<B256, Bytecode>) -> Option<WriteSet> {
    let Ok((_, state)) = run else {
        return Some((Vec::new(), Vec::new()));
    };
    let mut writes = Vec::new();
    let mut created = Vec::new();
    for (address, account) in state {
        if !account.is_touched() {
            continue;
        }
        if account.is_selfdestructed() {
            return None;
        }
        if account.is_created() {
            created.push(*address);
        }
        let before = if account.is_loaded_as_not_existing() {
            None
        } else {
            Some(account.original_info())
        };
        let after = visible(&account.info);
        if after != before.as_ref().and_then(visible) || account.is_created() {
            if let Some(code) = after
                .and_then(|info| info.code.clone())
                .filter(|_| account.info.code_hash != KECCAK_EMPTY)
            {
                codes.entry(account.info.code_hash).or_insert(code);
            }
            let mut info = after.cloned();
            if let Some(info) = &mut info {
                info.account_id = None;
            }
            writes.push(Write::Account(*address, info));
        }
        for (slot, value) in account.changed_storage_slots() {
            writes.push(Write::Slot(*address, *slot, value.present_value));
        }
    }
    Some((writes, created))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    /// Aborted by validation, or suspended until the transaction it waits for has executed.
    Aborting,
}

#[derive(Debug, Clone, Copy)]
enum Task {
    Execute(usize, usize),
    Validate(usize, usize),
}

/// Hands out execution and validation tasks (the paper's Algorithms 4 and 5), with one
/// addition: a chain of transactions of one sender runs as one task. Each transaction of the
/// chain but the first starts suspended on the one before it, and the worker that executes a
/// transaction goes straight on to the next of its chain: the chain never waits in the queue,
/// never runs on a stale nonce, and costs no conflict.
struct Scheduler {
    len: usize,
    /// For each transaction, the same sender's next transaction in the block.
    chain_next: Vec<Option<usize>>,
    // Each counter on a cache line of its own: the workers change them all the time, and
    // `done` is read before every task.
    execution_idx: CachePadded<AtomicUsize>,
    validation_idx: CachePadded<AtomicUsize>,
    decrease_cnt: CachePadded<AtomicUsize>,
    num_active_tasks: CachePadded<AtomicUsize>,
    done: CachePadded<AtomicBool>,
    transactions: Vec<Mutex<TxSchedule>>,
}

/// A transaction's place in the schedule. One lock guards it all: the status and the
/// transactions waiting for it change together.
struct TxSchedule {
    incarnation: usize,
    status: Status,
    /// Transactions suspended until this one has executed.
    dependents: Vec<usize>,
}

impl Scheduler {
    /// A scheduler for a block whose transactions form these sender chains (`previous[j]`: the
    /// sender's transaction before `j`).
    fn new(previous: &[Option<usize>]) -> Self {
        let len = previous.len();
        let mut chain_next = vec![None; len];
        let mut transactions: Vec<TxSchedule> = Vec::with_capacity(len);
        for (index, earlier) in previous.iter().enumerate() {
            let status = match *earlier {
                Some(earlier) => {
                    chain_next[earlier] = Some(index);
                    transactions[earlier].dependents.push(index);
                    Status::Aborting
                }
                None => Status::ReadyToExecute,
            };
            transactions.push(TxSchedule {
                incarnation: 0,
                status,
                dependents: Vec::new(),
            });
        }
        Self {
            len,
            chain_next,
            execution_idx: CachePadded::default(),
            validation_idx: CachePadded::default(),
            decrease_cnt: CachePadded::default(),
            num_active_tasks: CachePadded::default(),
            done: CachePadded::default(),
            transactions: transactions.into_iter().map(Mutex::new).collect(),
        }
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Stops every worker (on a fatal error).
    fn halt(&self) {
        self.done.store(true, Ordering::Release);
    }

    fn decrease_execution_idx(&self, target: usize) {
        self.execution_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn decrease_validation_idx(&self, target: usize) {
        self.validation_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(Ordering::SeqCst);
        let execution = self.execution_idx.load(Ordering::SeqCst);
        let validation = self.validation_idx.load(Ordering::SeqCst);
        if execution.min(validation) >= self.len
            && self.num_active_tasks.load(Ordering::SeqCst) == 0
            && observed == self.decrease_cnt.load(Ordering::SeqCst)
        {
            self.done.store(true, Ordering::Release);
        }
    }

    fn try_incarnate(&self, index: usize) -> Option<Task> {
        if index < self.len {
            let mut tx = lock(&self.transactions[index]);
            if tx.status == Status::ReadyToExecute {
                tx.status = Status::Executing;
                return Some(Task::Execute(index, tx.incarnation));
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    fn next_version_to_execute(&self) -> Option<Task> {
        if self.execution_idx.load(Ordering::SeqCst) >= self.len {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let index = self.execution_idx.fetch_add(1, Ordering::SeqCst);
        self.try_incarnate(index)
    }

    fn next_version_to_validate(&self) -> Option<Task> {
        if self.validation_idx.load(Ordering::SeqCst) >= self.len {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let index = self.validation_idx.fetch_add(1, Ordering::SeqCst);
        if index < self.len {
            let tx = lock(&self.transactions[index]);
            if tx.status == Status::Executed {
                return Some(Task::Validate(index, tx.incarnation));
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    fn next_task(&self) -> Option<Task> {
        if self.validation_idx.load(Ordering::SeqCst) < self.execution_idx.load(Ordering::SeqCst) {
            self.next_version_to_validate()
        } else {
            self.next_version_to_execute()
        }
    }

    /// Suspends `index` until `blocking` has executed; false if it already has (run again now).
    fn add_dependency(&self, index: usize, blocking: usize) -> bool {
        // Locks are taken lower index first, here and everywhere.
        let mut blocking = lock(&self.transactions[blocking]);
        if blocking.status == Status::Executed {
            return false;
        }
        lock(&self.transactions[index]).status = Status::Aborting;
        blocking.dependents.push(index);
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        true
    }

    /// Starts the transaction's next incarnation: `status` is what it is doing.
    fn incarnate(&self, index: usize, status: Status) -> usize {
        let mut tx = lock(&self.transactions[index]);
        tx.incarnation += 1;
        tx.status = status;
        tx.incarnation
    }

    /// Marks a run executed and wakes what waited for it. Pushes the caller's next tasks onto
    /// `next` (popped last first): the sender's next transaction if it waited for this one,
    /// then this run's validation if the validation sweep has already passed it.
    fn finish_execution(
        &self,
        index: usize,
        incarnation: usize,
        wrote_new_location: bool,
        next: &mut Vec<Task>,
    ) {
        let dependents = {
            let mut tx = lock(&self.transactions[index]);
            tx.status = Status::Executed;
            std::mem::take(&mut tx.dependents)
        };
        let mut first_resumed = None;
        let mut tasks = 0;
        for dependent in dependents {
            if self.chain_next[index] == Some(dependent) {
                let incarnation = self.incarnate(dependent, Status::Executing);
                next.push(Task::Execute(dependent, incarnation));
                tasks += 1;
            } else {
                self.incarnate(dependent, Status::ReadyToExecute);
                first_resumed = Some(first_resumed.map_or(dependent, |f: usize| f.min(dependent)));
            }
        }
        if let Some(first) = first_resumed {
            self.decrease_execution_idx(first);
        }
        if self.validation_idx.load(Ordering::SeqCst) > index {
            if wrote_new_location {
                self.decrease_validation_idx(index);
            } else {
                next.push(Task::Validate(index, incarnation));
                tasks += 1;
            }
        }
        // The finished task's slot passes to the first task handed on.
        match tasks {
            0 => self.num_active_tasks.fetch_sub(1, Ordering::SeqCst),
            2 => self.num_active_tasks.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }

    fn try_validation_abort(&self, index: usize, incarnation: usize) -> bool {
        let mut tx = lock(&self.transactions[index]);
        if (tx.incarnation, tx.status) == (incarnation, Status::Executed) {
            tx.status = Status::Aborting;
            return true;
        }
        false
    }

    fn finish_validation(&self, index: usize, aborted: bool) -> Option<Task> {
        if aborted {
            self.incarnate(index, Status::ReadyToExecute);
            self.decrease_validation_idx(index + 1);
            if self.execution_idx.load(Ordering::SeqCst) > index {
                if let Some(task) = self.try_incarnate(index) {
                    return Some(task);
                }
                // try_incarnate already gave the task slot back.
                return None;
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }
}

/// Per-transaction results of the latest run (the journal is not kept: the final writes are
/// in the multi-version memory).
struct Runs {
    runs: Vec<Mutex<Option<RunResult>>>,
    /// Each transaction's sender, computed by the worker that first runs it: the hashing is
    /// then spread over the workers like the execution.
    senders: Vec<OnceLock<Address>>,
    /// The longest chain of transactions, each reading what the one before wrote, that ends
    /// at each transaction, as of its last successful validation.
    depths: Vec<AtomicUsize>,
    /// The run was given up (something it does not cover, or too many conflicts): the block
    /// runs sequentially.
    abandoned: AtomicBool,
    /// Conflicts so far: runs aborted by validation, or suspended to wait for an earlier one.
    conflicts: AtomicUsize,
    /// Runs started so far (on a cache line of its own: every run changes it).
    executions: CachePadded<AtomicUsize>,
}

/// What a transaction's run left for settling the block. The receipt is built by the worker
/// (it depends only on the run), all but its cumulative gas.
struct RunResult {
    receipt: std::result::Result<Receipt, InvalidTransaction>,
    /// Accounts the run created.
    created: Vec<Address>,
}

/// One block's parallel run.
struct BlockRun<'a> {
    block: &'a BlockContext,
    transactions: &'a [Transaction],
    threads: usize,
    /// Whether each transaction's footprint is kept for the caller.
    trace: bool,
    base: BaseState<'a>,
    /// Code deployed by the block's transactions.
    new_code: FastMap<B256, Bytecode>,
    conflict_fallback: bool,
    memory: &'a MvMemory,
    scheduler: Scheduler,
    results: Runs,
    failure: Mutex<Option<ExecutionError>>,
}

/// Halts the scheduler when a worker unwinds from a panic: the other workers would otherwise
/// wait forever for the task it held, and the panic would never reach the caller.
struct HaltOnPanic<'s>(&'s Scheduler);

impl Drop for HaltOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.halt();
        }
    }
}

type WorkerEvm<'a> = revm::handler::MainnetEvm<revm::handler::MainnetContext<MvDatabase<'a>>>;

impl<'a> BlockRun<'a> {
    /// The transactions whose receipts worker `worker` collects.
    fn share(&self, worker: usize) -> Range<usize> {
        let len = self.transactions.len();
        let share_len = len.div_ceil(self.threads);
        let start = (worker * share_len).min(len);
        start..(start + share_len).min(len)
    }

    /// Runs tasks until the block is done, then, if it converged, collects its part of what
    /// the block leaves to settle: the final writes of its shards of the memory, the receipts
    /// of its share of the transactions.
    fn worker(&'a self, worker: usize) -> Settled {
        let _halt_on_panic = HaltOnPanic(&self.scheduler);
        // One EVM per worker, reused for every run: only the transaction and the reader change.
        let db = MvDatabase {
            memory: self.memory,
            base: &self.base,
            cache: HashMap::default(),
            index: 0,
            reads: Vec::new(),
        };
        let mut evm = evm(db, self.block);
        // Tasks this worker was handed on by the last one, taken before asking the scheduler.
        let mut next = Vec::with_capacity(2);
        while !self.scheduler.done() {
            match next.pop().or_else(|| self.scheduler.next_task()) {
                Some(Task::Execute(index, incarnation)) => {
                    self.execute(&mut evm, index, incarnation, &mut next)
                }
                Some(Task::Validate(index, incarnation)) => {
                    next.extend(self.validate(index, incarnation))
                }
                None => {}
            }
        }
        let converged =
            !self.results.abandoned.load(Ordering::Acquire) && lock(&self.failure).is_none();
        let mut settled = Settled::default();
        if converged {
            let share = self.share(worker);
            self.memory.final_writes(worker, self.threads, &mut settled);
            for run in &self.results.runs[share.clone()] {
                match lock(run).take() {
                    Some(run) => {
                        settled.receipts.push(run.receipt);
                        settled.created.extend(run.created);
                    }
                    None => settled.never_executed = true,
                }
            }
            if self.trace {
                settled.footprints = self.memory.footprints[share.clone()]
                    .iter()
                    .map(|footprint| {
                        let footprint = lock(footprint);
                        Footprint {
                            reads: footprint
                                .reads
                                .iter()
                                .map(|(location, _)| *location)
                                .collect(),
                            writes: footprint.writes.clone(),
                        }
                    })
                    .collect();
            }
            self.memory.release(worker, self.threads, share);
        }
        settled
    }

    /// Counts a conflict; once conflicts are a large share of the runs, the block is mostly one
    /// chain of conflicts: going on wastes more than it saves, so the sequential executor takes
    /// over (same result, by construction).
    fn conflict(&self) {
        let conflicts = self.results.conflicts.fetch_add(1, Ordering::Relaxed) + 1;
        let executions = self.results.executions.load(Ordering::Relaxed);
        if self.conflict_fallback
            && conflicts > CONFLICTS_BEFORE_FALLBACK
            && conflicts * 8 > executions
        {
            self.abandon();
        }
    }

    /// Records the depth of a validated transaction: one more than the deepest transaction it
    /// read from. Once the transactions validated so far form one chain for the most part (the
    /// chain ending at `index` holds over three quarters of them), the block is a sequence of
    /// dependencies that no number of workers can shorten, and it is handed to the sequential
    /// executor. This notices a block like one shared counter after a few dozen transactions,
    /// even while the workers happen to run it in order and conflicts stay rare.
    fn validated(&self, index: usize, deepest_read: usize) {
        let depth = deepest_read + 1;
        self.results.depths[index].store(depth, Ordering::Relaxed);
        if self.conflict_fallback && index >= CHAIN_CHECK_AFTER && depth * 4 > index * 3 {
            self.abandon();
        }
    }

    /// Gives the block up: the sequential executor runs it instead (same result).
    fn abandon(&self) {
        self.results.abandoned.store(true, Ordering::Release);
        self.scheduler.halt();
    }

    fn fail(&self, error: ExecutionError) {
        lock(&self.failure).get_or_insert(error);
        self.scheduler.halt();
    }

    fn execute(
        &self,
        evm: &mut WorkerEvm<'a>,
        index: usize,
        incarnation: usize,
        next: &mut Vec<Task>,
    ) {
        self.results.executions.fetch_add(1, Ordering::Relaxed);
        loop {
            let db = evm.ctx.db_mut();
            db.index = index;
            db.reads.clear();
            let tx = &self.transactions[index];
            let sender = *self.results.senders[index].get_or_init(|| tx.sender());
            let run = transact(evm, tx, sender);
            let run = match run {
                Ok(run) => run,
                Err(TransactError::Database(MvError::Blocked(blocking))) => {
                    if self.scheduler.add_dependency(index, blocking) {
                        self.conflict();
                        return;
                    }
                    continue;
                }
                Err(TransactError::Database(MvError::Storage(e))) => {
                    self.fail(e.into());
                    return;
                }
                Err(TransactError::Evm(message)) => {
                    self.fail(ExecutionError::Evm { detail: message });
                    return;
                }
            };
            let Some((writes, created)) = write_set(&run, &self.new_code) else {
                // Outside what the analysis covers: the block will run sequentially.
                self.abandon();
                return;
            };
            let receipt = run.map(|(result, _)| receipt(self.block, tx, tx.hash(), result));
            *lock(&self.results.runs[index]) = Some(RunResult { receipt, created });
            let reads = &evm.ctx.db().reads;
            let wrote_new = self.memory.record(index, incarnation, reads, writes);
            self.scheduler
                .finish_execution(index, incarnation, wrote_new, next);
            return;
        }
    }

    fn validate(&self, index: usize, incarnation: usize) -> Option<Task> {
        let mut deepest_read = 0;
        let depths = &self.results.depths;
        let valid = self.memory.validate(index, |writer| {
            deepest_read = deepest_read.max(depths[writer].load(Ordering::Relaxed));
        });
        if valid {
            self.validated(index, deepest_read);
        }
        let aborted = !valid && self.scheduler.try_validation_abort(index, incarnation);
        if aborted {
            self.memory.convert_writes_to_estimates(index);
            self.conflict();
        }
        self.scheduler.finish_validation(index, aborted)
    }
}

/// The Block-STM executor.
#[derive(Debug, Clone)]
pub struct Parallel {
    threads: usize,
    /// Whether a block full of conflicts is handed to the sequential executor early.
    conflict_fallback: bool,
    /// How the blocks ran, shared by the clones.
    counts: Arc<BlockCounts>,
    /// The multi-version memory, kept between blocks.
    spare_memory: Arc<Mutex<Option<MvMemory>>>,
}

/// Blocks by how they ran (see [`ExecutionStats`]).
#[derive(Debug, Default)]
struct BlockCounts {
    parallel: AtomicU64,
    handed_over: AtomicU64,
    small: AtomicU64,
}

impl Parallel {
    /// An executor with `threads` workers; 0 means one per available core.
    pub fn new(threads: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        } else {
            threads
        };
        Self {
            threads,
            conflict_fallback: true,
            counts: Arc::default(),
            spare_memory: Arc::default(),
        }
    }

    /// The same executor, running even a block full of conflicts to the end with Block-STM
    /// instead of handing it to the sequential executor: for tests that exercise the machinery
    /// where it is hardest. The outcome is the same either way; only the work differs.
    pub fn exhaustive(self) -> Self {
        Self {
            conflict_fallback: false,
            ..self
        }
    }

    /// The number of workers.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs the block with Block-STM only, and returns what each transaction's final run read
    /// and wrote (for measuring the block's dependency structure) and how many runs it took;
    /// `None` if the block is one Block-STM leaves to the sequential executor.
    pub fn execute_traced(
        &self,
        block: &BlockContext,
        transactions: &[Transaction],
        state: &mut PendingState<'_>,
    ) -> Result<Option<TracedRun>> {
        self.run(block, transactions, state, true)
    }

    fn run(
        &self,
        block: &BlockContext,
        transactions: &[Transaction],
        state: &mut PendingState<'_>,
        trace: bool,
    ) -> Result<Option<TracedRun>> {
        let chains = sender_chains(transactions);
        // A block running at the same time on a clone of this executor gets memory of its own.
        let mut memory = lock(&self.spare_memory).take().unwrap_or_default();
        memory.prepare(transactions, &chains);
        let result = self.run_in(&memory, &chains, block, transactions, state, trace);
        *lock(&self.spare_memory) = Some(memory);
        result
    }

    /// Runs the block with Block-STM in `memory`, prepared for it.
    fn run_in(
        &self,
        memory: &MvMemory,
        chains: &[Option<usize>],
        block: &BlockContext,
        transactions: &[Transaction],
        state: &mut PendingState<'_>,
        trace: bool,
    ) -> Result<Option<TracedRun>> {
        let run = BlockRun {
            block,
            transactions,
            threads: self.threads,
            trace,
            memory,
            base: BaseState {
                state: &*state,
                codes: FastMap::with_hasher(DefaultHashBuilder::default()),
            },
            new_code: FastMap::with_hasher(DefaultHashBuilder::default()),
            conflict_fallback: self.conflict_fallback,
            scheduler: Scheduler::new(chains),
            results: Runs {
                runs: (0..transactions.len()).map(|_| Mutex::new(None)).collect(),
                senders: (0..transactions.len()).map(|_| OnceLock::new()).collect(),
                depths: (0..transactions.len())
                    .map(|_| AtomicUsize::new(0))
                    .collect(),
                abandoned: AtomicBool::new(false),
                conflicts: AtomicUsize::new(0),
                executions: CachePadded::default(),
            },
            failure: Mutex::new(None),
        };
        let mut shares = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..self.threads)
                .map(|worker| {
                    let run = &run;
                    scope.spawn(move || run.worker(worker))
                })
                .collect();
            // The calling thread is the first worker: it is running already, where a new thread
            // may take a while to be scheduled.
            let mut shares = vec![run.worker(0)];
            shares.extend(helpers.into_iter().map(|helper| {
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }));
            shares
        });
        if let Some(error) = lock(&run.failure).take() {
            return Err(error);
        }
        if run.results.abandoned.load(Ordering::Acquire) {
            return Ok(None);
        }
        if shares.iter().any(|share| share.never_executed) {
            return Err(ExecutionError::Invariant(
                "a transaction was never executed",
            ));
        }
        if shares.iter().any(|share| share.inconsistent) {
            return Err(ExecutionError::Invariant(
                "a location was left without a final value",
            ));
        }
        let created: Vec<Address> = shares
            .iter_mut()
            .flat_map(|share| std::mem::take(&mut share.created))
            .collect();
        // A created account over existing storage would read that storage as cleared in a
        // sequential run but not here.
        for address in &created {
            if run.base.state.has_storage(address)? {
                return Ok(None);
            }
        }
        let executions = run.results.executions.load(Ordering::Relaxed);
        let conflicts = run.results.conflicts.load(Ordering::Relaxed);
        let new_code: Vec<(B256, Bytecode)> = run.new_code.into_iter().collect();
        let mut tally = Tally::new(block, transactions.len());
        let receipts = shares
            .iter_mut()
            .flat_map(|share| std::mem::take(&mut share.receipts));
        for (tx, receipt) in transactions.iter().zip(receipts) {
            if !tally.fits(tx) {
                // The sequential rule depends on the gas used before: not covered here.
                return Ok(None);
            }
            match receipt {
                Ok(receipt) => tally.include(tx, receipt),
                Err(invalid) => tally.exclude(invalid.into()),
            }
        }
        // Each share's writes are sorted: merged on the way in, they come in order.
        let mut accounts = Vec::with_capacity(shares.len());
        let mut slots = Vec::with_capacity(shares.len());
        let mut footprints = Vec::new();
        for share in shares {
            accounts.push(share.accounts);
            slots.push(share.slots);
            footprints.extend(share.footprints);
        }
        let accounts = accounts.into_iter().kmerge_by(|a, b| a.0 < b.0);
        let slots = slots
            .into_iter()
            .kmerge_by(|a, b| a.0 < b.0)
            .map(|((address, slot), value)| (address, slot, value));
        state.apply_writes(accounts, slots, created, new_code)?;
        let outcomes = tally.finish(state)?;
        Ok(Some(TracedRun {
            outcomes,
            footprints,
            executions,
            conflicts,
        }))
    }
}

/// For each transaction, the same sender's transaction just before it in the block. Senders
/// are told apart by [`Transaction::sender_key`], so nothing is hashed here.
fn sender_chains(transactions: &[Transaction]) -> Vec<Option<usize>> {
    let mut last: HashMap<[u8; 32], usize> = HashMap::default();
    transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| last.insert(tx.sender_key(), index))
        .collect()
}

/// A block's Block-STM run, with what it took.
#[derive(Debug, Clone)]
pub struct TracedRun {
    /// Each transaction's outcome, as [`Executor::execute`] returns them.
    pub outcomes: Vec<TxOutcome>,
    /// What each transaction's final run read and wrote (empty unless traced).
    pub footprints: Vec<Footprint>,
    /// Runs started: one per transaction, plus every re-execution and every run that stopped
    /// to wait for an earlier transaction.
    pub executions: usize,
    /// Runs aborted by validation or suspended on an earlier transaction.
    pub conflicts: usize,
}

/// What one transaction read and wrote.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    /// Locations read.
    pub reads: Vec<Location>,
    /// Locations written.
    pub writes: Vec<Location>,
}

/// The block's dependency bound W/L: total work over the work of the longest chain of
/// transactions each of which reads something the one before it wrote (work = gas). No
/// scheduler can run the block faster than W/L times a single core.
pub fn dependency_bound(footprints: &[Footprint], gas: &[u64]) -> f64 {
    let mut last_writer = std::collections::HashMap::new();
    let mut chain = vec![0u64; footprints.len()];
    for (index, footprint) in footprints.iter().enumerate() {
        let before = footprint
            .reads
            .iter()
            .filter_map(|l| last_writer.get(l))
            .map(|&w| chain[w])
            .max();
        chain[index] = gas[index] + before.unwrap_or(0);
        for location in &footprint.writes {
            last_writer.insert(*location, index);
        }
    }
    let longest = chain.iter().copied().max().unwrap_or(0);
    if longest == 0 {
        1.0
    } else {
        gas.iter().sum::<u64>() as f64 / longest as f64
    }
}

impl Executor for Parallel {
    fn execute(
        &self,
        block: &BlockContext,
        transactions: &[Transaction],
        state: &mut PendingState<'_>,
    ) -> Result<Vec<TxOutcome>> {
        let count = |counter: &AtomicU64| counter.fetch_add(1, Ordering::Relaxed);
        if self.threads <= 1 || transactions.len() < MIN_PARALLEL_TXS {
            count(&self.counts.small);
            return Sequential.execute(block, transactions, state);
        }
        // A failed attempt commits nothing: the pending state is written only after the whole
        // block converged.
        match self.run(block, transactions, state, false)? {
            Some(run) => {
                count(&self.counts.parallel);
                Ok(run.outcomes)
            }
            None => {
                count(&self.counts.handed_over);
                Sequential.execute(block, transactions, state)
            }
        }
    }

    fn stats(&self) -> ExecutionStats {
        ExecutionStats {
            threads: self.threads,
            parallel_blocks: self.counts.parallel.load(Ordering::Relaxed),
            handed_over_blocks: self.counts.handed_over.load(Ordering::Relaxed),
            small_blocks: self.counts.small.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_kept_in_transaction_order() {
        let written = |incarnation| Entry::Written {
            incarnation,
            value: U256::from(incarnation),
        };
        let mut versions = Versions::default();
        assert!(versions.before(5).is_none());
        versions.insert(7, written(0));
        versions.insert(2, written(1));
        versions.insert(4, Entry::Estimate);
        assert!(versions.before(2).is_none());
        assert!(matches!(
            versions.before(3),
            Some((2, Entry::Written { incarnation: 1, .. }))
        ));
        assert!(matches!(versions.before(7), Some((4, Entry::Estimate))));
        versions.insert(4, written(2));
        assert!(matches!(
            versions.before(7),
            Some((4, Entry::Written { incarnation: 2, .. }))
        ));
        assert!(matches!(versions.last(), Some((7, _))));
        versions.remove(7);
        versions.remove(9);
        assert!(matches!(versions.last(), Some((4, _))));
        assert!(matches!(versions.before(100), Some((4, _))));
    }
}
