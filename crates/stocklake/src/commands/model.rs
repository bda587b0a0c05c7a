//! `stocklake model`: silver → gold, stock levels and alerts. `--once` loads what is there.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stocklake_model::lake::{GoldLake, Published};
use stocklake_model::notify::Notifier;
use stocklake_model::{Gold, Model, ModelConfig, ModelReport};
use stocklake_stock::RuleConfig;
use tokio::sync::Notify;

use crate::cli::StageArgs;
use crate::commands::run::spawn_lake;
use crate::commands::shutdown_token;
use crate::config::Settings;
use crate::stages::{ModelStage, deliver_alerts};
use crate::supervisor::{Completion, Finished, Pace, Status, supervise};
use stocklake_serve::Pipeline;

pub fn model_config(settings: &Settings) -> ModelConfig {
    let s = &settings.config.stock;
    ModelConfig {
        rules: RuleConfig {
            overstock_days: s.overstock_days,
            phantom_probability: s.phantom_probability,
            min_history_days: s.min_history_days,
            phantom_min_sales_per_day: s.phantom_min_sales_per_day,
            order_risk: s.order_risk,
            stockout_window_hours: s.stockout_window_hours,
            stockout_hold_hours: s.stockout_hold_hours,
            low_cover_share: s.low_cover_share,
            low_cover_share_held: s.low_cover_share_held,
            order_risk_hold_share: s.order_risk_hold_share,
            safety_stock_clear: s.safety_stock_clear,
            reorder_point_clear: s.reorder_point_clear,
            phantom_pace: s.phantom_pace,
            phantom_hold: s.phantom_hold,
            phantom_history_days: s.phantom_history_days,
            phantom_min_shelf_sales: s.phantom_min_shelf_sales,
            warning_confirm_minutes: s.warning_confirm_minutes,
        },
        half_life_days: s.demand_half_life_days,
        default_lead_time_days: s.default_lead_time_days,
        default_service_level: s.default_service_level,
        ..ModelConfig::new(settings.silver.clone(), settings.aws.clone())
    }
}

pub async fn open_gold(settings: &Settings) -> anyhow::Result<Gold> {
    let gold = Gold::connect(&settings.gold).await.with_context(|| {
        format!(
            "opening gold at {}",
            crate::config::redact_url(&settings.gold)
        )
    })?;
    gold.migrate().await.context("migrating gold")?;
    Ok(gold)
}

pub fn summary(reports: &[ModelReport]) -> String {
    let lines: usize = reports.iter().map(|r| r.lines).sum();
    let opened: usize = reports.iter().map(|r| r.alerts_opened).sum();
    let resolved: usize = reports.iter().map(|r| r.alerts_resolved).sum();
    let days: usize = reports.iter().map(|r| r.days_closed).sum();
    let late: usize = reports.iter().map(|r| r.late_lines).sum();
    let seconds: f64 = reports.iter().map(|r| r.seconds).sum();
    format!(
        "{lines} lines into gold in {} batches ({seconds:.3} s; {late} late), {days} store-days closed, {opened} alerts opened, {resolved} resolved",
        reports.len()
    )
}

/// The gold lake of the configuration, opened (its tables created when missing).
pub async fn open_lake(settings: &Settings) -> anyhow::Result<Option<GoldLake>> {
    let Some(root) = &settings.gold_lake else {
        return Ok(None);
    };
    let lake = GoldLake::open(root.clone(), settings.aws.clone())
        .await
        .with_context(|| format!("opening the gold lake at {root}"))?;
    Ok(Some(lake))
}

/// What a publication did, in a line.
pub fn published_summary(done: &[Published]) -> String {
    let rows: u64 = done.iter().map(|d| d.rows).sum();
    let batch = done.iter().map(|d| d.batch).max().unwrap_or(0);
    let reset: Vec<&str> = done
        .iter()
        .filter(|d| d.reset)
        .map(|d| d.table.as_str())
        .collect();
    format!(
        "gold lake up to gold batch {batch}: {rows} rows published{}",
        if reset.is_empty() {
            String::new()
        } else {
            format!(" ({} published again: gold was rebuilt)", reset.join(", "))
        }
    )
}

pub async fn run(settings: &Settings, args: StageArgs) -> anyhow::Result<()> {
    let gold = open_gold(settings).await?;
    let mut lake = open_lake(settings).await?;
    let mut model = Model::open(model_config(settings), gold.clone())
        .await
        .with_context(|| format!("opening silver at {}", settings.silver))?;
    let notifier = Notifier::new(gold.clone(), settings.notify.clone())?;
    let cancel = shutdown_token();
    if args.once {
        let pending = model.pending().await?;
        let bar = super::progress_bar(pending, "loading gold", "{pos}/{len} silver versions {msg}");
        let mut reports = Vec::new();
        while let Some(r) = model.run_batch().await? {
            bar.inc(r.to_version.saturating_sub(r.from_version) + u64::from(r.to_version > 0));
            bar.set_message(format!(
                "{} lines",
                reports.iter().map(|r: &ModelReport| r.lines).sum::<usize>() + r.lines
            ));
            reports.push(r);
            if cancel.is_cancelled() {
                break;
            }
        }
        bar.finish_and_clear();
        let (sent, failed) = notifier.deliver_all().await?;
        say!("{}", summary(&reports));
        if let Some(lake) = lake.as_mut() {
            let done = lake
                .publish(&gold)
                .await
                .context("publishing the gold lake")?;
            say!("{}", published_summary(&done));
        }
        say!(
            "{sent} alert notifications delivered{}",
            if failed > 0 {
                format!(", {failed} failed (retried next run)")
            } else {
                String::new()
            }
        );
        return Ok(());
    }
    tracing::info!(silver = %settings.silver, gold = %crate::config::redact_url(&settings.gold), "modelling continuously");
    let pipeline = Pipeline::new(&["model", "alerts", "lake"]);
    let status = |name| Status::new(name, pipeline.clone(), None);
    let alerts = Arc::new(Notify::new());
    let (done, model_finished) = Completion::new();
    let delivery = deliver_alerts(
        notifier,
        alerts.clone(),
        status("alerts"),
        !settings.config.alerts.webhook_url.is_empty(),
        cancel.clone(),
        model_finished.clone(),
    );
    let lake = lake.map(|lake| {
        spawn_lake(
            settings,
            lake,
            gold.clone(),
            status("lake"),
            cancel.clone(),
            model_finished,
        )
    });
    let stage = ModelStage {
        model,
        // nothing in this process commits silver: the model polls
        wake: Arc::new(Notify::new()),
        alerts,
        verbose: true,
    };
    let every = Duration::from_millis(500);
    let pace = Pace {
        idle: every,
        stopping: every,
    };
    supervise(
        stage,
        status("model"),
        cancel,
        Finished::already(),
        done,
        pace,
    )
    .await;
    let _ = delivery.await;
    if let Some(lake) = lake {
        let _ = lake.await;
    }
    if let Some(fatal) = pipeline.fatal() {
        anyhow::bail!("the model stopped: {fatal}");
    }
    Ok(())
}
