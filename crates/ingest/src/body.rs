//! Splitting an HTTP body into records (docs/contract.md §4), as a pure function.
//!
//! - `application/x-ndjson`: one record per line, each kept byte for byte (a trailing `\r` is a
//!   line ending, not data; empty lines are not records). A line that is not JSON is still a
//!   record: it is kept in bronze and quarantined by refine.
//! - `application/json`: the body must parse as a whole, or nothing is accepted. An array gives
//!   one record per element (its exact text); anything else is one record.
//! - `Content-Encoding: gzip` bodies are decompressed first, within the same size limit.
//! - No other content type, and no missing one: `text/plain`, a form or no `Content-Type` at
//!   all are what a page on any other site may send a browser's way without asking first (no
//!   CORS preflight), so accepting them would let any web page post events to a stocklake
//!   its visitor can reach.
//! - At most a configured number of records per body: a body of a million one-byte lines is
//!   refused whole (413) before it costs more than its own bytes.

use bytes::Bytes;
use serde_json::value::RawValue;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// 400: `application/json` that does not parse.
    InvalidJson(String),
    /// 413: larger than the limit (after decompression).
    TooLarge { limit: usize },
    /// 415: a content type that is not NDJSON or JSON.
    UnsupportedMediaType(String),
    /// 415: an unsupported or corrupt content encoding.
    BadEncoding(String),
    /// 413: more records than one request may carry.
    TooManyRecords { limit: usize },
}

impl BodyError {
    pub fn status(&self) -> u16 {
        match self {
            BodyError::InvalidJson(_) => 400,
            BodyError::TooLarge { .. } | BodyError::TooManyRecords { .. } => 413,
            BodyError::UnsupportedMediaType(_) | BodyError::BadEncoding(_) => 415,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidJson(_) => "invalid_json",
            BodyError::TooLarge { .. } => "payload_too_large",
            BodyError::TooManyRecords { .. } => "too_many_records",
            BodyError::UnsupportedMediaType(_) => "unsupported_media_type",
            BodyError::BadEncoding(_) => "unsupported_content_encoding",
        }
    }

    pub fn message(&self) -> String {
        match self {
            BodyError::InvalidJson(e) => {
                format!("the body is not valid JSON ({e}); nothing was accepted")
            }
            BodyError::TooLarge { limit } => format!("the body is larger than {limit} bytes"),
            BodyError::UnsupportedMediaType(t) if t.is_empty() => {
                "a Content-Type header is required: application/x-ndjson or application/json"
                    .to_string()
            }
            BodyError::UnsupportedMediaType(t) => format!(
                "content type {t:?} is not supported: send application/x-ndjson or application/json"
            ),
            BodyError::BadEncoding(e) => e.clone(),
            BodyError::TooManyRecords { limit } => format!(
                "the body holds more than {limit} records; send them in several requests (nothing was accepted)"
            ),
        }
    }
}

/// The kind of body, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Ndjson,
    Json,
}

/// Reads a `Content-Type` header value: `application/x-ndjson` or `application/json`, with any
/// parameters (`; charset=utf-8`); anything else, or none, is refused.
pub fn body_kind(content_type: Option<&str>) -> Result<BodyKind, BodyError> {
    let Some(ct) = content_type else {
        return Err(BodyError::UnsupportedMediaType(String::new()));
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-ndjson" => Ok(BodyKind::Ndjson),
        "application/json" => Ok(BodyKind::Json),
        _ => Err(BodyError::UnsupportedMediaType(ct.to_string())),
    }
}

/// Decompresses a body per its `Content-Encoding`, refusing more than `limit` bytes out.
pub fn decode_body(encoding: Option<&str>, body: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    match enc.as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > limit {
                Err(BodyError::TooLarge { limit })
            } else {
                Ok(body)
            }
        }
        Some("gzip") | Some("x-gzip") => {
            use std::io::Read;
            let mut out = Vec::new();
            let mut reader = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| BodyError::BadEncoding(format!("corrupt gzip body: {e}")))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(BodyError::BadEncoding(format!(
            "content encoding {other:?} is not supported: send identity or gzip"
        ))),
    }
}

/// Splits a body into records, each a slice of the body (no copy); more than `max_records`
/// is an error, found before the rest is split.
pub fn split_body(
    kind: BodyKind,
    body: &Bytes,
    max_records: usize,
) -> Result<Vec<Bytes>, BodyError> {
    let records = match kind {
        BodyKind::Ndjson => split_lines(body, max_records),
        BodyKind::Json => split_json(body, max_records)?,
    };
    if records.len() > max_records {
        return Err(BodyError::TooManyRecords { limit: max_records });
    }
    Ok(records)
}

/// The lines of an NDJSON body, at most `max + 1` of them (one more tells that there are
/// too many).
fn split_lines(body: &Bytes, max: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    let n = body.len();
    while start < n {
        let end = memchr_newline(&body[start..]).map_or(n, |p| start + p);
        let mut line_end = end;
        if line_end > start && body[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        if line_end > start {
            out.push(body.slice(start..line_end));
            if out.len() > max {
                break;
            }
        }
        start = end + 1;
    }
    out
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// The elements of a JSON array as raw text, refusing more than `max` while reading (a 16 MB
/// array of one-character elements is not collected first and counted after).
struct Elements<'a>(Vec<&'a RawValue>);

struct ElementsUpTo(usize);

impl<'de> serde::de::DeserializeSeed<'de> for ElementsUpTo {
    type Value = Elements<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ElementsUpTo {
    type Value = Elements<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an array of at most {} records", self.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if out.len() == self.0 {
                return Err(serde::de::Error::custom(TOO_MANY));
            }
            out.push(item);
        }
        Ok(Elements(out))
    }
}

const TOO_MANY: &str = "stocklake: too many records";

fn split_json(body: &Bytes, max: usize) -> Result<Vec<Bytes>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.starts_with('[') {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(trimmed);
        let items = ElementsUpTo(max)
            .deserialize(&mut de)
            .and_then(|items| de.end().map(|()| items))
            .map_err(|e| {
                if e.to_string().starts_with(TOO_MANY) {
                    BodyError::TooManyRecords { limit: max }
                } else {
                    BodyError::InvalidJson(e.to_string())
                }
            })?
            .0;
        let base = text.as_ptr() as usize;
        Ok(items
            .into_iter()
            .map(|raw| {
                // each element's exact text, as a slice of the body
                let s = raw.get();
                let off = s.as_ptr() as usize - base;
                body.slice(off..off + s.len())
            })
            .collect())
    } else {
        let _: &RawValue =
            serde_json::from_str(trimmed).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
        let off = trimmed.as_ptr() as usize - text.as_ptr() as usize;
        Ok(vec![body.slice(off..off + trimmed.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn ndjson_lines_are_kept_byte_for_byte() {
        let body = b(b"{\"a\":1}\r\nnot json \xff\n\n  {\"b\" : 2}  \n{\"c\":3}");
        let recs = split_body(BodyKind::Ndjson, &body, 100).expect("split");
        assert_eq!(
            recs,
            vec![
                b(b"{\"a\":1}"),
                b(b"not json \xff"),
                b(b"  {\"b\" : 2}  "),
                b(b"{\"c\":3}")
            ]
        );
    }

    #[test]
    fn json_arrays_and_objects() {
        let body = b(b" [ {\"a\": 1},\n {\"b\":[1, 2]} , 3 ] ");
        let recs = split_body(BodyKind::Json, &body, 100).expect("split");
        assert_eq!(recs, vec![b(b"{\"a\": 1}"), b(b"{\"b\":[1, 2]}"), b(b"3")]);
        let body = b(b"\n{\"event_id\": \"x\"}\n");
        assert_eq!(
            split_body(BodyKind::Json, &body, 100).expect("split"),
            vec![b(b"{\"event_id\": \"x\"}")]
        );
        assert!(matches!(
            split_body(BodyKind::Json, &b(b"{\"a\":1}\n{\"b\":2}"), 100),
            Err(BodyError::InvalidJson(_))
        ));
        assert!(matches!(
            split_body(BodyKind::Json, &b(b"[{\"a\":1},"), 100),
            Err(BodyError::InvalidJson(_))
        ));
    }

    #[test]
    fn more_records_than_allowed_are_refused_whole() {
        let lines = b(b"a\nb\n\nc\n");
        assert_eq!(
            split_body(BodyKind::Ndjson, &lines, 3).map(|r| r.len()),
            Ok(3)
        );
        assert_eq!(
            split_body(BodyKind::Ndjson, &lines, 2),
            Err(BodyError::TooManyRecords { limit: 2 })
        );
        let array = b(b"[1, {\"a\": [2, 3]}, \"x\"]");
        assert_eq!(
            split_body(BodyKind::Json, &array, 3).map(|r| r.len()),
            Ok(3)
        );
        let e = split_body(BodyKind::Json, &array, 2).expect_err("too many");
        assert_eq!((e.status(), e.code()), (413, "too_many_records"));
        // a million one-byte lines in two megabytes
        let flood = Bytes::from("x\n".repeat(1_000_000));
        assert_eq!(
            split_body(BodyKind::Ndjson, &flood, 100_000),
            Err(BodyError::TooManyRecords { limit: 100_000 })
        );
    }

    #[test]
    fn content_types() {
        for refused in [
            None,
            Some(""),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonl"),
        ] {
            assert_eq!(
                body_kind(refused).map_err(|e| e.status()),
                Err(415),
                "{refused:?}"
            );
        }
        assert_eq!(
            body_kind(Some("application/x-ndjson")),
            Ok(BodyKind::Ndjson)
        );
        assert_eq!(
            body_kind(Some("application/json; charset=utf-8")),
            Ok(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("text/csv")).map_err(|e| e.status()),
            Err(415)
        );
    }

    #[test]
    fn gzip_bodies_respect_the_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&vec![b'a'; 10_000]).expect("write");
        let packed = Bytes::from(gz.finish().expect("finish"));
        assert_eq!(
            decode_body(Some("gzip"), packed.clone(), 20_000).map(|b| b.len()),
            Ok(10_000)
        );
        assert_eq!(
            decode_body(Some("gzip"), packed, 5_000),
            Err(BodyError::TooLarge { limit: 5_000 })
        );
        assert!(decode_body(Some("gzip"), b(b"not gzip"), 100).is_err());
        assert!(decode_body(Some("br"), b(b"x"), 100).is_err());
        assert_eq!(
            decode_body(None, b(b"12345"), 4),
            Err(BodyError::TooLarge { limit: 4 })
        );
    }

    proptest! {
        #[test]
        fn splitting_never_panics_and_loses_no_byte(body in prop::collection::vec(any::<u8>(), 0..400)) {
            let body = Bytes::from(body);
            let recs = split_body(BodyKind::Ndjson, &body, 1000).expect("ndjson never fails");
            let expected: Vec<&[u8]> = body
                .split(|c| *c == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.is_empty())
                .collect();
            let got: Vec<&[u8]> = recs.iter().map(|r| r.as_ref()).collect();
            prop_assert_eq!(got, expected);
            let _ = split_body(BodyKind::Json, &body, 1000);
        }
    }
}
