//! Local testnets: `cairn testnet init` lays out N validator data directories that find each
//! other over libp2p on loopback; each node's networking lives in its `node.json`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{NetworkSettings, NodeConfig};
use crate::datadir::{
    DevAccount, dev_accounts, files, read_key, write_key, write_node_key, write_private,
};
use crate::error::{NodeError, Result};
use cairn_chain::genesis::{Genesis, GenesisValidator, TOKEN};
use cairn_primitives::beacon::vrf_public_key;
use cairn_primitives::clock::now_ms;
use cairn_primitives::{AccountKey, U256};
use cairn_providers::agent::{ComputeOffer, ProviderSettings};

/// The file in a node's data directory that says how it joins its network.
pub const NODE_FILE: &str = "node.json";
/// The file at the top of a testnet directory that describes the whole testnet.
pub const TESTNET_FILE: &str = "testnet.json";
/// The default consensus view timeout.
pub const DEFAULT_VIEW_TIMEOUT_MS: u64 = 2_000;

/// A node's network configuration, as stored in `node.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeFile {
    /// Where the JSON-RPC server listens.
    pub rpc_addr: SocketAddr,
    /// Where Prometheus metrics are served (`/metrics`), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Peers to join through (multiaddrs ending in `/p2p/<peer id>`).
    #[serde(default)]
    pub bootnodes: Vec<String>,
    /// Find peers on the local network by mDNS.
    #[serde(default)]
    pub mdns: bool,
    /// Consensus view timeout in milliseconds.
    #[serde(default = "default_view_timeout")]
    pub view_timeout_ms: u64,
    /// Run a storage provider agent; its account key is `provider.key` in the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_provider: Option<StorageProviderFile>,
    /// Run a compute provider agent (with the same `provider.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_provider: Option<ComputeProviderFile>,
}

/// A storage provider's offer, as stored in `node.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageProviderFile {
    /// Storage offered, in bytes.
    pub capacity: u64,
    /// Price in wei per MiB per epoch.
    pub price_per_mib_epoch: u64,
    /// CRN bonded at start when the bond is below the storage minimum.
    #[serde(default = "default_provider_stake")]
    pub stake_crn: u64,
}

/// A compute provider's offer, as stored in `node.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComputeProviderFile {
    /// Jobs run at once.
    pub cores: u32,
    /// Memory a job may use, MiB.
    pub memory_mib: u32,
    /// Fuel run per second (`cairn bench compute` measures it).
    pub fuel_per_second: u64,
    /// Price in wei per unit of fuel.
    pub price_per_fuel: u64,
    /// CRN bonded at start when the bond is below the compute minimum.
    #[serde(default = "default_provider_stake")]
    pub stake_crn: u64,
    /// How long a job's module, input and output stay after the job ends, in seconds: the
    /// client fetches the output in that time.
    #[serde(default = "default_job_data_kept_s")]
    pub keep_job_data_seconds: u64,
}

/// How long a compute provider keeps an ended job's data unless `node.json` says otherwise:
/// a day.
pub const DEFAULT_JOB_DATA_KEPT_S: u64 = 24 * 60 * 60;

fn default_job_data_kept_s() -> u64 {
    DEFAULT_JOB_DATA_KEPT_S
}

/// The bond a testnet's storage providers put up, in CRN.
pub const DEFAULT_PROVIDER_STAKE_CRN: u64 = 200;

fn default_provider_stake() -> u64 {
    DEFAULT_PROVIDER_STAKE_CRN
}

fn default_view_timeout() -> u64 {
    DEFAULT_VIEW_TIMEOUT_MS
}

fn multiaddrs(path: &Path, texts: &[String]) -> Result<Vec<cairn_p2p::Multiaddr>> {
    texts
        .iter()
        .map(|text| {
            text.parse().map_err(|e| NodeError::BadMultiaddr {
                path: path.to_path_buf(),
                text: text.clone(),
                detail: format!("{e}"),
            })
        })
        .collect()
}

impl NodeFile {
    /// Reads `node.json` from a data directory, if it has one.
    pub fn load(datadir: &Path) -> Result<Option<Self>> {
        let path = datadir.join(NODE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NodeError::io(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| NodeError::Json { path, source })
    }

    /// Writes `node.json` into a data directory.
    pub fn save(&self, datadir: &Path) -> Result<()> {
        let path = datadir.join(NODE_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|source| NodeError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, json).map_err(|e| NodeError::io(&path, e))
    }

    /// The network settings it describes (addresses parsed and checked).
    pub fn settings(&self, datadir: &Path) -> Result<NetworkSettings> {
        let path = datadir.join(NODE_FILE);
        if self.view_timeout_ms == 0 {
            return Err(NodeError::NodeFile {
                path: path.to_path_buf(),
                field: "viewTimeoutMs",
                problem: "must be at least 1".into(),
            });
        }
        let storage = self.storage_provider.as_ref();
        let compute = self.compute_provider.as_ref();
        if storage.is_some_and(|offer| offer.capacity == 0) {
            return Err(NodeError::NodeFile {
                path: path.to_path_buf(),
                field: "storageProvider.capacity",
                problem: "must be at least 1 byte".into(),
            });
        }
        if compute.is_some_and(|offer| offer.cores == 0 || offer.memory_mib == 0) {
            return Err(NodeError::NodeFile {
                path: path.to_path_buf(),
                field: "computeProvider.cores and memoryMib",
                problem: "must be at least 1".into(),
            });
        }
        let provider = if storage.is_none() && compute.is_none() {
            None
        } else {
            let stake_crn = storage
                .map(|s| s.stake_crn)
                .into_iter()
                .chain(compute.map(|c| c.stake_crn))
                .max()
                .unwrap_or(DEFAULT_PROVIDER_STAKE_CRN);
            Some(ProviderSettings {
                key: read_key(&datadir.join(files::PROVIDER_KEY))?,
                storage_capacity: storage.map_or(0, |s| s.capacity),
                storage_price: storage.map_or(0, |s| u128::from(s.price_per_mib_epoch)),
                // A node that no longer offers compute still keeps its last jobs' data a day.
                compute: compute.map_or(
                    ComputeOffer {
                        job_data_kept_s: DEFAULT_JOB_DATA_KEPT_S,
                        ..ComputeOffer::default()
                    },
                    |c| ComputeOffer {
                        cores: c.cores,
                        memory_mib: c.memory_mib,
                        fuel_per_second: c.fuel_per_second,
                        price_per_fuel: u128::from(c.price_per_fuel),
                        job_data_kept_s: c.keep_job_data_seconds,
                    },
                ),
                stake: U256::from(stake_crn) * U256::from(TOKEN),
            })
        };
        Ok(NetworkSettings {
            listen: multiaddrs(&path, &self.listen)?,
            bootnodes: multiaddrs(&path, &self.bootnodes)?,
            mdns: self.mdns,
            view_timeout: Duration::from_millis(self.view_timeout_ms),
            provider,
            conduct: std::sync::Arc::new(cairn_providers::Honest),
        })
    }
}

/// What `cairn node run` is told beside its data directory.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The network file: the data directory's `node.json` or one named on the command line.
    pub node_file: Option<NodeFile>,
    /// Where the JSON-RPC server listens: `node.json`'s address unless a port is given.
    pub rpc_addr: std::net::IpAddr,
    /// The RPC port given, if any (else `node.json`'s, else 8545).
    pub rpc_port: Option<u16>,
    /// Peers to join through, besides `node.json`'s.
    pub bootnodes: Vec<String>,
    /// libp2p listen addresses, instead of `node.json`'s.
    pub p2p_listen: Vec<String>,
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
}

impl RunOptions {
    /// The configuration of a node run from `datadir`: its genesis and keys, and, with a
    /// network file or any networking option, the network it joins (without either it runs
    /// the chain alone). A network without `node.json` listens on `/ip4/0.0.0.0/tcp/30303`.
    pub fn node_config(self, datadir: &Path) -> Result<NodeConfig> {
        let rpc_addr = match (&self.node_file, self.rpc_port) {
            (Some(file), None) => file.rpc_addr,
            _ => SocketAddr::new(self.rpc_addr, self.rpc_port.unwrap_or(8545)),
        };
        let mut config = NodeConfig::from_datadir(datadir, rpc_addr)?;
        let networked = self.node_file.is_some()
            || !self.bootnodes.is_empty()
            || !self.p2p_listen.is_empty()
            || self.mdns;
        if networked {
            let mut file = self.node_file.unwrap_or_else(|| NodeFile {
                rpc_addr,
                metrics_addr: None,
                listen: vec!["/ip4/0.0.0.0/tcp/30303".into()],
                bootnodes: Vec::new(),
                mdns: false,
                view_timeout_ms: DEFAULT_VIEW_TIMEOUT_MS,
                storage_provider: None,
                compute_provider: None,
            });
            if !self.p2p_listen.is_empty() {
                file.listen = self.p2p_listen;
            }
            file.bootnodes.extend(self.bootnodes);
            file.mdns |= self.mdns;
            config.metrics_addr = file.metrics_addr;
            config.network = Some(file.settings(datadir)?);
        }
        Ok(config)
    }
}

/// One node of a testnet, as listed in `testnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestnetNode {
    /// Its data directory, relative to the testnet directory.
    pub datadir: PathBuf,
    /// Its RPC URL.
    pub rpc_url: String,
    /// Its Prometheus metrics (`http://.../metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
    /// Its dashboard page (`http://.../`), served beside the metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Where it listens for peers.
    pub p2p_addr: String,
    /// Its validator's consensus public key (hex).
    pub validator: String,
    /// The account of the storage provider it runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_provider: Option<cairn_primitives::Address>,
    /// The account of the compute provider it runs, if any (the same as its storage one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_provider: Option<cairn_primitives::Address>,
}

/// A whole testnet, as written to `testnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Testnet {
    /// The chain id.
    pub chain_id: u64,
    /// The nodes, each a validator.
    pub nodes: Vec<TestnetNode>,
    /// Funded accounts and their keys.
    pub accounts: Vec<DevAccount>,
}

impl Testnet {
    /// Reads `testnet.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(TESTNET_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| NodeError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|source| NodeError::Json { path, source })
    }

    /// The testnet in words: each node's RPC URL, peer id and log (under `dir`), and the
    /// funded accounts with their (public) keys.
    pub fn describe(&self, dir: &Path) -> String {
        let mut text = format!(
            "Cairn testnet: {} validators\n  chain id   {}\n\n",
            self.nodes.len(),
            self.chain_id
        );
        for (i, node) in self.nodes.iter().enumerate() {
            text.push_str(&format!(
                "  node {}  RPC {}  peer {}\n          log {}\n",
                i + 1,
                node.rpc_url,
                node.peer_id,
                dir.join(&node.datadir).join("node.log").display()
            ));
            if let Some(metrics) = &node.metrics_url {
                text.push_str(&format!("          metrics {metrics}\n"));
            }
            if let Some(dashboard) = &node.dashboard_url {
                text.push_str(&format!("          dashboard {dashboard}\n"));
            }
        }
        text.push_str("\nFunded accounts (the keys are public; never use them elsewhere):\n");
        for (i, account) in self.accounts.iter().enumerate() {
            text.push_str(&format!(
                "  ({i}) {}  {}\n",
                account.address, account.private_key
            ));
        }
        text.push_str("\nPress Ctrl-C to stop every node.");
        text
    }
}

/// Options of [`init`].
#[derive(Debug, Clone)]
pub struct TestnetOptions {
    /// Number of validators (and node processes).
    pub nodes: usize,
    /// Target block interval.
    pub block_time_ms: u64,
    /// Consensus view timeout.
    pub view_timeout_ms: u64,
    /// Accounts funded at genesis besides the dev accounts (each with the dev balance).
    pub extra_accounts: Vec<cairn_primitives::Address>,
    /// How many nodes (the first ones) also run a storage provider, with a funded account.
    pub storage_providers: usize,
    /// How many nodes (the first ones) also run a compute provider.
    pub compute_providers: usize,
    /// Blocks per epoch.
    pub epoch_length: u64,
}

impl TestnetOptions {
    /// What [`init`] wrote, in words, with how to start it.
    pub fn summary(&self, dir: &Path) -> String {
        let providers = match (self.storage_providers, self.compute_providers) {
            (0, 0) => String::new(),
            (s, 0) => format!(", the first {s} also storage providers,"),
            (0, c) => format!(", the first {c} also compute providers,"),
            (s, c) => format!(
                ", the first {s} also storage providers and the first {c} compute providers,"
            ),
        };
        format!(
            "Testnet of {} validators{providers} written to {}\nStart it with: cairn testnet start --dir {}",
            self.nodes,
            dir.display(),
            dir.display()
        )
    }
}

/// Storage each testnet provider offers: 4 GiB.
pub const TESTNET_PROVIDER_CAPACITY: u64 = 4 << 30;
/// The testnet providers' price: 10^12 wei (a millionth of a CRN) per MiB per epoch.
pub const TESTNET_PROVIDER_PRICE: u64 = 1_000_000_000_000;
/// The fuel per second testnet compute providers advertise: `cairn bench compute` measured
/// 2.6 × 10^9 on one core of the 2-core development machine (release build).
pub const TESTNET_FUEL_PER_SECOND: u64 = 2_500_000_000;
/// The testnet compute providers' price: 10^9 wei per unit of fuel (a CRN buys 10^9 fuel).
pub const TESTNET_FUEL_PRICE: u64 = 1_000_000_000;

/// Free loopback ports, all distinct: each is bound until all are chosen.
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| NodeError::io(Path::new("127.0.0.1:0"), e))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| NodeError::io(Path::new("127.0.0.1:0"), e))
        })
        .collect()
}

/// Writes a testnet into `dir`: the shared genesis (every validator staked), and for each node
/// a data directory `node-<i>` with its genesis copy, validator key, libp2p key and `node.json`
/// (free loopback ports, the other nodes as bootnodes). Refuses a directory that already holds
/// a testnet.
pub fn init(dir: &Path, options: &TestnetOptions) -> Result<Testnet> {
    if options.nodes == 0 {
        return Err(NodeError::Testnet("a testnet needs at least one node"));
    }
    if dir.join(TESTNET_FILE).exists() {
        return Err(NodeError::TestnetExists(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
    for (flag, count) in [
        ("--storage-providers", options.storage_providers),
        ("--compute-providers", options.compute_providers),
    ] {
        if count > options.nodes {
            return Err(NodeError::TooManyProviders {
                flag,
                count,
                nodes: options.nodes,
            });
        }
    }
    let validators: Vec<AccountKey> = (0..options.nodes).map(|_| AccountKey::generate()).collect();
    let providers: Vec<AccountKey> = (0..options.storage_providers.max(options.compute_providers))
        .map(|_| AccountKey::generate())
        .collect();
    let node_keys: Vec<cairn_p2p::Keypair> = (0..options.nodes)
        .map(|_| cairn_p2p::Keypair::generate_ed25519())
        .collect();
    // Three a node: RPC, peers, metrics.
    let ports = free_ports(3 * options.nodes)?;

    let mut genesis = Genesis::dev();
    genesis.timestamp_ms = now_ms();
    genesis.block_time_ms = options.block_time_ms;
    genesis.epoch_length = options.epoch_length;
    if let Some(contracts) = &mut genesis.contracts {
        // Proofs are due within the epoch: a short epoch shortens the window to fit.
        contracts.proof_window_blocks = contracts.proof_window_blocks.min(options.epoch_length);
    }
    let provider_addresses = providers.iter().map(AccountKey::address);
    for address in options
        .extra_accounts
        .iter()
        .copied()
        .chain(provider_addresses)
    {
        genesis.alloc.insert(
            address,
            cairn_chain::genesis::GenesisAccount {
                balance: U256::from(cairn_chain::genesis::DEV_ACCOUNT_BALANCE_CRN)
                    * U256::from(TOKEN),
                ..Default::default()
            },
        );
    }
    genesis.validators = validators
        .iter()
        .map(|key| GenesisValidator {
            public_key: key.public_key(),
            beneficiary: key.address(),
            stake: U256::from(1_000u64) * U256::from(TOKEN),
            vrf_key: vrf_public_key(key),
        })
        .collect();
    genesis.validate()?;

    let p2p_addrs: Vec<String> = (0..options.nodes)
        .map(|i| {
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                ports[3 * i + 1],
                node_keys[i].public().to_peer_id()
            )
        })
        .collect();
    let mut nodes = Vec::with_capacity(options.nodes);
    for (i, (validator, node_key)) in validators.iter().zip(&node_keys).enumerate() {
        let name = PathBuf::from(format!("node-{}", i + 1));
        let datadir = dir.join(&name);
        std::fs::create_dir_all(&datadir).map_err(|e| NodeError::io(&datadir, e))?;
        genesis.save(&datadir.join(files::GENESIS))?;
        write_key(&datadir.join(files::VALIDATOR_KEY), validator)?;
        write_node_key(&datadir.join(files::NODE_KEY), node_key)?;
        let rpc_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[3 * i]));
        let metrics_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[3 * i + 2]));
        NodeFile {
            rpc_addr,
            metrics_addr: Some(metrics_addr),
            listen: vec![format!("/ip4/127.0.0.1/tcp/{}", ports[3 * i + 1])],
            bootnodes: p2p_addrs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.clone())
                .collect(),
            mdns: false,
            view_timeout_ms: options.view_timeout_ms,
            storage_provider: (i < options.storage_providers).then_some(StorageProviderFile {
                capacity: TESTNET_PROVIDER_CAPACITY,
                price_per_mib_epoch: TESTNET_PROVIDER_PRICE,
                stake_crn: DEFAULT_PROVIDER_STAKE_CRN,
            }),
            compute_provider: (i < options.compute_providers).then_some(ComputeProviderFile {
                cores: 2,
                memory_mib: 64,
                fuel_per_second: TESTNET_FUEL_PER_SECOND,
                price_per_fuel: TESTNET_FUEL_PRICE,
                stake_crn: DEFAULT_PROVIDER_STAKE_CRN,
                keep_job_data_seconds: DEFAULT_JOB_DATA_KEPT_S,
            }),
        }
        .save(&datadir)?;
        if let Some(provider) = providers.get(i) {
            write_key(&datadir.join(files::PROVIDER_KEY), provider)?;
        }
        nodes.push(TestnetNode {
            datadir: name,
            rpc_url: format!("http://{rpc_addr}"),
            metrics_url: Some(format!("http://{metrics_addr}/metrics")),
            dashboard_url: Some(format!("http://{metrics_addr}/")),
            peer_id: node_key.public().to_peer_id().to_string(),
            p2p_addr: p2p_addrs[i].clone(),
            validator: hex::encode(validator.public_key()),
            storage_provider: (i < options.storage_providers).then(|| providers[i].address()),
            compute_provider: (i < options.compute_providers).then(|| providers[i].address()),
        });
    }
    let testnet = Testnet {
        chain_id: genesis.chain_id,
        nodes,
        accounts: dev_accounts(),
    };
    let path = dir.join(TESTNET_FILE);
    let json = serde_json::to_vec_pretty(&testnet).map_err(|source| NodeError::Json {
        path: path.clone(),
        source,
    })?;
    write_private(&path, &json)?;
    Ok(testnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_lays_out_a_testnet_and_refuses_to_overwrite_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = TestnetOptions {
            nodes: 4,
            block_time_ms: 250,
            view_timeout_ms: 2_000,
            extra_accounts: Vec::new(),
            storage_providers: 2,
            compute_providers: 1,
            epoch_length: 30,
        };
        let testnet = init(dir.path(), &options).unwrap();
        assert_eq!(testnet.nodes.len(), 4);
        let genesis = Genesis::load(&dir.path().join("node-1").join(files::GENESIS)).unwrap();
        assert_eq!(genesis.validators.len(), 4);
        for (i, node) in testnet.nodes.iter().enumerate() {
            let datadir = dir.path().join(&node.datadir);
            let file = NodeFile::load(&datadir).unwrap().unwrap();
            let settings = file.settings(&datadir).unwrap();
            assert_eq!(settings.bootnodes.len(), 3);
            assert!(!file.bootnodes.contains(&testnet.nodes[i].p2p_addr));
            assert_eq!(
                Genesis::load(&datadir.join(files::GENESIS)).unwrap(),
                genesis,
                "every node has the same genesis"
            );
        }
        let provider = NodeFile::load(&dir.path().join("node-2")).unwrap().unwrap();
        let settings = provider.settings(&dir.path().join("node-2")).unwrap();
        assert_eq!(
            settings.provider.map(|p| p.key.address()),
            testnet.nodes[1].storage_provider
        );
        assert!(testnet.nodes[2].storage_provider.is_none());
        assert!(init(dir.path(), &options).is_err());
    }

    #[test]
    fn a_bad_node_file_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(NODE_FILE),
            r#"{"rpcAddr":"127.0.0.1:1","listen":["not an address"]}"#,
        )
        .unwrap();
        let file = NodeFile::load(dir.path()).unwrap().unwrap();
        let error = file.settings(dir.path()).unwrap_err().to_string();
        assert!(error.contains("is not a multiaddr"), "{error}");
    }

    #[test]
    fn node_json_has_no_fault_switch() {
        // A node cannot be told to cheat: the fault switches tests once used are unknown fields.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(NODE_FILE),
            r#"{"rpcAddr":"127.0.0.1:1","testFaults":{"corruptServedPieces":true}}"#,
        )
        .unwrap();
        let error = NodeFile::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("testFaults"), "{error}");
    }
}
