//! [`Fetcher`]: fetching blobs from the peers that hold them, piece by piece, each piece
//! checked against the blob's root before it is stored.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_p2p::{NetworkHandle, PeerId};
use cairn_primitives::Canonical;
use cairn_primitives::wire::{DataRequest, PeerRequest};
use cairn_storage::{ChunkStore, StorageError};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::adverts::Adverts;
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

/// Runs blocking chunk-store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, DataError> {
    Ok(tokio::task::spawn_blocking(work).await??)
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

/// Fetches blobs into the chunk store and remembers how each fetch went.
#[derive(Debug)]
pub struct Fetcher {
    store: Arc<ChunkStore>,
    network: NetworkHandle,
    adverts: Arc<Adverts>,
    metrics: Arc<Metrics>,
    fetches: Mutex<BTreeMap<[u8; 32], FetchProgress>>,
}

impl Fetcher {
    /// A fetcher into `store`, asking connected peers and advertised providers.
    pub fn new(
        store: Arc<ChunkStore>,
        network: NetworkHandle,
        adverts: Arc<Adverts>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            network,
            adverts,
            metrics,
            fetches: Mutex::new(BTreeMap::new()),
        }
    }

    /// This node's peer id and its connected peers.
    pub async fn network_status(&self) -> Result<cairn_p2p::NetworkStatus, DataError> {
        Ok(self.network.status().await?)
    }

    fn fetches(&self) -> std::sync::MutexGuard<'_, BTreeMap<[u8; 32], FetchProgress>> {
        // Every update is a single insert or field write: a panic mid-way leaves it consistent.
        self.fetches.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn ask(
        &self,
        peer: PeerId,
        request: DataRequest,
    ) -> Result<DataResponse, DataError> {
        let bytes = PeerRequest::Data(request).encode();
        let (_, answer) = self.network.request(Some(peer), bytes).await?;
        DataResponse::decode(&answer).map_err(|e| DataError::Peer {
            peer: peer.to_string(),
            detail: e.to_string(),
        })
    }

    /// Peers that hold `root` whole, and the size each reports: every connected peer and
    /// every advertised provider is asked.
    pub async fn find_sources(&self, root: [u8; 32]) -> Result<Vec<(PeerId, u64)>, DataError> {
        let mut peers: Vec<PeerId> = self.network.status().await?.peers;
        for advert in self.adverts.live() {
            if let Ok(peer) = advert.advert.peer_id.parse()
                && peer != self.network.peer_id()
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
        self.fetches().get(root).cloned()
    }

    fn set_progress(&self, root: [u8; 32], update: impl FnOnce(&mut FetchProgress)) {
        let mut fetches = self.fetches();
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
        self.fetches()
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
        let running = self
            .fetches()
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
    /// as running from now on ([`Fetcher::fetching`]).
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
                    return Err(DataError::TooLarge {
                        root,
                        size: status.size,
                        max: max_size,
                    });
                }
                let store = self.store.clone();
                return blocking(move || store.read(&root)).await;
            }
            if !self.fetching(&root) {
                if Instant::now() > deadline {
                    return Err(DataError::NotSupplied { root, within });
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
            let _ = blocking(move || store.remove_if_empty(&root)).await;
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
                    return Err(DataError::NoSources {
                        root,
                        missing: queue.len() + 1 + in_flight.len(),
                    });
                };
                turn = turn.wrapping_add(1);
                let net = self.clone();
                in_flight
                    .spawn(async move { (index, peer, net.fetch_piece(peer, root, index).await) });
            }
            let Some(joined) = in_flight.join_next().await else {
                return Ok(());
            };
            let (index, peer, result) = joined?;
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
            Err(error) => return Err(PieceFailure::Unreachable(error.to_string())),
        };
        let store = self.store.clone();
        match blocking(move || store.put_piece(&root, index, &piece.data, &piece.path)).await {
            Ok(status) => Ok(status.present),
            Err(DataError::Store(StorageError::InvalidPiece { .. })) => Err(PieceFailure::Invalid),
            Err(error) => Err(PieceFailure::Fatal(error)),
        }
    }
}
