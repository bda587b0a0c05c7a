//! The one-pass reading of a valid canonical event straight from its bytes.
//!
//! Almost every record is a canonical event that breaks no rule, written the plain way: no
//! escapes in its strings, no exponents in its numbers, no repeated fields. Such a record is
//! read here in one pass over its bytes, every value taken and checked where it stands.
//! Anything else — an escape, a rule broken, JSON this reader does not follow — makes it answer
//! `None`, and the record is read by the general parser, which names every rule it breaks.
//! Whenever this reader answers, its event is the general parser's, to the scale of every
//! decimal (property tests in `tests/properties.rs` and below).
//!
//! The same reader also takes a record as it stands inside a JSON string (a bronze line's
//! `payload`), escapes not undone: there its quotes are `\"` and its line breaks `\n`, and a
//! string of the record with no escapes of its own is the same text on both layers, so the
//! record need not be unescaped first.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::model::{Event, EventType, Form, Line, escape_mask};
use crate::parse::{
    CANONICAL_FIELDS, LINE_FIELDS, MAX_ID_CHARS, MAX_LINES, MAX_RECORD_BYTES, parse_time,
};

/// The event `text` holds, when it is a plain valid canonical event; `None` otherwise.
pub(crate) fn parse_plain(text: &str) -> Option<Event<'_>> {
    Cursor::<false>::new(text).whole()
}

/// The event held by a JSON string whose text between the quotes is `escaped` (escapes not
/// undone), when the record is a plain valid canonical event; `None` otherwise, and the record
/// is to be unescaped and read by [`crate::parse_event`].
pub fn parse_event_escaped(escaped: &str) -> Option<Event<'_>> {
    // unescaping never lengthens a text: within the limit here, within it unescaped
    if escaped.len() > MAX_RECORD_BYTES {
        return None;
    }
    Cursor::<true>::new(escaped).whole()
}

/// Top-level fields, one bit each, to refuse a repeated one: `1 << ` the key's place in
/// `EVENT_KEYS`.
const SCHEMA_VERSION: u16 = 1;
const EVENT_ID: u16 = 1 << 1;
const EVENT_TYPE: u16 = 1 << 2;
const EVENT_TIME: u16 = 1 << 3;
const STORE_ID: u16 = 1 << 4;
const REGISTER_ID: u16 = 1 << 5;
const TRANSACTION_ID: u16 = 1 << 6;
const LINES: u16 = 1 << 7;
const PAYMENT_METHOD: u16 = 1 << 8;
const CLIENT_TYPE: u16 = 1 << 9;
const ORDER_ID: u16 = 1 << 10;
const EXPECTED_AT: u16 = 1 << 11;
const REQUIRED: u16 = EVENT_ID | EVENT_TYPE | EVENT_TIME | STORE_ID | LINES;

/// The top-level keys read; any other key is kept in bronze and ignored downstream.
static EVENT_KEYS: Keys<12> = Keys::new(CANONICAL_FIELDS);

/// A line's keys.
static LINE_KEYS: Keys<4> = Keys::new(LINE_FIELDS);

/// The keys an object's reader knows, by name and as they stand in a record, quotes included.
struct Keys<const N: usize> {
    names: [&'static str; N],
    plain: [Quoted; N],
    escaped: [Quoted; N],
}

impl<const N: usize> Keys<N> {
    const fn new(names: [&'static str; N]) -> Keys<N> {
        let mut plain = [Quoted::EMPTY; N];
        let mut escaped = [Quoted::EMPTY; N];
        let mut i = 0;
        while i < N {
            plain[i] = Quoted::new(names[i], false);
            escaped[i] = Quoted::new(names[i], true);
            i += 1;
        }
        Keys {
            names,
            plain,
            escaped,
        }
    }
}

/// A key between its quotes (`\"` in an escaped record): `len` bytes, padded with zeros.
struct Quoted {
    bytes: [u8; 24],
    len: usize,
}

impl Quoted {
    const EMPTY: Quoted = Quoted {
        bytes: [0; 24],
        len: 0,
    };

    const fn new(key: &str, escaped: bool) -> Quoted {
        let quote: &[u8] = if escaped { b"\\\"" } else { b"\"" };
        Quoted::EMPTY.then(quote).then(key.as_bytes()).then(quote)
    }

    const fn then(mut self, bytes: &[u8]) -> Quoted {
        let mut i = 0;
        while i < bytes.len() {
            self.bytes[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// Whether `b[at..]` starts with the key. Compared a word at a time, the last word
    /// overlapping the one before; a key shorter than a word is compared under a mask, and
    /// only where a word is there to read (a key is always followed by more of its record).
    fn is_at(&self, b: &[u8], at: usize) -> bool {
        let n = self.len;
        let (Some(text), Some(key)) = (b.get(at..at + n.max(8)), self.bytes.get(..n.max(8))) else {
            return false;
        };
        let word = |s: &[u8], i: usize| s.get(i..i + 8).and_then(|w| w.try_into().ok());
        let same = |i: usize| {
            word(text, i).map(u64::from_le_bytes) == word(key, i).map(u64::from_le_bytes)
        };
        if n < 8 {
            let mask = u64::MAX >> (64 - 8 * n);
            let (Some(t), Some(k)) = (word(text, 0), word(key, 0)) else {
                return false;
            };
            return (u64::from_le_bytes(t) ^ u64::from_le_bytes(k)) & mask == 0;
        }
        let mut i = 0;
        while i + 8 < n {
            if !same(i) {
                return false;
            }
            i += 8;
        }
        same(n - 8)
    }
}

/// A line's fields, one bit each: `1 << ` the key's place in `LINE_KEYS`.
const SKU: u16 = 1;
const QUANTITY: u16 = 1 << 1;
const UNIT_PRICE: u16 = 1 << 2;
const DISCOUNT: u16 = 1 << 3;

/// The general parser's limits: quantities below 10^12, money below 10^11.
const QUANTITY_LIMIT: u64 = crate::parse::QUANTITY_LIMIT as u64;
const MONEY_LIMIT: u64 = crate::parse::MONEY_LIMIT as u64;

/// A reader of the record's bytes; `ESCAPED` when they are the text of a JSON string holding
/// the record.
struct Cursor<'a, const ESCAPED: bool> {
    text: &'a str,
    b: &'a [u8],
    at: usize,
}

impl<'a, const ESCAPED: bool> Cursor<'a, ESCAPED> {
    fn new(text: &'a str) -> Self {
        Cursor {
            text,
            b: text.as_bytes(),
            at: 0,
        }
    }

    /// The event, when it is all the text holds but whitespace.
    fn whole(mut self) -> Option<Event<'a>> {
        let event = self.event()?;
        self.ws();
        (self.at == self.b.len()).then_some(event)
    }

    fn ws(&mut self) {
        loop {
            match (self.b.get(self.at), ESCAPED) {
                (Some(b' '), _) | (Some(b'\t' | b'\n' | b'\r'), false) => self.at += 1,
                (Some(b'\\'), true)
                    if matches!(self.b.get(self.at + 1), Some(b't' | b'n' | b'r')) =>
                {
                    self.at += 2
                }
                _ => return,
            }
        }
    }

    /// Skips whitespace, then takes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.ws();
        if self.b.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace, then takes a quote (`\"` in an escaped record) if it is next.
    fn quote(&mut self) -> bool {
        self.ws();
        match self.quote_at(self.at) {
            Some(end) => {
                self.at = end;
                true
            }
            None => false,
        }
    }

    /// A string with no escapes (and so no control characters), without its quotes.
    fn string(&mut self) -> Option<&'a str> {
        if !self.quote() {
            return None;
        }
        let b = self.b;
        let start = self.at;
        // the first byte a JSON string escapes, eight bytes at a time (see `escape_mask`); the
        // shared `first_to_escape` is not inlined here, and a call per string cost 3% of refine
        let mut at = start;
        let end = loop {
            match b.get(at..at + 8) {
                Some(chunk) => {
                    let m = escape_mask(u64::from_le_bytes(chunk.try_into().ok()?));
                    if m != 0 {
                        break at + (m.trailing_zeros() / 8) as usize;
                    }
                    at += 8;
                }
                None => {
                    break at
                        + b[at..]
                            .iter()
                            .position(|&c| c < 0x20 || c == b'"' || c == b'\\')?;
                }
            }
        };
        // the string ends at that byte if it is a quote, escaped as `\"` in an escaped record;
        // any other is an escape or a control character, for the general parser
        self.at = self.quote_at(end)?;
        // both ends are ASCII, so the slice lies on character boundaries
        self.text.get(start..end)
    }

    /// The literal `null`, taken if it is next.
    fn null(&mut self) -> bool {
        self.ws();
        if self.b.get(self.at..self.at + 4) == Some(b"null".as_slice()) {
            self.at += 4;
            true
        } else {
            false
        }
    }

    /// An identifier: 1 to `MAX_ID_CHARS` printable ASCII characters.
    fn id(&mut self) -> Option<&'a str> {
        let s = self.string()?;
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_CHARS
            && s.bytes().all(|b| (0x20..0x7f).contains(&b));
        ok.then_some(s)
    }

    /// An identifier or `null`.
    fn optional_id(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            Some(None)
        } else {
            self.id().map(Some)
        }
    }

    /// A JSON number without an exponent and with at most 18 digits: its sign, and its value
    /// as a mantissa and a scale as written (zero as `(0, 0)`). Trailing zeros are kept: a
    /// value with more decimals than it is stored with is for the general parser.
    fn number(&mut self) -> Option<(bool, u64, u32)> {
        self.ws();
        let b = self.b;
        let mut i = self.at;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let mut m: u64 = 0;
        let mut digits = 0u32;
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                if b.get(i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
            }
            Some(d) if d.is_ascii_digit() => {
                while let Some(d @ b'0'..=b'9') = b.get(i) {
                    m = m * 10 + u64::from(d - b'0');
                    digits += 1;
                    if digits > 18 {
                        return None;
                    }
                    i += 1;
                }
            }
            _ => return None,
        }
        let mut scale = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            while let Some(d @ b'0'..=b'9') = b.get(i) {
                m = m * 10 + u64::from(d - b'0');
                digits += 1;
                scale += 1;
                if digits > 18 {
                    return None;
                }
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            return None;
        }
        self.at = i;
        if m == 0 {
            return Some((negative, 0, 0));
        }
        Some((negative, m, scale))
    }

    /// A non-negative amount below 10^12 with at most four decimals, at scale 4, or `null`.
    fn money(&mut self) -> Option<Option<Decimal>> {
        if self.null() {
            return Some(None);
        }
        match self.number()? {
            (false, m, scale) => at_scale(m, false, scale, 4, MONEY_LIMIT).map(Some),
            _ => None,
        }
    }

    /// Takes a quote (`\"` in an escaped record) at `at`, answering where it ends.
    fn quote_at(&self, at: usize) -> Option<usize> {
        let b = self.b;
        if !ESCAPED {
            (b.get(at) == Some(&b'"')).then_some(at + 1)
        } else {
            (b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'"')).then_some(at + 2)
        }
    }

    /// The next key, as its place in `keys` (`keys.len()` for a key not among them). The key
    /// at `keys[hint]` is compared first, where it stands and a word at a time: producers
    /// write the keys in one order, and reading each key as a string and then matching it cost
    /// a twentieth of refine.
    fn key<const N: usize>(&mut self, keys: &Keys<N>, hint: usize) -> Option<usize> {
        self.ws();
        let quoted = if ESCAPED { &keys.escaped } else { &keys.plain };
        if let Some(k) = quoted.get(hint)
            && k.is_at(self.b, self.at)
        {
            self.at += k.len;
            return Some(hint);
        }
        let key = self.string()?;
        Some(keys.names.iter().position(|k| *k == key).unwrap_or(N))
    }

    /// An object whose known keys are `keys` (in the order producers write them): `field`
    /// reads the value of a known key, given as its bit (`1 <<` its place in `keys`); the value
    /// of a key not among them is passed over. Answers the bits of the keys met; a key met
    /// twice refuses the object.
    fn object<const N: usize>(
        &mut self,
        keys: &Keys<N>,
        mut field: impl FnMut(&mut Self, u16) -> Option<()>,
    ) -> Option<u16> {
        if !self.eat(b'{') {
            return None;
        }
        let mut seen = 0u16;
        if self.eat(b'}') {
            return Some(seen);
        }
        let mut next = 0;
        loop {
            let key = self.key(keys, next)?;
            if !self.eat(b':') {
                return None;
            }
            if key < N {
                let bit = 1u16 << key;
                if seen & bit != 0 {
                    return None;
                }
                field(self, bit)?;
                seen |= bit;
                next = key + 1;
            } else {
                self.skip(0)?;
            }
            if self.eat(b'}') {
                return Some(seen);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn line(&mut self) -> Option<(Line<'a>, bool)> {
        let (mut sku, mut quantity) = (None, None);
        let (mut unit_price, mut discount) = (None, None);
        let mut negative = false;
        self.object(&LINE_KEYS, |c, bit| {
            match bit {
                SKU => sku = Some(c.id()?),
                QUANTITY => {
                    let (neg, m, scale) = c.number()?;
                    // a negative zero, or a quantity out of range or too precise, is for
                    // the general parser to explain
                    if neg && m == 0 {
                        return None;
                    }
                    negative = neg;
                    quantity = Some(at_scale(m, neg, scale, 3, QUANTITY_LIMIT)?);
                }
                UNIT_PRICE => unit_price = c.money()?,
                DISCOUNT => discount = c.money()?,
                _ => return None,
            }
            Some(())
        })?;
        let quantity = quantity?;
        // an amount out of range is for the general parser to explain
        if let Some(price) = unit_price
            && quantity.abs() * price >= Decimal::from(MONEY_LIMIT)
        {
            return None;
        }
        let line = Line {
            sku: Cow::Borrowed(sku?),
            quantity,
            unit_price,
            discount,
        };
        Some((line, negative))
    }

    /// The lines, and whether each quantity is negative (its sign rule depends on the event
    /// type, which may come after them).
    fn lines(&mut self) -> Option<(Vec<Line<'a>>, Vec<bool>)> {
        if !self.eat(b'[') {
            return None;
        }
        // a third of records hold more than 8 lines, a ninth more than 16 (stock counts)
        let mut lines = Vec::with_capacity(16);
        let mut negative = Vec::with_capacity(16);
        loop {
            let (line, neg) = self.line()?;
            lines.push(line);
            negative.push(neg);
            if lines.len() > MAX_LINES {
                return None;
            }
            if self.eat(b']') {
                return Some((lines, negative));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn event(&mut self) -> Option<Event<'a>> {
        let (mut event_id, mut event_type, mut event_time) = (None, None, None);
        let (mut store_id, mut register_id, mut transaction_id) = (None, None, None);
        let (mut payment_method, mut client_type) = (None, None);
        let (mut order_id, mut expected_at) = (None, None);
        let mut lines = None;
        let seen = self.object(&EVENT_KEYS, |c, bit| {
            match bit {
                SCHEMA_VERSION => {
                    // only `1` itself, as the general parser reads it
                    if !c.null() {
                        c.ws();
                        let start = c.at;
                        c.number()?;
                        if &c.b[start..c.at] != b"1" {
                            return None;
                        }
                    }
                }
                EVENT_ID => event_id = Some(c.id()?),
                EVENT_TYPE => event_type = Some(c.string()?.parse::<EventType>().ok()?),
                EVENT_TIME => event_time = Some(c.time()?),
                STORE_ID => store_id = Some(c.id()?),
                REGISTER_ID => register_id = c.optional_id()?,
                TRANSACTION_ID => transaction_id = c.optional_id()?,
                LINES => lines = Some(c.lines()?),
                PAYMENT_METHOD => payment_method = c.optional_id()?,
                CLIENT_TYPE => client_type = c.optional_id()?,
                ORDER_ID => order_id = c.optional_id()?,
                EXPECTED_AT => {
                    if !c.null() {
                        expected_at = Some(c.time()?);
                    }
                }
                _ => return None,
            }
            Some(())
        })?;
        if seen & REQUIRED != REQUIRED {
            return None;
        }
        let event_type: EventType = event_type?;
        // a purchase order without its order or its promised time is for the general parser
        // to explain
        if event_type == EventType::PurchaseOrder && (order_id.is_none() || expected_at.is_none()) {
            return None;
        }
        let (lines, negative) = lines?;
        let signs_ok = lines
            .iter()
            .zip(&negative)
            .all(|(l, &neg)| match event_type {
                EventType::Adjustment => !l.quantity.is_zero(),
                EventType::StockCount | EventType::PurchaseOrder => !neg,
                _ => !neg && !l.quantity.is_zero(),
            });
        if !signs_ok {
            return None;
        }
        Some(Event {
            event_id: Cow::Borrowed(event_id?),
            event_type,
            event_time: event_time?,
            store_id: Cow::Borrowed(store_id?),
            register_id: register_id.map(Cow::Borrowed),
            transaction_id: transaction_id.map(Cow::Borrowed),
            lines,
            form: Form::Canonical,
            product_name: None,
            category: None,
            payment_method: payment_method.map(Cow::Borrowed),
            client_type: client_type.map(Cow::Borrowed),
            order_id: order_id.map(Cow::Borrowed),
            expected_at,
        })
    }

    /// Passes over any JSON value without escapes in its strings, nested at most
    /// `MAX_DEPTH` deep.
    fn skip(&mut self, depth: usize) -> Option<()> {
        const MAX_DEPTH: usize = 32;
        self.ws();
        match *self.b.get(self.at)? {
            b'"' | b'\\' => self.string().map(drop),
            b'{' | b'[' if depth < MAX_DEPTH => {
                let close = if self.b[self.at] == b'{' { b'}' } else { b']' };
                self.at += 1;
                if self.eat(close) {
                    return Some(());
                }
                loop {
                    if close == b'}' {
                        self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                    }
                    self.skip(depth + 1)?;
                    if self.eat(close) {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b't' | b'f' | b'n' => {
                let word: &[u8] = match self.b[self.at] {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                self.b[self.at..]
                    .starts_with(word)
                    .then(|| self.at += word.len())
            }
            _ => {
                // a number: the general grammar, exponent included
                let b = self.b;
                let mut i = self.at;
                let digits = |i: &mut usize| {
                    let from = *i;
                    while b.get(*i).is_some_and(u8::is_ascii_digit) {
                        *i += 1;
                    }
                    *i > from
                };
                if b.get(i) == Some(&b'-') {
                    i += 1;
                }
                let first = i;
                if !digits(&mut i) || (b[first] == b'0' && i > first + 1) {
                    return None;
                }
                if b.get(i) == Some(&b'.') {
                    i += 1;
                    if !digits(&mut i) {
                        return None;
                    }
                }
                if let Some(b'e' | b'E') = b.get(i) {
                    i += 1;
                    if let Some(b'+' | b'-') = b.get(i) {
                        i += 1;
                    }
                    if !digits(&mut i) {
                        return None;
                    }
                }
                self.at = i;
                Some(())
            }
        }
    }

    fn time(&mut self) -> Option<DateTime<Utc>> {
        parse_time(self.string()?)
    }
}

/// `±mantissa × 10^-scale` written with `to` decimals (at most 4), when it is below `limit`
/// (at most 10^12) and has at most `to` decimals; `None` otherwise.
fn at_scale(mantissa: u64, negative: bool, scale: u32, to: u32, limit: u64) -> Option<Decimal> {
    const POW10: [u64; 5] = [1, 10, 100, 1_000, 10_000];
    let up = POW10.get(to.checked_sub(scale)? as usize)?;
    if mantissa >= limit * POW10.get(scale as usize)? {
        return None;
    }
    // below 10^16: an i64
    let m = i64::try_from(mantissa * up).ok()?;
    Decimal::try_new(if negative { -m } else { m }, to).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_event_thorough;

    const PLAIN: &str = r#"{"schema_version":1,"event_id":"7d1c0c5e-3f0e-4b43-9a53-3f0a3c1f6d11","event_type":"sale","event_time":"2026-11-26T10:15:03.123Z","store_id":"ST-0042","register_id":"POS-07","transaction_id":"ST-0042-20261126-000123","lines":[{"sku":"SKU-000123","quantity":2,"unit_price":1.99,"discount":0.20},{"sku":"SKU-004711","quantity":0.532,"unit_price":3.49}]}"#;

    /// The text of the JSON string that holds `text`, escapes not undone.
    fn escaped(text: &str) -> String {
        let mut quoted = Vec::new();
        crate::write_json_str(&mut quoted, text);
        String::from_utf8(quoted[1..quoted.len() - 1].to_vec()).expect("UTF-8")
    }

    /// Whether `text` is read here (as it is and inside a JSON string alike), with what the
    /// general parser reads.
    fn read_here(text: &str) -> bool {
        let inside = escaped(text);
        let both = [parse_plain(text), parse_event_escaped(&inside)];
        assert_eq!(format!("{:?}", both[0]), format!("{:?}", both[1]), "{text}");
        match parse_plain(text) {
            Some(e) => {
                let general = parse_event_thorough(text).expect("the general parser accepts it");
                assert_eq!(format!("{e:?}"), format!("{general:?}"), "{text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_valid_events_are_read_here_as_the_general_parser_reads_them() {
        assert!(read_here(PLAIN));
        let e = parse_plain(PLAIN).expect("plain");
        assert_eq!(e.lines[0].discount.expect("discount").to_string(), "0.2000");
        assert_eq!(e.lines[1].quantity.to_string(), "0.532");
        for text in [
            PLAIN.replace(r#""schema_version":1,"#, ""),
            PLAIN.replace(r#""register_id":"POS-07""#, r#""register_id":null"#),
            PLAIN
                .replace("{", " {\n ")
                .replace("\":", "\" : ")
                .replace(',', " ,\t"),
            PLAIN.replace(
                r#""lines""#,
                r#""extra":{"kept":["in bronze",1.5e3,true,null]},"lines""#,
            ),
            PLAIN.replace(r#""quantity":2,"#, r#""quantity":2.000,"note":"x","#),
            PLAIN
                .replace("sale", "adjustment")
                .replace(r#""quantity":2"#, r#""quantity":-2"#),
            PLAIN
                .replace("sale", "stock_count")
                .replace(r#""quantity":2"#, r#""quantity":0"#),
            // keys in another order than the contract's, or a prefix of a known key
            PLAIN.replace(
                r#"{"sku":"SKU-000123","quantity":2,"unit_price":1.99,"discount":0.20}"#,
                r#"{"discount":0.20,"unit_price":1.99,"quantity":2,"sku":"SKU-000123"}"#,
            ),
            format!(
                r#"{{"lines":{},"store_id":"ST-9","event_time":"2026-11-26T10:15:03Z","event_type":"receipt","event_id":"e-1"}}"#,
                &PLAIN[PLAIN.find('[').expect("lines")..PLAIN.len() - 1]
            ),
            PLAIN.replace(r#""sku":"#, r#""sk":"x","skus":1,"sku":"#),
        ] {
            assert!(read_here(&text), "{text}");
        }
    }

    #[test]
    fn a_known_key_is_found_where_it_stands_and_nowhere_else() {
        let names = EVENT_KEYS.names.iter().chain(LINE_KEYS.names.iter());
        let quoted = EVENT_KEYS.plain.iter().chain(&EVENT_KEYS.escaped);
        let quoted = quoted.chain(&LINE_KEYS.plain).chain(&LINE_KEYS.escaped);
        let names: Vec<&str> = names.copied().collect();
        assert_eq!(quoted.clone().count(), 2 * names.len());
        for q in quoted {
            let key = &q.bytes[..q.len];
            let text = [b"  ", key, b":1}"].concat();
            assert!(q.is_at(&text, 2), "{}", String::from_utf8_lossy(key));
            assert!(!q.is_at(&text, 1) && !q.is_at(&text, 3));
            // any byte of it changed
            for i in 0..key.len() {
                let mut other = text.clone();
                other[2 + i] ^= 0x20;
                assert!(!q.is_at(&other, 2), "{}", String::from_utf8_lossy(&other));
            }
            // a longer key that starts with it
            let longer = [&key[..key.len() - 1], b"s", &key[key.len() - 1..], b":1}"].concat();
            assert!(!q.is_at(&longer, 0));
        }
        let plain = |name: &str| format!("\"{name}\"");
        for (name, q) in names
            .iter()
            .zip(EVENT_KEYS.plain.iter().chain(&LINE_KEYS.plain))
        {
            assert_eq!(&q.bytes[..q.len], plain(name).as_bytes());
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_parser() {
        for (what, from, to) in [
            ("an escape in an id", "ST-0042", r"ST-\u0030042"),
            ("an escape in a key", r#""store_id""#, r#""store\u005fid""#),
            (
                "an escape in an unknown field",
                r#""lines""#,
                r#""x":"\n","lines""#,
            ),
            ("a non-ASCII id", "ST-0042", "ST-é"),
            ("an exponent", r#""quantity":2"#, r#""quantity":2e0"#),
            ("a negative zero", r#""quantity":2"#, r#""quantity":-0"#),
            (
                "19 digits",
                r#""quantity":2"#,
                r#""quantity":1234567890.123456789"#,
            ),
            (
                "a repeated field",
                r#""store_id":"ST-0042""#,
                r#""store_id":"ST-0042","store_id":"ST-1""#,
            ),
            (
                "a repeated line field",
                r#""quantity":2,"#,
                r#""quantity":2,"quantity":3,"#,
            ),
            (
                "too many decimals",
                r#""quantity":2"#,
                r#""quantity":2.0001"#,
            ),
            (
                "a negative price",
                r#""unit_price":1.99"#,
                r#""unit_price":-1.99"#,
            ),
            (
                "a sale of less than nothing",
                r#""quantity":2"#,
                r#""quantity":-2"#,
            ),
            (
                "a price too precise",
                r#""unit_price":1.99"#,
                r#""unit_price":1.99001"#,
            ),
            (
                "a quantity too large",
                r#""quantity":2"#,
                r#""quantity":1000000000000"#,
            ),
            ("no lines", r#""lines":["#, r#""lines":[],"x":["#),
            (
                "another schema",
                r#""schema_version":1"#,
                r#""schema_version":1.0"#,
            ),
            (
                "a missing event id",
                r#""event_id":"7d1c0c5e-3f0e-4b43-9a53-3f0a3c1f6d11","#,
                "",
            ),
            ("a bad time", "10:15:03.123Z", "10:15:03.123"),
            ("an unknown type", r#""sale""#, r#""sell""#),
            ("a leading zero", r#""quantity":2"#, r#""quantity":02"#),
            (
                "nested too deep",
                r#""lines""#,
                &format!(r#""x":{}1{},"lines""#, "[".repeat(40), "]".repeat(40)),
            ),
        ] {
            let text = PLAIN.replacen(from, to, 1);
            assert_ne!(text, PLAIN, "{what}");
            assert!(!read_here(&text), "{what}: {text}");
        }
        for text in [
            format!("{PLAIN}x"),
            format!("{PLAIN}{{}}"),
            PLAIN[..PLAIN.len() - 1].to_string(),
        ] {
            assert!(!read_here(&text), "{text}");
        }
        // inside a JSON string: a bare quote or control character, an unknown escape
        for inside in [
            escaped(PLAIN).replacen(r#"\"ST-0042\""#, r#"\"ST-"0042\""#, 1),
            escaped(PLAIN).replacen(r#"\"ST-0042\""#, "\\\"ST-\t0042\\\"", 1),
            escaped(PLAIN).replacen(r#"\"ST-0042\""#, r#"\"ST-\\0042\""#, 1),
            escaped(PLAIN).replacen(r#"\"ST-0042\""#, r#"\"ST-\u00410042\""#, 1),
            escaped(PLAIN).replacen(',', r#"\f,"#, 1),
            format!("{}\\", escaped(PLAIN)),
        ] {
            assert_ne!(inside, escaped(PLAIN));
            assert!(parse_event_escaped(&inside).is_none(), "{inside}");
        }
        assert!(parse_event_escaped(&escaped(PLAIN)).is_some());
    }
}
