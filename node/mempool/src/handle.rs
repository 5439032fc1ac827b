//! [`TxPool`]: the one handle through which RPC, gossip, block builders and provider agents
//! reach the mempool. It pairs the pool with the committed state its checks read, so that a
//! sender's nonce and balance are always read under the pool's lock.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_chain::{Chain, ProducedBlock, Result as ChainResult, account_state};
use cairn_evm::execution::Exclusion;
use cairn_primitives::{
    AccountKey, Address, B256, Canonical, MAX_BLOCK_TRANSACTION_BYTES, Transaction,
    VerifiedTransaction,
};
use revm::context::result::InvalidTransaction;
use tokio::sync::mpsc;

use crate::error::{SubmitError, TxRejection};
use crate::pool::{Mempool, MempoolConfig};

/// A cloneable handle on the node's mempool and the chain it admits transactions against.
#[derive(Debug, Clone)]
pub struct TxPool {
    chain: Arc<Chain>,
    pool: Arc<Mutex<Mempool>>,
    /// Where transactions submitted here go to be gossiped (a networked node only).
    gossip: Option<mpsc::Sender<Vec<u8>>>,
}

impl TxPool {
    /// An empty pool over `chain`. On a networked node, `gossip` receives the raw bytes of every
    /// transaction submitted through [`TxPool::submit_raw`], to pass on to peers.
    pub fn new(
        chain: Arc<Chain>,
        config: MempoolConfig,
        gossip: Option<mpsc::Sender<Vec<u8>>>,
    ) -> Self {
        Self {
            chain,
            pool: Arc::new(Mutex::new(Mempool::new(config))),
            gossip,
        }
    }

    /// The chain the pool checks against.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// The pool, locked.
    fn locked(&self) -> MutexGuard<'_, Mempool> {
        // A panic while holding the lock leaves a consistent pool: every mutation is a
        // single insert or removal.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.locked().len()
    }

    /// Whether no transaction waits.
    pub fn is_empty(&self) -> bool {
        self.locked().is_empty()
    }

    /// A pending transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<Transaction> {
        self.locked().get(hash).cloned()
    }

    /// Those of `hashes` the mempool holds, under one lock. The mempool admits only
    /// transactions whose signature it checked, and a hash names the signed bytes: a block
    /// holding one of these needs no second check of its signature.
    pub fn admitted(&self, hashes: impl IntoIterator<Item = B256>) -> BTreeSet<B256> {
        let pool = self.locked();
        hashes
            .into_iter()
            .filter(|hash| pool.contains(hash))
            .collect()
    }

    /// Decodes a raw transaction, admits it to the mempool and, on a networked node, passes
    /// it on to be gossiped to the other validators.
    pub fn submit_raw(&self, raw: &[u8]) -> Result<B256, SubmitError> {
        let tx = Transaction::decode(raw).map_err(TxRejection::from)?;
        let hash = self.submit(tx)?;
        self.relay(raw.to_vec());
        Ok(hash)
    }

    /// Admits a decoded transaction (an Ethereum one from `eth_sendRawTransaction`) and passes
    /// its canonical encoding on to be gossiped.
    pub fn submit_relayed(&self, tx: Transaction) -> Result<B256, SubmitError> {
        let encoded = tx.encode();
        let hash = self.submit(tx)?;
        self.relay(encoded);
        Ok(hash)
    }

    fn relay(&self, encoded: Vec<u8>) {
        if let Some(gossip) = &self.gossip {
            // A full queue only delays the transaction: it waits in this node's mempool until
            // this node proposes.
            let _ = gossip.try_send(encoded);
        }
    }

    /// Admits a transaction to the mempool. The signature is checked before the pool is
    /// locked, so that concurrent submissions verify in parallel.
    pub fn submit(&self, tx: Transaction) -> Result<B256, SubmitError> {
        // A copy of a pending Ethereum transaction is known by its hash (computed when it was
        // decoded) before a second recovery of its sender.
        if let Some(ethereum) = tx.ethereum()
            && self.locked().get(&ethereum.hash()).is_some()
        {
            return Err(TxRejection::AlreadyKnown.into());
        }
        let tx = VerifiedTransaction::verify(tx).ok_or(TxRejection::BadSignature)?;
        // The sender's state is read under the pool's lock: the producer prunes the pool only
        // after committing a block, so a state read here is never older than the pool. (Read
        // before the lock, a block could commit and be pruned in between, and a valid next
        // nonce would look like a gap.)
        let mut mempool = self.locked();
        let sender = self.chain.sender_state(tx.sender())?;
        Ok(mempool.insert(tx, &self.chain.rules(), sender)?)
    }

    /// The nonce an account's next transaction should carry, counting its pending ones
    /// (read under the pool's lock for the same reason as in [`TxPool::submit`]).
    pub fn pending_nonce(&self, address: Address) -> ChainResult<u64> {
        let mempool = self.locked();
        let committed = self.chain.sender_state(address)?.nonce;
        Ok(mempool.next_nonce(&address, committed))
    }

    /// Builds and commits the next block from the mempool, then drops from the pool what the
    /// block included or made stale (a single-validator chain, which needs no consensus).
    pub fn produce_block(&self, key: &AccountKey, timestamp_ms: u64) -> ChainResult<ProducedBlock> {
        let candidates = self.select_candidates();
        let produced = self.chain.produce_block(key, timestamp_ms, &candidates)?;
        self.prune(&candidates, &cannot_run(&produced.excluded))?;
        Ok(produced)
    }

    /// The mempool's pick for the next block, against the committed state.
    pub fn select_candidates(&self) -> Vec<Transaction> {
        let view = self.chain.state();
        let nonce_of =
            |address: &Address| account_state(&view, *address).map(|s| s.nonce).unwrap_or(0);
        self.locked().select(
            self.chain.genesis().gas_limit,
            MAX_BLOCK_TRANSACTION_BYTES,
            nonce_of,
        )
    }

    /// Drops from the mempool what committed blocks made stale (the senders of `transactions`
    /// moved on) and the transactions in `excluded`, which cannot run.
    pub fn prune(&self, transactions: &[Transaction], excluded: &[B256]) -> ChainResult<()> {
        let senders: BTreeSet<_> = transactions.iter().map(Transaction::sender).collect();
        let view = self.chain.state();
        let mut committed = Vec::with_capacity(senders.len());
        for sender in senders {
            committed.push((sender, account_state(&view, sender)?.nonce));
        }
        let mut mempool = self.locked();
        for hash in excluded {
            mempool.evict(hash);
        }
        mempool.prune(committed);
        Ok(())
    }
}

/// The transactions a block builder left out because they cannot run: the ones to drop from
/// the pool. Not those left for a later block for want of room, nor those whose nonce is
/// ahead because an earlier one of their sender's was left for want of room.
pub fn cannot_run(excluded: &[(B256, Exclusion)]) -> Vec<B256> {
    excluded
        .iter()
        .filter(|(_, reason)| {
            !matches!(
                reason,
                Exclusion::NoRoom | Exclusion::Invalid(InvalidTransaction::NonceTooHigh { .. })
            )
        })
        .map(|(hash, _)| *hash)
        .collect()
}
