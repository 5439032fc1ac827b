//! [`DataNet`]: the node's data plane, as the handles of its jobs: the chunk store, the
//! providers' [`Adverts`], the [`Fetcher`], the [`Server`] of peers' requests and the counters;
//! and offering a storage deal to its provider, which needs them all.

use std::sync::Arc;

use cairn_chain::Chain;
use cairn_p2p::{NetworkHandle, PeerId};
use cairn_primitives::wire::DataRequest;
use cairn_storage::ChunkStore;
use tokio::sync::mpsc;

use crate::adverts::Adverts;
use crate::conduct::Conduct;
use crate::contracts::proposed_deal;
use crate::error::DataError;
use crate::fetch::{Fetcher, blocking};
use crate::metrics::Metrics;
use crate::serve::{Offer, Server};
use crate::warnings::AgentReport;
use crate::wire::DataResponse;

/// The data plane of a networked node.
#[derive(Debug)]
pub struct DataNet {
    chain: Arc<Chain>,
    store: Arc<ChunkStore>,
    network: NetworkHandle,
    adverts: Arc<Adverts>,
    fetcher: Arc<Fetcher>,
    server: Arc<Server>,
    metrics: Arc<Metrics>,
    report: AgentReport,
    conduct: Arc<dyn Conduct>,
}

impl DataNet {
    /// The data plane of a networked node; `offers` reaches the provider agent, if the node
    /// is a provider, and `conduct` is how it serves ([`crate::conduct::Honest`]).
    pub fn new(
        chain: Arc<Chain>,
        store: Arc<ChunkStore>,
        network: NetworkHandle,
        offers: Option<mpsc::Sender<Offer>>,
        conduct: Arc<dyn Conduct>,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let adverts = Arc::new(Adverts::new(
            chain.genesis().chain_id,
            network.clone(),
            chain.clone(),
        ));
        let fetcher = Arc::new(Fetcher::new(
            store.clone(),
            network.clone(),
            adverts.clone(),
            metrics.clone(),
        ));
        let server = Arc::new(Server::new(
            store.clone(),
            network.clone(),
            offers,
            conduct.clone(),
            metrics.clone(),
        ));
        Self {
            chain,
            store,
            network,
            adverts,
            fetcher,
            server,
            metrics,
            report: AgentReport::default(),
            conduct,
        }
    }

    /// The chunk store.
    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }

    /// The providers' adverts.
    pub fn adverts(&self) -> &Arc<Adverts> {
        &self.adverts
    }

    /// Fetches from peers.
    pub fn fetcher(&self) -> &Arc<Fetcher> {
        &self.fetcher
    }

    /// Answers peers' requests.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// What the provider agent found in its last round: warnings and the jobs it watches
    /// (empty on a node that runs no provider).
    pub fn report(&self) -> &AgentReport {
        &self.report
    }

    /// How this node treats others (always [`crate::conduct::Honest`] in the node).
    pub(crate) fn conduct(&self) -> &Arc<dyn Conduct> {
        &self.conduct
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.network.peer_id()
    }

    /// Offers deal `id` to its provider's node, which fetches the data from this node.
    pub async fn offer(&self, id: [u8; 32]) -> Result<(), DataError> {
        // An EVM call: on the blocking pool, off the async workers.
        let chain = self.chain.clone();
        let deal = tokio::task::spawn_blocking(move || proposed_deal(&chain, id)).await??;
        let root = deal.dataRoot.0;
        let store = self.store.clone();
        let held = blocking(move || store.status(&root)).await?;
        if !held.is_some_and(|s| s.complete()) {
            return Err(DataError::NotHeld { root });
        }
        let peer = self.adverts.peer_of(&deal.provider)?;
        let request = DataRequest::Offer { deal: id };
        // A provider on this very node takes the offer here: a node cannot dial itself.
        let response = if peer == self.peer_id() {
            self.server.answer(peer, request).await
        } else {
            self.fetcher.ask(peer, request).await?
        };
        match response {
            DataResponse::Accepted => Ok(()),
            DataResponse::Refused(reason) => Err(DataError::PeerRefused { reason }),
            _ => Err(DataError::Peer {
                peer: peer.to_string(),
                detail: "answered an offer with something else".into(),
            }),
        }
    }
}
