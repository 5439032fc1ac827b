//! State changes of a block in progress, layered over a [`StateView`].

use std::collections::BTreeMap;

use revm::bytecode::Bytecode;
use revm::primitives::{Address, B256, KECCAK_EMPTY, StorageKey, StorageValue, U256};
use revm::state::{AccountInfo, EvmState};
use revm::{Database, DatabaseCommit, DatabaseRef};
use rocksdb::{DB, WriteBatch};

use crate::error::{Result, StorageError};
use crate::schema::{CF_ACCOUNTS, CF_CODE, CF_STORAGE, StoredAccount, cf, encode, storage_key};
use crate::state_tree::{LeafKey, account_key, slot_key};
use crate::view::StateView;

/// What a block did to one account so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PendingAccount {
    /// `None`: the account does not exist (never did, or was destroyed).
    info: Option<AccountInfo>,
    /// Slots written in this block.
    storage: BTreeMap<U256, U256>,
    /// The account was created or destroyed in this block: its slots on disk no longer count.
    storage_cleared: bool,
}

/// Changes detached from the snapshot they were made over, to be layered again later with
/// [`PendingState::with_changes`]: the accounts one block touched, each with its whole state
/// after that block (absolute values, not deltas), and the code it deployed. Layered in block
/// order over the committed state at the first block's parent, the sets of consecutive blocks
/// give the state after the last one.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    accounts: BTreeMap<Address, PendingAccount>,
    code: BTreeMap<B256, Bytecode>,
}

impl ChangeSet {
    /// The changes of consecutive blocks as one set, oldest first: a later block's entry for an
    /// account replaces an earlier one's, since it holds the account's whole state.
    pub fn fold<'c>(sets: impl IntoIterator<Item = &'c ChangeSet>) -> ChangeSet {
        let mut folded = ChangeSet::default();
        for set in sets {
            folded
                .accounts
                .extend(set.accounts.iter().map(|(a, e)| (*a, e.clone())));
            folded
                .code
                .extend(set.code.iter().map(|(h, c)| (*h, c.clone())));
        }
        folded
    }

    /// Accounts the set touches.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether it touches nothing.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.code.is_empty()
    }
}

/// The writes of a block in progress, in memory and ordered by key, over the committed state.
///
/// It is revm's [`Database`] for executing the block's transactions one after another
/// ([`DatabaseCommit`] folds each transaction's changes in), and afterwards the exact set of
/// changes that [`Store::commit_block`](crate::Store::commit_block) writes.
#[derive(Debug)]
pub struct PendingState<'a> {
    view: &'a StateView<'a>,
    accounts: BTreeMap<Address, PendingAccount>,
    code: BTreeMap<B256, Bytecode>,
}

impl<'a> PendingState<'a> {
    /// An empty change set over `view`.
    pub fn new(view: &'a StateView<'a>) -> Self {
        Self {
            view,
            accounts: BTreeMap::new(),
            code: BTreeMap::new(),
        }
    }

    /// Layers earlier changes over `view` (see [`ChangeSet`] for when that is right).
    pub fn with_changes(view: &'a StateView<'a>, changes: ChangeSet) -> Self {
        Self {
            view,
            accounts: changes.accounts,
            code: changes.code,
        }
    }

    /// What changed since the state was `before` (the set it was made
    /// [`with`](PendingState::with_changes)), detached from the snapshot.
    pub fn changes_since(&self, before: &ChangeSet) -> ChangeSet {
        ChangeSet {
            accounts: self
                .accounts
                .iter()
                .filter(|(address, account)| before.accounts.get(*address) != Some(*account))
                .map(|(address, account)| (*address, account.clone()))
                .collect(),
            code: self
                .code
                .iter()
                .filter(|(hash, _)| !before.code.contains_key(*hash))
                .map(|(hash, code)| (*hash, code.clone()))
                .collect(),
        }
    }

    /// The committed state underneath.
    pub fn view(&self) -> &'a StateView<'a> {
        self.view
    }

    fn account_mut(&mut self, address: Address) -> Result<&mut PendingAccount> {
        if !self.accounts.contains_key(&address) {
            let info = self.view.basic_ref(address)?;
            self.accounts.insert(
                address,
                PendingAccount {
                    info,
                    ..PendingAccount::default()
                },
            );
        }
        self.accounts
            .get_mut(&address)
            .ok_or_else(|| StorageError::corrupt("pending state", "account vanished"))
    }

    /// Adds `amount` to an account's balance, creating the account if needed (genesis
    /// allocations, fees paid to the proposer).
    pub fn add_balance(&mut self, address: Address, amount: U256) -> Result<()> {
        let account = self.account_mut(address)?;
        let info = account.info.get_or_insert_with(AccountInfo::default);
        info.balance = info.balance.saturating_add(amount);
        Ok(())
    }

    /// Installs contract code at an account (genesis predeploys).
    pub fn set_code(&mut self, address: Address, code: Bytecode) -> Result<()> {
        let code_hash = code.hash_slow();
        let account = self.account_mut(address)?;
        let info = account.info.get_or_insert_with(AccountInfo::default);
        info.code_hash = code_hash;
        info.code = Some(code.clone());
        self.code.insert(code_hash, code);
        Ok(())
    }

    /// Sets one storage slot (genesis predeploys).
    pub fn set_storage(&mut self, address: Address, slot: U256, value: U256) -> Result<()> {
        self.account_mut(address)?.storage.insert(slot, value);
        Ok(())
    }

    /// Applies the final writes of a block's transactions all at once, as a parallel executor
    /// knows them: account states (`None`: the account does not exist after the block), slot
    /// values, accounts created by the block (their earlier storage no longer counts; the
    /// caller has made sure there was none) and new code. Equivalent to committing the
    /// transactions one by one, for the state they leave. Sorted input (by address, then slot)
    /// is applied fastest.
    pub fn apply_writes(
        &mut self,
        accounts: impl IntoIterator<Item = (Address, Option<AccountInfo>)>,
        slots: impl IntoIterator<Item = (Address, U256, U256)>,
        created: impl IntoIterator<Item = Address>,
        code: impl IntoIterator<Item = (B256, Bytecode)>,
    ) -> Result<()> {
        let accounts = accounts.into_iter().map(|(address, info)| {
            let account = PendingAccount {
                info,
                ..PendingAccount::default()
            };
            (address, account)
        });
        if self.accounts.is_empty() {
            // The usual case (no epoch was closed before the transactions): the map is built
            // in one go, in linear time when the accounts come sorted.
            self.accounts = accounts.collect();
        } else {
            for (address, account) in accounts {
                // Overwritten whole: no need to read the old state first.
                self.accounts.entry(address).or_default().info = account.info;
            }
        }
        for address in created {
            let account = self.account_mut(address)?;
            account.storage.clear();
            account.storage_cleared = true;
        }
        let mut slots = slots.into_iter().peekable();
        while let Some((address, slot, value)) = slots.next() {
            let mut values = vec![(slot, value)];
            while let Some((_, slot, value)) = slots.next_if(|(next, _, _)| *next == address) {
                values.push((slot, value));
            }
            let storage = &mut self.account_mut(address)?.storage;
            if storage.is_empty() {
                *storage = values.into_iter().collect();
            } else {
                storage.extend(values);
            }
        }
        self.code.extend(code);
        Ok(())
    }

    /// Whether `address` has any storage slot set, committed or pending.
    pub fn has_storage(&self, address: &Address) -> Result<bool> {
        let pending = self.accounts.get(address);
        if pending.is_some_and(|a| a.storage.values().any(|v| !v.is_zero())) {
            return Ok(true);
        }
        if pending.is_some_and(|a| a.storage_cleared) {
            return Ok(false);
        }
        Ok(!self.view.storage_slots(address)?.is_empty())
    }

    /// The number of accounts this block changed.
    pub fn changed_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Leaf changes for the state tree, in key order.
    pub(crate) fn leaf_changes(&self) -> Result<BTreeMap<LeafKey, Option<Vec<u8>>>> {
        let mut leaves = BTreeMap::new();
        for (address, account) in &self.accounts {
            leaves.insert(
                account_key(address),
                stored(account).map(|a| encode(&a)).transpose()?,
            );
            if account.storage_cleared {
                for slot in self.view.storage_slots(address)? {
                    leaves.insert(slot_key(address, &slot), None);
                }
            }
            for (slot, value) in &account.storage {
                let leaf = (!value.is_zero()).then(|| value.to_be_bytes::<32>().to_vec());
                leaves.insert(slot_key(address, slot), leaf);
            }
        }
        Ok(leaves)
    }

    /// Adds every change to the block's write batch.
    pub(crate) fn write_state(&self, db: &DB, batch: &mut WriteBatch) -> Result<()> {
        let accounts = cf(db, CF_ACCOUNTS)?;
        let storage = cf(db, CF_STORAGE)?;
        for (address, account) in &self.accounts {
            match stored(account) {
                Some(stored) => batch.put_cf(accounts, address, encode(&stored)?),
                None => batch.delete_cf(accounts, address),
            }
            if account.storage_cleared {
                for slot in self.view.storage_slots(address)? {
                    batch.delete_cf(storage, storage_key(address, &slot));
                }
            }
            for (slot, value) in &account.storage {
                let key = storage_key(address, slot);
                if value.is_zero() {
                    batch.delete_cf(storage, key);
                } else {
                    batch.put_cf(storage, key, value.to_be_bytes::<32>());
                }
            }
        }
        let code = cf(db, CF_CODE)?;
        for (hash, bytecode) in &self.code {
            batch.put_cf(code, hash, bytecode.original_bytes());
        }
        Ok(())
    }
}

/// The account as it will be stored, or `None` when it must be deleted: destroyed, or empty
/// (EIP-161: an account with no nonce, balance or code is the same as no account).
fn stored(account: &PendingAccount) -> Option<StoredAccount> {
    let info = account.info.as_ref()?;
    let empty = info.nonce == 0 && info.balance.is_zero() && info.code_hash == KECCAK_EMPTY;
    (!empty).then_some(StoredAccount {
        nonce: info.nonce,
        balance: info.balance,
        code_hash: info.code_hash,
    })
}

impl DatabaseRef for PendingState<'_> {
    type Error = StorageError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>> {
        match self.accounts.get(&address) {
            Some(account) => Ok(account.info.clone()),
            None => self.view.basic_ref(address),
        }
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode> {
        match self.code.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.view.code_by_hash_ref(code_hash),
        }
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue> {
        if let Some(account) = self.accounts.get(&address) {
            if let Some(value) = account.storage.get(&index) {
                return Ok(*value);
            }
            if account.storage_cleared {
                return Ok(U256::ZERO);
            }
        }
        self.view.storage_ref(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256> {
        self.view.block_hash_ref(number)
    }
}

impl Database for PendingState<'_> {
    type Error = StorageError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>> {
        self.basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode> {
        self.code_by_hash_ref(code_hash)
    }

    fn storage(&mut self, address: Address, index: StorageKey) -> Result<StorageValue> {
        self.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256> {
        self.block_hash_ref(number)
    }
}

impl DatabaseCommit for PendingState<'_> {
    fn commit(&mut self, changes: EvmState) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            let entry = self.accounts.entry(address).or_default();
            if account.is_selfdestructed() {
                *entry = PendingAccount {
                    info: None,
                    storage: BTreeMap::new(),
                    storage_cleared: true,
                };
                continue;
            }
            if account.is_created() {
                entry.storage.clear();
                entry.storage_cleared = true;
            }
            let mut info = account.info;
            if let Some(code) = &info.code
                && info.code_hash != KECCAK_EMPTY
            {
                self.code
                    .entry(info.code_hash)
                    .or_insert_with(|| code.clone());
            }
            // The block-level cache needs no journal bookkeeping from the transaction.
            info.account_id = None;
            // EIP-161: an account a transaction touched and left empty no longer exists, for
            // the next transaction as much as for the stored state.
            let empty = info.nonce == 0 && info.balance.is_zero() && info.code_hash == KECCAK_EMPTY;
            entry.info = (!empty).then_some(info);
            let changed = account
                .storage
                .into_iter()
                .filter(|(_, slot)| slot.is_changed());
            entry
                .storage
                .extend(changed.map(|(key, slot)| (key, slot.present_value)));
        }
    }
}
