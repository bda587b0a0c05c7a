//! Alert delivery from the transactional outbox.
//!
//! Alert changes are written to `alert_outbox` in the same gold transaction as the alerts, so a
//! change is never lost and never invented. This dispatcher delivers them to the log and, when
//! configured, POSTs each to a webhook with an `Idempotency-Key` that stays the same across
//! retries (retried with exponential backoff until the endpoint accepts it).
//!
//! Routing: a change goes to one webhook, the most specific that matches its store — a route
//! naming the store, else a route naming the store's region, else the chain-wide webhook — as
//! the change itself (JSON) or as a chat message in the form Slack, Microsoft Teams, Google
//! Chat or Discord take from an incoming webhook.

use std::time::Duration;

use stocklake_storage::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ModelError;
use crate::db::Gold;
use crate::queries::{mark_notification, pending_notifications};

/// How a webhook's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// The alert change as JSON (`alert_id`, `change`, `store_id`, `sku`, …).
    #[default]
    Json,
    /// `{"text": …}`: Slack's incoming webhooks (and Mattermost's, Rocket.Chat's).
    Slack,
    /// A MessageCard: Microsoft Teams' incoming webhooks.
    Teams,
    /// `{"text": …}` for a Google Chat space's webhook.
    GoogleChat,
    /// `{"content": …}`: Discord's webhooks.
    Discord,
}

impl WebhookFormat {
    pub const NAMES: &'static str = "json, slack, teams, google_chat or discord";

    pub fn parse(s: &str) -> Option<WebhookFormat> {
        Some(match s.trim() {
            "" | "json" => WebhookFormat::Json,
            "slack" => WebhookFormat::Slack,
            "teams" => WebhookFormat::Teams,
            "google_chat" => WebhookFormat::GoogleChat,
            "discord" => WebhookFormat::Discord,
            _ => return None,
        })
    }

    /// The body of a change's `payload` (the outbox's JSON) in this format.
    pub fn body(self, payload: &str) -> String {
        match self {
            WebhookFormat::Json => payload.to_string(),
            WebhookFormat::Slack | WebhookFormat::GoogleChat => {
                serde_json::json!({ "text": chat_text(payload) }).to_string()
            }
            WebhookFormat::Discord => {
                serde_json::json!({ "content": chat_text(payload) }).to_string()
            }
            WebhookFormat::Teams => {
                let text = chat_text(payload);
                serde_json::json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": text.lines().next().unwrap_or(""),
                "text": text,
                })
                .to_string()
            }
        }
    }
}

/// An alert change as a person reads it in a chat: what, where, how bad, what to do.
pub fn chat_text(payload: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let product = match v["product_name"].as_str() {
        Some(name) if !name.is_empty() => format!("{name} ({})", s("sku")),
        _ => s("sku"),
    };
    format!(
        "[{}] {} {}: {} at {}\n{}",
        s("severity").to_uppercase(),
        s("alert_type").replace('_', " "),
        s("change"),
        product,
        s("store_id"),
        s("message"),
    )
}

/// A webhook: where, with which bearer token, in which format.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub token: Option<String>,
    pub format: WebhookFormat,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &webhook_display(&self.url))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("format", &self.format)
            .finish()
    }
}

/// The alert changes of one store, or of every store of one region, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub store_id: Option<String>,
    pub region: Option<String>,
    pub webhook: Webhook,
}

/// The routes of a routes file: CSV with the header `store_id,region,format,url,token`, one
/// route a row, naming a store or a region (not both); `format` empty is `json`, `token` empty
/// is none. Why a row is refused, with its line.
pub fn parse_routes(text: &str) -> Result<Vec<Route>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("the header: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    if header != ["store_id", "region", "format", "url", "token"] {
        return Err(format!(
            "the header is {:?}, not store_id,region,format,url,token",
            header.join(",")
        ));
    }
    let mut routes = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| e.to_string())?;
        let line = row.position().map_or(0, |p| p.line());
        let at = |i: usize| row.get(i).unwrap_or("").to_string();
        let some = |s: String| (!s.is_empty()).then_some(s);
        let (store_id, region) = (some(at(0)), some(at(1)));
        if store_id.is_some() == region.is_some() {
            return Err(format!(
                "line {line}: name a store_id or a region, one of them"
            ));
        }
        let format = WebhookFormat::parse(&at(2)).ok_or_else(|| {
            format!(
                "line {line}: format {:?} is not {}",
                at(2),
                WebhookFormat::NAMES
            )
        })?;
        let url = at(3);
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("line {line}: the url is not http(s)://…"));
        }
        routes.push(Route {
            store_id,
            region,
            webhook: Webhook {
                url,
                token: some(at(4)),
                format,
            },
        });
    }
    Ok(routes)
}

/// Where alert changes go.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// The chain-wide webhook: changes no route takes.
    pub webhook: Option<Webhook>,
    pub routes: Vec<Route>,
    pub log: bool,
}

impl NotifyConfig {
    /// The webhook of a change of `store_id` (in `region`): the first route naming the store,
    /// else the first naming its region, else the chain-wide one.
    pub fn webhook_for(&self, store_id: &str, region: Option<&str>) -> Option<&Webhook> {
        self.routes
            .iter()
            .find(|r| r.store_id.as_deref() == Some(store_id))
            .or_else(|| {
                region.and_then(|g| {
                    self.routes
                        .iter()
                        .find(|r| r.store_id.is_none() && r.region.as_deref() == Some(g))
                })
            })
            .map(|r| &r.webhook)
            .or(self.webhook.as_ref())
    }
}

/// A webhook URL as logs and `alert_outbox.last_error` show it: scheme, host and port only.
/// Webhook URLs carry their secret anywhere — in the user-info, a `?key=` or the path itself
/// (a chat tool's `/services/T…/B…/secret`) — so nothing after the host is shown.
pub fn webhook_display(url: &str) -> String {
    if url.is_empty() {
        return String::new();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<a webhook URL>".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = rest.len() > authority.len() && rest[authority.len()..] != *"/";
    format!("{scheme}://{host}{}", if more { "/…" } else { "" })
}

/// Delivers pending notifications.
#[derive(Debug, Clone)]
pub struct Notifier {
    gold: Gold,
    cfg: NotifyConfig,
    client: reqwest::Client,
}

/// The idempotency key of an outbox row: the same on every retry of it.
pub fn idempotency_key(outbox_id: i64) -> String {
    format!("stocklake-alert-change-{outbox_id}")
}

impl Notifier {
    pub fn new(gold: Gold, cfg: NotifyConfig) -> Result<Notifier, ModelError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ModelError::Config(format!("webhook client: {e}")))?;
        Ok(Notifier { gold, cfg, client })
    }

    /// Delivers everything pending (until a failure); returns (delivered, failed).
    pub async fn deliver_all(&self) -> Result<(usize, usize), ModelError> {
        let (mut ok, mut failed) = (0, 0);
        loop {
            let (o, f) = self.deliver_pending().await?;
            ok += o;
            failed += f;
            if o == 0 || f > 0 {
                return Ok((ok, failed));
            }
        }
    }

    /// Delivers up to one page of what is pending; returns (delivered, failed).
    pub async fn deliver_pending(&self) -> Result<(usize, usize), ModelError> {
        let pending = pending_notifications(&self.gold, 200).await?;
        let regions = if pending.is_empty() || !self.cfg.routes.iter().any(|r| r.region.is_some()) {
            std::collections::HashMap::new()
        } else {
            store_regions(&self.gold).await?
        };
        let (mut ok, mut failed) = (0, 0);
        for p in pending {
            let v: serde_json::Value = serde_json::from_str(&p.payload).unwrap_or_default();
            let store = v["store_id"].as_str().unwrap_or("");
            let webhook = self
                .cfg
                .webhook_for(store, regions.get(store).map(String::as_str));
            if self.cfg.log {
                tracing::info!(
                    alert_id = p.alert_id,
                    change = %p.change,
                    store = %v["store_id"].as_str().unwrap_or(""),
                    sku = %v["sku"].as_str().unwrap_or(""),
                    alert_type = %v["alert_type"].as_str().unwrap_or(""),
                    severity = %v["severity"].as_str().unwrap_or(""),
                    "alert {}: {}",
                    p.change,
                    v["message"].as_str().unwrap_or("")
                );
            }
            let result = match webhook {
                None => Ok(()),
                Some(w) => self.post(w, p.id, &p.payload).await,
            };
            let channel = if webhook.is_some() { "webhook" } else { "log" };
            match result {
                Ok(()) => {
                    mark_notification(&self.gold, p.id, None).await?;
                    stocklake_telemetry::ALERT_NOTIFICATIONS
                        .with_label_values(&[channel, "delivered"])
                        .inc();
                    ok += 1;
                }
                Err(e) => {
                    mark_notification(&self.gold, p.id, Some(&e)).await?;
                    stocklake_telemetry::ALERT_NOTIFICATIONS
                        .with_label_values(&[channel, "failed"])
                        .inc();
                    tracing::warn!(outbox_id = p.id, attempts = p.attempts + 1, error = %e, "alert webhook failed; will retry");
                    failed += 1;
                    // keep the order: later changes of the same alert wait for this one
                    break;
                }
            }
        }
        Ok((ok, failed))
    }

    async fn post(&self, w: &Webhook, id: i64, payload: &str) -> Result<(), String> {
        let url = w.url.as_str();
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key(id))
            .body(w.format.body(payload));
        if let Some(t) = &w.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("{} answered {}", webhook_display(url), r.status())),
            // reqwest's message names the whole URL: left out
            Err(e) => Err(format!("{}: {}", webhook_display(url), e.without_url())),
        }
    }

    /// Delivers as changes appear (`wake`) until cancelled, backing off while the endpoint fails.
    pub async fn run(self, wake: std::sync::Arc<Notify>, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        loop {
            let wait = match self.deliver_all().await {
                Ok((_, 0)) => {
                    backoff.succeeded();
                    Duration::from_secs(5)
                }
                Ok(_) => backoff.failed(),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the alert outbox failed");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => {
                    // a last pass so that nothing committed waits for the next start
                    let _ = self.deliver_all().await;
                    return;
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Each store's region, from `dim_store` (stores without one are left out).
async fn store_regions(
    gold: &Gold,
) -> Result<std::collections::HashMap<String, String>, ModelError> {
    use crate::db::table::{Cell, Col};
    let rows = gold
        .rows(
            "SELECT store_id, region FROM dim_store WHERE region IS NOT NULL AND region <> ''",
            Vec::new(),
            &[("store_id", Col::Text), ("region", Col::Text)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match (r.first(), r.get(1)) {
            (Some(Cell::Text(s)), Some(Cell::Text(g))) => Some((s.to_string(), g.to_string())),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod routing_tests {
    use super::*;

    fn hook(url: &str) -> Webhook {
        Webhook {
            url: url.into(),
            token: None,
            format: WebhookFormat::Json,
        }
    }

    #[test]
    fn the_most_specific_route_takes_a_change() {
        let cfg = NotifyConfig {
            webhook: Some(hook("http://all")),
            routes: vec![
                Route {
                    store_id: None,
                    region: Some("North".into()),
                    webhook: hook("http://north"),
                },
                Route {
                    store_id: Some("ST-1".into()),
                    region: None,
                    webhook: hook("http://st-1"),
                },
            ],
            log: false,
        };
        let to = |s, r| cfg.webhook_for(s, r).map(|w| w.url.as_str());
        assert_eq!(to("ST-1", Some("North")), Some("http://st-1"));
        assert_eq!(to("ST-2", Some("North")), Some("http://north"));
        assert_eq!(to("ST-3", Some("South")), Some("http://all"));
        assert_eq!(to("ST-3", None), Some("http://all"));
        let no_default = NotifyConfig {
            webhook: None,
            ..cfg.clone()
        };
        assert_eq!(no_default.webhook_for("ST-3", None), None);
    }

    #[test]
    fn chat_formats_carry_the_alert_in_words() {
        let payload = serde_json::json!({
            "alert_id": 7, "change": "opened", "store_id": "ST-1", "sku": "SKU-9",
            "product_name": "Milk \"1l\"", "alert_type": "out_of_stock", "severity": "critical",
            "message": "Out of stock since 10:02: order 24 now"
        })
        .to_string();
        let text = chat_text(&payload);
        assert_eq!(
            text,
            "[CRITICAL] out of stock opened: Milk \"1l\" (SKU-9) at ST-1\nOut of stock since 10:02: order 24 now"
        );
        let body = |f: WebhookFormat| -> serde_json::Value {
            serde_json::from_str(&f.body(&payload)).expect("JSON")
        };
        assert_eq!(body(WebhookFormat::Json)["alert_id"], 7);
        assert_eq!(body(WebhookFormat::Slack)["text"], text.as_str());
        assert_eq!(body(WebhookFormat::GoogleChat)["text"], text.as_str());
        assert_eq!(body(WebhookFormat::Discord)["content"], text.as_str());
        let card = body(WebhookFormat::Teams);
        assert_eq!(card["@type"], "MessageCard");
        assert_eq!(card["text"], text.as_str());
        for (name, f) in [
            ("json", WebhookFormat::Json),
            ("", WebhookFormat::Json),
            ("slack", WebhookFormat::Slack),
            ("teams", WebhookFormat::Teams),
            ("google_chat", WebhookFormat::GoogleChat),
            ("discord", WebhookFormat::Discord),
        ] {
            assert_eq!(WebhookFormat::parse(name), Some(f));
        }
        assert_eq!(WebhookFormat::parse("xml"), None);
    }

    #[test]
    fn a_routes_file_is_read_or_refused_with_its_line() {
        let routes = parse_routes(
            "store_id,region,format,url,token\n# the flagship\nST-1,,slack,https://hooks.example.com/T/B/x,\n,North,teams,https://north.example.com/in,s3cr3t\n",
        )
        .expect("routes");
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].store_id.as_deref(), Some("ST-1"));
        assert_eq!(routes[0].webhook.format, WebhookFormat::Slack);
        assert_eq!(routes[0].webhook.token, None);
        assert_eq!(routes[1].region.as_deref(), Some("North"));
        assert_eq!(routes[1].webhook.token.as_deref(), Some("s3cr3t"));
        assert!(
            !format!("{routes:?}").contains("s3cr3t"),
            "tokens never printed"
        );
        for (text, says) in [
            ("store,url\n", "the header"),
            (
                "store_id,region,format,url,token\nST-1,North,json,https://x,\n",
                "line 2: name a store_id or a region",
            ),
            (
                "store_id,region,format,url,token\n,,json,https://x,\n",
                "line 2",
            ),
            (
                "store_id,region,format,url,token\nST-1,,xml,https://x,\n",
                "format \"xml\"",
            ),
            (
                "store_id,region,format,url,token\nST-1,,json,ftp://x,\n",
                "not http(s)",
            ),
            (
                "store_id,region,format,url,token\nST-1,,json\n",
                "found record with 3 fields",
            ),
        ] {
            let why = parse_routes(text).expect_err(text);
            assert!(why.contains(says), "{text}: {why}");
        }
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::webhook_display;

    #[test]
    fn webhook_secrets_never_show() {
        for (url, shown) in [
            (
                "https://hooks.example.com/services/T0/B0/s3cr3t",
                "https://hooks.example.com/…",
            ),
            (
                "https://user:pw@alerts.example.com:8443/in?key=abc",
                "https://alerts.example.com:8443/…",
            ),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
            ("https://tok@example.com?key=x", "https://example.com/…"),
            ("not a url with s3cr3t", "<a webhook URL>"),
        ] {
            assert_eq!(webhook_display(url), shown, "{url}");
        }
    }
}
