//! Validator processes on loopback: `cairn testnet init` + `cairn testnet start` finalize
//! blocks together; a transaction sent to node 4 is final on node 1; Foundry's cast, pointed at
//! node 3, sends, deploys, reads logs and registers a storage provider, and node 1 serves the
//! contract it deployed; with
//! one node SIGKILLed the other three keep finalizing; restarted, the node catches up by itself. A fifth node that
//! stakes and registers through the CLI becomes a validator at the next epoch.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use cairn_chain::genesis::{Genesis, dev_account};
use cairn_node::testnet::Testnet;
use cairn_primitives::{Address, Bytes, Canonical, TxBody, U256};
use cairn_rpc::{BlockId, CairnApiClient};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use support::{Process, TestResult, cairn, eventually, node_pid, ok_json, run_at, signal};

async fn finalized(client: &HttpClient) -> Option<u64> {
    client.chain_status().await.ok().map(|s| s.finalized_height)
}

/// Waits until every client's finalized height reaches `height`.
async fn all_reach(clients: &[&HttpClient], height: u64, within: Duration) -> TestResult {
    eventually(within, || async {
        for client in clients {
            if finalized(client).await? < height {
                return None;
            }
        }
        Some(())
    })
    .await
}

/// Writes a testnet of four validators with `block_time_ms` blocks and starts it.
fn start_testnet(
    tmp: &Path,
    block_time_ms: u64,
) -> Result<(std::path::PathBuf, Testnet, Process), Box<dyn std::error::Error>> {
    support::start_testnet(tmp, &["--block-time", &block_time_ms.to_string()], |_| {
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn four_validators_finalize_survive_a_crash_and_catch_up() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (dir, testnet, supervisor) = start_testnet(tmp.path(), 200)?;
    let clients = testnet
        .nodes
        .iter()
        .map(|n| HttpClientBuilder::default().build(&n.rpc_url))
        .collect::<Result<Vec<_>, _>>()?;
    let [one, two, three, four] = [&clients[0], &clients[1], &clients[2], &clients[3]];

    // All four finalize together.
    all_reach(&[one, two, three, four], 3, Duration::from_secs(60)).await?;
    let status = four.chain_status().await?;
    assert_eq!(status.validators.len(), 4);
    // The peer count is what the node last reported (it refreshes it twice a second), and on
    // a loaded machine the last connection may come after the third block.
    let peers = eventually(Duration::from_secs(10), || async {
        let peers = four.chain_status().await.ok()?.peers;
        (peers == 3).then_some(peers)
    })
    .await;
    assert!(peers.is_ok(), "node 4 should see the other three");

    // A transaction sent to node 4 becomes final and visible on node 1.
    let genesis = Genesis::dev();
    let recipient = Address::repeat_byte(0x42);
    let tx = TxBody {
        chain_id: genesis.chain_id,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: u128::from(genesis.base_fee_per_gas),
        max_priority_fee_per_gas: 0,
        to: Some(recipient),
        value: U256::from(1234),
        input: Bytes::new(),
    }
    .sign(&dev_account(0));
    let hash = four.send_raw_transaction(tx.encode().into()).await?;
    let receipt = eventually(Duration::from_secs(20), || async {
        one.get_receipt(hash).await.ok().flatten()
    })
    .await?;
    assert!(receipt.receipt.succeeded());
    assert!(finalized(one).await.unwrap_or(0) >= receipt.block_height);
    assert_eq!(one.get_balance(recipient).await?, U256::from(1234));

    // An Ethereum wallet pointed at any node works: cast against node 3, read back on node 1.
    let cast = std::process::Command::new(crate::ethereum_tools::clients().join("cast.sh"));
    let url = testnet.nodes[2].rpc_url.clone();
    // The client runs for seconds: off the async workers, which the test's clients use.
    let report = tokio::task::spawn_blocking(move || {
        crate::ethereum_tools::run_client(cast, &url).map_err(|e| e.to_string())
    })
    .await??;
    let contract: Address = serde_json::from_value(report["contract"].clone())?;
    let code = eventually(Duration::from_secs(20), || async {
        let code = cairn_rpc::eth::EthApiClient::code(one, contract, None)
            .await
            .ok()?;
        (!code.is_empty()).then_some(code)
    })
    .await?;
    assert_eq!(code.len(), 44, "the logging contract cast deployed");

    // A made-up method is counted as `unknown`: names a client makes up create no series.
    let made_up: Result<serde_json::Value, _> = jsonrpsee::core::client::ClientT::request(
        four,
        "cairn_madeUpMethod",
        jsonrpsee::rpc_params![],
    )
    .await;
    assert!(made_up.is_err());
    // Each node serves Prometheus metrics where testnet.json says; promtool accepts them.
    let metrics_url = testnet.nodes[3]
        .metrics_url
        .clone()
        .ok_or("node 4 has a metrics URL")?;
    let text = eventually(Duration::from_secs(20), || async {
        let (status, text) = support::http_get(&metrics_url, None).ok()?;
        let peers = support::metric(&text, "cairn_peers")?;
        (status == 200 && peers == 3.0).then_some(text)
    })
    .await?;
    for family in [
        "cairn_chain_height",
        "cairn_chain_finalized_height",
        "cairn_block_interval_seconds_count",
        "cairn_block_transactions_count",
        "cairn_mempool_transactions",
        "cairn_consensus_view",
        "cairn_consensus_timeouts_total",
        "cairn_consensus_nullified_views_total",
        "cairn_finalization_latency_seconds_count",
        "cairn_blocks_executed_total{executor=\"block_stm\"}",
        "cairn_rpc_requests_total{method=\"cairn_chainStatus\"}",
        "cairn_rpc_request_duration_seconds_count{method=\"cairn_chainStatus\"}",
    ] {
        assert!(
            support::metric(&text, family).is_some(),
            "{family} missing from:\n{text}"
        );
    }
    assert!(support::metric(&text, "cairn_rpc_requests_total{method=\"unknown\"}") >= Some(1.0));
    assert!(!text.contains("cairn_madeUpMethod"));
    assert!(support::metric(&text, "cairn_chain_height").unwrap_or(0.0) >= 3.0);
    assert!(support::metric(&text, "cairn_block_transactions_count").unwrap_or(0.0) >= 3.0);
    support::promtool_check_metrics(&text)?;
    assert!(support::metric(&text, "cairn_block_transactions_sum").unwrap_or(0.0) >= 1.0);
    // The metrics listener answers only to the names the RPC does, whatever the path, and
    // serves nothing but /metrics and the dashboard (/, /api/status, /api/deal/ID).
    let (status, _) = support::http_get(&metrics_url, Some("attacker.example"))?;
    assert_eq!(status, 403);
    let elsewhere = metrics_url.replace("/metrics", "/admin");
    assert_eq!(
        support::http_get(&elsewhere, Some("attacker.example"))?.0,
        403
    );
    assert_eq!(support::http_get(&elsewhere, None)?.0, 404);
    // A client holding every connection it may (16, sending nothing) gets the next one closed
    // unanswered; once it lets go, scrapes are answered again.
    let authority = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    let idle = (0..16)
        .map(|_| std::net::TcpStream::connect(&authority))
        .collect::<Result<Vec<_>, _>>()?;
    let refused = eventually(Duration::from_secs(10), || async {
        support::http_get(&metrics_url, None).is_err().then_some(())
    })
    .await;
    assert!(refused.is_ok(), "a 17th connection was answered");
    drop(idle);
    eventually(Duration::from_secs(10), || async {
        let (status, _) = support::http_get(&metrics_url, None).ok()?;
        (status == 200).then_some(())
    })
    .await?;

    // SIGKILL node 2: the other three go on finalizing.
    signal(node_pid(&dir, 2)?, nix::sys::signal::Signal::SIGKILL)?;
    let at_kill = finalized(one).await.ok_or("node 1 stopped answering")?;
    all_reach(&[one, three, four], at_kill + 5, Duration::from_secs(60)).await?;

    // Restarted, node 2 catches up by itself and agrees with node 1.
    let _restarted = Process(
        cairn()
            .args(["node", "run", "--datadir"])
            .arg(dir.join("node-2"))
            .env("RUST_LOG", "warn,libp2p_gossipsub=error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let target = finalized(one).await.ok_or("node 1 stopped answering")? + 2;
    all_reach(&[two], target, Duration::from_secs(60)).await?;
    let ours = two
        .get_block_by_number(BlockId::Number(target))
        .await?
        .ok_or("no block")?;
    let theirs = one
        .get_block_by_number(BlockId::Number(target))
        .await?
        .ok_or("no block")?;
    assert_eq!(ours.hash, theirs.hash);
    // Its libp2p identity survived the crash: it is kept in the data directory.
    assert_eq!(
        two.chain_status().await?.peer_id.as_deref(),
        Some(testnet.nodes[1].peer_id.as_str())
    );
    all_reach(
        &[one, two, three, four],
        target + 3,
        Duration::from_secs(60),
    )
    .await?;

    // Ctrl-C on the supervisor stops the nodes it started.
    signal(supervisor.0.id() as i32, nix::sys::signal::Signal::SIGINT)?;
    let pid_four = node_pid(&dir, 4)?;
    eventually(Duration::from_secs(30), || async {
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid_four), None).is_err()
            || std::fs::read_to_string(format!("/proc/{pid_four}/stat"))
                .is_ok_and(|stat| stat.contains(") Z "));
        gone.then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validator_staked_through_the_cli_joins_at_the_next_epoch() -> TestResult {
    let tmp = tempfile::tempdir()?;
    // 100 ms blocks: the dev genesis's 30-block epochs last 3 s.
    let (dir, testnet, _supervisor) = start_testnet(tmp.path(), 100)?;
    let one = HttpClientBuilder::default().build(&testnet.nodes[0].rpc_url)?;
    all_reach(&[&one], 2, Duration::from_secs(60)).await?;

    // A fifth node joins through node 1 and follows the chain.
    let five = tmp.path().join("node-5");
    std::fs::create_dir_all(&five)?;
    std::fs::copy(dir.join("node-1/genesis.json"), five.join("genesis.json"))?;
    let consensus_key = cairn_primitives::AccountKey::generate();
    cairn_node::datadir::write_key(&five.join("validator.key"), &consensus_key)?;
    let rpc_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _five_process = Process(
        cairn()
            .args(["node", "run", "--datadir"])
            .arg(&five)
            .args(["--bootnode", &testnet.nodes[0].p2p_addr])
            .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--rpc-port", &rpc_port.to_string()])
            .env("RUST_LOG", "warn,libp2p_gossipsub=error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let five_url = format!("http://127.0.0.1:{rpc_port}");
    let five_client = HttpClientBuilder::default().build(&five_url)?;
    all_reach(&[&five_client], 2, Duration::from_secs(60)).await?;

    // A funded account stakes the validator minimum and registers node 5's key.
    std::fs::write(tmp.path().join("password"), "pw\n")?;
    let key_file = tmp.path().join("val.key");
    std::fs::write(&key_file, &testnet.accounts[5].private_key)?;
    let url = testnet.nodes[0].rpc_url.as_str();
    let key_path = key_file.to_str().ok_or("path")?;
    ok_json(run_at(
        url,
        tmp.path(),
        &[
            "wallet",
            "import",
            "--name",
            "val",
            "--private-key-file",
            key_path,
            "--json",
        ],
    ));
    ok_json(run_at(
        url,
        tmp.path(),
        &["stake", "add", "1000", "--from", "val", "--wait", "--json"],
    ));
    let datadir = five.to_str().ok_or("path")?;
    ok_json(run_at(
        url,
        tmp.path(),
        &[
            "stake",
            "validator",
            "--datadir",
            datadir,
            "--from",
            "val",
            "--wait",
            "--json",
        ],
    ));

    // From the next epoch the set has five validators, node 5 proposes blocks, and all five
    // keep finalizing.
    let joined_at = eventually(Duration::from_secs(60), || async {
        let status = one.chain_status().await.ok()?;
        (status.validators.len() == 5).then_some(status.height)
    })
    .await?;
    assert!(
        one.chain_status()
            .await?
            .validators
            .contains(&consensus_key.public_key().into())
    );
    let proposed_by_five = eventually(Duration::from_secs(60), || async {
        let head = finalized(&one).await?;
        for height in joined_at..=head {
            let block = one
                .get_block_by_number(BlockId::Number(height))
                .await
                .ok()??;
            if block.header.proposer == consensus_key.public_key() {
                return Some(height);
            }
        }
        None
    })
    .await?;
    all_reach(
        &[&one, &five_client],
        proposed_by_five + 5,
        Duration::from_secs(60),
    )
    .await?;
    Ok(())
}
