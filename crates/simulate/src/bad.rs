//! Malformed and repeated records, mixed into the stream on request (`--bad-rate`), so that
//! quarantine, dedup and reconciliation are exercised by every kind of mistake a till makes.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::wire::OutRecord;

/// The kinds of bad record, with their stable names (used in `--stats`).
pub const KINDS: &[&str] = &[
    "not_json",
    "truncated",
    "invalid_utf8",
    "not_object",
    "missing_event_id",
    "missing_store_id",
    "unknown_event_type",
    "bad_event_time",
    "far_future_time",
    "empty_lines",
    "negative_quantity",
    "too_many_decimals",
    "string_quantity",
    "negative_price",
    "huge_number",
    "deep_nesting",
    "duplicate_field",
    "total_price_mismatch",
    "conflicting_duplicate",
    "exact_duplicate",
];

/// Makes a bad record from a good one (`template`), or `None` when the kind does not apply to
/// it (a legacy record has no `lines`, say). The result is never a valid new event: it is either
/// rejected by validation or is a repeat of `template`.
pub fn corrupt(rng: &mut ChaCha8Rng, template: &OutRecord, kind: &str) -> Option<OutRecord> {
    let mut v: Value = serde_json::from_slice(&template.bytes).ok()?;
    let legacy = v.get("product_id").is_some();
    let obj = v.as_object_mut()?;
    let bytes: Vec<u8> = match kind {
        "not_json" => b"till 07 offline: buffer flushed <EOT>".to_vec(),
        "truncated" => {
            let n = template.bytes.len();
            template.bytes[..rng.random_range(1..n.max(2))].to_vec()
        }
        "invalid_utf8" => {
            let mut b = template.bytes.clone();
            let at = b.iter().position(|c| *c == b'"').map_or(0, |p| p + 1);
            b.splice(at..at, [0xC3, 0x28, 0xFF]);
            b
        }
        "not_object" => format!("[{}]", String::from_utf8_lossy(&template.bytes)).into_bytes(),
        "missing_event_id" if !legacy => {
            obj.remove("event_id");
            serde_json::to_vec(&v).ok()?
        }
        "missing_store_id" => {
            obj.remove("store_id");
            serde_json::to_vec(&v).ok()?
        }
        "unknown_event_type" if !legacy => {
            obj.insert("event_type".into(), Value::from("shoplifting"));
            serde_json::to_vec(&v).ok()?
        }
        "bad_event_time" => {
            let field = if legacy { "timestamp" } else { "event_time" };
            obj.insert(field.into(), Value::from("26/11/2026 10:15"));
            serde_json::to_vec(&v).ok()?
        }
        "far_future_time" => {
            let field = if legacy { "timestamp" } else { "event_time" };
            obj.insert(field.into(), Value::from("2999-01-01T00:00:00Z"));
            // a new id, so it is judged on its time and not as a conflicting duplicate
            if !legacy {
                obj.insert(
                    "event_id".into(),
                    Value::from(format!("future-{}", rng.random::<u64>())),
                );
            }
            serde_json::to_vec(&v).ok()?
        }
        "empty_lines" if !legacy => {
            obj.insert("lines".into(), Value::Array(vec![]));
            serde_json::to_vec(&v).ok()?
        }
        "negative_quantity" => {
            set_quantity(obj, legacy, "-1")?;
            serde_json::to_vec(&v).ok()?
        }
        "too_many_decimals" => {
            set_quantity(obj, legacy, "1.23456")?;
            serde_json::to_vec(&v).ok()?
        }
        "string_quantity" => {
            set_raw(obj, legacy, "quantity", Value::from("2"))?;
            serde_json::to_vec(&v).ok()?
        }
        "negative_price" => {
            set_raw(obj, legacy, "unit_price", Value::from(-1.5))?;
            serde_json::to_vec(&v).ok()?
        }
        "huge_number" => {
            let text = String::from_utf8(serde_json::to_vec(&v).ok()?).ok()?;
            let key = "\"quantity\":";
            let at = text.find(key)? + key.len();
            let end = text[at..].find([',', '}'])? + at;
            format!("{}1e400{}", &text[..at], &text[end..]).into_bytes()
        }
        "deep_nesting" => deep_nesting(&template.bytes, legacy)?,
        "duplicate_field" => {
            let text = String::from_utf8(template.bytes.clone()).ok()?;
            let body = text.strip_suffix('}')?;
            format!("{body},\"store_id\":\"ST-9999\"}}").into_bytes()
        }
        "total_price_mismatch" if legacy => {
            obj.insert("total_price".into(), Value::from(999_999.99));
            serde_json::to_vec(&v).ok()?
        }
        "conflicting_duplicate" => {
            // the same id with other content: a till that reused an id
            conflict(obj, legacy)?;
            serde_json::to_vec(&v).ok()?
        }
        "exact_duplicate" => template.bytes.clone(),
        _ => return None,
    };
    Some(OutRecord {
        time: template.time,
        partition_key: template.partition_key.clone(),
        bytes,
    })
}

/// The record with its first field's value replaced by arrays nested 5,000 deep.
fn deep_nesting(record: &[u8], legacy: bool) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(record).ok()?;
    let depth = 5000;
    let nest = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let field = if legacy { "store_id" } else { "event_id" };
    let key = format!("\"{field}\":");
    let at = text.find(&key)? + key.len();
    let end = text[at..].find(',')? + at;
    Some(format!("{}{}{}", &text[..at], nest, &text[end..]).into_bytes())
}

/// One more unit on the (first) line, the legacy total kept consistent so that only the
/// conflict with the original is wrong.
fn conflict(obj: &mut serde_json::Map<String, Value>, legacy: bool) -> Option<()> {
    let q = if legacy {
        obj.get("quantity")?.as_f64()?
    } else {
        obj.get("lines")?
            .as_array()?
            .first()?
            .get("quantity")?
            .as_f64()?
    };
    let new_q = format!("{}", q.floor() + 1.0);
    set_quantity(obj, legacy, &new_q)?;
    if legacy {
        let p = obj.get("unit_price")?.as_f64()?;
        let total = (p * (q.floor() + 1.0) * 100.0).round() / 100.0;
        obj.insert("total_price".into(), Value::from(total));
    }
    Some(())
}

fn set_raw(
    obj: &mut serde_json::Map<String, Value>,
    legacy: bool,
    field: &str,
    value: Value,
) -> Option<()> {
    if legacy {
        obj.insert(field.into(), value);
    } else {
        let line = obj
            .get_mut("lines")?
            .as_array_mut()?
            .first_mut()?
            .as_object_mut()?;
        line.insert(field.into(), value);
    }
    Some(())
}

fn set_quantity(obj: &mut serde_json::Map<String, Value>, legacy: bool, raw: &str) -> Option<()> {
    let n: serde_json::Number = serde_json::from_str(raw).ok()?;
    set_raw(obj, legacy, "quantity", Value::Number(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use stocklake_event::parse_event;

    fn template() -> OutRecord {
        OutRecord {
            time: chrono::Utc::now(),
            partition_key: "ST-0001".into(),
            bytes: br#"{"schema_version":1,"event_id":"e-1","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"ST-0001","lines":[{"sku":"SKU-000001","quantity":2,"unit_price":1.99}]}"#.to_vec(),
        }
    }

    fn legacy_template() -> OutRecord {
        OutRecord {
            time: chrono::Utc::now(),
            partition_key: "T1".into(),
            bytes: br#"{"transaction_id": "T1", "product_id": "SKU-000001", "product_name": "Milk", "category": "Dairy", "quantity": 3, "unit_price": 1.2, "total_price": 3.6, "timestamp": "2026-11-26T10:15:03.123456+00:00", "store_id": "ST-0001", "payment_method": "Cash", "client_type": "Regular"}"#.to_vec(),
        }
    }

    #[test]
    fn every_kind_is_rejected_or_a_repeat() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for t in [template(), legacy_template()] {
            let original = parse_event(&t.bytes).expect("template valid");
            for kind in KINDS {
                let Some(bad) = corrupt(&mut rng, &t, kind) else {
                    continue;
                };
                match parse_event(&bad.bytes) {
                    Err(_) => {}
                    Ok(e) if *kind == "exact_duplicate" => assert_eq!(e, original),
                    Ok(e) if *kind == "conflicting_duplicate" => {
                        assert_eq!(e.event_id, original.event_id);
                        assert_ne!(e.fingerprint(), original.fingerprint());
                    }
                    Ok(e) if *kind == "far_future_time" => {
                        assert!(e.event_time.format("%Y").to_string() == "2999")
                    }
                    Ok(_) => panic!("{kind} made a valid record"),
                }
            }
        }
    }
}
