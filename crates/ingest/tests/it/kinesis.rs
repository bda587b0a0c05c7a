use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use stocklake_ingest::{BronzeWriter, KinesisConfig, KinesisSource, ensure_stream};
use stocklake_storage::{AwsOptions, Location, aws};
use stocklake_testkit::throttle::ThrottlingProxy;
use stocklake_testkit::{moto_aws, unique};
use tokio_util::sync::CancellationToken;

use crate::common::bronze_contents;

async fn put(client: &aws_sdk_kinesis::Client, stream: &str, payloads: &[Vec<u8>]) {
    for chunk in payloads.chunks(500) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(p.clone()))
                    .partition_key(format!("key-{i}"))
                    .build()
                    .expect("entry")
            })
            .collect::<Vec<_>>();
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("put");
        assert_eq!(out.failed_record_count().unwrap_or(0), 0);
    }
}

fn payloads(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to)
        .map(|i| {
            if i % 97 == 0 {
                // not JSON, not even UTF-8: still kept byte for byte
                vec![0xff, b'x', (i % 251) as u8]
            } else {
                format!("{{\"event_id\":\"e-{i}\",\"note\":\"caf\u{e9} \\\"q\\\"\"}}").into_bytes()
            }
        })
        .collect()
}

fn fast(stream: &str) -> KinesisConfig {
    KinesisConfig {
        idle_poll: Duration::from_millis(20),
        ..KinesisConfig::new(stream)
    }
}

async fn setup(aws: &AwsOptions, shards: u32) -> (aws_sdk_kinesis::Client, String) {
    let client = aws::kinesis_client(aws).await;
    let stream = unique("it-stream");
    assert!(
        ensure_stream(&client, &stream, shards)
            .await
            .expect("create")
    );
    assert!(
        !ensure_stream(&client, &stream, shards)
            .await
            .expect("idempotent")
    );
    (client, stream)
}

#[tokio::test]
async fn multi_shard_stream_lands_exactly_once_in_s3_bronze() {
    let Some(aws) = moto_aws() else { return };
    let (client, stream) = setup(&aws, 4).await;
    let bucket = unique("bronze");
    aws::ensure_bucket(&aws, &bucket).await.expect("bucket");
    let loc = Location::parse(&format!("s3://{bucket}/lake/bronze")).expect("loc");
    let writer = BronzeWriter::open(&loc, &aws).expect("writer");
    let store = writer.store();

    let first = payloads(0, 1200);
    put(&client, &stream, &first).await;
    let source = KinesisSource::new(client.clone(), fast(&stream), writer.clone());
    let n = source
        .run(true, CancellationToken::new())
        .await
        .expect("ingest");
    assert_eq!(n, 1200);
    let status = source.status();
    assert_eq!(status.len(), 4, "{status:?}");

    // a second run resumes after the checkpoints in bronze: only the new records
    let second = payloads(1200, 1500);
    put(&client, &stream, &second).await;
    let source = KinesisSource::new(client.clone(), fast(&stream), writer.clone());
    let n = source
        .run(true, CancellationToken::new())
        .await
        .expect("ingest");
    assert_eq!(n, 300);
    // and a third finds nothing new
    let n = KinesisSource::new(client, fast(&stream), writer)
        .run(true, CancellationToken::new())
        .await
        .expect("ingest");
    assert_eq!(n, 0);

    let (contents, names) = bronze_contents(store.as_ref()).await;
    assert_eq!(contents.len(), 1500);
    let got: BTreeSet<Vec<u8>> = contents.into_values().collect();
    let want: BTreeSet<Vec<u8>> = first.into_iter().chain(second).collect();
    assert_eq!(got, want, "payloads byte-identical");
    assert!(names.iter().all(|n| n.partition.starts_with("shardId-")));
}

#[tokio::test]
async fn resharded_stream_reads_parents_then_children() {
    let Some(aws) = moto_aws() else { return };
    let (client, stream) = setup(&aws, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(dir.path().to_str().expect("utf8")).expect("loc");
    let writer = BronzeWriter::open(&loc, &AwsOptions::default()).expect("writer");

    put(&client, &stream, &payloads(0, 200)).await;
    client
        .update_shard_count()
        .stream_name(&stream)
        .target_shard_count(2)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await
        .expect("reshard");
    put(&client, &stream, &payloads(200, 400)).await;

    let source = KinesisSource::new(client.clone(), fast(&stream), writer.clone());
    let n = source
        .run(true, CancellationToken::new())
        .await
        .expect("ingest");
    assert_eq!(n, 400);
    let (contents, _) = bronze_contents(writer.store().as_ref()).await;
    assert_eq!(contents.len(), 400);
}

#[tokio::test]
async fn cancellation_flushes_what_was_read() {
    let Some(aws) = moto_aws() else { return };
    let (client, stream) = setup(&aws, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(dir.path().to_str().expect("utf8")).expect("loc");
    let writer = BronzeWriter::open(&loc, &AwsOptions::default()).expect("writer");
    put(&client, &stream, &payloads(0, 300)).await;
    let mut cfg = fast(&stream);
    cfg.flush_interval = Duration::from_secs(3600);
    let source = KinesisSource::new(client, cfg, writer.clone());
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        tokio::spawn(async move { source.run(false, cancel).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cancel.cancel();
    let n = task.await.expect("join").expect("run");
    assert_eq!(n, 300);
    let (contents, _) = bronze_contents(writer.store().as_ref()).await;
    assert_eq!(contents.len(), 300);
}

/// Polls `done` every 100 ms until it holds, for at most `limit`.
async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_gives_up_starts_again_after_what_it_wrote() {
    let Some(aws) = moto_aws() else { return };
    let Some(emulator) = aws.endpoint_url.clone() else {
        return;
    };
    // Kinesis through a proxy that can fail every GetRecords; bronze on the local disk
    let proxy = ThrottlingProxy::passthrough(&emulator).expect("proxy");
    let via = AwsOptions {
        endpoint_url: Some(proxy.url.clone()),
        ..aws.clone()
    };
    let (client, stream) = setup(&via, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::parse(dir.path().to_str().expect("utf8")).expect("loc");
    let writer = BronzeWriter::open(&loc, &AwsOptions::default()).expect("writer");
    put(&client, &stream, &payloads(0, 500)).await;
    let mut cfg = fast(&stream);
    cfg.relist_interval = Duration::from_millis(500);
    let source = KinesisSource::new(client.clone(), cfg, writer.clone());
    let cancel = CancellationToken::new();
    let task = {
        let (source, cancel) = (source.clone(), cancel.clone());
        tokio::spawn(async move { source.run(false, cancel).await })
    };
    let written = |s: &KinesisSource| s.status().values().map(|s| s.records).sum::<u64>();
    wait_until(
        Duration::from_secs(60),
        "the first records in bronze",
        || written(&source) >= 500,
    )
    .await;

    // reads fail until the reader gives up and is started again (it asks for a new iterator)
    let iterators = proxy.counts.get_shard_iterator.load(Ordering::SeqCst);
    proxy.fail_reads(true);
    put(&client, &stream, &payloads(500, 800)).await;
    wait_until(
        Duration::from_secs(240),
        "the reader to start again",
        || proxy.counts.get_shard_iterator.load(Ordering::SeqCst) > iterators,
    )
    .await;
    assert!(proxy.counts.get_records_failed.load(Ordering::SeqCst) > 0);
    proxy.fail_reads(false);
    wait_until(Duration::from_secs(60), "the new records in bronze", || {
        written(&source) >= 800
    })
    .await;
    cancel.cancel();
    task.await.expect("join").expect("run");

    // it went on from its last bronze object: every record once, none read again
    let (contents, _) = bronze_contents(writer.store().as_ref()).await;
    assert_eq!(contents.len(), 800);
    assert_eq!(written(&source), 800);
}
