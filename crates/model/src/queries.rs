//! The read side of gold: what the API, the dashboard and `stocklake alerts` show, and the
//! analyst queries the tests run on both databases. Every value reaches SQL as a parameter.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::ModelError;
use crate::db::Gold;
use crate::db::dialect::ts;
use crate::rows::{AlertView, OrderView, StockView};
use crate::schema::Dialect;

mod actions;
pub use actions::{
    ActionTarget, AlertAction, action_of_request, action_target, alert_actions, record_action,
};

/// Filters of `GET /v1/stock`.
#[derive(Debug, Clone, Default)]
pub struct StockFilter {
    pub store_id: Option<String>,
    pub sku: Option<String>,
    /// `fine`, `below_reorder_point` or `out`.
    pub status: Option<String>,
    pub category: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// Filters of `GET /v1/orders` and `stocklake orders`.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub store_id: Option<String>,
    pub supplier_id: Option<String>,
    /// Only proposals for this order day.
    pub date: Option<chrono::NaiveDate>,
    pub limit: usize,
    pub offset: usize,
}

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only open alerts.
    pub open: bool,
    /// `Some(false)`: leave out alerts a person has snoozed or resolved while that holds (see
    /// `alert_action`); `Some(true)`: only those; `None`: either.
    pub quieted: Option<bool>,
    pub store_id: Option<String>,
    pub sku: Option<String>,
    pub alert_type: Option<String>,
    pub severity: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// A page of a list: how many rows, from where. Every list the API serves takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl Page {
    /// The most rows one page may hold.
    pub const MAX_LIMIT: usize = 10_000;
    /// The largest offset accepted: past it a list is not paged through but queried.
    pub const MAX_OFFSET: usize = 1_000_000_000;

    /// `LIMIT ? OFFSET ?` parameters, within the bounds.
    fn params(self) -> [P; 2] {
        [
            P::Int(self.limit.clamp(1, Page::MAX_LIMIT) as i64),
            P::Int(self.offset.min(Page::MAX_OFFSET) as i64),
        ]
    }
}

/// A parameter for either database.
#[derive(Debug, Clone)]
enum P {
    Text(String),
    Int(i64),
    Null,
}

/// `?` placeholders become `$n` for PostgreSQL.
fn dialect_sql(d: Dialect, sql: &str) -> String {
    match d {
        Dialect::Sqlite => sql.to_string(),
        Dialect::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// One value read back, whichever database.
#[derive(Debug, Clone)]
enum V {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Dec(Decimal),
    Time(DateTime<Utc>),
    Bool(bool),
}

impl V {
    fn text(&self) -> Option<String> {
        match self {
            V::Text(s) => Some(s.clone()),
            V::Int(i) => Some(i.to_string()),
            V::Dec(d) => Some(d.to_string()),
            _ => None,
        }
    }
    fn dec(&self, scale: u32) -> Option<Decimal> {
        use rust_decimal::prelude::FromPrimitive;
        match self {
            V::Dec(d) => Some(*d),
            V::Int(i) => Some(Decimal::from(*i)),
            V::Float(f) => Decimal::from_f64(*f).map(|d| d.round_dp(scale)),
            V::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
    fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            V::Time(t) => Some(*t),
            V::Text(s) => DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self {
            V::Int(i) => Some(*i),
            V::Float(f) => Some(*f as i64),
            V::Dec(d) => rust_decimal::prelude::ToPrimitive::to_i64(d),
            V::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
    fn json(&self) -> serde_json::Value {
        match self {
            V::Null => serde_json::Value::Null,
            V::Int(i) => serde_json::Value::from(*i),
            V::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            V::Text(s) => serde_json::Value::from(s.clone()),
            V::Dec(d) => serde_json::Value::from(d.normalize().to_string()),
            V::Time(t) => serde_json::Value::from(t.to_rfc3339()),
            V::Bool(b) => serde_json::Value::from(*b),
        }
    }
}

type Rows = Vec<Vec<(String, V)>>;

async fn query(gold: &Gold, sql: &str, params: Vec<P>) -> Result<Rows, ModelError> {
    let sql = dialect_sql(gold.dialect(), sql);
    let head = sql.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
    let read_only = head.starts_with("SELECT") || head.starts_with("WITH");
    match gold {
        Gold::Sqlite(g) => {
            let run = move |c: &mut rusqlite::Connection| {
                use rusqlite::types::{Value, ValueRef};
                let mut s = c
                    .prepare_cached(&sql)
                    .map_err(|e| ModelError::database(format!("{e}: {sql}")))?;
                let names: Vec<String> = s.column_names().map(str::to_string).collect();
                let args: Vec<Value> = params
                    .into_iter()
                    .map(|p| match p {
                        P::Text(t) => Value::Text(t),
                        P::Int(i) => Value::Integer(i),
                        P::Null => Value::Null,
                    })
                    .collect();
                let rows = s
                    .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                        let mut row = Vec::with_capacity(names.len());
                        for (i, n) in names.iter().enumerate() {
                            let v = match r.get_ref(i)? {
                                ValueRef::Null => V::Null,
                                ValueRef::Integer(x) => V::Int(x),
                                ValueRef::Real(x) => V::Float(x),
                                ValueRef::Text(t) => {
                                    V::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                ValueRef::Blob(_) => V::Null,
                            };
                            row.push((n.clone(), v));
                        }
                        Ok(row)
                    })
                    .map_err(|e| ModelError::database(e.to_string()))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ModelError::database(e.to_string()))
            };
            if read_only {
                g.read(run).await
            } else {
                g.with(run).await
            }
        }
        Gold::Postgres(g) => {
            use tokio_postgres::types::{ToSql, Type};
            g.reconnect_if_closed().await?;
            let c = g.client().await;
            let boxed: Vec<Box<dyn ToSql + Sync + Send>> = params
                .into_iter()
                .map(|p| -> Box<dyn ToSql + Sync + Send> {
                    match p {
                        P::Text(t) => Box::new(t),
                        P::Int(i) => Box::new(i),
                        P::Null => Box::new(Option::<String>::None),
                    }
                })
                .collect();
            let refs: Vec<&(dyn ToSql + Sync)> = boxed
                .iter()
                .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = c
                .query(&sql, &refs)
                .await
                .map_err(|e| ModelError::database(format!("{e}: {sql}")))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let mut row = Vec::with_capacity(r.len());
                for (i, col) in r.columns().iter().enumerate() {
                    let t = col.type_();
                    let v = if *t == Type::INT2 {
                        r.get::<_, Option<i16>>(i).map(|x| V::Int(i64::from(x)))
                    } else if *t == Type::INT4 {
                        r.get::<_, Option<i32>>(i).map(|x| V::Int(i64::from(x)))
                    } else if *t == Type::INT8 {
                        r.get::<_, Option<i64>>(i).map(V::Int)
                    } else if *t == Type::FLOAT8 {
                        r.get::<_, Option<f64>>(i).map(V::Float)
                    } else if *t == Type::FLOAT4 {
                        r.get::<_, Option<f32>>(i).map(|x| V::Float(f64::from(x)))
                    } else if *t == Type::NUMERIC {
                        r.get::<_, Option<Decimal>>(i).map(V::Dec)
                    } else if *t == Type::TIMESTAMPTZ {
                        r.get::<_, Option<DateTime<Utc>>>(i).map(V::Time)
                    } else if *t == Type::BOOL {
                        r.get::<_, Option<bool>>(i).map(V::Bool)
                    } else if *t == Type::DATE {
                        r.get::<_, Option<chrono::NaiveDate>>(i)
                            .map(|d| V::Text(d.to_string()))
                    } else {
                        r.get::<_, Option<String>>(i).map(V::Text)
                    };
                    row.push((col.name().to_string(), v.unwrap_or(V::Null)));
                }
                out.push(row);
            }
            Ok(out)
        }
    }
}

fn get<'a>(row: &'a [(String, V)], name: &str) -> &'a V {
    row.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or(&V::Null)
}

fn to_json(rows: Rows) -> Vec<serde_json::Value> {
    rows.into_iter()
        .map(|r| serde_json::Value::Object(r.into_iter().map(|(n, v)| (n, v.json())).collect()))
        .collect()
}

/// Current stock levels.
pub async fn stock(gold: &Gold, f: &StockFilter) -> Result<Vec<StockView>, ModelError> {
    let mut sql = String::from(
        "SELECT s.store_id, s.name AS store_name, p.sku, p.name AS product_name, p.category, p.unit_of_measure,
                l.on_hand, l.avg_daily_demand, l.safety_stock, l.reorder_point, l.days_of_cover,
                l.projected_stockout_at, l.suggested_order_qty, l.on_order, l.status, l.updated_at
         FROM stock_level l
         JOIN dim_store s ON s.store_key = l.store_key
         JOIN dim_product p ON p.product_key = l.product_key
         WHERE 1 = 1",
    );
    let mut params = Vec::new();
    if let Some(v) = &f.store_id {
        sql.push_str(" AND s.store_id = ?");
        params.push(P::Text(v.clone()));
    }
    if let Some(v) = &f.sku {
        sql.push_str(" AND p.sku = ?");
        params.push(P::Text(v.clone()));
    }
    if let Some(v) = &f.status {
        sql.push_str(" AND l.status = ?");
        params.push(P::Text(v.clone()));
    }
    if let Some(v) = &f.category {
        sql.push_str(" AND p.category = ?");
        params.push(P::Text(v.clone()));
    }
    sql.push_str(" ORDER BY CASE l.status WHEN 'out' THEN 0 WHEN 'below_reorder_point' THEN 1 ELSE 2 END, l.days_of_cover, s.store_id, p.sku LIMIT ? OFFSET ?");
    params.extend(
        Page {
            limit: f.limit,
            offset: f.offset,
        }
        .params(),
    );
    let rows = query(gold, &sql, params).await?;
    Ok(rows
        .iter()
        .map(|r| StockView {
            store_id: get(r, "store_id").text().unwrap_or_default(),
            store_name: get(r, "store_name").text(),
            sku: get(r, "sku").text().unwrap_or_default(),
            product_name: get(r, "product_name").text(),
            category: get(r, "category").text(),
            unit_of_measure: get(r, "unit_of_measure").text(),
            on_hand: get(r, "on_hand").dec(3).unwrap_or_default(),
            avg_daily_demand: get(r, "avg_daily_demand").dec(3).unwrap_or_default(),
            safety_stock: get(r, "safety_stock").dec(3).unwrap_or_default(),
            reorder_point: get(r, "reorder_point").dec(3).unwrap_or_default(),
            days_of_cover: get(r, "days_of_cover").dec(2),
            projected_stockout_at: get(r, "projected_stockout_at").time(),
            suggested_order_qty: get(r, "suggested_order_qty").dec(3).unwrap_or_default(),
            on_order: get(r, "on_order").dec(3).unwrap_or_default(),
            status: get(r, "status").text().unwrap_or_default(),
            updated_at: get(r, "updated_at").time().unwrap_or_default(),
        })
        .collect())
}

/// The order proposals with something to order, by store, supplier and SKU.
pub async fn orders(gold: &Gold, f: &OrderFilter) -> Result<Vec<OrderView>, ModelError> {
    let mut sql = String::from(
        "SELECT s.store_id, p.sku, p.name AS product_name, p.case_pack, o.supplier_id, o.order_date,
                o.expected_delivery, o.quantity, o.cases, o.on_hand, o.on_order, o.reason
         FROM order_proposal o
         JOIN dim_store s ON s.store_key = o.store_key
         JOIN dim_product p ON p.product_key = o.product_key
         WHERE o.quantity > 0",
    );
    let mut params = Vec::new();
    for (col, v) in [
        ("s.store_id", &f.store_id),
        ("o.supplier_id", &f.supplier_id),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ?"));
            params.push(P::Text(v.clone()));
        }
    }
    if let Some(d) = f.date {
        sql.push_str(match gold.dialect() {
            Dialect::Postgres => " AND o.order_date = CAST(? AS DATE)",
            Dialect::Sqlite => " AND o.order_date = ?",
        });
        params.push(P::Text(d.format("%Y-%m-%d").to_string()));
    }
    sql.push_str(" ORDER BY s.store_id, o.order_date, o.supplier_id, p.sku LIMIT ? OFFSET ?");
    params.extend(
        Page {
            limit: f.limit,
            offset: f.offset,
        }
        .params(),
    );
    let rows = query(gold, &sql, params).await?;
    Ok(rows
        .iter()
        .map(|r| OrderView {
            store_id: get(r, "store_id").text().unwrap_or_default(),
            sku: get(r, "sku").text().unwrap_or_default(),
            product_name: get(r, "product_name").text(),
            supplier_id: get(r, "supplier_id").text(),
            order_date: date_of(r, "order_date").unwrap_or_default(),
            expected_delivery: get(r, "expected_delivery").time().unwrap_or_default(),
            quantity: get(r, "quantity").dec(3).unwrap_or_default(),
            cases: get(r, "cases").int().unwrap_or_default(),
            case_pack: get(r, "case_pack").int(),
            on_hand: get(r, "on_hand").dec(3).unwrap_or_default(),
            on_order: get(r, "on_order").dec(3).unwrap_or_default(),
            reason: get(r, "reason").text().unwrap_or_default(),
        })
        .collect())
}

/// A date column: text in SQLite, a date in PostgreSQL.
fn date_of(r: &[(String, V)], col: &str) -> Option<chrono::NaiveDate> {
    get(r, col)
        .text()
        .and_then(|t| t.get(..10).and_then(|d| d.parse().ok()))
        .or_else(|| get(r, col).time().map(|t| t.date_naive()))
}

/// One order proposal as a store's ordering reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalLine {
    pub store_id: String,
    pub sku: String,
    pub order_date: chrono::NaiveDate,
    /// Zero: nothing to order.
    pub quantity: Decimal,
}

/// Every store's order proposals, "nothing to order" ones included (`orders` lists only what is
/// to be ordered, a page at a time).
pub async fn proposal_lines(gold: &Gold) -> Result<Vec<ProposalLine>, ModelError> {
    let sql = "SELECT s.store_id, p.sku, o.order_date, o.quantity
         FROM order_proposal o
         JOIN dim_store s ON s.store_key = o.store_key
         JOIN dim_product p ON p.product_key = o.product_key";
    let rows = query(gold, sql, Vec::new()).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let order_date = date_of(r, "order_date")?;
            Some(ProposalLine {
                store_id: get(r, "store_id").text()?,
                sku: get(r, "sku").text()?,
                order_date,
                quantity: get(r, "quantity").dec(3).unwrap_or_default(),
            })
        })
        .collect())
}

/// Alerts, newest first.
pub async fn alerts(gold: &Gold, f: &AlertFilter) -> Result<Vec<AlertView>, ModelError> {
    let mut sql = String::from(
        "SELECT a.alert_id, s.store_id, s.name AS store_name, p.sku, p.name AS product_name, p.category,
                a.alert_type, a.severity, a.opened_at, a.resolved_at, a.on_hand, a.threshold,
                a.suggested_order_qty, a.message",
    );
    sql.push_str(actions::ACTION_COLUMNS);
    let mut params = alerts_where(gold, f, &mut sql);
    sql.push_str(" ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, a.opened_at DESC, a.alert_id DESC LIMIT ? OFFSET ?");
    // the API pages by at most `Page::MAX_LIMIT`; the evaluation and the CLI read every alert
    params.push(P::Int(f.limit.clamp(1, i64::MAX as usize) as i64));
    params.push(P::Int(f.offset.min(Page::MAX_OFFSET) as i64));
    let rows = query(gold, &sql, params).await?;
    Ok(rows
        .iter()
        .map(|r| AlertView {
            alert_id: get(r, "alert_id").int().unwrap_or_default(),
            store_id: get(r, "store_id").text().unwrap_or_default(),
            store_name: get(r, "store_name").text(),
            sku: get(r, "sku").text().unwrap_or_default(),
            product_name: get(r, "product_name").text(),
            category: get(r, "category").text(),
            alert_type: get(r, "alert_type").text().unwrap_or_default(),
            severity: get(r, "severity").text().unwrap_or_default(),
            opened_at: get(r, "opened_at").time().unwrap_or_default(),
            resolved_at: get(r, "resolved_at").time(),
            on_hand: get(r, "on_hand").dec(3).unwrap_or_default(),
            threshold: get(r, "threshold").dec(3).unwrap_or_default(),
            suggested_order_qty: get(r, "suggested_order_qty").dec(3).unwrap_or_default(),
            message: get(r, "message").text().unwrap_or_default(),
            assignee: get(r, "assignee").text(),
            acknowledged_at: get(r, "acknowledged_at").time(),
            snoozed_until: get(r, "snoozed_until").time(),
            outcome: get(r, "outcome").text(),
        })
        .collect())
}

/// The alerts `alerts` gives for `f`, and how many `f` matches whatever its limit. Counted only
/// when the page is full: a shorter page holds all of them.
pub async fn alerts_and_total(
    gold: &Gold,
    f: &AlertFilter,
) -> Result<(Vec<AlertView>, i64), ModelError> {
    let rows = alerts(gold, f).await?;
    let total = if rows.len() < f.limit.max(1) && (f.offset == 0 || !rows.is_empty()) {
        (f.offset + rows.len()) as i64
    } else {
        alerts_total(gold, f).await?
    };
    Ok((rows, total))
}

/// How many alerts `f` matches, whatever its limit.
pub async fn alerts_total(gold: &Gold, f: &AlertFilter) -> Result<i64, ModelError> {
    let mut sql = String::from("SELECT COUNT(*) AS n");
    let params = alerts_where(gold, f, &mut sql);
    let rows = query(gold, &sql, params).await?;
    Ok(rows
        .first()
        .and_then(|r| get(r, "n").int())
        .unwrap_or_default())
}

/// The FROM and WHERE of the alert queries for `f`, after `select`; the parameters in order.
fn alerts_where(gold: &Gold, f: &AlertFilter, select: &mut String) -> Vec<P> {
    select.push_str(
        " FROM stock_alert a
         JOIN dim_store s ON s.store_key = a.store_key
         JOIN dim_product p ON p.product_key = a.product_key
         WHERE 1 = 1",
    );
    let mut params = Vec::new();
    if f.open {
        select.push_str(" AND a.resolved_at IS NULL");
    }
    if let Some(quieted) = f.quieted {
        let cond = actions::quieted(gold, Utc::now(), &mut params);
        select.push_str(if quieted { " AND " } else { " AND NOT " });
        select.push_str(&cond);
    }
    for (col, v) in [
        ("s.store_id", &f.store_id),
        ("p.sku", &f.sku),
        ("a.alert_type", &f.alert_type),
        ("a.severity", &f.severity),
    ] {
        if let Some(v) = v {
            select.push_str(&format!(" AND {col} = ?"));
            params.push(P::Text(v.clone()));
        }
    }
    params
}

/// Per store: how many products are fine, below their reorder point, out; one page, by store.
pub async fn status_by_store(
    gold: &Gold,
    page: Page,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let sql = "SELECT s.store_id, s.name,
                SUM(CASE WHEN l.status = 'fine' THEN 1 ELSE 0 END) AS fine,
                SUM(CASE WHEN l.status = 'below_reorder_point' THEN 1 ELSE 0 END) AS below_reorder_point,
                SUM(CASE WHEN l.status = 'out' THEN 1 ELSE 0 END) AS out_of_stock
         FROM stock_level l
         JOIN dim_store s ON s.store_key = l.store_key
         GROUP BY s.store_id, s.name ORDER BY s.store_id LIMIT ? OFFSET ?";
    Ok(to_json(query(gold, sql, page.params().to_vec()).await?))
}

/// Per store and category: how many products are fine, below their reorder point, out; one
/// page, by store and category.
pub async fn status_by_category_page(
    gold: &Gold,
    store_id: Option<&str>,
    page: Page,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let (mut sql, mut params) = status_by_category_sql(store_id);
    sql.push_str(" LIMIT ? OFFSET ?");
    params.extend(page.params());
    Ok(to_json(query(gold, &sql, params).await?))
}

/// Per store and category: how many products are fine, below their reorder point, out.
pub async fn status_by_category(
    gold: &Gold,
    store_id: Option<&str>,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let (sql, params) = status_by_category_sql(store_id);
    Ok(to_json(query(gold, &sql, params).await?))
}

fn status_by_category_sql(store_id: Option<&str>) -> (String, Vec<P>) {
    let mut sql = String::from(
        "SELECT s.store_id, s.name AS store_name, COALESCE(p.category, 'Unknown') AS category,
                SUM(CASE WHEN l.status = 'fine' THEN 1 ELSE 0 END) AS fine,
                SUM(CASE WHEN l.status = 'below_reorder_point' THEN 1 ELSE 0 END) AS below_reorder_point,
                SUM(CASE WHEN l.status = 'out' THEN 1 ELSE 0 END) AS out_of_stock
         FROM stock_level l
         JOIN dim_store s ON s.store_key = l.store_key
         JOIN dim_product p ON p.product_key = l.product_key",
    );
    let mut params = Vec::new();
    if let Some(s) = store_id {
        sql.push_str(" WHERE s.store_id = ?");
        params.push(P::Text(s.to_string()));
    }
    sql.push_str(" GROUP BY s.store_id, s.name, COALESCE(p.category, 'Unknown') ORDER BY s.store_id, category");
    (sql, params)
}

/// Units sold per hour (UTC) in the last `hours` hours that had sales (of one store or all),
/// the newest included. Read from `fact_sales_hourly`, which the batches keep as they insert
/// the sales: the chart the dashboard redraws every two seconds reads a row per store and hour,
/// never the sales lines themselves.
pub async fn sales_velocity(
    gold: &Gold,
    store_id: Option<&str>,
    hours: i64,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let hour = match gold.dialect() {
        Dialect::Postgres => "to_char(h.hour, 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')",
        Dialect::Sqlite => "substr(h.hour, 1, 13) || ':00:00Z'",
    };
    let latest = match store_id {
        Some(_) => {
            "SELECT MAX(h.hour) FROM fact_sales_hourly h JOIN dim_store s ON s.store_key = h.store_key WHERE s.store_id = ?"
        }
        None => "SELECT MAX(hour) FROM fact_sales_hourly",
    };
    let mut params = Vec::new();
    if let Some(s) = store_id {
        params.push(P::Text(s.to_string()));
    }
    let Some(last) = query(gold, latest, params.clone())
        .await?
        .first()
        .and_then(|r| r.first().map(|(_, v)| v.time()))
        .flatten()
    else {
        return Ok(Vec::new());
    };
    let since = last - chrono::Duration::hours(hours.clamp(1, 24 * 60) - 1);
    let (since_p, cast) = time_param(gold, since);
    // on SQLite the units are summed as doubles: rounded back to their scale
    let mut sql = format!(
        "SELECT {hour} AS hour, ROUND(SUM(h.units), 3) AS units, CAST(SUM(h.sales) AS BIGINT) AS sales
         FROM fact_sales_hourly h JOIN dim_store s ON s.store_key = h.store_key
         WHERE h.hour >= {cast}"
    );
    let mut params = vec![since_p];
    if let Some(s) = store_id {
        sql.push_str(" AND s.store_id = ?");
        params.push(P::Text(s.to_string()));
    }
    sql.push_str(" GROUP BY 1 ORDER BY 1");
    Ok(to_json(query(gold, &sql, params).await?))
}

/// "Top sellers this week per store": the `n` best sellers by units in the 7 days up to the
/// latest sale date.
pub async fn top_sellers_this_week(
    gold: &Gold,
    n: i64,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let since = match gold.dialect() {
        Dialect::Postgres => {
            "(SELECT MAX(d2.full_date) FROM fact_sales f2 JOIN dim_date d2 ON d2.date_key = f2.date_key) - 6"
        }
        Dialect::Sqlite => {
            "date((SELECT MAX(d2.full_date) FROM fact_sales f2 JOIN dim_date d2 ON d2.date_key = f2.date_key), '-6 days')"
        }
    };
    let sql = format!(
        "WITH week AS (
            SELECT s.store_id, p.sku, MAX(p.name) AS product_name, SUM(f.quantity) AS units, SUM(f.net_amount) AS revenue
            FROM fact_sales f
            JOIN dim_date d ON d.date_key = f.date_key
            JOIN dim_store s ON s.store_key = f.store_key
            JOIN dim_product p ON p.product_key = f.product_key
            WHERE d.full_date >= {since}
            GROUP BY s.store_id, p.sku
         ), ranked AS (
            SELECT store_id, sku, product_name, units, revenue,
                   ROW_NUMBER() OVER (PARTITION BY store_id ORDER BY units DESC, sku) AS rank
            FROM week
         )
         SELECT store_id, rank, sku, product_name, units, revenue FROM ranked WHERE rank <= ? ORDER BY store_id, rank"
    );
    Ok(to_json(query(gold, &sql, vec![P::Int(n)]).await?))
}

/// The rows of an analyst view (`schema::VIEWS`), in the order of its first four columns.
pub async fn view(
    gold: &Gold,
    name: &str,
    page: Page,
) -> Result<Vec<serde_json::Value>, ModelError> {
    if !crate::schema::VIEWS.contains(&name) {
        return Err(ModelError::Config(format!(
            "{name} is not an analyst view (views: {})",
            crate::schema::VIEWS.join(", ")
        )));
    }
    let sql = format!("SELECT * FROM {name} ORDER BY 1, 2, 3, 4 LIMIT ? OFFSET ?");
    Ok(to_json(query(gold, &sql, page.params().to_vec()).await?))
}

/// "Days of cover by category": on hand over mean daily demand, per category.
pub async fn days_of_cover_by_category(gold: &Gold) -> Result<Vec<serde_json::Value>, ModelError> {
    let sql = "SELECT COALESCE(p.category, 'Unknown') AS category,
                      COUNT(*) AS products,
                      SUM(l.on_hand) AS on_hand,
                      SUM(l.avg_daily_demand) AS daily_demand,
                      CASE WHEN SUM(l.avg_daily_demand) > 0 THEN SUM(l.on_hand) / SUM(l.avg_daily_demand) END AS days_of_cover
               FROM stock_level l JOIN dim_product p ON p.product_key = l.product_key
               GROUP BY COALESCE(p.category, 'Unknown')
               ORDER BY category";
    Ok(to_json(query(gold, sql, Vec::new()).await?))
}

/// The gold checkpoints.
pub async fn checkpoints(gold: &Gold) -> Result<Vec<serde_json::Value>, ModelError> {
    Ok(to_json(
        query(gold, "SELECT name, silver_version, batch, lines, updated_at FROM gold_checkpoint ORDER BY name", Vec::new()).await?,
    ))
}

/// Counts for the status page. The counts of the fact tables and of all alerts are the ones
/// the batches keep in `gold_row_count` (migration 3): counting those tables, which grow with
/// every line event or alert change, would scan them whole on each read of `/v1/pipeline`,
/// `stocklake status` or the demo's progress line. The other tables are as large as the
/// chain's keys at most, or their rows are found by index.
pub async fn counts(gold: &Gold) -> Result<serde_json::Value, ModelError> {
    let sql = "SELECT
        COALESCE((SELECT row_count FROM gold_row_count WHERE table_name = 'fact_inventory_movement'), 0) AS movements,
        COALESCE((SELECT row_count FROM gold_row_count WHERE table_name = 'fact_sales'), 0) AS sales_lines,
        (SELECT COUNT(*) FROM stock_level) AS stock_levels,
        (SELECT COUNT(*) FROM stock_alert WHERE resolved_at IS NULL) AS open_alerts,
        COALESCE((SELECT row_count FROM gold_row_count WHERE table_name = 'stock_alert'), 0) AS alerts,
        COALESCE((SELECT row_count FROM gold_row_count WHERE table_name = 'gold_dead_letter'), 0) AS dead_letters,
        (SELECT COUNT(*) FROM dim_store) AS stores,
        (SELECT COUNT(*) FROM dim_product WHERE is_current) AS products,
        (SELECT COUNT(*) FROM alert_outbox WHERE delivered_at IS NULL) AS undelivered_notifications";
    Ok(to_json(query(gold, sql, Vec::new()).await?)
        .into_iter()
        .next()
        .unwrap_or(serde_json::Value::Null))
}

/// The newest dead letters: silver lines gold could not take, with the error.
pub async fn dead_letters(gold: &Gold, page: Page) -> Result<Vec<serde_json::Value>, ModelError> {
    let mut params = Vec::new();
    params.extend(page.params());
    Ok(to_json(
        query(
            gold,
            "SELECT event_id, line_no, event_type, event_time, store_id, sku, quantity, unit_price, discount, silver_version, error, dead_at
             FROM gold_dead_letter ORDER BY dead_at DESC, event_id, line_no LIMIT ? OFFSET ?",
            params,
        )
        .await?,
    ))
}

/// The rows of a gold table, counted one by one (`COUNT(*)`): what `gold_row_count` keeps
/// for the fact tables, found the slow way.
pub async fn count_rows(gold: &Gold, table: &str) -> Result<i64, ModelError> {
    if !crate::schema::TABLES.contains(&table) {
        return Err(ModelError::database(format!("no gold table {table}")));
    }
    let rows = query(
        gold,
        &format!("SELECT COUNT(*) AS n FROM {table}"),
        Vec::new(),
    )
    .await?;
    Ok(rows
        .first()
        .and_then(|r| get(r, "n").int())
        .unwrap_or_default())
}

/// One run of a stage, as recorded in `pipeline_run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub stage: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: String,
    pub records_in: i64,
    pub records_out: i64,
    pub error: Option<String>,
    pub details: Option<String>,
}

/// An instant as a statement parameter, and the placeholder to write for it. PostgreSQL gets
/// the text cast explicitly: from a bare `CAST(? AS TIMESTAMPTZ)` it infers a `timestamptz`
/// parameter, which a text value cannot be sent as.
fn time_param(gold: &Gold, t: DateTime<Utc>) -> (P, &'static str) {
    match gold.dialect() {
        Dialect::Sqlite => (P::Text(ts(t)), "?"),
        Dialect::Postgres => (
            P::Text(t.to_rfc3339()),
            "CAST(CAST(? AS TEXT) AS TIMESTAMPTZ)",
        ),
    }
}

/// Records a stage run.
pub async fn record_run(gold: &Gold, r: &RunRecord) -> Result<(), ModelError> {
    let sql = "INSERT INTO pipeline_run (run_id, stage, started_at, finished_at, status, records_in, records_out, error, details)
               VALUES ((SELECT COALESCE(MAX(run_id), 0) + 1 FROM pipeline_run), ?, ?, ?, ?, ?, ?, ?, ?)";
    let (started, cast) = time_param(gold, r.started_at);
    let (finished, _) = time_param(gold, r.finished_at);
    let sql = sql.replace(
        "?, ?, ?, ?, ?, ?, ?, ?)",
        &format!("?, {cast}, {cast}, ?, ?, ?, ?, ?)"),
    );
    query(
        gold,
        &sql,
        vec![
            P::Text(r.stage.clone()),
            started,
            finished,
            P::Text(r.status.clone()),
            P::Int(r.records_in),
            P::Int(r.records_out),
            r.error.clone().map_or(P::Null, P::Text),
            r.details.clone().map_or(P::Null, P::Text),
        ],
    )
    .await?;
    Ok(())
}

/// The latest runs of each stage.
pub async fn recent_runs(
    gold: &Gold,
    per_stage: i64,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let sql = "SELECT stage, started_at, finished_at, status, records_in, records_out, error FROM (
                 SELECT r.*, ROW_NUMBER() OVER (PARTITION BY stage ORDER BY run_id DESC) AS n FROM pipeline_run r
               ) x WHERE n <= ? ORDER BY stage, started_at DESC";
    Ok(to_json(query(gold, sql, vec![P::Int(per_stage)]).await?))
}

/// Removes old run history (keeps the latest `keep` per stage).
pub async fn prune_runs(gold: &Gold, keep: i64) -> Result<(), ModelError> {
    let sql = "DELETE FROM pipeline_run WHERE run_id IN (
                 SELECT run_id FROM (SELECT run_id, ROW_NUMBER() OVER (PARTITION BY stage ORDER BY run_id DESC) AS n FROM pipeline_run) x WHERE n > ?)";
    query(gold, sql, vec![P::Int(keep)]).await?;
    Ok(())
}

/// A notification waiting to be delivered.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub alert_id: i64,
    pub change: String,
    pub payload: String,
    pub attempts: i64,
}

/// Notifications not yet delivered, oldest first.
pub async fn pending_notifications(gold: &Gold, limit: i64) -> Result<Vec<Pending>, ModelError> {
    let rows = query(
        gold,
        "SELECT id, alert_id, change, payload, attempts FROM alert_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?",
        vec![P::Int(limit)],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Pending {
            id: get(r, "id").int().unwrap_or_default(),
            alert_id: get(r, "alert_id").int().unwrap_or_default(),
            change: get(r, "change").text().unwrap_or_default(),
            payload: get(r, "payload").text().unwrap_or_default(),
            attempts: get(r, "attempts").int().unwrap_or_default(),
        })
        .collect())
}

/// Marks a notification delivered, or records a failed attempt.
pub async fn mark_notification(
    gold: &Gold,
    id: i64,
    error: Option<&str>,
) -> Result<(), ModelError> {
    let (now, cast) = time_param(gold, Utc::now());
    match error {
        None => query(gold, &format!("UPDATE alert_outbox SET delivered_at = {cast}, attempts = attempts + 1, last_error = NULL WHERE id = ?"), vec![now, P::Int(id)]).await?,
        Some(e) => query(gold, "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", vec![P::Text(e.chars().take(500).collect()), P::Int(id)]).await?,
    };
    Ok(())
}
