//! Phase 1 of a batch, per bronze object and in parallel: decode the bronze lines, parse and
//! validate each record, and build the silver columns of every valid event's lines. Rules that
//! need history (dedup) run afterwards, in order, over the small per-event summaries this
//! produces (see `refiner.rs`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use stocklake_event::{Event, Rejection, TimeWindow, parse_event, parse_event_escaped};
use stocklake_storage::bronze::{ObjectName, parse_line, parse_line_lazy};

use crate::RefineError;
use stocklake_silver::UNIX_EPOCH_DAYS_CE;
use stocklake_silver::tables::{LINES_SCHEMA, MONEY, QTY};

/// What dedup needs to know of one valid event.
#[derive(Debug, Clone)]
pub struct EventMeta {
    pub id_hash: u128,
    pub fingerprint: u64,
    /// Days since 1970-01-01 of the event's UTC date.
    pub date: i32,
    /// Rows `first_row .. first_row + lines` of the object's lines batch.
    pub first_row: u32,
    pub lines: u32,
    /// 1-based line of the bronze object.
    pub bronze_line: u32,
    pub event_time: DateTime<Utc>,
}

/// Rows `start .. start + len` of an object's lines all have this event date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRows {
    pub date: i32,
    pub start: u32,
    pub len: u32,
}

/// A record that goes to quarantine.
#[derive(Debug, Clone)]
pub struct QuarantineRow {
    pub reasons: Vec<String>,
    pub details: String,
    pub event_id: Option<String>,
    pub payload: Vec<u8>,
    pub arrived_at: DateTime<Utc>,
    pub source: String,
    pub partition: String,
    pub sequence: String,
    pub bronze_object: String,
    pub bronze_line: u32,
}

/// Everything phase 1 learnt from one bronze object.
#[derive(Debug)]
pub struct ObjectParse {
    pub name: ObjectName,
    /// The decompressed object, kept to quote a record that dedup later quarantines.
    pub text: Vec<u8>,
    /// Byte offsets of each line in `text` (1-based line n is `line_spans[n - 1]`).
    pub line_spans: Vec<(u32, u32)>,
    /// The silver lines of the object's valid events, ordered by event date (an event's
    /// lines stay together and in order).
    pub lines: RecordBatch,
    /// The rows of `lines` each event date holds, in date order.
    pub days: Vec<DayRows>,
    pub events: Vec<EventMeta>,
    pub quarantine: Vec<QuarantineRow>,
    pub records: u64,
    pub max_arrived_at: Option<DateTime<Utc>>,
}

/// Hash of an event id for the dedup index (128 bits: collisions are out of reach).
pub fn id_hash(event_id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
}

pub fn date_days(t: DateTime<Utc>) -> i32 {
    use chrono::Datelike;
    t.date_naive().num_days_from_ce() - UNIX_EPOCH_DAYS_CE
}

struct LineColumns {
    event_id: StringBuilder,
    line_no: Int32Builder,
    line_count: Int32Builder,
    event_type: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    event_date: Date32Builder,
    store_id: StringBuilder,
    register_id: StringBuilder,
    transaction_id: StringBuilder,
    sku: StringBuilder,
    quantity: Decimal128Builder,
    unit_price: Decimal128Builder,
    discount: Decimal128Builder,
    source_form: StringBuilder,
    product_name: StringBuilder,
    category: StringBuilder,
    fingerprint: Int64Builder,
    arrived_at: TimestampMicrosecondBuilder,
    refined_at: TimestampMicrosecondBuilder,
    refine_batch: Int64Builder,
    source: StringBuilder,
    partition: StringBuilder,
    sequence: StringBuilder,
    bronze_object: StringBuilder,
    bronze_line: Int32Builder,
    payment_method: StringBuilder,
    client_type: StringBuilder,
    order_id: StringBuilder,
    expected_at: TimestampMicrosecondBuilder,
}

impl LineColumns {
    /// Builders for `cap` lines, each string column's buffer sized for its usual width (an
    /// event id is 36 bytes, the object's path is `object_len`): growing them by doubling had
    /// copied every value buffer several times.
    fn new(cap: usize, object_len: usize) -> LineColumns {
        let s = |width: usize| StringBuilder::with_capacity(cap, cap * width);
        let ts = || TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC");
        let dec = |(p, sc): (u8, i8)| {
            Decimal128Builder::with_capacity(cap)
                .with_precision_and_scale(p, sc)
                .unwrap_or_else(|_| Decimal128Builder::with_capacity(cap))
        };
        LineColumns {
            event_id: s(36),
            line_no: Int32Builder::with_capacity(cap),
            line_count: Int32Builder::with_capacity(cap),
            event_type: s(8),
            event_time: ts(),
            event_date: Date32Builder::with_capacity(cap),
            store_id: s(8),
            register_id: s(8),
            transaction_id: s(24),
            sku: s(12),
            quantity: dec(QTY),
            unit_price: dec(MONEY),
            discount: dec(MONEY),
            source_form: s(9),
            product_name: s(0),
            category: s(0),
            fingerprint: Int64Builder::with_capacity(cap),
            arrived_at: ts(),
            refined_at: ts(),
            refine_batch: Int64Builder::with_capacity(cap),
            source: s(8),
            // a shard id or an HTTP ingest's partition name (29 bytes)
            partition: s(32),
            sequence: s(16),
            bronze_object: s(object_len),
            bronze_line: Int32Builder::with_capacity(cap),
            payment_method: s(0),
            client_type: s(0),
            order_id: s(0),
            expected_at: ts(),
        }
    }

    fn finish(mut self) -> Result<RecordBatch, RefineError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.line_no.finish()),
            Arc::new(self.line_count.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(self.event_date.finish()),
            Arc::new(self.store_id.finish()),
            Arc::new(self.register_id.finish()),
            Arc::new(self.transaction_id.finish()),
            Arc::new(self.sku.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.unit_price.finish()),
            Arc::new(self.discount.finish()),
            Arc::new(self.source_form.finish()),
            Arc::new(self.product_name.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.fingerprint.finish()),
            Arc::new(self.arrived_at.finish()),
            Arc::new(self.refined_at.finish()),
            Arc::new(self.refine_batch.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.bronze_object.finish()),
            Arc::new(self.bronze_line.finish()),
            Arc::new(self.payment_method.finish()),
            Arc::new(self.client_type.finish()),
            Arc::new(self.order_id.finish()),
            Arc::new(self.expected_at.finish()),
        ];
        RecordBatch::try_new(LINES_SCHEMA.clone(), columns)
            .map_err(|e| RefineError::Internal(format!("building silver lines: {e}")))
    }
}

/// Decimal with the given scale as the i128 Arrow stores.
fn scaled(d: rust_decimal::Decimal, scale: u32) -> i128 {
    // parsed events hold their decimals at the stored scale already
    if d.scale() == scale {
        d.mantissa()
    } else {
        stocklake_event::rescaled(d, scale).mantissa()
    }
}

/// Context shared by the objects of one batch.
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub batch: i64,
    pub refined_at: DateTime<Utc>,
    pub window: TimeWindow,
}

/// Parses one decompressed bronze object.
pub fn parse_object(
    name: ObjectName,
    text: Vec<u8>,
    ctx: &BatchContext,
) -> Result<ObjectParse, RefineError> {
    let object_path = name.path();
    let mut spans = Vec::new();
    let mut start = 0usize;
    for i in memchr::memchr_iter(b'\n', &text) {
        if i > start {
            spans.push((start as u32, i as u32));
        }
        start = i + 1;
    }
    if start < text.len() {
        spans.push((start as u32, text.len() as u32));
    }
    // builders sized from the object's bytes (a line takes 85–105 bytes of bronze, a stock
    // count's fewer), not from its records (1 to 1,000 lines each): they seldom grow while
    // filled. A line per 64 bytes held 8–10% more memory at the peak than a line per 96
    let lines_guess = (text.len() / 96).max(spans.len());
    let mut cols = LineColumns::new(lines_guess, object_path.len());
    let mut events = Vec::with_capacity(spans.len());
    let mut quarantine = Vec::new();
    let mut rows: u32 = 0;
    let mut max_arrived: Option<DateTime<Utc>> = None;
    let refined_micros = ctx.refined_at.timestamp_micros();
    for (idx, &(a, b)) in spans.iter().enumerate() {
        let line_no = (idx + 1) as u32;
        let raw = &text[a as usize..b as usize];
        let corrupt = |message: String| RefineError::CorruptBronze {
            object: object_path.clone(),
            line: line_no,
            message,
        };
        let lazy = parse_line_lazy(raw).map_err(corrupt)?;
        let bl = &lazy.line;
        max_arrived = Some(max_arrived.map_or(bl.arrived_at, |m| m.max(bl.arrived_at)));
        let quarantined = |rej: Rejection, payload: &[u8]| QuarantineRow {
            reasons: rej.codes().iter().map(|c| c.as_str().to_string()).collect(),
            details: rej.detail(),
            event_id: rej.event_id.clone(),
            payload: payload.to_vec(),
            arrived_at: bl.arrived_at,
            source: bl.source.to_string(),
            partition: bl.partition.to_string(),
            sequence: bl.sequence.to_string(),
            bronze_object: object_path.clone(),
            bronze_line: line_no,
        };
        // a plain valid event is read where it stands in the bronze line; any other record is
        // unescaped and read by the general parser, which names every rule it breaks
        let payload;
        let event = match lazy.escaped_payload().and_then(parse_event_escaped) {
            Some(e) => e,
            None => {
                payload = lazy.payload_bytes().map_err(corrupt)?;
                match parse_event(&payload) {
                    Ok(e) => e,
                    Err(rej) => {
                        quarantine.push(quarantined(rej, &payload));
                        continue;
                    }
                }
            }
        };
        if let Some(v) = ctx.window.check(event.event_time, bl.arrived_at) {
            let rejection = Rejection {
                violations: vec![v],
                event_id: Some(event.event_id.to_string()),
            };
            quarantine.push(quarantined(
                rejection,
                &lazy.payload_bytes().map_err(corrupt)?,
            ));
            continue;
        }
        let fp = event.fingerprint();
        let n = event.lines.len() as u32;
        events.push(EventMeta {
            id_hash: id_hash(&event.event_id),
            fingerprint: fp,
            date: date_days(event.event_time),
            first_row: rows,
            lines: n,
            bronze_line: line_no,
            event_time: event.event_time,
        });
        append_event(
            &mut cols,
            &event,
            fp,
            bl.arrived_at.timestamp_micros(),
            refined_micros,
            ctx.batch,
            &bl.source,
            &bl.partition,
            &bl.sequence,
            &object_path,
            line_no,
        );
        rows += n;
    }
    let (lines, days) = by_day(cols.finish()?, &mut events)?;
    Ok(ObjectParse {
        name,
        lines,
        days,
        text,
        line_spans: spans,
        events,
        quarantine,
        records: 0,
        max_arrived_at: max_arrived,
    }
    .with_record_count())
}

/// Orders an object's lines by event date, each event's lines together and in order (they
/// share a date), so that each date's rows are one slice for the writer of its partition.
/// Lines already in date order (the usual case: an object holds a stretch of time) are not
/// moved.
fn by_day(
    lines: RecordBatch,
    events: &mut [EventMeta],
) -> Result<(RecordBatch, Vec<DayRows>), RefineError> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].date);
    let mut days: Vec<DayRows> = Vec::new();
    let mut row = 0u32;
    for &i in &order {
        let e = &events[i];
        match days.last_mut() {
            Some(d) if d.date == e.date => d.len += e.lines,
            _ => days.push(DayRows {
                date: e.date,
                start: row,
                len: e.lines,
            }),
        }
        row += e.lines;
    }
    if order.iter().enumerate().all(|(at, &i)| at == i) {
        return Ok((lines, days));
    }
    let mut take = Vec::with_capacity(lines.num_rows());
    let mut first = vec![0u32; events.len()];
    for &i in &order {
        let e = &events[i];
        first[i] = take.len() as u32;
        take.extend(e.first_row..e.first_row + e.lines);
    }
    for (e, f) in events.iter_mut().zip(first) {
        e.first_row = f;
    }
    let indices = deltalake::arrow::array::UInt32Array::from(take);
    let lines = deltalake::arrow::compute::take_record_batch(&lines, &indices)
        .map_err(|e| RefineError::Internal(format!("ordering lines by date: {e}")))?;
    Ok((lines, days))
}

impl ObjectParse {
    fn with_record_count(mut self) -> ObjectParse {
        self.records = self.line_spans.len() as u64;
        self
    }

    /// The payload of a bronze line, for quoting it in quarantine.
    pub fn payload_of(&self, line: u32) -> Option<(Vec<u8>, QuarantineRowBase)> {
        let &(a, b) = self.line_spans.get(line.checked_sub(1)? as usize)?;
        let bl = parse_line(&self.text[a as usize..b as usize]).ok()?;
        let payload = bl.payload_bytes().ok()?.into_owned();
        Some((
            payload,
            QuarantineRowBase {
                arrived_at: bl.arrived_at,
                source: bl.source.to_string(),
                partition: bl.partition.to_string(),
                sequence: bl.sequence.to_string(),
            },
        ))
    }
}

/// The lineage part of a quarantine row.
#[derive(Debug, Clone)]
pub struct QuarantineRowBase {
    pub arrived_at: DateTime<Utc>,
    pub source: String,
    pub partition: String,
    pub sequence: String,
}

#[allow(clippy::too_many_arguments)]
fn append_event(
    c: &mut LineColumns,
    e: &Event<'_>,
    fingerprint: u64,
    arrived_micros: i64,
    refined_micros: i64,
    batch: i64,
    source: &str,
    partition: &str,
    sequence: &str,
    object: &str,
    bronze_line: u32,
) {
    // an event's own columns are the same on each of its lines: appended once for them all
    let n = e.lines.len();
    let repeat = |b: &mut StringBuilder, v: Option<&str>| match v {
        Some(v) => b.append_value_n(v, n),
        None => b.append_nulls(n),
    };
    repeat(&mut c.event_id, Some(&e.event_id));
    c.line_count.append_value_n(n as i32, n);
    repeat(&mut c.event_type, Some(e.event_type.as_str()));
    c.event_time
        .append_value_n(e.event_time.timestamp_micros(), n);
    c.event_date.append_value_n(date_days(e.event_time), n);
    repeat(&mut c.store_id, Some(&e.store_id));
    repeat(&mut c.register_id, e.register_id.as_deref());
    repeat(&mut c.transaction_id, e.transaction_id.as_deref());
    repeat(&mut c.source_form, Some(e.form.as_str()));
    repeat(&mut c.product_name, e.product_name.as_deref());
    repeat(&mut c.category, e.category.as_deref());
    c.fingerprint.append_value_n(fingerprint as i64, n);
    c.arrived_at.append_value_n(arrived_micros, n);
    c.refined_at.append_value_n(refined_micros, n);
    c.refine_batch.append_value_n(batch, n);
    repeat(&mut c.source, Some(source));
    repeat(&mut c.partition, Some(partition));
    repeat(&mut c.sequence, Some(sequence));
    repeat(&mut c.bronze_object, Some(object));
    c.bronze_line.append_value_n(bronze_line as i32, n);
    repeat(&mut c.payment_method, e.payment_method.as_deref());
    repeat(&mut c.client_type, e.client_type.as_deref());
    repeat(&mut c.order_id, e.order_id.as_deref());
    match e.expected_at {
        Some(t) => c.expected_at.append_value_n(t.timestamp_micros(), n),
        None => c.expected_at.append_nulls(n),
    }
    for (i, l) in e.lines.iter().enumerate() {
        c.line_no.append_value(i as i32);
        c.sku.append_value(&l.sku);
        c.quantity.append_value(scaled(l.quantity, QTY.1 as u32));
        c.unit_price
            .append_option(l.unit_price.map(|p| scaled(p, MONEY.1 as u32)));
        c.discount
            .append_option(l.discount.map(|d| scaled(d, MONEY.1 as u32)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{AsArray, Int32Array};
    use deltalake::arrow::datatypes::{DataType, Field, Int32Type, Schema};

    fn meta(date: i32, first_row: u32, lines: u32) -> EventMeta {
        EventMeta {
            id_hash: u128::from(first_row),
            fingerprint: 0,
            date,
            first_row,
            lines,
            bronze_line: first_row + 1,
            event_time: DateTime::from_timestamp(0, 0).expect("epoch"),
        }
    }

    fn rows(values: Vec<i32>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(values))]).expect("batch")
    }

    fn day(date: i32, start: u32, len: u32) -> DayRows {
        DayRows { date, start, len }
    }

    fn values(b: &RecordBatch) -> Vec<i32> {
        b.column(0).as_primitive::<Int32Type>().values().to_vec()
    }

    proptest::proptest! {
        #[test]
        fn decimals_scale_as_rescale_does(
            m in proptest::prelude::any::<i128>(),
            from in 0u32..=28,
            to in 0u32..=6,
        ) {
            let m = m % 79_228_162_514_264_337_593_543_950_335; // 96 bits
            for m in [m, m % 1_000_000, 0] {
                let d = rust_decimal::Decimal::from_i128_with_scale(m, from);
                let mut r = d;
                r.rescale(to);
                proptest::prop_assert_eq!(scaled(d, to), r.mantissa());
            }
        }
    }

    #[test]
    fn lines_in_date_runs_stay_where_they_are() {
        let lines = rows(vec![10, 11, 20, 30, 31, 32]);
        let mut events = vec![meta(5, 0, 2), meta(5, 2, 1), meta(6, 3, 3)];
        let (out, days) = by_day(lines.clone(), &mut events).expect("ordered");
        assert!(out.column(0).to_data().ptr_eq(&lines.column(0).to_data()));
        assert_eq!(days, vec![day(5, 0, 3), day(6, 3, 3)]);
        assert_eq!(events[2].first_row, 3);
    }

    #[test]
    fn lines_of_a_late_event_join_their_date() {
        // events: day 6 (2 lines), day 5 (1 line, arrived late), day 6 (3 lines)
        let lines = rows(vec![60, 61, 50, 62, 63, 64]);
        let mut events = vec![meta(6, 0, 2), meta(5, 2, 1), meta(6, 3, 3)];
        let (out, days) = by_day(lines, &mut events).expect("ordered");
        assert_eq!(values(&out), vec![50, 60, 61, 62, 63, 64]);
        assert_eq!(days, vec![day(5, 0, 1), day(6, 1, 5)]);
        // each event still points at its own lines, in the bronze order of events
        let firsts: Vec<u32> = events.iter().map(|e| e.first_row).collect();
        assert_eq!(firsts, vec![1, 0, 3]);
        for e in &events {
            let own = out.slice(e.first_row as usize, e.lines as usize);
            assert!(values(&own).iter().all(|v| v / 10 == e.date));
        }
    }
}
