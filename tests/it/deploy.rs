//! The files an operator deploys beside the nodes: the Prometheus configuration and its alert
//! rules pass `promtool` (`check config`, `check rules`), and every alert fires on the series
//! that should raise it and on no other (`promtool test rules deploy/prometheus/alerts.test.yml`);
//! the Grafana dashboard is well formed and its queries parse. (That every series they query is
//! one a node serves is checked against a provider node's scrape in `it::storage`.)

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

/// The Grafana dashboard: valid JSON, every panel on the `datasource` variable, unique panel
/// ids, and every query valid PromQL (`promtool check rules` on a rule file made of them, with
/// Grafana's variables given values).
#[test]
fn the_grafana_dashboard_is_valid_and_its_queries_parse() -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/cairn.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let panels = dashboard["panels"].as_array().ok_or("no panels")?;
    let mut ids = std::collections::BTreeSet::new();
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for panel in panels {
        let id = panel["id"].as_u64().ok_or("a panel without an id")?;
        assert!(ids.insert(id), "panel id {id} twice");
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{panel}");
            let expr = target["expr"]
                .as_str()
                .ok_or("a query without an expression")?;
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$__interval", "1m")
                .replace("$instance", ".*");
            assert!(!expr.contains('$'), "a Grafana variable left: {expr}");
            rules.push_str(&format!(
                "      - record: grafana:panel_{id}:{}\n        expr: {}\n",
                target["refId"].as_str().unwrap_or("A"),
                serde_json::to_string(&expr)?
            ));
        }
    }
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("grafana.yml"), rules)?;
    promtool(&["check", "rules", "grafana.yml"], dir.path(), "")
}
