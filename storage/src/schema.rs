//! The database layout: column families, the stored form of an account, and the keys and
//! encoding every part of the store uses.

use borsh::{BorshDeserialize, BorshSerialize};
use revm::primitives::{Address, B256, U256};
use rocksdb::{ColumnFamily, DB};

use crate::error::{Result, StorageError};

pub(crate) const CF_ACCOUNTS: &str = "accounts";
pub(crate) const CF_STORAGE: &str = "storage";
pub(crate) const CF_CODE: &str = "code";
pub(crate) const CF_BLOCKS: &str = "blocks";
pub(crate) const CF_BLOCK_INDEX: &str = "block_index";
pub(crate) const CF_RECEIPTS: &str = "receipts";
pub(crate) const CF_TX_INDEX: &str = "tx_index";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_STATE_TREE: &str = "state_tree";
/// Consensus records: this validator's votes (its write-ahead log) and finality certificates.
pub(crate) const CF_CONSENSUS: &str = "consensus";

pub(crate) fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| StorageError::corrupt("column family", name))
}

/// An account as stored: the code lives in its own column family, addressed by `code_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct StoredAccount {
    pub(crate) nonce: u64,
    pub(crate) balance: U256,
    pub(crate) code_hash: B256,
}

pub(crate) fn encode(value: &impl BorshSerialize) -> Result<Vec<u8>> {
    borsh::to_vec(value).map_err(|e| StorageError::corrupt("record", e))
}

/// The key of a storage slot: the address, then the slot big-endian.
pub(crate) fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}
