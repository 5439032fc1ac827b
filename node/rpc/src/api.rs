//! The `cairn_*` method set and the types it carries: jsonrpsee derives the typed client
//! (`CairnApiClient`) and the server trait (`CairnApiServer`) from the `CairnApi` declaration
//! below.

use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use cairn_chain::CallRequest;
use cairn_primitives::{
    Address, B256, Block, Bytes, Canonical, Header, Receipt, Transaction, U256,
};
use cairn_providers::{FetchProgress, MetricsSnapshot, ProviderWarnings};

/// JSON-RPC error code for a transaction the mempool refused.
pub const TX_REJECTED: i32 = -32000;
/// JSON-RPC error code of a reverted call (as Ethereum nodes use).
pub const EXECUTION_REVERTED: i32 = 3;
/// JSON-RPC error code of a failure inside the node.
pub const INTERNAL: i32 = -32603;
/// Parameters that name nothing this node can answer for.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC error code of a method that changes this node's data, called without the admin
/// token (see [`crate::access`]).
pub const ADMIN_REQUIRED: i32 = -32040;
/// JSON-RPC error code of an EVM call refused because the node is busy with others, or one
/// that ran past its time.
pub const CALL_LIMITED: i32 = -32005;

/// A block by height, or the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// A height.
    Number(u64),
    /// `"latest"` or `"earliest"`.
    Tag(BlockTag),
}

/// Named blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockTag {
    /// The head.
    Latest,
    /// Genesis.
    Earliest,
}

/// A block as the RPC returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockInfo {
    /// Block hash.
    pub hash: B256,
    /// Header.
    pub header: Header,
    /// Transaction hashes, in order.
    pub transactions: Vec<B256>,
    /// Encoded size in bytes.
    pub size: usize,
}

impl From<&Block> for BlockInfo {
    fn from(block: &Block) -> Self {
        Self {
            hash: block.hash(),
            header: block.header.clone(),
            transactions: block.transactions.iter().map(Transaction::hash).collect(),
            size: block.encode().len(),
        }
    }
}

/// A transaction with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxInfo {
    /// Transaction hash.
    pub hash: B256,
    /// Sender address.
    pub from: Address,
    /// The transaction.
    pub transaction: Transaction,
    /// Height of the including block; `None` while pending.
    pub block_height: Option<u64>,
    /// Position in that block.
    pub index: Option<u32>,
}

/// A receipt with where its transaction is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptInfo {
    /// Height of the including block.
    pub block_height: u64,
    /// Hash of that block.
    pub block_hash: B256,
    /// Position in the block.
    pub index: u32,
    /// Sender.
    pub from: Address,
    /// Recipient (`None` for a create).
    pub to: Option<Address>,
    /// The receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// The node's view of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainStatus {
    /// Chain id.
    pub chain_id: u64,
    /// Genesis block hash.
    pub genesis_hash: B256,
    /// Head height.
    pub height: u64,
    /// Head hash.
    pub head_hash: B256,
    /// Highest final block (a single-validator chain finalizes every block it commits).
    pub finalized_height: u64,
    /// State root after the head.
    pub state_root: B256,
    /// Head timestamp (ms).
    pub timestamp_ms: u64,
    /// Transactions waiting in the mempool.
    pub pending_transactions: usize,
    /// Base fee per gas.
    pub base_fee_per_gas: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Target block interval (ms).
    pub block_time_ms: u64,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// The consensus view the node is in.
    pub view: u64,
    /// Connected peers (0 for a dev node, which has no network).
    pub peers: usize,
    /// The node's libp2p peer id, if it is networked.
    pub peer_id: Option<String>,
    /// How the node's blocks were executed: in parallel, or sequentially and why.
    pub execution: cairn_evm::execution::ExecutionStats,
    /// The consensus public keys of the validators of the next block's epoch, in leader order.
    pub validators: Vec<B256>,
}

/// The result of a read-only call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallResult {
    /// Returned data.
    pub output: Bytes,
    /// Gas the call used.
    pub gas_used: u64,
}

/// The `cairn_*` JSON-RPC methods.
#[rpc(server, client, namespace = "cairn")]
pub trait CairnApi {
    /// Submits a signed, canonically encoded transaction; returns its hash.
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;

    /// Balance of an account at the head, in wei.
    #[method(name = "getBalance")]
    async fn get_balance(&self, address: Address) -> RpcResult<U256>;

    /// Next nonce of an account: at the head, or counting its pending transactions.
    #[method(name = "getNonce")]
    async fn get_nonce(&self, address: Address, pending: Option<bool>) -> RpcResult<u64>;

    /// Runs a call against the head state without a transaction.
    #[method(name = "call")]
    async fn call(&self, request: CallRequest) -> RpcResult<CallResult>;

    /// The least gas limit with which the call succeeds.
    #[method(name = "estimateGas")]
    async fn estimate_gas(&self, request: CallRequest) -> RpcResult<u64>;

    /// A block by height or tag.
    #[method(name = "getBlockByNumber")]
    async fn get_block_by_number(&self, id: BlockId) -> RpcResult<Option<BlockInfo>>;

    /// A block by hash.
    #[method(name = "getBlockByHash")]
    async fn get_block_by_hash(&self, hash: B256) -> RpcResult<Option<BlockInfo>>;

    /// A transaction, included or pending.
    #[method(name = "getTransaction")]
    async fn get_transaction(&self, hash: B256) -> RpcResult<Option<TxInfo>>;

    /// The receipt of an included transaction.
    #[method(name = "getReceipt")]
    async fn get_receipt(&self, hash: B256) -> RpcResult<Option<ReceiptInfo>>;

    /// Height, head, finality and parameters.
    #[method(name = "chainStatus")]
    async fn chain_status(&self) -> RpcResult<ChainStatus>;

    /// Prepares this node's chunk store to receive the data `root` of `size` bytes.
    #[method(name = "blobBegin", with_extensions)]
    async fn blob_begin(&self, root: B256, size: u64) -> RpcResult<BlobInfo>;

    /// The pieces of `root` this node does not hold yet.
    #[method(name = "blobMissing")]
    async fn blob_missing(&self, root: B256) -> RpcResult<Vec<u64>>;

    /// Stores one piece of `root`, checked against the root with its Merkle path.
    #[method(name = "blobPutPiece", with_extensions)]
    async fn blob_put_piece(
        &self,
        root: B256,
        index: u64,
        data: Bytes,
        path: Vec<B256>,
    ) -> RpcResult<BlobInfo>;

    /// What this node holds of `root`, and the progress of its fetch if one ran.
    #[method(name = "blobStatus")]
    async fn blob_status(&self, root: B256) -> RpcResult<Option<BlobInfo>>;

    /// One piece of a blob this node holds whole, with its Merkle path.
    #[method(name = "blobPiece")]
    async fn blob_piece(&self, root: B256, index: u64) -> RpcResult<PieceInfo>;

    /// Every blob this node holds or is receiving.
    #[method(name = "blobs")]
    async fn blobs(&self) -> RpcResult<Vec<BlobInfo>>;

    /// Deletes this node's copy of `root`; whether it held one.
    #[method(name = "blobRemove", with_extensions)]
    async fn blob_remove(&self, root: B256) -> RpcResult<bool>;

    /// Offers a proposed storage deal to its provider, which fetches the data from this node.
    #[method(name = "storageOffer", with_extensions)]
    async fn storage_offer(&self, deal: B256) -> RpcResult<()>;

    /// Starts (or reports) fetching `root` from the peers that hold it.
    #[method(name = "storageFetch", with_extensions)]
    async fn storage_fetch(&self, root: B256) -> RpcResult<FetchProgress>;

    /// The file holding this node's admin token, which the methods that change its data need
    /// (only a local user who can read the node's files can use it).
    #[method(name = "adminTokenFile")]
    async fn admin_token_file(&self) -> RpcResult<String>;

    /// The providers whose adverts reached this node, with their on-chain stake.
    #[method(name = "providers")]
    async fn providers(&self) -> RpcResult<Vec<ProviderInfo>>;

    /// This node's storage counters (proofs sent and failed, pieces served and rejected).
    #[method(name = "storageMetrics")]
    async fn storage_metrics(&self) -> RpcResult<MetricsSnapshot>;

    /// The provider this node runs, if any, and what puts it at risk of a slash now (admin:
    /// they tell its disk's free space and which deals are failing).
    #[method(name = "providerWarnings", with_extensions)]
    async fn provider_warnings(&self) -> RpcResult<ProviderWarnings>;
}

/// JSON-RPC error code of a data request that cannot be met.
pub const DATA_REFUSED: i32 = -32010;

/// What a node holds of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobInfo {
    /// Its blake3 root.
    pub root: B256,
    /// Its size in bytes.
    pub size: u64,
    /// Pieces in all.
    pub pieces: u64,
    /// Pieces held.
    pub present: u64,
    /// The fetch of it, if one ran since the node started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchProgress>,
}

impl From<cairn_storage::BlobStatus> for BlobInfo {
    fn from(status: cairn_storage::BlobStatus) -> Self {
        Self {
            root: B256::from(status.root),
            size: status.size,
            pieces: status.pieces(),
            present: status.present,
            fetch: None,
        }
    }
}

/// A piece and its Merkle path (sibling chaining values, bottom up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PieceInfo {
    /// The piece's bytes.
    pub data: Bytes,
    /// Its path to the root.
    pub path: Vec<B256>,
}

/// A provider as its advert and the chain describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    /// Its account.
    pub provider: Address,
    /// Its node's peer id.
    pub peer_id: String,
    /// Its node's addresses.
    pub addresses: Vec<String>,
    /// Storage offered, bytes.
    pub storage_capacity: u64,
    /// Storage free, bytes.
    pub storage_free: u64,
    /// Storage price, wei per MiB per epoch.
    pub storage_price: U256,
    /// Cores offered.
    pub cores: u32,
    /// Memory offered, MiB.
    pub memory_mib: u32,
    /// Fuel per second.
    pub fuel_per_second: u64,
    /// Compute price, wei per fuel.
    pub compute_price: U256,
    /// Bonded stake on chain, wei.
    pub bonded: U256,
    /// Roles on chain (bit 1 validator, 2 storage, 4 compute).
    pub roles: u8,
}
