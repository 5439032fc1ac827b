//! Building, signing and sending transactions, and waiting for their receipts.

use std::fmt;
use std::time::{Duration, Instant};

use alloy_sol_types::{SolCall, SolEvent};
use cairn_chain::CallRequest;
use cairn_evm::rules::{DEFAULT_GAS_MARGIN_PERCENT, gas_with_margin, max_tx_gas};
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, Bytes, Canonical, TxBody, TxStatus, U256};
use cairn_reward_contracts::describe_revert;
use cairn_rpc::{CairnApiClient as _, ReceiptInfo};
use serde::Serialize;

use crate::error::ClientError;
use crate::rpc::Client;

/// How a transaction is sent.
#[derive(Debug, Clone, Default)]
pub struct TxOptions {
    /// Gas limit; `None`: the node's estimate.
    pub gas_limit: Option<u64>,
    /// Wait until the transaction is in a committed block.
    pub wait: bool,
    /// How long to wait, in seconds.
    pub timeout_s: u64,
    /// Percent added to the node's gas estimate, for calls whose gas depends on the including
    /// block (unused gas is not charged).
    pub gas_margin_percent: u64,
}

impl TxOptions {
    /// Wait up to 60 s for the receipt, with the default margin added to the estimate.
    pub fn waiting() -> Self {
        Self {
            gas_limit: None,
            wait: true,
            timeout_s: 60,
            gas_margin_percent: DEFAULT_GAS_MARGIN_PERCENT,
        }
    }
}

/// What a transaction asks for.
#[derive(Debug, Clone)]
pub struct Call {
    /// The account called.
    pub to: Address,
    /// Native tokens sent along (wei).
    pub value: U256,
    /// Call data.
    pub input: Bytes,
}

impl Call {
    /// A contract call carrying `value`.
    pub fn contract(to: Address, value: U256, call: impl SolCall) -> Self {
        Self {
            to,
            value,
            input: call.abi_encode().into(),
        }
    }

    /// A plain transfer of `value` wei to `to`.
    pub fn transfer(to: Address, value: U256) -> Self {
        Self {
            to,
            value,
            input: Bytes::new(),
        }
    }
}

/// A sent transaction: still pending, or included with its receipt. As JSON: `{"hash": ..}` or
/// the receipt.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Sent {
    /// Sent, not waited for.
    Pending {
        /// The transaction's hash.
        hash: B256,
    },
    /// Included in a committed block.
    Included(Box<ReceiptInfo>),
}

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sent::Pending { hash } => write!(
                f,
                "sent {hash}\n(`cairn chain tx {hash}` shows when it is included)"
            ),
            Sent::Included(receipt) => f.write_str(&describe_receipt(receipt)),
        }
    }
}

/// A receipt in words, one field a line.
pub fn describe_receipt(receipt: &ReceiptInfo) -> String {
    let r = &receipt.receipt;
    let status = match &r.status {
        TxStatus::Success => "success".to_string(),
        TxStatus::Revert => "reverted".to_string(),
        TxStatus::Halt(reason) => format!("halted ({reason})"),
    };
    format!(
        "transaction {}\n  status     {status}\n  block      {} ({})\n  from       {}\n  to         {}\n  gas used   {}\n  fee        {} CRN\n  logs       {}",
        r.tx_hash,
        receipt.block_height,
        receipt.block_hash,
        receipt.from,
        receipt
            .to
            .map_or_else(|| "(contract creation)".to_string(), |a| a.to_string()),
        r.gas_used,
        format_crn(r.fee),
        r.logs.len()
    )
}

/// Signs and sends `call` from `key`: checks the balance, takes the next nonce (pending
/// transactions included), estimates the gas (which surfaces a contract's refusal before
/// anything is sent) and, with `options.wait`, waits for the receipt. A reverted transaction
/// is an error that explains the contract's reason.
pub async fn submit(
    client: &Client,
    key: &AccountKey,
    call: Call,
    options: &TxOptions,
) -> Result<Sent, ClientError> {
    let rpc = client.rpc();
    let err = |e| client.error(e);
    let status = rpc.chain_status().await.map_err(err)?;
    let from = key.address();
    let balance = rpc.get_balance(from).await.map_err(err)?;
    if balance < call.value {
        return Err(ClientError::InsufficientFunds {
            from,
            balance: format_crn(balance),
            value: format_crn(call.value),
        });
    }
    let nonce = rpc.get_nonce(from, Some(true)).await.map_err(err)?;
    let gas_limit = match options.gas_limit {
        Some(gas) => gas,
        None => {
            let request = CallRequest {
                from: Some(from),
                to: Some(call.to),
                value: Some(call.value),
                input: Some(call.input.clone()),
                ..CallRequest::default()
            };
            let estimate = rpc.estimate_gas(request).await.map_err(err)?;
            // Never above what a transaction may use: the mempool refuses more.
            gas_with_margin(estimate, options.gas_margin_percent).min(max_tx_gas(status.gas_limit))
        }
    };
    let body = TxBody {
        chain_id: status.chain_id,
        nonce,
        gas_limit,
        // The base fee is fixed by genesis today; twice it leaves room if that changes.
        max_fee_per_gas: u128::from(status.base_fee_per_gas) * 2,
        max_priority_fee_per_gas: 0,
        to: Some(call.to),
        value: call.value,
        input: call.input,
    };
    let hash = rpc
        .send_raw_transaction(body.sign(key).encode().into())
        .await
        .map_err(err)?;
    if !options.wait {
        return Ok(Sent::Pending { hash });
    }
    let receipt = wait_for_receipt(client, hash, gas_limit, options.timeout_s).await?;
    Ok(Sent::Included(Box::new(receipt)))
}

/// Polls for the receipt of `hash` until `timeout_s` seconds have passed; a transaction that
/// reverted or halted is an error.
async fn wait_for_receipt(
    client: &Client,
    hash: B256,
    gas_limit: u64,
    timeout_s: u64,
) -> Result<ReceiptInfo, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    loop {
        let receipt = client
            .rpc()
            .get_receipt(hash)
            .await
            .map_err(|e| client.error(e))?;
        if let Some(receipt) = receipt {
            let height = receipt.block_height;
            return match &receipt.receipt.status {
                TxStatus::Revert => Err(ClientError::Reverted {
                    hash,
                    height,
                    reason: describe_revert(&receipt.receipt.output, format_crn)
                        .unwrap_or_else(|| format!("reverted with {}", receipt.receipt.output)),
                }),
                TxStatus::Halt(reason) => Err(ClientError::Halted {
                    hash,
                    height,
                    reason: reason.clone(),
                    gas_limit,
                }),
                TxStatus::Success => Ok(receipt),
            };
        }
        if Instant::now() > deadline {
            return Err(ClientError::NotIncluded { hash, timeout_s });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `call` (gas estimated, plus the default margin), waits for its receipt and returns
/// the first event `E` it emitted.
pub async fn submit_for_event<E: SolEvent>(
    client: &Client,
    key: &AccountKey,
    call: Call,
) -> Result<E, ClientError> {
    let missing = ClientError::MissingEvent {
        event: E::SIGNATURE,
    };
    match submit(client, key, call, &TxOptions::waiting()).await? {
        Sent::Included(receipt) => receipt.receipt.event::<E>().ok_or(missing),
        // `waiting` waits: a pending answer has no receipt to read the event from.
        Sent::Pending { .. } => Err(missing),
    }
}
