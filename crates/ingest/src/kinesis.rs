//! The Kinesis source: every shard of a stream, read concurrently into bronze, exactly once.
//!
//! Bronze is the checkpoint: a shard resumes right after the highest sequence number found in
//! bronze object names, so a crash at any instant re-reads only what was not yet durable.
//! After a reshard a child shard waits until its parents are read to the end, so the order of
//! records of one partition key is kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::operation::get_records::GetRecordsError;
use aws_sdk_kinesis::types::{Shard, ShardIteratorType};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use stocklake_storage::bronze::Source;
use stocklake_storage::{Backoff, ErrorClass, high_water_marks, list_bronze};
use stocklake_telemetry as metrics;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::IngestError;
use crate::bronze::{BronzeWriter, PendingRecord};

/// Settings of the Kinesis source.
#[derive(Debug, Clone)]
pub struct KinesisConfig {
    pub stream: String,
    /// A bronze object is written at least this often while records arrive.
    pub flush_interval: Duration,
    /// … or as soon as this many payload bytes are buffered.
    pub flush_bytes: usize,
    /// Records asked for per GetRecords call (at most 10000).
    pub get_records_limit: i32,
    /// Pause after an empty GetRecords (a shard allows 5 calls a second).
    pub idle_poll: Duration,
    /// How often the shard list is read again to find new shards after a reshard.
    pub relist_interval: Duration,
}

impl KinesisConfig {
    pub fn new(stream: impl Into<String>) -> KinesisConfig {
        KinesisConfig {
            stream: stream.into(),
            flush_interval: Duration::from_secs(1),
            flush_bytes: 8 << 20,
            get_records_limit: 10_000,
            idle_poll: Duration::from_millis(200),
            relist_interval: Duration::from_secs(10),
        }
    }
}

/// What one shard's reader has done, for status pages.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShardStatus {
    /// The highest sequence number made durable in bronze.
    pub checkpoint: Option<String>,
    pub millis_behind_latest: Option<i64>,
    pub records: u64,
    /// Read to its end (a closed parent after a reshard).
    pub finished: bool,
    pub last_error: Option<String>,
}

/// Reads a stream's shards into bronze.
#[derive(Debug, Clone)]
pub struct KinesisSource {
    client: Client,
    cfg: KinesisConfig,
    writer: BronzeWriter,
    status: Arc<Mutex<BTreeMap<String, ShardStatus>>>,
    /// The last failure to list the stream's shards, until a listing succeeds again.
    listing_error: Arc<Mutex<Option<String>>>,
}

#[derive(Default)]
struct Finished {
    shards: Mutex<HashSet<String>>,
    notify: Notify,
}

impl Finished {
    fn contains_all(&self, ids: &[String]) -> bool {
        self.shards
            .lock()
            .map(|s| ids.iter().all(|i| s.contains(i)))
            .unwrap_or(false)
    }
    fn insert(&self, id: &str) {
        if let Ok(mut s) = self.shards.lock() {
            s.insert(id.to_string());
        }
        self.notify.notify_waiters();
    }
}

enum ShardEnd {
    /// The shard is closed and every record is in bronze.
    Finished,
    /// Caught up with the tip (`--once`).
    CaughtUp,
    Cancelled,
}

impl KinesisSource {
    pub fn new(client: Client, cfg: KinesisConfig, writer: BronzeWriter) -> KinesisSource {
        KinesisSource {
            client,
            cfg,
            writer,
            status: Arc::new(Mutex::new(BTreeMap::new())),
            listing_error: Arc::new(Mutex::new(None)),
        }
    }

    fn source(&self) -> Source {
        Source::Kinesis {
            stream: self.cfg.stream.clone(),
        }
    }

    /// Per-shard progress.
    pub fn status(&self) -> BTreeMap<String, ShardStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Why the stream's shards cannot be listed right now, if they cannot.
    pub fn listing_error(&self) -> Option<String> {
        self.listing_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_listing_error(&self, e: Option<String>) {
        if let Ok(mut slot) = self.listing_error.lock() {
            *slot = e;
        }
    }

    fn update(&self, shard: &str, f: impl FnOnce(&mut ShardStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(s.entry(shard.to_string()).or_default());
        }
    }

    /// Reads every shard until cancelled, or, with `once`, until every shard is caught up.
    /// Returns the number of records written to bronze.
    pub async fn run(&self, once: bool, cancel: CancellationToken) -> Result<u64, IngestError> {
        let objects = list_bronze(self.writer.store().as_ref(), None)
            .await
            .map_err(|e| IngestError::storage(e).context("listing bronze"))?;
        let hwm = high_water_marks(&objects, &self.source());
        for (shard, seq) in &hwm {
            let seq = seq.clone();
            self.update(shard, |s| s.checkpoint = Some(seq));
        }
        let finished = Arc::new(Finished::default());
        let mut started: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<(String, Result<(ShardEnd, u64), IngestError>)> = JoinSet::new();
        let mut total = 0u64;
        loop {
            let shards = self.list_shards(&cancel).await?;
            let known: HashSet<String> = shards.iter().map(|s| s.shard_id().to_string()).collect();
            for shard in &shards {
                let id = shard.shard_id().to_string();
                if started.contains(&id) {
                    continue;
                }
                started.insert(id.clone());
                // parents that have aged out of the stream are finished by definition
                let parents: Vec<String> =
                    [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                        .into_iter()
                        .flatten()
                        .filter(|p| known.contains(*p))
                        .map(str::to_string)
                        .collect();
                let this = self.clone();
                // where bronze ends for this shard now: a reader restarted after a failure
                // resumes after its last durable object, not where the process started
                let start_after = self
                    .status()
                    .get(&id)
                    .and_then(|s| s.checkpoint.clone())
                    .or_else(|| hwm.get(&id).cloned());
                let closed = shard
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some();
                let finished = finished.clone();
                let cancel = cancel.clone();
                tasks.spawn(async move {
                    let r = this
                        .read_shard(&id, parents, start_after, closed, once, &finished, &cancel)
                        .await;
                    if matches!(r, Ok((ShardEnd::Finished, _))) {
                        finished.insert(&id);
                    }
                    (id, r)
                });
            }
            if once {
                while let Some(joined) = tasks.join_next().await {
                    let (id, r) = joined.map_err(|e| IngestError::Internal(e.to_string()))?;
                    match r {
                        Ok((_, n)) => total += n,
                        Err(e) => {
                            cancel.cancel();
                            return Err(e.context(&format!("shard {id}")));
                        }
                    }
                }
                return Ok(total);
            }
            let relist = tokio::time::sleep(self.cfg.relist_interval);
            tokio::pin!(relist);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => {
                        while let Some(joined) = tasks.join_next().await {
                            if let Ok((_, Ok((_, n)))) = joined {
                                total += n;
                            }
                        }
                        return Ok(total);
                    }
                    _ = &mut relist => break,
                    Some(joined) = tasks.join_next() => {
                        let (id, r) = joined.map_err(|e| IngestError::Internal(e.to_string()))?;
                        match r {
                            Ok((_, n)) => total += n,
                            Err(e) if e.class() == ErrorClass::Fatal => {
                                cancel.cancel();
                                return Err(e.context(&format!("shard {id}")));
                            }
                            Err(e) => {
                                // read it again from its checkpoint at the next listing
                                tracing::warn!(shard = %id, error = %e, "shard reader failed; restarting");
                                self.update(&id, |s| s.last_error = Some(e.to_string()));
                                started.remove(&id);
                            }
                        }
                    }
                }
            }
        }
    }

    async fn list_shards(&self, cancel: &CancellationToken) -> Result<Vec<Shard>, IngestError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        for attempt in 0.. {
            let listed = self.try_list_shards().await;
            self.set_listing_error(listed.as_ref().err().map(ToString::to_string));
            match listed {
                Ok(s) => return Ok(s),
                Err(e) if attempt < 8 && e.class() != ErrorClass::Fatal => {
                    metrics::INGEST_ERRORS
                        .with_label_values(&["kinesis", "list_shards"])
                        .inc();
                    tracing::warn!(error = %e, "ListShards failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(Vec::new()),
                        _ = tokio::time::sleep(backoff.failed()) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Vec::new())
    }

    async fn try_list_shards(&self) -> Result<Vec<Shard>, IngestError> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // with a next token the stream name must not be given
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(&self.cfg.stream),
            };
            let out = req.send().await.map_err(|e| {
                IngestError::kinesis(
                    &format!("ListShards on {stream}", stream = self.cfg.stream),
                    e,
                )
            })?;
            shards.extend(out.shards().iter().cloned());
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(shards)
    }

    async fn iterator(
        &self,
        shard: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, IngestError> {
        let mut req = self
            .client
            .get_shard_iterator()
            .stream_name(&self.cfg.stream)
            .shard_id(shard);
        req = match after {
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let out = req
            .send()
            .await
            .map_err(|e| IngestError::kinesis(&format!("GetShardIterator {shard}"), e))?;
        Ok(out.shard_iterator().map(str::to_string))
    }

    async fn read_shard(
        &self,
        shard: &str,
        parents: Vec<String>,
        start_after: Option<String>,
        closed: bool,
        once: bool,
        finished: &Finished,
        cancel: &CancellationToken,
    ) -> Result<(ShardEnd, u64), IngestError> {
        if !wait_for_parents(&parents, finished, cancel).await {
            return Ok((ShardEnd::Cancelled, 0));
        }
        let source = self.source();
        let mut cursor = start_after;
        let mut iterator = self.iterator(shard, cursor.as_deref()).await?;
        let mut buffer: Vec<PendingRecord> = Vec::new();
        let mut buffer_bytes = 0usize;
        let mut buffer_since = Instant::now();
        let mut written = 0u64;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            let Some(it) = iterator.clone() else {
                // the shard is closed and read to its end
                self.flush(
                    &source,
                    shard,
                    &mut buffer,
                    &mut buffer_bytes,
                    cancel,
                    &mut written,
                )
                .await?;
                self.update(shard, |s| s.finished = true);
                return Ok((ShardEnd::Finished, written));
            };
            if cancel.is_cancelled() {
                self.flush(
                    &source,
                    shard,
                    &mut buffer,
                    &mut buffer_bytes,
                    cancel,
                    &mut written,
                )
                .await?;
                return Ok((ShardEnd::Cancelled, written));
            }
            let resp = self
                .client
                .get_records()
                .shard_iterator(&it)
                .limit(self.cfg.get_records_limit)
                .send()
                .await;
            let out = match resp {
                Ok(out) => {
                    if backoff.failures() > 0 {
                        self.update(shard, |s| s.last_error = None);
                    }
                    backoff.succeeded();
                    out
                }
                Err(e) => {
                    match self.get_records_failed(shard, e, &mut backoff)? {
                        Some(pause) => {
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                _ = tokio::time::sleep(pause) => {}
                            }
                        }
                        None => iterator = self.iterator(shard, cursor.as_deref()).await?,
                    }
                    continue;
                }
            };
            let lag = out.millis_behind_latest();
            self.note_lag(shard, lag);
            let n = out.records().len();
            if buffer.is_empty() && n > 0 {
                buffer_since = Instant::now();
            }
            if let Some(last) = out.records().last() {
                cursor = Some(last.sequence_number().to_string());
            }
            buffer_bytes += take_records(out.records(), &mut buffer);
            iterator = out.next_shard_iterator().map(str::to_string);
            let caught_up = n == 0 && lag.unwrap_or(0) == 0;
            if closed && caught_up {
                // a closed shard at its tip is read to its end (some emulators never return a
                // null iterator for it)
                iterator = None;
            }
            let due = !buffer.is_empty()
                && (buffer_bytes >= self.cfg.flush_bytes
                    || buffer_since.elapsed() >= self.cfg.flush_interval
                    || (once && caught_up));
            if due {
                self.flush(
                    &source,
                    shard,
                    &mut buffer,
                    &mut buffer_bytes,
                    cancel,
                    &mut written,
                )
                .await?;
            }
            if once && caught_up && iterator.is_some() {
                return Ok((ShardEnd::CaughtUp, written));
            }
            if n < self.cfg.get_records_limit as usize {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(self.cfg.idle_poll) => {}
                }
            }
        }
    }

    /// Counts and shows a failed GetRecords; the pause before the next (`None`: the iterator
    /// expired, get another at once), or the error once a shard keeps failing for other
    /// reasons than throttling.
    fn get_records_failed<R: std::fmt::Debug + Send + Sync + 'static>(
        &self,
        shard: &str,
        e: aws_sdk_kinesis::error::SdkError<GetRecordsError, R>,
        backoff: &mut Backoff,
    ) -> Result<Option<Duration>, IngestError> {
        let service = e.as_service_error();
        if service.is_some_and(|s| s.is_expired_iterator_exception()) {
            metrics::INGEST_ERRORS
                .with_label_values(&["kinesis", "expired_iterator"])
                .inc();
            return Ok(None);
        }
        let throttled = service.is_some_and(|s| {
            s.is_provisioned_throughput_exceeded_exception() || s.is_kms_throttling_exception()
        });
        let kind = if throttled {
            "throttled"
        } else {
            "get_records"
        };
        metrics::INGEST_ERRORS
            .with_label_values(&["kinesis", kind])
            .inc();
        let e = IngestError::kinesis(&format!("GetRecords {shard}"), e);
        let text = e.to_string();
        tracing::debug!(shard, error = %text, "GetRecords failed; backing off");
        self.update(shard, |s| s.last_error = Some(text));
        if e.class() == ErrorClass::Fatal
            || (!throttled && backoff.next_pause() >= Duration::from_secs(20))
        {
            return Err(e);
        }
        Ok(Some(backoff.failed()))
    }

    /// How far behind the stream's tip a shard is, in the metrics and its status.
    fn note_lag(&self, shard: &str, lag: Option<i64>) {
        if let Some(ms) = lag {
            metrics::KINESIS_LAG_MS.with_label_values(&[shard]).set(ms);
        }
        self.update(shard, |s| s.millis_behind_latest = lag);
    }

    /// Writes the buffer as one bronze object, retrying until it is durable (or cancelled).
    async fn flush(
        &self,
        source: &Source,
        shard: &str,
        buffer: &mut Vec<PendingRecord>,
        buffer_bytes: &mut usize,
        cancel: &CancellationToken,
        written: &mut u64,
    ) -> Result<(), IngestError> {
        if buffer.is_empty() {
            return Ok(());
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            match self.writer.write(source, shard, buffer).await {
                Ok(o) => {
                    *written += buffer.len() as u64;
                    let n = buffer.len() as u64;
                    let seq = o.name.last_seq.clone();
                    self.update(shard, |s| {
                        s.checkpoint = Some(seq);
                        s.records += n;
                        s.last_error = None;
                    });
                    buffer.clear();
                    *buffer_bytes = 0;
                    return Ok(());
                }
                Err(e) => {
                    metrics::INGEST_ERRORS
                        .with_label_values(&["kinesis", "write_failed"])
                        .inc();
                    tracing::warn!(shard, error = %e, "bronze write failed; retrying");
                    self.update(shard, |s| s.last_error = Some(e.to_string()));
                    if cancel.is_cancelled() {
                        // not durable: it is read again from the checkpoint after restart
                        return Err(e);
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(backoff.failed()) => {}
                    }
                }
            }
        }
    }
}

/// Creates the stream with `shards` shards unless it exists, and waits until it is active.
pub async fn ensure_stream(
    client: &Client,
    stream: &str,
    shards: u32,
) -> Result<bool, IngestError> {
    // Describe first: a role allowed to read the stream but not to create streams passes
    // `init` once the stream exists (the least-privilege policies of deploy/terraform).
    let exists = match client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(e) => {
            return Err(IngestError::kinesis(
                &format!("DescribeStreamSummary {stream}"),
                e,
            ));
        }
    };
    let created = if exists {
        false
    } else {
        match client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards.max(1) as i32)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                false
            }
            Err(e) => {
                return Err(IngestError::kinesis(&format!("CreateStream {stream}"), e));
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| IngestError::kinesis(&format!("DescribeStreamSummary {stream}"), e))?;
        let active = out
            .stream_description_summary()
            .map(|d| {
                d.stream_status().as_str() == "ACTIVE" || d.stream_status().as_str() == "UPDATING"
            })
            .unwrap_or(false);
        if active {
            return Ok(created);
        }
        if Instant::now() > deadline {
            return Err(IngestError::kinesis_message(format!(
                "stream {stream} did not become active"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The decimal high-water marks per shard, as ingest would resume.
pub fn checkpoints(status: &BTreeMap<String, ShardStatus>) -> HashMap<String, String> {
    status
        .iter()
        .filter_map(|(k, v)| v.checkpoint.clone().map(|c| (k.clone(), c)))
        .collect()
}

/// Adds the records to the buffer; their bytes.
fn take_records(
    records: &[aws_sdk_kinesis::types::Record],
    buffer: &mut Vec<PendingRecord>,
) -> usize {
    let mut bytes = 0;
    for r in records {
        let record = pending(r);
        bytes += record.payload.len();
        buffer.push(record);
    }
    bytes
}

/// A Kinesis record as bronze takes it (its arrival time, or now when the stream has none).
fn pending(r: &aws_sdk_kinesis::types::Record) -> PendingRecord {
    let arrived_at = r
        .approximate_arrival_timestamp()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(Utc::now);
    PendingRecord {
        sequence: r.sequence_number().to_string(),
        arrived_at,
        payload: Bytes::copy_from_slice(r.data().as_ref()),
    }
}

/// Waits until every parent shard is read to its end (a child shard's records follow its
/// parents'); `false` when cancelled first.
async fn wait_for_parents(
    parents: &[String],
    finished: &Finished,
    cancel: &CancellationToken,
) -> bool {
    while !finished.contains_all(parents) {
        let notified = finished.notify.notified();
        if finished.contains_all(parents) {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    true
}
