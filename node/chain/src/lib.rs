//! # cairn-chain
//!
//! The chain on top of the store: genesis, building a block from chosen transactions,
//! verifying and importing blocks from elsewhere, committing them (one RocksDB write batch per
//! block), and reading state, blocks, receipts and the validator set of each epoch.
//!
//! ## How data flows through it
//! ```text
//!  genesis.json ─► Genesis::validate ─► Genesis::initialize (allocations, contracts) ─► Store
//!  transactions ─► Chain::build_block / produce_block
//!        ─► Executor::execute (cairn-evm) on a PendingState ─► state root ─► header
//!        ─► Store::commit_block (one write batch: state, tree, block, receipts, head)
//!  a block from a peer ─► Chain::verify_block (re-execution, field by field) ─► commit
//!  queries ─► Chain::head / block / receipts / call / estimate_gas / sender_state
//! ```
//!
//! ## Example
//! ```
//! use cairn_chain::Chain;
//! use cairn_chain::genesis::{Genesis, dev_account, dev_validator};
//! use cairn_evm::execution::Sequential;
//! use cairn_primitives::{Address, TxBody, U256};
//!
//! let dir = tempfile::tempdir()?;
//! let genesis = Genesis::dev();
//! let chain = Chain::open(dir.path(), genesis.clone(), Box::new(Sequential))?;
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
//! let block = chain.produce_block(&dev_validator(), genesis.timestamp_ms + 1000, &[transfer])?;
//! assert!(block.receipts[0].succeeded());
//! assert_eq!(chain.sender_state(Address::repeat_byte(0xb0))?.balance, U256::from(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod chain;
pub mod error;
pub mod genesis;

pub use chain::*;
pub use error::{ChainError, Result};
