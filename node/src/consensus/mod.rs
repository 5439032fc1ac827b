//! Consensus: Simplex BFT finality for the chain.
//!
//! [`machine`] is the protocol as a pure state machine, [`messages`] what validators send each
//! other, [`gossip`] what a node checks before it forwards one, and [`driver`] connects the
//! machine to the network, the clock, the chain and the write-ahead log of this validator's
//! votes.

pub mod driver;
pub mod gossip;
pub mod machine;
pub mod messages;

#[cfg(test)]
mod simulation;

pub use machine::{Action, Anchor, Config, Event, Machine};
pub use messages::{Certificate, Message, Proposal, ValidatorIndex, Vote, VoteKind};
