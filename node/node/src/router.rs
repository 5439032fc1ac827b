//! The network router: the one reader of what the peer-to-peer network hears. It hands each
//! message to the component that owns its kind, so that none of them routes for another:
//! consensus gossip and peer events to the consensus driver, transactions to the mempool,
//! adverts and data requests to the data plane, sync requests to the consensus sync server.
//! It also publishes the transactions this node's RPC accepted.

use std::sync::Arc;

use cairn_consensus::SyncServer;
use cairn_mempool::{SubmitError, TxPool, TxRejection};
use cairn_p2p::{
    GossipMessage, NetworkEvent, NetworkEvents, NetworkHandle, Offence, TopicKind, Verdict,
};
use cairn_primitives::wire::PeerRequest;
use cairn_primitives::{Canonical, Transaction};
use cairn_providers::DataNet;
use cairn_providers::wire::DataResponse;
use tokio::sync::{mpsc, watch};

/// Transactions accepted over RPC that wait to be gossiped. A full queue only delays one: it
/// waits in this node's mempool until this node proposes.
pub const TX_GOSSIP_QUEUE: usize = 1024;
/// Events waiting for the consensus driver. When it is full the router waits; meanwhile the
/// network's own bounded consensus queue fills and the network drops what does not fit, while
/// its other queues (transactions, adverts, requests) fill and drop on their own, so that no
/// kind of traffic crowds out consensus. Each peer is held to its budgets before any of this
/// (`cairn_p2p::guard`).
pub const CONSENSUS_QUEUE: usize = 1024;

/// Where the router sends what it hears.
#[derive(Debug)]
pub struct Router {
    /// Answers sync requests.
    pub sync: SyncServer,
    /// Takes gossiped transactions.
    pub pool: TxPool,
    /// Takes adverts and data requests.
    pub data: Arc<DataNet>,
    /// Gets verdicts and answers.
    pub network: NetworkHandle,
    /// The consensus driver's inbox.
    pub consensus: mpsc::Sender<NetworkEvent>,
}

impl Router {
    /// Routes until the network stops, the driver's inbox closes or `stopped` turns true.
    pub async fn run(
        self,
        mut events: NetworkEvents,
        mut outgoing_transactions: mpsc::Receiver<Vec<u8>>,
        mut stopped: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                event = events.recv() => {
                    let Some(event) = event else { return };
                    if !self.route(event).await {
                        return;
                    }
                }
                Some(raw) = outgoing_transactions.recv() => {
                    if let Err(error) = self.network.publish(TopicKind::Transactions, raw).await {
                        tracing::debug!(%error, "transaction not gossiped");
                    }
                }
            }
        }
    }

    /// Routes one event; `false` once the consensus driver has stopped.
    async fn route(&self, event: NetworkEvent) -> bool {
        match event {
            NetworkEvent::Gossip(message) => match message.kind {
                TopicKind::Proposals | TopicKind::Votes => {
                    return self
                        .consensus
                        .send(NetworkEvent::Gossip(message))
                        .await
                        .is_ok();
                }
                TopicKind::Transactions => {
                    let verdict = self.on_transaction(&message.data);
                    self.report(&message, verdict).await;
                }
                TopicKind::ProviderAdverts => {
                    let verdict = self.data.adverts().on_gossip(&message.data);
                    self.report(&message, verdict).await;
                }
            },
            NetworkEvent::Request { peer, id, data } => match PeerRequest::decode(&data) {
                Ok(PeerRequest::Sync(request)) => self.sync.serve(peer, id, request),
                Ok(PeerRequest::Data(request)) => self.data.server().serve(peer, id, request),
                Err(error) => {
                    tracing::debug!(%peer, %error, "malformed request");
                    if let Err(error) = self.network.penalize(peer, Offence::Malformed).await {
                        tracing::debug!(%error, "cannot report a malformed request");
                    }
                    let refusal = DataResponse::Refused(format!("malformed request: {error}"));
                    if let Err(error) = self.network.respond(id, refusal.encode()).await {
                        tracing::debug!(%error, "cannot answer a malformed request");
                    }
                }
            },
            NetworkEvent::PeerConnected(peer) => {
                return self
                    .consensus
                    .send(NetworkEvent::PeerConnected(peer))
                    .await
                    .is_ok();
            }
            NetworkEvent::PeerDisconnected(_) => {}
        }
        true
    }

    fn on_transaction(&self, data: &[u8]) -> Verdict {
        let Ok(tx) = Transaction::decode(data) else {
            return Verdict::Reject;
        };
        match self.pool.submit(tx) {
            Ok(_) => Verdict::Accept,
            Err(SubmitError::Rejected(
                TxRejection::BadSignature | TxRejection::WrongChain { .. },
            )) => Verdict::Reject,
            // Known already, stale, or no room: not the sender's fault.
            Err(_) => Verdict::Ignore,
        }
    }

    async fn report(&self, message: &GossipMessage, verdict: Verdict) {
        if let Err(error) = self.network.validate(message, verdict).await {
            tracing::debug!(%error, "cannot report a gossip verdict");
        }
    }
}
