//! The accept loop under every stocklake listener.
//!
//! `axum::serve` keeps a connection for as long as the client likes: 200 connections that send
//! half a request header hold 200 tasks and file descriptors for ever, and past the descriptor
//! limit nobody, `/healthz` included, gets an answer. This loop adds what a server facing
//! untrusted clients needs:
//! - a **connection limit**: past it a new connection is closed at once (and counted), so the
//!   process never runs out of descriptors and the limit is a setting, not the kernel's;
//! - a **header-read timeout**: a client that has not sent a whole request head in time (also
//!   between requests on a kept-alive connection) is disconnected;
//! - a **graceful shutdown**: on cancellation, no new connection is taken, open ones finish
//!   the request they are in and close, and those still open after the grace period are cut.
//!
//! Body reads have their own timeout and memory budget in the handlers that read bodies
//! (`POST /v1/events`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use stocklake_telemetry as metrics;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; one more is closed at once.
    pub max_connections: usize,
    /// A request's head (line and headers) must arrive within this, counted from when the
    /// server starts waiting for it (a new connection, or the end of the previous request).
    pub header_read_timeout: Duration,
    /// How long a shutdown waits for open connections before cutting them.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains (see the module
/// documentation). Handlers see the client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut connections = JoinSet::new();
    loop {
        // finished connections are reaped as we go: the set holds only open ones
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE/ENFILE, or a connection reset before it was taken: the listener
                    // itself is fine; pause so a descriptor shortage is not a busy loop
                    metrics::HTTP_CONNECTIONS_REFUSED.with_label_values(&["accept_error"]).inc();
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::HTTP_CONNECTIONS_REFUSED
                .with_label_values(&["limit"])
                .inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(req.map(axum::body::Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), svc);
        let stop = shutdown.clone();
        metrics::HTTP_CONNECTIONS_OPEN.inc();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            metrics::HTTP_CONNECTIONS_OPEN.dec();
            if let Err(e) = result {
                // a header timeout, a client gone mid-request: the client's problem, not ours
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period are closed"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}
