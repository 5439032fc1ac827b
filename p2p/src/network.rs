//! The libp2p swarm, its one `NetworkBehaviour`, and the handle the node drives it with.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, TopicHash};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, identify, kad,
    mdns, noise, ping, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::codec::BytesCodec;
use crate::error::{P2pError, Result};
use crate::guard::{Admit, Guard, Offence, PeerBudgets};
use crate::topics::{Topic, TopicKind, message_id};

/// Commands waiting for the swarm, and events of each kind waiting for the node.
const CHANNEL_CAPACITY: usize = 1024;
/// Inbound requests the node has not answered yet, over all peers; more are refused (each
/// peer's own share is [`PeerBudgets::pending_requests`]).
const MAX_PENDING_INBOUND: usize = 256;
/// Addresses of one peer (learnt from its identify message) put in the routing table.
const MAX_ADDRESSES_PER_PEER: usize = 8;

/// Connections the node accepts from others (it opens up to 64 itself, 128 in all).
pub const MAX_INBOUND_CONNECTIONS: u32 = 96;
/// Connections one peer may hold with the node.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// How many connections the node keeps: enough for a network of a few hundred nodes, few
/// enough that one host opening connections cannot exhaust the node's sockets or memory.
fn connection_limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(32))
        .with_max_pending_outgoing(Some(64))
        .with_max_established_incoming(Some(MAX_INBOUND_CONNECTIONS))
        .with_max_established_outgoing(Some(64))
        .with_max_established(Some(128))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
}
/// Largest request: requests name what they want, they carry no bulk data.
const MAX_REQUEST_SIZE: usize = 64 * 1024;
/// Largest response: a batch of blocks (a piece of data is far smaller).
pub const MAX_RESPONSE_SIZE: usize = 32 * 1024 * 1024;

/// The largest message on each topic; larger ones are rejected (and count against the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// Transactions.
    pub transactions: usize,
    /// Block proposals.
    pub proposals: usize,
    /// Votes and certificates.
    pub votes: usize,
    /// Provider adverts.
    pub provider_adverts: usize,
}

impl TopicLimits {
    fn of(&self, kind: TopicKind) -> usize {
        match kind {
            TopicKind::Transactions => self.transactions,
            TopicKind::Proposals => self.proposals,
            TopicKind::Votes => self.votes,
            TopicKind::ProviderAdverts => self.provider_adverts,
        }
    }
}

/// How to start the network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// This node's identity.
    pub keypair: Keypair,
    /// Addresses to listen on (`/ip4/127.0.0.1/tcp/0` picks a free port).
    pub listen: Vec<Multiaddr>,
    /// Peers to join through; an address ending in `/p2p/<peer id>` is re-dialled whenever
    /// that peer is disconnected.
    pub bootnodes: Vec<Multiaddr>,
    /// The chain id (topic namespace).
    pub chain_id: u64,
    /// The genesis hash (topic namespace).
    pub genesis_hash: [u8; 32],
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
    /// Per-topic size limits.
    pub limits: TopicLimits,
    /// What each peer may send.
    pub budgets: PeerBudgets,
}

/// What the node decided about a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Invalid: drop it and penalize the peer that sent it.
    Reject,
    /// Useless but not malicious (too old, not for this node): drop it quietly.
    Ignore,
    /// A copy of what the node already holds (a vote re-sent in a new envelope): drop it;
    /// a peer sending more copies than its budget pays for them.
    Duplicate,
}

/// A gossip message awaiting the node's [`Verdict`].
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The topic it arrived on.
    pub kind: TopicKind,
    /// The peer that forwarded it.
    pub source: PeerId,
    /// The peer that published it (gossipsub signs it), if it says.
    pub author: Option<PeerId>,
    /// Its identity, to pass back with the verdict.
    pub id: gossipsub::MessageId,
    /// The payload.
    pub data: Vec<u8>,
}

/// An inbound request's number, to answer it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundId(u64);

/// What the network tells the node, on four bounded queues so that no kind of traffic crowds
/// out another: consensus gossip (and peers connecting), transactions, provider adverts, and
/// peers' requests. A full queue drops what does not fit (gossip is ignored, a request
/// refused), blaming nobody.
#[derive(Debug)]
pub struct NetworkEvents {
    /// Proposals, votes and certificates; peers connecting and disconnecting.
    pub consensus: mpsc::Receiver<NetworkEvent>,
    /// Transactions.
    pub transactions: mpsc::Receiver<NetworkEvent>,
    /// Provider adverts.
    pub adverts: mpsc::Receiver<NetworkEvent>,
    /// Peers' requests.
    pub requests: mpsc::Receiver<NetworkEvent>,
}

impl NetworkEvents {
    /// The next event of any kind, consensus first, then requests, transactions and adverts;
    /// `None` once the network has stopped.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        tokio::select! {
            biased;
            Some(event) = self.consensus.recv() => Some(event),
            Some(event) = self.requests.recv() => Some(event),
            Some(event) = self.transactions.recv() => Some(event),
            Some(event) = self.adverts.recv() => Some(event),
            else => None,
        }
    }
}

/// The sending halves of [`NetworkEvents`].
struct EventSenders {
    consensus: mpsc::Sender<NetworkEvent>,
    transactions: mpsc::Sender<NetworkEvent>,
    adverts: mpsc::Sender<NetworkEvent>,
    requests: mpsc::Sender<NetworkEvent>,
}

impl EventSenders {
    fn new() -> (Self, NetworkEvents) {
        let (consensus, consensus_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (transactions, transactions_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (adverts, adverts_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (requests, requests_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let senders = Self {
            consensus,
            transactions,
            adverts,
            requests,
        };
        let receivers = NetworkEvents {
            consensus: consensus_rx,
            transactions: transactions_rx,
            adverts: adverts_rx,
            requests: requests_rx,
        };
        (senders, receivers)
    }

    fn gossip(&self, kind: TopicKind) -> &mpsc::Sender<NetworkEvent> {
        match kind {
            TopicKind::Proposals | TopicKind::Votes => &self.consensus,
            TopicKind::Transactions => &self.transactions,
            TopicKind::ProviderAdverts => &self.adverts,
        }
    }
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message: answer with [`NetworkHandle::validate`].
    Gossip(GossipMessage),
    /// A peer's request: answer with [`NetworkHandle::respond`].
    Request {
        /// Who asks.
        peer: PeerId,
        /// The request's number.
        id: InboundId,
        /// The request.
        data: Vec<u8>,
    },
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer's last connection closed.
    PeerDisconnected(PeerId),
}

/// A snapshot of the network's state.
#[derive(Debug, Clone)]
pub struct NetworkStatus {
    /// This node's peer id.
    pub peer_id: PeerId,
    /// Where it listens.
    pub listen_addrs: Vec<Multiaddr>,
    /// Connected peers.
    pub peers: Vec<PeerId>,
}

/// Where the answer to an outbound request goes: the peer that answered, and its answer.
type ReplySender = oneshot::Sender<Result<(PeerId, Vec<u8>)>>;

enum Command {
    Publish {
        kind: TopicKind,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    Validate {
        id: gossipsub::MessageId,
        source: PeerId,
        author: Option<PeerId>,
        verdict: Verdict,
    },
    Request {
        peer: Option<PeerId>,
        data: Vec<u8>,
        reply: ReplySender,
    },
    Respond {
        id: InboundId,
        data: Vec<u8>,
    },
    Status {
        reply: oneshot::Sender<NetworkStatus>,
    },
    Penalize {
        peer: PeerId,
        offence: Offence,
    },
}

/// The node's side of the network: cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl NetworkHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Publishes `data` on a topic.
    pub async fn publish(&self, kind: TopicKind, data: Vec<u8>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Publish { kind, data, reply }).await?;
        answer.await.map_err(|_| P2pError::Stopped)?
    }

    /// Passes the node's verdict on a gossip message back to gossipsub.
    pub async fn validate(&self, message: &GossipMessage, verdict: Verdict) -> Result<()> {
        self.send(Command::Validate {
            id: message.id.clone(),
            source: message.source,
            author: message.author,
            verdict,
        })
        .await
    }

    /// Sends a request to `peer` (or to some connected peer) and waits for the answer.
    pub async fn request(&self, peer: Option<PeerId>, data: Vec<u8>) -> Result<(PeerId, Vec<u8>)> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request { peer, data, reply }).await?;
        answer.await.map_err(|_| P2pError::Stopped)?
    }

    /// Answers an inbound request.
    pub async fn respond(&self, id: InboundId, data: Vec<u8>) -> Result<()> {
        self.send(Command::Respond { id, data }).await
    }

    /// Counts an offence against `peer` (a malformed request, say): enough of them ban it.
    /// (Gossip the node rejects through [`NetworkHandle::validate`] counts already.)
    pub async fn penalize(&self, peer: PeerId, offence: Offence) -> Result<()> {
        self.send(Command::Penalize { peer, offence }).await
    }

    /// The network's state.
    pub async fn status(&self) -> Result<NetworkStatus> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        answer.await.map_err(|_| P2pError::Stopped)
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    // First: a banned peer or a connection over the limits is refused before any other
    // behaviour spends anything on it.
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    kademlia: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    requests: request_response::Behaviour<BytesCodec>,
}

/// Starts the network: listens, dials the bootnodes, and runs the swarm on its own task until
/// every [`NetworkHandle`] is dropped.
pub async fn start(config: NetworkConfig) -> Result<(NetworkHandle, NetworkEvents)> {
    let topics: Vec<(TopicKind, IdentTopic)> = TopicKind::ALL
        .iter()
        .map(|kind| {
            let topic = Topic::new(*kind, config.chain_id, config.genesis_hash);
            (*kind, IdentTopic::new(topic.name()))
        })
        .collect();
    let behaviour = |key: &Keypair| -> std::result::Result<
        Behaviour,
        Box<dyn std::error::Error + Send + Sync>,
    > {
        let peer_id = key.public().to_peer_id();
        let mut gossip_config = gossipsub::ConfigBuilder::default();
        gossip_config
            .validate_messages()
            .heartbeat_interval(Duration::from_millis(500))
            .message_id_fn(|message: &gossipsub::Message| {
                gossipsub::MessageId::from(
                    message_id(message.topic.as_str(), &message.data).to_vec(),
                )
            })
            .max_transmit_size(config.limits.proposals.max(config.limits.transactions) + 4096);
        for (kind, topic) in &topics {
            // The limit on the wire leaves room for gossipsub's own framing and signature.
            gossip_config.max_transmit_size_for_topic(config.limits.of(*kind) + 4096, topic.hash());
        }
        let mut gossipsub = gossipsub::Behaviour::new(
            MessageAuthenticity::Signed(key.clone()),
            gossip_config.build()?,
        )?;
        gossipsub.with_peer_score(
            score_params(&topics),
            gossipsub::PeerScoreThresholds::default(),
        )?;
        for (_, topic) in &topics {
            gossipsub.subscribe(topic)?;
        }
        let mut kademlia = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(StreamProtocol::new("/cairn/kad/1")),
        );
        kademlia.set_mode(Some(kad::Mode::Server));
        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };
        Ok(Behaviour {
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(connection_limits()),
            gossipsub,
            kademlia,
            identify: identify::Behaviour::new(identify::Config::new(
                "/cairn/id/1".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            mdns: mdns.into(),
            requests: request_response::Behaviour::with_codec(
                BytesCodec {
                    max_request: MAX_REQUEST_SIZE,
                    max_response: MAX_RESPONSE_SIZE,
                },
                [(
                    StreamProtocol::new("/cairn/request/1"),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(20))
                    .with_max_concurrent_streams(64),
            ),
        })
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_behaviour(behaviour)
        .map_err(|e| P2pError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();

    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| P2pError::Address {
                address: address.to_string(),
                detail: e.to_string(),
            })?;
    }
    // Wait until listening, so that the status reports real addresses from the start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !config.listen.is_empty() {
        match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Ok(SwarmEvent::NewListenAddr { .. }) => break,
            Ok(SwarmEvent::ListenerError { error, .. }) => {
                return Err(P2pError::Setup(error.to_string()));
            }
            Ok(_) => {}
            Err(_) => return Err(P2pError::Setup("timed out waiting to listen".into())),
        }
    }

    let peer_id = *swarm.local_peer_id();
    let (commands, command_receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let (events, event_receiver) = EventSenders::new();
    let mut task = NetworkTask {
        swarm,
        commands: command_receiver,
        events,
        topics: topics
            .iter()
            .map(|(kind, topic)| (topic.hash(), *kind))
            .collect(),
        topic_by_kind: topics.into_iter().collect(),
        limits: config.limits,
        guard: Guard::new(config.budgets),
        bootnodes: config.bootnodes,
        pending_inbound: BTreeMap::new(),
        next_inbound: 0,
        pending_outbound: HashMap::new(),
        next_peer: 0,
    };
    task.dial_bootnodes(true);
    tokio::spawn(task.run());
    Ok((NetworkHandle { commands, peer_id }, event_receiver))
}

/// The addresses from a peer's identify message that go into the routing table, and so to
/// other nodes looking for peers. Identify runs over an authenticated connection, but the
/// addresses are the peer's own word: none while it is under suspicion, a few at most.
fn addresses_to_route(
    guard: &mut Guard,
    peer: &PeerId,
    listen_addrs: Vec<Multiaddr>,
    now: Instant,
) -> Vec<Multiaddr> {
    if guard.is_suspect(peer, now) {
        return Vec::new();
    }
    listen_addrs
        .into_iter()
        .take(MAX_ADDRESSES_PER_PEER)
        .collect()
}

/// Peer scoring: invalid messages cost a peer dearly; a quiet topic costs nothing (a chain with
/// no transactions is not a misbehaving peer).
fn score_params(topics: &[(TopicKind, IdentTopic)]) -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams::default();
    for (_, topic) in topics {
        params.topics.insert(
            topic.hash(),
            gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -100.0,
                ..Default::default()
            },
        );
    }
    params
}

struct NetworkTask {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: EventSenders,
    topics: BTreeMap<TopicHash, TopicKind>,
    topic_by_kind: BTreeMap<TopicKind, IdentTopic>,
    limits: TopicLimits,
    guard: Guard,
    bootnodes: Vec<Multiaddr>,
    /// Requests waiting for the node's answer: who asked, and where the answer goes.
    pending_inbound: BTreeMap<InboundId, (PeerId, ResponseChannel<Vec<u8>>)>,
    next_inbound: u64,
    pending_outbound: HashMap<OutboundRequestId, ReplySender>,
    next_peer: usize,
}

impl NetworkTask {
    async fn run(mut self) {
        let mut redial = tokio::time::interval(Duration::from_secs(2));
        let mut bootstrap = tokio::time::interval(Duration::from_secs(30));
        let mut bans = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = redial.tick() => self.dial_bootnodes(false),
                _ = bootstrap.tick() => {
                    // Fails only while the routing table is empty; the next tick retries.
                    let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
                }
                _ = bans.tick() => {
                    for peer in self.guard.expired_bans(Instant::now()) {
                        self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                    }
                }
            }
        }
    }

    /// Dials every bootnode: all of them at start, afterwards those known by peer id and not
    /// connected (so a restarted peer is found again).
    fn dial_bootnodes(&mut self, first: bool) {
        for address in self.bootnodes.clone() {
            let peer = address.iter().find_map(|p| match p {
                Protocol::P2p(peer) => Some(peer),
                _ => None,
            });
            let dial = match peer {
                Some(peer) if peer == *self.swarm.local_peer_id() => continue,
                Some(peer) => {
                    if self.swarm.is_connected(&peer) {
                        continue;
                    }
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer, address.clone());
                    DialOpts::peer_id(peer)
                        .addresses(vec![address.clone()])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build()
                }
                None if first => DialOpts::unknown_peer_id().address(address.clone()).build(),
                None => continue,
            };
            if let Err(error) = self.swarm.dial(dial) {
                tracing::debug!(%address, %error, "cannot dial bootnode");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { kind, data, reply } => {
                let result = self.publish(kind, data);
                let _ = reply.send(result);
            }
            Command::Validate {
                id,
                source,
                author,
                verdict,
            } => {
                // The author pays for what it published; the forwarding peer only for what it
                // published itself: an honest relay forwards only what it accepted, and may
                // know less than this node (a block it has not seen, a vote it missed).
                let author = author.unwrap_or(source);
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Reject => {
                        self.offence(author, Offence::Invalid);
                        MessageAcceptance::Reject
                    }
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Duplicate => {
                        let scored = author == source;
                        let admit = self.guard.duplicate(author, scored, Instant::now());
                        self.enforce(author, admit);
                        MessageAcceptance::Ignore
                    }
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Command::Request { peer, data, reply } => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                let target = match peer {
                    Some(peer) => Some(peer),
                    None if peers.is_empty() => None,
                    None => {
                        self.next_peer = self.next_peer.wrapping_add(1);
                        Some(peers[self.next_peer % peers.len()])
                    }
                };
                match target {
                    Some(peer) => {
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .requests
                            .send_request(&peer, data);
                        self.pending_outbound.insert(id, reply);
                    }
                    None => {
                        let _ = reply.send(Err(P2pError::NoPeers));
                    }
                }
            }
            Command::Respond { id, data } => {
                if let Some((peer, channel)) = self.pending_inbound.remove(&id) {
                    self.guard.answered(&peer);
                    // Fails only if the peer gave up waiting.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .requests
                        .send_response(channel, data);
                }
            }
            Command::Penalize { peer, offence } => self.offence(peer, offence),
            Command::Status { reply } => {
                let _ = reply.send(NetworkStatus {
                    peer_id: *self.swarm.local_peer_id(),
                    listen_addrs: self.swarm.listeners().cloned().collect(),
                    peers: self.swarm.connected_peers().copied().collect(),
                });
            }
        }
    }

    fn publish(&mut self, kind: TopicKind, data: Vec<u8>) -> Result<()> {
        let max = self.limits.of(kind);
        if data.len() > max {
            return Err(P2pError::TooLarge {
                what: "gossip message",
                size: data.len(),
                max,
            });
        }
        let Some(topic) = self.topic_by_kind.get(&kind).cloned() else {
            return Err(P2pError::Publish(format!("no topic for {kind:?}")));
        };
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) => Ok(()),
            // Nobody listens yet (or the same bytes went out a moment ago): nothing to resend.
            Err(gossipsub::PublishError::Duplicate) => Ok(()),
            Err(error) => Err(P2pError::Publish(error.to_string())),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Requests(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.pending_inbound.len() >= MAX_PENDING_INBOUND {
                        // Dropping the channel tells the peer we are too busy.
                        return;
                    }
                    // Over its quota the request is refused (the peer sees its request fail and
                    // retries elsewhere or later): back-pressure, not an offence, since the
                    // quota also fills when this node is slow to answer.
                    if !self.guard.request(peer, Instant::now()) {
                        return;
                    }
                    self.next_inbound += 1;
                    let id = InboundId(self.next_inbound);
                    let event = NetworkEvent::Request {
                        peer,
                        id,
                        data: request,
                    };
                    if self.events.requests.try_send(event).is_ok() {
                        self.pending_inbound.insert(id, (peer, channel));
                    } else {
                        self.guard.answered(&peer);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_outbound.remove(&request_id) {
                        let _ = reply.send(Ok((peer, response)));
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Requests(
                request_response::Event::OutboundFailure {
                    peer,
                    request_id,
                    error,
                    ..
                },
            )) => {
                if let Some(reply) = self.pending_outbound.remove(&request_id) {
                    let _ = reply.send(Err(P2pError::Request {
                        peer: peer.to_string(),
                        detail: error.to_string(),
                    }));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Requests(
                request_response::Event::InboundFailure { .. }
                | request_response::Event::ResponseSent { .. },
            )) => self.forget_answered_requests(),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let now = Instant::now();
                for address in addresses_to_route(&mut self.guard, &peer_id, info.listen_addrs, now)
                {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer, address.clone());
                    let _ = self.swarm.dial(
                        DialOpts::peer_id(peer)
                            .addresses(vec![address])
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build(),
                    );
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                let _ = self
                    .events
                    .consensus
                    .try_send(NetworkEvent::PeerConnected(peer_id));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.guard.disconnected(&peer_id, Instant::now());
                let _ = self
                    .events
                    .consensus
                    .try_send(NetworkEvent::PeerDisconnected(peer_id));
            }
            _ => {}
        }
    }

    /// Drops answer channels whose peer is gone, so the pending map stays bounded.
    fn forget_answered_requests(&mut self) {
        let guard = &mut self.guard;
        self.pending_inbound.retain(|_, (peer, channel)| {
            let open = channel.is_open();
            if !open {
                guard.answered(peer);
            }
            open
        });
    }

    /// Whether a gossip message from `author` (relayed by `source`) is within the author's
    /// budget for `kind` (banning the author if this was one offence too many). A banned
    /// author's messages are dropped whoever relays them; going over budget is an offence only
    /// for a peer sending its own messages, since a relay forwards a burst it cannot shape.
    fn admit_gossip(
        &mut self,
        source: PeerId,
        author: Option<PeerId>,
        kind: TopicKind,
        bytes: usize,
    ) -> Admit {
        let now = Instant::now();
        let author = author.unwrap_or(source);
        if self.guard.is_banned(&author, now) {
            return Admit::No;
        }
        let admit = self
            .guard
            .gossip(author, kind, bytes, author == source, now);
        self.enforce(author, admit);
        admit
    }

    /// Counts an offence against `peer`, banning it if it is one too many.
    fn offence(&mut self, peer: PeerId, offence: Offence) {
        let admit = self.guard.offence(peer, offence, Instant::now());
        self.enforce(peer, admit);
    }

    /// Carries out the guard's decision on `peer`: a ban closes its connections.
    fn enforce(&mut self, peer: PeerId, admit: Admit) {
        if admit == Admit::Ban {
            self.ban(peer);
        }
    }

    /// Closes every connection to `peer` and refuses new ones until the ban ends.
    fn ban(&mut self, peer: PeerId) {
        tracing::info!(%peer, "banning a misbehaving peer");
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(peer);
        behaviour.kademlia.remove_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let verdict = match self.topics.get(&message.topic).copied() {
            None => Some(MessageAcceptance::Reject),
            Some(kind) if message.data.len() > self.limits.of(kind) => {
                self.offence(message.source.unwrap_or(source), Offence::Invalid);
                Some(MessageAcceptance::Reject)
            }
            Some(kind) => match self.admit_gossip(source, message.source, kind, message.data.len())
            {
                Admit::Yes => {
                    let event = NetworkEvent::Gossip(GossipMessage {
                        kind,
                        source,
                        author: message.source,
                        id: id.clone(),
                        data: message.data,
                    });
                    match self.events.gossip(kind).try_send(event) {
                        Ok(()) => None,
                        // The node is behind: drop the message without blaming the peer.
                        Err(_) => Some(MessageAcceptance::Ignore),
                    }
                }
                Admit::No | Admit::Ban => Some(MessageAcceptance::Ignore),
            },
        };
        if let Some(acceptance) = verdict {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, acceptance);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_a_peer_cannot_fill_the_routing_table_with_its_addresses() {
        let mut guard = Guard::new(PeerBudgets::default());
        let (behaving, misbehaving) = (PeerId::random(), PeerId::random());
        let many: Vec<Multiaddr> = (0..1_000u16)
            .map(|port| format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap())
            .collect();
        let now = Instant::now();
        let routed = addresses_to_route(&mut guard, &behaving, many.clone(), now);
        assert_eq!(routed, many[..MAX_ADDRESSES_PER_PEER]);
        // One invalid message and its addresses are kept from the table while it counts.
        guard.offence(misbehaving, Offence::Invalid, now);
        assert!(addresses_to_route(&mut guard, &misbehaving, many, now).is_empty());
    }
}
