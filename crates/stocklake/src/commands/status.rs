//! `stocklake status`: checkpoints, lag and counts per stage, read from the stores themselves.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use stocklake_model::queries;
use stocklake_refine::latest_progress;
use stocklake_silver::tables::{POS_EVENT_LINES, open_or_create};
use stocklake_storage::bronze::cmp_seq;
use stocklake_storage::list_bronze;

use crate::cli::StatusArgs;
use crate::commands::model::open_gold;
use crate::config::{Settings, redact_url};

/// Everything `status` knows, as JSON (also what `--json` prints).
pub async fn collect(settings: &Settings) -> anyhow::Result<serde_json::Value> {
    // bronze
    let store = settings.bronze.object_store(&settings.aws)?;
    let objects = list_bronze(store.as_ref(), None)
        .await
        .with_context(|| format!("listing bronze at {}", settings.bronze))?;
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let mut partitions: BTreeMap<String, String> = BTreeMap::new();
    for o in &objects {
        let key = format!("{}/{}", o.name.source.label(), o.name.partition);
        let newer = partitions
            .get(&key)
            .is_none_or(|c| cmp_seq(&o.name.last_seq, c).is_gt());
        if newer {
            partitions.insert(key, o.name.last_seq.clone());
        }
    }
    // silver
    let lines = open_or_create(&settings.silver, &settings.aws, POS_EVENT_LINES).await?;
    let progress = latest_progress(&lines).await?.unwrap_or_default();
    let backlog = objects
        .iter()
        .filter(|o| {
            let key = format!("{}/{}", o.name.source.label(), o.name.partition);
            progress
                .consumed
                .get(&key)
                .is_none_or(|c| cmp_seq(&o.name.last_seq, c).is_gt())
        })
        .count();
    let silver_version = lines.version().unwrap_or(0);
    // gold
    let gold = open_gold(settings).await?;
    let checkpoints = queries::checkpoints(&gold).await?;
    let gold_version = checkpoints
        .iter()
        .find(|c| c["name"] == POS_EVENT_LINES)
        .and_then(|c| c["silver_version"].as_i64())
        .unwrap_or(0);
    let counts = queries::counts(&gold).await?;
    // the gold lake: the gold batch each table holds everything up to
    let lake = match crate::commands::model::open_lake(settings).await? {
        Some(mut lake) => json!({
            "root": lake.root().url(),
            "tables": lake.state(&gold).await?,
        }),
        None => serde_json::Value::Null,
    };
    let dead_letters = if counts["dead_letters"].as_i64().unwrap_or(0) > 0 {
        queries::dead_letters(
            &gold,
            queries::Page {
                limit: 5,
                offset: 0,
            },
        )
        .await?
    } else {
        Vec::new()
    };
    let runs = queries::recent_runs(&gold, 3).await?;
    let refine_lag = if backlog > 0 {
        progress
            .max_arrived_at
            .map(|t| (Utc::now() - t).num_seconds())
    } else {
        Some(0)
    };
    Ok(json!({
        "bronze": {
            "location": settings.bronze.url(),
            "objects": objects.len(),
            "bytes": bytes,
            "newest_ingest_date": objects.iter().map(|o| o.name.ingest_date).max(),
            "partitions": partitions,
        },
        "silver": {
            "location": settings.silver.url(),
            "pos_event_lines_version": silver_version,
            "batch": progress.batch,
            "watermark": progress.watermark,
            "last_refined_at": progress.refined_at,
            "backlog_objects": backlog,
            "lag_seconds": refine_lag,
            "totals": progress.totals,
        },
        "gold": {
            "database": redact_url(&settings.gold),
            "silver_version_consumed": gold_version,
            "versions_behind": (silver_version as i64 - gold_version).max(0),
            "checkpoints": checkpoints,
            "counts": counts,
            "dead_letters": dead_letters,
        },
        "recent_runs": runs,
        "lake": lake,
    }))
}

pub async fn run(settings: &Settings, args: StatusArgs) -> anyhow::Result<()> {
    let s = collect(settings).await?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    print_layers(&s)?;
    print_lake_and_runs(&s)
}

/// Bronze, silver and gold, a few lines each.
fn print_layers(s: &serde_json::Value) -> anyhow::Result<()> {
    let b = &s["bronze"];
    say!(
        "bronze  {}  {} objects, {:.1} MB, newest ingest date {}",
        b["location"].as_str().unwrap_or(""),
        b["objects"],
        b["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        b["newest_ingest_date"].as_str().unwrap_or("-")
    );
    if let Some(parts) = b["partitions"].as_object() {
        for (k, v) in parts {
            say!("        {k}: up to sequence {}", v.as_str().unwrap_or(""));
        }
    }
    let sv = &s["silver"];
    let t = &sv["totals"];
    say!(
        "silver  {}  batch {}, watermark {}, {} bronze objects waiting (lag {} s)",
        sv["location"].as_str().unwrap_or(""),
        sv["batch"],
        sv["watermark"].as_str().unwrap_or("-"),
        sv["backlog_objects"],
        sv["lag_seconds"]
    );
    say!(
        "        {} records: {} events ({} lines), {} quarantined, {} duplicates",
        t["records"],
        t["events"],
        t["lines"],
        t["quarantined"],
        t["duplicates"]
    );
    if let Some(r) = t["reasons"].as_object().filter(|r| !r.is_empty()) {
        let list: Vec<String> = r.iter().map(|(k, v)| format!("{k} {v}")).collect();
        say!("        quarantine reasons: {}", list.join(", "));
    }
    print_gold(&s["gold"], sv)
}

fn print_gold(g: &serde_json::Value, sv: &serde_json::Value) -> anyhow::Result<()> {
    let c = &g["counts"];
    say!(
        "gold    {}  silver version {} of {} ({} behind)",
        g["database"].as_str().unwrap_or(""),
        g["silver_version_consumed"],
        sv["pos_event_lines_version"],
        g["versions_behind"]
    );
    say!(
        "        {} movements, {} sales lines, {} stock levels, {} open alerts ({} in all), {} notifications waiting",
        c["movements"],
        c["sales_lines"],
        c["stock_levels"],
        c["open_alerts"],
        c["alerts"],
        c["undelivered_notifications"]
    );
    if c["dead_letters"].as_i64().unwrap_or(0) > 0 {
        say!(
            "        {} lines set aside as dead letters (GET /v1/dead-letters); the newest:",
            c["dead_letters"]
        );
        for d in g["dead_letters"].as_array().into_iter().flatten() {
            say!(
                "          {} line {} ({} {} {}): {}",
                d["event_id"].as_str().unwrap_or(""),
                d["line_no"],
                d["event_type"].as_str().unwrap_or(""),
                d["store_id"].as_str().unwrap_or(""),
                d["sku"].as_str().unwrap_or(""),
                d["error"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// The gold lake's tables, and the stages' recent runs.
fn print_lake_and_runs(s: &serde_json::Value) -> anyhow::Result<()> {
    if let Some(tables) = s["lake"]["tables"].as_array() {
        let behind: Vec<String> = tables
            .iter()
            .filter(|t| t["up_to_date"] != true)
            .map(|t| {
                format!(
                    "{} (published to batch {}, gold has batch {})",
                    t["table"].as_str().unwrap_or(""),
                    t["published"]
                        .as_i64()
                        .map_or("-".into(), |b| b.to_string()),
                    t["newest"]
                )
            })
            .collect();
        say!(
            "lake    {}  {} Delta tables, {}",
            s["lake"]["root"].as_str().unwrap_or(""),
            tables.len(),
            if behind.is_empty() {
                "each holding every row gold has".to_string()
            } else {
                format!("behind gold: {}", behind.join(", "))
            }
        );
    }
    if let Some(runs) = s["recent_runs"].as_array().filter(|r| !r.is_empty()) {
        say!("recent runs");
        for r in runs {
            say!(
                "        {:<8} {} {:>6} in {:>8} out  {}{}",
                r["stage"].as_str().unwrap_or(""),
                r["finished_at"].as_str().unwrap_or(""),
                r["records_in"],
                r["records_out"],
                r["status"].as_str().unwrap_or(""),
                r["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
