//! One node of a four-validator testnet flooded by three misbehaving peers (replayed votes and
//! proposals, junk proposals and forged votes, malformed requests) while transfers are sent:
//! finality goes on, each attacker is disconnected and kept out, memory stays under its
//! ceiling. The figures, calm and flooded, are `cairn bench flood`'s (docs/benchmarks.md).

use std::time::Duration;

use cairn_bench::flood::{FloodOptions, run};

#[tokio::test(flavor = "multi_thread")]
async fn attack_a_flooded_node_keeps_finalizing_and_bans_its_attackers()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let options = FloodOptions {
        nodes: 4,
        tx_per_sec: 50,
        phase: Duration::from_secs(6),
        block_time_ms: 250,
    };
    // `run` fails unless finality went on, every attacker was cut off and kept out, and the
    // memory stayed under its ceiling.
    let report = run(options, dir.path()).await?;
    assert!(report.flooded.finalized > 0);
    for attacker in &report.attackers {
        assert!(attacker.disconnected_after_ms.is_some(), "{attacker:?}");
        assert!(attacker.published + attacker.requests > 0, "{attacker:?}");
    }
    Ok(())
}
