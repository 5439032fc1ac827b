//! # cairn-p2p
//!
//! Cairn's peer-to-peer layer. It moves bytes between nodes and knows nothing about blocks:
//! the node validates every gossip message before it is forwarded.
//!
//! One libp2p `NetworkBehaviour` (TCP + noise + yamux) combines a block list, connection
//! limits, gossipsub, Kademlia, identify, ping, opt-in mDNS and a request/response protocol.
//! [`start`] runs it on its own task; the node drives it through a [`NetworkHandle`] and hears
//! from it on bounded queues of [`NetworkEvent`]s, one per kind ([`NetworkEvents`]).
//!
//! Every peer is held to [`guard`]'s budgets: per-topic rates of messages and bytes, requests
//! per second and waiting at once; over budget, its messages are dropped unforwarded, and a
//! peer that keeps at it, or sends what the node judges invalid, is disconnected and banned.
//!
//! ## How data flows through it
//! - **Gossip.** [`NetworkHandle::publish`] sends bytes on a [`Topic`]. An incoming message is
//!   held by gossipsub and handed to the node as [`NetworkEvent::Gossip`]; the node answers with
//!   a [`Verdict`] (accept: forward it; reject: drop it and lower the sender's score; ignore:
//!   drop it). A message over its topic's size limit is rejected before the node sees it, and
//!   when the node's queue is full a message is ignored rather than queued without bound.
//! - **Identity.** A message is identified by [`message_id`]: blake3 of the topic and the
//!   payload, so the same payload on two topics is two messages, and a duplicate is recognised
//!   by content whoever relays it. Topic names carry the chain id and genesis hash, so nodes of
//!   different chains never mix gossip.
//! - **Requests.** [`NetworkHandle::request`] sends bytes to one peer and waits for its answer;
//!   a peer's request arrives as [`NetworkEvent::Request`] and is answered with
//!   [`NetworkHandle::respond`]. Both directions are size-limited.
//!
//! ## Example
//! ```
//! use cairn_p2p::{Topic, TopicKind, message_id};
//!
//! let topic = Topic::new(TopicKind::Transactions, 31337, [7; 32]);
//! assert!(topic.name().starts_with("/cairn/31337/0707"));
//! let votes = Topic::new(TopicKind::Votes, 31337, [7; 32]);
//! assert_ne!(message_id(topic.name(), b"tx"), message_id(votes.name(), b"tx"));
//! ```
//!
//! Starting a node's network (see `tests/` for two nodes exchanging gossip):
//! ```no_run
//! # async fn example() -> cairn_p2p::Result<()> {
//! use cairn_p2p::{NetworkConfig, PeerBudgets, TopicKind, TopicLimits, start};
//!
//! let config = NetworkConfig {
//!     keypair: libp2p::identity::Keypair::generate_ed25519(),
//!     listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a valid address")],
//!     bootnodes: vec![],
//!     chain_id: 31337,
//!     genesis_hash: [0; 32],
//!     mdns: false,
//!     limits: TopicLimits { transactions: 1 << 17, proposals: 1 << 23, votes: 1 << 17, provider_adverts: 1 << 14 },
//!     budgets: PeerBudgets::default(),
//! };
//! let (network, mut events) = start(config).await?;
//! network.publish(TopicKind::Transactions, b"signed transaction".to_vec()).await.ok();
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```

mod codec;
pub mod error;
pub mod guard;
mod network;
mod topics;

pub use error::{P2pError, Result};
pub use guard::{Offence, PeerBudgets};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr};
pub use network::{
    GossipMessage, InboundId, MAX_CONNECTIONS_PER_PEER, MAX_INBOUND_CONNECTIONS, MAX_RESPONSE_SIZE,
    NetworkConfig, NetworkEvent, NetworkEvents, NetworkHandle, NetworkStatus, TopicLimits, Verdict,
    start,
};
pub use topics::{Topic, TopicKind, message_id};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_separate_chains_and_kinds() {
        let a = Topic::new(TopicKind::Votes, 1, [0; 32]);
        assert_ne!(a, Topic::new(TopicKind::Votes, 2, [0; 32]));
        assert_ne!(a, Topic::new(TopicKind::Votes, 1, [1; 32]));
        assert_ne!(a, Topic::new(TopicKind::Proposals, 1, [0; 32]));
        assert_eq!(
            message_id(a.name(), b"x"),
            message_id(a.clone().name(), b"x")
        );
        assert_ne!(message_id(a.name(), b"x"), message_id(a.name(), b"y"));
    }
}
