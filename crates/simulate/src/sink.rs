//! Where simulated records go, and the pacer that plays them in (accelerated) real time.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use stocklake_storage::Backoff;
use tokio::time::Instant;

use crate::wire::OutRecord;
use crate::{Simulator, TruthRecord};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("HTTP ingest at {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("Kinesis stream {stream} failed: {message}")]
    Kinesis { stream: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// Where records are sent (`--to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
    /// The base URL of a stocklake HTTP API; records are POSTed to `/v1/events`.
    Http {
        base: String,
        token: Option<String>,
    },
    Kinesis {
        stream: String,
    },
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "stdout" || s == "-" {
            Ok(Target::Stdout)
        } else if let Some(path) = s.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("file: needs a path, e.g. file:events.ndjson".into());
            }
            Ok(Target::File(PathBuf::from(path)))
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Ok(Target::Http {
                base: s.trim_end_matches('/').to_string(),
                token: None,
            })
        } else if s.starts_with("kinesis://") {
            let stream = stocklake_storage::aws::parse_stream_url(s)?;
            Ok(Target::Kinesis { stream })
        } else {
            Err(format!(
                "unknown target {s:?}: use stdout, file:PATH, http://HOST:PORT or kinesis://STREAM"
            ))
        }
    }
}

/// How to run the simulation.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Pace records to the wall clock.
    pub realtime: bool,
    /// Simulated seconds per wall-clock second when paced (1 = real time).
    pub speed: f64,
    /// With `realtime`: records before this instant are sent at once (history), the rest paced.
    pub live_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Where to write the ground truth (NDJSON).
    pub truth: Option<PathBuf>,
    /// AWS settings for a Kinesis target.
    pub aws: stocklake_storage::AwsOptions,
}

/// A file or stdout, written by a thread of its own so that simulating the next day overlaps
/// writing this one (and freeing its records). It flushes whenever it has caught up, so paced
/// output is never held back. A regular file is also synced to disk every
/// [`SYNC_EVERY_BYTES`] and at the end: the disk then writes while the next days are
/// simulated, instead of all at once after the last one, and a finished file is on disk.
struct BackgroundWriter {
    tx: Option<std::sync::mpsc::SyncSender<Vec<OutRecord>>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    path: String,
}

impl BackgroundWriter {
    fn start(
        mut out: Box<dyn Write + Send>,
        path: String,
        sync: Option<std::fs::File>,
    ) -> BackgroundWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<OutRecord>>(2);
        let thread = std::thread::spawn(move || {
            let mut unsynced = 0usize;
            loop {
                let records = match rx.try_recv() {
                    Ok(r) => r,
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        out.flush()?;
                        match rx.recv() {
                            Ok(r) => r,
                            Err(_) => break,
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                };
                for r in &records {
                    out.write_all(&r.bytes)?;
                    out.write_all(b"\n")?;
                    unsynced += r.bytes.len() + 1;
                }
                if let Some(file) = sync.as_ref().filter(|_| unsynced >= SYNC_EVERY_BYTES) {
                    out.flush()?;
                    file.sync_data()?;
                    unsynced = 0;
                }
            }
            out.flush()?;
            match &sync {
                Some(file) => file.sync_data(),
                None => Ok(()),
            }
        });
        BackgroundWriter {
            tx: Some(tx),
            thread: Some(thread),
            path,
        }
    }

    fn write(&mut self, records: Vec<OutRecord>) -> Result<(), SimError> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(records).is_ok());
        if sent { Ok(()) } else { self.finish() }
    }

    /// Waits until everything is written; the first write error, if any.
    fn finish(&mut self) -> Result<(), SimError> {
        self.tx = None;
        let result = match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked"))),
            None => Err(std::io::Error::other("the output was already closed")),
        };
        result.map_err(|source| SimError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// How much a file writer writes between syncs to disk.
const SYNC_EVERY_BYTES: usize = 64 << 20;

enum Sink {
    Writer(BackgroundWriter),
    Http {
        client: reqwest::Client,
        url: String,
        token: Option<String>,
    },
    Kinesis {
        client: aws_sdk_kinesis::Client,
        stream: String,
    },
}

impl Sink {
    async fn open(target: &Target, aws: &stocklake_storage::AwsOptions) -> Result<Sink, SimError> {
        Ok(match target {
            Target::Stdout => Sink::Writer(BackgroundWriter::start(
                Box::new(std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::io::stdout(),
                )),
                "stdout".into(),
                None,
            )),
            Target::File(p) => {
                let f = std::fs::File::create(p).map_err(|source| SimError::Io {
                    path: p.display().to_string(),
                    source,
                })?;
                // only a regular file is synced (not /dev/null, a pipe or a terminal)
                let sync = f
                    .metadata()
                    .is_ok_and(|m| m.is_file())
                    .then(|| f.try_clone())
                    .transpose()
                    .map_err(|source| SimError::Io {
                        path: p.display().to_string(),
                        source,
                    })?;
                Sink::Writer(BackgroundWriter::start(
                    Box::new(std::io::BufWriter::with_capacity(1 << 20, f)),
                    p.display().to_string(),
                    sync,
                ))
            }
            Target::Http { base, token } => Sink::Http {
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| SimError::Http {
                        url: base.clone(),
                        message: e.to_string(),
                    })?,
                url: format!("{base}/v1/events"),
                token: token.clone(),
            },
            Target::Kinesis { stream } => Sink::Kinesis {
                client: stocklake_storage::aws::kinesis_client(aws).await,
                stream: stream.clone(),
            },
        })
    }

    /// Sends a whole day's records, handing them over where the sink can take them.
    async fn send_owned(&mut self, records: Vec<OutRecord>) -> Result<(), SimError> {
        match self {
            Sink::Writer(w) => w.write(records),
            _ => self.send(&records).await,
        }
    }

    async fn send(&mut self, records: &[OutRecord]) -> Result<(), SimError> {
        match self {
            Sink::Writer(w) => w.write(records.to_vec()),
            Sink::Http { client, url, token } => {
                for chunk in chunks(records, 1000, 4 << 20) {
                    post_with_retry(client, url, token.as_deref(), chunk).await?;
                }
                Ok(())
            }
            Sink::Kinesis { client, stream } => {
                for chunk in chunks(records, 500, 5 << 20) {
                    put_records_with_retry(client, stream, chunk).await?;
                }
                Ok(())
            }
        }
    }

    /// Everything sent is written (files and stdout are flushed and closed).
    fn finish(&mut self) -> Result<(), SimError> {
        match self {
            Sink::Writer(w) => w.finish(),
            Sink::Http { .. } | Sink::Kinesis { .. } => Ok(()),
        }
    }
}

/// Splits records into batches of at most `max_n` records and about `max_bytes` bytes.
fn chunks(records: &[OutRecord], max_n: usize, max_bytes: usize) -> Vec<&[OutRecord]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        let size = r.bytes.len() + r.partition_key.len() + 1;
        if i > start && (i - start >= max_n || bytes + size > max_bytes) {
            out.push(&records[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

async fn post_with_retry(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    records: &[OutRecord],
) -> Result<(), SimError> {
    let mut body = Vec::with_capacity(records.iter().map(|r| r.bytes.len() + 1).sum());
    for r in records {
        body.extend_from_slice(&r.bytes);
        body.push(b'\n');
    }
    let body = bytes::Bytes::from(body);
    let err = |message: String| SimError::Http {
        url: url.to_string(),
        message,
    };
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut req = client
            .post(url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let wait = match req.send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if matches!(resp.status().as_u16(), 429 | 503) => {
                let after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                after.unwrap_or_else(|| backoff.failed())
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                return Err(err(format!("{status}: {}", text.trim())));
            }
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "HTTP ingest unreachable, retrying");
                backoff.failed()
            }
            Err(e) => return Err(err(e.to_string())),
        };
        if Instant::now() + wait > deadline {
            return Err(err("gave up after 120 s of retries".into()));
        }
        tokio::time::sleep(wait).await;
    }
}

async fn put_records_with_retry(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[OutRecord],
) -> Result<(), SimError> {
    let err = |message: String| SimError::Kinesis {
        stream: stream.to_string(),
        message,
    };
    let mut pending: Vec<PutRecordsRequestEntry> = records
        .iter()
        .map(|r| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(r.bytes.clone()))
                .partition_key(if r.partition_key.is_empty() {
                    "none".to_string()
                } else {
                    r.partition_key.chars().take(256).collect()
                })
                .build()
                .map_err(|e| err(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    let mut attempts = 0;
    while !pending.is_empty() {
        attempts += 1;
        let result = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(pending.clone()))
            .send()
            .await;
        match result {
            Ok(out) if out.failed_record_count().unwrap_or(0) == 0 => return Ok(()),
            Ok(out) => {
                // retry only the records that failed, in their order
                let failed: Vec<PutRecordsRequestEntry> = out
                    .records()
                    .iter()
                    .zip(pending)
                    .filter(|(r, _)| r.error_code().is_some())
                    .map(|(_, e)| e)
                    .collect();
                tracing::debug!(
                    failed = failed.len(),
                    "PutRecords partially failed, retrying those"
                );
                pending = failed;
            }
            Err(e) => {
                let text = format!("{}", aws_sdk_kinesis::error::DisplayErrorContext(&e));
                let retryable = text.contains("ProvisionedThroughputExceeded")
                    || text.contains("LimitExceeded")
                    || text.contains("dispatch failure")
                    || text.contains("timeout")
                    || text.contains("InternalFailure");
                if !retryable || attempts > 30 {
                    return Err(err(text));
                }
                tracing::warn!(error = %text, "PutRecords failed, retrying");
            }
        }
        if attempts > 60 {
            return Err(err(format!(
                "{} records still failing after 60 attempts",
                pending.len()
            )));
        }
        tokio::time::sleep(backoff.failed()).await;
    }
    Ok(())
}

/// Runs the whole simulation into `target`; `on_day` is called after each day is sent.
pub async fn run(
    sim: &mut Simulator,
    target: &Target,
    opts: &RunOptions,
    on_day: &mut (dyn FnMut(&Simulator) + Send),
) -> Result<(), SimError> {
    let mut sink = Sink::open(target, &opts.aws).await?;
    let mut truth = match &opts.truth {
        Some(p) => Some((
            std::io::BufWriter::new(std::fs::File::create(p).map_err(|source| SimError::Io {
                path: p.display().to_string(),
                source,
            })?),
            p.display().to_string(),
        )),
        None => None,
    };
    let speed = if opts.speed > 0.0 { opts.speed } else { 1.0 };
    let origin = opts.live_from.unwrap_or(sim.config().start);
    let wall_origin = Instant::now();
    while let Some(day) = sim.next_day() {
        if let Some((w, path)) = truth.as_mut() {
            write_truth(w, &day.truth).map_err(|source| SimError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let n = day.records.len() as u64;
        let bytes: u64 = day.records.iter().map(|r| r.bytes.len() as u64 + 1).sum();
        if opts.realtime {
            let mut i = 0;
            let records = &day.records;
            while i < records.len() {
                let due = |r: &OutRecord| {
                    // history before the live start goes at once
                    let sim_secs = (r.time - origin).num_milliseconds().max(0) as f64 / 1000.0;
                    wall_origin + Duration::from_secs_f64(sim_secs / speed)
                };
                let now = Instant::now();
                let mut j = i;
                while j < records.len() && due(&records[j]) <= now + Duration::from_millis(5) {
                    j += 1;
                }
                if j > i {
                    sink.send(&records[i..j]).await?;
                    i = j;
                } else {
                    tokio::time::sleep_until(due(&records[i])).await;
                }
            }
        } else {
            sink.send_owned(day.records).await?;
        }
        let stats = sim.stats_mut();
        stats.records += n;
        stats.bytes += bytes;
        on_day(sim);
    }
    if let Some((w, path)) = truth.as_mut() {
        w.flush().map_err(|source| SimError::Io {
            path: path.clone(),
            source,
        })?;
    }
    sink.finish()
}

fn write_truth(w: &mut impl Write, rows: &[TruthRecord]) -> std::io::Result<()> {
    for r in rows {
        w.write_all(r.to_line().as_bytes())?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!("stdout".parse::<Target>(), Ok(Target::Stdout));
        assert_eq!(
            "file:a.ndjson".parse::<Target>(),
            Ok(Target::File("a.ndjson".into()))
        );
        assert_eq!(
            "http://127.0.0.1:8080/".parse::<Target>(),
            Ok(Target::Http {
                base: "http://127.0.0.1:8080".into(),
                token: None
            })
        );
        assert_eq!(
            "kinesis://supermarket-sales-stream".parse::<Target>(),
            Ok(Target::Kinesis {
                stream: "supermarket-sales-stream".into()
            })
        );
        assert!("ftp://x".parse::<Target>().is_err());
        assert!("file:".parse::<Target>().is_err());
    }

    #[test]
    fn chunking_respects_both_limits() {
        let r = |n: usize| OutRecord {
            time: chrono::Utc::now(),
            partition_key: "k".into(),
            bytes: vec![b'x'; n],
        };
        let records: Vec<_> = (0..1200).map(|_| r(10)).collect();
        let c = chunks(&records, 500, 1 << 20);
        assert_eq!(
            c.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![500, 500, 200]
        );
        let big: Vec<_> = (0..5).map(|_| r(400)).collect();
        let c = chunks(&big, 500, 1000);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
    }
}
