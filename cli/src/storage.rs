//! `cairn storage ...` and `cairn provider list`: storing files with providers and getting them
//! back, through the node the CLI talks to.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy_sol_types::SolValue;
use anyhow::{Context as _, bail};
use cairn_primitives::units::format_crn;
use cairn_primitives::{Address, B256, U256};
use cairn_providers::agent::price_per_epoch;
use cairn_providers::{DealState, FetchState};
use cairn_reward_contracts::bindings::StorageMarket;
use cairn_reward_contracts::{STORAGE_MARKET, roles};
use cairn_rpc::{CairnApiClient, ProviderInfo};
use cairn_storage::blobs::{Outboard, PIECE_LEN, piece_count, piece_len, verify_piece};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::Global;
use crate::output::rpc_error;
use crate::output::{client, print};
use crate::tx::{Call, TxOptions, decoded, submit, submit_for_event};
use crate::wallet::{keystore, resolve, unlock};

/// `cairn storage ...`
#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// Store FILE with staked providers: upload it to the node, open a deal with each chosen
    /// provider and wait until they have fetched it and accepted.
    Put {
        /// The file.
        file: PathBuf,
        /// Key that pays (the deals' client).
        #[arg(long)]
        from: String,
        /// How many providers keep a copy.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// How many epochs the providers keep and prove it.
        #[arg(long, default_value_t = 10)]
        epochs: u64,
        /// The most to pay, in wei per MiB per epoch [default: any price].
        #[arg(long)]
        max_price: Option<u128>,
        /// How long to wait for the providers to accept, in seconds.
        #[arg(long, default_value_t = 300)]
        accept_timeout: u64,
    },
    /// Fetch the data ROOT from the providers that hold it, checked piece by piece, into a file.
    Get {
        /// The data's blake3 root (0x hex).
        root: B256,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
        /// How long to wait for the data, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// The storage deals a client opened: state, provider, proven epochs, payments, faults.
    Deals {
        /// Key name or 0x address of the client.
        account: String,
    },
    /// Cancel a deal no provider accepted yet; its escrow becomes claimable
    /// (`cairn rewards claim`).
    Cancel {
        /// The deal id (0x hex).
        deal: B256,
        /// Key of the client that opened it.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// The data this node holds or is receiving, with the pieces it has.
    List,
    /// Delete the node's own copy of ROOT (a provider that deletes data under a deal misses
    /// its proofs and is fined, then slashed).
    Remove {
        /// The data's blake3 root.
        root: B256,
    },
    /// The node's provider counters: proofs sent and failed, pieces served and rejected, compute
    /// jobs done, failed and dropped.
    Metrics,
}

fn bar(length: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:40}] {pos}/{len} pieces {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredDeal {
    id: B256,
    provider: Address,
    price_per_epoch: String,
    state: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PutReport {
    root: B256,
    size: u64,
    epochs: u64,
    deals: Vec<StoredDeal>,
}

pub async fn run(command: StorageCommand, global: &Global) -> anyhow::Result<()> {
    match command {
        StorageCommand::Put {
            file,
            from,
            replicas,
            epochs,
            max_price,
            accept_timeout,
        } => {
            anyhow::ensure!(replicas >= 1, "--replicas must be at least 1");
            anyhow::ensure!(epochs >= 1, "--epochs must be at least 1");
            let report = put(
                global,
                &file,
                &from,
                replicas,
                epochs,
                max_price,
                accept_timeout,
            )
            .await?;
            print(global.json, &report, || {
                let mut text = format!(
                    "stored {} ({} bytes) for {} epochs with {} provider(s):",
                    report.root,
                    report.size,
                    report.epochs,
                    report.deals.len()
                );
                for deal in &report.deals {
                    text.push_str(&format!(
                        "\n  deal {}  provider {}  {} CRN/epoch  {}",
                        deal.id, deal.provider, deal.price_per_epoch, deal.state
                    ));
                }
                text.push_str(&format!(
                    "\nget it back with: cairn storage get {} -o FILE",
                    report.root
                ));
                text
            })
        }
        StorageCommand::Get {
            root,
            output,
            timeout,
        } => {
            let size = get(global, root, &output, timeout).await?;
            print(
                global.json,
                &serde_json::json!({ "root": root, "size": size, "output": output }),
                || {
                    format!(
                        "wrote {size} bytes to {} (checked against {root})",
                        output.display()
                    )
                },
            )
        }
        StorageCommand::Deals { account } => deals(global, &account).await,
        StorageCommand::Cancel {
            deal,
            from,
            options,
        } => {
            let key = unlock(global, &keystore(global), &from)?;
            let call = Call::contract(
                STORAGE_MARKET,
                U256::ZERO,
                StorageMarket::cancelDealCall { id: deal },
            );
            submit(global, &key, call, &options)
                .await?
                .print(global.json)
        }
        StorageCommand::List => {
            let rpc = client(&global.rpc)?;
            let blobs = rpc.blobs().await.map_err(|e| rpc_error(&global.rpc, e))?;
            print(global.json, &blobs, || {
                if blobs.is_empty() {
                    return "the node holds no data".to_string();
                }
                blobs
                    .iter()
                    .map(|b| {
                        format!(
                            "{}  {:>12} bytes  {}/{} pieces",
                            b.root, b.size, b.present, b.pieces
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        StorageCommand::Remove { root } => {
            let rpc = client(&global.rpc)?;
            let removed = rpc
                .blob_remove(root)
                .await
                .map_err(|e| rpc_error(&global.rpc, e))?;
            print(
                global.json,
                &serde_json::json!({ "root": root, "removed": removed }),
                || {
                    if removed {
                        format!("removed the node's copy of {root}")
                    } else {
                        format!("the node holds no copy of {root}")
                    }
                },
            )
        }
        StorageCommand::Metrics => {
            let rpc = client(&global.rpc)?;
            let metrics = rpc
                .storage_metrics()
                .await
                .map_err(|e| rpc_error(&global.rpc, e))?;
            print(global.json, &metrics, || {
                format!(
                    "proofs sent      {}\nproofs failed    {}\ndeals accepted   {}\noffers refused   {}\npieces served    {}\npieces rejected  {}\njobs done        {}\njobs failed      {}\njobs dropped     {}",
                    metrics.proofs_sent,
                    metrics.proofs_failed,
                    metrics.deals_accepted,
                    metrics.offers_refused,
                    metrics.pieces_served,
                    metrics.pieces_rejected,
                    metrics.jobs_done,
                    metrics.jobs_failed,
                    metrics.jobs_dropped
                )
            })
        }
    }
}

/// Hashes the file, uploads the pieces the node lacks (so an interrupted upload resumes),
/// then opens and offers one deal per chosen provider and waits for them to be accepted.
async fn put(
    global: &Global,
    path: &Path,
    from: &str,
    replicas: usize,
    epochs: u64,
    max_price: Option<u128>,
    accept_timeout: u64,
) -> anyhow::Result<PutReport> {
    let key = unlock(global, &keystore(global), from)?;
    let rpc = client(&global.rpc)?;
    let err = |e| rpc_error(&global.rpc, e);
    let (root, size) = upload(global, path).await?;

    let providers = choose_providers(&rpc.providers().await.map_err(err)?, size, max_price);
    if providers.len() < replicas {
        bail!(
            "only {} provider(s) advertise room for {size} bytes{}; lower --replicas or wait for more (`cairn provider list`)",
            providers.len(),
            max_price
                .map(|p| format!(" at {p} wei/MiB/epoch or less"))
                .unwrap_or_default()
        );
    }
    let mut deals = Vec::new();
    for provider in providers.into_iter().take(replicas) {
        let price = price_per_epoch(provider.storage_price.saturating_to::<u128>(), size);
        let call = StorageMarket::openDealCall {
            provider: provider.provider,
            dataRoot: root,
            size,
            epochs,
            pricePerEpoch: price,
        };
        let escrow = U256::from(price) * U256::from(epochs);
        let opened: StorageMarket::DealOpened = submit_for_event(
            global,
            &key,
            Call::contract(STORAGE_MARKET, escrow, call),
            0,
        )
        .await?;
        let id = opened.id;
        if let Err(refused) = rpc.storage_offer(id).await {
            // Nothing is stored under a refused deal: take the escrow back at once.
            let refused = err(refused);
            let cancel = Call::contract(
                STORAGE_MARKET,
                U256::ZERO,
                StorageMarket::cancelDealCall { id },
            );
            let options = TxOptions {
                gas_limit: None,
                wait: true,
                timeout: 60,
                gas_margin_percent: 0,
            };
            submit(global, &key, cancel, &options).await?;
            bail!(
                "provider {} did not take deal {id}: {refused:#}\nthe deal was cancelled; its escrow is claimable with `cairn rewards claim`",
                provider.provider
            );
        }
        deals.push(StoredDeal {
            id,
            provider: provider.provider,
            price_per_epoch: format_crn(U256::from(price)),
            state: DealState::name(DealState::Proposed as u8),
        });
    }

    let waiting = ProgressBar::new_spinner();
    waiting.set_message("waiting for the providers to fetch the data and accept");
    let deadline = Instant::now() + Duration::from_secs(accept_timeout);
    loop {
        waiting.tick();
        let mut pending = 0;
        for deal in &mut deals {
            let info = decoded(
                global,
                STORAGE_MARKET,
                StorageMarket::dealOfCall { id: deal.id },
            )
            .await?;
            deal.state = DealState::name(info.state);
            pending += usize::from(info.state == DealState::Proposed as u8);
        }
        if pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            waiting.finish_and_clear();
            bail!(
                "{pending} deal(s) not accepted within {accept_timeout} s; they may be later (`cairn storage deals {}`), or take the escrow back with `cairn storage cancel DEAL --from {from}`",
                key.address()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    waiting.finish_and_clear();
    Ok(PutReport {
        root,
        size,
        epochs,
        deals,
    })
}

/// Uploads a file to the node, checked piece by piece there; pieces the node holds already are
/// skipped, so an interrupted upload resumes. Returns the file's root and size.
pub async fn upload(global: &Global, path: &Path) -> anyhow::Result<(B256, u64)> {
    let rpc = client(&global.rpc)?;
    let err = |e| rpc_error(&global.rpc, e);
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata()?.len();
    let (root, outboard) = Outboard::compute(std::io::BufReader::new(&mut file), size)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let root = B256::from(root);

    rpc.blob_begin(root, size).await.map_err(err)?;
    let missing = rpc.blob_missing(root).await.map_err(err)?;
    let progress = bar(piece_count(size), "uploading");
    progress.set_position(piece_count(size) - missing.len() as u64);
    let mut piece = vec![0u8; PIECE_LEN as usize];
    for index in missing {
        let len = piece_len(size, index).unwrap_or(0) as usize;
        file.seek(SeekFrom::Start(index * PIECE_LEN))?;
        file.read_exact(&mut piece[..len])?;
        let path = outboard
            .piece_path(index)
            .into_iter()
            .map(B256::from)
            .collect();
        rpc.blob_put_piece(root, index, piece[..len].to_vec().into(), path)
            .await
            .map_err(err)?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok((root, size))
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

/// Has the node fetch ROOT from the network, then copies it out piece by piece, checking
/// each piece against the root again (the node is not trusted either).
pub async fn get(global: &Global, root: B256, output: &Path, timeout: u64) -> anyhow::Result<u64> {
    let rpc = client(&global.rpc)?;
    let err = |e| rpc_error(&global.rpc, e);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut progress = bar(0, "fetching");
    let mut fetch = rpc.storage_fetch(root).await.map_err(err)?;
    loop {
        progress.set_length(fetch.pieces);
        progress.set_position(fetch.present);
        match &fetch.state {
            FetchState::Done => break,
            FetchState::Failed(reason) => {
                progress.abandon();
                bail!("cannot fetch {root}: {reason}");
            }
            FetchState::Running => {}
        }
        if Instant::now() > deadline {
            bail!(
                "{root} not fetched within {timeout} s ({} of {} pieces)",
                fetch.present,
                fetch.pieces
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        fetch = match rpc
            .blob_status(root)
            .await
            .map_err(err)?
            .and_then(|s| s.fetch)
        {
            Some(fetch) => fetch,
            None => rpc.storage_fetch(root).await.map_err(err)?,
        };
    }
    progress.finish_and_clear();
    let status = rpc
        .blob_status(root)
        .await
        .map_err(err)?
        .with_context(|| format!("the node lost {root} after fetching it"))?;
    let size = status.size;
    let partial = output.with_extension("partial");
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    progress = bar(piece_count(size), "writing");
    for index in 0..piece_count(size) {
        let piece = rpc.blob_piece(root, index).await.map_err(err)?;
        let path: Vec<[u8; 32]> = piece.path.iter().map(|cv| cv.0).collect();
        if !verify_piece(&root.0, size, index, &piece.data, &path) {
            bail!(
                "the node served piece {index} of {root} that does not match the root; its store may be damaged"
            );
        }
        file.write_all(&piece.data)?;
        progress.inc(1);
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    progress.finish_and_clear();
    Ok(size)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DealReport {
    id: B256,
    state: &'static str,
    provider: Address,
    data_root: B256,
    size: u64,
    epochs: u64,
    start_epoch: u64,
    end_epoch: u64,
    proven_epochs: u32,
    paid: String,
    faults: u32,
    escrow_left: String,
}

async fn deals(global: &Global, account: &str) -> anyhow::Result<()> {
    let client_address = resolve(&keystore(global), account)?;
    let count = decoded(
        global,
        STORAGE_MARKET,
        StorageMarket::dealNonceCall(client_address),
    )
    .await?;
    let mut reports = Vec::new();
    for nonce in 0..count {
        let id = alloy_primitives::keccak256((client_address, nonce).abi_encode());
        let deal = decoded(global, STORAGE_MARKET, StorageMarket::dealOfCall { id }).await?;
        let paid = U256::from(deal.pricePerEpoch) * U256::from(deal.provenEpochs);
        reports.push(DealReport {
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
            escrow_left: format_crn(U256::from(deal.escrow)),
        });
    }
    print(global.json, &reports, || {
        if reports.is_empty() {
            return format!("{client_address} has opened no storage deals");
        }
        reports
            .iter()
            .map(|d| {
                format!(
                    "{}  {:<10}  provider {}\n  data {} ({} bytes)  epochs {}..={}  proven {}  paid {} CRN  faults {}  escrow {} CRN",
                    d.id, d.state, d.provider, d.data_root, d.size, d.start_epoch, d.end_epoch,
                    d.proven_epochs, d.paid, d.faults, d.escrow_left
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `cairn provider list`: the providers whose adverts reached the node, with their stake.
pub async fn list_providers(global: &Global) -> anyhow::Result<()> {
    let rpc = client(&global.rpc)?;
    let providers = rpc
        .providers()
        .await
        .map_err(|e| rpc_error(&global.rpc, e))?;
    print(global.json, &providers, || {
        if providers.is_empty() {
            return "no provider adverts have reached this node yet".to_string();
        }
        let mut text = format!(
            "{:<42}  {:>14}  {:>14}  {:>16}  {:>5}  {:>14}  {:>12}  {:>12}  peer",
            "provider",
            "storage free",
            "capacity",
            "wei/MiB/epoch",
            "cores",
            "fuel/s",
            "wei/fuel",
            "bonded CRN"
        );
        for p in &providers {
            text.push_str(&format!(
                "\n{:<42}  {:>14}  {:>14}  {:>16}  {:>5}  {:>14}  {:>12}  {:>12}  {}",
                p.provider.to_string(),
                p.storage_free,
                p.storage_capacity,
                p.storage_price.to_string(),
                p.cores,
                p.fuel_per_second,
                p.compute_price.to_string(),
                format_crn(p.bonded),
                p.peer_id
            ));
        }
        text
    })
}
