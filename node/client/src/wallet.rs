//! Accounts: naming them by key or address, reading private keys, balances and key lists.

use std::fmt;
use std::path::{Path, PathBuf};

use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, U256};
use cairn_rpc::CairnApiClient as _;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::keystore::{KeyEntry, Keystore};
use crate::rpc::Client;

/// An address given as 0x hex or as the name of a key in the keystore.
pub fn resolve(keystore: &Keystore, account: &str) -> Result<Address, ClientError> {
    if account.starts_with("0x") {
        return account.parse().map_err(|source| ClientError::BadAddress {
            text: account.to_string(),
            source,
        });
    }
    Ok(keystore.address(account)?)
}

/// Reads a private key (64 hex digits, optionally 0x-prefixed) from a file.
pub fn read_private_key(path: &Path) -> Result<AccountKey, ClientError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| ClientError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        );
    AccountKey::from_hex(&text).map_err(|source| ClientError::BadPrivateKey {
        path: path.to_path_buf(),
        source,
    })
}

/// The keys of a keystore; as JSON, the list of keys.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct KeyList {
    /// The keystore directory.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Its keys.
    pub keys: Vec<KeyEntry>,
}

impl KeyList {
    /// The keys of `keystore`.
    pub fn of(keystore: &Keystore) -> Result<Self, ClientError> {
        Ok(Self {
            dir: keystore.dir().to_path_buf(),
            keys: keystore.list()?,
        })
    }
}

impl fmt::Display for KeyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keys.is_empty() {
            return write!(
                f,
                "no keys in {}; create one with `cairn wallet new --name NAME`",
                self.dir.display()
            );
        }
        let lines: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{:<20} {}", k.name, k.address))
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// An account's balance.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    /// The account.
    pub address: Address,
    /// Its balance in wei.
    pub wei: U256,
    /// Its balance in CRN.
    pub crn: String,
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} CRN", self.crn)
    }
}

/// The balance of `address` at the node's head.
pub async fn balance(client: &Client, address: Address) -> Result<Balance, ClientError> {
    let wei = client
        .rpc()
        .get_balance(address)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Balance {
        address,
        wei,
        crn: format_crn(wei),
    })
}
