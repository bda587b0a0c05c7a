//! `stocklake demo`: a simulated chain through the whole pipeline on the embedded default, with
//! the dashboard live. History of the last days arrives first (so demand has something to learn
//! from), then the chain trades in accelerated real time until `--duration` or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use stocklake_model::Gold;
use stocklake_model::queries::{AlertFilter, alerts_total, counts, status_by_category};
use stocklake_serve::Pipeline;
use stocklake_simulate::{RunOptions, SimConfig, Simulator, Target, WireFormat};
use stocklake_stock::AlertType;
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, GlobalArgs};
use crate::commands::{run, shutdown_token};
use crate::config;

/// Parses `90s`, `10m`, `2h` or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .with_context(|| format!("--duration {s:?}: expected e.g. 90s, 10m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => anyhow::bail!("--duration {s:?}: unknown unit {other:?} (use s, m or h)"),
    };
    Ok(Duration::from_secs_f64(secs.max(0.0)))
}

pub async fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<()> {
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    if args.speed <= 0.0 || !args.speed.is_finite() {
        anyhow::bail!("--speed {} must be a positive number", args.speed);
    }
    let (settings, demo_dir) = demo_settings(global)?;
    let start = Utc::now() - chrono::Duration::days(10);
    let days = match duration {
        Some(d) => (d.as_secs_f64() * args.speed / 86_400.0).ceil() as u32 + 11,
        None => 3650,
    };
    let cfg = SimConfig {
        seed: args.seed,
        stores: args.stores,
        skus: args.skus,
        start,
        days,
        bad_rate: 0.005,
        format: WireFormat::Canonical,
        shrink: 1.0,
        // demo/truth.ndjson: what the shelves really held, to compare alerts with
        truth: true,
        purchase_orders: true,
        external_orders: false,
    };
    let mut sim = Simulator::new(cfg);
    sim.catalog()
        .write_csv(&demo_dir.join("master"))
        .context("writing the demo's master data")?;

    let cancel = shutdown_token();
    let running = run::start(&settings, cancel.clone()).await?;
    progress!(
        "stocklake demo: {} stores, {} products, {}x real time (a simulated day every {:.0} s)",
        args.stores,
        args.skus,
        args.speed,
        86_400.0 / args.speed
    );
    progress!("  dashboard  {}/", running.url);
    progress!("  API        {}/v1/alerts?status=open", running.url);
    progress!(
        "  orders     {}/v1/orders?store_id=ST-0001 (or: stocklake orders --store ST-0001 --data-dir {})",
        running.url,
        demo_dir.display()
    );
    progress!("  data       {}", demo_dir.display());
    progress!(
        "  stop with Ctrl-C{}",
        duration
            .map(|d| format!(" (or it ends after {} s)", d.as_secs()))
            .unwrap_or_default()
    );

    let target = Target::Http {
        base: running.url.clone(),
        token: settings.ingest_tokens.first().cloned(),
    };
    let opts = RunOptions {
        realtime: true,
        speed: args.speed,
        truth: Some(demo_dir.join("truth.ndjson")),
        aws: Default::default(),
        live_from: Some(Utc::now()),
    };
    let sim_cancel = cancel.clone();
    let sim_task = tokio::spawn(async move {
        let mut noop = |_: &Simulator| {};
        let r = tokio::select! {
            r = stocklake_simulate::run(&mut sim, &target, &opts, &mut noop) => r.map_err(anyhow::Error::from),
            _ = sim_cancel.cancelled() => Ok(()),
        };
        (r, sim.stats().clone())
    });
    let ticker = tokio::spawn(report_progress(
        running.gold.clone(),
        running.pipeline.clone(),
        cancel.clone(),
    ));
    match duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => cancel.cancel(),
                _ = cancel.cancelled() => {}
            }
        }
        None => cancel.cancelled().await,
    }
    let (sim_result, stats) = sim_task.await.context("simulator task")?;
    let gold = running.gold.clone();
    running.wait().await?;
    ticker.abort();
    if let Err(e) = sim_result {
        tracing::warn!(error = %e, "the simulator stopped early");
    }
    summarize(&gold, &stats, &demo_dir).await;
    Ok(())
}

/// The demo's settings: the user's, on a directory of its own under the data directory, fresh
/// every time.
fn demo_settings(global: &GlobalArgs) -> anyhow::Result<(config::Settings, std::path::PathBuf)> {
    let settings = config::load(global)?;
    let demo_dir = settings.data_dir.join("demo");
    if demo_dir.exists() {
        std::fs::remove_dir_all(&demo_dir)
            .with_context(|| format!("clearing the previous demo in {}", demo_dir.display()))?;
    }
    std::fs::create_dir_all(&demo_dir)?;
    let mut demo_global = global.clone();
    demo_global.data_dir = Some(demo_dir.clone());
    demo_global.bronze = None;
    demo_global.silver = None;
    demo_global.gold = None;
    demo_global.stream = None;
    demo_global.master_data = Some(demo_dir.join("master"));
    let listen = settings.listen;
    let mut settings = config::load(&demo_global)?;
    settings.listen = listen;
    // the simulated clock runs ahead of the wall clock: accept its "future" events
    settings.config.refine.max_future_hours = 24 * 365 * 10;
    // the dashboard shows the alerts; the terminal shows progress
    settings.config.alerts.log = false;
    Ok((settings, demo_dir))
}

/// A line of progress every ten seconds until the end.
async fn report_progress(gold: Gold, pipeline: Arc<Pipeline>, cancel: CancellationToken) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        let c = counts(&gold).await.unwrap_or_default();
        let shelves = status_by_category(&gold, None).await.unwrap_or_default();
        let shelves = |k: &str| shelves.iter().filter_map(|r| r[k].as_i64()).sum::<i64>();
        let records = |stage: &str| pipeline.stage(stage).map(|s| s.records_total).unwrap_or(0);
        progress!(
            "  {:>4} s: {} records refined, {} stock levels ({} out, {} below reorder point), {} open alerts",
            started.elapsed().as_secs(),
            records("refine").max(records("ingest")),
            c["stock_levels"],
            shelves("out_of_stock"),
            shelves("below_reorder_point"),
            c["open_alerts"],
        );
    }
}

/// What the demo did: the simulated chain, gold, the alerts by type.
async fn summarize(gold: &Gold, stats: &stocklake_simulate::Stats, demo_dir: &std::path::Path) {
    let c = counts(gold).await.unwrap_or_default();
    // every alert of each type, counted by the database (a listing would stop at its limit)
    let mut by_type = std::collections::HashMap::new();
    for t in AlertType::ALL.map(AlertType::as_str) {
        let f = AlertFilter {
            open: false,
            alert_type: Some(t.to_string()),
            ..AlertFilter::default()
        };
        by_type.insert(t, alerts_total(gold, &f).await.unwrap_or_default());
    }
    let by_type = |t: &str| by_type.get(t).copied().unwrap_or_default();
    progress!("\nstocklake demo summary");
    progress!(
        "  simulated   {} events ({} sale baskets), {} stock-outs on the shelves, {:.1} units lost to empty shelves",
        stats.events(),
        stats.baskets,
        stats.stockouts,
        stats.units_lost as f64 / 1000.0
    );
    progress!(
        "  gold        {} movements, {} stock levels, {} alerts ({} open)",
        c["movements"],
        c["stock_levels"],
        c["alerts"],
        c["open_alerts"]
    );
    progress!(
        "  alerts      {} out of stock, {} projected stock-out, {} below reorder point, {} below safety stock, {} phantom stock, {} overstock, {} negative",
        by_type("out_of_stock"),
        by_type("projected_stockout"),
        by_type("below_reorder_point"),
        by_type("below_safety_stock"),
        by_type("suspected_phantom_stock"),
        by_type("overstock"),
        by_type("negative_stock")
    );
    let order_lines = stocklake_model::queries::count_rows(gold, "purchase_order_line")
        .await
        .unwrap_or_default();
    let to_order = stocklake_model::queries::orders(
        gold,
        &stocklake_model::queries::OrderFilter {
            limit: stocklake_model::queries::Page::MAX_LIMIT,
            ..Default::default()
        },
    )
    .await
    .map(|v| v.len())
    .unwrap_or_default();
    progress!(
        "  orders      {} purchase orders sent ({} lines in gold); {} lines proposed to order now{}",
        stats.purchase_orders,
        order_lines,
        to_order,
        if to_order >= stocklake_model::queries::Page::MAX_LIMIT {
            " or more"
        } else {
            ""
        }
    );
    progress!(
        "  the data stays in {} (rerun `stocklake demo` to start afresh)",
        demo_dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5h").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30").ok(), Some(Duration::from_secs(30)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
