//! Purchase orders through bronze, silver and gold: amendments, cancellations, partial, late and
//! unordered receipts, receipts before their order — and the same gold whatever order the events
//! arrive in, on SQLite and on PostgreSQL.

use std::collections::{BTreeMap, HashMap};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rust_decimal::Decimal;
use stocklake_simulate::OutRecord;

use crate::common::*;

fn record(json: serde_json::Value) -> OutRecord {
    OutRecord {
        time: chrono::Utc::now(),
        partition_key: "S".into(),
        bytes: json.to_string().into_bytes(),
    }
}

fn event(
    id: &str,
    event_type: &str,
    at: &str,
    extra: serde_json::Value,
    lines: &[(&str, u32)],
) -> OutRecord {
    let mut v = serde_json::json!({
        "schema_version": 1, "event_id": id, "event_type": event_type,
        "event_time": at, "store_id": "S1",
        "lines": lines.iter().map(|(sku, q)| serde_json::json!({"sku": sku, "quantity": q})).collect::<Vec<_>>(),
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    record(v)
}

fn po(id: &str, order: &str, at: &str, expected: &str, lines: &[(&str, u32)]) -> OutRecord {
    event(
        id,
        "purchase_order",
        at,
        serde_json::json!({"order_id": order, "expected_at": expected}),
        lines,
    )
}

fn receipt(id: &str, order: Option<&str>, at: &str, lines: &[(&str, u32)]) -> OutRecord {
    let extra = match order {
        Some(o) => serde_json::json!({ "order_id": o }),
        None => serde_json::json!({}),
    };
    event(id, "receipt", at, extra, lines)
}

/// Orders placed and amended (a first batch), then what comes of them (a second).
fn scenario() -> (Vec<OutRecord>, Vec<OutRecord>) {
    let placed = vec![
        event(
            "count",
            "stock_count",
            "2026-11-02T07:00:00Z",
            serde_json::json!({}),
            &[("A", 20), ("B", 20), ("C", 20), ("D", 20)],
        ),
        po(
            "a1",
            "PO-A",
            "2026-11-02T20:00:00Z",
            "2026-11-04T06:00:00Z",
            &[("A", 10), ("B", 5), ("C", 4)],
        ),
        // the amendment: A down to 8, B cancelled, C left out (cancelled too)
        po(
            "a2",
            "PO-A",
            "2026-11-02T22:00:00Z",
            "2026-11-04T08:00:00Z",
            &[("A", 8), ("B", 0)],
        ),
        po(
            "b1",
            "PO-B",
            "2026-11-02T21:00:00Z",
            "2026-11-05T06:00:00Z",
            &[("A", 6)],
        ),
        po(
            "c1",
            "PO-C",
            "2026-11-03T20:00:00Z",
            "2026-11-06T06:00:00Z",
            &[("D", 12)],
        ),
    ];
    let came = vec![
        // PO-A comes short: the line closes
        receipt("r1", Some("PO-A"), "2026-11-04T08:30:00Z", &[("A", 6)]),
        // PO-B a day late, in full
        receipt("r2", Some("PO-B"), "2026-11-06T07:00:00Z", &[("A", 6)]),
        // a delivery no order names: stock moves, no order closes
        receipt("r3", None, "2026-11-04T09:00:00Z", &[("B", 3)]),
        // a receipt naming an order that never arrived
        receipt("r4", Some("PO-X"), "2026-11-04T09:30:00Z", &[("D", 2)]),
    ];
    (placed, came)
}

type Lines = BTreeMap<(String, String), (Decimal, Decimal, String)>;

/// (order, sku) → (quantity, received, status) of every purchase order line.
async fn order_lines(url: &str) -> Lines {
    let sql = "SELECT o.order_id, p.sku, CAST(o.quantity AS TEXT), CAST(o.received_quantity AS TEXT), o.status
               FROM purchase_order_line o JOIN dim_product p ON p.product_key = o.product_key";
    let rows: Vec<(String, String, String, String, String)> =
        if let Some(path) = url.strip_prefix("sqlite://") {
            let c = rusqlite::Connection::open(path).expect("open");
            let mut s = c.prepare(sql).expect("prepare");
            s.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
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
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect()
        };
    let d = |s: &str| s.parse::<Decimal>().expect("decimal").normalize();
    rows.into_iter()
        .map(|(o, sku, q, r, st)| ((o, sku), (d(&q), d(&r), st)))
        .collect()
}

/// stock_level.on_order per SKU.
async fn on_order(gold: &stocklake_model::Gold) -> BTreeMap<String, Decimal> {
    let skus: HashMap<i32, String> = gold
        .load()
        .await
        .expect("load")
        .products
        .iter()
        .map(|p| (p.product_key, p.sku.clone()))
        .collect();
    all_levels(gold)
        .await
        .iter()
        .map(|l| (skus[&l.product_key].clone(), l.on_order.normalize()))
        .collect()
}

fn want(rows: &[(&str, &str, u32, u32, &str)]) -> Lines {
    rows.iter()
        .map(|(o, sku, q, r, st)| {
            (
                (o.to_string(), sku.to_string()),
                (Decimal::from(*q), Decimal::from(*r), st.to_string()),
            )
        })
        .collect()
}

fn amounts(v: &[(&str, u32)]) -> BTreeMap<String, Decimal> {
    v.iter()
        .map(|(s, q)| (s.to_string(), Decimal::from(*q)))
        .collect()
}

/// The lines once every event of the scenario has arrived, in whatever order.
fn settled() -> Lines {
    want(&[
        ("PO-A", "A", 8, 6, "short"),
        ("PO-A", "B", 0, 0, "cancelled"),
        ("PO-A", "C", 0, 0, "cancelled"),
        ("PO-B", "A", 6, 6, "received"),
        ("PO-C", "D", 12, 0, "open"),
        ("PO-X", "D", 0, 2, "awaiting_order"),
    ])
}

async fn in_order(url: &str) {
    let (placed, came) = scenario();
    let mut lake = Lake::new();
    lake.put(&placed).await;
    lake.refine().await;
    let mut model = lake.model(url).await;
    model.drain().await.expect("model");
    assert_eq!(
        order_lines(url).await,
        want(&[
            ("PO-A", "A", 8, 0, "open"),
            ("PO-A", "B", 0, 0, "cancelled"),
            ("PO-A", "C", 0, 0, "cancelled"),
            ("PO-B", "A", 6, 0, "open"),
            ("PO-C", "D", 12, 0, "open"),
        ])
    );
    assert_eq!(
        on_order(model.gold()).await,
        amounts(&[("A", 14), ("B", 0), ("C", 0), ("D", 12)])
    );
    // orders move no stock
    assert_eq!(
        gold_on_hand(model.gold()).await,
        lake.on_hand_from_silver().await
    );

    lake.put(&came).await;
    lake.refine().await;
    model.drain().await.expect("model");
    let done = settled();
    assert_eq!(order_lines(url).await, done);
    let settled = amounts(&[("A", 0), ("B", 0), ("C", 0), ("D", 12)]);
    assert_eq!(on_order(model.gold()).await, settled);
    assert_eq!(
        gold_on_hand(model.gold()).await,
        lake.on_hand_from_silver().await
    );

    // a restarted model reads the open orders back from gold: a receipt for PO-C still closes it
    drop(model);
    let mut model = lake.model(url).await;
    lake.put(&[receipt(
        "r5",
        Some("PO-C"),
        "2026-11-06T06:30:00Z",
        &[("D", 12)],
    )])
    .await;
    lake.refine().await;
    model.drain().await.expect("model");
    assert_eq!(
        order_lines(url).await[&("PO-C".to_string(), "D".to_string())],
        (Decimal::from(12), Decimal::from(12), "received".to_string())
    );
    assert_eq!(on_order(model.gold()).await["D"], Decimal::ZERO);
}

/// Every event in a shuffled order, in three batches: the same lines and on-order as in order.
async fn shuffled(url_of: impl Fn(&Lake, u64) -> String) {
    let (placed, came) = scenario();
    let all: Vec<OutRecord> = placed.into_iter().chain(came).collect();
    for seed in 1..=3u64 {
        let mut records = all.clone();
        records.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let mut lake = Lake::new();
        let url = url_of(&lake, seed);
        let mut model = lake.model(&url).await;
        for chunk in records.chunks(3) {
            lake.put(chunk).await;
            lake.refine().await;
            model.drain().await.expect("model");
        }
        assert_eq!(order_lines(&url).await, settled(), "seed {seed}");
        assert_eq!(
            on_order(model.gold()).await,
            amounts(&[("A", 0), ("B", 0), ("C", 0), ("D", 12)]),
            "seed {seed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_keeps_purchase_orders() {
    let lake = Lake::new();
    in_order(&lake.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_orders_do_not_depend_on_arrival_order() {
    shuffled(|lake, _| lake.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_keeps_purchase_orders() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    in_order(&pg.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_orders_do_not_depend_on_arrival_order() {
    // a database of its own for each shuffle
    let mut dbs = Vec::new();
    for _ in 0..3 {
        match stocklake_testkit::postgres().await {
            Some(db) => dbs.push(db),
            None => return,
        }
    }
    let urls: Vec<String> = dbs.iter().map(|d| d.url.clone()).collect();
    shuffled(|_, seed| urls[(seed - 1) as usize].clone()).await;
}
