//! Building quarantine rows as an Arrow batch.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use crate::RefineError;
use crate::parse::QuarantineRow;
use stocklake_silver::tables::QUARANTINE_SCHEMA;

/// The quarantine table's rows for `rows`.
pub fn quarantine_batch(
    rows: &[QuarantineRow],
    at: DateTime<Utc>,
    batch: i64,
) -> Result<RecordBatch, RefineError> {
    use base64_lite::encode;
    let n = rows.len();
    let mut reasons = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
        deltalake::arrow::datatypes::Field::new(
            "element",
            deltalake::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ));
    let mut details = StringBuilder::with_capacity(n, n * 64);
    let mut event_id = StringBuilder::new();
    let mut payload = StringBuilder::new();
    let mut payload_b64 = StringBuilder::new();
    let mut payload_bytes = Int64Builder::with_capacity(n);
    let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut arrived = ts();
    let mut quarantined = ts();
    let mut refine_batch = Int64Builder::with_capacity(n);
    let mut source = StringBuilder::new();
    let mut partition = StringBuilder::new();
    let mut sequence = StringBuilder::new();
    let mut object = StringBuilder::new();
    let mut line = Int32Builder::with_capacity(n);
    for r in rows {
        for code in &r.reasons {
            reasons.values().append_value(code);
        }
        reasons.append(true);
        details.append_value(&r.details);
        event_id.append_option(r.event_id.as_deref());
        match std::str::from_utf8(&r.payload) {
            Ok(text) => {
                payload.append_value(text);
                payload_b64.append_null();
            }
            Err(_) => {
                payload.append_null();
                payload_b64.append_value(encode(&r.payload));
            }
        }
        payload_bytes.append_value(r.payload.len() as i64);
        arrived.append_value(r.arrived_at.timestamp_micros());
        quarantined.append_value(at.timestamp_micros());
        refine_batch.append_value(batch);
        source.append_value(&r.source);
        partition.append_value(&r.partition);
        sequence.append_value(&r.sequence);
        object.append_value(&r.bronze_object);
        line.append_value(r.bronze_line as i32);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(reasons.finish()),
        Arc::new(details.finish()),
        Arc::new(event_id.finish()),
        Arc::new(payload.finish()),
        Arc::new(payload_b64.finish()),
        Arc::new(payload_bytes.finish()),
        Arc::new(arrived.finish()),
        Arc::new(quarantined.finish()),
        Arc::new(refine_batch.finish()),
        Arc::new(source.finish()),
        Arc::new(partition.finish()),
        Arc::new(sequence.finish()),
        Arc::new(object.finish()),
        Arc::new(line.finish()),
    ];
    RecordBatch::try_new(QUARANTINE_SCHEMA.clone(), columns)
        .map_err(|e| RefineError::Internal(format!("building quarantine rows: {e}")))
}

mod base64_lite {
    pub fn encode(data: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}
