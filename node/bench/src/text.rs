//! The benchmarks' reports as an operator reads them (`cairn bench ...` without `--json`).

use crate::compute::ComputeReport;
use crate::flood::FloodReport;
use crate::network::NetworkReport;
use crate::state_root::StateRootReport;
use crate::storage::{StorageBenchOptions, StorageReport};
use crate::{PrecompileCost, TransferReport, WorkloadReport};

/// `cairn bench transfers`.
pub fn transfers(report: &TransferReport) -> String {
    let row =
        |name: &str, ms: f64| format!("  {name:<22} {ms:>10.1} ms  {:>5.1} %\n", report.share(ms));
    let mut text = format!(
        "Signed transfers ({:?}), submission to commit ({} txs in {} blocks, {} funded accounts)\n  throughput             {:>10.0} tx/s\n\n",
        report.signature, report.transactions, report.blocks, report.accounts, report.tx_per_sec
    );
    text.push_str(&row(
        &format!("admission ({} threads)", report.submitters),
        report.admission_ms,
    ));
    text.push_str(&format!(
        "  {:<22} {:>10.1} ms  (alone, one core: {:.2} µs each)\n",
        "  signatures",
        report.signature_checks_ms,
        1000.0 * report.signature_checks_ms / report.transactions.max(1) as f64
    ));
    text.push_str(&row("execution (revm)", report.execution_ms));
    text.push_str(&row("state root (trie)", report.state_root_ms));
    text.push_str(&row("commit (RocksDB)", report.commit_ms));
    text.push_str(&row("block assembly", report.block_assembly_ms));
    text.push_str(&row("total", report.total_ms));
    text.push_str(&format!(
        "\n  execution alone        {:>10.0} tx/s  (the sequential executor on the same transactions)\n  pipeline ratio         {:>10.1} %\n  peak memory            {:>10.1} MiB\n",
        report.execution_only_tx_per_sec,
        100.0 * report.pipeline_ratio,
        report.peak_memory_bytes as f64 / (1024.0 * 1024.0)
    ));
    text
}

/// `cairn bench state-root`.
pub fn state_root(r: &StateRootReport) -> String {
    format!(
        "State commitment at {} accounts: {} blocks of {} changed leaves\n  root (new nodes, hashes)   {:>10.1} ms  {:>7.2} µs a leaf\n  commit (RocksDB batch)     {:>10.1} ms  {:>7.2} µs a leaf\n  both                       {:>10.1} ms  {:>7.2} µs a leaf\n  database on disk           {:>10.1} MiB\n  peak memory                {:>10.1} MiB\n  (filling the store took {:.0} ms, untimed)",
        r.accounts,
        r.blocks,
        r.changes_per_block,
        r.root_ms,
        r.root_us_per_leaf,
        r.commit_ms,
        r.commit_us_per_leaf,
        r.root_ms + r.commit_ms,
        r.total_us_per_leaf,
        r.database_bytes as f64 / (1024.0 * 1024.0),
        r.peak_memory_bytes as f64 / (1024.0 * 1024.0),
        r.fill_ms
    )
}

/// `cairn bench compute`.
pub fn compute(r: &ComputeReport) -> String {
    let native = match (r.digits_native_images_per_sec, r.digits_interpreter_overhead) {
        (Some(native), Some(overhead)) => format!(
            "\n  natively (the same C, built for this machine) {native:>10.0} images/s   the runner is {overhead:.0}× slower"
        ),
        _ => "\n  natively: not measured (pass --native-digits, built by scripts/build-jobs --native DIR)".into(),
    };
    let inference = format!(
        "Inference: digits classifier ({} bytes of WASM) on {} held-out images\n  {:.0} fuel an image   {:>10.0} images/s on the runner{native}\n  a 1,000-image job at the testnet's fuel price: {} wei ({:.6} CRN)\n",
        r.digits_module_bytes,
        r.digits_images,
        r.digits_fuel_per_image,
        r.digits_images_per_sec,
        r.digits_price_of_1000_images_wei,
        r.digits_price_of_1000_images_wei as f64 / 1e18,
    );
    inference
        + &format!(
            "WASM runner (wasmi, fuel metered), one core\n  endless job: {} fuel in {:.0} ms   {:>12.0} fuel/s\n  word count of 4 KiB ({} fuel), {} jobs   {:>10.0} jobs/s\nOn chain (3 compute providers)\n  postJob (draws the provider)        {:>9} gas\n  commit (provider; draws the verifier) {:>7} gas\n  reveal (the second; results agree)  {:>9} gas\n  expire (after the challenge window; pays) {:>3} gas\nA verifier re-executes the whole job: checking costs what running it cost, plus a commit and a reveal.",
            r.spin_fuel,
            r.spin_ms,
            r.fuel_per_sec,
            r.small_job_fuel,
            r.small_jobs,
            r.small_jobs_per_sec,
            r.post_job_gas,
            r.commit_gas,
            r.reveal_gas,
            r.settle_gas
        )
}

/// `cairn bench precompiles`.
pub fn precompiles(costs: &[PrecompileCost]) -> String {
    let mut text = format!(
        "{:<44} {:>7} {:>10} {:>9} {:>12}\n",
        "precompile", "bytes", "ns/call", "charged", "at ecrecover"
    );
    for c in costs {
        text.push_str(&format!(
            "{:<44} {:>7} {:>10.0} {:>9} {:>12.0}\n",
            c.name, c.input_bytes, c.ns_per_call, c.gas_charged, c.gas_at_ecrecover_rate
        ));
    }
    text.push_str("(at ecrecover: 3,000 gas × this call's time ÷ ecrecover's time)");
    text
}

/// `cairn bench network`, run at `tps` transfers per second for `seconds`.
pub fn network(report: &NetworkReport, tps: u64, seconds: u64) -> String {
    format!(
        "Loopback testnet of {} validators, {} ms blocks, {tps} transfers/s for {seconds} s\n  submitted              {:>10}\n  refused (pool full)    {:>10}\n  finalized on node 1    {:>10}\n  latency p50            {:>10.0} ms\n  latency p99            {:>10.0} ms\n  latency max            {:>10.0} ms\n  finalized throughput   {:>10.1} tx/s\n  blocks finalized       {:>10.2} /s",
        report.nodes,
        report.block_time_ms,
        report.submitted,
        report.refused,
        report.finalized,
        report.p50_ms,
        report.p99_ms,
        report.max_ms,
        report.finalized_tx_per_sec,
        report.blocks_per_sec
    )
}

/// `cairn bench flood`, with `tps` transfers a second in each phase of `seconds`.
pub fn flood(report: &FloodReport, tps: u64, seconds: u64) -> String {
    let row = |name: &str, calm: f64, flooded: f64, unit: &str| {
        format!("\n  {name:<22} {calm:>10.1} {flooded:>10.1} {unit}")
    };
    let (calm, flooded) = (&report.calm, &report.flooded);
    let mut text = format!(
        "Node 1 of a loopback testnet of {} validators flooded by three peers ({} ms blocks, {tps} transfers/s, {seconds} s a phase)\n  {:<22} {:>10} {:>10}",
        calm.nodes, calm.block_time_ms, "", "calm", "flooded"
    );
    text += &row(
        "submitted",
        calm.submitted as f64,
        flooded.submitted as f64,
        "",
    );
    text += &row(
        "finalized on node 1",
        calm.finalized as f64,
        flooded.finalized as f64,
        "",
    );
    text += &row("latency p50", calm.p50_ms, flooded.p50_ms, "ms");
    text += &row("latency p99", calm.p99_ms, flooded.p99_ms, "ms");
    text += &row("latency max", calm.max_ms, flooded.max_ms, "ms");
    text += &row(
        "blocks finalized",
        calm.blocks_per_sec,
        flooded.blocks_per_sec,
        "/s",
    );
    text += &row(
        "resident memory peak",
        report.calm_rss_mib as f64,
        report.flooded_rss_mib as f64,
        "MiB",
    );
    for attacker in &report.attackers {
        text += &format!(
            "\n  {:?} attacker: heard {}, published {}, requests {} ({} answered); cut off {}; connected at the end: {}",
            attacker.attack,
            attacker.heard,
            attacker.published,
            attacker.requests,
            attacker.answered,
            attacker
                .disconnected_after_ms
                .map_or_else(|| "never".to_string(), |ms| format!("after {ms} ms")),
            attacker.connected_at_end
        );
    }
    text
}

/// `cairn bench storage`, run with `options`.
pub fn storage(r: &StorageReport, options: &StorageBenchOptions) -> String {
    format!(
        "Storage over libp2p on loopback ({} MiB, every piece checked against the root)\n  upload (provider fetches from client)   {:>9.1} MiB/s\n  retrieval (from two holders at once)    {:>9.1} MiB/s\nChunk proofs from a {} MiB file in the chunk store\n  import (hash, outboard, write)          {:>9.1} MiB/s\n  proof generation, mean                  {:>9.1} µs\n  proof generation, slowest               {:>9.1} µs\n  siblings per proof                      {:>9}\nOn-chain verification ({} chunks per proof transaction)\n  gas per proof transaction               {:>9}\n  execution time per proof transaction    {:>9.1} µs",
        options.transfer_mib,
        r.upload_mib_per_sec,
        r.retrieval_mib_per_sec,
        options.proof_file_mib,
        r.import_mib_per_sec,
        r.prove_mean_us,
        r.prove_max_us,
        r.proof_path_len,
        r.challenges_per_tx,
        r.verify_gas_per_tx,
        r.verify_us_per_tx
    )
}

/// `cairn bench execution` with `txs` transactions per block.
pub fn execution(txs: usize, reports: &[WorkloadReport]) -> String {
    let mut text = format!(
        "Block execution, {txs} transactions per block; every parallel result was checked equal to the sequential one.\n\
         Medians of interleaved runs. The ceiling is the sequential executor on N shares of the block at once,\n\
         uncoordinated: as fast as this machine runs the block's work on N threads.\n\n\
         {:<40} {:>9} {:>11} {:>12} {:>9}\n",
        "workload / executor", "ms", "tx/s", "Mgas/s", "speedup"
    );
    for report in reports {
        let runs_per_tx = report
            .runs_per_tx
            .map_or("sequential fallback".to_string(), |runs| {
                format!("{runs:.2} Block-STM runs per tx at 2 threads")
            });
        text.push_str(&format!(
            "{} ({} gas; W/L {:.1}; {runs_per_tx})\n",
            report.workload, report.gas, report.dependency_bound
        ));
        let rows = report.runs.iter().map(|run| {
            let label = run.threads.map_or("  sequential".to_string(), |t| {
                if t == 1 {
                    // One worker hands every block to the sequential executor.
                    "  Block-STM, 1 thread (sequential code)".to_string()
                } else {
                    format!("  Block-STM, {t} threads")
                }
            });
            (label, run)
        });
        let ceilings = report.ceilings.iter().map(|run| {
            (
                format!("  ceiling, {} shares", run.threads.unwrap_or(1)),
                run,
            )
        });
        for (label, run) in rows.chain(ceilings) {
            text.push_str(&format!(
                "{label:<40} {:>9.1} {:>11.0} {:>12.1} {:>8.2}x\n",
                run.ms,
                run.tx_per_sec,
                run.gas_per_sec / 1e6,
                run.speedup
            ));
        }
    }
    text
}

/// `cairn bench economics`.
pub fn economics(r: &crate::economics::EconomicsReport) -> String {
    let crn = |wei: &str| {
        let value: i128 = wei.parse().unwrap_or_default();
        format!("{:>14.4}", value as f64 / 1e18)
    };
    let mut text = format!(
        "Adversarial economics: {} epochs, seed {}, {} blocks\n{:<58} {:<17} {:>14} {:>14}  {}\n",
        r.epochs, r.seed, r.blocks, "strategy", "role", "profit CRN", "honest CRN", "caught after"
    );
    for s in &r.strategies {
        let caught = s
            .caught_after_epochs
            .map_or("-".to_string(), |e| format!("{e} epochs"));
        let verdict = if s.below_honest { "" } else { "  FAILS" };
        text.push_str(&format!(
            "{:<58} {:<17} {} {}  {caught}{verdict}\n",
            s.name,
            s.role,
            crn(&s.profit_wei),
            crn(&s.honest_profit_wei)
        ));
    }
    let j = &r.jobs;
    text.push_str(&format!(
        "jobs: {} posted, {} refused, {} paid, {} decided by a panel, {} challenged, {} settled wrong\nburnt {} CRN, emitted {} CRN; supply conserved after every epoch: {}",
        j.posted,
        j.refused,
        j.paid,
        j.disputed,
        j.challenged,
        j.wrong_accepted,
        crn(&r.burnt_wei).trim(),
        crn(&r.emitted_wei).trim(),
        r.supply_conserved
    ));
    text
}
