//! Whole-simulator tests: reproducibility, validity, and that the records add up to what the
//! stores believe (docs/contract.md §2), which is what stocklake must compute.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use stocklake_event::{EventType, parse_event};

use super::*;

fn small(seed: u64, days: u32) -> SimConfig {
    SimConfig {
        seed,
        stores: 3,
        skus: 150,
        days,
        ..SimConfig::default()
    }
}

fn all_records(cfg: SimConfig) -> (Vec<OutRecord>, Vec<TruthRecord>, Stats) {
    let mut sim = Simulator::new(cfg);
    let mut records = Vec::new();
    let mut truth = Vec::new();
    while let Some(mut d) = sim.next_day() {
        records.append(&mut d.records);
        truth.append(&mut d.truth);
    }
    let stats = sim.stats().clone();
    (records, truth, stats)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, ta, _) = all_records(small(5, 2));
    let (b, tb, _) = all_records(small(5, 2));
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes));
    assert_eq!(ta, tb);
    let (c, _, _) = all_records(small(6, 2));
    assert!(a.len() != c.len() || a.iter().zip(&c).any(|(x, y)| x.bytes != y.bytes));
}

#[test]
fn every_record_is_valid_and_in_time_order() {
    let (records, _, stats) = all_records(small(1, 3));
    assert!(!records.is_empty());
    let mut last: Option<DateTime<Utc>> = None;
    for r in &records {
        let e = parse_event(&r.bytes)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.bytes)));
        assert_eq!(e.event_time, r.time);
        assert_eq!(r.partition_key, e.store_id);
        if let Some(l) = last {
            assert!(l <= e.event_time);
        }
        last = Some(e.event_time);
    }
    for t in ["sale", "receipt", "waste", "stock_count"] {
        assert!(
            stats.events_by_type.get(t).copied().unwrap_or(0) > 0,
            "no {t} events"
        );
    }
    assert!(stats.units_shrink > 0, "some stock disappears unrecorded");
}

/// On hand per docs/contract.md §2, computed straight from the records.
fn on_hand(records: &[OutRecord]) -> BTreeMap<(String, String), Decimal> {
    #[derive(Default)]
    struct K {
        count: Option<(DateTime<Utc>, Decimal)>,
        moves: Vec<(DateTime<Utc>, Decimal)>,
    }
    let mut keys: HashMap<(String, String), K> = HashMap::new();
    for r in records {
        let Ok(e) = parse_event(&r.bytes) else {
            continue;
        };
        if !e.event_type.moves_stock() {
            continue;
        }
        for l in &e.lines {
            let k = keys
                .entry((e.store_id.to_string(), l.sku.to_string()))
                .or_default();
            match e.event_type.stock_delta(l.quantity) {
                Some(d) => k.moves.push((e.event_time, d)),
                None => {
                    if k.count.is_none_or(|(t, _)| e.event_time > t) {
                        k.count = Some((e.event_time, l.quantity));
                    }
                }
            }
        }
    }
    keys.into_iter()
        .map(|(key, k)| {
            let (since, c) = k
                .count
                .map_or((DateTime::<Utc>::MIN_UTC, Decimal::ZERO), |(t, q)| (t, q));
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

#[test]
fn records_add_up_to_what_the_stores_believe() {
    let cfg = small(2, 4);
    let last_date = cfg.start.date_naive() + chrono::Duration::days(3);
    let (records, truth, _) = all_records(cfg);
    let computed = on_hand(&records);
    let mut checked = 0;
    let mut drifted = 0;
    for t in &truth {
        if let TruthRecord::Stock {
            date,
            store_id,
            sku,
            on_hand,
            recorded,
        } = t
        {
            if *date != last_date {
                continue;
            }
            let got = computed
                .get(&(store_id.clone(), sku.clone()))
                .copied()
                .unwrap_or_default();
            assert_eq!(got, *recorded, "{store_id} {sku}");
            if got != *on_hand {
                drifted += 1;
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
    assert!(
        drifted > 0,
        "records should drift from the shelves somewhere"
    );
}

#[test]
fn bad_records_are_rejected_or_repeats() {
    let mut cfg = small(3, 1);
    cfg.bad_rate = 0.05;
    let (records, _, stats) = all_records(cfg);
    let bad: u64 = stats.bad_records.values().sum();
    assert!(bad > 20, "{bad}");
    assert!(
        stats.bad_records.len() > 10,
        "many kinds: {:?}",
        stats.bad_records
    );
    // every accepted record is either new or an exact repeat / a conflicting reuse of an id
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut repeats = 0u64;
    let mut rejected = 0u64;
    for r in &records {
        match parse_event(&r.bytes) {
            Ok(e) => {
                if let Some(fp) = seen.get(e.event_id.as_ref()) {
                    repeats += 1;
                    let _ = fp;
                } else if e.event_time.format("%Y").to_string() == "2999" {
                    rejected += 1;
                } else {
                    seen.insert(e.event_id.to_string(), e.fingerprint());
                }
            }
            Err(_) => rejected += 1,
        }
    }
    assert_eq!(repeats + rejected, bad);
}

#[test]
fn legacy_format_writes_one_record_per_sale_line() {
    let mut cfg = small(4, 1);
    cfg.format = WireFormat::Legacy;
    let (records, _, stats) = all_records(cfg);
    assert!(stats.legacy_skipped > 0);
    for r in records.iter().take(500) {
        let e = parse_event(&r.bytes).expect("valid legacy");
        assert_eq!(e.form, stocklake_event::Form::Legacy);
        assert_eq!(e.event_type, EventType::Sale);
        assert_eq!(Some(r.partition_key.as_str()), e.transaction_id.as_deref());
    }
}

#[test]
fn a_week_looks_like_a_week() {
    let (_, truth, stats) = all_records(SimConfig {
        stores: 4,
        skus: 400,
        days: 7,
        ..SimConfig::default()
    });
    // mostly small baskets, a long tail
    let small_share = (stats.basket_sizes[0] + stats.basket_sizes[1]) as f64 / stats.baskets as f64;
    assert!(small_share > 0.4 && small_share < 0.8, "{small_share}");
    assert!(stats.basket_sizes[4] + stats.basket_sizes[5] > 0);
    // two daily peaks: late morning and early evening beat mid-afternoon
    assert!(stats.by_hour[12] > stats.by_hour[15]);
    assert!(stats.by_hour[18] > stats.by_hour[15]);
    assert!(stats.units_lost > 0 && stats.units_lost < stats.units_sold / 5);
    assert!(stats.units_wasted > 0);
    assert!(stats.orders > 0);
    assert!(
        truth
            .iter()
            .any(|t| matches!(t, TruthRecord::Stockout { .. }))
    );
    assert!(
        truth
            .iter()
            .any(|t| matches!(t, TruthRecord::Promotion { .. }))
    );
}

#[test]
fn runs_merge_as_a_stable_sort_would_order_them() {
    use rand::{Rng, SeedableRng};
    let base = default_start();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for case in 0..200 {
        let run_count = rng.random_range(0..6);
        let runs: Vec<Vec<OutRecord>> = (0..run_count)
            .map(|run| {
                let len = rng.random_range(0..12);
                // few distinct times, so that equal times across and within runs are common
                let mut times: Vec<i64> = (0..len).map(|_| rng.random_range(0..5)).collect();
                if case % 7 != 0 {
                    times.sort_unstable();
                }
                times
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| OutRecord {
                        time: base + chrono::Duration::seconds(s),
                        partition_key: format!("{run}-{i}"),
                        bytes: Vec::new(),
                    })
                    .collect()
            })
            .collect();
        let mut expected: Vec<OutRecord> = runs.iter().flatten().cloned().collect();
        expected.sort_by_key(|r| r.time);
        let merged = merge_in_time_order(runs);
        let names = |v: &[OutRecord]| {
            v.iter()
                .map(|r| r.partition_key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&merged), names(&expected), "case {case}");
    }
}

#[test]
fn stores_send_their_orders_and_receipts_name_them_and_the_shelves_do_not_care() {
    let (with, truth_with, stats) = all_records(small(3, 6));
    let (without, truth_without, _) = all_records(SimConfig {
        purchase_orders: false,
        ..small(3, 6)
    });
    // the same chain either way: only the events that speak of orders differ
    assert_eq!(truth_with, truth_without);
    assert!(stats.purchase_orders > 0);
    let events = |records: &[OutRecord]| -> Vec<stocklake_event::Event<'static>> {
        records
            .iter()
            .map(|r| parse_event(&r.bytes).expect("valid").into_owned())
            .collect()
    };
    let (with, without) = (events(&with), events(&without));
    let orders: Vec<_> = with
        .iter()
        .filter(|e| e.event_type == EventType::PurchaseOrder)
        .collect();
    assert_eq!(orders.len() as u64, stats.purchase_orders);
    assert!(
        orders
            .iter()
            .all(|e| e.order_id.is_some() && e.expected_at.is_some_and(|t| t > e.event_time))
    );
    assert!(
        !without
            .iter()
            .any(|e| e.event_type == EventType::PurchaseOrder || e.order_id.is_some())
    );
    // every delivery names an order the store placed (or one placed before the first day)
    let placed: std::collections::HashSet<&str> = orders
        .iter()
        .filter_map(|e| e.order_id.as_deref())
        .collect();
    let receipts: Vec<_> = with
        .iter()
        .filter(|e| e.event_type == EventType::Receipt)
        .collect();
    assert!(receipts.iter().all(|e| e.order_id.is_some()));
    assert!(
        receipts
            .iter()
            .filter(|e| e.order_id.as_deref().is_some_and(|o| placed.contains(o)))
            .count()
            > receipts.len() / 2
    );
    // the truth records every order, promised and real arrival; some come a day late
    let truth_orders: Vec<_> = truth_with
        .iter()
        .filter_map(|t| match t {
            TruthRecord::Order {
                expected_at,
                arrives,
                ..
            } => Some((expected_at.clone(), arrives.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(truth_orders.len(), orders.len());
    assert!(truth_orders.iter().any(|(e, a)| e != a));
}

/// A chain whose stores' orders `order` places after each day: its records (the day's, then
/// the orders'), its truth, and the units wanted up to each day.
fn ordered_by(
    cfg: SimConfig,
    order: &dyn Fn(&Simulator, usize) -> Vec<(u32, Milli)>,
) -> (Vec<OutRecord>, Vec<TruthRecord>, Vec<Milli>, Stats) {
    let mut sim = Simulator::new(SimConfig {
        external_orders: true,
        ..cfg
    });
    let (mut records, mut truth, mut wanted) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(mut d) = sim.next_day() {
        records.append(&mut d.records);
        truth.append(&mut d.truth);
        let orders: Vec<_> = (0..sim.catalog().stores.len())
            .map(|s| order(&sim, s))
            .collect();
        let (mut r, mut t) = sim.place_orders(&orders);
        records.append(&mut r);
        truth.append(&mut t);
        wanted.push(sim.stats().units_wanted);
    }
    let stats = sim.stats().clone();
    (records, truth, wanted, stats)
}

#[test]
fn orders_placed_by_the_caller_change_the_shelves_and_nothing_else() {
    // the stores' own rule placed by the caller is the chain the stores make by themselves
    let (own, own_truth, _) = all_records(small(4, 5));
    let (placed, placed_truth, wanted, stats) =
        ordered_by(small(4, 5), &|sim, s| sim.store_rule(s));
    let bytes = |r: &[OutRecord]| {
        let mut b: Vec<Vec<u8>> = r.iter().map(|x| x.bytes.clone()).collect();
        b.sort();
        b
    };
    assert_eq!(bytes(&own), bytes(&placed));
    let sorted = |t: &[TruthRecord]| {
        let mut v: Vec<String> = t.iter().map(TruthRecord::to_line).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&own_truth), sorted(&placed_truth));
    assert!(stats.orders_placed > 0 && stats.deliveries > 0);
    assert_eq!(stats.order_lines_refused, 0);

    // ordering nothing, or twice as much: the same customers want the same, the shelves differ
    let (_, _, wanted_none, none) = ordered_by(small(4, 5), &|_, _| Vec::new());
    let (_, _, wanted_double, double) = ordered_by(small(4, 5), &|sim, s| {
        sim.store_rule(s)
            .into_iter()
            .map(|(p, q)| (p, 2 * q))
            .collect()
    });
    assert_eq!(wanted, wanted_none);
    assert_eq!(wanted, wanted_double);
    assert_eq!(none.deliveries, 0);
    assert!(none.units_lost > stats.units_lost);
    assert!(double.units_lost <= stats.units_lost);
    assert!(none.lost_value > stats.lost_value);
}

#[test]
fn orders_a_supplier_does_not_take_that_day_are_refused() {
    let mut sim = Simulator::new(SimConfig {
        external_orders: true,
        ..small(2, 1)
    });
    sim.next_day();
    let (_, date) = sim.last_day();
    let weekday = chrono::Datelike::weekday(&date).num_days_from_monday();
    let catalog = sim.catalog();
    let sells: Vec<u32> = sim.shelves(0).map(|s| s.product).collect();
    let closed = sells.iter().copied().find(|&p| {
        !catalog.suppliers[catalog.products[p as usize].supplier as usize].orders_on(weekday)
    });
    let open = sells.iter().copied().find(|&p| {
        catalog.suppliers[catalog.products[p as usize].supplier as usize].orders_on(weekday)
    });
    let unsold = (0..catalog.products.len() as u32).find(|p| !sells.contains(p));
    let mut lines: Vec<(u32, Milli)> = Vec::new();
    lines.extend(closed.map(|p| (p, UNIT)));
    lines.extend(unsold.map(|p| (p, UNIT)));
    lines.extend(open.map(|p| (p, 0)));
    let refused = lines.len() as u64;
    lines.extend(open.map(|p| (p, 3 * UNIT)));
    let (records, truth) = sim.place_orders(&[lines]);
    assert_eq!(sim.stats().order_lines_refused, refused);
    assert_eq!(truth.len(), usize::from(open.is_some()));
    assert_eq!(records.len(), usize::from(open.is_some()));
    let on_order: Milli = sim
        .shelves(0)
        .filter(|s| Some(s.product) == open)
        .flat_map(|s| s.on_order)
        .map(|(_, q)| q)
        .sum();
    assert_eq!(on_order, if open.is_some() { 3 * UNIT } else { 0 });
}
