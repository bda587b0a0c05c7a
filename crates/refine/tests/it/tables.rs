use std::collections::BTreeMap;

use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Decimal128Type, Int32Type};
use deltalake::parquet::basic::Encoding;
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
use stocklake_refine::Refiner;
use stocklake_refine::master::load_master_data;
use stocklake_silver::maintain::{MaintainConfig, maintain};
use stocklake_silver::read::{active_files, read_files};
use stocklake_silver::tables::{POS_EVENT_LINES, PRODUCTS, STORES, SUPPLIERS, open_or_create};
use stocklake_storage::Location;
use stocklake_testkit::{moto_aws, unique};

use crate::common::*;

/// (event_id, line_no) -> quantity (thousandths) of every silver line.
fn lines_of(batches: &[RecordBatch]) -> BTreeMap<(String, i32), i128> {
    let mut out = BTreeMap::new();
    for b in batches {
        let ids = b.column_by_name("event_id").expect("id").as_string::<i32>();
        let nos = b
            .column_by_name("line_no")
            .expect("no")
            .as_primitive::<Int32Type>();
        let qty = b
            .column_by_name("quantity")
            .expect("qty")
            .as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            out.insert((ids.value(i).to_string(), nos.value(i)), qty.value(i));
        }
    }
    out
}

#[tokio::test]
async fn master_data_is_versioned_only_when_it_changes() {
    let lake = Lake::local();
    let dir = lake.path().join("master");
    std::fs::create_dir_all(&dir).expect("dir");
    let header = "sku,name,category,subcategory,brand,unit_of_measure,case_pack,unit_cost,unit_price,lead_time_days,service_level\n";
    std::fs::write(
        dir.join("products.csv"),
        format!("{header}SKU-1,Milk,Dairy,Milk,Lakeside,each,12,0.61,0.99,2,0.98\n"),
    )
    .expect("write");
    std::fs::write(dir.join("stores.csv"), "store_id,name,format,city,region,country,timezone\nST-1,Centro,supermarket,Madrid,Madrid,ES,Europe/Madrid\n").expect("write");
    let r = load_master_data(&lake.silver, &lake.aws, &dir)
        .await
        .expect("load");
    assert_eq!(r.changed, vec![PRODUCTS, STORES]);
    let r = load_master_data(&lake.silver, &lake.aws, &dir)
        .await
        .expect("load again");
    assert!(r.changed.is_empty(), "an unchanged file writes nothing");
    std::fs::write(dir.join("products.csv"), format!("{header}SKU-1,Milk,Dairy,Milk,Lakeside,each,12,0.61,1.09,2,0.98\nSKU-2,Bread,Bakery,Bread,Sierra,each,10,0.40,0.89,1,0.95\n")).expect("write");
    let r = load_master_data(&lake.silver, &lake.aws, &dir)
        .await
        .expect("load changed");
    assert_eq!(r.changed, vec![PRODUCTS]);
    let rows: usize = lake
        .table_rows(PRODUCTS)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
    // the earlier version is still there to read
    let mut t = open_or_create(&lake.silver, &lake.aws, PRODUCTS)
        .await
        .expect("open");
    let latest = t.version().expect("version");
    t.load_version(latest - 1).await.expect("time travel");
    let files = active_files(&t).await.expect("files");
    let old: usize = read_files(t.object_store(), &files, None)
        .await
        .expect("read")
        .iter()
        .flat_map(|(_, b)| b)
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(old, 1);
    // a bad file changes nothing
    std::fs::write(
        dir.join("products.csv"),
        format!("{header}SKU-1,Milk,Dairy,Milk,Lakeside,litre,12,0.61,1.09,2,0.98\n"),
    )
    .expect("write");
    let err = load_master_data(&lake.silver, &lake.aws, &dir)
        .await
        .expect_err("bad")
        .to_string();
    assert!(err.contains("line 2, column unit_of_measure"), "{err}");
    let rows: usize = lake
        .table_rows(PRODUCTS)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
    // suppliers and the products' supplier rules: a version of each, the columns read back
    std::fs::write(
        dir.join("products.csv"),
        "sku,case_pack,supplier_id,min_order_qty,shelf_life_days\nSKU-1,12,SUP-1,24,5\nSKU-2,10,,,\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("suppliers.csv"),
        "supplier_id,name,lead_time_days,order_days,delivery_days\nSUP-1,Dairy Co,2,Mon Thu,Wed Sat\n",
    )
    .expect("write");
    let r = load_master_data(&lake.silver, &lake.aws, &dir)
        .await
        .expect("load suppliers");
    assert_eq!(r.changed, vec![PRODUCTS, SUPPLIERS]);
    assert_eq!(r.suppliers, Some(1));
    let products = lake.table_rows(PRODUCTS).await;
    let b = products.iter().find(|b| b.num_rows() > 0).expect("rows");
    let supplier = b
        .column_by_name("supplier_id")
        .expect("supplier_id")
        .as_string::<i32>();
    assert!(supplier.iter().any(|v| v == Some("SUP-1")));
    let suppliers = lake.table_rows(SUPPLIERS).await;
    let b = suppliers.iter().find(|b| b.num_rows() > 0).expect("rows");
    let days = b
        .column_by_name("order_days")
        .expect("order_days")
        .as_string::<i32>();
    assert_eq!(days.value(0), "Mon Thu");
}

/// Puts `n` one-line events `{prefix}-0`, `{prefix}-1`, … in one bronze object and refines them.
async fn put_and_refine(lake: &mut Lake, r: &mut Refiner, prefix: &str, n: usize, quantity: &str) {
    let recs: Vec<Vec<u8>> = (0..n)
        .map(|j| event(&format!("{prefix}-{j}"), "S", "A", quantity))
        .collect();
    lake.put("h1", &recs).await;
    r.scan().await.expect("scan");
    r.drain().await.expect("drain");
}

#[tokio::test]
async fn compaction_keeps_every_row_and_old_versions_readable() {
    let mut lake = Lake::local();
    let mut r = lake.refiner().await;
    for i in 0..12 {
        put_and_refine(&mut lake, &mut r, &format!("e{i}"), 20, "1.5").await;
    }
    let before = lines_of(&lake.table_rows(POS_EVENT_LINES).await);
    let table = open_or_create(&lake.silver, &lake.aws, POS_EVENT_LINES)
        .await
        .expect("open");
    let version_before = table.version().expect("version");
    assert_eq!(active_files(&table).await.expect("files").len(), 12);
    let care = maintain(&lake.silver, &lake.aws, &MaintainConfig::default())
        .await
        .expect("maintain");
    let lines_care = care
        .iter()
        .find(|c| c.table == POS_EVENT_LINES)
        .expect("lines");
    assert_eq!((lines_care.files_before, lines_care.files_after), (12, 1));
    // the compacted file is encoded as refine encodes the table's files (decision 0017)
    let compacted = open_or_create(&lake.silver, &lake.aws, POS_EVENT_LINES)
        .await
        .expect("open");
    let file = &active_files(&compacted).await.expect("files")[0];
    let root = lake.silver.join(POS_EVENT_LINES);
    let path = root.local_path().expect("local").join(&file.path);
    let bytes = std::fs::read(&path).expect("compacted file");
    let parquet = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("parquet");
    let group = parquet.metadata().row_group(0);
    let arrived_at = (0..group.num_columns())
        .map(|i| group.column(i))
        .find(|c| c.column_path().string() == "arrived_at")
        .expect("arrived_at");
    assert!(
        arrived_at
            .encodings()
            .any(|e| e == Encoding::DELTA_BINARY_PACKED)
    );
    let after = lines_of(&lake.table_rows(POS_EVENT_LINES).await);
    assert_eq!(before, after);
    assert_eq!(after.len(), 240);
    // a reader pinned to the version before still reads it (vacuum kept its files)
    let mut old = open_or_create(&lake.silver, &lake.aws, POS_EVENT_LINES)
        .await
        .expect("open");
    old.load_version(version_before).await.expect("old version");
    let files = active_files(&old).await.expect("files");
    let rows = read_files(old.object_store(), &files, None)
        .await
        .expect("old files still there");
    assert_eq!(
        rows.iter()
            .flat_map(|(_, b)| b)
            .map(|b| b.num_rows())
            .sum::<usize>(),
        240
    );
    // refine goes on after compaction, and dedup still knows the compacted events
    lake.put(
        "h1",
        &[event("e0-0", "S", "A", "1.5"), event("new", "S", "A", "1")],
    )
    .await;
    let mut r = lake.refiner().await;
    let reports = r.drain().await.expect("drain");
    assert_eq!(reports.iter().map(|b| b.counts.duplicates).sum::<u64>(), 1);
    assert_eq!(lake.line_count().await, 241);
}

#[tokio::test]
async fn refine_on_s3() {
    let Some(aws) = moto_aws() else { return };
    let bucket = unique("lake");
    stocklake_storage::aws::ensure_bucket(&aws, &bucket)
        .await
        .expect("bucket");
    let base = Location::parse(&format!("s3://{bucket}/stocklake")).expect("loc");
    let mut lake = Lake::at(tempfile::tempdir().expect("tempdir"), Some(base), aws);
    lake.put("h1", &[event("s1", "S", "A", "1"), b"junk".to_vec()])
        .await;
    lake.put(
        "h2",
        &[event("s2", "S", "B", "2"), event("s1", "S", "A", "1")],
    )
    .await;
    let mut r = lake.refiner().await;
    let reports = r.drain().await.expect("drain");
    let total: u64 = reports.iter().map(|b| b.counts.records).sum();
    assert_eq!(total, 4);
    assert_eq!(lake.line_count().await, 2);
    assert_eq!(lake.quarantine_count().await, 1);
    let care = maintain(&lake.silver, &lake.aws, &MaintainConfig::default())
        .await
        .expect("maintain on s3");
    assert!(care.iter().any(|c| c.table == POS_EVENT_LINES));
    let mut again = lake.refiner().await;
    assert!(again.drain().await.expect("drain").is_empty());
}

/// Table care beside a refiner that keeps committing (as `stocklake run` does it): the
/// compaction commit and the appends both land, every line is there once, and refine goes on.
#[tokio::test]
async fn compaction_beside_refine_loses_nothing() {
    let mut lake = Lake::local();
    let mut r = lake.refiner().await;
    let mut expected = 0;
    for i in 0..20 {
        put_and_refine(&mut lake, &mut r, &format!("a{i}"), 5, "1").await;
        expected += 5;
    }
    let (silver, aws) = (lake.silver.clone(), lake.aws.clone());
    let care =
        tokio::spawn(async move { maintain(&silver, &aws, &MaintainConfig::default()).await });
    // commit until the care is done, and then once more
    let mut i = 0;
    loop {
        let done = care.is_finished();
        put_and_refine(&mut lake, &mut r, &format!("b{i}"), 5, "1").await;
        expected += 5;
        i += 1;
        if done {
            break;
        }
    }
    let care = care.await.expect("join").expect("table care beside refine");
    let lines_care = care
        .iter()
        .find(|c| c.table == POS_EVENT_LINES)
        .expect("lines");
    assert_eq!(lines_care.partitions_compacted, 1, "{lines_care:?}");
    assert!(i > 1, "the care ran while batches were committed");
    let lines = lines_of(&lake.table_rows(POS_EVENT_LINES).await);
    assert_eq!(lines.len(), expected);
    assert_eq!(lake.line_count().await, expected);
    // a fresh refiner has nothing left to do, and dedup still knows the compacted events
    lake.put("h1", &[event("a0-0", "S", "A", "1")]).await;
    let mut again = lake.refiner().await;
    let reports = again.drain().await.expect("drain");
    assert_eq!(reports.iter().map(|b| b.counts.duplicates).sum::<u64>(), 1);
    assert_eq!(lake.line_count().await, expected);
}

/// A lines table made before the payment method and client type were carried gains the two
/// columns when refine opens it (a metadata-only commit): its old files read them as nulls,
/// new lines carry them, and compaction joins old and new files into one.
#[tokio::test]
async fn a_lines_table_from_before_the_payment_columns_gains_them() {
    use deltalake::arrow::array::Array;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
    use stocklake_silver::tables::{LINES_SCHEMA, table_location};

    // old files: lines refined into a lake of their own, without the two columns
    let mut donor = Lake::local();
    donor
        .put(
            "h1",
            &[event("old-1", "S", "A", "2"), event("old-2", "S", "B", "3")],
        )
        .await;
    donor.refiner().await.drain().await.expect("refine");
    let old_schema = std::sync::Arc::new(deltalake::arrow::datatypes::Schema::new(
        LINES_SCHEMA
            .fields()
            .iter()
            .filter(|f| !matches!(f.name().as_str(), "payment_method" | "client_type"))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    // a file holds every column but the partition's; the writer wants the date back
    let old_rows: Vec<RecordBatch> = donor
        .table_rows(POS_EVENT_LINES)
        .await
        .iter()
        .map(|b| {
            let times = b
                .column_by_name("event_time")
                .expect("time")
                .as_primitive::<deltalake::arrow::datatypes::TimestampMicrosecondType>();
            let dates: deltalake::arrow::array::Date32Array = (0..b.num_rows())
                .map(|i| Some((times.value(i).div_euclid(86_400_000_000)) as i32))
                .collect();
            let columns = old_schema
                .fields()
                .iter()
                .map(|f| match b.column_by_name(f.name()) {
                    Some(c) => c.clone(),
                    None => std::sync::Arc::new(dates.clone()) as _,
                })
                .collect();
            RecordBatch::try_new(old_schema.clone(), columns).expect("old batch")
        })
        .collect();

    // the table as an earlier release made it, holding those lines
    let mut lake = Lake::local();
    let loc = table_location(&lake.silver, POS_EVENT_LINES);
    let path = loc.local_path().expect("local");
    std::fs::create_dir_all(path).expect("dir");
    let columns: Vec<deltalake::kernel::StructField> = old_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().try_into_kernel().expect("kernel field"))
        .collect();
    let url = url::Url::from_directory_path(path).expect("url");
    let table = deltalake::DeltaTableBuilder::from_url(url)
        .expect("builder")
        .build()
        .expect("table")
        .create()
        .with_columns(columns)
        .with_partition_columns(["event_date"])
        .await
        .expect("create the old table");
    let mut writer = deltalake::writer::RecordBatchWriter::for_table(&table).expect("writer");
    let mut table = table;
    use deltalake::writer::DeltaWriter as _;
    for b in old_rows {
        writer.write(b).await.expect("write");
    }
    writer
        .flush_and_commit(&mut table)
        .await
        .expect("commit old rows");

    // refine opens it: the columns are added, and new lines carry them
    let mut r = lake.refiner().await;
    let evolved = open_or_create(&lake.silver, &lake.aws, POS_EVENT_LINES)
        .await
        .expect("open");
    let names: Vec<String> = evolved
        .snapshot()
        .expect("snapshot")
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n == "payment_method") && names.iter().any(|n| n == "client_type"),
        "{names:?}"
    );
    let paid = serde_json::json!({
        "schema_version": 1, "event_id": "new-1", "event_type": "sale",
        "event_time": "2026-11-02T10:00:00Z", "store_id": "S",
        "lines": [{"sku": "A", "quantity": 1}], "payment_method": "Card", "client_type": "Member"
    })
    .to_string()
    .into_bytes();
    lake.put("h2", &[paid, event("new-2", "S", "B", "1")]).await;
    r.scan().await.expect("scan");
    r.drain().await.expect("refine into the old table");
    let read = |rows: &[RecordBatch]| {
        let mut out = BTreeMap::new();
        for b in rows {
            let ids = b.column_by_name("event_id").expect("id").as_string::<i32>();
            let pay = b
                .column_by_name("payment_method")
                .map(|c| c.as_string::<i32>().clone());
            for i in 0..b.num_rows() {
                let p = pay
                    .as_ref()
                    .filter(|p| !p.is_null(i))
                    .map(|p| p.value(i).to_string());
                out.insert(ids.value(i).to_string(), p);
            }
        }
        out
    };
    let want = BTreeMap::from([
        ("old-1".to_string(), None),
        ("old-2".to_string(), None),
        ("new-1".to_string(), Some("Card".to_string())),
        ("new-2".to_string(), None),
    ]);
    assert_eq!(read(&lake.table_rows(POS_EVENT_LINES).await), want);
    // compaction joins the old file and the new into one
    maintain(
        &lake.silver,
        &lake.aws,
        &MaintainConfig {
            min_files: 1,
            ..MaintainConfig::default()
        },
    )
    .await
    .expect("maintain");
    let compacted = open_or_create(&lake.silver, &lake.aws, POS_EVENT_LINES)
        .await
        .expect("open");
    assert_eq!(active_files(&compacted).await.expect("files").len(), 1);
    let rows = lake.table_rows(POS_EVENT_LINES).await;
    assert!(
        rows.iter()
            .all(|b| b.column_by_name("payment_method").is_some())
    );
    assert_eq!(read(&rows), want);
}
