//! Errors of the data plane and the provider agent.

/// Failures of storing, moving and proving data for storage deals.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The chunk store failed, or refused a piece.
    #[error(transparent)]
    Store(#[from] cairn_storage::StorageError),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] cairn_chain::ChainError),
    /// The node's own mempool refused a transaction this node built.
    #[error("the mempool refused this node's transaction: {0}")]
    Submit(#[from] cairn_mempool::SubmitError),
    /// The network failed.
    #[error(transparent)]
    Network(#[from] cairn_p2p::P2pError),
    /// A contract call reverted or answered something undecodable.
    #[error("contract call failed: {0}")]
    Contract(String),
    /// The deal or offer cannot go ahead.
    #[error("{0}")]
    Refused(String),
    /// No advert of the provider has reached this node.
    #[error(
        "no advert of provider {0} has reached this node; check `cairn provider list` and try again when it shows"
    )]
    NoAdvert(cairn_primitives::Address),
    /// A peer answered badly or not at all.
    #[error("peer {peer}: {detail}")]
    Peer {
        /// The peer.
        peer: String,
        /// What went wrong.
        detail: String,
    },
    /// Nobody could supply the data.
    #[error("{0}")]
    Unavailable(String),
    /// A task stopped (the node is shutting down).
    #[error("stopped: {0}")]
    Stopped(String),
}
