//! Storing files with providers and getting them back, through a node: upload checked piece by
//! piece, deals opened and offered, data fetched and checked against its root again. Progress
//! goes to a [`Progress`] the caller implements.

use std::fmt;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy_sol_types::SolValue as _;
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, U256};
use cairn_providers::agent::price_per_epoch;
use cairn_providers::{DealState, FetchState, MetricsSnapshot};
use cairn_reward_contracts::bindings::StorageMarket;
use cairn_reward_contracts::{STORAGE_MARKET, roles};
use cairn_rpc::{BlobInfo, CairnApiClient as _, ProviderInfo};
use cairn_storage::blobs::{Outboard, PIECE_LEN, piece_count, piece_len, verify_piece};
use serde::Serialize;

use crate::error::ClientError;
use crate::rpc::Client;
use crate::tx::{Call, TxOptions, submit, submit_for_event};

/// A stage of a long flow, reported to a [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Pieces go to the node.
    Uploading,
    /// The providers fetch the data and accept their deals (no count: a spinner).
    WaitingForProviders,
    /// The node fetches pieces from the network.
    Fetching,
    /// Pieces are checked and written to the output file.
    Writing,
}

impl Stage {
    /// The stage in a few words.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Uploading => "uploading",
            Stage::WaitingForProviders => "waiting for the providers to fetch the data and accept",
            Stage::Fetching => "fetching",
            Stage::Writing => "writing",
        }
    }
}

/// Where the storage flows report how far they are; `()` reports nowhere.
pub trait Progress {
    /// `stage` begins, with `total` pieces (`None`: no count).
    fn begin(&mut self, stage: Stage, total: Option<u64>) {
        let _ = (stage, total);
    }
    /// `done` of `total` pieces (for a stage without a count, a sign of life).
    fn update(&mut self, done: u64, total: u64) {
        let _ = (done, total);
    }
    /// The stage ended: `ok` after success, not after a failure.
    fn end(&mut self, ok: bool) {
        let _ = ok;
    }
}

impl Progress for () {}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Uploads a file to the node, checked piece by piece there; pieces the node holds already are
/// skipped, so an interrupted upload resumes. Returns the file's root and size.
pub async fn upload(
    client: &Client,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<(B256, u64), ClientError> {
    let rpc = client.rpc();
    let err = |e| client.error(e);
    let mut file = File::open(path).map_err(|source| ClientError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let size = file.metadata().map_err(read_error(path))?.len();
    let (root, outboard) =
        Outboard::compute(std::io::BufReader::new(&mut file), size).map_err(read_error(path))?;
    let root = B256::from(root);

    let admin = client.admin().await?;
    admin.blob_begin(root, size).await.map_err(err)?;
    let missing = rpc.blob_missing(root).await.map_err(err)?;
    let total = piece_count(size);
    let mut done = total.saturating_sub(missing.len() as u64);
    progress.begin(Stage::Uploading, Some(total));
    progress.update(done, total);
    let mut piece = vec![0u8; PIECE_LEN as usize];
    for index in missing {
        let len = piece_len(size, index).unwrap_or(0) as usize;
        file.seek(SeekFrom::Start(index * PIECE_LEN))
            .and_then(|_| file.read_exact(&mut piece[..len]))
            .map_err(read_error(path))?;
        let proof = outboard
            .piece_path(index)
            .into_iter()
            .map(B256::from)
            .collect();
        admin
            .blob_put_piece(root, index, piece[..len].to_vec().into(), proof)
            .await
            .map_err(err)?;
        done += 1;
        progress.update(done, total);
    }
    progress.end(true);
    Ok((root, size))
}

/// What `cairn storage put` asks for.
#[derive(Debug, Clone)]
pub struct PutRequest {
    /// The file.
    pub file: PathBuf,
    /// How many providers keep a copy.
    pub replicas: usize,
    /// How many epochs they keep and prove it.
    pub epochs: u64,
    /// The most to pay, wei per MiB per epoch; `None`: any price.
    pub max_price: Option<u128>,
    /// How long to wait for the providers to accept, in seconds.
    pub accept_timeout_s: u64,
    /// The name of the paying key, for the hint in errors.
    pub from: String,
}

/// A deal opened by `put`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDeal {
    /// The deal.
    pub id: B256,
    /// Its provider.
    pub provider: Address,
    /// Its price, CRN per epoch.
    pub price_per_epoch: String,
    /// Its state.
    pub state: &'static str,
}

/// What `put` stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutReport {
    /// The data's blake3 root.
    pub root: B256,
    /// Its size, bytes.
    pub size: u64,
    /// How many epochs it is kept.
    pub epochs: u64,
    /// One deal per provider.
    pub deals: Vec<StoredDeal>,
}

impl fmt::Display for PutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored {} ({} bytes) for {} epochs with {} provider(s):",
            self.root,
            self.size,
            self.epochs,
            self.deals.len()
        )?;
        for deal in &self.deals {
            write!(
                f,
                "\n  deal {}  provider {}  {} CRN/epoch  {}",
                deal.id, deal.provider, deal.price_per_epoch, deal.state
            )?;
        }
        write!(
            f,
            "\nget it back with: cairn storage get {} -o FILE",
            self.root
        )
    }
}

/// Uploads the file, then opens and offers deals with chosen providers (cheapest first) until
/// `replicas` providers hold it, and waits until they have fetched the data and accepted. A
/// rerun completes the replicas of the same root: the client's live deals for it count (a
/// proposed one is offered again) and their providers are never asked for a second copy; a
/// provider that already holds the root for someone else is skipped. A deal whose provider
/// refuses the offer is cancelled at once, its escrow claimable, and the next provider asked.
pub async fn put(
    client: &Client,
    key: &AccountKey,
    request: &PutRequest,
    progress: &mut dyn Progress,
) -> Result<PutReport, ClientError> {
    let (root, size) = upload(client, &request.file, progress).await?;
    let offered = client
        .rpc()
        .providers()
        .await
        .map_err(|e| client.error(e))?;
    let mut deals = Vec::new();
    let mut asked = std::collections::BTreeSet::new();
    let mut refusals = Vec::new();
    for (id, deal) in client_deals(client, key.address()).await? {
        let live = deal.state == DealState::Proposed as u8 || deal.state == DealState::Active as u8;
        if deal.dataRoot != root || !live {
            continue;
        }
        asked.insert(deal.provider);
        if deal.state == DealState::Proposed as u8
            && let Err(refused) = offer_or_cancel(client, key, id).await?
        {
            refusals.push(format!("{}: {refused}", deal.provider));
            continue;
        }
        deals.push(StoredDeal {
            id,
            provider: deal.provider,
            price_per_epoch: format_crn(U256::from(deal.pricePerEpoch)),
            state: DealState::name(deal.state),
        });
    }
    for provider in choose_providers(&offered, size, request.max_price) {
        if deals.len() >= request.replicas {
            break;
        }
        if !asked.insert(provider.provider) {
            continue;
        }
        let holder = client
            .decoded(
                STORAGE_MARKET,
                StorageMarket::replicaOfCall {
                    _0: provider.provider,
                    _1: root,
                },
            )
            .await?;
        if holder != B256::ZERO {
            continue;
        }
        let price = price_per_epoch(provider.storage_price.saturating_to::<u128>(), size);
        let call = StorageMarket::openDealCall {
            provider: provider.provider,
            dataRoot: root,
            size,
            epochs: request.epochs,
            pricePerEpoch: price,
        };
        let escrow = U256::from(price) * U256::from(request.epochs);
        let call = Call::contract(STORAGE_MARKET, escrow, call);
        let opened: StorageMarket::DealOpened = submit_for_event(client, key, call).await?;
        if let Err(refused) = offer_or_cancel(client, key, opened.id).await? {
            refusals.push(format!("{}: {refused}", provider.provider));
            continue;
        }
        deals.push(StoredDeal {
            id: opened.id,
            provider: provider.provider,
            price_per_epoch: format_crn(U256::from(price)),
            state: DealState::name(DealState::Proposed as u8),
        });
    }
    if deals.len() < request.replicas {
        return Err(ClientError::ReplicasShort {
            placed: deals.len(),
            wanted: request.replicas,
            size,
            refusals: refusals.join("; "),
        });
    }

    progress.begin(Stage::WaitingForProviders, None);
    let deadline = Instant::now() + Duration::from_secs(request.accept_timeout_s);
    loop {
        progress.update(0, 0);
        let mut pending = 0;
        for deal in &mut deals {
            let info = client
                .decoded(STORAGE_MARKET, StorageMarket::dealOfCall { id: deal.id })
                .await?;
            deal.state = DealState::name(info.state);
            pending += usize::from(info.state == DealState::Proposed as u8);
        }
        if pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            progress.end(true);
            return Err(ClientError::DealsNotAccepted {
                pending,
                timeout_s: request.accept_timeout_s,
                client: key.address(),
                from: request.from.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    progress.end(true);
    Ok(PutReport {
        root,
        size,
        epochs: request.epochs,
        deals,
    })
}

/// Providers that can take `size` bytes at no more than `max_price`, cheapest first (the
/// larger bond first among equals).
fn choose_providers(
    providers: &[ProviderInfo],
    size: u64,
    max_price: Option<u128>,
) -> Vec<ProviderInfo> {
    let mut fit: Vec<ProviderInfo> = providers
        .iter()
        .filter(|p| p.roles & roles::STORAGE != 0 && p.storage_free >= size)
        .filter(|p| max_price.is_none_or(|max| p.storage_price <= U256::from(max)))
        .cloned()
        .collect();
    fit.sort_by(|a, b| {
        a.storage_price
            .cmp(&b.storage_price)
            .then(b.bonded.cmp(&a.bonded))
    });
    fit
}

/// Data fetched into a file.
#[derive(Debug, Clone, Serialize)]
pub struct Retrieved {
    /// The data's root.
    pub root: B256,
    /// Its size, bytes.
    pub size: u64,
    /// The file written.
    pub output: PathBuf,
}

impl fmt::Display for Retrieved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} bytes to {} (checked against {})",
            self.size,
            self.output.display(),
            self.root
        )
    }
}

/// Has the node fetch `root` from the network (for at most `timeout_s` seconds), then copies
/// it out piece by piece into `output`, checking each piece against the root again (the node
/// is not trusted either). The file appears only once complete.
pub async fn get(
    client: &Client,
    root: B256,
    output: &Path,
    timeout_s: u64,
    progress: &mut dyn Progress,
) -> Result<Retrieved, ClientError> {
    let rpc = client.rpc();
    let err = |e| client.error(e);
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    progress.begin(Stage::Fetching, None);
    let admin = client.admin().await?;
    let mut fetch = admin.storage_fetch(root).await.map_err(err)?;
    loop {
        progress.update(fetch.present, fetch.pieces);
        match &fetch.state {
            FetchState::Done => break,
            FetchState::Failed(reason) => {
                progress.end(false);
                return Err(ClientError::FetchFailed {
                    root,
                    reason: reason.clone(),
                });
            }
            FetchState::Running => {}
        }
        if Instant::now() > deadline {
            return Err(ClientError::FetchTimeout {
                root,
                timeout_s,
                present: fetch.present,
                pieces: fetch.pieces,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        fetch = match rpc
            .blob_status(root)
            .await
            .map_err(err)?
            .and_then(|s| s.fetch)
        {
            Some(fetch) => fetch,
            None => admin.storage_fetch(root).await.map_err(err)?,
        };
    }
    progress.end(true);
    let status = rpc
        .blob_status(root)
        .await
        .map_err(err)?
        .ok_or(ClientError::Lost(root))?;
    let size = status.size;
    let partial = output.with_extension("partial");
    let mut file = File::create(&partial).map_err(write_error(&partial))?;
    let total = piece_count(size);
    progress.begin(Stage::Writing, Some(total));
    for index in 0..total {
        let piece = rpc.blob_piece(root, index).await.map_err(err)?;
        let path: Vec<[u8; 32]> = piece.path.iter().map(|cv| cv.0).collect();
        if !verify_piece(&root.0, size, index, &piece.data, &path) {
            return Err(ClientError::BadPiece { root, index });
        }
        file.write_all(&piece.data).map_err(write_error(&partial))?;
        progress.update(index + 1, total);
    }
    file.sync_all().map_err(write_error(&partial))?;
    drop(file);
    std::fs::rename(&partial, output).map_err(write_error(output))?;
    progress.end(true);
    Ok(Retrieved {
        root,
        size,
        output: output.to_path_buf(),
    })
}

/// Cancels a deal no provider accepted yet; its escrow becomes claimable.
pub fn cancel(deal: B256) -> Call {
    Call::contract(
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::cancelDealCall { id: deal },
    )
}

/// Judges a deal's past epochs: unproven ones are fined from the provider's collateral for
/// the client (the third terminates the deal), and a deal past its last epoch ends. Anyone may
/// send it; nothing else does it, as nothing on chain iterates over deals.
pub fn settle(deal: B256) -> Call {
    Call::contract(
        STORAGE_MARKET,
        U256::ZERO,
        StorageMarket::settleCall { id: deal },
    )
}

/// A storage deal as the chain records it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DealReport {
    /// The deal.
    pub id: B256,
    /// Its state.
    pub state: &'static str,
    /// Its provider.
    pub provider: Address,
    /// The data's root.
    pub data_root: B256,
    /// The data's size, bytes.
    pub size: u64,
    /// Epochs it runs.
    pub epochs: u64,
    /// Its first epoch.
    pub start_epoch: u64,
    /// Its last epoch.
    pub end_epoch: u64,
    /// Epochs proven.
    pub proven_epochs: u32,
    /// Paid to the provider so far, CRN.
    pub paid: String,
    /// Proofs missed, as settled so far.
    pub faults: u32,
    /// Every epoch up to this one is settled (proven or fined); later ones wait for
    /// `cairn storage settle`.
    pub settled_epoch: u64,
    /// The provider's bond held for this deal, CRN.
    pub collateral: String,
    /// Escrow left, CRN.
    pub escrow_left: String,
}

/// The storage deals a client opened; as JSON, the list of deals.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Deals {
    /// The client.
    #[serde(skip)]
    pub client: Address,
    /// Its deals, oldest first.
    pub deals: Vec<DealReport>,
}

/// Offers deal `id` to its provider through the node; if the provider refuses, cancels the
/// deal (its escrow becomes claimable) and returns the refusal.
async fn offer_or_cancel(
    client: &Client,
    key: &AccountKey,
    id: B256,
) -> Result<Result<(), ClientError>, ClientError> {
    match client.admin().await?.storage_offer(id).await {
        Ok(()) => Ok(Ok(())),
        Err(refused) => {
            // Nothing is stored under a refused deal: take the escrow back at once.
            submit(client, key, cancel(id), &TxOptions::waiting()).await?;
            Ok(Err(client.error(refused)))
        }
    }
}

/// Every deal `client_address` opened, oldest first, with its id.
async fn client_deals(
    client: &Client,
    client_address: Address,
) -> Result<Vec<(B256, StorageMarket::Deal)>, ClientError> {
    let count = client
        .decoded(STORAGE_MARKET, StorageMarket::dealNonceCall(client_address))
        .await?;
    let mut deals = Vec::new();
    for nonce in 0..count {
        // As `StorageMarket.openDeal` derives it: the market, the client, its deal number.
        let id = alloy_primitives::keccak256((STORAGE_MARKET, client_address, nonce).abi_encode());
        let deal = client
            .decoded(STORAGE_MARKET, StorageMarket::dealOfCall { id })
            .await?;
        deals.push((id, deal));
    }
    Ok(deals)
}

/// The storage deals `client_address` opened.
pub async fn deals(client: &Client, client_address: Address) -> Result<Deals, ClientError> {
    let mut deals = Vec::new();
    for (id, deal) in client_deals(client, client_address).await? {
        let paid = U256::from(deal.pricePerEpoch) * U256::from(deal.provenEpochs);
        deals.push(DealReport {
            id,
            state: DealState::name(deal.state),
            provider: deal.provider,
            data_root: deal.dataRoot,
            size: deal.size,
            epochs: deal.epochs,
            start_epoch: deal.startEpoch,
            end_epoch: deal.endEpoch,
            proven_epochs: deal.provenEpochs,
            paid: format_crn(paid),
            faults: deal.faults,
            settled_epoch: deal.settledEpoch,
            collateral: format_crn(U256::from(deal.collateral)),
            escrow_left: format_crn(U256::from(deal.escrow)),
        });
    }
    Ok(Deals {
        client: client_address,
        deals,
    })
}

impl fmt::Display for Deals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deals.is_empty() {
            return write!(f, "{} has opened no storage deals", self.client);
        }
        let lines: Vec<String> = self.deals.iter().map(|d| {
            format!(
                "{}  {:<10}  provider {}\n  data {} ({} bytes)  epochs {}..={}  proven {}  paid {} CRN  faults {} (settled to epoch {})  escrow {} CRN  collateral {} CRN",
                d.id, d.state, d.provider, d.data_root, d.size, d.start_epoch, d.end_epoch,
                d.proven_epochs, d.paid, d.faults, d.settled_epoch, d.escrow_left, d.collateral
            )
        }).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// The data the node holds or is receiving.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Blobs(pub Vec<BlobInfo>);

/// The data the node holds or is receiving, with the pieces it has.
pub async fn blobs(client: &Client) -> Result<Blobs, ClientError> {
    let blobs = client.rpc().blobs().await.map_err(|e| client.error(e))?;
    Ok(Blobs(blobs))
}

impl fmt::Display for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the node holds no data");
        }
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|b| {
                format!(
                    "{}  {:>12} bytes  {}/{} pieces",
                    b.root, b.size, b.present, b.pieces
                )
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Whether the node deleted its copy of some data.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// The data's root.
    pub root: B256,
    /// Whether the node held a copy, now deleted.
    pub removed: bool,
}

/// Deletes the node's own copy of `root`.
pub async fn remove(client: &Client, root: B256) -> Result<Removed, ClientError> {
    let removed = client
        .admin()
        .await?
        .blob_remove(root)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Removed { root, removed })
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed {
            write!(f, "removed the node's copy of {}", self.root)
        } else {
            write!(f, "the node holds no copy of {}", self.root)
        }
    }
}

/// The node's provider counters.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Metrics(pub MetricsSnapshot);

/// The node's provider counters: proofs, pieces served and compute jobs.
pub async fn metrics(client: &Client) -> Result<Metrics, ClientError> {
    let metrics = client
        .rpc()
        .storage_metrics()
        .await
        .map_err(|e| client.error(e))?;
    Ok(Metrics(metrics))
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.0;
        write!(
            f,
            "proofs sent      {}\nproofs failed    {}\ndeals accepted   {}\noffers refused   {}\npieces served    {}\npieces rejected  {}\njobs done        {}\njobs failed      {}\njobs dropped     {}",
            m.proofs_sent,
            m.proofs_failed,
            m.deals_accepted,
            m.offers_refused,
            m.pieces_served,
            m.pieces_rejected,
            m.jobs_done,
            m.jobs_failed,
            m.jobs_dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(byte: u8, roles: u8, free: u64, price: u64, bonded: u64) -> ProviderInfo {
        ProviderInfo {
            provider: Address::repeat_byte(byte),
            peer_id: String::new(),
            addresses: Vec::new(),
            storage_capacity: free,
            storage_free: free,
            storage_price: U256::from(price),
            cores: 0,
            memory_mib: 0,
            fuel_per_second: 0,
            compute_price: U256::ZERO,
            bonded: U256::from(bonded),
            roles,
        }
    }

    #[test]
    fn providers_are_chosen_by_room_and_price_cheapest_then_best_bonded_first() {
        let offered = [
            provider(1, roles::STORAGE, 100, 5, 1),
            provider(2, roles::STORAGE, 100, 3, 1),
            provider(3, roles::STORAGE, 100, 3, 9),
            provider(4, roles::STORAGE, 10, 1, 1),
            provider(5, roles::COMPUTE, 100, 1, 1),
        ];
        let chosen: Vec<u8> = choose_providers(&offered, 50, None)
            .iter()
            .map(|p| p.provider.0[0])
            .collect();
        assert_eq!(chosen, [3, 2, 1]);
        let cheap = choose_providers(&offered, 50, Some(4));
        assert_eq!(cheap.len(), 2);
    }
}
