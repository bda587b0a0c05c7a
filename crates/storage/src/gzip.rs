//! Gunzip of bronze objects (RFC 1952), whole objects in memory.
//!
//! Each member's header is read here, its deflate data inflated raw straight into the output's
//! spare room, and its trailer checked: CRC-32 (by `crc32fast`, which folds with carry-less
//! multiplication) and size. zlib-rs checking the CRC itself took half of the inflate's
//! instructions in refine (5% of all of them), for the same answer; this is how flate2's own
//! gzip reader splits the work too.
//!
//! Only `flate2` and `crc32fast` are used, so that the fuzz target can compile this file alone.

use std::io::{Error, ErrorKind, Result};

use flate2::{Decompress, FlushDecompress, Status};

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
/// Flag bits RFC 1952 reserves: "must give an error indication if any reserved bit is non-zero".
const FRESERVED: u8 = 0xe0;

fn cut() -> Error {
    Error::new(
        ErrorKind::UnexpectedEof,
        "the gzip data ends inside a member",
    )
}

fn invalid(what: &'static str) -> Error {
    Error::new(ErrorKind::InvalidData, what)
}

/// Gunzips a bronze object: concatenated gzip members are read as one stream. Anything a gzip
/// reader refuses is an error here too: no bytes at all, a damaged header, deflate data or
/// trailer, a member cut short, bytes after a member that are not another member.
pub fn gunzip(gz: &[u8]) -> Result<Vec<u8>> {
    // a gzip member ends with its uncompressed size (mod 2^32): the buffer is sized once for
    // it instead of doubled (and copied) on the way; a size deflate cannot reach from this
    // input (about 1032:1) is not trusted
    let trailer = gz
        .last_chunk::<4>()
        .map_or(0, |t| u32::from_le_bytes(*t) as usize);
    let hint = if trailer > gz.len() && trailer <= gz.len().saturating_mul(1032) {
        trailer
    } else {
        gz.len() * 4
    };
    let mut out = Vec::with_capacity(hint);
    let mut rest = gz;
    // at least one member
    loop {
        let deflated = rest.get(header_len(rest)?..).ok_or_else(cut)?;
        let start = out.len();
        // inflated straight into the buffer's spare room (a reader would have zero-filled it)
        let mut member = Decompress::new(false);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1 << 16));
            }
            let (read, written) = (member.total_in(), member.total_out());
            let input = deflated.get(read as usize..).unwrap_or_default();
            let status = member
                .decompress_vec(input, &mut out, FlushDecompress::None)
                .map_err(|e| Error::new(ErrorKind::InvalidData, e))?;
            if status == Status::StreamEnd {
                break;
            }
            if member.total_in() == read && member.total_out() == written {
                return Err(cut());
            }
        }
        let after = usize::try_from(member.total_in()).map_err(|_| cut())?;
        let trailer = deflated
            .get(after..)
            .and_then(|t| t.first_chunk::<8>())
            .ok_or_else(cut)?;
        let data = out.get(start..).unwrap_or_default();
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        let (want_crc, want_len) = trailer.split_at(4);
        if want_crc != crc.finalize().to_le_bytes() {
            return Err(invalid("a gzip member's CRC-32 does not match its data"));
        }
        // the size is kept modulo 2^32
        if want_len != (data.len() as u32).to_le_bytes() {
            return Err(invalid("a gzip member's size does not match its data"));
        }
        rest = deflated.get(after + 8..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(out);
        }
    }
}

/// The length of the member header `gz` starts with: ten fixed bytes, then the optional extra
/// field, file name, comment and header CRC its flags announce.
fn header_len(gz: &[u8]) -> Result<usize> {
    let fixed = gz.first_chunk::<10>().ok_or_else(cut)?;
    if fixed[..3] != [0x1f, 0x8b, 8] {
        return Err(invalid(
            "not a gzip member (no gzip magic and deflate method)",
        ));
    }
    let flags = fixed[3];
    if flags & FRESERVED != 0 {
        return Err(invalid("a gzip header sets reserved flags"));
    }
    let mut at = fixed.len();
    if flags & FEXTRA != 0 {
        let xlen = gz
            .get(at..)
            .and_then(|b| b.first_chunk::<2>())
            .ok_or_else(cut)?;
        at += 2 + usize::from(u16::from_le_bytes(*xlen));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let nul = gz
                .get(at..)
                .and_then(|b| b.iter().position(|&c| c == 0))
                .ok_or_else(cut)?;
            at += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let header = gz.get(..at).ok_or_else(cut)?;
        let stored = gz
            .get(at..)
            .and_then(|b| b.first_chunk::<2>())
            .ok_or_else(cut)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(header);
        if u16::from_le_bytes(*stored) != crc.finalize() as u16 {
            return Err(invalid("a gzip header's CRC does not match it"));
        }
        at += 2;
    }
    // an extra field longer than the data
    if at > gz.len() {
        return Err(cut());
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::gunzip;
    use std::io::{Read, Write};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    /// flate2's own gzip reader, the reference
    fn reader(data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .map(|_| out)
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
        let a = b"{\"record\": 1}\n".repeat(1000);
        let whole = gz(&a);
        // nothing at all, cut anywhere, a byte of the CRC-32 or of the size changed, a second
        // member cut short, a byte of the deflate data changed
        let mut cases: Vec<Vec<u8>> = (0..whole.len()).map(|n| whole[..n].to_vec()).collect();
        for at in whole.len() - 8..whole.len() {
            let mut bad = whole.clone();
            bad[at] ^= 0x01;
            cases.push(bad);
        }
        let mut two = whole.clone();
        two.extend(&whole[..whole.len() / 2]);
        cases.push(two);
        let mut garbage = whole.clone();
        garbage.extend(b"\n");
        cases.push(garbage);
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

    #[test]
    fn every_optional_header_field_is_skipped_and_checked_as_by_a_reader() {
        let data = b"{\"record\": 2}\n".repeat(50);
        let mut member = Vec::new();
        let mut e = flate2::GzBuilder::new()
            .filename("till-07.ndjson")
            .comment("from the store")
            .extra(vec![7u8; 300])
            .write(&mut member, flate2::Compression::default());
        e.write_all(&data).expect("write");
        e.finish().expect("finish");
        assert_eq!(gunzip(&member).expect("fields"), data);
        assert_eq!(reader(&member).expect("fields"), data);

        // a header CRC (FHCRC), right and wrong; reserved flags; another method than deflate
        let plain = gz(&data);
        let mut header = plain[..10].to_vec();
        header[3] |= 1 << 1;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        let mut with_crc = header.clone();
        with_crc.extend(&(crc.finalize() as u16).to_le_bytes());
        with_crc.extend(&plain[10..]);
        assert_eq!(gunzip(&with_crc).expect("FHCRC"), data);
        assert_eq!(reader(&with_crc).expect("FHCRC"), data);
        let mut wrong = with_crc.clone();
        wrong[10] ^= 1;
        let mut reserved = plain.clone();
        reserved[3] |= 0x20;
        let mut method = plain.clone();
        method[2] = 7;
        // an extra field or a name running past the end
        let mut long_extra = plain[..10].to_vec();
        long_extra[3] |= 1 << 2;
        long_extra.extend([0xff, 0xff, 1, 2, 3]);
        let mut endless_name = plain[..10].to_vec();
        endless_name[3] |= 1 << 3;
        endless_name.extend(b"no end");
        for (what, case) in [
            ("wrong header CRC", wrong),
            ("reserved flag", reserved),
            ("method", method),
            ("extra field", long_extra),
            ("name", endless_name),
        ] {
            assert!(gunzip(&case).is_err(), "{what}");
            assert!(reader(&case).is_err(), "{what}");
        }
    }

    proptest::proptest! {
        /// Any member list, each member with any header fields and any data, damaged at any
        /// byte or not: the same bytes as the reader, or an error where it errs.
        #[test]
        fn reads_what_a_reader_reads(
            members in proptest::collection::vec(
                (proptest::collection::vec(proptest::num::u8::ANY, 0..600), 0u8..8),
                1..4,
            ),
            damage in proptest::option::of((proptest::num::usize::ANY, 1u8..=255)),
        ) {
            let mut all = Vec::new();
            for (data, fields) in &members {
                let mut b = flate2::GzBuilder::new();
                if fields & 1 != 0 {
                    b = b.filename("f");
                }
                if fields & 2 != 0 {
                    b = b.comment("c");
                }
                if fields & 4 != 0 {
                    b = b.extra(vec![1, 2, 3]);
                }
                let mut e = b.write(&mut all, flate2::Compression::fast());
                e.write_all(data).expect("write");
                e.finish().expect("finish");
            }
            if let Some((at, xor)) = damage {
                let at = at % all.len();
                all[at] ^= xor;
            }
            match (gunzip(&all), reader(&all)) {
                (Ok(ours), Ok(theirs)) => proptest::prop_assert_eq!(ours, theirs),
                (Err(_), Err(_)) => {}
                (ours, theirs) => proptest::prop_assert!(
                    false,
                    "gunzip {:?}, reader {:?}",
                    ours.map(|o| o.len()),
                    theirs.map(|t| t.len())
                ),
            }
        }
    }
}
