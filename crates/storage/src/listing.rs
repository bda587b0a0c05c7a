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

/// Gunzips a bronze object (concatenated gzip members are read as one stream).
pub fn gunzip(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    use flate2::{Decompress, FlushDecompress, Status};
    use std::io::{Error, ErrorKind};
    // a gzip member ends with its uncompressed size (mod 2^32): the buffer is sized once for
    // it instead of doubled (and copied) on the way; a size deflate cannot reach from this
    // input (about 1032:1) is not trusted
    let trailer = gz
        .get(gz.len().saturating_sub(4)..)
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map_or(0, |t| u32::from_le_bytes(t) as usize);
    let hint = if trailer > gz.len() && trailer <= gz.len().saturating_mul(1032) {
        trailer
    } else {
        gz.len() * 4
    };
    let mut out = Vec::with_capacity(hint);
    let mut rest = gz;
    // at least one member: no bytes at all are not gzip (nor are they to a gzip reader)
    loop {
        // each member inflated straight into the buffer's spare room (a reader would have
        // zero-filled it first); zlib checks the member's header, CRC-32 and size
        let mut member = Decompress::new_gzip(15);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1 << 16));
            }
            let (read, written) = (member.total_in(), member.total_out());
            let input = rest.get(read as usize..).unwrap_or_default();
            let status = member
                .decompress_vec(input, &mut out, FlushDecompress::None)
                .map_err(|e| Error::new(ErrorKind::InvalidData, e))?;
            if status == Status::StreamEnd {
                break;
            }
            if member.total_in() == read && member.total_out() == written {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "the gzip data ends inside a member",
                ));
            }
        }
        rest = rest.get(member.total_in() as usize..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gunzip;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn members_are_read_whole_whatever_their_trailers_say() {
        let a: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let b = b"{\"short\": true}\n".repeat(3);
        // one member: sized from its trailer
        assert_eq!(gunzip(&gz(&a)).expect("one"), a);
        // two members: the trailer tells only the last one's size
        let mut two = gz(&b);
        two.extend(gz(&a));
        let mut want = b.clone();
        want.extend(&a);
        assert_eq!(gunzip(&two).expect("two"), want);
        let mut two = gz(&a);
        two.extend(gz(&b));
        let mut want = a.clone();
        want.extend(&b);
        assert_eq!(gunzip(&two).expect("two"), want);
        // empty data, and input that is not gzip (its last bytes read as a huge size)
        assert_eq!(gunzip(&gz(b"")).expect("empty"), b"");
        assert!(gunzip(&[0x1f, 0x8b, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(gunzip(b"not gzip at all, \xff\xff\xff\x7f").is_err());
    }

    #[test]
    fn damaged_or_cut_gzip_is_an_error_as_for_a_reader() {
        use std::io::Read;
        let a = b"{\"record\": 1}\n".repeat(1000);
        let whole = gz(&a);
        let reader = |data: &[u8]| {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(&mut out)
                .map(|_| out)
        };
        // nothing at all, cut anywhere, a byte of the CRC-32 or of the size changed, a second
        // member cut short
        let mut cases: Vec<Vec<u8>> = (0..whole.len()).map(|n| whole[..n].to_vec()).collect();
        for at in whole.len() - 8..whole.len() {
            let mut bad = whole.clone();
            bad[at] ^= 0x01;
            cases.push(bad);
        }
        let mut two = whole.clone();
        two.extend(&whole[..whole.len() / 2]);
        cases.push(two);
        for case in cases {
            assert!(gunzip(&case).is_err(), "{} bytes", case.len());
            assert!(reader(&case).is_err(), "{} bytes", case.len());
        }
        // whole members after a whole member read as the reader reads them
        let mut three = whole.clone();
        three.extend(gz(b""));
        three.extend(&whole);
        assert_eq!(
            gunzip(&three).expect("three"),
            reader(&three).expect("three")
        );
    }
}
