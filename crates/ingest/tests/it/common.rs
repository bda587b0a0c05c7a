use std::collections::BTreeMap;

use stocklake_storage::bronze::{ObjectName, parse_line};
use stocklake_storage::{list_bronze, read_bronze};

/// Every bronze record: (partition, sequence) -> payload bytes, and the object names.
pub async fn bronze_contents(
    store: &dyn object_store::ObjectStore,
) -> (BTreeMap<(String, String), Vec<u8>>, Vec<ObjectName>) {
    let objects = list_bronze(store, None).await.expect("list");
    let mut out = BTreeMap::new();
    let mut names = Vec::new();
    for o in objects {
        let text = read_bronze(store, &o.name).await.expect("read");
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let l = parse_line(line).expect("bronze line");
            let payload = l.payload_bytes().expect("payload").into_owned();
            let key = (l.partition.to_string(), l.sequence.to_string());
            assert!(
                out.insert(key, payload).is_none(),
                "a record twice in bronze"
            );
        }
        names.push(o.name);
    }
    (out, names)
}
