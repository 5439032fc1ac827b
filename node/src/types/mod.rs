//! The chain's data types and their canonical encoding.

pub mod block;
pub mod codec;
pub mod keys;
pub mod receipt;
pub mod transaction;

pub use block::{Block, Header, block_randomness, receipts_root, tx_root};
pub use codec::Canonical;
pub use keys::{AccountKey, address_of};
pub use receipt::{BlockReceipts, Log, Receipt, TxStatus};
pub use revm::primitives::{Address, B256, Bytes, U256};
pub use transaction::{MAX_TX_SIZE, Signature, Transaction, TxBody};
