//! A running node: the chain, the mempool, the block producer and the RPC server.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::chain::{Chain, ProducedBlock};
use crate::error::{NodeError, Result, TxRejection};
use crate::genesis::Genesis;
use crate::mempool::{Mempool, MempoolConfig};
use crate::parallel::Parallel;
use crate::rpc::{CairnApiServer, RpcServer};
use crate::types::{AccountKey, B256, Canonical, Transaction, VerifiedTransaction};

/// File names inside a node's data directory.
pub mod files {
    /// The chain's genesis.
    pub const GENESIS: &str = "genesis.json";
    /// The validator's consensus key (hex secret).
    pub const VALIDATOR_KEY: &str = "validator.key";
    /// The RocksDB database.
    pub const DATABASE: &str = "db";
    /// The dev accounts `cairn dev` funds (address and private key).
    pub const DEV_ACCOUNTS: &str = "dev-accounts.json";
    /// The node's libp2p identity (hex ed25519 secret), separate from the validator key.
    pub const NODE_KEY: &str = "node.key";
    /// A provider's account key (hex secret): it stakes, takes deals, proves and answers jobs.
    pub const PROVIDER_KEY: &str = "provider.key";
    /// The chunk store (its own RocksDB database).
    pub const CHUNKS: &str = "chunks";
}

/// How a networked node reaches its peers and paces consensus.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Where libp2p listens (`/ip4/127.0.0.1/tcp/0` picks a free port).
    pub listen: Vec<cairn_p2p::Multiaddr>,
    /// Peers to join through.
    pub bootnodes: Vec<cairn_p2p::Multiaddr>,
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
    /// How long a consensus view may go without a notarization.
    pub view_timeout: Duration,
    /// Run a provider agent (storage, compute or both) for this account and offer.
    pub provider: Option<crate::providers::agent::ProviderSettings>,
    /// Faults switched on for tests.
    pub faults: crate::providers::TestFaults,
}

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory (database, genesis, keys).
    pub datadir: PathBuf,
    /// The chain.
    pub genesis: Genesis,
    /// This node's validator key.
    pub validator_key: AccountKey,
    /// Where the JSON-RPC server listens (port 0 picks a free port).
    pub rpc_addr: SocketAddr,
    /// Time between blocks; the genesis value if `None`.
    pub block_time: Option<Duration>,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// Block-STM workers executing each block; 0 means one per core.
    pub execution_threads: usize,
    /// Join a network and finalize blocks by consensus; `None` runs a single-validator chain
    /// that commits every block it builds (`cairn dev`).
    pub network: Option<NetworkSettings>,
}

impl NodeConfig {
    /// Reads the genesis and validator key from a data directory.
    pub fn from_datadir(datadir: &Path, rpc_addr: SocketAddr) -> Result<Self> {
        let genesis = Genesis::load(&datadir.join(files::GENESIS))?;
        let validator_key = read_key(&datadir.join(files::VALIDATOR_KEY))?;
        Ok(Self {
            datadir: datadir.to_path_buf(),
            genesis,
            validator_key,
            rpc_addr,
            block_time: None,
            mempool: MempoolConfig::default(),
            execution_threads: 0,
            network: None,
        })
    }
}

/// Reads a hex private key file.
pub fn read_key(path: &Path) -> Result<AccountKey> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
    AccountKey::from_hex(&text).map_err(|source| NodeError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a hex private key file readable by its owner only.
pub fn write_key(path: &Path, key: &AccountKey) -> Result<()> {
    write_private(path, key.secret_hex().as_bytes())
}

/// Reads the node's libp2p identity from `path` (the same hex ed25519 secret as a validator
/// key file), creating it on first use.
pub fn load_or_create_node_key(path: &Path) -> Result<cairn_p2p::Keypair> {
    if !path.exists() {
        let keypair = cairn_p2p::Keypair::generate_ed25519();
        write_node_key(path, &keypair)?;
        return Ok(keypair);
    }
    let mut secret = *read_key(path)?.secret();
    cairn_p2p::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
}

/// Writes a node's libp2p identity, readable by its owner only.
pub fn write_node_key(path: &Path, keypair: &cairn_p2p::Keypair) -> Result<()> {
    let ed25519 = keypair.clone().try_into_ed25519().map_err(|e| {
        NodeError::Config(format!(
            "{}: a node key must be ed25519 ({e})",
            path.display()
        ))
    })?;
    let secret: [u8; 32] = ed25519
        .secret()
        .as_ref()
        .try_into()
        .map_err(|_| NodeError::Config("an ed25519 secret is 32 bytes".into()))?;
    write_key(path, &AccountKey::from_bytes(&secret))
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| NodeError::io(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| NodeError::io(path, e))
}

/// Why a submitted transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction is unacceptable.
    #[error(transparent)]
    Rejected(#[from] TxRejection),
    /// The node failed while checking it.
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// What a networked node knows about consensus and its peers, for `cairn_chainStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkView {
    /// The consensus view this node is in.
    pub view: u64,
    /// Connected peers.
    pub peers: usize,
    /// This node's libp2p peer id.
    pub peer_id: Option<String>,
}

/// State shared by the RPC server, the block producer and the consensus driver.
#[derive(Debug)]
pub struct Shared {
    pub(crate) chain: Chain,
    mempool: Mutex<Mempool>,
    pub(crate) block_time_ms: u64,
    /// Where transactions submitted over RPC go to be gossiped (a networked node only).
    gossip: OnceLock<tokio::sync::mpsc::Sender<Vec<u8>>>,
    network: Mutex<NetworkView>,
}

impl Shared {
    /// A chain with an empty mempool.
    pub fn new(chain: Chain, mempool: MempoolConfig, block_time_ms: u64) -> Self {
        Self {
            chain,
            mempool: Mutex::new(Mempool::new(mempool)),
            block_time_ms,
            gossip: OnceLock::new(),
            network: Mutex::new(NetworkView::default()),
        }
    }

    /// What this node knows of consensus and peers (the default for a dev node).
    pub fn network_view(&self) -> NetworkView {
        self.network
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(crate) fn set_network_view(&self, view: NetworkView) {
        *self.network.lock().unwrap_or_else(|p| p.into_inner()) = view;
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The mempool, locked.
    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        // A panic while holding the lock leaves a consistent pool: every mutation is a
        // single insert or removal.
        self.mempool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decodes a raw transaction, admits it to the mempool and, on a networked node, passes
    /// it on to be gossiped to the other validators.
    pub fn submit_raw(&self, raw: &[u8]) -> std::result::Result<B256, SubmitError> {
        let tx = Transaction::decode(raw).map_err(TxRejection::from)?;
        let hash = self.submit(tx)?;
        if let Some(gossip) = self.gossip.get() {
            // A full queue only delays the transaction: it waits in this node's mempool until
            // this node proposes.
            let _ = gossip.try_send(raw.to_vec());
        }
        Ok(hash)
    }

    /// Admits a transaction to the mempool. The signature is checked before the pool is
    /// locked, so that concurrent submissions verify in parallel.
    pub fn submit(&self, tx: Transaction) -> std::result::Result<B256, SubmitError> {
        let tx = VerifiedTransaction::verify(tx).ok_or(TxRejection::BadSignature)?;
        // The sender's state is read under the pool's lock: the producer prunes the pool only
        // after committing a block, so a state read here is never older than the pool. (Read
        // before the lock, a block could commit and be pruned in between, and a valid next
        // nonce would look like a gap.)
        let mut mempool = self.mempool();
        let sender = self.chain.sender_state(tx.sender())?;
        Ok(mempool.insert(tx, &self.chain.rules(), sender)?)
    }

    /// The nonce an account's next transaction should carry, counting its pending ones
    /// (read under the pool's lock for the same reason as in [`Shared::submit`]).
    pub fn pending_nonce(&self, address: crate::types::Address) -> Result<u64> {
        let mempool = self.mempool();
        let committed = self.chain.sender_state(address)?.nonce;
        Ok(mempool.next_nonce(&address, committed))
    }

    /// Builds and commits the next block from the mempool, then drops from the pool what the
    /// block included or made stale.
    pub fn produce_block(&self, key: &AccountKey, timestamp_ms: u64) -> Result<ProducedBlock> {
        let candidates = self.select_candidates();
        let produced = self.chain.produce_block(key, timestamp_ms, &candidates)?;
        let excluded: Vec<B256> = produced.excluded.iter().map(|(hash, _)| *hash).collect();
        self.prune_mempool(&candidates, &excluded)?;
        Ok(produced)
    }

    /// The mempool's pick for the next block, against the committed state.
    pub(crate) fn select_candidates(&self) -> Vec<Transaction> {
        let view = self.chain.state();
        let nonce_of = |address: &crate::types::Address| {
            crate::chain::account_state(&view, *address)
                .map(|s| s.nonce)
                .unwrap_or(0)
        };
        self.mempool()
            .select(self.chain.genesis().gas_limit, nonce_of)
    }

    /// Drops from the mempool what committed blocks made stale (the senders of `transactions`
    /// moved on) and the transactions in `excluded`, which cannot run.
    pub(crate) fn prune_mempool(
        &self,
        transactions: &[Transaction],
        excluded: &[B256],
    ) -> Result<()> {
        let senders: BTreeSet<_> = transactions.iter().map(Transaction::sender).collect();
        let view = self.chain.state();
        let mut committed = Vec::with_capacity(senders.len());
        for sender in senders {
            committed.push((sender, crate::chain::account_state(&view, sender)?.nonce));
        }
        let mut mempool = self.mempool();
        for hash in excluded {
            mempool.evict(hash);
        }
        mempool.prune(committed);
        Ok(())
    }
}

/// Milliseconds since the Unix epoch by this machine's clock (only a proposer reads it, to
/// stamp its block; execution and validation never do).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    rpc_addr: SocketAddr,
    rpc: ServerHandle,
    peer_id: Option<cairn_p2p::PeerId>,
    worker: JoinHandle<()>,
    /// The provider agent, on a node that is a provider.
    agent: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Node {
    /// Opens the chain, starts the RPC server and the block producer.
    pub async fn launch(config: NodeConfig) -> Result<Self> {
        let block_time = config
            .block_time
            .unwrap_or(Duration::from_millis(config.genesis.block_time_ms))
            .max(Duration::from_millis(1));
        let chain = Chain::open(
            &config.datadir.join(files::DATABASE),
            config.genesis,
            Box::new(Parallel::new(config.execution_threads)),
        )?;
        let shared = Arc::new(Shared::new(
            chain,
            config.mempool,
            block_time.as_millis() as u64,
        ));

        // A raw transaction or a piece of data travels as hex: twice its size, plus the JSON
        // around it.
        let largest =
            crate::types::MAX_TX_SIZE.max(cairn_storage::blobs::PIECE_LEN as usize + 4096);
        let limits = ServerConfig::builder()
            .max_request_body_size(2 * largest as u32 + 4096)
            .max_connections(256)
            .build();
        let server = Server::builder()
            .set_config(limits)
            .build(config.rpc_addr)
            .await
            .map_err(|e| NodeError::Rpc {
                addr: config.rpc_addr,
                detail: e.to_string(),
            })?;
        let rpc_addr = server.local_addr().map_err(|e| NodeError::Rpc {
            addr: config.rpc_addr,
            detail: e.to_string(),
        })?;
        let data_net = Arc::new(OnceLock::new());
        let rpc = server.start(RpcServer::new(shared.clone(), data_net.clone()).into_rpc());

        let (stop, stopped) = watch::channel(false);
        let mut agent = None;
        let (worker, peer_id) = match config.network {
            None => {
                let producer =
                    produce_blocks(shared.clone(), config.validator_key, block_time, stopped);
                (tokio::spawn(producer), None)
            }
            Some(settings) => {
                let keypair = load_or_create_node_key(&config.datadir.join(files::NODE_KEY))?;
                let genesis_hash = shared.chain.genesis_hash()?;
                let (network, events) = cairn_p2p::start(cairn_p2p::NetworkConfig {
                    keypair,
                    listen: settings.listen,
                    bootnodes: settings.bootnodes,
                    chain_id: shared.chain.genesis().chain_id,
                    genesis_hash: genesis_hash.0,
                    mdns: settings.mdns,
                    limits: cairn_p2p::TopicLimits {
                        transactions: crate::types::MAX_TX_SIZE,
                        proposals: crate::consensus::messages::MAX_PROPOSAL_SIZE + 64,
                        votes: <crate::consensus::messages::Certificate as Canonical>::MAX_SIZE
                            + 64,
                        provider_adverts: 16 * 1024,
                    },
                })
                .await?;
                let peer_id = network.peer_id();
                let store = Arc::new(cairn_storage::ChunkStore::open(
                    &config.datadir.join(files::CHUNKS),
                )?);
                let (offers, offer_queue) = tokio::sync::mpsc::channel(64);
                let data = Arc::new(crate::providers::DataNet::new(
                    shared.clone(),
                    store,
                    network.clone(),
                    settings.provider.is_some().then_some(offers),
                    settings.faults,
                ));
                let _ = data_net.set(data.clone());
                if let Some(provider) = settings.provider {
                    let provider_agent = crate::providers::agent::Agent::new(
                        shared.clone(),
                        data.clone(),
                        provider,
                        offer_queue,
                    );
                    agent = Some(tokio::spawn(provider_agent.run(stopped.clone())));
                }
                let (gossip, outgoing) = tokio::sync::mpsc::channel(1024);
                // Set once, just after the node's Shared was made.
                let _ = shared.gossip.set(gossip);
                let timing = crate::consensus::driver::Timing {
                    block_time,
                    view_timeout: settings.view_timeout,
                    retry: settings.view_timeout / 2,
                };
                let driver = crate::consensus::driver::run(
                    shared.clone(),
                    config.validator_key,
                    timing,
                    crate::consensus::driver::Links {
                        network,
                        events,
                        outgoing_transactions: outgoing,
                        data,
                    },
                    stopped,
                );
                let task = tokio::spawn(async move {
                    if let Err(error) = driver.await {
                        tracing::error!(%error, "consensus stopped");
                    }
                });
                (task, Some(peer_id))
            }
        };
        Ok(Self {
            shared,
            rpc_addr,
            rpc,
            peer_id,
            worker,
            agent,
            stop,
        })
    }

    /// This node's libp2p peer id, if it is networked.
    pub fn peer_id(&self) -> Option<cairn_p2p::PeerId> {
        self.peer_id
    }

    /// The address the RPC server listens on.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The node's shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops producing blocks and serving RPC, waiting for a block in progress to be committed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.worker.await;
        if let Some(agent) = self.agent {
            let _ = agent.await;
        }
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
    }
}

async fn produce_blocks(
    shared: Arc<Shared>,
    key: AccountKey,
    block_time: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(block_time);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        let (shared, key) = (shared.clone(), key.clone());
        let produced =
            tokio::task::spawn_blocking(move || shared.produce_block(&key, now_ms())).await;
        match produced {
            Ok(Ok(block)) => {
                let header = &block.block.header;
                tracing::info!(
                    height = header.height,
                    hash = %header.hash(),
                    txs = block.block.transactions.len(),
                    gas = header.gas_used,
                    "committed block"
                );
                for (hash, reason) in &block.excluded {
                    tracing::warn!(%hash, reason, "dropped transaction that cannot run");
                }
            }
            // The batch was not written: nothing is half-committed, so the next tick retries.
            Ok(Err(error)) => tracing::error!(%error, "failed to produce a block"),
            Err(error) => tracing::error!(%error, "block producer task failed"),
        }
    }
}

/// A funded dev account, as printed by `cairn dev` and written to `dev-accounts.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevAccount {
    /// Address.
    pub address: crate::types::Address,
    /// Private key, `0x` hex.
    pub private_key: String,
}

/// The funded dev accounts, with their (public) keys.
pub fn dev_accounts() -> Vec<DevAccount> {
    (0..crate::genesis::DEV_ACCOUNT_COUNT)
        .map(|i| {
            let key = crate::genesis::dev_account(i);
            DevAccount {
                address: key.address(),
                private_key: key.secret_hex().to_string(),
            }
        })
        .collect()
}

/// Prepares a dev data directory: on first use writes the dev genesis and validator key;
/// always (re)writes `dev-accounts.json`. Returns the node configuration and the accounts.
pub fn prepare_dev_datadir(
    datadir: &Path,
    rpc_addr: SocketAddr,
) -> Result<(NodeConfig, Vec<DevAccount>)> {
    std::fs::create_dir_all(datadir).map_err(|e| NodeError::io(datadir, e))?;
    let genesis_path = datadir.join(files::GENESIS);
    if !genesis_path.exists() {
        Genesis::dev().save(&genesis_path)?;
        write_key(
            &datadir.join(files::VALIDATOR_KEY),
            &crate::genesis::dev_validator(),
        )?;
    }
    let accounts = dev_accounts();
    let path = datadir.join(files::DEV_ACCOUNTS);
    let json = serde_json::to_vec_pretty(&accounts).map_err(|source| NodeError::Json {
        path: path.clone(),
        source,
    })?;
    write_private(&path, &json)?;
    Ok((NodeConfig::from_datadir(datadir, rpc_addr)?, accounts))
}
