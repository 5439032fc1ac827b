//! The chain on top of the store: building blocks, importing blocks, answering queries.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_storage::{
    BlockCommit, ChangeSet, Footprint, Head, PendingState, StateView, Store, TxLocation,
};
use revm::context::result::{EVMError, ExecutionResult};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::context_interface::transaction::{AccessList, TransactionType};
use revm::{Context, DatabaseRef, ExecuteEvm, MainBuilder, MainContext};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{ChainError, Result};
use crate::genesis::{Genesis, GenesisValidator};
use cairn_evm::execution::{self, BlockContext, Exclusion, Executor, TxOutcome};
use cairn_evm::rules::{ChainRules, SenderState};
use cairn_evm::rules::{SPEC, max_tx_gas};
use cairn_primitives::block::parent_votes_hash;
use cairn_primitives::consensus::{Certificate, Validators, VoteKind, epoch_namespace};
use cairn_primitives::{
    AccountKey, Address, B256, Block, BlockReceipts, Bytes, Canonical, Header, Log, Receipt,
    Transaction, U256, receipts_root, tx_root,
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

/// Who builds a block, when, in which view, and the certificate of its parent it carries.
struct Proposing<'a> {
    key: &'a AccountKey,
    timestamp_ms: u64,
    view: u64,
    parent_votes: Option<Certificate>,
}

/// A block this node built and committed.
#[derive(Debug, Clone)]
pub struct ProducedBlock {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// The events of the system calls that opened it.
    pub system_logs: Vec<Log>,
    /// Candidates left out, with the reason.
    pub excluded: Vec<(B256, Exclusion)>,
    /// Where the time went.
    pub timings: BlockTimings,
}

/// A block executed and checked but not committed: its receipts, and the accounts it changed
/// with their state after it.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    /// The block.
    pub block: Block,
    receipts: BlockReceipts,
    changes: ChangeSet,
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
    Header(&'static str),
    /// A transaction's signature is not its sender's.
    #[error("transaction {index} is invalid: bad signature")]
    BadSignature {
        /// Its position.
        index: usize,
    },
    /// A transaction cannot run in this block.
    #[error("transaction {index} is invalid: {reason}")]
    Transaction {
        /// Its position.
        index: usize,
        /// Why.
        reason: Exclusion,
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
    Chain(#[from] ChainError),
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
    /// Accounts and slots to warm first, as an EIP-2930 or EIP-1559 transaction would (and pay
    /// for: an estimate counts them). Only Ethereum's RPC sets it: a Cairn transaction carries
    /// no access list, so `cairn_call` and `cairn_estimateGas` do not read one (an estimate
    /// with it would be short for a transaction sent without it).
    #[serde(skip)]
    pub access_list: Option<AccessList>,
}

/// The chain: a store, its genesis and an executor.
pub struct Chain {
    store: Store,
    genesis: Genesis,
    executor: Box<dyn Executor>,
    head_header: Mutex<Header>,
    committed: broadcast::Sender<Committed>,
}

/// A block that was just committed, as [`Chain::subscribe`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: B256,
}

/// Commits a subscriber may fall behind by before it misses some (it is told how many with
/// `RecvError::Lagged` and reads the head instead).
const COMMITTED_BACKLOG: usize = 64;

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
        Self::open_with(dir, genesis, executor, Footprint::Node)
    }

    /// [`Chain::open`] with a database of the given footprint.
    pub fn open_with(
        dir: &Path,
        genesis: Genesis,
        executor: Box<dyn Executor>,
        footprint: Footprint,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| ChainError::io(dir, e))?;
        let store = Store::open_with(dir, footprint)?;
        genesis.initialize(&store)?;
        let head = store
            .head()?
            .ok_or(ChainError::Incomplete("no head after genesis"))?;
        let head_header = Self::read_block(&store, head.height)?
            .ok_or(ChainError::MissingBlock(head.height))?
            .header;
        Ok(Self {
            store,
            genesis,
            executor,
            head_header: Mutex::new(head_header),
            committed: broadcast::channel(COMMITTED_BACKLOG).0,
        })
    }

    /// A stream of the blocks this chain commits from now on, bounded: a subscriber that falls
    /// more than 64 blocks behind skips to the newest (`RecvError::Lagged`). Components that act
    /// on new blocks wait on it instead of polling the head.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// How the executor's blocks ran so far.
    pub fn execution_stats(&self) -> cairn_evm::execution::ExecutionStats {
        self.executor.stats()
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

    /// The hash of the genesis block.
    pub fn genesis_hash(&self) -> Result<B256> {
        self.store
            .genesis_hash()?
            .ok_or(ChainError::Incomplete("the store has no genesis"))
    }

    /// The head record (height, hash, state root).
    pub fn head(&self) -> Result<Head> {
        self.store
            .head()?
            .ok_or(ChainError::Incomplete("the store has no head"))
    }

    /// The rules transactions are checked against.
    pub fn rules(&self) -> ChainRules {
        ChainRules {
            chain_id: self.genesis.chain_id,
            block_gas_limit: self.genesis.gas_limit,
            base_fee_per_gas: self.genesis.base_fee_per_gas,
        }
    }

    /// The underlying store (consensus records live beside the chain).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A consistent view of the head state.
    pub fn state(&self) -> StateView<'_> {
        self.store.state()
    }

    /// The state root `pending` would lead to, without committing anything.
    pub fn state_root_of(&self, pending: &PendingState<'_>) -> Result<B256> {
        Ok(self.store.prepare_state_root(pending)?.root())
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
        Ok(self.block_receipts(height)?.map(|stored| stored.receipts))
    }

    /// The receipts of the block at `height` with the events of its system calls.
    pub fn block_receipts(&self, height: u64) -> Result<Option<BlockReceipts>> {
        self.store
            .receipts(height)?
            .map(|bytes| Ok(BlockReceipts::decode(&bytes)?))
            .transpose()
    }

    /// Where a transaction was included.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<TxLocation>> {
        Ok(self.store.tx_location(hash)?)
    }

    /// Builds, executes and commits the next block from `candidates`, proposed by `key` (the
    /// single-validator dev chain, where a block is final as soon as it is built). Candidates
    /// that cannot run are left out and reported.
    pub fn produce_block(
        &self,
        key: &AccountKey,
        timestamp_ms: u64,
        candidates: &[Transaction],
    ) -> Result<ProducedBlock> {
        let parent = self.head_header();
        let state_view = self.store.state();
        let mut pending = PendingState::new(&state_view);
        let view = parent.height + 1;
        let plan = Proposing {
            key,
            timestamp_ms,
            view,
            parent_votes: None,
        };
        let (mut produced, tree) = self.build_on(&parent, &mut pending, plan, candidates)?;
        let committing = Instant::now();
        let receipts = BlockReceipts {
            receipts: produced.receipts.clone(),
            system_logs: produced.system_logs.clone(),
        };
        self.commit(&produced.block, &receipts, &pending, tree, None)?;
        produced.timings.commit = committing.elapsed();
        Ok(produced)
    }

    /// Builds (without committing) a block for consensus `view` on top of `parents`: executed
    /// but uncommitted blocks, oldest first, the first a child of the head (none: build on the
    /// head).
    /// `parent_votes` is the certificate that notarized or finalized the parent, which the block
    /// carries (see [`Block::parent_votes`]).
    pub fn build_block(
        &self,
        key: &AccountKey,
        timestamp_ms: u64,
        view: u64,
        parents: &[&ExecutedBlock],
        parent_votes: Option<Certificate>,
        candidates: &[Transaction],
    ) -> Result<(ProducedBlock, ExecutedBlock), InvalidBlock> {
        let state_view = self.store.state();
        let (before, parent_header) = self.layer(parents)?;
        let mut pending = PendingState::with_changes(&state_view, before.clone());
        let plan = Proposing {
            key,
            timestamp_ms,
            view,
            parent_votes,
        };
        let (produced, _) = self.build_on(&parent_header, &mut pending, plan, candidates)?;
        let executed = ExecutedBlock {
            block: produced.block.clone(),
            receipts: BlockReceipts {
                receipts: produced.receipts.clone(),
                system_logs: produced.system_logs.clone(),
            },
            changes: pending.changes_since(&before),
        };
        Ok((produced, executed))
    }

    /// Checks `block` by executing it on top of `parents` (as for [`Chain::build_block`]),
    /// without committing anything.
    pub fn verify_block(
        &self,
        parents: &[&ExecutedBlock],
        block: &Block,
    ) -> Result<ExecutedBlock, InvalidBlock> {
        self.verify_block_with(parents, block, &BTreeSet::new())
    }

    /// [`Chain::verify_block`] for a block some of whose transactions this node checked
    /// already: `admitted` names them by hash (its mempool took them, after checking their
    /// signatures; a hash names the signed bytes, signature included), and their signatures
    /// are not checked a second time. Every other check is the same.
    pub fn verify_block_with(
        &self,
        parents: &[&ExecutedBlock],
        block: &Block,
        admitted: &BTreeSet<B256>,
    ) -> Result<ExecutedBlock, InvalidBlock> {
        let state_view = self.store.state();
        let (before, parent_header) = self.layer(parents)?;
        let mut pending = PendingState::with_changes(&state_view, before.clone());
        let (receipts, _) = self.execute_checked(&parent_header, block, &mut pending, admitted)?;
        Ok(ExecutedBlock {
            block: block.clone(),
            receipts,
            changes: pending.changes_since(&before),
        })
    }

    /// Commits a block executed by [`Chain::verify_block`] or [`Chain::build_block`] without
    /// running it again; it must be the head's child. `finality` as for [`Chain::import_final`].
    pub fn commit_executed(
        &self,
        executed: &ExecutedBlock,
        finality: Option<&[u8]>,
    ) -> Result<(), InvalidBlock> {
        let state_view = self.store.state();
        let (before, _) = self.layer(&[executed])?;
        let pending = PendingState::with_changes(&state_view, before);
        let tree = self
            .store
            .prepare_state_root(&pending)
            .map_err(ChainError::from)?;
        check("state root", executed.block.header.state_root, tree.root())?;
        self.commit(
            &executed.block,
            &executed.receipts,
            &pending,
            tree,
            finality,
        )?;
        Ok(())
    }

    /// The changes of `blocks` (executed, uncommitted, oldest first, the first a child of the
    /// head) folded into one set, and the last one's header (the head's if there are none).
    fn layer(&self, blocks: &[&ExecutedBlock]) -> Result<(ChangeSet, Header), InvalidBlock> {
        let mut parent = self.head_header();
        for executed in blocks {
            let header = &executed.block.header;
            if header.parent != parent.hash() || header.height != parent.height + 1 {
                return Err(InvalidBlock::NotChild {
                    height: header.height,
                    head_height: parent.height,
                    head_hash: parent.hash(),
                });
            }
            parent = header.clone();
        }
        let changes = ChangeSet::fold(blocks.iter().map(|e| &e.changes));
        Ok((changes, parent))
    }

    fn build_on(
        &self,
        parent: &Header,
        pending: &mut PendingState<'_>,
        plan: Proposing<'_>,
        candidates: &[Transaction],
    ) -> Result<(ProducedBlock, cairn_storage::TreeUpdate)> {
        let Proposing {
            key,
            timestamp_ms,
            view,
            parent_votes,
        } = plan;
        let height = parent.height + 1;
        // The leader's own certificate, checked when it arrived: its signers as they are.
        let active_keys = match &parent_votes {
            Some(votes) => self.signer_keys(parent.height, votes)?,
            None => Vec::new(),
        };
        let (beacon, randomness) =
            cairn_primitives::beacon::prove(key, self.genesis.chain_id, height, &parent.randomness);
        let public_key = key.public_key();
        let beneficiary = self
            .validators_at(height)?
            .iter()
            .find(|v| v.public_key == public_key)
            .map_or_else(|| key.address(), |v| v.beneficiary);
        let timestamp_ms = timestamp_ms.max(parent.timestamp_ms);
        let context = BlockContext {
            chain_id: self.genesis.chain_id,
            height,
            timestamp_secs: timestamp_ms / 1000,
            gas_limit: self.genesis.gas_limit,
            base_fee_per_gas: self.genesis.base_fee_per_gas,
            beneficiary,
            randomness,
        };
        let started = Instant::now();
        let system_logs = self.begin_block(&context, &active_keys, pending)?;
        let outcomes = self.executor.execute(&context, candidates, pending)?;
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
        let tree = self.store.prepare_state_root(pending)?;
        let rooted = Instant::now();
        let header = Header {
            chain_id: self.genesis.chain_id,
            parent: parent.hash(),
            height,
            view,
            proposer: key.public_key(),
            beneficiary,
            timestamp_ms,
            tx_root: tx_root(&receipts.iter().map(|r| r.tx_hash).collect::<Vec<_>>()),
            receipts_root: receipts_root(&receipts, &system_logs),
            state_root: tree.root(),
            randomness,
            vrf_output: beacon.output,
            vrf_proof: beacon.proof,
            parent_votes_hash: parent_votes_hash(parent_votes.as_ref()),
            gas_used: receipts.last().map_or(0, |r| r.cumulative_gas_used),
            gas_limit: self.genesis.gas_limit,
            base_fee_per_gas: self.genesis.base_fee_per_gas,
        };
        let block = Block {
            header,
            transactions,
            parent_votes,
        };
        let timings = BlockTimings {
            execute: executed - started,
            state_root: rooted - executed,
            commit: Duration::ZERO,
        };
        Ok((
            ProducedBlock {
                block,
                receipts,
                system_logs,
                excluded,
                timings,
            },
            tree,
        ))
    }

    /// Checks a block from elsewhere by re-executing it, and commits it if everything agrees.
    pub fn import_block(&self, block: &Block) -> Result<Vec<Receipt>, InvalidBlock> {
        self.import_final(block, None)
    }

    /// [`Chain::import_block`] for a finalized block, storing the encoded certificate that
    /// finalized it (if it has one of its own) in the same write batch.
    pub fn import_final(
        &self,
        block: &Block,
        finality: Option<&[u8]>,
    ) -> Result<Vec<Receipt>, InvalidBlock> {
        let parent = self.head_header();
        let state_view = self.store.state();
        let mut pending = PendingState::new(&state_view);
        let (receipts, tree) =
            self.execute_checked(&parent, block, &mut pending, &BTreeSet::new())?;
        self.commit(block, &receipts, &pending, tree, finality)?;
        Ok(receipts.receipts)
    }

    /// Checks a block's header against its parent, executes its transactions into `pending`
    /// and checks the results against the header. The signatures of the transactions in
    /// `admitted` were checked already (see [`Chain::verify_block_with`]).
    fn execute_checked(
        &self,
        parent: &Header,
        block: &Block,
        pending: &mut PendingState<'_>,
        admitted: &BTreeSet<B256>,
    ) -> Result<(BlockReceipts, cairn_storage::TreeUpdate), InvalidBlock> {
        let header = &block.header;
        if header.parent != parent.hash() || header.height != parent.height + 1 {
            return Err(InvalidBlock::NotChild {
                height: header.height,
                head_height: parent.height,
                head_hash: parent.hash(),
            });
        }
        let expect = |ok: bool, what: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(InvalidBlock::Header(what))
            }
        };
        expect(header.chain_id == self.genesis.chain_id, "wrong chain id")?;
        expect(header.view > parent.view, "view not after the parent's")?;
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
        let validators = self.validators_at(header.height)?;
        let validator = validators.iter().find(|v| v.public_key == header.proposer);
        expect(
            validator.is_some_and(|v| v.beneficiary == header.beneficiary),
            "unknown proposer or wrong beneficiary",
        )?;
        expect(
            validator.is_some_and(|v| header.randomness_is_valid(&v.vrf_key, &parent.randomness)),
            "randomness is not the proposer's VRF of the parent's",
        )?;
        // Before any hashing or signature check: an oversized block costs its sender nothing
        // else of ours.
        expect(
            block.transaction_bytes() <= cairn_primitives::MAX_BLOCK_TRANSACTION_BYTES,
            "transactions over the block byte limit",
        )?;
        // Every transaction burns at least 21,000 gas: a block with more than its gas limit
        // holds is refused before any signature is checked (an Ethereum one costs a recovery).
        expect(
            block.transactions.len() as u64 <= header.gas_limit / cairn_evm::rules::MIN_TX_GAS,
            "more transactions than the gas limit can hold",
        )?;
        let tx_hashes: Vec<B256> = block.transactions.iter().map(Transaction::hash).collect();
        check("transactions root", header.tx_root, tx_root(&tx_hashes))?;
        for (index, (tx, hash)) in block.transactions.iter().zip(&tx_hashes).enumerate() {
            if !admitted.contains(hash) && !tx.signature_is_valid() {
                return Err(InvalidBlock::BadSignature { index });
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
        let active_keys = self.checked_parent_votes(block, parent)?;
        let system_logs = self.begin_block(&context, &active_keys, pending)?;
        let outcomes = self
            .executor
            .execute(&context, &block.transactions, pending)
            .map_err(ChainError::from)?;
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
            receipts_root(&receipts, &system_logs),
        )?;
        let tree = self
            .store
            .prepare_state_root(pending)
            .map_err(ChainError::from)?;
        check("state root", header.state_root, tree.root())?;
        Ok((
            BlockReceipts {
                receipts,
                system_logs,
            },
            tree,
        ))
    }

    /// The validators of the epoch holding `height` as consensus counts them: consensus keys
    /// and voting power, the whole tokens each has bonded.
    pub fn consensus_validators(&self, height: u64) -> Result<Validators> {
        Ok(Validators::new(self.validators_at(height)?.iter().map(
            |v| {
                let power = v.stake / U256::from(crate::genesis::TOKEN);
                (v.public_key, u64::try_from(power).unwrap_or(u64::MAX))
            },
        )))
    }

    /// The consensus keys of a certificate's signers, in the set of the epoch holding the
    /// certified block at `height`.
    fn signer_keys(&self, height: u64, votes: &Certificate) -> Result<Vec<[u8; 32]>> {
        let validators = self.validators_at(height)?;
        Ok(votes
            .signers()
            .filter_map(|index| validators.get(index as usize).map(|v| v.public_key))
            .collect())
    }

    /// Checks the certificate a block carries for its parent (if any): it names the parent, it
    /// is a notarization or finalization from the parent's view on, and more than two thirds
    /// of the power of the parent's epoch signed it under that epoch's namespace. Its signers'
    /// keys are what the block records as active.
    fn checked_parent_votes(
        &self,
        block: &Block,
        parent: &Header,
    ) -> Result<Vec<[u8; 32]>, InvalidBlock> {
        let header = &block.header;
        if header.parent_votes_hash != parent_votes_hash(block.parent_votes.as_ref()) {
            return Err(InvalidBlock::Header(
                "parent votes do not match the header's hash of them",
            ));
        }
        let Some(votes) = &block.parent_votes else {
            return Ok(Vec::new());
        };
        let names_parent = matches!(votes.kind, VoteKind::Notarize(b) | VoteKind::Finalize(b) if b == header.parent);
        let epoch = parent.height / self.genesis.epoch_length;
        let namespace = epoch_namespace(&self.genesis.consensus_domain(), epoch);
        let valid = names_parent
            && votes.view >= parent.view
            && votes.is_valid(&namespace, &self.consensus_validators(parent.height)?);
        if !valid {
            return Err(InvalidBlock::Header(
                "parent votes are not a quorum's certificate of the parent",
            ));
        }
        Ok(self.signer_keys(parent.height, votes)?)
    }

    /// The validators of the epoch holding `height`: the genesis set for epoch 0, afterwards
    /// the set read from the Staking contract when the previous epoch's last block was
    /// committed.
    pub fn validators_at(&self, height: u64) -> Result<Vec<GenesisValidator>> {
        let epoch = height / self.genesis.epoch_length;
        if epoch == 0 {
            return Ok(self.genesis.validators.clone());
        }
        let bytes = self
            .store
            .validator_set(epoch)?
            .ok_or(ChainError::ValidatorSetUnknown { epoch })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ChainError::Codec(cairn_primitives::CodecError::Malformed {
                what: "stored validator set",
                detail: e.to_string(),
            })
        })
    }

    /// The validators of the epoch after the one `height` ends, read from the Staking contract
    /// in `state` (the state after that block): every registered validator bonded at least the
    /// minimum, with a consensus key and its VRF key, in registration order. A chain without the
    /// contracts, or a read that yields nobody, keeps the current set.
    fn next_validators(
        &self,
        state: &impl DatabaseRef<Error = cairn_storage::StorageError>,
        height: u64,
    ) -> Result<Vec<GenesisValidator>> {
        use alloy_sol_types::SolCall;
        use cairn_reward_contracts::bindings::Staking;

        let current = self.validators_at(height)?;
        let Some(contracts) = &self.genesis.contracts else {
            return Ok(current);
        };
        let request = CallRequest {
            to: Some(cairn_reward_contracts::STAKING),
            input: Some(Staking::validatorsCall {}.abi_encode().into()),
            ..CallRequest::default()
        };
        let result = self.call_on(state, &request)?;
        if !result.is_success() {
            tracing::warn!(
                height,
                "Staking.validators() failed; keeping the validator set"
            );
            return Ok(current);
        }
        let returned =
            Staking::validatorsCall::abi_decode_returns(&result.into_output().unwrap_or_default())
                .map_err(|e| ChainError::ContractAnswer {
                    call: "Staking.validators()",
                    detail: e.to_string(),
                })?;
        let mut next: Vec<GenesisValidator> = Vec::new();
        for (((address, bond), key), vrf_key) in returned
            .list
            .iter()
            .zip(&returned.bonds)
            .zip(&returned.keys)
            .zip(&returned.vrfKeys)
        {
            // A VRF key that is no key could sign no block: such a validator would hold a seat
            // and withhold every proposal for free.
            let usable = *bond >= contracts.min_validator_stake
                && !key.is_zero()
                && cairn_primitives::beacon::is_vrf_key(&vrf_key.0)
                && next.iter().all(|v| v.public_key != key.0);
            if usable {
                next.push(GenesisValidator {
                    public_key: key.0,
                    beneficiary: *address,
                    stake: *bond,
                    vrf_key: vrf_key.0,
                });
            }
        }
        Ok(if next.is_empty() { current } else { next })
    }

    /// The chain's own calls at the start of a block (see [`execution::begin_block`]);
    /// `active_keys` are the consensus keys the block shows voting. Returns their events.
    fn begin_block(
        &self,
        context: &BlockContext,
        active_keys: &[[u8; 32]],
        pending: &mut PendingState<'_>,
    ) -> Result<Vec<Log>> {
        let opening =
            execution::begin_block(context, self.genesis.epoch_length, active_keys, pending)?;
        for failure in opening.failures {
            tracing::warn!(height = context.height, "{failure}");
        }
        Ok(opening.logs)
    }

    fn commit(
        &self,
        block: &Block,
        receipts: &BlockReceipts,
        pending: &PendingState<'_>,
        tree: cairn_storage::TreeUpdate,
        finality: Option<&[u8]>,
    ) -> Result<()> {
        // Each receipt carries its transaction's hash: no need to hash the block again.
        let tx_hashes: Vec<B256> = receipts.receipts.iter().map(|r| r.tx_hash).collect();
        let height = block.header.height;
        let epoch_length = self.genesis.epoch_length;
        let next_validators = if (height + 1).is_multiple_of(epoch_length) {
            let set = self.next_validators(pending, height)?;
            let encoded = serde_json::to_vec(&set).map_err(|e| ChainError::Json {
                path: "the next validator set".into(),
                source: e,
            })?;
            Some(((height + 1) / epoch_length, encoded))
        } else {
            None
        };
        let commit = BlockCommit {
            height: block.header.height,
            hash: block.hash(),
            block: &block.encode(),
            receipts: &receipts.encode(),
            tx_hashes: &tx_hashes,
            finality,
            next_validators: next_validators
                .as_ref()
                .map(|(epoch, set)| (*epoch, set.as_slice())),
        };
        self.store.commit_block(&commit, pending, tree)?;
        let mut head = self.head_header.lock().unwrap_or_else(|p| p.into_inner());
        *head = block.header.clone();
        drop(head);
        // Nobody listening is no error: subscribers come and go.
        let _ = self.committed.send(Committed {
            height,
            hash: block.hash(),
        });
        Ok(())
    }

    /// Runs a call against the head state without committing anything. Fees are not charged
    /// and the sender's nonce is not checked, as for `eth_call`.
    pub fn call(&self, request: &CallRequest) -> Result<ExecutionResult> {
        self.call_on(&self.store.state(), request)
    }

    /// [`Chain::call`] against any state, such as a block's pending changes.
    fn call_on(
        &self,
        state: &impl DatabaseRef<Error = cairn_storage::StorageError>,
        request: &CallRequest,
    ) -> Result<ExecutionResult> {
        let head = self.head_header();
        let max_gas = max_tx_gas(self.genesis.gas_limit);
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
        let mut tx = TxEnv {
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
        if let Some(access_list) = &request.access_list {
            tx.access_list = access_list.clone();
            tx.tx_type = TransactionType::Eip2930 as u8;
        }
        let mut evm = Context::mainnet()
            .with_db(revm::database_interface::WrapDatabaseRef(state))
            .with_block(block)
            .with_cfg(cfg)
            .build_mainnet()
            .with_precompiles(cairn_evm::precompiles::precompiles());
        match evm.transact(tx) {
            Ok(result) => Ok(result.result),
            Err(EVMError::Database(e)) => Err(e.into()),
            Err(e) => Err(cairn_evm::ExecutionError::Evm {
                detail: e.to_string(),
            }
            .into()),
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

#[cfg(test)]
mod tests {
    use revm::DatabaseRef;

    use super::*;
    use crate::genesis::{dev_account, dev_validator};
    use cairn_evm::execution::Sequential;
    use cairn_primitives::{TxBody, TxStatus};

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Stores the first calldata word in slot 0 and logs it.
    const STORE_AND_LOG: &[u8] = &[
        0x60, 0x00, 0x35, 0x80, 0x60, 0x00, 0x55, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xa0,
        0x00,
    ];
    /// Always reverts.
    const REVERT: &[u8] = &[0x60, 0x00, 0x60, 0x00, 0xfd];
    /// Returns the balance of the block's beneficiary.
    const COINBASE_BALANCE: &[u8] = &[0x41, 0x31, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];

    /// Init code that deploys `runtime`.
    fn deploy(runtime: &[u8]) -> Bytes {
        let len = u8::try_from(runtime.len()).unwrap();
        let mut code = vec![
            0x60, len, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3,
        ];
        code.extend_from_slice(runtime);
        code.into()
    }

    fn open(dir: &Path) -> Chain {
        Chain::open(dir, Genesis::dev(), Box::new(Sequential)).unwrap()
    }

    fn tx(
        sender: u32,
        nonce: u64,
        to: Option<Address>,
        input: Bytes,
        gas_limit: u64,
    ) -> Transaction {
        TxBody {
            chain_id: Genesis::dev().chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1,
            to,
            value: U256::from(1000),
            input,
        }
        .sign(&dev_account(sender))
    }

    fn produce(chain: &Chain, txs: &[Transaction]) -> ProducedBlock {
        let time = chain.head_header().timestamp_ms + 1000;
        chain.produce_block(&dev_validator(), time, txs).unwrap()
    }

    fn balance(chain: &Chain, address: Address) -> U256 {
        chain.sender_state(address).unwrap().balance
    }

    #[test]
    fn blocks_on_uncommitted_parents_commit_without_re_execution_to_the_same_state() -> TestResult {
        let (proposer_dir, voter_dir, replay_dir) = (
            tempfile::tempdir()?,
            tempfile::tempdir()?,
            tempfile::tempdir()?,
        );
        let (proposer, voter, replay) = (
            open(proposer_dir.path()),
            open(voter_dir.path()),
            open(replay_dir.path()),
        );
        let key = dev_validator();
        let time = proposer.head_header().timestamp_ms + 1000;
        let to = Some(Address::repeat_byte(9));
        // Two blocks built on each other before either is committed, touching one sender and a
        // contract's storage in both.
        let (first, built_first) = proposer.build_block(
            &key,
            time,
            1,
            &[],
            None,
            &[
                tx(0, 0, None, deploy(STORE_AND_LOG), 200_000),
                tx(1, 0, to, Bytes::new(), 21_000),
            ],
        )?;
        let contract = first.receipts[0].contract_address.ok_or("no contract")?;
        let word = Bytes::from(vec![7u8; 32]);
        // The second carries the votes that notarized the first: the chain checks them.
        let namespace = epoch_namespace(&proposer.genesis().consensus_domain(), 0);
        let notarization = |block: B256| {
            let vote = cairn_primitives::consensus::Vote::sign(
                &key,
                0,
                &namespace,
                1,
                VoteKind::Notarize(block),
            );
            Certificate {
                view: 1,
                kind: vote.kind,
                signatures: vec![(0, vote.signature)],
            }
        };
        let second_txs = [
            tx(1, 1, to, Bytes::new(), 21_000),
            tx(2, 0, Some(contract), word, 100_000),
        ];
        let (second, _) = proposer.build_block(
            &key,
            time + 1000,
            2,
            &[&built_first],
            Some(notarization(first.block.hash())),
            &second_txs,
        )?;
        // Votes for another block, or votes altered after the header was made: refused.
        let (other_votes, _) = proposer.build_block(
            &key,
            time + 1000,
            2,
            &[&built_first],
            Some(notarization(B256::repeat_byte(3))),
            &second_txs,
        )?;
        let mut altered = second.block.clone();
        if let Some(votes) = &mut altered.parent_votes {
            votes.view = 2;
        }
        assert_eq!(second.block.transactions.len(), 2);

        // A voter checks both before either is final, then commits them from what it executed.
        let checked_first = voter.verify_block(&[], &first.block)?;
        for bad in [&other_votes.block, &altered] {
            assert!(
                matches!(
                    voter.verify_block(&[&checked_first], bad),
                    Err(InvalidBlock::Header(_))
                ),
                "bad parent votes accepted"
            );
        }
        let checked_second = voter.verify_block(&[&checked_first], &second.block)?;
        assert!(
            matches!(
                voter.commit_executed(&checked_second, None),
                Err(InvalidBlock::NotChild { .. })
            ),
            "a block is committed only on its parent"
        );
        voter.commit_executed(&checked_first, None)?;
        voter.commit_executed(&checked_second, Some(b"certificate"))?;

        // Re-executing the same blocks from scratch gives the same chain.
        replay.import_block(&first.block)?;
        replay.import_block(&second.block)?;
        assert_eq!(voter.head()?.state_root, replay.head()?.state_root);
        assert_eq!(voter.head()?.state_root, second.block.header.state_root);
        assert_eq!(voter.receipts(2)?, replay.receipts(2)?);
        assert_eq!(
            voter.state().storage_ref(contract, U256::ZERO)?,
            U256::from_be_slice(&[7u8; 32])
        );
        assert_eq!(
            voter.store().next_finality(1)?,
            Some((2, b"certificate".to_vec()))
        );
        Ok(())
    }

    #[test]
    fn fees_reach_the_beneficiary_only_after_the_last_transaction() -> TestResult {
        let dir = tempfile::tempdir()?;
        let chain = open(dir.path());
        let beneficiary = dev_validator().address();
        let created = produce(&chain, &[tx(0, 0, None, deploy(COINBASE_BALANCE), 200_000)]);
        let contract = created.receipts[0].contract_address.ok_or("no contract")?;
        let before = balance(&chain, beneficiary);
        assert!(!before.is_zero(), "the deployment's fee was paid");

        let block = produce(
            &chain,
            &[
                tx(1, 0, Some(Address::repeat_byte(9)), Bytes::new(), 21_000),
                tx(2, 0, Some(contract), Bytes::new(), 100_000),
            ],
        );
        assert_eq!(block.receipts.len(), 2);
        let seen_by_second = U256::from_be_slice(&block.receipts[1].output);
        assert_eq!(
            seen_by_second, before,
            "the first transaction's fee was not yet paid"
        );
        let fees: U256 = block.receipts.iter().map(|r| r.fee).sum();
        assert_eq!(balance(&chain, beneficiary), before + fees);
        // Effective price = base fee + tip of 1 wei.
        assert_eq!(block.receipts[0].fee, U256::from(21_000u64 * 1_000_000_001));
        Ok(())
    }

    #[test]
    fn contracts_run_and_failures_are_recorded_or_excluded() -> TestResult {
        let dir = tempfile::tempdir()?;
        let chain = open(dir.path());
        let created = produce(
            &chain,
            &[
                tx(0, 0, None, deploy(STORE_AND_LOG), 200_000),
                tx(0, 1, None, deploy(REVERT), 200_000),
            ],
        );
        let store = created.receipts[0].contract_address.ok_or("no contract")?;
        let reverter = created.receipts[1].contract_address.ok_or("no contract")?;

        let word = B256::with_last_byte(42);
        let sender = dev_account(0).address();
        let before = balance(&chain, sender);
        let block = produce(
            &chain,
            &[
                tx(0, 2, Some(store), word.0.to_vec().into(), 100_000),
                tx(0, 3, Some(reverter), Bytes::new(), 100_000),
                // Exactly the intrinsic gas: the call itself runs out of gas.
                tx(
                    0,
                    4,
                    Some(store),
                    word.0.to_vec().into(),
                    cairn_evm::rules::intrinsic_gas(&tx(
                        0,
                        4,
                        Some(store),
                        word.0.to_vec().into(),
                        0,
                    )),
                ),
                // Nonce 9 cannot run after 4: left out, changing nothing.
                tx(0, 9, Some(store), Bytes::new(), 100_000),
            ],
        );
        let statuses: Vec<&TxStatus> = block.receipts.iter().map(|r| &r.status).collect();
        assert_eq!(statuses[..2], [&TxStatus::Success, &TxStatus::Revert]);
        assert!(matches!(statuses[2], TxStatus::Halt(reason) if reason.contains("OutOfGas")));
        assert_eq!(block.block.transactions.len(), 3);
        assert_eq!(block.excluded.len(), 1);
        assert_eq!(block.receipts[0].logs[0].data.as_ref(), word.as_slice());
        assert_eq!(
            chain.state().storage_ref(store, U256::ZERO)?,
            U256::from(42)
        );
        assert_eq!(chain.sender_state(sender)?.nonce, 5);
        let spent: U256 = block.receipts.iter().map(|r| r.fee).sum::<U256>() + U256::from(1000);
        // Value moves only on success: the reverted and halted calls kept their 1000 wei.
        assert_eq!(balance(&chain, sender), before - spent);
        Ok(())
    }

    /// Zero-byte calldata is cheap: without a byte limit a block could carry megabytes of it,
    /// and a run of such blocks would outgrow what a sync response can carry.
    #[test]
    fn attack_a_block_is_held_to_its_byte_limit() -> TestResult {
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let producer = open(a.path());
        let importer = open(b.path());
        let junk = Bytes::from(vec![0u8; 120 * 1024]);
        let gas = cairn_evm::rules::intrinsic_gas(&tx(0, 0, None, junk.clone(), 0)) + 10_000;
        let bulky: Vec<Transaction> = (0..40)
            .map(|nonce| tx(0, nonce, Some(Address::repeat_byte(7)), junk.clone(), gas))
            .collect();
        let size = bulky[0].encoded_len();
        let fit = cairn_primitives::MAX_BLOCK_TRANSACTION_BYTES / size;
        assert!(fit < bulky.len() && u64::try_from(bulky.len())? * gas <= 60_000_000);
        let produced = produce(&producer, &bulky);
        assert_eq!(produced.block.transactions.len(), fit);
        assert!(
            produced.block.transaction_bytes() <= cairn_primitives::MAX_BLOCK_TRANSACTION_BYTES
        );
        assert!(
            produced
                .excluded
                .iter()
                .all(|(_, reason)| *reason == Exclusion::NoRoom),
            "the rest waits for a later block"
        );
        let mut oversized = produced.block.clone();
        oversized.transactions.push(bulky[fit].clone());
        let refused = importer.import_block(&oversized).unwrap_err();
        assert!(
            refused.to_string().contains("byte limit"),
            "unexpected refusal: {refused}"
        );
        assert_eq!(importer.head()?.height, 0);
        importer.import_block(&produced.block)?;
        Ok(())
    }

    #[test]
    fn attack_more_transactions_than_the_gas_limit_holds_are_refused_before_signatures()
    -> TestResult {
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let producer = open(a.path());
        let importer = open(b.path());
        let transfer = tx(0, 0, Some(Address::repeat_byte(7)), Bytes::new(), 21_000);
        let produced = produce(&producer, std::slice::from_ref(&transfer));
        let mut stuffed = produced.block.clone();
        let most = stuffed.header.gas_limit / cairn_evm::rules::MIN_TX_GAS;
        // Copies with broken signatures: refused for their number, none of them checked.
        let mut forged = transfer;
        forged.body.value = U256::from(1);
        stuffed.transactions = vec![forged; usize::try_from(most)? + 1];
        let refused = importer.import_block(&stuffed).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("more transactions than the gas limit can hold"),
            "unexpected refusal: {refused}"
        );
        assert_eq!(importer.head()?.height, 0);
        Ok(())
    }

    /// A voter skips the signature checks of the transactions its mempool admitted (by hash,
    /// which names the signed bytes); a forged one, whose hash no mempool holds, is still
    /// refused, whatever else the block holds.
    #[test]
    fn attack_a_forged_transaction_beside_admitted_ones_is_refused() -> TestResult {
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let producer = open(a.path());
        let voter = open(b.path());
        let txs: Vec<Transaction> = (0..3)
            .map(|s| tx(s, 0, Some(Address::repeat_byte(9)), Bytes::new(), 21_000))
            .collect();
        let produced = produce(&producer, &txs);
        let admitted: BTreeSet<B256> = txs.iter().map(Transaction::hash).collect();
        voter.verify_block_with(&[], &produced.block, &admitted)?;
        let mut forged_block = produced.block.clone();
        let mut forged = txs[2].clone();
        forged.body.value = U256::from(2);
        forged_block.transactions[2] = forged;
        let hashes: Vec<B256> = forged_block
            .transactions
            .iter()
            .map(Transaction::hash)
            .collect();
        forged_block.header.tx_root = tx_root(&hashes);
        assert!(
            !admitted.contains(&hashes[2]),
            "a changed body is another hash"
        );
        assert!(matches!(
            voter.verify_block_with(&[], &forged_block, &admitted),
            Err(InvalidBlock::BadSignature { index: 2 })
        ));
        Ok(())
    }

    #[test]
    fn imported_blocks_reexecute_to_the_same_state_and_tampering_is_refused() -> TestResult {
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let producer = open(a.path());
        let importer = open(b.path());
        let mut blocks = Vec::new();
        for round in 0..3u64 {
            let txs: Vec<Transaction> = (0..4)
                .map(|s| {
                    tx(
                        s,
                        round,
                        Some(Address::repeat_byte(s as u8 + 1)),
                        Bytes::new(),
                        21_000,
                    )
                })
                .collect();
            blocks.push(produce(&producer, &txs).block);
        }
        let tampered = |change: fn(&mut Block)| {
            let mut block = blocks[0].clone();
            change(&mut block);
            block
        };
        let bad_blocks = [
            tampered(|b| b.header.state_root = B256::repeat_byte(1)),
            tampered(|b| b.transactions[0].body.value = U256::from(1)),
            tampered(|b| b.header.randomness = B256::repeat_byte(1)),
            tampered(|b| b.header.gas_used += 1),
            tampered(|b| b.header.height = 5),
        ];
        for bad in &bad_blocks {
            assert!(importer.import_block(bad).is_err());
            assert_eq!(
                importer.head()?.height,
                0,
                "a refused block changed the head"
            );
        }
        for block in &blocks {
            importer.import_block(block)?;
        }
        assert_eq!(importer.head()?, producer.head()?);
        assert!(
            importer.import_block(&blocks[0]).is_err(),
            "a block cannot be imported twice"
        );
        Ok(())
    }

    /// Why senders add a margin: `stake()` estimated in an epoch's last block and included in
    /// the next epoch's first block opens the staker's fresh-stake record for the new epoch,
    /// which the estimate never wrote. The exact estimate runs out of gas there; the default
    /// margin does not.
    #[test]
    fn a_stake_estimated_before_an_epoch_boundary_needs_the_default_margin_after_it() -> TestResult
    {
        use alloy_sol_types::SolCall;
        use cairn_evm::rules::{DEFAULT_GAS_MARGIN_PERCENT, gas_with_margin};
        use cairn_reward_contracts::bindings::Staking;

        let dir = tempfile::tempdir()?;
        let chain = open(dir.path());
        let epoch_length = chain.genesis().epoch_length;
        while chain.head()?.height + 2 < epoch_length {
            produce(&chain, &[]);
        }
        let stake = Bytes::from(Staking::stakeCall {}.abi_encode());
        let estimate = chain
            .estimate_gas(&CallRequest {
                from: Some(dev_account(3).address()),
                to: Some(cairn_reward_contracts::STAKING),
                value: Some(U256::from(1000)),
                input: Some(stake.clone()),
                ..CallRequest::default()
            })?
            .map_err(|r| format!("{r:?}"))?;
        // The estimate ran in the context of block `epoch_length - 1`; the next epoch begins
        // one block later.
        produce(&chain, &[]);
        let staking = Some(cairn_reward_contracts::STAKING);
        let included = produce(
            &chain,
            &[
                tx(3, 0, staking, stake.clone(), estimate),
                tx(
                    4,
                    0,
                    staking,
                    stake,
                    gas_with_margin(estimate, DEFAULT_GAS_MARGIN_PERCENT),
                ),
            ],
        );
        assert_eq!(included.block.header.height, epoch_length);
        assert!(
            matches!(included.receipts[0].status, TxStatus::Halt(_)),
            "the exact estimate sufficed: {:?}",
            included.receipts[0]
        );
        assert_eq!(included.receipts[1].status, TxStatus::Success);
        Ok(())
    }

    #[test]
    fn calls_read_state_and_gas_estimates_are_tight() -> TestResult {
        let dir = tempfile::tempdir()?;
        let chain = open(dir.path());
        let created = produce(&chain, &[tx(0, 0, None, deploy(STORE_AND_LOG), 200_000)]);
        let store = created.receipts[0].contract_address.ok_or("no contract")?;
        let transfer = CallRequest {
            to: Some(Address::repeat_byte(3)),
            ..Default::default()
        };
        assert_eq!(chain.estimate_gas(&transfer)?.ok(), Some(21_000));
        // An access list is paid for: 2,400 gas an account, 1,900 a slot.
        let listed = CallRequest {
            access_list: Some(AccessList(vec![
                revm::context_interface::transaction::AccessListItem {
                    address: Address::repeat_byte(3),
                    storage_keys: vec![B256::ZERO],
                },
            ])),
            ..transfer.clone()
        };
        assert_eq!(
            chain.estimate_gas(&listed)?.ok(),
            Some(21_000 + 2_400 + 1_900)
        );

        let request = CallRequest {
            from: Some(dev_account(1).address()),
            to: Some(store),
            input: Some(B256::with_last_byte(7).0.to_vec().into()),
            ..Default::default()
        };
        let estimate = chain
            .estimate_gas(&request)?
            .map_err(|r| format!("{r:?}"))?;
        assert!(
            chain
                .call(&CallRequest {
                    gas: Some(estimate),
                    ..request.clone()
                })?
                .is_success()
        );
        assert!(
            !chain
                .call(&CallRequest {
                    gas: Some(estimate - 1),
                    ..request.clone()
                })?
                .is_success()
        );
        // A call changes nothing.
        assert_eq!(chain.state().storage_ref(store, U256::ZERO)?, U256::ZERO);
        Ok(())
    }
}
