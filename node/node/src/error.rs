//! Errors of starting and wiring a node, and of its files.

/// Failures of the node outside of transaction validation.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] cairn_storage::StorageError),
    /// The chain failed to open or answer.
    #[error(transparent)]
    Chain(#[from] cairn_chain::ChainError),
    /// The data plane or the provider agent failed to start.
    #[error(transparent)]
    Data(#[from] cairn_providers::error::DataError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] cairn_rpc::RpcError),
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
        source: cairn_primitives::KeyError,
    },
    /// A configuration file or option is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The peer-to-peer network could not start.
    #[error(transparent)]
    Network(#[from] cairn_p2p::P2pError),
}

impl NodeError {
    /// An I/O failure on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;
