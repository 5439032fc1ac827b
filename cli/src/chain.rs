//! `cairn chain ...`: status, blocks and transactions.

use anyhow::Context as _;
use cairn_primitives::B256;
use cairn_primitives::units::format_crn;
use cairn_rpc::{BlockId, BlockTag, CairnApiClient};

use crate::Global;
use crate::output::{client, print, rpc_error};

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
    let rpc = client(&global.rpc)?;
    let err = |e| rpc_error(&global.rpc, e);
    match command {
        ChainCommand::Status => {
            let s = rpc.chain_status().await.map_err(err)?;
            print(global.json, &s, || {
                let mut text = format!(
                    "chain id          {}\ngenesis           {}\nheight            {}\nhead              {}\nfinalized height  {}\nview              {}\nstate root        {}\npending txs       {}\nbase fee          {} wei\nblock gas limit   {}\nblock time        {} ms\npeers             {}",
                    s.chain_id,
                    s.genesis_hash,
                    s.height,
                    s.head_hash,
                    s.finalized_height,
                    s.view,
                    s.state_root,
                    s.pending_transactions,
                    s.base_fee_per_gas,
                    s.gas_limit,
                    s.block_time_ms,
                    s.peers
                );
                if let Some(peer_id) = &s.peer_id {
                    text.push_str(&format!("\npeer id           {peer_id}"));
                }
                let e = &s.execution;
                text.push_str(&format!(
                    "\nexecution         {} thread{}: {} blocks by Block-STM, {} handed to sequential, {} too small",
                    e.threads,
                    if e.threads == 1 { "" } else { "s" },
                    e.parallel_blocks,
                    e.handed_over_blocks,
                    e.small_blocks
                ));
                text.push_str(&format!("\nvalidators        {}", s.validators.len()));
                for key in &s.validators {
                    text.push_str(&format!("\n  {key}"));
                }
                text
            })
        }
        ChainCommand::Block { id } => {
            let block = match id.as_str() {
                "latest" => {
                    rpc.get_block_by_number(BlockId::Tag(BlockTag::Latest))
                        .await
                }
                "earliest" => {
                    rpc.get_block_by_number(BlockId::Tag(BlockTag::Earliest))
                        .await
                }
                hash if hash.starts_with("0x") => {
                    let hash: B256 = hash
                        .parse()
                        .with_context(|| format!("'{hash}' is not a 32-byte 0x hash"))?;
                    rpc.get_block_by_hash(hash).await
                }
                height => {
                    let height: u64 = height
                        .parse()
                        .with_context(|| format!("'{height}' is not a height, hash or `latest`"))?;
                    rpc.get_block_by_number(BlockId::Number(height)).await
                }
            }
            .map_err(err)?
            .with_context(|| format!("no block {id}"))?;
            print(global.json, &block, || {
                let h = &block.header;
                format!(
                    "block {}\n  hash          {}\n  parent        {}\n  timestamp ms  {}\n  transactions  {}\n  gas used      {} / {}\n  state root    {}\n  randomness    {}\n  size          {} bytes",
                    h.height,
                    block.hash,
                    h.parent,
                    h.timestamp_ms,
                    block.transactions.len(),
                    h.gas_used,
                    h.gas_limit,
                    h.state_root,
                    h.randomness,
                    block.size
                )
            })
        }
        ChainCommand::Tx { hash } => {
            let tx = rpc
                .get_transaction(hash)
                .await
                .map_err(err)?
                .with_context(|| format!("no transaction {hash}"))?;
            let receipt = rpc.get_receipt(hash).await.map_err(err)?;
            let value = serde_json::json!({ "transaction": tx, "receipt": receipt });
            print(global.json, &value, || {
                let body = &tx.transaction.body;
                let head = format!(
                    "transaction {hash}\n  from       {}\n  to         {}\n  value      {} CRN\n  nonce      {}\n  gas limit  {}",
                    tx.from,
                    body.to
                        .map_or_else(|| "(contract creation)".into(), |a| a.to_string()),
                    format_crn(body.value),
                    body.nonce,
                    body.gas_limit
                );
                match &receipt {
                    Some(receipt) => {
                        format!("{head}\n{}", crate::output::describe_receipt(receipt))
                    }
                    None => format!("{head}\n  status     pending"),
                }
            })
        }
    }
}
