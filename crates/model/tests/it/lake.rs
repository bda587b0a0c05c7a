//! The gold lake holds what gold holds, exactly once: published batch by batch, after a restart
//! of the publisher, and after gold is rebuilt — on SQLite and on PostgreSQL.

use std::collections::BTreeMap;

use deltalake::arrow::array::{ArrayRef, Int32Array, RecordBatch};
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use stocklake_model::Gold;
use stocklake_model::lake::{GoldLake, TABLES, read};
use stocklake_silver::read::{active_files, read_files};
use stocklake_simulate::{SimConfig, Simulator};
use stocklake_storage::{AwsOptions, Location};

use crate::common::*;

/// Each row of a batch as text, column by column in `names`' order.
fn rows_of(b: &RecordBatch, names: &[&str]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("∅");
    let cols: Vec<ArrayFormatter<'_>> = names
        .iter()
        .map(|n| {
            ArrayFormatter::try_new(b.column_by_name(n).expect("column").as_ref(), &opts)
                .expect("formatter")
        })
        .collect();
    (0..b.num_rows())
        .map(|i| {
            cols.iter()
                .map(|c| c.value(i).to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Every row of every lake table (partition columns put back from the paths), sorted.
async fn lake_rows(root: &Location) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in TABLES {
        let table = deltalake::open_table(
            url::Url::parse(&format!("{}/", root.join(t.name).url())).expect("url"),
        )
        .await
        .expect("lake table");
        let files = active_files(&table).await.expect("files");
        let names: Vec<&str> = t.columns().iter().map(|(n, _)| *n).collect();
        let mut rows = Vec::new();
        for (f, batches) in read_files(table.object_store(), &files, None)
            .await
            .expect("read")
        {
            for b in batches {
                let b = match t.partition {
                    Some(p) if b.column_by_name(p).is_none() => {
                        let v: i32 = f.partition[p]
                            .as_deref()
                            .expect("partition value")
                            .parse()
                            .expect("int");
                        let mut fields: Vec<_> = b.schema().fields().iter().cloned().collect();
                        fields.push(std::sync::Arc::new(
                            deltalake::arrow::datatypes::Field::new(
                                p,
                                deltalake::arrow::datatypes::DataType::Int32,
                                false,
                            ),
                        ));
                        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                        cols.push(std::sync::Arc::new(Int32Array::from(vec![v; b.num_rows()])));
                        RecordBatch::try_new(
                            std::sync::Arc::new(deltalake::arrow::datatypes::Schema::new(fields)),
                            cols,
                        )
                        .expect("batch")
                    }
                    _ => b,
                };
                rows.extend(rows_of(&b, &names));
            }
        }
        rows.sort();
        out.insert(t.name, rows);
    }
    out
}

/// Every row of every published table as gold holds it, sorted.
async fn gold_rows(gold: &Gold) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in TABLES {
        let names: Vec<&str> = t.columns().iter().map(|(n, _)| *n).collect();
        let sql = format!("SELECT {} FROM {}", names.join(", "), t.name);
        let b = read(gold, &sql, Vec::new(), &t.columns())
            .await
            .expect("gold");
        let mut rows = rows_of(&b, &names);
        rows.sort();
        out.insert(t.name, rows);
    }
    out
}

async fn assert_same(root: &Location, gold: &Gold, when: &str) {
    let (lake, gold) = (lake_rows(root).await, gold_rows(gold).await);
    for t in TABLES {
        assert!(
            !gold[t.name].is_empty(),
            "{} is empty in gold {when}",
            t.name
        );
        assert_eq!(
            lake[t.name].len(),
            gold[t.name].len(),
            "{} rows {when}",
            t.name
        );
        assert_eq!(lake[t.name], gold[t.name], "{} {when}", t.name);
    }
}

async fn run(url: &str) {
    let mut sim = Simulator::new(SimConfig {
        seed: 31,
        stores: 2,
        skus: 30,
        days: 6,
        ..SimConfig::default()
    });
    let mut records = Vec::new();
    while let Some(mut d) = sim.next_day() {
        records.append(&mut d.records);
    }
    let mut lake = Lake::new();
    let root = Location::Local(lake.dir.path().join("gold-lake"));
    let mut model = lake.model(url).await;
    let mut publisher = GoldLake::open(root.clone(), AwsOptions::default())
        .await
        .expect("open the lake");
    // batch by batch: facts appended, changed partitions rewritten, each exactly once
    for chunk in records.chunks(records.len() / 4 + 1) {
        lake.put(chunk).await;
        lake.refine().await;
        model.drain().await.expect("model");
        let done = publisher.publish(model.gold()).await.expect("publish");
        assert!(done.iter().any(|d| d.rows > 0), "{done:?}");
    }
    assert_same(&root, model.gold(), "after four publications").await;
    // table care joins each partition's files and keeps every row; publishing goes on after it
    let care = publisher
        .care(&stocklake_silver::maintain::MaintainConfig {
            min_files: 2,
            ..Default::default()
        })
        .await
        .expect("care");
    assert!(
        care.iter()
            .any(|c| c.partitions_compacted > 0 && c.files_after < c.files_before),
        "{care:?}"
    );
    assert_same(&root, model.gold(), "after table care").await;
    // a publisher started again finds nothing to do, and duplicates nothing
    let mut again = GoldLake::open(root.clone(), AwsOptions::default())
        .await
        .expect("open again");
    let done = again.publish(model.gold()).await.expect("publish again");
    assert!(done.iter().all(|d| d.rows == 0 && !d.reset), "{done:?}");
    let versions = again.versions(model.gold()).await.expect("versions");
    assert!(versions.values().all(|v| v.is_some()), "{versions:?}");
    assert_same(&root, model.gold(), "after a restart").await;
    // gold rebuilt from silver (a replay): the lake follows it from the start
    model.gold().truncate().await.expect("truncate");
    let mut rebuilt = lake.model(url).await;
    rebuilt.drain().await.expect("rebuild");
    let done = again
        .publish(rebuilt.gold())
        .await
        .expect("publish the rebuilt gold");
    assert!(done.iter().any(|d| d.reset), "{done:?}");
    assert_same(&root, rebuilt.gold(), "after gold was rebuilt").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_gold_is_published_to_the_lake_exactly_once() {
    let lake = Lake::new();
    run(&lake.sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_gold_is_published_to_the_lake_exactly_once() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    run(&pg.url).await;
}
