//! The files an operator deploys beside the nodes: the Prometheus configuration and its alert
//! rules pass `promtool` (`check config`, `check rules`), and every alert fires on the series
//! that should raise it and on no other (`promtool test rules deploy/prometheus/alerts.test.yml`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::TestResult;

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

/// Runs promtool with `args` in deploy/prometheus; its complaint if it fails.
fn promtool(args: &[&str]) -> TestResult {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(prometheus_dir())
        .output()
        .map_err(|e| format!("cannot run promtool: {e} (scripts/test fetches it)"))?;
    if !output.status.success() {
        return Err(format!(
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

#[test]
fn the_prometheus_configuration_and_alerts_pass_promtool() -> TestResult {
    promtool(&["check", "config", "prometheus.yml"])?;
    promtool(&["check", "rules", "alerts.yml"])?;
    promtool(&["test", "rules", "alerts.test.yml"])
}
