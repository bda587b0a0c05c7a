//! `stocklake ingest`: the Kinesis source (when a stream is configured) and HTTP ingest into
//! bronze. `--once` drains the stream and exits.

use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::routing::get;
use stocklake_ingest::{BronzeWriter, HttpIngest, HttpIngestConfig, KinesisConfig, KinesisSource};
use stocklake_storage::aws;

use crate::cli::StageArgs;
use crate::commands::shutdown_token;
use crate::config::Settings;

/// The HTTP ingest settings from the configuration.
pub fn http_config(settings: &Settings) -> HttpIngestConfig {
    let c = &settings.config.ingest;
    HttpIngestConfig {
        max_body_bytes: c.max_body_bytes as usize,
        max_queued_bytes: c.max_queued_bytes as usize,
        max_object_bytes: c.flush_bytes as usize,
        tokens: settings.ingest_tokens.clone(),
        rate_limit_per_second: c.rate_limit_per_second,
        ..HttpIngestConfig::default()
    }
}

/// The Kinesis source settings from the configuration.
pub fn kinesis_config(settings: &Settings, stream: &str) -> KinesisConfig {
    let c = &settings.config.ingest;
    KinesisConfig {
        flush_interval: Duration::from_millis(c.flush_interval_ms),
        flush_bytes: c.flush_bytes as usize,
        ..KinesisConfig::new(stream)
    }
}

pub async fn run(settings: &Settings, args: StageArgs) -> anyhow::Result<()> {
    let writer = BronzeWriter::open(&settings.bronze, &settings.aws)
        .with_context(|| format!("opening bronze at {}", settings.bronze))?;
    let cancel = shutdown_token();
    if args.once {
        let Some(stream) = &settings.stream else {
            bail!(
                "nothing to drain: --once reads a Kinesis stream, and none is configured (--stream kinesis://NAME); HTTP ingest runs without --once"
            );
        };
        let client = aws::kinesis_client(&settings.aws).await;
        let source = KinesisSource::new(client, kinesis_config(settings, stream), writer);
        let n = source.run(true, cancel).await?;
        say!(
            "ingested {n} records from kinesis://{stream} into {}",
            settings.bronze
        );
        return Ok(());
    }
    let kinesis = match &settings.stream {
        Some(stream) => {
            let client = aws::kinesis_client(&settings.aws).await;
            let source =
                KinesisSource::new(client, kinesis_config(settings, stream), writer.clone());
            let cancel = cancel.clone();
            tracing::info!(stream = %stream, "reading Kinesis");
            Some(tokio::spawn(async move { source.run(false, cancel).await }))
        }
        None => None,
    };
    let (ingest, writer_task) = HttpIngest::start(writer, http_config(settings));
    stocklake_telemetry::init();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(|| async { stocklake_telemetry::render() }))
        .merge(ingest.router());
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(listen = %settings.listen, bronze = %settings.bronze, "HTTP ingest ready: POST /v1/events");
    let shutdown = cancel.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
    .context("HTTP server")?;
    // the server is down; the writer finishes what was accepted
    let _ = writer_task.await;
    if let Some(k) = kinesis {
        cancel.cancel();
        k.await.context("Kinesis reader")??;
    }
    Ok(())
}
