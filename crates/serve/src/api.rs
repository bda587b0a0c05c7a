//! The HTTP API of docs/contract.md §4 (read side) and the dashboard's data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use stocklake_http::TokenSet;
use stocklake_model::Gold;
use stocklake_model::queries::{self, AlertFilter, OrderFilter, Page, StockFilter};

use crate::pipeline::Pipeline;

/// What the API serves from.
#[derive(Clone)]
pub struct AppState {
    pub gold: Gold,
    pub pipeline: Arc<Pipeline>,
    /// The tokens of the read scope: when any is set, the data endpoints need
    /// `Authorization: Bearer <token>` (the dashboard's page and assets, which hold no data,
    /// and the probes do not).
    pub read_tokens: TokenSet,
    /// The tokens of the write scope (alert actions); when none is set, actions are open only
    /// on an API whose reads are open too.
    pub write_tokens: TokenSet,
    /// Where a shelf check's count goes as a `stock_count` event (bronze through HTTP ingest);
    /// `None` on a server that ingests nothing.
    pub events: Option<stocklake_ingest::HttpIngest>,
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub use stocklake_http::json_error;

/// A 503 with `Retry-After: 2`: what is down now should answer again shortly.
pub(crate) fn unavailable(code: &str, message: impl Into<String>) -> Response {
    let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, code, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

pub(crate) fn db_error(e: stocklake_model::ModelError) -> Response {
    tracing::warn!(error = %e, "gold query failed");
    unavailable(
        "gold_unavailable",
        "the gold database cannot answer right now; retry shortly",
    )
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
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    status: Option<String>,
    store_id: Option<String>,
    sku: Option<String>,
    alert_type: Option<String>,
    severity: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
    store_id: Option<String>,
    supplier_id: Option<String>,
    date: Option<String>,
    format: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreQuery {
    store_id: Option<String>,
    hours: Option<i64>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

/// The page asked for, or the 400 answer to give: `limit` in 1..=10000 (default `default`),
/// `offset` in 0..=10⁹.
fn check_page(
    limit: Option<u64>,
    offset: Option<u64>,
    default: usize,
) -> Result<Page, Box<Response>> {
    let limit = match limit {
        None => default,
        Some(n @ 1..) if n <= Page::MAX_LIMIT as u64 => n as usize,
        Some(_) => {
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("limit must be between 1 and {}", Page::MAX_LIMIT),
            )));
        }
    };
    let offset = match offset {
        None => 0,
        Some(n) if n <= Page::MAX_OFFSET as u64 => n as usize,
        Some(_) => {
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("offset must be between 0 and {}", Page::MAX_OFFSET),
            )));
        }
    };
    Ok(Page { limit, offset })
}

async fn stock(
    State(s): State<AppState>,
    q: Result<Query<StockQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    if let Some(st) = &q.status
        && !matches!(st.as_str(), "fine" | "below_reorder_point" | "out")
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("status {st:?} is not one of fine, below_reorder_point, out"),
        );
    }
    let page = match check_page(q.limit, q.offset, 500) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let f = StockFilter {
        store_id: q.store_id,
        sku: q.sku,
        status: q.status,
        category: q.category,
        limit: page.limit,
        offset: page.offset,
    };
    match queries::stock(&s.gold, &f).await {
        Ok(rows) => axum::Json(serde_json::json!({
            "count": rows.len(), "limit": page.limit, "offset": page.offset, "stock": rows
        }))
        .into_response(),
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
    // open: what still needs someone; handled: open, but snoozed or resolved by a person
    let (open, quieted) = match q.status.as_deref() {
        None | Some("all") => (false, None),
        Some("open") => (true, Some(false)),
        Some("handled") => (true, Some(true)),
        Some(other) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("status {other:?} is not open, handled or all"),
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
    let page = match check_page(q.limit, q.offset, 200) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let f = AlertFilter {
        open,
        quieted,
        store_id: q.store_id,
        sku: q.sku,
        alert_type: q.alert_type,
        severity: q.severity,
        limit: page.limit,
        offset: page.offset,
    };
    let (rows, total) = match queries::alerts_and_total(&s.gold, &f).await {
        Ok(both) => both,
        Err(e) => return db_error(e),
    };
    axum::Json(serde_json::json!({
        "count": rows.len(), "total": total, "limit": page.limit, "offset": page.offset, "alerts": rows
    }))
    .into_response()
}

/// The order proposals with something to order: JSON, or CSV (`format=csv`) for an ordering
/// system.
async fn orders(
    State(s): State<AppState>,
    q: Result<Query<OrderQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("format {other:?} is not json or csv"),
            );
        }
    };
    let date = match q
        .date
        .as_deref()
        .map(|d| (d, d.parse::<chrono::NaiveDate>()))
    {
        None => None,
        Some((_, Ok(d))) => Some(d),
        Some((d, Err(_))) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!(
                    "date {:?} is not a date (YYYY-MM-DD)",
                    d.chars().take(40).collect::<String>()
                ),
            );
        }
    };
    let page = match check_page(q.limit, q.offset, if csv { Page::MAX_LIMIT } else { 500 }) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let f = OrderFilter {
        store_id: q.store_id,
        supplier_id: q.supplier_id,
        date,
        limit: page.limit,
        offset: page.offset,
    };
    let rows = match queries::orders(&s.gold, &f).await {
        Ok(rows) => rows,
        Err(e) => return db_error(e),
    };
    if csv {
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"orders.csv\"",
                ),
            ],
            stocklake_model::rows::OrderView::to_csv(&rows),
        )
            .into_response();
    }
    axum::Json(serde_json::json!({
        "count": rows.len(), "limit": page.limit, "offset": page.offset, "orders": rows
    }))
    .into_response()
}

/// How long `/v1/pipeline` waits for gold's counts before it answers without them.
const GOLD_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn pipeline(
    State(s): State<AppState>,
    q: Result<Query<NoQuery>, QueryRejection>,
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
        // the newest few lines gold set aside (all of them: GET /v1/dead-letters)
        let dead = if counts["dead_letters"].as_i64().unwrap_or(0) > 0 {
            queries::dead_letters(
                &s.gold,
                Page {
                    limit: 5,
                    offset: 0,
                },
            )
            .await?
        } else {
            Vec::new()
        };
        Ok::<_, stocklake_model::ModelError>((checkpoints, counts, runs, dead))
    };
    let (gold, runs) = match tokio::time::timeout(GOLD_STATUS_WAIT, gold).await {
        Ok(Ok((checkpoints, counts, runs, dead))) => (
            serde_json::json!({"checkpoints": checkpoints, "counts": counts, "dead_letters": dead}),
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
    if q.hours.is_some() {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "hours is not a filter of /v1/stock/summary",
        );
    }
    let page = match check_page(q.limit, q.offset, 1000) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match queries::status_by_category_page(&s.gold, q.store_id.as_deref(), page).await {
        Ok(rows) => axum::Json(serde_json::json!({
            "count": rows.len(), "limit": page.limit, "offset": page.offset, "categories": rows
        }))
        .into_response(),
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
    if q.limit.is_some() || q.offset.is_some() {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "/v1/sales/velocity is bounded by hours (at most 1440 rows), not paged",
        );
    }
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
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let page = match check_page(q.limit, q.offset, 1000) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match queries::status_by_store(&s.gold, page).await {
        Ok(rows) => axum::Json(serde_json::json!({
            "count": rows.len(), "limit": page.limit, "offset": page.offset, "stores": rows
        }))
        .into_response(),
        Err(e) => db_error(e),
    }
}

/// `GET /v1/dead-letters`: the silver lines gold could not take, newest first, with why.
async fn dead_letters(
    State(s): State<AppState>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let page = match check_page(q.limit, q.offset, 100) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match queries::dead_letters(&s.gold, page).await {
        Ok(rows) => axum::Json(serde_json::json!({
            "count": rows.len(), "limit": page.limit, "offset": page.offset, "dead_letters": rows
        }))
        .into_response(),
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

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                stocklake_http::guard::DASHBOARD_CSP,
            ),
        ],
        DASHBOARD,
    )
        .into_response()
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

/// The read API, dashboard, health and metrics.
///
/// The data endpoints need a token of the read scope when one is configured; the dashboard's
/// page, script and style sheet hold no data and load without one (the page then asks for the
/// token and sends it as a header), as do the probes, the metrics and the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/stock", get(stock))
        .route("/v1/stock/summary", get(summary))
        .route("/v1/alerts", get(alerts))
        .route(
            "/v1/alerts/{alert_id}/actions",
            get(crate::actions::history),
        )
        .route("/v1/orders", get(orders))
        .route("/v1/pipeline", get(pipeline))
        .route("/v1/dead-letters", get(dead_letters))
        .route("/v1/stores", get(stores))
        .route("/v1/sales/velocity", get(velocity))
        .route_layer(middleware::from_fn_with_state(
            state.read_tokens.clone(),
            stocklake_http::auth::require,
        ));
    // writes check their own scope (crate::actions)
    let writes = Router::new().route(
        "/v1/alerts/{alert_id}/actions",
        axum::routing::post(crate::actions::act),
    );
    Router::new()
        .merge(protected)
        .merge(writes)
        .route("/", get(dashboard))
        .route("/assets/app.js", get(asset_js))
        .route("/assets/app.css", get(asset_css))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.yaml", get(openapi))
        .with_state(state)
}
