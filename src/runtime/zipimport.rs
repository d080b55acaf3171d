//! What the runtime hands CPython's `zipimport` before the interpreter
//! imports anything from the archive: the executable's table of contents,
//! and a way to inflate deflated entries.
//!
//! zipimport parses a zip's central directory in Python, entry by entry,
//! the first time a `sys.path` entry names the zip: 4 ms for the standard
//! library's 1,200 entries, on every start. The runtime reads the same
//! directory in Rust into a `Table`, which zipimport gets as a mapping of
//! its own (`interpreter::table`) in `zipimport._zip_directory_cache`: an
//! entry becomes the tuple `_read_directory` would have made only when
//! zipimport looks it up, and no start pays for the ~10,000 objects of a
//! whole table (building them took 0.3 ms, freeing them more). And
//! zipimport inflates with `zlib.decompress`, but the standalone flavor's
//! `zlib` is an extension module that may not be extracted yet: the
//! runtime's `inflate` serves. zipimport never reads an entry itself: the
//! runtime's `_get_data` reads it (`Table::read_entry`), which also
//! decodes the pycs pack compressed with the archive's dictionary
//! (`format::pyc_zstd`).

use super::payload::{Payload, Window};
use crate::format::end_record::{self, CentralDirectory};
use crate::format::pyc_zstd;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// The executable archive's table of contents, as zipimport's
/// `_read_directory(archive)` would build it: entry names, in the
/// directory's order, and what zipimport keeps of each.
pub struct Table {
    /// The archive's path as `sys.path` holds it.
    archive: String,
    /// The central directory's bytes, which the names point into.
    directory: Vec<u8>,
    /// In the directory's order.
    rows: Vec<Row>,
    /// Indices into `rows`, sorted by name: lookups are binary searches.
    by_name: Vec<u32>,
    /// What decodes the archive's zstd pycs.
    dictionary: PycDictionary,
}

/// One entry: where its name is in the directory, and the fields of
/// zipimport's tuple after the path.
#[derive(Clone, Copy)]
pub struct Row {
    name_start: u32,
    name_len: u16,
    pub compress: u16,
    pub data_size: u32,
    pub file_size: u32,
    /// Of the local header, from the start of the file (zipimport adds
    /// the archive's offset in the file, as here).
    pub header_offset: u64,
    pub time: u16,
    pub date: u16,
    pub crc: u32,
}

impl Table {
    /// The table of the payload's archive; `None` where the runtime cannot
    /// be sure to build the table zipimport would (zip64, names in the
    /// historical encoding, a name given twice, anything zipimport itself
    /// would refuse): zipimport then reads the directory itself.
    pub fn read(payload: &Payload, archive: &str) -> Option<Table> {
        let directory = payload.central_directory?;
        let mut bytes = vec![0; usize::try_from(directory.size).ok()?];
        payload
            .file
            .read_exact_at(&mut bytes, directory.position)
            .ok()?;
        Table::parse(bytes, directory, archive)
    }

    /// `_read_directory`, entry by entry, over the central directory's bytes.
    fn parse(directory: Vec<u8>, at: CentralDirectory, archive: &str) -> Option<Table> {
        let directory_offset = at.position - at.zip_start;
        let mut rows = Vec::new();
        let mut offset = 0;
        while let Some(header) = directory
            .get(offset..offset + end_record::CENTRAL_HEADER_LEN)
            .filter(|h| h.starts_with(end_record::CENTRAL_SIGNATURE))
        {
            let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
            let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4"));
            let flags = u16_at(8);
            let name_len = u16_at(28);
            let local_header = u64::from(u32_at(42));
            if local_header > directory_offset {
                return None;
            }
            let name_start = offset + end_record::CENTRAL_HEADER_LEN;
            let record_end = offset + end_record::central_record_len(header);
            // The name, extra field and comment: all within the directory.
            directory.get(name_start..record_end)?;
            let name = directory.get(name_start..name_start + usize::from(name_len))?;
            let name = std::str::from_utf8(name).ok()?;
            if flags & 0x800 == 0 && !name.is_ascii() {
                return None;
            }
            rows.push(Row {
                name_start: u32::try_from(name_start).ok()?,
                name_len,
                compress: u16_at(10),
                data_size: u32_at(20),
                file_size: u32_at(24),
                header_offset: local_header + at.zip_start,
                time: u16_at(12),
                date: u16_at(14),
                crc: u32_at(16),
            });
            offset = record_end;
        }
        let mut table = Table {
            archive: archive.to_owned(),
            directory,
            rows,
            by_name: Vec::new(),
            dictionary: PycDictionary::unlocated(),
        };
        let mut by_name: Vec<u32> = (0..u32::try_from(table.rows.len()).ok()?).collect();
        // A stable sort: it merges the sorted runs pack writes (the app's
        // entries, then the standard library's) in linear time.
        by_name.sort_by_key(|&index| table.name_bytes(&table.rows[index as usize]));
        // zipimport keeps the last of two entries of one name, in the
        // first one's place: rare enough to leave to zipimport.
        let twice = by_name.windows(2).any(|pair| {
            table.name_bytes(&table.rows[pair[0] as usize])
                == table.name_bytes(&table.rows[pair[1] as usize])
        });
        if twice {
            return None;
        }
        table.by_name = by_name;
        table.dictionary =
            PycDictionary::at(table.get(pyc_zstd::DICTIONARY_ENTRY).map(TableEntry::from));
        Some(table)
    }

    /// An entry's bytes (see `read_entry`), its pyc frames decoded with
    /// this archive's dictionary.
    pub fn read_entry(&self, file: &std::fs::File, entry: &TableEntry) -> Result<Vec<u8>, String> {
        read_entry(file, entry, &self.dictionary)
    }

    /// The entries, in the directory's order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The entry of this name (zipimport's key: the name in the zip).
    pub fn get(&self, name: &str) -> Option<&Row> {
        self.by_name
            .binary_search_by(|&index| {
                self.name_bytes(&self.rows[index as usize])
                    .cmp(name.as_bytes())
            })
            .ok()
            .map(|found| &self.rows[self.by_name[found] as usize])
    }

    pub fn name(&self, row: &Row) -> &str {
        std::str::from_utf8(self.name_bytes(row)).expect("checked to be UTF-8 when parsed")
    }

    fn name_bytes(&self, row: &Row) -> &[u8] {
        let start = row.name_start as usize;
        &self.directory[start..start + usize::from(row.name_len)]
    }

    /// The first field of zipimport's tuple: the entry's path, as
    /// `_bootstrap_external._path_join(archive, name)` makes it.
    pub fn path(&self, row: &Row) -> String {
        path_join(&self.archive, self.name(row))
    }
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

/// What zipimport's table says of one entry (`toc_entry[1:5]` and `[7]`).
pub struct TableEntry {
    pub compress: u16,
    pub data_size: u64,
    pub file_size: u64,
    pub header_offset: u64,
    pub crc: u32,
}

impl From<&Row> for TableEntry {
    fn from(row: &Row) -> TableEntry {
        TableEntry {
            compress: row.compress,
            data_size: u64::from(row.data_size),
            file_size: u64::from(row.file_size),
            header_offset: row.header_offset,
            crc: row.crc,
        }
    }
}

/// The archive's pyc dictionary (`format::pyc_zstd`), where it is, and its
/// decompressor, made when the first compressed pyc is read: a start that
/// reads none (a hello) never loads it. An archive without a dictionary
/// (the system flavor's) has frames made without one.
pub struct PycDictionary {
    at: Location,
    decompressor: Mutex<Option<pyc_zstd::Decompressor>>,
}

/// Where the dictionary is.
enum Location {
    /// The entry the table found.
    Entry(TableEntry),
    /// The table has no dictionary: the frames need none.
    Absent,
    /// There is no table: looked up with the zip crate when first needed.
    Unlocated,
}

impl PycDictionary {
    /// The dictionary of an archive without a `Table` (one zipimport reads
    /// itself: zip64), found in its central directory when first needed.
    pub const fn unlocated() -> PycDictionary {
        PycDictionary {
            at: Location::Unlocated,
            decompressor: Mutex::new(None),
        }
    }

    /// The dictionary of the entry `at`, or none if the table found none.
    fn at(at: Option<TableEntry>) -> PycDictionary {
        PycDictionary {
            at: at.map_or(Location::Absent, Location::Entry),
            decompressor: Mutex::new(None),
        }
    }

    /// The dictionary's bytes; none (empty) if the archive has none.
    fn read(&self, file: &std::fs::File) -> Result<Vec<u8>, String> {
        match &self.at {
            // Stored: no dictionary needed to read it.
            Location::Entry(at) => read_entry(file, at, &PycDictionary::at(None)),
            Location::Absent => Ok(Vec::new()),
            Location::Unlocated => {
                // By offset: other threads may read the file meanwhile.
                let len = file.metadata().map_err(|e| e.to_string())?.len();
                let whole = Window::over(file, 0, len);
                let mut zip = zip::ZipArchive::new(whole).map_err(|e| e.to_string())?;
                pyc_zstd::dictionary_of(&mut zip).map_err(|e| match e {
                    // Reading its bytes failed: what `read_to_end` said.
                    zip::result::ZipError::Io(e) => e.to_string(),
                    e => e.to_string(),
                })
            }
        }
    }

    fn decompress(&self, file: &std::fs::File, frame: &[u8], len: u64) -> Result<Vec<u8>, String> {
        let mut decompressor = self
            .decompressor
            .lock()
            .map_err(|_| "its dictionary's decoder failed before".to_owned())?;
        if decompressor.is_none() {
            let started = std::time::Instant::now();
            let dictionary = self
                .read(file)
                .map_err(|why| format!("its dictionary cannot be read: {why}"))?;
            let made = pyc_zstd::Decompressor::new(&dictionary)
                .map_err(|e| format!("its dictionary is damaged: {e}"))?;
            *decompressor = Some(made);
            crate::debug::note(format_args!(
                "pyc decoder made in {:.3} ms (a dictionary of {} bytes)",
                started.elapsed().as_secs_f64() * 1000.0,
                dictionary.len()
            ));
        }
        decompressor
            .as_mut()
            .expect("made above")
            .decompress(frame, len)
            .map_err(|e| format!("its zstd data is damaged: {e}"))
    }
}

/// zipimport's `_get_data` for the executable's own archive: the entry's
/// bytes, inflated or decoded with `dictionary`, and checked against their
/// CRC-32, which zipimport never checks: a damaged copy's module fails to
/// import instead of running corrupt bytecode.
pub fn read_entry(
    file: &std::fs::File,
    entry: &TableEntry,
    dictionary: &PycDictionary,
) -> Result<Vec<u8>, String> {
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
        pyc_zstd::METHOD => dictionary.decompress(file, &data, entry.file_size)?,
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

    /// A zip of `names` (in this order) and where its central directory is.
    fn zip_of(names: &[&str]) -> (Vec<u8>, CentralDirectory) {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for name in names {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("in memory");
            writer.write_all(name.as_bytes()).expect("in memory");
        }
        let zip = writer.finish().expect("in memory").into_inner();
        let end = zip.len() - 22;
        let u32_at =
            |at: usize| u64::from(u32::from_le_bytes(zip[at..at + 4].try_into().expect("4")));
        let at = CentralDirectory {
            position: u32_at(end + 16),
            size: u32_at(end + 12),
            zip_start: 0,
        };
        (zip, at)
    }

    fn directory_of(names: &[&str]) -> (Vec<u8>, CentralDirectory) {
        let (zip, at) = zip_of(names);
        let directory = zip[at.position as usize..(at.position + at.size) as usize].to_vec();
        (directory, at)
    }

    fn table_of(names: &[&str]) -> Option<Table> {
        let (directory, at) = directory_of(names);
        Table::parse(directory, at, "/opt/app")
    }

    #[test]
    fn the_table_keeps_the_directorys_order_and_finds_every_name() {
        let names = ["pkg/mod.pyc", "__main__.pyc", "pkg/__init__.pyc", "a.pyc"];
        let table = table_of(&names).expect("a plain zip");
        let listed: Vec<&str> = table.rows().iter().map(|row| table.name(row)).collect();
        assert_eq!(listed, names);
        assert_eq!(table.rows().len(), 4);
        for name in names {
            let row = table.get(name).expect("every name is found");
            assert_eq!(table.name(row), name);
            assert_eq!(table.path(row), format!("/opt/app/{name}"));
            assert_eq!(row.file_size as usize, name.len());
        }
        for missing in ["pkg", "pkg/", "b.pyc", ""] {
            assert!(table.get(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn a_name_given_twice_leaves_the_table_to_zipimport() {
        assert!(table_of(&["a.pyc", "b.pyc"]).is_some());
        // The zip crate refuses to write a name twice: rename in place.
        let (mut directory, at) = directory_of(&["a.pyc", "b.pyc"]);
        let second = directory
            .windows(5)
            .position(|name| name == b"b.pyc")
            .expect("the second name");
        directory[second] = b'a';
        assert!(Table::parse(directory, at, "/opt/app").is_none());
    }

    /// An archive that zipimport reads itself (no `Table`: zip64) still has
    /// its zstd pycs decoded: the dictionary is found in its directory; one
    /// without a dictionary decodes frames made without one.
    #[test]
    fn an_unlocated_dictionary_is_found_in_the_central_directory() {
        use std::io::Write;
        let samples: Vec<Vec<u8>> = (0..300)
            .map(|n| {
                format!("def f{n}(x):\n    return x + {n}\n")
                    .repeat(1 + n % 5)
                    .into_bytes()
            })
            .collect();
        let dictionary = pyc_zstd::train(&samples).expect("enough samples");
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        writer
            .start_file("__main__.pyc", stored)
            .expect("in memory");
        writer.write_all(b"main").expect("in memory");
        writer
            .start_file(pyc_zstd::DICTIONARY_ENTRY, stored)
            .expect("in memory");
        writer.write_all(&dictionary).expect("in memory");
        let zip = writer.finish().expect("in memory").into_inner();
        let mut file = tempfile::tempfile().expect("a temp file");
        file.write_all(&zip).expect("write");
        let frame = pyc_zstd::Compressor::new(&dictionary, 3)
            .and_then(|mut compressor| compressor.compress(&samples[7]))
            .expect("compresses");
        let unlocated = PycDictionary::unlocated();
        for _ in 0..2 {
            let pyc = unlocated.decompress(&file, &frame, samples[7].len() as u64);
            assert_eq!(pyc.expect("decoded"), samples[7]);
        }
        // An archive without a dictionary: its frames were made without.
        let mut without = tempfile::tempfile().expect("a temp file");
        without.write_all(&zip_of(&["a.pyc"]).0).expect("write");
        let plain = pyc_zstd::Compressor::new(&[], 3)
            .and_then(|mut compressor| compressor.compress(&samples[7]))
            .expect("compresses");
        let len = samples[7].len() as u64;
        for dictionary in [PycDictionary::unlocated(), PycDictionary::at(None)] {
            let pyc = dictionary.decompress(&without, &plain, len);
            assert_eq!(pyc.expect("decoded"), samples[7]);
            let needs_one = dictionary.decompress(&without, &frame, len);
            assert!(
                needs_one
                    .expect_err("no dictionary")
                    .contains("zstd data is damaged")
            );
        }
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
