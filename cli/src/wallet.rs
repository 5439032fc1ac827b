//! `cairn wallet ...`: encrypted keys, balances and transfers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_node::chain::CallRequest;
use cairn_node::keystore::Keystore;
use cairn_node::rpc::{CairnApiClient, ReceiptInfo};
use cairn_node::types::{AccountKey, Address, Canonical, TxBody, U256};
use cairn_node::units::{format_crn, parse_crn};
use zeroize::Zeroizing;

use crate::Global;
use crate::chain::rpc_error;
use crate::output::{client, print};

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
        /// Gas limit [default: estimated by the node].
        #[arg(long)]
        gas_limit: Option<u64>,
        /// Wait until the transaction is in a committed block and print its receipt.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

fn keystore(global: &Global) -> Keystore {
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
fn resolve(keystore: &Keystore, account: &str) -> anyhow::Result<Address> {
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
            gas_limit,
            wait,
            timeout,
        } => {
            let to = resolve(&keystore, &to)?;
            let value = parse_crn(&amount)?;
            let password = password(global, &format!("Password for '{from}': "), false)?;
            let key = keystore.unlock(&from, &password)?;
            let receipt = send(
                global,
                &key,
                to,
                value,
                gas_limit,
                wait.then(|| Duration::from_secs(timeout)),
            )
            .await?;
            match receipt {
                Sent::Pending(hash) => {
                    print(global.json, &serde_json::json!({ "hash": hash }), || {
                        format!("sent {hash}\n(`cairn chain tx {hash}` shows when it is included)")
                    })
                }
                Sent::Included(receipt) => {
                    print(global.json, &receipt, || describe_receipt(&receipt))
                }
            }
        }
    }
}

fn read_private_key(path: &Path) -> anyhow::Result<AccountKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    AccountKey::from_hex(&text).with_context(|| format!("{} holds no private key", path.display()))
}

enum Sent {
    Pending(cairn_node::types::B256),
    Included(Box<ReceiptInfo>),
}

async fn send(
    global: &Global,
    key: &AccountKey,
    to: Address,
    value: U256,
    gas_limit: Option<u64>,
    wait: Option<Duration>,
) -> anyhow::Result<Sent> {
    let rpc = client(&global.rpc)?;
    let err = |e| rpc_error(&global.rpc, e);
    let status = rpc.chain_status().await.map_err(err)?;
    let from = key.address();
    let balance = rpc.get_balance(from).await.map_err(err)?;
    if balance < value {
        bail!(
            "insufficient funds: {from} holds {} CRN, cannot send {} CRN",
            format_crn(balance),
            format_crn(value)
        );
    }
    let nonce = rpc.get_nonce(from, Some(true)).await.map_err(err)?;
    let gas_limit = match gas_limit {
        Some(gas) => gas,
        None => {
            let request = CallRequest {
                from: Some(from),
                to: Some(to),
                value: Some(value),
                ..Default::default()
            };
            rpc.estimate_gas(request)
                .await
                .map_err(err)
                .context("cannot estimate the gas")?
        }
    };
    let body = TxBody {
        chain_id: status.chain_id,
        nonce,
        gas_limit,
        // The base fee is fixed by genesis today; twice it leaves room if that changes.
        max_fee_per_gas: u128::from(status.base_fee_per_gas) * 2,
        max_priority_fee_per_gas: 0,
        to: Some(to),
        value,
        input: Default::default(),
    };
    let hash = rpc
        .send_raw_transaction(body.sign(key).encode().into())
        .await
        .map_err(err)?;
    let Some(timeout) = wait else {
        return Ok(Sent::Pending(hash));
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(receipt) = rpc.get_receipt(hash).await.map_err(err)? {
            return Ok(Sent::Included(Box::new(receipt)));
        }
        if Instant::now() > deadline {
            bail!(
                "{hash} was not included within {} s; it may still be; check with `cairn chain tx {hash}`",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn describe_receipt(receipt: &ReceiptInfo) -> String {
    let r = &receipt.receipt;
    let status = match &r.status {
        cairn_node::types::TxStatus::Success => "success".to_string(),
        cairn_node::types::TxStatus::Revert => "reverted".to_string(),
        cairn_node::types::TxStatus::Halt(reason) => format!("halted ({reason})"),
    };
    format!(
        "transaction {}\n  status     {status}\n  block      {} ({})\n  from       {}\n  to         {}\n  gas used   {}\n  fee        {} CRN\n  logs       {}",
        r.tx_hash,
        receipt.block_height,
        receipt.block_hash,
        receipt.from,
        receipt
            .to
            .map_or_else(|| "(contract creation)".to_string(), |a| a.to_string()),
        r.gas_used,
        format_crn(r.fee),
        r.logs.len()
    )
}
