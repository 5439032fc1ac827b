//! The incremental Merkle commitment to the state: a Jellyfish Merkle tree hashed with blake3.
//!
//! Every account and every non-zero storage slot is one leaf, keyed by a domain-separated blake3
//! hash of its location. Updating a block touches only the paths of the leaves it changed, so the
//! cost of the root is proportional to the keys a block wrote, not to the size of the state.
//! The tree has its own version counter, advanced only by blocks that change at least one leaf
//! (jmt would otherwise copy the root for every empty block). Nodes made stale by a block are
//! deleted in the same write batch, so the database keeps the tree of the head only.

use std::collections::BTreeMap;

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};
use revm::primitives::{Address, B256, U256};
use rocksdb::{DB, WriteBatch};

use crate::error::{Result, StorageError};
use crate::schema::{CF_STATE_TREE, cf};

/// blake3 as jmt's hash function.
#[derive(Debug, Default, Clone)]
pub struct Blake3Hasher(blake3::Hasher);

impl jmt::SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Self(blake3::Hasher::new())
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

type Tree<'a> = jmt::JellyfishMerkleTree<'a, TreeStore<'a>, Blake3Hasher>;

/// Leaf key of an account.
pub fn account_key(address: &Address) -> KeyHash {
    let mut hasher = blake3::Hasher::new_derive_key("cairn state key: account v1");
    hasher.update(address.as_slice());
    KeyHash(*hasher.finalize().as_bytes())
}

/// Leaf key of a storage slot.
pub fn slot_key(address: &Address, slot: &U256) -> KeyHash {
    let mut hasher = blake3::Hasher::new_derive_key("cairn state key: storage slot v1");
    hasher.update(address.as_slice());
    hasher.update(&slot.to_be_bytes::<32>());
    KeyHash(*hasher.finalize().as_bytes())
}

/// The tree's changes for one block, computed before the block is committed so that the header
/// can carry the root, and written in the block's batch.
#[derive(Debug)]
pub struct TreeUpdate {
    /// Tree version after the block; unchanged when the block changed no leaf.
    pub(crate) version: Option<Version>,
    pub(crate) root: B256,
    pub(crate) batch: Option<jmt::storage::TreeUpdateBatch>,
}

impl TreeUpdate {
    /// The state root after the block.
    pub fn root(&self) -> B256 {
        self.root
    }
}

/// Reads tree nodes from RocksDB.
pub(crate) struct TreeStore<'a> {
    pub(crate) db: &'a DB,
}

impl TreeReader for TreeStore<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow_compat::Result<Option<Node>> {
        let key = borsh::to_vec(node_key)?;
        let Some(bytes) = self.db.get_pinned_cf(cf(self.db, CF_STATE_TREE)?, key)? else {
            return Ok(None);
        };
        Ok(Some(borsh::from_slice(&bytes)?))
    }

    /// Leaf values are not kept a second time inside the tree: the accounts and storage column
    /// families hold them, keyed by location. Only proof generation asks for values by key hash,
    /// and proofs are not served yet.
    fn get_value_option(
        &self,
        _max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow_compat::Result<Option<OwnedValue>> {
        Err(anyhow_compat::anyhow!(
            "state values are not indexed by key hash (asked for {key_hash:?})"
        ))
    }

    /// Only used to restore a tree from a snapshot, which Cairn does not do.
    fn get_rightmost_leaf(&self) -> anyhow_compat::Result<Option<(NodeKey, LeafNode)>> {
        Err(anyhow_compat::anyhow!(
            "state tree restore is not supported"
        ))
    }
}

/// jmt's reader trait speaks `anyhow`; the type stays at the boundary of this module.
mod anyhow_compat {
    pub(crate) use anyhow::{Result, anyhow};
}

/// Computes the new root for a set of leaf changes (`None` deletes the leaf) on top of the tree
/// at `current` (`None`: no tree yet), whose root is `current_root`.
pub(crate) fn update(
    db: &DB,
    changes: BTreeMap<KeyHash, Option<OwnedValue>>,
    current: Option<Version>,
    current_root: B256,
) -> Result<TreeUpdate> {
    if changes.is_empty() {
        return Ok(TreeUpdate {
            version: current,
            root: current_root,
            batch: None,
        });
    }
    let version = current.map_or(0, |v| v + 1);
    let store = TreeStore { db };
    let tree = Tree::new(&store);
    let (root, batch) = tree
        .put_value_set(changes, version)
        .map_err(|e| StorageError::StateTree(e.to_string()))?;
    Ok(TreeUpdate {
        version: Some(version),
        root: B256::from(root.0),
        batch: Some(batch),
    })
}

/// Root of a state with no leaves at all (before genesis, or a genesis without allocations).
pub fn empty_root() -> B256 {
    B256::from(*blake3::hash(b"cairn: empty state tree").as_bytes())
}

/// Adds the tree's new nodes and deletes its stale ones in the block's batch.
pub(crate) fn write(db: &DB, update: &TreeUpdate, batch: &mut WriteBatch) -> Result<()> {
    let Some(tree_batch) = &update.batch else {
        return Ok(());
    };
    let tree_cf = cf(db, CF_STATE_TREE)?;
    for (key, node) in tree_batch.node_batch.nodes() {
        let key = borsh::to_vec(key).map_err(|e| StorageError::StateTree(e.to_string()))?;
        let node = borsh::to_vec(node).map_err(|e| StorageError::StateTree(e.to_string()))?;
        batch.put_cf(tree_cf, key, node);
    }
    for stale in &tree_batch.stale_node_index_batch {
        let key =
            borsh::to_vec(&stale.node_key).map_err(|e| StorageError::StateTree(e.to_string()))?;
        batch.delete_cf(tree_cf, key);
    }
    Ok(())
}
