//! How simulated events are written on the wire: the canonical form or the legacy flat form.

use chrono::SecondsFormat;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use stocklake_event::{Event, EventType, write_decimal, write_json_str};

use crate::catalog::Catalog;

/// The producer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireFormat {
    /// `schema_version` 1, one event per record (docs/contract.md §1a).
    #[default]
    Canonical,
    /// The original Python producer's flat records, one sale line per record (docs/contract.md §1b).
    Legacy,
}

impl std::str::FromStr for WireFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "canonical" => Ok(WireFormat::Canonical),
            "legacy" => Ok(WireFormat::Legacy),
            other => Err(format!("unknown format {other:?}: use canonical or legacy")),
        }
    }
}

/// One record ready to send.
#[derive(Debug, Clone)]
pub struct OutRecord {
    /// Event time, for ordering and pacing.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Kinesis partition key: the store (canonical) or the transaction (legacy, as the original).
    pub partition_key: String,
    pub bytes: Vec<u8>,
}

const PAYMENT: [&str; 3] = ["Card", "Cash", "Mobile"];
const CLIENT: [&str; 3] = ["Regular", "Member", "New"];

/// Encodes one event; a non-sale event has no legacy form and gives nothing in that format.
pub fn encode(
    event: &Event<'_>,
    format: WireFormat,
    catalog: &Catalog,
    sku_index: &dyn Fn(&str) -> Option<usize>,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<OutRecord>,
) -> bool {
    match format {
        WireFormat::Canonical => {
            // about 230 bytes of envelope and 55 a line: one allocation, no regrowth
            let mut bytes = Vec::with_capacity(256 + event.lines.len() * 80);
            event.write_canonical(&mut bytes);
            out.push(OutRecord {
                time: event.event_time,
                partition_key: event.store_id.to_string(),
                bytes,
            });
            true
        }
        WireFormat::Legacy => {
            if event.event_type != EventType::Sale {
                return false;
            }
            let txn = event.transaction_id.as_deref().unwrap_or(&event.event_id);
            let payment = PAYMENT[rng.random_range(0..PAYMENT.len())];
            let client = CLIENT[rng.random_range(0..CLIENT.len())];
            for line in &event.lines {
                let product = sku_index(&line.sku).map(|i| &catalog.products[i]);
                let price = line.unit_price.unwrap_or_default();
                let total = (line.quantity * price).round_dp(2);
                let mut b = Vec::with_capacity(320);
                b.extend_from_slice(b"{\"transaction_id\": ");
                write_json_str(&mut b, txn);
                b.extend_from_slice(b", \"product_id\": ");
                write_json_str(&mut b, &line.sku);
                b.extend_from_slice(b", \"product_name\": ");
                write_json_str(&mut b, product.map_or("", |p| p.name.as_str()));
                b.extend_from_slice(b", \"category\": ");
                write_json_str(&mut b, product.map_or("", |p| p.category));
                b.extend_from_slice(b", \"quantity\": ");
                write_decimal(&mut b, line.quantity);
                b.extend_from_slice(b", \"unit_price\": ");
                write_decimal(&mut b, price);
                b.extend_from_slice(b", \"total_price\": ");
                write_decimal(&mut b, total.max(Decimal::ZERO));
                b.extend_from_slice(b", \"timestamp\": \"");
                b.extend_from_slice(
                    event
                        .event_time
                        .to_rfc3339_opts(SecondsFormat::Micros, false)
                        .as_bytes(),
                );
                b.extend_from_slice(b"\", \"store_id\": ");
                write_json_str(&mut b, &event.store_id);
                b.extend_from_slice(b", \"payment_method\": \"");
                b.extend_from_slice(payment.as_bytes());
                b.extend_from_slice(b"\", \"client_type\": \"");
                b.extend_from_slice(client.as_bytes());
                b.extend_from_slice(b"\"}");
                out.push(OutRecord {
                    time: event.event_time,
                    partition_key: txn.to_string(),
                    bytes: b,
                });
            }
            true
        }
    }
}
