//! Storage providers on a four-node testnet, two of them providers: `cairn storage put` leads
//! to accepted deals and proofs every epoch; `cairn storage get` on a node without a copy
//! fetches the file byte-identical although one provider serves corrupted pieces; a provider
//! that deletes the data misses its challenges, a forged proof from it is refused on chain,
//! and it is fined, terminated and slashed while the client is refunded. A provider killed and
//! restarted goes on proving.

use crate::support;

use std::time::Duration;

use alloy_sol_types::SolCall;
use cairn_primitives::{Address, B256, Bytes, Canonical, TxBody, TxStatus, U256};
use cairn_providers::DealState;
use cairn_reward_contracts::bindings::{Staking, StorageMarket};
use cairn_reward_contracts::{STAKING, STORAGE_MARKET};
use cairn_rpc::CairnApiClient;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use support::{TestResult, eventually, ok_json, run_at, view};

async fn deal(
    client: &HttpClient,
    id: B256,
) -> Result<StorageMarket::Deal, Box<dyn std::error::Error>> {
    view(client, STORAGE_MARKET, StorageMarket::dealOfCall { id }).await
}

/// Waits until `count` providers, heard through the node at `url`, have staked.
async fn staked_providers(url: &str, work: &std::path::Path, count: usize) -> TestResult {
    eventually(Duration::from_secs(120), || async {
        let list = ok_json(run_at(url, work, &["provider", "list", "--json"]));
        let staked = list
            .as_array()?
            .iter()
            .filter(|p| p["bonded"] != "0x0")
            .count();
        (staked == count).then_some(())
    })
    .await
}

/// Waits until `check` holds for deal `id`, for at most `within`.
async fn deal_reaches(
    client: &HttpClient,
    id: B256,
    within: Duration,
    check: impl Fn(&StorageMarket::Deal) -> bool,
) -> Result<StorageMarket::Deal, Box<dyn std::error::Error>> {
    eventually(within, || async {
        deal(client, id).await.ok().filter(|d| check(d))
    })
    .await
}

fn parse_b256(value: &serde_json::Value) -> Result<B256, Box<dyn std::error::Error>> {
    Ok(value.as_str().ok_or("not a string")?.parse()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_are_paid_for_proofs_corruption_is_caught_and_a_deleting_provider_is_slashed()
-> TestResult {
    let tmp = tempfile::tempdir()?;
    let init = [
        "--block-time",
        "200",
        "--storage-providers",
        "2",
        "--epoch-length",
        "10",
    ];
    // Node 1 is Byzantine: it serves corrupted pieces (its stored copy, and so its proofs,
    // stay sound).
    let (dir, testnet, _supervisor, _byzantine) = support::start_testnet_with_byzantine(
        tmp.path(),
        &init,
        |_| Ok(()),
        1,
        "--corrupt-served-pieces",
    )?;
    let clients = testnet
        .nodes
        .iter()
        .map(|n| HttpClientBuilder::default().build(&n.rpc_url))
        .collect::<Result<Vec<_>, _>>()?;
    let urls: Vec<&str> = testnet.nodes.iter().map(|n| n.rpc_url.as_str()).collect();
    let provider_of_node =
        |node: usize| testnet.nodes[node].storage_provider.ok_or("not a provider");
    let (honest, deleter) = (provider_of_node(0)?, provider_of_node(1)?);

    // The client's key, in a keystore.
    let work = tmp.path();
    let client_address = support::import_client(&testnet, urls[3], work)?;

    // Both providers stake, register and advertise by themselves.
    staked_providers(urls[3], work, 2).await?;

    // A caller without the node's admin token (a web page, a stranger) cannot change its data.
    let fake = B256::repeat_byte(7);
    let stranger = clients[3].blob_begin(fake, 3).await.err();
    let stranger = stranger.ok_or("a blob was begun without the admin token")?;
    assert!(stranger.to_string().contains("admin token"), "{stranger}");
    let stranger = clients[1].blob_remove(fake).await.err();
    assert!(
        stranger
            .ok_or("removed without the admin token")?
            .to_string()
            .contains("admin token")
    );

    // Bad input over RPC is refused with the reason and stores nothing.
    let four_client = cairn_client::Client::new(urls[3])?;
    let four = four_client.admin().await?;
    let unknown = four
        .blob_put_piece(fake, 0, vec![1, 2, 3].into(), vec![])
        .await;
    let unknown = unknown
        .err()
        .ok_or("a piece of unknown data was taken")?
        .to_string();
    assert!(unknown.contains("no data with root"), "{unknown}");
    four.blob_begin(fake, 3).await?;
    let forged = four
        .blob_put_piece(fake, 0, vec![1, 2, 3].into(), vec![])
        .await;
    let forged = forged.err().ok_or("a forged piece was taken")?.to_string();
    assert!(forged.contains("does not match its root"), "{forged}");
    assert_eq!(four.blob_status(fake).await?.map(|s| s.present), Some(0));
    let offer = four
        .storage_offer(fake)
        .await
        .err()
        .ok_or("an unknown deal was offered")?;
    assert!(offer.to_string().contains("not proposed"), "{offer}");

    // A file of awkward size (several pieces, a short last one), stored with both.
    let data: Vec<u8> = (0..1_300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = work.join("data.bin");
    std::fs::write(&file, &data)?;
    let root = B256::from(*blake3::hash(&data).as_bytes());
    let put = ok_json(run_at(
        urls[3],
        work,
        &[
            "storage",
            "put",
            file.to_str().ok_or("path")?,
            "--from",
            "client",
            "--replicas",
            "2",
            "--epochs",
            "30",
            "--json",
        ],
    ));
    assert_eq!(parse_b256(&put["root"])?, root);
    let mut deal_of = std::collections::BTreeMap::new();
    for deal in put["deals"].as_array().ok_or("no deals")? {
        assert_eq!(deal["state"], "active", "{deal}");
        let provider: Address = deal["provider"].as_str().ok_or("provider")?.parse()?;
        deal_of.insert(provider, parse_b256(&deal["id"])?);
    }
    let (honest_deal, deleter_deal) = (deal_of[&honest], deal_of[&deleter]);

    // An accepted deal cannot be cancelled: the client gets the reason, the deal stays.
    let refused = support::failure(run_at(
        urls[3],
        work,
        &[
            "storage",
            "cancel",
            &honest_deal.to_string(),
            "--from",
            "client",
            "--wait",
        ],
    ));
    assert!(refused.contains("WrongState"), "{refused}");
    assert_eq!(
        deal(&clients[0], honest_deal).await?.state,
        DealState::Active as u8
    );

    // Both prove; the honest provider is paid every epoch and its balance grows.
    let one = &clients[0];
    let claimable = |who: Address| view(one, STORAGE_MARKET, StorageMarket::claimableCall(who));
    for id in [honest_deal, deleter_deal] {
        deal_reaches(one, id, Duration::from_secs(90), |d| d.provenEpochs >= 1).await?;
    }
    let paid_before = claimable(honest).await?;
    assert!(paid_before > U256::ZERO);

    // Node 1's metrics show its provider's side: the deal, its proofs, its bond against its
    // minimum, what it may claim; promtool accepts them.
    let metrics_url = testnet.nodes[0]
        .metrics_url
        .clone()
        .ok_or("node 1 has a metrics URL")?;
    let (status, text) = support::http_get(&metrics_url, None)?;
    assert_eq!(status, 200);
    let value = |name: &str| support::metric(&text, name).unwrap_or(-1.0);
    assert_eq!(value("cairn_storage_deals_active"), 1.0, "{text}");
    assert_eq!(value("cairn_storage_deal_faults"), 0.0);
    assert_eq!(value("cairn_storage_stored_bytes"), data.len() as f64);
    assert!(value("cairn_storage_proofs_total{result=\"sent\"}") >= 1.0);
    assert!(value("cairn_storage_deals_accepted_total") >= 1.0);
    assert!(value("cairn_provider_bonded_crn") >= value("cairn_provider_minimum_bond_crn"));
    assert!(value("cairn_provider_minimum_bond_crn") > 0.0);
    assert!(
        value("cairn_provider_locked_crn") > 0.0,
        "the deal's collateral"
    );
    assert!(
        value("cairn_provider_claimable_crn") > 0.0,
        "the proofs' pay"
    );
    support::promtool_check_metrics(&text)?;
    // Every metric the shipped Grafana dashboard and alert rules query is one a provider's
    // node serves.
    for file in ["grafana/cairn.json", "prometheus/alerts.yml"] {
        for name in support::deployed_metric_names(file)? {
            assert!(
                support::serves_metric(&text, &name),
                "{file} queries {name}, not served"
            );
        }
    }

    // The provider lists what it holds: the file, whole.
    let held = ok_json(run_at(urls[0], work, &["storage", "list", "--json"]));
    let held = held.as_array().ok_or("list")?;
    assert!(
        held.iter()
            .any(|b| b["root"] == root.to_string() && b["present"] == b["pieces"]),
        "{held:?}"
    );

    // The client drops its own copy; node 3, which never had one, fetches the file from the
    // providers. Node 1's corrupted pieces are refused and fetched from node 2 instead.
    ok_json(run_at(
        urls[3],
        work,
        &["storage", "remove", &root.to_string(), "--json"],
    ));
    let out = work.join("out.bin");
    let got = ok_json(run_at(
        urls[2],
        work,
        &[
            "storage",
            "get",
            &root.to_string(),
            "-o",
            out.to_str().ok_or("path")?,
            "--json",
        ],
    ));
    assert_eq!(got["size"], data.len());
    assert_eq!(std::fs::read(&out)?, data, "the retrieved file differs");
    let metrics = clients[2].storage_metrics().await?;
    assert!(
        metrics.pieces_rejected >= 1,
        "no corrupted piece was caught: {metrics:?}"
    );

    // Node 2's provider deletes the data: it can no longer prove.
    let bond_before = view(one, STAKING, Staking::bondedOfCall { staker: deleter }).await?;
    let refund_before = claimable(client_address).await?;
    ok_json(run_at(
        urls[1],
        work,
        &["storage", "remove", &root.to_string(), "--json"],
    ));

    // A forged proof from it is included and refused by the contract. (Sent once the chain is
    // two epochs past the last epoch it proved, in case a proof was in flight at the removal.)
    let provider_key = cairn_node::datadir::read_key(&dir.join("node-2").join("provider.key"))?;
    let last_proven = deal(one, deleter_deal).await?.lastProvenEpoch;
    // The chain as node 1 sees it, whose view of the epoch seed is read next.
    let status = eventually(Duration::from_secs(60), || async {
        let status = one.chain_status().await.ok()?;
        (status.height / status.epoch_length >= last_proven + 2).then_some(status)
    })
    .await?;
    let epoch = status.height / status.epoch_length;
    let challenges = view(
        one,
        STORAGE_MARKET,
        StorageMarket::challengesCall {
            id: deleter_deal,
            epoch,
        },
    )
    .await?;
    let forged = StorageMarket::submitProofCall {
        id: deleter_deal,
        chunks: challenges
            .iter()
            .map(|_| Bytes::from(vec![0u8; 1024]))
            .collect(),
        paths: challenges
            .iter()
            .map(|_| Bytes::from(vec![0u8; 32 * 11]))
            .collect(),
    };
    let tx = TxBody {
        chain_id: status.chain_id,
        nonce: clients[1].get_nonce(deleter, Some(true)).await?,
        gas_limit: 1_000_000,
        max_fee_per_gas: u128::from(status.base_fee_per_gas) * 2,
        max_priority_fee_per_gas: 0,
        to: Some(STORAGE_MARKET),
        value: U256::ZERO,
        input: forged.abi_encode().into(),
    }
    .sign(&provider_key);
    let hash = clients[1].send_raw_transaction(tx.encode().into()).await?;
    let receipt = eventually(Duration::from_secs(30), || async {
        clients[1].get_receipt(hash).await.ok().flatten()
    })
    .await?;
    assert_eq!(receipt.receipt.status, TxStatus::Revert);
    let reason =
        cairn_reward_contracts::describe_revert(&receipt.receipt.output, |a| a.to_string())
            .unwrap_or_default();
    assert!(reason.contains("proof"), "{reason}");

    // Its node warns before the slash: `cairn provider status` lists the failed proof, the
    // metric counts it, and the dashboard shows it in a banner above the deal and the
    // earnings chart (headless Chromium renders the page; its screenshot is kept).
    let deleter_text = format!("{deleter:?}");
    let warnings = eventually(Duration::from_secs(60), || async {
        let status = ok_json(run_at(
            urls[1],
            work,
            &["provider", "status", &deleter_text, "--json"],
        ));
        let warnings = status["warnings"].as_array()?.clone();
        warnings
            .iter()
            .any(|w| w["kind"] == "proof_failed" && w["subject"] == deleter_deal.to_string())
            .then_some(warnings)
    })
    .await?;
    assert!(
        warnings
            .iter()
            .all(|w| w["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{warnings:?}"
    );
    let node_two_metrics = testnet.nodes[1].metrics_url.clone().ok_or("metrics URL")?;
    let (_, text) = support::http_get(&node_two_metrics, None)?;
    let failed = support::metric(&text, "cairn_provider_warnings{kind=\"proof_failed\"}");
    assert!(failed.is_some_and(|n| n >= 1.0), "{text}");
    let dashboard = testnet.nodes[1]
        .dashboard_url
        .clone()
        .ok_or("dashboard URL")?;
    let dom = support::browse(&dashboard, "dashboard-node-2")?;
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page never loaded: {dom}"
    );
    assert!(
        dom.contains(&format!("class=\"deal\" data-deal=\"{deleter_deal}\"")),
        "no row for the deal: {dom}"
    );
    assert!(
        dom.contains("id=\"earnings-chart\""),
        "no earnings chart: {dom}"
    );
    let banner = dom
        .split("id=\"warning-banner\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .ok_or("no banner")?;
    assert!(
        banner.contains("shown"),
        "the warning banner is hidden: {dom}"
    );
    assert!(dom.contains("proof failed"), "{dom}");
    // A deal the node does not hold is a clear not-found, not an error page.
    let (status, body) = support::http_get(
        &format!("{dashboard}api/deal/{}", B256::repeat_byte(9)),
        None,
    )?;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no deal"), "{body}");
    // So is an address with nothing on chain; the provider's own shows its role and bond.
    let account =
        |address: String| support::http_get(&format!("{dashboard}api/account/{address}"), None);
    let (status, body) = account(format!("{:?}", Address::repeat_byte(0x5e)))?;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no account"), "{body}");
    let (status, body) = account("0xnot-an-address".into())?;
    assert_eq!(status, 400, "{body}");
    let (status, body) = account(deleter_text.clone())?;
    assert_eq!(status, 200, "{body}");
    let known: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(known["roles"], serde_json::json!(["storage"]), "{body}");

    // Faults, then termination, settled by the client (nothing on chain iterates over deals):
    // fined each missed epoch and terminated at the third, all from the deal's collateral,
    // the client refunded.
    let deal_id = deleter_deal.to_string();
    let terminated = eventually(Duration::from_secs(120), || async {
        run_at(
            urls[0],
            work,
            &["storage", "settle", &deal_id, "--from", "client", "--json"],
        );
        let d = deal(one, deleter_deal).await.ok()?;
        (d.state == DealState::Terminated as u8).then_some(d)
    })
    .await?;
    assert_eq!(terminated.faults, 3);
    let bond_after = view(one, STAKING, Staking::bondedOfCall { staker: deleter }).await?;
    // Three fault fees of 3.5 epochs' price and a termination fee of 20.
    let fines =
        U256::from(terminated.pricePerEpoch) * U256::from(3 * 350 + 2_000) / U256::from(100);
    assert_eq!(
        bond_before - bond_after,
        fines,
        "three fault fees and the termination fee"
    );
    assert!(claimable(client_address).await? > refund_before + fines);
    let metrics = clients[1].storage_metrics().await?;
    assert!(
        metrics.proofs_failed >= 1,
        "the missed proofs were not counted: {metrics:?}"
    );

    // Meanwhile the honest provider kept proving and its earnings kept growing.
    let honest_now = deal(one, honest_deal).await?;
    assert_eq!(honest_now.state, DealState::Active as u8);
    assert_eq!(honest_now.faults, 0);
    assert!(claimable(honest).await? > paid_before);

    // A crash loses no deal: node 1 is killed and started again, and its provider goes on
    // proving from what it kept in its data directory.
    let three = &clients[2];
    let before = deal(three, honest_deal).await?.provenEpochs;
    support::signal(
        support::node_pid(&dir, 1)?,
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let _restarted = support::Process(
        support::cairn()
            .args(["node", "run", "--datadir"])
            .arg(dir.join("node-1"))
            .env("RUST_LOG", "warn,libp2p_gossipsub=error")
            .stdout(std::process::Stdio::null())
            .spawn()?,
    );
    // (An epoch may pass while it is down: a fault, not the end of the deal.)
    deal_reaches(three, honest_deal, Duration::from_secs(120), |d| {
        d.provenEpochs >= before + 2 && d.state == DealState::Active as u8
    })
    .await?;

    // `cairn storage deals` reports both.
    let deals = ok_json(run_at(
        urls[0],
        work,
        &["storage", "deals", "client", "--json"],
    ));
    let states: Vec<&str> = deals
        .as_array()
        .ok_or("deals")?
        .iter()
        .filter_map(|d| d["state"].as_str())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(
        states.contains(&"active") && states.contains(&"terminated"),
        "{states:?}"
    );
    Ok(())
}

/// `cairn storage put --replicas 2` through node 1, whose own provider is one of the two
/// chosen: the node offers that deal to itself instead of dialing itself. A rerun opens no new
/// deal (both replicas exist), and asking for more replicas than there are providers places
/// none twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_put_through_a_providers_own_node_places_each_replica_once_and_a_rerun_completes()
-> TestResult {
    let tmp = tempfile::tempdir()?;
    let init = ["--block-time", "200", "--storage-providers", "2"];
    let (_dir, testnet, _supervisor) = support::start_testnet(tmp.path(), &init, |_| Ok(()))?;
    let url = testnet.nodes[0].rpc_url.as_str();
    let own_provider = testnet.nodes[0]
        .storage_provider
        .ok_or("node 1 runs no provider")?;
    let work = tmp.path();
    support::import_client(&testnet, url, work)?;
    staked_providers(url, work, 2).await?;

    let file = work.join("data.bin");
    std::fs::write(&file, vec![42u8; 300_000])?;
    let file = file.to_str().ok_or("path")?;
    let put = |replicas: &'static str| {
        run_at(
            url,
            work,
            &[
                "storage",
                "put",
                file,
                "--from",
                "client",
                "--replicas",
                replicas,
                "--json",
            ],
        )
    };
    let first = ok_json(put("2"));
    let deals: Vec<&serde_json::Value> = first["deals"].as_array().ok_or("deals")?.iter().collect();
    assert_eq!(deals.len(), 2, "{first}");
    assert!(deals.iter().all(|d| d["state"] == "active"), "{first}");
    let providers: Vec<Address> = deals
        .iter()
        .filter_map(|d| d["provider"].as_str()?.parse().ok())
        .collect();
    assert!(
        providers.contains(&own_provider),
        "node 1's own provider took a replica: {first}"
    );

    // The same put again: both replicas exist, nothing new is opened.
    let again = ok_json(put("2"));
    let ids = |report: &serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = report["deals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&again), ids(&first));
    // More replicas than providers: refused, and no provider asked twice.
    let short = support::failure(put("3"));
    assert!(short.contains("only 2 of 3 replicas placed"), "{short}");
    let listed = ok_json(run_at(url, work, &["storage", "deals", "client", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    Ok(())
}
