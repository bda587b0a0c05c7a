//! The typed POS event: what a valid record becomes.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

/// The kinds of stock movement a POS or back-office system reports (docs/contract.md §1a).
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
    /// An order the store placed with a supplier: it moves no stock; a later event with the
    /// same `order_id` amends it (its lines replace the earlier ones, quantity 0 cancels one).
    PurchaseOrder,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::Sale,
        EventType::Return,
        EventType::Receipt,
        EventType::Waste,
        EventType::Adjustment,
        EventType::StockCount,
        EventType::PurchaseOrder,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Sale => "sale",
            EventType::Return => "return",
            EventType::Receipt => "receipt",
            EventType::Waste => "waste",
            EventType::Adjustment => "adjustment",
            EventType::StockCount => "stock_count",
            EventType::PurchaseOrder => "purchase_order",
        }
    }

    /// The signed change to on-hand a line of this type causes, or `None` for a stock count,
    /// which sets on-hand absolutely, and for a purchase order, which moves no stock
    /// (docs/contract.md §2).
    pub fn stock_delta(self, quantity: Decimal) -> Option<Decimal> {
        match self {
            EventType::Sale | EventType::Waste => Some(-quantity),
            EventType::Return | EventType::Receipt | EventType::Adjustment => Some(quantity),
            EventType::StockCount | EventType::PurchaseOrder => None,
        }
    }

    /// Whether a line of this type is about stock on the shelf (every type but a purchase
    /// order, which is about stock still to come).
    pub fn moves_stock(self) -> bool {
        self != EventType::PurchaseOrder
    }

    /// Whether `quantity` obeys the sign rule of this type.
    pub fn quantity_sign_ok(self, quantity: Decimal) -> bool {
        match self {
            EventType::Sale | EventType::Return | EventType::Receipt | EventType::Waste => {
                quantity > Decimal::ZERO
            }
            EventType::Adjustment => !quantity.is_zero(),
            EventType::StockCount | EventType::PurchaseOrder => quantity >= Decimal::ZERO,
        }
    }

    /// The sign rule in words, for error messages.
    pub fn sign_rule(self) -> &'static str {
        match self {
            EventType::Sale | EventType::Return | EventType::Receipt | EventType::Waste => "> 0",
            EventType::Adjustment => "!= 0",
            EventType::StockCount | EventType::PurchaseOrder => ">= 0",
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
            "purchase_order" => EventType::PurchaseOrder,
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
    /// `schema_version` 1 (docs/contract.md §1a).
    Canonical,
    /// The original producer's one-line flat sale (docs/contract.md §1b).
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
    /// How a sale or return was paid (`Cash`, `Card`…), when the till says.
    pub payment_method: Option<Cow<'a, str>>,
    /// What kind of customer it was (`Regular`, `Member`…), when the till says.
    pub client_type: Option<Cow<'a, str>>,
    /// The purchase order a purchase order event places or amends, or a receipt fulfils.
    pub order_id: Option<Cow<'a, str>>,
    /// When a purchase order's delivery is promised.
    pub expected_at: Option<DateTime<Utc>>,
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
            payment_method: own(self.payment_method),
            client_type: own(self.client_type),
            order_id: own(self.order_id),
            expected_at: self.expected_at,
        }
    }

    /// A 64-bit hash of everything the event says (not of how it was spelled), so that a resent
    /// event is recognised as an exact duplicate and the same `event_id` with other content is not.
    /// The payment method and client type are left out: they describe the sale, not the stock,
    /// and an event silver holds from before they were read must still be recognised when resent.
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
                    let (mantissa, scale) = normalized(v);
                    b.push(1);
                    b.extend_from_slice(&mantissa.to_le_bytes());
                    b.extend_from_slice(&scale.to_le_bytes());
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
        // the purchase-order fields only where present: events without them keep the
        // fingerprints silver stored before they existed
        if self.order_id.is_some() || self.expected_at.is_some() {
            os(&mut b, self.order_id.as_deref());
            b.extend_from_slice(
                &self
                    .expected_at
                    .map_or(i64::MIN, |t| t.timestamp_micros())
                    .to_le_bytes(),
            );
        }
        xxhash_rust::xxh3::xxh3_64(&b)
    }

    /// Writes the canonical JSON form (docs/contract.md §1a) of this event, without a newline.
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
        out.push(b']');
        if let Some(p) = &self.payment_method {
            out.extend_from_slice(b",\"payment_method\":");
            write_json_str(out, p);
        }
        if let Some(c) = &self.client_type {
            out.extend_from_slice(b",\"client_type\":");
            write_json_str(out, c);
        }
        if let Some(o) = &self.order_id {
            out.extend_from_slice(b",\"order_id\":");
            write_json_str(out, o);
        }
        if let Some(t) = self.expected_at {
            out.extend_from_slice(b",\"expected_at\":\"");
            write_rfc3339(out, t);
            out.push(b'"');
        }
        out.push(b'}');
    }

    /// The canonical JSON form as a string.
    pub fn to_canonical_json(&self) -> String {
        let mut v = Vec::with_capacity(256);
        self.write_canonical(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Writes a JSON string literal with the escapes JSON requires.
///
/// Runs for every string of every record the simulator writes: the bytes that need no escape
/// (nearly all of them) are found eight at a time and copied in one piece.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = first_to_escape(bytes);
    while i < bytes.len() {
        let b = bytes[i];
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => {
                i += 1;
                continue;
            }
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
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The mantissa and scale of `d` without trailing zeros (and zero as `(0, 0)`): what
/// `Decimal::normalize` gives, computed in 64 bits for a mantissa that fits them (every
/// realistic quantity and price) instead of by 96-bit division.
pub fn normalized(d: Decimal) -> (i128, u32) {
    let (mantissa, scale) = (d.mantissa(), d.scale());
    match i64::try_from(mantissa) {
        Ok(0) => (0, 0),
        Ok(mut m) => {
            let mut s = scale;
            while s > 0 && m % 10 == 0 {
                m /= 10;
                s -= 1;
            }
            (i128::from(m), s)
        }
        Err(_) => {
            let n = d.normalize();
            (n.mantissa(), n.scale())
        }
    }
}

/// `d` written with `to` decimals, as `rescale(to)` writes it: a value with no more decimals
/// is its mantissa times a power of ten, done in 128 bits instead of 96-bit arithmetic (a zero
/// comes out unsigned).
pub fn rescaled(d: Decimal, to: u32) -> Decimal {
    let direct = to
        .checked_sub(d.scale())
        .and_then(|up| 10i128.checked_pow(up))
        .and_then(|p| d.mantissa().checked_mul(p))
        .and_then(|m| Decimal::try_from_i128_with_scale(m, to).ok());
    direct.unwrap_or_else(|| {
        let mut d = d;
        d.rescale(to);
        d
    })
}

/// Where the first byte that JSON needs escaped (`"`, `\\`, a control character) is, or the
/// length if there is none. Eight bytes are checked at once: a word has such a byte exactly
/// when one of the classic "has a zero byte" / "has a byte less than n" tests fires on it, and
/// its first flagged byte is the first such byte in it ([`escape_mask`]). A tail shorter than a
/// word is checked as the last eight bytes, overlapping the word before (whose bytes are clean).
pub fn first_to_escape(bytes: &[u8]) -> usize {
    let first = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        let m = escape_mask(u64::from_le_bytes(word));
        (m != 0).then(|| at + (m.trailing_zeros() / 8) as usize)
    };
    let len = bytes.len();
    let mut at = 0;
    while at + 8 <= len {
        if let Some(i) = first(at) {
            return i;
        }
        at += 8;
    }
    if at == len {
        len
    } else if len >= 8 {
        first(len - 8).unwrap_or(len)
    } else {
        bytes
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
            .unwrap_or(len)
    }
}

/// The bytes of a little-endian word that JSON escapes in a string (`"`, `\\`, below 0x20), as
/// the high bit of each such byte. The lowest flagged byte is always such a byte and none lies
/// below it (a flag above the first may be false: the subtraction borrows upwards), so
/// `trailing_zeros() / 8` is the position of the first.
pub fn escape_mask(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    control | has_zero(x ^ (ONES * u64::from(b'"'))) | has_zero(x ^ (ONES * u64::from(b'\\')))
}

/// Writes a decimal as a JSON number with no exponent and no needless trailing zeros.
///
/// This runs for every quantity and price the simulator emits, where going through `Display`
/// was an eighth of its time: a mantissa that fits 64 bits (every realistic one) is written
/// from its last digit backwards into one buffer, point and sign included, and appended in one
/// piece.
pub fn write_decimal(out: &mut Vec<u8>, d: Decimal) {
    let m = d.mantissa();
    let Ok(mut a) = u64::try_from(m.unsigned_abs()) else {
        return write_wide_decimal(out, d);
    };
    if a == 0 {
        out.push(b'0');
        return;
    }
    // trailing zeros of the fraction are dropped, as `normalize` would
    let mut scale = d.scale();
    while scale > 0 && a.is_multiple_of(10) {
        a /= 10;
        scale -= 1;
    }
    // a sign, 20 digits, a point and up to 28 digits of fraction: under 64
    let mut buf = [0u8; 64];
    let mut i = buf.len();
    if scale > 0 {
        for _ in 0..scale {
            i -= 1;
            buf[i] = b'0' + (a % 10) as u8;
            a /= 10;
        }
        i -= 1;
        buf[i] = b'.';
    }
    loop {
        if a >= 10 {
            let pair = (a % 100) as usize * 2;
            i -= 2;
            buf[i] = DIGIT_PAIRS[pair];
            buf[i + 1] = DIGIT_PAIRS[pair + 1];
            a /= 100;
            if a == 0 {
                // `a` was 10..=99: no leading zero
                break;
            }
        } else {
            i -= 1;
            buf[i] = b'0' + a as u8;
            break;
        }
    }
    if m < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    out.extend_from_slice(&buf[i..]);
}

/// "00", "01", … "99".
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// [`write_decimal`] for a mantissa wider than 64 bits.
#[cold]
fn write_wide_decimal(out: &mut Vec<u8>, d: Decimal) {
    let mut buf = [0u8; 40];
    let start = write_digits(&mut buf, d.mantissa().unsigned_abs());
    let mut end = buf.len();
    let mut scale = d.scale() as usize;
    while scale > 0 && buf[end - 1] == b'0' {
        end -= 1;
        scale -= 1;
    }
    let digits = &buf[start..end];
    if d.mantissa() < 0 {
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
    // the calendar fields once, from the plain date and time (a `DateTime`'s own getters each
    // convert from UTC to UTC first)
    let naive = t.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let year = date.year();
    let nanos = time.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // far years and leap seconds: chrono's own text
        out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        return;
    }
    // "YYYY-MM-DDTHH:MM:SS" and at most ".nnnnnnnnnZ": 30 bytes
    let mut text = *b"0000-00-00T00:00:00.000000000Z";
    let mut two = |at: usize, v: u32| {
        text[at] = b'0' + (v / 10) as u8;
        text[at + 1] = b'0' + (v % 10) as u8;
    };
    let y = year as u32;
    two(0, y / 100);
    two(2, y % 100);
    two(5, date.month());
    two(8, date.day());
    two(11, time.hour());
    two(14, time.minute());
    two(17, time.second());
    let (digits, mut value) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (3, nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        (6, nanos / 1_000)
    } else {
        (9, nanos)
    };
    let end = if digits == 0 {
        19
    } else {
        for slot in text[20..20 + digits].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        20 + digits
    };
    text[end] = b'Z';
    out.extend_from_slice(&text[..=end]);
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

    /// `write_decimal` writes `d` as `Display` writes it normalised.
    fn assert_written_as_display(d: Decimal) {
        let mut v = Vec::new();
        write_decimal(&mut v, d);
        assert_eq!(
            String::from_utf8_lossy(&v),
            d.normalize().to_string(),
            "{}e-{}",
            d.mantissa(),
            d.scale()
        );
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
            assert_written_as_display(Decimal::new(m, scale));
        }
        // either side of the 64-bit fast path, and a fraction longer than the digits
        for m in [
            i128::from(u64::MAX) - 1,
            i128::from(u64::MAX),
            i128::from(u64::MAX) + 1,
            -i128::from(u64::MAX),
            -i128::from(u64::MAX) - 1,
            10_i128.pow(19),
            1,
        ] {
            for scale in [0, 1, 5, 19, 20, 28] {
                assert_written_as_display(Decimal::from_i128_with_scale(m, scale));
            }
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

    proptest::proptest! {
        #[test]
        fn any_decimal_normalizes_as_rust_decimal_does(
            m in proptest::prelude::any::<i128>(),
            small in proptest::prelude::any::<i64>(),
            zeros in 0u32..20,
            scale in 0u32..=28,
        ) {
            let m = m % 79_228_162_514_264_337_593_543_950_335; // 96 bits
            // small mantissas with trailing zeros, as quantities and prices are
            let padded = i128::from(small / 10i64.pow(zeros.min(18))) * 10i128.pow(zeros);
            let padded = padded % 79_228_162_514_264_337_593_543_950_335;
            for m in [m, i128::from(small), padded, 0] {
                for sign in [1, -1] {
                    let d = Decimal::from_i128_with_scale(sign * m, scale);
                    let n = d.normalize();
                    proptest::prop_assert_eq!(normalized(d), (n.mantissa(), n.scale()));
                }
            }
        }
    }

    proptest::proptest! {
        /// Any instant from year 1 to beyond 9999, at any precision, reads as chrono writes it.
        #[test]
        fn any_instant_is_written_as_chrono_writes_it(
            secs in -62_135_596_800i64..260_000_000_000,
            nanos in 0u32..1_000_000_000,
            precision in 0u32..4,
        ) {
            let nanos = match precision {
                0 => 0,
                1 => nanos / 1_000_000 * 1_000_000,
                2 => nanos / 1_000 * 1_000,
                _ => nanos,
            };
            if let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) {
                let mut v = Vec::new();
                write_rfc3339(&mut v, t);
                proptest::prop_assert_eq!(
                    String::from_utf8_lossy(&v),
                    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                );
            }
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

    proptest::proptest! {
        /// Any string, with escapes anywhere (in or across the eight-byte words the scan
        /// checks at once), is written as JSON that reads back as itself.
        #[test]
        fn any_string_is_written_as_json_that_reads_back(
            s in "(.|[\"\\\\\u{0}-\u{1f}\u{7f}-\u{a0}é])*",
            prefix in 0usize..9,
        ) {
            let s = format!("{}{s}", "a".repeat(prefix));
            let mut v = Vec::new();
            write_json_str(&mut v, &s);
            let back: String = serde_json::from_slice(&v)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn the_escape_scan_finds_the_first_escape_in_any_word() {
        for len in 0..20 {
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = special;
                    assert_eq!(first_to_escape(&bytes), at, "{len} {at} {special}");
                    // the first is found whatever follows it in the word
                    for then in at + 1..len {
                        for second in [b'"', b'\\', 0x01, 0x00, 0x21] {
                            let mut two = bytes.clone();
                            two[then] = second;
                            assert_eq!(first_to_escape(&two), at, "{len} {at} {then}");
                        }
                    }
                }
                // bytes that look close to the special ones but need no escape
                let near: Vec<u8> = (0..len)
                    .map(|i| [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0xa2][i % 7])
                    .collect();
                assert_eq!(first_to_escape(&near), len);
            }
        }
        let plain = "é€😀 a long plain tail";
        assert_eq!(first_to_escape(plain.as_bytes()), plain.len());
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
