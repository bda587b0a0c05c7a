//! Any HTTP body, either content type, gzip or not: decoding and splitting never panic, never
//! exceed the limit, and every record is a slice of the decoded body, in order.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
#[path = "../../crates/ingest/src/body.rs"]
#[allow(dead_code)]
mod body;
use body::{BodyKind, decode_body, split_body};

// the first byte chooses: bit 0 a JSON body (else NDJSON), bit 1 gzip; the rest is the body
fuzz_target!(|input: &[u8]| {
    let Some((&flags, data)) = input.split_first() else {
        return;
    };
    let (json, gzip) = (flags & 1 == 1, flags & 2 == 2);
    let limit = 1 << 16;
    let encoding = if gzip { Some("gzip") } else { None };
    let Ok(body) = decode_body(encoding, Bytes::copy_from_slice(data), limit) else {
        return;
    };
    assert!(body.len() <= limit);
    let kind = if json { BodyKind::Json } else { BodyKind::Ndjson };
    if let Ok(records) = split_body(kind, &body, 1 << 12) {
        assert!(records.len() <= 1 << 12);
        let mut from = 0usize;
        for r in &records {
            // a record is a window of the body, after the previous one
            let start = r.as_ptr() as usize - body.as_ptr() as usize;
            assert!(r.is_empty() || (start >= from && start + r.len() <= body.len()));
            if !r.is_empty() {
                from = start + r.len();
            }
        }
    }
});
