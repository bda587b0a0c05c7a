//! `stocklake ingest`: the Kinesis source (when a stream is configured) and HTTP ingest into
//! bronze. `--once` drains the stream and exits.

use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::routing::get;
use stocklake_http::{Guard, ServerLimits, TokenSet};
use stocklake_ingest::{BronzeWriter, HttpIngest, HttpIngestConfig, KinesisConfig, KinesisSource};
use stocklake_storage::aws;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::StageArgs;
use crate::commands::shutdown_token;
use crate::config::Settings;
use crate::stages::KinesisStage;
use crate::supervisor::{Completion, Finished, Pace, Status, supervise};
use stocklake_serve::Pipeline;

/// The HTTP ingest settings from the configuration.
pub fn http_config(settings: &Settings) -> HttpIngestConfig {
    let c = &settings.config.ingest;
    HttpIngestConfig {
        max_body_bytes: c.max_body_bytes as usize,
        max_queued_bytes: c.max_queued_bytes as usize,
        max_object_bytes: c.flush_bytes as usize,
        max_records_per_request: c.max_records_per_request as usize,
        max_inflight_body_bytes: c.max_inflight_body_bytes as usize,
        body_read_timeout: Duration::from_secs(c.body_read_timeout_secs),
        tokens: TokenSet::new(&settings.ingest_tokens),
        rate_limit_per_second: c.rate_limit_per_second,
        ..HttpIngestConfig::default()
    }
}

/// Binds the configured address and serves `app` there behind the HTTP edge (security
/// headers, the host allow-list, the connection limit and header timeout) until `cancel`.
/// Returns the address bound and the server's task.
pub async fn listen(
    settings: &Settings,
    app: Router,
    cancel: CancellationToken,
) -> anyhow::Result<(std::net::SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let s = &settings.config.serve;
    let app = app.layer(axum::middleware::from_fn_with_state(
        Guard::new(&s.allowed_hosts),
        stocklake_http::guard,
    ));
    let limits = ServerLimits {
        max_connections: s.max_connections as usize,
        header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
        ..ServerLimits::default()
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        stocklake_http::serve(listener, app, limits, cancel)
            .await
            .context("HTTP server")
    });
    Ok((addr, server))
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
    if !args.once {
        settings.check_exposure(false)?;
    }
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
    // the stream, under the supervisor: a reader that fails is restarted after a pause
    let reader = cancel.clone();
    let pipeline = Pipeline::new(&["kinesis"]);
    let kinesis = match &settings.stream {
        Some(stream) => {
            let client = aws::kinesis_client(&settings.aws).await;
            let stage = KinesisStage {
                source: KinesisSource::new(
                    client,
                    kinesis_config(settings, stream),
                    writer.clone(),
                ),
                shutdown: reader.clone(),
            };
            tracing::info!(stream = %stream, "reading Kinesis");
            let status = Status::new("kinesis", pipeline.clone(), None);
            let pace = Pace {
                idle: Duration::from_secs(1),
                stopping: Duration::from_millis(100),
            };
            Some(tokio::spawn(supervise(
                stage,
                status,
                reader.clone(),
                Finished::already(),
                Completion::new().0,
                pace,
            )))
        }
        None => None,
    };
    let (ingest, writer_task) = HttpIngest::start(writer, http_config(settings));
    stocklake_telemetry::init();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(|| async { stocklake_telemetry::render() }))
        .merge(ingest.router());
    let (addr, server) = listen(settings, app, cancel.clone()).await?;
    tracing::info!(listen = %addr, bronze = %settings.bronze, "HTTP ingest ready: POST /v1/events");
    server.await.context("HTTP server task")??;
    // the server is down; the writer finishes what was accepted
    let _ = writer_task.await;
    if let Some(k) = kinesis {
        reader.cancel();
        k.await.context("Kinesis reader")?;
    }
    if let Some(fatal) = pipeline.fatal() {
        bail!("ingest stopped: {fatal}");
    }
    Ok(())
}
