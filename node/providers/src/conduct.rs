//! How this provider treats the others when it serves data or answers a job. The node is
//! always [`Honest`]: nothing in `node.json` or on the command line selects another conduct.
//! The trait is the seam through which the integration tests run Byzantine providers (a node
//! that corrupts the pieces it serves, a provider that lies about a job's output) against
//! honest ones; those live with the tests (`tests/it/support/byzantine.rs`), not in the node.

use cairn_storage::PieceProof;

/// A provider's behaviour where a dishonest one would gain by deviating.
pub trait Conduct: std::fmt::Debug + Send + Sync + 'static {
    /// The piece sent to a peer that asked for it.
    fn serve_piece(&self, piece: PieceProof) -> PieceProof {
        piece
    }

    /// The output this provider keeps for the client, and posts the root of, for a job it
    /// ran, given the true one.
    fn output(&self, output: Vec<u8>) -> Vec<u8> {
        output
    }
}

/// Serves what it stored and posts what it computed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Honest;

impl Conduct for Honest {}
