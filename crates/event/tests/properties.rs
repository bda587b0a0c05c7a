//! Property tests: the parser never panics, whatever it is given, and what it accepts obeys
//! the contract.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use stocklake_event::{
    Event, EventType, Form, Line, MAX_LINES, parse_event, parse_event_escaped, parse_event_str,
    parse_event_thorough, write_json_str,
};

fn event_type() -> impl Strategy<Value = EventType> {
    prop::sample::select(EventType::ALL.to_vec())
}

/// Mostly plain ids, as producers write them (read in one pass), and some with characters
/// that need escapes or are not ASCII (read by the general parser).
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_:\\-/]{1,40}",
        1 => "[A-Za-z0-9_:\\-é\"\\\\/]{1,40}",
    ]
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
        payment_method in prop::option::of(id()),
        client_type in prop::option::of(id()),
        order_id in prop::option::of(id()),
        expected in prop::option::of(946_684_800_000_000i64..4_102_444_800_000_000),
    ) -> Event<'static> {
        // a purchase order names its order and its promised delivery; a receipt may name
        // the order it fulfils
        let is_order = t == EventType::PurchaseOrder;
        let order_id = match t {
            EventType::PurchaseOrder => Some(order_id.unwrap_or_else(|| "PO-1".into())),
            EventType::Receipt => order_id,
            _ => None,
        };
        let expected_at = is_order.then(|| {
            DateTime::<Utc>::from_timestamp_micros(expected.unwrap_or(micros)).expect("in range")
        });
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
            payment_method: payment_method.map(Cow::Owned),
            client_type: client_type.map(Cow::Owned),
            order_id: order_id.map(Cow::Owned),
            expected_at,
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
    InsertField(usize, &'static str),
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
                "1.50",
                "2.000",
                "1e0",
                "0.5000",
                " 7 ",
                "-0",
                "-0.0",
                "1.0",
                "01",
                "1.",
                "\"sale\"",
                "\"st\\u0041\"",
                "\"2026-11-26T10:15:03.123456789+05:30\"",
            ])
        )
            .prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                r#""lines":[{"sku":"A","quantity":1}],"#,
                r#""lines":null,"#,
                r#""lines":[],"#,
                r#""lines":[1,{"sku":"B","quantity":2}],"#,
                r#""extra":{"lines":[]},"#,
                r#""sku":"B","#,
                r#""quantity":2,"#,
                r#""event_type":"sale","#,
                r#""product_id":"P1","#,
                r#""x":[1,-2.5e3,{"a":null,"b":[true,false]},"s"],"#,
                r#""y":"\u0041","#,
                r#"  "schema_version" : 1 ,"#,
                r#""schema_version":1.0,"#,
                r#""unit_price":null,"#,
                r#""discount":0.00,"#,
            ])
        )
            .prop_map(|(i, f)| Mutation::InsertField(i, f)),
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
            let colons = positions(&bytes, b':');
            if let Some(&c) = colons.get(i % colons.len().max(1)) {
                let end = bytes[c + 1..]
                    .iter()
                    .position(|b| *b == b',' || *b == b'}')
                    .map(|p| c + 1 + p)
                    .unwrap_or(n);
                bytes.splice(c + 1..end, v.bytes());
            }
        }
        Mutation::InsertField(i, f) => {
            // insert a field (maybe one already there) at the start of the i-th object
            let opens = positions(&bytes, b'{');
            if let Some(&o) = opens.get(i % opens.len().max(1)) {
                bytes.splice(o + 1..o + 1, f.bytes());
            }
        }
    }
    bytes
}

/// The two readings give the same answer, to the scale of every decimal (`Decimal`'s equality
/// is by value: 1.5 equals 1.5000).
fn same<T: std::fmt::Debug + PartialEq>(a: &T, b: &T, text: &str) {
    assert_eq!(a, b, "{text}");
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}");
}

/// Whether byte `at` of a JSON text lies inside a string.
fn in_string(text: &str, at: usize) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for b in text.as_bytes()[..at].iter() {
        match (escaped, *b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => inside = !inside,
            _ => {}
        }
    }
    inside
}

/// Where `byte` occurs in `bytes`.
fn positions(bytes: &[u8], byte: u8) -> Vec<usize> {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == byte)
        .map(|(i, _)| i)
        .collect()
}

/// The fingerprint as it was first computed (a streaming XXH3 fed field by field): silver
/// holds fingerprints made this way, so the value must never change.
fn streaming_fingerprint(e: &Event<'_>) -> u64 {
    use xxhash_rust::xxh3::Xxh3;
    fn s(h: &mut Xxh3, v: &str) {
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    fn os(h: &mut Xxh3, v: Option<&str>) {
        match v {
            Some(v) => {
                h.update(&[1]);
                s(h, v);
            }
            None => h.update(&[0]),
        }
    }
    fn d(h: &mut Xxh3, v: Option<Decimal>) {
        match v {
            Some(v) => {
                let n = v.normalize();
                h.update(&[1]);
                h.update(&n.mantissa().to_le_bytes());
                h.update(&n.scale().to_le_bytes());
            }
            None => h.update(&[0]),
        }
    }
    let mut h = Xxh3::new();
    s(&mut h, &e.event_id);
    s(&mut h, e.event_type.as_str());
    h.update(&e.event_time.timestamp_micros().to_le_bytes());
    s(&mut h, &e.store_id);
    os(&mut h, e.register_id.as_deref());
    os(&mut h, e.transaction_id.as_deref());
    h.update(&(e.lines.len() as u64).to_le_bytes());
    for l in &e.lines {
        s(&mut h, &l.sku);
        d(&mut h, Some(l.quantity));
        d(&mut h, l.unit_price);
        d(&mut h, l.discount);
    }
    // the purchase-order fields, only where present (events without them hash as they
    // always did)
    if e.order_id.is_some() || e.expected_at.is_some() {
        os(&mut h, e.order_id.as_deref());
        h.update(
            &e.expected_at
                .map_or(i64::MIN, |t| t.timestamp_micros())
                .to_le_bytes(),
        );
    }
    h.digest()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_fingerprint_never_changes(e in valid_event()) {
        prop_assert_eq!(e.fingerprint(), streaming_fingerprint(&e));
    }

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
    fn whitespace_anywhere_between_tokens_reads_alike_both_ways(
        e in valid_event(),
        at in prop::collection::vec((any::<usize>(), prop::sample::select(vec![" ", "\n", "\t", "\r\n  "])), 1..6),
    ) {
        let mut text = e.to_canonical_json();
        // whitespace after a structural character, where JSON allows it
        for (i, ws) in at {
            let structural: Vec<usize> = text
                .char_indices()
                .filter(|(_, c)| matches!(c, '{' | '}' | '[' | ']' | ',' | ':'))
                .map(|(i, _)| i + 1)
                .collect();
            let p = structural[i % structural.len()];
            if !in_string(&text, p) {
                text.insert_str(p, ws);
            }
        }
        same(&parse_event_str(&text), &parse_event_thorough(&text), &text);
        prop_assert!(parse_event_str(&text).is_ok(), "{}", text);
    }

    #[test]
    fn a_repeated_field_is_refused_both_ways(
        e in valid_event(),
        top in prop::sample::select(vec![
            r#""schema_version":1,"#,
            r#""event_id":"E-1","#,
            r#""event_type":"adjustment","#,
            r#""event_time":"2026-11-26T10:15:03Z","#,
            r#""store_id":"S-1","#,
            r#""register_id":null,"#,
            r#""transaction_id":"T-1","#,
        ]),
        line in prop::sample::select(vec![
            r#""sku":"K-1","#,
            r#""quantity":5,"#,
            r#""unit_price":1,"#,
            r#""discount":null,"#,
        ]),
        in_line in any::<bool>(),
        i in any::<usize>(),
    ) {
        let mut text = e.to_canonical_json();
        let opens = positions(text.as_bytes(), b'{');
        if in_line && opens.len() > 1 {
            // a line's object, where its own field is written first
            let at = opens[1 + i % (opens.len() - 1)] + 1;
            let name = &line[..line.find(':').expect("a field")];
            if text[at..].find('}').is_some_and(|end| text[at..at + end].contains(name)) {
                text.insert_str(at, line);
            }
        } else if text.contains(&top[..top.find(':').expect("a field")]) {
            text.insert_str(1, top);
        }
        if text != e.to_canonical_json() {
            same(&parse_event_str(&text), &parse_event_thorough(&text), &text);
            prop_assert!(parse_event_str(&text).is_err(), "{}", text);
        }
    }

    #[test]
    fn a_record_inside_a_json_string_reads_as_the_record_itself(
        e in valid_event(),
        ms in prop::collection::vec(mutation(), 0..3),
        spaced in any::<bool>(),
    ) {
        let mut text = e.to_canonical_json();
        if spaced {
            text = text.replacen('{', "{\n  ", 1).replacen(",\"", ",\t\r\n \"", 2);
        }
        let mut bytes = text.into_bytes();
        for m in &ms {
            bytes = apply(bytes, m);
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let mut quoted = Vec::new();
            write_json_str(&mut quoted, text);
            let inner = std::str::from_utf8(&quoted[1..quoted.len() - 1]).expect("UTF-8");
            match parse_event_escaped(inner) {
                Some(event) => same(&Ok(event), &parse_event_str(text), text),
                // a valid record with no escapes of its own is always read there
                None => prop_assert!(
                    !ms.is_empty() || !text.is_ascii() || text.contains('\\'),
                    "{}", text
                ),
            }
        }
    }

    #[test]
    fn the_one_pass_reading_agrees_with_the_thorough_one(
        e in valid_event(),
        ms in prop::collection::vec(mutation(), 0..4),
    ) {
        let mut bytes = Vec::new();
        e.write_canonical(&mut bytes);
        for m in &ms {
            bytes = apply(bytes, m);
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            same(&parse_event_str(text), &parse_event_thorough(text), text);
        }
    }

    #[test]
    fn arbitrary_json_text_reads_alike_both_ways(text in "[{}\\[\\],:\"a-z0-9.eE+\\- ]{0,200}|\\{\"lines\":\\[[{}\\[\\],:\"a-z0-9 ]{0,60}\\][,:\"a-z0-9 {}]{0,60}") {
        same(&parse_event_str(&text), &parse_event_thorough(&text), &text);
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
