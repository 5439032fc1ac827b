//! # cairn-node
//!
//! Everything a Cairn node does above the database: the chain's types and their canonical
//! encoding, genesis, the mempool, executing blocks on revm, building and importing blocks,
//! Simplex consensus over the peer-to-peer network, the JSON-RPC server and the wallet's
//! keystore.
//!
//! ## How data flows through it
//! ```text
//!  RPC cairn_sendRawTransaction ─► Transaction::decode ─► Mempool::insert (chain id, signature,
//!                                                          gas, fee, nonce, balance, bounds)
//!  block producer tick ─► Mempool::select ─► Chain::produce_block
//!        ─► Executor::execute (revm, fees credited after the last tx) on a PendingState
//!        ─► Store::prepare_state_root ─► header ─► Store::commit_block (one write batch)
//!        ─► Mempool::prune
//!  Chain::import_block: the same execution for a block from elsewhere, checked field by field.
//!
//!  With a network (consensus::driver), instead of the producer tick:
//!  gossip ─► checked (signatures, block = what the leader signed) ─► consensus::Machine
//!        ─► Build: Chain::build_block on the notarized parent ─► gossip the proposal
//!        ─► Verify: Chain::verify_block (re-execution) ─► notarize vote (WAL first, then gossip)
//!        ─► 2f+1 notarize ─► finalize vote ─► 2f+1 finalize ─► Chain::commit_executed
//!  missing blocks ─► sync request to a peer ─► certificate checked ─► Chain::import_final
//!
//!  Storage (providers): RPC pieces ─► ChunkStore ─► openDeal ─► offer to the provider's node
//!        ─► provider Agent fetches and checks every piece ─► acceptDeal ─► submitProof per epoch
//!  Compute (providers): module + input as blobs ─► postJob ─► the drawn provider's Agent sees
//!        JobPosted ─► compute::run (wasmi, fuel) ─► submitResult ─► the verifier re-runs ─► attest
//! ```
//! [`node::Node::launch`] wires these together; the `cairn` binary only parses arguments and
//! prints.
//!
//! ## Example
//! ```
//! use cairn_node::chain::Chain;
//! use cairn_node::execution::Sequential;
//! use cairn_node::genesis::{Genesis, dev_account, dev_validator};
//! use cairn_node::types::{Address, TxBody, U256};
//!
//! let dir = tempfile::tempdir()?;
//! let genesis = Genesis::dev();
//! let chain = Chain::open(dir.path(), genesis.clone(), Box::new(Sequential))?;
//! let transfer = TxBody {
//!     chain_id: genesis.chain_id,
//!     nonce: 0,
//!     gas_limit: 21_000,
//!     max_fee_per_gas: genesis.base_fee_per_gas.into(),
//!     max_priority_fee_per_gas: 0,
//!     to: Some(Address::repeat_byte(0xb0)),
//!     value: U256::from(5),
//!     input: Default::default(),
//! }
//! .sign(&dev_account(0));
//! let block = chain.produce_block(&dev_validator(), genesis.timestamp_ms + 1000, &[transfer])?;
//! assert!(block.receipts[0].succeeded());
//! assert_eq!(chain.sender_state(Address::repeat_byte(0xb0))?.balance, U256::from(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;
pub mod chain;
pub mod compute;
pub mod consensus;
pub mod error;
pub mod execution;
pub mod genesis;
pub mod keystore;
pub mod mempool;
pub mod node;
pub mod parallel;
pub mod precompiles;
pub mod providers;
pub mod rpc;
pub mod testnet;
pub mod types;
pub mod units;
