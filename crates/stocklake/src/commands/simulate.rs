//! `stocklake simulate`: the POS simulator.

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::ProgressBar;
use stocklake_simulate::{RunOptions, SimConfig, Simulator, Target, WireFormat};

use crate::cli::SimulateArgs;

/// Parses `--start`: a date (midnight UTC), an RFC 3339 time, or `now`.
pub fn parse_start(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if s == "now" {
        return Ok(Utc::now());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .context("invalid date");
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("--start {s:?}: expected YYYY-MM-DD, an RFC 3339 time or now"))
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.bad_rate) {
        bail!("--bad-rate {} must be between 0 and 1", args.bad_rate);
    }
    if args.speed <= 0.0 || !args.speed.is_finite() {
        bail!("--speed {} must be a positive number", args.speed);
    }
    if args.stores == 0 || args.skus == 0 {
        bail!("--stores and --skus must be at least 1");
    }
    let format: WireFormat = args.format.parse().map_err(anyhow::Error::msg)?;
    let mut target: Target = args.to.parse().map_err(anyhow::Error::msg)?;
    if let Target::Http { token, .. } = &mut target {
        token.clone_from(&args.token);
    }
    let start = match &args.start {
        Some(s) => parse_start(s)?,
        None if args.realtime => Utc::now(),
        None => stocklake_simulate::default_start(),
    };
    let cfg = SimConfig {
        seed: args.seed,
        stores: args.stores,
        skus: args.skus,
        start,
        days: args.days,
        bad_rate: args.bad_rate,
        format,
        shrink: args.shrink.max(0.0),
        truth: args.truth.is_some(),
        purchase_orders: !args.no_purchase_orders,
        external_orders: false,
    };
    let mut sim = Simulator::new(cfg);
    if let Some(dir) = &args.catalog_out {
        sim.catalog()
            .write_csv(dir)
            .with_context(|| format!("writing the catalog to {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), "wrote products.csv, stores.csv and suppliers.csv");
    }
    let opts = RunOptions {
        realtime: args.realtime,
        speed: args.speed,
        truth: args.truth.clone(),
        aws: stocklake_storage::AwsOptions::from_env(),
        live_from: None,
    };
    let bar = if matches!(target, Target::Stdout) {
        ProgressBar::hidden()
    } else {
        super::progress_bar(
            u64::from(args.days),
            "simulating",
            "day {pos}/{len} {msg} ({elapsed})",
        )
    };
    let started = std::time::Instant::now();
    let mut on_day = |s: &Simulator| {
        bar.set_position(u64::from(s.stats().days));
        bar.set_message(format!("{} records", s.stats().records));
    };
    stocklake_simulate::run(&mut sim, &target, &opts, &mut on_day).await?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    tracing::info!(
        records = stats.records,
        events = stats.events(),
        seconds = format!("{elapsed:.2}"),
        records_per_second = format!("{:.0}", stats.records as f64 / elapsed.max(1e-9)),
        "simulation finished"
    );
    if args.stats {
        eprint!("{}", stats.render());
    }
    Ok(())
}
