//! # cairn-rpc
//!
//! The node's JSON-RPC API. [`api`] declares the `cairn_*` method set once, with the types it
//! carries; jsonrpsee derives from it the typed client the CLI and the client SDK use
//! (`CairnApiClient`) and the server trait that [`server::RpcServer`] implements. [`eth`] is
//! Ethereum's method set over the same server, for Ethereum's tools; [`listen`] serves both.
//!
//! ## How data flows through it
//! ```text
//!  HTTP JSON-RPC ─► jsonrpsee (body, batch and connection limits) ─► access (Host and
//!        Origin allow-lists; the admin token) ─► RpcServer
//!        cairn_sendRawTransaction ─► TxPool::submit_raw (─► gossip on a networked node)
//!        cairn_call / cairn_estimateGas ─► a few at a time on the blocking pool, with a
//!        timeout ─► Chain::call / estimate_gas
//!        reads (blocks, receipts, balances, status) ─► Chain, TxPool, NetworkView
//!        eth_* / net_* / web3_* ([`eth`]) ─► the same, in Ethereum's shapes; an Ethereum
//!        transaction's bytes ─► TxPool::submit_relayed
//!        cairn_blob* / cairn_storage* / cairn_providers ─► DataNet (networked node only;
//!        the methods that change local data only with the admin token)
//! ```
//!
//! ## Example
//! ```no_run
//! use cairn_rpc::api::CairnApiClient;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = jsonrpsee::http_client::HttpClientBuilder::default().build("http://127.0.0.1:8545")?;
//! let status = client.chain_status().await?;
//! println!("height {} on chain {}", status.height, status.chain_id);
//! # Ok(())
//! # }
//! ```

pub mod access;
pub mod api;
pub mod error;
pub mod eth;
pub mod listen;
pub mod metrics;
pub mod server;

pub use access::AccessPolicy;
pub use api::*;
pub use error::RpcError;
pub use listen::start;
pub use metrics::RpcMetrics;
pub use server::RpcServer;
