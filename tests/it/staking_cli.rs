//! Staking and registering as a provider from the CLI wallet against `cairn dev`.

use crate::support;

use support::{DevNode, TestResult, failure, ok_json, run};

#[test]
fn a_dev_account_stakes_registers_and_shows_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("password"), "pw\n")?;
    let node = DevNode::start(&dir.path().join("chain"), 100)?;
    let accounts = node.accounts()?;
    for (name, account) in [("prov", &accounts[1]), ("poor", &accounts[2])] {
        let file = dir.path().join(format!("{name}.key"));
        std::fs::write(&file, &account.private_key)?;
        let path = file.to_str().ok_or("path")?;
        ok_json(run(
            &node,
            dir.path(),
            &[
                "wallet",
                "import",
                "--name",
                name,
                "--private-key-file",
                path,
                "--json",
            ],
        ));
    }
    let d = dir.path();

    let refusal = failure(run(
        &node,
        d,
        &[
            "provider",
            "register",
            "--from",
            "poor",
            "--storage",
            "1GiB",
        ],
    ));
    assert!(
        refusal.contains("stake below the storage minimum of 100 CRN"),
        "{refusal}"
    );
    let refusal = failure(run(&node, d, &["provider", "register", "--from", "poor"]));
    assert!(refusal.contains("offer something"), "{refusal}");

    ok_json(run(
        &node,
        d,
        &["stake", "add", "150", "--from", "prov", "--wait", "--json"],
    ));
    let register = [
        "provider",
        "register",
        "--from",
        "prov",
        "--storage",
        "1GiB",
        "--compute-cores",
        "2",
    ];
    let mut args = register.to_vec();
    args.extend([
        "--peer-id",
        "12D3KooWTest",
        "--addresses",
        "/ip4/127.0.0.1/tcp/4001",
        "--wait",
        "--json",
    ]);
    ok_json(run(&node, d, &args));

    let stake = ok_json(run(&node, d, &["stake", "status", "prov", "--json"]));
    assert_eq!(stake["bonded"], "150");
    assert_eq!(stake["roles"], serde_json::json!(["storage", "compute"]));
    let provider = ok_json(run(&node, d, &["provider", "status", "prov", "--json"]));
    assert_eq!(provider["storageCapacity"], 1u64 << 30);
    assert_eq!(provider["cores"], 2);
    assert_eq!(provider["peerId"], "12D3KooWTest");

    let refusal = failure(run(&node, d, &["stake", "unbond", "51", "--from", "prov"]));
    assert!(
        refusal.contains("stake below the storage minimum of 100 CRN (bonded: 99 CRN)"),
        "{refusal}"
    );
    ok_json(run(
        &node,
        d,
        &[
            "stake", "unbond", "50", "--from", "prov", "--wait", "--json",
        ],
    ));
    let until = ok_json(run(&node, d, &["stake", "status", "prov", "--json"]))["withdrawableEpoch"]
        .as_u64()
        .ok_or("no withdrawable epoch")?;
    let refusal = failure(run(&node, d, &["stake", "withdraw", "--from", "prov"]));
    // "unbonding until epoch N (this is epoch M)": N is the recorded epoch, M is before it (the
    // dev period is 2 epochs, so a few blocks more cannot reach it).
    let numbers: Vec<u64> = refusal
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(refusal.contains("unbonding until epoch"), "{refusal}");
    assert!(
        matches!(numbers[..], [n, m] if n == until && m < until),
        "{refusal}"
    );
    let rewards = ok_json(run(&node, d, &["rewards", "show", "prov", "--json"]));
    assert_eq!(rewards["total"], "0");
    assert!(
        failure(run(&node, d, &["rewards", "claim", "--from", "prov"]))
            .contains("nothing to claim")
    );
    node.stop()?;
    Ok(())
}
