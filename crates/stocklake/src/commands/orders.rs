//! `stocklake orders`: a store's order proposals, by supplier, as a table, CSV or JSON.

use stocklake_model::queries::{OrderFilter, orders};
use stocklake_model::rows::OrderView;

use crate::cli::OrdersArgs;
use crate::commands::model::open_gold;
use crate::config::Settings;

pub async fn run(settings: &Settings, args: OrdersArgs) -> anyhow::Result<()> {
    let gold = open_gold(settings).await?;
    let filter = OrderFilter {
        store_id: Some(args.store.clone()),
        supplier_id: args.supplier.clone(),
        date: args.date,
        limit: args
            .limit
            .clamp(1, stocklake_model::queries::Page::MAX_LIMIT),
        offset: 0,
    };
    let list = orders(&gold, &filter).await?;
    if args.csv {
        print!("{}", OrderView::to_csv(&list));
        return Ok(());
    }
    if args.json {
        say!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        say!(
            "nothing to order for store {}{}",
            args.store,
            args.date.map(|d| format!(" on {d}")).unwrap_or_default()
        );
        return Ok(());
    }
    let mut supplier: Option<(Option<&str>, chrono::NaiveDate)> = None;
    for o in &list {
        let head = (o.supplier_id.as_deref(), o.order_date);
        if supplier != Some(head) {
            supplier = Some(head);
            say!(
                "\n{} — order on {}, delivery {}",
                o.supplier_id
                    .as_deref()
                    .unwrap_or("(no supplier in master data)"),
                o.order_date.format("%a %Y-%m-%d"),
                o.expected_delivery.format("%a %Y-%m-%d %H:%M UTC")
            );
            say!(
                "  {:<12} {:<32} {:>9} {:>6} {:>9} {:>9}",
                "sku",
                "product",
                "quantity",
                "cases",
                "on hand",
                "on order"
            );
        }
        let name: String = o
            .product_name
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(32)
            .collect();
        say!(
            "  {:<12} {:<32} {:>9} {:>6} {:>9} {:>9}",
            o.sku,
            name,
            o.quantity.normalize(),
            o.cases,
            o.on_hand.normalize(),
            o.on_order.normalize()
        );
        say!("      {}", o.reason);
    }
    say!(
        "\n{} line{} to order for store {}",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        args.store
    );
    Ok(())
}
