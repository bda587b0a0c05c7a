use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use stocklake_testkit::{moto_aws, unique};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_ingest_restarts_without_loss_or_duplicates() {
    let Some(aws) = moto_aws() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = unique("kill-stream");
    let mut init = stocklake(dir.path(), Some(&aws));
    init.args([
        "init",
        "--stream",
        &format!("kinesis://{stream}"),
        "--shards",
        "3",
    ]);
    let out = ok(init);
    assert!(String::from_utf8_lossy(&out.stdout).contains("created with 3 shards"));

    // a producer keeps putting records while ingest is killed and restarted
    let client = stocklake_storage::aws::kinesis_client(&aws).await;
    let total = 6000usize;
    let producer = {
        let client = client.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            for chunk in 0..(total / 200) {
                let entries = (0..200)
                    .map(|i| {
                        let n = chunk * 200 + i;
                        PutRecordsRequestEntry::builder()
                            .data(Blob::new(format!("{{\"event_id\":\"e{n}\"}}")))
                            .partition_key(format!("ST-{:04}", n % 17))
                            .build()
                            .expect("entry")
                    })
                    .collect::<Vec<_>>();
                let out = client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .expect("put");
                assert_eq!(out.failed_record_count().unwrap_or(0), 0);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let listen = |p: u16| format!("127.0.0.1:{p}");
    for kill in 0..4 {
        let mut c = stocklake(dir.path(), Some(&aws));
        c.args([
            "ingest",
            "--stream",
            &format!("kinesis://{stream}"),
            "--listen",
            &listen(free_port()),
        ])
        .env("STOCKLAKE_INGEST_FLUSH_INTERVAL_MS", "100");
        let mut child = spawn(c);
        tokio::time::sleep(Duration::from_millis(300 + 250 * kill)).await;
        kill9(&mut child);
    }
    producer.await.expect("producer");
    let mut drain = stocklake(dir.path(), Some(&aws));
    drain.args([
        "ingest",
        "--once",
        "--stream",
        &format!("kinesis://{stream}"),
    ]);
    ok(drain);

    let bronze = local_bronze(&dir.path().join("data/bronze")).await;
    assert_eq!(bronze.len(), total, "every record exactly once");
    let payloads: BTreeSet<Vec<u8>> = bronze.into_values().collect();
    let want: BTreeSet<Vec<u8>> = (0..total)
        .map(|n| format!("{{\"event_id\":\"e{n}\"}}").into_bytes())
        .collect();
    assert_eq!(payloads, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_python_producer_works_unchanged() {
    let Some(aws) = moto_aws() else { return };
    let stream = "supermarket-sales-stream";
    let client = stocklake_storage::aws::kinesis_client(&aws).await;
    // the fixed name the original producer uses: start from a fresh stream
    if client
        .delete_stream()
        .stream_name(stream)
        .send()
        .await
        .is_ok()
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut init = stocklake(dir.path(), Some(&aws));
    init.args(["init"]).env("KINESIS_STREAM_NAME", stream);
    ok(init);

    let script = repo_root().join("tests/fixtures/legacy_producer.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("150")
        .env(
            "AWS_ENDPOINT_URL",
            aws.endpoint_url.clone().unwrap_or_default(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: BTreeSet<Vec<u8>> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(sent.len(), 150);

    // the original design's .env names configure stocklake
    let mut ingest = stocklake(dir.path(), Some(&aws));
    ingest
        .args(["ingest", "--once"])
        .env("KINESIS_STREAM_NAME", stream);
    ok(ingest);
    let bronze = local_bronze(&dir.path().join("data/bronze")).await;
    let got: BTreeSet<Vec<u8>> = bronze.into_values().collect();
    assert_eq!(got, sent, "every legacy record, byte for byte");
    let mut want: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for payload in &got {
        let e = stocklake_event::parse_event(payload).expect("a valid legacy sale");
        assert_eq!(e.form, stocklake_event::Form::Legacy);
        let member = |v: Option<&str>| v.expect("the producer sends it").to_string();
        *want
            .entry((
                member(e.payment_method.as_deref()),
                member(e.client_type.as_deref()),
            ))
            .or_default() += 1;
    }
    // through silver into gold: the payment method and client type of every sale, as the
    // original design's gold keeps them
    for stage in ["refine", "model"] {
        let mut c = stocklake(dir.path(), Some(&aws));
        c.args([stage, "--once"]);
        ok(c);
    }
    let gold = rusqlite::Connection::open(dir.path().join("data/gold.db")).expect("gold");
    let mut s = gold
        .prepare(
            "SELECT m.payment_method, c.client_type, COUNT(*) FROM fact_sales f
             JOIN dim_payment_method m ON m.payment_method_key = f.payment_method_key
             JOIN dim_client_type c ON c.client_type_key = f.client_type_key
             GROUP BY 1, 2",
        )
        .expect("query");
    let got: std::collections::BTreeMap<(String, String), i64> = s
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(got, want, "sales by payment method and client type");
}

/// A stream that is not there cannot be mended by asking again: `stocklake ingest` (which keeps
/// going through passing failures) stops, says why in one line, and exits non-zero.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_is_not_there_stops_ingest_with_the_reason() {
    let Some(aws) = moto_aws() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = unique("missing-stream");
    let mut c = stocklake(dir.path(), Some(&aws));
    c.args([
        "ingest",
        "--stream",
        &format!("kinesis://{stream}"),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    let mut child = spawn(c);
    // without an end the process would be retrying for ever; the deadline only stops the test
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingest kept retrying a stream that is not there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success());
    let log = child.wait_stderr_text();
    let last = log
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(last.contains(&stream), "{last}");
    assert!(last.contains("ResourceNotFoundException"), "{last}");
    assert_eq!(last.matches("not found").count(), 1, "said once: {last}");
    assert!(!log.contains("raw: Response"), "no raw responses: {log}");
}
