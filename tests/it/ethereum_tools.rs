//! Ethereum's own tools against a `cairn dev` process, unchanged: Foundry's `cast`, viem and
//! web3.py (installed by `scripts/test` into `tests/clients`) each send a transfer from a
//! test-mnemonic account, deploy a contract, transact with it, read its event with
//! `eth_getLogs`, make a call, and stake and register as a storage provider through the reward
//! contracts (`tests/clients/cast.sh`, `viem.mjs`, `web3_client.py`); Cairn's own CLI then
//! sees each of those accounts as a storage provider.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{DevNode, TestResult, cairn};

pub(crate) fn clients() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clients")
}

/// Runs one client against `url`; what it printed, which must say it read back one log and
/// name the account it registered as a storage provider.
pub(crate) fn run_client(
    mut command: Command,
    url: &str,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let shown = format!("{command:?}");
    let output = command.arg(url).output().map_err(|e| {
        format!("cannot run {shown}: {e} (scripts/test installs the Ethereum clients)")
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        return Err(format!(
            "{shown} failed: {}\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let report: serde_json::Value = serde_json::from_str(stdout.trim())?;
    if report["chainId"] != 31337 || report["logs"] != 1 || !report["storageProvider"].is_string() {
        return Err(format!("{shown} reported {report}").into());
    }
    Ok(report)
}

/// The roles Cairn's CLI shows for `account`.
fn roles_of(account: &str, url: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let output = cairn()
        .args(["stake", "status", account, "--json", "--rpc", url])
        .output()?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into());
    }
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    Ok(status["roles"].clone())
}

#[test]
fn cast_viem_and_web3py_transfer_deploy_transact_and_read_logs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = DevNode::start(dir.path(), 100)?;
    let cast = Command::new(clients().join("cast.sh"));
    let mut viem = Command::new("node");
    viem.arg(clients().join("viem.mjs"));
    let python = std::env::var("CAIRN_WEB3_PYTHON").map_err(
        |_| "CAIRN_WEB3_PYTHON is not set: run the tests with scripts/test, which installs web3.py",
    )?;
    let mut web3py = Command::new(python);
    web3py.arg(clients().join("web3_client.py"));
    // Each uses its own test account (6, 4 and 5), so they could run in any order.
    for client in [cast, viem, web3py] {
        let report = run_client(client, &node.url)?;
        let provider = report["storageProvider"].as_str().unwrap_or_default();
        let roles = roles_of(provider, &node.url)?;
        assert!(
            roles
                .as_array()
                .is_some_and(|r| r.contains(&"storage".into())),
            "{provider}: roles {roles}"
        );
    }
    node.stop()?;
    Ok(())
}
