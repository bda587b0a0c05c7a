//! Gold's tables as described once (`db::table`) against what the migrations create, on both
//! databases: every described column exists, every column a batch leaves out may be left out,
//! and the stamped tables carry `gold_batch`.

use std::collections::BTreeMap;

use stocklake_model::Gold;
use stocklake_model::db::Param;
use stocklake_model::db::table::{Cell, Col, WRITTEN};

/// Per column of `table`: whether a row may leave it out (nullable, or with a default).
async fn columns(gold: &Gold, table: &str) -> BTreeMap<String, bool> {
    let sql = match gold.dialect() {
        stocklake_model::schema::Dialect::Sqlite => {
            "SELECT name, CASE WHEN \"notnull\" = 0 OR dflt_value IS NOT NULL THEN 1 ELSE 0 END FROM pragma_table_info(?)"
        }
        stocklake_model::schema::Dialect::Postgres => {
            "SELECT column_name::text, CASE WHEN is_nullable = 'YES' OR column_default IS NOT NULL THEN 1 ELSE 0 END FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?"
        }
    };
    gold.rows(
        sql,
        vec![Param::Text(table.to_string())],
        &[("name", Col::Text), ("optional", Col::I64)],
    )
    .await
    .expect("columns")
    .into_iter()
    .map(|r| match (&r[0], &r[1]) {
        (Cell::Text(n), Cell::I64(o)) => (n.to_string(), *o == 1),
        other => panic!("{other:?}"),
    })
    .collect()
}

async fn described_as_migrated(gold: &Gold) {
    gold.migrate().await.expect("migrate");
    for t in WRITTEN {
        let mut actual = columns(gold, t.name).await;
        assert!(!actual.is_empty(), "{} is not in gold", t.name);
        for (c, _) in t.columns {
            assert!(
                actual.remove(*c).is_some(),
                "{}.{c} is described but not migrated",
                t.name
            );
        }
        assert_eq!(
            actual.remove("gold_batch").is_some(),
            t.stamped,
            "{}: gold_batch",
            t.name
        );
        for (c, optional) in actual {
            assert!(
                optional,
                "{}.{c} is migrated, required, and not written",
                t.name
            );
        }
        for k in t.key {
            assert!(t.index(k).is_some(), "{}: key {k} is not a column", t.name);
        }
        assert!(t.published <= t.columns.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_tables_are_as_described() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = Gold::connect(&format!("sqlite://{}", dir.path().join("g.db").display()))
        .await
        .expect("gold");
    described_as_migrated(&gold).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_tables_are_as_described() {
    let Some(pg) = stocklake_testkit::postgres().await else {
        return;
    };
    let gold = Gold::connect(&pg.url).await.expect("gold");
    described_as_migrated(&gold).await;
}
