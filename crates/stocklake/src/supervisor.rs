//! One supervisor for every stage: `stocklake run` runs all of them under it, the standalone
//! `refine` and `model` commands theirs alone.
//!
//! A stage is a source of batches ([`Stage::batch`]). The supervisor runs its batches while
//! there is work, records each run (in `/v1/pipeline` and gold's `pipeline_run`), and between
//! passes waits for a wake-up or its next poll. A failed batch is met by its class
//! ([`ErrorClass`], which every error of stocklake states): a transient failure (or poison that
//! escaped the stage's own isolation) is retried after a pause that doubles (one [`Backoff`]
//! policy for every stage); a conflict is redone at once; a fatal one stops the stage with its
//! message and gives the shutdown signal, so the process stops in order and fails. Shutdown is ordered: once the shutdown signal
//! is given, a stage waits for the stage upstream of it to finish (its [`Completion`] dropped),
//! makes one last pass over what that stage left, and finishes in turn — told downstream by
//! dropping its own `Completion`, however it ends.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stocklake_serve::{Pipeline, RunInfo, StageState, StageStatus};
use stocklake_storage::{Backoff, ErrorClass};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub records_in: u64,
    pub records_out: u64,
}

/// A stage of the pipeline, as the supervisor drives it.
#[allow(async_fn_in_trait)]
pub trait Stage {
    /// Runs one batch; `None` when there is nothing to do now.
    async fn batch(&mut self, status: &Status) -> anyhow::Result<Option<Done>>;

    /// Waits for work: a wake-up, or `pause` at most.
    async fn wait(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }

    /// Runs between passes (table care).
    async fn between(&mut self) {}

    /// Runs once the last pass is done.
    async fn finish(&mut self) {}
}

/// A stage's handle on its status: `/v1/pipeline` and the runs gold records.
#[derive(Debug, Clone)]
pub struct Status {
    name: &'static str,
    pipeline: Arc<Pipeline>,
    runs: Option<mpsc::Sender<(String, RunInfo)>>,
}

impl Status {
    pub fn new(
        name: &'static str,
        pipeline: Arc<Pipeline>,
        runs: Option<mpsc::Sender<(String, RunInfo)>>,
    ) -> Status {
        Status {
            name,
            pipeline,
            runs,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    pub fn set(&self, state: StageState) {
        self.pipeline.update(self.name, |s| s.state = state);
    }

    pub fn update(&self, f: impl FnOnce(&mut StageStatus)) {
        self.pipeline.update(self.name, f);
    }

    /// Records a run that began at `started`: done, or failed with `error`.
    pub fn ran(&self, started: DateTime<Utc>, done: Done, error: Option<String>) {
        let info = RunInfo {
            started_at: started,
            finished_at: Utc::now(),
            status: if error.is_some() { "error" } else { "ok" }.into(),
            records_in: done.records_in,
            records_out: done.records_out,
            error,
        };
        self.pipeline.run(self.name, info.clone());
        if let Some(runs) = &self.runs {
            // off the hot path: a full queue drops the record, never the batch
            let _ = runs.try_send((self.name.to_string(), info));
        }
    }
}

/// A stage's completion: dropped when the stage ends, however it ends, it tells the stage
/// downstream.
#[derive(Debug)]
pub struct Completion(CancellationToken);

impl Completion {
    /// A completion, and what waits for it.
    pub fn new() -> (Completion, Finished) {
        let t = CancellationToken::new();
        (Completion(t.clone()), Finished(t))
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Whether the stage upstream has finished.
#[derive(Debug, Clone)]
pub struct Finished(CancellationToken);

impl Finished {
    /// For a stage with nothing upstream.
    pub fn already() -> Finished {
        let t = CancellationToken::new();
        t.cancel();
        Finished(t)
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_cancelled()
    }

    pub async fn wait(&self) {
        self.0.cancelled().await;
    }
}

/// How a stage waits between passes: at most `idle` while running, `stopping` once the
/// shutdown signal is given.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub idle: Duration,
    pub stopping: Duration,
}

/// Runs `stage` until the shutdown signal and its upstream's completion, then drops `done`.
pub async fn supervise<S: Stage>(
    mut stage: S,
    status: Status,
    shutdown: CancellationToken,
    upstream: Finished,
    done: Completion,
    pace: Pace,
) {
    let mut backoff = Backoff::stage();
    loop {
        let last_pass = shutdown.is_cancelled() && upstream.is_finished();
        let drained = drain(&mut stage, &status, &mut backoff, &shutdown).await;
        if let Drained::Fatal(e) = &drained {
            tracing::error!(stage = status.name(), error = %e, "the stage stopped: retrying cannot mend this; stopping stocklake");
            status.pipeline().set_fatal(status.name(), e);
            shutdown.cancel();
            break;
        }
        if last_pass {
            break;
        }
        if drained == Drained::Failed {
            // the pause was the backoff's
            continue;
        }
        stage.between().await;
        if shutdown.is_cancelled() {
            tokio::select! {
                _ = stage.wait(pace.stopping) => {}
                _ = upstream.wait() => {}
            }
        } else {
            tokio::select! {
                _ = stage.wait(pace.idle) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
    stage.finish().await;
    status.set(StageState::Stopped);
    drop(done);
}

/// How a stage's batches ended.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// No work left.
    Idle,
    /// A batch failed; the pause before the next is over.
    Failed,
    /// A batch failed in a way no retry can mend.
    Fatal(String),
}

/// A conflict is redone at once this many times in a row, then backs off like any failure.
const CONFLICTS_REDONE: u32 = 5;

/// A stage's failure and its causes on one line, each said once.
pub fn describe(e: &anyhow::Error) -> String {
    stocklake_storage::describe(e.as_ref())
}

/// The class of a stage's failure: that of the first error in its chain that states one.
pub fn classify(e: &anyhow::Error) -> ErrorClass {
    for cause in e.chain() {
        if let Some(m) = cause.downcast_ref::<stocklake_model::ModelError>() {
            return m.class();
        }
        if let Some(r) = cause.downcast_ref::<stocklake_refine::RefineError>() {
            return r.class();
        }
        if let Some(s) = cause.downcast_ref::<stocklake_silver::SilverError>() {
            return s.class();
        }
        if let Some(i) = cause.downcast_ref::<stocklake_ingest::IngestError>() {
            return i.class();
        }
    }
    ErrorClass::Transient
}

/// Runs batches while there is work.
async fn drain<S: Stage>(
    stage: &mut S,
    status: &Status,
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
) -> Drained {
    let mut conflicts = 0u32;
    loop {
        let started = Utc::now();
        match stage.batch(status).await {
            Ok(Some(done)) => {
                backoff.succeeded();
                status.ran(started, done, None);
            }
            Ok(None) => {
                status.update(|s| {
                    if s.state == StageState::Starting {
                        s.state = StageState::Running;
                    }
                });
                return Drained::Idle;
            }
            Err(e) => {
                let class = classify(&e);
                let text = describe(&e);
                let none = Done {
                    records_in: 0,
                    records_out: 0,
                };
                status.ran(started, none, Some(text.clone()));
                if class == ErrorClass::Fatal {
                    return Drained::Fatal(text);
                }
                if class == ErrorClass::Conflict && conflicts < CONFLICTS_REDONE {
                    conflicts += 1;
                    tracing::info!(stage = status.name(), error = %text, "another writer got there first; redoing the batch");
                    continue;
                }
                let pause = backoff.failed();
                tracing::warn!(stage = status.name(), class = class.as_str(), error = %text, retry_in_ms = pause.as_millis() as u64, "batch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
                return Drained::Failed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A stage that fails `fail` times, then does `work` batches of one record, then idles.
    struct Scripted {
        fail: u32,
        work: u32,
        calls: Arc<AtomicU32>,
    }

    impl Stage for Scripted {
        async fn batch(&mut self, _: &Status) -> anyhow::Result<Option<Done>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail > 0 {
                self.fail -= 1;
                anyhow::bail!("not yet");
            }
            if self.work > 0 {
                self.work -= 1;
                return Ok(Some(Done {
                    records_in: 1,
                    records_out: 1,
                }));
            }
            Ok(None)
        }
    }

    /// Waits (at most ten seconds) for `f` to hold.
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never held");
    }

    #[tokio::test]
    async fn a_stage_retries_drains_and_stops_after_its_upstream() {
        let pipeline = Pipeline::new(&["s"]);
        let status = Status::new("s", pipeline.clone(), None);
        let shutdown = CancellationToken::new();
        let (up_done, upstream) = Completion::new();
        let (done, finished) = Completion::new();
        let calls = Arc::new(AtomicU32::new(0));
        let stage = Scripted {
            fail: 2,
            work: 3,
            calls: calls.clone(),
        };
        let pace = Pace {
            idle: Duration::from_millis(50),
            stopping: Duration::from_millis(10),
        };
        let task = tokio::spawn(supervise(
            stage,
            status,
            shutdown.clone(),
            upstream,
            done,
            pace,
        ));
        until(|| pipeline.stage("s").is_some_and(|s| s.records_total == 3)).await;
        let s = pipeline.stage("s").expect("stage");
        assert_eq!(
            s.records_total, 3,
            "every batch after the failures is recorded"
        );
        assert_eq!(s.state, StageState::Running);
        assert_eq!(s.last_error.as_deref(), Some("not yet"));
        assert_eq!(s.consecutive_failures, 0);
        // the signal alone does not stop it while its upstream runs
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!finished.is_finished());
        let before = calls.load(Ordering::SeqCst);
        drop(up_done);
        finished.wait().await;
        task.await.expect("supervisor");
        assert!(
            calls.load(Ordering::SeqCst) > before,
            "a last pass after upstream finished"
        );
        assert_eq!(
            pipeline.stage("s").expect("stage").state,
            StageState::Stopped
        );
    }

    /// A stage whose every batch fails as `class` would.
    struct Failing(stocklake_model::ModelError);

    impl Stage for Failing {
        async fn batch(&mut self, _: &Status) -> anyhow::Result<Option<Done>> {
            Err(anyhow::Error::new(self.0.clone()).context("a batch"))
        }
    }

    #[tokio::test]
    async fn a_fatal_failure_stops_the_stage_and_signals_shutdown() {
        let pipeline = Pipeline::new(&["model"]);
        let shutdown = CancellationToken::new();
        let (done, finished) = Completion::new();
        let pace = Pace {
            idle: Duration::from_millis(50),
            stopping: Duration::from_millis(10),
        };
        let stage = Failing(stocklake_model::ModelError::Config("no such gold".into()));
        supervise(
            stage,
            Status::new("model", pipeline.clone(), None),
            shutdown.clone(),
            Finished::already(),
            done,
            pace,
        )
        .await;
        assert!(shutdown.is_cancelled(), "the process is told to stop");
        assert!(finished.is_finished());
        let s = pipeline.stage("model").expect("stage");
        assert_eq!(s.state, StageState::Stopped);
        assert!(
            pipeline.fatal().is_some_and(|f| f.contains("no such gold")),
            "{:?}",
            pipeline.fatal()
        );
    }

    #[test]
    fn failures_are_classed_by_the_error_they_came_from() {
        use stocklake_model::ModelError;
        let e = |m: ModelError| anyhow::Error::new(m).context("a batch");
        assert_eq!(
            classify(&e(ModelError::Config("x".into()))),
            ErrorClass::Fatal
        );
        assert_eq!(
            classify(&e(ModelError::Rejected("x".into()))),
            ErrorClass::Poison
        );
        assert_eq!(
            classify(&e(ModelError::database("gone"))),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(&anyhow::anyhow!("anything else")),
            ErrorClass::Transient
        );
    }

    #[test]
    fn a_stage_backs_off_from_a_fifth_of_a_second_to_half_a_minute() {
        let mut b = Backoff::stage();
        let pauses: Vec<u128> = (0..10).map(|_| b.failed().as_millis()).collect();
        assert_eq!(
            pauses,
            vec![200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
    }
}
