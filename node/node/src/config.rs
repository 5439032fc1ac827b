//! How to run a node: the configuration [`crate::launch::Node::launch`] takes, read from a
//! data directory or prepared for the dev chain.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_chain::genesis::Genesis;
use cairn_mempool::MempoolConfig;
use cairn_primitives::AccountKey;
use cairn_providers::agent::ProviderSettings;

use crate::datadir::{DevAccount, dev_accounts, files, read_key, write_key, write_private};
use crate::error::{NodeError, Result};

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
    pub provider: Option<ProviderSettings>,
    /// Faults switched on for tests.
    pub faults: cairn_providers::TestFaults,
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
            &cairn_chain::genesis::dev_validator(),
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
