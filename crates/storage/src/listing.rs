//! Listing bronze objects, newest ingest dates only when asked.

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::bronze::{DATASET, ObjectName};

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
    out.sort_by(|a, b| a.name.path().cmp(&b.name.path()));
    Ok(out)
}
