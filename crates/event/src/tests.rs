//! Unit tests of parsing and validation: one case (at least) per reason code.

use super::*;
use rust_decimal::Decimal;
use std::collections::BTreeSet;

const VALID: &str = r#"{"schema_version":1,"event_id":"7d1c0c5e","event_type":"sale","event_time":"2026-11-26T10:15:03.123+01:00","store_id":"ST-0042","register_id":"POS-07","transaction_id":"T-1","lines":[{"sku":"SKU-000123","quantity":2,"unit_price":1.99,"discount":0.20},{"sku":"SKU-004711","quantity":0.532,"unit_price":3.49}],"extra":{"kept":"in bronze"}}"#;

const LEGACY: &str = r#"{"transaction_id": "9b2", "product_id": "P001", "product_name": "Milk", "category": "Dairy", "quantity": 3, "unit_price": 1.2, "total_price": 3.6, "timestamp": "2026-11-26T10:15:03.123456+00:00", "store_id": "Madrid_01", "payment_method": "Cash", "client_type": "Regular"}"#;

fn codes(raw: &[u8]) -> BTreeSet<&'static str> {
    match parse_event(raw) {
        Ok(_) => BTreeSet::new(),
        Err(r) => r.codes().into_iter().map(ReasonCode::as_str).collect(),
    }
}

/// The valid canonical event with one top-level field replaced (or removed with `None`).
fn with(field: &str, value: Option<&str>) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(VALID).expect("valid fixture");
    match value {
        Some(raw) => {
            let parsed: serde_json::Value = serde_json::from_str(raw).expect("valid value");
            v.insert(field.to_string(), parsed);
        }
        None => {
            v.remove(field);
        }
    }
    serde_json::to_string(&v).expect("serializable")
}

fn with_line(field: &str, value: Option<&str>, event_type: &str) -> String {
    let mut line = serde_json::json!({"sku": "S1", "quantity": 1, "unit_price": 1.5});
    match value {
        Some(raw) => {
            line[field] = serde_json::from_str(raw).expect("valid value");
        }
        None => {
            line.as_object_mut().expect("object").remove(field);
        }
    }
    let lines = serde_json::Value::Array(vec![line]).to_string();
    let base = with("lines", Some(&lines));
    let mut v: serde_json::Value = serde_json::from_str(&base).expect("json");
    v["event_type"] = serde_json::Value::String(event_type.into());
    v.to_string()
}

fn legacy_with(field: &str, value: Option<&str>) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(LEGACY).expect("valid fixture");
    match value {
        Some(raw) => {
            v.insert(field.to_string(), serde_json::from_str(raw).expect("value"));
        }
        None => {
            v.remove(field);
        }
    }
    serde_json::to_string(&v).expect("serializable")
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

#[test]
fn valid_canonical_event() {
    let e = parse_event(VALID.as_bytes()).expect("valid");
    assert_eq!(e.event_id, "7d1c0c5e");
    assert_eq!(e.event_type, EventType::Sale);
    assert_eq!(e.form, Form::Canonical);
    assert_eq!(
        e.event_time.to_rfc3339(),
        "2026-11-26T09:15:03.123+00:00",
        "stored as UTC"
    );
    assert_eq!(e.store_id, "ST-0042");
    assert_eq!(e.register_id.as_deref(), Some("POS-07"));
    assert_eq!(e.transaction_id.as_deref(), Some("T-1"));
    assert_eq!(e.lines.len(), 2);
    assert_eq!(e.lines[0].quantity, Decimal::new(2000, 3));
    assert_eq!(e.lines[0].unit_price, Some(Decimal::new(19900, 4)));
    assert_eq!(e.lines[0].discount, Some(Decimal::new(2000, 4)));
    assert_eq!(e.lines[1].quantity.to_string(), "0.532");
    assert_eq!(e.lines[1].discount, None);
}

#[test]
fn decimals_are_exact_not_binary_floats() {
    let raw = with_line("quantity", Some("0.1"), "sale");
    let e = parse_event(raw.as_bytes()).expect("valid");
    assert_eq!(e.lines[0].quantity.to_string(), "0.100");
    let raw = with_line("unit_price", Some("1234567.8901"), "sale");
    let e = parse_event(raw.as_bytes()).expect("valid");
    assert_eq!(
        e.lines[0].unit_price.map(|p| p.to_string()).as_deref(),
        Some("1234567.8901")
    );
    // exponent forms are numbers too
    let raw = with_line("quantity", Some("2.5e1"), "sale");
    let e = parse_event(raw.as_bytes()).expect("valid");
    assert_eq!(e.lines[0].quantity, Decimal::new(25000, 3));
    // trailing zeros beyond the precision are fine: 1.50000 is 1.5
    let raw = VALID.replace("\"quantity\":2,", "\"quantity\":2.00000,");
    assert!(parse_event(raw.as_bytes()).is_ok());
}

#[test]
fn valid_legacy_record() {
    let e = parse_event(LEGACY.as_bytes()).expect("valid");
    assert_eq!(e.form, Form::Legacy);
    assert_eq!(e.event_id, "9b2:P001");
    assert_eq!(e.event_type, EventType::Sale);
    assert_eq!(e.lines.len(), 1);
    assert_eq!(e.lines[0].sku, "P001");
    assert_eq!(e.lines[0].quantity, Decimal::from(3));
    assert_eq!(e.product_name.as_deref(), Some("Milk"));
    assert_eq!(e.category.as_deref(), Some("Dairy"));
    assert_eq!(e.transaction_id.as_deref(), Some("9b2"));
    assert_eq!(e.event_time.timestamp_subsec_micros(), 123456);
}

#[test]
fn every_event_type_and_its_sign_rule() {
    for (t, q, ok) in [
        ("sale", "1", true),
        ("sale", "0", false),
        ("sale", "-1", false),
        ("return", "1", true),
        ("return", "-1", false),
        ("receipt", "24", true),
        ("receipt", "0", false),
        ("waste", "0.250", true),
        ("waste", "-0.250", false),
        ("adjustment", "-3", true),
        ("adjustment", "3", true),
        ("adjustment", "0", false),
        ("stock_count", "0", true),
        ("stock_count", "12", true),
        ("stock_count", "-1", false),
    ] {
        let raw = with_line("quantity", Some(q), t);
        let got = codes(raw.as_bytes());
        if ok {
            assert!(got.is_empty(), "{t} {q}: {got:?}");
        } else {
            assert_eq!(got, set(&["quantity_sign"]), "{t} {q}");
        }
    }
}

/// Each reason code with a record that breaks it (and, where it can be, only it).
#[test]
fn payment_method_and_client_type_are_read_from_both_forms() {
    let legacy = parse_event(LEGACY.as_bytes()).expect("legacy");
    assert_eq!(legacy.payment_method.as_deref(), Some("Cash"));
    assert_eq!(legacy.client_type.as_deref(), Some("Regular"));
    let with_both = with("payment_method", Some("\"Card\""));
    let with_both = with_both.replacen('{', "{\"client_type\":\"Member\",", 1);
    let e = parse_event(with_both.as_bytes()).expect("canonical");
    assert_eq!(e.payment_method.as_deref(), Some("Card"));
    assert_eq!(e.client_type.as_deref(), Some("Member"));
    // the canonical form carries them, and reads back the same
    let canonical = e.to_canonical_json();
    let again = parse_event(canonical.as_bytes()).expect("round trip");
    assert_eq!(again, e);
    // absent, they are absent; and they leave the fingerprint alone (events silver holds from
    // before they were read are recognised when resent)
    let plain = parse_event(VALID.as_bytes()).expect("valid");
    assert_eq!((plain.payment_method, plain.client_type), (None, None));
    assert_eq!(
        e.fingerprint(),
        parse_event(VALID.as_bytes()).expect("valid").fingerprint()
    );
}

#[test]
fn every_reason_code_has_a_case() {
    let mut covered = BTreeSet::new();
    let mut check = |raw: &[u8], expected: &[&'static str]| {
        let got = codes(raw);
        assert_eq!(
            got,
            set(expected),
            "record: {}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
        covered.extend(expected.iter().copied());
    };

    let big = format!(
        r#"{{"event_id":"x","pad":"{}"}}"#,
        "a".repeat(MAX_RECORD_BYTES)
    );
    check(big.as_bytes(), &["too_large"]);
    check(b"{\"event_id\":\"\xff\xfe\"}", &["not_utf8"]);
    check(b"{\"event_id\": \"e1\", ", &["not_json"]);
    check(b"not json at all", &["not_json"]);
    check(b"{} trailing", &["not_json"]);
    // deep nesting is skipped without recursion: valid JSON, just not a valid field
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check(deep.as_bytes(), &["not_object"]);
    let deep_field = with("event_id", None).replacen(
        '{',
        &format!(
            "{{\"event_id\":{}{},",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        1,
    );
    check(deep_field.as_bytes(), &["invalid_event_id"]);
    let unbalanced = "[".repeat(100_000);
    check(unbalanced.as_bytes(), &["not_json"]);
    check(b"[1,2,3]", &["not_object"]);
    check(b"\"a string\"", &["not_object"]);
    check(b"42", &["not_object"]);
    check(b"null", &["not_object"]);
    let dup = VALID.replacen(
        "\"store_id\":\"ST-0042\"",
        "\"store_id\":\"A\",\"store_id\":\"B\"",
        1,
    );
    check(dup.as_bytes(), &["duplicate_field"]);
    check(
        with("schema_version", Some("2")).as_bytes(),
        &["unsupported_schema_version"],
    );
    check(with("event_id", None).as_bytes(), &["missing_event_id"]);
    check(
        with("event_id", Some("null")).as_bytes(),
        &["missing_event_id"],
    );
    check(
        with("event_id", Some("12")).as_bytes(),
        &["invalid_event_id"],
    );
    check(
        with("event_id", Some("\"\"")).as_bytes(),
        &["invalid_event_id"],
    );
    check(
        with("event_id", Some(&format!("\"{}\"", "x".repeat(129)))).as_bytes(),
        &["invalid_event_id"],
    );
    check(
        with("event_id", Some("\"a\\nb\"")).as_bytes(),
        &["invalid_event_id"],
    );
    check(with("event_type", None).as_bytes(), &["missing_event_type"]);
    check(
        with("event_type", Some("\"theft\"")).as_bytes(),
        &["invalid_event_type"],
    );
    check(
        with("event_type", Some("3")).as_bytes(),
        &["invalid_event_type"],
    );
    check(with("event_time", None).as_bytes(), &["missing_event_time"]);
    check(
        with("event_time", Some("\"2026-11-26 10:15\"")).as_bytes(),
        &["invalid_event_time"],
    );
    check(
        with("event_time", Some("\"2026-11-26T10:15:03\"")).as_bytes(),
        &["invalid_event_time"],
    );
    check(
        with("event_time", Some("1764150903")).as_bytes(),
        &["invalid_event_time"],
    );
    check(with("store_id", None).as_bytes(), &["missing_store_id"]);
    check(
        with("store_id", Some("[]")).as_bytes(),
        &["invalid_store_id"],
    );
    check(
        with("register_id", Some("7")).as_bytes(),
        &["invalid_register_id"],
    );
    check(
        with("transaction_id", Some("{}")).as_bytes(),
        &["invalid_transaction_id"],
    );
    check(with("lines", None).as_bytes(), &["missing_lines"]);
    check(with("lines", Some("{}")).as_bytes(), &["invalid_lines"]);
    check(with("lines", Some("[]")).as_bytes(), &["empty_lines"]);
    let many = format!(
        "[{}]",
        vec![r#"{"sku":"A","quantity":1}"#; MAX_LINES + 1].join(",")
    );
    check(with("lines", Some(&many)).as_bytes(), &["too_many_lines"]);
    check(with("lines", Some("[1]")).as_bytes(), &["invalid_line"]);
    check(with_line("sku", None, "sale").as_bytes(), &["missing_sku"]);
    check(
        with_line("sku", Some("\"\""), "sale").as_bytes(),
        &["invalid_sku"],
    );
    check(
        with_line("quantity", None, "sale").as_bytes(),
        &["missing_quantity"],
    );
    check(
        with_line("quantity", Some("\"2\""), "sale").as_bytes(),
        &["invalid_quantity"],
    );
    check(
        with_line("quantity", Some("true"), "sale").as_bytes(),
        &["invalid_quantity"],
    );
    check(
        with_line("quantity", Some("12345"), "sale")
            .replace("12345", "1e400")
            .as_bytes(),
        &["invalid_quantity"],
    );
    check(
        with_line("quantity", Some("1.2345"), "sale").as_bytes(),
        &["quantity_precision"],
    );
    check(
        with_line("quantity", Some("-1"), "sale").as_bytes(),
        &["quantity_sign"],
    );
    check(
        with_line("quantity", Some("1000000000000"), "sale").as_bytes(),
        &["quantity_out_of_range"],
    );
    check(
        with_line("unit_price", Some("-0.5"), "sale").as_bytes(),
        &["invalid_unit_price"],
    );
    check(
        with_line("unit_price", Some("\"1.99\""), "sale").as_bytes(),
        &["invalid_unit_price"],
    );
    check(
        with_line("unit_price", Some("1.23456"), "sale").as_bytes(),
        &["unit_price_precision"],
    );
    check(
        with_line("discount", Some("-1"), "sale").as_bytes(),
        &["invalid_discount"],
    );
    check(
        with_line("discount", Some("0.00001"), "sale").as_bytes(),
        &["discount_precision"],
    );
    // money stops below 1e11 (15 significant digits with its 4 decimals), a line's amount too
    check(
        with_line("unit_price", Some("100000000000"), "sale").as_bytes(),
        &["invalid_unit_price"],
    );
    check(
        with_line("discount", Some("100000000000"), "sale").as_bytes(),
        &["invalid_discount"],
    );
    check(
        with_line("quantity", Some("99999999999"), "sale").as_bytes(),
        &["amount_out_of_range"],
    );
    assert!(
        parse_event(with_line("quantity", Some("66666666666"), "sale").as_bytes()).is_ok(),
        "66666666666 × 1.5 is below 1e11"
    );
    check(
        legacy_with("quantity", Some("1000000"))
            .replace("\"unit_price\":1.2", "\"unit_price\":100000.0")
            .replace("\"total_price\":3.6", "\"total_price\":100000000000.0")
            .as_bytes(),
        &["amount_out_of_range"],
    );
    check(
        legacy_with("product_name", Some(&format!("\"{}\"", "n".repeat(257)))).as_bytes(),
        &["invalid_product_name"],
    );
    check(
        legacy_with("product_name", Some("\"Milk\\n2026-12-07 INFO forged\"")).as_bytes(),
        &["invalid_product_name"],
    );
    assert!(
        parse_event(
            legacy_with("product_name", Some(&format!("\"{}\"", "é".repeat(256)))).as_bytes()
        )
        .is_ok(),
        "256 characters are allowed"
    );
    check(
        legacy_with("category", Some("5")).as_bytes(),
        &["invalid_category"],
    );
    check(
        with("payment_method", Some("5")).as_bytes(),
        &["invalid_payment_method"],
    );
    check(
        legacy_with("payment_method", Some("\"\"")).as_bytes(),
        &["invalid_payment_method"],
    );
    check(
        with("client_type", Some("\"Member\\u0000\"")).as_bytes(),
        &["invalid_client_type"],
    );
    // a purchase order names its order and its promised delivery
    let order = |order_id: Option<&str>, expected_at: Option<&str>| {
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&with("event_type", Some("\"purchase_order\""))).expect("json");
        for (k, val) in [("order_id", order_id), ("expected_at", expected_at)] {
            if let Some(raw) = val {
                v.insert(k.into(), serde_json::from_str(raw).expect("value"));
            }
        }
        serde_json::to_string(&v).expect("json")
    };
    let po = order(Some("\"PO-1\""), Some("\"2026-11-28T06:00:00+01:00\""));
    let e = parse_event(po.as_bytes()).expect("a valid purchase order");
    assert_eq!(e.event_type, EventType::PurchaseOrder);
    assert_eq!(e.order_id.as_deref(), Some("PO-1"));
    assert_eq!(
        e.expected_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-28T05:00:00+00:00")
    );
    assert_eq!(parse_event_thorough(&po).expect("valid"), e);
    check(
        order(None, Some("\"2026-11-28T06:00:00+01:00\"")).as_bytes(),
        &["missing_order_id"],
    );
    check(
        order(Some("\"\""), Some("\"2026-11-28T06:00:00+01:00\"")).as_bytes(),
        &["invalid_order_id"],
    );
    check(
        order(Some("\"PO-1\""), None).as_bytes(),
        &["missing_expected_at"],
    );
    check(
        order(Some("\"PO-1\""), Some("\"Friday\"")).as_bytes(),
        &["invalid_expected_at"],
    );
    // a receipt may name its order; other events are unaffected by it
    let r = with("event_type", Some("\"receipt\""));
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r).expect("json");
    v.insert("order_id".into(), "PO-1".into());
    let receipt = serde_json::to_string(&v).expect("json");
    let e = parse_event(receipt.as_bytes()).expect("valid");
    assert_eq!(e.order_id.as_deref(), Some("PO-1"));
    assert!(e.expected_at.is_none());
    check(
        legacy_with("transaction_id", None).as_bytes(),
        &["missing_transaction_id"],
    );
    check(
        legacy_with("unit_price", None).as_bytes(),
        &["missing_unit_price"],
    );
    check(
        legacy_with("total_price", None).as_bytes(),
        &["missing_total_price"],
    );
    check(
        legacy_with("total_price", Some("\"3.6\"")).as_bytes(),
        &["invalid_total_price"],
    );
    check(
        legacy_with("total_price", Some("3.62")).as_bytes(),
        &["total_price_mismatch"],
    );
    check(
        legacy_with("timestamp", Some("\"yesterday\"")).as_bytes(),
        &["invalid_event_time"],
    );
    check(
        legacy_with("product_id", Some("5")).as_bytes(),
        &["invalid_sku"],
    );
    // each part fits, the event id made of them does not (found by the fuzzer)
    check(
        legacy_with("transaction_id", Some(&format!("\"{}\"", "t".repeat(125)))).as_bytes(),
        &["invalid_event_id"],
    );

    // the two reason codes that need context beyond the record
    let e = parse_event(VALID.as_bytes()).expect("valid");
    let w = TimeWindow::default();
    let arrived = e.event_time;
    assert!(w.check(e.event_time, arrived).is_none());
    let far = w
        .check(e.event_time + chrono::Duration::days(2), arrived)
        .expect("too far in the future");
    assert_eq!(far.code, ReasonCode::EventTimeOutOfRange);
    let old = w
        .check(e.event_time - chrono::Duration::days(4000), arrived)
        .expect("too far in the past");
    assert_eq!(old.code, ReasonCode::EventTimeOutOfRange);
    covered.insert("event_time_out_of_range");
    // duplicate_conflict is decided against history by refine; see its tests
    covered.insert("duplicate_conflict");

    let all: BTreeSet<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "reason codes without a case: {missing:?}"
    );
}

#[test]
fn every_broken_rule_is_reported_not_only_the_first() {
    let raw = r#"{"event_id":"","event_type":"sale","event_time":"never","store_id":"S","lines":[{"sku":"A","quantity":-1,"unit_price":-2},{"quantity":1.23456}]}"#;
    let r = parse_event(raw.as_bytes()).expect_err("invalid");
    let got: BTreeSet<_> = r.codes().into_iter().map(ReasonCode::as_str).collect();
    assert_eq!(
        got,
        set(&[
            "invalid_event_id",
            "invalid_event_time",
            "quantity_sign",
            "invalid_unit_price",
            "missing_sku",
            "quantity_precision",
        ])
    );
    assert!(r.detail().contains("lines[1].sku"));
    assert_eq!(r.event_id, Some(String::new()));
}

#[test]
fn rejection_keeps_the_event_id_when_readable() {
    let raw = with("store_id", None);
    let r = parse_event(raw.as_bytes()).expect_err("invalid");
    assert_eq!(r.event_id.as_deref(), Some("7d1c0c5e"));
    let r = parse_event(legacy_with("total_price", Some("99")).as_bytes()).expect_err("invalid");
    assert_eq!(r.event_id.as_deref(), Some("9b2:P001"));
}

#[test]
fn canonical_writer_round_trips() {
    let e = parse_event(VALID.as_bytes()).expect("valid");
    let text = e.to_canonical_json();
    let back = parse_event(text.as_bytes()).expect("round trip");
    assert_eq!(back, e);
    assert_eq!(back.fingerprint(), e.fingerprint());
}

#[test]
fn fingerprint_sees_content_not_spelling() {
    let a = parse_event(VALID.as_bytes()).expect("valid");
    let respelled = VALID
        .replace("\"quantity\":2,", "\"quantity\":2.000,")
        .replace(",\"extra\":{\"kept\":\"in bronze\"}", "");
    let b = parse_event(respelled.as_bytes()).expect("valid");
    assert_eq!(a.fingerprint(), b.fingerprint());
    let changed = VALID.replace("\"quantity\":2,", "\"quantity\":3,");
    let c = parse_event(changed.as_bytes()).expect("valid");
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn escaped_strings_are_unescaped() {
    let raw = with("store_id", Some(r#""ST\u002d0042""#));
    let e = parse_event(raw.as_bytes()).expect("valid");
    assert_eq!(e.store_id, "ST-0042");
}

#[test]
fn json_number_conversion() {
    for (text, want) in [
        ("0", Some("0")),
        ("-0", Some("0")),
        ("1.5", Some("1.5")),
        ("1E2", Some("100")),
        ("1e+2", Some("100")),
        ("25e-1", Some("2.5")),
        ("0e999", Some("0")),
        ("1e999", None),
        ("1e-999", None),
    ] {
        let got = parse_json_number(text).map(|d| d.normalize().to_string());
        assert_eq!(got.as_deref(), want, "{text}");
    }
}

#[test]
fn reason_codes_doc_is_complete() {
    let doc = include_str!("../../../docs/reason-codes.md");
    for code in ReasonCode::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.description());
        assert!(
            doc.contains(&row),
            "docs/reason-codes.md lacks or differs on: {row}"
        );
    }
}
