//! Alert changes leave gold's outbox for the right webhook, in its format, once each: a route
//! naming the store, else its region's, else the chain-wide webhook; a webhook that fails keeps
//! the change (and those after it) for the next pass.

use stocklake_model::notify::{Notifier, NotifyConfig, Route, Webhook, WebhookFormat};
use stocklake_model::queries::pending_notifications;
use stocklake_simulate::{SimConfig, Simulator};
use stocklake_testkit::receiver::Receiver;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn alert_changes_go_to_their_store_s_route_in_its_format() {
    let mut sim = Simulator::new(SimConfig {
        seed: 21,
        stores: 3,
        skus: 60,
        days: 5,
        ..SimConfig::default()
    });
    let mut records = Vec::new();
    while let Some(mut d) = sim.next_day() {
        records.append(&mut d.records);
    }
    let mut lake = Lake::new();
    lake.put(&records).await;
    lake.refine().await;
    let url = lake.sqlite_url();
    let mut model = lake.model(&url).await;
    model.drain().await.expect("gold");
    let gold = model.gold().clone();
    let pending = pending_notifications(&gold, 100_000).await.expect("outbox");
    let stores: std::collections::BTreeSet<String> = pending
        .iter()
        .filter_map(|p| {
            serde_json::from_str::<serde_json::Value>(&p.payload).ok()?["store_id"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let stores: Vec<String> = stores.into_iter().collect();
    assert_eq!(
        stores.len(),
        3,
        "three stores with alert changes: {stores:?}"
    );
    // the second store is in the North (master data would say so)
    if let stocklake_model::Gold::Sqlite(g) = &gold {
        let second = stores[1].clone();
        g.with(move |c| {
            c.execute(
                "UPDATE dim_store SET region = 'North' WHERE store_id = ?1",
                [second],
            )
            .map_err(|e| stocklake_model::ModelError::database(e.to_string()))
        })
        .await
        .expect("set a region");
    }

    let hooks = Receiver::start().expect("receiver");
    let hook = |path: &str, token: Option<&str>, format| Webhook {
        url: format!("{}{path}", hooks.url),
        token: token.map(str::to_string),
        format,
    };
    let cfg = NotifyConfig {
        webhook: Some(hook("/chain", Some("chain-token"), WebhookFormat::Json)),
        routes: vec![
            Route {
                store_id: None,
                region: Some("North".into()),
                webhook: hook("/north", None, WebhookFormat::Teams),
            },
            Route {
                store_id: Some(stores[0].clone()),
                region: None,
                webhook: hook("/first", Some("first-token"), WebhookFormat::Slack),
            },
        ],
        log: false,
    };
    let notifier = Notifier::new(gold.clone(), cfg.clone()).expect("notifier");

    // the first store's channel is down: nothing is lost, and the order is kept
    hooks.answer(503);
    let (sent, failed) = notifier.deliver_all().await.expect("deliver");
    assert_eq!(failed, 1, "one failed call stops the pass");
    let still = pending_notifications(&gold, 100_000).await.expect("outbox");
    assert_eq!(still.len(), pending.len() - sent);
    hooks.answer(200);
    let before = hooks.received().len();
    let (sent_now, failed) = notifier.deliver_all().await.expect("deliver");
    assert_eq!((sent + sent_now, failed), (pending.len(), 0));
    assert!(
        pending_notifications(&gold, 10)
            .await
            .expect("outbox")
            .is_empty()
    );

    let got: Vec<_> = hooks.received().into_iter().skip(before).collect();
    assert_eq!(
        got.len(),
        still.len(),
        "each change once, after the failed try"
    );
    for r in &got {
        let key = r.header("idempotency-key").expect("an idempotency key");
        assert!(key.starts_with("stocklake-alert-change-"), "{key}");
        match r.path.as_str() {
            "/first" => {
                assert_eq!(r.header("authorization"), Some("Bearer first-token"));
                let text = r.json()["text"].as_str().expect("Slack text").to_string();
                assert!(text.contains(&format!(" at {}\n", stores[0])), "{text}");
            }
            "/north" => {
                assert_eq!(r.header("authorization"), None);
                assert_eq!(r.json()["@type"], "MessageCard", "{}", r.body);
                let text = r.json()["text"].as_str().expect("text").to_string();
                assert!(text.contains(&format!(" at {}\n", stores[1])), "{text}");
            }
            "/chain" => {
                assert_eq!(r.header("authorization"), Some("Bearer chain-token"));
                assert_eq!(r.json()["store_id"], stores[2].as_str(), "{}", r.body);
            }
            other => panic!("a change went to {other}"),
        }
    }
    for path in ["/first", "/north", "/chain"] {
        assert!(got.iter().any(|r| r.path == path), "nothing reached {path}");
    }
}
