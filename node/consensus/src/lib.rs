//! # cairn-consensus
//!
//! Simplex BFT finality for the chain. [`machine`] is the protocol as a pure state machine,
//! [`messages`] what validators send each other, [`gossip`] what a node checks before it
//! forwards one, [`sync`] what it serves peers that are behind, and [`driver`] connects the machine to the network, the clock, the chain and
//! the write-ahead log of this validator's votes.
//!
//! ## How data flows through it
//! ```text
//!  gossip (proposals, votes, certificates) ─► gossip::check (signatures, block = what the
//!        leader signed) ─► Machine::handle ─► actions:
//!        Build ─► chain worker: Chain::build_block on the notarized parent ─► proposal
//!        Verify ─► chain worker: Chain::verify_block (re-execution) ─► notarize vote
//!        Persist ─► the vote in RocksDB (write-ahead) ─► Broadcast ─► gossip
//!        Finalize ─► chain worker: Chain::commit_executed ─► TxPool::prune
//!  missing blocks ─► sync request to a peer ─► certificate checked ─► Chain::import_final
//!  a peer's sync request ─► sync::SyncServer (a few at once, one per peer) ─► blocks up to a
//!        certified one, within a byte budget
//! ```
//!
//! ## Example
//! ```
//! use cairn_consensus::{Anchor, Config, Event, Machine, Validators};
//! use cairn_primitives::{AccountKey, B256};
//!
//! let key = AccountKey::from_bytes(&[1; 32]);
//! let config = Config {
//!     namespace: [0; 32],
//!     validators: Validators::equal([key.public_key()]),
//!     view_timeout_ms: 1_000,
//!     retry_ms: 500,
//!     last_height: u64::MAX,
//! };
//! let genesis = Anchor { view: 0, block: B256::ZERO, height: 0 };
//! let mut machine = Machine::new(config, Some(key), genesis, Vec::new(), 0);
//! // A lone validator leads view 1 and asks for a block to propose.
//! let actions = machine.start();
//! assert!(!actions.is_empty());
//! assert_eq!(machine.view(), 1);
//! # let _ = Event::Tick;
//! ```

pub mod driver;
pub mod error;
pub mod gossip;
pub mod machine;
pub mod messages;
pub mod runtime;
pub mod sync;

#[cfg(test)]
mod simulation;

pub use driver::NetworkView;
pub use error::{ConsensusError, SyncFailure};
pub use machine::{Action, Anchor, Config, Event, Machine};
pub use messages::{Certificate, Message, Proposal, ValidatorIndex, Validators, Vote, VoteKind};
pub use runtime::{ConsensusNetwork, Runtime, TokioRuntime};
pub use sync::SyncServer;
