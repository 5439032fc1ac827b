//! # cairn-node
//!
//! The node as a whole: it opens the chain, builds each component's handles in one place and
//! starts them. It owns nothing else but the data directory's layout and the layout of a local
//! testnet.
//!
//! ## How data flows through it
//! ```text
//!  Node::launch
//!   ├─ Chain::open (cairn-chain, Block-STM from cairn-evm)
//!   ├─ TxPool (cairn-mempool): the chain + the pool (+ the gossip queue when networked)
//!   ├─ dev chain: produce_blocks ─► TxPool::produce_block every block time
//!   └─ networked: cairn_p2p::start ─► Router ─┬─ proposals, votes, peers ─► consensus driver
//!                                             ├─ transactions ─► TxPool::submit
//!                                             ├─ adverts, data requests ─► DataNet
//!                                             └─ sync requests ─► cairn_consensus::SyncServer
//!      consensus driver (cairn-consensus) ─► chain worker: build, verify, commit ─► NetworkView
//!      provider Agent (cairn-providers): TxPool, DataNet, TxSender
//!   RpcServer (cairn-rpc): TxPool, Chain, NetworkView, DataNet
//!   metrics listener: commits ─► ChainMetrics; TxPool, NetworkView, executor ─► Sampled; RPC
//! ```
//!
//! ## Example
//! ```
//! use cairn_node::config::prepare_dev_datadir;
//! use cairn_node::launch::Node;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (config, accounts) = prepare_dev_datadir(dir.path(), "127.0.0.1:0".parse()?)?;
//! let node = Node::launch(config).await?;
//! assert_eq!(accounts.len(), 10);
//! assert_eq!(node.chain().head()?.height, 0);
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod dashboard;
pub mod datadir;
pub mod error;
pub mod launch;
pub mod listener;
pub mod metrics;
pub mod router;
pub mod testnet;

pub use config::{NetworkSettings, NodeConfig};
pub use error::{NodeError, Result};
pub use launch::Node;
