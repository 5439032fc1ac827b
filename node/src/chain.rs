//! The chain on top of the store: building blocks, importing blocks, answering queries.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_storage::{BlockCommit, Head, PendingState, StateView, Store, TxLocation};
use revm::context::result::{EVMError, ExecutionResult};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::{Context, DatabaseRef, ExecuteEvm, MainBuilder, MainContext};
use serde::{Deserialize, Serialize};

use crate::error::{NodeError, Result};
use crate::execution::{BlockContext, Executor, SPEC, TxOutcome, max_tx_gas};
use crate::genesis::Genesis;
use crate::mempool::{ChainRules, SenderState};
use crate::types::{
    AccountKey, Address, B256, Block, BlockReceipts, Bytes, Canonical, Header, Receipt,
    Transaction, U256, block_randomness, receipts_root, tx_root,
};

/// Where the wall time of building a block went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockTimings {
    /// Running the transactions on revm.
    pub execute: Duration,
    /// Updating the state tree.
    pub state_root: Duration,
    /// Encoding and writing the block's batch to RocksDB.
    pub commit: Duration,
}

/// A block this node built and committed.
#[derive(Debug, Clone)]
pub struct ProducedBlock {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// Candidates left out, with the reason.
    pub excluded: Vec<(B256, String)>,
    /// Where the time went.
    pub timings: BlockTimings,
}

/// Why an imported block was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBlock {
    /// Not the child of the head.
    #[error("block {height} does not extend the head (height {head_height}, hash {head_hash})")]
    NotChild {
        /// The block's height.
        height: u64,
        /// The head's height.
        head_height: u64,
        /// The head's hash.
        head_hash: B256,
    },
    /// A header field is wrong.
    #[error("invalid header: {0}")]
    Header(String),
    /// A transaction is invalid.
    #[error("transaction {index} is invalid: {reason}")]
    Transaction {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
    /// Re-execution disagrees with the header.
    #[error("{what} mismatch: header has {claimed}, execution gives {computed}")]
    Mismatch {
        /// The field.
        what: &'static str,
        /// The header's value.
        claimed: String,
        /// The re-executed value.
        computed: String,
    },
    /// The node failed while checking.
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// A read-only call against the head state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRequest {
    /// Caller (zero address if absent).
    #[serde(default)]
    pub from: Option<Address>,
    /// Callee; absent to simulate a contract creation.
    #[serde(default)]
    pub to: Option<Address>,
    /// Value sent, in wei.
    #[serde(default)]
    pub value: Option<U256>,
    /// Call data.
    #[serde(default)]
    pub input: Option<Bytes>,
    /// Gas available (the most a transaction may use if absent).
    #[serde(default)]
    pub gas: Option<u64>,
}

/// The chain: a store, its genesis and an executor.
pub struct Chain {
    store: Store,
    genesis: Genesis,
    executor: Box<dyn Executor>,
    head_header: Mutex<Header>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("chain_id", &self.genesis.chain_id)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Opens the chain database in `dir`, writing the genesis state if it is new.
    pub fn open(dir: &Path, genesis: Genesis, executor: Box<dyn Executor>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
        let store = Store::open(dir)?;
        genesis.initialize(&store)?;
        let head = store
            .head()?
            .ok_or_else(|| NodeError::Genesis("no head after genesis".into()))?;
        let head_header = Self::read_block(&store, head.height)?
            .ok_or_else(|| NodeError::Genesis(format!("head block {} is missing", head.height)))?
            .header;
        Ok(Self {
            store,
            genesis,
            executor,
            head_header: Mutex::new(head_header),
        })
    }

    fn read_block(store: &Store, height: u64) -> Result<Option<Block>> {
        store
            .block(height)?
            .map(|(_, bytes)| Ok(Block::decode(&bytes)?))
            .transpose()
    }

    /// The genesis configuration.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The head block's header.
    pub fn head_header(&self) -> Header {
        self.head_header
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The head record (height, hash, state root).
    pub fn head(&self) -> Result<Head> {
        self.store
            .head()?
            .ok_or_else(|| NodeError::Genesis("the store has no head".into()))
    }

    /// The rules transactions are checked against.
    pub fn rules(&self) -> ChainRules {
        ChainRules {
            chain_id: self.genesis.chain_id,
            block_gas_limit: self.genesis.gas_limit,
            base_fee_per_gas: self.genesis.base_fee_per_gas,
        }
    }

    /// A consistent view of the head state.
    pub fn state(&self) -> StateView<'_> {
        self.store.state()
    }

    /// A sender's committed nonce and balance.
    pub fn sender_state(&self, address: Address) -> Result<SenderState> {
        Ok(account_state(&self.state(), address)?)
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>> {
        Self::read_block(&self.store, height)
    }

    /// The block with this hash.
    pub fn block_by_hash(&self, hash: &B256) -> Result<Option<Block>> {
        match self.store.block_height(hash)? {
            Some(height) => self.block(height),
            None => Ok(None),
        }
    }

    /// The receipts of the block at `height`.
    pub fn receipts(&self, height: u64) -> Result<Option<Vec<Receipt>>> {
        self.store
            .receipts(height)?
            .map(|bytes| Ok(BlockReceipts::decode(&bytes)?.0))
            .transpose()
    }

    /// Where a transaction was included.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<TxLocation>> {
        Ok(self.store.tx_location(hash)?)
    }

    /// Builds, executes and commits the next block from `candidates`, proposed by `key`.
    /// Candidates that cannot run are left out and reported.
    pub fn produce_block(
        &self,
        key: &AccountKey,
        timestamp_ms: u64,
        candidates: &[Transaction],
    ) -> Result<ProducedBlock> {
        let parent = self.head_header();
        let height = parent.height + 1;
        let view = 0;
        let (randomness_proof, randomness) =
            block_randomness(key, self.genesis.chain_id, height, view);
        let beneficiary = self
            .genesis
            .beneficiary_of(key)
            .unwrap_or_else(|| key.address());
        let context = BlockContext {
            chain_id: self.genesis.chain_id,
            height,
            timestamp_secs: timestamp_ms.max(parent.timestamp_ms) / 1000,
            gas_limit: self.genesis.gas_limit,
            base_fee_per_gas: self.genesis.base_fee_per_gas,
            beneficiary,
            randomness,
        };
        let started = Instant::now();
        let state_view = self.store.state();
        let mut pending = PendingState::new(&state_view);
        let outcomes = self.executor.execute(&context, candidates, &mut pending)?;
        let mut transactions = Vec::new();
        let mut receipts = Vec::new();
        let mut excluded = Vec::new();
        for (tx, outcome) in candidates.iter().zip(outcomes) {
            match outcome {
                TxOutcome::Included(receipt) => {
                    transactions.push(tx.clone());
                    receipts.push(receipt);
                }
                TxOutcome::Excluded(reason) => excluded.push((tx.hash(), reason)),
            }
        }
        let executed = Instant::now();
        let tree = self.store.prepare_state_root(&pending)?;
        let rooted = Instant::now();
        let header = Header {
            chain_id: self.genesis.chain_id,
            parent: parent.hash(),
            height,
            view,
            proposer: key.public_key(),
            beneficiary,
            timestamp_ms: timestamp_ms.max(parent.timestamp_ms),
            tx_root: tx_root(&transactions),
            receipts_root: receipts_root(&receipts),
            state_root: tree.root(),
            randomness,
            randomness_proof,
            gas_used: receipts.last().map_or(0, |r| r.cumulative_gas_used),
            gas_limit: self.genesis.gas_limit,
            base_fee_per_gas: self.genesis.base_fee_per_gas,
        };
        let block = Block {
            header,
            transactions,
        };
        self.commit(&block, &receipts, &pending, tree)?;
        let timings = BlockTimings {
            execute: executed - started,
            state_root: rooted - executed,
            commit: rooted.elapsed(),
        };
        Ok(ProducedBlock {
            block,
            receipts,
            excluded,
            timings,
        })
    }

    /// Checks a block from elsewhere by re-executing it, and commits it if everything agrees.
    pub fn import_block(&self, block: &Block) -> Result<Vec<Receipt>, InvalidBlock> {
        let parent = self.head_header();
        let header = &block.header;
        if header.parent != parent.hash() || header.height != parent.height + 1 {
            return Err(InvalidBlock::NotChild {
                height: header.height,
                head_height: parent.height,
                head_hash: parent.hash(),
            });
        }
        let expect = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(InvalidBlock::Header(what.to_string()))
            }
        };
        expect(header.chain_id == self.genesis.chain_id, "wrong chain id")?;
        expect(
            header.timestamp_ms >= parent.timestamp_ms,
            "timestamp before the parent's",
        )?;
        expect(
            header.gas_limit == self.genesis.gas_limit,
            "wrong gas limit",
        )?;
        expect(
            header.base_fee_per_gas == self.genesis.base_fee_per_gas,
            "wrong base fee",
        )?;
        let validator = self
            .genesis
            .validators
            .iter()
            .find(|v| v.public_key == header.proposer);
        expect(
            validator.is_some_and(|v| v.beneficiary == header.beneficiary),
            "unknown proposer or wrong beneficiary",
        )?;
        expect(
            header.randomness_is_valid(),
            "randomness is not the proposer's signature",
        )?;
        let computed_tx_root = tx_root(&block.transactions);
        check("transactions root", header.tx_root, computed_tx_root)?;
        for (index, tx) in block.transactions.iter().enumerate() {
            if !tx.signature_is_valid() {
                return Err(InvalidBlock::Transaction {
                    index,
                    reason: "bad signature".into(),
                });
            }
        }
        let context = BlockContext {
            chain_id: header.chain_id,
            height: header.height,
            timestamp_secs: header.timestamp_secs(),
            gas_limit: header.gas_limit,
            base_fee_per_gas: header.base_fee_per_gas,
            beneficiary: header.beneficiary,
            randomness: header.randomness,
        };
        let state_view = self.store.state();
        let mut pending = PendingState::new(&state_view);
        let outcomes = self
            .executor
            .execute(&context, &block.transactions, &mut pending)?;
        let mut receipts = Vec::with_capacity(outcomes.len());
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                TxOutcome::Included(receipt) => receipts.push(receipt),
                TxOutcome::Excluded(reason) => {
                    return Err(InvalidBlock::Transaction { index, reason });
                }
            }
        }
        let gas_used = receipts.last().map_or(0, |r| r.cumulative_gas_used);
        check("gas used", header.gas_used, gas_used)?;
        check(
            "receipts root",
            header.receipts_root,
            receipts_root(&receipts),
        )?;
        let tree = self
            .store
            .prepare_state_root(&pending)
            .map_err(NodeError::from)?;
        check("state root", header.state_root, tree.root())?;
        self.commit(block, &receipts, &pending, tree)?;
        Ok(receipts)
    }

    fn commit(
        &self,
        block: &Block,
        receipts: &[Receipt],
        pending: &PendingState<'_>,
        tree: cairn_storage::TreeUpdate,
    ) -> Result<()> {
        let tx_hashes: Vec<B256> = block.transactions.iter().map(Transaction::hash).collect();
        let commit = BlockCommit {
            height: block.header.height,
            hash: block.hash(),
            block: &block.encode(),
            receipts: &BlockReceipts(receipts.to_vec()).encode(),
            tx_hashes: &tx_hashes,
        };
        self.store.commit_block(&commit, pending, tree)?;
        let mut head = self.head_header.lock().unwrap_or_else(|p| p.into_inner());
        *head = block.header.clone();
        Ok(())
    }

    /// Runs a call against the head state without committing anything. Fees are not charged
    /// and the sender's nonce is not checked, as for `eth_call`.
    pub fn call(&self, request: &CallRequest) -> Result<ExecutionResult> {
        let head = self.head_header();
        let max_gas = max_tx_gas(self.genesis.gas_limit);
        let view = self.store.state();
        let mut cfg = CfgEnv::new_with_spec(SPEC);
        cfg.chain_id = self.genesis.chain_id;
        cfg.disable_nonce_check = true;
        cfg.disable_fee_charge = true;
        cfg.disable_base_fee = true;
        cfg.disable_balance_check = true;
        let block = BlockEnv {
            number: U256::from(head.height + 1),
            timestamp: U256::from(head.timestamp_secs()),
            gas_limit: self.genesis.gas_limit,
            basefee: 0,
            prevrandao: Some(head.randomness),
            ..BlockEnv::default()
        };
        let tx = TxEnv {
            caller: request.from.unwrap_or_default(),
            gas_limit: request.gas.unwrap_or(max_gas).min(max_gas),
            gas_price: 0,
            kind: request.to.map_or(
                revm::primitives::TxKind::Create,
                revm::primitives::TxKind::Call,
            ),
            value: request.value.unwrap_or_default(),
            data: request.input.clone().unwrap_or_default(),
            chain_id: Some(self.genesis.chain_id),
            ..TxEnv::default()
        };
        let mut evm = Context::mainnet()
            .with_db(revm::database_interface::WrapDatabaseRef(&view))
            .with_block(block)
            .with_cfg(cfg)
            .build_mainnet();
        match evm.transact(tx) {
            Ok(result) => Ok(result.result),
            Err(EVMError::Database(e)) => Err(e.into()),
            Err(e) => Err(NodeError::Execution(e.to_string())),
        }
    }

    /// The least gas limit with which the call succeeds, found by bisection between the gas it
    /// used and the most a transaction may use (gas refunds and the 63/64 rule make the used gas a lower
    /// bound only). `Ok(Err(result))` carries the failing result when even that is not enough.
    pub fn estimate_gas(
        &self,
        request: &CallRequest,
    ) -> Result<std::result::Result<u64, ExecutionResult>> {
        let at = |gas: u64| {
            self.call(&CallRequest {
                gas: Some(gas),
                ..request.clone()
            })
        };
        let max_gas = max_tx_gas(self.genesis.gas_limit);
        let full = at(max_gas)?;
        if !full.is_success() {
            return Ok(Err(full));
        }
        let (mut low, mut high) = (full.tx_gas_used().saturating_sub(1), max_gas);
        if at(full.tx_gas_used())?.is_success() {
            return Ok(Ok(full.tx_gas_used()));
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if at(middle)?.is_success() {
                high = middle;
            } else {
                low = middle;
            }
        }
        Ok(Ok(high))
    }
}

/// A sender's nonce and balance in a state.
pub fn account_state(
    state: &impl DatabaseRef<Error = cairn_storage::StorageError>,
    address: Address,
) -> std::result::Result<SenderState, cairn_storage::StorageError> {
    Ok(state
        .basic_ref(address)?
        .map(|a| SenderState {
            nonce: a.nonce,
            balance: a.balance,
        })
        .unwrap_or_default())
}

fn check<T: PartialEq + std::fmt::Display>(
    what: &'static str,
    claimed: T,
    computed: T,
) -> std::result::Result<(), InvalidBlock> {
    if claimed == computed {
        Ok(())
    } else {
        Err(InvalidBlock::Mismatch {
            what,
            claimed: claimed.to_string(),
            computed: computed.to_string(),
        })
    }
}
