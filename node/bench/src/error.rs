//! Errors of the benchmarks.

/// Why a benchmark could not run to its figures.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] cairn_chain::ChainError),
    /// Execution failed.
    #[error(transparent)]
    Execution(#[from] cairn_evm::ExecutionError),
    /// A node failed to start or stop.
    #[error(transparent)]
    Node(#[from] cairn_node::NodeError),
    /// The data plane failed.
    #[error(transparent)]
    Data(#[from] cairn_providers::error::DataError),
    /// A database failed.
    #[error(transparent)]
    Storage(#[from] cairn_storage::StorageError),
    /// The network failed.
    #[error(transparent)]
    Network(#[from] cairn_p2p::P2pError),
    /// Bytes the benchmark encoded itself did not decode.
    #[error(transparent)]
    Codec(#[from] cairn_primitives::CodecError),
    /// The mempool refused a benchmark's transaction.
    #[error("a benchmark transaction was refused: {0}")]
    Refused(#[from] cairn_mempool::SubmitError),
    /// A benchmark's own check of its workload failed: the figures would mean nothing.
    #[error("benchmark check failed: {0}; the figures would mean nothing, so none are printed")]
    Check(String),
}

/// A workload name `cairn bench execution --workloads` does not know.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown workload `{name}`: choose from {choices}")]
pub struct UnknownWorkload {
    /// The name given.
    pub name: String,
    /// The names there are.
    pub choices: String,
}

/// Result type of this crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
