//! Canonical, versioned binary encoding.
//!
//! Every value has exactly one encoding: a version byte followed by its borsh encoding (fixed
//! width little-endian integers, length-prefixed sequences, one-byte enum tags). Decoding checks
//! the size limit before reading anything and rejects an unknown version, a truncated value,
//! a non-canonical byte (such as an `Option` tag of 2) and trailing bytes.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::CodecError;

/// The current encoding version of every type.
pub const ENCODING_V1: u8 = 1;

/// A type with a canonical, versioned encoding and a size limit.
pub trait Canonical: BorshSerialize + BorshDeserialize {
    /// What the type is called in error messages.
    const NAME: &'static str;
    /// The largest encoding accepted, version byte included.
    const MAX_SIZE: usize;

    /// The canonical bytes of `self`.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENCODING_V1];
        // Writing into a Vec cannot fail.
        if let Err(e) = BorshSerialize::serialize(self, &mut out) {
            unreachable!("borsh writes into a Vec without error: {e}");
        }
        out
    }

    /// The length of [`Canonical::encode`]'s bytes, counted without writing them.
    fn encoded_len(&self) -> usize {
        // Counting never fails for a value that encodes.
        1 + borsh::object_length(self).unwrap_or(0)
    }

    /// Decodes canonical bytes, rejecting anything else.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > Self::MAX_SIZE {
            return Err(CodecError::TooLarge {
                what: Self::NAME,
                size: bytes.len(),
                max: Self::MAX_SIZE,
            });
        }
        let (&version, body) = bytes.split_first().ok_or(CodecError::Empty(Self::NAME))?;
        if version != ENCODING_V1 {
            return Err(CodecError::UnknownVersion {
                what: Self::NAME,
                version,
            });
        }
        borsh::from_slice(body).map_err(|e| CodecError::Malformed {
            what: Self::NAME,
            detail: e.to_string(),
        })
    }
}
