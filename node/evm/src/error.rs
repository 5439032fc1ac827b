//! Errors of block execution. A transaction that cannot run is not an error here: it is an
//! outcome ([`crate::execution::TxOutcome`]). These are failures of the executor itself.

use cairn_primitives::Address;
use cairn_storage::StorageError;

/// Why a block could not be executed to an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The state database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// revm refused to run a transaction for a reason other than the transaction itself: a bug,
    /// or a block header the EVM cannot accept.
    #[error("the EVM refused to run a transaction (a bug or a bad block header): {detail}")]
    Evm {
        /// revm's message.
        detail: String,
    },
    /// A system call (genesis initialization, an epoch close) could not be run at all.
    #[error("system call to {contract} could not run (a bug or a bad genesis): {detail}")]
    SystemCall {
        /// The contract called.
        contract: Address,
        /// revm's message.
        detail: String,
    },
    /// Block-STM broke one of its own invariants; the block is not applied.
    #[error("Block-STM failed an internal check ({0}); report this as a bug")]
    Invariant(&'static str),
}

/// Result type of this crate.
pub type Result<T, E = ExecutionError> = std::result::Result<T, E>;
