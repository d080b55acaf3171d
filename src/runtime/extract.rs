//! Writing the native units of an archive into a fresh directory.
//!
//! Only the top-level units the manifest names are written (whole: a package
//! with native code keeps its data files next to `__file__`). Every name is
//! checked again here, links are refused, and files are created with
//! `create_new`, so a duplicate name or anything already in the way is an
//! error instead of a silent overwrite.

use super::payload::Window;
use crate::balance;
use crate::error::Reason;
use crate::format::manifest::NativeArchiveSize;
use crate::format::{NATIVE_ARCHIVE, archive_path, end_record, solid};
use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zip::CompressionMethod;

/// The native archive of an executable (`format::solid`): its stream, read
/// in place, with its table of frames and its central directory decoded.
pub struct NativeArchive<'a> {
    file: &'a File,
    stream_start: u64,
    stream_len: u64,
    table: solid::Table,
    directory: solid::Decoded,
    /// The entry count of its end record, when it can be read: the zip
    /// reader keeps one entry per name, so a smaller count reveals
    /// duplicate names.
    pub entries: Option<u64>,
}

impl NativeArchive<'_> {
    /// A reader for the zip's listing (`by_index_data`): only the central
    /// directory is decoded, an entry's data is not.
    pub fn listing(&self) -> solid::DecodedReader<'_> {
        self.directory.reader()
    }

    /// The whole inner zip, decoded in memory.
    pub fn decode_whole(&self) -> Result<solid::Decoded, Reason> {
        let frames = read_at(self.file, self.stream_start, self.stream_len)?;
        let len = self.table.content_len();
        Ok(solid::decompress(&frames, 0, len).map_err(unreadable)?)
    }

    /// The stream from the frame that holds the decoded byte `offset`,
    /// decoding; and where in the whole that frame starts.
    fn decoder_from(&self, offset: u64) -> io::Result<(impl Read + use<'_>, u64)> {
        let frame = self
            .table
            .frames
            .get(self.table.frame_at(offset))
            .ok_or_else(|| io::Error::other("an entry lies past the archive's end"))?;
        let window = Window::over(
            self.file,
            self.stream_start + frame.offset,
            self.stream_len - frame.offset,
        );
        let reader = io::BufReader::with_capacity(COPY_BLOCK, window);
        // No more than the table accounts for, whatever the frames hold.
        let rest = self.table.content_len() - frame.content_start;
        Ok((
            solid::stream_decoder(reader)?.take(rest),
            frame.content_start,
        ))
    }
}

/// Finds the native archive inside the executable's zip and decodes its
/// table and central directory; `None` for an app without one.
/// `outer_entries` is the executable zip's own count (see
/// `NativeArchive::entries`); `declared` the manifest's `native_archive`,
/// whose length its table must match before anything is decoded.
pub fn open_native(
    file: &File,
    outer_entries: Option<u64>,
    declared: Option<NativeArchiveSize>,
) -> Result<Option<NativeArchive<'_>>, Reason> {
    let len = file.metadata().map_err(unreadable)?.len();
    let mut zip = zip::ZipArchive::new(Window::over(file, 0, len))
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    if outer_entries.is_some_and(|count| count != zip.len() as u64) {
        return Err("the archive holds duplicate entry names".into());
    }
    let Some(index) = zip.index_for_name(NATIVE_ARCHIVE) else {
        return Ok(None);
    };
    let entry = zip.by_index_raw(index).map_err(unreadable)?;
    let (Some(stream_start), CompressionMethod::Stored) = (entry.data_start(), entry.compression())
    else {
        return Err(format!("`{NATIVE_ARCHIVE}` is not stored in place").into());
    };
    let stream_len = entry.compressed_size();
    let mut window = Window::over(file, stream_start, stream_len);
    let table = solid::read_table(&mut window, stream_len).map_err(unreadable)?;
    // Memory follows what the table claims: it must be what the manifest
    // says (or, for executables packed before the manifest said, no more
    // than any real archive compresses from).
    let claimed = table.content_len();
    let unbelievable = match declared.map(|size| size.len) {
        Some(declared) => (claimed != declared).then(|| format!("the manifest says {declared}")),
        None => (claimed > stream_len.saturating_mul(UNDECLARED_RATIO))
            .then(|| format!("no real archive compresses into {stream_len} bytes from that much")),
    };
    if let Some(why) = unbelievable {
        return Err(unreadable(format!(
            "its table of frames claims {claimed} bytes, but {why}"
        ))
        .into());
    }
    let (offset, base) = match table.directory_frames().first() {
        Some(frame) => (frame.offset, frame.content_start),
        None => (stream_len, 0),
    };
    let frames = read_at(file, stream_start + offset, stream_len - offset)?;
    let directory = solid::decompress(&frames, base, claimed - base).map_err(unreadable)?;
    if directory.len() != table.content_len() {
        return Err(unreadable("its frames do not match its table").into());
    }
    // The end record (22 bytes, no comment), and before it the zip64 end
    // record and locator of an archive of more than 65,535 entries.
    let tail = directory.tail(end_record::ZIP64_TAIL_LEN + 22);
    let entries = tail.len().checked_sub(22).and_then(|at| {
        end_record::end_record_entries(&tail[at..]).or_else(|| {
            at.checked_sub(end_record::ZIP64_TAIL_LEN)
                .and_then(|before| end_record::zip64_entries(&tail[before..at]))
        })
    });
    Ok(Some(NativeArchive {
        file,
        stream_start,
        stream_len,
        table,
        directory,
        entries,
    }))
}

/// How much larger than its stream the inner zip of an executable whose
/// manifest does not say its length may be: far more than archives of
/// real files compress (numpy's 3.5x), far less than a stream of frames
/// of zeros claims (30,000x).
const UNDECLARED_RATIO: u64 = 64;

/// Why the native archive cannot be read.
fn unreadable(why: impl std::fmt::Display) -> String {
    format!("`{NATIVE_ARCHIVE}` is unreadable: {why}")
}

/// `len` bytes of `file` from `start`.
fn read_at(file: &File, start: u64, len: u64) -> Result<Vec<u8>, Reason> {
    let mut bytes = vec![0; usize::try_from(len).map_err(unreadable)?];
    file.read_exact_at(&mut bytes, start).map_err(unreadable)?;
    Ok(bytes)
}

/// `extracting APP (42 MB)... done in 0.8 s` on stderr, for a first run
/// that makes the user wait: one that has taken a second, or one so large
/// that it will. Only on a terminal; silent otherwise.
pub struct Progress {
    app: String,
    enabled: bool,
    total: u64,
    started: Instant,
    shown: bool,
}

/// Extractions at least this large announce themselves from the start.
const LARGE: u64 = 64 << 20;
const SLOW: Duration = Duration::from_secs(1);

impl Progress {
    pub fn new(app: &str, enabled: bool) -> Progress {
        Progress {
            app: app.to_owned(),
            enabled,
            total: 0,
            started: Instant::now(),
            shown: false,
        }
    }

    fn tick(&mut self) {
        if self.enabled && !self.shown && (self.total >= LARGE || self.started.elapsed() >= SLOW) {
            eprint!(
                "extracting {} ({} MB)... ",
                self.app,
                self.total.div_ceil(1 << 20)
            );
            self.shown = true;
        }
    }

    fn finish(&self) {
        if self.shown {
            eprintln!("done in {:.1} s", self.started.elapsed().as_secs_f64());
        }
    }
}

/// What was written, for `PYFERRY_DEBUG`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Why an extraction stopped.
#[derive(Debug)]
pub enum Failure {
    /// The archive cannot be extracted: damaged, or unsafe.
    Archive(Reason),
    /// The filesystem has no room for it (full, or the user's quota
    /// reached): another cache root may have.
    NoRoom(String),
    /// Told to stop: this copy failed its verification meanwhile.
    Stopped,
}

impl From<Reason> for Failure {
    fn from(reason: Reason) -> Self {
        Failure::Archive(reason)
    }
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure::Archive(Reason(text))
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Self {
        Failure::Archive(Reason::from(text))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Archive(reason) => f.write_str(&reason.0),
            Failure::NoRoom(why) => f.write_str(why),
            Failure::Stopped => f.write_str("stopped: this copy failed its verification"),
        }
    }
}

/// `what` failed with `e`: no room, or else the archive's fault.
fn failure(e: &io::Error, what: String) -> Failure {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Failure::NoRoom(what),
        _ => Failure::Archive(Reason(what)),
    }
}

/// Extracts the entries of `units` from the native archive into `dest`
/// (an existing, empty directory). Directories are created with `dir_mode`.
/// Every thread stops at its next file once `stop` is set.
pub fn extract_units(
    archive: &NativeArchive,
    units: &[String],
    dest: &Path,
    dir_mode: u32,
    progress: &mut Progress,
    stop: &AtomicBool,
) -> Result<Extracted, Failure> {
    let zip = zip::ZipArchive::new(archive.listing())
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    if archive
        .entries
        .is_some_and(|count| count != zip.len() as u64)
    {
        return Err("the archive holds duplicate entry names".into());
    }
    let mut files = plan(&zip, units, dest, dir_mode)?;
    // Every unit the manifest lists has files in the archive.
    if let Some(missing) = units.iter().find(|unit| {
        !files
            .iter()
            .any(|file| archive_path::top_level(&file.name) == unit.as_str())
    }) {
        return Err(format!(
            "the manifest lists `{missing}` to extract, but the archive holds no file of it"
        )
        .into());
    }
    progress.total = files.iter().map(|file| file.size).sum();

    // Creating files is most of the time, and kernel work: spread it, by
    // bytes and files, in runs of files that lie one after the other in the
    // archive, each thread decoding the stream from its run's first frame.
    files.sort_by_key(|file| file.header_start);
    let workers = solid::workers();
    let runs = balance::runs(files.iter().collect(), workers, |file| {
        file.size + FILE_COST
    });
    let mut progress_slot = Some(&mut *progress);
    let results: Vec<Result<Extracted, Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| {
                let progress = progress_slot.take();
                scope.spawn(move || write_run(archive, &run, progress, stop))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("an extraction thread failed".to_owned().into()))
            })
            .collect()
    });
    let mut done = Extracted::default();
    for result in results {
        let part = result?;
        done.files += part.files;
        done.bytes += part.bytes;
    }
    progress.finish();
    Ok(done)
}

/// Checks that the files of `unit` under `dest` (hard-linked from another
/// version, not extracted) are what the archive holds: each entry's size
/// and CRC-32, read back. A damaged donor is then never linked into other
/// apps.
pub fn verify_unit(archive: &NativeArchive, unit: &str, dest: &Path) -> Result<(), Reason> {
    let zip = zip::ZipArchive::new(archive.listing())
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    let mut buffer = vec![0; 256 << 10];
    for index in 0..zip.len() {
        let entry = zip
            .by_index_data(index)
            .map_err(|e| format!("archive entry {index} is unreadable: {e}"))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if entry.is_dir() || archive_path::top_level(&name) != unit {
            continue;
        }
        let relative = archive_path::to_relative_path(&name)
            .map_err(|why| format!("the archive entry `{name}` is unsafe: {why}"))?;
        let path = dest.join(relative);
        let mut file = File::open(&path).map_err(|e| format!("`{name}`: {e}"))?;
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        loop {
            match file
                .read(&mut buffer)
                .map_err(|e| format!("`{name}`: {e}"))?
            {
                0 => break,
                read => {
                    crc.update(&buffer[..read]);
                    size += read as u64;
                }
            }
        }
        if size != entry.size() || crc.finalize() != entry.crc32() {
            return Err(format!("`{name}` differs from the archive's").into());
        }
    }
    Ok(())
}

/// What creating a file costs, in bytes written: about what a thread
/// copies and writes in the time the kernel takes to create a file.
const FILE_COST: u64 = 64 << 10;

/// One file to write: where its entry starts in the inner zip, and what
/// the central directory says of its data.
#[derive(Debug)]
struct FileJob {
    name: String,
    target: std::path::PathBuf,
    executable: bool,
    header_start: u64,
    size: u64,
    crc: u32,
}

/// Checks every entry of the units, makes their directories, and lists the
/// files to write.
fn plan<R: Read + Seek>(
    zip: &zip::ZipArchive<R>,
    units: &[String],
    dest: &Path,
    dir_mode: u32,
) -> Result<Vec<FileJob>, Failure> {
    let mut dirs = DirBuilder::new();
    dirs.recursive(true).mode(dir_mode);
    // Directories made so far: one mkdir each, not one per file.
    let mut created = HashSet::new();
    let mut files = Vec::new();
    for index in 0..zip.len() {
        let entry = zip
            .by_index_data(index)
            .map_err(|e| format!("archive entry {index} is unreadable: {e}"))?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| format!("archive entry {index} has a name that is not UTF-8"))?
            .to_owned();
        if !units
            .iter()
            .any(|unit| unit == archive_path::top_level(&name))
        {
            continue;
        }
        let relative = archive_path::to_relative_path(&name)
            .map_err(|why| format!("the archive entry `{name}` is unsafe: {why}"))?;
        let target = dest.join(relative);
        if entry.is_symlink() {
            return Err(format!("the archive entry `{name}` is a link").into());
        }
        let dir = if entry.is_dir() {
            Some(target.as_path())
        } else {
            target.parent()
        };
        if let Some(dir) = dir.filter(|dir| !created.contains(*dir)) {
            dirs.create(dir)
                .map_err(|e| failure(&e, format!("cannot create `{}`: {e}", dir.display())))?;
            created.insert(dir.to_owned());
        }
        if entry.is_dir() {
            continue;
        }
        // The stream is the compression: an entry is its bytes.
        if entry.compression() != CompressionMethod::Stored
            || entry.compressed_size() != entry.size()
        {
            return Err(format!("the archive entry `{name}` is not stored").into());
        }
        files.push(FileJob {
            executable: entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0),
            header_start: entry.header_start(),
            size: entry.size(),
            crc: entry.crc32(),
            name,
            target,
        });
    }
    Ok(files)
}

/// A zip entry's local header: its fixed part, before name and extra field.
const LOCAL_HEADER_LEN: usize = 30;

/// Writes the files of `run` (in the order of the archive), decoding the
/// stream from the frame where the first of them starts, until `stop`.
fn write_run(
    archive: &NativeArchive,
    run: &[&FileJob],
    mut progress: Option<&mut Progress>,
    stop: &AtomicBool,
) -> Result<Extracted, Failure> {
    let mut done = Extracted::default();
    let Some(first) = run.first() else {
        return Ok(done);
    };
    let cannot_extract = |name: &str, e: &io::Error| format!("cannot extract `{name}`: {e}");
    let (mut stream, mut position) = archive
        .decoder_from(first.header_start)
        .map_err(|e| cannot_extract(&first.name, &e))?;
    let mut buffer = vec![0; COPY_BLOCK];
    for file in run {
        if stop.load(Ordering::Relaxed) {
            return Err(Failure::Stopped);
        }
        if let Some(progress) = progress.as_deref_mut() {
            progress.tick();
        }
        let name = &file.name;
        let gap = file
            .header_start
            .checked_sub(position)
            .ok_or_else(|| format!("the archive entry `{name}` overlaps the entry before it"))?;
        skip(&mut stream, gap).map_err(|e| cannot_extract(name, &e))?;
        let mut header = [0; LOCAL_HEADER_LEN];
        stream
            .read_exact(&mut header)
            .map_err(|e| cannot_extract(name, &e))?;
        if !header.starts_with(b"PK\x03\x04") {
            return Err(format!("the archive entry `{name}` has no local header").into());
        }
        let u16_at = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let name_and_extra = u16_at(26) + u16_at(28);
        skip(&mut stream, name_and_extra).map_err(|e| cannot_extract(name, &e))?;
        position = file.header_start + LOCAL_HEADER_LEN as u64 + name_and_extra + file.size;

        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.executable { 0o755 } else { 0o644 })
            .open(&file.target)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists if file.target.is_dir() => {
                    format!("the archive holds `{name}` both as a file and as a directory").into()
                }
                io::ErrorKind::AlreadyExists => format!("the archive holds `{name}` twice").into(),
                _ => failure(
                    &e,
                    format!("cannot create `{}`: {e}", file.target.display()),
                ),
            })?;
        let mut data = (&mut stream).take(file.size);
        let mut crc = crc32fast::Hasher::new();
        let copied = copy_in_large_blocks(&mut data, &mut out, &mut buffer, &mut crc)
            .map_err(|e| failure(&e, cannot_extract(name, &e)))?;
        if copied != file.size || crc.finalize() != file.crc {
            return Err(
                format!("cannot extract `{name}`: its bytes do not match their checksum").into(),
            );
        }
        done.bytes += copied;
        done.files += 1;
    }
    Ok(done)
}

/// Reads and drops `len` bytes of `stream`.
fn skip(stream: &mut impl Read, len: u64) -> io::Result<()> {
    let skipped = io::copy(&mut stream.take(len), &mut io::sink())?;
    match skipped == len {
        true => Ok(()),
        false => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Bytes moved per read and write. Syscalls are costly in virtual
/// machines: with `io::copy`'s 8 KiB, the numpy app's first run made 15,000
/// writes; with this, 2,400.
const COPY_BLOCK: usize = 256 << 10;

fn copy_in_large_blocks(
    from: &mut impl Read,
    to: &mut File,
    buffer: &mut [u8],
    crc: &mut crc32fast::Hasher,
) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match from.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(copied);
        }
        crc.update(&buffer[..filled]);
        to.write_all(&buffer[..filled])?;
        copied += filled as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    /// An executable's zip in `dir` whose native archive holds `entries`
    /// (name, optional symlink target).
    fn archive_of(dir: &Path, entries: &[(&str, Option<&str>)]) -> File {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, link) in entries {
            let options =
                SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
            match link {
                Some(target) => zip.add_symlink(*name, *target, options).expect("link"),
                None => {
                    zip.start_file(*name, options).expect("start");
                    zip.write_all(b"content").expect("write");
                }
            }
        }
        let mut inner = zip.finish().expect("finish").into_inner();
        // The writer refuses duplicates: `pkg/dup1` becomes a second `pkg/dup2`.
        for at in 0..inner.len() - 8 {
            if &inner[at..at + 8] == b"pkg/dup1" {
                inner[at..at + 8].copy_from_slice(b"pkg/dup2");
            }
        }
        let directory_start = zip::ZipArchive::new(std::io::Cursor::new(&inner))
            .expect("a zip")
            .central_directory_start();
        let mut frames = solid::compress(&inner[..directory_start as usize], 1).expect("frames");
        frames.extend(solid::compress(&inner[directory_start as usize..], 1).expect("frames"));
        let stream = solid::with_table(&frames, directory_start).expect("table");
        outer_zip_of(dir, &stream)
    }

    /// An executable's zip holding `stream` as its native archive.
    fn outer_zip_of(dir: &Path, stream: &[u8]) -> File {
        let path = dir.join("app.zip");
        let mut outer = zip::ZipWriter::new(File::create(&path).expect("create"));
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        outer.start_file(NATIVE_ARCHIVE, stored).expect("start");
        outer.write_all(stream).expect("write");
        outer.finish().expect("finish");
        File::open(&path).expect("open")
    }

    fn extract(entries: &[(&str, Option<&str>)]) -> Result<Extracted, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).expect("mkdir");
        let units = ["pkg".to_owned()];
        let mut progress = Progress::new("test", false);
        let file = archive_of(dir.path(), entries);
        let archive = open_native(&file, None, None)
            .map_err(|reason| reason.0)?
            .expect("a native archive");
        let stop = AtomicBool::new(false);
        let result = extract_units(&archive, &units, &dest, 0o700, &mut progress, &stop)
            .map_err(|failure| failure.to_string());
        // Nothing escaped the destination.
        assert!(!dir.path().join("evil").exists());
        if result.is_ok() {
            assert_eq!(
                fs::read(dest.join("pkg/a.py")).expect("extracted"),
                b"content"
            );
        }
        result
    }

    #[test]
    fn safe_entries_are_extracted() {
        let done = extract(&[
            ("pkg/a.py", None),
            ("pkg/sub/b.so", None),
            ("other.py", None),
        ])
        .expect("extracts");
        assert_eq!(done.files, 2);
    }

    #[test]
    fn units_without_files_and_file_directory_clashes_are_refused() {
        let missing = extract(&[("other.py", None)]).expect_err("pkg has no files");
        assert!(missing.contains("holds no file of it"), "{missing}");
        let clash = extract(&[("pkg/a", None), ("pkg/a/b.py", None)]).expect_err("a clash");
        assert!(
            clash.contains("both as a file and as a directory"),
            "{clash}"
        );
    }

    /// A stream of 37 KB whose frames hold 8 MiB of zeros each, 1 GiB in
    /// all: it is refused by what the manifest says, before anything is
    /// decoded, and by its ratio where the manifest says nothing.
    #[test]
    fn a_stream_that_claims_more_than_the_manifest_is_refused_undecoded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let zeros = solid::compress(&vec![0; solid::FRAME_LEN], 19).expect("a frame");
        let frames = zeros.repeat(128);
        let claimed = 128 * solid::FRAME_LEN as u64;
        let stream = solid::with_table(&frames, claimed - 1).expect("table");
        assert!(stream.len() < 64 << 10, "{} bytes", stream.len());
        let file = outer_zip_of(dir.path(), &stream);
        let declared = |len| Some(NativeArchiveSize { len, entries: 1 });
        for declared in [declared(4096), None] {
            let refused = open_native(&file, None, declared).err().expect("refused");
            assert!(
                refused.0.contains(&format!("claims {claimed} bytes")),
                "{}",
                refused.0
            );
        }
        // What the manifest says is what is decoded (here, where memory is
        // no issue: the last frame alone, which holds the "directory").
        let archive = open_native(&file, None, declared(claimed)).expect("believed");
        assert!(archive.is_some());
    }

    #[test]
    fn escaping_links_and_duplicates_are_refused() {
        for entries in [
            &[("pkg/../../evil", None)][..],
            &[("pkg/../evil", None)],
            &[("pkg/link", Some("/etc/passwd"))],
            &[("pkg/dup1", None), ("pkg/dup2", None)],
            &[("pkg/./a.py", None)],
        ] {
            let result = extract(entries);
            assert!(result.is_err(), "{entries:?} was extracted");
        }
    }
}
