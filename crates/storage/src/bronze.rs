//! The bronze layout (docs/contract.md §5): names, line format, and the sequence arithmetic that makes
//! the object names the checkpoint of ingest.
//!
//! An object holds consecutive records of one source partition (a Kinesis shard, or one HTTP
//! ingest instance) and is named after them, Hive style, so that any engine can read bronze with
//! its path columns:
//!
//! ```text
//! pos_events/ingest_date=2026-11-26/source=kinesis/stream=supermarket-sales-stream/partition=shardId-000000000001/4959…001-4959…977.ndjson.gz
//! pos_events/ingest_date=2026-11-26/source=http/partition=h20261126t101503z0001/1-250.ndjson.gz
//! ```
//!
//! Sequence numbers are digits only, so `FIRST-LAST` always splits back. Each line is one record:
//! `{"source":…,"partition":…,"sequence":…,"arrived_at":…,"payload":"<the record as received>"}`;
//! a record that is not valid UTF-8 carries `payload_base64` instead of `payload`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;
use stocklake_event::{escape_mask, first_to_escape, write_json_str};

/// The bronze dataset's directory under the bronze root.
pub const DATASET: &str = "pos_events";
const SUFFIX: &str = ".ndjson.gz";

/// Where records came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Kinesis { stream: String },
    Http,
}

impl Source {
    /// The directories this source's objects live under.
    pub fn dirs(&self) -> String {
        match self {
            Source::Kinesis { stream } => format!("source=kinesis/stream={stream}"),
            Source::Http => "source=http".into(),
        }
    }

    /// The form in bronze lines: `kinesis:STREAM` or `http`.
    pub fn label(&self) -> String {
        match self {
            Source::Kinesis { stream } => format!("kinesis:{stream}"),
            Source::Http => "http".into(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Compares two decimal sequence numbers of any length as numbers.
pub fn cmp_seq(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether a sequence number is a plain decimal of at most 129 digits.
pub fn valid_seq(s: &str) -> bool {
    !s.is_empty() && s.len() <= 129 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Adds one to a decimal sequence number.
pub fn next_seq(s: &str) -> String {
    let mut digits: Vec<u8> = s.bytes().collect();
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, b'1');
            break;
        }
        i -= 1;
        if digits[i] == b'9' {
            digits[i] = b'0';
        } else {
            digits[i] += 1;
            break;
        }
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// What a bronze object's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub ingest_date: NaiveDate,
    pub source: Source,
    pub partition: String,
    pub first_seq: String,
    pub last_seq: String,
}

impl ObjectName {
    /// The object's path relative to the bronze root.
    pub fn path(&self) -> String {
        format!(
            "{DATASET}/ingest_date={}/{}/partition={}/{}-{}{SUFFIX}",
            self.ingest_date.format("%Y-%m-%d"),
            self.source.dirs(),
            self.partition,
            self.first_seq,
            self.last_seq
        )
    }

    /// Parses a path relative to the bronze root; `None` for anything else (temporary files,
    /// objects of other tools).
    pub fn parse(path: &str) -> Option<ObjectName> {
        let rest = path.strip_prefix(DATASET)?.strip_prefix("/ingest_date=")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (date, source, partition, file) = match parts.as_slice() {
            [date, "source=http", partition, file] => (*date, Source::Http, *partition, *file),
            [date, "source=kinesis", stream, partition, file] => {
                let stream = stream.strip_prefix("stream=")?;
                if stream.is_empty() {
                    return None;
                }
                (
                    *date,
                    Source::Kinesis {
                        stream: stream.to_string(),
                    },
                    *partition,
                    *file,
                )
            }
            _ => return None,
        };
        let ingest_date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let partition = partition.strip_prefix("partition=")?.to_string();
        let (first_seq, last_seq) = file.strip_suffix(SUFFIX)?.split_once('-')?;
        if !valid_partition(&partition)
            || !valid_seq(first_seq)
            || !valid_seq(last_seq)
            || cmp_seq(first_seq, last_seq) == Ordering::Greater
        {
            return None;
        }
        Some(ObjectName {
            ingest_date,
            source,
            partition,
            first_seq: first_seq.to_string(),
            last_seq: last_seq.to_string(),
        })
    }

    /// The (source, partition) stream this object belongs to.
    pub fn stream_key(&self) -> (Source, String) {
        (self.source.clone(), self.partition.clone())
    }
}

/// Whether a partition or instance id is safe in an object name.
pub fn valid_partition(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 256
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Appends one bronze line (with its newline) for a record.
pub fn write_line(
    out: &mut Vec<u8>,
    source_label: &str,
    partition: &str,
    sequence: &str,
    arrived_at: DateTime<Utc>,
    payload: &[u8],
) {
    out.extend_from_slice(b"{\"source\":");
    write_json_str(out, source_label);
    out.extend_from_slice(b",\"partition\":");
    write_json_str(out, partition);
    out.extend_from_slice(b",\"sequence\":\"");
    out.extend_from_slice(sequence.as_bytes());
    out.extend_from_slice(b"\",\"arrived_at\":\"");
    out.extend_from_slice(
        arrived_at
            .to_rfc3339_opts(SecondsFormat::Micros, true)
            .as_bytes(),
    );
    match std::str::from_utf8(payload) {
        Ok(text) => {
            out.extend_from_slice(b"\",\"payload\":");
            write_json_str(out, text);
        }
        Err(_) => {
            out.extend_from_slice(b"\",\"payload_base64\":\"");
            base64_encode(out, payload);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b"}\n");
}

/// One bronze line, read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BronzeLine<'a> {
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    #[serde(borrow)]
    pub partition: Cow<'a, str>,
    #[serde(borrow)]
    pub sequence: Cow<'a, str>,
    pub arrived_at: DateTime<Utc>,
    #[serde(borrow, default)]
    pub payload: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub payload_base64: Option<Cow<'a, str>>,
}

impl BronzeLine<'_> {
    /// The record's bytes exactly as received.
    pub fn payload_bytes(&self) -> Result<Cow<'_, [u8]>, String> {
        match (&self.payload, &self.payload_base64) {
            (Some(p), _) => Ok(Cow::Borrowed(p.as_bytes())),
            (None, Some(b)) => base64_decode(b).map(Cow::Owned),
            (None, None) => Err("bronze line without payload".into()),
        }
    }
}

/// Parses one bronze line.
///
/// Lines in the layout [`write_line`] produces (all of them, unless another writer made the
/// object) are read by a direct scan of that layout; anything else goes through `serde_json`,
/// which gives the same answer for every line (see the property tests) but reads the payload,
/// the bulk of each line, twice.
pub fn parse_line(line: &[u8]) -> Result<BronzeLine<'_>, String> {
    match parse_written(line) {
        Some(l) => Ok(l),
        None => serde_json::from_slice(line).map_err(|e| e.to_string()),
    }
}

/// A bronze line whose text payload may be left as written, for a reader that can take a
/// record inside its JSON string (`stocklake_event::parse_event_escaped`) and so need not
/// unescape it.
#[derive(Debug, Clone)]
pub struct LazyLine<'a> {
    /// The line; its `payload` is `None` while it is left as written.
    pub line: BronzeLine<'a>,
    /// The payload's JSON string as written, quotes included.
    written: Option<&'a str>,
    raw: &'a [u8],
}

impl<'a> LazyLine<'a> {
    /// The text between the quotes of the payload's JSON string, escapes not undone, when the
    /// payload was left as written.
    pub fn escaped_payload(&self) -> Option<&'a str> {
        self.written.and_then(|w| w.get(1..w.len() - 1))
    }

    /// The record's bytes exactly as received (as [`BronzeLine::payload_bytes`]).
    pub fn payload_bytes(&self) -> Result<Cow<'a, [u8]>, String> {
        let Some(written) = self.written else {
            return self
                .line
                .payload_bytes()
                .map(|p| Cow::Owned(p.into_owned()));
        };
        match json_string(written) {
            Some((Cow::Borrowed(p), "")) => Ok(Cow::Borrowed(p.as_bytes())),
            Some((Cow::Owned(p), "")) => Ok(Cow::Owned(p.into_bytes())),
            // not a JSON string that ends where the line's layout says, or one with escapes
            // left to the JSON parser: read the whole line as `parse_line` would
            _ => {
                let line: BronzeLine<'_> =
                    serde_json::from_slice(self.raw).map_err(|e| e.to_string())?;
                line.payload_bytes().map(|p| Cow::Owned(p.into_owned()))
            }
        }
    }
}

/// Parses one bronze line as [`parse_line`] does, leaving a text payload as written when the
/// line has the layout [`write_line`] writes.
pub fn parse_line_lazy(line: &[u8]) -> Result<LazyLine<'_>, String> {
    match written_layout(line) {
        Some((header, Some(written))) => Ok(LazyLine {
            line: header,
            written: Some(written),
            raw: line,
        }),
        _ => parse_line(line).map(|l| LazyLine {
            line: l,
            written: None,
            raw: line,
        }),
    }
}

/// Reads a line laid out exactly as [`write_line`] writes it; `None` for anything else.
fn parse_written(line: &[u8]) -> Option<BronzeLine<'_>> {
    let (mut header, written) = written_layout(line)?;
    if let Some(written) = written {
        let (payload, rest) = json_string(written)?;
        if !rest.is_empty() {
            return None;
        }
        header.payload = Some(payload);
    }
    Some(header)
}

/// The fields of a line in [`write_line`]'s layout but a text payload, which is given as its
/// JSON string as written (quotes included, not checked); `None` for any other layout.
fn written_layout(line: &[u8]) -> Option<(BronzeLine<'_>, Option<&str>)> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("{\"source\":")?;
    let (source, rest) = json_string(rest)?;
    let rest = rest.strip_prefix(",\"partition\":")?;
    let (partition, rest) = json_string(rest)?;
    let rest = rest.strip_prefix(",\"sequence\":")?;
    let (sequence, rest) = json_string(rest)?;
    let rest = rest.strip_prefix(",\"arrived_at\":")?;
    let (arrived_at, rest) = json_string(rest)?;
    let arrived_at = parse_instant(&arrived_at)?;
    let mut header = BronzeLine {
        source,
        partition,
        sequence,
        arrived_at,
        payload: None,
        payload_base64: None,
    };
    if let Some(r) = rest.strip_prefix(",\"payload\":") {
        // the payload is the last field: its string runs to the line's closing brace
        let written = r
            .trim_end_matches([' ', '\t', '\r', '\n'])
            .strip_suffix('}')?;
        let ok = written.len() >= 2 && written.starts_with('"') && written.ends_with('"');
        return ok.then_some((header, Some(written)));
    }
    let r = rest.strip_prefix(",\"payload_base64\":")?;
    let (p, r) = json_string(r)?;
    if r.trim_end_matches([' ', '\t', '\r', '\n']) != "}" {
        return None;
    }
    header.payload_base64 = Some(p);
    Some((header, None))
}

/// Reads a JSON string at the start of `s`: its value and what follows it. Borrows when the
/// string has no escapes; `None` for anything a JSON parser would refuse, and for `\u` escapes
/// of surrogates (left to the JSON parser).
fn json_string(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let body = s.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = first_to_escape(bytes);
    match bytes.get(i) {
        Some(b'"') => return Some((Cow::Borrowed(&body[..i]), &body[i + 1..])),
        Some(b'\\') => {}
        _ => return None,
    }
    // escapes (every quote of an escaped JSON record): the output is never longer than the
    // input, so each word is copied whole and the output advanced past its clean bytes only
    let mut out = vec![0u8; bytes.len()];
    out[..i].copy_from_slice(&bytes[..i]);
    let mut o = i;
    loop {
        if let Some(w) = word_at(bytes, i) {
            // one 8-byte store (through an array, so that no call to memcpy is left to the
            // inliner); `o + 8 <= i + 8 <= len` always holds
            if let Some(dst) = out.get_mut(o..o + 8)
                && let Ok(dst) = <&mut [u8; 8]>::try_from(dst)
            {
                *dst = w.to_le_bytes();
            }
            let m = escape_mask(w);
            if m == 0 {
                i += 8;
                o += 8;
                continue;
            }
            let k = (m.trailing_zeros() / 8) as usize;
            i += k;
            o += k;
        }
        let b = *bytes.get(i)?;
        if b == b'"' {
            out.truncate(o);
            let text = String::from_utf8(out).ok()?;
            return Some((Cow::Owned(text), &body[i + 1..]));
        }
        if b != b'\\' {
            if b < 0x20 {
                return None;
            }
            out[o] = b;
            i += 1;
            o += 1;
            continue;
        }
        let esc = *bytes.get(i + 1)?;
        i += 2;
        let plain = match esc {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = body.get(i..i + 4)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                // a surrogate pair is rare in a record: the JSON parser reads it
                let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                let utf8 = c.encode_utf8(&mut [0; 4]).len();
                c.encode_utf8(&mut out[o..o + utf8]);
                o += utf8;
                i += 4;
                continue;
            }
            _ => return None,
        };
        out[o] = plain;
        o += 1;
    }
}

/// The eight bytes at `i` as a little-endian word, if there are eight.
fn word_at(bytes: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Reads an instant written as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (how [`write_line`] writes it)
/// directly; any other form through chrono's RFC 3339 parser.
fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let fixed = b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z';
    if !fixed {
        return s.parse().ok();
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let direct = || {
        let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let time = chrono::NaiveTime::from_hms_micro_opt(
            num(11..13)?,
            num(14..16)?,
            num(17..19)?,
            num(20..26)?,
        )?;
        Some(date.and_time(time).and_utc())
    };
    // anything unusual (a leap second, say) is chrono's to read
    direct().or_else(|| s.parse().ok())
}

fn base64_encode(out: &mut Vec<u8>, data: &[u8]) {
    use base64::Engine;
    let mut s = String::new();
    base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
    out.extend_from_slice(s.as_bytes());
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("invalid payload_base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(cmp_seq("9", "10"), Ordering::Less);
        assert_eq!(cmp_seq("010", "10"), Ordering::Equal);
        let a = "49590338271490256608559692538361571095921575989136588898";
        let b = "49590338271490256608559692540925702759324208523137515618";
        assert_eq!(cmp_seq(a, b), Ordering::Less);
        let long = "1".repeat(129);
        assert_eq!(cmp_seq(&long, a), Ordering::Greater);
        assert_eq!(next_seq("199"), "200");
        assert_eq!(next_seq("999"), "1000");
        assert_eq!(
            next_seq(a),
            "49590338271490256608559692538361571095921575989136588899"
        );
    }

    #[test]
    fn object_names_round_trip() {
        let n = ObjectName {
            ingest_date: NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
            source: Source::Kinesis {
                stream: "supermarket-sales-stream".into(),
            },
            partition: "shardId-000000000001".into(),
            first_seq: "49590338271490256608559692538361571095921575989136588898".into(),
            last_seq: "49590338271490256608559692540925702759324208523137515618".into(),
        };
        let p = n.path();
        assert!(p.starts_with("pos_events/ingest_date=2026-11-26/source=kinesis/stream=supermarket-sales-stream/partition=shardId-000000000001/4959"));
        assert_eq!(ObjectName::parse(&p), Some(n));
        let h = ObjectName {
            ingest_date: NaiveDate::from_ymd_opt(2026, 1, 2).expect("date"),
            source: Source::Http,
            partition: "h1a2b".into(),
            first_seq: "1".into(),
            last_seq: "250".into(),
        };
        assert_eq!(ObjectName::parse(&h.path()), Some(h.clone()));
        assert_eq!(
            h.path(),
            "pos_events/ingest_date=2026-01-02/source=http/partition=h1a2b/1-250.ndjson.gz"
        );
        for bad in [
            "pos_events/ingest_date=2026-11-26/source=http/partition=p/1-2.ndjson",
            "pos_events/ingest_date=2026-13-26/source=http/partition=p/1-2.ndjson.gz",
            "pos_events/ingest_date=2026-11-26/source=http/partition=p/5-2.ndjson.gz",
            "pos_events/ingest_date=2026-11-26/source=ftp/partition=p/1-2.ndjson.gz",
            "pos_events/ingest_date=2026-11-26/source=http/partition=p/1-2-3.ndjson.gz",
            "pos_events/ingest_date=2026-11-26/source=kinesis/partition=p/1-2.ndjson.gz",
            "pos_events/ingest_date=2026-11-26/source=http/p/1-2.ndjson.gz",
            "other/ingest_date=2026-11-26/source=http/partition=p/1-2.ndjson.gz",
        ] {
            assert_eq!(ObjectName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_keep_payloads_byte_for_byte() {
        let t = DateTime::parse_from_rfc3339("2026-11-26T10:15:03.123456Z")
            .expect("time")
            .with_timezone(&Utc);
        for payload in [
            br#"{"event_id":"a","x":"\u00e9 \"quoted\"\n"}"#.to_vec(),
            b"not json at all\t\x01".to_vec(),
            vec![0xff, 0xfe, b'{', 0x80],
            Vec::new(),
        ] {
            let mut out = Vec::new();
            write_line(&mut out, "kinesis:s", "shardId-0", "42", t, &payload);
            assert_eq!(out.last(), Some(&b'\n'));
            assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
            let line = parse_line(&out[..out.len() - 1]).expect("parse");
            assert_eq!(
                line.payload_bytes().expect("payload").as_ref(),
                payload.as_slice()
            );
            assert_eq!(line.sequence, "42");
            assert_eq!(line.arrived_at, t);
        }
    }

    proptest! {
        #[test]
        fn any_payload_round_trips(payload in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            write_line(&mut out, "http", "h1", "7", Utc::now(), &payload);
            let line = parse_line(&out[..out.len() - 1]).expect("parse");
            let got = line.payload_bytes().expect("payload").into_owned();
            prop_assert_eq!(got, payload);
        }

        #[test]
        fn instants_read_directly_as_chrono_reads_them(
            micros in -62_000_000_000_000_000i64..250_000_000_000_000_000,
            cut in any::<prop::sample::Index>(),
            byte in 0x20u8..0x7f,
        ) {
            let t = DateTime::from_timestamp_micros(micros).expect("in range");
            let text = t.to_rfc3339_opts(SecondsFormat::Micros, true);
            prop_assert_eq!(parse_instant(&text), Some(t));
            let mut changed = text.into_bytes();
            let i = cut.index(changed.len());
            changed[i] = byte;
            let changed = String::from_utf8(changed).expect("ASCII");
            prop_assert_eq!(parse_instant(&changed), changed.parse::<DateTime<Utc>>().ok());
        }

        #[test]
        fn the_direct_scan_reads_what_the_json_parser_reads(
            source in "[a-z\\-\"\\\\]{0,8}",
            partition in "\\PC{0,8}",
            payload in "\\PC{0,80}|[\"\\\\\\n\\t\\u{1}\\u{7f}é😀{}:,]{0,40}",
            raw in prop::collection::vec(any::<u8>(), 0..40),
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let t = DateTime::from_timestamp_micros(1_764_151_200_123_456).expect("time");
            for p in [payload.as_bytes(), raw.as_slice()] {
                let mut out = Vec::new();
                write_line(&mut out, &source, &partition, "1234", t, p);
                let direct = parse_written(&out).expect("the writer's own layout");
                let json: BronzeLine<'_> = serde_json::from_slice(&out).expect("valid JSON");
                prop_assert_eq!(&direct, &json);
                let bytes = direct.payload_bytes().expect("payload");
                prop_assert_eq!(bytes.as_ref(), p);
                // left as written: the text of the payload's JSON string, which unescapes to it
                let lazy = parse_line_lazy(&out).expect("the writer's own layout");
                if let Some(escaped) = lazy.escaped_payload() {
                    let quoted = format!("\"{escaped}\"");
                    let text: String = serde_json::from_str(&quoted).expect("a JSON string");
                    prop_assert_eq!(text.as_bytes(), p);
                }
                let bytes = lazy.payload_bytes().expect("payload");
                prop_assert_eq!(bytes.as_ref(), p);
                // a changed byte: whatever the direct scan accepts, the JSON parser reads alike,
                // and a line read lazily gives what it gives read whole
                let i = cut.index(out.len());
                out[i] = byte;
                if let Some(direct) = parse_written(&out) {
                    let json: BronzeLine<'_> =
                        serde_json::from_slice(&out).expect("the JSON parser accepts it too");
                    prop_assert_eq!(direct, json);
                }
                let read = |l: &BronzeLine<'_>| {
                    (l.source.to_string(), l.partition.to_string(), l.sequence.to_string(), l.arrived_at)
                };
                let lazy = parse_line_lazy(&out)
                    .and_then(|l| Ok((read(&l.line), l.payload_bytes()?.into_owned())));
                let whole = parse_line(&out)
                    .and_then(|l| Ok((read(&l), l.payload_bytes()?.into_owned())));
                prop_assert_eq!(lazy.ok(), whole.ok());
            }
        }

        #[test]
        fn strings_unescape_as_the_json_parser_reads_them(
            text in "\\PC{0,60}|[\"\\\\/\\n\\t\\u{1}\\u{7f}é€😀ab]{0,40}",
            spelled in prop::collection::vec(0u8..3, 0..100),
            tail in "[,}\"a]{0,3}",
        ) {
            // each character written plainly, with its short escape, or as \uXXXX (characters
            // outside the basic plane always plainly)
            let mut encoded = String::from("\"");
            for (i, c) in text.chars().enumerate() {
                let how = spelled.get(i).copied().unwrap_or(0);
                match (c, how) {
                    ('"', _) => encoded.push_str("\\\""),
                    ('\\', _) => encoded.push_str("\\\\"),
                    (c, _) if (c as u32) < 0x20 => encoded.push_str(&format!("\\u{:04x}", c as u32)),
                    ('/', 1) => encoded.push_str("\\/"),
                    (c, 2) if (c as u32) < 0x10000 => encoded.push_str(&format!("\\u{:04X}", c as u32)),
                    (c, _) => encoded.push(c),
                }
            }
            encoded.push('"');
            let parsed: String = serde_json::from_str(&encoded).expect("valid JSON");
            prop_assert_eq!(&parsed, &text);
            let whole = format!("{encoded}{tail}");
            let (got, rest) = json_string(&whole).expect("read");
            prop_assert_eq!(got.as_ref(), text.as_str());
            prop_assert_eq!(rest, tail.as_str());
            // cut short anywhere: never read past the end
            for cut in 0..encoded.len() {
                if let Some(prefix) = encoded.get(..cut) {
                    prop_assert!(json_string(prefix).is_none(), "{:?}", prefix);
                }
            }
        }

        #[test]
        fn seq_order_matches_big_numbers(a in 0u128..u128::MAX, b in 0u128..u128::MAX) {
            prop_assert_eq!(cmp_seq(&a.to_string(), &b.to_string()), a.cmp(&b));
            prop_assert_eq!(next_seq(&a.to_string()), (a + 1).to_string());
        }
    }
}
