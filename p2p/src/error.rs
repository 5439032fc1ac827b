//! What can go wrong in the network layer.

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// A listen or bootnode address is unusable.
    #[error("cannot use address {address}: {detail}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        detail: String,
    },
    /// libp2p could not be set up.
    #[error("cannot start the network: {0}")]
    Setup(String),
    /// The network task has stopped (the node is shutting down).
    #[error("the network task has stopped")]
    Stopped,
    /// A message is larger than its topic allows.
    #[error("{what} of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// No peer is connected to send a request to.
    #[error("no peer is connected")]
    NoPeers,
    /// A request failed.
    #[error("request to {peer} failed: {detail}")]
    Request {
        /// The peer asked.
        peer: String,
        /// Why it failed.
        detail: String,
    },
    /// Publishing failed (for example: no peer subscribes to the topic yet).
    #[error("publish failed: {0}")]
    Publish(String),
}

/// Results of this crate.
pub type Result<T, E = P2pError> = std::result::Result<T, E>;
