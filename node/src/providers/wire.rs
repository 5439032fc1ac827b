//! What peers ask each other over request/response, besides finalized blocks.

use borsh::{BorshDeserialize, BorshSerialize};
use cairn_storage::PieceProof;

use crate::consensus::messages::SyncRequest;
use crate::types::Canonical;

/// Every request a peer can send: blocks for sync, or data.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PeerRequest {
    /// Finalized blocks.
    Sync(SyncRequest),
    /// Stored data.
    Data(DataRequest),
}

impl Canonical for PeerRequest {
    const NAME: &'static str = "peer request";
    const MAX_SIZE: usize = 256;
}

/// A request about stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum DataRequest {
    /// Does the peer hold the whole blob `root`, and how large is it?
    Has {
        /// The blob's root.
        root: [u8; 32],
    },
    /// One piece of a blob the peer holds whole, with its proof.
    Piece {
        /// The blob's root.
        root: [u8; 32],
        /// The piece's index.
        index: u64,
    },
    /// Take storage deal `deal` (opened on chain, naming the peer's provider): fetch its data
    /// from the sender of this request.
    Offer {
        /// The deal's id.
        deal: [u8; 32],
    },
}

/// The answer to a [`DataRequest`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum DataResponse {
    /// The size of the blob, if the peer holds it whole.
    Has(Option<u64>),
    /// The piece asked for.
    Piece(PieceProof),
    /// The offer is taken; the provider is fetching the data.
    Accepted,
    /// The request cannot be met, and why.
    Refused(String),
}

impl Canonical for DataResponse {
    const NAME: &'static str = "data response";
    const MAX_SIZE: usize = cairn_storage::blobs::PIECE_LEN as usize + 64 * 32 + 1024;
}
