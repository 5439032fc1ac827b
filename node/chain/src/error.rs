//! Errors of the chain: the node failed (database, execution, files), as opposed to a block
//! being invalid ([`crate::chain::InvalidBlock`]).

use std::path::PathBuf;

use cairn_evm::ExecutionError;
use cairn_primitives::CodecError;
use cairn_storage::StorageError;

/// Why the chain could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Executing a block or call failed for a reason other than a bad transaction.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// Stored bytes did not decode.
    #[error("stored data does not decode: {0}; the database is damaged, restore or resync it")]
    Codec(#[from] CodecError),
    /// A test account of the test mnemonic could not be derived.
    #[error("cannot derive test account {index} of the test mnemonic: {detail}")]
    TestAccount {
        /// The account's index.
        index: u32,
        /// What the derivation said.
        detail: String,
    },
    /// The genesis file describes no working chain.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(&'static str),
    /// The genesis allocates to a precompile or predeploy address.
    #[error(
        "invalid genesis: alloc holds {0}, a precompile or predeploy address; use another address"
    )]
    ReservedAddress(cairn_primitives::Address),
    /// A reward contract's initialization at genesis reverted.
    #[error("invalid genesis: initializing the contract at {contract} failed: {reason}")]
    ContractInit {
        /// The contract.
        contract: cairn_primitives::Address,
        /// Its revert reason.
        reason: String,
    },
    /// The database lacks something every opened chain has.
    #[error("the database is incomplete ({0}); delete the data directory's db and resync")]
    Incomplete(&'static str),
    /// The database lacks the head block.
    #[error(
        "the database is incomplete (head block {0} is missing); delete the data directory's db and resync"
    )]
    MissingBlock(u64),
    /// The validator set of an epoch is asked for before this node has committed the last
    /// block of the epoch before it.
    #[error(
        "the validator set of epoch {epoch} is not known yet (its previous epoch has not ended here)"
    )]
    ValidatorSetUnknown {
        /// The epoch asked for.
        epoch: u64,
    },
    /// A system contract answered something that does not decode.
    #[error("{call} returned an undecodable answer: {detail}")]
    ContractAnswer {
        /// The call.
        call: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A JSON file did not parse, or a value did not encode.
    #[error("{path}: {source}")]
    Json {
        /// The file (or what was being encoded).
        path: PathBuf,
        /// What went wrong.
        source: serde_json::Error,
    },
}

impl ChainError {
    /// An I/O failure on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;
