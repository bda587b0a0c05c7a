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
use stocklake_event::EventType;
use stocklake_refine::tables::{POS_EVENT_LINES, PRODUCTS, STORES, open_or_create};
use stocklake_stock::{
    AlertType, Change, Inputs, Names, OpenAlert, Params, Position, RuleConfig, alpha, conditions,
    lifecycle, policy,
};
use stocklake_storage::{AwsOptions, Location};
use stocklake_telemetry as metrics;

use crate::ModelError;
use crate::db::Gold;
use crate::master::{read_products, read_stores};
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

/// A movement of a day already closed, to correct in the daily snapshot.
#[derive(Debug, Clone)]
struct LateMove {
    key: (i32, u32),
    date: NaiveDate,
    time: DateTime<Utc>,
    event_type: EventType,
    quantity: Decimal,
    delta: Decimal,
}

/// The silver → gold stage.
pub struct Model {
    cfg: ModelConfig,
    gold: Gold,
    lines: DeltaTable,
    products_table: DeltaTable,
    stores_table: DeltaTable,
    stores: HashMap<i32, StoreState>,
    store_ids: HashMap<String, i32>,
    skus: Skus,
    /// Boxed: a map of a million keys sits at half its capacity after growing, and the
    /// growth itself holds the old and the new table at once; boxes keep both small.
    keys: HashMap<(i32, u32), Box<KeyState>>,
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
                    .map_err(|e| ModelError::Silver(e.to_string()))
            }
        };
        let lines = silver(POS_EVENT_LINES).await?;
        let products_table = silver(PRODUCTS).await?;
        let stores_table = silver(STORES).await?;
        let mut m = Model {
            cfg,
            gold,
            lines,
            products_table,
            stores_table,
            stores: HashMap::new(),
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
            self.store_ids.insert(s.store_id.clone(), s.store_key);
            let tz = parse_tz(&s.timezone);
            self.stores
                .insert(s.store_key, StoreState::new(s, tz, false));
        }
        for st in l.store_states {
            if let Some(s) = self.stores.get_mut(&st.store_key) {
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
                let Some(&sku) = self.skus.by_key.get(&lv.product_key) else {
                    continue;
                };
                self.keys
                    .insert((lv.store_key, sku), Box::new(KeyState::from_level(lv)));
                if let Some(s) = self.stores.get_mut(&lv.store_key) {
                    s.skus.push(sku);
                }
            }
            if !full {
                break;
            }
        }
        for a in &l.open_alerts {
            let Some(&sku) = self.skus.by_key.get(&a.product_key) else {
                continue;
            };
            if let (Some(k), Some(o)) = (self.keys.get_mut(&(a.store_key, sku)), open_state(a)) {
                *self.open_alerts.entry(o.alert.alert_type).or_default() += 1;
                k.alerts.push(o);
            }
        }
        // today's daily rows
        let days: Vec<(i32, i32)> = self
            .stores
            .values()
            .filter_map(|s| s.local_date.map(|d| (s.row.store_key, date_key(d))))
            .collect();
        for (store_key, dk) in days {
            for row in self.gold.daily_rows_of_day(store_key, dk).await? {
                if let Some(&sku) = self.skus.by_key.get(&row.product_key)
                    && let Some(k) = self.keys.get_mut(&(store_key, sku))
                {
                    k.today = Some(Box::new(row));
                }
            }
        }
        // every key that time alone can change is due again one period after its store's
        // clock (when it was last looked at is not kept)
        let every = self.cfg.evaluate_every;
        for ((store_key, sku), k) in self.keys.iter_mut() {
            if let Some(s) = self.stores.get_mut(store_key)
                && let Some(clock) = s.clock
                && k.timed(self.cfg.rules.min_history_days)
            {
                k.due = Some(clock + every);
                s.due.insert((clock + every, *sku));
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

        let mut touched: BTreeSet<(i32, u32)> = BTreeSet::new();
        let mut today_dirty: HashSet<(i32, u32)> = HashSet::new();
        let mut daily_out: HashMap<(i32, i32, i32), DailyRow> = HashMap::new();
        let mut late: Vec<LateMove> = Vec::new();
        let mut batch_moves: HashMap<(i32, u32), Vec<(DateTime<Utc>, Decimal)>> = HashMap::new();
        for line in lines {
            self.apply_line(
                line,
                now,
                &mut ws,
                &mut touched,
                &mut today_dirty,
                &mut daily_out,
                &mut late,
                &mut batch_moves,
                &mut report,
            )
            .await?;
        }
        report.late_lines = late.len();
        self.repair_late(late, &batch_moves, &mut daily_out).await?;
        for key in &today_dirty {
            if let Some(row) = self.keys.get(key).and_then(|k| k.today.clone()) {
                daily_out.insert((row.store_key, row.product_key, row.date_key), *row);
            }
        }
        let mut daily: Vec<DailyRow> = daily_out.into_values().collect();
        daily.sort_by_key(|d| (d.store_key, d.product_key, d.date_key));
        ws.daily = daily;

        // evaluate: the keys touched, the keys whose time has come, and every key of a store
        // that closed a day (its demand moved)
        let mut evaluate: BTreeSet<(i32, u32)> = touched.clone();
        for s in self.stores.values_mut() {
            if s.evaluate_all {
                evaluate.extend(s.skus.iter().map(|sku| (s.row.store_key, *sku)));
                s.evaluate_all = false;
                s.dirty = true;
            }
            let store_key = s.row.store_key;
            evaluate.extend(s.take_due().into_iter().map(|sku| (store_key, sku)));
        }
        report.keys_touched = touched.len();
        report.keys_evaluated = evaluate.len();
        for key in &evaluate {
            self.evaluate(*key, now, &mut ws, &mut report, touched.contains(key));
        }
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
        for s in self.stores.values_mut() {
            s.dirty = false;
        }
        for cp in ws.checkpoints {
            self.checkpoints.insert(cp.name.clone(), cp);
        }
        for t in AlertType::ALL {
            metrics::OPEN_ALERTS
                .with_label_values(&[t.as_str()])
                .set(self.open_alerts.get(&t).copied().unwrap_or(0));
        }
        metrics::GOLD_LINES.inc_by(report.lines as u64);
        report.seconds = started.elapsed().as_secs_f64();
        metrics::BATCH_SECONDS
            .with_label_values(&["model"])
            .observe(report.seconds);
        Ok(Some(report))
    }

    fn ensure_date(&mut self, d: NaiveDate, ws: &mut WriteSet) -> i32 {
        let k = date_key(d);
        if self.dates.insert(k) {
            ws.dates.push(DateRow::new(d));
        }
        k
    }

    /// The store's key, creating an inferred member for a store master data has not named.
    fn store_for(&mut self, store_id: &str, now: DateTime<Utc>, ws: &mut WriteSet) -> i32 {
        if let Some(k) = self.store_ids.get(store_id) {
            return *k;
        }
        let key = self.next_store_key;
        self.next_store_key += 1;
        let row = StoreRow::inferred(key, store_id, now);
        ws.stores.push(row.clone());
        self.store_ids.insert(store_id.to_string(), key);
        self.stores
            .insert(key, StoreState::new(row, chrono_tz::UTC, true));
        key
    }

    /// The SKU's index, creating an inferred member for a SKU master data has not named.
    fn product_for(&mut self, line: &SilverLine, now: DateTime<Utc>, ws: &mut WriteSet) -> u32 {
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
            is_inferred: true,
            valid_from: now,
            valid_to: None,
            is_current: true,
        };
        ws.products_insert.push(row.clone());
        self.skus.insert(row)
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_line(
        &mut self,
        line: &SilverLine,
        now: DateTime<Utc>,
        ws: &mut WriteSet,
        touched: &mut BTreeSet<(i32, u32)>,
        today_dirty: &mut HashSet<(i32, u32)>,
        daily_out: &mut HashMap<(i32, i32, i32), DailyRow>,
        late: &mut Vec<LateMove>,
        batch_moves: &mut HashMap<(i32, u32), Vec<(DateTime<Utc>, Decimal)>>,
        report: &mut ModelReport,
    ) -> Result<(), ModelError> {
        let store_key = self.store_for(&line.store_id, now, ws);
        let sku = self.product_for(line, now, ws);
        let tz = self.stores[&store_key].tz;
        let local = line.event_time.with_timezone(&tz);
        let local_date = local.date_naive();
        let dk = self.ensure_date(local_date, ws);

        // the store's clock; a new local day closes the previous ones first
        let store_date = self.stores[&store_key].local_date;
        match store_date {
            None => {
                if let Some(s) = self.stores.get_mut(&store_key) {
                    s.local_date = Some(local_date);
                    s.dirty = true;
                }
            }
            Some(d) if local_date > d => {
                report.days_closed +=
                    self.close_days(store_key, d, local_date, ws, daily_out, today_dirty);
            }
            _ => {}
        }
        let is_late = self.stores[&store_key]
            .local_date
            .is_some_and(|d| local_date < d);
        if let Some(s) = self.stores.get_mut(&store_key)
            && s.clock.is_none_or(|c| line.event_time > c)
        {
            s.clock = Some(line.event_time);
            s.dirty = true;
        }

        let key = (store_key, sku);
        let new_key = !self.keys.contains_key(&key);
        if let std::collections::hash_map::Entry::Vacant(e) = self.keys.entry(key) {
            e.insert(Box::default());
            if let Some(s) = self.stores.get_mut(&store_key) {
                s.skus.push(sku);
            }
        }
        let product_key = self.skus.product(sku).row.product_key;
        let lead = self
            .cfg
            .lead_time_days(self.skus.product(sku).row.lead_time_days);
        let t = line.event_time;
        let q = line.quantity;
        let old_on_hand = self.keys[&key].on_hand;

        // stock on hand, by event time (docs/contract.md §2)
        let delta = match line.event_type.stock_delta(q) {
            Some(delta) => {
                let k = self
                    .keys
                    .get_mut(&key)
                    .ok_or_else(|| ModelError::Internal("key".into()))?;
                if k.last_count_at.is_none_or(|c| t > c) {
                    k.on_hand += delta;
                }
                batch_moves.entry(key).or_default().push((t, delta));
                delta
            }
            None => {
                let (newer, needs_history) = {
                    let k = &self.keys[&key];
                    let newer = match k.last_count_at {
                        None => true,
                        Some(c) => t > c || (t == c && Some(q) > k.last_count_qty),
                    };
                    (newer, k.last_movement_at.is_some_and(|m| m > t))
                };
                if newer {
                    // what moved after the count still counts
                    let mut after = Decimal::ZERO;
                    if needs_history {
                        for (mt, d) in self.gold.movements_after(store_key, product_key, t).await? {
                            if mt > t {
                                after += d;
                            }
                        }
                    }
                    for (mt, d) in batch_moves.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
                        if *mt > t {
                            after += *d;
                        }
                    }
                    let k = self
                        .keys
                        .get_mut(&key)
                        .ok_or_else(|| ModelError::Internal("key".into()))?;
                    k.on_hand = q + after;
                    k.last_count_at = Some(t);
                    k.last_count_qty = Some(q);
                    k.on_hand - old_on_hand
                } else {
                    Decimal::ZERO
                }
            }
        };
        ws.movements.push(MovementRow {
            event_id: line.event_id.clone(),
            line_no: line.line_no,
            date_key: dk,
            store_key,
            product_key,
            event_type: line.event_type.as_str(),
            quantity: q,
            quantity_delta: delta,
            event_time: t,
        });
        if matches!(line.event_type, EventType::Sale | EventType::Return) {
            let signed = if line.event_type == EventType::Return {
                -q
            } else {
                q
            };
            let net = line.unit_price.map(|p| {
                let gross = q * p - line.discount.unwrap_or_default();
                let gross = gross.round_dp(4);
                if line.event_type == EventType::Return {
                    -gross
                } else {
                    gross
                }
            });
            let payment_method_key = self
                .payment_methods
                .key(line.payment_method.as_deref(), &mut ws.payment_methods);
            let client_type_key = self
                .client_types
                .key(line.client_type.as_deref(), &mut ws.client_types);
            ws.sales.push(SaleRow {
                event_id: line.event_id.clone(),
                line_no: line.line_no,
                date_key: dk,
                store_key,
                product_key,
                transaction_id: line.transaction_id.clone(),
                register_id: line.register_id.clone(),
                event_time: t,
                quantity: signed,
                unit_price: line.unit_price,
                discount: line.discount,
                net_amount: net,
                payment_method_key,
                client_type_key,
            });
        }
        {
            let k = self
                .keys
                .get_mut(&key)
                .ok_or_else(|| ModelError::Internal("key".into()))?;
            k.last_movement_at = k.last_movement_at.max(Some(t));
            if line.event_type == EventType::Sale {
                k.last_sale_at = k.last_sale_at.max(Some(t));
            }
            if line.event_type == EventType::Receipt {
                k.replenishment.observe_delivery(
                    t,
                    q,
                    decimal_f64(old_on_hand),
                    k.demand.level,
                    f64::from(lead),
                );
            }
            if old_on_hand <= Decimal::ZERO && k.on_hand > Decimal::ZERO {
                k.in_stock_since = Some(t);
            }
        }
        // time out of stock, as a share of the day's usual sales
        let (shape, today) = {
            let s = &self.stores[&store_key];
            (s.extra.shape, s.local_date)
        };
        {
            let k = self
                .keys
                .get_mut(&key)
                .ok_or_else(|| ModelError::Internal("key".into()))?;
            let was_out = !new_key && old_on_hand <= Decimal::ZERO;
            let is_out = k.on_hand <= Decimal::ZERO;
            if !was_out && is_out {
                k.out_since = Some(t);
            } else if was_out
                && !is_out
                && let (Some(since), Some(day)) = (k.out_since.take(), today)
            {
                let share = out_share(&shape, tz, since, t, day);
                if share > 0.0 {
                    if let Some(row) = k.today.as_mut() {
                        row.out_of_stock_share = (row.out_of_stock_share + share).min(1.0);
                    } else {
                        k.pending_out_share += share;
                    }
                }
            }
        }
        touched.insert(key);

        if is_late {
            late.push(LateMove {
                key,
                date: local_date,
                time: t,
                event_type: line.event_type,
                quantity: q,
                delta,
            });
            return Ok(());
        }
        // today's row of the daily snapshot
        let k = self
            .keys
            .get_mut(&key)
            .ok_or_else(|| ModelError::Internal("key".into()))?;
        let on_hand = k.on_hand;
        let last_count_at = k.last_count_at;
        let pending_share = std::mem::take(&mut k.pending_out_share);
        let row = k.today.get_or_insert_with(|| {
            Box::new(DailyRow {
                date_key: dk,
                store_key,
                product_key,
                closing_on_hand: old_on_hand,
                // a key seen for the first time was not "out" before it existed
                was_out_of_stock: !new_key && old_on_hand <= Decimal::ZERO,
                ..DailyRow::default()
            })
        });
        row.out_of_stock_share = (row.out_of_stock_share + pending_share).min(1.0);
        row.product_key = product_key;
        apply_to_row(row, line.event_type, t, q, delta);
        if line.event_type == EventType::StockCount
            && last_count_at == Some(t)
            && row.count_time == Some(t)
        {
            row.movement_after_count = on_hand - q;
        }
        row.closing_on_hand = on_hand;
        row.was_out_of_stock |= on_hand <= Decimal::ZERO;
        today_dirty.insert(key);
        if line.event_type == EventType::Sale
            && let Some(s) = self.stores.get_mut(&store_key)
        {
            s.extra.today_hours[local.hour() as usize] += decimal_f64(q);
        }
        Ok(())
    }

    /// Closes the store's days from `from` (its current day) to the day before `to`: writes the
    /// snapshot of every key, learns demand and the store's rhythm.
    fn close_days(
        &mut self,
        store_key: i32,
        from: NaiveDate,
        to: NaiveDate,
        ws: &mut WriteSet,
        daily_out: &mut HashMap<(i32, i32, i32), DailyRow>,
        today_dirty: &mut HashSet<(i32, u32)>,
    ) -> usize {
        let a_key = alpha(self.cfg.half_life_days);
        let a_shape = alpha(self.cfg.half_life_days * 2.0);
        let mut closed = 0;
        let mut day = from;
        let skus = self
            .stores
            .get(&store_key)
            .map(|s| s.skus.clone())
            .unwrap_or_default();
        while day < to && closed < 400 {
            let dk = self.ensure_date(day, ws);
            let weekday = day.weekday().num_days_from_monday() as usize;
            let dow = self
                .stores
                .get(&store_key)
                .map_or(1.0, |s| s.extra.shape.dow[weekday]);
            let mut store_units = 0.0;
            for sku in &skus {
                if let Some(k) = self.keys.get(&(store_key, *sku))
                    && let Some(r) = k.today.as_ref().filter(|r| r.date_key == dk)
                {
                    store_units += decimal_f64(r.units_sold);
                }
            }
            // a day the store sold nothing at all was a closed day or an outage: learn nothing
            let trading = store_units > 0.0;
            let (shape, tz) = self
                .stores
                .get(&store_key)
                .map_or((stocklake_stock::Shape::default(), chrono_tz::UTC), |s| {
                    (s.extra.shape, s.tz)
                });
            for sku in &skus {
                let key = (store_key, *sku);
                let product_key = self.skus.product(*sku).row.product_key;
                let Some(k) = self.keys.get_mut(&key) else {
                    continue;
                };
                let mut row = match k.today.take() {
                    Some(r) if r.date_key == dk => *r,
                    _ => DailyRow {
                        date_key: dk,
                        store_key,
                        product_key,
                        closing_on_hand: k.on_hand,
                        was_out_of_stock: k.on_hand <= Decimal::ZERO,
                        ..DailyRow::default()
                    },
                };
                row.out_of_stock_share =
                    (row.out_of_stock_share + std::mem::take(&mut k.pending_out_share)).min(1.0);
                if let Some(since) = k.out_since {
                    // still empty at closing: the rest of the day counts too
                    let end = day_end_utc(day, tz).unwrap_or(since);
                    row.out_of_stock_share =
                        (row.out_of_stock_share + out_share(&shape, tz, since, end, day)).min(1.0);
                }
                k.stockout_days = (k.stockout_days << 1) & 0x3fff
                    | u32::from(
                        row.out_of_stock_share > 0.0 || row.closing_on_hand <= Decimal::ZERO,
                    );
                if trading {
                    k.demand.observe_partial(
                        decimal_f64(row.units_sold),
                        row.sales_count.max(0) as u32,
                        dow,
                        row.out_of_stock_share,
                        a_key,
                    );
                }
                today_dirty.remove(&key);
                daily_out.insert((store_key, product_key, dk), row);
            }
            if let Some(s) = self.stores.get_mut(&store_key) {
                if trading {
                    let hours = s.extra.today_hours;
                    s.extra.shape.observe(&hours, weekday, a_shape);
                    let n = s.extra.weekday_days[weekday];
                    let w = 1.0 / f64::from(n + 1).min(8.0);
                    s.extra.weekday_units[weekday] =
                        (1.0 - w) * s.extra.weekday_units[weekday] + w * store_units;
                    s.extra.weekday_days[weekday] = n + 1;
                    let means = s.extra.weekday_units;
                    s.extra.shape.set_weekdays(&means);
                }
                s.extra.today_hours = [0.0; 24];
                s.dirty = true;
            }
            day += Duration::days(1);
            closed += 1;
        }
        if let Some(s) = self.stores.get_mut(&store_key) {
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
        batch_moves: &HashMap<(i32, u32), Vec<(DateTime<Utc>, Decimal)>>,
        daily_out: &mut HashMap<(i32, i32, i32), DailyRow>,
    ) -> Result<(), ModelError> {
        if late.is_empty() {
            return Ok(());
        }
        let mut by_key: BTreeMap<(i32, u32), Vec<LateMove>> = BTreeMap::new();
        for m in late {
            by_key.entry(m.key).or_default().push(m);
        }
        for (key, moves) in by_key {
            let product_key = self.skus.product(key.1).row.product_key;
            let Some(first) = moves.iter().map(|m| m.date).min() else {
                continue;
            };
            let from = first - Duration::days(1);
            let mut rows: BTreeMap<i32, DailyRow> = self
                .gold
                .daily_rows(vec![(key.0, product_key)], date_key(from))
                .await?
                .into_iter()
                .map(|r| (r.date_key, r))
                .collect();
            // what this batch already changed wins over what the database holds
            for r in daily_out
                .values()
                .filter(|r| r.store_key == key.0 && r.product_key == product_key)
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
                    store_key: key.0,
                    product_key,
                    ..DailyRow::default()
                });
                apply_to_row(row, m.event_type, m.time, m.quantity, m.delta);
                if m.event_type == EventType::StockCount && row.count_time == Some(m.time) {
                    // what moved later that day, after the count
                    let end = m.date + Duration::days(1);
                    let tz = self.stores[&key.0].tz;
                    let mut after = Decimal::ZERO;
                    let mut seen: Vec<(DateTime<Utc>, Decimal)> = self
                        .gold
                        .movements_after(key.0, product_key, m.time)
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
                daily_out.insert((key.0, product_key, *dk), row.clone());
            }
            if let (Some(tk), Some(k)) = (today_key, self.keys.get_mut(&key))
                && let Some(r) = rows.get(&tk)
            {
                k.today = Some(Box::new(r.clone()));
            }
        }
        Ok(())
    }

    /// Recomputes a key's figures and alerts.
    fn evaluate(
        &mut self,
        key: (i32, u32),
        wall_now: DateTime<Utc>,
        ws: &mut WriteSet,
        report: &mut ModelReport,
        moved: bool,
    ) {
        let Some(store) = self.stores.get(&key.0) else {
            return;
        };
        let tz = store.tz;
        let now = store.clock.unwrap_or(wall_now);
        let shape = store.extra.shape;
        let store_id = store.row.store_id.clone();
        let product = self.skus.product(key.1).clone();
        let Some(k) = self.keys.get_mut(&key) else {
            return;
        };
        let lead = self.cfg.lead_time_days(product.row.lead_time_days);
        let params = Params {
            lead_time_days: lead,
            service_level: product
                .row
                .service_level
                .and_then(|s| rust_decimal::prelude::ToPrimitive::to_f64(&s))
                .unwrap_or(self.cfg.default_service_level),
            case_pack: product.case_pack(),
        };
        // what is on its way, from the receipt rhythm: a delivery expected within the lead time
        let level = k.demand.level;
        let lead_days = f64::from(lead);
        k.expected_delivery_at = k.replenishment.expected_next(now, level, lead_days);
        k.on_order = k.replenishment.in_transit(
            now,
            Duration::days(i64::from(lead)) + Duration::hours(12),
            level,
            lead_days,
        );
        let position = Position {
            on_hand: k.on_hand,
            on_order: k.on_order,
            now,
        };
        let deliveries =
            k.replenishment
                .expected_deliveries(now, Duration::days(21), level, lead_days);
        let pol = policy(&params, &k.demand, &shape, &position, tz, &deliveries);
        // for the chance of running out before an order could come: a store that has one
        // order on its way at a time has ordered once its stock fell to its usual order level,
        // and that order comes a lead time later; nothing else is on its way
        k.replenishment.note_stock(now, decimal_f64(k.on_hand));
        // (one expected by now that has not come comes with the next round of deliveries)
        let r = &k.replenishment;
        let coming: Vec<(DateTime<Utc>, f64)> = if r.orders_one_at_a_time(lead_days) {
            r.inferred_arrival(lead_days)
                .filter(|at| *at >= now - Duration::days(1))
                .map(|at| (r.next_round(at.max(now)), r.typical_qty))
                .into_iter()
                .collect()
        } else {
            deliveries
                .iter()
                .map(|(at, q)| (r.next_round(*at), *q))
                .collect()
        };
        let open_types: Vec<AlertType> = k.alerts.iter().map(|a| a.alert.alert_type).collect();
        let inputs = Inputs {
            params: &params,
            demand: &k.demand,
            shape: &shape,
            policy: &pol,
            position: &position,
            last_sale_or_restock: k.last_sale_at.max(k.in_stock_since),
            next_delivery: k.expected_delivery_at,
            delivery_slack: k.replenishment.slack(level),
            typical_delivery: k.replenishment.typical_qty,
            deliveries: &coming,
            recent_stockout_days: (k.stockout_days & 0x7f).count_ones(),
            rhythm_known: k.replenishment.receipts > 0,
            open: &open_types,
            tz,
        };
        let names = Names {
            sku: &product.row.sku,
            product: product.row.name.as_deref(),
            unit: product.unit(),
        };
        let mut conds = conditions(&inputs, &self.cfg.rules, &names);
        // a warning must hold for a while before it is raised: a projection that flickers for a
        // moment (a late afternoon lull, a big basket) is not worth a store manager's attention
        let confirm = Duration::minutes(45);
        k.pending
            .retain(|(t, _)| conds.iter().any(|c| c.alert_type == *t));
        conds.retain(|c| {
            let warning = matches!(
                c.alert_type,
                AlertType::ProjectedStockout | AlertType::BelowSafetyStock
            );
            if !warning || open_types.contains(&c.alert_type) {
                return true;
            }
            match k.pending.iter().find(|(t, _)| *t == c.alert_type) {
                Some((_, since)) => now - *since >= confirm,
                None => {
                    k.pending.push((c.alert_type, now));
                    false
                }
            }
        });
        k.pending
            .retain(|(t, _)| !conds.iter().any(|c| c.alert_type == *t));
        let open: Vec<OpenAlert> = k.alerts.iter().map(|a| a.alert.clone()).collect();
        let product_key = product.row.product_key;
        for change in lifecycle(&open, &conds) {
            let (row, kind) = match change {
                Change::Open(c) => {
                    let id = self.next_alert_id;
                    self.next_alert_id += 1;
                    k.alerts.push(OpenState {
                        alert: OpenAlert {
                            alert_id: id,
                            alert_type: c.alert_type,
                            severity: c.severity,
                            on_hand: c.on_hand,
                            threshold: c.threshold,
                            suggested_order_qty: c.suggested_order_qty,
                            message: c.message.clone(),
                        },
                        opened_at: now,
                    });
                    *self.open_alerts.entry(c.alert_type).or_default() += 1;
                    report.alerts_opened += 1;
                    (
                        AlertRow {
                            alert_id: id,
                            store_key: key.0,
                            product_key,
                            alert_type: c.alert_type.as_str().into(),
                            severity: c.severity.as_str().into(),
                            opened_at: now,
                            resolved_at: None,
                            on_hand: c.on_hand,
                            threshold: c.threshold,
                            suggested_order_qty: c.suggested_order_qty,
                            message: c.message,
                            updated_at: now,
                        },
                        Some("opened"),
                    )
                }
                Change::Update {
                    alert_id,
                    condition: c,
                } => {
                    let Some(o) = k.alerts.iter_mut().find(|a| a.alert.alert_id == alert_id) else {
                        continue;
                    };
                    let severity_changed = o.alert.severity != c.severity;
                    o.alert.severity = c.severity;
                    o.alert.on_hand = c.on_hand;
                    o.alert.threshold = c.threshold;
                    o.alert.suggested_order_qty = c.suggested_order_qty;
                    o.alert.message = c.message.clone();
                    (
                        AlertRow {
                            alert_id,
                            store_key: key.0,
                            product_key,
                            alert_type: c.alert_type.as_str().into(),
                            severity: c.severity.as_str().into(),
                            opened_at: o.opened_at,
                            resolved_at: None,
                            on_hand: c.on_hand,
                            threshold: c.threshold,
                            suggested_order_qty: c.suggested_order_qty,
                            message: c.message,
                            updated_at: now,
                        },
                        severity_changed.then_some("updated"),
                    )
                }
                Change::Resolve {
                    alert_id,
                    alert_type,
                } => {
                    let Some(pos) = k.alerts.iter().position(|a| a.alert.alert_id == alert_id)
                    else {
                        continue;
                    };
                    let o = k.alerts.remove(pos);
                    if let Some(n) = self.open_alerts.get_mut(&alert_type) {
                        *n -= 1;
                    }
                    report.alerts_resolved += 1;
                    (
                        AlertRow {
                            alert_id,
                            store_key: key.0,
                            product_key,
                            alert_type: alert_type.as_str().into(),
                            severity: o.alert.severity.as_str().into(),
                            opened_at: o.opened_at,
                            resolved_at: Some(now),
                            on_hand: k.on_hand,
                            threshold: o.alert.threshold,
                            suggested_order_qty: Decimal::ZERO,
                            message: o.alert.message,
                            updated_at: now,
                        },
                        Some("resolved"),
                    )
                }
            };
            if let Some(kind) = kind {
                let payload = serde_json::json!({
                    "alert_id": row.alert_id,
                    "change": kind,
                    "store_id": store_id,
                    "sku": product.row.sku,
                    "product_name": product.row.name,
                    "alert_type": row.alert_type,
                    "severity": row.severity,
                    "on_hand": row.on_hand,
                    "threshold": row.threshold,
                    "suggested_order_qty": row.suggested_order_qty,
                    "message": row.message,
                    "opened_at": row.opened_at,
                    "resolved_at": row.resolved_at,
                });
                ws.outbox.push(OutboxRow {
                    id: self.next_outbox_id,
                    alert_id: row.alert_id,
                    change: kind.into(),
                    payload: payload.to_string(),
                    created_at: wall_now,
                });
                self.next_outbox_id += 1;
            }
            ws.alerts.push(row);
        }
        let has_history = k.demand.days >= self.cfg.rules.min_history_days && k.demand.level > 0.0;
        let status = if k.on_hand <= Decimal::ZERO {
            "out"
        } else if has_history && k.on_hand + k.on_order <= pol.reorder_point {
            "below_reorder_point"
        } else {
            "fine"
        };
        let level = LevelRow {
            store_key: key.0,
            product_key,
            on_hand: k.on_hand,
            avg_daily_demand: pol.avg_daily_demand,
            safety_stock: pol.safety_stock,
            reorder_point: pol.reorder_point,
            days_of_cover: pol.days_of_cover,
            projected_stockout_at: pol.projected_stockout_at,
            updated_at: now,
            status,
            demand_sd: stocklake_stock::policy::estimate(k.demand.sd(), 3),
            order_up_to: pol.order_up_to,
            suggested_order_qty: pol.suggested_order_qty,
            on_order: k.on_order,
            expected_delivery_at: k.expected_delivery_at,
            last_count_at: k.last_count_at,
            last_count_quantity: k.last_count_qty,
            last_movement_at: k.last_movement_at,
            last_sale_at: k.last_sale_at,
            in_stock_since: k.in_stock_since,
            demand_level: k.demand.level,
            demand_var: k.demand.var,
            demand_days: k.demand.days as i32,
            units_per_sale: k.demand.units_per_sale,
            last_receipt_at: k.replenishment.last_receipt_at,
            receipt_interval_days: k.replenishment.interval_days,
            receipt_qty: k.replenishment.typical_qty,
            receipt_count: k.replenishment.receipts as i32,
            stockout_days: k.stockout_days as i32,
            order_level: k.replenishment.order_level,
            ordered_at: k.replenishment.ordered_at,
        };
        let print = level_print(&level);
        if moved || k.level_print != Some(print) {
            ws.levels.push(level);
            k.level_print = Some(print);
        }
        let due = k
            .timed(self.cfg.rules.min_history_days)
            .then(|| now + self.cfg.evaluate_every);
        let was = std::mem::replace(&mut k.due, due);
        if let Some(s) = self.stores.get_mut(&key.0) {
            s.reschedule(key.1, was, due);
        }
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
        ] {
            table
                .update_state()
                .await
                .map_err(|e| ModelError::Silver(e.to_string()))?;
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
        Ok(changes)
    }

    fn apply_store(&mut self, s: StoreRow, now: DateTime<Utc>, ws: &mut WriteSet) -> usize {
        let key = match self.store_ids.get(&s.store_id) {
            Some(k) => *k,
            None => {
                let k = self.next_store_key;
                self.next_store_key += 1;
                self.store_ids.insert(s.store_id.clone(), k);
                k
            }
        };
        let row = StoreRow {
            store_key: key,
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
            && cur.service_level == p.service_level;
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
        for ((_, sku), k) in self.keys.iter_mut() {
            if *sku == i {
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

/// The end of a local day, in UTC.
fn day_end_utc(day: NaiveDate, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let next = (day + Duration::days(1)).and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&next)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The share of `day`'s usual sales that falls between `from` and `to` (clamped to the day).
fn out_share(
    shape: &stocklake_stock::Shape,
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    day: NaiveDate,
) -> f64 {
    if to <= from {
        return 0.0;
    }
    let hour_of = |t: DateTime<Utc>| -> f64 {
        let l = t.with_timezone(&tz);
        let d = l.date_naive();
        if d < day {
            0.0
        } else if d > day {
            24.0
        } else {
            f64::from(l.hour()) + f64::from(l.minute()) / 60.0 + f64::from(l.second()) / 3600.0
        }
    };
    shape.share_between(hour_of(from), hour_of(to))
}

fn decimal_f64(d: Decimal) -> f64 {
    rust_decimal::prelude::ToPrimitive::to_f64(&d).unwrap_or(0.0)
}

/// Adds one movement to a daily row (closing is chained separately).
fn apply_to_row(row: &mut DailyRow, t: EventType, time: DateTime<Utc>, q: Decimal, delta: Decimal) {
    match t {
        EventType::Sale => {
            row.units_sold += q;
            row.sales_count += 1;
        }
        EventType::Return => row.units_returned += q,
        EventType::Receipt => row.units_received += q,
        EventType::Waste => row.units_wasted += q,
        EventType::Adjustment => row.units_adjusted += q,
        EventType::StockCount => {
            let later = match (row.count_time, row.count_quantity) {
                (None, _) => true,
                (Some(ct), cq) => time > ct || (time == ct && Some(q) > cq),
            };
            if later {
                row.count_time = Some(time);
                row.count_quantity = Some(q);
                row.movement_after_count = Decimal::ZERO;
            }
            return;
        }
    }
    row.net_movement += delta;
    if row.count_time.is_some_and(|ct| time > ct) {
        row.movement_after_count += delta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_rows_count_each_kind_and_what_followed_the_count() {
        let t = |h: u32| {
            DateTime::<Utc>::from_timestamp(1_762_070_400 + i64::from(h) * 3600, 0).expect("time")
        };
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        let mut row = DailyRow::default();
        apply_to_row(&mut row, EventType::Receipt, t(6), d("24"), d("24"));
        apply_to_row(&mut row, EventType::Sale, t(9), d("2"), d("-2"));
        apply_to_row(&mut row, EventType::StockCount, t(12), d("20"), d("-2"));
        apply_to_row(&mut row, EventType::Sale, t(15), d("1.5"), d("-1.5"));
        apply_to_row(&mut row, EventType::Waste, t(20), d("1"), d("-1"));
        // a count earlier than the one kept does not replace it
        apply_to_row(&mut row, EventType::StockCount, t(11), d("99"), d("0"));
        assert_eq!(row.units_received, d("24"));
        assert_eq!(row.units_sold, d("3.5"));
        assert_eq!(row.sales_count, 2);
        assert_eq!(row.units_wasted, d("1"));
        assert_eq!(row.net_movement, d("19.5"));
        assert_eq!(row.count_quantity, Some(d("20")));
        assert_eq!(row.movement_after_count, d("-2.5"));
    }
}
