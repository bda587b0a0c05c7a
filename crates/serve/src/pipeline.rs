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

/// What a stage reports.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct StageStatus {
    pub stage: String,
    /// `starting`, `running`, `retrying`, `stopped` or `disabled`.
    pub state: String,
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

/// Every stage's status, shared.
#[derive(Debug, Default)]
pub struct Pipeline {
    stages: RwLock<BTreeMap<String, StageStatus>>,
    pub started_at: RwLock<Option<DateTime<Utc>>>,
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
                        state: "starting".into(),
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
        }
    }

    /// Records a finished run (keeps the last ten) and its throughput.
    pub fn run(&self, stage: &str, run: RunInfo) {
        self.update(stage, |s| {
            let ok = run.status == "ok";
            s.records_total += run.records_in;
            s.window.push_back((run.finished_at, run.records_in));
            while s
                .window
                .front()
                .is_some_and(|(t, _)| run.finished_at - *t > chrono::Duration::seconds(60))
            {
                s.window.pop_front();
            }
            let n: u64 = s.window.iter().map(|(_, n)| n).sum();
            let span = s
                .window
                .front()
                .map(|(t, _)| (run.finished_at - *t).num_milliseconds().max(1000) as f64 / 1000.0)
                .unwrap_or(1.0);
            s.throughput = n as f64 / span.max(1.0);
            if ok {
                s.consecutive_failures = 0;
                s.state = "running".into();
            } else {
                s.consecutive_failures += 1;
                s.state = "retrying".into();
                s.last_error.clone_from(&run.error);
                s.last_error_at = Some(run.finished_at);
            }
            s.last_runs.insert(0, run);
            s.last_runs.truncate(10);
        });
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
}
