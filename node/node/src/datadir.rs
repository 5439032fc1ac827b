//! A node's data directory: its files, key files readable by their owner only, and the dev
//! chain's directory.

use std::path::Path;

use cairn_primitives::AccountKey;

use crate::error::{NodeError, Result};

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
    /// The RPC's admin token (hex), which the methods that change this node's data need.
    pub const ADMIN_TOKEN: &str = "admin.token";
}

/// Reads the RPC admin token from `path`, creating a fresh random one, readable by its owner
/// only, on first use.
pub fn load_or_create_admin_token(path: &Path) -> Result<String> {
    if path.exists() {
        let token = std::fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
        let token = token.trim();
        if token.len() < 32 {
            return Err(NodeError::AdminToken {
                path: path.to_path_buf(),
            });
        }
        return Ok(token.to_string());
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(path, token.as_bytes())?;
    Ok(token)
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
    cairn_p2p::Keypair::ed25519_from_bytes(&mut secret).map_err(|e| NodeError::NodeKey {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Writes a node's libp2p identity, readable by its owner only.
pub fn write_node_key(path: &Path, keypair: &cairn_p2p::Keypair) -> Result<()> {
    let ed25519 = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|e| NodeError::NodeKey {
            path: path.to_path_buf(),
            detail: format!("a node key must be ed25519 ({e})"),
        })?;
    let secret: [u8; 32] =
        ed25519
            .secret()
            .as_ref()
            .try_into()
            .map_err(|_| NodeError::NodeKey {
                path: path.to_path_buf(),
                detail: "an ed25519 secret is 32 bytes".into(),
            })?;
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

/// A funded dev account, as printed by `cairn dev` and written to `dev-accounts.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevAccount {
    /// Address.
    pub address: cairn_primitives::Address,
    /// Private key, `0x` hex.
    pub private_key: String,
}

/// The funded accounts of the test mnemonic that every Ethereum tool knows (anvil, Hardhat),
/// with their (public) keys.
pub fn ethereum_test_accounts() -> Result<Vec<DevAccount>> {
    (0..cairn_chain::genesis::TEST_MNEMONIC_ACCOUNT_COUNT)
        .map(|i| {
            let key = cairn_chain::genesis::test_mnemonic_account(i)?;
            Ok(DevAccount {
                address: key.address(),
                private_key: key.secret_hex().to_string(),
            })
        })
        .collect()
}

/// The funded dev accounts, with their (public) keys.
pub fn dev_accounts() -> Vec<DevAccount> {
    (0..cairn_chain::genesis::DEV_ACCOUNT_COUNT)
        .map(|i| {
            let key = cairn_chain::genesis::dev_account(i);
            DevAccount {
                address: key.address(),
                private_key: key.secret_hex().to_string(),
            }
        })
        .collect()
}
