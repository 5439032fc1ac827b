//! `cairn chain ...`: status, blocks and transactions.

use cairn_client::chain::{block, status, transaction};
use cairn_primitives::B256;

use crate::global::Global;
use crate::output::show;

/// `cairn chain ...`
#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Height, head and parameters of the chain.
    Status,
    /// A block by height, hash or `latest`.
    Block {
        /// Height, 0x hash, `latest` or `earliest`.
        #[arg(default_value = "latest")]
        id: String,
    },
    /// A transaction and, once included, its receipt.
    Tx {
        /// Transaction hash.
        hash: B256,
    },
}

pub async fn run(command: ChainCommand, global: &Global) -> anyhow::Result<()> {
    let client = global.client()?;
    match command {
        ChainCommand::Status => show(global.json, &status(&client).await?),
        ChainCommand::Block { id } => show(global.json, &block(&client, &id).await?),
        ChainCommand::Tx { hash } => show(global.json, &transaction(&client, hash).await?),
    }
}
