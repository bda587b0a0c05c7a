//! Any bytes: the parser never panics; what it accepts survives a round trip through the
//! canonical form unchanged, and what it rejects names at least one reason. The one-pass
//! reading of plain events, as the record stands and inside a JSON string, gives the general
//! parser's answer whenever it answers (compared by `Debug` text, so a decimal's scale counts).
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
    if let Ok(text) = std::str::from_utf8(data) {
        let general = format!("{:?}", stocklake_event::parse_event_thorough(text));
        assert_eq!(format!("{:?}", stocklake_event::parse_event_str(text)), general);
        let mut quoted = Vec::new();
        stocklake_event::write_json_str(&mut quoted, text);
        let inside = std::str::from_utf8(&quoted[1..quoted.len() - 1]).expect("UTF-8");
        if let Some(event) = stocklake_event::parse_event_escaped(inside) {
            let read = stocklake_event::parse_event_thorough(text)
                .unwrap_or_else(|r| panic!("read inside a JSON string, refused as it is: {r:?}"));
            assert_eq!(format!("{event:?}"), format!("{read:?}"));
        }
    }
});
