//! `stocklake replay`: rebuilds silver and gold from bronze (or only gold from silver).
//! Bronze is the truth; everything else can be derived again.

use std::io::{IsTerminal, Write};

use anyhow::{Context, bail};
use futures::TryStreamExt;
use indicatif::ProgressBar;
use object_store::ObjectStore;
use stocklake_model::Model;
use stocklake_refine::Refiner;
use stocklake_silver::tables::{POS_EVENT_LINES, QUARANTINE};

use crate::cli::ReplayArgs;
use crate::commands::model::{model_config, open_gold};
use crate::commands::refine::{load_master, refine_config};
use crate::config::{Settings, redact_url};

fn confirm(what: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("replay deletes {what}; pass --yes to confirm");
    }
    print!("This deletes {what} and rebuilds it. Type yes to go on: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("nothing was changed");
    }
    Ok(())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    super::progress_bar(len, what, "{pos}/{len} {msg} ({elapsed})")
}

/// Deletes a silver table entirely (its log and its files).
async fn drop_table(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let store = settings.silver.object_store(&settings.aws)?;
    let prefix = object_store::path::Path::from(name);
    let paths: Vec<_> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .with_context(|| format!("listing silver table {name}"))?;
    let locations = futures::stream::iter(paths.into_iter().map(Ok));
    store
        .delete_stream(Box::pin(locations))
        .try_collect::<Vec<_>>()
        .await
        .with_context(|| format!("deleting silver table {name}"))?;
    if let Some(p) = settings.silver.local_path() {
        let _ = std::fs::remove_dir_all(p.join(name));
    }
    Ok(())
}

pub async fn run(settings: &Settings, args: ReplayArgs) -> anyhow::Result<()> {
    if args.gold_only {
        confirm(
            &format!("every gold table in {}", redact_url(&settings.gold)),
            args.yes,
        )?;
    } else {
        confirm(
            &format!(
                "silver's pos_event_lines and quarantine in {} and every gold table in {}",
                settings.silver,
                redact_url(&settings.gold)
            ),
            args.yes,
        )?;
    }
    let gold = open_gold(settings).await?;
    gold.truncate().await.context("emptying gold")?;
    if !args.gold_only {
        for t in [POS_EVENT_LINES, QUARANTINE] {
            drop_table(settings, t).await?;
        }
        load_master(settings).await?;
        let mut refiner = Refiner::open(refine_config(settings)).await?;
        let n = refiner.scan().await?;
        let b = bar(n as u64, "refining bronze");
        let mut records = 0;
        while let Some(r) = refiner.run_batch().await? {
            b.inc(r.objects as u64);
            records += r.counts.records;
            b.set_message(format!("{records} records"));
        }
        b.finish_and_clear();
        say!(
            "silver rebuilt from {n} bronze objects: {}",
            crate::commands::refine::summary(&refiner.progress().totals)
        );
    }
    let mut model = Model::open(model_config(settings), gold).await?;
    let pending = model.pending().await?;
    let b = bar(pending, "loading gold");
    let mut reports = Vec::new();
    while let Some(r) = model.run_batch().await? {
        b.inc(r.to_version.saturating_sub(r.from_version) + u64::from(r.to_version > 0));
        reports.push(r);
    }
    b.finish_and_clear();
    say!(
        "gold rebuilt: {}",
        crate::commands::model::summary(&reports)
    );
    Ok(())
}
