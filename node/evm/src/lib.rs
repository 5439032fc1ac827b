//! # cairn-evm
//!
//! Cairn's execution layer: revm configured with Cairn's rules (Osaka, fees credited to the
//! beneficiary once per block, the chunk-proof, ed25519 and equivocation precompiles), the
//! sequential executor, and Block-STM, the parallel executor that gives the same outcome.
//!
//! ## How data flows through it
//! ```text
//!  block's transactions + BlockContext + PendingState (a RocksDB snapshot and its change set)
//!        ─► execution::begin_block (epoch-closing system calls, validator activity)
//!        ─► Executor::execute: Sequential, or parallel::Parallel (Block-STM: optimistic runs
//!           over multi-version memory, validation, re-execution; settled in block order)
//!        ─► one TxOutcome per transaction (receipt, or why it cannot be in the block)
//!        ─► the PendingState holds the block's exact change set
//! ```
//! [`rules`] holds what a transaction must satisfy before any code runs (intrinsic gas, the
//! gas cap, the chain parameters); the mempool and the chain check against the same rules.
//!
//! ## Example
//! ```
//! use cairn_evm::rules::{intrinsic_gas, max_tx_gas};
//! use cairn_primitives::{AccountKey, Address, TxBody, U256};
//!
//! let transfer = TxBody {
//!     chain_id: 1,
//!     nonce: 0,
//!     gas_limit: 21_000,
//!     max_fee_per_gas: 1,
//!     max_priority_fee_per_gas: 0,
//!     to: Some(Address::repeat_byte(1)),
//!     value: U256::from(1),
//!     input: Default::default(),
//! }
//! .sign(&AccountKey::from_bytes(&[1; 32]));
//! assert_eq!(intrinsic_gas(&transfer), 21_000);
//! assert_eq!(max_tx_gas(1 << 30), 1 << 24);
//! ```

pub mod error;
pub mod execution;
pub mod parallel;
pub mod precompiles;
pub mod rules;

pub use error::{ExecutionError, Result};
