//! Silver → gold, one transaction per batch.
//!
//! A batch takes the silver versions after the gold checkpoint, updates dimensions (type-2
//! history for price and category), loads the facts, moves each touched store × SKU's stock
//! (docs/contract.md §2, whatever the arrival order), corrects the daily snapshot for late events,
//! closes store days (learning demand), evaluates alerts, and writes all of it with the new
//! checkpoint in one database transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use deltalake::DeltaTable;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use stocklake_event::EventType;
use stocklake_silver::tables::{POS_EVENT_LINES, PRODUCTS, STORES, SUPPLIERS, open_or_create};
use stocklake_stock::{AlertType, Days, RuleConfig, Supply, alpha};
use stocklake_storage::{AwsOptions, Location};
use stocklake_telemetry as metrics;

use crate::ModelError;
use crate::db::Gold;
use crate::key::{
    DayClose, DayKeys, KeyLine, Look, Shelf, Transition, apply_to_row, decimal_f64, outbox_row,
};
use crate::master::{read_products, read_stores, read_suppliers};
use crate::orders::{OrderBook, line_row};
use crate::rows::*;
use crate::silver::{SilverLine, latest_version, lines_between};
use crate::state::*;

/// Settings of the model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub silver: Location,
    pub aws: AwsOptions,
    pub rules: RuleConfig,
    pub half_life_days: f64,
    pub default_lead_time_days: u32,
    pub default_service_level: f64,
    /// Most silver versions loaded in one gold transaction.
    pub max_versions_per_batch: u64,
    /// A batch takes no further silver version once it holds this many lines: a backlog (the
    /// demo's history, a restart behind a bulk load) reaches gold, the API and the dashboard
    /// in steps of a few seconds each instead of one transaction of minutes.
    pub max_lines_per_batch: u64,
    /// A key that time alone can change (demand history, a delivery rhythm, open alerts) is
    /// looked at again this long (store time) after its last look, for the alerts that time
    /// alone can raise (projected stock-out, phantom stock). Each key keeps its own due
    /// time, so a batch never walks a whole store's keys except when the store closes a day.
    pub evaluate_every: Duration,
}

impl ModelConfig {
    /// A product's lead time in days: its own, or the default when the master has none.
    pub fn lead_time_days(&self, product: Option<i32>) -> u32 {
        product
            .map(|d| d.max(0) as u32)
            .unwrap_or(self.default_lead_time_days)
    }

    pub fn new(silver: Location, aws: AwsOptions) -> ModelConfig {
        ModelConfig {
            silver,
            aws,
            rules: RuleConfig::default(),
            half_life_days: 14.0,
            default_lead_time_days: 2,
            default_service_level: 0.95,
            max_versions_per_batch: 64,
            max_lines_per_batch: 200_000,
            evaluate_every: Duration::minutes(30),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct ModelReport {
    pub from_version: u64,
    pub to_version: u64,
    pub lines: usize,
    pub keys_touched: usize,
    pub keys_evaluated: usize,
    pub alerts_opened: usize,
    pub alerts_resolved: usize,
    pub days_closed: usize,
    pub late_lines: usize,
    pub master_changes: usize,
    /// The latest bronze arrival time among the batch's lines.
    pub max_arrived_at: Option<DateTime<Utc>>,
    pub seconds: f64,
}

/// Stock levels read per query when the state is loaded.
const LEVEL_PAGE: i64 = 50_000;

/// The input of one batch: the silver lines of versions `from..=to` in event-time order, and
/// the checkpoint consuming them writes (none when silver has nothing new).
#[derive(Debug)]
struct Increment {
    from: u64,
    to: u64,
    lines: Vec<SilverLine>,
    checkpoint: Option<CheckpointRow>,
}

/// Which lines of an increment a batch applies.
enum Lines<'a> {
    All,
    /// Those marked, the rest set aside as these dead letters.
    Only(&'a [bool], Vec<DeadLetterRow>),
}

/// What becomes of a batch's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Commit,
    /// Written in a transaction that is rolled back: does gold take it?
    Trial,
}

/// What a batch gathers as it applies its lines.
#[derive(Debug, Default)]
struct Batch {
    /// The keys the batch moved.
    touched: BTreeSet<Key>,
    /// Keys whose row of the store's current day changed.
    today_dirty: HashSet<Key>,
    /// Rows of the daily snapshot to write, by (store, product, date).
    daily_out: HashMap<(i32, i32, i32), DailyRow>,
    /// Movements of days already closed.
    late: Vec<LateMove>,
    /// Each key's movements in this batch: (time, change to on hand).
    moves: HashMap<Key, Vec<(DateTime<Utc>, Decimal)>>,
    /// Orders a line of the batch placed, amended or received against.
    orders: BTreeSet<(StoreKey, String)>,
}

/// A movement of a day already closed, to correct in the daily snapshot.
#[derive(Debug, Clone)]
struct LateMove {
    key: Key,
    date: NaiveDate,
    time: DateTime<Utc>,
    event_type: EventType,
    quantity: Decimal,
    delta: Decimal,
}

/// Whose lead time a product's orders teach: its supplier's, or, with no supplier known, its own.
fn lead_key(p: &ProductRow) -> String {
    match &p.supplier_id {
        Some(id) => id.clone(),
        None => format!("sku:{}", p.sku),
    }
}

/// The silver → gold stage.
pub struct Model {
    cfg: ModelConfig,
    gold: Gold,
    lines: DeltaTable,
    products_table: DeltaTable,
    stores_table: DeltaTable,
    suppliers_table: DeltaTable,
    stores: HashMap<StoreKey, StoreState>,
    /// `dim_supplier` by supplier id.
    suppliers: HashMap<String, SupplierRow>,
    /// The stores' purchase orders.
    orders: OrderBook,
    store_ids: HashMap<String, StoreKey>,
    skus: Skus,
    /// Boxed: a map of a million keys sits at half its capacity after growing, and the
    /// growth itself holds the old and the new table at once; boxes keep both small.
    keys: HashMap<Key, Box<KeyState>>,
    dates: HashSet<i32>,
    checkpoints: HashMap<String, CheckpointRow>,
    next_alert_id: i64,
    next_outbox_id: i64,
    next_product_key: i32,
    next_store_key: i32,
    /// `dim_payment_method` and `dim_client_type` by name.
    payment_methods: Members,
    client_types: Members,
    open_alerts: BTreeMap<AlertType, i64>,
    dirty: bool,
}

/// The members of a small dimension by name (its "unknown" member is key 0).
#[derive(Debug, Default)]
struct Members {
    keys: HashMap<String, i32>,
    next: i32,
}

impl Members {
    fn load(rows: Vec<(i32, String)>) -> Members {
        let next = rows.iter().map(|(k, _)| *k).max().unwrap_or(0) + 1;
        Members {
            keys: rows.into_iter().map(|(k, n)| (n, k)).collect(),
            next,
        }
    }

    /// The key of `name` (0, "unknown", when absent), a new member written to `new` when met
    /// for the first time.
    fn key(&mut self, name: Option<&str>, new: &mut Vec<(i32, String)>) -> i32 {
        let Some(name) = name else { return 0 };
        if let Some(k) = self.keys.get(name) {
            return *k;
        }
        let k = self.next;
        self.next += 1;
        self.keys.insert(name.to_string(), k);
        new.push((k, name.to_string()));
        k
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("stores", &self.stores.len())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Model {
    /// Connects to gold (migrating it) and silver, and loads the state.
    pub async fn open(cfg: ModelConfig, gold: Gold) -> Result<Model, ModelError> {
        gold.migrate().await?;
        let silver = |name: &'static str| {
            let cfg = cfg.clone();
            async move {
                open_or_create(&cfg.silver, &cfg.aws, name)
                    .await
                    .map_err(ModelError::silver_table)
            }
        };
        let lines = silver(POS_EVENT_LINES).await?;
        let products_table = silver(PRODUCTS).await?;
        let stores_table = silver(STORES).await?;
        let suppliers_table = silver(SUPPLIERS).await?;
        let mut m = Model {
            cfg,
            gold,
            lines,
            products_table,
            stores_table,
            suppliers_table,
            stores: HashMap::new(),
            suppliers: HashMap::new(),
            orders: OrderBook::default(),
            store_ids: HashMap::new(),
            skus: Skus::default(),
            keys: HashMap::new(),
            dates: HashSet::new(),
            checkpoints: HashMap::new(),
            next_alert_id: 1,
            next_outbox_id: 1,
            next_product_key: 1,
            next_store_key: 1,
            payment_methods: Members::default(),
            client_types: Members::default(),
            open_alerts: BTreeMap::new(),
            dirty: true,
        };
        m.reload().await?;
        Ok(m)
    }

    pub fn gold(&self) -> &Gold {
        &self.gold
    }

    /// Keys (store × SKU) held in memory.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The silver version gold has consumed.
    pub fn checkpoint(&self) -> Option<i64> {
        self.checkpoints
            .get(POS_EVENT_LINES)
            .map(|c| c.silver_version)
    }

    /// Rebuilds the in-memory state from gold.
    pub async fn reload(&mut self) -> Result<(), ModelError> {
        self.gold.ensure_epoch().await?;
        let l = self.gold.load().await?;
        self.stores.clear();
        self.store_ids.clear();
        self.skus = Skus::default();
        self.keys.clear();
        self.open_alerts.clear();
        for s in l.stores {
            self.store_ids
                .insert(s.store_id.clone(), StoreKey(s.store_key));
            let tz = parse_tz(&s.timezone);
            self.stores
                .insert(StoreKey(s.store_key), StoreState::new(s, tz, false));
        }
        for st in l.store_states {
            if let Some(s) = self.stores.get_mut(&StoreKey(st.store_key)) {
                s.clock = st.clock;
                s.local_date = st.local_date.and_then(key_date);
                if let Ok(extra) = serde_json::from_value::<StoreExtra>(st.state) {
                    s.extra = extra;
                }
            }
        }
        for p in l.products {
            self.skus.insert(p);
        }
        // stock levels page by page: at a million keys, the rows never sit in memory twice
        let mut after = (i32::MIN, i32::MIN);
        loop {
            let page = self.gold.levels_after(after, LEVEL_PAGE).await?;
            let full = page.len() as i64 == LEVEL_PAGE;
            for lv in &page {
                after = (lv.store_key, lv.product_key);
                let Some(sku) = self.skus.of_key(lv.product_key) else {
                    continue;
                };
                let store = StoreKey(lv.store_key);
                self.keys
                    .insert(Key::new(store, sku), Box::new(KeyState::from_level(lv)));
                if let Some(s) = self.stores.get_mut(&store) {
                    s.skus.push(sku);
                }
            }
            if !full {
                break;
            }
        }
        for a in &l.open_alerts {
            let Some(sku) = self.skus.of_key(a.product_key) else {
                continue;
            };
            let key = Key::new(StoreKey(a.store_key), sku);
            if let (Some(k), Some(o)) = (self.keys.get_mut(&key), open_state(a)) {
                *self.open_alerts.entry(o.alert.alert_type).or_default() += 1;
                k.alerts.push(o);
            }
        }
        self.suppliers = l
            .suppliers
            .into_iter()
            .map(|s| (s.supplier_id.clone(), s))
            .collect();
        self.load_orders(l.order_lines);
        // today's daily rows
        let days: Vec<(StoreKey, i32)> = self
            .stores
            .iter()
            .filter_map(|(store, s)| s.local_date.map(|d| (*store, date_key(d))))
            .collect();
        for (store, dk) in days {
            for row in self.gold.daily_rows_of_day(store.0, dk).await? {
                if let Some(sku) = self.skus.of_key(row.product_key)
                    && let Some(k) = self.keys.get_mut(&Key::new(store, sku))
                {
                    k.today = Some(Box::new(row));
                }
            }
        }
        // every key that time alone can change is due again one period after its store's
        // clock (when it was last looked at is not kept)
        let every = self.cfg.evaluate_every;
        for (key, k) in self.keys.iter_mut() {
            if let Some(s) = self.stores.get_mut(&key.store)
                && let Some(clock) = s.clock
                && k.timed(self.cfg.rules.min_history_days)
            {
                k.due = Some(clock + every);
                s.due.insert((clock + every, key.sku));
            }
        }
        self.dates = l.date_keys.into_iter().collect();
        self.checkpoints = l
            .checkpoints
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        self.next_alert_id = l.max_alert_id + 1;
        self.next_outbox_id = l.max_outbox_id + 1;
        self.next_product_key = l.max_product_key + 1;
        self.next_store_key = l.max_store_key + 1;
        self.payment_methods = Members::load(l.payment_methods);
        self.client_types = Members::load(l.client_types);
        for t in AlertType::ALL {
            metrics::OPEN_ALERTS
                .with_label_values(&[t.as_str()])
                .set(self.open_alerts.get(&t).copied().unwrap_or(0));
        }
        self.dirty = false;
        Ok(())
    }

    /// The order book from gold's open orders, and each key's open lines.
    fn load_orders(&mut self, rows: Vec<OrderLineRow>) {
        self.orders = OrderBook::default();
        let rows: Vec<_> = rows
            .into_iter()
            .filter_map(|r| Some((StoreKey(r.store_key), self.skus.of_key(r.product_key)?, r)))
            .collect();
        let keyed: BTreeSet<Key> = rows.iter().map(|(s, k, _)| Key::new(*s, *k)).collect();
        self.orders.load(rows);
        for key in keyed {
            let open = self.orders.open_for(key.store, key.sku);
            if let Some(k) = self.keys.get_mut(&key) {
                k.orders = open;
            }
        }
    }

    /// Whether silver holds versions gold has not consumed.
    pub async fn pending(&mut self) -> Result<u64, ModelError> {
        let done = self.checkpoint().unwrap_or(0).max(0) as u64;
        let latest = latest_version(&mut self.lines, done).await?;
        Ok(latest.saturating_sub(done))
    }

    /// Runs batches until gold has consumed all of silver.
    pub async fn drain(&mut self) -> Result<Vec<ModelReport>, ModelError> {
        let mut out = Vec::new();
        while let Some(r) = self.run_batch().await? {
            out.push(r);
        }
        Ok(out)
    }

    /// One batch; `None` when there is nothing new.
    ///
    /// A batch gold rejects for its data (a value out of a column's range, a constraint:
    /// [`ModelError::Rejected`]) is tried once more from gold's state; rejected again, the lines
    /// that cause it are isolated by bisection — trial transactions that are rolled back — and
    /// the batch commits without them, those lines set aside in `gold_dead_letter` with the
    /// error. One bad line never stops gold. Every other error (a lost connection, silver that
    /// cannot be read) fails the batch, to be retried with backoff.
    pub async fn run_batch(&mut self) -> Result<Option<ModelReport>, ModelError> {
        if self.dirty {
            self.reload().await?;
        }
        let r = self.run_increment().await;
        match &r {
            Ok(Some(_)) => metrics::STAGE_RUNS
                .with_label_values(&["model", "ok"])
                .inc(),
            Ok(None) => {}
            Err(_) => {
                self.dirty = true;
                metrics::STAGE_RUNS
                    .with_label_values(&["model", "error"])
                    .inc();
            }
        }
        r
    }

    async fn run_increment(&mut self) -> Result<Option<ModelReport>, ModelError> {
        let inc = self.increment().await?;
        let first = match self.process(&inc, &Lines::All, Write::Commit).await {
            Err(e) if e.is_rejected() => e,
            other => return other,
        };
        tracing::warn!(error = %first, from = inc.from, to = inc.to, "gold rejected a batch; trying it once more");
        self.reload().await?;
        let second = match self.process(&inc, &Lines::All, Write::Commit).await {
            Err(e) if e.is_rejected() => e,
            other => return other,
        };
        self.isolate(&inc, second).await
    }

    /// Finds the lines of `inc` that gold rejects (`rejected` is the batch's error), and commits
    /// the batch without them, setting them aside.
    async fn isolate(
        &mut self,
        inc: &Increment,
        rejected: ModelError,
    ) -> Result<Option<ModelReport>, ModelError> {
        let n = inc.lines.len();
        let none = vec![false; n];
        if self.trial(inc, &none).await?.is_some() {
            // not the lines: master data or the state itself; nothing to set aside
            return Err(rejected);
        }
        let mut poison: Vec<(usize, String)> = Vec::new();
        let mut base = none;
        let mut trials = 0usize;
        self.bisect(
            inc,
            &mut base,
            (0..n).collect(),
            rejected.to_string(),
            &mut poison,
            &mut trials,
        )
        .await?;
        tracing::warn!(
            lines = poison.len(),
            trials,
            from = inc.from,
            to = inc.to,
            "gold rejected lines of a batch: they are set aside in gold_dead_letter, the rest goes on"
        );
        let keep: Vec<bool> = {
            let mut k = vec![true; n];
            poison.iter().for_each(|(i, _)| k[*i] = false);
            k
        };
        let now = Utc::now();
        let dead: Vec<DeadLetterRow> = poison
            .iter()
            .map(|(i, why)| {
                let l = &inc.lines[*i];
                DeadLetterRow {
                    event_id: l.event_id.clone(),
                    line_no: l.line_no,
                    event_type: l.event_type.as_str().to_string(),
                    event_time: l.event_time,
                    store_id: l.store_id.clone(),
                    sku: l.sku.clone(),
                    quantity: l.quantity.normalize().to_string(),
                    unit_price: l.unit_price.map(|d| d.normalize().to_string()),
                    discount: l.discount.map(|d| d.normalize().to_string()),
                    silver_version: inc.to as i64,
                    error: why.clone(),
                    dead_at: now,
                }
            })
            .collect();
        self.reload().await?;
        let r = self
            .process(inc, &Lines::Only(&keep, dead), Write::Commit)
            .await?;
        metrics::DEAD_LETTERS.inc_by(poison.len() as u64);
        Ok(r)
    }

    /// The lines of `cand` that gold rejects, into `poison`, with the error of a trial that
    /// failed with each. On entry `base` (lines kept) passes and `base ∪ cand` fails with `why`;
    /// on return `base` holds every line of `cand` that is not poison, and passes.
    fn bisect<'a>(
        &'a mut self,
        inc: &'a Increment,
        base: &'a mut Vec<bool>,
        cand: Vec<usize>,
        why: String,
        poison: &'a mut Vec<(usize, String)>,
        trials: &'a mut usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ModelError>> + Send + 'a>>
    {
        Box::pin(async move {
            if cand.len() <= 1 {
                poison.extend(cand.into_iter().map(|i| (i, why.clone())));
                return Ok(());
            }
            let (a, b) = cand.split_at(cand.len() / 2);
            let mut with_a = base.clone();
            a.iter().for_each(|&i| with_a[i] = true);
            *trials += 1;
            match self.trial(inc, &with_a).await? {
                None => {
                    // base ∪ a passes, so base ∪ a ∪ b (all of cand) is what fails
                    *base = with_a;
                    self.bisect(inc, base, b.to_vec(), why, poison, trials)
                        .await
                }
                Some(e) => {
                    self.bisect(inc, base, a.to_vec(), e.to_string(), poison, trials)
                        .await?;
                    // what of a passes is in base now; b's fate with it is unknown
                    let mut with_b = base.clone();
                    b.iter().for_each(|&i| with_b[i] = true);
                    *trials += 1;
                    match self.trial(inc, &with_b).await? {
                        None => {
                            *base = with_b;
                            Ok(())
                        }
                        Some(e) => {
                            self.bisect(inc, base, b.to_vec(), e.to_string(), poison, trials)
                                .await
                        }
                    }
                }
            }
        })
    }

    /// Runs `inc` with only the lines `keep` marks in a transaction that is rolled back: the
    /// error gold gave, if it rejected them. The state is rebuilt after.
    async fn trial(
        &mut self,
        inc: &Increment,
        keep: &[bool],
    ) -> Result<Option<ModelError>, ModelError> {
        self.reload().await?;
        let r = self
            .process(inc, &Lines::Only(keep, Vec::new()), Write::Trial)
            .await;
        self.dirty = true;
        match r {
            Ok(_) => Ok(None),
            Err(e) if e.is_rejected() => Ok(Some(e)),
            Err(e) => Err(e),
        }
    }

    /// The silver lines after the checkpoint, within the batch bounds, in event-time order.
    async fn increment(&mut self) -> Result<Increment, ModelError> {
        let done = self.checkpoint().unwrap_or(0).max(0) as u64;
        let latest = latest_version(&mut self.lines, done).await?;
        let mut inc = Increment {
            from: done + 1,
            to: done,
            lines: Vec::new(),
            checkpoint: None,
        };
        if latest > done {
            let cap = latest.min(done + self.cfg.max_versions_per_batch.max(1));
            let (to, taken) =
                lines_between(&self.lines, done + 1, cap, self.cfg.max_lines_per_batch).await?;
            let prev = self.checkpoints.get(POS_EVENT_LINES);
            inc.checkpoint = Some(CheckpointRow {
                name: POS_EVENT_LINES.into(),
                silver_version: to as i64,
                batch: prev.map_or(0, |c| c.batch) + 1,
                lines: prev.map_or(0, |c| c.lines) + taken.len() as i64,
            });
            inc.to = to;
            inc.lines = taken;
        }
        inc.lines.sort_by(|a, b| {
            (a.event_time, &a.event_id, a.line_no).cmp(&(b.event_time, &b.event_id, b.line_no))
        });
        Ok(inc)
    }

    /// Applies `inc` (the lines `which` selects) to the state and writes the batch: committed,
    /// or in a trial rolled back.
    async fn process(
        &mut self,
        inc: &Increment,
        which: &Lines<'_>,
        write: Write,
    ) -> Result<Option<ModelReport>, ModelError> {
        let started = Instant::now();
        let mut ws = WriteSet::default();
        let mut report = ModelReport::default();
        let now = Utc::now();
        report.master_changes = self.sync_master(&mut ws, now).await?;
        if let Some(cp) = &inc.checkpoint {
            report.from_version = inc.from;
            report.to_version = inc.to;
            ws.checkpoints.push(cp.clone());
        }
        // the batch this write set's rows are stamped with: its checkpoint's, or the next
        ws.stamp = inc.checkpoint.as_ref().map_or_else(
            || self.checkpoints.get(POS_EVENT_LINES).map_or(0, |c| c.batch) + 1,
            |c| c.batch,
        );
        let lines: Vec<&SilverLine> = match which {
            Lines::All => inc.lines.iter().collect(),
            Lines::Only(keep, dead) => {
                ws.dead_letters = dead.clone();
                inc.lines
                    .iter()
                    .zip(keep.iter())
                    .filter_map(|(l, k)| k.then_some(l))
                    .collect()
            }
        };
        if lines.is_empty() && ws.is_empty() {
            return Ok(None);
        }
        report.lines = lines.len();
        report.max_arrived_at = lines.iter().map(|l| l.arrived_at).max();

        let mut batch = Batch::default();
        for line in lines {
            self.apply_line(line, now, &mut ws, &mut batch, &mut report)
                .await?;
        }
        self.settle_orders(&batch, now, &mut ws);
        report.late_lines = batch.late.len();
        let late = std::mem::take(&mut batch.late);
        self.repair_late(late, &batch.moves, &mut batch.daily_out)
            .await?;
        for key in &batch.today_dirty {
            if let Some(row) = self.keys.get(key).and_then(|k| k.today.clone()) {
                batch
                    .daily_out
                    .insert((row.store_key, row.product_key, row.date_key), *row);
            }
        }
        let mut daily: Vec<DailyRow> = batch.daily_out.into_values().collect();
        daily.sort_by_key(|d| (d.store_key, d.product_key, d.date_key));
        ws.daily = daily;
        self.evaluate_due(&batch.touched, now, &mut ws, &mut report);
        for s in self.stores.values_mut().filter(|s| s.dirty) {
            ws.store_states.push(StoreStateRow {
                store_key: s.row.store_key,
                clock: s.clock,
                local_date: s.local_date.map(date_key),
                state: serde_json::to_value(&s.extra).unwrap_or(serde_json::Value::Null),
            });
        }
        if let Some(why) = ws.out_of_range() {
            return Err(ModelError::Rejected(why));
        }
        if write == Write::Trial {
            return self.gold.trial(ws).await.map(|()| None);
        }
        self.gold.apply(ws.clone()).await?;
        stocklake_storage::failpoint("model_after_commit");
        self.committed(ws.checkpoints);
        metrics::GOLD_LINES.inc_by(report.lines as u64);
        report.seconds = started.elapsed().as_secs_f64();
        metrics::BATCH_SECONDS
            .with_label_values(&["model"])
            .observe(report.seconds);
        Ok(Some(report))
    }

    /// Evaluates the keys the batch touched, the keys whose time has come, and every key of
    /// a store that closed a day (its demand moved).
    fn evaluate_due(
        &mut self,
        touched: &BTreeSet<Key>,
        now: DateTime<Utc>,
        ws: &mut WriteSet,
        report: &mut ModelReport,
    ) {
        let mut evaluate: BTreeSet<Key> = touched.clone();
        for (store, s) in self.stores.iter_mut() {
            if s.evaluate_all {
                evaluate.extend(s.skus.iter().map(|sku| Key::new(*store, *sku)));
                s.evaluate_all = false;
                s.dirty = true;
            }
            evaluate.extend(s.take_due().into_iter().map(|sku| Key::new(*store, sku)));
        }
        report.keys_touched = touched.len();
        report.keys_evaluated = evaluate.len();
        for key in &evaluate {
            self.evaluate(*key, now, ws, report, touched.contains(key));
        }
    }

    /// The state after a batch committed.
    fn committed(&mut self, checkpoints: Vec<CheckpointRow>) {
        for s in self.stores.values_mut() {
            s.dirty = false;
        }
        for cp in checkpoints {
            self.checkpoints.insert(cp.name.clone(), cp);
        }
        for t in AlertType::ALL {
            metrics::OPEN_ALERTS
                .with_label_values(&[t.as_str()])
                .set(self.open_alerts.get(&t).copied().unwrap_or(0));
        }
    }

    fn ensure_date(&mut self, d: NaiveDate, ws: &mut WriteSet) -> i32 {
        let k = date_key(d);
        if self.dates.insert(k) {
            ws.dates.push(DateRow::new(d));
        }
        k
    }

    /// The store's key, creating an inferred member for a store master data has not named.
    fn store_for(&mut self, store_id: &str, now: DateTime<Utc>, ws: &mut WriteSet) -> StoreKey {
        if let Some(k) = self.store_ids.get(store_id) {
            return *k;
        }
        let key = StoreKey(self.next_store_key);
        self.next_store_key += 1;
        let row = StoreRow::inferred(key.0, store_id, now);
        ws.stores.push(row.clone());
        self.store_ids.insert(store_id.to_string(), key);
        self.stores
            .insert(key, StoreState::new(row, chrono_tz::UTC, true));
        key
    }

    /// The SKU's index, creating an inferred member for a SKU master data has not named.
    fn product_for(
        &mut self,
        line: &SilverLine,
        now: DateTime<Utc>,
        ws: &mut WriteSet,
    ) -> SkuIndex {
        if let Some(i) = self.skus.get(&line.sku) {
            // a legacy record names the product: fill an inferred member's gaps
            let p = self.skus.product(i);
            if p.row.is_inferred
                && ((p.row.name.is_none() && line.product_name.is_some())
                    || (p.row.category.is_none() && line.category.is_some()))
            {
                let mut row = p.row.clone();
                row.name = row.name.or_else(|| line.product_name.clone());
                row.category = row.category.or_else(|| line.category.clone());
                ws.products_update
                    .retain(|r| r.product_key != row.product_key);
                if let Some(ins) = ws
                    .products_insert
                    .iter_mut()
                    .find(|r| r.product_key == row.product_key)
                {
                    *ins = row.clone();
                } else {
                    ws.products_update.push(row.clone());
                }
                self.skus.replace(i, row);
            }
            return i;
        }
        let key = self.next_product_key;
        self.next_product_key += 1;
        let row = ProductRow {
            product_key: key,
            sku: line.sku.clone(),
            name: line.product_name.clone(),
            category: line.category.clone(),
            subcategory: None,
            brand: None,
            unit_of_measure: None,
            case_pack: None,
            unit_cost: None,
            unit_price: line.unit_price,
            lead_time_days: None,
            service_level: None,
            supplier_id: None,
            min_order_qty: None,
            shelf_life_days: None,
            is_inferred: true,
            valid_from: now,
            valid_to: None,
            is_current: true,
        };
        ws.products_insert.push(row.clone());
        self.skus.insert(row)
    }

    /// Applies one silver line: the store's clock (closing the days it left behind), the key's
    /// stock by the core's rules, the fact rows, and today's snapshot row (or, for a day
    /// already closed, a late movement to repair).
    async fn apply_line(
        &mut self,
        line: &SilverLine,
        now: DateTime<Utc>,
        ws: &mut WriteSet,
        batch: &mut Batch,
        report: &mut ModelReport,
    ) -> Result<(), ModelError> {
        let store = self.store_for(&line.store_id, now, ws);
        let sku = self.product_for(line, now, ws);
        let tz = self.store(store)?.tz;
        let local = line.event_time.with_timezone(&tz);
        let local_date = local.date_naive();
        let dk = self.ensure_date(local_date, ws);
        let is_late = self.advance_store(store, line.event_time, local_date, ws, batch, report);
        let key = Key::new(store, sku);
        let new_key = !self.keys.contains_key(&key);
        if new_key {
            self.keys.insert(key, Box::default());
            if let Some(s) = self.stores.get_mut(&store) {
                s.skus.push(sku);
            }
        }
        if let Some(order_id) = line.order_id.as_deref()
            && matches!(
                line.event_type,
                EventType::PurchaseOrder | EventType::Receipt
            )
        {
            self.order_line(store, sku, order_id, line, batch).await?;
        }
        if !line.event_type.moves_stock() {
            // an order moves nothing on the shelf: the key is looked at again, no fact row
            batch.touched.insert(key);
            return Ok(());
        }
        let product = &self.skus.product(sku).row;
        let product_key = product.product_key;
        let lead = self.cfg.lead_time_days(product.lead_time_days);
        let kl = KeyLine {
            event_type: line.event_type,
            time: line.event_time,
            quantity: line.quantity,
        };
        let after = self.after_count(key, product_key, &kl, batch).await?;
        let store_key = store.0;
        let store = self
            .stores
            .get_mut(&store)
            .ok_or_else(|| ModelError::Internal(format!("no store {store}")))?;
        let shelf = Shelf {
            shape: &store.extra.shape,
            tz,
            today: store.local_date,
        };
        let k = self
            .keys
            .get_mut(&key)
            .ok_or_else(|| ModelError::Internal("key".into()))?;
        let applied = k.apply(&kl, after, new_key, f64::from(lead), &shelf);
        if line.event_type.stock_delta(line.quantity).is_some() {
            batch
                .moves
                .entry(key)
                .or_default()
                .push((kl.time, applied.delta));
        }
        batch.touched.insert(key);
        if is_late {
            batch.late.push(LateMove {
                key,
                date: local_date,
                time: kl.time,
                event_type: kl.event_type,
                quantity: kl.quantity,
                delta: applied.delta,
            });
        } else {
            let keys = DayKeys {
                date_key: dk,
                store_key,
                product_key,
            };
            k.record_today(&kl, &applied, keys);
            batch.today_dirty.insert(key);
            if line.event_type == EventType::Sale {
                store.extra.today_hours[local.hour() as usize] += decimal_f64(line.quantity);
            }
        }
        ws.movements.push(MovementRow {
            event_id: line.event_id.clone(),
            line_no: line.line_no,
            date_key: dk,
            store_key,
            product_key,
            event_type: line.event_type.as_str(),
            quantity: line.quantity,
            quantity_delta: applied.delta,
            event_time: line.event_time,
        });
        if matches!(line.event_type, EventType::Sale | EventType::Return) {
            let row = self.sale_row(line, dk, store_key, product_key, ws);
            ws.sales.push(row);
        }
        Ok(())
    }

    /// Applies a purchase-order line, or a receipt line that names its order, to the order book
    /// (reading the order back from gold first when it is no longer in memory).
    async fn order_line(
        &mut self,
        store: StoreKey,
        sku: SkuIndex,
        order_id: &str,
        line: &SilverLine,
        batch: &mut Batch,
    ) -> Result<(), ModelError> {
        if !self.orders.contains(store, order_id) {
            let rows = self.gold.order_lines(store.0, order_id).await?;
            let rows = rows
                .into_iter()
                .filter_map(|r| Some((store, self.skus.of_key(r.product_key)?, r)))
                .collect();
            self.orders.load(rows);
        }
        let order = self.orders.entry(store, order_id);
        match (line.event_type, line.expected_at) {
            (EventType::PurchaseOrder, Some(expected_at)) => {
                order.apply_order_line(
                    line.event_time,
                    &line.event_id,
                    expected_at,
                    sku,
                    line.line_no,
                    line.quantity,
                );
                if let Some(s) = self.stores.get_mut(&store)
                    && !s.extra.orders_feed
                {
                    s.extra.orders_feed = true;
                    s.dirty = true;
                }
            }
            (EventType::Receipt, _) => order.apply_receipt(line.event_time, sku, line.quantity),
            _ => return Ok(()),
        }
        batch.orders.insert((store, order_id.to_string()));
        Ok(())
    }

    /// After a batch's lines: the rows of every order it touched, the lead times its first
    /// receipts teach, each affected key's open lines, and closed orders long past forgotten.
    fn settle_orders(&mut self, batch: &Batch, now: DateTime<Utc>, ws: &mut WriteSet) {
        let mut keys: BTreeSet<Key> = BTreeSet::new();
        for (store, order_id) in &batch.orders {
            let Some(order) = self.orders.get_mut(*store, order_id) else {
                continue;
            };
            for (sku, l) in &order.lines {
                keys.insert(Key::new(*store, *sku));
                let product_key = self.skus.product(*sku).row.product_key;
                ws.order_lines
                    .push(line_row(order_id, order, l, store.0, product_key, now));
            }
            if !order.lead_observed
                && let Some(days) = order.lead_days()
            {
                order.lead_observed = true;
                let first = order.lines.keys().next().copied();
                if let (Some(sku), Some(s)) = (first, self.stores.get_mut(store)) {
                    let product = &self.skus.product(sku).row;
                    let by = lead_key(product);
                    s.extra.lead.entry(by).or_default().observe(days);
                    s.dirty = true;
                }
            }
        }
        for key in keys {
            let open = self.orders.open_for(key.store, key.sku);
            if let Some(k) = self.keys.get_mut(&key) {
                k.orders = open;
            }
        }
        // closed orders promised more than four weeks before their store's clock
        for (store, s) in &self.stores {
            if let Some(clock) = s.clock {
                self.orders.prune(*store, clock - Duration::days(28));
            }
        }
    }

    fn store(&self, store: StoreKey) -> Result<&StoreState, ModelError> {
        self.stores
            .get(&store)
            .ok_or_else(|| ModelError::Internal(format!("no store {store}")))
    }

    /// Moves the store's clock to a line of `local_date` at `t`: a new local day closes the
    /// days before it first. Whether the line is of a day already closed.
    fn advance_store(
        &mut self,
        store: StoreKey,
        t: DateTime<Utc>,
        local_date: NaiveDate,
        ws: &mut WriteSet,
        batch: &mut Batch,
        report: &mut ModelReport,
    ) -> bool {
        let store_date = self.stores.get(&store).and_then(|s| s.local_date);
        match store_date {
            None => {
                if let Some(s) = self.stores.get_mut(&store) {
                    s.local_date = Some(local_date);
                    s.dirty = true;
                }
            }
            Some(d) if local_date > d => {
                report.days_closed += self.close_days(store, d, local_date, ws, batch);
            }
            _ => {}
        }
        let Some(s) = self.stores.get_mut(&store) else {
            return false;
        };
        if s.clock.is_none_or(|c| t > c) {
            s.clock = Some(t);
            s.dirty = true;
        }
        s.local_date.is_some_and(|d| local_date < d)
    }

    /// What moved after a count that supersedes the key's (from gold, for movements of
    /// earlier batches, and from this batch); zero for any other line.
    async fn after_count(
        &self,
        key: Key,
        product_key: i32,
        line: &KeyLine,
        batch: &Batch,
    ) -> Result<Decimal, ModelError> {
        let t = line.time;
        let Some(k) = self.keys.get(&key) else {
            return Ok(Decimal::ZERO);
        };
        if line.event_type != EventType::StockCount || !k.count_supersedes(t, line.quantity) {
            return Ok(Decimal::ZERO);
        }
        let mut after = Decimal::ZERO;
        if k.moved_after(t) {
            for (mt, d) in self
                .gold
                .movements_after(key.store.0, product_key, t)
                .await?
            {
                if mt > t {
                    after += d;
                }
            }
        }
        for (mt, d) in batch.moves.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
            if *mt > t {
                after += *d;
            }
        }
        Ok(after)
    }

    /// The fact row of a sale or a return (returns negative), with its payment method and
    /// client type, new members of either written to `ws`.
    fn sale_row(
        &mut self,
        line: &SilverLine,
        date_key: i32,
        store_key: i32,
        product_key: i32,
        ws: &mut WriteSet,
    ) -> SaleRow {
        let q = line.quantity;
        let is_return = line.event_type == EventType::Return;
        let net = line.unit_price.map(|p| {
            let gross = (q * p - line.discount.unwrap_or_default()).round_dp(4);
            if is_return { -gross } else { gross }
        });
        SaleRow {
            event_id: line.event_id.clone(),
            line_no: line.line_no,
            date_key,
            store_key,
            product_key,
            transaction_id: line.transaction_id.clone(),
            register_id: line.register_id.clone(),
            event_time: line.event_time,
            quantity: if is_return { -q } else { q },
            unit_price: line.unit_price,
            discount: line.discount,
            net_amount: net,
            payment_method_key: self
                .payment_methods
                .key(line.payment_method.as_deref(), &mut ws.payment_methods),
            client_type_key: self
                .client_types
                .key(line.client_type.as_deref(), &mut ws.client_types),
        }
    }

    /// Closes the store's days from `from` (its current day) to the day before `to`: writes the
    /// snapshot of every key, learns demand and the store's rhythm.
    fn close_days(
        &mut self,
        store: StoreKey,
        from: NaiveDate,
        to: NaiveDate,
        ws: &mut WriteSet,
        batch: &mut Batch,
    ) -> usize {
        let a_key = alpha(self.cfg.half_life_days);
        let a_shape = alpha(self.cfg.half_life_days * 2.0);
        let mut closed = 0;
        let mut day = from;
        let skus = self
            .stores
            .get(&store)
            .map(|s| s.skus.clone())
            .unwrap_or_default();
        let store_key = store.0;
        while day < to && closed < 400 {
            let dk = self.ensure_date(day, ws);
            let weekday = day.weekday().num_days_from_monday() as usize;
            let Some(state) = self.stores.get_mut(&store) else {
                break;
            };
            let store_units: f64 = skus
                .iter()
                .filter_map(|sku| self.keys.get(&Key::new(store, *sku)))
                .filter_map(|k| k.today.as_ref().filter(|r| r.date_key == dk))
                .map(|r| decimal_f64(r.units_sold))
                .sum();
            let close = DayClose {
                day,
                trading: store_units > 0.0,
                dow: state.extra.shape.dow[weekday],
                alpha: a_key,
            };
            let shelf = Shelf {
                shape: &state.extra.shape,
                tz: state.tz,
                today: state.local_date,
            };
            for sku in &skus {
                let key = Key::new(store, *sku);
                let Some(k) = self.keys.get_mut(&key) else {
                    continue;
                };
                let keys = DayKeys {
                    date_key: dk,
                    store_key,
                    product_key: self.skus.product(*sku).row.product_key,
                };
                let row = k.close_day(keys, &close, &shelf);
                batch.today_dirty.remove(&key);
                batch
                    .daily_out
                    .insert((store_key, keys.product_key, dk), row);
            }
            state.close_day(weekday, store_units, a_shape);
            day += Duration::days(1);
            closed += 1;
        }
        if let Some(s) = self.stores.get_mut(&store) {
            s.local_date = Some(to);
            s.evaluate_all = true;
            s.dirty = true;
        }
        closed
    }

    /// Corrects the daily snapshot of days already closed that late events touched.
    async fn repair_late(
        &mut self,
        late: Vec<LateMove>,
        batch_moves: &HashMap<Key, Vec<(DateTime<Utc>, Decimal)>>,
        daily_out: &mut HashMap<(i32, i32, i32), DailyRow>,
    ) -> Result<(), ModelError> {
        if late.is_empty() {
            return Ok(());
        }
        let mut by_key: BTreeMap<Key, Vec<LateMove>> = BTreeMap::new();
        for m in late {
            by_key.entry(m.key).or_default().push(m);
        }
        for (key, moves) in by_key {
            let product_key = self.skus.product(key.sku).row.product_key;
            let store_key = key.store.0;
            let Some(first) = moves.iter().map(|m| m.date).min() else {
                continue;
            };
            let from = first - Duration::days(1);
            let mut rows: BTreeMap<i32, DailyRow> = self
                .gold
                .daily_rows(vec![(store_key, product_key)], date_key(from))
                .await?
                .into_iter()
                .map(|r| (r.date_key, r))
                .collect();
            // what this batch already changed wins over what the database holds
            for r in daily_out
                .values()
                .filter(|r| r.store_key == store_key && r.product_key == product_key)
            {
                rows.insert(r.date_key, r.clone());
            }
            let today = self.keys.get(&key).and_then(|k| k.today.clone());
            if let Some(t) = &today {
                rows.insert(t.date_key, (**t).clone());
            }
            for m in &moves {
                let dk = date_key(m.date);
                let row = rows.entry(dk).or_insert_with(|| DailyRow {
                    date_key: dk,
                    store_key,
                    product_key,
                    ..DailyRow::default()
                });
                apply_to_row(row, m.event_type, m.time, m.quantity, m.delta);
                if m.event_type == EventType::StockCount && row.count_time == Some(m.time) {
                    // what moved later that day, after the count
                    let end = m.date + Duration::days(1);
                    let tz = self.store(key.store)?.tz;
                    let mut after = Decimal::ZERO;
                    let mut seen: Vec<(DateTime<Utc>, Decimal)> = self
                        .gold
                        .movements_after(store_key, product_key, m.time)
                        .await?;
                    seen.extend(batch_moves.get(&key).cloned().unwrap_or_default());
                    for (t, d) in seen {
                        let local = t.with_timezone(&tz).date_naive();
                        if t > m.time && local < end && local >= m.date {
                            after += d;
                        }
                    }
                    row.movement_after_count = after;
                }
            }
            // chain the closings forward; today's closing is the live on hand
            let today_key = today.as_ref().map(|t| t.date_key);
            let mut prev: Option<Decimal> = rows.get(&date_key(from)).map(|r| r.closing_on_hand);
            let first_key = date_key(first);
            let on_hand = self.keys.get(&key).map(|k| k.on_hand).unwrap_or_default();
            for (dk, row) in rows.iter_mut().filter(|(dk, _)| **dk >= first_key) {
                if Some(*dk) == today_key {
                    row.closing_on_hand = on_hand;
                } else {
                    row.closing_on_hand = match (row.count_time, row.count_quantity) {
                        (Some(_), Some(c)) => c + row.movement_after_count,
                        _ => prev.unwrap_or_default() + row.net_movement,
                    };
                }
                row.was_out_of_stock |= row.closing_on_hand <= Decimal::ZERO;
                prev = Some(row.closing_on_hand);
                daily_out.insert((store_key, product_key, *dk), row.clone());
            }
            if let (Some(tk), Some(k)) = (today_key, self.keys.get_mut(&key))
                && let Some(r) = rows.get(&tk)
            {
                k.today = Some(Box::new(r.clone()));
            }
        }
        Ok(())
    }

    /// Recomputes a key's figures and alerts (the core's [`KeyState::evaluate`]), and writes
    /// what changed: alerts with their webhook messages, the stock level, the next look.
    fn evaluate(
        &mut self,
        key: Key,
        wall_now: DateTime<Utc>,
        ws: &mut WriteSet,
        report: &mut ModelReport,
        moved: bool,
    ) {
        let (Some(store), Some(k)) = (self.stores.get_mut(&key.store), self.keys.get_mut(&key))
        else {
            return;
        };
        let product = self.skus.product(key.sku);
        let supplier = product
            .row
            .supplier_id
            .as_deref()
            .and_then(|id| self.suppliers.get(id));
        let learnt = store
            .extra
            .lead
            .get(&lead_key(&product.row))
            .and_then(|l| l.learnt());
        // the lead time: learnt from orders, else the product's, the supplier's, the default
        let lead_time_days = learnt.map_or_else(
            || {
                self.cfg.lead_time_days(
                    product
                        .row
                        .lead_time_days
                        .or(supplier.and_then(|s| s.lead_time_days)),
                )
            },
            |(mean, _)| mean.ceil().clamp(0.0, 365.0) as u32,
        );
        let service_level = product
            .row
            .service_level
            .and_then(|s| s.to_f64())
            .unwrap_or(self.cfg.default_service_level);
        let days = |d: Option<&String>| Days::parse(d.map(String::as_str)).unwrap_or(Days::EVERY);
        let supply = Supply {
            supplier_id: product.row.supplier_id.as_deref(),
            order_days: days(supplier.and_then(|s| s.order_days.as_ref())),
            delivery_days: days(supplier.and_then(|s| s.delivery_days.as_ref())),
            lead_time_days: learnt.map_or(f64::from(lead_time_days), |l| l.0),
            lead_time_sd_days: learnt.map_or(0.0, |l| l.1),
            case_pack: product.case_pack(),
            min_order_qty: product.row.min_order_qty,
            shelf_life_days: product
                .row
                .shelf_life_days
                .and_then(|d| u32::try_from(d).ok()),
            service_level,
        };
        let look = Look {
            now: store.clock.unwrap_or(wall_now),
            tz: store.tz,
            shape: &store.extra.shape,
            product,
            store_key: key.store.0,
            lead_time_days,
            learnt_lead: learnt,
            service_level,
            orders_feed: store.extra.orders_feed,
            supply: &supply,
            rules: &self.cfg.rules,
            evaluate_every: self.cfg.evaluate_every,
            moved,
        };
        let looked = k.evaluate(&look, &mut self.next_alert_id);
        if let Some(p) = looked.proposal {
            ws.proposals.push(p);
        }
        for (row, transition) in looked.alerts {
            match transition {
                Transition::Opened(t) => {
                    *self.open_alerts.entry(t).or_default() += 1;
                    report.alerts_opened += 1;
                }
                Transition::Resolved(t) => {
                    if let Some(n) = self.open_alerts.get_mut(&t) {
                        *n -= 1;
                    }
                    report.alerts_resolved += 1;
                }
                Transition::Updated { .. } => {}
            }
            if let Some(change) = transition.change() {
                ws.outbox.push(outbox_row(
                    self.next_outbox_id,
                    &row,
                    change,
                    &store.row.store_id,
                    &product.row,
                    wall_now,
                ));
                self.next_outbox_id += 1;
            }
            ws.alerts.push(row);
        }
        if let Some(level) = looked.level {
            ws.levels.push(level);
        }
        store.reschedule(key.sku, looked.was_due, looked.due);
    }

    /// Applies master data that changed in silver: type-2 versions for price and category,
    /// in-place updates otherwise, inferred members filled in.
    async fn sync_master(
        &mut self,
        ws: &mut WriteSet,
        now: DateTime<Utc>,
    ) -> Result<usize, ModelError> {
        let mut changes = 0;
        for (name, table) in [
            (PRODUCTS, &mut self.products_table),
            (STORES, &mut self.stores_table),
            (SUPPLIERS, &mut self.suppliers_table),
        ] {
            table
                .update_state()
                .await
                .map_err(ModelError::silver_delta)?;
            let Some(v) = table.version() else { continue };
            let done = self.checkpoints.get(name).map(|c| c.silver_version);
            if done == Some(v as i64) {
                continue;
            }
            ws.checkpoints.push(CheckpointRow {
                name: name.into(),
                silver_version: v as i64,
                batch: self.checkpoints.get(name).map_or(0, |c| c.batch) + 1,
                lines: 0,
            });
        }
        if ws.checkpoints.iter().any(|c| c.name == PRODUCTS) {
            for p in read_products(&self.products_table).await? {
                changes += self.apply_product(p, now, ws);
            }
        }
        if ws.checkpoints.iter().any(|c| c.name == STORES) {
            for s in read_stores(&self.stores_table).await? {
                changes += self.apply_store(s, now, ws);
            }
        }
        if ws.checkpoints.iter().any(|c| c.name == SUPPLIERS) {
            for s in read_suppliers(&self.suppliers_table).await? {
                changes += self.apply_supplier(s, now, ws);
            }
        }
        // a supplier a product names and the supplier master does not: an inferred member
        let named: BTreeSet<String> = ws
            .products_insert
            .iter()
            .chain(&ws.products_update)
            .filter_map(|p| p.supplier_id.clone())
            .collect();
        for id in named {
            if let std::collections::hash_map::Entry::Vacant(e) = self.suppliers.entry(id) {
                let row = SupplierRow {
                    supplier_id: e.key().clone(),
                    name: None,
                    lead_time_days: None,
                    order_days: None,
                    delivery_days: None,
                    is_inferred: true,
                    updated_at: now,
                };
                ws.suppliers.push(row.clone());
                e.insert(row);
            }
        }
        Ok(changes)
    }

    fn apply_supplier(&mut self, s: SupplierRow, now: DateTime<Utc>, ws: &mut WriteSet) -> usize {
        let row = SupplierRow {
            updated_at: now,
            ..s
        };
        if self.suppliers.get(&row.supplier_id).is_some_and(|cur| {
            SupplierRow {
                updated_at: now,
                ..cur.clone()
            } == row
        }) {
            return 0;
        }
        self.suppliers.insert(row.supplier_id.clone(), row.clone());
        ws.suppliers.push(row);
        1
    }

    fn apply_store(&mut self, s: StoreRow, now: DateTime<Utc>, ws: &mut WriteSet) -> usize {
        let key = match self.store_ids.get(&s.store_id) {
            Some(k) => *k,
            None => {
                let k = StoreKey(self.next_store_key);
                self.next_store_key += 1;
                self.store_ids.insert(s.store_id.clone(), k);
                k
            }
        };
        let row = StoreRow {
            store_key: key.0,
            is_inferred: false,
            updated_at: now,
            timezone: if s.timezone.is_empty() {
                "UTC".into()
            } else {
                s.timezone.clone()
            },
            ..s
        };
        match self.stores.get_mut(&key) {
            Some(st) => {
                let mut same = st.row.clone();
                same.updated_at = now;
                if same == row {
                    return 0;
                }
                st.tz = parse_tz(&row.timezone);
                st.row = row.clone();
            }
            None => {
                let tz = parse_tz(&row.timezone);
                self.stores
                    .insert(key, StoreState::new(row.clone(), tz, true));
            }
        }
        ws.stores.push(row);
        1
    }

    fn apply_product(&mut self, p: ProductRow, now: DateTime<Utc>, ws: &mut WriteSet) -> usize {
        let Some(i) = self.skus.get(&p.sku) else {
            let row = ProductRow {
                product_key: self.next_product_key,
                is_inferred: false,
                valid_from: now,
                valid_to: None,
                is_current: true,
                ..p
            };
            self.next_product_key += 1;
            ws.products_insert.push(row.clone());
            self.skus.insert(row);
            return 1;
        };
        let cur = self.skus.product(i).row.clone();
        let attrs_equal = cur.name == p.name
            && cur.category == p.category
            && cur.subcategory == p.subcategory
            && cur.brand == p.brand
            && cur.unit_of_measure == p.unit_of_measure
            && cur.case_pack == p.case_pack
            && cur.unit_cost == p.unit_cost
            && cur.unit_price == p.unit_price
            && cur.lead_time_days == p.lead_time_days
            && cur.service_level == p.service_level
            && cur.supplier_id == p.supplier_id
            && cur.min_order_qty == p.min_order_qty
            && cur.shelf_life_days == p.shelf_life_days;
        if attrs_equal && !cur.is_inferred {
            return 0;
        }
        let tracked_change = cur.unit_price != p.unit_price || cur.category != p.category;
        if cur.is_inferred || !tracked_change {
            // fill in an inferred member, or a type-1 change: in place
            let row = ProductRow {
                product_key: cur.product_key,
                is_inferred: false,
                valid_from: cur.valid_from,
                valid_to: None,
                is_current: true,
                ..p
            };
            if let Some(ins) = ws
                .products_insert
                .iter_mut()
                .find(|r| r.product_key == row.product_key)
            {
                *ins = row.clone();
            } else {
                ws.products_update
                    .retain(|r| r.product_key != row.product_key);
                ws.products_update.push(row.clone());
            }
            self.skus.replace(i, row);
            return 1;
        }
        // type 2: close the current version, open the next
        let closed = ProductRow {
            valid_to: Some(now),
            is_current: false,
            ..cur.clone()
        };
        ws.products_update.push(closed);
        let row = ProductRow {
            product_key: self.next_product_key,
            is_inferred: false,
            valid_from: now,
            valid_to: None,
            is_current: true,
            ..p
        };
        self.next_product_key += 1;
        ws.repoint.push((cur.product_key, row.product_key));
        ws.products_insert.push(row.clone());
        self.skus.by_key.remove(&cur.product_key);
        self.skus.replace(i, row.clone());
        // cached rows follow the current version
        for (key, k) in self.keys.iter_mut() {
            if key.sku == i {
                if let Some(t) = k.today.as_mut() {
                    t.product_key = row.product_key;
                }
                // the next look writes the level under the new key
                k.level_print = None;
            }
        }
        1
    }
}
