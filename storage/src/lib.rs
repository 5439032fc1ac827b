//! # cairn-storage
//!
//! The node's database: one RocksDB instance holding the EVM state, the chain (blocks, receipts,
//! transaction index), metadata (genesis hash, head), the incremental state tree and the
//! consensus records (this validator's votes, finality certificates, validator sets).
//!
//! ## How data flows through it
//! 1. [`Store::state`] takes a consistent snapshot of the head state, a [`StateView`] that
//!    implements revm's [`DatabaseRef`](revm::DatabaseRef).
//! 2. The executor runs a block against a [`PendingState`] built on that view: reads fall
//!    through to the snapshot, writes stay in memory, ordered by key.
//! 3. [`Store::prepare_state_root`] turns the pending writes into state-tree leaf changes and
//!    computes the new state root, touching only the changed paths of the tree.
//! 4. [`Store::commit_block`] writes the block, its receipts, its transaction index, the state
//!    changes, the tree nodes and the new head in **one** RocksDB write batch: after a crash the
//!    store holds either the previous head or the new one, never a half-written block.
//!
//! A block's changes can also be detached from their snapshot as a [`ChangeSet`] and layered
//! again later ([`PendingState::with_changes`]): that is how the node executes blocks on top of
//! blocks that are not committed yet, and commits them later without running them again.
//!
//! The store does not know what a block or a receipt is: the node hands it canonical bytes.
//!
//! Stored data for storage deals lives apart, in a [`ChunkStore`] (its own RocksDB database):
//! content addressed by blake3 root, received in pieces that are each checked against the root,
//! with the outboard tree that makes a chunk's proof ([`chunk_proof`]) cheap to produce.
//!
//! ## Example
//! ```
//! use cairn_storage::{BlockCommit, PendingState, Store};
//! use revm::primitives::{Address, B256, U256};
//! use revm::DatabaseRef;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let alice = Address::repeat_byte(0xa1);
//!
//! let view = store.state();
//! let mut pending = PendingState::new(&view);
//! pending.add_balance(alice, U256::from(1_000))?;
//! let tree = store.prepare_state_root(&pending)?;
//! let commit = BlockCommit {
//!     height: 0,
//!     hash: B256::repeat_byte(1),
//!     block: b"genesis",
//!     receipts: b"",
//!     tx_hashes: &[],
//!     finality: None,
//!     next_validators: None,
//! };
//! store.commit_block(&commit, &pending, tree)?;
//! drop(pending);
//! drop(view);
//!
//! let balance = store.state().basic_ref(alice)?.map(|a| a.balance);
//! assert_eq!(balance, Some(U256::from(1_000)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod blobs;
pub mod chunk_proof;
mod error;
mod pending;
mod schema;
mod state_tree;
mod view;

use std::path::Path;

use borsh::{BorshDeserialize, BorshSerialize};
use revm::primitives::B256;
use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};

pub use blobs::{BlobStatus, ChunkStore, JobHold, MAX_JOB_BLOBS, Outboard, PieceProof};
pub use error::{Result, StorageError};
pub use pending::{ChangeSet, PendingState};
pub use state_tree::{TreeUpdate, empty_root};
pub use view::StateView;

use schema::{
    CF_ACCOUNTS, CF_BLOCK_INDEX, CF_BLOCKS, CF_CODE, CF_CONSENSUS, CF_META, CF_RECEIPTS,
    CF_STATE_TREE, CF_STORAGE, CF_TX_INDEX, cf, encode,
};

const VOTE_PREFIX: u8 = b'v';
const FINALITY_PREFIX: u8 = b'f';
const VALIDATORS_PREFIX: u8 = b'e';

const COLUMN_FAMILIES: [&str; 10] = [
    CF_ACCOUNTS,
    CF_STORAGE,
    CF_CODE,
    CF_BLOCKS,
    CF_BLOCK_INDEX,
    CF_RECEIPTS,
    CF_TX_INDEX,
    CF_META,
    CF_STATE_TREE,
    CF_CONSENSUS,
];

const META_HEAD: &[u8] = b"head";
const META_GENESIS: &[u8] = b"genesis";
const META_FORMAT: &[u8] = b"format";

/// The layout of what this build writes. A data directory written in another is refused when
/// it is opened, rather than failing later on the first record that no longer decodes.
/// 3: the state tree is Cairn's own 16-ary trie, stored by path, and the head no longer
/// carries a tree version (2026-12-01);
/// 2: a block's receipts are stored with the events of its system calls (2026-11-30);
/// 1 (no record): before.
pub const FORMAT_VERSION: u32 = 3;

/// The newest committed block and the state it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Head {
    /// Height of the head block (genesis is 0).
    pub height: u64,
    /// Hash of the head block.
    pub hash: B256,
    /// State root after the head block.
    pub state_root: B256,
}

/// Where a transaction was included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxLocation {
    /// Height of the block holding it.
    pub height: u64,
    /// Position in that block.
    pub index: u32,
}

/// One block as the node hands it to the store: canonical bytes plus what must be indexed.
#[derive(Debug, Clone, Copy)]
pub struct BlockCommit<'a> {
    /// Height of the block; must be the head's height + 1 (or 0 for genesis).
    pub height: u64,
    /// Hash of the block.
    pub hash: B256,
    /// The encoded block.
    pub block: &'a [u8],
    /// The encoded receipts of its transactions.
    pub receipts: &'a [u8],
    /// Hashes of its transactions, in block order.
    pub tx_hashes: &'a [B256],
    /// The encoded certificate that finalized the block, if one names it directly (a block
    /// finalized as the ancestor of another has none of its own).
    pub finality: Option<&'a [u8]>,
    /// For the last block of an epoch: the next epoch's number and its encoded validator set,
    /// read from the state the block leaves.
    pub next_validators: Option<(u64, &'a [u8])>,
}

fn prefixed_key(prefix: u8, number: u64) -> [u8; 9] {
    let mut key = [prefix; 9];
    key[1..].copy_from_slice(&number.to_be_bytes());
    key
}

fn key_number(key: &[u8]) -> Result<u64> {
    key.get(1..9)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::corrupt("consensus record", "key is not prefix + 8 bytes"))
}

/// The node's RocksDB database.
#[derive(Debug)]
pub struct Store {
    db: DB,
}

/// How much memory and disk a [`Store`] reserves up front.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Footprint {
    /// A node's database: RocksDB's default 64 MiB memtables, and a write-ahead log
    /// preallocated to match, so that a synced write does not also update the file's size.
    #[default]
    Node,
    /// Many short-lived databases in one process (the consensus simulation runs seven
    /// validators and opens thousands of databases, on tmpfs where preallocation commits real
    /// memory): 1 MiB memtables and so a 1 MiB log block.
    Small,
}

impl Footprint {
    /// Bytes of each column family's memtable; RocksDB preallocates the write-ahead log by this
    /// size too.
    fn write_buffer_bytes(self) -> usize {
        match self {
            Footprint::Node => 64 << 20,
            Footprint::Small => 1 << 20,
        }
    }

    /// Bytes RocksDB reserves for each new manifest file.
    fn manifest_preallocation_bytes(self) -> usize {
        match self {
            Footprint::Node => 4 << 20,
            Footprint::Small => 64 << 10,
        }
    }
}

impl Store {
    /// Opens (or creates) the database in `path`, sized for a node.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Footprint::Node)
    }

    /// Opens (or creates) the database in `path` with the given footprint.
    pub fn open_with(path: &Path, footprint: Footprint) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_manifest_preallocation_size(footprint.manifest_preallocation_bytes());
        let cf_options = |name: &str| {
            let mut cf_options = Options::default();
            cf_options.set_write_buffer_size(footprint.write_buffer_bytes());
            if name == CF_BLOCKS || name == CF_RECEIPTS || name == CF_CODE {
                // Large, write-once values: keep them out of the LSM's compaction churn.
                cf_options.set_enable_blob_files(true);
                cf_options.set_min_blob_size(4096);
            }
            cf_options
        };
        // RocksDB's own default family is named too, or it is opened with default options and
        // its 64 MiB memtable sizes the log's preallocation whatever the footprint.
        let families = std::iter::once(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
            .chain(COLUMN_FAMILIES)
            .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
        let db = DB::open_cf_descriptors(&options, path, families)?;
        let store = Self { db };
        if store.head()?.is_some() {
            let found = store.meta(META_FORMAT, "format record")?.unwrap_or(1);
            if found != FORMAT_VERSION {
                return Err(StorageError::Format {
                    found,
                    expected: FORMAT_VERSION,
                });
            }
        }
        Ok(store)
    }

    /// The head block, or `None` for an empty database.
    pub fn head(&self) -> Result<Option<Head>> {
        self.meta(META_HEAD, "head record")
    }

    /// The genesis hash this database was created with.
    pub fn genesis_hash(&self) -> Result<Option<B256>> {
        self.meta(META_GENESIS, "genesis record")
    }

    /// Fails unless the database is empty or was created for `genesis`.
    pub fn check_genesis(&self, genesis: B256) -> Result<()> {
        match self.genesis_hash()? {
            Some(stored) if stored != genesis => Err(StorageError::GenesisMismatch {
                stored: stored.to_string(),
                expected: genesis.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn meta<T: BorshDeserialize>(&self, key: &[u8], what: &'static str) -> Result<Option<T>> {
        self.db
            .get_pinned_cf(cf(&self.db, CF_META)?, key)?
            .map(|bytes| borsh::from_slice(&bytes).map_err(|e| StorageError::corrupt(what, e)))
            .transpose()
    }

    /// The hash and encoded bytes of the block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<(B256, Vec<u8>)>> {
        let Some(bytes) = self
            .db
            .get_cf(cf(&self.db, CF_BLOCKS)?, height.to_be_bytes())?
        else {
            return Ok(None);
        };
        split_hash(&bytes).map(Some)
    }

    /// The height of the block with this hash.
    pub fn block_height(&self, hash: &B256) -> Result<Option<u64>> {
        self.db
            .get_pinned_cf(cf(&self.db, CF_BLOCK_INDEX)?, hash)?
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StorageError::corrupt("block index", "height is not 8 bytes"))
            })
            .transpose()
    }

    /// The encoded receipts of the block at `height`.
    pub fn receipts(&self, height: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get_cf(cf(&self.db, CF_RECEIPTS)?, height.to_be_bytes())?)
    }

    /// Where the transaction with this hash was included.
    pub fn tx_location(&self, tx_hash: &B256) -> Result<Option<TxLocation>> {
        self.db
            .get_pinned_cf(cf(&self.db, CF_TX_INDEX)?, tx_hash)?
            .map(|b| borsh::from_slice(&b).map_err(|e| StorageError::corrupt("tx index", e)))
            .transpose()
    }

    /// A consistent, read-only view of the head state.
    pub fn state(&self) -> StateView<'_> {
        StateView::new(&self.db)
    }

    /// Computes the state root that `pending` leads to, without writing anything.
    pub fn prepare_state_root(&self, pending: &PendingState<'_>) -> Result<TreeUpdate> {
        let current_root = self.head()?.map_or_else(empty_root, |head| head.state_root);
        state_tree::update(&self.db, pending.leaf_changes()?, current_root)
    }

    /// Writes a block and everything it changed in one atomic batch, and makes it the head.
    pub fn commit_block(
        &self,
        block: &BlockCommit<'_>,
        pending: &PendingState<'_>,
        tree: TreeUpdate,
    ) -> Result<Head> {
        let head = self.head()?;
        let expected = head.map_or(0, |h| h.height + 1);
        if block.height != expected {
            return Err(StorageError::NotNextBlock {
                expected,
                got: block.height,
            });
        }
        let head_root = head.map_or_else(empty_root, |h| h.state_root);
        if tree.base_root != head_root {
            return Err(StorageError::TreeUpdateNotOnHead {
                computed_on: tree.base_root,
                head: head_root,
            });
        }
        let mut batch = WriteBatch::default();
        pending.write_state(&self.db, &mut batch)?;
        state_tree::write(&self.db, &tree, &mut batch)?;

        let height_key = block.height.to_be_bytes();
        let mut stored_block = Vec::with_capacity(32 + block.block.len());
        stored_block.extend_from_slice(block.hash.as_slice());
        stored_block.extend_from_slice(block.block);
        batch.put_cf(cf(&self.db, CF_BLOCKS)?, height_key, stored_block);
        batch.put_cf(cf(&self.db, CF_BLOCK_INDEX)?, block.hash, height_key);
        batch.put_cf(cf(&self.db, CF_RECEIPTS)?, height_key, block.receipts);
        let tx_index = cf(&self.db, CF_TX_INDEX)?;
        for (index, tx_hash) in block.tx_hashes.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| StorageError::corrupt("block", "more than 2^32 transactions"))?;
            let location = TxLocation {
                height: block.height,
                index,
            };
            batch.put_cf(tx_index, tx_hash, encode(&location)?);
        }
        let new_head = Head {
            height: block.height,
            hash: block.hash,
            state_root: tree.root,
        };
        let meta = cf(&self.db, CF_META)?;
        batch.put_cf(meta, META_HEAD, encode(&new_head)?);
        if block.height == 0 {
            batch.put_cf(meta, META_GENESIS, block.hash);
            batch.put_cf(meta, META_FORMAT, encode(&FORMAT_VERSION)?);
        }
        if let Some((epoch, validators)) = block.next_validators {
            batch.put_cf(
                cf(&self.db, CF_CONSENSUS)?,
                prefixed_key(VALIDATORS_PREFIX, epoch),
                validators,
            );
        }
        if let Some(certificate) = block.finality {
            batch.put_cf(
                cf(&self.db, CF_CONSENSUS)?,
                prefixed_key(FINALITY_PREFIX, block.height),
                certificate,
            );
        }
        self.db.write(batch)?;
        Ok(new_head)
    }

    /// The encoded validator set of an epoch, as written with the previous epoch's last block.
    pub fn validator_set(&self, epoch: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(
            cf(&self.db, CF_CONSENSUS)?,
            prefixed_key(VALIDATORS_PREFIX, epoch),
        )?)
    }

    /// The first block at or after `height` that has a finality certificate of its own: its
    /// height and the encoded certificate.
    pub fn next_finality(&self, height: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let start = prefixed_key(FINALITY_PREFIX, height);
        let mut entries = self.db.iterator_cf(
            cf(&self.db, CF_CONSENSUS)?,
            IteratorMode::From(&start, Direction::Forward),
        );
        match entries.next().transpose()? {
            Some((key, value)) if key.first() == Some(&FINALITY_PREFIX) => {
                Ok(Some((key_number(&key)?, value.into_vec())))
            }
            _ => Ok(None),
        }
    }

    /// Durably records, in one synced write, what this validator must not forget about a
    /// view before it says anything more: its vote, and with a finalize vote the notarized
    /// proposal and its notarization (after a whole-network restart nobody else may hold
    /// them). After a crash the validator reads them back, never casts a conflicting vote, and
    /// can still show others the block. `slot` tells apart the records one view can hold.
    pub fn record_consensus(&self, view: u64, records: &[(u8, &[u8])]) -> Result<()> {
        let family = cf(&self.db, CF_CONSENSUS)?;
        let mut batch = WriteBatch::default();
        for (slot, record) in records {
            let mut key = prefixed_key(VOTE_PREFIX, view).to_vec();
            key.push(*slot);
            batch.put_cf(family, key, record);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    /// Every consensus record from `view` on, in view and slot order: (view, slot, record).
    pub fn consensus_records_from(&self, view: u64) -> Result<Vec<(u64, u8, Vec<u8>)>> {
        let start = prefixed_key(VOTE_PREFIX, view);
        let mut records = Vec::new();
        for entry in self.db.iterator_cf(
            cf(&self.db, CF_CONSENSUS)?,
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (key, value) = entry?;
            if key.first() != Some(&VOTE_PREFIX) {
                break;
            }
            let Some((&slot, prefix)) = key.split_last() else {
                return Err(StorageError::corrupt("consensus record", "empty key"));
            };
            records.push((key_number(prefix)?, slot, value.into_vec()));
        }
        Ok(records)
    }

    /// Forgets the votes of views before `view` (they can no longer matter once a later view
    /// is finalized).
    pub fn prune_votes_before(&self, view: u64) -> Result<()> {
        self.db.delete_range_cf(
            cf(&self.db, CF_CONSENSUS)?,
            prefixed_key(VOTE_PREFIX, 0),
            prefixed_key(VOTE_PREFIX, view),
        )?;
        Ok(())
    }
}

fn split_hash(bytes: &[u8]) -> Result<(B256, Vec<u8>)> {
    if bytes.len() < 32 {
        return Err(StorageError::corrupt(
            "block",
            "record shorter than its hash",
        ));
    }
    let (hash, block) = bytes.split_at(32);
    Ok((B256::from_slice(hash), block.to_vec()))
}

#[cfg(test)]
mod tests {
    use revm::DatabaseRef;
    use revm::bytecode::Bytecode;
    use revm::primitives::{Address, B256, U256};
    use revm::state::{Account, AccountInfo, EvmState, EvmStorageSlot};
    use revm::{Database, DatabaseCommit};

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn commit(store: &Store, height: u64, change: impl FnOnce(&mut PendingState<'_>)) -> Head {
        let view = store.state();
        let mut pending = PendingState::new(&view);
        change(&mut pending);
        let tree = store.prepare_state_root(&pending).unwrap();
        let hash = B256::from(*blake3::hash(&height.to_be_bytes()).as_bytes());
        let tx = B256::repeat_byte(height as u8);
        let block = BlockCommit {
            height,
            hash,
            block: b"block",
            receipts: b"r",
            tx_hashes: &[tx],
            finality: Some(b"certificate"),
            next_validators: Some((1, b"validators")),
        };
        store.commit_block(&block, &pending, tree).unwrap()
    }

    fn addr(byte: u8) -> Address {
        Address::repeat_byte(byte)
    }

    #[test]
    fn reopening_keeps_head_state_blocks_and_indices() -> TestResult {
        let dir = tempfile::tempdir()?;
        let head = {
            let store = Store::open(dir.path())?;
            commit(&store, 0, |p| {
                p.add_balance(addr(1), U256::from(5)).unwrap()
            });
            commit(&store, 1, |p| {
                p.set_storage(addr(2), U256::from(7), U256::from(9))
                    .unwrap()
            })
        };
        let store = Store::open(dir.path())?;
        assert_eq!(store.head()?, Some(head));
        assert_eq!(store.genesis_hash()?, store.block(0)?.map(|b| b.0));
        let view = store.state();
        assert_eq!(
            view.basic_ref(addr(1))?.map(|a| a.balance),
            Some(U256::from(5))
        );
        assert_eq!(view.storage_ref(addr(2), U256::from(7))?, U256::from(9));
        assert_eq!(
            store.tx_location(&B256::repeat_byte(1))?,
            Some(TxLocation {
                height: 1,
                index: 0
            })
        );
        assert_eq!(store.block_height(&head.hash)?, Some(1));
        assert_eq!(store.receipts(1)?.as_deref(), Some(&b"r"[..]));
        assert_eq!(view.block_hash_ref(1)?, head.hash);
        Ok(())
    }

    #[test]
    fn blocks_must_come_in_order_and_genesis_is_checked() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let genesis = commit(&store, 0, |_| {});
        let view = store.state();
        let pending = PendingState::new(&view);
        let tree = store.prepare_state_root(&pending)?;
        let skip = BlockCommit {
            height: 5,
            hash: B256::ZERO,
            block: b"",
            receipts: b"",
            tx_hashes: &[],
            finality: None,
            next_validators: None,
        };
        let err = store.commit_block(&skip, &pending, tree).unwrap_err();
        assert!(matches!(
            err,
            StorageError::NotNextBlock {
                expected: 1,
                got: 5
            }
        ));
        store.check_genesis(genesis.hash)?;
        assert!(matches!(
            store.check_genesis(B256::repeat_byte(9)),
            Err(StorageError::GenesisMismatch { .. })
        ));
        Ok(())
    }

    /// A root prepared on one head and committed after the head moved would write tree nodes
    /// that belong to neither state: it is refused, and nothing is written.
    #[test]
    fn a_tree_update_computed_on_another_head_is_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        commit(&store, 0, |p| {
            p.add_balance(addr(1), U256::from(5)).unwrap()
        });
        let view = store.state();
        let mut stale = PendingState::new(&view);
        stale.add_balance(addr(2), U256::from(7))?;
        let stale_tree = store.prepare_state_root(&stale)?;
        let head = commit(&store, 1, |p| {
            p.add_balance(addr(3), U256::from(9)).unwrap()
        });
        let next = BlockCommit {
            height: 2,
            hash: B256::repeat_byte(2),
            block: b"",
            receipts: b"",
            tx_hashes: &[],
            finality: None,
            next_validators: None,
        };
        let err = store.commit_block(&next, &stale, stale_tree).unwrap_err();
        assert!(
            matches!(err, StorageError::TreeUpdateNotOnHead { head: h, .. } if h == head.state_root),
            "{err}"
        );
        assert_eq!(store.head()?, Some(head));
        Ok(())
    }

    /// A data directory written in another layout is refused when opened, with the reason, and
    /// not when some record first fails to decode; an empty one opens.
    #[test]
    fn a_data_directory_in_another_format_is_refused_on_open() -> TestResult {
        let dir = tempfile::tempdir()?;
        {
            let store = Store::open(dir.path())?;
            commit(&store, 0, |_| {});
        }
        Store::open(dir.path())?;
        {
            // What a build from before recorded formats leaves: no format record.
            let store = Store::open(dir.path())?;
            store.db.delete_cf(cf(&store.db, CF_META)?, META_FORMAT)?;
        }
        let refused = Store::open(dir.path())
            .err()
            .ok_or("an old format is refused")?;
        assert!(matches!(
            refused,
            StorageError::Format {
                found: 1,
                expected: FORMAT_VERSION
            }
        ));
        assert!(refused.to_string().contains("start a new --datadir"));
        let empty = tempfile::tempdir()?;
        Store::open(empty.path())?;
        Ok(())
    }

    #[test]
    fn state_root_depends_on_state_not_on_history() -> TestResult {
        // Same final state reached in one block or in three, in another order: same root.
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let one = Store::open(a.path())?;
        let head_one = commit(&one, 0, |p| {
            p.add_balance(addr(1), U256::from(3)).unwrap();
            p.set_storage(addr(2), U256::from(1), U256::from(4))
                .unwrap();
        });
        let three = Store::open(b.path())?;
        commit(&three, 0, |p| {
            p.set_storage(addr(2), U256::from(1), U256::from(4))
                .unwrap()
        });
        commit(&three, 1, |p| {
            p.set_storage(addr(2), U256::from(8), U256::from(1))
                .unwrap()
        });
        let head_three = commit(&three, 2, |p| {
            p.add_balance(addr(1), U256::from(3)).unwrap();
            // Writing zero deletes the slot (and its leaf) again; deleting an absent slot is
            // harmless.
            p.set_storage(addr(2), U256::from(8), U256::ZERO).unwrap();
            p.set_storage(addr(3), U256::from(8), U256::ZERO).unwrap();
        });
        assert_eq!(head_one.state_root, head_three.state_root);
        assert_ne!(head_one.state_root, empty_root());
        // An empty block keeps the root.
        let head_four = commit(&three, 3, |_| {});
        assert_eq!(head_four.state_root, head_three.state_root);
        let head_five = commit(&three, 4, |p| {
            p.add_balance(addr(1), U256::from(1)).unwrap()
        });
        assert_ne!(head_five.state_root, head_four.state_root);
        Ok(())
    }

    #[test]
    fn applied_writes_equal_the_same_changes_made_one_by_one() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        commit(&store, 0, |p| {
            p.add_balance(addr(1), U256::from(10)).unwrap();
            p.set_storage(addr(2), U256::from(1), U256::from(11))
                .unwrap();
            p.set_storage(addr(2), U256::from(3), U256::from(33))
                .unwrap();
            p.add_balance(addr(2), U256::from(1)).unwrap();
        });
        let info = |balance: u64| {
            Some(AccountInfo {
                balance: U256::from(balance),
                ..AccountInfo::default()
            })
        };
        let view = store.state();
        let root_of = |pending: &PendingState<'_>| -> Result<B256> {
            Ok(store.prepare_state_root(pending)?.root())
        };
        let expected = {
            let mut pending = PendingState::new(&view);
            pending.add_balance(addr(9), U256::from(1))?;
            pending.add_balance(addr(1), U256::from(5))?;
            pending.add_balance(addr(5), U256::from(7))?;
            pending.set_storage(addr(2), U256::from(2), U256::from(22))?;
            pending.set_storage(addr(5), U256::from(1), U256::from(51))?;
            pending.set_storage(addr(2), U256::from(1), U256::ZERO)?;
            root_of(&pending)?
        };
        // Unsorted on purpose; onto an empty state (built in one go) and onto one with a
        // change already (merged entry by entry).
        let accounts = [(addr(5), info(7)), (addr(1), info(15))];
        let slots = [
            (addr(2), U256::from(2), U256::from(22)),
            (addr(5), U256::from(1), U256::from(51)),
            (addr(2), U256::from(1), U256::ZERO),
        ];
        let mut onto_empty = PendingState::new(&view);
        onto_empty.apply_writes(accounts.clone(), slots, [], [])?;
        onto_empty.add_balance(addr(9), U256::from(1))?;
        let mut onto_changed = PendingState::new(&view);
        onto_changed.add_balance(addr(9), U256::from(1))?;
        onto_changed.apply_writes(accounts, slots, [], [])?;
        for pending in [&onto_empty, &onto_changed] {
            assert_eq!(root_of(pending)?, expected);
            assert_eq!(pending.storage_ref(addr(2), U256::from(1))?, U256::ZERO);
            // What no write touched still reads through to the committed state.
            assert_eq!(pending.storage_ref(addr(2), U256::from(3))?, U256::from(33));
            assert_eq!(
                pending.basic_ref(addr(2))?.map(|a| a.balance),
                Some(U256::from(1))
            );
        }
        Ok(())
    }

    #[test]
    fn destroyed_account_loses_its_storage_and_empty_accounts_are_not_stored() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let contract = addr(7);
        let before = commit(&store, 0, |p| {
            p.add_balance(addr(1), U256::from(1)).unwrap()
        });
        commit(&store, 1, |p| {
            p.set_code(contract, Bytecode::new_raw(vec![0x60, 0x00].into()))
                .unwrap();
            p.set_storage(contract, U256::from(1), U256::from(1))
                .unwrap();
            p.set_storage(contract, U256::from(2), U256::from(2))
                .unwrap();
        });
        let after = commit(&store, 2, |p| {
            let mut account = Account::from(AccountInfo::default());
            account.mark_touch();
            account.mark_selfdestruct();
            let mut touched_empty = Account::from(AccountInfo::default());
            touched_empty.mark_touch();
            let changes: EvmState = [(contract, account), (addr(9), touched_empty)]
                .into_iter()
                .collect();
            p.commit(changes);
            assert_eq!(p.storage(contract, U256::from(1)).unwrap(), U256::ZERO);
        });
        let view = store.state();
        assert_eq!(view.basic_ref(contract)?, None);
        assert_eq!(view.basic_ref(addr(9))?, None);
        assert_eq!(view.storage_ref(contract, U256::from(2))?, U256::ZERO);
        assert!(view.storage_slots(&contract)?.is_empty());
        assert_eq!(
            after.state_root, before.state_root,
            "state is back to the genesis state"
        );
        Ok(())
    }

    #[test]
    fn committed_transaction_changes_are_read_back_before_and_after_commit() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        commit(&store, 0, |p| {
            p.add_balance(addr(1), U256::from(10)).unwrap()
        });
        commit(&store, 1, |p| {
            let info = AccountInfo {
                balance: U256::from(4),
                nonce: 1,
                ..AccountInfo::default()
            };
            let mut account = Account::from(info);
            account.mark_touch();
            account.storage.insert(
                U256::from(3),
                EvmStorageSlot::new_changed(U256::ZERO, U256::from(6), Default::default()),
            );
            account.storage.insert(
                U256::from(4),
                EvmStorageSlot::new(U256::from(0), Default::default()),
            );
            p.commit([(addr(1), account)].into_iter().collect());
            assert_eq!(p.basic(addr(1)).unwrap().map(|a| a.nonce), Some(1));
            assert_eq!(p.storage(addr(1), U256::from(3)).unwrap(), U256::from(6));
        });
        let view = store.state();
        let account = view.basic_ref(addr(1))?;
        assert_eq!(
            account.map(|a| (a.nonce, a.balance)),
            Some((1, U256::from(4)))
        );
        assert_eq!(view.storage_slots(&addr(1))?, vec![U256::from(3)]);
        Ok(())
    }

    #[test]
    fn votes_and_finality_records_survive_reopening() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path())?;
            store.record_consensus(3, &[(0, b"notarize 3")])?;
            store.record_consensus(3, &[(1, b"nullify 3")])?;
            store.record_consensus(9, &[(3, b"proposal 9"), (2, b"finalize 9")])?;
            commit(&store, 0, |_| {});
        }
        let store = Store::open(dir.path())?;
        let record = |view, slot, bytes: &[u8]| (view, slot, bytes.to_vec());
        let finalized_9 = vec![record(9, 2, b"finalize 9"), record(9, 3, b"proposal 9")];
        let mut all = vec![record(3, 0, b"notarize 3"), record(3, 1, b"nullify 3")];
        all.extend(finalized_9.clone());
        assert_eq!(store.consensus_records_from(0)?, all);
        assert_eq!(store.consensus_records_from(4)?, finalized_9);
        store.prune_votes_before(9)?;
        assert_eq!(store.consensus_records_from(0)?, finalized_9);
        assert_eq!(store.next_finality(0)?, Some((0, b"certificate".to_vec())));
        assert_eq!(store.next_finality(1)?, None);
        assert_eq!(store.validator_set(1)?, Some(b"validators".to_vec()));
        assert_eq!(store.validator_set(2)?, None);
        Ok(())
    }
}
