//! The bounds on values (docs/security.md): whatever numbers and texts a record carries, an
//! event the parsers accept holds only values gold keeps exactly — a quantity below 10^12 with
//! at most 3 decimals, money below 10^11 with at most 4, a line's amount below 10^11, 15
//! significant digits at most — and a legacy record's name and category are printable text of
//! at most 256 characters. Both readers (the one-pass one and the general parser) are held to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

/// Up to four numbers' texts and a name from the input, separated by NUL bytes.
fn parts(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

fn digits(d: Decimal) -> u32 {
    let m = d.mantissa().unsigned_abs();
    if m == 0 { 1 } else { m.ilog10() + 1 }
}

fn check(event: &stocklake_event::Event<'_>) {
    for l in &event.lines {
        assert!(l.quantity.abs() < Decimal::from(stocklake_event::QUANTITY_LIMIT), "{l:?}");
        assert!(l.quantity.normalize().scale() <= 3, "{l:?}");
        assert!(digits(l.quantity.normalize()) <= 15, "{l:?}");
        for m in [l.unit_price, l.discount].into_iter().flatten() {
            assert!(m >= Decimal::ZERO && m < Decimal::from(stocklake_event::MONEY_LIMIT), "{l:?}");
            assert!(m.normalize().scale() <= 4 && digits(m.normalize()) <= 15, "{l:?}");
        }
        if let Some(p) = l.unit_price {
            assert!(l.quantity.abs() * p < Decimal::from(stocklake_event::MONEY_LIMIT), "{l:?}");
        }
    }
    for text in [&event.product_name, &event.category].into_iter().flatten() {
        assert!(stocklake_event::text_problem(text).is_none(), "{text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let p = parts(data);
    let get = |i: usize, default: &str| p.get(i).map(String::as_str).filter(|s| !s.is_empty()).unwrap_or(default).to_string();
    let (q, price, discount, name) = (get(0, "1"), get(1, "1"), get(2, "0"), get(3, "Milk"));
    let canonical = format!(
        r#"{{"schema_version":1,"event_id":"e","event_type":"sale","event_time":"2026-11-02T10:00:00Z","store_id":"S","lines":[{{"sku":"A","quantity":{q},"unit_price":{price},"discount":{discount}}}]}}"#
    );
    let legacy = format!(
        r#"{{"transaction_id":"t","product_id":"P","product_name":{},"category":"Dairy","quantity":{q},"unit_price":{price},"total_price":{price},"timestamp":"2026-11-02T10:00:00+00:00","store_id":"S"}}"#,
        serde_json::Value::String(name)
    );
    for record in [canonical, legacy] {
        if let Ok(e) = stocklake_event::parse_event(record.as_bytes()) {
            check(&e);
        }
        if let Ok(e) = stocklake_event::parse_event_str(&record) {
            check(&e);
        }
    }
});
