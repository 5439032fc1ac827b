//! `cairn bench flood`: one node of a loopback testnet flooded by a misbehaving peer while
//! transfers are sent. The same load runs twice in one run, calm and then under the flood, and
//! the report sets the two side by side: finality latency, what the attacker managed to send,
//! how soon it was cut off, and the process's memory.
//!
//! The attackers are real libp2p nodes (the node's own network stack, each with its own
//! identity) that join through the victim (node 1), one for each [`Attack`]:
//! - one replays every proposal, vote and certificate it hears in new envelopes, many times
//!   each;
//! - one publishes junk proposals (random bytes) and votes of this epoch with broken
//!   signatures;
//! - one sends malformed requests, many at a time.
//!
//! It fails unless finality goes on under the flood, every attacker is disconnected and stays
//! out, and the memory stays under [`RSS_GROWTH_CEILING_MIB`] above the calm phase's peak.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{BenchError, Result};
use crate::network::{Load, NetworkReport, Testnet};
use cairn_consensus::messages::{Envelope, Message, Vote, VoteKind};
use cairn_p2p::{NetworkConfig, NetworkEvent, NetworkHandle, PeerBudgets, TopicKind, TopicLimits};
use cairn_primitives::{Canonical, Signature};

/// How much more memory (resident, of the whole process: the four validators and the three
/// attackers) the flood may cost than the calm phase's peak.
pub const RSS_GROWTH_CEILING_MIB: u64 = 512;
/// Copies of each heard vote or certificate the replaying attacker sends: enough to go past a
/// peer's budget for copies.
const REPLAYS: u64 = 1_000;
/// Copies of each heard proposal: fewer, since the attacker (in this process) keeps what it
/// publishes in its own gossip cache for a few seconds, and the figure is the process's memory.
const PROPOSAL_REPLAYS: u64 = 20;
/// Malformed requests the attacker keeps in flight.
const REQUESTS_IN_FLIGHT: usize = 32;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct FloodOptions {
    /// Validators.
    pub nodes: usize,
    /// Transfers submitted per second, in both phases.
    pub tx_per_sec: u64,
    /// Length of each phase.
    pub phase: Duration,
    /// Target block interval.
    pub block_time_ms: u64,
}

/// The ways the attackers flood; each attacker is a peer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Attack {
    /// Replays every proposal, vote and certificate it hears, [`REPLAYS`] times each in new
    /// envelopes: valid messages, as many as it can send.
    Replay,
    /// Junk proposals (random bytes) and votes of the current epoch with broken signatures.
    Junk,
    /// Malformed requests, [`REQUESTS_IN_FLIGHT`] at a time.
    Requests,
}

/// What one attacker did and what became of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttackerReport {
    /// How it attacked.
    pub attack: Attack,
    /// Consensus messages it heard.
    pub heard: u64,
    /// Gossip messages it published.
    pub published: u64,
    /// Requests it sent.
    pub requests: u64,
    /// Requests the victim answered.
    pub answered: u64,
    /// When, after its flood began, the victim closed its connection (ms).
    pub disconnected_after_ms: Option<u64>,
    /// Whether the victim was connected to it at the end (it keeps re-dialling).
    pub connected_at_end: bool,
}

/// Both phases side by side.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FloodReport {
    /// The load without a flood.
    pub calm: NetworkReport,
    /// The same load while the attackers flood node 1.
    pub flooded: NetworkReport,
    /// The attackers.
    pub attackers: Vec<AttackerReport>,
    /// Resident memory of the process at the calm phase's peak (MiB).
    pub calm_rss_mib: u64,
    /// Its peak under the flood (MiB).
    pub flooded_rss_mib: u64,
    /// The allowed growth (MiB).
    pub rss_growth_ceiling_mib: u64,
}

/// Runs both phases on a testnet laid out in `workdir`.
pub async fn run(options: FloodOptions, workdir: &Path) -> Result<FloodReport> {
    let testnet = Testnet::launch(workdir, options.nodes, options.block_time_ms).await?;
    let peak_rss = Arc::new(AtomicU64::new(resident_mib()));
    let sampler = {
        let peak = peak_rss.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(resident_mib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let drain = Duration::from_secs(10);

    let mut load = Load::new(&testnet, options.tx_per_sec)?;
    let ends = Instant::now() + options.phase;
    load.run(&testnet, ends, ends + drain).await?;
    let calm = load.report(options.nodes, options.block_time_ms);
    let calm_rss_mib = peak_rss.swap(resident_mib(), Ordering::Relaxed);

    let victim = testnet
        .addresses
        .first()
        .cloned()
        .ok_or_else(|| BenchError::Check("the testnet has no address".into()))?;
    let victim_peer = testnet.nodes[0]
        .peer_id()
        .ok_or_else(|| BenchError::Check("node 1 is not networked".into()))?;
    let genesis_hash = testnet.nodes[0].chain().genesis_hash()?.0;
    let until = Instant::now() + options.phase;
    let mut floods = Vec::new();
    for attack in [Attack::Replay, Attack::Junk, Attack::Requests] {
        let attacker = Attacker::start(victim.clone(), victim_peer, genesis_hash).await?;
        floods.push(tokio::spawn(attacker.flood(attack, until)));
    }
    load.restart();
    let ends = Instant::now() + options.phase;
    load.run(&testnet, ends, ends + drain).await?;
    let flooded = load.report(options.nodes, options.block_time_ms);
    let victims_peers = testnet.nodes[0].peers().await;
    let mut attackers = Vec::new();
    for flood in floods {
        let (mut report, peer) = flood
            .await
            .map_err(|e| BenchError::Check(format!("an attacker failed: {e}")))?;
        // Asked of the victim: the attacker sees each of its refused redials connect for a
        // moment.
        report.connected_at_end = victims_peers.contains(&peer);
        attackers.push(report);
    }
    let flooded_rss_mib = peak_rss.load(Ordering::Relaxed);
    sampler.abort();
    testnet.shutdown().await;

    let report = FloodReport {
        calm,
        flooded,
        attackers,
        calm_rss_mib,
        flooded_rss_mib,
        rss_growth_ceiling_mib: RSS_GROWTH_CEILING_MIB,
    };
    check(&report)?;
    Ok(report)
}

/// What the flood must not achieve.
fn check(report: &FloodReport) -> Result<()> {
    let fail = |why: String| Err(BenchError::Check(why));
    if report.flooded.finalized == 0 || report.flooded.blocks_per_sec == 0.0 {
        return fail("finality stopped under the flood".into());
    }
    if report.flooded.finalized < report.flooded.submitted * 9 / 10 {
        return fail(format!(
            "under the flood only {} of {} transfers were finalized",
            report.flooded.finalized, report.flooded.submitted
        ));
    }
    for attacker in &report.attackers {
        if attacker.disconnected_after_ms.is_none() || attacker.connected_at_end {
            return fail(format!(
                "the {:?} attacker was not disconnected and kept out: {attacker:?}",
                attacker.attack
            ));
        }
    }
    let growth = report.flooded_rss_mib.saturating_sub(report.calm_rss_mib);
    if growth > RSS_GROWTH_CEILING_MIB {
        return fail(format!(
            "the flood grew memory by {growth} MiB, over the ceiling of {RSS_GROWTH_CEILING_MIB} MiB"
        ));
    }
    Ok(())
}

/// The resident memory of this process (MiB); 0 where /proc is not there.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// A misbehaving peer.
struct Attacker {
    network: NetworkHandle,
    events: cairn_p2p::NetworkEvents,
    victim: cairn_p2p::PeerId,
}

impl Attacker {
    async fn start(
        victim: cairn_p2p::Multiaddr,
        victim_peer: cairn_p2p::PeerId,
        genesis_hash: [u8; 32],
    ) -> Result<Self> {
        let config = NetworkConfig {
            keypair: cairn_p2p::Keypair::generate_ed25519(),
            listen: vec![
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .map_err(|e| BenchError::Check(format!("{e}")))?,
            ],
            bootnodes: vec![victim],
            chain_id: cairn_chain::genesis::Genesis::dev().chain_id,
            genesis_hash,
            mdns: false,
            limits: TopicLimits {
                transactions: cairn_primitives::MAX_TX_SIZE,
                proposals: cairn_consensus::messages::MAX_PROPOSAL_SIZE,
                votes: 1 << 17,
                provider_adverts: 1 << 14,
            },
            budgets: PeerBudgets::default(),
        };
        let (network, events) = cairn_p2p::start(config).await?;
        Ok(Self {
            network,
            events,
            victim: victim_peer,
        })
    }

    async fn connected_to_victim(&self) -> bool {
        self.network
            .status()
            .await
            .is_ok_and(|status| status.peers.contains(&self.victim))
    }

    /// Waits until it hears the network's gossip (so that its own reaches the victim), then
    /// floods as `attack` says until `until`; what it did, and its peer id.
    async fn flood(
        mut self,
        attack: Attack,
        until: Instant,
    ) -> (AttackerReport, cairn_p2p::PeerId) {
        let mut report = AttackerReport {
            attack,
            heard: 0,
            published: 0,
            requests: 0,
            answered: 0,
            disconnected_after_ms: None,
            connected_at_end: false,
        };
        let mut epoch = 0;
        while Instant::now() < until && report.heard == 0 {
            if let Ok(Some(NetworkEvent::Gossip(message))) =
                tokio::time::timeout(Duration::from_millis(100), self.events.recv()).await
                && let Ok(envelope) = Envelope::decode(&message.data)
            {
                epoch = envelope.epoch;
                report.heard += 1;
            }
        }
        let began = Instant::now();
        let mut cut_off = None;
        let mut counter = 0u64;
        let mut requests = tokio::task::JoinSet::new();
        let mut last_heard = None;
        while Instant::now() < until {
            if cut_off.is_none() && !self.connected_to_victim().await {
                cut_off = Some(began.elapsed().as_millis() as u64);
            }
            match attack {
                Attack::Replay => {
                    // A new message if one comes within 100 ms, else the last one again: the
                    // flood does not wait on how much the network says (a quiet or slow
                    // phase once left the attacker under its budget and never banned).
                    let heard =
                        match tokio::time::timeout(Duration::from_millis(100), self.events.recv())
                            .await
                        {
                            Ok(Some(NetworkEvent::Gossip(message))) => {
                                Envelope::decode(&message.data)
                                    .ok()
                                    .map(|envelope| (message.kind, envelope))
                            }
                            _ => None,
                        };
                    if let Some(new) = heard {
                        report.heard += 1;
                        last_heard = Some(new);
                    }
                    let Some((kind, envelope)) = last_heard.clone() else {
                        continue;
                    };
                    let copies = match envelope.message {
                        Message::Proposal(_) => PROPOSAL_REPLAYS,
                        _ => REPLAYS,
                    };
                    for copy_index in 0..copies {
                        // A burst takes a second or more on a loaded machine: look for the
                        // ban within it too, or one that comes in the phase's last burst is
                        // never seen (a CI run failed so: banned, unseen).
                        if copy_index % 100 == 99
                            && cut_off.is_none()
                            && !self.connected_to_victim().await
                        {
                            cut_off = Some(began.elapsed().as_millis() as u64);
                            break;
                        }
                        counter += 1;
                        let copy = Envelope {
                            resend: counter,
                            ..envelope.clone()
                        };
                        let sent = self.network.publish(kind, copy.encode()).await;
                        report.published += u64::from(sent.is_ok());
                    }
                }
                Attack::Junk => {
                    counter += 1;
                    let mut junk = vec![0u8; 64 * 1024];
                    blake3::Hasher::new()
                        .update(&counter.to_le_bytes())
                        .finalize_xof()
                        .fill(&mut junk);
                    let forged = Envelope {
                        resend: counter,
                        epoch,
                        message: Message::Vote(Vote {
                            view: 1_000 + counter,
                            kind: VoteKind::Nullify,
                            signer: (counter % 4) as u32,
                            signature: Signature::from([0x11; 64]),
                        }),
                    };
                    let sent = self.network.publish(TopicKind::Proposals, junk).await;
                    report.published += u64::from(sent.is_ok());
                    let sent = self
                        .network
                        .publish(TopicKind::Votes, forged.encode())
                        .await;
                    report.published += u64::from(sent.is_ok());
                    tokio::task::yield_now().await;
                }
                Attack::Requests => {
                    while requests.len() < REQUESTS_IN_FLIGHT {
                        counter += 1;
                        let junk = blake3::hash(&counter.to_le_bytes()).as_bytes().to_vec();
                        let network = self.network.clone();
                        let victim = self.victim;
                        requests.spawn(async move {
                            let answer = tokio::time::timeout(
                                Duration::from_secs(2),
                                network.request(Some(victim), junk),
                            )
                            .await;
                            matches!(answer, Ok(Ok(_)))
                        });
                        report.requests += 1;
                    }
                    if let Some(Ok(answered)) = requests.join_next().await {
                        report.answered += u64::from(answered);
                        if !answered {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
        }
        requests.abort_all();
        report.disconnected_after_ms = cut_off;
        (report, self.network.peer_id())
    }
}
