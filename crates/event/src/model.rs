//! The typed POS event: what a valid record becomes.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

/// The kinds of stock movement a POS or back-office system reports (CONTRACT §1a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Sale,
    Return,
    /// Goods delivered to the store.
    Receipt,
    /// Spoiled, damaged or expired goods taken off the shelf.
    Waste,
    /// A signed correction.
    Adjustment,
    /// An absolute counted on-hand quantity.
    StockCount,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Sale,
        EventType::Return,
        EventType::Receipt,
        EventType::Waste,
        EventType::Adjustment,
        EventType::StockCount,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Sale => "sale",
            EventType::Return => "return",
            EventType::Receipt => "receipt",
            EventType::Waste => "waste",
            EventType::Adjustment => "adjustment",
            EventType::StockCount => "stock_count",
        }
    }

    /// The signed change to on-hand a line of this type causes, or `None` for a stock count,
    /// which sets on-hand absolutely (CONTRACT §2).
    pub fn stock_delta(self, quantity: Decimal) -> Option<Decimal> {
        match self {
            EventType::Sale | EventType::Waste => Some(-quantity),
            EventType::Return | EventType::Receipt | EventType::Adjustment => Some(quantity),
            EventType::StockCount => None,
        }
    }

    /// Whether `quantity` obeys the sign rule of this type.
    pub fn quantity_sign_ok(self, quantity: Decimal) -> bool {
        match self {
            EventType::Sale | EventType::Return | EventType::Receipt | EventType::Waste => {
                quantity > Decimal::ZERO
            }
            EventType::Adjustment => !quantity.is_zero(),
            EventType::StockCount => quantity >= Decimal::ZERO,
        }
    }

    /// The sign rule in words, for error messages.
    pub fn sign_rule(self) -> &'static str {
        match self {
            EventType::Sale | EventType::Return | EventType::Receipt | EventType::Waste => "> 0",
            EventType::Adjustment => "!= 0",
            EventType::StockCount => ">= 0",
        }
    }
}

impl FromStr for EventType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "sale" => EventType::Sale,
            "return" => EventType::Return,
            "receipt" => EventType::Receipt,
            "waste" => EventType::Waste,
            "adjustment" => EventType::Adjustment,
            "stock_count" => EventType::StockCount,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which wire form a record came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// `schema_version` 1 (CONTRACT §1a).
    Canonical,
    /// The original producer's one-line flat sale (CONTRACT §1b).
    Legacy,
}

impl Form {
    pub const fn as_str(self) -> &'static str {
        match self {
            Form::Canonical => "canonical",
            Form::Legacy => "legacy",
        }
    }
}

/// One line of an event: a SKU and how much of it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub sku: Cow<'a, str>,
    /// Up to 3 decimals (weighed goods), stored with scale 3.
    pub quantity: Decimal,
    /// Up to 4 decimals, stored with scale 4.
    pub unit_price: Option<Decimal>,
    /// Up to 4 decimals, stored with scale 4.
    pub discount: Option<Decimal>,
}

impl Line<'_> {
    pub fn into_owned(self) -> Line<'static> {
        Line {
            sku: Cow::Owned(self.sku.into_owned()),
            quantity: self.quantity,
            unit_price: self.unit_price,
            discount: self.discount,
        }
    }

    /// `quantity × unit_price − discount`, when the line has a price.
    pub fn net_amount(&self) -> Option<Decimal> {
        self.unit_price.map(|p| {
            (self.quantity * p - self.discount.unwrap_or_default())
                .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven)
        })
    }
}

/// A valid POS event. Borrows from the record it was parsed from where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub event_id: Cow<'a, str>,
    pub event_type: EventType,
    /// UTC, microsecond precision.
    pub event_time: DateTime<Utc>,
    pub store_id: Cow<'a, str>,
    pub register_id: Option<Cow<'a, str>>,
    pub transaction_id: Option<Cow<'a, str>>,
    pub lines: Vec<Line<'a>>,
    pub form: Form,
    /// Legacy records name the product; it feeds an inferred product dimension member.
    pub product_name: Option<Cow<'a, str>>,
    /// Legacy records name the category.
    pub category: Option<Cow<'a, str>>,
}

fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    c.map(|c| Cow::Owned(c.into_owned()))
}

impl Event<'_> {
    pub fn into_owned(self) -> Event<'static> {
        Event {
            event_id: Cow::Owned(self.event_id.into_owned()),
            event_type: self.event_type,
            event_time: self.event_time,
            store_id: Cow::Owned(self.store_id.into_owned()),
            register_id: own(self.register_id),
            transaction_id: own(self.transaction_id),
            lines: self.lines.into_iter().map(Line::into_owned).collect(),
            form: self.form,
            product_name: own(self.product_name),
            category: own(self.category),
        }
    }

    /// A 64-bit hash of everything the event says (not of how it was spelled), so that a resent
    /// event is recognised as an exact duplicate and the same `event_id` with other content is not.
    pub fn fingerprint(&self) -> u64 {
        // the fields' bytes gathered and hashed at once: the same value as feeding them to a
        // streaming XXH3 one by one (which silver's stored fingerprints were made with), for a
        // fraction of the calls
        fn s(b: &mut Vec<u8>, v: &str) {
            b.extend_from_slice(&(v.len() as u64).to_le_bytes());
            b.extend_from_slice(v.as_bytes());
        }
        fn os(b: &mut Vec<u8>, v: Option<&str>) {
            match v {
                Some(v) => {
                    b.push(1);
                    s(b, v);
                }
                None => b.push(0),
            }
        }
        fn d(b: &mut Vec<u8>, v: Option<Decimal>) {
            match v {
                Some(v) => {
                    let n = v.normalize();
                    b.push(1);
                    b.extend_from_slice(&n.mantissa().to_le_bytes());
                    b.extend_from_slice(&n.scale().to_le_bytes());
                }
                None => b.push(0),
            }
        }
        let mut b = Vec::with_capacity(128 + self.lines.len() * 80);
        s(&mut b, &self.event_id);
        s(&mut b, self.event_type.as_str());
        b.extend_from_slice(&self.event_time.timestamp_micros().to_le_bytes());
        s(&mut b, &self.store_id);
        os(&mut b, self.register_id.as_deref());
        os(&mut b, self.transaction_id.as_deref());
        b.extend_from_slice(&(self.lines.len() as u64).to_le_bytes());
        for l in &self.lines {
            s(&mut b, &l.sku);
            d(&mut b, Some(l.quantity));
            d(&mut b, l.unit_price);
            d(&mut b, l.discount);
        }
        xxhash_rust::xxh3::xxh3_64(&b)
    }

    /// Writes the canonical JSON form (CONTRACT §1a) of this event, without a newline.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"schema_version\":1,\"event_id\":");
        write_json_str(out, &self.event_id);
        out.extend_from_slice(b",\"event_type\":\"");
        out.extend_from_slice(self.event_type.as_str().as_bytes());
        out.extend_from_slice(b"\",\"event_time\":\"");
        write_rfc3339(out, self.event_time);
        out.extend_from_slice(b"\",\"store_id\":");
        write_json_str(out, &self.store_id);
        if let Some(r) = &self.register_id {
            out.extend_from_slice(b",\"register_id\":");
            write_json_str(out, r);
        }
        if let Some(t) = &self.transaction_id {
            out.extend_from_slice(b",\"transaction_id\":");
            write_json_str(out, t);
        }
        out.extend_from_slice(b",\"lines\":[");
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"sku\":");
            write_json_str(out, &l.sku);
            out.extend_from_slice(b",\"quantity\":");
            write_decimal(out, l.quantity);
            if let Some(p) = l.unit_price {
                out.extend_from_slice(b",\"unit_price\":");
                write_decimal(out, p);
            }
            if let Some(d) = l.discount {
                out.extend_from_slice(b",\"discount\":");
                write_decimal(out, d);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }

    /// The canonical JSON form as a string.
    pub fn to_canonical_json(&self) -> String {
        let mut v = Vec::with_capacity(256);
        self.write_canonical(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Writes a JSON string literal with the escapes JSON requires.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes a decimal as a JSON number with no exponent and no needless trailing zeros.
///
/// The digits are written straight from the mantissa: this runs for every quantity and price
/// the simulator emits, where going through `Display` was an eighth of its time.
pub fn write_decimal(out: &mut Vec<u8>, d: Decimal) {
    let m = d.mantissa();
    // trailing zeros of the fraction are dropped (as `normalize` would), here on the digits
    let mut buf = [0u8; 40];
    let start = write_digits(&mut buf, m.unsigned_abs());
    let mut end = buf.len();
    let mut scale = d.scale() as usize;
    while scale > 0 && end - start > 1 && buf[end - 1] == b'0' {
        end -= 1;
        scale -= 1;
    }
    if m == 0 {
        scale = 0;
    }
    let digits = &buf[start..end];
    if m < 0 {
        out.push(b'-');
    }
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - digits.len(), b'0');
        out.extend_from_slice(digits);
    }
}

/// Writes `n` in decimal at the end of `buf`; returns where the digits start.
fn write_digits(buf: &mut [u8; 40], mut n: u128) -> usize {
    let mut i = buf.len();
    // u64 arithmetic is much cheaper than u128's; every realistic mantissa fits
    while n > u128::from(u64::MAX) {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut n = n as u64;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Writes an instant as RFC 3339 in UTC with `Z`, with 0, 3, 6 or 9 fraction digits — the same
/// text as `to_rfc3339_opts(SecondsFormat::AutoSi, true)`, without its allocation and
/// formatting machinery.
pub fn write_rfc3339(out: &mut Vec<u8>, t: DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // far years and leap seconds: chrono's own text
        out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        return;
    }
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    let y = year as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push(b'-');
    two(out, t.month());
    out.push(b'-');
    two(out, t.day());
    out.push(b'T');
    two(out, t.hour());
    out.push(b':');
    two(out, t.minute());
    out.push(b':');
    two(out, t.second());
    let (digits, value) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (3, nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        (6, nanos / 1_000)
    } else {
        (9, nanos)
    };
    if digits > 0 {
        out.push(b'.');
        let mut buf = [0u8; 9];
        let mut v = value;
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_delta_signs() {
        let q = Decimal::new(25, 1);
        assert_eq!(EventType::Sale.stock_delta(q), Some(-q));
        assert_eq!(EventType::Waste.stock_delta(q), Some(-q));
        assert_eq!(EventType::Return.stock_delta(q), Some(q));
        assert_eq!(EventType::Receipt.stock_delta(q), Some(q));
        assert_eq!(EventType::Adjustment.stock_delta(-q), Some(-q));
        assert_eq!(EventType::StockCount.stock_delta(q), None);
    }

    #[test]
    fn event_type_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        assert!("Sale".parse::<EventType>().is_err());
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for (m, scale) in [
            (0i64, 0u32),
            (0, 5),
            (1, 0),
            (-1, 0),
            (1, 3),
            (-1, 3),
            (1500, 3),
            (-25, 1),
            (123_456_789, 4),
            (10, 1),
            (i64::MAX, 0),
            (i64::MIN, 28),
            (7, 28),
        ] {
            let d = Decimal::new(m, scale);
            let mut v = Vec::new();
            write_decimal(&mut v, d);
            assert_eq!(
                String::from_utf8_lossy(&v),
                d.normalize().to_string(),
                "{m}e-{scale}"
            );
        }
        let big = Decimal::MAX;
        let mut v = Vec::new();
        write_decimal(&mut v, big);
        assert_eq!(String::from_utf8_lossy(&v), big.to_string());
        let mut v = Vec::new();
        write_decimal(&mut v, Decimal::MIN);
        assert_eq!(String::from_utf8_lossy(&v), Decimal::MIN.to_string());
    }

    proptest::proptest! {
        #[test]
        fn any_decimal_is_written_as_display_writes_it(
            m in proptest::prelude::any::<i128>(),
            scale in 0u32..=28,
        ) {
            let m = m % 79_228_162_514_264_337_593_543_950_335; // 96 bits
            let d = Decimal::from_i128_with_scale(m, scale);
            let mut v = Vec::new();
            write_decimal(&mut v, d);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&v), d.normalize().to_string());
        }
    }

    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        use chrono::TimeZone;
        let base = Utc
            .with_ymd_and_hms(2026, 11, 2, 7, 5, 9)
            .single()
            .expect("valid");
        for nanos in [0, 1, 1_000, 120_000_000, 123_456_789, 999_999_999, 5_000] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            let mut v = Vec::new();
            write_rfc3339(&mut v, t);
            assert_eq!(
                String::from_utf8_lossy(&v),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
        for t in [
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).single(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).single(),
        ]
        .into_iter()
        .flatten()
        {
            let mut v = Vec::new();
            write_rfc3339(&mut v, t);
            assert_eq!(
                String::from_utf8_lossy(&v),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }

    #[test]
    fn json_string_escapes() {
        let mut v = Vec::new();
        write_json_str(&mut v, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            String::from_utf8(v).expect("utf-8"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }

    #[test]
    fn net_amount_is_exact() {
        let l = Line {
            sku: "X".into(),
            quantity: Decimal::new(532, 3),
            unit_price: Some(Decimal::new(349, 2)),
            discount: Some(Decimal::new(10, 2)),
        };
        // 0.532 * 3.49 = 1.85668 - 0.10 = 1.75668 -> 1.7567
        assert_eq!(l.net_amount(), Some(Decimal::new(17567, 4)));
    }
}
