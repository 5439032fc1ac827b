//! What the p2p tests share: a network on loopback with small topic limits.
#![allow(clippy::unwrap_used)]

use cairn_p2p::{Keypair, NetworkConfig, NetworkEvents, NetworkHandle, TopicLimits, start};

const LIMITS: TopicLimits = TopicLimits {
    transactions: 1024,
    proposals: 1 << 20,
    votes: 1024,
    provider_adverts: 1024,
};

/// A node listening on a free loopback port, joining through `bootnodes`.
pub async fn node(bootnodes: Vec<cairn_p2p::Multiaddr>) -> (NetworkHandle, NetworkEvents) {
    start(NetworkConfig {
        keypair: Keypair::generate_ed25519(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootnodes,
        chain_id: 7,
        genesis_hash: [1; 32],
        mdns: false,
        limits: LIMITS,
        budgets: cairn_p2p::PeerBudgets::default(),
    })
    .await
    .unwrap()
}
