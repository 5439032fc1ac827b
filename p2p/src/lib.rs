//! # cairn-p2p
//!
//! Cairn's peer-to-peer layer. It moves bytes between nodes and knows nothing about blocks:
//! the node validates every gossip message before it is forwarded.
//!
//! This crate holds, for now, the naming rules that every node must agree on before any
//! libp2p traffic flows; the libp2p `NetworkBehaviour` (gossipsub, Kademlia, identify, ping,
//! request/response) joins it with the multi-node network.
//!
//! ## How data flows through it
//! A message published on a [`Topic`] is identified by [`message_id`]: blake3 of the topic and
//! the payload, so the same payload on two topics is two messages, and a duplicate is
//! recognised by content, whoever relays it. Topic names carry the chain id and genesis hash,
//! so nodes of different chains never mix gossip.
//!
//! ## Example
//! ```
//! use cairn_p2p::{Topic, TopicKind, message_id};
//!
//! let topic = Topic::new(TopicKind::Transactions, 31337, [7; 32]);
//! assert!(topic.name().starts_with("/cairn/31337/0707"));
//! assert_ne!(message_id(&topic, b"tx"), message_id(&Topic::new(TopicKind::Votes, 31337, [7; 32]), b"tx"));
//! ```

/// What a gossip topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicKind {
    /// Signed transactions.
    Transactions,
    /// Block proposals.
    Proposals,
    /// Consensus votes.
    Votes,
    /// Storage and compute providers' adverts.
    ProviderAdverts,
}

impl TopicKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Transactions => "transactions",
            Self::Proposals => "proposals",
            Self::Votes => "votes",
            Self::ProviderAdverts => "provider-adverts",
        }
    }
}

/// A gossip topic of one chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic {
    name: String,
}

impl Topic {
    /// The topic of `kind` on the chain with this id and genesis hash.
    pub fn new(kind: TopicKind, chain_id: u64, genesis_hash: [u8; 32]) -> Self {
        let genesis: String = genesis_hash.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            name: format!("/cairn/{chain_id}/{genesis}/{}/1", kind.as_str()),
        }
    }

    /// The topic's wire name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The identity of a gossip message: blake3(topic ‖ data), length-prefixed so that no topic
/// and payload pair can collide with another.
pub fn message_id(topic: &Topic, data: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("cairn gossip message id v1");
    hasher.update(&(topic.name.len() as u64).to_le_bytes());
    hasher.update(topic.name.as_bytes());
    hasher.update(data);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_separate_chains_and_kinds() {
        let a = Topic::new(TopicKind::Votes, 1, [0; 32]);
        assert_ne!(a, Topic::new(TopicKind::Votes, 2, [0; 32]));
        assert_ne!(a, Topic::new(TopicKind::Votes, 1, [1; 32]));
        assert_ne!(a, Topic::new(TopicKind::Proposals, 1, [0; 32]));
        assert_eq!(message_id(&a, b"x"), message_id(&a.clone(), b"x"));
        assert_ne!(message_id(&a, b"x"), message_id(&a, b"y"));
    }
}
