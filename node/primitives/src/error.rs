//! Errors of the primitive types: bytes that are not a canonical encoding, and unusable keys.

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

/// Bytes that are not an Ethereum transaction this chain takes. The messages are those
/// Ethereum clients show for the same faults.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthereumTxError {
    /// Larger than a transaction may be.
    #[error("oversized data: the transaction is {size} bytes, the most is {max}")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// Not an EIP-2718 envelope of a known type, or bytes left over.
    #[error("rlp: {0}")]
    Encoding(String),
    /// The bytes decode, but are not how the transaction encodes (leading zeros, long forms).
    #[error("rlp: non-canonical encoding of the transaction")]
    NonCanonical,
    /// Blob (EIP-4844) and set-code (EIP-7702) transactions.
    #[error(
        "transaction type not supported: type {0} (send a legacy, EIP-2930 or EIP-1559 transaction)"
    )]
    UnsupportedType(u8),
    /// A legacy transaction signed without a chain id, which any chain would replay.
    #[error("only replay-protected (EIP-155) transactions allowed: sign with the chain id")]
    NotReplayProtected,
    /// An `s` value in the upper half of the curve order (EIP-2): a malleated copy.
    #[error(
        "invalid transaction v, r, s values: s is in the upper half of the curve order (EIP-2)"
    )]
    HighS,
}
