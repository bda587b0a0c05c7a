//! Reason codes: why a record cannot become a clean silver event.
//!
//! The codes are part of the public contract (quarantine rows, metrics, `stocklake status`):
//! never rename one, only add. `docs/reason-codes.md` lists them; a test keeps it in step.

use std::fmt;

macro_rules! reason_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident => $code:literal ),+ $(,)?) => {
        /// A stable, documented reason why a record was quarantined.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl ReasonCode {
            /// Every reason code, in documentation order.
            pub const ALL: &'static [ReasonCode] = &[ $( ReasonCode::$variant, )+ ];

            /// The stable snake_case code.
            pub const fn as_str(self) -> &'static str {
                match self { $( ReasonCode::$variant => $code, )+ }
            }

            /// One sentence that explains the code.
            pub fn description(self) -> &'static str {
                match self { $( ReasonCode::$variant => concat!($($doc),+).trim_ascii(), )+ }
            }

            /// Looks a code up by its string form.
            pub fn from_code(code: &str) -> Option<ReasonCode> {
                match code { $( $code => Some(ReasonCode::$variant), )+ _ => None }
            }
        }
    };
}

reason_codes! {
    /// The record is larger than 1 MiB, the Kinesis record limit.
    TooLarge => "too_large",
    /// The record is not valid UTF-8.
    NotUtf8 => "not_utf8",
    /// The record is not one well-formed JSON document (truncated, trailing bytes, nested deeper than 128 levels).
    NotJson => "not_json",
    /// The record is valid JSON but not an object.
    NotObject => "not_object",
    /// A field appears more than once in the same object.
    DuplicateField => "duplicate_field",
    /// `schema_version` is present but is not 1.
    UnsupportedSchemaVersion => "unsupported_schema_version",
    /// `event_id` is absent or null.
    MissingEventId => "missing_event_id",
    /// `event_id` is not a non-empty string of at most 128 characters without control characters;
    /// for a legacy record, whose event id is `transaction_id:product_id`, that id is longer than
    /// 128 characters.
    InvalidEventId => "invalid_event_id",
    /// `event_type` is absent or null.
    MissingEventType => "missing_event_type",
    /// `event_type` is not one of sale, return, receipt, waste, adjustment, stock_count, purchase_order.
    InvalidEventType => "invalid_event_type",
    /// `event_time` (legacy: `timestamp`) is absent or null.
    MissingEventTime => "missing_event_time",
    /// `event_time` (legacy: `timestamp`) is not an RFC 3339 time with an offset.
    InvalidEventTime => "invalid_event_time",
    /// `event_time` lies too far in the future or the past of the moment the record arrived.
    EventTimeOutOfRange => "event_time_out_of_range",
    /// `store_id` is absent or null.
    MissingStoreId => "missing_store_id",
    /// `store_id` is not a non-empty string of at most 128 characters without control characters.
    InvalidStoreId => "invalid_store_id",
    /// `register_id` is present but not such a string.
    InvalidRegisterId => "invalid_register_id",
    /// `transaction_id` is absent in a legacy record (where it is required).
    MissingTransactionId => "missing_transaction_id",
    /// `transaction_id` is present but not such a string.
    InvalidTransactionId => "invalid_transaction_id",
    /// `lines` is absent or null.
    MissingLines => "missing_lines",
    /// `lines` is not an array.
    InvalidLines => "invalid_lines",
    /// `lines` is an empty array.
    EmptyLines => "empty_lines",
    /// `lines` holds more than 1000 lines.
    TooManyLines => "too_many_lines",
    /// A line is not an object.
    InvalidLine => "invalid_line",
    /// A line has no `sku` (legacy: `product_id`).
    MissingSku => "missing_sku",
    /// `sku` is not a non-empty string of at most 128 characters without control characters.
    InvalidSku => "invalid_sku",
    /// A line has no `quantity`.
    MissingQuantity => "missing_quantity",
    /// `quantity` is not a JSON number.
    InvalidQuantity => "invalid_quantity",
    /// `quantity` has more than 3 decimals.
    QuantityPrecision => "quantity_precision",
    /// `quantity` breaks the sign rule of its event type (> 0 for sale, return, receipt, waste; != 0 for adjustment; >= 0 for stock_count and purchase_order).
    QuantitySign => "quantity_sign",
    /// The absolute value of `quantity` is 1e12 or more.
    QuantityOutOfRange => "quantity_out_of_range",
    /// `unit_price` is absent in a legacy record (where it is required).
    MissingUnitPrice => "missing_unit_price",
    /// `unit_price` is not a number, is negative, or is 1e11 or more.
    InvalidUnitPrice => "invalid_unit_price",
    /// `unit_price` has more than 4 decimals.
    UnitPricePrecision => "unit_price_precision",
    /// `discount` is not a number, is negative, or is 1e11 or more.
    InvalidDiscount => "invalid_discount",
    /// `discount` has more than 4 decimals.
    DiscountPrecision => "discount_precision",
    /// `total_price` is absent in a legacy record (where it is required).
    MissingTotalPrice => "missing_total_price",
    /// `total_price` is not a number.
    InvalidTotalPrice => "invalid_total_price",
    /// `total_price` differs from quantity times unit_price by more than 0.01.
    TotalPriceMismatch => "total_price_mismatch",
    /// An event with the same `event_id` but other content was already accepted.
    DuplicateConflict => "duplicate_conflict",
    /// A line's amount, `quantity` × `unit_price`, is 1e11 or more: more than any gold column of money holds exactly.
    AmountOutOfRange => "amount_out_of_range",
    /// `product_name` (legacy) is not a string of at most 256 characters without control characters.
    InvalidProductName => "invalid_product_name",
    /// `category` (legacy) is not a string of at most 256 characters without control characters.
    InvalidCategory => "invalid_category",
    /// `payment_method` is present but not a non-empty string of at most 128 characters without control characters.
    InvalidPaymentMethod => "invalid_payment_method",
    /// `client_type` is present but not a non-empty string of at most 128 characters without control characters.
    InvalidClientType => "invalid_client_type",
    /// A purchase order has no `order_id`.
    MissingOrderId => "missing_order_id",
    /// `order_id` is present but not a non-empty string of at most 128 characters without control characters.
    InvalidOrderId => "invalid_order_id",
    /// A purchase order has no `expected_at`.
    MissingExpectedAt => "missing_expected_at",
    /// `expected_at` is present but not an RFC 3339 time with an offset.
    InvalidExpectedAt => "invalid_expected_at",
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule: its code, where in the record, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: ReasonCode,
    /// A JSON-path-like location, e.g. `lines[2].quantity`; empty for the record as a whole.
    pub path: String,
    /// A short human explanation of what was found.
    pub detail: String,
}

impl Violation {
    pub fn new(code: ReasonCode, path: impl Into<String>, detail: impl Into<String>) -> Self {
        Violation {
            code,
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.code, self.detail)
        } else {
            write!(f, "{} at {}: {}", self.code, self.path, self.detail)
        }
    }
}

/// Every rule a record breaks, in the order they were found (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub violations: Vec<Violation>,
    /// The `event_id` when it could be read, to help find the record.
    pub event_id: Option<String>,
}

impl Rejection {
    pub fn single(v: Violation) -> Self {
        Rejection {
            violations: vec![v],
            event_id: None,
        }
    }

    /// The distinct codes, sorted, for storage and counting.
    pub fn codes(&self) -> Vec<ReasonCode> {
        let mut codes: Vec<ReasonCode> = self.violations.iter().map(|v| v.code).collect();
        codes.sort();
        codes.dedup();
        codes
    }

    /// Every violation on one line, for the quarantine's detail column.
    pub fn detail(&self) -> String {
        let parts: Vec<String> = self.violations.iter().map(|v| v.to_string()).collect();
        parts.join("; ")
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ReasonCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(ReasonCode::from_code(code.as_str()), Some(*code));
            assert!(!code.description().is_empty());
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
        assert_eq!(ReasonCode::from_code("nope"), None);
    }

    #[test]
    fn rejection_codes_are_sorted_and_distinct() {
        let r = Rejection {
            violations: vec![
                Violation::new(ReasonCode::MissingSku, "lines[1]", "absent"),
                Violation::new(ReasonCode::MissingEventId, "", "absent"),
                Violation::new(ReasonCode::MissingSku, "lines[0]", "absent"),
            ],
            event_id: None,
        };
        assert_eq!(
            r.codes(),
            vec![ReasonCode::MissingEventId, ReasonCode::MissingSku]
        );
        assert!(r.detail().contains("missing_sku at lines[1]: absent"));
    }
}
