//! # stocklake-telemetry
//!
//! Every Prometheus metric stocklake exports, defined in this one module so that names, help
//! texts and labels stay consistent (labels only ever take a few values: a source kind, a
//! stage, a reason code, a shard). Metrics register with the default registry on first use;
//! [`render`] produces the text format served at `/metrics`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder, exponential_buckets,
};

fn register<T: prometheus::core::Collector + Clone + 'static>(m: T) -> T {
    // registration only fails for a duplicate name, which LazyLock rules out
    let _ = prometheus::register(Box::new(m.clone()));
    m
}

fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("static metric definition is valid"))
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        IntCounterVec::new(Opts::new(name, help), labels)
            .expect("static metric definition is valid"),
    )
}

fn gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::new(name, help).expect("static metric definition is valid"))
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition is valid"),
    )
}

fn seconds(name: &str, help: &str) -> Histogram {
    let buckets = exponential_buckets(0.0005, 2.0, 18).expect("static buckets are valid");
    register(
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .expect("static metric definition is valid"),
    )
}

fn seconds_vec(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let buckets = exponential_buckets(0.0005, 2.0, 18).expect("static buckets are valid");
    register(
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .expect("static metric definition is valid"),
    )
}

// ---- ingest ------------------------------------------------------------------------------

/// Records made durable in bronze, by source kind (`kinesis`, `http`).
pub static INGEST_RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_ingest_records_total",
        "Records made durable in bronze",
        &["source"],
    )
});
/// Payload bytes made durable in bronze (before compression).
pub static INGEST_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_ingest_bytes_total",
        "Payload bytes made durable in bronze",
        &["source"],
    )
});
/// Bronze objects written.
pub static BRONZE_OBJECTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_bronze_objects_total",
        "Bronze objects written",
        &["source"],
    )
});
/// Time to encode, write and sync one bronze object.
pub static BRONZE_WRITE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    seconds(
        "stocklake_bronze_write_seconds",
        "Time to encode, write and sync one bronze object",
    )
});
/// POST /v1/events requests by status code.
pub static HTTP_INGEST_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_ingest_http_requests_total",
        "POST /v1/events requests by status code",
        &["status"],
    )
});
/// Records waiting for the bronze writer.
pub static HTTP_INGEST_QUEUED_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "stocklake_ingest_http_queued_bytes",
        "Payload bytes accepted and waiting to be made durable",
    )
});
/// Ingest errors that were retried or reported, by source and kind.
pub static INGEST_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_ingest_errors_total",
        "Ingest errors that were retried or reported",
        &["source", "kind"],
    )
});
/// MillisBehindLatest of the last GetRecords, per shard.
pub static KINESIS_LAG_MS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "stocklake_kinesis_millis_behind_latest",
        "MillisBehindLatest of the last GetRecords, per shard",
        &["shard"],
    )
});

/// HTTP connections open now.
pub static HTTP_CONNECTIONS_OPEN: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "stocklake_http_connections_open",
        "HTTP connections open now",
    )
});
/// HTTP connections closed without being served, by why (`limit`, `accept_error`).
pub static HTTP_CONNECTIONS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_http_connections_refused_total",
        "HTTP connections closed without being served, by why",
        &["why"],
    )
});
/// Body bytes being read by HTTP ingest now (bounded by `ingest.max_inflight_body_bytes`).
pub static HTTP_INGEST_INFLIGHT_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "stocklake_ingest_http_inflight_body_bytes",
        "Request body bytes reserved while POST /v1/events bodies are read",
    )
});

// ---- refine ------------------------------------------------------------------------------

/// Bronze records refined, by outcome (`event`, `quarantined`, `duplicate`).
pub static REFINE_RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_refine_records_total",
        "Bronze records refined, by outcome",
        &["outcome"],
    )
});
/// Quarantined records by reason code (a record counts once per code it breaks).
pub static QUARANTINE_REASONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_quarantine_reasons_total",
        "Quarantined records by reason code",
        &["reason"],
    )
});
/// Event lines written to silver.
pub static SILVER_LINES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "stocklake_silver_lines_total",
        "Event lines written to silver pos_event_lines",
    )
});

// ---- model and alerts --------------------------------------------------------------------

/// Event lines loaded into gold facts.
pub static GOLD_LINES: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "stocklake_gold_lines_total",
        "Event lines loaded into gold facts",
    )
});
/// Silver lines the model could not write to gold and set aside in `gold_dead_letter`.
pub static DEAD_LETTERS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "stocklake_dead_letters_total",
        "Silver lines set aside in gold_dead_letter because gold could not take them",
    )
});
/// Open alerts by type.
pub static OPEN_ALERTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "stocklake_open_alerts",
        "Open stock alerts by type",
        &["alert_type"],
    )
});
/// Alert notifications delivered, by channel and outcome.
pub static ALERT_NOTIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_alert_notifications_total",
        "Alert notifications by channel and outcome",
        &["channel", "outcome"],
    )
});

// ---- every stage -------------------------------------------------------------------------

/// Duration of one batch of a stage.
pub static BATCH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    seconds_vec(
        "stocklake_batch_seconds",
        "Duration of one batch, per stage",
        &["stage"],
    )
});
/// Runs of a stage by outcome (`ok`, `error`).
pub static STAGE_RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "stocklake_stage_runs_total",
        "Stage runs by outcome",
        &["stage", "outcome"],
    )
});
/// How far a stage is behind its input, in seconds of event arrival time.
pub static STAGE_LAG_SECONDS: LazyLock<prometheus::GaugeVec> = LazyLock::new(|| {
    register(
        prometheus::GaugeVec::new(
            Opts::new(
                "stocklake_stage_lag_seconds",
                "How far a stage is behind its input (seconds)",
            ),
            &["stage"],
        )
        .expect("static metric definition is valid"),
    )
});
/// When a stage last finished a run without error (Unix seconds): with a backlog, a stage whose
/// time stands still is stalled.
pub static STAGE_LAST_SUCCESS: LazyLock<prometheus::GaugeVec> = LazyLock::new(|| {
    register(
        prometheus::GaugeVec::new(
            Opts::new(
                "stocklake_stage_last_success_timestamp_seconds",
                "When a stage last finished a run without error (Unix time)",
            ),
            &["stage"],
        )
        .expect("static metric definition is valid"),
    )
});
/// Runs of a stage that failed in a row, now.
pub static STAGE_CONSECUTIVE_FAILURES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "stocklake_stage_consecutive_failures",
        "Runs of a stage that failed in a row, now",
        &["stage"],
    )
});
/// Records a stage has not processed yet.
pub static STAGE_BACKLOG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "stocklake_stage_backlog",
        "Items a stage has not processed yet",
        &["stage"],
    )
});

/// Every registered metric in the Prometheus text format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Touches every metric so that `/metrics` lists them before their first event.
pub fn init() {
    LazyLock::force(&INGEST_RECORDS);
    LazyLock::force(&INGEST_BYTES);
    LazyLock::force(&BRONZE_OBJECTS);
    LazyLock::force(&BRONZE_WRITE_SECONDS);
    LazyLock::force(&HTTP_INGEST_REQUESTS);
    LazyLock::force(&HTTP_INGEST_QUEUED_BYTES);
    LazyLock::force(&INGEST_ERRORS);
    LazyLock::force(&KINESIS_LAG_MS);
    LazyLock::force(&HTTP_CONNECTIONS_OPEN);
    // series an alert or a dashboard waits for exist from the start, at zero
    for why in ["limit", "accept_error"] {
        HTTP_CONNECTIONS_REFUSED.with_label_values(&[why]);
    }
    LazyLock::force(&HTTP_INGEST_INFLIGHT_BYTES);
    LazyLock::force(&REFINE_RECORDS);
    LazyLock::force(&QUARANTINE_REASONS);
    LazyLock::force(&SILVER_LINES);
    LazyLock::force(&GOLD_LINES);
    LazyLock::force(&DEAD_LETTERS);
    LazyLock::force(&OPEN_ALERTS);
    LazyLock::force(&ALERT_NOTIFICATIONS);
    LazyLock::force(&BATCH_SECONDS);
    LazyLock::force(&STAGE_RUNS);
    LazyLock::force(&STAGE_LAG_SECONDS);
    LazyLock::force(&STAGE_BACKLOG);
    LazyLock::force(&STAGE_LAST_SUCCESS);
    LazyLock::force(&STAGE_CONSECUTIVE_FAILURES);
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_text_format() {
        super::init();
        super::INGEST_RECORDS.with_label_values(&["http"]).inc_by(3);
        super::STAGE_LAG_SECONDS
            .with_label_values(&["refine"])
            .set(0.25);
        let text = super::render();
        assert!(text.contains("# TYPE stocklake_ingest_records_total counter"));
        assert!(text.contains("stocklake_ingest_records_total{source=\"http\"} 3"));
        assert!(text.contains("stocklake_stage_lag_seconds{stage=\"refine\"} 0.25"));
    }
}
