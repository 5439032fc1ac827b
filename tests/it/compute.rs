//! Compute providers on a four-node testnet, three of them compute providers and node 1's a
//! liar: `cairn compute submit` of the example word count is run by a provider, re-executed by
//! a verifier and paid, and `cairn compute result` writes the expected output; a job assigned
//! to the liar is disputed, the referee sides with the truth, the liar is slashed and the
//! honest verifier paid; a job that runs out of fuel is settled as such.

use crate::support;

use std::path::Path;
use std::time::Duration;

use cairn_node::testnet::NodeFile;
use cairn_primitives::{Address, B256, U256};
use cairn_providers::JobState;
use cairn_reward_contracts::bindings::{ComputeMarket, Staking};
use cairn_reward_contracts::{COMPUTE_MARKET, STAKING};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use support::{TestResult, eventually, failure, ok_json, run_at, view};

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
    eventually(Duration::from_secs(120), || async {
        let list = ok_json(run_at(url, work, &["provider", "list", "--json"]));
        let ready = list
            .as_array()?
            .iter()
            .filter(|p| p["bonded"] != "0x0" && p["cores"] == 2)
            .count();
        (ready == 3).then_some(())
    })
    .await?;

    let module = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/jobs/wordcount.wasm"
    );
    let input = work.join("input.txt");
    std::fs::write(
        &input,
        "the quick brown fox\njumps over\tthe lazy dog ".repeat(300),
    )?;
    let input = input.to_str().ok_or("path")?;
    let liar_bond = view(&one, STAKING, Staking::bondedOfCall { staker: liar }).await?;

    // Jobs go to providers at random (weighted by bond): submit until one went to the liar and
    // one to an honest provider.
    let (mut honest_job, mut lied_job, mut lies) = (None, None, Vec::new());
    for _ in 0..40 {
        let job = ok_json(run_at(
            url,
            work,
            &[
                "compute", "submit", module, "--input", input, "--from", "client", "--json",
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
    let (honest_job, lied_job) = (
        honest_job.ok_or("no job went to an honest provider")?,
        lied_job.ok_or("no job went to the liar")?,
    );

    // The honest job: agreed, paid, and its output is the word count.
    let job = settled(&one, honest_job).await?;
    assert_eq!(job.liar, Address::ZERO);
    assert_eq!(job.claimed.outcome, 0, "completed");
    let paid = view(
        &one,
        COMPUTE_MARKET,
        ComputeMarket::claimableCall(job.provider),
    )
    .await?;
    let payment = U256::from(job.claimed.fuelUsed) * U256::from(job.pricePerFuel) * U256::from(8)
        / U256::from(10);
    assert!(
        payment > U256::ZERO && paid >= payment,
        "paid {paid}, the job pays {payment}"
    );
    let output = work.join("count.txt");
    let out = output.to_str().ok_or("path")?;
    ok_json(run_at(
        url,
        work,
        &[
            "compute",
            "result",
            &honest_job.to_string(),
            "-o",
            out,
            "--json",
        ],
    ));
    assert_eq!(std::fs::read_to_string(&output)?, "2700\n");

    // The liar's jobs: disputed, the referee sides with the verifier, the liar is slashed.
    for id in &lies {
        assert_eq!(settled(&one, *id).await?.liar, liar);
    }
    let job = settled(&one, lied_job).await?;
    assert_eq!(job.provider, liar);
    assert_eq!(job.liar, liar, "the liar is named");
    assert!(job.referee != Address::ZERO && job.referee != liar && job.referee != job.verifier);
    assert_ne!(job.claimed.outputRoot, job.attested.outputRoot);
    let bond_after = view(&one, STAKING, Staking::bondedOfCall { staker: liar }).await?;
    let crn = U256::from(10u64).pow(U256::from(18));
    let slashes = U256::from(50 * lies.len() as u64) * crn;
    assert_eq!(
        liar_bond - bond_after,
        slashes,
        "the liar slash, once per lie"
    );
    let verifier_paid = view(
        &one,
        COMPUTE_MARKET,
        ComputeMarket::claimableCall(job.verifier),
    )
    .await?;
    assert!(
        verifier_paid > U256::from(50u64) * crn,
        "the verifier gets the slash and its fee"
    );
    // The true output is the verifier's, and it is what `cairn compute result` fetches.
    std::fs::remove_file(&output)?;
    ok_json(run_at(
        url,
        work,
        &[
            "compute",
            "result",
            &lied_job.to_string(),
            "-o",
            out,
            "--json",
        ],
    ));
    assert_eq!(std::fs::read_to_string(&output)?, "2700\n");

    // A job that never stops runs out of fuel; that is agreed on and settled.
    let spin = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/jobs/spin.wasm");
    let job = ok_json(run_at(
        url,
        work,
        &[
            "compute",
            "submit",
            spin,
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
    let agreed = if job["liar"].is_null() {
        &job["claimed"]
    } else {
        &job["attested"]
    };
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
