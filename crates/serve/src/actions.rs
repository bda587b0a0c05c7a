//! `POST /v1/alerts/{alert_id}/actions` and `GET /v1/alerts/{alert_id}/actions`: what a store
//! does about an alert. An action is kept in gold's `alert_action` (who, when, what); a shelf
//! check that counted (`resolve` with `shelf_empty` or `stock_found`) also becomes a
//! `stock_count` event, made durable in bronze like any other before the action is kept, so
//! stock is corrected through the pipeline and its lineage holds.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use stocklake_model::queries::{self, ActionTarget, AlertAction};

use crate::api::{AppState, db_error, json_error, unavailable};

/// The longest snooze.
pub const MAX_SNOOZE_DAYS: i64 = 90;
const MAX_TEXT: usize = 200;
const MAX_NOTE: usize = 2000;

/// The body of `POST /v1/alerts/{alert_id}/actions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    pub action: String,
    pub until: Option<String>,
    pub assignee: Option<String>,
    pub outcome: Option<String>,
    pub counted_quantity: Option<serde_json::Value>,
    pub note: Option<String>,
    /// Who acts (a name or a badge number); `api` when not given.
    pub actor: Option<String>,
}

/// A request that passed every check: the action to keep, without the alert's parts yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub action: &'static str,
    pub actor: String,
    pub until: Option<DateTime<Utc>>,
    pub assignee: Option<String>,
    pub outcome: Option<&'static str>,
    /// What the shelf held when checked: 0 for `shelf_empty`, the count for `stock_found`.
    pub counted: Option<Decimal>,
    pub note: Option<String>,
}

/// A short free text: trimmed, not empty, no control characters, at most `max` characters.
fn short_text(field: &str, v: &str, max: usize) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if v.chars().count() > max {
        return Err(format!("{field} is longer than {max} characters"));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("{field} holds control characters"));
    }
    Ok(v.to_string())
}

/// A counted quantity: a JSON number (or its text), at least 0, at most 3 decimals.
fn quantity(v: &serde_json::Value) -> Result<Decimal, String> {
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_string(),
        _ => return Err("counted_quantity is not a number".into()),
    };
    let d: Decimal = text
        .parse()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("counted_quantity {text:?} is not a decimal number"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err("counted_quantity is below 0".into());
    }
    if d.normalize().scale() > 3 {
        return Err("counted_quantity has more than 3 decimals".into());
    }
    if d > Decimal::from(1_000_000_000) {
        return Err("counted_quantity is over 1000000000".into());
    }
    Ok(d.normalize())
}

/// Checks a request at `now`: which fields each action takes, and their values.
pub fn check(r: &ActionRequest, now: DateTime<Utc>) -> Result<Checked, String> {
    let action = match r.action.as_str() {
        "acknowledge" => "acknowledge",
        "snooze" => "snooze",
        "assign" => "assign",
        "resolve" => "resolve",
        other => {
            return Err(format!(
                "action {:?} is not acknowledge, snooze, assign or resolve",
                other.chars().take(40).collect::<String>()
            ));
        }
    };
    let only = |field: &str, present: bool, on: &str| -> Result<(), String> {
        if present && action != on {
            return Err(format!("{field} is only for {on}, not {action}"));
        }
        Ok(())
    };
    only("until", r.until.is_some(), "snooze")?;
    only("assignee", r.assignee.is_some(), "assign")?;
    only("outcome", r.outcome.is_some(), "resolve")?;
    only("counted_quantity", r.counted_quantity.is_some(), "resolve")?;
    let until = match (action, &r.until) {
        ("snooze", None) => return Err("snooze needs until (an RFC 3339 time)".into()),
        ("snooze", Some(u)) => {
            let t = DateTime::parse_from_rfc3339(u.trim())
                .map_err(|_| {
                    format!(
                        "until {:?} is not an RFC 3339 time such as 2026-12-08T07:00:00+01:00",
                        u.chars().take(40).collect::<String>()
                    )
                })?
                .with_timezone(&Utc);
            if t <= now {
                return Err("until is not in the future".into());
            }
            if t > now + Duration::days(MAX_SNOOZE_DAYS) {
                return Err(format!("until is more than {MAX_SNOOZE_DAYS} days ahead"));
            }
            Some(t)
        }
        _ => None,
    };
    let assignee = match (action, &r.assignee) {
        ("assign", None) => return Err("assign needs assignee".into()),
        (_, Some(a)) => Some(short_text("assignee", a, MAX_TEXT)?),
        _ => None,
    };
    let (outcome, counted) = match (action, r.outcome.as_deref()) {
        ("resolve", None) => {
            return Err(
                "resolve needs outcome: shelf_empty, stock_found, ordered or not_an_issue".into(),
            );
        }
        (_, Some("stock_found")) => match &r.counted_quantity {
            Some(q) => (Some("stock_found"), Some(quantity(q)?)),
            None => return Err("stock_found needs counted_quantity".into()),
        },
        (_, Some(o)) if r.counted_quantity.is_some() => {
            return Err(format!(
                "counted_quantity is only for the outcome stock_found, not {:?}",
                o.chars().take(40).collect::<String>()
            ));
        }
        (_, Some("shelf_empty")) => (Some("shelf_empty"), Some(Decimal::ZERO)),
        (_, Some("ordered")) => (Some("ordered"), None),
        (_, Some("not_an_issue")) => (Some("not_an_issue"), None),
        (_, Some(o)) => {
            return Err(format!(
                "outcome {:?} is not shelf_empty, stock_found, ordered or not_an_issue",
                o.chars().take(40).collect::<String>()
            ));
        }
        (_, None) => (None, None),
    };
    let note = r
        .note
        .as_deref()
        .map(|n| short_text("note", n, MAX_NOTE))
        .transpose()?;
    let actor = match &r.actor {
        Some(a) => short_text("actor", a, MAX_TEXT)?,
        None => "api".to_string(),
    };
    Ok(Checked {
        action,
        actor,
        until,
        assignee,
        outcome,
        counted,
        note,
    })
}

/// How far a store's newest event may lag the wall clock for a count to be timed by the wall
/// clock; a store further behind (history replayed, a simulated chain) is counted just after its
/// newest event, so that what it sells next is subtracted from the count.
pub const CLOCK_LAG: Duration = Duration::hours(1);

/// The `stock_count` event of a shelf check, one line of the alert's SKU: counted now, never
/// before the newest event gold has seen from the store (a store's clock can run ahead of this
/// machine's), and just after that event when the store's feed is more than [`CLOCK_LAG`]
/// behind.
pub fn count_event(
    t: &ActionTarget,
    counted: Decimal,
    now: DateTime<Utc>,
    request: Option<&str>,
) -> (String, String) {
    let at = match t.store_clock {
        Some(clock) if clock >= now - CLOCK_LAG => now.max(clock + Duration::milliseconds(1)),
        Some(clock) => clock + Duration::milliseconds(1),
        None => now,
    };
    // a request sent again with its idempotency key names the same event (silver keeps one)
    let event_id = match request {
        Some(key) => format!("alert-{}-count-{key}", t.alert_id),
        None => format!("alert-{}-count-{}", t.alert_id, at.timestamp_micros()),
    };
    let line = format!(
        r#"{{"schema_version":1,"event_id":{id},"event_type":"stock_count","event_time":{time},"store_id":{store},"lines":[{{"sku":{sku},"quantity":{qty}}}],"source":"alert_action","alert_id":{alert}}}"#,
        id = serde_json::Value::from(event_id.as_str()),
        time = serde_json::Value::from(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        store = serde_json::Value::from(t.store_id.as_str()),
        sku = serde_json::Value::from(t.sku.as_str()),
        qty = counted.normalize(),
        alert = t.alert_id,
    );
    (event_id, line)
}

/// Whether the request may write: with write tokens configured, it must carry one; without,
/// an API that guards its reads with a token refuses writes (they need a scope of their own);
/// an open API (loopback, no tokens) takes them.
fn may_write(s: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if !s.write_tokens.is_empty() {
        if s.write_tokens.admits(headers) {
            return Ok(());
        }
        return Err(Box::new(stocklake_http::auth::unauthorized(
            "acting on an alert",
        )));
    }
    if s.read_tokens.is_empty() {
        return Ok(());
    }
    Err(Box::new(json_error(
        StatusCode::FORBIDDEN,
        "no_write_scope",
        "acting on alerts needs a write token: set serve.write_token (STOCKLAKE_SERVE_WRITE_TOKEN)",
    )))
}

/// The request's `Idempotency-Key`, if it has one: at most 100 characters of letters, digits,
/// `-`, `_`, `.` and `:` (a UUID, say).
fn request_key(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or("").trim();
    let fine = !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !fine {
        return Err(Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "bad_idempotency_key",
            "Idempotency-Key must be 1 to 100 letters, digits, '-', '_', '.' or ':'",
        )));
    }
    Ok(Some(key.to_string()))
}

/// The answer for an action a request with the same idempotency key already made.
fn replayed(a: AlertAction) -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"action": a, "replayed": true})),
    )
        .into_response()
}

fn alert_id(raw: &str) -> Result<i64, Box<Response>> {
    raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "bad_alert_id",
            format!(
                "alert id {:?} is not a positive integer",
                raw.chars().take(40).collect::<String>()
            ),
        ))
    })
}

/// The alert `id`, or the 404 (or 503) to answer.
async fn target_of(s: &AppState, id: i64) -> Result<ActionTarget, Box<Response>> {
    match queries::action_target(&s.gold, id).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(Box::new(json_error(
            StatusCode::NOT_FOUND,
            "no_such_alert",
            format!("there is no alert {id}"),
        ))),
        Err(e) => Err(Box::new(db_error(e))),
    }
}

/// `POST /v1/alerts/{alert_id}/actions`.
pub async fn act(
    State(s): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Result<axum::Json<ActionRequest>, JsonRejection>,
) -> Response {
    if let Err(r) = may_write(&s, &headers) {
        return *r;
    }
    let id = match alert_id(&raw_id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let key = match request_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_body", e.body_text()),
    };
    let now = Utc::now();
    let checked = match check(&req, now) {
        Ok(c) => c,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "bad_action", why),
    };
    let target = match target_of(&s, id).await {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if let Some(k) = &key {
        match queries::action_of_request(&s.gold, id, k).await {
            Ok(Some(done)) => return replayed(done),
            Ok(None) => {}
            Err(e) => return db_error(e),
        }
    }
    if let Some(closed) = target.resolved_at {
        return json_error(
            StatusCode::CONFLICT,
            "alert_closed",
            format!(
                "alert {id} closed at {}: the stock no longer calls for it",
                closed.to_rfc3339()
            ),
        );
    }
    let event_id = match checked.counted {
        Some(counted) => match submit_count(&s, &target, counted, now, key.as_deref()).await {
            Ok(e) => Some(e),
            Err(r) => return *r,
        },
        None => None,
    };
    let action = AlertAction {
        alert_id: id,
        action: checked.action.to_string(),
        actor: checked.actor,
        at: now,
        until: checked.until,
        assignee: checked.assignee,
        outcome: checked.outcome.map(str::to_string),
        counted_quantity: checked.counted,
        note: checked.note,
        severity: target.severity,
        event_id,
        request_id: key.clone(),
    };
    if let Err(e) = queries::record_action(&s.gold, &action).await {
        // the same request, sent twice at once: the other one kept it
        if let Some(k) = &key
            && let Ok(Some(done)) = queries::action_of_request(&s.gold, id, k).await
        {
            return replayed(done);
        }
        return db_error(e);
    }
    tracing::info!(alert_id = id, action = %action.action, actor = %action.actor, "alert action");
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"action": action})),
    )
        .into_response()
}

/// Makes a shelf check's count durable in bronze; its event id.
async fn submit_count(
    s: &AppState,
    target: &ActionTarget,
    counted: Decimal,
    now: DateTime<Utc>,
    request: Option<&str>,
) -> Result<String, Box<Response>> {
    let Some(events) = &s.events else {
        return Err(Box::new(json_error(
            StatusCode::CONFLICT,
            "no_ingest",
            "a shelf check's count becomes a stock_count event, and this server does not ingest events",
        )));
    };
    let (event_id, line) = count_event(target, counted, now, request);
    match events.submit(vec![bytes::Bytes::from(line)]).await {
        Ok(_) => Ok(event_id),
        Err(stocklake_ingest::SubmitError::Overloaded) => Err(Box::new(unavailable(
            "overloaded",
            "ingest is busy; retry shortly",
        ))),
        Err(stocklake_ingest::SubmitError::Unavailable(why)) => Err(Box::new(unavailable(
            "bronze_unavailable",
            format!("the count could not be made durable: {why}"),
        ))),
    }
}

/// `GET /v1/alerts/{alert_id}/actions`: every action on an alert, oldest first.
pub async fn history(State(s): State<AppState>, Path(raw_id): Path<String>) -> Response {
    let id = match alert_id(&raw_id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    if let Err(r) = target_of(&s, id).await {
        return *r;
    }
    match queries::alert_actions(&s.gold, id).await {
        Ok(list) => {
            axum::Json(serde_json::json!({"alert_id": id, "actions": list})).into_response()
        }
        Err(e) => db_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn req(v: serde_json::Value) -> ActionRequest {
        serde_json::from_value(v).expect("a request")
    }

    #[test]
    fn each_action_takes_its_own_fields() {
        let c = check(&req(serde_json::json!({"action": "acknowledge"})), now()).expect("ok");
        assert_eq!((c.action, c.actor.as_str()), ("acknowledge", "api"));
        let c = check(
            &req(serde_json::json!({"action": "snooze", "until": "2026-12-08T07:00:00+01:00", "note": " back on Tuesday ", "actor": "Ana"})),
            now(),
        )
        .expect("ok");
        assert_eq!(
            c.until.map(|t| t.to_rfc3339()),
            Some("2026-12-08T06:00:00+00:00".into())
        );
        assert_eq!(c.note.as_deref(), Some("back on Tuesday"));
        let c = check(
            &req(serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": 12.5})),
            now(),
        )
        .expect("ok");
        assert_eq!(c.counted, Some(Decimal::new(125, 1)));
        let c = check(
            &req(serde_json::json!({"action": "resolve", "outcome": "shelf_empty"})),
            now(),
        )
        .expect("ok");
        assert_eq!(c.counted, Some(Decimal::ZERO));
        let c = check(
            &req(serde_json::json!({"action": "resolve", "outcome": "ordered"})),
            now(),
        )
        .expect("ok");
        assert_eq!(c.counted, None);
        let c = check(
            &req(serde_json::json!({"action": "assign", "assignee": "night shift"})),
            now(),
        )
        .expect("ok");
        assert_eq!(c.assignee.as_deref(), Some("night shift"));
    }

    #[test]
    fn a_wrong_request_is_named() {
        for (body, says) in [
            (
                serde_json::json!({"action": "delete"}),
                "is not acknowledge",
            ),
            (serde_json::json!({"action": "snooze"}), "needs until"),
            (
                serde_json::json!({"action": "snooze", "until": "monday"}),
                "not an RFC 3339",
            ),
            (
                serde_json::json!({"action": "snooze", "until": "2026-12-07T09:00:00Z"}),
                "not in the future",
            ),
            (
                serde_json::json!({"action": "snooze", "until": "2027-06-01T00:00:00Z"}),
                "more than 90 days",
            ),
            (
                serde_json::json!({"action": "acknowledge", "until": "2026-12-08T00:00:00Z"}),
                "only for snooze",
            ),
            (serde_json::json!({"action": "assign"}), "needs assignee"),
            (
                serde_json::json!({"action": "assign", "assignee": "  "}),
                "assignee is empty",
            ),
            (
                serde_json::json!({"action": "assign", "assignee": "a\u{7}b"}),
                "control characters",
            ),
            (serde_json::json!({"action": "resolve"}), "needs outcome"),
            (
                serde_json::json!({"action": "resolve", "outcome": "fixed"}),
                "is not shelf_empty",
            ),
            (
                serde_json::json!({"action": "resolve", "outcome": "stock_found"}),
                "needs counted_quantity",
            ),
            (
                serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": -1}),
                "below 0",
            ),
            (
                serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": 1.2345}),
                "more than 3 decimals",
            ),
            (
                serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": true}),
                "not a number",
            ),
            (
                serde_json::json!({"action": "resolve", "outcome": "stock_found", "counted_quantity": 1e300}),
                "not a decimal",
            ),
            (
                serde_json::json!({"action": "resolve", "outcome": "ordered", "counted_quantity": 3}),
                "only for the outcome stock_found",
            ),
            (
                serde_json::json!({"action": "acknowledge", "counted_quantity": 3}),
                "only for resolve",
            ),
            (
                serde_json::json!({"action": "acknowledge", "note": "x".repeat(2001)}),
                "longer than 2000",
            ),
        ] {
            let why = check(&req(body.clone()), now()).expect_err("refused");
            assert!(why.contains(says), "{body}: {why}");
        }
        // a field nobody knows is refused when the body is read
        assert!(
            serde_json::from_value::<ActionRequest>(
                serde_json::json!({"action": "acknowledge", "colour": "red"})
            )
            .is_err()
        );
    }

    #[test]
    fn a_count_is_an_exact_stock_count_event_after_the_store_clock() {
        let target = ActionTarget {
            alert_id: 42,
            store_id: "ST-\"1\"".into(),
            sku: "SKU-7".into(),
            severity: "high".into(),
            resolved_at: None,
            store_clock: None,
        };
        let (id, line) = count_event(&target, Decimal::new(1250, 3), now(), None);
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["event_id"], id.as_str());
        assert_eq!(v["event_type"], "stock_count");
        assert_eq!(v["store_id"], "ST-\"1\"");
        assert_eq!(v["event_time"], "2026-12-07T10:00:00.000Z");
        assert!(line.contains(r#""quantity":1.25}"#), "{line}");
        let at = |clock: DateTime<Utc>| {
            let t = ActionTarget {
                store_clock: Some(clock),
                ..target.clone()
            };
            let (_, line) = count_event(&t, Decimal::ZERO, now(), None);
            assert!(line.contains(r#""quantity":0}"#), "{line}");
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            v["event_time"].as_str().unwrap_or("").to_string()
        };
        // a store's clock ahead of this machine's: just after its newest event
        assert_eq!(at(now() + Duration::hours(3)), "2026-12-07T13:00:00.001Z");
        // a few minutes behind, as a live feed is: now
        assert_eq!(at(now() - Duration::minutes(5)), "2026-12-07T10:00:00.000Z");
        // days behind (history, a simulation): just after its newest event
        assert_eq!(at(now() - Duration::days(9)), "2026-11-28T10:00:00.001Z");
        // a request's idempotency key names the event: sent again, the same event
        let (a, _) = count_event(&target, Decimal::ONE, now(), Some("k-1"));
        let (b, _) = count_event(
            &target,
            Decimal::ONE,
            now() + Duration::seconds(5),
            Some("k-1"),
        );
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("alert-42-count-k-1", "alert-42-count-k-1")
        );
    }
}
