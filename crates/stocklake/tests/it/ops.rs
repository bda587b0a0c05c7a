//! The operations kit names only metrics stocklake serves: every metric the Prometheus alerting
//! rules (deploy/prometheus) and the Grafana dashboard (deploy/grafana) use is in `/metrics` of
//! a real `stocklake run` reading Kinesis (moto) and HTTP.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::*;

/// Every `stocklake_…` metric a text names, with a histogram's `_bucket`, `_sum` and `_count`
/// taken back to the histogram.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("stocklake_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        // a metric, not the `stocklake_dead_letters`-like prose of a description
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_name_is_served() {
    let root = repo_root();
    let rules =
        std::fs::read_to_string(root.join("deploy/prometheus/stocklake.rules.yml")).expect("rules");
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/dashboards/stocklake.json"))
        .expect("dashboard");
    let board: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let exprs: String = board["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    // rules: only their expressions (descriptions may name a table, as gold_dead_letter)
    let rule_exprs: String = rules
        .lines()
        .skip_while(|l| !l.contains("rules:"))
        .filter(|l| !l.trim_start().starts_with("description:") && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let wanted: BTreeSet<String> = metric_names(&exprs)
        .into_iter()
        .chain(metric_names(&rule_exprs))
        .collect();
    for must in [
        "stocklake_ingest_records_total",
        "stocklake_stage_lag_seconds",
        "stocklake_quarantine_reasons_total",
        "stocklake_dead_letters_total",
        "stocklake_batch_seconds",
        "stocklake_open_alerts",
        "stocklake_stage_last_success_timestamp_seconds",
    ] {
        assert!(
            wanted.contains(must),
            "the kit does not watch {must}: {wanted:?}"
        );
    }

    let Some(moto) = stocklake_testkit::moto() else {
        return;
    };
    let aws = stocklake_testkit::AwsOptions::emulator(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = format!("kinesis://{}", stocklake_testkit::unique("ops"));
    let settings = [
        "--data-dir".to_string(),
        dir.path().join("data").display().to_string(),
        "--stream".to_string(),
        stream.clone(),
    ];
    let mut c = stocklake(dir.path(), Some(&aws));
    c.args(["init", "--shards", "1"]).args(&settings);
    ok(c);
    let (run, base) = start_run(dir.path(), Some(&aws), &settings);
    // records by both sources, one of them bad
    let mut c = stocklake(dir.path(), Some(&aws));
    c.args([
        "simulate", "--seed", "3", "--stores", "1", "--skus", "20", "--days", "1",
    ])
    .args(["--to", &stream]);
    ok(c);
    let mut c = stocklake(dir.path(), Some(&aws));
    c.args([
        "simulate", "--seed", "4", "--stores", "1", "--skus", "20", "--days", "1",
    ])
    .args(["--to", &base]);
    ok(c);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body("not an event\n")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 202);

    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let served: BTreeSet<String> = text
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect();
        let missing: Vec<&String> = wanted.iter().filter(|m| !served.contains(*m)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "the rules or the dashboard name metrics /metrics does not serve: {missing:?}\n{}",
        run.stderr_text()
    );
}
