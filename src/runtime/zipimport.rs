//! What the runtime hands CPython's `zipimport` before the interpreter
//! imports anything from the archive: the executable's table of contents,
//! and a way to inflate deflated entries.
//!
//! zipimport parses a zip's central directory in Python, entry by entry,
//! the first time a `sys.path` entry names the zip: 4 ms for the standard
//! library's 1,200 entries, on every start. The runtime reads the same
//! directory in Rust and hands zipimport the very table `_read_directory`
//! would build, marshalled (`marshal.loads` takes 0.3 ms), for
//! `zipimport._zip_directory_cache`. And zipimport inflates with
//! `zlib.decompress`, but the standalone flavor's `zlib` is an extension
//! module that may not be extracted yet: the runtime's `inflate` serves.

use super::payload::Payload;
use crate::format::end_record::CentralDirectory;
use std::os::unix::fs::FileExt;

/// The table zipimport's `_read_directory(archive)` returns for the
/// payload's archive, marshalled; `None` where the runtime cannot be sure
/// to build the same table (zip64, names in the historical encoding,
/// anything zipimport itself would refuse): zipimport then reads the
/// directory itself.
pub fn marshalled_directory(payload: &Payload, archive: &str) -> Option<Vec<u8>> {
    let directory = payload.central_directory?;
    let mut bytes = vec![0; usize::try_from(directory.size).ok()?];
    payload
        .file
        .read_exact_at(&mut bytes, directory.position)
        .ok()?;
    table_of_contents(&bytes, directory, archive)
}

/// `_read_directory`, entry by entry, over the central directory's bytes.
fn table_of_contents(bytes: &[u8], at: CentralDirectory, archive: &str) -> Option<Vec<u8>> {
    let directory_offset = at.position - at.zip_start;
    let mut out = Marshal(Vec::with_capacity(bytes.len() * 2));
    out.0.push(b'{');
    let mut rest = bytes;
    while let Some(header) = rest.get(..46).filter(|h| h.starts_with(b"PK\x01\x02")) {
        let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4"));
        let (flags, compress, time, date) = (u16_at(8), u16_at(10), u16_at(12), u16_at(14));
        let (crc, data_size, file_size) = (u32_at(16), u32_at(20), u32_at(24));
        let name_size = usize::from(u16_at(28));
        let skipped = name_size + usize::from(u16_at(30)) + usize::from(u16_at(32));
        let local_header = u64::from(u32_at(42));
        if local_header > directory_offset {
            return None;
        }
        let name = rest.get(46..46 + name_size)?;
        rest = rest.get(46 + skipped..)?;
        let name = std::str::from_utf8(name).ok()?;
        if flags & 0x800 == 0 && !name.is_ascii() {
            return None;
        }
        out.str(name);
        out.0.extend([b')', 8]);
        out.str(&path_join(archive, name));
        for value in [u32::from(compress), data_size, file_size] {
            out.int(u64::from(value));
        }
        out.int(local_header + at.zip_start);
        for value in [u32::from(time), u32::from(date), crc] {
            out.int(u64::from(value));
        }
    }
    out.0.push(b'0');
    Some(out.0)
}

/// `importlib._bootstrap_external._path_join` on POSIX.
fn path_join(archive: &str, name: &str) -> String {
    [archive, name]
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| part.trim_end_matches('/'))
        .collect::<Vec<_>>()
        .join("/")
}

/// The few types of CPython's marshal format the table needs.
struct Marshal(Vec<u8>);

impl Marshal {
    fn str(&mut self, text: &str) {
        let len = text.len();
        match (text.is_ascii(), u8::try_from(len)) {
            (true, Ok(short)) => self.0.extend([b'z', short]),
            (true, Err(_)) => {
                self.0.push(b'a');
                self.0.extend((len as u32).to_le_bytes());
            }
            (false, _) => {
                self.0.push(b'u');
                self.0.extend((len as u32).to_le_bytes());
            }
        }
        self.0.extend(text.as_bytes());
    }

    fn int(&mut self, value: u64) {
        if let Ok(small) = i32::try_from(value) {
            self.0.push(b'i');
            self.0.extend(small.to_le_bytes());
            return;
        }
        // A long: its 15-bit digits, least significant first.
        let mut digits = Vec::new();
        let mut rest = value;
        while rest > 0 {
            digits.push((rest & 0x7fff) as u16);
            rest >>= 15;
        }
        self.0.push(b'l');
        self.0.extend((digits.len() as i32).to_le_bytes());
        for digit in digits {
            self.0.extend(digit.to_le_bytes());
        }
    }
}

/// What zipimport's table says of one entry (`toc_entry[1:5]` and `[7]`).
pub struct TableEntry {
    pub compress: u16,
    pub data_size: u64,
    pub file_size: u64,
    pub header_offset: u64,
    pub crc: u32,
}

/// zipimport's `_get_data` for the executable's own archive: the entry's
/// bytes, inflated, and checked against their CRC-32, which zipimport
/// never checks: a damaged copy's module fails to import instead of
/// running corrupt bytecode.
pub fn read_entry(file: &std::fs::File, entry: &TableEntry) -> Result<Vec<u8>, String> {
    let mut header = [0; 30];
    file.read_exact_at(&mut header, entry.header_offset)
        .map_err(|e| format!("cannot read its local header: {e}"))?;
    if !header.starts_with(b"PK\x03\x04") {
        return Err("its local header is damaged".to_owned());
    }
    let lengths = u64::from(u16::from_le_bytes([header[26], header[27]]))
        + u64::from(u16::from_le_bytes([header[28], header[29]]));
    let mut data = vec![0; usize::try_from(entry.data_size).map_err(|e| e.to_string())?];
    file.read_exact_at(&mut data, entry.header_offset + 30 + lengths)
        .map_err(|e| format!("cannot read its data: {e}"))?;
    let data = match entry.compress {
        0 => data,
        // One byte of room beyond the size: a longer stream is damage,
        // caught by the length check below.
        8 => inflate(&data, entry.file_size.saturating_add(1))
            .map_err(|e| format!("its deflate data is damaged: {e}"))?,
        method => return Err(format!("it is compressed with method {method}")),
    };
    if data.len() as u64 != entry.file_size || crc32fast::hash(&data) != entry.crc {
        return Err("its bytes do not match their checksum".to_owned());
    }
    Ok(data)
}

/// Inflates a raw deflate stream (zip's method 8), as
/// `zlib.decompress(data, -15)` does for zipimport, into room for
/// `capacity` bytes first (more if the stream holds more).
pub fn inflate(data: &[u8], capacity: u64) -> Result<Vec<u8>, String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut decoder = Decompress::new(false);
    let mut out = Vec::with_capacity(
        usize::try_from(capacity)
            .map_err(|e| e.to_string())?
            .max(64),
    );
    loop {
        let consumed = usize::try_from(decoder.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        let written = out.len();
        let status = decoder
            .decompress_vec(input, &mut out, FlushDecompress::Finish)
            .map_err(|e| format!("invalid deflate data: {e}"))?;
        match status {
            Status::StreamEnd => return Ok(out),
            _ if out.len() == out.capacity() => out.reserve(out.capacity()),
            _ if out.len() == written && decoder.total_in() as usize == consumed => {
                return Err("the deflate data ends early".to_owned());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_are_written_in_15_bit_digits() {
        let mut out = Marshal(Vec::new());
        out.int(0x8000_0000);
        assert_eq!(out.0, [b'l', 3, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
        let mut out = Marshal(Vec::new());
        out.int(5);
        assert_eq!(out.0, [b'i', 5, 0, 0, 0]);
    }

    #[test]
    fn paths_join_as_importlib_joins_them() {
        assert_eq!(path_join("/a/app", "pkg/"), "/a/app/pkg");
        assert_eq!(path_join("/a/app/", "m.py"), "/a/app/m.py");
    }

    #[test]
    fn inflate_round_trips_and_refuses_truncation() {
        use std::io::Write;
        let text = b"import os\n".repeat(1000);
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&text).expect("in memory");
        let deflated = encoder.finish().expect("in memory");
        for capacity in [0, text.len() as u64] {
            assert_eq!(inflate(&deflated, capacity).expect("valid"), text);
            assert!(inflate(&deflated[..deflated.len() / 2], capacity).is_err());
        }
    }
}
