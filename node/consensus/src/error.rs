//! Errors of the consensus driver.

use cairn_p2p::{P2pError, PeerId};
use cairn_primitives::CodecError;

/// Why the driver could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The chain failed (database, execution).
    #[error(transparent)]
    Chain(#[from] cairn_chain::ChainError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] cairn_storage::StorageError),
    /// A stored vote or certificate did not decode.
    #[error("a stored vote or certificate does not decode: {0}; the database is damaged")]
    Codec(#[from] CodecError),
}

/// Why a sync request brought no blocks.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// No peer answered.
    #[error(transparent)]
    Network(#[from] P2pError),
    /// A peer answered with bytes that are no sync response.
    #[error("malformed sync response from {peer}: {source}")]
    Malformed {
        /// The peer.
        peer: PeerId,
        /// What the decoder found.
        source: CodecError,
    },
}
