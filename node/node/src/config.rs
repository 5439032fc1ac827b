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
    /// How the node's providers treat others: [`cairn_providers::Honest`] (only tests run
    /// others, in-process or from their own binary; nothing in `node.json` selects one).
    pub conduct: std::sync::Arc<dyn cairn_providers::Conduct>,
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
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Host names the RPC answers to besides loopback and its bound address (`*`: any).
    pub rpc_allowed_hosts: Vec<String>,
    /// Origins of web pages allowed to call the RPC (`*`: any); none by default.
    pub rpc_allowed_origins: Vec<String>,
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
            metrics_addr: None,
            rpc_allowed_hosts: Vec::new(),
            rpc_allowed_origins: Vec::new(),
            block_time: None,
            mempool: MempoolConfig::default(),
            execution_threads: 0,
            network: None,
        })
    }
}

/// The default dev data directory: `~/.cairn/dev` (`.cairn/dev` without `HOME`).
pub fn default_dev_datadir() -> PathBuf {
    cairn_primitives::dirs::cairn_home().join("dev")
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

/// What a started node says about itself: printed when `cairn dev` or `cairn node run` starts
/// (as JSON with `--json`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBanner {
    /// The chain id.
    pub chain_id: u64,
    /// The JSON-RPC URL.
    pub rpc_url: String,
    /// The head height at start.
    pub height: u64,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// The libp2p peer id, if the node is networked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    /// Where Prometheus metrics are served, if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
    /// The dashboard page, served beside the metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

impl NodeBanner {
    /// The banner of a node started with `config`, serving RPC on `rpc_addr` (and metrics on
    /// `metrics_addr`).
    pub fn new(
        config: &NodeConfig,
        rpc_addr: SocketAddr,
        metrics_addr: Option<SocketAddr>,
        height: u64,
        peer_id: Option<String>,
    ) -> Self {
        let block_time_ms = config
            .block_time
            .map_or(config.genesis.block_time_ms, |d| d.as_millis() as u64);
        Self {
            chain_id: config.genesis.chain_id,
            rpc_url: format!("http://{rpc_addr}"),
            height,
            block_time_ms,
            peer_id,
            metrics_url: metrics_addr.map(|addr| format!("http://{addr}/metrics")),
            dashboard_url: metrics_addr.map(|addr| format!("http://{addr}/")),
        }
    }

    /// The banner of `cairn node run` in words.
    pub fn running(&self, datadir: &Path) -> String {
        let mut text = format!(
            "Cairn node running\n  chain id   {}\n  RPC        {}\n  datadir    {}\n  height     {}",
            self.chain_id,
            self.rpc_url,
            datadir.display(),
            self.height
        );
        if let Some(peer_id) = &self.peer_id {
            text.push_str(&format!("\n  peer id    {peer_id}"));
        }
        if let Some(metrics) = &self.metrics_url {
            text.push_str(&format!("\n  metrics    {metrics}"));
        }
        if let Some(dashboard) = &self.dashboard_url {
            text.push_str(&format!("\n  dashboard  {dashboard}"));
        }
        text
    }

    /// The banner of `cairn dev` in words, with the funded dev accounts and their keys.
    pub fn dev(&self, accounts: &[DevAccount], datadir: &Path) -> String {
        use cairn_chain::genesis::{DEV_ACCOUNT_BALANCE_CRN, TOKEN};
        use cairn_primitives::U256;
        let balance = cairn_primitives::units::format_crn(
            U256::from(DEV_ACCOUNT_BALANCE_CRN) * U256::from(TOKEN),
        );
        let metrics = [
            ("metrics  ", &self.metrics_url),
            ("dashboard", &self.dashboard_url),
        ]
        .into_iter()
        .filter_map(|(name, url)| Some(format!("\n  {name}   {}", url.as_ref()?)))
        .collect::<String>();
        let mut text = format!(
            "Cairn dev chain\n  chain id    {}\n  RPC         {}{metrics}\n  datadir     {}\n  height      {}\n  block time  {} ms\n\nDev accounts ({balance} CRN each; the keys are public, see the README):\n",
            self.chain_id,
            self.rpc_url,
            datadir.display(),
            self.height,
            self.block_time_ms
        );
        for (i, account) in accounts.iter().enumerate() {
            text.push_str(&format!(
                "  ({i}) {}  {}\n",
                account.address, account.private_key
            ));
        }
        text.push_str(&format!(
            "\nEthereum test accounts ({balance} CRN each; mnemonic \"{}\"):\n",
            cairn_chain::genesis::TEST_MNEMONIC
        ));
        match crate::datadir::ethereum_test_accounts() {
            Ok(ethereum) => {
                for (i, account) in ethereum.iter().enumerate() {
                    text.push_str(&format!(
                        "  ({i}) {}  {}\n",
                        account.address, account.private_key
                    ));
                }
            }
            Err(error) => text.push_str(&format!("  ({error})\n")),
        }
        text.push_str(&format!(
            "\nAccounts also written to {}\nPress Ctrl-C to stop.",
            datadir.join(files::DEV_ACCOUNTS).display()
        ));
        text
    }
}
