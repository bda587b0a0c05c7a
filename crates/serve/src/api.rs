//! The HTTP API of CONTRACT §4 (read side) and the dashboard's data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use stocklake_model::Gold;
use stocklake_model::queries::{self, AlertFilter, StockFilter};
use subtle::ConstantTimeEq;

use crate::pipeline::Pipeline;

/// What the API serves from.
#[derive(Clone)]
pub struct AppState {
    pub gold: Gold,
    pub pipeline: Arc<Pipeline>,
    /// When set, reads need `Authorization: Bearer <token>` or `?token=<token>`.
    pub api_token: Option<Arc<str>>,
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

fn db_error(e: stocklake_model::ModelError) -> Response {
    tracing::warn!(error = %e, "gold query failed");
    let mut r = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "gold_unavailable",
        "the gold database cannot answer right now; retry shortly",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

fn bad_query(e: QueryRejection) -> Response {
    json_error(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StockQuery {
    store_id: Option<String>,
    sku: Option<String>,
    status: Option<String>,
    category: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    status: Option<String>,
    store_id: Option<String>,
    sku: Option<String>,
    alert_type: Option<String>,
    severity: Option<String>,
    limit: Option<usize>,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreQuery {
    store_id: Option<String>,
    hours: Option<i64>,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenOnly {
    #[allow(dead_code)]
    token: Option<String>,
}

/// The page size asked for, or the 400 answer to give.
fn check_limit(limit: Option<usize>, default: usize) -> Result<usize, Box<Response>> {
    match limit {
        None => Ok(default),
        Some(0) | Some(10_001..) => Err(Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "limit must be between 1 and 10000",
        ))),
        Some(n) => Ok(n),
    }
}

async fn stock(
    State(s): State<AppState>,
    q: Result<Query<StockQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let _ = &q.token;
    if let Some(st) = &q.status
        && !matches!(st.as_str(), "fine" | "below_reorder_point" | "out")
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("status {st:?} is not one of fine, below_reorder_point, out"),
        );
    }
    let limit = match check_limit(q.limit, 500) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let f = StockFilter {
        store_id: q.store_id,
        sku: q.sku,
        status: q.status,
        category: q.category,
        limit,
        offset: q.offset.unwrap_or(0),
    };
    match queries::stock(&s.gold, &f).await {
        Ok(rows) => {
            axum::Json(serde_json::json!({"count": rows.len(), "stock": rows})).into_response()
        }
        Err(e) => db_error(e),
    }
}

async fn alerts(
    State(s): State<AppState>,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let _ = &q.token;
    let open = match q.status.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(other) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("status {other:?} is not open or all"),
            );
        }
    };
    if let Some(t) = &q.alert_type
        && stocklake_stock::AlertType::parse(t).is_none()
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("alert_type {t:?} is not known"),
        );
    }
    let limit = match check_limit(q.limit, 200) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let f = AlertFilter {
        open,
        store_id: q.store_id,
        sku: q.sku,
        alert_type: q.alert_type,
        severity: q.severity,
        limit,
    };
    let (rows, total) = match queries::alerts_and_total(&s.gold, &f).await {
        Ok(both) => both,
        Err(e) => return db_error(e),
    };
    axum::Json(serde_json::json!({"count": rows.len(), "total": total, "alerts": rows}))
        .into_response()
}

/// How long `/v1/pipeline` waits for gold's counts before it answers without them.
const GOLD_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn pipeline(
    State(s): State<AppState>,
    q: Result<Query<TokenOnly>, QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_query(e);
    }
    // the stages' health must show even when the database does not answer (a restart, a long
    // merge holding the connection): gold's part waits two seconds at most
    let gold = async {
        let checkpoints = queries::checkpoints(&s.gold).await?;
        let counts = queries::counts(&s.gold).await?;
        let runs = queries::recent_runs(&s.gold, 5).await?;
        Ok::<_, stocklake_model::ModelError>((checkpoints, counts, runs))
    };
    let (gold, runs) = match tokio::time::timeout(GOLD_STATUS_WAIT, gold).await {
        Ok(Ok((checkpoints, counts, runs))) => (
            serde_json::json!({"checkpoints": checkpoints, "counts": counts}),
            serde_json::json!(runs),
        ),
        Ok(Err(e)) => (
            serde_json::json!({"error": format!("gold cannot be read: {e}")}),
            serde_json::json!([]),
        ),
        Err(_) => (
            serde_json::json!({"error": format!(
                "gold did not answer within {} s",
                GOLD_STATUS_WAIT.as_secs()
            )}),
            serde_json::json!([]),
        ),
    };
    let started = s.pipeline.started_at.read().ok().and_then(|t| *t);
    axum::Json(serde_json::json!({
        "started_at": started,
        "stages": s.pipeline.snapshot(),
        "gold": gold,
        "recent_runs": runs,
    }))
    .into_response()
}

async fn summary(
    State(s): State<AppState>,
    q: Result<Query<StoreQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let _ = (&q.token, q.hours);
    match queries::status_by_category(&s.gold, q.store_id.as_deref()).await {
        Ok(rows) => axum::Json(serde_json::json!({"categories": rows})).into_response(),
        Err(e) => db_error(e),
    }
}

async fn velocity(
    State(s): State<AppState>,
    q: Result<Query<StoreQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let _ = &q.token;
    let hours = q.hours.unwrap_or(48);
    if !(1..=24 * 60).contains(&hours) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "hours must be between 1 and 1440",
        );
    }
    match queries::sales_velocity(&s.gold, q.store_id.as_deref(), hours).await {
        Ok(rows) => axum::Json(serde_json::json!({"hours": rows})).into_response(),
        Err(e) => db_error(e),
    }
}

async fn stores(
    State(s): State<AppState>,
    q: Result<Query<TokenOnly>, QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_query(e);
    }
    match queries::status_by_category(&s.gold, None).await {
        Ok(rows) => {
            let mut by_store: std::collections::BTreeMap<String, serde_json::Value> =
                Default::default();
            for r in rows {
                let id = r["store_id"].as_str().unwrap_or_default().to_string();
                let e = by_store.entry(id.clone()).or_insert_with(|| {
                    serde_json::json!({"store_id": id, "name": r["store_name"], "fine": 0, "below_reorder_point": 0, "out_of_stock": 0})
                });
                for k in ["fine", "below_reorder_point", "out_of_stock"] {
                    let add = r[k].as_i64().unwrap_or(0);
                    e[k] = serde_json::Value::from(e[k].as_i64().unwrap_or(0) + add);
                }
            }
            axum::Json(serde_json::json!({"stores": by_store.into_values().collect::<Vec<_>>()}))
                .into_response()
        }
        Err(e) => db_error(e),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Relaxed) {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the pipeline is starting",
        );
    }
    match queries::checkpoints(&s.gold).await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => db_error(e),
    }
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        stocklake_telemetry::render(),
    )
        .into_response()
}

const DASHBOARD: &str = include_str!("../assets/dashboard.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn asset_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
        .into_response()
}

async fn asset_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// Reads require the API token when one is configured.
async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = s.api_token.clone() else {
        return next.run(req).await;
    };
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
    });
    let ok = [from_header, from_query]
        .into_iter()
        .flatten()
        .any(|t| t.len() == expected.len() && bool::from(t.as_bytes().ct_eq(expected.as_bytes())));
    if ok {
        next.run(req).await
    } else {
        let mut r = json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this API needs `Authorization: Bearer <token>` (or ?token=)",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

/// The read API, dashboard, health and metrics.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(dashboard))
        .route("/assets/app.js", get(asset_js))
        .route("/assets/app.css", get(asset_css))
        .route("/v1/stock", get(stock))
        .route("/v1/stock/summary", get(summary))
        .route("/v1/alerts", get(alerts))
        .route("/v1/pipeline", get(pipeline))
        .route("/v1/stores", get(stores))
        .route("/v1/sales/velocity", get(velocity))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(protected)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.yaml", get(openapi))
        .with_state(state)
}
