//! One store's day: deliveries, customers, expiry, theft, counts and reordering.
//!
//! Quantities are integers in thousandths of a unit (a gram for goods sold by the kilogram), so
//! the simulated shelf is exact and the events it emits carry exact decimals.

use std::borrow::Cow;
use std::collections::VecDeque;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use stocklake_event::{Event, EventType, Form, Line};

use crate::catalog::{Catalog, Product, Store};
use crate::rng::{WeightedIndex, normal, poisson};
use crate::truth::{Episode, EpisodeKind, TruthOrder, TruthStock};

/// Thousandths of a unit.
pub type Milli = i64;
pub const UNIT: Milli = 1000;

/// Relative basket traffic by local hour of day: a morning and an evening peak.
const HOUR_PROFILE: [f64; 24] = [
    0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.55, 0.8, 1.0, 1.25, 1.55, 1.7, 1.45, 1.05, 0.9, 1.1, 1.55,
    1.9, 1.8, 1.35, 0.85, 0.45, 0.2,
];

/// Relative traffic by weekday, Monday first.
const WEEKDAY: [f64; 7] = [0.92, 0.86, 0.9, 0.97, 1.15, 1.32, 0.62];

/// A chain-wide promotion.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub product: u32,
    pub first_day: u32,
    pub last_day: u32,
    /// Demand multiplier.
    pub lift: f64,
    /// Share of the price taken off.
    pub discount: f64,
}

/// What one store's day produced; its events borrow their names from the catalog.
#[derive(Debug, Default)]
pub struct StoreDay<'c> {
    pub events: Vec<Event<'c>>,
    pub truth_stock: Vec<TruthStock>,
    pub episodes: Vec<Episode>,
    pub orders: Vec<TruthOrder>,
    pub stats: crate::stats::Stats,
}

impl<'c> StoreDay<'c> {
    /// Adds what placing orders produced.
    pub fn absorb(&mut self, mut o: StoreDay<'c>) {
        self.events.append(&mut o.events);
        self.orders.append(&mut o.orders);
        self.stats.merge(&o.stats);
    }
}

/// One product of a store as its records and as the shelf see it.
#[derive(Debug, Clone)]
pub struct Shelf {
    pub product: u32,
    /// What is really on the shelf (thousandths).
    pub on_hand: Milli,
    /// What the store's records say.
    pub recorded: Milli,
    /// Deliveries on their way: (the day index they arrive, quantity).
    pub on_order: Vec<(u32, Milli)>,
    /// The store's own estimate of daily sales.
    pub estimate: f64,
    /// The true mean demand of a nominal day at normal price (a weekday's is this times
    /// [`weekday_traffic`]).
    pub mean_demand: f64,
    /// Sold on the last day simulated.
    pub sold_today: Milli,
    /// Demand lost to an empty shelf since the start.
    pub lost: Milli,
}

#[derive(Debug, Clone)]
struct KeyState {
    product: u32,
    /// What is really on the shelf.
    true_qty: Milli,
    /// For perishables: lots of (quantity, last day they may be sold), oldest first.
    lots: VecDeque<(Milli, u32)>,
    /// What the store's records say (the sum of its own events).
    recorded: Milli,
    /// Deliveries on their way: (arrival day index, quantity, the order's id).
    on_order: Vec<(u32, Milli, std::sync::Arc<str>)>,
    /// The store's own estimate of daily sales (it never sees lost demand).
    estimate: f64,
    /// The true mean daily demand at normal price, for the initial stock.
    mean_demand: f64,
    sold_today: Milli,
    out_since: Option<DateTime<Utc>>,
    lost_in_episode: Milli,
    /// Demand lost since the start.
    lost: Milli,
    phantom_since: Option<DateTime<Utc>>,
    count_phase: u32,
}

/// A store's state across days.
#[derive(Debug, Clone)]
pub struct StoreSim {
    pub index: usize,
    keys: Vec<KeyState>,
    /// Key index of each product the store sells.
    key_of: std::collections::HashMap<u32, usize>,
    seq: u64,
}

/// Days between cycle counts of one SKU.
const COUNT_CYCLE: u32 = 21;

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generator for one store on one day: independent of every other store, so stores can be
/// simulated in parallel and the output is still the same for a seed.
pub fn store_rng(seed: u64, store: usize, day: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed
        ^ mix((store as u64).wrapping_add(1))
        ^ mix(u64::from(day) << 32)))
}

/// Salts of the streams and draws kept apart from the day's main one.
const IDS: u64 = 0x1D5;
const SHORT: u64 = 0x5407;
const LATE: u64 = 0x1A7E;

/// A draw in [0, 1) fixed by the seed, the store, the product (or supplier) and the day alone.
fn fixed_draw(seed: u64, store: usize, item: u32, day: u32, salt: u64) -> f64 {
    let x = mix(seed
        ^ mix(salt)
        ^ mix(((store as u64) << 32) | u64::from(item))
        ^ mix(u64::from(day).wrapping_add(0x9E37)));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The basket traffic of a weekday (0 = Monday) relative to a store's nominal day.
pub fn weekday_traffic(weekday: usize) -> f64 {
    WEEKDAY[weekday % 7]
}

/// How much more of a product a promotion's pick takes: now and then a unit more.
pub fn promotion_pick_factor(p: &Product) -> f64 {
    if p.weighed {
        1.0
    } else {
        (mean_pick(p) + 0.3 * UNIT as f64) / mean_pick(p)
    }
}

/// Mean items per basket pick, in thousandths.
fn mean_pick(p: &Product) -> f64 {
    if p.weighed { 650.0 } else { 1300.0 }
}

/// Mean number of items (picks) in a basket before the store's scale.
const MEAN_BASKET: f64 = 8.4;

/// A store's local time on one date.
struct LocalClock {
    date: NaiveDate,
    tz: chrono_tz::Tz,
}

impl LocalClock {
    /// The instant of a local time of the day.
    fn at(&self, h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
        let t = NaiveTime::from_hms_milli_opt(h.min(23), m.min(59), s.min(59), ms.min(999))
            .unwrap_or(NaiveTime::MIN);
        let naive = self.date.and_time(t);
        match self.tz.from_local_datetime(&naive).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // a time skipped by a clock change: an hour later exists
            None => Utc.from_utc_datetime(&(naive + Duration::hours(1))),
        }
    }
}

/// One day of one store being simulated: where, when, its random draws and what it produced.
struct Day<'c> {
    catalog: &'c Catalog,
    store: &'c Store,
    day: u32,
    date: NaiveDate,
    /// Nothing before this happened (the simulation starts then).
    not_before: DateTime<Utc>,
    clock: LocalClock,
    /// Demand, theft, damage and the times of the day: drawn the same whatever was ordered.
    rng: ChaCha8Rng,
    /// Event ids, whose number depends on what was ordered and sold.
    ids: ChaCha8Rng,
    seed: u64,
    out: StoreDay<'c>,
}

impl StoreSim {
    /// The store at the start: shelves stocked near their targets.
    pub fn new(catalog: &Catalog, index: usize, seed: u64) -> StoreSim {
        let store = &catalog.stores[index];
        let mut rng = store_rng(seed, index, u32::MAX);
        let total_pop: f64 = store
            .assortment
            .iter()
            .map(|&p| catalog.products[p as usize].popularity)
            .sum();
        let picks_per_day = store.format.baskets_per_day()
            * store.traffic
            * MEAN_BASKET
            * store.format.basket_scale();
        let keys: Vec<KeyState> = store
            .assortment
            .iter()
            .map(|&pi| {
                let p = &catalog.products[pi as usize];
                let mean_demand =
                    picks_per_day * p.popularity / total_pop.max(f64::MIN_POSITIVE) * mean_pick(p);
                let target = order_up_to(p, mean_demand);
                let fill = 0.55 + rng.random::<f64>() * 0.45;
                let qty = round_to_unit(p, target * fill).max(if p.weighed { 0 } else { UNIT });
                let mut lots = VecDeque::new();
                if let Some(life) = p.shelf_life_days {
                    lots.push_back((qty, rng.random_range(0..life.max(1))));
                }
                KeyState {
                    product: pi,
                    true_qty: qty,
                    lots,
                    recorded: qty,
                    on_order: Vec::new(),
                    estimate: mean_demand,
                    mean_demand,
                    sold_today: 0,
                    out_since: None,
                    lost_in_episode: 0,
                    lost: 0,
                    phantom_since: None,
                    count_phase: rng.random_range(0..COUNT_CYCLE),
                }
            })
            .collect();
        let key_of = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.product, i))
            .collect();
        StoreSim {
            index,
            keys,
            key_of,
            seq: 0,
        }
    }

    /// The opening inventory: a full count of every SKU at `at`.
    pub fn opening_count<'c>(
        &mut self,
        catalog: &'c Catalog,
        at: DateTime<Utc>,
        seed: u64,
    ) -> Vec<Event<'c>> {
        let store = &catalog.stores[self.index];
        let mut rng = store_rng(seed, self.index, u32::MAX - 1);
        let lines: Vec<_> = self
            .keys
            .iter()
            .map(|k| (k.product, k.true_qty, None))
            .collect();
        let mut events = Vec::new();
        for chunk in lines.chunks(1000) {
            events.push(self.event(
                &mut rng,
                catalog,
                store,
                EventType::StockCount,
                at,
                None,
                chunk,
            ));
        }
        events
    }

    /// Simulates local day `day` (an index from the first day) of this store.
    pub fn simulate_day<'c>(
        &mut self,
        catalog: &'c Catalog,
        cfg: &crate::SimConfig,
        day: u32,
        date: NaiveDate,
        promotions: &[Promotion],
    ) -> StoreDay<'c> {
        let (seed, not_before, shrink) = (cfg.seed, cfg.start, cfg.shrink);
        let store = &catalog.stores[self.index];
        let mut d = Day {
            catalog,
            store,
            day,
            date,
            not_before,
            clock: LocalClock {
                date,
                tz: store.timezone,
            },
            rng: store_rng(seed, self.index, day),
            ids: store_rng(seed ^ IDS, self.index, day),
            seed,
            out: StoreDay::default(),
        };
        for k in &mut self.keys {
            k.sold_today = 0;
        }
        self.deliver(&mut d, cfg.purchase_orders);
        self.serve_customers(&mut d, promotions);
        self.close_day(&mut d, shrink);
        self.learn_sales();
        if !cfg.external_orders {
            let lines = self.store_rule(catalog, date);
            let placed = self.place_orders(catalog, seed, day, date, &lines, cfg.purchase_orders);
            d.out.absorb(placed);
        }
        // the truth at the end of the day
        for k in &self.keys {
            d.out.truth_stock.push(TruthStock {
                store: self.index as u32,
                product: k.product,
                on_hand: k.true_qty,
                recorded: k.recorded,
            });
        }
        d.out.events.retain(|e| e.event_time > not_before);
        d.out
    }

    /// The morning delivery: what was ordered for today arrives (now and then short, or keyed
    /// in short), one receipt per order, naming it when the store sends its orders.
    fn deliver<'c>(&mut self, d: &mut Day<'c>, name_orders: bool) {
        let delivery_at = d
            .clock
            .at(6, d.rng.random_range(0..45), d.rng.random_range(0..60), 0);
        if delivery_at <= d.not_before {
            return;
        }
        let (catalog, day) = (d.catalog, d.day);
        // (order id, lines), in the order the orders were placed
        let mut receipts: Vec<(
            std::sync::Arc<str>,
            Vec<(u32, Milli, Option<(Decimal, Decimal)>)>,
        )> = Vec::new();
        for ki in 0..self.keys.len() {
            let due: Vec<(Milli, std::sync::Arc<str>)> = {
                let k = &mut self.keys[ki];
                let due = k
                    .on_order
                    .iter()
                    .filter(|(d, _, _)| *d <= day)
                    .map(|(_, q, o)| (*q, o.clone()))
                    .collect();
                k.on_order.retain(|(d, _, _)| *d > day);
                due
            };
            for (arrived, order) in due {
                if arrived <= 0 {
                    continue;
                }
                let p = &catalog.products[self.keys[ki].product as usize];
                // now and then a delivery is short and nobody notices: records drift
                // and now and then one is keyed in short while all of it reached the shelf
                // drawn for this store, product and day alone: the same delivery is short alike
                // whatever else was ordered
                let product = self.keys[ki].product;
                let roll = fixed_draw(d.seed, self.index, product, day, SHORT);
                let (actual, recorded) = if roll < 0.01 {
                    let most = p.case_pack.div_ceil(2).max(1);
                    let size = fixed_draw(d.seed, self.index, product, day, SHORT + 1);
                    let short =
                        UNIT * i64::from(((size * f64::from(most)) as u32).min(most - 1) + 1);
                    ((arrived - short).max(0), arrived)
                } else if roll < 0.015 {
                    (
                        arrived,
                        (arrived - Milli::from(p.case_pack) * UNIT).max(UNIT),
                    )
                } else {
                    (arrived, arrived)
                };
                let arrived = recorded;
                let k = &mut self.keys[ki];
                k.recorded += arrived;
                self.add_stock(ki, catalog, actual, day, delivery_at, &mut d.out);
                d.out.stats.units_received += arrived;
                let line = (self.keys[ki].product, arrived, None);
                match receipts.iter_mut().find(|(o, _)| *o == order) {
                    Some((_, lines)) => lines.push(line),
                    None => receipts.push((order, vec![line])),
                }
            }
        }
        receipts.sort_by(|a, b| a.0.cmp(&b.0));
        d.out.stats.deliveries += receipts.len() as u64;
        for (order, lines) in receipts {
            for chunk in lines.chunks(1000) {
                let mut e = self.event(
                    &mut d.ids,
                    catalog,
                    d.store,
                    EventType::Receipt,
                    delivery_at,
                    None,
                    chunk,
                );
                // one receipt per order either way (the same draws, the same chain); without
                // the order feed it names none
                if name_orders {
                    e.order_id = Some(Cow::Owned(order.to_string()));
                }
                d.out.events.push(e);
            }
        }
    }

    /// Customers: baskets through the opening hours, picked by popularity and promotion, taking
    /// what the shelf holds; now and then a return.
    fn serve_customers<'c>(&mut self, d: &mut Day<'c>, promotions: &[Promotion]) {
        let (catalog, store, day) = (d.catalog, d.store, d.day);
        let promo_of = |product: u32| {
            promotions
                .iter()
                .find(|p| p.product == product && p.first_day <= day && day <= p.last_day)
        };
        let weights: Vec<f64> = self
            .keys
            .iter()
            .map(|k| {
                let pop = catalog.products[k.product as usize].popularity;
                pop * promo_of(k.product).map_or(1.0, |p| p.lift)
            })
            .collect();
        let baskets = self.baskets(d);
        let chooser = WeightedIndex::new(weights);
        // the share each key's promotion takes off today, as a decimal, looked up once rather
        // than for every pick
        let key_promo: Vec<Option<Decimal>> = self
            .keys
            .iter()
            .map(|k| promo_of(k.product).map(|p| Decimal::try_from(p.discount).unwrap_or_default()))
            .collect();
        d.out.events.reserve(baskets.len() + 8);
        let mut txn_no = 0u32;
        // a basket's picks and lines, the buffers kept from one basket to the next
        let mut picks: Vec<(usize, Milli)> = Vec::new();
        let mut lines = Vec::new();
        let txn_prefix = format!("{}-{}-", store.store_id, d.date.format("%Y%m%d"));
        for (_, register, hour, t) in baskets {
            if t <= d.not_before {
                continue;
            }
            txn_no += 1;
            let txn = transaction_id(&txn_prefix, txn_no);
            let register = register_id(register);
            if d.rng.random_bool(0.004) && self.bring_back(d, &chooser, t, register.clone(), &txn) {
                continue;
            }
            let size = basket_size(&mut d.rng, store.format.basket_scale());
            picks.clear();
            for _ in 0..size {
                let ki = chooser.sample(&mut d.rng);
                let p = &catalog.products[self.keys[ki].product as usize];
                let mut want = pick_quantity(&mut d.rng, p);
                if key_promo[ki].is_some() && !p.weighed && d.rng.random_bool(0.3) {
                    want += UNIT;
                }
                match picks.iter_mut().find(|(k, _)| *k == ki) {
                    Some(existing) => existing.1 += want,
                    None => picks.push((ki, want)),
                }
            }
            lines.clear();
            for &(ki, want) in &picks {
                if let Some(line) = self.take(d, ki, want, key_promo[ki], t) {
                    lines.push(line);
                }
            }
            if lines.is_empty() {
                d.out.stats.empty_baskets += 1;
                continue;
            }
            d.out.stats.record_basket(lines.len(), hour);
            let mut e = self.event(&mut d.ids, catalog, store, EventType::Sale, t, None, &lines);
            e.register_id = Some(register);
            e.transaction_id = Some(Cow::Owned(txn));
            d.out.events.push(e);
        }
    }

    /// The day's baskets: (instant in milliseconds, register, local hour, instant), in order.
    /// The instants are whole milliseconds, so ordering by the number orders them, and equal
    /// keys are equal baskets (an unstable sort then gives what a stable one would).
    fn baskets(&self, d: &mut Day<'_>) -> Vec<(i64, u32, u32, DateTime<Utc>)> {
        let store = d.store;
        let (open, close) = store.format.hours();
        let weekday = chrono::Datelike::weekday(&d.date).num_days_from_monday() as usize;
        let day_noise = (1.0 + 0.07 * normal(&mut d.rng)).clamp(0.7, 1.3);
        let mean_baskets =
            store.format.baskets_per_day() * store.traffic * WEEKDAY[weekday] * day_noise;
        let hours: Vec<f64> = (0..24)
            .map(|h| {
                if h >= open && h < close {
                    HOUR_PROFILE[h as usize]
                } else {
                    0.0
                }
            })
            .collect();
        let hour_total: f64 = hours.iter().sum();
        let mut baskets: Vec<(i64, u32, u32, DateTime<Utc>)> = Vec::new();
        for (h, w) in hours.iter().enumerate() {
            if *w <= 0.0 {
                continue;
            }
            let n = poisson(&mut d.rng, mean_baskets * w / hour_total);
            for _ in 0..n {
                let t = d.clock.at(
                    h as u32,
                    d.rng.random_range(0..60),
                    d.rng.random_range(0..60),
                    d.rng.random_range(0..1000),
                );
                let register = d.rng.random_range(1..=store.format.registers());
                baskets.push((t.timestamp_millis(), register, h as u32, t));
            }
        }
        baskets.sort_unstable_by_key(|&(ms, register, hour, _)| (ms, register, hour));
        baskets
    }

    /// A customer brings something back (not a perishable): whether a return was made.
    fn bring_back(
        &mut self,
        d: &mut Day<'_>,
        chooser: &WeightedIndex,
        t: DateTime<Utc>,
        register: Cow<'static, str>,
        txn: &str,
    ) -> bool {
        let catalog = d.catalog;
        let ki = chooser.sample(&mut d.rng);
        let p = &catalog.products[self.keys[ki].product as usize];
        if p.shelf_life_days.is_some() {
            return false;
        }
        let q = if p.weighed { 500 } else { UNIT };
        self.keys[ki].recorded += q;
        self.add_stock(ki, catalog, q, d.day, t, &mut d.out);
        d.out.stats.units_returned += q;
        let line = (
            self.keys[ki].product,
            q,
            Some((p.unit_price, Decimal::ZERO)),
        );
        let mut e = self.event(
            &mut d.ids,
            catalog,
            d.store,
            EventType::Return,
            t,
            None,
            &[line],
        );
        e.register_id = Some(register);
        e.transaction_id = Some(Cow::Owned(txn.to_string()));
        d.out.events.push(e);
        true
    }

    /// A pick off the shelf: what the shelf holds of what is wanted (whole units unless
    /// weighed), the rest lost; the sale line, if anything was taken.
    fn take(
        &mut self,
        d: &mut Day<'_>,
        ki: usize,
        want: Milli,
        promo: Option<Decimal>,
        t: DateTime<Utc>,
    ) -> Option<(u32, Milli, Option<(Decimal, Decimal)>)> {
        let catalog = d.catalog;
        let product = self.keys[ki].product;
        let p = &catalog.products[product as usize];
        let available = self.keys[ki].true_qty.max(0);
        let take = if p.weighed {
            want.min(available)
        } else {
            (want.min(available) / UNIT) * UNIT
        };
        d.out.stats.units_wanted += want;
        if take < want {
            let lost = want - take;
            d.out.stats.units_lost += lost;
            self.keys[ki].lost_in_episode += lost;
            self.keys[ki].lost += lost;
            if promo.is_some() {
                // a promotion nobody announced: the stores learn of it from their tills
                d.out.stats.units_lost_promotion += lost;
            }
            if self.keys[ki].recorded > 0 {
                // the records say there is stock: nobody orders for an empty shelf
                d.out.stats.units_lost_phantom += lost;
            }
            d.out.stats.lost_value += Decimal::new(lost, 3) * p.unit_price;
        }
        if take <= 0 {
            return None;
        }
        self.remove_stock(ki, catalog, take, t, &mut d.out);
        let k = &mut self.keys[ki];
        k.recorded -= take;
        k.sold_today += take;
        d.out.stats.units_sold += take;
        let discount = promo.map_or(Decimal::ZERO, |share| {
            (p.unit_price * Decimal::new(take, 3) * share).round_dp(2)
        });
        Some((product, take, Some((p.unit_price, discount))))
    }

    /// Closing: expiry, damage, theft, corrections, counts.
    fn close_day<'c>(&mut self, d: &mut Day<'c>, shrink: f64) {
        let (_, close) = d.store.format.hours();
        let waste_at = d.clock.at(close, 10, d.rng.random_range(0..60), 0);
        let adjust_at = d.clock.at(close, 20, d.rng.random_range(0..60), 0);
        let count_at = d.clock.at(close, 30, d.rng.random_range(0..60), 0);
        if waste_at <= d.not_before {
            // the simulation starts after this day's closing: nothing of it happened
            self.keys
                .iter_mut()
                .for_each(|k| k.sold_today = k.estimate as Milli);
            return;
        }
        let mut waste_lines = Vec::new();
        let mut adjust_lines = Vec::new();
        let mut count_lines = Vec::new();
        for ki in 0..self.keys.len() {
            if let Some(wasted) = self.waste(d, ki, waste_at) {
                waste_lines.push((self.keys[ki].product, wasted, None));
                self.mark_out(ki, waste_at, &mut d.out);
            }
            self.steal(d, ki, shrink, waste_at);
            // someone notices an empty shelf that the system says is stocked
            let k = &self.keys[ki];
            let noticed = d.rng.random_bool(0.06);
            if k.true_qty <= 0 && k.recorded > 0 && noticed {
                let delta = k.true_qty.max(0) - k.recorded;
                adjust_lines.push((k.product, delta, None));
                self.keys[ki].recorded += delta;
                d.out.stats.adjustments += 1;
            }
            // cycle count
            let k = &self.keys[ki];
            if (d.day + k.count_phase).is_multiple_of(COUNT_CYCLE) {
                count_lines.push((k.product, k.true_qty.max(0), None));
                self.keys[ki].recorded = self.keys[ki].true_qty.max(0);
                d.out.stats.counted_lines += 1;
            }
            self.update_phantom(ki, count_at, &mut d.out);
        }
        for (t, at, lines) in [
            (EventType::Waste, waste_at, waste_lines),
            (EventType::Adjustment, adjust_at, adjust_lines),
            (EventType::StockCount, count_at, count_lines),
        ] {
            for chunk in lines.chunks(1000) {
                let e = self.event(&mut d.ids, d.catalog, d.store, t, at, None, chunk);
                d.out.events.push(e);
            }
        }
    }

    /// Expired perishables binned and the odd damaged item: what was wasted, if anything.
    fn waste(&mut self, d: &mut Day<'_>, ki: usize, at: DateTime<Utc>) -> Option<Milli> {
        let catalog = d.catalog;
        let p = &catalog.products[self.keys[ki].product as usize];
        let mut expired: Milli = 0;
        while let Some(&(q, last_day)) = self.keys[ki].lots.front() {
            if last_day > d.day {
                break;
            }
            expired += q;
            self.keys[ki].lots.pop_front();
        }
        let mut damaged: Milli = 0;
        // drawn whatever the shelf holds, so the draws after it do not depend on stock
        let breaks = d.rng.random_bool(0.002);
        if p.shelf_life_days.is_none() && self.keys[ki].true_qty >= UNIT && breaks {
            damaged = UNIT;
        }
        if expired > 0 {
            self.keys[ki].true_qty -= expired;
        }
        if damaged > 0 {
            self.remove_stock(ki, catalog, damaged, at, &mut d.out);
        }
        let wasted = expired + damaged;
        if wasted <= 0 {
            return None;
        }
        self.keys[ki].recorded -= wasted;
        d.out.stats.units_wasted += wasted;
        d.out.stats.wasted_value += Decimal::new(wasted, 3) * p.unit_cost;
        Some(wasted)
    }

    /// Theft: stock gone and nothing recorded.
    fn steal(&mut self, d: &mut Day<'_>, ki: usize, shrink: f64, at: DateTime<Utc>) {
        let catalog = d.catalog;
        let p = &catalog.products[self.keys[ki].product as usize];
        let k = &self.keys[ki];
        let theft_rate = shrink * p.theft * (0.006 * k.mean_demand / UNIT as f64 + 0.02);
        let stolen_units = poisson(&mut d.rng, theft_rate) as i64;
        if stolen_units > 0 && k.true_qty > 0 {
            let per_unit = if p.weighed { 300 } else { UNIT };
            let stolen = (stolen_units * per_unit).min(k.true_qty);
            self.remove_stock(ki, catalog, stolen, at, &mut d.out);
            d.out.stats.units_shrink += stolen;
        }
    }

    /// The store's own estimate of daily sales, learnt at closing from what its tills sold.
    fn learn_sales(&mut self) {
        for k in &mut self.keys {
            k.estimate = 0.85 * k.estimate + 0.15 * k.sold_today as f64;
        }
    }

    /// What the store's own rule orders on `date`, from each supplier on that supplier's order
    /// days, for delivery after the lead time: enough to last until the next order can come.
    /// (product, quantity) pairs.
    pub fn store_rule(&self, catalog: &Catalog, date: NaiveDate) -> Vec<(u32, Milli)> {
        use chrono::Datelike;
        let weekday = date.weekday().num_days_from_monday();
        let mut lines = Vec::new();
        for k in &self.keys {
            let p = &catalog.products[k.product as usize];
            let supplier = &catalog.suppliers[p.supplier as usize];
            if !supplier.orders_on(weekday) {
                continue;
            }
            let review = f64::from(supplier.review_days(weekday));
            let lead = f64::from(p.lead_time_days);
            let est = k.estimate.max(if k.mean_demand > 0.0 { 50.0 } else { 0.0 });
            let rop = est * (lead + review) * 1.25;
            let target = order_up_to(p, est) + est * (review - 1.0);
            let position = k.recorded + k.on_order.iter().map(|(_, q, _)| q).sum::<Milli>();
            if (position as f64) <= rop && est > 0.0 {
                let case = Milli::from(p.case_pack) * UNIT;
                let need = (target - position as f64).max(1.0);
                let least = p
                    .min_order_qty
                    .map_or(1, |m| m.div_ceil(p.case_pack.max(1)) as i64);
                let cases = ((need / case as f64).ceil() as i64).max(least).max(1);
                lines.push((k.product, cases * case));
            }
        }
        lines
    }

    /// What the store knows and what is true of each product it sells, now.
    pub fn shelves(&self) -> impl Iterator<Item = Shelf> + '_ {
        self.keys.iter().map(|k| Shelf {
            product: k.product,
            on_hand: k.true_qty,
            recorded: k.recorded,
            on_order: k.on_order.iter().map(|&(day, q, _)| (day, q)).collect(),
            estimate: k.estimate,
            mean_demand: k.mean_demand,
            sold_today: k.sold_today,
            lost: k.lost,
        })
    }

    /// Places orders after closing on local day `day` (`date`): `lines` of (product, quantity),
    /// one order per supplier, each for delivery a lead time later (one in sixteen a day late).
    /// Lines of a product the store does not sell, of a supplier that takes no orders that
    /// weekday, or of no quantity are left out and counted in `stats.order_lines_refused`. With
    /// `send`, each order goes out as a `purchase_order` event.
    #[allow(clippy::too_many_arguments)]
    pub fn place_orders<'c>(
        &mut self,
        catalog: &'c Catalog,
        seed: u64,
        day: u32,
        date: NaiveDate,
        lines: &[(u32, Milli)],
        send: bool,
    ) -> StoreDay<'c> {
        use chrono::Datelike;
        let store = &catalog.stores[self.index];
        let weekday = date.weekday().num_days_from_monday();
        let mut out = StoreDay::default();
        // (supplier, [(key index, quantity)]), suppliers in the order first named
        let mut orders: Vec<(u32, Vec<(usize, Milli)>)> = Vec::new();
        for &(product, q) in lines {
            let Some(&ki) = self.key_of.get(&product) else {
                out.stats.order_lines_refused += 1;
                continue;
            };
            let p = &catalog.products[product as usize];
            if q <= 0 || !catalog.suppliers[p.supplier as usize].orders_on(weekday) {
                out.stats.order_lines_refused += 1;
                continue;
            }
            match orders.iter_mut().find(|(s, _)| *s == p.supplier) {
                Some((_, l)) => l.push((ki, q)),
                None => orders.push((p.supplier, vec![(ki, q)])),
            }
            out.stats.orders += 1;
        }
        let clock = LocalClock {
            date,
            tz: store.timezone,
        };
        let (_, close) = store.format.hours();
        let minute = (fixed_draw(seed, self.index, u32::MAX, day, LATE + 1) * 60.0) as u32;
        let ordered_at = clock.at(close, 45, minute, 0);
        let mut ids = store_rng(seed ^ IDS ^ LATE, self.index, day);
        for (si, lines) in orders {
            let supplier = &catalog.suppliers[si as usize];
            let lead = lines.first().map_or(1, |&(ki, _)| {
                catalog.products[self.keys[ki].product as usize]
                    .lead_time_days
                    .max(1)
            });
            // one order in sixteen comes a day later than promised
            let late = u32::from(fixed_draw(seed, self.index, si, day, LATE) < 1.0 / 16.0);
            let order_id: std::sync::Arc<str> = format!(
                "PO-{}-{}-{}",
                store.store_id,
                date.format("%Y%m%d"),
                supplier.supplier_id
            )
            .into();
            for &(ki, q) in &lines {
                self.keys[ki]
                    .on_order
                    .push((day + lead + late, q, order_id.clone()));
            }
            let promised = LocalClock {
                date: date + Duration::days(i64::from(lead)),
                tz: store.timezone,
            }
            .at(6, 0, 0, 0);
            out.stats.orders_placed += 1;
            out.orders.push(TruthOrder {
                store: self.index as u32,
                supplier: si,
                order_id: order_id.to_string(),
                ordered_at,
                expected_at: promised,
                arrives: promised + Duration::days(i64::from(late)),
                lines: lines
                    .iter()
                    .map(|&(ki, q)| (self.keys[ki].product, q))
                    .collect(),
            });
            if !send {
                continue;
            }
            let lines: Vec<(u32, Milli, Option<(Decimal, Decimal)>)> = lines
                .iter()
                .map(|&(ki, q)| (self.keys[ki].product, q, None))
                .collect();
            for chunk in lines.chunks(1000) {
                let mut e = self.event(
                    &mut ids,
                    catalog,
                    store,
                    EventType::PurchaseOrder,
                    ordered_at,
                    None,
                    chunk,
                );
                e.order_id = Some(Cow::Owned(order_id.to_string()));
                e.expected_at = Some(promised);
                out.events.push(e);
                out.stats.purchase_orders += 1;
            }
        }
        out
    }

    /// Closes the episodes still open at the end of the simulation (their end stays open).
    pub fn open_episodes(&self) -> Vec<Episode> {
        let mut v = Vec::new();
        for k in &self.keys {
            if let Some(start) = k.out_since {
                v.push(Episode {
                    kind: EpisodeKind::StockOut,
                    store: self.index as u32,
                    product: k.product,
                    start,
                    end: None,
                    lost: k.lost_in_episode,
                });
            }
            if let Some(start) = k.phantom_since {
                v.push(Episode {
                    kind: EpisodeKind::Phantom,
                    store: self.index as u32,
                    product: k.product,
                    start,
                    end: None,
                    lost: 0,
                });
            }
        }
        v
    }

    fn add_stock(
        &mut self,
        ki: usize,
        catalog: &Catalog,
        q: Milli,
        day: u32,
        at: DateTime<Utc>,
        out: &mut StoreDay<'_>,
    ) {
        let k = &mut self.keys[ki];
        let p = &catalog.products[k.product as usize];
        if q <= 0 {
            return;
        }
        k.true_qty += q;
        if let Some(life) = p.shelf_life_days {
            k.lots.push_back((q, day + life));
        }
        if k.true_qty > 0
            && let Some(start) = k.out_since.take()
        {
            out.episodes.push(Episode {
                kind: EpisodeKind::StockOut,
                store: self.index as u32,
                product: k.product,
                start,
                end: Some(at),
                lost: std::mem::take(&mut k.lost_in_episode),
            });
        }
        self.update_phantom(ki, at, out);
    }

    fn remove_stock(
        &mut self,
        ki: usize,
        catalog: &Catalog,
        q: Milli,
        at: DateTime<Utc>,
        out: &mut StoreDay<'_>,
    ) {
        let k = &mut self.keys[ki];
        k.true_qty -= q;
        if catalog.products[k.product as usize]
            .shelf_life_days
            .is_some()
        {
            let mut rest = q;
            while rest > 0 {
                match k.lots.front_mut() {
                    Some(lot) if lot.0 > rest => {
                        lot.0 -= rest;
                        rest = 0;
                    }
                    Some(lot) => {
                        rest -= lot.0;
                        k.lots.pop_front();
                    }
                    None => break,
                }
            }
        }
        self.mark_out(ki, at, out);
        // a shelf emptied while the records still show stock is phantom stock
        self.update_phantom(ki, at, out);
    }

    fn mark_out(&mut self, ki: usize, at: DateTime<Utc>, out: &mut StoreDay<'_>) {
        let k = &mut self.keys[ki];
        if k.true_qty <= 0 && k.out_since.is_none() {
            k.out_since = Some(at);
            k.lost_in_episode = 0;
            out.stats.stockouts += 1;
        }
    }

    fn update_phantom(&mut self, ki: usize, at: DateTime<Utc>, out: &mut StoreDay<'_>) {
        let k = &mut self.keys[ki];
        let phantom = k.true_qty <= 0 && k.recorded > 0;
        match (phantom, k.phantom_since) {
            (true, None) => {
                k.phantom_since = Some(at);
                out.stats.phantom_episodes += 1;
            }
            (false, Some(start)) => {
                k.phantom_since = None;
                out.episodes.push(Episode {
                    kind: EpisodeKind::Phantom,
                    store: self.index as u32,
                    product: k.product,
                    start,
                    end: Some(at),
                    lost: 0,
                });
            }
            _ => {}
        }
    }

    fn event<'c>(
        &mut self,
        rng: &mut ChaCha8Rng,
        catalog: &'c Catalog,
        store: &'c Store,
        event_type: EventType,
        at: DateTime<Utc>,
        transaction_id: Option<String>,
        lines: &[(u32, Milli, Option<(Decimal, Decimal)>)],
    ) -> Event<'c> {
        self.seq += 1;
        // the sixteen bytes `rng.random::<[u8; 16]>()` draws (each the low byte of a 32-bit
        // draw), without its per-element closure calls
        let mut bytes = [0u8; 16];
        for b in &mut bytes {
            *b = rng.next_u32() as u8;
        }
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        Event {
            event_id: Cow::Owned(id.hyphenated().encode_lower(&mut text).to_owned()),
            event_type,
            event_time: at,
            store_id: Cow::Borrowed(&store.store_id),
            register_id: None,
            transaction_id: transaction_id.map(Cow::Owned),
            lines: lines
                .iter()
                .map(|&(p, q, price)| Line {
                    sku: Cow::Borrowed(&catalog.products[p as usize].sku),
                    quantity: Decimal::new(q, 3),
                    unit_price: price.map(|(p, _)| p),
                    discount: price.and_then(|(_, d)| (!d.is_zero()).then_some(d)),
                })
                .collect(),
            form: Form::Canonical,
            product_name: None,
            category: None,
            payment_method: None,
            client_type: None,
            order_id: None,
            expected_at: None,
        }
    }
}

/// `{prefix}{n:06}`, as `format!` would write it, without its machinery: one per basket.
fn transaction_id(prefix: &str, n: u32) -> String {
    let mut id = String::with_capacity(prefix.len() + 10);
    id.push_str(prefix);
    let mut digits = [b'0'; 10];
    let mut i = digits.len();
    let mut rest = n;
    while rest > 0 {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let from = i.min(digits.len() - 6);
    id.extend(digits[from..].iter().map(|&d| char::from(d)));
    id
}

/// `POS-{n:02}`: the registers a store has are few, so their names are written once.
fn register_id(n: u32) -> Cow<'static, str> {
    const NAMES: [&str; 24] = [
        "POS-01", "POS-02", "POS-03", "POS-04", "POS-05", "POS-06", "POS-07", "POS-08", "POS-09",
        "POS-10", "POS-11", "POS-12", "POS-13", "POS-14", "POS-15", "POS-16", "POS-17", "POS-18",
        "POS-19", "POS-20", "POS-21", "POS-22", "POS-23", "POS-24",
    ];
    match n.checked_sub(1).and_then(|i| NAMES.get(i as usize)) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("POS-{n:02}")),
    }
}

/// The store's order-up-to level for a daily demand (thousandths).
fn order_up_to(p: &Product, daily: f64) -> f64 {
    let lead = f64::from(p.lead_time_days);
    let cover = match p.shelf_life_days {
        Some(life) => (lead + 1.5).min(f64::from(life).max(1.0)),
        None => lead + 3.5,
    };
    (daily * cover).max(Milli::from(p.case_pack) as f64 * UNIT as f64 * 0.5)
}

fn round_to_unit(p: &Product, q: f64) -> Milli {
    if p.weighed {
        q.round() as Milli
    } else {
        ((q / UNIT as f64).round() as Milli) * UNIT
    }
}

/// Items in a basket: mostly a few, a long tail of big shops.
fn basket_size(rng: &mut ChaCha8Rng, scale: f64) -> usize {
    let u: f64 = rng.random();
    let raw = if u < 0.55 {
        1 + poisson(rng, 1.2) as usize
    } else if u < 0.9 {
        4 + poisson(rng, 6.0) as usize
    } else {
        12 + poisson(rng, 25.0) as usize
    };
    ((raw as f64 * scale).round() as usize).clamp(1, 120)
}

/// How much of one product a customer wants.
fn pick_quantity(rng: &mut ChaCha8Rng, p: &Product) -> Milli {
    if p.weighed {
        let kg = (0.55 * (0.45 * normal(rng)).exp()).clamp(0.08, 3.0);
        (kg * 1000.0).round() as Milli
    } else {
        let u: f64 = rng.random();
        let n = if u < 0.8 {
            1
        } else if u < 0.94 {
            2
        } else {
            rng.random_range(3..=6)
        };
        n * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_format_would_write_them() {
        for n in [
            0,
            1,
            9,
            10,
            99_999,
            999_999,
            1_000_000,
            12_345_678,
            u32::MAX,
        ] {
            assert_eq!(
                transaction_id("ST-0001-20261102-", n),
                format!("ST-0001-20261102-{n:06}")
            );
        }
        for n in [0, 1, 9, 10, 24, 25, 100, u32::MAX] {
            assert_eq!(register_id(n), format!("POS-{n:02}"));
        }
    }
}
