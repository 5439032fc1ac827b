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
