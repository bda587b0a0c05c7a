//! `stocklake run`: every stage and the HTTP API in one supervised process.
//!
//! Stages hand work to each other the moment it lands: a bronze write wakes refine, a silver
//! commit wakes the model, an alert change wakes delivery. A failing stage retries with backoff
//! and shows up in `/v1/pipeline` without taking the others down. SIGTERM or Ctrl-C stops
//! accepting requests, writes what was accepted, and lets each stage commit before exiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use stocklake_ingest::{BronzeFeed, BronzeWriter, HttpIngest, KinesisSource};
use stocklake_model::notify::Notifier;
use stocklake_model::queries::{RunRecord, prune_runs, record_run};
use stocklake_model::{Gold, Model};
use stocklake_refine::Refiner;
use stocklake_serve::{AppState, Pipeline, RunInfo};
use stocklake_storage::aws;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::commands::ingest::{http_config, kinesis_config, listen};
use crate::commands::model::{
    model_config, notify_config, open_gold, open_lake, published_summary,
};
use crate::commands::refine::{CareSchedule, load_master, refine_config};
use crate::commands::shutdown_token;
use crate::config::Settings;

/// A running pipeline.
pub struct Running {
    pub url: String,
    pub pipeline: Arc<Pipeline>,
    pub gold: Gold,
    server: JoinHandle<anyhow::Result<()>>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Running {
    /// Waits until the pipeline is stopped (by its cancellation token).
    pub async fn wait(self) -> anyhow::Result<()> {
        let server = self.server.await.context("HTTP server task")?;
        for (name, t) in self.tasks {
            if let Err(e) = t.await {
                tracing::warn!(stage = name, error = %e, "stage task ended abnormally");
            }
        }
        server
    }
}

fn run_info(
    started: chrono::DateTime<Utc>,
    records_in: u64,
    records_out: u64,
    error: Option<String>,
) -> RunInfo {
    RunInfo {
        started_at: started,
        finished_at: Utc::now(),
        status: if error.is_some() {
            "error".into()
        } else {
            "ok".into()
        },
        records_in,
        records_out,
        error,
    }
}

/// Records runs in gold's `pipeline_run` off the hot path.
fn recorder(
    gold: Gold,
    cancel: CancellationToken,
) -> (mpsc::Sender<(String, RunInfo)>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<(String, RunInfo)>(10_000);
    let handle = tokio::spawn(async move {
        let mut since_prune = tokio::time::Instant::now();
        loop {
            let item = tokio::select! {
                i = rx.recv() => i,
                _ = cancel.cancelled() => rx.try_recv().ok(),
            };
            let Some((stage, r)) = item else { break };
            let rec = RunRecord {
                stage,
                started_at: r.started_at,
                finished_at: r.finished_at,
                status: r.status,
                records_in: r.records_in as i64,
                records_out: r.records_out as i64,
                error: r.error,
                details: None,
            };
            if let Err(e) = record_run(&gold, &rec).await {
                tracing::debug!(error = %e, "recording a stage run failed");
            }
            if since_prune.elapsed() > Duration::from_secs(600) {
                since_prune = tokio::time::Instant::now();
                let _ = prune_runs(&gold, 500).await;
            }
        }
    });
    (tx, handle)
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis((100u64 << failures.min(8)).min(30_000))
}

/// Starts every stage; they run until `cancel`.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Running> {
    settings.check_exposure(true)?;
    stocklake_telemetry::init();
    load_master(settings).await?;
    let gold = open_gold(settings).await?;
    let reader = Gold::connect(&settings.gold).await?;
    let mut stages = vec!["ingest", "refine", "model", "alerts"];
    if settings.stream.is_some() {
        stages.insert(0, "kinesis");
    }
    if settings.gold_lake.is_some() {
        stages.push("lake");
    }
    let pipeline = Pipeline::new(&stages);
    let ready = Arc::new(AtomicBool::new(false));
    let (runs, recorder_task) = recorder(gold.clone(), cancel.clone());
    let mut tasks: Vec<(&'static str, JoinHandle<()>)> = Vec::new();

    // ingest: HTTP (and Kinesis) into bronze, announcing each object
    let feed = BronzeFeed::new();
    let writer = BronzeWriter::open(&settings.bronze, &settings.aws)
        .with_context(|| format!("opening bronze at {}", settings.bronze))?
        .with_feed(feed.clone());
    let (ingest, writer_task) = HttpIngest::start(writer.clone(), http_config(settings));
    pipeline.update("ingest", |s| {
        s.state = "running".into();
        s.checkpoint = serde_json::json!({"http_partition": ingest.partition()});
    });
    // HTTP ingest takes requests rather than running batches: its records are sampled from its
    // counter every second, for the stage's total and rate (the dashboard's "records / s in")
    {
        let pipeline = pipeline.clone();
        let cancel = cancel.clone();
        tasks.push((
            "ingest-rate",
            tokio::spawn(async move {
                let counter = stocklake_telemetry::INGEST_RECORDS.with_label_values(&["http"]);
                let mut seen = counter.get();
                while !cancel.is_cancelled() {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    let now = counter.get();
                    pipeline.counted("ingest", Utc::now(), now.saturating_sub(seen));
                    seen = now;
                }
            }),
        ));
    }
    if let Some(stream) = settings.stream.clone() {
        let client = aws::kinesis_client(&settings.aws).await;
        let source = KinesisSource::new(client, kinesis_config(settings, &stream), writer.clone());
        let pipeline = pipeline.clone();
        let cancel = cancel.clone();
        let runs = runs.clone();
        tasks.push((
            "kinesis",
            tokio::spawn(async move {
                let mut failures = 0u32;
                while !cancel.is_cancelled() {
                    pipeline.update("kinesis", |s| s.state = "running".into());
                    let started = Utc::now();
                    let reporter = {
                        let source = source.clone();
                        let pipeline = pipeline.clone();
                        let cancel = cancel.clone();
                        tokio::spawn(async move {
                            while !cancel.is_cancelled() {
                                let status = source.status();
                                let lag =
                                    status.values().filter_map(|s| s.millis_behind_latest).max();
                                pipeline.update("kinesis", |s| {
                                    s.checkpoint = serde_json::to_value(
                                        status
                                            .iter()
                                            .map(|(k, v)| (k.clone(), v.checkpoint.clone()))
                                            .collect::<std::collections::BTreeMap<_, _>>(),
                                    )
                                    .unwrap_or_default();
                                    s.lag_seconds = lag.map(|ms| ms as f64 / 1000.0);
                                    s.records_total = status.values().map(|v| v.records).sum();
                                    // a shard that keeps failing (the service does not answer,
                                    // throttling) shows while it retries, not only once it gives up
                                    let failing = source.listing_error().or_else(|| {
                                        status.iter().find_map(|(k, v)| {
                                            v.last_error.as_ref().map(|e| format!("{k}: {e}"))
                                        })
                                    });
                                    if let Some(text) = failing
                                        && s.last_error.as_deref() != Some(text.as_str())
                                    {
                                        s.last_error = Some(text);
                                        s.last_error_at = Some(Utc::now());
                                    }
                                });
                                tokio::select! {
                                    _ = cancel.cancelled() => {}
                                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                }
                            }
                        })
                    };
                    let r = source.run(false, cancel.clone()).await;
                    reporter.abort();
                    match r {
                        Ok(n) => {
                            let info = run_info(started, n, n, None);
                            pipeline.run("kinesis", info.clone());
                            let _ = runs.try_send(("kinesis".into(), info));
                            failures = 0;
                        }
                        Err(e) => {
                            failures += 1;
                            let info = run_info(started, 0, 0, Some(e.to_string()));
                            pipeline.run("kinesis", info.clone());
                            let _ = runs.try_send(("kinesis".into(), info));
                            tracing::warn!(error = %e, "Kinesis source failed; restarting");
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                _ = tokio::time::sleep(backoff(failures)) => {}
                            }
                        }
                    }
                }
                pipeline.update("kinesis", |s| s.state = "stopped".into());
            }),
        ));
    }

    // refine: wakes on every new bronze object
    let refine_stopped = Arc::new(AtomicBool::new(false));
    let model_stopped = Arc::new(AtomicBool::new(false));
    let model_wake = Arc::new(Notify::new());
    let alerts_wake = Arc::new(Notify::new());
    let mut refiner = Refiner::open(refine_config(settings))
        .await
        .with_context(|| format!("opening silver at {}", settings.silver))?;
    refiner.scan().await?;
    {
        let pipeline = pipeline.clone();
        let cancel = cancel.clone();
        let feed = feed.clone();
        let model_wake = model_wake.clone();
        let runs = runs.clone();
        let settings = settings.clone();
        // when HTTP ingest has written everything it accepted, refine does a last pass
        let ingest_done = Arc::new(AtomicBool::new(false));
        let flag = ingest_done.clone();
        let writer_watch = tokio::spawn(async move {
            let _ = writer_task.await;
            flag.store(true, Ordering::SeqCst);
        });
        let refine_stopped = refine_stopped.clone();
        tasks.push(("ingest-writer", writer_watch));
        tasks.push((
            "refine",
            tokio::spawn(async move {
                let mut failures = 0u32;
                let mut last_scan = tokio::time::Instant::now();
                let mut care = CareSchedule::new(&settings);
                // the hand-off dropped objects: nothing newer is consumed before a listing
                let mut must_scan = false;
                loop {
                    let last_pass = cancel.is_cancelled() && ingest_done.load(Ordering::SeqCst);
                    let (handed, dropped) = feed.drain();
                    refiner.offer(handed);
                    must_scan |= dropped;
                    if must_scan || last_scan.elapsed() > Duration::from_secs(30) {
                        last_scan = tokio::time::Instant::now();
                        match refiner.scan().await {
                            Ok(_) => must_scan = false,
                            Err(e) => tracing::warn!(error = %e, "listing bronze failed"),
                        }
                    }
                    loop {
                        if must_scan {
                            break;
                        }
                        let started = Utc::now();
                        match refiner.run_batch().await {
                            Ok(Some(r)) => {
                                failures = 0;
                                let info = run_info(started, r.counts.records, r.counts.events, None);
                                let p = refiner.progress();
                                let backlog = refiner.backlog() as u64;
                                let lag = if backlog > 0 {
                                    p.max_arrived_at.map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0)
                                } else {
                                    Some(0.0)
                                };
                                pipeline.run("refine", info.clone());
                                pipeline.update("refine", |s| {
                                    s.checkpoint = serde_json::json!({"silver_batch": p.batch, "watermark": p.watermark});
                                    s.backlog = Some(backlog);
                                    s.lag_seconds = lag;
                                });
                                let _ = runs.try_send(("refine".into(), info));
                                model_wake.notify_one();
                                // also while refine has a backlog and does not come round
                                care.committed(1);
                                care.poll();
                            }
                            Ok(None) => {
                                pipeline.update("refine", |s| {
                                    s.backlog = Some(0);
                                    s.lag_seconds = Some(0.0);
                                    if s.state == "starting" {
                                        s.state = "running".into();
                                    }
                                });
                                break;
                            }
                            Err(e) => {
                                failures += 1;
                                let info = run_info(started, 0, 0, Some(e.to_string()));
                                pipeline.run("refine", info.clone());
                                let _ = runs.try_send(("refine".into(), info));
                                tracing::warn!(error = %e, "refine batch failed; retrying");
                                tokio::time::sleep(backoff(failures)).await;
                                break;
                            }
                        }
                    }
                    if last_pass {
                        break;
                    }
                    care.poll();
                    let pause = if cancel.is_cancelled() { 100 } else { 2000 };
                    tokio::select! {
                        _ = feed.wait() => {}
                        _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
                    }
                }
                care.finish().await;
                pipeline.update("refine", |s| s.state = "stopped".into());
                refine_stopped.store(true, Ordering::SeqCst);
                model_wake.notify_one();
            }),
        ));
    }

    // model: wakes on every silver commit
    let mut model = Model::open(model_config(settings), gold.clone()).await?;
    {
        let pipeline = pipeline.clone();
        let cancel = cancel.clone();
        let alerts_wake = alerts_wake.clone();
        let model_wake = model_wake.clone();
        let runs = runs.clone();
        let refine_stopped = refine_stopped.clone();
        let model_stopped = model_stopped.clone();
        tasks.push((
            "model",
            tokio::spawn(async move {
                let mut failures = 0u32;
                loop {
                    let last_pass = cancel.is_cancelled() && refine_stopped.load(Ordering::SeqCst);
                    loop {
                        let started = Utc::now();
                        match model.run_batch().await {
                            Ok(Some(r)) => {
                                failures = 0;
                                let info = run_info(started, r.lines as u64, r.keys_touched as u64, None);
                                pipeline.run("model", info.clone());
                                let pending = model.pending().await.unwrap_or(0);
                                pipeline.update("model", |s| {
                                    s.checkpoint = serde_json::json!({"silver_version": r.to_version});
                                    s.backlog = Some(pending);
                                    s.lag_seconds = if pending > 0 {
                                        r.max_arrived_at.map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0)
                                    } else {
                                        Some(0.0)
                                    };
                                });
                                let _ = runs.try_send(("model".into(), info));
                                if r.alerts_opened + r.alerts_resolved > 0 {
                                    alerts_wake.notify_one();
                                }
                            }
                            Ok(None) => {
                                pipeline.update("model", |s| {
                                    s.backlog = Some(0);
                                    s.lag_seconds = Some(0.0);
                                    if s.state == "starting" {
                                        s.state = "running".into();
                                    }
                                });
                                break;
                            }
                            Err(e) => {
                                failures += 1;
                                let info = run_info(started, 0, 0, Some(e.to_string()));
                                pipeline.run("model", info.clone());
                                let _ = runs.try_send(("model".into(), info));
                                tracing::warn!(error = %e, "gold batch failed; retrying");
                                tokio::time::sleep(backoff(failures)).await;
                                break;
                            }
                        }
                    }
                    if last_pass {
                        break;
                    }
                    tokio::select! {
                        _ = model_wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(if cancel.is_cancelled() { 100 } else { 1000 })) => {}
                    }
                }
                pipeline.update("model", |s| s.state = "stopped".into());
                model_stopped.store(true, Ordering::SeqCst);
                alerts_wake.notify_one();
            }),
        ));
    }

    // alerts: deliver from the outbox
    {
        let notifier = Notifier::new(gold.clone(), notify_config(settings))?;
        let pipeline = pipeline.clone();
        let cancel2 = CancellationToken::new();
        let stop = cancel2.clone();
        let outer = cancel.clone();
        let model_stopped = model_stopped.clone();
        pipeline.update("alerts", |s| {
            s.state = "running".into();
            s.checkpoint = serde_json::json!(if settings.config.alerts.webhook_url.is_empty() {
                "log"
            } else {
                "webhook"
            });
        });
        let wake = alerts_wake.clone();
        tasks.push((
            "alerts",
            tokio::spawn(async move {
                // delivery stops after the model has stopped (so its last changes go out too)
                let watcher = tokio::spawn(async move {
                    outer.cancelled().await;
                    while !model_stopped.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    stop.cancel();
                });
                notifier.run(wake, cancel2).await;
                watcher.abort();
                pipeline.update("alerts", |s| s.state = "stopped".into());
            }),
        ));
    }
    if let Some(lake) = open_lake(settings).await? {
        tasks.push((
            "lake",
            tokio::spawn(publish_lake(
                lake,
                gold.clone(),
                pipeline.clone(),
                runs.clone(),
                cancel.clone(),
                model_stopped.clone(),
                Duration::from_secs(settings.config.gold_lake_interval_secs.max(1)),
            )),
        ));
    }
    tasks.push(("recorder", recorder_task));

    // HTTP: the API, the dashboard and ingest on one listener
    let state = AppState {
        gold: reader,
        pipeline: pipeline.clone(),
        read_tokens: stocklake_http::TokenSet::new([&settings.config.serve.api_token]),
        ready: ready.clone(),
    };
    let app = stocklake_serve::router(state).merge(ingest.router());
    let (addr, server) = listen(settings, app, cancel.clone()).await?;
    let url = format!("http://{addr}");
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%url, bronze = %settings.bronze, silver = %settings.silver, gold = %crate::config::redact_url(&settings.gold), "stocklake is running");
    Ok(Running {
        url,
        pipeline,
        gold,
        server,
        tasks,
    })
}

/// The gold lake's stage: publishes gold's batches every `every`, and once more after the model
/// has stopped, so that what gold committed last is in the lake too.
async fn publish_lake(
    mut lake: stocklake_model::lake::GoldLake,
    gold: Gold,
    pipeline: Arc<Pipeline>,
    runs: mpsc::Sender<(String, RunInfo)>,
    cancel: CancellationToken,
    model_stopped: Arc<AtomicBool>,
    every: Duration,
) {
    pipeline.update("lake", |s| {
        s.state = "running".into();
        s.checkpoint = serde_json::json!(lake.root().url());
    });
    let mut failures = 0u32;
    // table care of the lake's small files, as for silver's: hourly
    let care_every = Duration::from_secs(3600);
    let mut last_care = tokio::time::Instant::now();
    loop {
        let last_pass = cancel.is_cancelled() && model_stopped.load(Ordering::SeqCst);
        if last_care.elapsed() >= care_every && !last_pass {
            last_care = tokio::time::Instant::now();
            match lake
                .care(&stocklake_refine::maintain::MaintainConfig::default())
                .await
            {
                Ok(done) => tracing::info!(
                    partitions_compacted =
                        done.iter().map(|c| c.partitions_compacted).sum::<usize>(),
                    files_vacuumed = done.iter().map(|c| c.files_vacuumed).sum::<usize>(),
                    "gold lake table care"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "gold lake table care failed; next hour again")
                }
            }
        }
        let started = Utc::now();
        let info = match lake.publish(&gold).await {
            Ok(done) => {
                failures = 0;
                let rows: u64 = done.iter().map(|d| d.rows).sum();
                let batches: std::collections::BTreeMap<&str, i64> =
                    done.iter().map(|d| (d.table.as_str(), d.batch)).collect();
                pipeline.update("lake", |s| {
                    s.checkpoint =
                        serde_json::json!({"root": lake.root().url(), "gold_batch": batches});
                    s.lag_seconds = Some(0.0);
                });
                if rows > 0 {
                    tracing::debug!("{}", published_summary(&done));
                }
                run_info(started, rows, rows, None)
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "publishing the gold lake failed; retrying");
                run_info(started, 0, 0, Some(e.to_string()))
            }
        };
        if info.records_in > 0 || info.error.is_some() {
            pipeline.run("lake", info.clone());
            let _ = runs.try_send(("lake".into(), info));
        }
        if last_pass {
            break;
        }
        let pause = if failures > 0 {
            backoff(failures)
        } else {
            every
        };
        tokio::select! {
            _ = cancel.cancelled() => {
                // the last pass waits for the model to have written its last batch
                while !model_stopped.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
    pipeline.update("lake", |s| s.state = "stopped".into());
}

pub async fn run(settings: &Settings, _args: RunArgs) -> anyhow::Result<()> {
    let cancel = shutdown_token();
    let running = start(settings, cancel).await?;
    progress!("stocklake is running: dashboard and API at {}", running.url);
    running.wait().await
}
