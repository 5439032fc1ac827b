//! Compute providers on a four-node testnet, three of them compute providers and node 1's a
//! liar: `cairn compute submit` of the example digits classifier (a quantized neural network)
//! on the held-out images is run by a provider, re-executed by a verifier (both commit, then
//! reveal, with the same output root and fuel) and paid after the challenge window, and `cairn
//! compute result` writes the classes, at least 95 % of them right; a job assigned to the liar,
//! which returns a wrong class, is disputed, the panel (the one provider left) sides with the
//! truth, the liar is slashed and the honest verifier and referee share the slash; the example
//! word count is settled with its count; a job that runs out of fuel is settled as such.

use crate::support;

use std::path::Path;
use std::time::Duration;

use alloy_sol_types::SolEvent;
use cairn_node::testnet::NodeFile;
use cairn_primitives::{Address, B256, U256};
use cairn_providers::JobState;
use cairn_providers::slots::PROVIDER;
use cairn_reward_contracts::bindings::{ComputeMarket, Staking};
use cairn_reward_contracts::{COMPUTE_MARKET, STAKING};
use cairn_rpc::CairnApiClient;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use support::{TestResult, eventually, failure, ok_json, run_at, view};

/// Whether one of `events` (LiarSlashed logs) is for `job`.
fn lied_job_slashed(events: &[alloy_rpc_types_eth::Log], job: B256) -> bool {
    events.iter().any(|log| log.topics().get(1) == Some(&job))
}

async fn settled(
    client: &HttpClient,
    id: B256,
) -> Result<ComputeMarket::Job, Box<dyn std::error::Error>> {
    eventually(Duration::from_secs(120), || async {
        view(client, COMPUTE_MARKET, ComputeMarket::jobOfCall { id })
            .await
            .ok()
            .filter(|job| job.state == JobState::Settled as u8)
    })
    .await
}

/// What `cairn compute result` of the settled job `id` writes to `output`.
fn compute_result(
    url: &str,
    work: &Path,
    id: &str,
    output: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    if output.exists() {
        std::fs::remove_file(output)?;
    }
    let out = output.to_str().ok_or("path")?;
    ok_json(run_at(
        url,
        work,
        &["compute", "result", id, "-o", out, "--json"],
    ));
    Ok(std::fs::read_to_string(output)?)
}

/// Waits until `count` compute providers are advertised with their bonds seasoned (draws
/// weigh bonds at least a whole epoch old), as seen by the node at `url`, which jobs are
/// submitted to (`submit` checks eligibility on its state, which can be a block behind
/// another node's).
async fn seasoned_compute_providers(url: &str, work: &Path, count: usize) -> TestResult {
    let ready = eventually(Duration::from_secs(120), || async {
        // A node still starting (or busy: EVM calls wait their turn) fails the call: not yet.
        let listed = run_at(url, work, &["provider", "list", "--json"]);
        let list: serde_json::Value = listed
            .status
            .success()
            .then(|| serde_json::from_slice(&listed.stdout).ok())??;
        let ready = list
            .as_array()?
            .iter()
            .filter(|p| p["bonded"] != "0x0" && p["cores"] == 2)
            .filter_map(|p| p["provider"].as_str()?.parse::<Address>().ok())
            .collect::<Vec<_>>();
        (ready.len() == count).then_some(ready)
    })
    .await?;
    let submitting = HttpClientBuilder::default().build(url)?;
    eventually(Duration::from_secs(120), || async {
        for provider in &ready {
            let call = Staking::seasonedBondOfCall { staker: *provider };
            if view(&submitting, STAKING, call).await.ok()?.is_zero() {
                return None;
            }
        }
        Some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_verified_and_paid_a_liar_is_slashed_and_running_out_of_fuel_is_settled()
-> TestResult {
    let tmp = tempfile::tempdir()?;
    // Node 1 is Byzantine: its compute provider lies about every job's output.
    let bond_liar_richly = |dir: &Path| -> TestResult {
        let datadir = dir.join("node-1");
        let mut file = NodeFile::load(&datadir)?.ok_or("node-1 has no node.json")?;
        // A bond that stays above the minimum however often it is slashed here (below it, the
        // agent would bond again and blur the slashes).
        if let Some(offer) = &mut file.compute_provider {
            offer.stake_crn = 2_000;
        }
        file.save(&datadir)?;
        Ok(())
    };
    let init = ["--block-time", "200", "--compute-providers", "3"];
    let (_dir, testnet, _supervisor, _byzantine) = support::start_testnet_with_byzantine(
        tmp.path(),
        &init,
        bond_liar_richly,
        1,
        "--lie-about-results",
    )?;
    let one = HttpClientBuilder::default().build(&testnet.nodes[0].rpc_url)?;
    let url = testnet.nodes[3].rpc_url.as_str();
    let liar = testnet.nodes[0]
        .compute_provider
        .ok_or("node 1 is no compute provider")?;

    let work = tmp.path();
    support::import_client(&testnet, url, work)?;
    seasoned_compute_providers(url, work, 3).await?;

    let jobs = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/jobs");
    let module = format!("{jobs}/digits.wasm");
    let module = module.as_str();
    let images = format!("{jobs}/digits/heldout.bin");
    let images = images.as_str();
    let expected = std::fs::read_to_string(format!("{jobs}/digits/heldout-expected.txt"))?;
    let liar_bond = view(&one, STAKING, Staking::bondedOfCall { staker: liar }).await?;

    // Jobs go to providers at random (weighted by bond): submit until one went to the liar and
    // one to an honest provider.
    let (mut honest_job, mut lied_job, mut lies) = (None, None::<B256>, Vec::new());
    for _ in 0..40 {
        let job = ok_json(run_at(
            url,
            work,
            &[
                "compute", "submit", module, "--input", images, "--from", "client", "--json",
            ],
        ));
        let id: B256 = job["id"].as_str().ok_or("id")?.parse()?;
        let provider: Address = job["provider"].as_str().ok_or("provider")?.parse()?;
        if provider == liar {
            lied_job.get_or_insert(id);
            lies.push(id);
        } else {
            honest_job.get_or_insert(id);
        }
        if honest_job.is_some() && lied_job.is_some() {
            break;
        }
    }
    let honest_job = honest_job.ok_or("no job went to an honest provider")?;
    if lied_job.is_none() {
        return Err("no job went to the liar".into());
    }

    // The honest job: agreed (the verifier's re-execution gave the same output root and
    // fuel), paid, and its output is the classes the network gives on every machine.
    let job = settled(&one, honest_job).await?;
    assert!(job.providerPaid);
    assert_eq!(job.decided.outcome, 0, "completed");
    let (provider, verifier) = (&job.parties[PROVIDER], &job.parties[1]);
    assert_eq!(provider.result.outputRoot, verifier.result.outputRoot);
    assert_eq!(provider.result.fuelUsed, verifier.result.fuelUsed);
    let paid = view(
        &one,
        COMPUTE_MARKET,
        ComputeMarket::claimableCall(job.parties[PROVIDER].who),
    )
    .await?;
    // 60 % of fuel × price, less the burnt tenth of it.
    let payment = U256::from(job.decided.fuelUsed) * U256::from(job.pricePerFuel) * U256::from(54)
        / U256::from(100);
    assert!(
        payment > U256::ZERO && paid >= payment,
        "paid {paid}, the job pays {payment}"
    );
    let output = work.join("output.txt");
    let out = output.to_str().ok_or("path")?;
    let result_of = |job: &str| compute_result(url, work, job, &output);
    let classes = result_of(&honest_job.to_string())?;
    assert_eq!(classes, expected);
    let labels = std::fs::read_to_string(format!("{jobs}/digits/heldout-labels.txt"))?;
    let right = classes
        .lines()
        .zip(labels.lines())
        .filter(|(line, label)| line.split(' ').next() == Some(*label))
        .count();
    assert!(right * 100 >= 95 * labels.lines().count(), "{right} right");
    // The honest provider's node counts the job it ran and the fuel it burnt.
    let runner = job.parties[PROVIDER].who;
    let runner_node = testnet
        .nodes
        .iter()
        .find(|node| node.compute_provider == Some(runner))
        .ok_or("the runner's node")?;
    let metrics_url = runner_node.metrics_url.clone().ok_or("a metrics URL")?;
    let (_, text) = support::http_get(&metrics_url, None)?;
    let value = |name: &str| support::metric(&text, name).unwrap_or(-1.0);
    assert!(
        value("cairn_compute_jobs_total{kind=\"run\"}") >= 1.0,
        "{text}"
    );
    assert!(value("cairn_compute_fuel_total") >= job.decided.fuelUsed as f64);
    support::promtool_check_metrics(&text)?;

    // The liar's jobs: disputed, the panel sides with the verifier, the liar is slashed and
    // not paid.
    let overturned = |job: &ComputeMarket::Job| {
        let provider = &job.parties[PROVIDER];
        provider.who == liar
            && !job.providerPaid
            && provider.revealed
            && provider.result.outputRoot != job.decided.outputRoot
    };
    for id in &lies {
        assert!(overturned(&settled(&one, *id).await?), "job {id}");
    }
    let bond_after = view(&one, STAKING, Staking::bondedOfCall { staker: liar }).await?;
    let crn = U256::from(10u64).pow(U256::from(18));
    // Each lie the panel judged slashed the liar once (a lie whose panel could not fetch the
    // input, on a loaded machine, is refunded and judges nobody): the market's LiarSlashed
    // events, read with eth_getLogs, account for every token the liar lost.
    let slashed_events = cairn_rpc::eth::EthApiClient::logs(
        &one,
        alloy_rpc_types_eth::Filter::new()
            .from_block(0)
            .address(COMPUTE_MARKET)
            .event_signature(ComputeMarket::LiarSlashed::SIGNATURE_HASH)
            .topic2(liar.into_word()),
    )
    .await?;
    let mut slashed = U256::ZERO;
    for log in &slashed_events {
        let event = ComputeMarket::LiarSlashed::decode_log(&log.inner)?;
        assert!(lies.contains(&event.id), "a slash for job {}", event.id);
        assert_eq!(event.slashed, U256::from(50u64) * crn, "the liar slash");
        slashed += event.slashed;
    }
    assert_eq!(
        liar_bond - bond_after,
        slashed,
        "the liar slash, once per judged lie"
    );
    let lied_job = lies
        .iter()
        .copied()
        .find(|id| lied_job_slashed(&slashed_events, *id))
        .ok_or("no lie was judged")?;
    let job = settled(&one, lied_job).await?;
    let (verifier, referee) = (job.parties[1].who, job.parties[3].who);
    assert!(referee != Address::ZERO && referee != liar && referee != verifier);
    let verifier_paid = view(&one, COMPUTE_MARKET, ComputeMarket::claimableCall(verifier)).await?;
    assert!(
        verifier_paid >= U256::from(25u64) * crn,
        "the verifier shares the slash with the referee"
    );
    // The true output is the verifier's, and it is what `cairn compute result` fetches.
    assert_eq!(result_of(&lied_job.to_string())?, expected);

    // The word count, whichever provider runs it.
    let text = work.join("input.txt");
    std::fs::write(
        &text,
        "the quick brown fox\njumps over\tthe lazy dog ".repeat(300),
    )?;
    let input = text.to_str().ok_or("path")?;
    let wordcount = format!("{jobs}/wordcount.wasm");
    let job = ok_json(run_at(
        url,
        work,
        &[
            "compute", "submit", &wordcount, "--input", input, "--from", "client", "--wait",
            "--json",
        ],
    ));
    assert_eq!(job["state"], "settled", "{job}");
    assert_eq!(result_of(job["id"].as_str().ok_or("id")?)?, "2700\n");

    // A job that never stops runs out of fuel; that is agreed on and settled.
    let spin = format!("{jobs}/spin.wasm");
    let job = ok_json(run_at(
        url,
        work,
        &[
            "compute",
            "submit",
            &spin,
            "--input",
            input,
            "--from",
            "client",
            "--max-fuel",
            "200000",
            "--wait",
            "--json",
        ],
    ));
    assert_eq!(job["state"], "settled", "{job}");
    let agreed = &job["decided"];
    assert_eq!(agreed["outcome"], "out of fuel", "{job}");
    assert_eq!(agreed["fuelUsed"], 200_000, "{job}");
    let refused = failure(run_at(
        url,
        work,
        &[
            "compute",
            "result",
            job["id"].as_str().ok_or("id")?,
            "-o",
            out,
        ],
    ));
    assert!(refused.contains("out of fuel"), "{refused}");
    Ok(())
}

/// The data a job brought to its parties' nodes (module, input, output) is deleted once the
/// job has been over for the time the provider keeps job data, after the client fetched its
/// output. (What a node keeps, and why, is tested in `cairn_storage` and
/// `cairn_providers::job_data`.)
#[tokio::test(flavor = "multi_thread")]
async fn an_ended_jobs_data_leaves_its_parties_after_the_time_kept() -> TestResult {
    let tmp = tempfile::tempdir()?;
    // Long enough for `compute result` on a loaded machine, short enough to wait for.
    const KEPT_S: u64 = 30;
    let keep_briefly = |dir: &Path| -> TestResult {
        for node in ["node-1", "node-2"] {
            let datadir = dir.join(node);
            let mut file = NodeFile::load(&datadir)?.ok_or("no node.json")?;
            let offer = file.compute_provider.as_mut().ok_or("no compute offer")?;
            offer.keep_job_data_seconds = KEPT_S;
            file.save(&datadir)?;
        }
        Ok(())
    };
    let init = ["--block-time", "200", "--compute-providers", "2"];
    let (_dir, testnet, _supervisor) = support::start_testnet(tmp.path(), &init, keep_briefly)?;
    let url = testnet.nodes[3].rpc_url.as_str();
    let work = tmp.path();
    support::import_client(&testnet, url, work)?;
    seasoned_compute_providers(url, work, 2).await?;

    let wordcount = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/jobs/wordcount.wasm"
    );
    let text = work.join("input.txt");
    std::fs::write(&text, "a job's data, kept for a while ".repeat(100))?;
    let input = text.to_str().ok_or("path")?;
    let job = ok_json(run_at(
        url,
        work,
        &[
            "compute", "submit", wordcount, "--input", input, "--from", "client", "--wait",
            "--json",
        ],
    ));
    assert_eq!(job["state"], "settled", "{job}");
    let id = job["id"].as_str().ok_or("id")?;
    let output = compute_result(url, work, id, &work.join("output.txt"))?;
    assert_eq!(output, "700\n");

    let root = |field: &serde_json::Value| -> Result<B256, Box<dyn std::error::Error>> {
        Ok(field.as_str().ok_or("a root")?.parse()?)
    };
    let roots = [
        root(&job["moduleRoot"])?,
        root(&job["inputRoot"])?,
        root(&job["decided"]["outputRoot"])?,
    ];
    let parties = [job["provider"].clone(), job["verifier"].clone()];
    for party in parties {
        let who: Address = party.as_str().ok_or("a party")?.parse()?;
        let node = testnet
            .nodes
            .iter()
            .find(|node| node.compute_provider == Some(who))
            .ok_or("the party's node")?;
        let client = HttpClientBuilder::default().build(&node.rpc_url)?;
        let metrics_url = node.metrics_url.clone().ok_or("a metrics URL")?;
        eventually(Duration::from_secs(150), || async {
            for root in roots {
                if CairnApiClient::blob_status(&client, root)
                    .await
                    .ok()?
                    .is_some()
                {
                    return None;
                }
            }
            let (_, text) = support::http_get(&metrics_url, None).ok()?;
            // Module, input and output all came to this node with the job: three blobs go.
            (support::metric(&text, "cairn_compute_job_blobs_released_total")? >= 3.0).then_some(())
        })
        .await?;
    }
    Ok(())
}
