//! Printing results for people or, with `--json`, for programs.

use std::io::Write as _;

use cairn_primitives::TxStatus;
use cairn_primitives::units::format_crn;
use cairn_rpc::ReceiptInfo;
use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else the human text. A closed stdout
/// (`cairn ... | head`) ends the output quietly instead of failing.
pub fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(value)?
    } else {
        human()
    };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A JSON-RPC client for `url`.
pub fn client(url: &str) -> anyhow::Result<jsonrpsee::http_client::HttpClient> {
    use anyhow::Context as _;
    jsonrpsee::http_client::HttpClientBuilder::default()
        .build(url)
        .with_context(|| format!("invalid RPC URL '{url}'"))
}

/// A clear message for a failed RPC call.
pub fn rpc_error(url: &str, error: jsonrpsee::core::ClientError) -> anyhow::Error {
    match error {
        jsonrpsee::core::ClientError::Call(call) => {
            // A reverted call carries the contract's revert data: say what it means.
            let reason = call
                .data()
                .and_then(|raw| serde_json::from_str::<cairn_primitives::Bytes>(raw.get()).ok())
                .and_then(|data| cairn_reward_contracts::describe_revert(&data, format_crn));
            match reason {
                Some(reason) => anyhow::anyhow!("{reason}"),
                None => anyhow::anyhow!("the node refused: {}", call.message()),
            }
        }
        jsonrpsee::core::ClientError::Transport(e) => {
            anyhow::anyhow!(
                "cannot reach a node at {url} ({e}); is `cairn dev` running? (set --rpc or CAIRN_RPC)"
            )
        }
        other => anyhow::anyhow!("RPC to {url} failed: {other}"),
    }
}

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
