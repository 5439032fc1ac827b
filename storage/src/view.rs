//! A consistent read-only view of the committed state.

use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::primitives::{Address, B256, KECCAK_EMPTY, StorageKey, StorageValue, U256};
use revm::state::AccountInfo;
use rocksdb::{DB, Direction, IteratorMode, Snapshot};

use crate::error::{Result, StorageError};
use crate::schema::{CF_ACCOUNTS, CF_BLOCKS, CF_CODE, CF_STORAGE, StoredAccount, cf, storage_key};

/// The head state at the moment the view was taken: later commits do not show through, so a
/// block executes (and an RPC call answers) against one state even while the head moves on.
pub struct StateView<'a> {
    db: &'a DB,
    snapshot: Snapshot<'a>,
}

impl std::fmt::Debug for StateView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView").finish_non_exhaustive()
    }
}

impl<'a> StateView<'a> {
    pub(crate) fn new(db: &'a DB) -> Self {
        Self {
            db,
            snapshot: db.snapshot(),
        }
    }

    /// The stored account, without its code.
    pub(crate) fn account(&self, address: &Address) -> Result<Option<StoredAccount>> {
        self.snapshot
            .get_cf(cf(self.db, CF_ACCOUNTS)?, address)?
            .map(|b| borsh::from_slice(&b).map_err(|e| StorageError::corrupt("account", e)))
            .transpose()
    }

    /// Every non-zero storage slot of `address`, in slot order.
    pub(crate) fn storage_slots(&self, address: &Address) -> Result<Vec<U256>> {
        let mode = IteratorMode::From(address.as_slice(), Direction::Forward);
        let mut slots = Vec::new();
        for entry in self.snapshot.iterator_cf(cf(self.db, CF_STORAGE)?, mode) {
            let (key, _) = entry?;
            if !key.starts_with(address.as_slice()) {
                break;
            }
            let slot = key
                .get(20..)
                .filter(|s| s.len() == 32)
                .ok_or_else(|| StorageError::corrupt("storage key", "not address + 32 bytes"))?;
            slots.push(U256::from_be_slice(slot));
        }
        Ok(slots)
    }
}

impl DatabaseRef for StateView<'_> {
    type Error = StorageError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>> {
        let Some(account) = self.account(&address)? else {
            return Ok(None);
        };
        let code = if account.code_hash == KECCAK_EMPTY {
            Some(Bytecode::default())
        } else {
            // Loaded lazily by revm through `code_by_hash_ref` when the account is called.
            None
        };
        Ok(Some(AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash: account.code_hash,
            code,
            ..AccountInfo::default()
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        let bytes = self
            .snapshot
            .get_cf(cf(self.db, CF_CODE)?, code_hash)?
            .ok_or_else(|| {
                StorageError::corrupt("code", format!("no code for hash {code_hash}"))
            })?;
        Bytecode::new_raw_checked(bytes.into()).map_err(|e| StorageError::corrupt("code", e))
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue> {
        let key = storage_key(&address, &index);
        match self.snapshot.get_cf(cf(self.db, CF_STORAGE)?, key)? {
            None => Ok(U256::ZERO),
            Some(bytes) if bytes.len() == 32 => Ok(U256::from_be_slice(&bytes)),
            Some(_) => Err(StorageError::corrupt(
                "storage slot",
                "value is not 32 bytes",
            )),
        }
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256> {
        let stored = self
            .snapshot
            .get_cf(cf(self.db, CF_BLOCKS)?, number.to_be_bytes())?;
        // The EVM's BLOCKHASH of an unknown block is zero, not an error.
        Ok(stored
            .and_then(|b| b.get(..32).map(B256::from_slice))
            .unwrap_or_default())
    }
}
