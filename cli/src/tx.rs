//! Building, signing and sending transactions, and waiting for their receipts.

use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use anyhow::{Context as _, bail};
use cairn_chain::chain::CallRequest;
use cairn_primitives::units::format_crn;
use cairn_primitives::{AccountKey, Address, B256, Bytes, Canonical, TxBody, TxStatus, U256};
use cairn_reward_contracts::describe_revert;
use cairn_rpc::{CairnApiClient, ReceiptInfo};

use crate::Global;
use crate::output::{client, print};
use crate::output::{describe_receipt, rpc_error};

/// Options of every command that sends a transaction.
#[derive(Debug, Clone, clap::Args)]
pub struct TxOptions {
    /// Gas limit [default: estimated by the node].
    #[arg(long)]
    pub gas_limit: Option<u64>,
    /// Wait until the transaction is in a committed block and print its receipt.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Percent added to the node's gas estimate, for calls whose gas depends on the including
    /// block (unused gas is not charged). Set by commands, not by the user.
    #[arg(skip)]
    pub gas_margin_percent: u64,
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
    pub fn contract(to: Address, value: U256, call: impl alloy_sol_types::SolCall) -> Self {
        Self {
            to,
            value,
            input: call.abi_encode().into(),
        }
    }
}

/// A sent transaction: still pending, or included with its receipt.
pub enum Sent {
    Pending(B256),
    Included(Box<ReceiptInfo>),
}

impl Sent {
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        match self {
            Sent::Pending(hash) => print(json, &serde_json::json!({ "hash": hash }), || {
                format!("sent {hash}\n(`cairn chain tx {hash}` shows when it is included)")
            }),
            Sent::Included(receipt) => print(json, receipt, || describe_receipt(receipt)),
        }
    }
}

/// Signs and sends `call` from `key`: checks the balance, takes the next nonce (pending
/// transactions included), estimates the gas (which surfaces a contract's refusal before
/// anything is sent) and, with `--wait`, waits for the receipt. A reverted transaction is an
/// error that explains the contract's reason.
pub async fn submit(
    global: &Global,
    key: &AccountKey,
    call: Call,
    options: &TxOptions,
) -> anyhow::Result<Sent> {
    let rpc = client(&global.rpc)?;
    let err = |e| rpc_error(&global.rpc, e);
    let status = rpc.chain_status().await.map_err(err)?;
    let from = key.address();
    let balance = rpc.get_balance(from).await.map_err(err)?;
    if balance < call.value {
        bail!(
            "insufficient funds: {from} holds {} CRN, cannot send {} CRN",
            format_crn(balance),
            format_crn(call.value)
        );
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
                gas: None,
            };
            let estimate = rpc.estimate_gas(request).await.map_err(err)?;
            estimate + estimate * options.gas_margin_percent / 100
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
        return Ok(Sent::Pending(hash));
    }
    let deadline = Instant::now() + Duration::from_secs(options.timeout);
    loop {
        if let Some(receipt) = rpc.get_receipt(hash).await.map_err(err)? {
            match &receipt.receipt.status {
                TxStatus::Revert => {
                    let reason = describe_revert(&receipt.receipt.output, format_crn)
                        .unwrap_or_else(|| format!("reverted with {}", receipt.receipt.output));
                    bail!(
                        "{hash} was included in block {} but reverted: {reason}",
                        receipt.block_height
                    );
                }
                TxStatus::Halt(reason) => bail!(
                    "{hash} was included in block {} but the EVM stopped it ({reason}); if it ran out of gas, send it again with a --gas-limit above {gas_limit}",
                    receipt.block_height
                ),
                TxStatus::Success => {}
            }
            return Ok(Sent::Included(Box::new(receipt)));
        }
        if Instant::now() > deadline {
            bail!(
                "{hash} was not included within {} s; it may still be; check with `cairn chain tx {hash}`",
                options.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `call` (gas estimated, plus `gas_margin_percent`) and waits for its receipt; the
/// first event `E` it emitted.
pub async fn submit_for_event<E: alloy_sol_types::SolEvent>(
    global: &Global,
    key: &AccountKey,
    call: Call,
    gas_margin_percent: u64,
) -> anyhow::Result<E> {
    let options = TxOptions {
        gas_limit: None,
        wait: true,
        timeout: 60,
        gas_margin_percent,
    };
    match submit(global, key, call, &options).await? {
        Sent::Included(receipt) => receipt
            .receipt
            .event::<E>()
            .with_context(|| format!("the receipt has no {} event", E::SIGNATURE)),
        Sent::Pending(hash) => bail!("{hash} was sent but not waited for"),
    }
}

/// A read-only contract call; the node's answer as raw bytes.
pub async fn view(global: &Global, to: Address, input: Vec<u8>) -> anyhow::Result<Bytes> {
    let rpc = client(&global.rpc)?;
    let request = CallRequest {
        to: Some(to),
        input: Some(input.into()),
        ..Default::default()
    };
    let result = rpc
        .call(request)
        .await
        .map_err(|e| rpc_error(&global.rpc, e))?;
    Ok(result.output)
}

/// Parses `--json`-free byte sizes: a number with an optional unit (B, KiB, MiB, GiB, TiB,
/// KB, MB, GB, TB).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("'{text}' is not a size such as 512MiB or 10GB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => bail!(
            "unknown size unit '{other}' in '{text}': use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
        ),
    };
    number
        .checked_mul(multiplier)
        .with_context(|| format!("'{text}' is too large"))
}

pub async fn decoded<C: SolCall>(
    global: &Global,
    to: Address,
    call: C,
) -> anyhow::Result<C::Return> {
    let output = view(global, to, call.abi_encode()).await?;
    Ok(C::abi_decode_returns(&output)?)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_units_and_bad_ones_are_refused() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("3 MB").unwrap(), 3_000_000);
        for bad in ["", "GiB", "1.5GiB", "10 parsecs", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
