//! Ethereum's JSON-RPC (`eth_*`, `net_*`, `web3_*`) over the same chain and mempool as the
//! `cairn_*` methods, with Ethereum's JSON shapes (alloy's RPC types), so that wallets, `cast`,
//! viem, ethers and web3.py work unchanged. Blocks, transactions and receipts of both kinds
//! appear: a Cairn (ed25519) transaction shows as an EIP-1559 one with an empty signature and
//! its own hash. State is answered for the latest block only (the node keeps no history of
//! state); a method not here answers -32601, so clients fall back.

use alloy_consensus::{
    Eip658Value, Receipt as ConsensusReceipt, ReceiptEnvelope, ReceiptWithBloom, Signed, TxEip1559,
    TxEnvelope, transaction::Recovered,
};
use alloy_primitives::{Bloom, U64, keccak256};
use alloy_rpc_types_eth::{
    Block as RpcBlock, BlockId, BlockNumberOrTag, BlockTransactions, FeeHistory, Filter,
    FilterBlockOption, Header as RpcHeader, Log as RpcLog, SyncStatus,
    Transaction as RpcTransaction, TransactionReceipt, TransactionRequest,
};
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use revm::DatabaseRef;

use cairn_chain::CallRequest;
use cairn_primitives::{
    Address, B256, Block, BlockReceipts, Bytes, Log, Receipt, Transaction, U256,
};

use crate::api::{INTERNAL, INVALID_PARAMS, TX_REJECTED};
use crate::server::{RpcServer, internal};

/// Most blocks `eth_feeHistory` reports at once (as geth caps it).
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1024;
/// Most blocks one `eth_getLogs` looks through.
pub const MAX_LOG_BLOCKS: u64 = 10_000;
/// Most logs one `eth_getLogs` returns.
pub const MAX_LOGS: usize = 10_000;
/// Most reward percentiles one `eth_feeHistory` asks for.
pub const MAX_REWARD_PERCENTILES: usize = 100;
/// Most addresses, and most values of each topic, one log filter names.
pub const MAX_FILTER_VALUES: usize = 1_000;
/// Blocks looked at to suggest a tip.
const TIP_SAMPLE_BLOCKS: u64 = 20;

/// `eth_*`.
#[rpc(server, client, namespace = "eth")]
pub trait EthApi {
    /// The chain id.
    #[method(name = "chainId")]
    async fn chain_id(&self) -> RpcResult<U64>;

    /// The head block's number.
    #[method(name = "blockNumber")]
    async fn block_number(&self) -> RpcResult<U64>;

    /// An account's balance (latest block).
    #[method(name = "getBalance")]
    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;

    /// An account's nonce: committed, or counting its pending transactions (`pending`).
    #[method(name = "getTransactionCount")]
    async fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;

    /// An account's code (latest block).
    #[method(name = "getCode")]
    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;

    /// One storage slot (latest block).
    #[method(name = "getStorageAt")]
    async fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256>;

    /// A gas price that gets a transaction in: the base fee and a suggested tip.
    #[method(name = "gasPrice")]
    async fn gas_price(&self) -> RpcResult<U256>;

    /// A suggested tip: the median tip of recent blocks' transactions, at least 1 wei.
    #[method(name = "maxPriorityFeePerGas")]
    async fn max_priority_fee_per_gas(&self) -> RpcResult<U256>;

    /// Base fees, gas used and tips of recent blocks.
    #[method(name = "feeHistory")]
    async fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;

    /// Submits a signed Ethereum transaction (EIP-2718 bytes).
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;

    /// A transaction by hash, included or pending.
    #[method(name = "getTransactionByHash")]
    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<RpcTransaction>>;

    /// An included transaction's receipt.
    #[method(name = "getTransactionReceipt")]
    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;

    /// A block by number or tag, with transaction hashes or whole transactions.
    #[method(name = "getBlockByNumber")]
    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<RpcBlock>>;

    /// A block by hash.
    #[method(name = "getBlockByHash")]
    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<RpcBlock>>;

    /// How many transactions a block holds.
    #[method(name = "getBlockTransactionCountByNumber")]
    async fn block_transaction_count(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;

    /// How many transactions the block with this hash holds.
    #[method(name = "getBlockTransactionCountByHash")]
    async fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;

    /// The transaction at `index` in a block by number or tag.
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<RpcTransaction>>;

    /// The transaction at `index` in the block with this hash.
    #[method(name = "getTransactionByBlockHashAndIndex")]
    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<RpcTransaction>>;

    /// Every receipt of a block, in order.
    #[method(name = "getBlockReceipts")]
    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;

    /// Runs a call against the latest state; its output.
    #[method(name = "call")]
    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes>;

    /// The gas a transaction needs against the latest state.
    #[method(name = "estimateGas")]
    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64>;

    /// The logs of a block range (at most [`MAX_LOG_BLOCKS`]) or of one block, by address and
    /// topics.
    #[method(name = "getLogs")]
    async fn logs(&self, filter: Filter) -> RpcResult<Vec<RpcLog>>;

    /// Notifications over WebSocket: each new block's header (`newHeads`), or the logs of each
    /// new block that match a filter (`logs`).
    #[subscription(
        name = "subscribe" => "subscription",
        unsubscribe = "unsubscribe",
        item = serde_json::Value
    )]
    async fn subscribe_to(&self, kind: String, filter: Option<Filter>) -> SubscriptionResult;

    /// Whether the node is catching up.
    #[method(name = "syncing")]
    async fn syncing(&self) -> RpcResult<SyncStatus>;

    /// Accounts the node signs for: none (keys stay with their owners).
    #[method(name = "accounts")]
    async fn accounts(&self) -> RpcResult<Vec<Address>>;
}

/// `net_*`.
#[rpc(server, client, namespace = "net")]
pub trait NetApi {
    /// The network id: the chain id, in decimal.
    #[method(name = "version")]
    async fn version(&self) -> RpcResult<String>;

    /// Whether the node takes connections.
    #[method(name = "listening")]
    async fn listening(&self) -> RpcResult<bool>;
}

/// `web3_*`.
#[rpc(server, client, namespace = "web3")]
pub trait Web3Api {
    /// The node's name and version.
    #[method(name = "clientVersion")]
    async fn client_version(&self) -> RpcResult<String>;
}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), None::<()>)
}

/// Where a block parameter points: the head for `latest`, `pending`, `safe` and `finalized`
/// (a committed block is final).
fn height_of(number: BlockNumberOrTag, head: u64) -> u64 {
    match number {
        BlockNumberOrTag::Number(n) => n,
        BlockNumberOrTag::Earliest => 0,
        BlockNumberOrTag::Latest
        | BlockNumberOrTag::Pending
        | BlockNumberOrTag::Safe
        | BlockNumberOrTag::Finalized => head,
    }
}

/// The transaction as Ethereum's RPC shows it: an Ethereum one as signed; a Cairn one as an
/// EIP-1559 transaction with an empty signature under its own hash.
fn rpc_transaction(tx: &Transaction, hash: B256) -> Recovered<TxEnvelope> {
    let envelope = match tx.ethereum() {
        Some(ethereum) => ethereum.envelope().clone(),
        None => {
            let body = &tx.body;
            let unsigned = TxEip1559 {
                chain_id: body.chain_id,
                nonce: body.nonce,
                gas_limit: body.gas_limit,
                max_fee_per_gas: body.max_fee_per_gas,
                max_priority_fee_per_gas: body.max_priority_fee_per_gas,
                to: body.kind(),
                value: body.value,
                access_list: Default::default(),
                input: body.input.clone(),
            };
            let empty = alloy_primitives::Signature::new(U256::ZERO, U256::ZERO, false);
            TxEnvelope::Eip1559(Signed::new_unchecked(unsigned, empty, hash))
        }
    };
    Recovered::new_unchecked(envelope, tx.sender())
}

/// The effective tips a block's transactions paid.
fn tips_of(block: &Block) -> impl Iterator<Item = u128> + '_ {
    let base_fee = u128::from(block.header.base_fee_per_gas);
    block
        .transactions
        .iter()
        .map(move |tx| tx.effective_gas_price(base_fee).saturating_sub(base_fee))
}

/// A transaction in its block, as Ethereum's RPC shows it.
fn included_transaction(
    tx: &Transaction,
    hash: B256,
    header: &cairn_primitives::Header,
    index: usize,
) -> RpcTransaction {
    RpcTransaction {
        inner: rpc_transaction(tx, hash),
        block_hash: Some(header.hash()),
        block_number: Some(header.height),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.effective_gas_price(u128::from(header.base_fee_per_gas))),
        block_timestamp: Some(header.timestamp_secs()),
    }
}

/// The logs bloom of some logs (a receipt's, or a block's system logs).
fn bloom_of(logs: &[Log]) -> Bloom {
    let mut bloom = Bloom::default();
    for log in logs {
        bloom.accrue_raw_log(log.address, &log.topics);
    }
    bloom
}

/// The transaction hash under which the events of a block's system calls are shown: they belong
/// to no transaction, but Ethereum's RPC names one on every log. As Polygon's bor does for its
/// own system events, the hash is derived from the block, so no transaction can have it (see
/// [`LogGroup`] for where the events are listed).
pub fn system_calls_hash(header: &cairn_primitives::Header) -> B256 {
    let mut preimage = b"cairn system calls".to_vec();
    preimage.extend_from_slice(&header.height.to_be_bytes());
    preimage.extend_from_slice(header.hash().as_slice());
    keccak256(preimage)
}

/// One run of a block's logs as Ethereum's RPC numbers them: the system calls' events first
/// (they ran before any transaction), then each transaction's, with log indexes counting
/// through the block in that order, so that sorting by log index replays the block.
struct LogGroup<'a> {
    /// The transaction's hash, or [`system_calls_hash`] for the system calls' events.
    tx_hash: B256,
    /// The transaction's index; 0 for the system calls' events (they ran before transaction 0).
    tx_index: usize,
    /// The block-wide index of the group's first log.
    first_log_index: usize,
    logs: &'a [Log],
    /// The transaction's receipt; `None` for the system calls' events.
    receipt: Option<&'a Receipt>,
}

/// The log groups of `block`, whose receipts and system events are `stored`, in block order.
fn log_groups<'a>(block: &Block, stored: &'a BlockReceipts) -> Vec<LogGroup<'a>> {
    let mut groups = Vec::with_capacity(stored.receipts.len() + 1);
    if !stored.system_logs.is_empty() {
        groups.push(LogGroup {
            tx_hash: system_calls_hash(&block.header),
            tx_index: 0,
            first_log_index: 0,
            logs: &stored.system_logs,
            receipt: None,
        });
    }
    let mut next_log_index = stored.system_logs.len();
    for (index, receipt) in stored.receipts.iter().enumerate() {
        groups.push(LogGroup {
            tx_hash: receipt.tx_hash,
            tx_index: index,
            first_log_index: next_log_index,
            logs: &receipt.logs,
            receipt: Some(receipt),
        });
        next_log_index += receipt.logs.len();
    }
    groups
}

impl LogGroup<'_> {
    /// The group's `position`th log as Ethereum's RPC shows it.
    fn rpc_log(&self, header: &cairn_primitives::Header, position: usize, log: &Log) -> RpcLog {
        RpcLog {
            inner: alloy_primitives::Log::new_unchecked(
                log.address,
                log.topics.clone(),
                log.data.clone(),
            ),
            block_hash: Some(header.hash()),
            block_number: Some(header.height),
            block_timestamp: Some(header.timestamp_secs()),
            transaction_hash: Some(self.tx_hash),
            transaction_index: Some(self.tx_index as u64),
            log_index: Some((self.first_log_index + position) as u64),
            removed: false,
        }
    }

    /// The transaction's receipt as Ethereum's RPC shows it; `None` for the system calls'
    /// group, or if the block does not hold the transaction (a damaged store).
    fn rpc_receipt(&self, block: &Block) -> Option<TransactionReceipt> {
        let receipt = self.receipt?;
        let tx = block.transactions.get(self.tx_index)?;
        let header = &block.header;
        let logs = self
            .logs
            .iter()
            .enumerate()
            .map(|(position, log)| self.rpc_log(header, position, log))
            .collect();
        let inner = ReceiptWithBloom {
            receipt: ConsensusReceipt {
                status: Eip658Value::Eip658(receipt.succeeded()),
                cumulative_gas_used: receipt.cumulative_gas_used,
                logs,
            },
            logs_bloom: bloom_of(&receipt.logs),
        };
        let envelope = match tx.ethereum().map(|e| e.tx_type()) {
            Some(0) => ReceiptEnvelope::Legacy(inner),
            Some(1) => ReceiptEnvelope::Eip2930(inner),
            _ => ReceiptEnvelope::Eip1559(inner),
        };
        Some(TransactionReceipt {
            inner: envelope,
            transaction_hash: self.tx_hash,
            transaction_index: Some(self.tx_index as u64),
            block_hash: Some(header.hash()),
            block_number: Some(header.height),
            gas_used: receipt.gas_used,
            effective_gas_price: tx.effective_gas_price(u128::from(header.base_fee_per_gas)),
            blob_gas_used: None,
            blob_gas_price: None,
            from: tx.sender(),
            to: tx.body.to,
            contract_address: receipt.contract_address,
        })
    }
}

impl RpcServer {
    fn head_height(&self) -> RpcResult<u64> {
        Ok(self.chain().head().map_err(internal)?.height)
    }

    /// Refuses a block parameter for a state this node no longer holds.
    fn latest_only(&self, block: Option<BlockId>) -> RpcResult<()> {
        let head = self.head_height()?;
        let at = match block {
            None | Some(BlockId::Number(BlockNumberOrTag::Pending)) => return Ok(()),
            Some(BlockId::Number(number)) => height_of(number, head),
            Some(BlockId::Hash(hash)) => {
                match self
                    .chain()
                    .block_by_hash(&hash.block_hash)
                    .map_err(internal)?
                {
                    Some(block) => block.header.height,
                    None => return Err(invalid(format!("unknown block {}", hash.block_hash))),
                }
            }
        };
        if at == head {
            return Ok(());
        }
        Err(ErrorObjectOwned::owned(
            INTERNAL,
            format!(
                "state of block {at} is not kept: this node answers for the latest block ({head}) only"
            ),
            None::<()>,
        ))
    }

    fn rpc_block(&self, block: &Block, full: bool) -> RpcBlock {
        let header = &block.header;
        let hashes: Vec<B256> = block.transactions.iter().map(Transaction::hash).collect();
        let mut logs_bloom = Bloom::default();
        if let Some(stored) = self.chain().block_receipts(header.height).ok().flatten() {
            for receipt in &stored.receipts {
                logs_bloom.accrue_bloom(&bloom_of(&receipt.logs));
            }
            logs_bloom.accrue_bloom(&bloom_of(&stored.system_logs));
        }
        let transactions = if full {
            BlockTransactions::Full(
                block
                    .transactions
                    .iter()
                    .zip(&hashes)
                    .enumerate()
                    .map(|(index, (tx, hash))| included_transaction(tx, *hash, header, index))
                    .collect(),
            )
        } else {
            BlockTransactions::Hashes(hashes)
        };
        let inner = alloy_consensus::Header {
            parent_hash: header.parent,
            ommers_hash: alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH,
            beneficiary: header.beneficiary,
            state_root: header.state_root,
            transactions_root: header.tx_root,
            receipts_root: header.receipts_root,
            logs_bloom,
            difficulty: U256::ZERO,
            number: header.height,
            gas_limit: header.gas_limit,
            gas_used: header.gas_used,
            timestamp: header.timestamp_secs(),
            mix_hash: header.randomness,
            base_fee_per_gas: Some(header.base_fee_per_gas),
            ..Default::default()
        };
        RpcBlock {
            header: RpcHeader {
                hash: header.hash(),
                inner,
                total_difficulty: Some(U256::ZERO),
                size: Some(U256::from(cairn_primitives::Canonical::encoded_len(block))),
            },
            uncles: Vec::new(),
            transactions,
            withdrawals: None,
        }
    }

    /// The effective tips paid in the last blocks, lowest first.
    fn recent_tips(&self, newest: u64, blocks: u64) -> RpcResult<Vec<u128>> {
        let mut tips = Vec::new();
        for height in newest.saturating_sub(blocks.saturating_sub(1))..=newest {
            if let Some(block) = self.chain().block(height).map_err(internal)? {
                tips.extend(tips_of(&block));
            }
        }
        tips.sort_unstable();
        Ok(tips)
    }

    /// The median tip of the last blocks, at least 1 wei, worked out once per head block.
    fn suggested_tip(&self) -> RpcResult<u128> {
        let head = self.head_height()?;
        if let Some((at, tip)) = self.tip_cache().get()
            && at == head
        {
            return Ok(tip);
        }
        let tips = self.recent_tips(head, TIP_SAMPLE_BLOCKS)?;
        let tip = tips.get(tips.len() / 2).copied().unwrap_or(0).max(1);
        self.tip_cache().set(head, tip);
        Ok(tip)
    }

    /// What `eth_call` and `eth_estimateGas` run.
    fn call_request(&self, request: TransactionRequest) -> RpcResult<CallRequest> {
        if request.transaction_type.is_some_and(|ty| ty > 2) {
            return Err(invalid("only legacy, EIP-2930 and EIP-1559 calls are run"));
        }
        Ok(CallRequest {
            from: request.from,
            to: request.to.and_then(|kind| kind.to().copied()),
            value: request.value,
            input: request.input.into_input(),
            gas: request.gas,
            access_list: request.access_list,
        })
    }
}

/// Refuses a log filter that names too many addresses or topic values.
fn check_filter_size(filter: &Filter) -> RpcResult<()> {
    let named =
        std::iter::once(filter.address.len()).chain(filter.topics.iter().map(|topic| topic.len()));
    if named.into_iter().any(|n| n > MAX_FILTER_VALUES) {
        return Err(invalid(format!(
            "a filter names at most {MAX_FILTER_VALUES} addresses and {MAX_FILTER_VALUES} values of each topic"
        )));
    }
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> RpcResult<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| ErrorObjectOwned::owned(INTERNAL, e.to_string(), None::<()>))
}

/// What an `eth_subscribe` asked for.
#[derive(Debug, Clone)]
enum Subscription {
    NewHeads,
    Logs(Box<Filter>),
}

impl RpcServer {
    /// What a subscription is told about the block at `height`.
    fn notifications_at(
        &self,
        height: u64,
        subscription: &Subscription,
    ) -> RpcResult<Vec<serde_json::Value>> {
        match subscription {
            Subscription::NewHeads => {
                let Some(block) = self.chain().block(height).map_err(internal)? else {
                    return Ok(Vec::new());
                };
                Ok(vec![to_json(&self.rpc_block(&block, false).header)?])
            }
            Subscription::Logs(filter) => {
                let at_height = (**filter).clone().from_block(height).to_block(height);
                self.logs_now(at_height)?.iter().map(to_json).collect()
            }
        }
    }
}

/// The reads that decode many blocks or recover senders, run on the blocking pool within the
/// EVM calls' bound ([`RpcServer::read_blocking`]).
impl RpcServer {
    fn gas_price_now(&self) -> RpcResult<U256> {
        let base_fee = u128::from(self.chain().head_header().base_fee_per_gas);
        Ok(U256::from(base_fee + self.suggested_tip()?))
    }

    fn max_priority_fee_per_gas_now(&self) -> RpcResult<U256> {
        Ok(U256::from(self.suggested_tip()?))
    }

    fn fee_history_now(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let head = self.head_height()?;
        let newest = height_of(newest, head).min(head);
        let count = block_count.to::<u64>().clamp(1, MAX_FEE_HISTORY_BLOCKS);
        if let Some(percentiles) = &reward_percentiles {
            let ordered = percentiles.windows(2).all(|w| w[0] <= w[1]);
            if !ordered || percentiles.iter().any(|p| !(0.0..=100.0).contains(p)) {
                return Err(invalid(
                    "reward percentiles must rise monotonically from 0 to 100",
                ));
            }
            if percentiles.len() > MAX_REWARD_PERCENTILES {
                return Err(invalid(format!(
                    "{} reward percentiles asked for, the most is {MAX_REWARD_PERCENTILES}",
                    percentiles.len()
                )));
            }
        }
        let oldest = newest.saturating_sub(count - 1);
        let mut history = FeeHistory {
            oldest_block: oldest,
            ..Default::default()
        };
        let mut rewards = Vec::new();
        for height in oldest..=newest {
            let Some(block) = self.chain().block(height).map_err(internal)? else {
                continue;
            };
            let header = &block.header;
            history
                .base_fee_per_gas
                .push(u128::from(header.base_fee_per_gas));
            history
                .gas_used_ratio
                .push(header.gas_used as f64 / header.gas_limit.max(1) as f64);
            history.base_fee_per_blob_gas.push(0);
            history.blob_gas_used_ratio.push(0.0);
            if let Some(percentiles) = &reward_percentiles {
                let mut tips: Vec<u128> = tips_of(&block).collect();
                tips.sort_unstable();
                rewards.push(
                    percentiles
                        .iter()
                        .map(|p| {
                            let at = ((tips.len().saturating_sub(1)) as f64 * p / 100.0) as usize;
                            tips.get(at).copied().unwrap_or(0)
                        })
                        .collect(),
                );
            }
        }
        // The base fee of the block after the newest: the chain's base fee is fixed.
        let next = self.chain().head_header().base_fee_per_gas;
        history.base_fee_per_gas.push(u128::from(next));
        history.base_fee_per_blob_gas.push(0);
        history.reward = reward_percentiles.map(|_| rewards);
        Ok(history)
    }

    fn transaction_by_hash_now(&self, hash: B256) -> RpcResult<Option<RpcTransaction>> {
        if let Some(location) = self.chain().tx_location(&hash).map_err(internal)? {
            let Some(block) = self.chain().block(location.height).map_err(internal)? else {
                return Ok(None);
            };
            let (header, index) = (&block.header, location.index as usize);
            return Ok(block
                .transactions
                .get(index)
                .map(|tx| included_transaction(tx, hash, header, index)));
        }
        Ok(self.pool().get(&hash).map(|tx| RpcTransaction {
            inner: rpc_transaction(&tx, hash),
            block_hash: None,
            block_number: None,
            transaction_index: None,
            effective_gas_price: None,
            block_timestamp: None,
        }))
    }

    fn transaction_receipt_now(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let Some(location) = self.chain().tx_location(&hash).map_err(internal)? else {
            return Ok(None);
        };
        let height = location.height;
        let (Some(block), Some(stored)) = (
            self.chain().block(height).map_err(internal)?,
            self.chain().block_receipts(height).map_err(internal)?,
        ) else {
            return Ok(None);
        };
        let index = usize::try_from(location.index).unwrap_or(usize::MAX);
        Ok(log_groups(&block, &stored)
            .iter()
            .find(|group| group.receipt.is_some() && group.tx_index == index)
            .and_then(|group| group.rpc_receipt(&block)))
    }

    fn block_receipts_now(&self, at: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let Some(block) = self.block_at(at)? else {
            return Ok(None);
        };
        let Some(stored) = self
            .chain()
            .block_receipts(block.header.height)
            .map_err(internal)?
        else {
            return Ok(None);
        };
        // A block's logs are bounded only by its gas (a 60M-gas block holds about 160,000 empty
        // ones): refuse before building them, as eth_getLogs does.
        let logs: usize = stored.receipts.iter().map(|r| r.logs.len()).sum();
        if logs > MAX_LOGS {
            return Err(invalid(format!(
                "block {} has {logs} logs, more than {MAX_LOGS}: read them with eth_getLogs and a narrower filter",
                block.header.height
            )));
        }
        Ok(Some(
            log_groups(&block, &stored)
                .iter()
                .filter_map(|group| group.rpc_receipt(&block))
                .collect(),
        ))
    }

    /// The block a block parameter names, if this node has it.
    fn block_at(&self, at: BlockId) -> RpcResult<Option<Block>> {
        match at {
            BlockId::Number(number) => {
                let height = height_of(number, self.head_height()?);
                self.chain().block(height).map_err(internal)
            }
            BlockId::Hash(hash) => self
                .chain()
                .block_by_hash(&hash.block_hash)
                .map_err(internal),
        }
    }

    fn block_by_now(&self, at: BlockId, full: bool) -> RpcResult<Option<RpcBlock>> {
        Ok(self.block_at(at)?.map(|block| self.rpc_block(&block, full)))
    }

    fn block_transaction_count_now(&self, at: BlockId) -> RpcResult<Option<U64>> {
        Ok(self
            .block_at(at)?
            .map(|block| U64::from(block.transactions.len())))
    }

    fn transaction_by_block_and_index_now(
        &self,
        at: BlockId,
        index: U64,
    ) -> RpcResult<Option<RpcTransaction>> {
        let Some(block) = self.block_at(at)? else {
            return Ok(None);
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        Ok(block
            .transactions
            .get(index)
            .map(|tx| included_transaction(tx, tx.hash(), &block.header, index)))
    }

    fn logs_now(&self, filter: Filter) -> RpcResult<Vec<RpcLog>> {
        check_filter_size(&filter)?;
        let head = self.head_height()?;
        let (from, to) = match filter.block_option {
            FilterBlockOption::AtBlockHash(hash) => {
                let height = self.chain().store().block_height(&hash);
                match height.map_err(|e| internal(e.into()))? {
                    Some(height) => (height, height),
                    None => return Err(invalid(format!("unknown block {hash}"))),
                }
            }
            FilterBlockOption::Range {
                from_block,
                to_block,
            } => (
                height_of(from_block.unwrap_or_default(), head),
                height_of(to_block.unwrap_or_default(), head).min(head),
            ),
        };
        if from > to {
            return Ok(Vec::new());
        }
        if to - from >= MAX_LOG_BLOCKS {
            return Err(invalid(format!(
                "the block range is {} blocks, the most is {MAX_LOG_BLOCKS}: ask for less",
                to - from + 1
            )));
        }
        let mut found = Vec::new();
        for height in from..=to {
            // Receipts first: a block is read only when the bloom of some of its logs matches
            // (an empty bloom matches a filter of nothing, so runs without logs are skipped).
            let Some(stored) = self.chain().block_receipts(height).map_err(internal)? else {
                continue;
            };
            // Each run of logs (the system events', then each transaction's, in the order
            // `log_groups` lists them) is tested against the filter's bloom once.
            let matching: Vec<bool> = std::iter::once(&stored.system_logs)
                .filter(|logs| !logs.is_empty())
                .chain(stored.receipts.iter().map(|r| &r.logs))
                .map(|logs| !logs.is_empty() && filter.matches_bloom(bloom_of(logs)))
                .collect();
            if !matching.contains(&true) {
                continue;
            }
            let Some(block) = self.chain().block(height).map_err(internal)? else {
                continue;
            };
            for (group, matches) in log_groups(&block, &stored).into_iter().zip(matching) {
                if !matches {
                    continue;
                }
                for (position, log) in group.logs.iter().enumerate() {
                    if !filter.matches_address(log.address) || !filter.matches_topics(&log.topics) {
                        continue;
                    }
                    if found.len() == MAX_LOGS {
                        return Err(invalid(format!(
                            "more than {MAX_LOGS} logs match: ask for fewer blocks or a narrower filter"
                        )));
                    }
                    found.push(group.rpc_log(&block.header, position, log));
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl EthApiServer for RpcServer {
    async fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.chain().genesis().chain_id))
    }

    async fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.head_height()?))
    }

    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.latest_only(block)?;
        Ok(self
            .chain()
            .sender_state(address)
            .map_err(internal)?
            .balance)
    }

    async fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
            return Ok(U64::from(
                self.pool().pending_nonce(address).map_err(internal)?,
            ));
        }
        self.latest_only(block)?;
        Ok(U64::from(
            self.chain().sender_state(address).map_err(internal)?.nonce,
        ))
    }

    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.latest_only(block)?;
        let state = self.chain().state();
        let read = |e: cairn_storage::StorageError| internal(e.into());
        let Some(account) = state.basic_ref(address).map_err(read)? else {
            return Ok(Bytes::new());
        };
        let code = match account.code {
            Some(code) => code,
            None => state.code_by_hash_ref(account.code_hash).map_err(read)?,
        };
        Ok(code.original_bytes())
    }

    async fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        self.latest_only(block)?;
        let value = self
            .chain()
            .state()
            .storage_ref(address, slot)
            .map_err(|e| internal(e.into()))?;
        Ok(B256::from(value))
    }

    async fn gas_price(&self) -> RpcResult<U256> {
        self.read_blocking(move |server| server.gas_price_now())
            .await
    }

    async fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        self.read_blocking(move |server| server.max_priority_fee_per_gas_now())
            .await
    }

    async fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        self.read_blocking(move |server| {
            server.fee_history_now(block_count, newest, reward_percentiles)
        })
        .await
    }

    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        let pool = self.pool().clone();
        tokio::task::spawn_blocking(move || {
            let tx = Transaction::from_ethereum(&raw)
                .map_err(|e| ErrorObjectOwned::owned(TX_REJECTED, e.to_string(), None::<()>))?;
            pool.submit_relayed(tx).map_err(crate::server::rejected)
        })
        .await
        .map_err(|e| ErrorObjectOwned::owned(INTERNAL, e.to_string(), None::<()>))?
    }

    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<RpcTransaction>> {
        self.read_blocking(move |server| server.transaction_by_hash_now(hash))
            .await
    }

    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        self.read_blocking(move |server| server.transaction_receipt_now(hash))
            .await
    }

    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<RpcBlock>> {
        self.read_blocking(move |server| server.block_by_now(number.into(), full))
            .await
    }

    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<RpcBlock>> {
        self.read_blocking(move |server| server.block_by_now(hash.into(), full))
            .await
    }

    async fn block_transaction_count(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        self.read_blocking(move |server| server.block_transaction_count_now(number.into()))
            .await
    }

    async fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        self.read_blocking(move |server| server.block_transaction_count_now(hash.into()))
            .await
    }

    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<RpcTransaction>> {
        self.read_blocking(move |server| {
            server.transaction_by_block_and_index_now(number.into(), index)
        })
        .await
    }

    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<RpcTransaction>> {
        self.read_blocking(move |server| {
            server.transaction_by_block_and_index_now(hash.into(), index)
        })
        .await
    }

    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        self.read_blocking(move |server| server.block_receipts_now(block))
            .await
    }

    async fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.latest_only(block)?;
        let request = self.call_request(request)?;
        let result = self
            .on_chain(move |chain| chain.call(&request))
            .await?
            .map_err(internal)?;
        if !result.is_success() {
            return Err(crate::server::reverted(&result));
        }
        Ok(result.into_output().unwrap_or_default())
    }

    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64> {
        self.latest_only(block)?;
        let request = self.call_request(request)?;
        match self
            .on_chain(move |chain| chain.estimate_gas(&request))
            .await?
            .map_err(internal)?
        {
            Ok(gas) => Ok(U64::from(gas)),
            Err(result) => Err(crate::server::reverted(&result)),
        }
    }

    async fn logs(&self, filter: Filter) -> RpcResult<Vec<RpcLog>> {
        self.read_blocking(move |server| server.logs_now(filter))
            .await
    }

    async fn subscribe_to(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        filter: Option<Filter>,
    ) -> SubscriptionResult {
        let subscription = match (kind.as_str(), filter) {
            ("newHeads", _) => Subscription::NewHeads,
            ("logs", filter) => {
                let filter = filter.unwrap_or_default();
                if let Err(error) = check_filter_size(&filter) {
                    pending.reject(error).await;
                    return Ok(());
                }
                Subscription::Logs(Box::new(filter))
            }
            (other, _) => {
                let message = format!("no subscription {other:?}: newHeads or logs");
                pending.reject(invalid(message)).await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        let mut commits = self.chain().subscribe();
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                let commit = tokio::select! {
                    () = sink.closed() => return,
                    commit = commits.recv() => commit,
                };
                // A subscriber that falls more than the backlog behind (it does not read) is
                // dropped, not buffered for.
                let Ok(commit) = commit else { return };
                let subscription = subscription.clone();
                let notifications = server
                    .read_blocking(move |server| {
                        server.notifications_at(commit.height, &subscription)
                    })
                    .await;
                let Ok(notifications) = notifications else {
                    return;
                };
                for notification in notifications {
                    let Ok(raw) = serde_json::value::to_raw_value(&notification) else {
                        return;
                    };
                    if sink.send(raw).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(())
    }

    async fn syncing(&self) -> RpcResult<SyncStatus> {
        Ok(SyncStatus::None)
    }

    async fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl NetApiServer for RpcServer {
    async fn version(&self) -> RpcResult<String> {
        Ok(self.chain().genesis().chain_id.to_string())
    }

    async fn listening(&self) -> RpcResult<bool> {
        Ok(true)
    }
}

#[async_trait]
impl Web3ApiServer for RpcServer {
    async fn client_version(&self) -> RpcResult<String> {
        Ok(format!("cairn/v{}", env!("CARGO_PKG_VERSION")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_primitives::{AccountKey, Header, Signature, TxBody, TxStatus};

    fn log(byte: u8) -> Log {
        Log {
            address: Address::repeat_byte(byte),
            topics: vec![B256::repeat_byte(byte)],
            data: Bytes::new(),
        }
    }

    fn receipt(tx: &Transaction, logs: Vec<Log>) -> Receipt {
        Receipt {
            tx_hash: tx.hash(),
            status: TxStatus::Success,
            gas_used: 21_000,
            cumulative_gas_used: 21_000,
            fee: U256::ZERO,
            contract_address: None,
            output: Bytes::new(),
            logs,
        }
    }

    /// A block whose system calls logged twice and whose two transactions logged once and
    /// twice: the system events come first (they ran first), at transaction index 0 under the
    /// block's system hash, and log indexes count on through the transactions' logs, in
    /// `eth_getLogs` and in the receipts alike.
    #[test]
    fn system_events_come_first_and_log_indexes_count_through_the_block() {
        let key = AccountKey::from_bytes(&[7; 32]);
        let transfer = |nonce| {
            TxBody {
                chain_id: 1,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: 1,
                max_priority_fee_per_gas: 0,
                to: Some(Address::repeat_byte(9)),
                value: U256::ZERO,
                input: Bytes::new(),
            }
            .sign(&key)
        };
        let transactions = vec![transfer(0), transfer(1)];
        let header = Header {
            chain_id: 1,
            parent: B256::ZERO,
            height: 30,
            view: 30,
            proposer: [0; 32],
            beneficiary: Address::ZERO,
            timestamp_ms: 0,
            tx_root: B256::ZERO,
            receipts_root: B256::ZERO,
            state_root: B256::ZERO,
            randomness: B256::ZERO,
            vrf_output: [0; 32],
            vrf_proof: Signature([[0; 32]; 2]),
            parent_votes_hash: B256::ZERO,
            gas_used: 42_000,
            gas_limit: 60_000_000,
            base_fee_per_gas: 1,
        };
        let stored = BlockReceipts {
            receipts: vec![
                receipt(&transactions[0], vec![log(3)]),
                receipt(&transactions[1], vec![log(4), log(5)]),
            ],
            system_logs: vec![log(1), log(2)],
        };
        let block = Block {
            header,
            transactions,
            parent_votes: None,
        };
        let groups = log_groups(&block, &stored);
        let shown: Vec<(B256, u64, u64, Address)> = groups
            .iter()
            .flat_map(|group| {
                group.logs.iter().enumerate().map(|(position, log)| {
                    let rpc = group.rpc_log(&block.header, position, log);
                    (
                        rpc.transaction_hash.unwrap_or_default(),
                        rpc.transaction_index.unwrap_or(u64::MAX),
                        rpc.log_index.unwrap_or(u64::MAX),
                        rpc.address(),
                    )
                })
            })
            .collect();
        let system = system_calls_hash(&block.header);
        let (first, second) = (block.transactions[0].hash(), block.transactions[1].hash());
        assert_eq!(
            shown,
            vec![
                (system, 0, 0, Address::repeat_byte(1)),
                (system, 0, 1, Address::repeat_byte(2)),
                (first, 0, 2, Address::repeat_byte(3)),
                (second, 1, 3, Address::repeat_byte(4)),
                (second, 1, 4, Address::repeat_byte(5)),
            ]
        );
        assert!(![first, second].contains(&system));
        // The receipts: one per transaction (none for the system calls), logs numbered alike.
        let receipts: Vec<TransactionReceipt> = groups
            .iter()
            .filter_map(|group| group.rpc_receipt(&block))
            .collect();
        assert_eq!(receipts.len(), 2);
        let receipt_log_indexes: Vec<Vec<u64>> = receipts
            .iter()
            .map(|r| r.inner.logs().iter().filter_map(|l| l.log_index).collect())
            .collect();
        assert_eq!(receipt_log_indexes, vec![vec![2], vec![3, 4]]);
        assert_eq!(receipts[1].transaction_index, Some(1));
        // Without system events the transactions' logs start at 0.
        let quiet = BlockReceipts {
            system_logs: Vec::new(),
            ..stored
        };
        let groups = log_groups(&block, &quiet);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].first_log_index, 0);
        assert_eq!(groups[1].first_log_index, 1);
    }
}
