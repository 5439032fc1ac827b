//! What peers ask each other over the request/response protocol (`/cairn/request/1`).
//!
//! One envelope carries every kind of request, so that the node needs one protocol and one
//! bound on requests in flight. Each kind's answer belongs to the component that serves it:
//! finalized blocks to consensus (`SyncResponse`), stored data to the providers
//! (`DataResponse`).

use borsh::{BorshDeserialize, BorshSerialize};

use crate::Canonical;

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

/// A request for finalized blocks, starting at a height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SyncRequest {
    /// The first height wanted.
    pub from: u64,
    /// The most blocks wanted.
    pub max_blocks: u32,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_peer_request_is_an_error() {
        let request = PeerRequest::Data(DataRequest::Piece {
            root: [7; 32],
            index: 3,
        });
        let bytes = request.encode();
        assert_eq!(PeerRequest::decode(&bytes), Ok(request));
        let mut trailing = bytes.clone();
        trailing.push(0);
        let mut unknown_kind = bytes.clone();
        unknown_kind[1] = 9;
        for bad in [
            &bytes[..bytes.len() - 1],
            &trailing[..],
            &unknown_kind[..],
            &[][..],
            &vec![1u8; PeerRequest::MAX_SIZE + 1][..],
        ] {
            assert!(PeerRequest::decode(bad).is_err(), "{bad:?}");
        }
    }
}
