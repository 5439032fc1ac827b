//! Chain queries: the node's status, blocks by height, hash or tag, and transactions with
//! their receipts; each a report that prints in words or serializes as JSON.

use std::fmt;

use cairn_primitives::B256;
use cairn_primitives::units::format_crn;
use cairn_rpc::{
    BlockId, BlockInfo, BlockTag, CairnApiClient as _, ChainStatus, ReceiptInfo, TxInfo,
};
use serde::Serialize;

use crate::error::ClientError;
use crate::rpc::Client;
use crate::tx::describe_receipt;

/// The node's view of the chain.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Status(pub ChainStatus);

/// The node's view of the chain.
pub async fn status(client: &Client) -> Result<Status, ClientError> {
    let status = client
        .rpc()
        .chain_status()
        .await
        .map_err(|e| client.error(e))?;
    Ok(Status(status))
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        write!(
            f,
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
        )?;
        if let Some(peer_id) = &s.peer_id {
            write!(f, "\npeer id           {peer_id}")?;
        }
        let e = &s.execution;
        write!(
            f,
            "\nexecution         {} thread{}: {} blocks by Block-STM, {} handed to sequential, {} too small",
            e.threads,
            if e.threads == 1 { "" } else { "s" },
            e.parallel_blocks,
            e.handed_over_blocks,
            e.small_blocks
        )?;
        write!(f, "\nvalidators        {}", s.validators.len())?;
        for key in &s.validators {
            write!(f, "\n  {key}")?;
        }
        Ok(())
    }
}

/// A block: its header fields and its transactions' hashes.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Block(pub BlockInfo);

/// The block `id` names: a height, a 0x hash, `latest` or `earliest`.
pub async fn block(client: &Client, id: &str) -> Result<Block, ClientError> {
    let rpc = client.rpc();
    let block = match id {
        "latest" => {
            rpc.get_block_by_number(BlockId::Tag(BlockTag::Latest))
                .await
        }
        "earliest" => {
            rpc.get_block_by_number(BlockId::Tag(BlockTag::Earliest))
                .await
        }
        hash if hash.starts_with("0x") => {
            let hash: B256 = hash.parse().map_err(|source| ClientError::BadHash {
                text: hash.to_string(),
                source,
            })?;
            rpc.get_block_by_hash(hash).await
        }
        height => {
            let height: u64 = height.parse().map_err(|source| ClientError::BadBlockId {
                text: height.to_string(),
                source,
            })?;
            rpc.get_block_by_number(BlockId::Number(height)).await
        }
    }
    .map_err(|e| client.error(e))?
    .ok_or_else(|| ClientError::NoBlock(id.to_string()))?;
    Ok(Block(block))
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = &self.0;
        let h = &block.header;
        write!(
            f,
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
    }
}

/// A transaction and, once it is included, its receipt.
#[derive(Debug, Clone, Serialize)]
pub struct TxReport {
    /// The transaction.
    pub transaction: TxInfo,
    /// Its receipt; `None` while pending.
    pub receipt: Option<ReceiptInfo>,
}

/// The transaction `hash` and its receipt.
pub async fn transaction(client: &Client, hash: B256) -> Result<TxReport, ClientError> {
    let rpc = client.rpc();
    let transaction = rpc
        .get_transaction(hash)
        .await
        .map_err(|e| client.error(e))?
        .ok_or(ClientError::NoTransaction(hash))?;
    let receipt = rpc.get_receipt(hash).await.map_err(|e| client.error(e))?;
    Ok(TxReport {
        transaction,
        receipt,
    })
}

impl fmt::Display for TxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tx = &self.transaction;
        let body = &tx.transaction.body;
        write!(
            f,
            "transaction {}\n  from       {}\n  to         {}\n  value      {} CRN\n  nonce      {}\n  gas limit  {}",
            tx.hash,
            tx.from,
            body.to
                .map_or_else(|| "(contract creation)".into(), |a| a.to_string()),
            format_crn(body.value),
            body.nonce,
            body.gas_limit
        )?;
        match &self.receipt {
            Some(receipt) => write!(f, "\n{}", describe_receipt(receipt)),
            None => write!(f, "\n  status     pending"),
        }
    }
}
