//! Errors of the data plane and the provider agent.

use cairn_primitives::Address;

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
    /// A contract call reverted (the contract's reason, decoded).
    #[error("contract call reverted: {reason}")]
    Reverted {
        /// Why, as the contract said it.
        reason: String,
    },
    /// A contract answered bytes that are not its call's return value.
    #[error("a contract's answer does not decode: {0}")]
    Undecodable(#[from] alloy_sol_types::Error),
    /// The deal is not waiting for its provider.
    #[error("deal 0x{} is {state}, not proposed", hex::encode(deal))]
    DealNotProposed {
        /// The deal.
        deal: [u8; 32],
        /// Its state.
        state: &'static str,
    },
    /// The deal names another provider.
    #[error("the deal names provider {named}, not {me}")]
    NotOurDeal {
        /// The provider the deal names.
        named: Address,
        /// This provider.
        me: Address,
    },
    /// The deal pays less than this provider asks.
    #[error("the deal pays {offered} wei per epoch; this provider asks {asked} for {size} bytes")]
    Underpriced {
        /// Wei per epoch the deal pays.
        offered: u128,
        /// Wei per epoch this provider asks.
        asked: u128,
        /// The deal's size in bytes.
        size: u64,
    },
    /// The provider has no room for the deal.
    #[error("{free} bytes free, the deal needs {needed}")]
    NoRoom {
        /// Bytes free.
        free: u64,
        /// Bytes the deal needs.
        needed: u64,
    },
    /// The data to offer is not all in this node's chunk store.
    #[error(
        "this node does not hold data 0x{} whole; upload it first",
        hex::encode(root)
    )]
    NotHeld {
        /// The data's root.
        root: [u8; 32],
    },
    /// The data is larger than its use allows.
    #[error(
        "data 0x{} is {size} bytes, more than the {max} allowed",
        hex::encode(root)
    )]
    TooLarge {
        /// The data's root.
        root: [u8; 32],
        /// Its size.
        size: u64,
        /// The most allowed.
        max: u64,
    },
    /// The provider's node refused the offer, with its reason.
    #[error("the provider refused: {reason}")]
    PeerRefused {
        /// What the provider's node answered.
        reason: String,
    },
    /// No advert of the provider has reached this node.
    #[error(
        "no advert of provider {0} has reached this node; check `cairn provider list` and try again when it shows"
    )]
    NoAdvert(Address),
    /// A peer answered badly or not at all.
    #[error("peer {peer}: {detail}")]
    Peer {
        /// The peer.
        peer: String,
        /// What went wrong.
        detail: String,
    },
    /// No peer supplied the data in time.
    #[error("no peer supplied data 0x{} within {within:?}", hex::encode(root))]
    NotSupplied {
        /// The data's root.
        root: [u8; 32],
        /// How long the node tried.
        within: std::time::Duration,
    },
    /// Every peer that held the data failed to supply some of it.
    #[error(
        "no peer could supply data 0x{}: {missing} pieces still missing",
        hex::encode(root)
    )]
    NoSources {
        /// The data's root.
        root: [u8; 32],
        /// Pieces not fetched.
        missing: usize,
    },
    /// A task of the node stopped before finishing (the node is shutting down, or it panicked).
    #[error("a task of the node stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}
