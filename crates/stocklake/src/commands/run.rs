//! `stocklake run`: every stage and the HTTP API in one process, under one supervisor
//! ([`crate::supervisor`]).
//!
//! Stages hand work to each other the moment it lands: a bronze write wakes refine, a silver
//! commit wakes the model, an alert change wakes delivery. A failing stage retries with backoff
//! and shows up in `/v1/pipeline` without taking the others down. SIGTERM or Ctrl-C stops
//! accepting requests, writes what was accepted, and lets each stage commit, in order, before
//! exiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use stocklake_ingest::{BronzeFeed, BronzeWriter, HttpIngest, KinesisSource};
use stocklake_model::lake::GoldLake;
use stocklake_model::notify::Notifier;
use stocklake_model::queries::{RunRecord, prune_runs, record_run};
use stocklake_model::{Gold, Model};
use stocklake_refine::Refiner;
use stocklake_serve::{AppState, Pipeline, RunInfo, StageState};
use stocklake_storage::aws;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::commands::ingest::{http_config, kinesis_config, listen};
use crate::commands::model::{model_config, open_gold, open_lake};
use crate::commands::refine::{CareSchedule, load_master, refine_config};
use crate::commands::shutdown_token;
use crate::config::Settings;
use crate::stages::{
    KinesisStage, LakeStage, ModelStage, RefineStage, deliver_alerts, sample_ingest,
};
use crate::supervisor::{Completion, Finished, Pace, Status, supervise};

/// A running pipeline.
pub struct Running {
    pub url: String,
    pub pipeline: Arc<Pipeline>,
    pub gold: Gold,
    server: JoinHandle<anyhow::Result<()>>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Running {
    /// Waits until the pipeline is stopped (by its cancellation token, or by a stage's failure
    /// that no retry could mend: then the error names it).
    pub async fn wait(self) -> anyhow::Result<()> {
        let server = self.server.await.context("HTTP server task")?;
        for (name, t) in self.tasks {
            if let Err(e) = t.await {
                tracing::warn!(stage = name, error = %e, "stage task ended abnormally");
            }
        }
        if let Some(fatal) = self.pipeline.fatal() {
            anyhow::bail!("stocklake stopped: {fatal}");
        }
        server
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

/// Starts every stage under the supervisor; they run until `cancel`, then stop in order:
/// ingest writes what it accepted, refine makes its last pass over it, the model over refine's,
/// and delivery and the gold lake over the model's.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Running> {
    settings.check_exposure(true)?;
    stocklake_telemetry::init();
    load_master(settings).await?;
    let gold = open_gold(settings).await?;
    let reader = Gold::connect(&settings.gold).await?;
    let mut names = vec!["ingest", "refine", "model", "alerts"];
    if settings.stream.is_some() {
        names.insert(0, "kinesis");
    }
    if settings.gold_lake.is_some() {
        names.push("lake");
    }
    let pipeline = Pipeline::new(&names);
    let (runs, recorder_task) = recorder(gold.clone(), cancel.clone());
    let status = |name| Status::new(name, pipeline.clone(), Some(runs.clone()));
    let mut tasks: Vec<(&'static str, JoinHandle<()>)> = Vec::new();

    let (ingest, feed, ingest_finished) =
        start_ingest(settings, &status, &cancel, &mut tasks).await?;

    // refine: wakes on every new bronze object
    let model_wake = Arc::new(Notify::new());
    let alerts_wake = Arc::new(Notify::new());
    let mut refiner = Refiner::open(refine_config(settings))
        .await
        .with_context(|| format!("opening silver at {}", settings.silver))?;
    refiner.scan().await?;
    let refine = RefineStage::new(
        refiner,
        Some(feed),
        CareSchedule::new(settings),
        Some(model_wake.clone()),
        Duration::from_secs(30),
        false,
    );
    let (refine_done, refine_finished) = Completion::new();
    tasks.push((
        "refine",
        tokio::spawn(supervise(
            refine,
            status("refine"),
            cancel.clone(),
            ingest_finished,
            refine_done,
            REFINE_PACE,
        )),
    ));

    // model: wakes on every silver commit
    let model = ModelStage {
        model: Model::open(model_config(settings), gold.clone()).await?,
        wake: model_wake,
        alerts: alerts_wake.clone(),
        verbose: false,
    };
    let (model_done, model_finished) = Completion::new();
    tasks.push((
        "model",
        tokio::spawn(supervise(
            model,
            status("model"),
            cancel.clone(),
            refine_finished,
            model_done,
            MODEL_PACE,
        )),
    ));

    // alerts: deliver from the outbox
    tasks.push((
        "alerts",
        deliver_alerts(
            Notifier::new(gold.clone(), settings.notify.clone())?,
            alerts_wake,
            status("alerts"),
            !settings.config.alerts.webhook_url.is_empty(),
            cancel.clone(),
            model_finished.clone(),
        ),
    ));
    if let Some(lake) = open_lake(settings).await? {
        tasks.push((
            "lake",
            spawn_lake(
                settings,
                lake,
                gold.clone(),
                status("lake"),
                cancel.clone(),
                model_finished,
            ),
        ));
    }
    tasks.push(("recorder", recorder_task));

    // HTTP: the API, the dashboard and ingest on one listener
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        gold: reader,
        pipeline: pipeline.clone(),
        read_tokens: stocklake_http::TokenSet::new([&settings.config.serve.api_token]),
        write_tokens: stocklake_http::TokenSet::new([&settings.config.serve.write_token]),
        events: Some(ingest.clone()),
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

/// Starts ingest: HTTP (and Kinesis, under the supervisor) into bronze, each object announced
/// to refine through the feed. What finishes once HTTP ingest has written all it accepted.
async fn start_ingest(
    settings: &Settings,
    status: &impl Fn(&'static str) -> Status,
    cancel: &CancellationToken,
    tasks: &mut Vec<(&'static str, JoinHandle<()>)>,
) -> anyhow::Result<(HttpIngest, Arc<BronzeFeed>, Finished)> {
    let feed = BronzeFeed::new();
    let writer = BronzeWriter::open(&settings.bronze, &settings.aws)
        .with_context(|| format!("opening bronze at {}", settings.bronze))?
        .with_feed(feed.clone());
    let (ingest, writer_task) = HttpIngest::start(writer.clone(), http_config(settings));
    let partition = ingest.partition();
    status("ingest").update(|s| {
        s.state = StageState::Running;
        s.checkpoint = serde_json::json!({"http_partition": partition});
    });
    tasks.push((
        "ingest-rate",
        sample_ingest(status("ingest"), cancel.clone()),
    ));
    let (ingest_done, ingest_finished) = Completion::new();
    tasks.push((
        "ingest-writer",
        tokio::spawn(async move {
            let _ = writer_task.await;
            drop(ingest_done);
        }),
    ));
    if let Some(stream) = settings.stream.clone() {
        let client = aws::kinesis_client(&settings.aws).await;
        let stage = KinesisStage {
            source: KinesisSource::new(client, kinesis_config(settings, &stream), writer),
            shutdown: cancel.clone(),
        };
        tasks.push((
            "kinesis",
            tokio::spawn(supervise(
                stage,
                status("kinesis"),
                cancel.clone(),
                Finished::already(),
                Completion::new().0,
                STREAM_PACE,
            )),
        ));
    }
    Ok((ingest, feed, ingest_finished))
}

/// How each stage waits for work between passes, and while it stops.
const STREAM_PACE: Pace = Pace {
    idle: Duration::from_secs(1),
    stopping: Duration::from_millis(100),
};
const REFINE_PACE: Pace = Pace {
    idle: Duration::from_secs(2),
    stopping: Duration::from_millis(100),
};
const MODEL_PACE: Pace = Pace {
    idle: Duration::from_secs(1),
    stopping: Duration::from_millis(100),
};

/// Publishes gold to the gold lake under the supervisor, after each model batch and at the
/// configured interval; follows the model's completion on shutdown.
pub fn spawn_lake(
    settings: &Settings,
    lake: GoldLake,
    gold: Gold,
    status: Status,
    shutdown: CancellationToken,
    model: Finished,
) -> JoinHandle<()> {
    let pace = Pace {
        idle: Duration::from_secs(settings.config.gold_lake_interval_secs.max(1)),
        stopping: Duration::from_millis(100),
    };
    tokio::spawn(supervise(
        LakeStage::new(lake, gold),
        status,
        shutdown,
        model,
        Completion::new().0,
        pace,
    ))
}

pub async fn run(settings: &Settings, _args: RunArgs) -> anyhow::Result<()> {
    let cancel = shutdown_token();
    let running = start(settings, cancel).await?;
    progress!("stocklake is running: dashboard and API at {}", running.url);
    running.wait().await
}
