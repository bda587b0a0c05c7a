//! Property tests: the parser never panics, whatever it is given, and what it accepts obeys
//! the contract.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use stocklake_event::{Event, EventType, Form, Line, MAX_LINES, parse_event};

fn event_type() -> impl Strategy<Value = EventType> {
    prop::sample::select(EventType::ALL.to_vec())
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_:\\-é\"\\\\/]{1,40}"
}

fn line(t: EventType) -> impl Strategy<Value = Line<'static>> {
    (
        id(),
        1i64..5_000_000,
        any::<bool>(),
        prop::option::of(0i64..10_000_000),
        prop::option::of(0i64..100_000),
    )
        .prop_map(move |(sku, q, negative, price, discount)| {
            let mut quantity = Decimal::new(q, 3);
            if t == EventType::Adjustment && negative {
                quantity = -quantity;
            }
            Line {
                sku: Cow::Owned(sku),
                quantity,
                unit_price: price.map(|p| Decimal::new(p, 4)),
                discount: discount.map(|d| Decimal::new(d, 4)),
            }
        })
}

prop_compose! {
    fn valid_event()(t in event_type())(
        t in Just(t),
        event_id in id(),
        micros in 946_684_800_000_000i64..4_102_444_800_000_000,
        store_id in id(),
        register_id in prop::option::of(id()),
        transaction_id in prop::option::of(id()),
        lines in prop::collection::vec(line(t), 1..8),
    ) -> Event<'static> {
        Event {
            event_id: Cow::Owned(event_id),
            event_type: t,
            event_time: DateTime::<Utc>::from_timestamp_micros(micros).expect("in range"),
            store_id: Cow::Owned(store_id),
            register_id: register_id.map(Cow::Owned),
            transaction_id: transaction_id.map(Cow::Owned),
            lines,
            form: Form::Canonical,
            product_name: None,
            category: None,
        }
    }
}

/// What every accepted event must satisfy.
fn check_invariants(e: &Event<'_>) {
    assert!(!e.event_id.is_empty());
    assert!(!e.store_id.is_empty());
    assert!((1..=MAX_LINES).contains(&e.lines.len()));
    for l in &e.lines {
        assert!(!l.sku.is_empty());
        assert!(e.event_type.quantity_sign_ok(l.quantity));
        assert_eq!(l.quantity.scale(), 3);
        if let Some(p) = l.unit_price {
            assert!(p >= Decimal::ZERO);
            assert_eq!(p.scale(), 4);
        }
        if let Some(d) = l.discount {
            assert!(d >= Decimal::ZERO);
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    DeleteByte(usize),
    InsertByte(usize, u8),
    FlipBit(usize, u8),
    ReplaceValue(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DeleteByte),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "null",
                "-1",
                "0",
                "1e400",
                "\"\"",
                "[]",
                "{}",
                "true",
                "0.00001",
                "\"2026-13-45T99:99:99Z\"",
                "99999999999999999999999999999999",
                "[[[[[[[[[[]]]]]]]]]]",
            ])
        )
            .prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let n = bytes.len();
    match *m {
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::DeleteByte(i) => {
            bytes.remove(i % n);
        }
        Mutation::InsertByte(i, b) => bytes.insert(i % (n + 1), b),
        Mutation::FlipBit(i, bit) => bytes[i % n] ^= 1 << bit,
        Mutation::ReplaceValue(i, v) => {
            // replace the value that follows the i-th ':' (a field value) with `v`
            let colons: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b':')
                .map(|(i, _)| i)
                .collect();
            if let Some(&c) = colons.get(i % colons.len().max(1)) {
                let end = bytes[c + 1..]
                    .iter()
                    .position(|b| *b == b',' || *b == b'}')
                    .map(|p| c + 1 + p)
                    .unwrap_or(n);
                bytes.splice(c + 1..end, v.bytes());
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(e) = parse_event(&bytes) {
            check_invariants(&e);
        }
    }

    #[test]
    fn arbitrary_json_text_never_panics(text in "[{}\\[\\],:\"a-z0-9.eE+\\- ]{0,200}") {
        if let Ok(e) = parse_event(text.as_bytes()) {
            check_invariants(&e);
        }
    }

    #[test]
    fn valid_events_round_trip(e in valid_event()) {
        let text = e.to_canonical_json();
        let parsed = parse_event(text.as_bytes());
        prop_assert!(parsed.is_ok(), "{text}: {:?}", parsed.err());
        let parsed = parsed.expect("checked");
        check_invariants(&parsed);
        prop_assert_eq!(parsed.fingerprint(), e.fingerprint());
        prop_assert_eq!(parsed, e);
    }

    #[test]
    fn mutated_valid_events_never_panic(e in valid_event(), ms in prop::collection::vec(mutation(), 1..4)) {
        let mut bytes = Vec::new();
        e.write_canonical(&mut bytes);
        for m in &ms {
            bytes = apply(bytes, m);
        }
        match parse_event(&bytes) {
            Ok(parsed) => check_invariants(&parsed),
            Err(rejection) => prop_assert!(!rejection.violations.is_empty()),
        }
    }
}
