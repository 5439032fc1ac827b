//! Errors of the node library.

use revm::primitives::{Address, U256};

/// A byte string that is not the canonical encoding of the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// More bytes than the type may have.
    #[error("{what} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// The type.
        what: &'static str,
        /// Bytes given.
        size: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// No bytes at all.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A version byte this node does not know.
    #[error("{what} has encoding version {version}, this node reads version 1; upgrade cairn")]
    UnknownVersion {
        /// The type.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// Truncated, trailing or non-canonical bytes.
    #[error("{what} is malformed: {detail}")]
    Malformed {
        /// The type.
        what: &'static str,
        /// What the decoder found.
        detail: String,
    },
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes of hex.
    #[error("a private key must be 32 bytes written as 64 hex digits (0x optional)")]
    BadPrivateKey,
}

/// Why the mempool refused a transaction. Each refusal changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxRejection {
    /// Not a decodable transaction.
    #[error("invalid transaction encoding: {0}")]
    Encoding(#[from] CodecError),
    /// Signed for another chain.
    #[error("wrong chain id {got}: this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The signature does not match the body and public key.
    #[error("bad signature: the transaction was not signed by the key it names")]
    BadSignature,
    /// The nonce was already used.
    #[error("nonce too low: {sender} has already used nonce {got} (next nonce is {next})")]
    NonceTooLow {
        /// The sender.
        sender: Address,
        /// The sender's next usable nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// Earlier nonces are missing.
    #[error("nonce gap: {sender} must send nonce {next} before nonce {got}")]
    NonceGap {
        /// The sender.
        sender: Address,
        /// The nonce expected next.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay the worst case of this and its pending transactions.
    #[error(
        "insufficient funds: {sender} has {balance} wei but this and its pending transactions may cost {cost} wei"
    )]
    InsufficientFunds {
        /// The sender.
        sender: Address,
        /// Its balance.
        balance: U256,
        /// Gas limit × fee cap + value, summed over its pending transactions and this one.
        cost: U256,
    },
    /// Less gas than the transaction needs before running any code.
    #[error("gas limit {got} is too low: this transaction needs at least {intrinsic} gas")]
    GasLimitTooLow {
        /// Intrinsic gas of the transaction.
        intrinsic: u64,
        /// The transaction's gas limit.
        got: u64,
    },
    /// More gas than one transaction may use.
    #[error("gas limit {got} is above the most a transaction may use ({max})")]
    GasLimitTooHigh {
        /// The smaller of the block gas limit and the per-transaction cap.
        max: u64,
        /// The transaction's gas limit.
        got: u64,
    },
    /// The fee cap is below the chain's base fee.
    #[error("max fee per gas {got} is below the base fee of {base_fee} wei")]
    FeeTooLow {
        /// The chain's base fee.
        base_fee: u64,
        /// The transaction's fee cap.
        got: u128,
    },
    /// A tip above the fee cap.
    #[error("max priority fee {priority} is above max fee {max_fee}")]
    TipAboveFeeCap {
        /// The tip.
        priority: u128,
        /// The fee cap.
        max_fee: u128,
    },
    /// The pool already holds it.
    #[error("transaction already known")]
    AlreadyKnown,
    /// Same sender and nonce as a pending transaction, without a high enough fee bump.
    #[error(
        "a transaction with nonce {nonce} is already pending; a replacement must raise both fees by at least 10%"
    )]
    ReplacementUnderpriced {
        /// The contested nonce.
        nonce: u64,
    },
    /// The sender has too many pending transactions.
    #[error("{sender} already has {limit} pending transactions; wait for some to be included")]
    SenderQueueFull {
        /// The sender.
        sender: Address,
        /// Pending transactions allowed per sender.
        limit: usize,
    },
    /// The pool is at capacity.
    #[error("the mempool is full ({capacity} transactions); try again after the next block")]
    PoolFull {
        /// The pool's capacity.
        capacity: usize,
    },
}

/// Failures of the node outside of transaction validation.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] cairn_storage::StorageError),
    /// Stored bytes did not decode.
    #[error("stored data does not decode: {0}")]
    Codec(#[from] CodecError),
    /// The genesis file or configuration is unusable.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// Executing a block failed for a reason other than a bad transaction.
    #[error("execution failed: {0}")]
    Execution(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The RPC server could not start.
    #[error(
        "cannot start the RPC server on {addr}: {detail} (is the port already in use? pick another with --rpc-port)"
    )]
    Rpc {
        /// The address it tried to bind.
        addr: std::net::SocketAddr,
        /// What went wrong.
        detail: String,
    },
    /// A JSON file did not parse.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: serde_json::Error,
    },
    /// A key file held something other than a key.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: KeyError,
    },
    /// A configuration file or option is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The peer-to-peer network could not start.
    #[error(transparent)]
    Network(#[from] cairn_p2p::P2pError),
}

/// Failures of storing, moving and proving data for storage deals.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The chunk store failed, or refused a piece.
    #[error(transparent)]
    Store(#[from] cairn_storage::StorageError),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
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
    NoAdvert(crate::types::Address),
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

impl NodeError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;
