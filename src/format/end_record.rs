//! The zip's end record: how a packed executable finds its archive and
//! manifest from the end of the file, in one read.
//!
//! The archive is a zip inside the executable (see `elf`). Its end record
//! (EOCD) lies within the last 64 KiB of the file, where zipimport, `unzip`
//! and `zipfile` look for it, and its comment carries the manifest:
//!
//! ```text
//! [runtime][zip entries][central directory][EOCD][comment][ELF tables]
//! ```
//!
//! The comment is `MAGIC`, a checksum (16 hex digits of the SHA-256 of the
//! JSON), a newline, and the JSON. zipimport takes the last `PK\x05\x06` in
//! the final 64 KiB, so nothing after our end record may contain those
//! bytes; JSON escapes control characters, so the comment cannot. This
//! module only parses bytes: every truncation or corruption is an `Err` or
//! "no payload", never a panic.

use super::Damage;
use super::manifest::Manifest;
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8] = b"pyferry-payload 1\n";
const EOCD_SIGNATURE: &[u8] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
/// The most bytes from the end of the file that can hold the end record and
/// its comment: zipimport looks no further.
pub const MAX_TAIL_LEN: usize = EOCD_LEN + u16::MAX as usize;

/// What the end of a packed file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRecord {
    pub manifest: Manifest,
    /// Entries in the central directory as the end record counts them
    /// (`None` for zip64 archives): the zip reader keeps one entry per name,
    /// so fewer entries than this means duplicate names.
    pub entries: Option<u64>,
    /// Where the central directory is, as zipimport finds it (`None` for
    /// zip64 archives, which zipimport cannot read before 3.13).
    pub central_directory: Option<CentralDirectory>,
}

/// The central directory's place in the file, and the offset zipimport adds
/// to every local header offset the directory records (the bytes before
/// the zip: the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentralDirectory {
    pub position: u64,
    pub size: u64,
    pub zip_start: u64,
}

/// Builds the zip comment that carries `manifest`.
pub fn encode_comment(manifest: &Manifest) -> Vec<u8> {
    let json = serde_json::to_vec(manifest).expect("a manifest always serializes");
    let mut comment = MAGIC.to_vec();
    comment.extend(checksum(&json).as_bytes());
    comment.push(b'\n');
    comment.extend(json);
    comment
}

fn checksum(json: &[u8]) -> String {
    let digest = Sha256::digest(json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the last bytes of a file (`tail`, at most `MAX_TAIL_LEN`) of a
/// file `file_len` long. `Ok(None)`: no pyferry payload; `Err`: there is one,
/// but it is broken.
pub fn parse(tail: &[u8], file_len: u64) -> Result<Option<EndRecord>, Damage> {
    let Some(eocd_at) = find_eocd(tail) else {
        return Ok(None);
    };
    // zipimport takes the last end-record signature of the file's tail:
    // one after ours (bytes appended to the file) would hide the archive
    // from it.
    if tail[eocd_at + EOCD_SIGNATURE.len()..]
        .windows(EOCD_SIGNATURE.len())
        .any(|window| window == EOCD_SIGNATURE)
    {
        return Err(Damage::Appended);
    }
    let eocd = &tail[eocd_at..eocd_at + EOCD_LEN];
    let comment_len = usize::from(u16_at(eocd, 20));
    let comment = &tail[eocd_at + EOCD_LEN..eocd_at + EOCD_LEN + comment_len];
    let body = &comment[MAGIC.len()..];
    let (sum, json) = body.split_at_checked(17).ok_or(Damage::ManifestCutShort)?;
    if sum[..16] != *checksum(json).as_bytes() || sum[16] != b'\n' {
        return Err(Damage::ManifestChecksum);
    }
    let manifest: Manifest =
        serde_json::from_slice(json).map_err(|e| Damage::ManifestUnreadable(e.to_string()))?;
    manifest.validate()?;

    let eocd_offset = file_len
        .checked_sub((tail.len() - eocd_at) as u64)
        .ok_or(Damage::EndRecordBeforeStart)?;
    let entries = end_record_entries(eocd);
    let cd_size = u64::from(u32_at(eocd, 12));
    let cd_offset = u64::from(u32_at(eocd, 16));
    if entries.is_none() || cd_size == u64::from(u32::MAX) || cd_offset == u64::from(u32::MAX) {
        // zip64: the real values are in the zip64 end record.
        return Ok(Some(EndRecord {
            manifest,
            central_directory: None,
            entries: eocd_at
                .checked_sub(ZIP64_TAIL_LEN)
                .and_then(|at| zip64_entries(&tail[at..eocd_at])),
        }));
    }
    // `strip` may move the archive, never shrink the room before it.
    if cd_offset + cd_size > eocd_offset {
        return Err(Damage::CentralDirectoryMisplaced {
            size: cd_size,
            offset: cd_offset,
            end_record: eocd_offset,
        });
    }
    let position = eocd_offset - cd_size;
    Ok(Some(EndRecord {
        manifest,
        entries,
        central_directory: position
            .checked_sub(cd_offset)
            .map(|zip_start| CentralDirectory {
                position,
                size: cd_size,
                zip_start,
            }),
    }))
}

/// How many records the central directory `directory` holds, walked by
/// their sizes as `zipfile` and zipimport walk it (the zip crate, and so
/// the archive's hash, reads as many as the end record counts); `None`
/// unless whole records fill it exactly.
pub fn central_records(directory: &[u8]) -> Option<u64> {
    let (mut offset, mut count) = (0usize, 0u64);
    while offset < directory.len() {
        let header = directory.get(offset..offset.checked_add(CENTRAL_HEADER_LEN)?)?;
        if !header.starts_with(CENTRAL_SIGNATURE) {
            return None;
        }
        offset = offset.checked_add(central_record_len(header))?;
        count += 1;
    }
    (offset == directory.len()).then_some(count)
}

/// A central directory record's fixed part, and how it starts.
pub const CENTRAL_HEADER_LEN: usize = 46;
pub const CENTRAL_SIGNATURE: &[u8] = b"PK\x01\x02";

/// The whole length of the central directory record whose fixed part is
/// `header` (`CENTRAL_HEADER_LEN` bytes): with its name, extra field and
/// comment, as every zip reader steps from one record to the next.
pub fn central_record_len(header: &[u8]) -> usize {
    let variable: usize = [28, 30, 32]
        .iter()
        .map(|&at| usize::from(u16_at(header, at)))
        .sum();
    CENTRAL_HEADER_LEN + variable
}

/// The entry count of a zip end record (22 bytes); `None` if `record` is not
/// one, or for zip64, whose real count lives elsewhere.
pub fn end_record_entries(record: &[u8]) -> Option<u64> {
    let count = u16_at(record.get(..EOCD_LEN)?, 10);
    (record.starts_with(EOCD_SIGNATURE) && count != u16::MAX).then_some(u64::from(count))
}

/// The bytes just before a zip64 archive's end record: its zip64 end record
/// (56 bytes, with no extensible data, as every zip writer we meet makes
/// it) and the locator (20 bytes).
pub const ZIP64_TAIL_LEN: usize = 56 + 20;

/// The entry count of a zip64 archive, from the `ZIP64_TAIL_LEN` bytes
/// before its end record; `None` if they are not a zip64 end record and
/// its locator.
pub fn zip64_entries(before_end_record: &[u8]) -> Option<u64> {
    let (record, locator) = before_end_record.split_at_checked(56)?;
    if !record.starts_with(b"PK\x06\x06") || !locator.starts_with(b"PK\x06\x07") {
        return None;
    }
    Some(u64::from_le_bytes(record.get(32..40)?.try_into().ok()?))
}

/// The last end record in `tail` whose comment is ours and fits in `tail`.
fn find_eocd(tail: &[u8]) -> Option<usize> {
    let last_start = tail.len().checked_sub(EOCD_LEN)?;
    (0..=last_start).rev().find(|&at| {
        tail[at..].starts_with(EOCD_SIGNATURE) && {
            let comment_start = at + EOCD_LEN;
            let comment_end = comment_start + usize::from(u16_at(tail, at + 20));
            comment_end <= tail.len() && tail[comment_start..comment_end].starts_with(MAGIC)
        }
    })
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Flavor;
    use crate::format::manifest::EntryPoint;

    fn manifest() -> Manifest {
        Manifest {
            name: "demo".to_owned(),
            entry: EntryPoint::parse("demo.cli:main").expect("valid"),
            python: "3.11".to_owned(),
            flavor: Flavor::System,
            extracted: vec!["numpy".to_owned(), "numpy.libs".to_owned()],
            system_cache: Some("/usr/lib/demo/pyferry".to_owned()),
            stdlib: Some("cd".repeat(32)),
            qt_platforms: Vec::new(),
            extract_on_import: None,
            glibc: Some(crate::format::manifest::GlibcFloor {
                version: "2.27".to_owned(),
                needed_by: "numpy/_core/_multiarray_umath.so".to_owned(),
            }),
            native_archive: Some(crate::format::manifest::NativeArchiveSize {
                len: 123_456,
                entries: 78,
            }),
            builder: false,
            hash: "ab".repeat(32),
            pyferry: "0.1.0".to_owned(),
        }
    }

    /// A file: 100 bytes of "runtime", a 50-byte "central directory", the EOCD.
    fn file_with(comment: &[u8]) -> Vec<u8> {
        let mut file = vec![0x7f; 100];
        file.extend([0xcc; 50]);
        file.extend(EOCD_SIGNATURE);
        file.extend([0, 0, 0, 0, 1, 0, 1, 0]);
        file.extend(50u32.to_le_bytes());
        file.extend(100u32.to_le_bytes());
        file.extend(u16::try_from(comment.len()).expect("short").to_le_bytes());
        file.extend(comment);
        file
    }

    fn parse_file(file: &[u8]) -> Result<Option<Manifest>, Damage> {
        let tail = &file[file.len().saturating_sub(MAX_TAIL_LEN)..];
        parse(tail, file.len() as u64).map(|found| found.map(|end| end.manifest))
    }

    #[test]
    fn central_records_are_counted_by_their_sizes() {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for name in ["a.py", "pkg/b.py", "c"] {
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .expect("start");
        }
        let bytes = zip.finish().expect("finish").into_inner();
        let eocd = bytes.len() - 22;
        let size = u32_at(&bytes, eocd + 12) as usize;
        let start = u32_at(&bytes, eocd + 16) as usize;
        let directory = &bytes[start..start + size];
        assert_eq!(central_records(directory), Some(3));
        assert_eq!(central_records(&[]), Some(0));
        // A record cut short, or bytes that are no record, count as none.
        assert_eq!(central_records(&directory[..size - 1]), None);
        let mut extra = directory.to_vec();
        extra.extend(b"PK\x05\x06 not a record");
        assert_eq!(central_records(&extra), None);
        // One more whole record: four, whatever the end record says.
        let first_len = 46 + 4;
        let mut more = directory.to_vec();
        more.extend_from_slice(&directory[..first_len]);
        assert_eq!(central_records(&more), Some(4));
    }

    #[test]
    fn round_trip() {
        let file = file_with(&encode_comment(&manifest()));
        let found = parse_file(&file).expect("valid").expect("present");
        assert_eq!(found, manifest());
    }

    #[test]
    fn data_after_the_comment_is_allowed() {
        let mut file = file_with(&encode_comment(&manifest()));
        file.extend([0x55; 3000]); // ELF section tables follow the zip
        assert_eq!(parse_file(&file), Ok(Some(manifest())));
    }

    #[test]
    fn no_payload() {
        assert_eq!(parse_file(b""), Ok(None));
        assert_eq!(parse_file(&[0x7f; 5000]), Ok(None));
        // A zip, but not ours.
        assert_eq!(parse_file(&file_with(b"some comment")), Ok(None));
    }

    #[test]
    fn every_truncation_is_handled() {
        let file = file_with(&encode_comment(&manifest()));
        for len in 0..file.len() {
            // Never a panic; a cut end record or comment is no payload at
            // all (the stamp check then reports the truncation).
            assert_eq!(parse_file(&file[..len]), Ok(None), "cut to {len} bytes");
        }
    }

    #[test]
    fn every_corrupted_byte_is_handled() {
        let comment = encode_comment(&manifest());
        let file = file_with(&comment);
        let eocd_start = file.len() - EOCD_LEN - comment.len();
        let body_start = eocd_start + EOCD_LEN + MAGIC.len();
        for at in eocd_start..file.len() {
            for value in [0x00, 0x05, b'"', b'}', b'0', 0xff] {
                let mut bad = file.clone();
                if bad[at] == value {
                    continue;
                }
                bad[at] = value;
                let result = parse_file(&bad);
                if at >= body_start {
                    assert!(result.is_err(), "byte {at} = {value}: {result:?}");
                } else if let Ok(Some(found)) = result {
                    // The EOCD's disk and entry counts are not ours to check, and
                    // its directory size and offset only as far as `strip` allows.
                    assert!((eocd_start + 4..eocd_start + 20).contains(&at), "byte {at}");
                    assert_eq!(found, manifest());
                }
            }
        }
    }

    #[test]
    fn manifest_errors_are_reported() {
        let mut bad = manifest();
        bad.extracted = vec!["../etc".to_owned()];
        assert!(parse_file(&file_with(&encode_comment(&bad))).is_err());
        let mut bad = manifest();
        bad.name = "a/b".to_owned();
        assert!(parse_file(&file_with(&encode_comment(&bad))).is_err());
        for (version, needed_by) in [("2", "x.so"), ("2.x", "x.so"), ("2.27", "\x1b[2Jx.so")] {
            let mut bad = manifest();
            bad.glibc = Some(crate::format::manifest::GlibcFloor {
                version: version.to_owned(),
                needed_by: needed_by.to_owned(),
            });
            assert!(
                parse_file(&file_with(&encode_comment(&bad))).is_err(),
                "{version}"
            );
        }
        assert!(parse_file(&file_with(&encode_comment(&manifest()))).is_ok());
        let json = b"{\"name\": \"demo\"}";
        let mut comment = MAGIC.to_vec();
        comment.extend(checksum(json).as_bytes());
        comment.push(b'\n');
        comment.extend(json);
        assert!(parse_file(&file_with(&comment)).is_err());
    }

    #[test]
    fn central_directory_must_meet_the_end_record() {
        let mut file = file_with(&encode_comment(&manifest()));
        let eocd = file.len() - EOCD_LEN - encode_comment(&manifest()).len();
        file[eocd + 16] = 101; // central directory offset, one byte too far
        assert!(parse_file(&file).is_err());
    }

    /// A zip64 archive as the zip crate writes it (70,000 entries): the
    /// count comes from its zip64 end record.
    #[test]
    fn zip64_entry_count_is_read() {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for i in 0..70_000 {
            writer.start_file(format!("{i}"), options).expect("entry");
        }
        let bytes = writer.finish().expect("finish").into_inner();
        let eocd = bytes.len() - EOCD_LEN;
        assert_eq!(end_record_entries(&bytes[eocd..]), None);
        assert_eq!(
            zip64_entries(&bytes[eocd - ZIP64_TAIL_LEN..eocd]),
            Some(70_000)
        );
        assert_eq!(zip64_entries(&bytes[..ZIP64_TAIL_LEN]), None);
    }

    #[test]
    fn an_end_record_signature_after_ours_is_damage() {
        let mut file = file_with(&encode_comment(&manifest()));
        file.extend(EOCD_SIGNATURE);
        let len = file.len() as u64;
        assert_eq!(parse(&file, len).map(|_| ()), Err(Damage::Appended));
    }
}
