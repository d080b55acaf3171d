//! A zip of entries that pack compressed before writing them: the
//! standard library unit and the app's pycs, zstd frames of a dictionary
//! (`format::pyc_zstd`). The zip crate writes only the methods it
//! compresses itself, and takes compressed bytes only from another zip
//! (`raw_copy_file`), so this writes the few records such a zip has: no
//! zip64 (the unit is far below 4 GiB and 65,535 entries), no extra fields,
//! the entries' order as given, one timestamp, Unix modes.

use super::tree::SourceFile;
use crate::builder::progress::Phase;
use crate::error::{Error, Reason, Result, io};
use crate::format::{pyc_zstd, solid};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use zip::DateTime;

/// Zip's method numbers besides `pyc_zstd::METHOD`.
pub const STORED: u16 = 0;
pub const DEFLATED: u16 = 8;

/// Files compressed at once, by one compressor (one load of the
/// dictionary).
const COMPRESSED_TOGETHER: usize = 64;

/// How pycs are compressed: zstd frames of this dictionary, at this level.
pub struct Pycs<'a> {
    pub dictionary: &'a [u8],
    pub level: i32,
}

/// Reads and compresses `files` (name, file, zip method: stored, deflated
/// at level 9, or a zstd frame of `pycs`), in parallel, each a step of
/// `phase`; in the order given.
pub fn compress(
    files: &[(&str, &SourceFile, u16)],
    pycs: &Pycs,
    phase: &Phase,
) -> Result<Vec<PreparedEntry>> {
    let chunks: Vec<&[(&str, &SourceFile, u16)]> = files.chunks(COMPRESSED_TOGETHER).collect();
    let compressed = solid::in_parallel(&chunks, |chunk| {
        let mut zstd = None;
        chunk
            .iter()
            .map(|&(name, source, method)| {
                let bytes = fs::read(&source.path).map_err(io("read", &source.path))?;
                let compress_error = |e: std::io::Error| Error::Pack {
                    reason: Reason(format!("cannot compress `{}`: {e}", source.path.display())),
                };
                let (crc, size) = (crc32fast::hash(&bytes), bytes.len() as u64);
                let data = match method {
                    STORED => bytes,
                    DEFLATED => {
                        let level = flate2::Compression::best();
                        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
                        encoder
                            .write_all(&bytes)
                            .and_then(|()| encoder.finish())
                            .map_err(compress_error)?
                    }
                    pyc_zstd::METHOD => {
                        if zstd.is_none() {
                            let made = pyc_zstd::Compressor::new(pycs.dictionary, pycs.level)
                                .map_err(compress_error)?;
                            zstd = Some(made);
                        }
                        let compressor = zstd.as_mut().expect("made above");
                        compressor.compress(&bytes).map_err(compress_error)?
                    }
                    other => {
                        return Err(Error::Pack {
                            reason: Reason(format!("pack has no compressor of zip method {other}")),
                        });
                    }
                };
                phase.step();
                Ok(PreparedEntry {
                    name: name.to_owned(),
                    mode: if source.executable { 0o755 } else { 0o644 },
                    method,
                    crc,
                    size,
                    data,
                })
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(compressed.into_iter().flatten().collect())
}

/// One entry, compressed: `data` holds `size` bytes whose CRC-32 is `crc`,
/// compressed with zip's `method`.
pub struct PreparedEntry {
    pub name: String,
    pub mode: u32,
    pub method: u16,
    pub crc: u32,
    pub size: u64,
    pub data: Vec<u8>,
}

/// Zip's "version needed to extract": 6.3 for zstd (method 93), 2.0 for
/// deflate and stored.
fn version_needed(method: u16) -> u16 {
    match method {
        pyc_zstd::METHOD => 63,
        _ => 20,
    }
}

/// Writes `entries` as the zip at `path`.
pub fn write(path: &Path, entries: &[PreparedEntry], timestamp: DateTime) -> Result<()> {
    let too_large = || Error::Pack {
        reason: Reason(format!(
            "`{}` would need zip64, which pack's prepared zips do not write",
            path.display()
        )),
    };
    let count = u16::try_from(entries.len())
        .ok()
        .filter(|&count| count < u16::MAX)
        .ok_or_else(too_large)?;
    let file = fs::File::create(path).map_err(io("create", path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let (time, date) = (timestamp.timepart(), timestamp.datepart());
    let mut directory = Vec::new();
    let mut offset: u64 = 0;
    for entry in entries {
        let fits = |value: u64| u32::try_from(value).map_err(|_| too_large());
        let (size, compressed, at) = (
            fits(entry.size)?,
            fits(entry.data.len() as u64)?,
            fits(offset)?,
        );
        let name = entry.name.as_bytes();
        let name_len = u16::try_from(name.len()).map_err(|_| too_large())?;
        // Bit 11: the name is UTF-8.
        let flags: u16 = if entry.name.is_ascii() { 0 } else { 0x800 };
        let needed = version_needed(entry.method);
        let common = [
            &needed.to_le_bytes()[..],
            &flags.to_le_bytes(),
            &entry.method.to_le_bytes(),
            &time.to_le_bytes(),
            &date.to_le_bytes(),
            &entry.crc.to_le_bytes(),
            &compressed.to_le_bytes(),
            &size.to_le_bytes(),
            &name_len.to_le_bytes(),
            // No extra field.
            &0u16.to_le_bytes(),
        ]
        .concat();
        let local = [&b"PK\x03\x04"[..], &common, name].concat();
        out.write_all(&local)
            .and_then(|()| out.write_all(&entry.data))
            .map_err(io("write", path))?;
        // Made by Unix (3), zip 6.3; a regular file of `mode`.
        let made_by: u16 = (3 << 8) | 63;
        let external = (0o100_000 | entry.mode) << 16;
        directory.extend_from_slice(b"PK\x01\x02");
        directory.extend_from_slice(&made_by.to_le_bytes());
        directory.extend_from_slice(&common);
        // No comment, disk 0, no internal attributes.
        directory.extend_from_slice(&[0; 6]);
        directory.extend_from_slice(&external.to_le_bytes());
        directory.extend_from_slice(&at.to_le_bytes());
        directory.extend_from_slice(name);
        offset += (local.len() + entry.data.len()) as u64;
    }
    let directory_at = u32::try_from(offset).map_err(|_| too_large())?;
    let directory_len = u32::try_from(directory.len()).map_err(|_| too_large())?;
    let end = [
        &b"PK\x05\x06"[..],
        // This disk, and the directory's.
        &[0; 4],
        &count.to_le_bytes(),
        &count.to_le_bytes(),
        &directory_len.to_le_bytes(),
        &directory_at.to_le_bytes(),
        // No comment.
        &[0; 2],
    ]
    .concat();
    out.write_all(&directory)
        .and_then(|()| out.write_all(&end))
        .and_then(|()| out.flush())
        .map_err(io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_zip_crate_reads_what_is_written() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("unit.zip");
        let text = b"print('hello')\n".repeat(50);
        let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        deflated.write_all(&text).expect("in memory");
        let entries = [
            PreparedEntry {
                name: "a/stored.py".into(),
                mode: 0o644,
                method: 0,
                crc: crc32fast::hash(&text),
                size: text.len() as u64,
                data: text.clone(),
            },
            PreparedEntry {
                name: "a/déflaté.py".into(),
                mode: 0o755,
                method: 8,
                crc: crc32fast::hash(&text),
                size: text.len() as u64,
                data: deflated.finish().expect("in memory"),
            },
            PreparedEntry {
                name: "a/frame.pyc".into(),
                mode: 0o644,
                method: 93,
                crc: 7,
                size: 1000,
                data: b"frame".to_vec(),
            },
        ];
        let timestamp = DateTime::from_date_and_time(2020, 2, 3, 4, 5, 6).expect("a date");
        write(&path, &entries, timestamp).expect("written");
        let mut zip = zip::ZipArchive::new(fs::File::open(&path).expect("open")).expect("a zip");
        assert_eq!(zip.len(), 3);
        for (index, mode) in [(0, 0o644), (1, 0o755)] {
            let mut entry = zip.by_index(index).expect("readable");
            assert_eq!(entry.name().expect("UTF-8"), entries[index].name);
            assert_eq!(entry.unix_mode(), Some(0o100_000 | mode));
            assert_eq!(entry.last_modified(), Some(timestamp));
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("CRC and size check");
            assert_eq!(bytes, text);
        }
        // Pack copies the frames into the executable's zip as they are.
        let mut copy = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        copy.raw_copy_file(zip.by_index_raw(2).expect("raw"))
            .expect("copied");
        let copy = copy.finish().expect("in memory");
        let mut zip = zip::ZipArchive::new(copy).expect("a zip");
        let mut frame = zip.by_index_raw(0).expect("raw");
        assert_eq!(frame.compression(), zip::CompressionMethod::ZSTD);
        assert_eq!((frame.size(), frame.crc32()), (1000, 7));
        let mut bytes = Vec::new();
        frame.read_to_end(&mut bytes).expect("raw bytes");
        assert_eq!(bytes, b"frame");
    }
}
