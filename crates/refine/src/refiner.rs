//! Bronze → silver, one batch at a time, exactly once.
//!
//! A batch takes bronze objects not yet consumed (in sequence order per partition), parses them
//! in parallel, removes duplicates in order, and commits:
//!
//! 1. the quarantine rows (if any) to `quarantine`,
//! 2. the event lines to `pos_event_lines`.
//!
//! Both commits carry the Delta application transaction `stocklake-refine` = batch number and
//! the batch's progress (what was consumed, the counts) in their commit metadata. The lines
//! commit is the checkpoint. If a crash falls between the two commits, the quarantine is one
//! batch ahead; at the next start the batch is redone from the plan stored with that quarantine
//! commit — same objects, same result — without writing the quarantine again.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::arrow::array::{BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::kernel::Action;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, WriteMode};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use stocklake_event::{ReasonCode, TimeWindow};
use stocklake_storage::bronze::{ObjectName, cmp_seq};
use stocklake_storage::{AwsOptions, Location, list_bronze, read_bronze};
use stocklake_telemetry as metrics;

use crate::RefineError;
use crate::dedup::{DedupIndex, Verdict};
use crate::parse::{BatchContext, ObjectParse, QuarantineRow, date_days, parse_object};
use crate::quarantine::quarantine_batch;
use stocklake_silver::tables::{POS_EVENT_LINES, QUARANTINE, open_or_create, table_writer};

/// The Delta application transaction id of refine.
pub const APP_ID: &str = "stocklake-refine";
/// The commit metadata key holding a batch's [`Progress`].
pub const META_KEY: &str = "stocklake";

/// Settings of refine.
#[derive(Debug, Clone)]
pub struct RefineConfig {
    pub bronze: Location,
    pub silver: Location,
    pub aws: AwsOptions,
    pub dedup_window_days: u32,
    pub window: TimeWindow,
    /// Most bronze objects per batch (an object holds at most ingest's flush size).
    pub batch_max_objects: usize,
    /// A batch takes no more objects once it holds this many bytes of records (decompressed):
    /// live, small objects fill a batch of `batch_max_objects`; a bulk load of large ones
    /// stops at this size, which bounds memory.
    pub batch_max_bytes: usize,
}

impl RefineConfig {
    pub fn new(bronze: Location, silver: Location, aws: AwsOptions) -> RefineConfig {
        RefineConfig {
            bronze,
            silver,
            aws,
            dedup_window_days: 7,
            window: TimeWindow::default(),
            batch_max_objects: 32,
            batch_max_bytes: 64 << 20,
        }
    }
}

/// Record counts of a batch, or of all batches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Bronze records read.
    pub records: u64,
    /// Valid, new events written to silver.
    pub events: u64,
    /// Their lines.
    pub lines: u64,
    /// Records quarantined (each once, whatever its number of reasons).
    pub quarantined: u64,
    /// Exact repeats of an event already in silver, dropped.
    pub duplicates: u64,
    /// Quarantined records per reason code (a record counts under each code it breaks).
    pub reasons: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.records += o.records;
        self.events += o.events;
        self.lines += o.lines;
        self.quarantined += o.quarantined;
        self.duplicates += o.duplicates;
        for (k, v) in &o.reasons {
            *self.reasons.entry(k.clone()).or_default() += v;
        }
    }

    /// The reconciliation every batch must satisfy.
    pub fn reconciles(&self) -> bool {
        self.records == self.events + self.quarantined + self.duplicates
    }
}

/// Where refine stands: stored in the metadata of every refine commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub kind: String,
    /// The last committed batch (the `stocklake-refine` transaction version).
    pub batch: i64,
    /// The last sequence number consumed, per `source/partition`.
    pub consumed: BTreeMap<String, String>,
    /// The latest event time in silver.
    pub watermark: Option<DateTime<Utc>>,
    /// The latest bronze arrival time refined.
    pub max_arrived_at: Option<DateTime<Utc>>,
    pub refined_at: Option<DateTime<Utc>>,
    /// The bronze objects of this batch.
    pub objects: Vec<String>,
    pub batch_counts: Counts,
    pub totals: Counts,
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    pub batch: i64,
    pub objects: usize,
    pub counts: Counts,
    pub lines_version: Option<u64>,
    pub seconds: f64,
}

/// The objects of two listings taken one after the other that are safe to consume: all of the
/// first, and those of the second that precede, in their stream, an object the first returned.
fn settled(
    first: Vec<stocklake_storage::BronzeObject>,
    second: Vec<stocklake_storage::BronzeObject>,
) -> Vec<ObjectName> {
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for o in &first {
        let key = stream_key(&o.name);
        let later = newest
            .get(&key)
            .is_none_or(|cur| cmp_seq(&o.name.last_seq, cur).is_gt());
        if later {
            newest.insert(key, o.name.last_seq.clone());
        }
    }
    let mut out: Vec<ObjectName> = first.into_iter().map(|o| o.name).collect();
    out.extend(second.into_iter().map(|o| o.name).filter(|n| {
        newest
            .get(&stream_key(n))
            .is_some_and(|max| cmp_seq(&n.last_seq, max).is_lt())
    }));
    out
}

fn stream_key(name: &ObjectName) -> String {
    format!("{}/{}", name.source.label(), name.partition)
}

fn sort_key(name: &ObjectName) -> (String, usize, String) {
    (
        stream_key(name),
        name.first_seq.len(),
        name.first_seq.clone(),
    )
}

/// Reads the latest refine progress from a table's recent commits.
pub async fn latest_progress(table: &DeltaTable) -> Result<Option<Progress>, RefineError> {
    if table.version().is_none() {
        return Ok(None);
    }
    let infos: Vec<_> = table
        .history(Some(200))
        .try_collect()
        .await
        .map_err(|e| RefineError::delta("history", e))?;
    for info in infos {
        if let Some(v) = info.info.get(META_KEY)
            && let Ok(p) = serde_json::from_value::<Progress>(v.clone())
            && p.kind == "refine"
        {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The bronze → silver stage.
pub struct Refiner {
    cfg: RefineConfig,
    bronze: Arc<dyn ObjectStore>,
    lines: DeltaTable,
    quarantine: DeltaTable,
    progress: Progress,
    dedup: DedupIndex,
    /// Unconsumed objects known from listings and hand-offs, in consumption order.
    known: BTreeMap<(String, usize, String), ObjectName>,
    /// A batch to redo exactly (its quarantine is already committed).
    redo: Option<Progress>,
    /// Set after a failure: reload everything before the next batch.
    dirty: bool,
    /// The next batch's objects, read and parsed while this batch is written.
    prefetch: Option<Prefetch>,
}

/// The objects of the batch after the one being written, read and parsed in a task of their
/// own. Phase 1 reads nothing but bronze, so it can run ahead; it is used only if the next
/// batch begins with exactly these objects (nothing older arrived meanwhile) and has the
/// batch number it was parsed for (the batch before committed).
struct Prefetch {
    batch: i64,
    refined_at: DateTime<Utc>,
    names: Vec<ObjectName>,
    task: Option<tokio::task::JoinHandle<Result<Vec<ObjectParse>, RefineError>>>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Reads and parses objects, in parallel and in order. With a byte bound, no further object is
/// started once the objects parsed hold that many bytes (those already under way still join).
async fn parse_objects(
    store: Arc<dyn ObjectStore>,
    names: Vec<ObjectName>,
    ctx: BatchContext,
    max_bytes: Option<usize>,
) -> Result<Vec<ObjectParse>, RefineError> {
    let full = Arc::new(AtomicBool::new(false));
    let stop = full.clone();
    let mut parsing = futures::stream::iter(
        names
            .into_iter()
            .take_while(move |_| !stop.load(Ordering::Relaxed))
            .map(|name| {
                let store = store.clone();
                let ctx = ctx.clone();
                async move {
                    let text = read_bronze(store.as_ref(), &name).await.map_err(|e| {
                        RefineError::Storage(format!("reading {}: {e}", name.path()))
                    })?;
                    tokio::task::spawn_blocking(move || parse_object(name, text, &ctx))
                        .await
                        .map_err(|e| RefineError::Internal(e.to_string()))?
                }
            }),
    )
    .buffered(4);
    let mut parsed: Vec<ObjectParse> = Vec::new();
    let mut bytes = 0usize;
    while let Some(p) = parsing.next().await {
        let p = p?;
        bytes += p.text.len();
        parsed.push(p);
        if max_bytes.is_some_and(|max| bytes >= max) {
            full.store(true, Ordering::Relaxed);
        }
    }
    Ok(parsed)
}

impl std::fmt::Debug for Refiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refiner")
            .field("batch", &self.progress.batch)
            .field("known", &self.known.len())
            .finish()
    }
}

impl Refiner {
    /// Opens (creating if needed) the silver tables and recovers where refine stands.
    pub async fn open(cfg: RefineConfig) -> Result<Refiner, RefineError> {
        let bronze = cfg
            .bronze
            .object_store(&cfg.aws)
            .map_err(|e| RefineError::Storage(e.to_string()))?;
        let lines = open_or_create(&cfg.silver, &cfg.aws, POS_EVENT_LINES).await?;
        let quarantine = open_or_create(&cfg.silver, &cfg.aws, QUARANTINE).await?;
        let mut r = Refiner {
            dedup: DedupIndex::new(cfg.dedup_window_days),
            cfg,
            bronze,
            lines,
            quarantine,
            progress: Progress::default(),
            known: BTreeMap::new(),
            redo: None,
            dirty: false,
            prefetch: None,
        };
        r.recover().await?;
        Ok(r)
    }

    async fn recover(&mut self) -> Result<(), RefineError> {
        self.lines
            .update_state()
            .await
            .map_err(|e| RefineError::delta(POS_EVENT_LINES, e))?;
        self.quarantine
            .update_state()
            .await
            .map_err(|e| RefineError::delta(QUARANTINE, e))?;
        self.progress = latest_progress(&self.lines)
            .await?
            .unwrap_or_else(|| Progress {
                kind: "refine".into(),
                ..Progress::default()
            });
        let v_lines = txn_version(&self.lines).await?;
        let v_q = txn_version(&self.quarantine).await?;
        self.redo = None;
        if v_q > v_lines {
            let plan = latest_progress(&self.quarantine).await?.ok_or_else(|| {
                RefineError::Internal("quarantine is ahead of silver but has no plan".into())
            })?;
            tracing::warn!(
                batch = plan.batch,
                "the last batch committed its quarantine but not its lines; redoing it"
            );
            self.redo = Some(plan);
        }
        if v_lines.unwrap_or(0) != self.progress.batch {
            return Err(RefineError::Internal(format!(
                "pos_event_lines is at batch {:?} but its progress says {}",
                v_lines, self.progress.batch
            )));
        }
        self.dedup = DedupIndex::new(self.cfg.dedup_window_days);
        self.dedup
            .set_watermark(self.progress.watermark.map(date_days));
        let days = self.dedup.startup_days();
        let started = Instant::now();
        let n = self
            .dedup
            .load_days(&self.lines, self.lines.object_store(), &days)
            .await?;
        tracing::debug!(
            ids = n,
            days = days.len(),
            ms = started.elapsed().as_millis() as u64,
            "dedup window loaded from silver"
        );
        self.known.clear();
        self.prefetch = None;
        self.dirty = false;
        Ok(())
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn lines_table(&self) -> &DeltaTable {
        &self.lines
    }

    /// Learns of new bronze objects (the hand-off from ingest in one process).
    pub fn offer(&mut self, names: impl IntoIterator<Item = ObjectName>) {
        for n in names {
            if !self.is_consumed(&n) {
                self.known.insert(sort_key(&n), n);
            }
        }
    }

    fn is_consumed(&self, n: &ObjectName) -> bool {
        self.progress
            .consumed
            .get(&stream_key(n))
            .is_some_and(|c| cmp_seq(&n.last_seq, c).is_le())
    }

    /// Lists bronze for objects not yet consumed.
    ///
    /// A listing is not a snapshot: one that runs while a writer adds objects can return a
    /// newer object and miss an older one of the same stream (a directory read in hash order,
    /// a paginated S3 listing). Consuming the newer one would mark the older one consumed for
    /// ever. So bronze is listed twice: everything of the first listing is offered, and of the
    /// second only what precedes something the first one saw — which existed before the first
    /// listing ended and so cannot be missing from the second.
    pub async fn scan(&mut self) -> Result<usize, RefineError> {
        let list = || async {
            list_bronze(self.bronze.as_ref(), None)
                .await
                .map_err(|e| RefineError::Storage(format!("listing bronze: {e}")))
        };
        let first = list().await?;
        let second = list().await?;
        self.offer(settled(first, second));
        Ok(self.known.len())
    }

    /// Objects known and not yet consumed.
    pub fn backlog(&self) -> usize {
        self.known.len()
    }

    /// Refines batches until nothing known is left; returns their reports.
    pub async fn drain(&mut self) -> Result<Vec<BatchReport>, RefineError> {
        let mut out = Vec::new();
        while let Some(r) = self.run_batch().await? {
            out.push(r);
        }
        Ok(out)
    }

    /// Runs one batch; `None` when there is nothing to do.
    pub async fn run_batch(&mut self) -> Result<Option<BatchReport>, RefineError> {
        if self.dirty {
            self.recover().await?;
            self.scan().await?;
        }
        let result = self.try_batch().await;
        if result.is_err() {
            self.dedup.rollback();
            self.dirty = true;
            metrics::STAGE_RUNS
                .with_label_values(&["refine", "error"])
                .inc();
        }
        result
    }

    async fn try_batch(&mut self) -> Result<Option<BatchReport>, RefineError> {
        let started = Instant::now();
        let redo = self.redo.clone();
        let (names, batch) = self.choose(redo.as_ref())?;
        if names.is_empty() {
            return Ok(None);
        }
        // a batch to redo is redone whole; otherwise it stops at the byte bound
        let max_bytes = redo.is_none().then_some(self.cfg.batch_max_bytes);
        let (refined_at, parsed) = self.parse(&names, batch, redo.is_none(), max_bytes).await?;
        let names: Vec<ObjectName> = names.into_iter().take(parsed.len()).collect();
        if redo.is_none() {
            self.prefetch_after(names.len(), batch, max_bytes);
        }
        // days older than what dedup holds are read from silver first
        let days = self
            .dedup
            .missing_days(parsed.iter().flat_map(|p| p.events.iter().map(|e| e.date)));
        if !days.is_empty() {
            self.dedup
                .load_days(&self.lines, self.lines.object_store(), &days)
                .await?;
        }
        let sorted = self.sort(&parsed)?;
        let counts = sorted.counts.clone();
        if !counts.reconciles() {
            return Err(RefineError::Internal(format!(
                "batch {batch} does not reconcile: {} records != {} events + {} quarantined + {} duplicates",
                counts.records, counts.events, counts.quarantined, counts.duplicates
            )));
        }
        let progress = self.progress_of(&names, batch, redo.as_ref(), refined_at, &sorted);
        if !sorted.quarantine.is_empty() && redo.is_none() {
            let qb = quarantine_batch(&sorted.quarantine, refined_at, batch)?;
            let rows = vec![Rows {
                date: None,
                rows: qb,
            }];
            commit(&mut self.quarantine, QUARANTINE, rows, batch, &progress).await?;
            stocklake_storage::failpoint("refine_after_quarantine_commit");
        }
        // each object's rows of a date go to the writer of that partition as they are, without
        // gathering them into one batch or splitting them again
        let version = commit(
            &mut self.lines,
            POS_EVENT_LINES,
            sorted.kept,
            batch,
            &progress,
        )
        .await?;
        stocklake_storage::failpoint("refine_after_lines_commit");
        self.committed(&names, progress);
        let seconds = started.elapsed().as_secs_f64();
        record_batch(batch, names.len(), &counts, seconds);
        Ok(Some(BatchReport {
            batch,
            objects: names.len(),
            counts,
            lines_version: Some(version),
            seconds,
        }))
    }

    /// The objects of the next batch, and its number: those of a batch to redo, or the oldest
    /// known.
    fn choose(&self, redo: Option<&Progress>) -> Result<(Vec<ObjectName>, i64), RefineError> {
        Ok(match redo {
            Some(plan) => {
                let names: Vec<ObjectName> = plan
                    .objects
                    .iter()
                    .map(|p| {
                        ObjectName::parse(p).ok_or_else(|| {
                            RefineError::Internal(format!("bad object name in plan: {p}"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                (names, plan.batch)
            }
            None => {
                let names: Vec<ObjectName> = self
                    .known
                    .values()
                    .take(self.cfg.batch_max_objects.max(1))
                    .cloned()
                    .collect();
                (names, self.progress.batch + 1)
            }
        })
    }

    /// The batch's objects read and parsed: by the prefetch when it read these, or now.
    async fn parse(
        &mut self,
        names: &[ObjectName],
        batch: i64,
        fresh: bool,
        max_bytes: Option<usize>,
    ) -> Result<(DateTime<Utc>, Vec<ObjectParse>), RefineError> {
        let ready = self
            .prefetch
            .take()
            .filter(|p| fresh && p.batch == batch && names.starts_with(&p.names));
        if let Some(mut p) = ready {
            let task = p
                .task
                .take()
                .ok_or_else(|| RefineError::Internal("a prefetch without its task".into()))?;
            let parsed = task
                .await
                .map_err(|e| RefineError::Internal(format!("prefetch: {e}")))??;
            return Ok((p.refined_at, parsed));
        }
        let refined_at = Utc::now();
        let ctx = BatchContext {
            batch,
            refined_at,
            window: self.cfg.window,
        };
        let parsed = parse_objects(self.bronze.clone(), names.to_vec(), ctx, max_bytes).await?;
        Ok((refined_at, parsed))
    }

    /// Reads and parses the objects after the first `taken`, while this batch is written.
    fn prefetch_after(&mut self, taken: usize, batch: i64, max_bytes: Option<usize>) {
        let next: Vec<ObjectName> = self
            .known
            .values()
            .skip(taken)
            .take(self.cfg.batch_max_objects.max(1))
            .cloned()
            .collect();
        if next.is_empty() {
            return;
        }
        let ctx = BatchContext {
            batch: batch + 1,
            refined_at: Utc::now(),
            window: self.cfg.window,
        };
        self.prefetch = Some(Prefetch {
            batch: batch + 1,
            refined_at: ctx.refined_at,
            names: next.clone(),
            task: Some(tokio::spawn(parse_objects(
                self.bronze.clone(),
                next,
                ctx,
                max_bytes,
            ))),
        });
    }

    /// Sorts the parsed events in order: new ones kept (their lines, by date), duplicates
    /// counted, conflicting ones and invalid records to quarantine.
    fn sort(&mut self, parsed: &[ObjectParse]) -> Result<Sorted, RefineError> {
        let mut s = Sorted {
            counts: Counts::default(),
            quarantine: Vec::new(),
            kept: Vec::new(),
            max_time: self.progress.watermark,
            max_arrived: self.progress.max_arrived_at,
        };
        for p in parsed {
            s.counts.records += p.records;
            s.max_arrived = s.max_arrived.max(p.max_arrived_at);
            s.quarantine.extend(p.quarantine.iter().cloned());
            let mask = self.dedup_object(p, &mut s);
            for day in &p.days {
                let (start, len) = (day.start as usize, day.len as usize);
                let rows = p.lines.slice(start, len);
                let keep = &mask[start..start + len];
                // the rows as they are when no duplicate is among them (the usual case), a few
                // slices around the odd duplicate, or a filtered copy
                let runs = kept_runs(keep);
                let parts = if runs.len() <= MAX_SLICES {
                    runs.into_iter()
                        .map(|(a, n)| rows.slice(a, n))
                        .collect::<Vec<_>>()
                } else {
                    vec![
                        filter_record_batch(&rows, &BooleanArray::from(keep.to_vec()))
                            .map_err(|e| RefineError::Internal(format!("filtering lines: {e}")))?,
                    ]
                };
                s.kept.extend(parts.into_iter().map(|rows| Rows {
                    date: Some(day.date),
                    rows,
                }));
            }
        }
        s.counts.quarantined = s.quarantine.len() as u64;
        for q in &s.quarantine {
            for r in &q.reasons {
                *s.counts.reasons.entry(r.clone()).or_default() += 1;
            }
        }
        Ok(s)
    }

    /// Checks an object's events against dedup, in order; which of its lines are kept.
    fn dedup_object(&mut self, p: &ObjectParse, s: &mut Sorted) -> Vec<bool> {
        let mut mask = vec![false; p.lines.num_rows()];
        for e in &p.events {
            match self.dedup.check(e.id_hash, e.fingerprint, e.date) {
                Verdict::New => {
                    s.counts.events += 1;
                    s.counts.lines += u64::from(e.lines);
                    s.max_time = s.max_time.max(Some(e.event_time));
                    for m in &mut mask[e.first_row as usize..(e.first_row + e.lines) as usize] {
                        *m = true;
                    }
                }
                Verdict::Duplicate => s.counts.duplicates += 1,
                Verdict::Conflict => {
                    if let Some((payload, base)) = p.payload_of(e.bronze_line) {
                        let event_id = event_id_at(&p.lines, e.first_row as usize);
                        s.quarantine.push(QuarantineRow {
                            reasons: vec![ReasonCode::DuplicateConflict.as_str().into()],
                            details: format!(
                                "duplicate_conflict: event_id {:?} was already accepted with other content",
                                event_id.as_deref().unwrap_or("")
                            ),
                            event_id,
                            payload,
                            arrived_at: base.arrived_at,
                            source: base.source,
                            partition: base.partition,
                            sequence: base.sequence,
                            bronze_object: p.name.path(),
                            bronze_line: e.bronze_line,
                        });
                    }
                }
            }
        }
        mask
    }

    /// Where refine stands once the batch commits.
    fn progress_of(
        &self,
        names: &[ObjectName],
        batch: i64,
        redo: Option<&Progress>,
        refined_at: DateTime<Utc>,
        sorted: &Sorted,
    ) -> Progress {
        let mut consumed = match redo {
            Some(plan) => plan.consumed.clone(),
            None => {
                let mut c = self.progress.consumed.clone();
                for n in names {
                    let key = stream_key(n);
                    let newer = c
                        .get(&key)
                        .is_none_or(|cur| cmp_seq(&n.last_seq, cur).is_gt());
                    if newer {
                        c.insert(key, n.last_seq.clone());
                    }
                }
                c
            }
        };
        consumed.retain(|_, v| !v.is_empty());
        let mut totals = self.progress.totals.clone();
        totals.add(&sorted.counts);
        Progress {
            kind: "refine".into(),
            batch,
            consumed,
            watermark: sorted.max_time,
            max_arrived_at: sorted.max_arrived,
            refined_at: Some(refined_at),
            objects: names.iter().map(ObjectName::path).collect(),
            batch_counts: sorted.counts.clone(),
            totals,
        }
    }

    /// The batch committed: remember it.
    fn committed(&mut self, names: &[ObjectName], progress: Progress) {
        self.dedup.commit(progress.watermark.map(date_days));
        for n in names {
            self.known.remove(&sort_key(n));
        }
        self.progress = progress;
        self.redo = None;
        let known_consumed: BTreeSet<(String, usize, String)> = self
            .known
            .iter()
            .filter(|(_, n)| self.is_consumed(n))
            .map(|(k, _)| k.clone())
            .collect();
        for k in known_consumed {
            self.known.remove(&k);
        }
    }
}

/// A batch's events sorted: what is kept, what goes to quarantine, and the counts.
struct Sorted {
    counts: Counts,
    quarantine: Vec<QuarantineRow>,
    kept: Vec<Rows>,
    max_time: Option<DateTime<Utc>>,
    max_arrived: Option<DateTime<Utc>>,
}

/// A committed batch in the metrics and the log.
fn record_batch(batch: i64, objects: usize, counts: &Counts, seconds: f64) {
    metrics::REFINE_RECORDS
        .with_label_values(&["event"])
        .inc_by(counts.events);
    metrics::REFINE_RECORDS
        .with_label_values(&["quarantined"])
        .inc_by(counts.quarantined);
    metrics::REFINE_RECORDS
        .with_label_values(&["duplicate"])
        .inc_by(counts.duplicates);
    for (reason, n) in &counts.reasons {
        metrics::QUARANTINE_REASONS
            .with_label_values(&[reason])
            .inc_by(*n);
    }
    metrics::SILVER_LINES.inc_by(counts.lines);
    metrics::STAGE_RUNS
        .with_label_values(&["refine", "ok"])
        .inc();
    metrics::BATCH_SECONDS
        .with_label_values(&["refine"])
        .observe(seconds);
    tracing::debug!(
        batch,
        objects,
        records = counts.records,
        events = counts.events,
        quarantined = counts.quarantined,
        duplicates = counts.duplicates,
        seconds,
        "refined a batch"
    );
}

fn event_id_at(batch: &RecordBatch, row: usize) -> Option<String> {
    use deltalake::arrow::array::{Array, AsArray};
    batch
        .column_by_name("event_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|a| row < a.len())
        .map(|a| a.value(row).to_string())
}

async fn txn_version(table: &DeltaTable) -> Result<Option<i64>, RefineError> {
    if table.version().is_none() {
        return Ok(None);
    }
    let snapshot = table
        .snapshot()
        .map_err(|e| RefineError::delta("snapshot", e))?;
    snapshot
        .transaction_version(table.log_store().as_ref(), APP_ID)
        .await
        .map_err(|e| RefineError::delta("transaction version", e))
}

/// Beyond this many runs of kept rows in one date of one object, its rows are copied without
/// the duplicates rather than passed on in slices.
const MAX_SLICES: usize = 64;

/// The runs of `true` in a mask, as (start, length).
fn kept_runs(keep: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, k) in keep.iter().enumerate() {
        match (k, start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                runs.push((a, i - a));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        runs.push((a, keep.len() - a));
    }
    runs
}

/// Rows to commit: all of one `event_date` partition, or (`None`) of an unpartitioned table.
#[derive(Debug, Clone)]
pub struct Rows {
    pub date: Option<i32>,
    pub rows: RecordBatch,
}

/// A date with fewer rows than twice this is never split over writers: its rows go to one
/// file. Live batches (a few thousand lines) stay one file per partition.
pub const MIN_SPLIT_ROWS: usize = 1 << 17;

/// Spreads rows over at most `ways` writers, balanced by rows (the largest piece first to the
/// lightest writer); each writer keeps the rows' order. A date goes whole to one writer unless
/// it holds more than a writer's fair share and at least `2 * min_split_rows` rows: then it is
/// cut into up to `ways` contiguous pieces (zero-copy slices) that are encoded in parallel, one
/// file each. A bulk load of one day's records would otherwise be encoded on one core.
pub fn spread_by_date(rows: Vec<Rows>, ways: usize, min_split_rows: usize) -> Vec<Vec<Rows>> {
    let mut sizes: BTreeMap<Option<i32>, usize> = BTreeMap::new();
    for r in &rows {
        *sizes.entry(r.date).or_default() += r.rows.num_rows();
    }
    let total: usize = sizes.values().sum();
    let ways = ways.max(1);
    let share = total.div_ceil(ways).max(1);
    // each date's pieces, as the row (within the date) where each piece ends
    let mut ends: BTreeMap<Option<i32>, Vec<usize>> = BTreeMap::new();
    let mut pieces: Vec<(usize, Option<i32>, usize)> = Vec::new();
    for (&date, &n) in &sizes {
        let k = if n > share && n >= 2 * min_split_rows.max(1) {
            n.div_ceil(share)
                .min(ways)
                .min(n / min_split_rows.max(1))
                .max(1)
        } else {
            1
        };
        let e: Vec<usize> = (1..=k).map(|i| n * i / k).collect();
        let mut from = 0;
        for (i, &to) in e.iter().enumerate() {
            pieces.push((to - from, date, i));
            from = to;
        }
        ends.insert(date, e);
    }
    pieces.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let ways = ways.min(pieces.len().max(1));
    let mut load = vec![0usize; ways];
    let mut writer_of: BTreeMap<(Option<i32>, usize), usize> = BTreeMap::new();
    for (n, date, i) in pieces {
        let lightest = (0..ways).min_by_key(|w| (load[*w], *w)).unwrap_or(0);
        load[lightest] += n;
        writer_of.insert((date, i), lightest);
    }
    let mut out: Vec<Vec<Rows>> = vec![Vec::new(); ways];
    let mut seen: BTreeMap<Option<i32>, usize> = BTreeMap::new();
    for r in rows {
        let n = r.rows.num_rows();
        let at = seen.entry(r.date).or_default();
        let piece_ends = ends.get(&r.date).map(Vec::as_slice).unwrap_or(&[]);
        if piece_ends.len() <= 1 {
            let w = writer_of.get(&(r.date, 0)).copied().unwrap_or(0);
            *at += n;
            out[w].push(r);
            continue;
        }
        // cut at the piece boundaries that fall inside these rows
        let mut done = 0;
        while done < n {
            let row = *at + done;
            let piece = piece_ends.partition_point(|&end| end <= row);
            let end = piece_ends.get(piece).copied().unwrap_or(*at + n);
            let len = (end - row).min(n - done);
            let w = writer_of.get(&(r.date, piece)).copied().unwrap_or(0);
            out[w].push(Rows {
                date: r.date,
                rows: if len == n {
                    r.rows.clone()
                } else {
                    r.rows.slice(done, len)
                },
            });
            done += len;
        }
        *at += n;
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Partitions one writer keeps open at once before it writes them out (decision 0021).
const MAX_OPEN_PARTITIONS: usize = 16;

/// Commits `batch` rows (or none) with the refine transaction and progress.
async fn commit(
    table: &mut DeltaTable,
    name: &str,
    rows: Vec<Rows>,
    batch: i64,
    progress: &Progress,
) -> Result<u64, RefineError> {
    let meta = serde_json::to_value(progress)
        .map_err(|e| RefineError::Internal(format!("progress: {e}")))?;
    let props = CommitProperties::default()
        .with_application_transaction(Transaction::new(APP_ID, batch))
        .with_metadata([(META_KEY.to_string(), meta)]);
    let snapshot = table.snapshot().map_err(|e| RefineError::delta(name, e))?;
    let partition_by = {
        let cols: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        (!cols.is_empty()).then_some(cols)
    };
    let mut actions: Vec<Action> = Vec::new();
    if !rows.is_empty() {
        // Parquet encoding is the costliest step after parsing: partitions are spread over
        // writers that encode in parallel (a partition gets one file per batch, or one per
        // writer when it alone holds more than a writer's share of a large batch)
        let ways = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let date_column = match partition_by.as_deref() {
            Some([column]) => Some(column.clone()),
            _ => None,
        };
        let mut writing = Vec::with_capacity(ways);
        for mut share in spread_by_date(rows, ways, MIN_SPLIT_ROWS) {
            // each date's rows together (in their order), so a date is opened once
            share.sort_by_key(|part| part.date);
            let mut writer = table_writer(table, name)?;
            let date_column = date_column.clone();
            writing.push(tokio::spawn(async move {
                // a partition's writer holds its encoders and pages until flushed (megabytes
                // each): past a few dates in flight, what is open is written out, so memory
                // stays bounded however many dates a batch spans
                let mut adds = Vec::new();
                let mut open: HashSet<i32> = HashSet::new();
                for part in share {
                    match (part.date, &date_column) {
                        (Some(date), Some(column)) => {
                            if !open.contains(&date) && open.len() >= MAX_OPEN_PARTITIONS {
                                adds.extend(writer.flush().await?);
                                open.clear();
                            }
                            open.insert(date);
                            let values = indexmap::IndexMap::from([(
                                column.clone(),
                                delta_kernel::expressions::Scalar::Date(date),
                            )]);
                            writer
                                .write_partition(part.rows, &values, WriteMode::Default)
                                .await?;
                        }
                        _ => writer.write(part.rows).await?,
                    }
                }
                adds.extend(writer.flush().await?);
                Ok::<_, deltalake::DeltaTableError>(adds)
            }));
        }
        for w in writing {
            let adds = w
                .await
                .map_err(|e| RefineError::Internal(format!("writing {name}: {e}")))?
                .map_err(|e| RefineError::delta(name, e))?;
            actions.extend(adds.into_iter().map(Action::Add));
        }
    }
    let finalized = CommitBuilder::from(props)
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by,
                predicate: None,
            },
        )
        .await
        .map_err(|e| RefineError::delta(name, e))?;
    let version = finalized.version();
    table
        .update_state()
        .await
        .map_err(|e| RefineError::delta(name, e))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stocklake_storage::BronzeObject;
    use stocklake_storage::bronze::Source;

    fn obj(partition: &str, first: u64, last: u64) -> BronzeObject {
        BronzeObject {
            name: ObjectName {
                ingest_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
                source: Source::Http,
                partition: partition.into(),
                first_seq: first.to_string(),
                last_seq: last.to_string(),
            },
            size: 1,
        }
    }

    #[test]
    fn kept_rows_come_in_runs() {
        assert_eq!(kept_runs(&[]), vec![]);
        assert_eq!(kept_runs(&[true; 4]), vec![(0, 4)]);
        assert_eq!(kept_runs(&[false; 3]), vec![]);
        assert_eq!(
            kept_runs(&[true, true, false, true, false, false, true]),
            vec![(0, 2), (3, 1), (6, 1)]
        );
        assert_eq!(kept_runs(&[false, true, true]), vec![(1, 2)]);
    }

    /// Rows of one Int32 column `n` for `date`.
    fn int_rows(date: i32, values: impl IntoIterator<Item = i32>) -> Rows {
        use deltalake::arrow::array::Int32Array;
        use deltalake::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        Rows {
            date: Some(date),
            rows: RecordBatch::try_new(
                schema,
                vec![Arc::new(Int32Array::from_iter_values(values))],
            )
            .expect("batch"),
        }
    }

    #[test]
    fn dates_are_spread_whole_and_balanced_over_writers() {
        let rows = |date: i32, n: usize| int_rows(date, vec![date; n]);
        // day 1: 3 + 2 rows, day 2: 3, day 3: 2, day 4: 2 (two objects)
        let input = vec![rows(1, 3), rows(2, 3), rows(3, 2), rows(1, 2), rows(4, 2)];
        let shares = spread_by_date(input.clone(), 2, 100);
        let dates = |w: &Vec<Rows>| w.iter().map(|r| r.date).collect::<Vec<_>>();
        // largest first to the lightest: {1} (5 rows) and {2, 3} (5), then 4 joins {1}
        assert_eq!(dates(&shares[0]), vec![Some(1), Some(1), Some(4)]);
        assert_eq!(dates(&shares[1]), vec![Some(2), Some(3)]);
        // the batches are passed on, not copied
        assert!(
            shares[0][0]
                .rows
                .column(0)
                .to_data()
                .ptr_eq(&input[0].rows.column(0).to_data())
        );
        // one way, or one date: one writer with everything, in order
        assert_eq!(spread_by_date(input.clone(), 1, 1).len(), 1);
        assert_eq!(dates(&spread_by_date(input, 1, 1)[0]).len(), 5);
        assert_eq!(
            spread_by_date(vec![rows(7, 1), rows(7, 2)], 4, 100).len(),
            1
        );
        assert!(spread_by_date(Vec::new(), 2, 1).is_empty());
    }

    #[test]
    fn a_large_date_is_cut_into_contiguous_pieces_one_per_writer() {
        use deltalake::arrow::array::AsArray;
        use deltalake::arrow::datatypes::Int32Type;
        let rows = int_rows;
        let values = |w: &Vec<Rows>| -> Vec<(Option<i32>, Vec<i32>)> {
            w.iter()
                .map(|r| {
                    let v = r
                        .rows
                        .column(0)
                        .as_primitive::<Int32Type>()
                        .values()
                        .to_vec();
                    (r.date, v)
                })
                .collect()
        };
        // one date of 10 rows in two objects (6 + 4): 5 rows to each of two writers
        let input = vec![rows(1, 0..6), rows(1, 6..10)];
        let shares = spread_by_date(input.clone(), 2, 2);
        assert_eq!(shares.len(), 2);
        assert_eq!(values(&shares[0]), vec![(Some(1), (0..5).collect())]);
        assert_eq!(
            values(&shares[1]),
            vec![(Some(1), vec![5]), (Some(1), (6..10).collect())]
        );
        // the second object goes on whole, not copied
        assert!(
            shares[1][1]
                .rows
                .column(0)
                .to_data()
                .ptr_eq(&input[1].rows.column(0).to_data())
        );
        // below twice the smallest piece, or within a writer's share: whole
        assert_eq!(spread_by_date(input.clone(), 2, 6).len(), 1);
        let mixed = vec![rows(1, 0..5), rows(2, 10..15)];
        let shares = spread_by_date(mixed, 2, 1);
        assert_eq!(values(&shares[0]), vec![(Some(1), (0..5).collect())]);
        assert_eq!(values(&shares[1]), vec![(Some(2), (10..15).collect())]);
        // a large date beside a small one: cut so the writers come out even
        let uneven = vec![rows(1, 0..9), rows(2, 100..103)];
        let shares = spread_by_date(uneven, 2, 2);
        let loads: Vec<usize> = shares
            .iter()
            .map(|w| w.iter().map(|r| r.rows.num_rows()).sum())
            .collect();
        assert_eq!(loads.iter().sum::<usize>(), 12);
        assert!(loads.iter().all(|&n| n <= 7), "{loads:?}");
        // every row once
        let mut all: Vec<i32> = shares
            .iter()
            .flat_map(values)
            .flat_map(|(_, v)| v)
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..9).chain(100..103).collect::<Vec<_>>());
    }

    fn seqs(names: &[ObjectName]) -> Vec<(String, String)> {
        let mut v: Vec<_> = names
            .iter()
            .map(|n| (n.partition.clone(), n.first_seq.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_listing_that_missed_an_older_object_is_completed_by_the_second() {
        // the first listing raced a writer: it saw 21-30 but not 11-20; 31-40 came after it
        let first = vec![obj("a", 1, 10), obj("a", 21, 30), obj("b", 5, 9)];
        let second = vec![
            obj("a", 1, 10),
            obj("a", 11, 20),
            obj("a", 21, 30),
            obj("a", 31, 40),
            obj("b", 5, 9),
            obj("c", 1, 3),
        ];
        let got = seqs(&settled(first, second));
        assert!(got.contains(&("a".into(), "11".into())), "{got:?}");
        // what only the second listing saw, past the first's newest, waits for the next scan:
        // it may itself have been listed before an older object of its stream
        assert!(!got.contains(&("a".into(), "31".into())), "{got:?}");
        assert!(!got.contains(&("c".into(), "1".into())), "{got:?}");
        assert!(got.contains(&("a".into(), "21".into())));
        assert!(got.contains(&("b".into(), "5".into())));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        // 9 < 10 although "9" > "10" as text
        let got = seqs(&settled(
            vec![obj("a", 10, 10)],
            vec![obj("a", 9, 9), obj("a", 10, 10)],
        ));
        assert!(got.contains(&("a".into(), "9".into())), "{got:?}");
    }
}
