//! What was simulated, in numbers a store manager would recognise (`--stats`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::{Milli, UNIT};

/// Counters of one simulation; stores' counters add up.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub days: u32,
    pub stores: usize,
    pub skus: usize,
    pub events_by_type: BTreeMap<&'static str, u64>,
    pub lines: u64,
    pub baskets: u64,
    pub empty_baskets: u64,
    /// Basket line counts: 1, 2–4, 5–9, 10–19, 20–49, 50+.
    pub basket_sizes: [u64; 6],
    pub basket_lines: u64,
    /// Baskets by local hour of day.
    pub by_hour: [u64; 24],
    pub units_wanted: Milli,
    pub units_sold: Milli,
    pub units_lost: Milli,
    pub units_received: Milli,
    pub units_returned: Milli,
    pub units_wasted: Milli,
    pub units_shrink: Milli,
    pub stockouts: u64,
    pub phantom_episodes: u64,
    pub adjustments: u64,
    pub counted_lines: u64,
    pub orders: u64,
    /// `purchase_order` events sent (one per store, supplier and order day).
    pub purchase_orders: u64,
    /// Orders placed (one per store, supplier and order day), sent or not.
    pub orders_placed: u64,
    /// Order lines left out: a product the store does not sell, a day its supplier takes no
    /// orders, no quantity.
    pub order_lines_refused: u64,
    /// Deliveries received (one per store and order).
    pub deliveries: u64,
    /// Demand lost on a promotion's days.
    pub units_lost_promotion: Milli,
    /// Demand lost while the store's records showed stock (phantom stock).
    pub units_lost_phantom: Milli,
    /// What the demand lost to empty shelves would have paid.
    pub lost_value: rust_decimal::Decimal,
    /// What the wasted stock cost.
    pub wasted_value: rust_decimal::Decimal,
    pub promotions: u64,
    pub bad_records: BTreeMap<&'static str, u64>,
    pub legacy_skipped: u64,
    pub records: u64,
    pub bytes: u64,
}

const SIZE_LABELS: [&str; 6] = ["1", "2-4", "5-9", "10-19", "20-49", "50+"];

impl Stats {
    pub fn record_basket(&mut self, lines: usize, local_hour: u32) {
        self.baskets += 1;
        self.basket_lines += lines as u64;
        let bucket = match lines {
            0 | 1 => 0,
            2..=4 => 1,
            5..=9 => 2,
            10..=19 => 3,
            20..=49 => 4,
            _ => 5,
        };
        self.basket_sizes[bucket] += 1;
        self.by_hour[(local_hour as usize).min(23)] += 1;
    }

    pub fn merge(&mut self, o: &Stats) {
        for (k, v) in &o.events_by_type {
            *self.events_by_type.entry(k).or_default() += v;
        }
        for (k, v) in &o.bad_records {
            *self.bad_records.entry(k).or_default() += v;
        }
        self.lines += o.lines;
        self.baskets += o.baskets;
        self.empty_baskets += o.empty_baskets;
        for i in 0..6 {
            self.basket_sizes[i] += o.basket_sizes[i];
        }
        self.basket_lines += o.basket_lines;
        for h in 0..24 {
            self.by_hour[h] += o.by_hour[h];
        }
        self.units_wanted += o.units_wanted;
        self.units_sold += o.units_sold;
        self.units_lost += o.units_lost;
        self.units_received += o.units_received;
        self.units_returned += o.units_returned;
        self.units_wasted += o.units_wasted;
        self.units_shrink += o.units_shrink;
        self.stockouts += o.stockouts;
        self.phantom_episodes += o.phantom_episodes;
        self.adjustments += o.adjustments;
        self.counted_lines += o.counted_lines;
        self.orders += o.orders;
        self.purchase_orders += o.purchase_orders;
        self.orders_placed += o.orders_placed;
        self.order_lines_refused += o.order_lines_refused;
        self.deliveries += o.deliveries;
        self.lost_value += o.lost_value;
        self.units_lost_phantom += o.units_lost_phantom;
        self.units_lost_promotion += o.units_lost_promotion;
        self.wasted_value += o.wasted_value;
        self.promotions += o.promotions;
        self.legacy_skipped += o.legacy_skipped;
        self.records += o.records;
        self.bytes += o.bytes;
    }

    pub fn events(&self) -> u64 {
        self.events_by_type.values().sum()
    }

    /// A short human summary with small bar charts.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let u = |m: Milli| m as f64 / UNIT as f64;
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
        let _ = writeln!(
            s,
            "simulated {} days, {} stores, {} SKUs: {} events, {} lines, {} records written ({:.1} MB)",
            self.days,
            self.stores,
            self.skus,
            self.events(),
            self.lines,
            self.records,
            self.bytes as f64 / 1e6
        );
        let _ = writeln!(s, "\nevents by type");
        for (t, n) in &self.events_by_type {
            let _ = writeln!(s, "  {t:<12} {n:>10}");
        }
        let mean = if self.baskets > 0 {
            self.basket_lines as f64 / self.baskets as f64
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "\nbaskets: {} ({:.1} per store-day), mean {:.1} lines; {} walked out with nothing",
            self.baskets,
            self.baskets as f64 / (self.stores.max(1) as f64 * f64::from(self.days.max(1))),
            mean,
            self.empty_baskets
        );
        let max = self.basket_sizes.iter().copied().max().unwrap_or(0).max(1);
        for (label, n) in SIZE_LABELS.iter().zip(self.basket_sizes) {
            let _ = writeln!(
                s,
                "  {label:>6} lines {:>5.1}% {}",
                pct(n as f64, self.baskets as f64),
                bar(n, max, 40)
            );
        }
        let _ = writeln!(s, "\nbaskets by local hour");
        let max = self.by_hour.iter().copied().max().unwrap_or(0).max(1);
        for (h, n) in self.by_hour.iter().enumerate() {
            if *n > 0 {
                let _ = writeln!(s, "  {h:02}:00 {:>9} {}", n, bar(*n, max, 40));
            }
        }
        let _ = writeln!(s, "\nunits");
        let _ = writeln!(s, "  wanted    {:>14.1}", u(self.units_wanted));
        let _ = writeln!(
            s,
            "  sold      {:>14.1}  lost to empty shelves {:.1} ({:.2}% of demand)",
            u(self.units_sold),
            u(self.units_lost),
            pct(u(self.units_lost), u(self.units_wanted))
        );
        let _ = writeln!(
            s,
            "  received  {:>14.1}  in {} orders",
            u(self.units_received),
            self.orders
        );
        let _ = writeln!(s, "  returned  {:>14.1}", u(self.units_returned));
        let _ = writeln!(
            s,
            "  wasted    {:>14.1}  ({:.2}% of sales)",
            u(self.units_wasted),
            pct(u(self.units_wasted), u(self.units_sold))
        );
        let _ = writeln!(
            s,
            "  shrink    {:>14.1}  unrecorded ({:.2}% of sales)",
            u(self.units_shrink),
            pct(u(self.units_shrink), u(self.units_sold))
        );
        let _ = writeln!(
            s,
            "\nstock-outs started: {}   phantom-stock episodes: {}   corrections: {}   lines counted: {}   promotions: {}",
            self.stockouts,
            self.phantom_episodes,
            self.adjustments,
            self.counted_lines,
            self.promotions
        );
        if !self.bad_records.is_empty() {
            let total: u64 = self.bad_records.values().sum();
            let _ = writeln!(s, "\nbad or repeated records mixed in: {total}");
            for (k, n) in &self.bad_records {
                let _ = writeln!(s, "  {k:<24} {n:>8}");
            }
        }
        if self.legacy_skipped > 0 {
            let _ = writeln!(
                s,
                "\n{} events have no legacy form (only sales do) and were not written",
                self.legacy_skipped
            );
        }
        s
    }
}

fn bar(n: u64, max: u64, width: usize) -> String {
    let filled = ((n as f64 / max as f64) * width as f64).round() as usize;
    "█".repeat(filled.min(width))
}
