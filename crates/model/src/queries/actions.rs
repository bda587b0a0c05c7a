//! What people did about alerts (gold `alert_action`): acknowledged, snoozed, assigned,
//! resolved with an outcome. Actions annotate an alert; they never change `stock_alert`, which
//! the model alone writes from the stock it sees. A shelf check's count reaches stock as a
//! `stock_count` event through bronze, like any other count.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{P, get, query, time_param};
use crate::ModelError;
use crate::db::Gold;
use crate::schema::Dialect;

/// One action on an alert, as gold keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertAction {
    pub alert_id: i64,
    /// `acknowledge`, `snooze`, `assign` or `resolve`.
    pub action: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// A snooze's end.
    pub until: Option<DateTime<Utc>>,
    pub assignee: Option<String>,
    /// A resolution's outcome: `shelf_empty`, `stock_found`, `ordered` or `not_an_issue`.
    pub outcome: Option<String>,
    pub counted_quantity: Option<Decimal>,
    pub note: Option<String>,
    /// The alert's severity when the action was taken: a snooze or a resolution quiets the
    /// alert until it grows more severe than this.
    pub severity: String,
    /// The `stock_count` event a shelf check became.
    pub event_id: Option<String>,
    /// The client's `Idempotency-Key`: a request sent again with it is this action, not another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The alert an action is about, as far as the action needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionTarget {
    pub alert_id: i64,
    pub store_id: String,
    pub sku: String,
    pub severity: String,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The newest event time gold has seen from the store.
    pub store_clock: Option<DateTime<Utc>>,
}

/// The alert `alert_id`, if gold has it.
pub async fn action_target(gold: &Gold, alert_id: i64) -> Result<Option<ActionTarget>, ModelError> {
    let sql = "SELECT a.alert_id, s.store_id, p.sku, a.severity, a.resolved_at, g.clock
               FROM stock_alert a
               JOIN dim_store s ON s.store_key = a.store_key
               JOIN dim_product p ON p.product_key = a.product_key
               LEFT JOIN gold_store_state g ON g.store_key = a.store_key
               WHERE a.alert_id = ?";
    let rows = query(gold, sql, vec![P::Int(alert_id)]).await?;
    Ok(rows.first().map(|r| ActionTarget {
        alert_id: get(r, "alert_id").int().unwrap_or(alert_id),
        store_id: get(r, "store_id").text().unwrap_or_default(),
        sku: get(r, "sku").text().unwrap_or_default(),
        severity: get(r, "severity").text().unwrap_or_default(),
        resolved_at: get(r, "resolved_at").time(),
        store_clock: get(r, "clock").time(),
    }))
}

/// A decimal as a statement parameter, and the placeholder to write for it.
fn decimal_param(gold: &Gold, d: Option<Decimal>) -> (P, &'static str) {
    let p = d.map_or(P::Null, |d| P::Text(d.normalize().to_string()));
    match gold.dialect() {
        Dialect::Sqlite => (p, "CAST(? AS NUMERIC)"),
        Dialect::Postgres => (p, "CAST(CAST(? AS TEXT) AS NUMERIC)"),
    }
}

fn text(v: &Option<String>) -> P {
    v.clone().map_or(P::Null, P::Text)
}

/// Keeps an action.
pub async fn record_action(gold: &Gold, a: &AlertAction) -> Result<(), ModelError> {
    let (at, at_ph) = time_param(gold, a.at);
    let (until, until_ph) = match a.until {
        Some(t) => time_param(gold, t),
        None => (P::Null, time_param(gold, a.at).1),
    };
    let (counted, counted_ph) = decimal_param(gold, a.counted_quantity);
    let sql = format!(
        "INSERT INTO alert_action (alert_id, action, actor, at, until, assignee, outcome, counted_quantity, note, severity, event_id, request_id)
         VALUES (?, ?, ?, {at_ph}, {until_ph}, ?, ?, {counted_ph}, ?, ?, ?, ?)"
    );
    let params = vec![
        P::Int(a.alert_id),
        P::Text(a.action.clone()),
        P::Text(a.actor.clone()),
        at,
        until,
        text(&a.assignee),
        text(&a.outcome),
        counted,
        text(&a.note),
        P::Text(a.severity.clone()),
        text(&a.event_id),
        text(&a.request_id),
    ];
    query(gold, &sql, params).await?;
    Ok(())
}

/// Every action on an alert, oldest first.
pub async fn alert_actions(gold: &Gold, alert_id: i64) -> Result<Vec<AlertAction>, ModelError> {
    actions_where(gold, alert_id, None).await
}

/// The action on an alert that a request with this idempotency key made, if any.
pub async fn action_of_request(
    gold: &Gold,
    alert_id: i64,
    request_id: &str,
) -> Result<Option<AlertAction>, ModelError> {
    Ok(actions_where(gold, alert_id, Some(request_id))
        .await?
        .into_iter()
        .next())
}

async fn actions_where(
    gold: &Gold,
    alert_id: i64,
    request_id: Option<&str>,
) -> Result<Vec<AlertAction>, ModelError> {
    let mut sql = String::from(
        "SELECT alert_id, action, actor, at, until, assignee, outcome, counted_quantity, note, severity, event_id, request_id
         FROM alert_action WHERE alert_id = ?",
    );
    let mut params = vec![P::Int(alert_id)];
    if let Some(r) = request_id {
        sql.push_str(" AND request_id = ?");
        params.push(P::Text(r.to_string()));
    }
    sql.push_str(" ORDER BY at, action");
    let rows = query(gold, &sql, params).await?;
    Ok(rows
        .iter()
        .map(|r| AlertAction {
            alert_id: get(r, "alert_id").int().unwrap_or(alert_id),
            action: get(r, "action").text().unwrap_or_default(),
            actor: get(r, "actor").text().unwrap_or_default(),
            at: get(r, "at").time().unwrap_or_default(),
            until: get(r, "until").time(),
            assignee: get(r, "assignee").text(),
            outcome: get(r, "outcome").text(),
            counted_quantity: get(r, "counted_quantity").dec(3),
            note: get(r, "note").text(),
            severity: get(r, "severity").text().unwrap_or_default(),
            event_id: get(r, "event_id").text(),
            request_id: get(r, "request_id").text(),
        })
        .collect())
}

/// A severity's rank in SQL, higher is worse.
fn rank(col: &str) -> String {
    format!(
        "(CASE {col} WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END)"
    )
}

/// The condition (after `AND`) that alert `a` is quieted at `now`: its latest snooze or
/// resolution by a person still holds (a snooze until its end; a resolution while the alert
/// stays open) and the alert has not grown more severe since. Pushes its parameter.
pub(super) fn quieted(gold: &Gold, now: DateTime<Utc>, params: &mut Vec<P>) -> String {
    let (now, now_ph) = time_param(gold, now);
    params.push(now);
    format!(
        "EXISTS (SELECT 1 FROM alert_action x
                 WHERE x.alert_id = a.alert_id AND x.action IN ('snooze', 'resolve')
                   AND (x.action = 'resolve' OR x.until > {now_ph})
                   AND {worse} <= {then}
                   AND NOT EXISTS (SELECT 1 FROM alert_action y
                                   WHERE y.alert_id = a.alert_id AND y.action IN ('snooze', 'resolve')
                                     AND y.at > x.at))",
        worse = rank("a.severity"),
        then = rank("x.severity"),
    )
}

/// The columns an alert's view adds from its actions: who it is assigned to, when it was
/// acknowledged, until when it is snoozed, and the outcome a person gave it.
pub(super) const ACTION_COLUMNS: &str = ",
    (SELECT x.assignee FROM alert_action x WHERE x.alert_id = a.alert_id AND x.action = 'assign' ORDER BY x.at DESC LIMIT 1) AS assignee,
    (SELECT MAX(x.at) FROM alert_action x WHERE x.alert_id = a.alert_id AND x.action = 'acknowledge') AS acknowledged_at,
    (SELECT x.until FROM alert_action x WHERE x.alert_id = a.alert_id AND x.action = 'snooze' ORDER BY x.at DESC LIMIT 1) AS snoozed_until,
    (SELECT x.outcome FROM alert_action x WHERE x.alert_id = a.alert_id AND x.action = 'resolve' ORDER BY x.at DESC LIMIT 1) AS outcome";
