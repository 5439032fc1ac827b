//! `scripts/wan-testnet`: four validators in separate Linux network namespaces, joined by a
//! link that delays every frame 50 ms and loses 1 % of them, store a file through one node and
//! get it back through another, run a compute job, and keep finalizing; the script reports
//! finality p50/p99. Needs root (namespaces); the test says so and passes as a non-root user.

use std::path::Path;
use std::process::Command;

use crate::support::TestResult;

#[test]
fn a_testnet_across_a_lossy_wide_area_link_stores_computes_and_finalizes() -> TestResult {
    let uid = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("not run: scripts/wan-testnet needs root for network namespaces");
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/wan-testnet");
    let out = tempfile::tempdir()?;
    // What an interrupted run may have left (namespaces, links, nodes) goes first.
    let cleanup = Command::new(&script).arg("--cleanup").output()?;
    assert!(
        cleanup.status.success(),
        "{}",
        String::from_utf8_lossy(&cleanup.stderr)
    );
    let run = Command::new(&script)
        .args(["--seconds", "10", "--out"])
        .arg(out.path())
        .env("CAIRN_BIN", env!("CARGO_BIN_EXE_cairn"))
        .output()?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{printed}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json"))?)?;
    assert!(run.status.success(), "{printed}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["network"]["delayMs"], 50);
    assert_eq!(report["network"]["lossPct"], 1);
    // The link really is slow: a round trip across it takes at least twice the delay.
    for (host, rtt) in report["network"]["measuredRttMs"]
        .as_object()
        .ok_or("no RTT measured")?
    {
        assert!(rtt.as_f64().is_some_and(|ms| ms >= 100.0), "{host}: {rtt}");
    }
    assert_eq!(report["storage"]["bytesEqual"], true, "{report}");
    assert_eq!(report["compute"]["state"], "settled", "{report}");
    assert_eq!(report["compute"]["output"], report["compute"]["expected"]);
    assert!(
        report["finality"]["blocksFinalized"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    // Block timestamp to each node's commit, every block all nodes finalized in the window.
    let finality = &report["finalityPerBlock"];
    let p50 = finality["p50Ms"].as_f64().ok_or("no p50")?;
    let p99 = finality["p99Ms"].as_f64().ok_or("no p99")?;
    // A block needs messages across the link to be finalized: never under one delay.
    assert!(p50 >= 50.0 && p99 >= p50, "p50 {p50} ms, p99 {p99} ms");
    Ok(())
}
