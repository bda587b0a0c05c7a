//! Alert delivery from the transactional outbox.
//!
//! Alert changes are written to `alert_outbox` in the same gold transaction as the alerts, so a
//! change is never lost and never invented. This dispatcher delivers them to the log and, when
//! configured, POSTs each as JSON to a webhook with an `Idempotency-Key` that stays the same
//! across retries (retried with exponential backoff until the endpoint accepts it).

use std::time::Duration;

use stocklake_storage::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ModelError;
use crate::db::Gold;
use crate::queries::{mark_notification, pending_notifications};

/// Where alert changes go.
#[derive(Clone, Default)]
pub struct NotifyConfig {
    pub webhook_url: Option<String>,
    pub webhook_token: Option<String>,
    pub log: bool,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field(
                "webhook_url",
                &self.webhook_url.as_deref().map(webhook_display),
            )
            .field(
                "webhook_token",
                &self.webhook_token.as_ref().map(|_| "<set>"),
            )
            .field("log", &self.log)
            .finish()
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
        let (mut ok, mut failed) = (0, 0);
        for p in pending {
            if self.cfg.log {
                let v: serde_json::Value = serde_json::from_str(&p.payload).unwrap_or_default();
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
            let result = match &self.cfg.webhook_url {
                None => Ok(()),
                Some(url) => self.post(url, p.id, &p.payload).await,
            };
            match result {
                Ok(()) => {
                    mark_notification(&self.gold, p.id, None).await?;
                    stocklake_telemetry::ALERT_NOTIFICATIONS
                        .with_label_values(&[self.channel(), "delivered"])
                        .inc();
                    ok += 1;
                }
                Err(e) => {
                    mark_notification(&self.gold, p.id, Some(&e)).await?;
                    stocklake_telemetry::ALERT_NOTIFICATIONS
                        .with_label_values(&[self.channel(), "failed"])
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

    fn channel(&self) -> &'static str {
        if self.cfg.webhook_url.is_some() {
            "webhook"
        } else {
            "log"
        }
    }

    async fn post(&self, url: &str, id: i64, payload: &str) -> Result<(), String> {
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key(id))
            .body(payload.to_string());
        if let Some(t) = &self.cfg.webhook_token {
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
