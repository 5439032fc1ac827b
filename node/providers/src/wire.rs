//! What a node answers to a peer's data request (the requests themselves are in
//! [`cairn_primitives::wire`], beside the other kinds a peer can send).

use borsh::{BorshDeserialize, BorshSerialize};
use cairn_primitives::Canonical;
use cairn_storage::PieceProof;

/// The answer to a [`DataRequest`](cairn_primitives::wire::DataRequest).
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
