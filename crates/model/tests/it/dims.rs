//! Payment methods and client types reach gold: the legacy producer's records and canonical
//! events that carry them each get their dimension member, and a sale that says nothing is
//! attached to the "unknown" member — on SQLite and on PostgreSQL alike.

use std::collections::BTreeMap;

use stocklake_simulate::OutRecord;

use crate::common::*;

fn record(json: serde_json::Value) -> OutRecord {
    OutRecord {
        time: chrono::Utc::now(),
        partition_key: "S".into(),
        bytes: json.to_string().into_bytes(),
    }
}

fn records() -> Vec<OutRecord> {
    let legacy = |id: &str, pay: &str, client: &str| {
        record(serde_json::json!({
            "transaction_id": id, "product_id": "P001", "product_name": "Milk", "category": "Dairy",
            "quantity": 2, "unit_price": 1.2, "total_price": 2.4,
            "timestamp": "2026-11-02T10:00:00.123456+00:00", "store_id": "Madrid_01",
            "payment_method": pay, "client_type": client
        }))
    };
    vec![
        legacy("t1", "Cash", "Regular"),
        legacy("t2", "Card", "Member"),
        legacy("t3", "Cash", "New"),
        record(serde_json::json!({
            "schema_version": 1, "event_id": "c1", "event_type": "sale",
            "event_time": "2026-11-02T11:00:00Z", "store_id": "Madrid_01",
            "lines": [{"sku": "P002", "quantity": 1, "unit_price": 0.95}],
            "payment_method": "Mobile", "client_type": "Member"
        })),
        record(serde_json::json!({
            "schema_version": 1, "event_id": "c2", "event_type": "return",
            "event_time": "2026-11-02T12:00:00Z", "store_id": "Madrid_01",
            "lines": [{"sku": "P002", "quantity": 1, "unit_price": 0.95}]
        })),
    ]
}

/// (event id, payment method, client type) of every sales line, through the dimensions.
async fn sales_members(url: &str) -> BTreeMap<String, (String, String)> {
    let sql = "SELECT f.event_id, m.payment_method, c.client_type FROM fact_sales f
               JOIN dim_payment_method m ON m.payment_method_key = f.payment_method_key
               JOIN dim_client_type c ON c.client_type_key = f.client_type_key";
    let rows: Vec<(String, String, String)> = if let Some(path) = url.strip_prefix("sqlite://") {
        let c = rusqlite::Connection::open(path).expect("open");
        let mut s = c.prepare(sql).expect("prepare");
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    } else {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        c.query(sql, &[])
            .await
            .expect("query")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    rows.into_iter().map(|(e, p, c)| (e, (p, c))).collect()
}

async fn run(url: &str) {
    let mut lake = Lake::new();
    lake.put(&records()).await;
    lake.refine().await;
    let mut model = lake.model(url).await;
    model.drain().await.expect("model");
    let want: BTreeMap<String, (String, String)> = [
        ("t1:P001", "Cash", "Regular"),
        ("t2:P001", "Card", "Member"),
        ("t3:P001", "Cash", "New"),
        ("c1", "Mobile", "Member"),
        ("c2", "unknown", "unknown"),
    ]
    .into_iter()
    .map(|(e, p, c)| (e.to_string(), (p.to_string(), c.to_string())))
    .collect();
    assert_eq!(sales_members(url).await, want);
    // a rebuilt gold (a replay empties every table) gets the same members back
    model.gold().truncate().await.expect("truncate");
    let mut again = lake.model(url).await;
    again.drain().await.expect("model again");
    assert_eq!(sales_members(url).await, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_keeps_payment_methods_and_client_types() {
    let lake = Lake::new();
    run(&lake.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_keeps_payment_methods_and_client_types() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    run(&pg.url).await;
}
