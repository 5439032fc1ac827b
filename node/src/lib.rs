//! placeholder
pub mod bench;
pub mod chain;
pub mod error;
pub mod execution;
pub mod genesis;
pub mod keystore;
pub mod mempool;
pub mod node;
pub mod rpc;
pub mod types;
pub mod units;
