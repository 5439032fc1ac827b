//! `cairn bench storage`: moving data between nodes over libp2p on loopback, proving chunks of
//! a large stored file, and verifying storage proofs on chain.
//!
//! - **Upload**: a provider's data plane fetches a file from the client's node (every piece
//!   checked against the root before it is stored), as after `cairn storage put`.
//! - **Retrieval**: a third node fetches it from the client and the provider at once, as
//!   `cairn storage get` does from replicas.
//! - **Proof generation**: chunk proofs from the chunk store for random challenges in a file
//!   of `--proof-file-mib` (1 GiB by default).
//! - **On-chain verification**: a block of `submitProof` transactions for deals of that size
//!   against the real contracts and precompile, executed sequentially: gas and time per proof.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_p2p::{NetworkEvent, Verdict};
use cairn_storage::ChunkStore;
use serde::Serialize;

use crate::error::{BenchError, Result};
use cairn_chain::chain::Chain;
use cairn_chain::genesis::Genesis;
use cairn_evm::execution::{Sequential, TxOutcome};

use cairn_primitives::Canonical;
use cairn_primitives::wire::PeerRequest;
use cairn_providers::DataNet;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct StorageBenchOptions {
    /// Size of the file moved between nodes, MiB.
    pub transfer_mib: u64,
    /// Size of the file chunks are proven from, MiB.
    pub proof_file_mib: u64,
    /// Chunk proofs generated.
    pub proofs: usize,
    /// `submitProof` transactions executed.
    pub proof_txs: usize,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageReport {
    /// Bytes moved.
    pub transfer_bytes: u64,
    /// Upload (provider fetches from the client), MiB/s.
    pub upload_mib_per_sec: f64,
    /// Retrieval from two holders at once, MiB/s.
    pub retrieval_mib_per_sec: f64,
    /// Importing the proof file into the chunk store (hashing, outboard, writes), MiB/s.
    pub import_mib_per_sec: f64,
    /// Size of the file proofs come from, bytes.
    pub proof_file_bytes: u64,
    /// Mean time to generate one chunk proof, µs.
    pub prove_mean_us: f64,
    /// Slowest chunk proof, µs.
    pub prove_max_us: f64,
    /// Sibling hashes in one chunk proof.
    pub proof_path_len: usize,
    /// Chunks challenged per proof transaction.
    pub challenges_per_tx: usize,
    /// Gas of one proof transaction.
    pub verify_gas_per_tx: u64,
    /// Wall time to execute one proof transaction, µs.
    pub verify_us_per_tx: f64,
}

/// A data plane on its own network and dev chain, answering peers' data requests.
struct BenchNode {
    data: Arc<DataNet>,
    address: cairn_p2p::Multiaddr,
}

async fn bench_node(dir: &Path, bootnodes: Vec<cairn_p2p::Multiaddr>) -> Result<BenchNode> {
    let genesis = Genesis::dev();
    let chain = Chain::open(&dir.join("chain"), genesis.clone(), Box::new(Sequential))?;
    let chain = Arc::new(chain);
    let keypair = cairn_p2p::Keypair::generate_ed25519();
    let (network, mut events) = cairn_p2p::start(cairn_p2p::NetworkConfig {
        keypair,
        listen: vec![
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .map_err(|e| BenchError::Check(format!("{e}")))?,
        ],
        bootnodes,
        chain_id: genesis.chain_id,
        genesis_hash: chain.genesis_hash()?.0,
        mdns: false,
        limits: cairn_p2p::TopicLimits {
            transactions: 1 << 17,
            proposals: 1 << 20,
            votes: 1 << 17,
            provider_adverts: 1 << 14,
        },
        budgets: cairn_p2p::PeerBudgets::default(),
    })
    .await?;
    let status = network.status().await?;
    let listen = status
        .listen_addrs
        .first()
        .ok_or_else(|| BenchError::Check("the bench node listens nowhere".into()))?;
    let address = format!("{listen}/p2p/{}", status.peer_id)
        .parse()
        .map_err(|e| BenchError::Check(format!("{e}")))?;
    let store = Arc::new(ChunkStore::open(&dir.join("chunks"))?);
    let data = Arc::new(DataNet::new(
        chain.clone(),
        store,
        network.clone(),
        None,
        Arc::new(cairn_providers::Honest),
    ));
    let serving = data.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetworkEvent::Request { peer, id, data } => {
                    if let Ok(PeerRequest::Data(request)) = PeerRequest::decode(&data) {
                        serving.server().serve(peer, id, request);
                    }
                }
                NetworkEvent::Gossip(message) => {
                    let _ = network.validate(&message, Verdict::Ignore).await;
                }
                _ => {}
            }
        }
    });
    Ok(BenchNode { data, address })
}

async fn connected(node: &BenchNode, peers: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.data.fetcher().network_status().await?.peers.len() < peers {
        if Instant::now() > deadline {
            return Err(BenchError::Check("bench nodes did not connect".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn pseudo_random(len: u64, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len as usize];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut bytes);
    bytes
}

fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
}

/// Runs the storage benchmark in `workdir`.
pub async fn run(options: StorageBenchOptions, workdir: &Path) -> Result<StorageReport> {
    let transfer_bytes = options.transfer_mib << 20;
    let client = bench_node(&workdir.join("client"), Vec::new()).await?;
    let provider = bench_node(&workdir.join("provider"), vec![client.address.clone()]).await?;
    let reader = bench_node(
        &workdir.join("reader"),
        vec![client.address.clone(), provider.address.clone()],
    )
    .await?;
    connected(&reader, 2).await?;
    connected(&provider, 2).await?;

    let file = pseudo_random(transfer_bytes, 1);
    let root = client.data.store().add(&file)?;
    let started = Instant::now();
    provider
        .data
        .fetcher()
        .clone()
        .fetch(root, transfer_bytes, vec![client.data.peer_id()])
        .await?;
    let upload = started.elapsed();
    let started = Instant::now();
    reader
        .data
        .fetcher()
        .clone()
        .fetch(
            root,
            transfer_bytes,
            vec![client.data.peer_id(), provider.data.peer_id()],
        )
        .await?;
    let retrieval = started.elapsed();
    for node in [&provider, &reader] {
        let copy = node.data.store().piece(&root, 0)?;
        if copy.data[..] != file[..copy.data.len()] {
            return Err(BenchError::Check("a fetched copy differs".into()));
        }
    }

    let proof_file_bytes = options.proof_file_mib << 20;
    let big = pseudo_random(proof_file_bytes, 2);
    let store = ChunkStore::open(&workdir.join("proof-store"))?;
    let started = Instant::now();
    let big_root = store.add(&big)?;
    let import = started.elapsed();
    drop(big);
    let chunks = cairn_storage::chunk_proof::chunk_count(proof_file_bytes);
    let mut index = 0x9e37_79b9_7f4a_7c15u64;
    let (mut total, mut slowest, mut path_len) = (Duration::ZERO, Duration::ZERO, 0);
    for _ in 0..options.proofs.max(1) {
        index = index
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let chunk = index % chunks;
        let started = Instant::now();
        let proof = store.prove(&big_root, chunk)?;
        let elapsed = started.elapsed();
        total += elapsed;
        slowest = slowest.max(elapsed);
        path_len = proof.path.len();
        if !cairn_storage::chunk_proof::verify(
            &big_root,
            proof_file_bytes,
            chunk,
            &proof.chunk,
            &proof.path,
        ) {
            return Err(BenchError::Check(format!(
                "the proof of chunk {chunk} does not verify"
            )));
        }
    }
    drop(store);

    let workload = super::proof_workload(
        options.proof_txs.max(1),
        &workdir.join("chain"),
        proof_file_bytes,
    )?;
    let (outcomes, _, elapsed) = super::time_block(&workload, &Sequential)?;
    let mut gas = Vec::with_capacity(outcomes.len());
    for outcome in &outcomes {
        match outcome {
            TxOutcome::Included(receipt) if receipt.succeeded() => gas.push(receipt.gas_used),
            other => {
                return Err(BenchError::Check(format!(
                    "a proof transaction failed: {other:?}"
                )));
            }
        }
    }
    let genesis_challenges =
        cairn_chain::genesis::ContractsConfig::dev().challenges_per_epoch as usize;
    Ok(StorageReport {
        transfer_bytes,
        upload_mib_per_sec: mib_per_sec(transfer_bytes, upload),
        retrieval_mib_per_sec: mib_per_sec(transfer_bytes, retrieval),
        import_mib_per_sec: mib_per_sec(proof_file_bytes, import),
        proof_file_bytes,
        prove_mean_us: total.as_secs_f64() * 1e6 / options.proofs.max(1) as f64,
        prove_max_us: slowest.as_secs_f64() * 1e6,
        proof_path_len: path_len,
        challenges_per_tx: genesis_challenges,
        verify_gas_per_tx: gas.iter().sum::<u64>() / gas.len().max(1) as u64,
        verify_us_per_tx: elapsed.as_secs_f64() * 1e6 / outcomes.len().max(1) as f64,
    })
}
