//! [`DataNet`]: the node's data plane: the chunk store, the table of providers' adverts, the
//! fetches in progress, the offers passed to the provider agent, and the answers to peers'
//! data requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_p2p::{InboundId, NetworkHandle, PeerId, TopicKind, Verdict};
use cairn_reward_contracts::bindings::StorageMarket;
use cairn_storage::{ChunkStore, StorageError};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use cairn_primitives::wire::{DataRequest, PeerRequest};
use cairn_primitives::{Address, Canonical};

use cairn_chain::Chain;

use crate::adverts::{AdvertTable, SignedAdvert};
use crate::contracts::{DealState, view};
use crate::error::DataError;
use crate::metrics::{Metrics, bump};
use crate::wire::DataResponse;

/// Piece requests a fetch keeps in flight.
const PIECES_IN_FLIGHT: usize = 8;
/// Failed requests after which a fetch stops asking a peer.
const MAX_PEER_FAILURES: u32 = 3;
/// Fetches running at once, and finished ones whose progress is remembered for
/// `cairn_storageFetch`.
const MAX_FETCHES: usize = 256;

/// Faults a test can switch on in a node (`testFaults` in `node.json`); never set in
/// production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestFaults {
    /// Flip a byte in every piece this node serves.
    #[serde(default)]
    pub corrupt_served_pieces: bool,
    /// As the provider of a compute job, post a wrong output root.
    #[serde(default)]
    pub lie_about_results: bool,
}

/// Where a fetch stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "detail")]
pub enum FetchState {
    /// Pieces are arriving.
    Running,
    /// Every piece is stored.
    Done,
    /// It stopped, and why.
    Failed(String),
}

/// A fetch's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchProgress {
    /// Where it stands.
    pub state: FetchState,
    /// Pieces in the blob.
    pub pieces: u64,
    /// Pieces stored.
    pub present: u64,
    /// Pieces refused because they failed their check.
    pub rejected: u64,
    /// Peers it fetches from.
    pub sources: Vec<String>,
}

/// An offer of a deal, passed to the provider agent with where to answer.
#[derive(Debug)]
pub struct Offer {
    /// The peer that offers (and holds the data).
    pub peer: PeerId,
    /// The deal.
    pub deal: [u8; 32],
    /// The agent's answer: `Ok` if it takes the deal.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// The node's data plane: chunk store, adverts, fetches and the serving of peers' requests.
#[derive(Debug)]
pub struct DataNet {
    chain: Arc<Chain>,
    store: Arc<ChunkStore>,
    pub(crate) network: NetworkHandle,
    adverts: Mutex<AdvertTable>,
    fetches: Mutex<BTreeMap<[u8; 32], FetchProgress>>,
    offers: Option<mpsc::Sender<Offer>>,
    pub(crate) faults: TestFaults,
    pub(crate) metrics: Metrics,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update under these locks is a single insert or field write: a panic mid-way
    // leaves them consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs blocking chunk-store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, DataError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DataError::Stopped(e.to_string()))?
        .map_err(DataError::from)
}

/// Why one piece did not arrive.
enum PieceFailure {
    /// The peer sent a piece that fails its check.
    Invalid,
    /// The peer did not answer usefully.
    Unreachable(String),
    /// This node cannot store it.
    Fatal(DataError),
}

impl DataNet {
    /// The data plane of a networked node; `offers` reaches the provider agent, if the node
    /// is a provider.
    pub fn new(
        chain: Arc<Chain>,
        store: Arc<ChunkStore>,
        network: NetworkHandle,
        offers: Option<mpsc::Sender<Offer>>,
        faults: TestFaults,
    ) -> Self {
        Self {
            chain,
            store,
            network,
            adverts: Mutex::new(AdvertTable::default()),
            fetches: Mutex::new(BTreeMap::new()),
            offers,
            faults,
            metrics: Metrics::default(),
        }
    }

    /// The chunk store.
    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The network it uses.
    pub fn network(&self) -> &NetworkHandle {
        &self.network
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.network.peer_id()
    }

    /// Checks a gossiped advert and keeps it if it is new.
    pub fn on_advert(&self, data: &[u8]) -> Verdict {
        let Ok(advert) = SignedAdvert::decode(data) else {
            return Verdict::Reject;
        };
        if advert.check(self.chain.genesis().chain_id).is_err() {
            return Verdict::Reject;
        }
        match locked(&self.adverts).insert(advert, Instant::now()) {
            Ok(()) => Verdict::Accept,
            Err(_) => Verdict::Ignore,
        }
    }

    /// Publishes this node's own advert (and keeps it, as gossip does not come back).
    pub async fn publish_advert(&self, advert: SignedAdvert) -> Result<(), DataError> {
        let bytes = advert.encode();
        // Kept first: a node alone on its network still lists itself.
        let _ = locked(&self.adverts).insert(advert, Instant::now());
        self.network
            .publish(TopicKind::ProviderAdverts, bytes)
            .await
            .map_err(DataError::from)
    }

    /// The providers' live adverts.
    pub fn adverts(&self) -> Vec<SignedAdvert> {
        locked(&self.adverts).live(Instant::now())
    }

    /// Answers a peer's data request, off the caller's task.
    pub fn serve(self: &Arc<Self>, peer: PeerId, id: InboundId, request: DataRequest) {
        let net = self.clone();
        tokio::spawn(async move {
            let response = net.answer(peer, request).await;
            if let Err(error) = net.network.respond(id, response.encode()).await {
                tracing::debug!(%error, "cannot answer a data request");
            }
        });
    }

    async fn answer(&self, peer: PeerId, request: DataRequest) -> DataResponse {
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
                    Ok(mut piece) => {
                        bump(&self.metrics.pieces_served);
                        if self.faults.corrupt_served_pieces
                            && let Some(byte) = piece.data.first_mut()
                        {
                            *byte ^= 0xff;
                        }
                        DataResponse::Piece(piece)
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
                    Ok(Err(reason)) => DataResponse::Refused(reason),
                    Err(_) => DataResponse::Refused("the provider stopped".into()),
                }
            }
        }
    }

    async fn ask(&self, peer: PeerId, request: DataRequest) -> Result<DataResponse, String> {
        let bytes = PeerRequest::Data(request).encode();
        let (_, answer) = self
            .network
            .request(Some(peer), bytes)
            .await
            .map_err(|e| e.to_string())?;
        DataResponse::decode(&answer).map_err(|e| e.to_string())
    }

    /// Offers deal `id` to its provider's node, which fetches the data from this node.
    pub async fn offer(&self, id: [u8; 32]) -> Result<(), DataError> {
        let deal = view(
            &self.chain,
            cairn_reward_contracts::STORAGE_MARKET,
            StorageMarket::dealOfCall { id: id.into() },
        )?;
        if deal.state != DealState::Proposed as u8 {
            return Err(DataError::Refused(format!(
                "deal 0x{} is {}, not proposed",
                hex::encode(id),
                DealState::name(deal.state)
            )));
        }
        let root = deal.dataRoot.0;
        let store = self.store.clone();
        let held = blocking(move || store.status(&root)).await?;
        if !held.is_some_and(|s| s.complete()) {
            return Err(DataError::Refused(format!(
                "this node does not hold data 0x{} whole; upload it first",
                hex::encode(root)
            )));
        }
        let peer = self.provider_peer(&deal.provider)?;
        match self.ask(peer, DataRequest::Offer { deal: id }).await {
            Ok(DataResponse::Accepted) => Ok(()),
            Ok(DataResponse::Refused(reason)) => Err(DataError::Refused(reason)),
            Ok(_) => Err(DataError::Peer {
                peer: peer.to_string(),
                detail: "answered an offer with something else".into(),
            }),
            Err(detail) => Err(DataError::Peer {
                peer: peer.to_string(),
                detail,
            }),
        }
    }

    fn provider_peer(&self, provider: &Address) -> Result<PeerId, DataError> {
        let advert = locked(&self.adverts)
            .get(provider, Instant::now())
            .ok_or(DataError::NoAdvert(*provider))?;
        advert
            .advert
            .peer_id
            .parse()
            .map_err(|_| DataError::NoAdvert(*provider))
    }

    /// Peers that hold `root` whole, and the size each reports: every connected peer and
    /// every advertised provider is asked.
    pub async fn find_sources(&self, root: [u8; 32]) -> Result<Vec<(PeerId, u64)>, DataError> {
        let mut peers: Vec<PeerId> = self.network.status().await?.peers;
        for advert in self.adverts() {
            if let Ok(peer) = advert.advert.peer_id.parse()
                && peer != self.peer_id()
                && !peers.contains(&peer)
            {
                peers.push(peer);
            }
        }
        let mut asks = JoinSet::new();
        for peer in peers {
            let network = self.network.clone();
            asks.spawn(async move {
                let bytes = PeerRequest::Data(DataRequest::Has { root }).encode();
                let answer = tokio::time::timeout(
                    Duration::from_secs(5),
                    network.request(Some(peer), bytes),
                )
                .await;
                match answer {
                    Ok(Ok((_, bytes))) => match DataResponse::decode(&bytes) {
                        Ok(DataResponse::Has(Some(size))) => Some((peer, size)),
                        _ => None,
                    },
                    _ => None,
                }
            });
        }
        let mut sources = Vec::new();
        while let Some(joined) = asks.join_next().await {
            if let Ok(Some(source)) = joined {
                sources.push(source);
            }
        }
        sources.sort();
        Ok(sources)
    }

    /// The progress of the fetch of `root`, if one ran since this node started.
    pub fn fetch_progress(&self, root: &[u8; 32]) -> Option<FetchProgress> {
        locked(&self.fetches).get(root).cloned()
    }

    fn set_progress(&self, root: [u8; 32], update: impl FnOnce(&mut FetchProgress)) {
        let mut fetches = locked(&self.fetches);
        if !fetches.contains_key(&root) && fetches.len() >= MAX_FETCHES {
            let finished = fetches
                .iter()
                .find(|(_, p)| p.state != FetchState::Running)
                .map(|(root, _)| *root);
            if let Some(finished) = finished {
                fetches.remove(&finished);
            }
        }
        let progress = fetches.entry(root).or_insert_with(|| FetchProgress {
            state: FetchState::Running,
            pieces: 0,
            present: 0,
            rejected: 0,
            sources: Vec::new(),
        });
        update(progress);
    }

    /// Whether a fetch of `root` is running now.
    pub fn fetching(&self, root: &[u8; 32]) -> bool {
        locked(&self.fetches)
            .get(root)
            .is_some_and(|p| p.state == FetchState::Running)
    }

    /// Starts fetching `root` from whichever peers hold it and returns the progress so far.
    /// The size is `size` if the caller knows it (a deal fixes it), else the size most holders
    /// report; a holder reporting another size is not asked.
    /// A holder reporting more than `max_size` bytes is not asked either.
    pub fn start_fetch(
        self: Arc<Self>,
        root: [u8; 32],
        size: Option<u64>,
        max_size: u64,
    ) -> FetchProgress {
        let running = locked(&self.fetches)
            .values()
            .filter(|p| p.state == FetchState::Running)
            .count();
        if running >= MAX_FETCHES {
            return FetchProgress {
                state: FetchState::Failed(format!(
                    "{running} fetches are running already; try again when one is done"
                )),
                pieces: 0,
                present: 0,
                rejected: 0,
                sources: Vec::new(),
            };
        }
        self.set_progress(root, |p| {
            p.state = FetchState::Running;
            p.rejected = 0;
        });
        let net = self.clone();
        tokio::spawn(async move {
            let found = net.find_sources(root).await.map(|sources| {
                sources
                    .into_iter()
                    .filter(|(_, s)| *s <= max_size)
                    .collect::<Vec<_>>()
            });
            let sources = match found {
                Ok(sources) if !sources.is_empty() => sources,
                Ok(_) => {
                    let reason = format!("no peer holds data 0x{}", hex::encode(root));
                    net.set_progress(root, |p| p.state = FetchState::Failed(reason));
                    return;
                }
                Err(error) => {
                    net.set_progress(root, |p| p.state = FetchState::Failed(error.to_string()));
                    return;
                }
            };
            let size = size.unwrap_or_else(|| {
                let mut sizes: BTreeMap<u64, usize> = BTreeMap::new();
                for (_, size) in &sources {
                    *sizes.entry(*size).or_default() += 1;
                }
                sizes
                    .iter()
                    .max_by_key(|(size, count)| (**count, std::cmp::Reverse(**size)))
                    .map_or(0, |(size, _)| *size)
            });
            let peers = sources
                .into_iter()
                .filter(|(_, s)| *s == size)
                .map(|(peer, _)| peer)
                .collect();
            if let Err(error) = net.fetch(root, size, peers).await {
                tracing::warn!(root = %hex::encode(root), %error, "fetch failed");
            }
        });
        self.fetch_progress(&root).unwrap_or(FetchProgress {
            state: FetchState::Running,
            pieces: 0,
            present: 0,
            rejected: 0,
            sources: Vec::new(),
        })
    }

    /// Starts fetching `root` of `size` bytes from `sources` on its own task; the fetch counts
    /// as running from now on ([`DataNet::fetching`]).
    pub fn fetch_in_background(self: Arc<Self>, root: [u8; 32], size: u64, sources: Vec<PeerId>) {
        self.set_progress(root, |p| p.state = FetchState::Running);
        tokio::spawn(async move {
            if let Err(error) = self.fetch(root, size, sources).await {
                tracing::warn!(root = %hex::encode(root), %error, "fetch failed");
            }
        });
    }

    /// The whole blob `root` of at most `max_size` bytes: read from the chunk store, or fetched
    /// from the peers that hold it first (retried until `within` has passed).
    pub async fn fetch_whole(
        self: &Arc<Self>,
        root: [u8; 32],
        max_size: u64,
        within: Duration,
    ) -> Result<Vec<u8>, DataError> {
        let deadline = Instant::now() + within;
        loop {
            let store = self.store.clone();
            if let Some(status) = blocking(move || store.status(&root)).await?
                && status.complete()
            {
                if status.size > max_size {
                    return Err(DataError::Refused(format!(
                        "data 0x{} is {} bytes, more than the {max_size} allowed",
                        hex::encode(root),
                        status.size
                    )));
                }
                let store = self.store.clone();
                return blocking(move || store.read(&root)).await;
            }
            if !self.fetching(&root) {
                if Instant::now() > deadline {
                    return Err(DataError::Unavailable(format!(
                        "no peer supplied data 0x{} within {within:?}",
                        hex::encode(root)
                    )));
                }
                self.clone().start_fetch(root, None, max_size);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fetches the blob `root` of `size` bytes from `sources` into the chunk store. Pieces
    /// already stored are skipped, so a fetch that stopped resumes where it was. Every piece
    /// is checked against the root before it is stored; a peer that sends a bad piece is
    /// asked nothing more, and the piece is asked of another.
    pub async fn fetch(
        self: Arc<Self>,
        root: [u8; 32],
        size: u64,
        sources: Vec<PeerId>,
    ) -> Result<(), DataError> {
        let result = self.clone().fetch_pieces(root, size, sources).await;
        if result.is_err() {
            // A fetch that stored nothing leaves nothing behind: a size that a lying peer
            // reported must not stay recorded against the root.
            let store = self.store.clone();
            let _ = blocking(move || match store.status(&root)? {
                Some(status) if status.present == 0 => store.remove(&root).map(|_| ()),
                _ => Ok(()),
            })
            .await;
        }
        self.set_progress(root, |p| {
            p.state = match &result {
                Ok(()) => FetchState::Done,
                Err(error) => FetchState::Failed(error.to_string()),
            }
        });
        result
    }

    async fn fetch_pieces(
        self: Arc<Self>,
        root: [u8; 32],
        size: u64,
        sources: Vec<PeerId>,
    ) -> Result<(), DataError> {
        let store = self.store.clone();
        let status = blocking(move || store.begin(&root, size)).await?;
        let store = self.store.clone();
        let mut queue: std::collections::VecDeque<u64> =
            blocking(move || store.missing(&root)).await?.into();
        self.set_progress(root, |p| {
            *p = FetchProgress {
                state: FetchState::Running,
                pieces: status.pieces(),
                present: status.pieces() - queue.len() as u64,
                rejected: 0,
                sources: sources.iter().map(PeerId::to_string).collect(),
            }
        });
        let mut peers: Vec<(PeerId, u32)> = sources.into_iter().map(|p| (p, 0)).collect();
        let mut turn = 0usize;
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.len() < PIECES_IN_FLIGHT
                && let Some(index) = queue.pop_front()
            {
                let Some(&(peer, _)) = peers.get(turn % peers.len().max(1)) else {
                    return Err(DataError::Unavailable(format!(
                        "no peer could supply data 0x{}: {} pieces still missing",
                        hex::encode(root),
                        queue.len() + 1 + in_flight.len()
                    )));
                };
                turn = turn.wrapping_add(1);
                let net = self.clone();
                in_flight
                    .spawn(async move { (index, peer, net.fetch_piece(peer, root, index).await) });
            }
            let Some(joined) = in_flight.join_next().await else {
                return Ok(());
            };
            let (index, peer, result) = joined.map_err(|e| DataError::Stopped(e.to_string()))?;
            match result {
                Ok(present) => {
                    if let Some(entry) = peers.iter_mut().find(|(p, _)| *p == peer) {
                        entry.1 = 0;
                    }
                    self.set_progress(root, |p| p.present = present);
                }
                Err(PieceFailure::Invalid) => {
                    bump(&self.metrics.pieces_rejected);
                    tracing::warn!(%peer, index, root = %hex::encode(root), "peer sent a piece that fails its check; asking another peer");
                    peers.retain(|(p, _)| *p != peer);
                    self.set_progress(root, |p| p.rejected += 1);
                    queue.push_back(index);
                }
                Err(PieceFailure::Unreachable(detail)) => {
                    tracing::debug!(%peer, index, detail, "piece not fetched");
                    if let Some(entry) = peers.iter_mut().find(|(p, _)| *p == peer) {
                        entry.1 += 1;
                    }
                    peers.retain(|(_, failures)| *failures < MAX_PEER_FAILURES);
                    queue.push_back(index);
                }
                Err(PieceFailure::Fatal(error)) => return Err(error),
            }
        }
    }

    /// Asks `peer` for one piece and stores it if it checks out; returns the pieces stored.
    async fn fetch_piece(
        &self,
        peer: PeerId,
        root: [u8; 32],
        index: u64,
    ) -> Result<u64, PieceFailure> {
        let piece = match self.ask(peer, DataRequest::Piece { root, index }).await {
            Ok(DataResponse::Piece(piece)) => piece,
            Ok(DataResponse::Refused(reason)) => return Err(PieceFailure::Unreachable(reason)),
            Ok(_) => return Err(PieceFailure::Unreachable("unexpected answer".into())),
            Err(detail) => return Err(PieceFailure::Unreachable(detail)),
        };
        let store = self.store.clone();
        match blocking(move || store.put_piece(&root, index, &piece.data, &piece.path)).await {
            Ok(status) => Ok(status.present),
            Err(DataError::Store(StorageError::InvalidPiece { .. })) => Err(PieceFailure::Invalid),
            Err(error) => Err(PieceFailure::Fatal(error)),
        }
    }
}
