//! Any bytes: the parser never panics; what it accepts survives a round trip through the
//! canonical form unchanged, and what it rejects names at least one reason.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match stocklake_event::parse_event(data) {
        Ok(event) => {
            let mut canonical = Vec::new();
            event.write_canonical(&mut canonical);
            let again = stocklake_event::parse_event(&canonical)
                .unwrap_or_else(|r| panic!("canonical form rejected: {r:?}"));
            assert_eq!(event.event_id, again.event_id);
            assert_eq!(event.event_type, again.event_type);
            assert_eq!(event.event_time, again.event_time);
            assert_eq!(event.store_id, again.store_id);
            assert_eq!(event.lines, again.lines);
        }
        Err(rejection) => assert!(!rejection.codes().is_empty(), "a rejection without a reason"),
    }
});
