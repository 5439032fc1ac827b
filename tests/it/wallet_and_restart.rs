//! The user's path through `cairn dev` and the wallet, and that a restart keeps everything.

use crate::support;

use std::path::Path;
use std::process::Output;

use support::{DevNode, TestResult, cairn, failure, ok_json, run};

/// `cairn wallet send` from the key named `from` to `to`, with `extra` arguments.
fn send(node: &DevNode, dir: &Path, from: &str, to: &str, amount: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "wallet", "send", "--from", from, "--to", to, "--amount", amount,
    ];
    args.extend_from_slice(extra);
    run(node, dir, &args)
}

#[test]
fn send_with_the_wallet_and_keep_it_across_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let datadir = dir.path().join("chain");
    std::fs::write(dir.path().join("password"), "correct horse\n")?;
    let node = DevNode::start(&datadir, 100)?;
    let accounts = node.accounts()?;
    let dev0 = &accounts[0];
    std::fs::write(dir.path().join("dev0.key"), &dev0.private_key)?;

    let imported = ok_json(run(
        &node,
        dir.path(),
        &[
            "wallet",
            "import",
            "--name",
            "dev0",
            "--private-key-file",
            dir.path().join("dev0.key").to_str().ok_or("path")?,
            "--json",
        ],
    ));
    assert_eq!(
        imported["address"].as_str().map(str::to_lowercase),
        Some(dev0.address.to_string().to_lowercase())
    );
    let bob = ok_json(run(
        &node,
        dir.path(),
        &["wallet", "new", "--name", "bob", "--json"],
    ));
    let bob_address = bob["address"].as_str().ok_or("address")?.to_string();
    let listed = ok_json(run(&node, dir.path(), &["wallet", "list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    let receipt = ok_json(send(
        &node,
        dir.path(),
        "dev0",
        &bob_address,
        "12.5",
        &["--wait", "--json"],
    ));
    assert_eq!(receipt["status"], "success");
    let height = receipt["blockHeight"].as_u64().ok_or("height")?;
    let tx_hash = receipt["txHash"].as_str().ok_or("hash")?.to_string();
    let balance = ok_json(run(
        &node,
        dir.path(),
        &["wallet", "balance", "bob", "--json"],
    ));
    assert_eq!(balance["crn"], "12.5");
    let block = ok_json(run(
        &node,
        dir.path(),
        &["chain", "block", &height.to_string(), "--json"],
    ));
    let status = ok_json(run(&node, dir.path(), &["chain", "status", "--json"]));

    // Refusals are clear and change nothing.
    let wrong_password = cairn()
        .args([
            "wallet",
            "send",
            "--from",
            "dev0",
            "--to",
            &bob_address,
            "--amount",
            "1",
            "--rpc",
            &node.url,
            "--keystore",
        ])
        .arg(dir.path().join("keystore"))
        .arg("--password-file")
        .arg(dir.path().join("dev0.key"))
        .output()?;
    assert!(failure(wrong_password).contains("wrong password"));
    assert!(
        failure(send(
            &node,
            dir.path(),
            "bob",
            &dev0.address.to_string(),
            "13",
            &[]
        ))
        .contains("insufficient funds")
    );
    assert!(failure(send(&node, dir.path(), "dev0", "0x12", "1", &[])).contains("not a 20-byte"));
    assert!(
        failure(send(&node, dir.path(), "dev0", &bob_address, "1,5", &[]))
            .contains("not an amount")
    );
    assert!(
        failure(run(&node, dir.path(), &["wallet", "new", "--name", "bob"]))
            .contains("already exists")
    );
    // Bob's balance as the CLI reports it, before and after a restart.
    let bob_balance = |node: &DevNode| {
        ok_json(run(
            node,
            dir.path(),
            &["wallet", "balance", "bob", "--json"],
        ))["crn"]
            .clone()
    };
    assert_eq!(bob_balance(&node), "12.5");

    node.stop()?;
    let node = DevNode::start(&datadir, 100)?;
    let after = ok_json(run(&node, dir.path(), &["chain", "status", "--json"]));
    assert!(after["height"].as_u64() >= status["height"].as_u64());
    assert_eq!(after["genesisHash"], status["genesisHash"]);
    assert_eq!(bob_balance(&node), "12.5");
    let same_block = ok_json(run(
        &node,
        dir.path(),
        &["chain", "block", &height.to_string(), "--json"],
    ));
    assert_eq!(same_block["hash"], block["hash"]);
    let tx = ok_json(run(&node, dir.path(), &["chain", "tx", &tx_hash, "--json"]));
    assert_eq!(tx["receipt"]["status"], "success");
    assert_eq!(tx["receipt"]["blockHeight"].as_u64(), Some(height));
    node.stop()?;
    Ok(())
}
