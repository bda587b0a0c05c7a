//! `stocklake evaluate`: alert quality against the simulator's ground truth.
//!
//! A simulated chain runs through the real pipeline (bronze → silver → gold, hour by hour of
//! simulated time, in a directory of its own). Its ground truth — every stock-out customers ran
//! into, every stretch of phantom stock — is then compared with the alerts gold raised, and with
//! a static baseline: "alert when the recorded stock falls under one case".

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use stocklake_event::{EventType, parse_event};
use stocklake_ingest::{BronzeWriter, PendingRecord};
use stocklake_model::queries::{AlertFilter, alerts};
use stocklake_model::{Gold, Model, ModelConfig};
use stocklake_refine::master::load_master_data;
use stocklake_refine::{RefineConfig, Refiner};
use stocklake_simulate::{SimConfig, Simulator, TruthRecord};
use stocklake_stock::AlertType;
use stocklake_storage::bronze::Source;
use stocklake_storage::{AwsOptions, Location};

use crate::cli::EvaluateArgs;
use crate::config::Settings;

#[derive(Debug, Clone)]
struct Episode {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct AlertSpan {
    opened: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
}

/// What one method of alerting achieved.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    pub name: String,
    pub stockouts: usize,
    pub warned_in_time: usize,
    pub warned_at_all: usize,
    pub median_warning_hours: Option<f64>,
    pub alerts: usize,
    pub false_alerts: usize,
}

impl Quality {
    fn recall(&self) -> f64 {
        pct(self.warned_in_time, self.stockouts)
    }
    fn false_share(&self) -> f64 {
        pct(self.false_alerts, self.alerts)
    }
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Opens or resolves a threshold alert as the condition changes.
fn track(spans: &mut Vec<AlertSpan>, below: bool, at: DateTime<Utc>) {
    let open = spans.last().is_some_and(|s| s.resolved.is_none());
    if below && !open {
        spans.push(AlertSpan {
            opened: at,
            resolved: None,
        });
    } else if !below
        && open
        && let Some(s) = spans.last_mut()
    {
        s.resolved = Some(at);
    }
}

/// Files a truth episode under its store and SKU (an unreadable start is skipped).
fn add_episode(
    into: &mut HashMap<(String, String), Vec<Episode>>,
    store_id: &str,
    sku: &str,
    start: &str,
    end: Option<&str>,
) {
    if let Some(start) = parse_ts(start) {
        into.entry((store_id.to_string(), sku.to_string()))
            .or_default()
            .push(Episode {
                start,
                end: end.and_then(parse_ts),
            });
    }
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// The warning an alert method gave for each stock-out (hours; `None` when none).
fn warnings(
    episodes: &HashMap<(String, String), Vec<Episode>>,
    alerts: &HashMap<(String, String), Vec<AlertSpan>>,
    lead: &HashMap<String, i64>,
) -> BTreeMap<(String, String, DateTime<Utc>), Option<f64>> {
    let mut out = BTreeMap::new();
    for (key, eps) in episodes {
        let l = Duration::days(*lead.get(&key.1).unwrap_or(&2));
        let spans = alerts.get(key).map(Vec::as_slice).unwrap_or(&[]);
        for e in eps {
            let w = spans
                .iter()
                .filter(|a| a.opened <= e.start)
                .filter(|a| a.resolved.is_none_or(|r| r >= e.start - Duration::days(1)))
                .map(|a| {
                    (e.start - a.opened)
                        .min(l + Duration::days(7))
                        .num_minutes() as f64
                        / 60.0
                })
                .reduce(f64::max);
            out.insert((key.0.clone(), key.1.clone(), e.start), w);
        }
    }
    out
}

/// Merges overlapping alert spans of one key into one warning.
fn merge_overlapping(spans: &mut Vec<AlertSpan>) {
    spans.sort_by_key(|s| s.opened);
    let mut merged: Vec<AlertSpan> = Vec::new();
    for s in spans.drain(..) {
        match merged.last_mut() {
            Some(m) if m.resolved.is_none_or(|r| s.opened <= r) => {
                m.resolved = match (m.resolved, s.resolved) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
            }
            _ => merged.push(s),
        }
    }
    *spans = merged;
}

/// Scores alert spans against stock-out episodes, key by key.
fn score(
    name: &str,
    episodes: &HashMap<(String, String), Vec<Episode>>,
    alerts: &HashMap<(String, String), Vec<AlertSpan>>,
    lead: &HashMap<String, i64>,
    horizon_end: DateTime<Utc>,
) -> Quality {
    let mut q = Quality {
        name: name.into(),
        ..Quality::default()
    };
    let mut warnings = Vec::new();
    for (key, eps) in episodes {
        let l = Duration::days(*lead.get(&key.1).unwrap_or(&2));
        let spans = alerts.get(key).map(Vec::as_slice).unwrap_or(&[]);
        for e in eps {
            q.stockouts += 1;
            // the earliest alert of this run-up: open at the stock-out (or closed less than a day
            // before it); an alert kept open for long counts as a lead time plus a week
            let warned = spans
                .iter()
                .filter(|a| a.opened <= e.start)
                .filter(|a| a.resolved.is_none_or(|r| r >= e.start - Duration::days(1)))
                .map(|a| (e.start - a.opened).min(l + Duration::days(7)))
                .max();
            if let Some(w) = warned {
                q.warned_at_all += 1;
                warnings.push(w.num_minutes() as f64 / 60.0);
                if w >= l {
                    q.warned_in_time += 1;
                }
            }
        }
    }
    for (key, spans) in alerts {
        let l = Duration::days(*lead.get(&key.1).unwrap_or(&2));
        let eps = episodes.get(key).map(Vec::as_slice).unwrap_or(&[]);
        for a in spans {
            // alerts too young to have been proven right or wrong are not judged
            if a.opened + l + Duration::days(2) > horizon_end {
                continue;
            }
            q.alerts += 1;
            let followed = eps.iter().any(|e| {
                e.start >= a.opened - Duration::hours(1)
                    && e.start <= a.opened + l + Duration::days(2)
                    || (e.start <= a.opened && e.end.is_none_or(|end| end > a.opened))
            });
            if !followed {
                q.false_alerts += 1;
            }
        }
    }
    q.median_warning_hours = median(warnings);
    q
}

pub async fn run(settings: &Settings, args: EvaluateArgs) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("stocklake-evaluate-")
        .tempdir()?;
    let dir = match &args.workdir {
        Some(d) => {
            if d.exists() {
                std::fs::remove_dir_all(d).with_context(|| format!("clearing {}", d.display()))?;
            }
            std::fs::create_dir_all(d)?;
            std::path::absolute(d).with_context(|| format!("resolving {}", d.display()))?
        }
        None => temp.path().to_path_buf(),
    };
    let report = if args.policy.is_empty() {
        evaluate(settings, &args, &dir).await?
    } else {
        let outcomes = super::closed_loop::closed_loop(settings, &args, &dir).await?;
        if args.json {
            let json = super::closed_loop::to_json(&args, &outcomes);
            format!("{}\n", serde_json::to_string_pretty(&json)?)
        } else {
            super::closed_loop::render(&args, &outcomes)
        }
    };
    // the truth, beside the lake, for anyone who wants to look closer
    if args.workdir.is_some() {
        tracing::info!(dir = %dir.display(), "the evaluation's lake, gold database and truth are kept");
    }
    crate::commands::write_stdout(format_args!("{report}"))?;
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        // on stderr: stdout holds the report alone (one JSON object with --json)
        tracing::info!(file = %out.display(), "the report is written");
    }
    Ok(())
}

type Key = (String, String);

/// The static rules the alerts are compared with, fed the recorded stock event by event: "the
/// recorded stock is under one case", and under a number of days of the first week's mean sales.
struct StaticRules {
    case_pack: HashMap<String, Decimal>,
    lead: HashMap<String, i64>,
    /// The first week ends: its sales fix the day-based rules from then on.
    week_end: DateTime<Utc>,
    /// The recorded stock: the latest count and the movements after it.
    recorded: HashMap<Key, (Option<DateTime<Utc>>, Decimal)>,
    case: HashMap<Key, Vec<AlertSpan>>,
    first_week_sold: HashMap<Key, Decimal>,
    first_week_avg: HashMap<Key, Decimal>,
    days: Vec<HashMap<Key, Vec<AlertSpan>>>,
}

/// The day-based rules: thresholds in days of the first week's mean sales (`None`: the
/// product's lead time).
fn day_rules() -> [(Option<Decimal>, &'static str); 4] {
    [
        (
            Some(Decimal::new(5, 1)),
            "recorded stock < half a day of first-week sales",
        ),
        (
            Some(Decimal::ONE),
            "recorded stock < 1 day of first-week sales",
        ),
        (
            Some(Decimal::TWO),
            "recorded stock < 2 days of first-week sales",
        ),
        (
            None,
            "recorded stock < first-week sales over the lead time (a static reorder point)",
        ),
    ]
}

impl StaticRules {
    fn new(sim: &Simulator, lead: HashMap<String, i64>) -> StaticRules {
        StaticRules {
            case_pack: sim
                .catalog()
                .products
                .iter()
                .map(|p| (p.sku.clone(), Decimal::from(p.case_pack)))
                .collect(),
            lead,
            week_end: sim.config().start + Duration::days(7),
            recorded: HashMap::new(),
            case: HashMap::new(),
            first_week_sold: HashMap::new(),
            first_week_avg: HashMap::new(),
            days: vec![HashMap::new(); day_rules().len()],
        }
    }

    fn observe(&mut self, e: &stocklake_event::Event<'_>) {
        for l in &e.lines {
            let key = (e.store_id.to_string(), l.sku.to_string());
            let (count_at, on_hand) = self
                .recorded
                .entry(key.clone())
                .or_insert((None, Decimal::ZERO));
            match e.event_type.stock_delta(l.quantity) {
                Some(d) if count_at.is_none_or(|c| e.event_time > c) => *on_hand += d,
                Some(_) => {}
                None => {
                    if e.event_type == EventType::StockCount {
                        *on_hand = l.quantity;
                        *count_at = Some(e.event_time);
                    }
                }
            }
            let on_hand = *on_hand;
            if e.event_type == EventType::Sale && e.event_time < self.week_end {
                *self.first_week_sold.entry(key.clone()).or_default() += l.quantity;
            }
            if e.event_time >= self.week_end && self.first_week_avg.is_empty() {
                for (k, sold) in &self.first_week_sold {
                    self.first_week_avg
                        .insert(k.clone(), *sold / Decimal::from(7));
                }
            }
            let min = self.case_pack.get(&key.1).copied().unwrap_or(Decimal::ONE);
            track(
                self.case.entry(key.clone()).or_default(),
                on_hand < min,
                e.event_time,
            );
            if let Some(avg) = self.first_week_avg.get(&key) {
                for (i, (days, _)) in day_rules().iter().enumerate() {
                    let d =
                        days.unwrap_or_else(|| Decimal::from(*self.lead.get(&key.1).unwrap_or(&2)));
                    track(
                        self.days[i].entry(key.clone()).or_default(),
                        on_hand < *avg * d,
                        e.event_time,
                    );
                }
            }
        }
    }

    /// Only the alerts raised from `from` on are judged.
    fn judge_from(&mut self, from: DateTime<Utc>) {
        for spans in self
            .case
            .values_mut()
            .chain(self.days.iter_mut().flat_map(|b| b.values_mut()))
        {
            spans.retain(|a| a.opened >= from);
        }
    }
}

/// The ground truth: the stock-outs customers met (from `from` on), and phantom stock.
type Episodes = HashMap<Key, Vec<Episode>>;

fn ground_truth(truth: &[TruthRecord], from: DateTime<Utc>) -> (Episodes, Episodes) {
    let mut stockouts: Episodes = HashMap::new();
    let mut phantoms: Episodes = HashMap::new();
    for t in truth {
        match t {
            TruthRecord::Stockout {
                store_id,
                sku,
                start,
                end,
                lost_units,
            } if *lost_units > Decimal::ZERO => {
                add_episode(&mut stockouts, store_id, sku, start, end.as_deref());
            }
            TruthRecord::Phantom {
                store_id,
                sku,
                start,
                end,
            } => {
                add_episode(&mut phantoms, store_id, sku, start, end.as_deref());
            }
            _ => {}
        }
    }
    for eps in stockouts.values_mut() {
        eps.retain(|e| e.start >= from);
    }
    (stockouts, phantoms)
}

/// stocklake's alerts, as the evaluation judges them.
#[derive(Default)]
struct Ours {
    /// `projected_stockout` and `below_safety_stock` from the judged days, overlapping ones of
    /// a key merged into one warning.
    predictive: HashMap<Key, Vec<AlertSpan>>,
    projected_only: HashMap<Key, Vec<AlertSpan>>,
    safety_only: HashMap<Key, Vec<AlertSpan>>,
    phantom: HashMap<Key, Vec<AlertSpan>>,
    by_type: BTreeMap<String, usize>,
    reorder_suggestions: usize,
}

async fn our_alerts(gold: &Gold, from: DateTime<Utc>) -> anyhow::Result<Ours> {
    let all = alerts(
        gold,
        &AlertFilter {
            open: false,
            limit: 10_000_000,
            ..AlertFilter::default()
        },
    )
    .await?;
    let mut o = Ours::default();
    for a in &all {
        *o.by_type.entry(a.alert_type.clone()).or_default() += 1;
        let span = AlertSpan {
            opened: a.opened_at,
            resolved: a.resolved_at,
        };
        let key = (a.store_id.clone(), a.sku.clone());
        if a.alert_type == "below_reorder_point" && a.opened_at >= from {
            o.reorder_suggestions += 1;
        }
        match AlertType::parse(&a.alert_type) {
            Some(t @ (AlertType::ProjectedStockout | AlertType::BelowSafetyStock))
                if a.opened_at >= from =>
            {
                let own = if t == AlertType::ProjectedStockout {
                    &mut o.projected_only
                } else {
                    &mut o.safety_only
                };
                own.entry(key.clone()).or_default().push(span.clone());
                o.predictive.entry(key).or_default().push(span);
            }
            Some(AlertType::SuspectedPhantomStock) => o.phantom.entry(key).or_default().push(span),
            _ => {}
        }
    }
    for spans in o.predictive.values_mut() {
        merge_overlapping(spans);
    }
    Ok(o)
}

/// Phantom stock caught while it lasted, and how fast; phantom-stock alerts that were right.
#[derive(Debug, Default)]
struct PhantomScore {
    episodes: usize,
    caught: usize,
    detect_hours: Vec<f64>,
    alerts: usize,
    right: usize,
}

fn phantom_score(
    phantoms: &Episodes,
    alerts: &HashMap<Key, Vec<AlertSpan>>,
    from: DateTime<Utc>,
    horizon_end: DateTime<Utc>,
) -> PhantomScore {
    let mut s = PhantomScore::default();
    for (key, eps) in phantoms {
        let spans = alerts.get(key).map(Vec::as_slice).unwrap_or(&[]);
        for e in eps.iter().filter(|e| e.start >= from) {
            let end = e.end.unwrap_or(horizon_end);
            if end - e.start < Duration::hours(12) {
                continue; // a shelf empty overnight until the morning delivery is not phantom stock anyone can see
            }
            s.episodes += 1;
            if let Some(a) = spans
                .iter()
                .filter(|a| a.opened >= e.start && a.opened <= end)
                .map(|a| a.opened)
                .min()
            {
                s.caught += 1;
                s.detect_hours
                    .push((a - e.start).num_minutes() as f64 / 60.0);
            }
        }
    }
    s.alerts = alerts.values().map(Vec::len).sum();
    s.right = alerts
        .iter()
        .map(|(k, spans)| {
            let eps = phantoms.get(k).map(Vec::as_slice).unwrap_or(&[]);
            spans
                .iter()
                .filter(|a| {
                    eps.iter()
                        .any(|e| e.start <= a.opened && e.end.is_none_or(|end| end >= a.opened))
                })
                .count()
        })
        .sum::<usize>();
    s
}

/// Per stock-out, for a closer look: the warning each method gave (`episodes.csv`).
fn write_episodes(
    path: &std::path::Path,
    stockouts: &Episodes,
    ours: &Ours,
    rules: &StaticRules,
) -> anyhow::Result<()> {
    use std::io::Write;
    let lead = &rules.lead;
    let ours_w = warnings(stockouts, &ours.predictive, lead);
    let mut others: Vec<BTreeMap<_, _>> = vec![warnings(stockouts, &rules.case, lead)];
    for b in &rules.days {
        others.push(warnings(stockouts, b, lead));
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let _ = writeln!(
        f,
        "store_id,sku,lead_time_days,start,stocklake_hours,case_hours,halfday_hours,day_hours,twodays_hours,static_rop_hours"
    );
    let fmt = |v: Option<&Option<f64>>| {
        v.copied()
            .flatten()
            .map(|h| format!("{h:.1}"))
            .unwrap_or_default()
    };
    for (k, w) in &ours_w {
        let _ = write!(
            f,
            "{},{},{},{},{}",
            k.0,
            k.1,
            lead.get(&k.1).unwrap_or(&2),
            k.2.to_rfc3339(),
            fmt(Some(w))
        );
        for o in &others {
            let _ = write!(f, ",{}", fmt(o.get(k)));
        }
        let _ = writeln!(f);
    }
    Ok(())
}

/// The pipeline the evaluation runs the simulated chain through, in `dir`.
pub(super) struct Chain {
    writer: BronzeWriter,
    refiner: Refiner,
    model: Model,
    pub(super) gold: Gold,
    seq: u64,
}

impl Chain {
    pub(super) async fn open(
        settings: &Settings,
        dir: &std::path::Path,
        sim: &Simulator,
    ) -> anyhow::Result<Chain> {
        let aws = AwsOptions::default();
        let bronze = Location::Local(dir.join("bronze"));
        let silver = Location::Local(dir.join("silver"));
        let writer = BronzeWriter::open(&bronze, &aws)?;
        let master = dir.join("master");
        sim.catalog().write_csv(&master)?;
        load_master_data(&silver, &aws, &master).await?;
        let refiner = Refiner::open(RefineConfig::new(bronze, silver.clone(), aws.clone())).await?;
        let gold = Gold::connect(&format!("sqlite://{}", dir.join("gold.db").display())).await?;
        let model_config = ModelConfig {
            silver,
            aws,
            ..crate::commands::model::model_config(settings)
        };
        let model = Model::open(model_config, gold.clone()).await?;
        Ok(Chain {
            writer,
            refiner,
            model,
            gold,
            seq: 0,
        })
    }

    /// Lands a day's `records` one bronze object per simulated hour, each refined and
    /// modelled as it lands; `each` sees every record first.
    pub(super) async fn land_by_hour(
        &mut self,
        records: &[stocklake_simulate::OutRecord],
        mut each: impl FnMut(&stocklake_simulate::OutRecord),
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while i < records.len() {
            let hour_end = records[i].time + Duration::hours(1);
            let j = i + records[i..]
                .iter()
                .take_while(|r| r.time < hour_end)
                .count();
            records[i..j].iter().for_each(&mut each);
            self.land(&records[i..j]).await?;
            i = j;
        }
        Ok(())
    }

    /// Lands `records` as one bronze object, and refines and models it.
    pub(super) async fn land(
        &mut self,
        records: &[stocklake_simulate::OutRecord],
    ) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let pending: Vec<PendingRecord> = records
            .iter()
            .map(|r| {
                self.seq += 1;
                PendingRecord {
                    sequence: self.seq.to_string(),
                    arrived_at: r.time,
                    payload: Bytes::from(r.bytes.clone()),
                }
            })
            .collect();
        self.writer
            .write(&Source::Http, "evaluate", &pending)
            .await?;
        self.refiner.offer(Vec::new());
        self.refiner.scan().await?;
        self.refiner.drain().await?;
        self.model.drain().await?;
        Ok(())
    }
}

/// Runs the evaluation in `dir` and returns the markdown report. The alert rules are the
/// `[stock]` settings of `settings`, so a configuration can be judged before it is deployed.
pub async fn evaluate(
    settings: &Settings,
    args: &EvaluateArgs,
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let cfg = SimConfig {
        seed: args.seed,
        stores: args.stores,
        skus: args.skus,
        days: args.days,
        purchase_orders: !args.no_purchase_orders,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(cfg);
    let mut chain = Chain::open(settings, dir, &sim).await?;
    let lead: HashMap<String, i64> = sim
        .catalog()
        .products
        .iter()
        .map(|p| (p.sku.clone(), i64::from(p.lead_time_days)))
        .collect();
    let mut rules = StaticRules::new(&sim, lead.clone());
    let bar = super::progress_bar(
        u64::from(args.days),
        "evaluating",
        "day {pos}/{len} {msg} ({elapsed})",
    );
    let mut truth = Vec::new();
    let mut horizon_end = sim.config().start;
    let mut truth_file = std::io::BufWriter::new(std::fs::File::create(dir.join("truth.ndjson"))?);
    while let Some(day) = sim.next_day() {
        for t in &day.truth {
            use std::io::Write;
            let _ = writeln!(truth_file, "{}", t.to_line());
        }
        truth.extend(day.truth);
        chain
            .land_by_hour(&day.records, |r| {
                if let Ok(e) = parse_event(&r.bytes) {
                    horizon_end = horizon_end.max(e.event_time);
                    rules.observe(&e);
                }
            })
            .await?;
        bar.inc(1);
        bar.set_message(format!("{} events", sim.stats().events()));
    }
    bar.finish_and_clear();

    // the first week is learning time for every method: judge what starts after it
    let judged_from = sim.config().start + Duration::days(7);
    let (stockouts, phantoms) = ground_truth(&truth, judged_from);
    rules.judge_from(judged_from);
    let ours = our_alerts(&chain.gold, judged_from).await?;
    let mut qualities = vec![
        score(
            "stocklake (predictive alerts)",
            &stockouts,
            &ours.predictive,
            &lead,
            horizon_end,
        ),
        score(
            "… of which `projected_stockout` alone",
            &stockouts,
            &ours.projected_only,
            &lead,
            horizon_end,
        ),
        score(
            "… of which `below_safety_stock` alone",
            &stockouts,
            &ours.safety_only,
            &lead,
            horizon_end,
        ),
        score(
            "static: recorded stock < 1 case",
            &stockouts,
            &rules.case,
            &lead,
            horizon_end,
        ),
    ];
    for (i, (_, name)) in day_rules().iter().enumerate() {
        qualities.push(score(
            &format!("static: {name}"),
            &stockouts,
            &rules.days[i],
            &lead,
            horizon_end,
        ));
    }
    let phantom = phantom_score(&phantoms, &ours.phantom, judged_from, horizon_end);
    write_episodes(&dir.join("episodes.csv"), &stockouts, &ours, &rules)?;
    let mut out = render(args, sim.stats(), &qualities, &phantom, &ours);
    let _ = writeln!(out, "\nRun time {:.0} s.", started.elapsed().as_secs_f64());
    Ok(out)
}

/// The report, in markdown.
fn render(
    args: &EvaluateArgs,
    stats: &stocklake_simulate::Stats,
    qualities: &[Quality],
    phantom: &PhantomScore,
    ours: &Ours,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Alert quality: {} stores × {} SKUs × {} days (seed {})\n",
        args.stores, args.skus, args.days, args.seed
    );
    let _ = writeln!(
        out,
        "Simulated {} events; {} stock-outs started on the shelves, {:.0} units of demand lost to them; {} phantom-stock episodes. \
         Judged: stock-outs that turned customers away, from day 8 on (the first week is learning time). \
         stocklake's warnings are `projected_stockout` and `below_safety_stock` (overlapping ones of a product count once); \
         an alert is *false* when no such stock-out followed within the product's lead time plus two days.\n",
        stats.events(),
        stats.stockouts,
        stats.units_lost as f64 / 1000.0,
        stats.phantom_episodes
    );
    let _ = writeln!(
        out,
        "| method | stock-outs | alerted ≥ lead time ahead | alerted at all | median warning | alerts judged | false alerts |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for q in qualities {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}% | {:.1}% | {} | {} | {:.1}% |",
            q.name,
            q.stockouts,
            q.recall(),
            pct(q.warned_at_all, q.stockouts),
            q.median_warning_hours
                .map(|h| format!("{h:.1} h"))
                .unwrap_or_else(|| "–".into()),
            q.alerts,
            q.false_share()
        );
    }
    let _ = writeln!(
        out,
        "\nPhantom stock (records show stock, the shelf is empty, for 12 hours or more): {} episodes, {} caught ({:.1}%), median time to detect {}; {} of {} phantom-stock alerts were right ({:.1}%).",
        phantom.episodes,
        phantom.caught,
        pct(phantom.caught, phantom.episodes),
        median(phantom.detect_hours.clone())
            .map(|h| format!("{h:.1} h"))
            .unwrap_or_else(|| "–".into()),
        phantom.right,
        phantom.alerts,
        pct(phantom.right, phantom.alerts)
    );
    let _ = writeln!(
        out,
        "\n`below_reorder_point` is the order suggestion of every replenishment cycle, not a stock-out warning: {} were raised from day 8 (net of the deliveries expected on the way).",
        ours.reorder_suggestions
    );
    let types: Vec<String> = ours
        .by_type
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(out, "\nAlerts opened by type: {}.", types.join(", "));
    out
}
