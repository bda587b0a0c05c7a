//! Any bytes as a bronze object: `gunzip` never panics, and it reads exactly what flate2's own
//! gzip reader reads, or fails where that reader fails.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
#[path = "../../crates/storage/src/gzip.rs"]
mod gzip;

fuzz_target!(|data: &[u8]| {
    let mut theirs = Vec::new();
    let theirs = flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut theirs)
        .map(|_| theirs);
    match (gzip::gunzip(data), theirs) {
        (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs),
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!(
            "gunzip {:?}, reader {:?}",
            ours.map(|o| o.len()),
            theirs.map(|t| t.len())
        ),
    }
});
