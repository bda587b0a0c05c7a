//! `stocklake refine`: bronze → silver. `--once` refines what is there and exits.

use std::time::Duration;

use anyhow::Context;
use stocklake_event::TimeWindow;
use stocklake_refine::master::load_master_data;
use stocklake_refine::{Counts, RefineConfig, Refiner};
use stocklake_silver::maintain::{MaintainConfig, maintain};

use crate::cli::{MaintainArgs, StageArgs};
use crate::commands::shutdown_token;
use crate::config::Settings;
use crate::stages::RefineStage;
use crate::supervisor::{Completion, Finished, Pace, Status, supervise};
use stocklake_serve::Pipeline;

/// Table care beside a refine loop: started every `refine.maintenance_interval_secs`, or once
/// refine has committed `refine.compact_after_commits` batches since the last care, in a task
/// of its own so that refine keeps committing meanwhile. Compaction commits `dataChange =
/// false` and conflicts with no append (`compaction_beside_refine_loses_nothing`). Every live
/// commit adds a file, and Delta keeps the list of active files up to date on every commit:
/// without compaction a commit's cost grows with the files since the last one (20 ms to 60 ms
/// within 1,500 files, 75 seconds of a live chain).
pub struct CareSchedule {
    settings: Settings,
    every: Duration,
    after_commits: u64,
    last: tokio::time::Instant,
    commits: u64,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl CareSchedule {
    pub fn new(settings: &Settings) -> CareSchedule {
        let c = &settings.config.refine;
        CareSchedule {
            settings: settings.clone(),
            every: Duration::from_secs(c.maintenance_interval_secs.max(60)),
            after_commits: c.compact_after_commits,
            last: tokio::time::Instant::now(),
            commits: 0,
            running: None,
        }
    }

    /// Counts refine commits.
    pub fn committed(&mut self, batches: u64) {
        self.commits += batches;
    }

    /// Starts table care if it is due and none is running.
    pub fn poll(&mut self) {
        if self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let by_commits = self.after_commits > 0 && self.commits >= self.after_commits;
        if !by_commits && self.last.elapsed() < self.every {
            return;
        }
        self.last = tokio::time::Instant::now();
        self.commits = 0;
        let settings = self.settings.clone();
        self.running = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            match maintain(&settings.silver, &settings.aws, &maintain_config(&settings)).await {
                Ok(care) => tracing::info!(
                    ?care,
                    seconds = started.elapsed().as_secs_f64(),
                    "silver table care done"
                ),
                Err(e) => tracing::warn!(error = %e, "silver table care failed"),
            }
        }));
    }

    /// Waits for table care that is running, so that it is not cut off at shutdown.
    pub async fn finish(&mut self) {
        if let Some(h) = self.running.take() {
            let _ = h.await;
        }
    }
}

/// Refine settings from the configuration.
pub fn refine_config(settings: &Settings) -> RefineConfig {
    let c = &settings.config.refine;
    RefineConfig {
        dedup_window_days: c.dedup_window_days,
        batch_max_objects: c.batch_max_objects.max(1) as usize,
        batch_max_bytes: (c.batch_max_mb.max(1) as usize) << 20,
        window: TimeWindow {
            max_future: chrono::Duration::hours(i64::from(c.max_future_hours)),
            max_past: chrono::Duration::days(i64::from(c.max_past_days)),
        },
        ..RefineConfig::new(
            settings.bronze.clone(),
            settings.silver.clone(),
            settings.aws.clone(),
        )
    }
}

pub fn maintain_config(settings: &Settings) -> MaintainConfig {
    MaintainConfig {
        min_files: settings.config.refine.compact_min_files as usize,
        retention_hours: settings.config.refine.vacuum_retention_hours,
        ..MaintainConfig::default()
    }
}

/// Loads master data when configured; a bad file is an error that names the row.
pub async fn load_master(settings: &Settings) -> anyhow::Result<()> {
    if let Some(dir) = &settings.master_data {
        let r = load_master_data(&settings.silver, &settings.aws, dir)
            .await
            .with_context(|| format!("loading master data from {}", dir.display()))?;
        tracing::info!(
            products = ?r.products,
            stores = ?r.stores,
            suppliers = ?r.suppliers,
            changed = ?r.changed,
            "master data loaded"
        );
    }
    Ok(())
}

pub fn summary(c: &Counts) -> String {
    let mut s = format!(
        "{} records: {} events ({} lines) to silver, {} quarantined, {} duplicates dropped",
        c.records, c.events, c.lines, c.quarantined, c.duplicates
    );
    if !c.reasons.is_empty() {
        let reasons: Vec<String> = c.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s.push_str(&format!("\n  quarantine reasons: {}", reasons.join(", ")));
    }
    s
}

pub async fn run(settings: &Settings, args: StageArgs) -> anyhow::Result<()> {
    load_master(settings).await?;
    let mut refiner = Refiner::open(refine_config(settings))
        .await
        .with_context(|| format!("opening silver at {}", settings.silver))?;
    let cancel = shutdown_token();
    if args.once {
        let backlog = refiner.scan().await?;
        let bar = super::progress_bar(
            backlog as u64,
            "refining",
            "{pos}/{len} bronze objects {msg}",
        );
        let mut total = Counts::default();
        while let Some(r) = refiner.run_batch().await? {
            bar.inc(r.objects as u64);
            total.records += r.counts.records;
            total.events += r.counts.events;
            total.lines += r.counts.lines;
            total.quarantined += r.counts.quarantined;
            total.duplicates += r.counts.duplicates;
            for (k, v) in &r.counts.reasons {
                *total.reasons.entry(k.clone()).or_default() += v;
            }
            bar.set_message(format!("{} records", total.records));
            if cancel.is_cancelled() {
                break;
            }
        }
        bar.finish_and_clear();
        say!("refined {}", summary(&total));
        say!(
            "silver {} is at batch {}",
            settings.silver,
            refiner.progress().batch
        );
        return Ok(());
    }
    tracing::info!(bronze = %settings.bronze, silver = %settings.silver, "refining continuously");
    let every = Duration::from_millis(500);
    let stage = RefineStage::new(
        refiner,
        None,
        CareSchedule::new(settings),
        None,
        every,
        true,
    );
    let pipeline = Pipeline::new(&["refine"]);
    let status = Status::new("refine", pipeline.clone(), None);
    let pace = Pace {
        idle: every,
        stopping: every,
    };
    let (done, _) = Completion::new();
    supervise(stage, status, cancel, Finished::already(), done, pace).await;
    if let Some(fatal) = pipeline.fatal() {
        anyhow::bail!("refine stopped: {fatal}");
    }
    Ok(())
}

pub async fn run_maintain(settings: &Settings, args: MaintainArgs) -> anyhow::Result<()> {
    let mut cfg = maintain_config(settings);
    cfg.retention_hours = args.retention_hours;
    let mut care = maintain(&settings.silver, &settings.aws, &cfg).await?;
    // the gold lake, when there is one, gets the same care
    if let Some(mut lake) = crate::commands::model::open_lake(settings).await? {
        care.extend(lake.care(&cfg).await?);
    }
    say!(
        "{:<24} {:>12} {:>12} {:>11} {:>11} {:>9}",
        "table",
        "files before",
        "files after",
        "compacted",
        "checkpoint",
        "vacuumed"
    );
    for c in care {
        say!(
            "{:<24} {:>12} {:>12} {:>11} {:>11} {:>9}",
            c.table,
            c.files_before,
            c.files_after,
            c.partitions_compacted,
            c.checkpoint_version
                .map_or("-".to_string(), |v| v.to_string()),
            c.files_vacuumed
        );
    }
    Ok(())
}
