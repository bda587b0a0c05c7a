//! `stocklake evaluate` at CI size: the whole pipeline on a small simulated chain, judged
//! against the simulator's truth. The full-size table is in docs/evaluation.md.

use crate::common::{ok, stocklake};

/// The row of `method` in the result table, as its cells.
fn row<'a>(table: &'a str, method: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {method}")))
        .unwrap_or_else(|| panic!("no row for {method}:\n{table}"))
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn percent(cell: &str) -> f64 {
    cell.trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("not a percentage: {cell}"))
}

#[test]
fn evaluate_judges_the_alerts_against_the_truth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("evaluation.md");
    let mut c = stocklake(dir.path(), None);
    c.args([
        "evaluate", "--stores", "1", "--skus", "2000", "--days", "14", "--seed", "3", "--out",
    ])
    .arg(&out)
    .arg("--workdir")
    .arg(dir.path().join("wd"));
    ok(c);
    let table = std::fs::read_to_string(&out).expect("the table is written");
    let ours = row(&table, "stocklake (predictive alerts)");
    // method | stock-outs | ahead | at all | median | judged | false
    let stockouts: u64 = ours[1].parse().expect("stock-outs");
    assert!(
        stockouts > 0,
        "the simulated chain had no stock-out:\n{table}"
    );
    let ahead = percent(ours[2]);
    let at_all = percent(ours[3]);
    let false_share = percent(ours[6]);
    assert!(
        ahead <= at_all && at_all <= 100.0,
        "recall out of order:\n{table}"
    );
    // one store with the full range (a hundred and more stock-outs in its second week): the
    // predictive alerts see most stock-outs coming, and beat the static one-case threshold on
    // both counts — more stock-outs warned a lead time ahead, a smaller share of false alerts
    assert!(
        at_all >= 30.0,
        "the alerts missed most stock-outs:\n{table}"
    );
    let one_case = row(&table, "static: recorded stock < 1 case");
    assert!(
        ahead > percent(one_case[2]),
        "the one-case threshold warned in time of as many stock-outs:\n{table}"
    );
    assert!(
        false_share < percent(one_case[6]),
        "the one-case threshold's alerts were false less often:\n{table}"
    );
    assert!(table.contains("Phantom stock"), "{table}");
    assert!(dir.path().join("wd/episodes.csv").is_file());
}

#[test]
fn the_closed_loop_measures_the_shelves_under_each_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = stocklake(dir.path(), None);
    c.args([
        "evaluate",
        "--stores",
        "5",
        "--skus",
        "400",
        "--days",
        "28",
        "--seed",
        "11",
        "--policy",
        "stocklake,static-ss",
        "--policy",
        "oracle",
        "--service-level",
        "0.99",
        "--json",
    ])
    .arg("--workdir")
    .arg(dir.path().join("wd"));
    let out = ok(c);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let policy = |name: &str| -> &serde_json::Value {
        json["policies"]
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {json:#}"))
    };
    let num = |name: &str, field: &str| -> f64 {
        policy(name)[field]
            .as_f64()
            .unwrap_or_else(|| panic!("no {field} of {name} in {json:#}"))
    };
    for name in ["stocklake", "static-ss", "oracle"] {
        let a = num(name, "availability");
        assert!((0.5..=1.0).contains(&a), "{name}: availability {a}");
        assert!(num(name, "avg_inventory_days") > 0.0);
        assert!(num(name, "orders_per_store_week") > 0.0);
    }
    assert!(
        json["policies"].get("store").is_none(),
        "only the policies asked for"
    );
    // stores that follow stocklake's proposals, aiming at 99% of the demand, lose fewer units
    // than with the original design's static rule and hold no more stock; the oracle, knowing
    // the shelves and the demand, loses fewer still
    let (ours, rule) = (
        num("stocklake", "lost_units"),
        num("static-ss", "lost_units"),
    );
    assert!(
        ours < rule,
        "stocklake lost {ours} units, static-ss {rule}:\n{json:#}"
    );
    assert!(
        num("stocklake", "avg_inventory_days") <= num("static-ss", "avg_inventory_days"),
        "stocklake held more stock than static-ss:\n{json:#}"
    );
    assert!(num("oracle", "lost_units") < ours, "{json:#}");
}
