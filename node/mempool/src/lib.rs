//! # cairn-mempool
//!
//! Transactions waiting for a block: admission checks, per-sender nonce queues (with a bounded
//! wait for nonces that arrive early), ordering by tip, eviction of the cheapest, and the
//! [`TxPool`] handle that RPC, gossip, the block builders and the provider agents share.
//!
//! ## How data flows through it
//! ```text
//!  raw bytes (RPC or gossip) ─► TxPool::submit_raw ─► Transaction::decode
//!        ─► VerifiedTransaction::verify (outside the lock) ─► Mempool::insert against the
//!           sender's committed nonce and balance (chain id, gas, fee, nonce, funds, bounds)
//!        ─► the gossip queue (networked node)
//!  block builder ─► TxPool::select_candidates (by effective tip) ─► a block (what fits the
//!        gas used and the byte limit) ─► TxPool::prune (included, stale, and transactions
//!        that cannot run; those that did not fit wait)
//! ```
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//!
//! use cairn_chain::Chain;
//! use cairn_chain::genesis::{Genesis, dev_account};
//! use cairn_evm::execution::Sequential;
//! use cairn_mempool::{MempoolConfig, TxPool};
//! use cairn_primitives::{Address, TxBody, U256};
//!
//! let dir = tempfile::tempdir()?;
//! let genesis = Genesis::dev();
//! let chain = Arc::new(Chain::open(dir.path(), genesis.clone(), Box::new(Sequential))?);
//! let pool = TxPool::new(chain, MempoolConfig::default(), None);
//! let transfer = TxBody {
//!     chain_id: genesis.chain_id,
//!     nonce: 0,
//!     gas_limit: 21_000,
//!     max_fee_per_gas: genesis.base_fee_per_gas.into(),
//!     max_priority_fee_per_gas: 0,
//!     to: Some(Address::repeat_byte(0xb0)),
//!     value: U256::from(5),
//!     input: Default::default(),
//! }
//! .sign(&dev_account(0));
//! pool.submit(transfer.clone())?;
//! assert!(pool.submit(transfer).is_err(), "the same transaction twice");
//! assert_eq!(pool.pending_nonce(dev_account(0).address())?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod handle;
pub mod pool;

pub use error::{SubmitError, TxRejection};
pub use handle::{TxPool, cannot_run};
pub use pool::{Mempool, MempoolConfig};
