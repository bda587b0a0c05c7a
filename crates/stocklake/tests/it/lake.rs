//! The gold lake, read by the engines its users bring: the Python `deltalake` package, Polars
//! and DuckDB see the same rows as the gold database, after a run that was killed and started
//! again (and, in deploy.rs, on S3).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use stocklake_model::Gold;
use stocklake_model::lake::{Col, TABLES, read};

use crate::common::*;

/// A table's unique key as the readers are asked for it (its partition column first).
fn key_of(t: &stocklake_model::lake::LakeTable) -> Vec<&'static str> {
    let mut key: Vec<&'static str> = t.partition.into_iter().collect();
    key.extend(t.key.iter().copied().filter(|k| Some(*k) != t.partition));
    key
}

fn decimals_of(t: &stocklake_model::lake::LakeTable) -> Vec<&'static str> {
    t.columns()
        .iter()
        .filter(|(_, c)| matches!(c, Col::Dec(_)))
        .map(|(n, _)| *n)
        .collect()
}

/// What gold holds, in the readers' terms: rows, sorted keys, exact sums of the decimals.
async fn gold_summary(gold: &Gold) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for t in TABLES {
        let (key, decimals) = (key_of(t), decimals_of(t));
        let names: Vec<&'static str> = key.iter().chain(decimals.iter()).copied().collect();
        let cols: Vec<(&'static str, Col)> = names
            .iter()
            .map(|n| *t.columns().iter().find(|(c, _)| c == n).expect("column"))
            .collect();
        let cols: &'static [(&'static str, Col)] = Box::leak(cols.into_boxed_slice());
        let sql = format!("SELECT {} FROM {}", names.join(", "), t.name);
        let b = read(gold, &sql, Vec::new(), cols).await.expect("gold");
        let opts = FormatOptions::default().with_null("");
        let fmt: Vec<ArrayFormatter<'_>> = (0..names.len())
            .map(|i| ArrayFormatter::try_new(b.column(i).as_ref(), &opts).expect("formatter"))
            .collect();
        let mut keys: Vec<String> = (0..b.num_rows())
            .map(|r| {
                (0..key.len())
                    .map(|i| fmt[i].value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        keys.sort();
        let sums: BTreeMap<&str, String> = decimals
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let i = key.len() + j;
                let sum: Decimal = (0..b.num_rows())
                    .filter_map(|r| fmt[i].value(r).to_string().parse::<Decimal>().ok())
                    .sum();
                (*c, sum.normalize().to_string())
            })
            .collect();
        out.insert(
            t.name.to_string(),
            json!({"rows": b.num_rows(), "keys": keys, "sums": sums}),
        );
    }
    out
}

/// Every engine reads from the lake at `root` what gold at `gold_url` holds.
pub async fn assert_lake_is_gold(
    root: &str,
    gold_url: &str,
    aws: Option<&stocklake_testkit::AwsOptions>,
) {
    let gold = Gold::connect(gold_url).await.expect("gold");
    let want = gold_summary(&gold).await;
    let spec: BTreeMap<&str, Value> = TABLES
        .iter()
        .map(|t| {
            (
                t.name,
                json!({"key": key_of(t), "decimals": decimals_of(t)}),
            )
        })
        .collect();
    let mut c = std::process::Command::new("python3");
    c.arg(repo_root().join("tests/fixtures/read_gold_lake.py"))
        .arg(root)
        .arg(serde_json::to_string(&spec).expect("spec"));
    if let Some(a) = aws {
        c.env(
            "AWS_ENDPOINT_URL",
            a.endpoint_url.clone().unwrap_or_default(),
        )
        .env("AWS_REGION", a.region_or_default())
        .env(
            "AWS_ACCESS_KEY_ID",
            a.access_key_id.clone().unwrap_or_default(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            a.secret_access_key.clone().unwrap_or_default(),
        );
    }
    let out = c.output().expect("python3");
    assert!(
        out.status.success(),
        "reading the gold lake failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    for t in TABLES {
        let engines = &seen[t.name];
        for engine in ["deltalake", "polars", "duckdb"] {
            if engines.get(engine).is_none() && engine == "duckdb" && aws.is_some() {
                continue;
            }
            let got = &engines[engine];
            let norm = |v: &Value| {
                let mut v = v.clone();
                if let Some(sums) = v["sums"].as_object_mut() {
                    for s in sums.values_mut() {
                        let d: Decimal = s.as_str().unwrap_or("0").parse().expect("sum");
                        *s = Value::String(d.normalize().to_string());
                    }
                }
                v
            };
            let want = &want[t.name];
            assert_eq!(got["rows"], want["rows"], "{engine} rows of {}", t.name);
            assert_eq!(
                norm(got),
                norm(want),
                "{engine} reads {} otherwise than gold holds it",
                t.name
            );
        }
    }
}

/// `stocklake run` with a gold lake, killed while the tills send and started again: when it has
/// stopped, the lake holds exactly what gold holds, for every engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_publishes_gold_to_a_delta_lake_through_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let known = known_events(
        root,
        &[
            "--seed", "17", "--stores", "2", "--skus", "40", "--days", "6",
        ],
    );
    let lake = root.join("gold-lake");
    let settings = [
        "--data-dir".to_string(),
        "data".to_string(),
        "--gold-lake".to_string(),
        format!("file://{}", lake.display()),
    ];
    let post = |base: String, chunk: Vec<Vec<u8>>| async move {
        let mut body = Vec::new();
        for r in chunk {
            body.extend_from_slice(&r);
            body.push(b'\n');
        }
        reqwest::Client::new()
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    let half = known.events.len() / 2;
    let (mut run, base) = start_run(root, None, &settings);
    for chunk in known.events[..half].chunks(3000) {
        assert_eq!(post(base.clone(), chunk.to_vec()).await.expect("post"), 202);
    }
    // the lake's stage has published something before the kill
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lake
        .join("fact_sales/_delta_log/00000000000000000001.json")
        .exists()
    {
        assert!(Instant::now() < deadline, "nothing published in a minute");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kill9(&mut run);
    let (mut run, base) = start_run(root, None, &settings);
    for chunk in known.events[half..].chunks(3000) {
        assert_eq!(post(base.clone(), chunk.to_vec()).await.expect("post"), 202);
    }
    // settled: gold has every line; then a graceful stop publishes gold's last batch
    let gold_url = format!("sqlite://{}", root.join("data/gold.db").display());
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, pipeline) = {
            let r = reqwest::get(format!("{base}/v1/pipeline"))
                .await
                .expect("pipeline");
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        };
        let movements = pipeline["gold"]["counts"]["movements"]
            .as_u64()
            .unwrap_or(0);
        if movements == known.movements {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gold has {movements} of {} lines",
            known.movements
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sigterm(&run);
    let status = run.wait().expect("wait");
    assert!(status.success(), "{}", run.wait_stderr_text());
    let out = ok({
        let mut c = stocklake(root, None);
        c.args(["status"]).args(&settings);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("each holding every row gold has"), "{text}");
    assert_lake_is_gold(&lake.display().to_string(), &gold_url, None).await;
}
