//! A stranger's connections, made by bare libp2p swarms that speak no Cairn protocol: one
//! identity opening many connections keeps two, and many identities from one host are held to
//! the node's inbound limit; the connections past the limits are closed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{SwarmEvent, dummy};
use libp2p::{Multiaddr, Swarm, noise, tcp, yamux};
use tokio::sync::mpsc;

mod support;

use support::node;

const PER_PEER: usize = cairn_p2p::MAX_CONNECTIONS_PER_PEER as usize;
const INBOUND: usize = cairn_p2p::MAX_INBOUND_CONNECTIONS as usize;

/// What happened to one of an attacker's connections.
#[derive(Debug)]
enum Outcome {
    Opened,
    Closed,
    Failed,
}

/// A swarm with no protocols whose connections stay open until the other side closes them.
fn attacker() -> Swarm<dummy::Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| dummy::Behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build()
}

/// Dials `target` `times` times from `swarm`, then reports what happens to each connection.
fn attack(
    mut swarm: Swarm<dummy::Behaviour>,
    target: Multiaddr,
    times: usize,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    for _ in 0..times {
        let dial = DialOpts::unknown_peer_id().address(target.clone()).build();
        swarm.dial(dial).unwrap();
    }
    tokio::spawn(async move {
        loop {
            let outcome = match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => Outcome::Opened,
                SwarmEvent::ConnectionClosed { .. } => Outcome::Closed,
                SwarmEvent::OutgoingConnectionError { .. } => Outcome::Failed,
                _ => continue,
            };
            if outcomes.send(outcome).is_err() {
                return;
            }
        }
    });
}

/// The attackers' connections so far.
#[derive(Debug, Default)]
struct Tally {
    opened: usize,
    closed: usize,
    failed: usize,
}

impl Tally {
    /// Counts outcomes until `done` holds. A node without limits refuses nothing, and the
    /// test fails when the wait runs out.
    async fn until(
        &mut self,
        outcomes: &mut mpsc::UnboundedReceiver<Outcome>,
        done: impl Fn(&Tally) -> bool,
    ) {
        while !done(self) {
            let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
                .await
                .unwrap_or_else(|_| panic!("the wait ran out at {self:?}"))
                .expect("the attackers run");
            match outcome {
                Outcome::Opened => self.opened += 1,
                Outcome::Closed => self.closed += 1,
                Outcome::Failed => self.failed += 1,
            }
        }
    }

    fn refused(&self) -> usize {
        self.closed + self.failed
    }
}

async fn address_of(node: &cairn_p2p::NetworkHandle) -> Multiaddr {
    node.status().await.unwrap().listen_addrs[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_one_peer_opening_many_connections_keeps_two() {
    let (node, _events) = node(vec![]).await;
    let (outcomes, mut received) = mpsc::unbounded_channel();
    let dials = 8;
    let swarm = attacker();
    let attacker_id = *swarm.local_peer_id();
    attack(swarm, address_of(&node).await, dials, outcomes);
    let mut tally = Tally::default();
    tally
        .until(&mut received, |t| t.refused() >= dials - PER_PEER)
        .await;
    assert_eq!(tally.opened - tally.closed, PER_PEER, "{tally:?}");
    assert_eq!(node.status().await.unwrap().peers, vec![attacker_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_many_identities_from_one_host_are_held_to_the_inbound_limit() {
    let (node, _events) = node(vec![]).await;
    let target = address_of(&node).await;
    let (outcomes, mut received) = mpsc::unbounded_channel();
    let (attackers, wave) = (INBOUND + 24, 20);
    let mut tally = Tally::default();
    // In waves, each dial answered before the next wave, so that the node's limit on
    // handshakes under way (32) is not what refuses them.
    for sent in (wave..=attackers).step_by(wave) {
        for _ in 0..wave {
            attack(attacker(), target.clone(), 1, outcomes.clone());
        }
        tally
            .until(&mut received, |t| t.opened + t.failed >= sent)
            .await;
    }
    tally
        .until(&mut received, |t| t.refused() >= attackers - INBOUND)
        .await;
    assert_eq!(tally.opened - tally.closed, INBOUND, "{tally:?}");
    assert_eq!(node.status().await.unwrap().peers.len(), INBOUND);
}
