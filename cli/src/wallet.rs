//! `cairn wallet ...`: encrypted keys, balances and transfers.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use cairn_client::keystore::Keystore;
use cairn_primitives::units::{format_crn, parse_crn};
use cairn_primitives::{AccountKey, Address};
use cairn_rpc::CairnApiClient;
use zeroize::Zeroizing;

use crate::Global;
use crate::output::rpc_error;
use crate::output::{client, print};
use crate::tx::{Call, TxOptions, submit};

/// `cairn wallet ...`
#[derive(Debug, clap::Subcommand)]
pub enum WalletCommand {
    /// Create a new key.
    New {
        /// Name of the key.
        #[arg(long)]
        name: String,
    },
    /// Import a private key from a file (64 hex digits).
    Import {
        /// Name of the key.
        #[arg(long)]
        name: String,
        /// File holding the private key.
        #[arg(long)]
        private_key_file: PathBuf,
    },
    /// List the keys.
    List,
    /// Print a key's address.
    Address {
        /// Name of the key.
        name: String,
    },
    /// Print the balance of a key or an address.
    Balance {
        /// Key name or 0x address.
        account: String,
    },
    /// Send CRN.
    Send {
        /// Name of the sending key.
        #[arg(long)]
        from: String,
        /// Recipient: 0x address or key name.
        #[arg(long)]
        to: String,
        /// Amount in CRN (e.g. 1.5).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        options: TxOptions,
    },
}

pub fn keystore(global: &Global) -> Keystore {
    Keystore::new(
        global
            .keystore
            .clone()
            .unwrap_or_else(crate::node::default_keystore),
    )
}

/// The password from `--password-file` (first line), or asked on the terminal.
fn password(global: &Global, prompt: &str, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &global.password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?,
        );
        return Ok(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_string(),
        ));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .context("no terminal to ask for the password: pass --password-file FILE")
    };
    let first = ask(prompt)?;
    if confirm && *ask("Repeat the password: ")? != *first {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// An address given as 0x hex or as the name of a key in the keystore.
pub fn resolve(keystore: &Keystore, account: &str) -> anyhow::Result<Address> {
    if account.starts_with("0x") {
        return account
            .parse()
            .with_context(|| format!("'{account}' is not a 20-byte 0x address"));
    }
    Ok(keystore.address(account)?)
}

pub async fn run(command: WalletCommand, global: &Global) -> anyhow::Result<()> {
    let keystore = keystore(global);
    match command {
        WalletCommand::New { name } => {
            let password = password(global, "Password for the new key: ", true)?;
            let entry = keystore.add(&name, &AccountKey::generate(), &password)?;
            print(global.json, &entry, || {
                format!(
                    "created key '{}' with address {}",
                    entry.name, entry.address
                )
            })
        }
        WalletCommand::Import {
            name,
            private_key_file,
        } => {
            let key = read_private_key(&private_key_file)?;
            let password = password(global, "Password for the imported key: ", true)?;
            let entry = keystore.add(&name, &key, &password)?;
            print(global.json, &entry, || {
                format!(
                    "imported key '{}' with address {}",
                    entry.name, entry.address
                )
            })
        }
        WalletCommand::List => {
            let keys = keystore.list()?;
            print(global.json, &keys, || {
                if keys.is_empty() {
                    return format!(
                        "no keys in {}; create one with `cairn wallet new --name NAME`",
                        keystore.dir().display()
                    );
                }
                keys.iter()
                    .map(|k| format!("{:<20} {}", k.name, k.address))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        WalletCommand::Address { name } => {
            let address = keystore.address(&name)?;
            print(
                global.json,
                &serde_json::json!({ "name": name, "address": address }),
                || address.to_string(),
            )
        }
        WalletCommand::Balance { account } => {
            let address = resolve(&keystore, &account)?;
            let balance = client(&global.rpc)?
                .get_balance(address)
                .await
                .map_err(|e| rpc_error(&global.rpc, e))?;
            let value = serde_json::json!({ "address": address, "wei": balance, "crn": format_crn(balance) });
            print(global.json, &value, || {
                format!("{} CRN", format_crn(balance))
            })
        }
        WalletCommand::Send {
            from,
            to,
            amount,
            options,
        } => {
            let to = resolve(&keystore, &to)?;
            let value = parse_crn(&amount)?;
            let key = unlock(global, &keystore, &from)?;
            let sent = submit(
                global,
                &key,
                Call {
                    to,
                    value,
                    input: Default::default(),
                },
                &options,
            )
            .await?;
            sent.print(global.json)
        }
    }
}

/// Asks for (or reads) the password of key `name` and decrypts it.
pub fn unlock(global: &Global, keystore: &Keystore, name: &str) -> anyhow::Result<AccountKey> {
    let password = password(global, &format!("Password for '{name}': "), false)?;
    Ok(keystore.unlock(name, &password)?)
}

fn read_private_key(path: &Path) -> anyhow::Result<AccountKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    AccountKey::from_hex(&text).with_context(|| format!("{} holds no private key", path.display()))
}
