//! Gossip topics, one set per chain, and the identity of a gossip message.

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
    /// Every topic a node subscribes to.
    pub const ALL: [TopicKind; 4] = [
        Self::Transactions,
        Self::Proposals,
        Self::Votes,
        Self::ProviderAdverts,
    ];

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

/// The identity of a gossip message on the topic named `topic`: blake3(topic ‖ data),
/// length-prefixed so that no topic and payload pair can collide with another.
pub fn message_id(topic: &str, data: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("cairn gossip message id v1");
    hasher.update(&(topic.len() as u64).to_le_bytes());
    hasher.update(topic.as_bytes());
    hasher.update(data);
    *hasher.finalize().as_bytes()
}
