//! The silver Delta tables: their schemas, and opening or creating them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::StructField;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use stocklake_storage::{AwsOptions, Location};

use crate::SilverError;

pub const POS_EVENT_LINES: &str = "pos_event_lines";
pub const QUARANTINE: &str = "quarantine";
pub const PRODUCTS: &str = "products";
pub const STORES: &str = "stores";
pub const SUPPLIERS: &str = "suppliers";

/// Precision and scale of quantities: up to 3 decimals.
pub const QTY: (u8, i8) = (18, 3);
/// Precision and scale of money: up to 4 decimals.
pub const MONEY: (u8, i8) = (18, 4);

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// One row per event line, partitioned by `event_date` (UTC date of `event_time`).
pub static LINES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("line_no", DataType::Int32, false),
        Field::new("line_count", DataType::Int32, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("event_time", utc(), false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("store_id", DataType::Utf8, false),
        Field::new("register_id", DataType::Utf8, true),
        Field::new("transaction_id", DataType::Utf8, true),
        Field::new("sku", DataType::Utf8, false),
        Field::new("quantity", DataType::Decimal128(QTY.0, QTY.1), false),
        Field::new("unit_price", DataType::Decimal128(MONEY.0, MONEY.1), true),
        Field::new("discount", DataType::Decimal128(MONEY.0, MONEY.1), true),
        Field::new("source_form", DataType::Utf8, false),
        Field::new("product_name", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("event_fingerprint", DataType::Int64, false),
        Field::new("arrived_at", utc(), false),
        Field::new("refined_at", utc(), false),
        Field::new("refine_batch", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("partition", DataType::Utf8, false),
        Field::new("sequence", DataType::Utf8, false),
        Field::new("bronze_object", DataType::Utf8, false),
        Field::new("bronze_line", DataType::Int32, false),
        // added after the first release: tables made before get them by schema evolution
        // (`evolve`), and their older files read them as null
        Field::new("payment_method", DataType::Utf8, true),
        Field::new("client_type", DataType::Utf8, true),
        Field::new("order_id", DataType::Utf8, true),
        Field::new("expected_at", utc(), true),
    ]))
});

/// How the lines table's Parquet files are encoded (decision 0017 for the pages and encodings,
/// 0015 for the statistics). Snappy, as the Delta writer's default, in data pages v2: a page's
/// values are compressed where they lie, where a v1 page is first copied whole behind its levels
/// and compressed into a buffer then shrunk (two more copies of every page). Every column is
/// plain or dictionary encoded except the timestamps and batch number that are the same for a
/// whole record or batch (`arrived_at`, `refined_at`, `refine_batch`): delta-encoded integers,
/// a few bytes a page, where a dictionary hashed every value. `event_id` has a dictionary, with
/// room for a whole file's ids: an event's lines repeat its id, so the file keeps each id once
/// and a run of small indices. No dictionary for the other columns unique to an event or a
/// record (measured: hashing them cost more than plain encoding and Snappy) nor for the line
/// numbers. Statistics only for the columns a reader filters files on — event type and time,
/// store, SKU, arrival time, refine batch and the legacy product fields; the minimum and
/// maximum of a random id, a line number, a quantity, a price or a lineage column rule no file
/// out, and keeping them compared every value (`bench/RESULTS.md`: 7% of refine's
/// instructions).
pub fn lines_writer_properties() -> deltalake::parquet::file::properties::WriterProperties {
    use deltalake::parquet::basic::{Compression, Encoding};
    use deltalake::parquet::file::properties::{
        EnabledStatistics, WriterProperties, WriterVersion,
    };
    use deltalake::parquet::schema::types::ColumnPath;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_writer_version(WriterVersion::PARQUET_2_0)
        // the v2 writer's default for columns without a dictionary is delta encoding, which
        // compares every string with the one before it, byte by byte (5% more instructions)
        .set_encoding(Encoding::PLAIN)
        // room for the ids of a file's events (40 bytes each with their length: 1 MiB held 26k)
        .set_dictionary_page_size_limit(16 << 20);
    for column in ["arrived_at", "refined_at", "refine_batch"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    for column in [
        "transaction_id",
        "event_time",
        "event_fingerprint",
        "sequence",
        "bronze_line",
        "line_no",
        "line_count",
    ] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    for column in [
        "event_id",
        "transaction_id",
        "event_fingerprint",
        "source",
        "partition",
        "sequence",
        "bronze_object",
        "bronze_line",
        "line_no",
        "line_count",
        "register_id",
        "quantity",
        "unit_price",
        "discount",
        "source_form",
        "refined_at",
        "payment_method",
        "client_type",
        "order_id",
        "expected_at",
    ] {
        b = b.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    b.build()
}

/// A writer of new files for the silver table `name`, encoded as that table's files are
/// (refine's batches and table care's compactions alike).
pub fn table_writer(
    table: &DeltaTable,
    name: &str,
) -> Result<deltalake::writer::RecordBatchWriter, SilverError> {
    let writer = deltalake::writer::RecordBatchWriter::for_table(table)
        .map_err(|e| SilverError::delta(name, e))?;
    Ok(if name == POS_EVENT_LINES {
        writer.with_writer_properties(lines_writer_properties())
    } else {
        writer
    })
}

/// One row per quarantined record, with every reason and where it came from.
pub static QUARANTINE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(
            "reasons",
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
            false,
        ),
        Field::new("reason_details", DataType::Utf8, false),
        Field::new("event_id", DataType::Utf8, true),
        Field::new("payload", DataType::Utf8, true),
        Field::new("payload_base64", DataType::Utf8, true),
        Field::new("payload_bytes", DataType::Int64, false),
        Field::new("arrived_at", utc(), false),
        Field::new("quarantined_at", utc(), false),
        Field::new("refine_batch", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("partition", DataType::Utf8, false),
        Field::new("sequence", DataType::Utf8, false),
        Field::new("bronze_object", DataType::Utf8, false),
        Field::new("bronze_line", DataType::Int32, false),
    ]))
});

/// The product master (docs/contract.md §3), a full snapshot per version.
pub static PRODUCTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("sku", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("subcategory", DataType::Utf8, true),
        Field::new("brand", DataType::Utf8, true),
        Field::new("unit_of_measure", DataType::Utf8, true),
        Field::new("case_pack", DataType::Int32, true),
        Field::new("unit_cost", DataType::Decimal128(MONEY.0, MONEY.1), true),
        Field::new("unit_price", DataType::Decimal128(MONEY.0, MONEY.1), true),
        Field::new("lead_time_days", DataType::Int32, true),
        Field::new("service_level", DataType::Float64, true),
        Field::new("loaded_at", utc(), false),
        // added after the first release (schema evolution, as the lines table)
        Field::new("supplier_id", DataType::Utf8, true),
        Field::new("min_order_qty", DataType::Decimal128(QTY.0, QTY.1), true),
        Field::new("shelf_life_days", DataType::Int32, true),
    ]))
});

/// The supplier master (docs/contract.md §3), a full snapshot per version.
pub static SUPPLIERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("supplier_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("lead_time_days", DataType::Int32, true),
        Field::new("order_days", DataType::Utf8, true),
        Field::new("delivery_days", DataType::Utf8, true),
        Field::new("loaded_at", utc(), false),
    ]))
});

/// The store master (docs/contract.md §3), a full snapshot per version.
pub static STORES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("store_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("format", DataType::Utf8, true),
        Field::new("city", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("timezone", DataType::Utf8, true),
        Field::new("loaded_at", utc(), false),
    ]))
});

/// The four tables and how they are laid out.
pub fn table_spec(name: &str) -> Option<(SchemaRef, Vec<&'static str>)> {
    match name {
        POS_EVENT_LINES => Some((LINES_SCHEMA.clone(), vec!["event_date"])),
        QUARANTINE => Some((QUARANTINE_SCHEMA.clone(), vec![])),
        PRODUCTS => Some((PRODUCTS_SCHEMA.clone(), vec![])),
        STORES => Some((STORES_SCHEMA.clone(), vec![])),
        SUPPLIERS => Some((SUPPLIERS_SCHEMA.clone(), vec![])),
        _ => None,
    }
}

/// Where a silver table lives.
pub fn table_location(silver: &Location, name: &str) -> Location {
    silver.join(name)
}

fn table_url(loc: &Location) -> Result<url::Url, SilverError> {
    let s = match loc {
        // a trailing slash: delta-rs treats the URL as a directory
        Location::Local(p) => format!("file://{}/", p.display()),
        Location::S3 { .. } => format!("{}/", loc.url()),
    };
    url::Url::parse(&s).map_err(|e| SilverError::Config(format!("{s}: {e}")))
}

/// Opens a silver table, creating it (empty, with its schema) when it does not exist.
pub async fn open_or_create(
    silver: &Location,
    aws: &AwsOptions,
    name: &str,
) -> Result<DeltaTable, SilverError> {
    let loc = table_location(silver, name);
    if let Location::Local(p) = &loc {
        std::fs::create_dir_all(p)
            .map_err(|e| SilverError::Storage(format!("creating {}: {e}", p.display())))?;
    }
    let url = table_url(&loc)?;
    let options: HashMap<String, String> = if loc.is_local() {
        HashMap::new()
    } else {
        aws.storage_options()
    };
    let builder = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| SilverError::delta(name, e))?
        .with_storage_options(options.clone());
    match builder.load().await {
        Ok(t) => evolve(name, t).await,
        Err(DeltaTableError::NotATable(_)) => create(name, url, options).await,
        Err(e) => Err(SilverError::delta(name, e)),
    }
}

/// Adds to a table made by an earlier release the (nullable) columns its schema has gained
/// since: a metadata-only commit, after which older files read the new columns as null. Two
/// processes evolving at once: one commit wins, the other finds the columns there on reload.
async fn evolve(name: &str, mut table: DeltaTable) -> Result<DeltaTable, SilverError> {
    let Some((wanted, _)) = table_spec(name) else {
        return Ok(table);
    };
    for _ in 0..3 {
        let have: Vec<String> = match table.snapshot() {
            Ok(s) => s.schema().fields().map(|f| f.name().to_string()).collect(),
            Err(_) => return Ok(table),
        };
        let missing: Vec<StructField> = wanted
            .fields()
            .iter()
            .filter(|f| f.is_nullable() && !have.iter().any(|h| h == f.name()))
            .map(|f| f.as_ref().try_into_kernel())
            .collect::<Result<_, _>>()
            .map_err(|e| SilverError::Internal(format!("schema of {name}: {e}")))?;
        if missing.is_empty() {
            return Ok(table);
        }
        tracing::info!(
            table = name,
            columns = ?missing.iter().map(|f| f.name().to_string()).collect::<Vec<_>>(),
            "adding the columns this release writes to a silver table made by an earlier one"
        );
        match table.clone().add_columns().with_fields(missing).await {
            Ok(t) => return Ok(t),
            Err(e) => {
                tracing::warn!(table = name, error = %e, "adding columns met another commit; reading the table again");
                table
                    .update_state()
                    .await
                    .map_err(|e| SilverError::delta(name, e))?;
            }
        }
    }
    Err(SilverError::Internal(format!(
        "{name}: the columns it lacks could not be added"
    )))
}

async fn create(
    name: &str,
    url: url::Url,
    options: HashMap<String, String>,
) -> Result<DeltaTable, SilverError> {
    let (schema, partitions) = table_spec(name)
        .ok_or_else(|| SilverError::Config(format!("unknown silver table {name}")))?;
    let columns: Vec<StructField> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().try_into_kernel())
        .collect::<Result<_, _>>()
        .map_err(|e| SilverError::Internal(format!("schema of {name}: {e}")))?;
    let table = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| SilverError::delta(name, e))?
        .with_storage_options(options.clone())
        .build()
        .map_err(|e| SilverError::delta(name, e))?;
    let mut create = table
        .create()
        .with_table_name(name)
        .with_columns(columns)
        .with_configuration_property(deltalake::TableProperty::CheckpointInterval, Some("50"))
        .with_comment(match name {
            POS_EVENT_LINES => "stocklake silver: one row per POS event line",
            QUARANTINE => "stocklake silver: records that broke a rule, with every reason",
            PRODUCTS => "stocklake silver: product master",
            SUPPLIERS => "stocklake silver: supplier master",
            _ => "stocklake silver: store master",
        });
    if !partitions.is_empty() {
        create = create.with_partition_columns(partitions);
    }
    match create.await {
        Ok(t) => Ok(t),
        // another process created it between our load and create
        Err(e) if e.to_string().contains("already exists") => DeltaTableBuilder::from_url(url)
            .map_err(|e| SilverError::delta(name, e))?
            .with_storage_options(options)
            .load()
            .await
            .map_err(|e| SilverError::delta(name, e)),
        Err(e) => Err(SilverError::delta(name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{
        ArrayRef, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };
    use deltalake::parquet::arrow::ArrowWriter;
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

    /// Two rows of the lines schema, every column filled.
    fn two_lines() -> RecordBatch {
        let columns: Vec<ArrayRef> = LINES_SCHEMA
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.data_type() {
                    DataType::Utf8 => Arc::new(StringArray::from(vec!["a", "b"])),
                    DataType::Int32 => Arc::new(Int32Array::from(vec![1, 2])),
                    DataType::Int64 => Arc::new(Int64Array::from(vec![1, 2])),
                    DataType::Date32 => Arc::new(Date32Array::from(vec![1, 2])),
                    DataType::Timestamp(_, _) => {
                        Arc::new(TimestampMicrosecondArray::from(vec![1, 2]).with_timezone("UTC"))
                    }
                    DataType::Decimal128(p, s) => Arc::new(
                        Decimal128Array::from(vec![1, 2])
                            .with_precision_and_scale(*p, *s)
                            .expect("precision"),
                    ),
                    other => panic!("no sample for {other:?}"),
                }
            })
            .collect();
        RecordBatch::try_new(LINES_SCHEMA.clone(), columns).expect("batch")
    }

    /// The lines file of `two_lines`, written as refine writes it.
    fn two_lines_file() -> SerializedFileReader<bytes::Bytes> {
        let mut file = Vec::new();
        let mut w = ArrowWriter::try_new(
            &mut file,
            LINES_SCHEMA.clone(),
            Some(lines_writer_properties()),
        )
        .expect("writer");
        w.write(&two_lines()).expect("write");
        w.close().expect("close");
        SerializedFileReader::new(bytes::Bytes::from(file)).expect("reader")
    }

    #[test]
    fn per_batch_columns_are_delta_encoded_and_event_ids_kept_once() {
        use deltalake::parquet::basic::Encoding;
        use deltalake::parquet::column::page::Page;
        let reader = two_lines_file();
        let group = reader.metadata().row_group(0);
        let encodings = |name: &str| -> Vec<Encoding> {
            let at = (0..group.num_columns())
                .find(|&i| group.column(i).column_path().string() == name)
                .expect("column");
            group.column(at).encodings().collect()
        };
        for column in ["arrived_at", "refined_at", "refine_batch"] {
            assert!(
                encodings(column).contains(&Encoding::DELTA_BINARY_PACKED),
                "{column}: {:?}",
                encodings(column)
            );
        }
        assert!(encodings("event_id").contains(&Encoding::RLE_DICTIONARY));
        for column in ["transaction_id", "sequence", "event_fingerprint"] {
            assert!(encodings(column).contains(&Encoding::PLAIN), "{column}");
        }
        // data pages v2
        let mut pages = reader
            .get_row_group(0)
            .expect("row group")
            .get_column_page_reader(0)
            .expect("pages");
        let mut kinds = Vec::new();
        while let Some(page) = pages.get_next_page().expect("page") {
            kinds.push(matches!(page, Page::DataPageV2 { .. }));
        }
        assert!(kinds.contains(&true), "{kinds:?}");
        assert!(!matches!(kinds.last(), Some(false)), "{kinds:?}");
    }

    #[test]
    fn the_columns_readers_filter_on_keep_their_statistics() {
        // (`event_date` is the partition: Delta files do not hold it)
        let reader = two_lines_file();
        let group = reader.metadata().row_group(0);
        let with_stats: Vec<String> = group
            .columns()
            .iter()
            .filter(|c| c.statistics().is_some_and(|s| s.min_bytes_opt().is_some()))
            .map(|c| c.column_path().string())
            .collect();
        assert_eq!(
            with_stats,
            [
                "event_type",
                "event_time",
                "event_date",
                "store_id",
                "sku",
                "product_name",
                "category",
                "arrived_at",
                "refine_batch"
            ]
        );
    }
}
