//! # cairn-primitives
//!
//! The data every other Cairn crate speaks: accounts and keys, transactions, blocks, receipts,
//! their canonical encoding, token units, and the envelope of requests between peers. It has
//! no I/O and no state: everything here is a value, but for the wall clock (`clock`) and the
//! default home directory (`dirs`).
//!
//! ## How data flows through it
//! ```text
//!  TxBody ─► sign(AccountKey) ─► Transaction ─► encode ─► bytes on the wire / in RocksDB
//!  bytes ─► Canonical::decode (size limit, version byte, borsh, no trailing bytes)
//!        ─► VerifiedTransaction::verify (ed25519, strict) ─► sender Address
//!  Header + transactions + receipts ─► Block ─► hash (blake3 of the encoded header)
//! ```
//!
//! ## Example
//! ```
//! use cairn_primitives::{AccountKey, Address, Canonical, Transaction, TxBody, U256};
//!
//! let key = AccountKey::from_bytes(&[7; 32]);
//! let tx = TxBody {
//!     chain_id: 1,
//!     nonce: 0,
//!     gas_limit: 21_000,
//!     max_fee_per_gas: 1_000_000_000,
//!     max_priority_fee_per_gas: 0,
//!     to: Some(Address::repeat_byte(0xb0)),
//!     value: U256::from(5),
//!     input: Default::default(),
//! }
//! .sign(&key);
//! let bytes = tx.encode();
//! assert_eq!(Transaction::decode(&bytes)?, tx);
//! assert_eq!(tx.sender(), key.address());
//! # Ok::<(), cairn_primitives::error::CodecError>(())
//! ```

pub mod beacon;
pub mod block;
pub mod clock;
pub mod codec;
pub mod consensus;
pub mod dirs;
pub mod error;
pub mod ethereum;
pub mod keys;
pub mod receipt;
pub mod transaction;
pub mod units;
pub mod wire;

#[cfg(test)]
mod tests;

pub use alloy_primitives::{Address, B256, Bytes, U256};
pub use block::{Block, Header, MAX_BLOCK_TRANSACTION_BYTES, receipts_root, tx_root};
pub use codec::Canonical;
pub use error::{CodecError, EthereumTxError, KeyError};
pub use ethereum::{EthereumEnvelope, EthereumKey};
pub use keys::{AccountKey, address_of};
pub use receipt::{BlockReceipts, Log, Receipt, TxStatus};
pub use transaction::{MAX_TX_SIZE, Signature, Transaction, TxBody, VerifiedTransaction, Witness};
