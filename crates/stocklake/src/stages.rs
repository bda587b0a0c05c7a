//! The stages of the pipeline as the [`supervisor`](crate::supervisor) runs them: `stocklake
//! run` wires them together; `stocklake refine` and `stocklake model` run theirs alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use stocklake_ingest::{BronzeFeed, KinesisSource};
use stocklake_model::lake::GoldLake;
use stocklake_model::notify::Notifier;
use stocklake_model::{Gold, Model};
use stocklake_refine::Refiner;
use stocklake_serve::StageState;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::commands::model::{published_summary, summary as model_summary};
use crate::commands::refine::{CareSchedule, summary as refine_summary};
use crate::supervisor::{Done, Finished, Stage, Status};

/// Seconds since `t`.
fn seconds_since(t: chrono::DateTime<Utc>) -> f64 {
    (Utc::now() - t).num_milliseconds() as f64 / 1000.0
}

/// Bronze → silver: batches of the objects ingest hands over (and of what a listing of
/// bronze finds), with table care beside.
pub struct RefineStage {
    pub refiner: Refiner,
    /// Objects handed over by ingest in this process (none when refine runs alone: it lists).
    pub feed: Option<Arc<BronzeFeed>>,
    pub care: CareSchedule,
    /// Woken on every silver commit (the model's).
    pub wake: Option<Arc<Notify>>,
    /// Bronze is listed at least this often.
    pub scan_every: Duration,
    /// Each batch logged (when refine runs alone).
    pub verbose: bool,
    last_scan: Option<tokio::time::Instant>,
    /// The hand-off dropped objects: nothing newer is consumed before a listing.
    must_scan: bool,
}

impl RefineStage {
    pub fn new(
        refiner: Refiner,
        feed: Option<Arc<BronzeFeed>>,
        care: CareSchedule,
        wake: Option<Arc<Notify>>,
        scan_every: Duration,
        verbose: bool,
    ) -> RefineStage {
        RefineStage {
            refiner,
            feed,
            care,
            wake,
            scan_every,
            verbose,
            last_scan: None,
            must_scan: false,
        }
    }

    /// Takes what ingest handed over, and lists bronze when it must or it is time.
    async fn take_input(&mut self) {
        if let Some(feed) = &self.feed {
            let (handed, dropped) = feed.drain();
            self.refiner.offer(handed);
            self.must_scan |= dropped;
        }
        if self.must_scan
            || self
                .last_scan
                .is_none_or(|t| t.elapsed() >= self.scan_every)
        {
            self.last_scan = Some(tokio::time::Instant::now());
            match self.refiner.scan().await {
                Ok(_) => self.must_scan = false,
                Err(e) => tracing::warn!(error = %e, "listing bronze failed"),
            }
        }
    }
}

impl Stage for RefineStage {
    async fn batch(&mut self, status: &Status) -> anyhow::Result<Option<Done>> {
        self.take_input().await;
        if self.must_scan {
            return Ok(None);
        }
        let Some(r) = self.refiner.run_batch().await? else {
            status.update(|s| {
                s.backlog = Some(0);
                s.lag_seconds = Some(0.0);
            });
            return Ok(None);
        };
        if self.verbose {
            tracing::info!(batch = r.batch, "{}", refine_summary(&r.counts));
        }
        let p = self.refiner.progress();
        let backlog = self.refiner.backlog() as u64;
        let lag = if backlog > 0 {
            p.max_arrived_at.map(seconds_since)
        } else {
            Some(0.0)
        };
        let checkpoint = serde_json::json!({"silver_batch": p.batch, "watermark": p.watermark});
        status.update(|s| {
            s.checkpoint = checkpoint;
            s.backlog = Some(backlog);
            s.lag_seconds = lag;
        });
        if let Some(w) = &self.wake {
            w.notify_one();
        }
        // also while refine has a backlog and does not come round
        self.care.committed(1);
        self.care.poll();
        Ok(Some(Done {
            records_in: r.counts.records,
            records_out: r.counts.events,
        }))
    }

    async fn wait(&mut self, pause: Duration) {
        match &self.feed {
            Some(feed) => {
                tokio::select! {
                    _ = feed.wait() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            None => tokio::time::sleep(pause).await,
        }
    }

    async fn between(&mut self) {
        self.care.poll();
    }

    async fn finish(&mut self) {
        self.care.finish().await;
        if let Some(w) = &self.wake {
            w.notify_one();
        }
    }
}

/// Silver → gold: a batch per silver increment, woken on every silver commit.
pub struct ModelStage {
    pub model: Model,
    pub wake: Arc<Notify>,
    /// Woken when a batch opened or resolved alerts (delivery's).
    pub alerts: Arc<Notify>,
    /// Each batch logged (when the model runs alone).
    pub verbose: bool,
}

impl Stage for ModelStage {
    async fn batch(&mut self, status: &Status) -> anyhow::Result<Option<Done>> {
        let Some(r) = self.model.run_batch().await? else {
            status.update(|s| {
                s.backlog = Some(0);
                s.lag_seconds = Some(0.0);
            });
            return Ok(None);
        };
        if self.verbose {
            tracing::info!("{}", model_summary(std::slice::from_ref(&r)));
        }
        let pending = self.model.pending().await.unwrap_or(0);
        status.update(|s| {
            s.checkpoint = serde_json::json!({"silver_version": r.to_version});
            s.backlog = Some(pending);
            s.lag_seconds = if pending > 0 {
                r.max_arrived_at.map(seconds_since)
            } else {
                Some(0.0)
            };
        });
        if r.alerts_opened + r.alerts_resolved > 0 {
            self.alerts.notify_one();
        }
        Ok(Some(Done {
            records_in: r.lines as u64,
            records_out: r.keys_touched as u64,
        }))
    }

    async fn wait(&mut self, pause: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }

    async fn finish(&mut self) {
        // the last changes go out too
        self.alerts.notify_one();
    }
}

/// Gold → the gold lake: gold's batches published every interval, the lake's small files
/// cared for hourly.
pub struct LakeStage {
    pub lake: GoldLake,
    pub gold: Gold,
    pub care_every: Duration,
    last_care: tokio::time::Instant,
}

impl LakeStage {
    pub fn new(lake: GoldLake, gold: Gold) -> LakeStage {
        LakeStage {
            lake,
            gold,
            care_every: Duration::from_secs(3600),
            last_care: tokio::time::Instant::now(),
        }
    }
}

impl Stage for LakeStage {
    async fn batch(&mut self, status: &Status) -> anyhow::Result<Option<Done>> {
        let done = self.lake.publish(&self.gold).await?;
        let rows: u64 = done.iter().map(|d| d.rows).sum();
        let batches: BTreeMap<&str, i64> =
            done.iter().map(|d| (d.table.as_str(), d.batch)).collect();
        let checkpoint = serde_json::json!({"root": self.lake.root().url(), "gold_batch": batches});
        status.update(|s| {
            s.checkpoint = checkpoint;
            s.lag_seconds = Some(0.0);
        });
        if rows == 0 {
            return Ok(None);
        }
        tracing::debug!("{}", published_summary(&done));
        Ok(Some(Done {
            records_in: rows,
            records_out: rows,
        }))
    }

    async fn between(&mut self) {
        if self.last_care.elapsed() < self.care_every {
            return;
        }
        self.last_care = tokio::time::Instant::now();
        match self
            .lake
            .care(&stocklake_silver::maintain::MaintainConfig::default())
            .await
        {
            Ok(done) => tracing::info!(
                partitions_compacted = done.iter().map(|c| c.partitions_compacted).sum::<usize>(),
                files_vacuumed = done.iter().map(|c| c.files_vacuumed).sum::<usize>(),
                "gold lake table care"
            ),
            Err(e) => tracing::warn!(error = %e, "gold lake table care failed; next hour again"),
        }
    }
}

/// Kinesis → bronze: the stream read until the shutdown signal (a batch is a run of the
/// reader, which ends only on failure or shutdown).
pub struct KinesisStage {
    pub source: KinesisSource,
    pub shutdown: CancellationToken,
}

impl Stage for KinesisStage {
    async fn batch(&mut self, status: &Status) -> anyhow::Result<Option<Done>> {
        if self.shutdown.is_cancelled() {
            return Ok(None);
        }
        status.set(StageState::Running);
        let reporter = tokio::spawn(report_shards(
            self.source.clone(),
            status.clone(),
            self.shutdown.clone(),
        ));
        let r = self.source.run(false, self.shutdown.clone()).await;
        reporter.abort();
        let n = r?;
        Ok(Some(Done {
            records_in: n,
            records_out: n,
        }))
    }
}

/// Shows the shards' progress every second: checkpoints, lag, records, and a shard that keeps
/// failing while it retries (not only once it gives up).
async fn report_shards(source: KinesisSource, status: Status, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let shards = source.status();
        let lag = shards.values().filter_map(|s| s.millis_behind_latest).max();
        let failing = source.listing_error().or_else(|| {
            shards
                .iter()
                .find_map(|(k, v)| v.last_error.as_ref().map(|e| format!("{k}: {e}")))
        });
        status.update(|s| {
            s.checkpoint = serde_json::to_value(
                shards
                    .iter()
                    .map(|(k, v)| (k.clone(), v.checkpoint.clone()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .unwrap_or_default();
            s.lag_seconds = lag.map(|ms| ms as f64 / 1000.0);
            s.records_total = shards.values().map(|v| v.records).sum();
            if let Some(text) = failing
                && s.last_error.as_deref() != Some(text.as_str())
            {
                s.last_error = Some(text);
                s.last_error_at = Some(Utc::now());
            }
        });
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Alert delivery from the outbox, woken by the model; it stops once the shutdown signal is
/// given and the model has finished, so that the model's last changes go out too.
pub fn deliver_alerts(
    notifier: Notifier,
    wake: Arc<Notify>,
    status: Status,
    webhook: bool,
    shutdown: CancellationToken,
    model: Finished,
) -> JoinHandle<()> {
    status.update(|s| {
        s.state = StageState::Running;
        s.checkpoint = serde_json::json!(if webhook { "webhook" } else { "log" });
    });
    tokio::spawn(async move {
        let stop = CancellationToken::new();
        let stopper = {
            let stop = stop.clone();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                model.wait().await;
                stop.cancel();
            })
        };
        notifier.run(wake, stop).await;
        stopper.abort();
        status.set(StageState::Stopped);
    })
}

/// HTTP ingest takes requests rather than running batches: its records are sampled from its
/// counter every second, for the stage's total and rate (the dashboard's "records / s in").
pub fn sample_ingest(status: Status, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let counter = stocklake_telemetry::INGEST_RECORDS.with_label_values(&["http"]);
        let mut seen = counter.get();
        while !shutdown.is_cancelled() {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let now = counter.get();
            status
                .pipeline()
                .counted(status.name(), Utc::now(), now.saturating_sub(seen));
            seen = now;
        }
    })
}
