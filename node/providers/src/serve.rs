//! [`Server`]: this node's answers to peers' data requests: whether it holds a blob, its
//! pieces with their proofs, and storage offers for its provider agent.

use std::sync::Arc;

use cairn_p2p::{InboundId, NetworkHandle, PeerId};
use cairn_primitives::Canonical;
use cairn_primitives::wire::DataRequest;
use cairn_storage::ChunkStore;
use tokio::sync::{mpsc, oneshot};

use crate::conduct::Conduct;
use crate::error::DataError;
use crate::fetch::blocking;
use crate::metrics::{Metrics, add, bump};
use crate::wire::DataResponse;

/// An offer of a deal, passed to the provider agent with where to answer.
#[derive(Debug)]
pub struct Offer {
    /// The peer that offers (and holds the data).
    pub peer: PeerId,
    /// The deal.
    pub deal: [u8; 32],
    /// The agent's answer: `Ok` if it takes the deal.
    pub reply: oneshot::Sender<Result<(), DataError>>,
}

/// Answers peers' data requests from the chunk store.
#[derive(Debug)]
pub struct Server {
    store: Arc<ChunkStore>,
    network: NetworkHandle,
    offers: Option<mpsc::Sender<Offer>>,
    conduct: Arc<dyn Conduct>,
    metrics: Arc<Metrics>,
}

impl Server {
    /// A server of `store`; `offers` reaches the provider agent, if the node is a provider.
    pub fn new(
        store: Arc<ChunkStore>,
        network: NetworkHandle,
        offers: Option<mpsc::Sender<Offer>>,
        conduct: Arc<dyn Conduct>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            network,
            offers,
            conduct,
            metrics,
        }
    }

    /// Answers a peer's data request, off the caller's task.
    pub fn serve(self: &Arc<Self>, peer: PeerId, id: InboundId, request: DataRequest) {
        let server = self.clone();
        tokio::spawn(async move {
            let response = server.answer(peer, request).await;
            if let Err(error) = server.network.respond(id, response.encode()).await {
                tracing::debug!(%error, "cannot answer a data request");
            }
        });
    }

    /// The answer to `peer`'s request (also the node's own offers to its own provider).
    pub(crate) async fn answer(&self, peer: PeerId, request: DataRequest) -> DataResponse {
        match request {
            DataRequest::Has { root } => {
                let store = self.store.clone();
                match blocking(move || store.status(&root)).await {
                    Ok(Some(status)) if status.complete() => DataResponse::Has(Some(status.size)),
                    Ok(_) => DataResponse::Has(None),
                    Err(error) => DataResponse::Refused(error.to_string()),
                }
            }
            DataRequest::Piece { root, index } => {
                let store = self.store.clone();
                match blocking(move || store.piece(&root, index)).await {
                    Ok(piece) => {
                        bump(&self.metrics.pieces_served);
                        add(&self.metrics.bytes_served, piece.data.len() as u64);
                        DataResponse::Piece(self.conduct.serve_piece(piece))
                    }
                    Err(error) => DataResponse::Refused(error.to_string()),
                }
            }
            DataRequest::Offer { deal } => {
                let Some(offers) = &self.offers else {
                    return DataResponse::Refused("this node is not a storage provider".into());
                };
                let (reply, answer) = oneshot::channel();
                if offers.try_send(Offer { peer, deal, reply }).is_err() {
                    return DataResponse::Refused("the provider is busy; offer again later".into());
                }
                match answer.await {
                    Ok(Ok(())) => DataResponse::Accepted,
                    Ok(Err(refusal)) => DataResponse::Refused(refusal.to_string()),
                    Err(_) => DataResponse::Refused("the provider stopped".into()),
                }
            }
        }
    }
}
