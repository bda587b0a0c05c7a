//! Versioned migrations of the gold schema (docs/contract.md §6), for PostgreSQL and SQLite.
//!
//! Both databases get the same tables and columns. Types differ only where the databases do:
//! PostgreSQL has exact `NUMERIC` and `TIMESTAMPTZ`; SQLite stores decimals with `NUMERIC`
//! affinity and times as RFC 3339 text (docs/decisions/0004-gold-databases.md).

/// Which SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// One migration: its version, name, and SQL written once with placeholders for the types
/// that differ (`{TS}` time, `{BOOL}`, `{BIGINT}`, `{F64}`, `{JSON}`, and `{EVENT_HOUR}`, the
/// hour of a row's `event_time`).
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sql: &'static str,
    /// Statements for PostgreSQL alone, after `sql` (what SQLite cannot do in place, such as
    /// adding a foreign key to an existing table).
    postgres_only: &'static str,
}

impl Migration {
    /// The SQL for a dialect.
    pub fn sql(&self, d: Dialect) -> String {
        let sql = match d {
            Dialect::Postgres if !self.postgres_only.is_empty() => {
                format!("{}\n{}", self.sql, self.postgres_only)
            }
            _ => self.sql.to_string(),
        };
        let (ts, boolean, bigint, f64t, json) = match d {
            Dialect::Postgres => (
                "TIMESTAMPTZ",
                "BOOLEAN",
                "BIGINT",
                "DOUBLE PRECISION",
                "JSONB",
            ),
            Dialect::Sqlite => ("TEXT", "INTEGER", "INTEGER", "REAL", "TEXT"),
        };
        sql.replace("{EVENT_HOUR}", event_hour(d))
            .replace("{TS}", ts)
            .replace("{BOOL}", boolean)
            .replace("{BIGINT}", bigint)
            .replace("{F64}", f64t)
            .replace("{JSON}", json)
    }
}

/// The hour (UTC) that `event_time` falls in, as a time of the dialect: what
/// `fact_sales_hourly.hour` holds (on SQLite, the text `dialect::ts` writes for that hour).
pub fn event_hour(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "date_trunc('hour', event_time)",
        Dialect::Sqlite => "substr(event_time, 1, 13) || ':00:00.000000Z'",
    }
}

/// Every migration, in order. Never edit one that has shipped: add the next.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "star schema, stock levels, alerts and bookkeeping",
        sql: r#"
CREATE TABLE dim_date (
    date_key      INTEGER PRIMARY KEY,
    full_date     DATE NOT NULL,
    day_of_week   SMALLINT NOT NULL,
    day_name      TEXT NOT NULL,
    week_of_year  SMALLINT NOT NULL,
    month         SMALLINT NOT NULL,
    quarter       SMALLINT NOT NULL,
    year          SMALLINT NOT NULL,
    is_weekend    {BOOL} NOT NULL
);

CREATE TABLE dim_store (
    store_key    INTEGER PRIMARY KEY,
    store_id     TEXT NOT NULL UNIQUE,
    name         TEXT,
    format       TEXT,
    city         TEXT,
    region       TEXT,
    country      TEXT,
    timezone     TEXT NOT NULL,
    is_inferred  {BOOL} NOT NULL,
    updated_at   {TS} NOT NULL
);

CREATE TABLE dim_product (
    product_key      INTEGER PRIMARY KEY,
    sku              TEXT NOT NULL,
    name             TEXT,
    category         TEXT,
    subcategory      TEXT,
    brand            TEXT,
    unit_of_measure  TEXT,
    case_pack        INTEGER,
    unit_cost        NUMERIC(18,4),
    unit_price       NUMERIC(18,4),
    lead_time_days   INTEGER,
    service_level    NUMERIC(6,4),
    is_inferred      {BOOL} NOT NULL,
    valid_from       {TS} NOT NULL,
    valid_to         {TS},
    is_current       {BOOL} NOT NULL
);
CREATE UNIQUE INDEX dim_product_current_sku ON dim_product (sku) WHERE is_current;
CREATE INDEX dim_product_sku ON dim_product (sku);

CREATE TABLE fact_sales (
    event_id        TEXT NOT NULL,
    line_no         INTEGER NOT NULL,
    date_key        INTEGER NOT NULL REFERENCES dim_date (date_key),
    store_key       INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key     INTEGER NOT NULL REFERENCES dim_product (product_key),
    transaction_id  TEXT,
    register_id     TEXT,
    event_time      {TS} NOT NULL,
    quantity        NUMERIC(18,3) NOT NULL,
    unit_price      NUMERIC(18,4),
    discount        NUMERIC(18,4),
    net_amount      NUMERIC(18,4),
    PRIMARY KEY (event_id, line_no)
);
CREATE INDEX fact_sales_store_date ON fact_sales (store_key, date_key);
CREATE INDEX fact_sales_product ON fact_sales (product_key);

CREATE TABLE fact_inventory_movement (
    event_id        TEXT NOT NULL,
    line_no         INTEGER NOT NULL,
    date_key        INTEGER NOT NULL REFERENCES dim_date (date_key),
    store_key       INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key     INTEGER NOT NULL REFERENCES dim_product (product_key),
    event_type      TEXT NOT NULL,
    quantity        NUMERIC(18,3) NOT NULL,
    quantity_delta  NUMERIC(18,3) NOT NULL,
    event_time      {TS} NOT NULL,
    PRIMARY KEY (event_id, line_no)
);
CREATE INDEX fact_inventory_movement_key_time
    ON fact_inventory_movement (store_key, product_key, event_time);

CREATE TABLE fact_stock_daily (
    date_key              INTEGER NOT NULL REFERENCES dim_date (date_key),
    store_key             INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key           INTEGER NOT NULL REFERENCES dim_product (product_key),
    units_sold            NUMERIC(18,3) NOT NULL,
    units_received        NUMERIC(18,3) NOT NULL,
    units_wasted          NUMERIC(18,3) NOT NULL,
    units_returned        NUMERIC(18,3) NOT NULL,
    units_adjusted        NUMERIC(18,3) NOT NULL,
    net_movement          NUMERIC(18,3) NOT NULL,
    sales_count           INTEGER NOT NULL,
    count_time            {TS},
    count_quantity        NUMERIC(18,3),
    movement_after_count  NUMERIC(18,3) NOT NULL,
    closing_on_hand       NUMERIC(18,3) NOT NULL,
    was_out_of_stock      {BOOL} NOT NULL,
    out_of_stock_share    {F64} NOT NULL,
    PRIMARY KEY (store_key, product_key, date_key)
);
CREATE INDEX fact_stock_daily_date ON fact_stock_daily (date_key);

CREATE TABLE stock_level (
    store_key               INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key             INTEGER NOT NULL REFERENCES dim_product (product_key),
    on_hand                 NUMERIC(18,3) NOT NULL,
    avg_daily_demand        NUMERIC(18,3) NOT NULL,
    safety_stock            NUMERIC(18,3) NOT NULL,
    reorder_point           NUMERIC(18,3) NOT NULL,
    days_of_cover           NUMERIC(18,2),
    projected_stockout_at   {TS},
    updated_at              {TS} NOT NULL,
    status                  TEXT NOT NULL,
    demand_sd               NUMERIC(18,3) NOT NULL,
    order_up_to             NUMERIC(18,3) NOT NULL,
    suggested_order_qty     NUMERIC(18,3) NOT NULL,
    on_order                NUMERIC(18,3) NOT NULL,
    expected_delivery_at          {TS},
    last_count_at           {TS},
    last_count_quantity     NUMERIC(18,3),
    last_movement_at        {TS},
    last_sale_at            {TS},
    in_stock_since          {TS},
    demand_level            {F64} NOT NULL,
    demand_var              {F64} NOT NULL,
    demand_days             INTEGER NOT NULL,
    units_per_sale          {F64} NOT NULL,
    last_receipt_at         {TS},
    receipt_interval_days   {F64} NOT NULL,
    receipt_qty             {F64} NOT NULL,
    receipt_count           INTEGER NOT NULL,
    stockout_days           INTEGER NOT NULL,
    PRIMARY KEY (store_key, product_key)
);
CREATE INDEX stock_level_status ON stock_level (status);
CREATE INDEX stock_level_product ON stock_level (product_key);

CREATE TABLE stock_alert (
    alert_id             {BIGINT} PRIMARY KEY,
    store_key            INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key          INTEGER NOT NULL REFERENCES dim_product (product_key),
    alert_type           TEXT NOT NULL,
    severity             TEXT NOT NULL,
    opened_at            {TS} NOT NULL,
    resolved_at          {TS},
    on_hand              NUMERIC(18,3) NOT NULL,
    threshold            NUMERIC(18,3) NOT NULL,
    suggested_order_qty  NUMERIC(18,3) NOT NULL,
    message              TEXT NOT NULL,
    updated_at           {TS} NOT NULL
);
CREATE UNIQUE INDEX stock_alert_one_open
    ON stock_alert (store_key, product_key, alert_type) WHERE resolved_at IS NULL;
CREATE INDEX stock_alert_opened ON stock_alert (opened_at);
CREATE INDEX stock_alert_key ON stock_alert (store_key, product_key);

CREATE TABLE gold_checkpoint (
    name            TEXT PRIMARY KEY,
    silver_version  {BIGINT} NOT NULL,
    batch           {BIGINT} NOT NULL,
    lines           {BIGINT} NOT NULL,
    updated_at      {TS} NOT NULL
);

CREATE TABLE gold_store_state (
    store_key    INTEGER PRIMARY KEY REFERENCES dim_store (store_key),
    clock        {TS},
    local_date   INTEGER,
    state        {JSON} NOT NULL
);

CREATE TABLE alert_outbox (
    id            {BIGINT} PRIMARY KEY,
    alert_id      {BIGINT} NOT NULL,
    change        TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    {TS} NOT NULL,
    delivered_at  {TS},
    attempts      INTEGER NOT NULL,
    last_error    TEXT
);
CREATE INDEX alert_outbox_pending ON alert_outbox (delivered_at);

CREATE TABLE pipeline_run (
    run_id       {BIGINT} PRIMARY KEY,
    stage        TEXT NOT NULL,
    started_at   {TS} NOT NULL,
    finished_at  {TS},
    status       TEXT NOT NULL,
    records_in   {BIGINT} NOT NULL,
    records_out  {BIGINT} NOT NULL,
    error        TEXT,
    details      TEXT
);
CREATE INDEX pipeline_run_stage ON pipeline_run (stage, started_at);
"#,
        postgres_only: "",
    },
    Migration {
        version: 2,
        name: "the stock level at which a store orders, and its order inferred on the way",
        sql: r#"
ALTER TABLE stock_level ADD COLUMN order_level {F64} NOT NULL DEFAULT 0;
ALTER TABLE stock_level ADD COLUMN ordered_at {TS};
"#,
        postgres_only: "",
    },
    Migration {
        version: 3,
        name: "units sold per store and hour, and the row counts of the fact tables and alerts, kept by the batches that insert them",
        sql: r#"
CREATE TABLE fact_sales_hourly (
    store_key  INTEGER NOT NULL REFERENCES dim_store (store_key),
    hour       {TS} NOT NULL,
    units      NUMERIC(18,3) NOT NULL,
    sales      {BIGINT} NOT NULL,
    PRIMARY KEY (store_key, hour)
);
CREATE INDEX fact_sales_hourly_hour ON fact_sales_hourly (hour);
INSERT INTO fact_sales_hourly (store_key, hour, units, sales)
    SELECT store_key, {EVENT_HOUR}, SUM(quantity), COUNT(DISTINCT event_id) FROM fact_sales GROUP BY 1, 2;
CREATE TABLE gold_row_count (
    table_name  TEXT PRIMARY KEY,
    row_count   {BIGINT} NOT NULL
);
INSERT INTO gold_row_count (table_name, row_count)
    SELECT 'fact_inventory_movement', COUNT(*) FROM fact_inventory_movement;
INSERT INTO gold_row_count (table_name, row_count)
    SELECT 'fact_sales', COUNT(*) FROM fact_sales;
INSERT INTO gold_row_count (table_name, row_count)
    SELECT 'stock_alert', COUNT(*) FROM stock_alert;
"#,
        postgres_only: "",
    },
    Migration {
        version: 4,
        name: "dead letters: silver lines gold could not take, set aside with the error",
        sql: r#"
CREATE TABLE gold_dead_letter (
    event_id        TEXT NOT NULL,
    line_no         INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    event_time      {TS} NOT NULL,
    store_id        TEXT NOT NULL,
    sku             TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    unit_price      TEXT,
    discount        TEXT,
    silver_version  {BIGINT} NOT NULL,
    error           TEXT NOT NULL,
    dead_at         {TS} NOT NULL,
    PRIMARY KEY (event_id, line_no)
);
CREATE INDEX gold_dead_letter_dead_at ON gold_dead_letter (dead_at);
INSERT INTO gold_row_count (table_name, row_count)
    SELECT 'gold_dead_letter', COUNT(*) FROM gold_dead_letter;
"#,
        postgres_only: "",
    },
    Migration {
        version: 5,
        name: "analyst views: daily sales by store and category, stock health per store, open alerts with names, availability per day",
        sql: r#"
CREATE VIEW v_daily_sales_by_store_category AS
SELECT d.full_date AS sales_date,
       s.store_id,
       s.name AS store_name,
       COALESCE(p.category, 'Unknown') AS category,
       SUM(f.quantity) AS units,
       SUM(COALESCE(f.net_amount, 0)) AS net_sales,
       COUNT(DISTINCT f.event_id) AS baskets,
       COUNT(*) AS lines
FROM fact_sales f
JOIN dim_date d ON d.date_key = f.date_key
JOIN dim_store s ON s.store_key = f.store_key
JOIN dim_product p ON p.product_key = f.product_key
GROUP BY d.full_date, s.store_id, s.name, COALESCE(p.category, 'Unknown');
CREATE VIEW v_stock_health_by_store AS
SELECT s.store_id,
       s.name AS store_name,
       s.region,
       COUNT(*) AS products,
       SUM(CASE WHEN l.status = 'fine' THEN 1 ELSE 0 END) AS fine,
       SUM(CASE WHEN l.status = 'below_reorder_point' THEN 1 ELSE 0 END) AS below_reorder_point,
       SUM(CASE WHEN l.status = 'out' THEN 1 ELSE 0 END) AS out_of_stock,
       SUM(CASE WHEN l.on_hand < 0 THEN 1 ELSE 0 END) AS negative_stock,
       SUM(CASE WHEN l.on_hand > 0 THEN l.on_hand * COALESCE(p.unit_cost, 0) ELSE 0 END) AS stock_value_at_cost,
       (SELECT COUNT(*) FROM stock_alert a WHERE a.store_key = s.store_key AND a.resolved_at IS NULL) AS open_alerts
FROM stock_level l
JOIN dim_store s ON s.store_key = l.store_key
JOIN dim_product p ON p.product_key = l.product_key
GROUP BY s.store_key, s.store_id, s.name, s.region;
CREATE VIEW v_open_alerts AS
SELECT a.alert_id,
       s.store_id,
       s.name AS store_name,
       s.region,
       p.sku,
       p.name AS product_name,
       p.category,
       a.alert_type,
       a.severity,
       a.opened_at,
       a.on_hand,
       a.threshold,
       a.suggested_order_qty,
       a.message
FROM stock_alert a
JOIN dim_store s ON s.store_key = a.store_key
JOIN dim_product p ON p.product_key = a.product_key
WHERE a.resolved_at IS NULL;
CREATE VIEW v_availability_daily AS
SELECT d.full_date AS stock_date,
       s.store_id,
       s.name AS store_name,
       COUNT(*) AS products,
       SUM(CASE WHEN f.was_out_of_stock THEN 1 ELSE 0 END) AS products_out_of_stock,
       1.0 - AVG(f.out_of_stock_share) AS availability
FROM fact_stock_daily f
JOIN dim_date d ON d.date_key = f.date_key
JOIN dim_store s ON s.store_key = f.store_key
GROUP BY d.full_date, s.store_id, s.name;
"#,
        postgres_only: "",
    },
    Migration {
        version: 6,
        name: "payment methods and client types: two small dimensions, and the keys of fact_sales",
        sql: r#"
CREATE TABLE dim_payment_method (
    payment_method_key  INTEGER PRIMARY KEY,
    payment_method      TEXT NOT NULL UNIQUE
);
INSERT INTO dim_payment_method (payment_method_key, payment_method) VALUES (0, 'unknown');
CREATE TABLE dim_client_type (
    client_type_key  INTEGER PRIMARY KEY,
    client_type      TEXT NOT NULL UNIQUE
);
INSERT INTO dim_client_type (client_type_key, client_type) VALUES (0, 'unknown');
ALTER TABLE fact_sales ADD COLUMN payment_method_key INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fact_sales ADD COLUMN client_type_key INTEGER NOT NULL DEFAULT 0;
"#,
        // enforced for every new row; the rows already there all hold the "unknown" members
        postgres_only: r#"
ALTER TABLE fact_sales ADD CONSTRAINT fact_sales_payment_method_fk FOREIGN KEY (payment_method_key) REFERENCES dim_payment_method (payment_method_key) NOT VALID;
ALTER TABLE fact_sales ADD CONSTRAINT fact_sales_client_type_fk FOREIGN KEY (client_type_key) REFERENCES dim_client_type (client_type_key) NOT VALID;
"#,
    },
    Migration {
        version: 7,
        name: "every published row stamped with the gold batch that last wrote it, for the gold lake",
        sql: r#"
ALTER TABLE dim_date ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE dim_store ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE dim_product ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE dim_payment_method ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE dim_client_type ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE fact_sales ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE fact_inventory_movement ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE fact_stock_daily ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE stock_level ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE stock_alert ADD COLUMN gold_batch {BIGINT} NOT NULL DEFAULT 0;
CREATE INDEX fact_sales_gold_batch ON fact_sales (gold_batch);
CREATE INDEX fact_inventory_movement_gold_batch ON fact_inventory_movement (gold_batch);
CREATE INDEX fact_stock_daily_gold_batch ON fact_stock_daily (gold_batch);
CREATE INDEX stock_level_gold_batch ON stock_level (gold_batch);
CREATE INDEX stock_alert_gold_batch ON stock_alert (gold_batch);
CREATE TABLE gold_epoch (
    epoch  {BIGINT} NOT NULL
);
"#,
        postgres_only: "",
    },
    Migration {
        version: 8,
        name: "replenishment: purchase order lines, suppliers, order proposals, the product's supplier rules and the learnt lead time",
        sql: r#"
CREATE TABLE purchase_order_line (
    order_id           TEXT NOT NULL,
    line_no            INTEGER NOT NULL,
    store_key          INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key        INTEGER NOT NULL REFERENCES dim_product (product_key),
    ordered_at         {TS},
    expected_at        {TS},
    quantity           NUMERIC(18,3) NOT NULL,
    received_quantity  NUMERIC(18,3) NOT NULL,
    status             TEXT NOT NULL,
    version_time       {TS},
    version_event_id   TEXT,
    first_received_at  {TS},
    last_received_at   {TS},
    updated_at         {TS} NOT NULL,
    gold_batch         {BIGINT} NOT NULL DEFAULT 0,
    PRIMARY KEY (store_key, order_id, product_key)
);
CREATE INDEX purchase_order_line_status ON purchase_order_line (status, expected_at);
CREATE INDEX purchase_order_line_gold_batch ON purchase_order_line (gold_batch);
CREATE TABLE dim_supplier (
    supplier_id      TEXT PRIMARY KEY,
    name             TEXT,
    lead_time_days   INTEGER,
    order_days       TEXT,
    delivery_days    TEXT,
    is_inferred      {BOOL} NOT NULL,
    updated_at       {TS} NOT NULL,
    gold_batch       {BIGINT} NOT NULL DEFAULT 0
);
CREATE TABLE order_proposal (
    store_key          INTEGER NOT NULL REFERENCES dim_store (store_key),
    product_key        INTEGER NOT NULL REFERENCES dim_product (product_key),
    supplier_id        TEXT,
    order_date         DATE NOT NULL,
    expected_delivery  {TS} NOT NULL,
    quantity           NUMERIC(18,3) NOT NULL,
    cases              INTEGER NOT NULL,
    on_hand            NUMERIC(18,3) NOT NULL,
    on_order           NUMERIC(18,3) NOT NULL,
    reason             TEXT NOT NULL,
    created_at         {TS} NOT NULL,
    gold_batch         {BIGINT} NOT NULL DEFAULT 0,
    PRIMARY KEY (store_key, product_key)
);
CREATE INDEX order_proposal_gold_batch ON order_proposal (gold_batch);
ALTER TABLE dim_product ADD COLUMN supplier_id TEXT;
ALTER TABLE dim_product ADD COLUMN min_order_qty NUMERIC(18,3);
ALTER TABLE dim_product ADD COLUMN shelf_life_days INTEGER;
ALTER TABLE stock_level ADD COLUMN lead_time_days NUMERIC(9,2);
ALTER TABLE stock_level ADD COLUMN lead_time_sd_days NUMERIC(9,2);
"#,
        postgres_only: "",
    },
    Migration {
        version: 9,
        name: "what people did about alerts: acknowledged, snoozed, assigned, resolved with an outcome",
        sql: r#"
CREATE TABLE alert_action (
    alert_id          {BIGINT} NOT NULL,
    action            TEXT NOT NULL,
    actor             TEXT NOT NULL,
    at                {TS} NOT NULL,
    until             {TS},
    assignee          TEXT,
    outcome           TEXT,
    counted_quantity  NUMERIC(18,3),
    note              TEXT,
    severity          TEXT NOT NULL,
    event_id          TEXT,
    request_id        TEXT
);
CREATE INDEX alert_action_alert ON alert_action (alert_id, at);
CREATE UNIQUE INDEX alert_action_request ON alert_action (alert_id, request_id) WHERE request_id IS NOT NULL;
"#,
        postgres_only: "",
    },
];

/// The analyst views (migration 5), documented with example queries in docs/analytics.md.
pub const VIEWS: &[&str] = &[
    "v_daily_sales_by_store_category",
    "v_stock_health_by_store",
    "v_open_alerts",
    "v_availability_daily",
];

/// The tables whose rows `gold_row_count` counts: only batches insert into them, and they grow
/// with every line event or alert change, so that counting them on each status read would scan
/// them whole.
pub const COUNTED_TABLES: &[&str] = &[
    "fact_inventory_movement",
    "fact_sales",
    "stock_alert",
    "gold_dead_letter",
];

/// The statements of a migration, split on `;` at line ends.
pub fn statements(sql: &str) -> Vec<String> {
    sql.split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches(';').to_string())
        .collect()
}

/// Every gold table, in dependency order (dimensions first).
pub const TABLES: &[&str] = &[
    "dim_date",
    "dim_store",
    "dim_product",
    "dim_payment_method",
    "dim_client_type",
    "fact_sales",
    "fact_sales_hourly",
    "fact_inventory_movement",
    "fact_stock_daily",
    "stock_level",
    "stock_alert",
    "purchase_order_line",
    "dim_supplier",
    "order_proposal",
    "gold_checkpoint",
    "gold_row_count",
    "gold_store_state",
    "gold_dead_letter",
    "gold_epoch",
    "alert_outbox",
    "alert_action",
    "pipeline_run",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_substituted() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last);
            last = m.version;
            for d in [Dialect::Postgres, Dialect::Sqlite] {
                let sql = m.sql(d);
                assert!(!sql.contains('{'), "placeholder left in {d:?}");
                assert!(!statements(&sql).is_empty());
            }
        }
        assert!(statements(&MIGRATIONS[0].sql(Dialect::Sqlite)).len() > 10);
        let pg: String = MIGRATIONS
            .iter()
            .map(|m| m.sql(Dialect::Postgres))
            .collect();
        assert!(pg.contains("TIMESTAMPTZ") && pg.contains("JSONB"));
        for t in COUNTED_TABLES {
            assert!(
                pg.contains(&format!("SELECT '{t}', COUNT(*) FROM {t};")),
                "{t}"
            );
        }
        for t in TABLES {
            assert!(pg.contains(&format!("CREATE TABLE {t} (")), "{t}");
        }
    }
}
