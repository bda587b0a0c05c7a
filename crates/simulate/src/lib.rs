//! # stocklake-simulate
//!
//! A supermarket chain in a box: stores with opening hours and a daily rhythm, a catalog with
//! skewed popularity, perishables and weighed goods, promotions, deliveries after a lead time,
//! waste, cycle counts and unrecorded theft — and customers who cannot buy what is not on the
//! shelf. It emits the POS events such a chain would send, and, on request, the ground truth
//! (what was really on the shelves, every stock-out) to measure alerts against.
//!
//! The same seed gives the same output byte for byte: every store has its own generator derived
//! from the seed, the store and the day, so stores are simulated in parallel without changing
//! the result.
//!
//! ```
//! use stocklake_simulate::{SimConfig, Simulator};
//! let mut sim = Simulator::new(SimConfig { stores: 2, skus: 50, days: 1, ..SimConfig::default() });
//! let day = sim.next_day().unwrap();
//! assert!(!day.records.is_empty());
//! ```
//!
//! # Layout
//! - `catalog`: products and stores, and their CSV form;
//! - `store`: one store's day (deliveries, customers, closing, reordering);
//! - `wire`: the canonical and legacy record forms; `bad`: malformed records;
//! - `truth`: the ground truth; `stats`: the `--stats` summary;
//! - `sink`: where records go (stdout, a file, HTTP, Kinesis) and the real-time pacer.

pub mod bad;
pub mod catalog;
mod rng;
pub mod sink;
pub mod stats;
pub mod store;
pub mod truth;
pub mod wire;

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use catalog::{Catalog, Product, Store, StoreFormat, Supplier};
pub use sink::{RunOptions, SimError, Target, run};
pub use stats::Stats;
pub use store::{Milli, Promotion, Shelf, UNIT};
pub use truth::TruthRecord;
pub use wire::{OutRecord, WireFormat};

use store::StoreSim;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub stores: usize,
    pub skus: usize,
    /// The first instant simulated: the opening stock count happens then.
    pub start: DateTime<Utc>,
    pub days: u32,
    /// Share of records followed by a malformed or repeated one.
    pub bad_rate: f64,
    pub format: WireFormat,
    /// Multiplier of unrecorded theft (1 = typical).
    pub shrink: f64,
    /// Whether days carry the ground truth ([`DayBatch::truth`]); building it costs about as
    /// much as the records themselves.
    pub truth: bool,
    /// Whether stores send their orders as `purchase_order` events and their receipts name the
    /// order they fulfil (the order feed); without it, receipts alone tell of deliveries.
    pub purchase_orders: bool,
    /// Whether the caller places the stores' orders ([`Simulator::place_orders`] after each
    /// day) instead of the stores' own rule.
    pub external_orders: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            stores: 20,
            skus: 2000,
            start: default_start(),
            days: 7,
            bad_rate: 0.0,
            format: WireFormat::Canonical,
            shrink: 1.0,
            truth: true,
            purchase_orders: true,
            external_orders: false,
        }
    }
}

/// Monday 2 November 2026, 00:00 UTC: a fixed default so that output does not depend on when
/// it is run.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// One simulated day's output, in event-time order.
#[derive(Debug)]
pub struct DayBatch {
    pub day: u32,
    pub date: NaiveDate,
    pub records: Vec<OutRecord>,
    pub truth: Vec<TruthRecord>,
}

/// The simulator: call [`Simulator::next_day`] until it returns `None`.
#[derive(Debug)]
pub struct Simulator {
    cfg: SimConfig,
    catalog: Catalog,
    stores: Vec<StoreSim>,
    sku_index: HashMap<String, usize>,
    day: u32,
    first_date: NaiveDate,
    promotions: Vec<Promotion>,
    stats: Stats,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Simulator {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let catalog = Catalog::generate(&mut rng, cfg.stores, cfg.skus);
        let stores = (0..catalog.stores.len())
            .map(|i| StoreSim::new(&catalog, i, cfg.seed))
            .collect();
        let sku_index = catalog
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.sku.clone(), i))
            .collect();
        let stats = Stats {
            stores: catalog.stores.len(),
            skus: catalog.products.len(),
            ..Stats::default()
        };
        Simulator {
            first_date: cfg.start.date_naive(),
            cfg,
            catalog,
            stores,
            sku_index,
            day: 0,
            promotions: Vec::new(),
            stats,
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Gives every product the service level `level` (what the closed loop's ordering aims
    /// at); the shelves do not depend on it.
    pub fn set_service_level(&mut self, level: f64) {
        for p in &mut self.catalog.products {
            p.service_level = level;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Adds what a sink reports (records and bytes written) to the counters.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// The date of the last simulated day, if any.
    pub fn end_date(&self) -> NaiveDate {
        self.first_date + Duration::days(i64::from(self.cfg.days.max(1)) - 1)
    }

    /// The index of the day [`Simulator::next_day`] simulated last, and its date (the first
    /// day before any).
    pub fn last_day(&self) -> (u32, NaiveDate) {
        let day = self.day.saturating_sub(1);
        (day, self.first_date + Duration::days(i64::from(day)))
    }

    /// Store `store`'s products, as its records and as its shelves see them.
    pub fn shelves(&self, store: usize) -> impl Iterator<Item = Shelf> + '_ {
        self.stores.get(store).into_iter().flat_map(|s| s.shelves())
    }

    /// What store `store`'s own rule orders after the last day simulated: (product, quantity).
    pub fn store_rule(&self, store: usize) -> Vec<(u32, Milli)> {
        let (_, date) = self.last_day();
        self.stores
            .get(store)
            .map(|s| s.store_rule(&self.catalog, date))
            .unwrap_or_default()
    }

    /// The expected demand of a store's product (`shelf`, from [`Simulator::shelves`]) on
    /// `date`, in thousandths: its mean, the weekday's traffic, and a promotion's lift when one
    /// is known by then.
    pub fn expected_demand(&self, shelf: &Shelf, date: NaiveDate) -> f64 {
        let day = (date - self.first_date).num_days();
        let weekday = date.weekday().num_days_from_monday() as usize;
        let base = shelf.mean_demand * store::weekday_traffic(weekday);
        let promo = u32::try_from(day).ok().and_then(|day| {
            self.promotions
                .iter()
                .find(|p| p.product == shelf.product && p.first_day <= day && day <= p.last_day)
        });
        match promo {
            Some(p) => {
                base * p.lift
                    * store::promotion_pick_factor(&self.catalog.products[shelf.product as usize])
            }
            None => base,
        }
    }

    /// Places orders after closing on the last day simulated (with
    /// [`SimConfig::external_orders`]): `orders[store]` lists that store's (product, quantity)
    /// lines. Each store orders once per supplier; the lines its suppliers do not take that
    /// weekday are refused (see [`Stats::order_lines_refused`]). Returns the `purchase_order`
    /// records (with [`SimConfig::purchase_orders`]) and the orders' truth.
    pub fn place_orders(
        &mut self,
        orders: &[Vec<(u32, Milli)>],
    ) -> (Vec<OutRecord>, Vec<TruthRecord>) {
        let (day, date) = self.last_day();
        let mut runs = Vec::new();
        let mut truth = Vec::new();
        let lookup = |sku: &str| self.sku_index.get(sku).copied();
        for (s, lines) in self.stores.iter_mut().zip(orders) {
            let placed = s.place_orders(
                &self.catalog,
                self.cfg.seed,
                day,
                date,
                lines,
                self.cfg.purchase_orders,
            );
            self.stats.merge(&placed.stats);
            truth.extend(
                placed
                    .orders
                    .iter()
                    .map(|o| TruthRecord::order(&self.catalog, o)),
            );
            let mut rng = store::store_rng(self.cfg.seed ^ 0x5EED ^ 0x0D, s.index, day);
            let mut records = Vec::new();
            for e in &placed.events {
                *self
                    .stats
                    .events_by_type
                    .entry(e.event_type.as_str())
                    .or_default() += 1;
                self.stats.lines += e.lines.len() as u64;
                if !wire::encode(
                    e,
                    self.cfg.format,
                    &self.catalog,
                    &lookup,
                    &mut rng,
                    &mut records,
                ) {
                    self.stats.legacy_skipped += 1;
                }
            }
            runs.push(records);
        }
        (merge_in_time_order(runs), truth)
    }

    /// Simulates the next day of every store; `None` after the last day.
    pub fn next_day(&mut self) -> Option<DayBatch> {
        if self.day >= self.cfg.days {
            return None;
        }
        let day = self.day;
        self.day += 1;
        self.stats.days = self.day;
        let date = self.first_date + Duration::days(i64::from(day));
        let mut truth = Vec::new();
        // promotions: chosen each Monday (and on the first day) for a week
        if day == 0 || date.weekday() == Weekday::Mon {
            self.choose_promotions(day, date, &mut truth);
        }
        let results = run_stores(
            &mut self.stores,
            &self.catalog,
            &self.cfg,
            &self.promotions,
            &self.sku_index,
            day,
            date,
        );
        let mut runs = Vec::with_capacity(results.len());
        for (_, r, sd) in results {
            runs.push(r);
            self.stats.merge(&sd.stats);
            if !self.cfg.truth {
                continue;
            }
            truth.extend(
                sd.truth_stock
                    .iter()
                    .map(|s| TruthRecord::stock(&self.catalog, date, s)),
            );
            truth.extend(
                sd.episodes
                    .iter()
                    .map(|e| TruthRecord::episode(&self.catalog, e)),
            );
            truth.extend(
                sd.orders
                    .iter()
                    .filter(|o| o.ordered_at > self.cfg.start)
                    .map(|o| TruthRecord::order(&self.catalog, o)),
            );
        }
        let mut records = merge_in_time_order(runs);
        if self.cfg.bad_rate > 0.0 {
            records = self.mix_in_bad(records, day);
        }
        if self.day == self.cfg.days && self.cfg.truth {
            for s in &self.stores {
                truth.extend(
                    s.open_episodes()
                        .iter()
                        .map(|e| TruthRecord::episode(&self.catalog, e)),
                );
            }
        }
        Some(DayBatch {
            day,
            date,
            records,
            truth,
        })
    }

    /// A week's promotions from `day`: 2% of the products, each with its lift and discount.
    fn choose_promotions(&mut self, day: u32, date: NaiveDate, truth: &mut Vec<TruthRecord>) {
        let mut rng = store::store_rng(self.cfg.seed, usize::MAX, day);
        let n = (self.catalog.products.len() as f64 * 0.02).ceil() as usize;
        for _ in 0..n {
            let product = rng.random_range(0..self.catalog.products.len()) as u32;
            let promo = Promotion {
                product,
                first_day: day,
                last_day: day + 6,
                lift: 1.5 + rng.random::<f64>() * 1.5,
                discount: ((0.1 + rng.random::<f64>() * 0.2) * 100.0).round() / 100.0,
            };
            truth.push(TruthRecord::Promotion {
                sku: self.catalog.products[product as usize].sku.clone(),
                first_date: date,
                last_date: date + Duration::days(6),
                lift: (promo.lift * 100.0).round() / 100.0,
                discount: promo.discount,
            });
            self.promotions.push(promo);
            self.stats.promotions += 1;
        }
        self.promotions.retain(|p| p.last_day >= day);
    }

    /// Records a careless till would send, mixed in after the good ones they imitate.
    fn mix_in_bad(&mut self, records: Vec<OutRecord>, day: u32) -> Vec<OutRecord> {
        let mut rng = store::store_rng(self.cfg.seed ^ 0xBAD, usize::MAX, day);
        let mut mixed = Vec::with_capacity(records.len() + records.len() / 50);
        for r in records {
            let bad = rng.random_bool(self.cfg.bad_rate.clamp(0.0, 1.0)).then(|| {
                let kind = bad::KINDS[rng.random_range(0..bad::KINDS.len())];
                bad::corrupt(&mut rng, &r, kind).map(|b| (kind, b))
            });
            mixed.push(r);
            if let Some(Some((kind, b))) = bad {
                *self.stats.bad_records.entry(kind).or_default() += 1;
                mixed.push(b);
            }
        }
        mixed
    }
}

/// Every store's day, on up to eight threads, in store order.
fn run_stores<'c>(
    stores: &mut [StoreSim],
    catalog: &'c Catalog,
    cfg: &SimConfig,
    promotions: &[Promotion],
    sku_index: &HashMap<String, usize>,
    day: u32,
    date: NaiveDate,
) -> Vec<(usize, Vec<OutRecord>, store::StoreDay<'c>)> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(stores.len().max(1));
    // stores differ a lot in size (a hypermarket sells far more than a convenience store):
    // each thread takes the next store when it is done, the largest first so that no thread
    // is left with a big one at the end, and the results go back in store order
    let mut order: Vec<&mut StoreSim> = stores.iter_mut().collect();
    let work = |s: &StoreSim| {
        let st = &catalog.stores[s.index];
        st.format.baskets_per_day() * st.format.basket_scale() * st.traffic
    };
    order.sort_by(|a, b| work(b).total_cmp(&work(a)));
    let queue = std::sync::Mutex::new(order.into_iter());
    let next_store = || queue.lock().ok().and_then(|mut q| q.next());
    let mut results: Vec<(usize, Vec<OutRecord>, store::StoreDay<'c>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        while let Some(s) = next_store() {
                            let (records, sd) =
                                simulate_store(s, catalog, cfg, promotions, sku_index, day, date);
                            done.push((s.index, records, sd));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
    results.sort_by_key(|(index, _, _)| *index);
    results
}

/// Merges runs of records, each in time order, into one: the order a stable sort of their
/// concatenation by time gives (at equal times, the earlier run first), with each record moved
/// once. Runs not in order are sorted the plain way.
fn merge_in_time_order(runs: Vec<Vec<OutRecord>>) -> Vec<OutRecord> {
    use std::cmp::Reverse;
    if !runs.iter().all(|r| r.is_sorted_by_key(|x| x.time)) {
        let mut all: Vec<OutRecord> = runs.into_iter().flatten().collect();
        all.sort_by_key(|r| r.time);
        return all;
    }
    let mut merged = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    let mut runs: Vec<_> = runs.into_iter().map(|r| r.into_iter().peekable()).collect();
    let mut heads: std::collections::BinaryHeap<_> = runs
        .iter_mut()
        .enumerate()
        .filter_map(|(i, run)| run.peek().map(|r| Reverse((r.time, i))))
        .collect();
    while let Some(Reverse((_, i))) = heads.pop() {
        merged.extend(runs[i].next());
        if let Some(r) = runs[i].peek() {
            heads.push(Reverse((r.time, i)));
        }
    }
    merged
}

/// One store's day, simulated and encoded.
fn simulate_store<'c>(
    s: &mut StoreSim,
    catalog: &'c Catalog,
    cfg: &SimConfig,
    promotions: &[Promotion],
    sku_index: &HashMap<String, usize>,
    day: u32,
    date: NaiveDate,
) -> (Vec<OutRecord>, store::StoreDay<'c>) {
    let (seed, start) = (cfg.seed, cfg.start);
    let opening = if day == 0 {
        s.opening_count(catalog, start, seed)
    } else {
        Vec::new()
    };
    let mut sd = s.simulate_day(catalog, cfg, day, date, promotions);
    let events = if opening.is_empty() {
        std::mem::take(&mut sd.events)
    } else {
        let mut events = opening;
        events.append(&mut sd.events);
        events
    };
    let mut rng = store::store_rng(seed ^ 0x5EED, s.index, day);
    let lookup = |sku: &str| sku_index.get(sku).copied();
    let mut records = Vec::with_capacity(events.len());
    for e in &events {
        *sd.stats
            .events_by_type
            .entry(e.event_type.as_str())
            .or_default() += 1;
        sd.stats.lines += e.lines.len() as u64;
        if !wire::encode(e, cfg.format, catalog, &lookup, &mut rng, &mut records) {
            sd.stats.legacy_skipped += 1;
        }
    }
    (records, sd)
}

#[cfg(test)]
mod tests;
