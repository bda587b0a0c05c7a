//! The pipeline's own picture of itself: per stage, what it consumed, how far behind it is, its
//! last runs and errors. Stages update it as they go; `GET /v1/pipeline`, the dashboard and
//! `stocklake status` read it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One run (a batch) of a stage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunInfo {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: String,
    pub records_in: u64,
    pub records_out: u64,
    pub error: Option<String>,
}

/// Where a stage is in its life.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    /// Not yet through its first pass.
    #[default]
    Starting,
    Running,
    /// Its last batch failed: it retries after a pause.
    Retrying,
    Stopped,
    Disabled,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Starting => "starting",
            StageState::Running => "running",
            StageState::Retrying => "retrying",
            StageState::Stopped => "stopped",
            StageState::Disabled => "disabled",
        }
    }
}

/// A state is its name, as `/v1/pipeline` gives it.
impl PartialEq<&str> for StageState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a stage reports.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct StageStatus {
    pub stage: String,
    pub state: StageState,
    /// Where the stage stands, in its own terms (shard sequence numbers, a Delta version …).
    pub checkpoint: serde_json::Value,
    /// How far behind its input it is, in seconds of arrival time.
    pub lag_seconds: Option<f64>,
    /// Work known and not yet done (bronze objects, silver versions, notifications).
    pub backlog: Option<u64>,
    pub records_total: u64,
    /// Records per second over the last minute.
    pub throughput: f64,
    pub last_runs: Vec<RunInfo>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    #[serde(skip)]
    window: VecDeque<(DateTime<Utc>, u64)>,
}

impl StageStatus {
    /// Counts `n` records done at `at` into the total and the last minute's throughput.
    fn add_records(&mut self, at: DateTime<Utc>, n: u64) {
        self.records_total += n;
        self.window.push_back((at, n));
        while self
            .window
            .front()
            .is_some_and(|(t, _)| at - *t > chrono::Duration::seconds(60))
        {
            self.window.pop_front();
        }
        let sum: u64 = self.window.iter().map(|(_, n)| n).sum();
        let span = self
            .window
            .front()
            .map(|(t, _)| (at - *t).num_milliseconds().max(1000) as f64 / 1000.0)
            .unwrap_or(1.0);
        self.throughput = sum as f64 / span.max(1.0);
    }
}

/// Every stage's status, shared.
#[derive(Debug, Default)]
pub struct Pipeline {
    stages: RwLock<BTreeMap<String, StageStatus>>,
    pub started_at: RwLock<Option<DateTime<Utc>>>,
    /// The failure no retry could mend that stopped a stage (and, with it, the process).
    fatal: RwLock<Option<String>>,
}

impl Pipeline {
    pub fn new(stages: &[&str]) -> Arc<Pipeline> {
        let p = Pipeline::default();
        if let Ok(mut m) = p.stages.write() {
            for s in stages {
                m.insert(
                    (*s).to_string(),
                    StageStatus {
                        stage: (*s).to_string(),
                        state: StageState::Starting,
                        ..StageStatus::default()
                    },
                );
            }
        }
        if let Ok(mut t) = p.started_at.write() {
            *t = Some(Utc::now());
        }
        Arc::new(p)
    }

    /// Changes a stage's status.
    pub fn update(&self, stage: &str, f: impl FnOnce(&mut StageStatus)) {
        if let Ok(mut m) = self.stages.write() {
            let s = m.entry(stage.to_string()).or_insert_with(|| StageStatus {
                stage: stage.to_string(),
                ..StageStatus::default()
            });
            f(s);
            // mirrored in the Prometheus metrics
            if let Some(lag) = s.lag_seconds {
                stocklake_telemetry::STAGE_LAG_SECONDS
                    .with_label_values(&[stage])
                    .set(lag);
            }
            if let Some(b) = s.backlog {
                stocklake_telemetry::STAGE_BACKLOG
                    .with_label_values(&[stage])
                    .set(i64::try_from(b).unwrap_or(i64::MAX));
            }
            stocklake_telemetry::STAGE_CONSECUTIVE_FAILURES
                .with_label_values(&[stage])
                .set(i64::from(s.consecutive_failures));
        }
    }

    /// Counts records a stage without runs has done since the last call (HTTP ingest, which
    /// takes requests rather than running batches): its total and throughput, sampled.
    pub fn counted(&self, stage: &str, at: DateTime<Utc>, n: u64) {
        self.update(stage, |s| s.add_records(at, n));
    }

    /// Records a finished run (keeps the last ten) and its throughput.
    pub fn run(&self, stage: &str, run: RunInfo) {
        self.update(stage, |s| {
            let ok = run.status == "ok";
            s.add_records(run.finished_at, run.records_in);
            if ok {
                s.consecutive_failures = 0;
                s.state = StageState::Running;
                stocklake_telemetry::STAGE_LAST_SUCCESS
                    .with_label_values(&[stage])
                    .set(run.finished_at.timestamp_millis() as f64 / 1000.0);
            } else {
                s.consecutive_failures += 1;
                s.state = StageState::Retrying;
                s.last_error.clone_from(&run.error);
                s.last_error_at = Some(run.finished_at);
            }
            s.last_runs.insert(0, run);
            s.last_runs.truncate(10);
        });
    }

    /// A stage stopped on a failure no retry could mend.
    pub fn set_fatal(&self, stage: &str, error: &str) {
        let text = format!("{stage}: {error}");
        self.update(stage, |s| {
            s.state = StageState::Stopped;
            s.last_error = Some(error.to_string());
            s.last_error_at = Some(Utc::now());
        });
        if let Ok(mut f) = self.fatal.write() {
            f.get_or_insert(text);
        }
    }

    /// The failure that stopped a stage, if one did.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.read().ok().and_then(|f| f.clone())
    }

    pub fn snapshot(&self) -> Vec<StageStatus> {
        self.stages
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn stage(&self, name: &str) -> Option<StageStatus> {
        self.stages.read().ok().and_then(|m| m.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_update_state_errors_and_throughput() {
        let p = Pipeline::new(&["refine"]);
        let t0 = Utc::now();
        p.run(
            "refine",
            RunInfo {
                started_at: t0,
                finished_at: t0,
                status: "ok".into(),
                records_in: 100,
                records_out: 99,
                error: None,
            },
        );
        p.run(
            "refine",
            RunInfo {
                started_at: t0,
                finished_at: t0 + chrono::Duration::seconds(10),
                status: "error".into(),
                records_in: 0,
                records_out: 0,
                error: Some("disk full".into()),
            },
        );
        let s = p.stage("refine").expect("stage");
        assert_eq!(s.state, "retrying");
        assert_eq!(s.consecutive_failures, 1);
        assert_eq!(s.last_error.as_deref(), Some("disk full"));
        assert_eq!(s.records_total, 100);
        assert!((s.throughput - 10.0).abs() < 1e-9, "{}", s.throughput);
        assert_eq!(s.last_runs.len(), 2);
    }

    #[test]
    fn counted_records_give_a_total_and_the_last_minutes_rate() {
        let p = Pipeline::new(&["ingest"]);
        let t0 = Utc::now();
        // 50 records a second for 90 seconds, sampled every second
        for i in 0..=90 {
            p.counted(
                "ingest",
                t0 + chrono::Duration::seconds(i),
                if i == 0 { 0 } else { 50 },
            );
        }
        let s = p.stage("ingest").expect("stage");
        assert_eq!(s.records_total, 4500);
        // the window holds the minute's samples and the one that opens it, as for runs
        assert!((s.throughput - 50.0).abs() < 1.0, "{}", s.throughput);
        assert!(s.last_runs.is_empty(), "counting is not a run");
        assert_eq!(
            s.state, "starting",
            "counting leaves the state to the stage"
        );
        // then nothing for a minute: the rate falls to zero, the total stays
        for i in 91..=151 {
            p.counted("ingest", t0 + chrono::Duration::seconds(i), 0);
        }
        let s = p.stage("ingest").expect("stage");
        assert_eq!((s.records_total, s.throughput), (4500, 0.0));
    }
}
