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
    /// The metrics listener could not bind its address.
    #[error(
        "cannot serve metrics on {addr}: {source} (is the port in use? pick another with --metrics-port)"
    )]
    MetricsBind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it failed.
        source: std::io::Error,
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
        source: cairn_primitives::KeyError,
    },
    /// The node key file holds no ed25519 key.
    #[error("{path}: not a node key ({detail}); delete it to have a new one made")]
    NodeKey {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The admin token file is too short to be a secret.
    #[error(
        "{path}: too short for an admin token (32 characters at least); delete it to have a new one made"
    )]
    AdminToken {
        /// The file.
        path: std::path::PathBuf,
    },
    /// An address in `node.json` is no multiaddr.
    #[error("{path}: {text:?} is not a multiaddr ({detail}); write e.g. /ip4/127.0.0.1/tcp/30303")]
    BadMultiaddr {
        /// The file.
        path: std::path::PathBuf,
        /// What it holds.
        text: String,
        /// The parser's message.
        detail: String,
    },
    /// A field of `node.json` is unusable.
    #[error("{path}: {field} {problem}")]
    NodeFile {
        /// The file.
        path: std::path::PathBuf,
        /// The field, as written in the file.
        field: &'static str,
        /// What is wrong with it, and what to write instead.
        problem: String,
    },
    /// A testnet cannot be laid out as asked.
    #[error("cannot lay out the testnet: {0}")]
    Testnet(&'static str),
    /// The testnet directory is taken.
    #[error("{0} already holds a testnet; remove it or pick another --dir")]
    TestnetExists(std::path::PathBuf),
    /// More providers were asked for than the testnet has nodes.
    #[error("{flag} {count} is more than the {nodes} nodes")]
    TooManyProviders {
        /// The option.
        flag: &'static str,
        /// Providers asked for.
        count: usize,
        /// Nodes in the testnet.
        nodes: usize,
    },
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
