//! `stocklake init`: creates what the configured backends need. Safe to repeat.

use anyhow::Context;
use stocklake_storage::{Location, aws};

use crate::cli::InitArgs;
use crate::config::Settings;

async fn ensure_location(settings: &Settings, what: &str, loc: &Location) -> anyhow::Result<()> {
    match loc {
        Location::Local(p) => {
            std::fs::create_dir_all(p)
                .with_context(|| format!("creating {what} directory {}", p.display()))?;
            say!("{what:<8} {} (local directory ready)", loc.url());
        }
        Location::S3 { bucket, .. } => {
            let created = aws::ensure_bucket(&settings.aws, bucket)
                .await
                .map_err(anyhow::Error::msg)?;
            say!(
                "{what:<8} {} (bucket {bucket} {})",
                loc.url(),
                if created { "created" } else { "exists" }
            );
        }
    }
    Ok(())
}

pub async fn run(settings: &Settings, args: InitArgs) -> anyhow::Result<()> {
    ensure_location(settings, "bronze", &settings.bronze).await?;
    ensure_location(settings, "silver", &settings.silver).await?;
    if let Some(root) = &settings.gold_lake {
        ensure_location(settings, "lake", root).await?;
        crate::commands::model::open_lake(settings).await?;
        say!(
            "lake     {} Delta tables of gold under {}",
            stocklake_model::lake::TABLES.len(),
            root.url()
        );
    }
    for name in [
        stocklake_silver::tables::POS_EVENT_LINES,
        stocklake_silver::tables::QUARANTINE,
        stocklake_silver::tables::PRODUCTS,
        stocklake_silver::tables::STORES,
    ] {
        let t = stocklake_silver::tables::open_or_create(&settings.silver, &settings.aws, name)
            .await
            .with_context(|| format!("creating silver table {name}"))?;
        say!(
            "silver   {name} (Delta table at version {})",
            t.version().map_or("-".into(), |v| v.to_string())
        );
    }
    crate::commands::refine::load_master(settings).await?;
    let gold = stocklake_model::Gold::connect(&settings.gold).await?;
    let applied = gold.migrate().await?;
    say!(
        "gold     {} ({})",
        crate::config::redact_url(&settings.gold),
        if applied.is_empty() {
            "schema up to date".to_string()
        } else {
            format!("migrations {applied:?} applied")
        }
    );
    if let Some(stream) = &settings.stream {
        let shards = args.shards.unwrap_or(settings.config.ingest.shards).max(1);
        let client = aws::kinesis_client(&settings.aws).await;
        let created = stocklake_ingest::ensure_stream(&client, stream, shards).await?;
        say!(
            "stream   kinesis://{stream} ({})",
            if created {
                format!("created with {shards} shards")
            } else {
                "exists".to_string()
            }
        );
    }
    Ok(())
}
