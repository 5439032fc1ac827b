//! Errors of starting the RPC server. Errors of single calls travel to the caller as JSON-RPC
//! error objects (codes in [`crate::api`]).

/// Why the RPC server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The address could not be bound.
    #[error(
        "cannot start the RPC server on {addr}: {source} (is the port already in use? pick another with --rpc-port)"
    )]
    Bind {
        /// The address it tried to bind.
        addr: std::net::SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Two method sets name the same method (a bug in the node, not in its setup).
    #[error("cannot register the RPC methods: {0}")]
    Methods(String),
}
