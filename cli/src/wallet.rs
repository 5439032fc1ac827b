//! `cairn wallet ...`: encrypted keys, balances and transfers; asking for passwords.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use cairn_client::keystore::Keystore;
use cairn_client::tx::{Call, submit};
use cairn_client::wallet::{KeyList, balance, read_private_key, resolve};
use cairn_evm::rules::DEFAULT_GAS_MARGIN_PERCENT;
use cairn_primitives::AccountKey;
use cairn_primitives::units::parse_crn;
use zeroize::Zeroizing;

use crate::global::Global;
use crate::output::{print, show};

/// Options of every command that sends a transaction.
#[derive(Debug, Clone, clap::Args)]
pub struct TxOptions {
    /// Gas limit [default: the node's estimate plus --gas-margin].
    #[arg(long)]
    pub gas_limit: Option<u64>,
    /// Percent added to the node's gas estimate. An estimate is exact only for the state it
    /// ran on, and the including block may differ (a new epoch, other transactions); unused
    /// gas is not charged.
    #[arg(long, value_name = "PERCENT", default_value_t = DEFAULT_GAS_MARGIN_PERCENT, conflicts_with = "gas_limit")]
    pub gas_margin: u64,
    /// Wait until the transaction is in a committed block and print its receipt.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

impl TxOptions {
    pub fn options(&self) -> cairn_client::tx::TxOptions {
        cairn_client::tx::TxOptions {
            gas_limit: self.gas_limit,
            wait: self.wait,
            timeout_s: self.timeout,
            gas_margin_percent: self.gas_margin,
        }
    }
}

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
            .unwrap_or_else(Keystore::default_dir),
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
pub fn address(global: &Global, account: &str) -> anyhow::Result<cairn_primitives::Address> {
    Ok(resolve(&keystore(global), account)?)
}

/// Asks for (or reads) the password of key `name` and decrypts it.
pub fn unlock(global: &Global, name: &str) -> anyhow::Result<AccountKey> {
    let password = password(global, &format!("Password for '{name}': "), false)?;
    Ok(keystore(global).unlock(name, &password)?)
}

/// Unlocks key `from`, sends `call` and prints what became of it.
pub async fn send(
    global: &Global,
    from: &str,
    call: Call,
    options: &TxOptions,
) -> anyhow::Result<()> {
    let key = unlock(global, from)?;
    let sent = submit(&global.client()?, &key, call, &options.options()).await?;
    show(global.json, &sent)
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
        WalletCommand::List => show(global.json, &KeyList::of(&keystore)?),
        WalletCommand::Address { name } => {
            let address = keystore.address(&name)?;
            let value = serde_json::json!({ "name": name, "address": address });
            print(global.json, &value, || address.to_string())
        }
        WalletCommand::Balance { account } => {
            let address = resolve(&keystore, &account)?;
            show(global.json, &balance(&global.client()?, address).await?)
        }
        WalletCommand::Send {
            from,
            to,
            amount,
            options,
        } => {
            let call = Call::transfer(resolve(&keystore, &to)?, parse_crn(&amount)?);
            send(global, &from, call, &options).await
        }
    }
}
