use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
use rust_decimal::Decimal;
use stocklake_event::EventType;
use stocklake_ingest::{BronzeWriter, PendingRecord};
use stocklake_model::rows::LevelRow;
use stocklake_model::{Gold, Model, ModelConfig};
use stocklake_refine::{RefineConfig, Refiner};
use stocklake_silver::read::{active_files, read_files};
use stocklake_silver::tables::{POS_EVENT_LINES, open_or_create};
use stocklake_simulate::OutRecord;
use stocklake_storage::bronze::Source;
use stocklake_storage::{AwsOptions, Location};

pub struct Lake {
    pub dir: tempfile::TempDir,
    pub bronze: Location,
    pub silver: Location,
    writer: BronzeWriter,
    seq: u64,
}

impl Lake {
    pub fn new() -> Lake {
        let dir = tempfile::tempdir().expect("tempdir");
        let bronze = Location::Local(dir.path().join("bronze"));
        let silver = Location::Local(dir.path().join("silver"));
        let writer = BronzeWriter::open(&bronze, &AwsOptions::default()).expect("writer");
        Lake {
            dir,
            bronze,
            silver,
            writer,
            seq: 0,
        }
    }

    pub async fn put(&mut self, records: &[OutRecord]) {
        for chunk in records.chunks(400) {
            let pending: Vec<PendingRecord> = chunk
                .iter()
                .map(|r| {
                    self.seq += 1;
                    PendingRecord {
                        sequence: self.seq.to_string(),
                        arrived_at: Utc::now(),
                        payload: Bytes::from(r.bytes.clone()),
                    }
                })
                .collect();
            self.writer
                .write(&Source::Http, "h1", &pending)
                .await
                .expect("bronze");
        }
    }

    pub async fn refine(&self) {
        let mut r = Refiner::open(RefineConfig::new(
            self.bronze.clone(),
            self.silver.clone(),
            AwsOptions::default(),
        ))
        .await
        .expect("refiner");
        r.scan().await.expect("scan");
        r.drain().await.expect("refine");
    }

    pub fn sqlite_url(&self) -> String {
        self.sqlite_url_of("gold.db")
    }

    /// A SQLite gold database of its own in the lake's directory.
    pub fn sqlite_url_of(&self, file: &str) -> String {
        format!("sqlite://{}", self.dir.path().join(file).display())
    }

    pub async fn model(&self, url: &str) -> Model {
        self.model_with(url, |_| {}).await
    }

    /// A model whose configuration `change` has altered.
    pub async fn model_with(&self, url: &str, change: impl FnOnce(&mut ModelConfig)) -> Model {
        let gold = Gold::connect(url).await.expect("gold");
        let mut config = ModelConfig::new(self.silver.clone(), AwsOptions::default());
        change(&mut config);
        Model::open(config, gold).await.expect("model")
    }

    /// Every line of silver's `pos_event_lines`, with the columns the checks here compute from.
    pub async fn silver_lines(&self) -> Vec<SilverLine> {
        let t = open_or_create(&self.silver, &AwsOptions::default(), POS_EVENT_LINES)
            .await
            .expect("lines");
        let files = active_files(&t).await.expect("files");
        let mut out = Vec::new();
        for (_, batches) in read_files(t.object_store(), &files, None)
            .await
            .expect("read")
        {
            for b in &batches {
                let text = |c: &str| b.column_by_name(c).expect("column").as_string::<i32>();
                let (id, store, sku, kind) = (
                    text("event_id"),
                    text("store_id"),
                    text("sku"),
                    text("event_type"),
                );
                let time = b
                    .column_by_name("event_time")
                    .expect("column")
                    .as_primitive::<TimestampMicrosecondType>();
                let qty = b
                    .column_by_name("quantity")
                    .expect("column")
                    .as_primitive::<Decimal128Type>();
                out.extend((0..b.num_rows()).map(|i| SilverLine {
                    event_id: id.value(i).to_string(),
                    store_id: store.value(i).to_string(),
                    sku: sku.value(i).to_string(),
                    event_type: kind.value(i).parse().expect("type"),
                    event_time: time.value(i),
                    quantity: Decimal::from_i128_with_scale(qty.value(i), 3),
                }));
            }
        }
        out
    }

    /// On hand per (store, sku) by docs/contract.md §2, computed from silver alone.
    pub async fn on_hand_from_silver(&self) -> BTreeMap<(String, String), Decimal> {
        #[derive(Default)]
        struct K {
            count: Option<(i64, Decimal)>,
            moves: Vec<(i64, Decimal)>,
        }
        let mut keys: HashMap<(String, String), K> = HashMap::new();
        for l in self.silver_lines().await {
            let (t, q) = (l.event_time, l.quantity);
            if !l.event_type.moves_stock() {
                continue;
            }
            let k = keys.entry((l.store_id, l.sku)).or_default();
            match l.event_type.stock_delta(q) {
                Some(d) => k.moves.push((t, d)),
                None => {
                    if k.count.is_none_or(|(ct, cq)| t > ct || (t == ct && q > cq)) {
                        k.count = Some((t, q));
                    }
                }
            }
        }
        keys.into_iter()
            .map(|(key, k)| {
                let (since, c) = k.count.unwrap_or((i64::MIN, Decimal::ZERO));
                let sum: Decimal = k
                    .moves
                    .iter()
                    .filter(|(t, _)| *t > since)
                    .map(|(_, d)| *d)
                    .sum();
                (key, c + sum)
            })
            .collect()
    }

    /// Units sold (returns negative) and sale or return events per hour (UTC) of the whole
    /// chain, computed from silver alone, with the hour written as `/v1/sales/velocity` writes it.
    pub async fn sales_by_hour_from_silver(&self) -> BTreeMap<String, (Decimal, usize)> {
        let mut hours: BTreeMap<String, (Decimal, HashSet<String>)> = BTreeMap::new();
        for l in self.silver_lines().await {
            let sign = match l.event_type {
                EventType::Sale => Decimal::ONE,
                EventType::Return => Decimal::NEGATIVE_ONE,
                _ => continue,
            };
            let at = DateTime::from_timestamp_micros(l.event_time).expect("time");
            let h = hours
                .entry(at.format("%Y-%m-%dT%H:00:00Z").to_string())
                .or_default();
            h.0 += sign * l.quantity;
            h.1.insert(l.event_id);
        }
        hours
            .into_iter()
            .map(|(h, (units, events))| (h, (units.normalize(), events.len())))
            .collect()
    }
}

/// A line of silver, as the checks here read it.
pub struct SilverLine {
    pub event_id: String,
    pub store_id: String,
    pub sku: String,
    pub event_type: EventType,
    /// Microseconds since the epoch.
    pub event_time: i64,
    pub quantity: Decimal,
}

/// The whole chain's sales per hour as `/v1/sales/velocity` reads them from gold, every hour
/// there is; the same form as `Lake::sales_by_hour_from_silver`.
pub async fn sales_by_hour(gold: &Gold) -> BTreeMap<String, (Decimal, usize)> {
    stocklake_model::queries::sales_velocity(gold, None, 24 * 60)
        .await
        .expect("velocity")
        .iter()
        .map(|r| {
            let units: Decimal = match &r["units"] {
                serde_json::Value::String(s) => s.parse().expect("units"),
                other => other.to_string().parse().expect("units"),
            };
            (
                r["hour"].as_str().expect("hour").to_string(),
                (
                    units.normalize(),
                    r["sales"].as_u64().expect("sales") as usize,
                ),
            )
        })
        .collect()
}

/// Every stock level, read page by page as the model reads them (small pages, so that the
/// page boundaries are crossed).
pub async fn all_levels(gold: &Gold) -> Vec<LevelRow> {
    let mut out: Vec<LevelRow> = Vec::new();
    let mut after = (i32::MIN, i32::MIN);
    loop {
        let page = gold.levels_after(after, 7).await.expect("levels");
        let Some(last) = page.last() else { break };
        after = (last.store_key, last.product_key);
        out.extend(page);
    }
    let mut keys: Vec<(i32, i32)> = out.iter().map(|l| (l.store_key, l.product_key)).collect();
    keys.dedup();
    assert_eq!(keys.len(), out.len(), "a page repeated a key");
    assert!(keys.is_sorted(), "pages out of key order");
    out
}

/// stock_level.on_hand per (store, sku), read back from gold.
pub async fn gold_on_hand(gold: &Gold) -> BTreeMap<(String, String), Decimal> {
    let l = gold.load().await.expect("load");
    let stores: HashMap<i32, String> = l
        .stores
        .iter()
        .map(|s| (s.store_key, s.store_id.clone()))
        .collect();
    let skus: HashMap<i32, String> = l
        .products
        .iter()
        .map(|p| (p.product_key, p.sku.clone()))
        .collect();
    all_levels(gold)
        .await
        .iter()
        .map(|lv| {
            (
                (stores[&lv.store_key].clone(), skus[&lv.product_key].clone()),
                lv.on_hand,
            )
        })
        .collect()
}

#[allow(dead_code)]
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

/// The closing on hand of each key's latest daily row.
pub async fn latest_closing(gold: &Gold) -> BTreeMap<(String, String), Decimal> {
    let l = gold.load().await.expect("load");
    let stores: HashMap<i32, String> = l
        .stores
        .iter()
        .map(|s| (s.store_key, s.store_id.clone()))
        .collect();
    let skus: HashMap<i32, String> = l
        .products
        .iter()
        .map(|p| (p.product_key, p.sku.clone()))
        .collect();
    let keys: Vec<(i32, i32)> = all_levels(gold)
        .await
        .iter()
        .map(|lv| (lv.store_key, lv.product_key))
        .collect();
    let mut out = BTreeMap::new();
    for row in gold.daily_rows(keys, 0).await.expect("daily") {
        // rows come in date order per key: the last one wins
        out.insert(
            (
                stores[&row.store_key].clone(),
                skus[&row.product_key].clone(),
            ),
            row.closing_on_hand,
        );
    }
    out
}

/// The counts that the batches keep (`queries::counts`: movements, sales lines, alerts) are
/// the tables' rows, counted one by one; returns the first two.
pub async fn kept_counts_are_exact(gold: &Gold) -> (i64, i64) {
    use stocklake_model::queries::{count_rows, counts};
    let c = counts(gold).await.expect("counts");
    let kept = |k: &str| c[k].as_i64().unwrap_or(-1);
    let movements = count_rows(gold, "fact_inventory_movement")
        .await
        .expect("count");
    let sales = count_rows(gold, "fact_sales").await.expect("count");
    assert_eq!(kept("movements"), movements, "movements");
    assert_eq!(kept("sales_lines"), sales, "sales lines");
    let alerts = count_rows(gold, "stock_alert").await.expect("count");
    assert_eq!(kept("alerts"), alerts, "alerts");
    (movements, sales)
}
