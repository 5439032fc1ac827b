//! The files an operator deploys beside the nodes: the Prometheus configuration and its alert
//! rules pass `promtool` (`check config`, `check rules`), and every alert fires on the series
//! that should raise it and on no other (`promtool test rules deploy/prometheus/alerts.test.yml`).

use std::path::{Path, PathBuf};

use crate::support::{TestResult, promtool};

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

#[test]
fn the_prometheus_configuration_and_alerts_pass_promtool() -> TestResult {
    let dir = prometheus_dir();
    promtool(&["check", "config", "prometheus.yml"], &dir, "")?;
    promtool(&["check", "rules", "alerts.yml"], &dir, "")?;
    promtool(&["test", "rules", "alerts.test.yml"], &dir, "")
}
