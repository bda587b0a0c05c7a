//! `stocklake alerts`: the open stock alerts, most severe first.

use stocklake_model::queries::{AlertFilter, alerts_and_total};

use crate::cli::AlertsArgs;
use crate::commands::model::open_gold;
use crate::config::Settings;

pub async fn run(settings: &Settings, args: AlertsArgs) -> anyhow::Result<()> {
    let gold = open_gold(settings).await?;
    let filter = AlertFilter {
        open: !args.all,
        // as the API's open list: without what a person snoozed or resolved while that holds
        quieted: (!args.all).then_some(false),
        store_id: args.store_id.clone(),
        limit: args.limit,
        ..AlertFilter::default()
    };
    let (list, total) = alerts_and_total(&gold, &filter).await?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        say!("no {}alerts", if args.all { "" } else { "open " });
        return Ok(());
    }
    say!(
        "{:>7}  {:<8} {:<8} {:<24} {:>10} {:>9}  message",
        "alert",
        "severity",
        "store",
        "type",
        "on hand",
        "order"
    );
    for a in &list {
        say!(
            "{:>7}  {:<8} {:<8} {:<24} {:>10} {:>9}  {}{}",
            a.alert_id,
            a.severity,
            a.store_id,
            a.alert_type,
            a.on_hand.normalize(),
            a.suggested_order_qty.normalize(),
            a.message,
            a.resolved_at
                .map(|t| format!(" (resolved {})", t.format("%Y-%m-%d %H:%M")))
                .unwrap_or_default()
        );
    }
    if total > list.len() as i64 {
        say!(
            "{} of {total} {}alerts shown, most severe first (--limit for more)",
            list.len(),
            if args.all { "" } else { "open " }
        );
    }
    Ok(())
}
