//! `cairn storage ...`: storing files with providers and getting them back, through the node
//! the CLI talks to.

use std::path::PathBuf;

use cairn_client::storage::{PutRequest, blobs, cancel, deals, get, metrics, put, remove, settle};
use cairn_primitives::B256;

use crate::global::Global;
use crate::output::{Bars, show};
use crate::wallet::{TxOptions, address, send, unlock};

/// `cairn storage ...`
#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// Store FILE with staked providers: upload it to the node, open a deal with each chosen
    /// provider and wait until they have fetched it and accepted.
    Put {
        /// The file.
        file: PathBuf,
        /// Key that pays (the deals' client).
        #[arg(long)]
        from: String,
        /// How many providers keep a copy.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// How many epochs the providers keep and prove it.
        #[arg(long, default_value_t = 10)]
        epochs: u64,
        /// The most to pay, in wei per MiB per epoch [default: any price].
        #[arg(long)]
        max_price: Option<u128>,
        /// How long to wait for the providers to accept, in seconds.
        #[arg(long, default_value_t = 300)]
        accept_timeout: u64,
    },
    /// Fetch the data ROOT from the providers that hold it, checked piece by piece, into a file.
    Get {
        /// The data's blake3 root (0x hex).
        root: B256,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
        /// How long to wait for the data, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// The storage deals a client opened: state, provider, proven epochs, payments, faults.
    Deals {
        /// Key name or 0x address of the client.
        account: String,
    },
    /// Cancel a deal no provider accepted yet; its escrow becomes claimable
    /// (`cairn rewards claim`).
    Cancel {
        /// The deal id (0x hex).
        deal: B256,
        /// Key of the client that opened it.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Settle a deal: fine its unproven past epochs from the provider's collateral for the
    /// client (the third fault terminates it), or end it once its last epoch is over. Anyone
    /// may; the refunds and fees become claimable (`cairn rewards claim`).
    Settle {
        /// The deal id (0x hex).
        deal: B256,
        /// Key that sends the transaction.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        options: TxOptions,
    },
    /// The data this node holds or is receiving, with the pieces it has.
    List,
    /// Delete the node's own copy of ROOT (a provider that deletes data under a deal misses
    /// its proofs and is fined, then slashed).
    Remove {
        /// The data's blake3 root.
        root: B256,
    },
    /// The node's provider counters: proofs sent and failed, pieces served and rejected, compute
    /// jobs done, failed and dropped.
    Metrics,
}

pub async fn run(command: StorageCommand, global: &Global) -> anyhow::Result<()> {
    match command {
        StorageCommand::Put {
            file,
            from,
            replicas,
            epochs,
            max_price,
            accept_timeout,
        } => {
            anyhow::ensure!(replicas >= 1, "--replicas must be at least 1");
            anyhow::ensure!(epochs >= 1, "--epochs must be at least 1");
            let key = unlock(global, &from)?;
            let request = PutRequest {
                file,
                replicas,
                epochs,
                max_price,
                accept_timeout_s: accept_timeout,
                from,
            };
            let report = put(&global.client()?, &key, &request, &mut Bars::default()).await?;
            show(global.json, &report)
        }
        StorageCommand::Get {
            root,
            output,
            timeout,
        } => {
            let client = global.client()?;
            let fetched = get(&client, root, &output, timeout, &mut Bars::default()).await?;
            show(global.json, &fetched)
        }
        StorageCommand::Deals { account } => {
            let client_address = address(global, &account)?;
            show(
                global.json,
                &deals(&global.client()?, client_address).await?,
            )
        }
        StorageCommand::Cancel {
            deal,
            from,
            options,
        } => send(global, &from, cancel(deal), &options).await,
        StorageCommand::Settle {
            deal,
            from,
            options,
        } => send(global, &from, settle(deal), &options).await,
        StorageCommand::List => show(global.json, &blobs(&global.client()?).await?),
        StorageCommand::Remove { root } => {
            show(global.json, &remove(&global.client()?, root).await?)
        }
        StorageCommand::Metrics => show(global.json, &metrics(&global.client()?).await?),
    }
}
