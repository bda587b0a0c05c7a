//! Parsing raw record bytes into a typed [`Event`], collecting every rule the record breaks.
//!
//! One pass of `serde_json` splits an object into its fields as raw JSON text; each field is then
//! read on its own, so that one bad field never hides another. Numbers are read from their exact
//! JSON text into decimals: a quantity of `0.1` is 0.1, not a binary float near it. The parser
//! never panics, whatever the bytes (see the property tests).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::model::{Event, EventType, Form, Line, normalized, rescaled};
use crate::reason::{ReasonCode as R, Rejection, Violation};

/// The largest record accepted, in bytes (the Kinesis record limit).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The most lines one event may carry.
pub const MAX_LINES: usize = 1000;
/// The longest identifier (event, store, SKU, register, transaction), in characters.
pub const MAX_ID_CHARS: usize = 128;
/// The longest product name or category a legacy record may carry, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Quantities are below this in absolute value: with their 3 decimals, 15 significant digits,
/// which every gold column and SQLite's numbers hold exactly (decision 0004).
pub const QUANTITY_LIMIT: i64 = 1_000_000_000_000;
/// Money — a price, a discount, and a line's amount (quantity × unit price) — is below this:
/// with 4 decimals, 15 significant digits.
pub const MONEY_LIMIT: i64 = 100_000_000_000;

/// Parses and validates one record. `Ok` only when the record breaks no rule.
pub fn parse_event(bytes: &[u8]) -> Result<Event<'_>, Rejection> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(Rejection::single(Violation::new(
            R::TooLarge,
            "",
            format!("{} bytes, the limit is {MAX_RECORD_BYTES}", bytes.len()),
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::single(Violation::new(
            R::NotUtf8,
            "",
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        ))
    })?;
    parse_event_str(text)
}

/// As [`parse_event`], for a record already known to be UTF-8.
pub fn parse_event_str(text: &str) -> Result<Event<'_>, Rejection> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(Rejection::single(Violation::new(
            R::TooLarge,
            "",
            format!("{} bytes, the limit is {MAX_RECORD_BYTES}", text.len()),
        )));
    }
    // most records are plain valid canonical events, read in one pass over their bytes
    if let Some(event) = crate::fast::parse_plain(text) {
        return Ok(event);
    }
    // then one pass of serde splits the top object and its lines together; any record that
    // pass cannot take, or that breaks a rule, is read again the thorough way below, which
    // names every rule it breaks
    if let Ok(split) = serde_json::from_str::<Split<'_>>(text) {
        let mut v = Vec::new();
        if let Some(event) = parse_canonical(&split.fields, LinesIn::Split(split.lines), &mut v)
            && v.is_empty()
        {
            return Ok(event);
        }
    }
    parse_event_thorough(text)
}

/// As [`parse_event_str`], without the one-pass reading of valid canonical events: every
/// record is split field by field. The two give the same answer for every input (property
/// tests); this one is public for those tests.
pub fn parse_event_thorough(text: &str) -> Result<Event<'_>, Rejection> {
    let top: Top<'_> = match serde_json::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            return Err(Rejection::single(Violation::new(
                R::NotJson,
                "",
                e.to_string(),
            )));
        }
    };
    let fields = match top {
        Top::Object(f) => f,
        Top::Other(kind) => {
            return Err(Rejection::single(Violation::new(
                R::NotObject,
                "",
                format!("a JSON {kind}, not an object"),
            )));
        }
    };
    let legacy = (fields.get("product_id").is_some() || fields.get("total_price").is_some())
        && fields.get("lines").is_none()
        && fields.get("event_type").is_none();
    let mut v = Vec::new();
    let result = if legacy {
        parse_legacy(&fields, &mut v)
    } else {
        parse_canonical(&fields, LinesIn::Raw(fields.get("lines")), &mut v)
    };
    match result {
        Some(event) if v.is_empty() => Ok(event),
        _ => {
            let event_id = if legacy {
                match (
                    read_string(fields.get("transaction_id")),
                    read_string(fields.get("product_id")),
                ) {
                    (Ok(Some(t)), Ok(Some(p))) => Some(format!("{t}:{p}")),
                    _ => None,
                }
            } else {
                read_string(fields.get("event_id"))
                    .ok()
                    .flatten()
                    .map(|s| s.into_owned())
            };
            debug_assert!(!v.is_empty());
            if v.is_empty() {
                v.push(Violation::new(R::NotJson, "", "unreadable record"));
            }
            Err(Rejection {
                violations: v,
                event_id,
            })
        }
    }
}

/// An event's lines: as raw JSON text, or already split into objects of fields.
enum LinesIn<'a> {
    Raw(Option<&'a RawValue>),
    Split(Vec<Fields<'a>>),
}

/// Whether a number of lines is allowed, with the violation when not.
fn line_count_ok(n: usize, v: &mut Vec<Violation>) -> bool {
    if n == 0 {
        v.push(Violation::new(R::EmptyLines, "lines", "no lines"));
        false
    } else if n > MAX_LINES {
        v.push(Violation::new(
            R::TooManyLines,
            "lines",
            format!("{n} lines, the limit is {MAX_LINES}"),
        ));
        false
    } else {
        true
    }
}

/// The top-level fields of a canonical event (docs/contract.md §1), in the order producers write them
/// (the optional payment method and client type after the lines, so that a record without them
/// meets the keys in the order the one-pass reader expects); any other field is kept in bronze
/// and ignored downstream.
pub(crate) const CANONICAL_FIELDS: [&str; 12] = [
    "schema_version",
    "event_id",
    "event_type",
    "event_time",
    "store_id",
    "register_id",
    "transaction_id",
    "lines",
    "payment_method",
    "client_type",
    "order_id",
    "expected_at",
];

/// A line's fields (docs/contract.md §1), in the contract's order.
pub(crate) const LINE_FIELDS: [&str; 4] = ["sku", "quantity", "unit_price", "discount"];

fn parse_canonical<'a>(
    f: &Fields<'a>,
    lines_in: LinesIn<'a>,
    v: &mut Vec<Violation>,
) -> Option<Event<'a>> {
    f.check_duplicates(&CANONICAL_FIELDS, None, v);
    if let Some(raw) = f.get("schema_version")
        && raw.get() != "1"
        && raw.get() != "null"
    {
        v.push(Violation::new(
            R::UnsupportedSchemaVersion,
            "schema_version",
            format!("{} (only 1 is known)", clip(raw.get())),
        ));
    }
    let event_id = required_id(f, "event_id", R::MissingEventId, R::InvalidEventId, v);
    let event_type = match f.get("event_type") {
        None => {
            v.push(Violation::new(R::MissingEventType, "event_type", "absent"));
            None
        }
        Some(raw) => match read_string(Some(raw)) {
            Ok(Some(s)) => match s.parse::<EventType>() {
                Ok(t) => Some(t),
                Err(()) => {
                    v.push(Violation::new(
                        R::InvalidEventType,
                        "event_type",
                        format!("{:?} is not a known event type", clip(&s)),
                    ));
                    None
                }
            },
            Ok(None) => {
                v.push(Violation::new(R::MissingEventType, "event_type", "null"));
                None
            }
            Err(()) => {
                v.push(Violation::new(
                    R::InvalidEventType,
                    "event_type",
                    format!("{} is not a string", clip(raw.get())),
                ));
                None
            }
        },
    };
    let event_time = read_time(f, "event_time", v);
    let store_id = required_id(f, "store_id", R::MissingStoreId, R::InvalidStoreId, v);
    let register_id = optional_id(f, "register_id", R::InvalidRegisterId, v);
    let transaction_id = optional_id(f, "transaction_id", R::InvalidTransactionId, v);
    let payment_method = optional_id(f, "payment_method", R::InvalidPaymentMethod, v);
    let client_type = optional_id(f, "client_type", R::InvalidClientType, v);
    let (order_id, expected_at) = read_order(f, event_type, v);

    let mut lines = Vec::new();
    match lines_in {
        LinesIn::Split(items) => {
            if line_count_ok(items.len(), v) {
                lines.reserve(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(line) = parse_line_fields(item, i, event_type, v) {
                        lines.push(line);
                    }
                }
            }
        }
        LinesIn::Raw(None) => v.push(Violation::new(R::MissingLines, "lines", "absent")),
        LinesIn::Raw(Some(raw)) if raw.get() == "null" => {
            v.push(Violation::new(R::MissingLines, "lines", "null"))
        }
        LinesIn::Raw(Some(raw)) => match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
            Err(_) => v.push(Violation::new(
                R::InvalidLines,
                "lines",
                format!("{} is not an array", clip(raw.get())),
            )),
            Ok(items) => {
                if line_count_ok(items.len(), v) {
                    lines.reserve(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        if let Some(line) = parse_line(item, i, event_type, v) {
                            lines.push(line);
                        }
                    }
                }
            }
        },
    }
    Some(Event {
        event_id: event_id?,
        event_type: event_type?,
        event_time: event_time?,
        store_id: store_id?,
        register_id,
        transaction_id,
        lines,
        form: Form::Canonical,
        product_name: None,
        category: None,
        payment_method,
        client_type,
        order_id,
        expected_at,
    })
}

/// The purchase-order fields: `order_id` (required on a purchase order, optional elsewhere:
/// a receipt names the order it fulfils) and `expected_at` (required on a purchase order).
fn read_order<'a>(
    f: &Fields<'a>,
    event_type: Option<EventType>,
    v: &mut Vec<Violation>,
) -> (Option<Cow<'a, str>>, Option<DateTime<Utc>>) {
    let is_order = event_type == Some(EventType::PurchaseOrder);
    let order_id = optional_id(f, "order_id", R::InvalidOrderId, v);
    if is_order && order_id.is_none() && !v.iter().any(|x| x.code == R::InvalidOrderId) {
        v.push(Violation::new(R::MissingOrderId, "order_id", "absent"));
    }
    let expected_at = match read_string(f.get("expected_at")) {
        Ok(None) => {
            if is_order {
                v.push(Violation::new(
                    R::MissingExpectedAt,
                    "expected_at",
                    "absent",
                ));
            }
            None
        }
        Ok(Some(s)) => {
            let t = parse_time(&s);
            if t.is_none() {
                v.push(Violation::new(
                    R::InvalidExpectedAt,
                    "expected_at",
                    format!("{:?} is not RFC 3339 with an offset", clip(&s)),
                ));
            }
            t
        }
        Err(()) => {
            v.push(Violation::new(
                R::InvalidExpectedAt,
                "expected_at",
                "not a string",
            ));
            None
        }
    };
    (order_id, expected_at)
}

fn parse_line<'a>(
    raw: &'a RawValue,
    i: usize,
    event_type: Option<EventType>,
    v: &mut Vec<Violation>,
) -> Option<Line<'a>> {
    let f = match serde_json::from_str::<Top<'a>>(raw.get()) {
        Ok(Top::Object(f)) => f,
        _ => {
            v.push(Violation::new(
                R::InvalidLine,
                format!("lines[{i}]"),
                format!("{} is not an object", clip(raw.get())),
            ));
            return None;
        }
    };
    parse_line_fields(&f, i, event_type, v)
}

fn parse_line_fields<'a>(
    f: &Fields<'a>,
    i: usize,
    event_type: Option<EventType>,
    v: &mut Vec<Violation>,
) -> Option<Line<'a>> {
    let p = |name: &'static str| At::Line(i, name);
    f.check_duplicates(&LINE_FIELDS, Some(i), v);
    let sku = match read_id(f.get("sku")) {
        IdRead::Ok(s) => Some(s),
        IdRead::Missing => {
            v.push(Violation::new(R::MissingSku, p("sku").text(), "absent"));
            None
        }
        IdRead::Invalid(why) => {
            v.push(Violation::new(R::InvalidSku, p("sku").text(), why));
            None
        }
    };
    let quantity = read_quantity(f.get("quantity"), event_type, p("quantity"), v);
    let unit_price = read_money(
        f.get("unit_price"),
        R::InvalidUnitPrice,
        R::UnitPricePrecision,
        p("unit_price"),
        v,
    );
    let discount = read_money(
        f.get("discount"),
        R::InvalidDiscount,
        R::DiscountPrecision,
        p("discount"),
        v,
    );
    if let (Some(q), Ok(Some(price))) = (quantity, &unit_price) {
        check_amount(q, *price, p("unit_price"), v);
    }
    Some(Line {
        sku: sku?,
        quantity: quantity?,
        unit_price: unit_price.ok()?,
        discount: discount.ok()?,
    })
}

/// The fields of a legacy record (docs/contract.md §1b).
const LEGACY_FIELDS: [&str; 11] = [
    "transaction_id",
    "product_id",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "total_price",
    "timestamp",
    "store_id",
    "payment_method",
    "client_type",
];

fn parse_legacy<'a>(f: &Fields<'a>, v: &mut Vec<Violation>) -> Option<Event<'a>> {
    f.check_duplicates(&LEGACY_FIELDS, None, v);
    let transaction_id = required_id(
        f,
        "transaction_id",
        R::MissingTransactionId,
        R::InvalidTransactionId,
        v,
    );
    let sku = required_id(f, "product_id", R::MissingSku, R::InvalidSku, v);
    let event_time = read_time(f, "timestamp", v);
    let store_id = required_id(f, "store_id", R::MissingStoreId, R::InvalidStoreId, v);
    let quantity = read_quantity(
        f.get("quantity"),
        Some(EventType::Sale),
        At::Top("quantity"),
        v,
    );
    let unit_price = match f.get("unit_price") {
        None => {
            v.push(Violation::new(R::MissingUnitPrice, "unit_price", "absent"));
            None
        }
        Some(raw) => read_money(
            Some(raw),
            R::InvalidUnitPrice,
            R::UnitPricePrecision,
            At::Top("unit_price"),
            v,
        )
        .ok()
        .flatten(),
    };
    let total_price = match f.get("total_price") {
        None => {
            v.push(Violation::new(
                R::MissingTotalPrice,
                "total_price",
                "absent",
            ));
            None
        }
        Some(raw) => match read_number(raw) {
            Ok(d) => Some(d),
            Err(why) => {
                v.push(Violation::new(R::InvalidTotalPrice, "total_price", why));
                None
            }
        },
    };
    if let (Some(q), Some(p)) = (quantity, unit_price) {
        check_amount(q, p, At::Top("unit_price"), v);
    }
    if let (Some(q), Some(p), Some(t)) = (quantity, unit_price, total_price) {
        let expected = q * p;
        if (t - expected).abs() > Decimal::new(1, 2) {
            v.push(Violation::new(
                R::TotalPriceMismatch,
                "total_price",
                format!("{t} but quantity × unit_price = {}", expected.normalize()),
            ));
        }
    }
    let product_name = read_text(f, "product_name", R::InvalidProductName, v);
    let category = read_text(f, "category", R::InvalidCategory, v);
    let payment_method = optional_id(f, "payment_method", R::InvalidPaymentMethod, v);
    let client_type = optional_id(f, "client_type", R::InvalidClientType, v);
    let transaction_id = transaction_id?;
    let sku = sku?;
    // the event id a legacy record gets must itself be a valid event id, or its canonical
    // form would be refused
    let event_id = format!("{transaction_id}:{sku}");
    if event_id.chars().count() > MAX_ID_CHARS {
        v.push(Violation::new(
            R::InvalidEventId,
            "transaction_id",
            format!(
                "transaction_id:product_id (the legacy event id) is longer than {MAX_ID_CHARS} characters"
            ),
        ));
        return None;
    }
    let event_id = Cow::Owned(event_id);
    Some(Event {
        event_id,
        event_type: EventType::Sale,
        event_time: event_time?,
        store_id: store_id?,
        register_id: None,
        transaction_id: Some(transaction_id),
        lines: vec![Line {
            sku,
            quantity: quantity?,
            unit_price,
            discount: None,
        }],
        form: Form::Legacy,
        product_name,
        category,
        payment_method,
        client_type,
        order_id: None,
        expected_at: None,
    })
}

// ---------------------------------------------------------------------------------------------
// field readers

enum IdRead<'a> {
    Ok(Cow<'a, str>),
    Missing,
    Invalid(String),
}

fn read_id<'a>(raw: Option<&'a RawValue>) -> IdRead<'a> {
    match read_string(raw) {
        Ok(None) => IdRead::Missing,
        Err(()) => IdRead::Invalid(format!(
            "{} is not a string",
            clip(raw.map(|r| r.get()).unwrap_or(""))
        )),
        Ok(Some(s)) => {
            // ids are ASCII: counted and checked by byte (the control characters of ASCII
            // are exactly those below 0x20 and 0x7f)
            let (chars, control) = if s.is_ascii() {
                (s.len(), s.bytes().any(|b| b < 0x20 || b == 0x7f))
            } else {
                (s.chars().count(), s.chars().any(char::is_control))
            };
            if s.is_empty() {
                IdRead::Invalid("empty string".into())
            } else if chars > MAX_ID_CHARS {
                IdRead::Invalid(format!("longer than {MAX_ID_CHARS} characters"))
            } else if control {
                IdRead::Invalid("contains control characters".into())
            } else {
                IdRead::Ok(s)
            }
        }
    }
}

fn required_id<'a>(
    f: &Fields<'a>,
    name: &str,
    missing: R,
    invalid: R,
    v: &mut Vec<Violation>,
) -> Option<Cow<'a, str>> {
    match read_id(f.get(name)) {
        IdRead::Ok(s) => Some(s),
        IdRead::Missing => {
            v.push(Violation::new(missing, name, "absent"));
            None
        }
        IdRead::Invalid(why) => {
            v.push(Violation::new(invalid, name, why));
            None
        }
    }
}

fn optional_id<'a>(
    f: &Fields<'a>,
    name: &str,
    invalid: R,
    v: &mut Vec<Violation>,
) -> Option<Cow<'a, str>> {
    match read_id(f.get(name)) {
        IdRead::Ok(s) => Some(s),
        IdRead::Missing => None,
        IdRead::Invalid(why) => {
            v.push(Violation::new(invalid, name, why));
            None
        }
    }
}

fn read_time(f: &Fields<'_>, name: &str, v: &mut Vec<Violation>) -> Option<DateTime<Utc>> {
    match read_string(f.get(name)) {
        Ok(None) => {
            v.push(Violation::new(R::MissingEventTime, name, "absent"));
            None
        }
        Err(()) => {
            v.push(Violation::new(
                R::InvalidEventTime,
                name,
                "not a string".to_string(),
            ));
            None
        }
        Ok(Some(s)) => match parse_time(&s) {
            Some(t) => Some(t),
            None => {
                v.push(Violation::new(
                    R::InvalidEventTime,
                    name,
                    format!("{:?} is not RFC 3339 with an offset", clip(&s)),
                ));
                None
            }
        },
    }
}

/// Parses an RFC 3339 time with an offset, to UTC, truncated to microseconds.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros)
}

fn read_quantity(
    raw: Option<&RawValue>,
    event_type: Option<EventType>,
    at: At<'_>,
    v: &mut Vec<Violation>,
) -> Option<Decimal> {
    let raw = match raw {
        Some(r) if r.get() != "null" => r,
        _ => {
            v.push(Violation::new(R::MissingQuantity, at.text(), "absent"));
            return None;
        }
    };
    let q = match read_number(raw) {
        Ok(q) => q,
        Err(why) => {
            v.push(Violation::new(R::InvalidQuantity, at.text(), why));
            return None;
        }
    };
    let mut ok = true;
    if q.abs() >= Decimal::from(QUANTITY_LIMIT) {
        v.push(Violation::new(
            R::QuantityOutOfRange,
            at.text(),
            format!("{} is too large", clip(raw.get())),
        ));
        ok = false;
    }
    let (mantissa, scale) = normalized(q);
    if scale > 3 {
        v.push(Violation::new(
            R::QuantityPrecision,
            at.text(),
            format!("{} has more than 3 decimals", clip(raw.get())),
        ));
        ok = false;
    }
    if let Some(t) = event_type
        && !t.quantity_sign_ok(q)
    {
        v.push(Violation::new(
            R::QuantitySign,
            at.text(),
            format!("{} but a {t} needs {}", q.normalize(), t.sign_rule()),
        ));
        ok = false;
    }
    if ok {
        Some(at_scale(mantissa, scale, 3))
    } else {
        None
    }
}

/// Reads an optional money field: `Ok(None)` when absent or null.
fn read_money(
    raw: Option<&RawValue>,
    invalid: R,
    precision: R,
    at: At<'_>,
    v: &mut Vec<Violation>,
) -> Result<Option<Decimal>, ()> {
    let raw = match raw {
        Some(r) if r.get() != "null" => r,
        _ => return Ok(None),
    };
    let d = match read_number(raw) {
        Ok(d) => d,
        Err(why) => {
            v.push(Violation::new(invalid, at.text(), why));
            return Err(());
        }
    };
    if d.is_sign_negative() && !d.is_zero() {
        v.push(Violation::new(
            invalid,
            at.text(),
            format!("{} is negative", clip(raw.get())),
        ));
        return Err(());
    }
    if d >= Decimal::from(MONEY_LIMIT) {
        v.push(Violation::new(
            invalid,
            at.text(),
            format!("{} is too large", clip(raw.get())),
        ));
        return Err(());
    }
    let (mantissa, scale) = normalized(d);
    if scale > 4 {
        v.push(Violation::new(
            precision,
            at.text(),
            format!("{} has more than 4 decimals", clip(raw.get())),
        ));
        return Err(());
    }
    Ok(Some(at_scale(mantissa, scale, 4)))
}

/// The decimal `mantissa × 10^-scale` (normalized, `scale <= to`) written with `to` decimals:
/// what `normalize` then `rescale(to)` give, without 96-bit arithmetic for values in range.
fn at_scale(mantissa: i128, scale: u32, to: u32) -> Decimal {
    rescaled(Decimal::from_i128_with_scale(mantissa, scale), to)
}

/// Reads a JSON number from its exact text into a decimal.
fn read_number(raw: &RawValue) -> Result<Decimal, String> {
    let text = raw.get();
    let first = text.as_bytes().first().copied().unwrap_or(b' ');
    if !(first == b'-' || first.is_ascii_digit()) {
        return Err(format!("{} is not a number", clip(text)));
    }
    parse_json_number(text).ok_or_else(|| format!("{} cannot be held exactly", clip(text)))
}

/// Converts the text of a JSON number (already validated by the JSON parser) to a decimal.
pub fn parse_json_number(text: &str) -> Option<Decimal> {
    if text.len() > 64 {
        return None;
    }
    if text.bytes().any(|b| b == b'e' || b == b'E') {
        // `from_scientific` rejects a '+' in the exponent and huge exponents by itself.
        let normalized = text.replace("e+", "e").replace("E+", "e").replace('E', "e");
        let (mantissa, exp) = normalized.split_once('e')?;
        let exp: i64 = exp.parse().ok()?;
        if !(-28..=28).contains(&exp) {
            // Zero with any exponent is zero; anything else is out of reach of a decimal.
            let m = Decimal::from_str_exact(mantissa).ok()?;
            return m.is_zero().then_some(Decimal::ZERO);
        }
        Decimal::from_scientific(&normalized).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

/// Reads a string field: `Ok(None)` when absent or null, `Err` when not a string.
/// A line's amount, quantity × unit price, must be below [`MONEY_LIMIT`]: it becomes
/// `fact_sales.net_amount`.
fn check_amount(quantity: Decimal, unit_price: Decimal, at: At<'_>, v: &mut Vec<Violation>) {
    // both are below 10^12, so the product (below 10^24) is within a decimal's range
    let amount = quantity.abs() * unit_price;
    if amount >= Decimal::from(MONEY_LIMIT) {
        v.push(Violation::new(
            R::AmountOutOfRange,
            at.text(),
            format!(
                "quantity × unit_price = {} is not below {MONEY_LIMIT}",
                amount.normalize()
            ),
        ));
    }
}

/// An optional text of master data a legacy record carries (product name, category): a string
/// of at most [`MAX_TEXT_CHARS`] characters without control characters, or absent or null.
fn read_text<'a>(
    f: &Fields<'a>,
    name: &'static str,
    invalid: R,
    v: &mut Vec<Violation>,
) -> Option<Cow<'a, str>> {
    match read_string(f.get(name)) {
        Ok(None) => None,
        Ok(Some(s)) => match text_problem(&s) {
            None => Some(s),
            Some(why) => {
                v.push(Violation::new(invalid, name, why));
                None
            }
        },
        Err(()) => {
            v.push(Violation::new(
                invalid,
                name,
                format!(
                    "{} is not a string",
                    clip(f.get(name).map_or("", |r| r.get()))
                ),
            ));
            None
        }
    }
}

/// Why a name or category is not printable text of at most [`MAX_TEXT_CHARS`] characters.
pub fn text_problem(s: &str) -> Option<String> {
    let chars = s.chars().count();
    if chars > MAX_TEXT_CHARS {
        Some(format!("{chars} characters, the limit is {MAX_TEXT_CHARS}"))
    } else if s.chars().any(char::is_control) {
        Some("holds a control character".into())
    } else {
        None
    }
}

fn read_string<'a>(raw: Option<&'a RawValue>) -> Result<Option<Cow<'a, str>>, ()> {
    match raw {
        None => Ok(None),
        Some(r) if r.get() == "null" => Ok(None),
        // a raw value the JSON parser already took is one token: a string without a backslash
        // is its text between the quotes (no escapes to undo, no control characters)
        Some(r)
            if r.get().len() >= 2
                && r.get().starts_with('"')
                && !r.get().as_bytes()[1..].contains(&b'\\') =>
        {
            Ok(r.get().get(1..r.get().len() - 1).map(Cow::Borrowed))
        }
        Some(r) => match serde_json::from_str::<Str<'a>>(r.get()) {
            Ok(s) => Ok(Some(s.0)),
            Err(_) => Err(()),
        },
    }
}

/// Where in a record a violation is: made into text only when there is one, so that a valid
/// record costs no formatting.
#[derive(Debug, Clone, Copy)]
enum At<'s> {
    Top(&'s str),
    Line(usize, &'s str),
}

impl At<'_> {
    fn text(self) -> String {
        match self {
            At::Top(name) => name.to_string(),
            At::Line(i, name) => format!("lines[{i}].{name}"),
        }
    }
}

/// Shortens a value for an error message.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        s.to_string()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

// ---------------------------------------------------------------------------------------------
// one-pass object splitting

/// The fields of a JSON object, each as its raw JSON text, in order of appearance.
struct Fields<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    /// The first value of a field.
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| *v)
    }

    /// `line`: the index of the line these fields belong to, `None` at the top level.
    fn check_duplicates(&self, known: &[&str], line: Option<usize>, v: &mut Vec<Violation>) {
        // the usual case, no key twice, decided pair by pair (keys of other lengths differ at
        // once) before any known name is counted
        let e = &self.entries;
        if !(1..e.len()).any(|j| e[..j].iter().any(|(k, _)| *k == e[j].0)) {
            return;
        }
        for name in known {
            if self.entries.iter().filter(|(k, _)| k == name).count() > 1 {
                let path = match line {
                    None => At::Top(name),
                    Some(i) => At::Line(i, name),
                }
                .text();
                v.push(Violation::new(
                    R::DuplicateField,
                    path,
                    "the field appears more than once",
                ));
            }
        }
    }
}

enum Top<'a> {
    Object(Fields<'a>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(12);
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            entries.push((key.0, value));
        }
        Ok(Top::Object(Fields { entries }))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("array"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Top::Other("boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Top::Other("number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Top::Other("number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Top::Other("number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::Other("string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Top::Other("null"))
    }
}

/// A record split in one pass: its top-level fields but `lines`, and each line's fields. Fails
/// (and the record is read the thorough way) unless `lines` appears once, as an array of objects.
struct Split<'a> {
    fields: Fields<'a>,
    lines: Vec<Fields<'a>>,
}

impl<'de> Deserialize<'de> for Split<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Split<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(12);
                let mut lines = None;
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    if key.0 == "lines" {
                        if lines.is_some() {
                            return Err(de::Error::duplicate_field("lines"));
                        }
                        lines = Some(map.next_value::<LineObjects<'de>>()?.0);
                    } else {
                        entries.push((key.0, map.next_value::<&'de RawValue>()?));
                    }
                }
                Ok(Split {
                    fields: Fields { entries },
                    lines: lines.ok_or_else(|| de::Error::missing_field("lines"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// An array of objects, each split into its fields.
struct LineObjects<'a>(Vec<Fields<'a>>);

impl<'de> Deserialize<'de> for LineObjects<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LineObjects<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
                while let Some(item) = seq.next_element::<Top<'de>>()? {
                    match item {
                        Top::Object(f) => items.push(f),
                        Top::Other(kind) => {
                            return Err(de::Error::invalid_type(
                                de::Unexpected::Other(kind),
                                &"an object",
                            ));
                        }
                    }
                    if items.len() > MAX_LINES {
                        return Err(de::Error::invalid_length(items.len(), &"fewer lines"));
                    }
                }
                Ok(LineObjects(items))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A string that borrows from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_decimal_is_put_at_scale_as_normalize_then_rescale_put_it(
            m in proptest::prelude::any::<i64>(),
            scale in 0u32..=28,
            to in 0u32..=6,
        ) {
            for m in [i128::from(m), i128::from(m % 1_000_000), 0] {
                let d = Decimal::from_i128_with_scale(m, scale);
                let (mantissa, s) = normalized(d);
                if s <= to {
                    let mut want = d.normalize();
                    want.rescale(to);
                    let got = at_scale(mantissa, s, to);
                    proptest::prop_assert_eq!(got.mantissa(), want.mantissa());
                    proptest::prop_assert_eq!(got.scale(), want.scale());
                    proptest::prop_assert_eq!(got.is_sign_negative(), want.is_sign_negative());
                }
            }
        }
    }
}
