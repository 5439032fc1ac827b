//! [`TxSender`]: how a provider agent signs and submits its own contract calls.

use std::sync::{Arc, Mutex};

use alloy_sol_types::SolCall;
use cairn_chain::CallRequest;
use cairn_evm::rules::{DEFAULT_GAS_MARGIN_PERCENT, gas_with_margin, max_tx_gas};
use cairn_mempool::TxPool;
use cairn_primitives::{AccountKey, Address, B256, Bytes, Canonical, TxBody, U256};

use crate::contracts::revert_reason;
use crate::error::DataError;

/// Blocks after which a transaction whose effect has not shown is sent again.
pub const RESEND_AFTER_BLOCKS: u64 = 8;

/// Signs and submits contract calls through the node's own mempool, one at a time, so that
/// concurrent calls of one account (two jobs answered at once) take consecutive nonces.
#[derive(Debug, Clone)]
pub struct TxSender {
    pool: TxPool,
    /// Held while a transaction is signed and submitted.
    sending: Arc<Mutex<()>>,
}

impl TxSender {
    /// A sender into `pool`.
    pub fn new(pool: TxPool) -> Self {
        Self {
            pool,
            sending: Arc::new(Mutex::new(())),
        }
    }

    /// The chain the sender estimates gas and reads nonces on.
    pub fn chain(&self) -> &Arc<cairn_chain::Chain> {
        self.pool.chain()
    }

    /// Signs and submits a contract call from `key`. Gas is estimated first, so a call that
    /// would revert is refused here with its reason instead of costing a fee, plus a margin.
    pub fn send_call<C: SolCall>(
        &self,
        key: &AccountKey,
        to: Address,
        value: U256,
        call: C,
    ) -> Result<B256, DataError> {
        self.send_input(key, to, value, call.abi_encode().into())
    }

    /// [`TxSender::send_call`] with the call data already encoded.
    pub fn send_input(
        &self,
        key: &AccountKey,
        to: Address,
        value: U256,
        input: Bytes,
    ) -> Result<B256, DataError> {
        let chain = self.pool.chain();
        let from = key.address();
        let gas = chain.estimate_gas(&CallRequest {
            from: Some(from),
            to: Some(to),
            value: Some(value),
            input: Some(input.clone()),
            ..CallRequest::default()
        })?;
        let estimate = gas.map_err(|result| DataError::Reverted {
            reason: revert_reason(&result),
        })?;
        // The estimate is exact for the head's state and randomness only; in its block the
        // call may walk further (drawing a compute provider depends on the block's
        // randomness).
        let genesis = chain.genesis();
        // Never above what a transaction may use: the mempool refuses more.
        let gas_limit = gas_with_margin(estimate, DEFAULT_GAS_MARGIN_PERCENT)
            .min(max_tx_gas(genesis.gas_limit));
        // Every update under this lock is nothing: a panic mid-way leaves no state behind.
        let _one_at_a_time = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        let body = TxBody {
            chain_id: genesis.chain_id,
            nonce: self.pool.pending_nonce(from)?,
            gas_limit,
            max_fee_per_gas: u128::from(genesis.base_fee_per_gas) * 2,
            max_priority_fee_per_gas: 0,
            to: Some(to),
            value,
            input,
        };
        Ok(self.pool.submit_raw(&body.sign(key).encode())?)
    }
}
