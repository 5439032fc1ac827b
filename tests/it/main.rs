//! The integration tests, one module per area, linked into one test binary (nine binaries that
//! each linked the whole node cost more to build than they saved; docs/benchmarks.md).
//! Most run real `cairn` processes on loopback; where a process is not the point, a node runs
//! in-process.

mod support;

mod bad_transactions;
mod compute;
mod crash_recovery;
mod deploy;
mod eth_rpc;
mod eth_schema;
mod ethereum;
mod ethereum_tools;
mod flood;
mod markets;
mod network_restart;
mod parallel_node;
mod reward_contracts;
mod rpc_access;
mod staking_cli;
mod storage;
mod testnet;
mod wallet_and_restart;
mod wan;
