//! A running node: the chain, the mempool, the block producer or the consensus driver, the
//! network router, the provider agent and the RPC server, each given only the handles it needs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::ServerHandle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use cairn_chain::Chain;
use cairn_consensus::NetworkView;
use cairn_consensus::driver::{Links, Timing};
use cairn_evm::parallel::Parallel;
use cairn_mempool::TxPool;
use cairn_primitives::clock::now_ms;
use cairn_primitives::{AccountKey, Canonical};
use cairn_providers::DataNet;
use cairn_providers::agent::Agent;
use cairn_rpc::RpcServer;

use prometheus_client::registry::Registry;

use crate::config::NodeConfig;
use crate::datadir::{files, load_or_create_admin_token, load_or_create_node_key};
use crate::error::Result;
use crate::metrics::{ChainMetrics, ProviderSource, Sampled, Sources};
use crate::router::{Router, TX_GOSSIP_QUEUE};

/// A running node.
#[derive(Debug)]
pub struct Node {
    pool: TxPool,
    rpc_addr: SocketAddr,
    /// Where metrics are served, if they are.
    metrics_addr: Option<SocketAddr>,
    rpc: ServerHandle,
    /// The node's network (none on a dev node).
    network: Option<cairn_p2p::NetworkHandle>,
    /// The block producer, or the consensus driver and the network router.
    tasks: Vec<JoinHandle<()>>,
    /// The provider agent, on a node that is a provider.
    agent: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Node {
    /// Opens the chain, starts the network (if any), the RPC server and the block producer or
    /// the consensus driver.
    pub async fn launch(config: NodeConfig) -> Result<Self> {
        let block_time = config
            .block_time
            .unwrap_or(Duration::from_millis(config.genesis.block_time_ms))
            .max(Duration::from_millis(1));
        let chain = Arc::new(Chain::open(
            &config.datadir.join(files::DATABASE),
            config.genesis,
            Box::new(Parallel::new(config.execution_threads)),
        )?);
        let admin_token_file = config.datadir.join(files::ADMIN_TOKEN);
        let access = cairn_rpc::AccessPolicy {
            admin_token: load_or_create_admin_token(&admin_token_file)?,
            admin_token_file: admin_token_file.clone(),
            allowed_hosts: config.rpc_allowed_hosts.clone(),
            allowed_origins: config.rpc_allowed_origins.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        let (status, network_view) = watch::channel(NetworkView::default());
        let block_time_ms = block_time.as_millis() as u64;
        let mut registry = Registry::with_prefix("cairn");
        let rpc_metrics = cairn_rpc::RpcMetrics::register(&mut registry);
        let chain_metrics = ChainMetrics::register(&mut registry);
        let provider = config
            .network
            .as_ref()
            .and_then(|network| network.provider.as_ref())
            .map(|provider| provider.key.address());
        let sampled = Sampled::register(&mut registry, provider.is_some());
        let mut tasks = Vec::new();
        // Nobody reads the commit follower's figures without a metrics listener.
        if config.metrics_addr.is_some() {
            let follower = chain_metrics.follow(chain.clone(), stopped.clone());
            tasks.push(tokio::spawn(follower));
        }

        let Some(settings) = config.network else {
            let pool = TxPool::new(chain, config.mempool, None);
            let listeners = Listeners {
                rpc_addr: config.rpc_addr,
                metrics_addr: config.metrics_addr,
                access: &access,
                block_time_ms,
                admin_token_file,
                provider,
            };
            let metrics = (registry, rpc_metrics, sampled);
            let (rpc_addr, rpc, metrics_addr) = listeners
                .start(&pool, network_view, None, metrics, &stopped, &mut tasks)
                .await?;
            let producer = produce_blocks(pool.clone(), config.validator_key, block_time, stopped);
            tasks.push(tokio::spawn(producer));
            return Ok(Self {
                pool,
                rpc_addr,
                metrics_addr,
                rpc,
                network: None,
                tasks,
                agent: None,
                stop,
            });
        };

        let keypair = load_or_create_node_key(&config.datadir.join(files::NODE_KEY))?;
        let genesis_hash = chain.genesis_hash()?;
        let (network, events) = cairn_p2p::start(cairn_p2p::NetworkConfig {
            keypair,
            listen: settings.listen,
            bootnodes: settings.bootnodes,
            chain_id: chain.genesis().chain_id,
            genesis_hash: genesis_hash.0,
            mdns: settings.mdns,
            limits: cairn_p2p::TopicLimits {
                transactions: cairn_primitives::MAX_TX_SIZE,
                proposals: cairn_consensus::messages::MAX_PROPOSAL_SIZE + 64,
                votes: <cairn_consensus::Certificate as Canonical>::MAX_SIZE + 64,
                provider_adverts: 16 * 1024,
            },
            budgets: cairn_p2p::PeerBudgets::default(),
        })
        .await?;
        let (gossip, outgoing_transactions) = mpsc::channel(TX_GOSSIP_QUEUE);
        let pool = TxPool::new(chain.clone(), config.mempool, Some(gossip));
        let store = Arc::new(cairn_storage::ChunkStore::open(
            &config.datadir.join(files::CHUNKS),
        )?);
        let (offers, offer_queue) = mpsc::channel(64);
        let data = Arc::new(DataNet::new(
            chain.clone(),
            store,
            network.clone(),
            settings.provider.is_some().then_some(offers),
            settings.conduct,
        ));
        let listeners = Listeners {
            rpc_addr: config.rpc_addr,
            metrics_addr: config.metrics_addr,
            access: &access,
            block_time_ms,
            admin_token_file,
            provider,
        };
        let metrics = (registry, rpc_metrics, sampled);
        let (rpc_addr, rpc, metrics_addr) = listeners
            .start(
                &pool,
                network_view,
                Some(data.clone()),
                metrics,
                &stopped,
                &mut tasks,
            )
            .await?;

        let agent = settings.provider.map(|provider| {
            let agent = Agent::new(pool.clone(), data.clone(), provider, offer_queue);
            tokio::spawn(agent.run(stopped.clone()))
        });
        let (consensus_events, consensus_inbox) = mpsc::channel(crate::router::CONSENSUS_QUEUE);
        let router = Router {
            sync: cairn_consensus::SyncServer::new(chain.clone(), network.clone()),
            pool: pool.clone(),
            data,
            network: network.clone(),
            consensus: consensus_events,
        };
        let router = tokio::spawn(router.run(events, outgoing_transactions, stopped.clone()));
        let timing = Timing {
            block_time,
            view_timeout: settings.view_timeout,
            // Never a busy loop, whatever the configured timeout.
            retry: (settings.view_timeout / 2).max(Duration::from_millis(10)),
        };
        let links = Links {
            network: network.clone(),
            events: consensus_inbox,
            status,
        };
        let driver = cairn_consensus::driver::run(
            cairn_consensus::TokioRuntime,
            chain,
            pool.clone(),
            config.validator_key,
            timing,
            links,
            stopped,
        );
        let driver = tokio::spawn(async move {
            if let Err(error) = driver.await {
                tracing::error!(%error, "consensus stopped");
            }
        });
        tasks.extend([driver, router]);
        Ok(Self {
            pool,
            rpc_addr,
            metrics_addr,
            rpc,
            network: Some(network),
            tasks,
            agent,
            stop,
        })
    }

    /// This node's libp2p peer id, if it is networked.
    pub fn peer_id(&self) -> Option<cairn_p2p::PeerId> {
        self.network.as_ref().map(cairn_p2p::NetworkHandle::peer_id)
    }

    /// The peers this node is connected to now (none on a dev node).
    pub async fn peers(&self) -> Vec<cairn_p2p::PeerId> {
        match &self.network {
            Some(network) => network.status().await.map(|s| s.peers).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The address the RPC server listens on.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// Where Prometheus metrics are served (`/metrics`), if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The node's mempool (and, through it, its chain).
    pub fn pool(&self) -> &TxPool {
        &self.pool
    }

    /// The node's chain.
    pub fn chain(&self) -> &Arc<Chain> {
        self.pool.chain()
    }

    /// Stops producing blocks and serving RPC, waiting for a block in progress to be committed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(agent) = self.agent {
            let _ = agent.await;
        }
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
    }
}

/// Where a node listens for clients, and what they need.
struct Listeners<'a> {
    rpc_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    access: &'a cairn_rpc::AccessPolicy,
    block_time_ms: u64,
    admin_token_file: std::path::PathBuf,
    /// The account of the provider this node runs, if any.
    provider: Option<cairn_primitives::Address>,
}

impl Listeners<'_> {
    /// Starts the RPC server, and the metrics listener if one is asked for (its task added to
    /// `tasks`); the addresses they bound and the RPC server's handle.
    async fn start(
        self,
        pool: &TxPool,
        network_view: watch::Receiver<NetworkView>,
        data: Option<Arc<DataNet>>,
        (registry, rpc_metrics, sampled): (Registry, cairn_rpc::RpcMetrics, Sampled),
        stopped: &watch::Receiver<bool>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Result<(SocketAddr, ServerHandle, Option<SocketAddr>)> {
        let provider = data
            .clone()
            .zip(self.provider)
            .map(|(data, account)| ProviderSource { data, account });
        let server = RpcServer::new(
            pool.clone(),
            network_view.clone(),
            data,
            self.block_time_ms,
            self.admin_token_file,
        );
        let (rpc_addr, rpc) =
            cairn_rpc::start(self.rpc_addr, server, self.access, rpc_metrics).await?;
        let Some(addr) = self.metrics_addr else {
            return Ok((rpc_addr, rpc, None));
        };
        let sources = Sources {
            pool: pool.clone(),
            network: network_view,
            provider,
        };
        let (bound, task) = crate::listener::serve(
            addr,
            registry,
            sampled,
            sources,
            self.access,
            stopped.clone(),
        )
        .await?;
        tasks.push(task);
        Ok((rpc_addr, rpc, Some(bound)))
    }
}

/// The single-validator chain's producer: a block every `block_time`, committed at once.
async fn produce_blocks(
    pool: TxPool,
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
        let (pool, key) = (pool.clone(), key.clone());
        let produced =
            tokio::task::spawn_blocking(move || pool.produce_block(&key, now_ms())).await;
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
                    tracing::debug!(%hash, %reason, "transaction left out of the block");
                }
            }
            // The batch was not written: nothing is half-committed, so the next tick retries.
            Ok(Err(error)) => tracing::error!(%error, "failed to produce a block"),
            Err(error) => tracing::error!(%error, "block producer task failed"),
        }
    }
}
