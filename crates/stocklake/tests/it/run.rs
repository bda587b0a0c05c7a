//! `stocklake run` as a user runs it: the whole pipeline in one process, fed over HTTP by the
//! simulator, read through the API and the dashboard (in headless Chromium), stopped with
//! SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    Browser, Spawned, chromium, dump_dom, free_port, ok, sigterm, stocklake, wait_http,
};

/// Waits for `check` to hold, polling; panics with `what` after a generous deadline (a test of
/// liveness, not of speed).
async fn eventually<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_stock_alerts_and_a_live_dashboard_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    ok({
        let mut c = stocklake(root, None);
        c.args(["simulate", "--seed", "11", "--stores", "2", "--skus", "80"])
            .args([
                "--days",
                "1",
                "--catalog-out",
                "master",
                "--to",
                "file:/dev/null",
            ]);
        c
    });
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = {
        let mut c = stocklake(root, None);
        c.args(["run", "--data-dir", "data", "--master-data", "master"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Spawned::guard(c.spawn().expect("spawn stocklake run"))
    };
    wait_http(&base);
    eventually("readiness", || async {
        let (s, _) = get(&format!("{base}/readyz")).await;
        (s == 200).then_some(Value::Null)
    })
    .await;

    // ten days of two stores' tills, over HTTP
    ok({
        let mut c = stocklake(root, None);
        c.args(["simulate", "--seed", "11", "--stores", "2", "--skus", "80"])
            .args(["--days", "10", "--to", &base]);
        c
    });

    // settled: refine and gold have no backlog, and the stock rows (every product that moved)
    // and gold's checkpoint are unchanged for two seconds — gold takes a backlog in steps
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = (0, Value::Null);
    let stock = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (s, v) = get(&format!("{base}/v1/stock?limit=10000")).await;
        let n = v["count"].as_u64().unwrap_or(0);
        let (_, pipeline) = get(&format!("{base}/v1/pipeline")).await;
        let stage = |name: &str| {
            pipeline["stages"]
                .as_array()
                .and_then(|a| a.iter().find(|st| st["stage"] == name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let idle = ["refine", "model"]
            .iter()
            .all(|name| stage(name)["backlog"] == 0);
        let now = (n, stage("model")["checkpoint"].clone());
        if s == 200 && n > 0 && idle && now == last {
            break v;
        }
        last = now;
        assert!(
            Instant::now() < deadline,
            "gave up waiting for stock levels"
        );
    };
    let rows = stock["stock"].as_array().expect("rows");
    let row = &rows[0];
    for field in [
        "store_id",
        "sku",
        "on_hand",
        "reorder_point",
        "safety_stock",
        "status",
    ] {
        assert!(!row[field].is_null(), "stock rows carry {field}: {row}");
    }
    let open = eventually("open alerts", || async {
        let (s, v) = get(&format!("{base}/v1/alerts?status=open")).await;
        (s == 200 && v["count"].as_u64().unwrap_or(0) > 0).then_some(v)
    })
    .await;
    let alert = &open["alerts"][0];
    assert!(alert["resolved_at"].is_null(), "{alert}");
    assert!(
        alert["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{alert}"
    );

    // filters narrow, and agree with each other
    let store = row["store_id"].as_str().expect("store_id");
    let sku = row["sku"].as_str().expect("sku");
    let (s, one) = get(&format!("{base}/v1/stock?store_id={store}&sku={sku}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["count"], 1, "{one}");
    assert_eq!(one["stock"][0]["sku"], sku);
    let (_, by_store) = get(&format!("{base}/v1/stock?store_id={store}&limit=10000")).await;
    let of_store = rows.iter().filter(|r| r["store_id"] == store).count() as u64;
    assert_eq!(by_store["count"].as_u64(), Some(of_store));
    let (_, below) = get(&format!(
        "{base}/v1/stock?status=below_reorder_point&limit=10000"
    ))
    .await;
    assert!(
        below["stock"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["status"] == "below_reorder_point"),
        "{below}"
    );
    let (_, all) = get(&format!("{base}/v1/alerts?limit=10000")).await;
    assert!(all["count"].as_u64() >= open["count"].as_u64());
    // `total` counts what the filters match, whatever the limit (asked again while the
    // model opens or resolves alerts between the requests)
    eventually("alert totals that agree with the alerts", || async {
        let (_, all) = get(&format!("{base}/v1/alerts?limit=10000")).await;
        let (_, first) = get(&format!("{base}/v1/alerts?limit=1")).await;
        let (_, of_store) = get(&format!("{base}/v1/alerts?store_id={store}&limit=1")).await;
        let in_store = all["alerts"]
            .as_array()
            .map(|a| a.iter().filter(|a| a["store_id"] == store).count() as u64);
        let agree = all["total"] == all["count"]
            && first["count"] == 1
            && first["total"] == all["total"]
            && of_store["total"].as_u64() == in_store;
        agree.then_some(Value::Null)
    })
    .await;
    // the CLI's table says when it shows only some of them
    let (_, all) = get(&format!("{base}/v1/alerts?limit=2")).await;
    assert_eq!(
        all["count"], 2,
        "the live run has opened several alerts: {all}"
    );
    let table = stocklake(root, None)
        .args(["alerts", "--all", "--limit", "1", "--data-dir", "data"])
        .output()
        .expect("stocklake alerts");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("1 of ")
            && l.ends_with("alerts shown, most severe first (--limit for more)")),
        "{table}"
    );
    let (_, summary) = get(&format!("{base}/v1/stock/summary?store_id={store}")).await;
    let products: u64 = summary["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| {
            ["fine", "below_reorder_point", "out_of_stock"]
                .iter()
                .map(|k| c[*k].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .sum();
    assert_eq!(products, of_store, "{summary}");
    let (s, stores) = get(&format!("{base}/v1/stores")).await;
    assert_eq!(s, 200, "{stores}");
    let (s, velocity) = get(&format!("{base}/v1/sales/velocity?hours=240")).await;
    assert_eq!(s, 200);
    assert!(!velocity["hours"].as_array().expect("hours").is_empty());

    // the order proposals: by API (JSON and CSV for an ordering system) and CLI, per store
    let orders = eventually("order proposals", || async {
        let (s, v) = get(&format!("{base}/v1/orders?store_id={store}")).await;
        (s == 200 && v["count"].as_u64().unwrap_or(0) > 0).then_some(v)
    })
    .await;
    for o in orders["orders"].as_array().expect("orders") {
        assert_eq!(o["store_id"], store, "{o}");
        let q: f64 = o["quantity"]
            .as_str()
            .and_then(|q| q.parse().ok())
            .expect("quantity");
        assert!(q > 0.0, "{o}");
        assert!(o["cases"].as_i64().is_some_and(|c| c > 0), "{o}");
        assert!(
            o["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Order ")),
            "{o}"
        );
        assert!(
            o["supplier_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("SUP-")),
            "{o}"
        );
    }
    // each on its supplier's order day, as suppliers.csv has it
    let calendars: std::collections::HashMap<String, String> =
        std::fs::read_to_string(root.join("master/suppliers.csv"))
            .expect("suppliers.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[3].to_string())
            })
            .collect();
    for o in orders["orders"].as_array().expect("orders") {
        let days = &calendars[o["supplier_id"].as_str().expect("supplier")];
        let date: chrono::NaiveDate = o["order_date"]
            .as_str()
            .expect("date")
            .parse()
            .expect("date");
        let weekday = date.format("%a").to_string();
        assert!(days.is_empty() || days.contains(&weekday), "{o} ({days})");
    }
    let first = &orders["orders"][0];
    let day = first["order_date"].as_str().expect("order_date");
    let (_, that_day) = get(&format!("{base}/v1/orders?store_id={store}&date={day}")).await;
    assert!(
        that_day["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .all(|o| o["order_date"] == day)
    );
    let csv = reqwest::get(format!("{base}/v1/orders?store_id={store}&format=csv"))
        .await
        .expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("text");
    assert!(
        csv.starts_with("store_id,sku,product_name,supplier_id,order_date,expected_delivery,quantity,cases,on_hand,on_order,reason\n"),
        "{csv}"
    );
    assert!(csv.lines().count() > 1);
    let table = stocklake(root, None)
        .args(["orders", "--store", store, "--data-dir", "data"])
        .output()
        .expect("stocklake orders");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(first["sku"].as_str().expect("sku")) && table.contains("to order for store"),
        "{table}"
    );
    let cli_csv = stocklake(root, None)
        .args(["orders", "--store", store, "--csv", "--data-dir", "data"])
        .output()
        .expect("stocklake orders --csv");
    assert!(String::from_utf8_lossy(&cli_csv.stdout).starts_with("store_id,sku,"));

    alert_actions_round_trip(&base).await;

    // bad requests: 400 with a message, never a 500
    for bad in [
        "/v1/orders?format=xml",
        "/v1/orders?date=tomorrow",
        "/v1/orders?limit=0",
        "/v1/stock?status=empty",
        "/v1/stock?limit=0",
        "/v1/stock?limit=many",
        "/v1/stock?colour=red",
        "/v1/alerts?status=closed",
        "/v1/alerts?alert_type=fire",
        "/v1/sales/velocity?hours=-1",
    ] {
        let (s, v) = get(&format!("{base}{bad}")).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {v}"
        );
    }
    let (s, _) = get(&format!("{base}/v1/nothing-here")).await;
    assert_eq!(s, 404);

    // pipeline health, metrics and the API's own description
    let (s, pipeline) = get(&format!("{base}/v1/pipeline")).await;
    assert_eq!(s, 200);
    let stages: Vec<&str> = pipeline["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    for stage in ["ingest", "refine", "model"] {
        assert!(stages.contains(&stage), "{pipeline}");
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "stocklake_ingest_records_total",
        "stocklake_refine_records_total",
        "stocklake_stage_lag_seconds",
        "stocklake_batch_seconds",
        "stocklake_open_alerts",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    let openapi = reqwest::get(format!("{base}/openapi.yaml"))
        .await
        .expect("openapi")
        .text()
        .await
        .expect("text");
    assert!(openapi.contains("/v1/alerts") && openapi.contains("openapi:"));

    // the dashboard, in a real browser: stock by category and the open alerts are drawn
    match chromium() {
        Some(browser) => {
            let profile = tempfile::tempdir().expect("profile");
            let dom = dump_dom(&browser, &format!("{base}/"), profile.path());
            assert!(
                dom.contains("data-testid=\"category-row\""),
                "no stock by category in the dashboard:\n{dom}"
            );
            assert!(
                dom.contains("data-testid=\"alert-row\""),
                "no alerts in the dashboard:\n{dom}"
            );
            assert!(
                dom.contains("data-testid=\"stage-row\""),
                "no pipeline health:\n{dom}"
            );
            assert!(
                dom.contains("data-testid=\"order-group\"")
                    && dom.contains("data-testid=\"order-row\""),
                "no orders to place:\n{dom}"
            );
            let profile = tempfile::tempdir().expect("profile");
            dashboard_actions(&browser, profile.path(), &base).await;
        }
        None => stocklake_testkit::missing("chromium", "no chromium binary on PATH"),
    }

    // SIGTERM: everything accepted is committed before the process exits, with success
    sigterm(&run);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = run.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "stocklake run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "exit {status}: {}",
        run.wait_stderr_text()
    );
    let out = ok({
        let mut c = stocklake(root, None);
        c.args(["status", "--data-dir", "data"]);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bronze") && text.contains("gold"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_ingest_and_reads_and_never_reach_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(
        root.join("tokens.txt"),
        "till-token-from-file-3\n\n# a comment\n",
    )
    .expect("tokens file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = {
        let mut c = stocklake(root, None);
        c.args(["run", "--data-dir", "data"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("STOCKLAKE_LOG", "debug")
            .env(
                "STOCKLAKE_INGEST_TOKENS",
                "till-token-one-1,till-token-two-2",
            )
            .env("STOCKLAKE_INGEST_TOKENS_FILE", root.join("tokens.txt"))
            .env("STOCKLAKE_SERVE_API_TOKEN", "dashboard+secret/A=")
            .env("STOCKLAKE_ALERTS_WEBHOOK_TOKEN", "webhook-secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Spawned::guard(c.spawn().expect("spawn stocklake run"))
    };
    wait_http(&base);
    let http = reqwest::Client::new();
    let post = |token: Option<&str>| {
        let mut r = http
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body("{\"event_id\":\"x\"}\n");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(post(None).await.expect("post").status().as_u16(), 401);
    assert_eq!(
        post(Some("guess")).await.expect("post").status().as_u16(),
        401
    );
    for t in [
        "till-token-one-1",
        "till-token-two-2",
        "till-token-from-file-3",
    ] {
        assert_eq!(
            post(Some(t)).await.expect("post").status().as_u16(),
            202,
            "{t}"
        );
    }
    // the scheme in any case (RFC 9110), the token exactly
    for (header, want) in [
        ("bearer till-token-one-1", 202),
        ("BEARER till-token-one-1", 202),
        ("Bearer till-token-one-", 401),
        ("Basic till-token-one-1", 401),
    ] {
        let got = http
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .header("authorization", header)
            .body("{\"event_id\":\"y\"}\n")
            .send()
            .await
            .expect("post")
            .status()
            .as_u16();
        assert_eq!(got, want, "{header}");
    }
    // the read side behind its own token, never from a query string; the dashboard's page,
    // script and styles hold no data and load without it; probes stay open for orchestrators
    for (path, token, want) in [
        ("/v1/stock", None, 401),
        ("/v1/alerts", Some("till-token-one-1"), 401),
        ("/v1/stock", Some("dashboard+secret/A="), 200),
        ("/v1/stock?token=dashboard%2Bsecret%2FA%3D", None, 401),
        ("/v1/pipeline", Some("dashboard+secret/A="), 200),
        ("/", None, 200),
        ("/assets/app.js", None, 200),
        ("/assets/app.css", None, 200),
        ("/healthz", None, 200),
        ("/readyz", None, 200),
    ] {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let got = r.send().await.expect("get").status().as_u16();
        assert_eq!(got, want, "GET {path} with token {token:?}");
    }
    // acting on alerts is a write: with a read token set and no write token, refused for all
    for token in [None, Some("dashboard+secret/A="), Some("till-token-one-1")] {
        let mut r = http
            .post(format!("{base}/v1/alerts/1/actions"))
            .json(&serde_json::json!({"action": "acknowledge"}));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let got = r.send().await.expect("post").status().as_u16();
        assert_eq!(got, 403, "POST an action with token {token:?}");
    }
    let got = http
        .get(format!("{base}/v1/alerts/1/actions"))
        .send()
        .await
        .expect("get")
        .status()
        .as_u16();
    assert_eq!(got, 401, "an alert's actions are data: the read scope");
    // the dashboard with the token set: given once in the link's fragment, it shows data; without
    // it, it asks for the token
    match chromium() {
        Some(browser) => {
            let profile = tempfile::tempdir().expect("profile");
            let dom = dump_dom(
                &browser,
                &format!("{base}/#token=dashboard%2Bsecret%2FA%3D"),
                profile.path(),
            );
            assert!(
                dom.contains("data-testid=\"stage-row\"") && dom.contains("login\" hidden"),
                "the dashboard with its token shows no pipeline:\n{dom}"
            );
            let profile = tempfile::tempdir().expect("profile");
            let dom = dump_dom(&browser, &format!("{base}/"), profile.path());
            assert!(
                dom.contains("a read token is needed")
                    && !dom.contains("data-testid=\"stage-row\""),
                "the dashboard without its token does not ask for it:\n{dom}"
            );
        }
        None => stocklake_testkit::missing("chromium", "no chromium binary on PATH"),
    }

    // a gold database that cannot be reached: the error names it, without its password
    let status = stocklake(root, None)
        .args(["status", "--data-dir", "data"])
        .env(
            "STOCKLAKE_GOLD",
            "postgres://stocklake:pg-password@127.0.0.1:1/none",
        )
        .output()
        .expect("status");
    assert!(!status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stderr)
            .contains("postgres://stocklake:***@127.0.0.1:1/none")
    );
    sigterm(&run);
    let exit = run.wait().expect("wait");
    let logs = format!(
        "{}{}{}{}",
        run.wait_stdout_text(),
        run.wait_stderr_text(),
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(exit.success(), "{logs}");
    assert!(logs.len() > 100, "debug logging produced output");
    for secret in [
        "till-token-one-1",
        "till-token-two-2",
        "till-token-from-file-3",
        "dashboard+secret/A=",
        "webhook-secret",
        "pg-password",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}

/// A panic is one event in the log's own format, text or JSON, and is still said with logging
/// switched off; never a bare "thread … panicked at" with a backtrace between the log's lines.
/// The panic here is asked for (debug builds only) by `STOCKLAKE_DEBUG_PANIC`.
#[test]
fn a_panic_is_one_event_in_the_logs_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (format, level, want) in [
        ("text", "warn", "ERROR panic: STOCKLAKE_DEBUG_PANIC is set"),
        ("json", "warn", "\"level\":\"ERROR\""),
        ("text", "off", "panic at "),
    ] {
        let out = stocklake(dir.path(), None)
            .args(["status", "--data-dir", "data"])
            .env("STOCKLAKE_LOG_FORMAT", format)
            .env("STOCKLAKE_LOG", level)
            .env("STOCKLAKE_DEBUG_PANIC", "1")
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("stocklake status");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let case = format!("{format}, logging {level}: {stderr}");
        assert_eq!(out.status.code(), Some(101), "{case}");
        assert!(stderr.contains(want), "{case}");
        assert!(stderr.contains("STOCKLAKE_DEBUG_PANIC is set"), "{case}");
        assert!(!stderr.contains("panicked at"), "{case}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{case}");
        if format == "json" {
            let event: Value = serde_json::from_str(stderr.trim_end()).expect("one JSON line");
            assert_eq!(event["level"], "ERROR", "{case}");
        }
    }
}

/// `stocklake status | head -0`, `stocklake alerts | head`: a report whose reader has gone away
/// ends the command quietly and successfully, as it ends other Unix tools; nothing is logged.
#[test]
fn a_report_to_a_reader_that_went_away_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["status", "--data-dir", "data"][..],
        &["status", "--data-dir", "data", "--json"][..],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = stocklake(dir.path(), None)
            .args(args)
            .stdout(writer)
            .output()
            .expect("stocklake status");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

/// The number in `text` right before `label` (`"12 open alerts"` → 12 for `"open alerts"`).
fn count_before(text: &str, label: &str) -> u64 {
    let at = text
        .find(&format!(" {label}"))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    text[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|e| panic!("no count before {label:?} ({e}) in:\n{text}"))
}

/// `stocklake demo` as the README runs it, smaller and shorter: history then live trading on the
/// embedded default, ended by `--duration`, with a summary whose alerts by type add up to the
/// alerts gold holds, all of them listed by `stocklake alerts --all` on the demo's data.
#[test]
fn the_demo_runs_the_chain_through_gold_and_sums_it_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let out = ok({
        let mut c = stocklake(dir.path(), None);
        c.args(["demo", "--duration", "20s", "--stores", "2", "--skus", "60"])
            .args([
                "--data-dir",
                "data",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ]);
        c
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .split("stocklake demo summary")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    // the progress line, every ten seconds: how many keys are out or short, how many alerts
    let progress = stdout
        .lines()
        .find(|l| l.contains(" s: ") && l.contains("records refined"))
        .unwrap_or_else(|| panic!("no progress line in:\n{stdout}"));
    assert!(
        count_before(progress, "out,") + count_before(progress, "below reorder point")
            <= count_before(progress, "stock levels"),
        "{progress}"
    );
    let gold = summary
        .lines()
        .find(|l| l.trim_start().starts_with("gold"))
        .unwrap_or_else(|| panic!("no gold line in:\n{summary}"));
    assert!(count_before(gold, "movements") > 0, "{gold}");
    assert!(count_before(gold, "stock levels") > 0, "{gold}");
    let total = count_before(gold, "alerts");
    assert!(total > 0, "{gold}");
    let by_type_line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("alerts"))
        .unwrap_or_else(|| panic!("no alerts line in:\n{summary}"));
    let by_type: u64 = [
        "out of stock",
        "projected stock-out",
        "below reorder point",
        "below safety stock",
        "phantom stock",
        "overstock",
        "negative",
    ]
    .iter()
    .map(|t| count_before(by_type_line, t))
    .sum();
    assert_eq!(by_type, total, "{summary}");

    // the demo's gold is there to read afterwards
    let listed = ok({
        let mut c = stocklake(dir.path(), None);
        c.args(["alerts", "--data-dir", "data/demo", "--all", "--json"])
            .args(["--limit", "100000"]);
        c
    });
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("alerts as JSON");
    let listed = listed.as_array().map(Vec::len);
    assert_eq!(listed, usize::try_from(total).ok());
}

/// The ids of the open alerts (what still needs someone).
async fn open_ids(base: &str) -> Vec<i64> {
    let (_, open) = get(&format!("{base}/v1/alerts?status=open&limit=10000")).await;
    open["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["alert_id"].as_i64())
        .collect()
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A store acts on its alerts through the API: acknowledges, assigns and snoozes one (it leaves
/// the open list for the handled one), resolves another with a shelf count, which reaches stock
/// through bronze, silver and gold exactly.
async fn alert_actions_round_trip(base: &str) {
    let (_, open) = get(&format!("{base}/v1/alerts?status=open&limit=10000")).await;
    let list = open["alerts"].as_array().expect("alerts").clone();
    assert!(list.len() >= 2, "{open}");
    let (a, b) = (&list[0], &list[1]);
    let id = |v: &Value| v["alert_id"].as_i64().expect("alert_id");
    let actions = |v: &Value| format!("{base}/v1/alerts/{}/actions", id(v));
    let (s, v) = post(
        &actions(a),
        serde_json::json!({"action": "acknowledge", "actor": "Ana"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["action"]["action"], "acknowledge");
    assert_eq!(v["action"]["actor"], "Ana");
    let (s, v) = post(
        &actions(a),
        serde_json::json!({"action": "assign", "assignee": "night shift"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let until = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let (s, v) = post(
        &actions(a),
        serde_json::json!({"action": "snooze", "until": until, "note": "delivery tomorrow"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(
        !open_ids(base).await.contains(&id(a)),
        "a snoozed alert leaves the open list"
    );
    let (_, handled) = get(&format!("{base}/v1/alerts?status=handled")).await;
    let shown = handled["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|x| id(x) == id(a))
        .cloned()
        .expect("the snoozed alert is among the handled ones");
    assert_eq!(shown["assignee"], "night shift");
    assert!(shown["acknowledged_at"].is_string() && shown["snoozed_until"].is_string());
    let (s, history) = get(&actions(a)).await;
    assert_eq!(s, 200);
    let kinds: Vec<&str> = history["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(kinds, ["acknowledge", "assign", "snooze"], "{history}");

    // a client that floods: the same request 40 times at once, with one idempotency key, is
    // one action; every other answer gives that action back
    let flood: Vec<_> = (0..40)
        .map(|_| {
            let url = actions(a);
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(url)
                    .header("idempotency-key", "ack-flood-1")
                    .json(&serde_json::json!({"action": "acknowledge", "actor": "flood"}))
                    .send()
                    .await
                    .expect("POST");
                (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
            })
        })
        .collect();
    let mut created = 0;
    for f in flood {
        let (s, v) = f.await.expect("join");
        assert!(s == 201 || (s == 200 && v["replayed"] == true), "{s} {v}");
        created += usize::from(s == 201);
    }
    assert_eq!(created, 1, "one action for one request sent 40 times");
    let (_, history) = get(&actions(a)).await;
    assert_eq!(
        history["actions"].as_array().map(Vec::len),
        Some(4),
        "{history}"
    );

    // a shelf check: 37 found where the records said otherwise; the request is sent twice with
    // its idempotency key (a client that timed out), and is one action and one count
    let (store, sku) = (
        b["store_id"].as_str().expect("store"),
        b["sku"].as_str().expect("sku"),
    );
    let check = serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": 37, "actor": "Ben"});
    let send = || async {
        let r = reqwest::Client::new()
            .post(actions(b))
            .header("idempotency-key", "shelf-check-0001")
            .json(&check)
            .send()
            .await
            .expect("POST");
        (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
    };
    let (s, v) = send().await;
    assert_eq!(s, 201, "{v}");
    let event = v["action"]["event_id"]
        .as_str()
        .expect("the count's event")
        .to_string();
    assert!(event.ends_with("-count-shelf-check-0001"), "{event}");
    let (s, again) = send().await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["action"]["event_id"], event.as_str());
    eventually("the shelf count in stock", || async {
        let (_, one) = get(&format!("{base}/v1/stock?store_id={store}&sku={sku}")).await;
        let on_hand = one["stock"][0]["on_hand"]
            .as_str()
            .and_then(|q| q.parse::<f64>().ok());
        (on_hand == Some(37.0)).then_some(Value::Null)
    })
    .await;
    assert!(
        !open_ids(base).await.contains(&id(b)),
        "a resolved alert leaves the open list"
    );
    let (_, history) = get(&actions(b)).await;
    assert_eq!(
        history["actions"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    assert_eq!(
        history["actions"][0]["event_id"],
        event.as_str(),
        "{history}"
    );
    assert_eq!(
        history["actions"][0]["counted_quantity"]
            .as_str()
            .and_then(|q| q.parse::<f64>().ok()),
        Some(37.0),
        "{history}"
    );

    // what is refused, and why
    for (path, body, status) in [
        (actions(a), serde_json::json!({"action": "delete"}), 400),
        (actions(a), serde_json::json!({"action": "snooze"}), 400),
        (
            actions(a),
            serde_json::json!({"action": "acknowledge", "colour": "red"}),
            400,
        ),
        (
            actions(b),
            serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": -3}),
            400,
        ),
        (
            format!("{base}/v1/alerts/abc/actions"),
            serde_json::json!({"action": "acknowledge"}),
            400,
        ),
        (
            format!("{base}/v1/alerts/999999999/actions"),
            serde_json::json!({"action": "acknowledge"}),
            404,
        ),
    ] {
        let (s, v) = post(&path, body.clone()).await;
        assert_eq!(s, status, "{path} {body}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    let (_, all) = get(&format!("{base}/v1/alerts?status=all&limit=10000")).await;
    if let Some(closed) = all["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|x| x["resolved_at"].is_string())
    {
        let (s, v) = post(
            &actions(closed),
            serde_json::json!({"action": "acknowledge"}),
        )
        .await;
        assert_eq!(s, 409, "{v}");
    }
}

/// A store manager on the dashboard, in a real browser: picks a store (the address keeps it),
/// marks an alert seen, snoozes it (it leaves the to-do list for the handled one), and answers
/// a shelf check with a count, which reaches stock.
async fn dashboard_actions(browser: &str, profile: &std::path::Path, base: &str) {
    // the store with the most to do: two of its alerts are acted on
    let (_, open) = get(&format!("{base}/v1/alerts?status=open&limit=10000")).await;
    let mut per_store = std::collections::BTreeMap::<String, usize>::new();
    for a in open["alerts"].as_array().expect("alerts") {
        *per_store
            .entry(a["store_id"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    let (store, to_do) = per_store
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .expect("open alerts");
    assert!(to_do >= 2, "{store} has {to_do} open alerts: {open}");
    let mut page = Browser::open(browser, profile, &format!("{base}/?store={store}")).await;
    let rows = "document.querySelectorAll('[data-testid=alert-row]')";
    page.until("alert rows", &format!("{rows}.length")).await;
    // the store from the address is the filter: every row is that store's
    let stores = page
        .eval(&format!(
            "Array.from({rows}).map(r => r.children[1].textContent)"
        ))
        .await;
    let stores = stores.as_array().expect("stores");
    assert!(
        stores.iter().all(|s| s == store.as_str()),
        "{stores:?} for {store}"
    );
    let first = page
        .eval(&format!("{rows}[0].dataset.alert"))
        .await
        .as_str()
        .expect("the first row's alert")
        .to_string();
    let button = |id: &str, which: &str| {
        format!("document.querySelector('[data-alert=\"{id}\"] [data-testid={which}]')")
    };
    page.eval(&format!(
        "{}.click(), true",
        button(&first, "act-acknowledge")
    ))
    .await;
    page.until(
        "the alert marked seen",
        &format!(
            "(document.querySelector('[data-alert=\"{first}\"] [data-testid=alert-state]') || {{}}).textContent || ''"
        ),
    )
    .await;
    page.eval(&format!("{}.click(), true", button(&first, "act-snooze")))
        .await;
    page.until(
        "the snoozed alert gone from the to-do list",
        &format!("!document.querySelector('[data-alert=\"{first}\"]')"),
    )
    .await;
    let (_, history) = get(&format!("{base}/v1/alerts/{first}/actions")).await;
    let kinds: Vec<&str> = history["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(kinds, ["acknowledge", "snooze"], "{history}");

    // a shelf check: the count typed into the prompt
    let second = page
        .until(
            "another alert",
            &format!("{rows}.length && {rows}[0].dataset.alert"),
        )
        .await
        .as_str()
        .expect("an alert id")
        .to_string();
    page.eval(&format!(
        "window.prompt = () => '4'; {}.click(), true",
        button(&second, "act-found")
    ))
    .await;
    page.until(
        "the checked alert gone from the to-do list",
        &format!("!document.querySelector('[data-alert=\"{second}\"]')"),
    )
    .await;
    let (_, history) = get(&format!("{base}/v1/alerts/{second}/actions")).await;
    let found = &history["actions"][0];
    assert_eq!(found["outcome"], "stock_found", "{history}");
    assert!(
        found["event_id"].is_string() && found["counted_quantity"] == "4",
        "the count became an event: {history}"
    );

    // the handled list shows the snoozed one (the counted one may be closed by then: the count
    // answered it), and the address keeps the choice
    page.eval(
        "(s => (s.value = 'handled', s.dispatchEvent(new Event('change')), true))(document.getElementById('alert-view'))",
    )
    .await;
    page.until(
        "the handled alerts",
        &format!("document.querySelector('[data-alert=\"{first}\"]')"),
    )
    .await;
    let search = page.eval("location.search").await;
    assert!(
        search
            .as_str()
            .is_some_and(|s| s.contains("alerts=handled") && s.contains(&format!("store={store}"))),
        "{search}"
    );
    page.close().await;
}
