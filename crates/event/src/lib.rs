//! # stocklake-event
//!
//! The POS event contract of stocklake (docs/contract.md §1), as pure code with no I/O:
//!
//! - [`parse_event`] turns the raw bytes of one record — canonical (`schema_version` 1) or the
//!   legacy flat form of the original Python producer — into a typed [`Event`] with exact
//!   decimals, or a [`Rejection`] that lists *every* rule the record breaks as a stable
//!   [`ReasonCode`].
//! - [`Event::fingerprint`] tells an exact resend from a conflicting reuse of an `event_id`.
//! - [`Event::write_canonical`] writes the canonical form (the simulator and tests use it).
//!
//! ```
//! let raw = br#"{"event_id":"e1","event_type":"sale","event_time":"2026-11-26T10:15:03.123Z",
//!   "store_id":"ST-0042","lines":[{"sku":"SKU-1","quantity":0.532,"unit_price":3.49}]}"#;
//! let event = stocklake_event::parse_event(raw).unwrap();
//! assert_eq!(event.lines[0].quantity.to_string(), "0.532");
//!
//! let bad = br#"{"event_type":"sale","lines":[]}"#;
//! let rejection = stocklake_event::parse_event(bad).unwrap_err();
//! let codes: Vec<&str> = rejection.codes().iter().map(|c| c.as_str()).collect();
//! assert_eq!(codes, ["missing_event_id", "missing_event_time", "missing_store_id", "empty_lines"]);
//! ```

mod fast;
mod model;
mod parse;
mod reason;

pub use fast::parse_event_escaped;
pub use model::{
    Event, EventType, Form, Line, escape_mask, first_to_escape, rescaled, write_decimal,
    write_json_str, write_rfc3339,
};
pub use parse::{
    MAX_ID_CHARS, MAX_LINES, MAX_RECORD_BYTES, MAX_TEXT_CHARS, MONEY_LIMIT, QUANTITY_LIMIT,
    parse_event, parse_event_str, parse_event_thorough, parse_json_number, parse_time,
    text_problem,
};
pub use reason::{ReasonCode, Rejection, Violation};

use chrono::{DateTime, Duration, Utc};

/// How far from its arrival an event's time may lie before it is quarantined as
/// `event_time_out_of_range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// How far after arrival (clock skew on tills).
    pub max_future: Duration,
    /// How far before arrival (late uploads, back-filled history).
    pub max_past: Duration,
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow {
            max_future: Duration::hours(24),
            max_past: Duration::days(3650),
        }
    }
}

impl TimeWindow {
    /// `None` when `event_time` is acceptable for a record that arrived at `arrived_at`.
    pub fn check(&self, event_time: DateTime<Utc>, arrived_at: DateTime<Utc>) -> Option<Violation> {
        if event_time > arrived_at + self.max_future {
            Some(Violation::new(
                ReasonCode::EventTimeOutOfRange,
                "event_time",
                format!(
                    "{} is more than {} h after arrival at {}",
                    event_time.to_rfc3339(),
                    self.max_future.num_hours(),
                    arrived_at.to_rfc3339()
                ),
            ))
        } else if event_time < arrived_at - self.max_past {
            Some(Violation::new(
                ReasonCode::EventTimeOutOfRange,
                "event_time",
                format!(
                    "{} is more than {} days before arrival at {}",
                    event_time.to_rfc3339(),
                    self.max_past.num_days(),
                    arrived_at.to_rfc3339()
                ),
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests;
