//! Executing transactions on revm.
//!
//! An [`Executor`] runs a block's transactions in order against a [`PendingState`] and returns
//! one [`TxOutcome`] per transaction. Fees are not paid to the block's beneficiary transaction
//! by transaction (revm's default): [`DeferredFeeHandler`] skips that step and the executor
//! credits the sum once, after the last transaction. The beneficiary account is therefore never
//! read or written by a transaction because of fees, so it is no conflict between transactions
//! for a parallel executor.

use std::marker::PhantomData;

use cairn_storage::PendingState;
use revm::context::result::{EVMError, ExecutionResult, InvalidTransaction, Output};
use revm::context::{BlockEnv, CfgEnv, ContextSetters, ContextTr, JournalTr, TxEnv};
use revm::handler::{EvmTr, EvmTrError, FrameResult, FrameTr, Handler};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::interpreter::interpreter_action::FrameInit;
use revm::state::EvmState;
use revm::{Context, Database, DatabaseCommit, ExecuteEvm, MainBuilder, MainContext};

use crate::error::{ExecutionError, Result};
use crate::precompiles::precompiles;
use crate::rules::SPEC;
use cairn_primitives::{
    Address, B256, Bytes, Canonical, Log, MAX_BLOCK_TRANSACTION_BYTES, Receipt, Transaction,
    TxStatus, U256,
};

/// What the EVM needs to know about the block being executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    /// Chain id.
    pub chain_id: u64,
    /// Block height.
    pub height: u64,
    /// Block timestamp in seconds.
    pub timestamp_secs: u64,
    /// Most gas the block may use.
    pub gas_limit: u64,
    /// Base fee per gas.
    pub base_fee_per_gas: u64,
    /// Account credited with the fees after the last transaction.
    pub beneficiary: Address,
    /// The block's randomness, exposed to contracts as `block.prevrandao`.
    pub randomness: B256,
}

impl BlockContext {
    fn block_env(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.height),
            beneficiary: self.beneficiary,
            timestamp: U256::from(self.timestamp_secs),
            gas_limit: self.gas_limit,
            basefee: self.base_fee_per_gas,
            prevrandao: Some(self.randomness),
            ..BlockEnv::default()
        }
    }

    fn cfg_env(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(SPEC);
        cfg.chain_id = self.chain_id;
        cfg
    }
}

/// What happened to one transaction offered to the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    /// It ran (successfully or not) and belongs in the block.
    Included(Receipt),
    /// It cannot be part of this block (stale nonce, no funds for gas, no room left in the
    /// block, ...) and changed nothing. A block proposer drops it; a block containing it is
    /// invalid.
    Excluded(Exclusion),
}

/// Executes a block's transactions against a pending state.
pub trait Executor: Send + Sync {
    /// Runs `transactions` in order on `state`, then credits the fees to the beneficiary.
    /// An `Err` is a failure of the node (the database), never of a transaction.
    fn execute(
        &self,
        block: &BlockContext,
        transactions: &[Transaction],
        state: &mut PendingState<'_>,
    ) -> Result<Vec<TxOutcome>>;

    /// How the blocks given to this executor ran so far (for operators: `cairn chain status`).
    fn stats(&self) -> ExecutionStats {
        ExecutionStats {
            threads: 1,
            ..ExecutionStats::default()
        }
    }
}

/// How an executor's blocks ran. A block a node both proposes and commits counts twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStats {
    /// Worker threads (1: one transaction after another).
    pub threads: usize,
    /// Blocks Block-STM ran to the end on the workers.
    pub parallel_blocks: u64,
    /// Blocks Block-STM started and handed to the sequential executor (mostly one chain of
    /// dependencies or conflicts, or something it does not cover).
    pub handed_over_blocks: u64,
    /// Blocks run sequentially from the start (too few transactions, or one thread).
    pub small_blocks: u64,
}

/// An EVM over `db` for `block`, with Cairn's precompiles.
pub fn evm<DB: Database>(db: DB, block: &BlockContext) -> MainnetEvm<MainnetContext<DB>> {
    Context::mainnet()
        .with_db(db)
        .with_block(block.block_env())
        .with_cfg(block.cfg_env())
        .build_mainnet()
        .with_precompiles(precompiles())
}

/// Gas available to one system call. Nobody pays for it; it only bounds the work, which every
/// node repeats identically (an epoch close visits every active deal and every provider).
pub const SYSTEM_CALL_GAS: u64 = 1_000_000_000;

/// Runs one call from `caller` without a transaction: no signature, nonce, fee or intrinsic
/// gas, [`SYSTEM_CALL_GAS`] to spend. Used for genesis initialization and the epoch-closing
/// calls. Commits the call's changes on success; returns the result either way.
pub fn system_call(
    state: &mut PendingState<'_>,
    block: &BlockContext,
    caller: Address,
    contract: Address,
    input: Bytes,
) -> Result<ExecutionResult> {
    let mut evm = evm(&mut *state, block);
    evm.ctx.set_tx(TxEnv {
        caller,
        kind: revm::primitives::TxKind::Call(contract),
        data: input,
        gas_limit: SYSTEM_CALL_GAS,
        gas_price: 0,
        ..TxEnv::default()
    });
    let result: std::result::Result<_, EVMError<_, InvalidTransaction>> =
        revm::handler::MainnetHandler::default().run_system_call(&mut evm);
    let changes = evm.finalize();
    let result = match result {
        Ok(result) => result,
        Err(EVMError::Database(e)) => return Err(e.into()),
        Err(other) => {
            return Err(ExecutionError::SystemCall {
                contract,
                detail: other.to_string(),
            });
        }
    };
    if result.is_success() {
        evm.ctx.db_mut().commit(changes);
    }
    Ok(result)
}

/// What the chain itself does at the start of a block, before any transaction. At the first
/// block of each epoch, close the epoch that ended: storage faults and the next epoch's seed,
/// the reward shares, then the jailing of validators never seen voting in it. Then, on every
/// block, mark the validators in `active_keys` (the consensus keys the block shows voting)
/// active in the current epoch, after the close so that the new epoch's votes never count for
/// the closed one. Every node runs the same calls, so the state stays identical. A call that
/// reverts changes nothing and is reported; the chain goes on. A contract without code (a
/// chain without the reward contracts) is skipped.
pub fn begin_block(
    block: &BlockContext,
    epoch_length: u64,
    active_keys: &[[u8; 32]],
    state: &mut PendingState<'_>,
) -> Result<BlockOpening> {
    use alloy_sol_types::SolCall;
    use cairn_reward_contracts::bindings::{RewardPool, Staking, StorageMarket};
    use cairn_reward_contracts::{REWARD_POOL, STAKING, STORAGE_MARKET, SYSTEM};

    let mut calls = Vec::new();
    if block.height != 0 && block.height.is_multiple_of(epoch_length) {
        let closed = block.height / epoch_length - 1;
        let what = format!("closing epoch {closed}");
        calls.extend([
            (
                STORAGE_MARKET,
                StorageMarket::closeEpochCall { closed }.abi_encode(),
                what.clone(),
            ),
            (
                REWARD_POOL,
                RewardPool::closeEpochCall { closed }.abi_encode(),
                what.clone(),
            ),
            (
                STAKING,
                Staking::closeEpochCall { closed }.abi_encode(),
                what,
            ),
        ]);
    }
    if !active_keys.is_empty() {
        let keys = active_keys.iter().copied().map(B256::from).collect();
        calls.push((
            STAKING,
            Staking::recordActivityCall { keys }.abi_encode(),
            "recording validator activity".to_string(),
        ));
    }
    let mut opening = BlockOpening::default();
    for (contract, input, what) in calls {
        if state
            .basic(contract)?
            .is_none_or(|account| account.is_empty_code_hash())
        {
            continue;
        }
        let result = system_call(state, block, SYSTEM, contract, input.into())?;
        if result.is_success() {
            opening.logs.extend(result.logs().iter().map(log_of));
        } else {
            opening
                .failures
                .push(format!("{what} at {contract} failed: {result:?}"));
        }
    }
    Ok(opening)
}

/// What [`begin_block`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockOpening {
    /// The events of the calls that succeeded, in order: the block's system logs, stored and
    /// committed with its receipts.
    pub logs: Vec<Log>,
    /// The calls that reverted (they changed nothing), described for the operator's log.
    pub failures: Vec<String>,
}

/// Cairn's form of an event the EVM emitted.
fn log_of(log: &revm::primitives::Log) -> Log {
    Log {
        address: log.address,
        topics: log.data.topics().to_vec(),
        data: log.data.data.clone(),
    }
}

/// revm's mainnet handler, except that the beneficiary is not paid per transaction.
#[derive(Debug)]
pub struct DeferredFeeHandler<EVM, ERROR, FRAME>(PhantomData<(EVM, ERROR, FRAME)>);

impl<EVM, ERROR, FRAME> Default for DeferredFeeHandler<EVM, ERROR, FRAME> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<EVM, ERROR, FRAME> Handler for DeferredFeeHandler<EVM, ERROR, FRAME>
where
    EVM: EvmTr<Context: ContextTr<Journal: JournalTr<State = EvmState>>, Frame = FRAME>,
    ERROR: EvmTrError<EVM>,
    FRAME: FrameTr<FrameResult = FrameResult, FrameInit = FrameInit>,
{
    type Evm = EVM;
    type Error = ERROR;
    type HaltReason = revm::context::result::HaltReason;

    fn reward_beneficiary(
        &self,
        _evm: &mut Self::Evm,
        _exec_result: &mut <<Self::Evm as EvmTr>::Frame as FrameTr>::FrameResult,
    ) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

/// The transaction as revm sees it; `sender` is `tx.sender()`, passed in because computing it
/// (a keccak, or for an Ethereum transaction a cached recovery) is worth doing once per
/// transaction, not once per run. An Ethereum transaction keeps its type, gas price and access
/// list, so that revm charges and warms as Ethereum does.
pub fn tx_env(tx: &Transaction, sender: Address) -> TxEnv {
    let body = &tx.body;
    let mut env = TxEnv {
        tx_type: 2,
        caller: sender,
        gas_limit: body.gas_limit,
        gas_price: body.max_fee_per_gas,
        gas_priority_fee: Some(body.max_priority_fee_per_gas),
        kind: body.kind(),
        value: body.value,
        data: body.input.clone(),
        nonce: body.nonce,
        chain_id: Some(body.chain_id),
        ..TxEnv::default()
    };
    if let Some(ethereum) = tx.ethereum() {
        env.tx_type = ethereum.tx_type();
        if let Some(price) = ethereum.gas_price() {
            env.gas_price = price;
            env.gas_priority_fee = None;
        }
        if let Some(access_list) = ethereum.access_list() {
            env.access_list = access_list.clone();
        }
    }
    env
}

/// The reference executor: one transaction after another.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sequential;

impl Executor for Sequential {
    fn execute(
        &self,
        block: &BlockContext,
        transactions: &[Transaction],
        state: &mut PendingState<'_>,
    ) -> Result<Vec<TxOutcome>> {
        let mut tally = Tally::new(block, transactions.len());
        {
            let mut evm = evm(&mut *state, block);
            for tx in transactions {
                if !tally.fits(tx) {
                    tally.exclude(Exclusion::NoRoom);
                    continue;
                }
                match transact(&mut evm, tx, tx.sender())
                    .map_err(TransactError::into_execution_error)?
                {
                    Ok((result, changes)) => {
                        evm.ctx.db_mut().commit(changes);
                        tally.include(tx, receipt(block, tx, tx.hash(), result));
                    }
                    Err(invalid) => tally.exclude(invalid.into()),
                }
            }
        }
        tally.finish(state)
    }
}

/// Why a transaction is left out of a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exclusion {
    /// The EVM refuses it before running any code: a used nonce, too little balance for its
    /// gas and value, a fee cap below the base fee.
    #[error(transparent)]
    Invalid(#[from] InvalidTransaction),
    /// Its gas limit is more than the block has left, or its bytes are more than
    /// [`MAX_BLOCK_TRANSACTION_BYTES`] leaves room for.
    #[error("not enough gas or bytes left in the block")]
    NoRoom,
}

/// The in-order accounting of a block: which transactions fit, their receipts, the gas used
/// and the fees, credited to the beneficiary after the last transaction. Every executor
/// settles a block through this, so they cannot disagree on it.
pub(crate) struct Tally<'b> {
    block: &'b BlockContext,
    outcomes: Vec<TxOutcome>,
    cumulative_gas: u64,
    bytes: usize,
    fees: U256,
}

impl<'b> Tally<'b> {
    pub(crate) fn new(block: &'b BlockContext, capacity: usize) -> Self {
        Self {
            block,
            outcomes: Vec::with_capacity(capacity),
            cumulative_gas: 0,
            bytes: 0,
            fees: U256::ZERO,
        }
    }

    /// Whether the block still has room for the transaction's gas limit (against the gas the
    /// transactions before it used, not their limits) and for its bytes.
    pub(crate) fn fits(&self, tx: &Transaction) -> bool {
        tx.body.gas_limit <= self.block.gas_limit - self.cumulative_gas
            && tx.encoded_len() <= MAX_BLOCK_TRANSACTION_BYTES - self.bytes
    }

    /// Adds a transaction's receipt (see [`receipt`]): its gas, bytes and fee count towards
    /// the block's.
    pub(crate) fn include(&mut self, tx: &Transaction, mut receipt: Receipt) {
        self.cumulative_gas += receipt.gas_used;
        self.bytes += tx.encoded_len();
        receipt.cumulative_gas_used = self.cumulative_gas;
        self.fees += receipt.fee;
        self.outcomes.push(TxOutcome::Included(receipt));
    }

    pub(crate) fn exclude(&mut self, reason: Exclusion) {
        self.outcomes.push(TxOutcome::Excluded(reason));
    }

    pub(crate) fn finish(self, state: &mut PendingState<'_>) -> Result<Vec<TxOutcome>> {
        if !self.fees.is_zero() {
            state.add_balance(self.block.beneficiary, self.fees)?;
        }
        Ok(self.outcomes)
    }
}

/// A transaction that could not be run to a result.
#[derive(Debug)]
pub enum TransactError<E> {
    /// The database failed (or, for the parallel executor, asked to wait).
    Database(E),
    /// revm refused for a reason other than the transaction (a bug or a bad block header).
    Evm(String),
}

impl<E: Into<ExecutionError>> TransactError<E> {
    /// As an executor failure.
    pub fn into_execution_error(self) -> ExecutionError {
        match self {
            Self::Database(e) => e.into(),
            Self::Evm(detail) => ExecutionError::Evm { detail },
        }
    }
}

/// One transaction's run: its result and revm's journal of what it read and wrote, or why it
/// cannot be part of the block.
pub type TxRun = std::result::Result<(ExecutionResult, EvmState), InvalidTransaction>;

/// Runs one transaction without committing it: its result and the state it read and wrote
/// (revm's journal, with original and present values), or why it cannot run at all.
pub fn transact<DB: Database>(
    evm: &mut MainnetEvm<MainnetContext<DB>>,
    tx: &Transaction,
    sender: Address,
) -> std::result::Result<TxRun, TransactError<DB::Error>> {
    evm.ctx.set_tx(tx_env(tx, sender));
    let result: std::result::Result<_, EVMError<_, InvalidTransaction>> =
        DeferredFeeHandler::default().run(evm);
    let changes = evm.finalize();
    match result {
        Ok(result) => Ok(Ok((result, changes))),
        Err(EVMError::Transaction(invalid)) => Ok(Err(invalid)),
        Err(EVMError::Database(e)) => Err(TransactError::Database(e)),
        Err(other) => Err(TransactError::Evm(other.to_string())),
    }
}

/// The receipt of an executed transaction, but for its cumulative gas, which only the block's
/// in-order tally knows. It depends on nothing else in the block, so it can be built where the
/// transaction ran.
pub fn receipt(
    block: &BlockContext,
    tx: &Transaction,
    tx_hash: B256,
    result: ExecutionResult,
) -> Receipt {
    let gas_used = result.tx_gas_used();
    let fee = U256::from(gas_used)
        * U256::from(tx.effective_gas_price(u128::from(block.base_fee_per_gas)));
    let (status, output, contract_address, logs) = match result {
        ExecutionResult::Success {
            output: Output::Call(out),
            logs,
            ..
        } => (TxStatus::Success, out, None, logs),
        ExecutionResult::Success {
            output: Output::Create(out, address),
            logs,
            ..
        } => (TxStatus::Success, out, address, logs),
        ExecutionResult::Revert { output, logs, .. } => (TxStatus::Revert, output, None, logs),
        ExecutionResult::Halt { reason, logs, .. } => (
            TxStatus::Halt(format!("{reason:?}")),
            Bytes::new(),
            None,
            logs,
        ),
    };
    Receipt {
        tx_hash,
        status,
        gas_used,
        cumulative_gas_used: 0,
        fee,
        contract_address,
        output,
        logs: logs.iter().map(log_of).collect(),
    }
}
