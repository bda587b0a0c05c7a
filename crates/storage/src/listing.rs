//! Listing bronze objects, newest ingest dates only when asked.

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::bronze::{DATASET, ObjectName};
use crate::gzip::gunzip;

/// A bronze object found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BronzeObject {
    pub name: ObjectName,
    pub size: u64,
}

/// Lists the bronze objects with an ingest date on or after `since` (all when `None`), in name
/// order. Files that are not bronze objects (temporary uploads, other tools' files) are skipped.
pub async fn list_bronze(
    store: &dyn ObjectStore,
    since: Option<NaiveDate>,
) -> Result<Vec<BronzeObject>, object_store::Error> {
    let root = Path::from(DATASET);
    let listing = store.list_with_delimiter(Some(&root)).await?;
    let mut out = Vec::new();
    for dir in listing.common_prefixes {
        let date = dir
            .filename()
            .and_then(|f| f.strip_prefix("ingest_date="))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let Some(date) = date else { continue };
        if since.is_some_and(|s| date < s) {
            continue;
        }
        let mut objects: Vec<BronzeObject> = store
            .list(Some(&dir))
            .try_filter_map(|meta| async move {
                Ok(
                    ObjectName::parse(meta.location.as_ref()).map(|name| BronzeObject {
                        name,
                        size: meta.size,
                    }),
                )
            })
            .try_collect()
            .await?;
        out.append(&mut objects);
    }
    out.sort_by_key(|o| o.name.path());
    Ok(out)
}

/// The highest last sequence number in bronze per partition of `source`: where each partition
/// of that source resumes.
pub fn high_water_marks(
    objects: &[BronzeObject],
    source: &crate::bronze::Source,
) -> std::collections::HashMap<String, String> {
    use crate::bronze::cmp_seq;
    let mut out: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for o in objects.iter().filter(|o| &o.name.source == source) {
        match out.get_mut(&o.name.partition) {
            Some(cur) if cmp_seq(&o.name.last_seq, cur).is_gt() => o.name.last_seq.clone_into(cur),
            Some(_) => {}
            None => {
                out.insert(o.name.partition.clone(), o.name.last_seq.clone());
            }
        }
    }
    out
}

/// Reads a bronze object and returns its lines' bytes (gunzipped, newline separated).
pub async fn read_bronze(
    store: &dyn ObjectStore,
    name: &ObjectName,
) -> Result<Vec<u8>, object_store::Error> {
    use object_store::ObjectStoreExt;
    let path = Path::from(name.path());
    let gz = store.get(&path).await?.bytes().await?;
    gunzip(&gz).map_err(|e| object_store::Error::Generic {
        store: "bronze",
        source: Box::new(e),
    })
}
