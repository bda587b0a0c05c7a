use rust_decimal::Decimal;
use stocklake_simulate::{SimConfig, Simulator, TruthRecord};

use crate::common::*;

fn chain(days: u32, seed: u64) -> (Vec<stocklake_simulate::OutRecord>, Vec<TruthRecord>) {
    let mut sim = Simulator::new(SimConfig {
        seed,
        stores: 2,
        skus: 60,
        days,
        ..SimConfig::default()
    });
    let mut records = Vec::new();
    let mut truth = Vec::new();
    while let Some(mut d) = sim.next_day() {
        records.append(&mut d.records);
        truth.append(&mut d.truth);
    }
    (records, truth)
}

async fn check_exact(lake: &Lake, gold: &stocklake_model::Gold) {
    let want = lake.on_hand_from_silver().await;
    let got = gold_on_hand(gold).await;
    assert_eq!(
        got.len(),
        want.len(),
        "a stock level for every store and SKU"
    );
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "{k:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_stock_levels_equal_silver_and_the_stores_records() {
    let mut lake = Lake::new();
    let (records, truth) = chain(4, 3);
    lake.put(&records).await;
    lake.refine().await;
    let url = lake.sqlite_url();
    let mut model = lake.model(&url).await;
    let reports = model.drain().await.expect("model");
    assert!(!reports.is_empty());
    check_exact(&lake, model.gold()).await;
    // and what the simulated stores believed at the end of the last day
    let got = gold_on_hand(model.gold()).await;
    let last = truth
        .iter()
        .filter_map(|t| match t {
            TruthRecord::Stock { date, .. } => Some(*date),
            _ => None,
        })
        .max()
        .expect("days");
    let mut n = 0;
    for t in &truth {
        if let TruthRecord::Stock {
            date,
            store_id,
            sku,
            recorded,
            ..
        } = t
            && *date == last
        {
            assert_eq!(
                got.get(&(store_id.clone(), sku.clone())),
                Some(recorded),
                "{store_id} {sku}"
            );
            n += 1;
        }
    }
    assert!(n > 50);
    let (movements, sales) = kept_counts_are_exact(model.gold()).await;
    assert!(movements > sales && sales > 1000, "{movements} {sales}");
    // nothing left: running again changes nothing
    assert!(model.run_batch().await.expect("batch").is_none());
    let mut again = lake.model(&url).await;
    assert!(again.run_batch().await.expect("batch").is_none());
    assert_eq!(gold_on_hand(again.gold()).await, got);
    // emptied for a replay, then built again: the counts start over with the rows
    again.gold().truncate().await.expect("truncate");
    assert_eq!(kept_counts_are_exact(again.gold()).await, (0, 0));
    let mut rebuilt = lake.model(&url).await;
    rebuilt.drain().await.expect("model");
    assert_eq!(
        kept_counts_are_exact(rebuilt.gold()).await,
        (movements, sales)
    );
}

/// A gold database made before the fact tables' rows were counted and the sales summed by hour
/// gets both from the rows themselves when it migrates, and the batches after keep them.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_gold_gets_its_row_counts_and_hourly_sales_when_it_migrates() {
    let (records, _) = chain(3, 5);
    let half = records.len() / 2;
    let mut lake = Lake::new();
    lake.put(&records[..half]).await;
    lake.refine().await;
    let url = lake.sqlite_url();
    let mut model = lake.model(&url).await;
    model.drain().await.expect("model");
    let before = kept_counts_are_exact(model.gold()).await;
    assert!(before.0 > 0);
    drop(model);
    // back to the schema of version 2
    let path = lake.dir.path().join("gold.db");
    let c = rusqlite::Connection::open(&path).expect("open");
    c.execute_batch(
        "DROP TABLE gold_row_count; DROP TABLE fact_sales_hourly;
         DELETE FROM stocklake_migrations WHERE version = 3",
    )
    .expect("downgrade");
    drop(c);
    let mut model = lake.model(&url).await;
    assert_eq!(kept_counts_are_exact(model.gold()).await, before);
    assert_eq!(
        sales_by_hour(model.gold()).await,
        lake.sales_by_hour_from_silver().await,
        "the hours summed from the sales already there"
    );
    lake.put(&records[half..]).await;
    lake.refine().await;
    model.drain().await.expect("model");
    let after = kept_counts_are_exact(model.gold()).await;
    assert!(after.0 > before.0 && after.1 > before.1, "{after:?}");
    assert_eq!(
        sales_by_hour(model.gold()).await,
        lake.sales_by_hour_from_silver().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shuffled_arrival_gives_the_same_stock() {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let (mut records, _) = chain(5, 11);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    records.shuffle(&mut rng);
    let mut lake = Lake::new();
    let url = lake.sqlite_url();
    let mut model = lake.model(&url).await;
    // many small batches, each through gold, so that events and counts really arrive late
    let mut late = 0;
    for chunk in records.chunks(records.len() / 12 + 1) {
        lake.put(chunk).await;
        lake.refine().await;
        for r in model.drain().await.expect("model") {
            late += r.late_lines;
        }
    }
    assert!(late > 1000, "late lines: {late}");
    check_exact(&lake, model.gold()).await;
    kept_counts_are_exact(model.gold()).await;
    // the sales of an hour arrive over many batches: each batch adds its own
    let by_hour = lake.sales_by_hour_from_silver().await;
    assert!(by_hour.len() > 24, "{} hours", by_hour.len());
    assert_eq!(sales_by_hour(model.gold()).await, by_hour);
    // the daily snapshot ends where the stock level is
    let closing = latest_closing(model.gold()).await;
    let levels = gold_on_hand(model.gold()).await;
    for (k, v) in &levels {
        assert_eq!(closing.get(k), Some(v), "{k:?}");
    }
    let _ = Decimal::ZERO;
}

/// A backlog of silver versions reaches gold in batches of about `max_lines_per_batch` lines,
/// a version at least, and the gold is the same as from one batch: stock, daily snapshot and
/// alerts.
#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_reaches_gold_in_bounded_batches_with_the_same_result() {
    let (records, _) = chain(4, 17);
    let mut lake = Lake::new();
    let mut versions = 0u64;
    for chunk in records.chunks(records.len() / 6 + 1) {
        lake.put(chunk).await;
        lake.refine().await;
        versions += 1;
    }
    let whole_url = lake.sqlite_url();
    let mut whole = lake.model(&whole_url).await;
    let one = whole.drain().await.expect("model");
    assert_eq!(
        one.len(),
        1,
        "the default budget takes this backlog at once"
    );

    let steps_url = lake.sqlite_url_of("steps.db");
    let mut steps = lake
        .model_with(&steps_url, |c| c.max_lines_per_batch = 1)
        .await;
    let reports = steps.drain().await.expect("model");
    assert!(
        reports.len() as u64 >= versions,
        "{} batches",
        reports.len()
    );
    for r in &reports {
        assert_eq!(r.from_version, r.to_version, "one version a batch");
    }
    assert_eq!(
        reports.iter().map(|r| r.lines).sum::<usize>(),
        one[0].lines,
        "every line once"
    );

    let mid_url = lake.sqlite_url_of("mid.db");
    let mut mid = lake
        .model_with(&mid_url, |c| {
            c.max_lines_per_batch = one[0].lines as u64 / 3
        })
        .await;
    let mid_reports = mid.drain().await.expect("model");
    assert!(
        (2..reports.len()).contains(&mid_reports.len()),
        "{} batches",
        mid_reports.len()
    );

    for model in [&steps, &mid] {
        assert_eq!(
            gold_on_hand(model.gold()).await,
            gold_on_hand(whole.gold()).await
        );
        assert_eq!(
            latest_closing(model.gold()).await,
            latest_closing(whole.gold()).await
        );
        assert_eq!(
            open_alert_keys(model.gold()).await,
            open_alert_keys(whole.gold()).await
        );
    }
}

/// Lines the model meets again — its checkpoint set back behind facts it wrote — are not
/// inserted again, and add nothing to the fact tables' counts or the hourly sales.
#[tokio::test(flavor = "multi_thread")]
async fn lines_met_again_add_nothing_to_the_counts_or_the_hours() {
    let (records, _) = chain(2, 29);
    let mut lake = Lake::new();
    lake.put(&records).await;
    lake.refine().await;
    let truth = lake.sales_by_hour_from_silver().await;
    let sqlite = lake.sqlite_url();
    let pg = stocklake_testkit::postgres().await;
    let mut urls = vec![sqlite.clone()];
    urls.extend(pg.as_ref().map(|p| p.url.clone()));
    for url in urls {
        let mut model = lake.model(&url).await;
        model.drain().await.expect("model");
        let counts = kept_counts_are_exact(model.gold()).await;
        assert_eq!(sales_by_hour(model.gold()).await, truth, "{url}");
        drop(model);
        let back = "UPDATE gold_checkpoint SET silver_version = 0 WHERE name = 'pos_event_lines'";
        match &pg {
            Some(p) if url == p.url => p.execute(back).await.expect("checkpoint back"),
            _ => {
                let c = rusqlite::Connection::open(lake.dir.path().join("gold.db")).expect("open");
                assert_eq!(c.execute(back, []).expect("checkpoint back"), 1);
            }
        }
        let mut again = lake.model(&url).await;
        let reports = again.drain().await.expect("model");
        assert!(
            reports.iter().map(|r| r.lines).sum::<usize>() > 1000,
            "read again"
        );
        assert_eq!(kept_counts_are_exact(again.gold()).await, counts, "{url}");
        assert_eq!(sales_by_hour(again.gold()).await, truth, "{url}");
    }
}

/// The open alerts, as (store, SKU, type).
async fn open_alert_keys(gold: &stocklake_model::Gold) -> Vec<(String, String, String)> {
    let mut keys: Vec<_> = stocklake_model::queries::alerts(
        gold,
        &stocklake_model::queries::AlertFilter {
            open: true,
            limit: 1_000_000,
            ..Default::default()
        },
    )
    .await
    .expect("alerts")
    .into_iter()
    .map(|a| (a.store_id, a.sku, a.alert_type))
    .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_gets_the_same_gold_as_sqlite() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let (mut records, _) = chain(4, 21);
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    records.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(9));
    let mut lake = Lake::new();
    let sqlite = lake.sqlite_url();
    let mut a = lake.model(&sqlite).await;
    let mut b = lake.model(&pg.url).await;
    for chunk in records.chunks(records.len() / 6 + 1) {
        lake.put(chunk).await;
        lake.refine().await;
        a.drain().await.expect("sqlite");
        b.drain().await.expect("postgres");
    }
    check_exact(&lake, b.gold()).await;
    assert_eq!(gold_on_hand(a.gold()).await, gold_on_hand(b.gold()).await);
    assert_eq!(
        sales_by_hour(b.gold()).await,
        lake.sales_by_hour_from_silver().await
    );
    assert_eq!(
        latest_closing(a.gold()).await,
        latest_closing(b.gold()).await
    );
    analysts_queries_agree(&records, a.gold(), b.gold()).await;
    views_agree(&lake, a.gold(), b.gold()).await;
    operations_agree(a.gold(), b.gold()).await;
    assert_eq!(
        alert_actions_hold(a.gold()).await,
        alert_actions_hold(b.gold()).await,
        "the same actions read back on both databases"
    );
    assert_eq!(
        kept_counts_are_exact(a.gold()).await,
        kept_counts_are_exact(b.gold()).await
    );
    // a second model on the same database finds nothing to do
    let mut again = lake.model(&pg.url).await;
    assert!(again.run_batch().await.expect("batch").is_none());
    // the migrations are safe to repeat
    assert!(again.gold().migrate().await.expect("migrate").is_empty());
}

/// The analyst views give the same rows on both databases, and the daily sales view the units
/// silver's lines give per store and day.
async fn views_agree(
    lake: &Lake,
    sqlite: &stocklake_model::Gold,
    postgres: &stocklake_model::Gold,
) {
    use std::collections::BTreeMap;
    use stocklake_model::queries::{Page, view};
    use stocklake_model::schema::VIEWS;
    let page = Page {
        limit: 10_000,
        offset: 0,
    };
    // a row with its numbers as decimals at 6 places (SQLite sums in doubles) and the rest as text
    let norm = |rows: Vec<serde_json::Value>| -> Vec<Vec<(String, String)>> {
        rows.iter()
            .map(|r| {
                r.as_object()
                    .expect("row")
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            serde_json::Value::String(s) => s
                                .parse::<Decimal>()
                                .map(|d| d.round_dp(6).normalize().to_string())
                                .or_else(|_| {
                                    chrono::DateTime::parse_from_rfc3339(s)
                                        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339())
                                })
                                .unwrap_or_else(|_| s.clone()),
                            serde_json::Value::Number(_) => {
                                dec(v).round_dp(6).normalize().to_string()
                            }
                            serde_json::Value::Bool(b) => b.to_string(),
                            other => other.to_string(),
                        };
                        (k.clone(), text)
                    })
                    .collect()
            })
            .collect()
    };
    for v in VIEWS {
        let a = norm(view(sqlite, v, page).await.expect("sqlite view"));
        let b = norm(view(postgres, v, page).await.expect("postgres view"));
        assert!(!a.is_empty(), "{v} is empty");
        assert_eq!(a, b, "{v} differs between SQLite and PostgreSQL");
    }
    // the chain's stores have no master data: their days are UTC days
    let mut want: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for l in lake.silver_lines().await {
        let sign = match l.event_type {
            stocklake_event::EventType::Sale => Decimal::ONE,
            stocklake_event::EventType::Return => Decimal::NEGATIVE_ONE,
            _ => continue,
        };
        let day = chrono::DateTime::from_timestamp_micros(l.event_time)
            .expect("time")
            .date_naive()
            .to_string();
        *want.entry((day, l.store_id)).or_default() += sign * l.quantity;
    }
    let mut got: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in view(postgres, "v_daily_sales_by_store_category", page)
        .await
        .expect("view")
    {
        let key = (
            r["sales_date"].as_str().expect("date").to_string(),
            r["store_id"].as_str().expect("store").to_string(),
        );
        *got.entry(key).or_default() += dec(&r["units"]);
    }
    let want: BTreeMap<_, _> = want.into_iter().map(|(k, v)| (k, v.normalize())).collect();
    let got: BTreeMap<_, _> = got.into_iter().map(|(k, v)| (k, v.normalize())).collect();
    assert_eq!(got, want, "daily units by store");
}

fn dec(v: &serde_json::Value) -> Decimal {
    match v {
        serde_json::Value::String(s) => s.parse().expect("decimal"),
        other => other.to_string().parse().expect("decimal"),
    }
}

/// "Top sellers this week per store" and "days of cover by category" give the same answers on
/// both databases, and the top sellers are the ones the events say.
async fn analysts_queries_agree(
    records: &[stocklake_simulate::OutRecord],
    sqlite: &stocklake_model::Gold,
    postgres: &stocklake_model::Gold,
) {
    use std::collections::BTreeMap;
    use stocklake_event::EventType;
    use stocklake_model::queries::{days_of_cover_by_category, top_sellers_this_week};

    // independently: units sold net of returns per store and SKU (the chain is 4 days long,
    // all of it inside the week)
    let mut units: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    for r in records {
        let e = stocklake_event::parse_event(&r.bytes).expect("valid");
        let sign = match e.event_type {
            EventType::Sale => Decimal::ONE,
            EventType::Return => -Decimal::ONE,
            _ => continue,
        };
        for l in &e.lines {
            *units
                .entry(e.store_id.to_string())
                .or_default()
                .entry(l.sku.to_string())
                .or_default() += sign * l.quantity;
        }
    }
    let mut want: Vec<(String, String, Decimal)> = Vec::new();
    for (store, skus) in &units {
        let mut v: Vec<(&String, &Decimal)> = skus.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (sku, u) in v.into_iter().take(3) {
            want.push((store.clone(), sku.clone(), u.normalize()));
        }
    }
    for gold in [sqlite, postgres] {
        let rows = top_sellers_this_week(gold, 3).await.expect("top sellers");
        let got: Vec<(String, String, Decimal)> = rows
            .iter()
            .map(|r| {
                (
                    r["store_id"].as_str().expect("store").to_string(),
                    r["sku"].as_str().expect("sku").to_string(),
                    dec(&r["units"]).normalize(),
                )
            })
            .collect();
        assert_eq!(got, want, "top sellers on {:?}", gold.dialect());
        let ranks: Vec<i64> = rows
            .iter()
            .map(|r| dec(&r["rank"]).try_into().expect("rank"))
            .collect();
        assert!(ranks.chunks(3).all(|c| c == [1, 2, 3]), "{ranks:?}");
    }
    let cover = |rows: Vec<serde_json::Value>| -> Vec<(String, i64, Decimal)> {
        rows.iter()
            .map(|r| {
                (
                    r["category"].as_str().expect("category").to_string(),
                    dec(&r["products"]).try_into().expect("count"),
                    dec(&r["on_hand"]).normalize(),
                )
            })
            .collect()
    };
    let a = cover(days_of_cover_by_category(sqlite).await.expect("cover"));
    let b = cover(days_of_cover_by_category(postgres).await.expect("cover"));
    assert_eq!(
        a, b,
        "days of cover by category differ between the databases"
    );
    let on_hand = gold_on_hand(postgres).await;
    assert_eq!(
        b.iter().map(|(_, n, _)| *n as usize).sum::<usize>(),
        on_hand.len(),
        "every stock level counted under one category"
    );
    assert_eq!(
        b.iter().map(|(_, _, q)| *q).sum::<Decimal>().normalize(),
        on_hand.values().copied().sum::<Decimal>().normalize()
    );
    // this lake has no product master: every product is an inferred member, "Unknown"
    assert_eq!(a.len(), 1, "{a:?}");
}

/// What the running pipeline writes and reads besides the star schema — stage runs, the alert
/// outbox, the sales-velocity chart — works alike on both databases.
async fn operations_agree(sqlite: &stocklake_model::Gold, postgres: &stocklake_model::Gold) {
    use stocklake_model::queries::{
        AlertFilter, RunRecord, alerts, alerts_and_total, alerts_total, mark_notification,
        pending_notifications, recent_runs, record_run, sales_velocity,
    };
    let mut velocity = Vec::new();
    let mut totals = Vec::new();
    for gold in [sqlite, postgres] {
        // an alert count whatever the limit: the one alert shown of all of them
        let every = AlertFilter {
            limit: 100_000,
            ..AlertFilter::default()
        };
        let all = alerts(gold, &every).await.expect("alerts");
        let one = AlertFilter {
            limit: 1,
            ..AlertFilter::default()
        };
        assert_eq!(alerts(gold, &one).await.expect("one alert").len(), 1);
        let total = alerts_total(gold, &one).await.expect("alert total");
        assert_eq!(total, all.len() as i64);
        // a full page is counted, a shorter one is all there is
        let (page, page_total) = alerts_and_total(gold, &one).await.expect("page");
        assert_eq!((page.len(), page_total), (1, total));
        let (_, every_total) = alerts_and_total(gold, &every).await.expect("every");
        assert_eq!(every_total, total);
        let open = AlertFilter { open: true, ..one };
        let open_total = alerts_total(gold, &open).await.expect("open total");
        assert_eq!(
            open_total,
            all.iter().filter(|a| a.resolved_at.is_none()).count() as i64
        );
        totals.push((total, open_total));

        let finished = chrono::Utc::now();
        let run = RunRecord {
            stage: "refine".into(),
            started_at: finished - chrono::Duration::seconds(2),
            finished_at: finished,
            status: "ok".into(),
            records_in: 5,
            records_out: 4,
            error: None,
            details: None,
        };
        record_run(gold, &run).await.expect("record a run");
        let runs = recent_runs(gold, 5).await.expect("recent runs");
        assert!(
            runs.iter()
                .any(|r| r["stage"] == "refine" && r["records_in"] == 5 && r["records_out"] == 4),
            "{runs:?}"
        );

        let pending = pending_notifications(gold, 100).await.expect("outbox");
        assert!(pending.len() >= 2, "four days open some alerts");
        mark_notification(gold, pending[0].id, None)
            .await
            .expect("mark delivered");
        mark_notification(gold, pending[1].id, Some("webhook answered 500"))
            .await
            .expect("record a failed attempt");
        let after = pending_notifications(gold, 100).await.expect("outbox");
        assert!(
            after.iter().all(|p| p.id != pending[0].id),
            "delivered stays delivered"
        );
        let retried = after
            .iter()
            .find(|p| p.id == pending[1].id)
            .expect("a failed notification stays pending");
        assert_eq!(retried.attempts, pending[1].attempts + 1);

        velocity.push(sales_velocity(gold, None, 24).await.expect("velocity"));
    }
    assert_eq!(totals[0], totals[1], "the same alerts on both databases");
    assert!(!velocity[0].is_empty());
    let units = |rows: &[serde_json::Value]| -> Vec<(String, Decimal)> {
        rows.iter()
            .map(|r| {
                (
                    r["hour"].as_str().unwrap_or("").to_string(),
                    dec(&r["units"]).normalize(),
                )
            })
            .collect()
    };
    assert_eq!(units(&velocity[0]), units(&velocity[1]), "sales by hour");
}

/// Alert actions kept and read back exactly, and what they do to the open list: a snooze or a
/// resolution quiets an alert until the snooze ends or the alert grows more severe; an
/// acknowledgement or an assignment quiets nothing. What was read back, for comparison.
async fn alert_actions_hold(gold: &stocklake_model::Gold) -> Vec<String> {
    use stocklake_model::queries::{
        AlertAction, AlertFilter, action_target, alert_actions, alerts, record_action,
    };
    let open = |quieted| AlertFilter {
        open: true,
        quieted,
        limit: 100_000,
        ..AlertFilter::default()
    };
    let ids = |list: Vec<stocklake_model::rows::AlertView>| -> Vec<i64> {
        list.iter().map(|a| a.alert_id).collect()
    };
    let all_open = ids(alerts(gold, &open(None)).await.expect("open"));
    assert!(all_open.len() >= 2, "four days open alerts: {all_open:?}");
    let (a, c) = (all_open[0], all_open[1]);
    let target = action_target(gold, a)
        .await
        .expect("target")
        .expect("alert a");
    assert_eq!(target.alert_id, a);
    assert!(target.resolved_at.is_none() && !target.sku.is_empty());
    assert!(action_target(gold, -5).await.expect("none").is_none());
    let now = chrono::DateTime::parse_from_rfc3339("2030-01-01T08:00:00.123456Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let at = |s: i64| now + chrono::Duration::seconds(s);
    let action = |alert_id: i64, action: &str, severity: &str| AlertAction {
        alert_id,
        action: action.into(),
        actor: "Ana".into(),
        at: now,
        until: None,
        assignee: None,
        outcome: None,
        counted_quantity: None,
        note: None,
        severity: severity.into(),
        event_id: None,
        request_id: None,
    };
    let severity_a = target.severity.clone();
    let quiet = || async {
        let mut q = ids(alerts(gold, &open(Some(true))).await.expect("quieted"));
        q.sort_unstable();
        q
    };
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    // a: acknowledged and assigned: still to do
    record_action(gold, &action(a, "acknowledge", &severity_a))
        .await
        .expect("ack");
    record_action(
        gold,
        &AlertAction {
            at: at(1),
            assignee: Some("night shift".into()),
            ..action(a, "assign", &severity_a)
        },
    )
    .await
    .expect("assign");
    assert!(quiet().await.is_empty(), "nothing quiets an alert yet");
    // snoozed until a time gone by: awake
    record_action(
        gold,
        &AlertAction {
            at: at(2),
            until: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
            ..action(a, "snooze", &severity_a)
        },
    )
    .await
    .expect("snooze that ended");
    assert!(
        quiet().await.is_empty(),
        "a snooze that ended quiets nothing"
    );
    // snoozed when it was milder than it is now: it has grown worse since, and shows
    if severity_a != "low" {
        record_action(
            gold,
            &AlertAction {
                at: at(3),
                until: Some(later),
                ..action(a, "snooze", "low")
            },
        )
        .await
        .expect("snooze when milder");
        assert!(quiet().await.is_empty(), "an alert grown worse wakes");
    }
    // snoozed ahead at its severity: quiet
    record_action(
        gold,
        &AlertAction {
            at: at(4),
            until: Some(later),
            note: Some("delivery on Tuesday; caf\u{e9}".into()),
            ..action(a, "snooze", &severity_a)
        },
    )
    .await
    .expect("snooze");
    // c: resolved with a count, as a shelf check
    let severity_c = action_target(gold, c)
        .await
        .expect("c")
        .expect("c")
        .severity;
    record_action(
        gold,
        &AlertAction {
            outcome: Some("stock_found".into()),
            counted_quantity: Some(Decimal::new(12_345, 3)),
            event_id: Some(format!("alert-{c}-count-1")),
            ..action(c, "resolve", &severity_c)
        },
    )
    .await
    .expect("resolve c");
    let mut want = vec![a, c];
    want.sort_unstable();
    assert_eq!(quiet().await, want, "a snoozed, c resolved by a person");
    let still = ids(alerts(gold, &open(Some(false))).await.expect("open"));
    assert_eq!(still.len(), all_open.len() - 2);
    assert!(!still.contains(&a) && !still.contains(&c));
    let shown = alerts(gold, &open(None)).await.expect("open");
    let view = shown.iter().find(|v| v.alert_id == a).expect("a");
    assert_eq!(view.assignee.as_deref(), Some("night shift"));
    assert_eq!(view.acknowledged_at, Some(now));
    assert!(view.snoozed_until.is_some() && view.outcome.is_none());
    let view = shown.iter().find(|v| v.alert_id == c).expect("c");
    assert_eq!(view.outcome.as_deref(), Some("stock_found"));

    let history = alert_actions(gold, a).await.expect("history");
    let kinds: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(&kinds[..3], ["acknowledge", "assign", "snooze"]);
    assert!(kinds[3..].iter().all(|k| *k == "snooze") && kinds.len() >= 4);
    assert_eq!(history[0].at, now, "microseconds kept");
    assert_eq!(
        history.last().expect("the last snooze").note.as_deref(),
        Some("delivery on Tuesday; caf\u{e9}")
    );
    let counted = alert_actions(gold, c).await.expect("history c");
    assert_eq!(counted[0].counted_quantity, Some(Decimal::new(12_345, 3)));
    assert_eq!(counted[0].event_id, Some(format!("alert-{c}-count-1")));
    history
        .iter()
        .chain(&counted)
        .map(|h| {
            format!(
                "{} {} {} {:?} {:?} {:?}",
                h.action, h.actor, h.at, h.assignee, h.outcome, h.counted_quantity
            )
        })
        .collect()
}
