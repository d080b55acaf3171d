//! Writing the native units of an archive into a fresh directory.
//!
//! Only the top-level units the manifest names are written (whole: a package
//! with native code keeps its data files next to `__file__`). Every name is
//! checked again here, links are refused, and files are created with
//! `create_new`, so a duplicate name or anything already in the way is an
//! error instead of a silent overwrite.

use crate::balance;
use crate::error::Reason;
use crate::format::{NATIVE_ARCHIVE, archive_path, end_record, solid};
use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};
use zip::CompressionMethod;

/// The inner zip, decompressed: what the runtime extracts from.
pub struct NativeArchive {
    pub bytes: Vec<u8>,
    /// The entry count of its end record, when it can be read: the zip
    /// reader keeps one entry per name, so a smaller count reveals
    /// duplicate names.
    pub entries: Option<u64>,
}

impl NativeArchive {
    /// A reader over the zip; clones read from several threads at once.
    pub fn reader(&self) -> Cursor<&[u8]> {
        Cursor::new(&self.bytes)
    }
}

/// Reads and decompresses the native archive inside the executable's zip
/// (`format::solid`); `None` for an app without one. `outer_entries` is the
/// executable zip's own count (see `NativeArchive::entries`).
pub fn open_native(
    file: &File,
    outer_entries: Option<u64>,
) -> Result<Option<NativeArchive>, Reason> {
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("the archive is unreadable: {e}"))?;
    if outer_entries.is_some_and(|count| count != zip.len() as u64) {
        return Err("the archive holds duplicate entry names".into());
    }
    let Some(index) = zip.index_for_name(NATIVE_ARCHIVE) else {
        return Ok(None);
    };
    let unreadable = |e: &dyn std::fmt::Display| format!("`{NATIVE_ARCHIVE}` is unreadable: {e}");
    let entry = zip.by_index_raw(index).map_err(|e| unreadable(&e))?;
    let (Some(start), CompressionMethod::Stored) = (entry.data_start(), entry.compression()) else {
        return Err(format!("`{NATIVE_ARCHIVE}` is not stored in place").into());
    };
    let len = usize::try_from(entry.compressed_size()).map_err(|e| unreadable(&e))?;
    let mut stream = vec![0; len];
    file.read_exact_at(&mut stream, start)
        .map_err(|e| unreadable(&e))?;
    let bytes = solid::decompress(&stream, solid::MAX_CONTENT).map_err(|e| unreadable(&e))?;
    drop(stream);
    // The end record (22 bytes, no comment), and before it the zip64 end
    // record and locator of an archive of more than 65,535 entries.
    let entries = bytes.len().checked_sub(22).and_then(|at| {
        end_record::end_record_entries(&bytes[at..]).or_else(|| {
            at.checked_sub(end_record::ZIP64_TAIL_LEN)
                .and_then(|before| end_record::zip64_entries(&bytes[before..at]))
        })
    });
    Ok(Some(NativeArchive { bytes, entries }))
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

/// Extracts the entries of `units` from the native archive into `dest`
/// (an existing, empty directory). Directories are created with `dir_mode`.
pub fn extract_units(
    archive: &NativeArchive,
    units: &[String],
    dest: &Path,
    dir_mode: u32,
    progress: &mut Progress,
) -> Result<Extracted, Reason> {
    let mut zip = zip::ZipArchive::new(archive.reader())
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    if archive
        .entries
        .is_some_and(|count| count != zip.len() as u64)
    {
        return Err("the archive holds duplicate entry names".into());
    }
    let files = plan(&mut zip, units, dest, dir_mode)?;
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
    // bytes and files. (Keeping a directory's files on one thread, for its
    // lock, measured no better.)
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let shares = balance::shares(&files, workers, |file| file.size + FILE_COST);
    let mut progress_slot = Some(&mut *progress);
    let results: Vec<Result<Extracted, Reason>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let mut zip = zip.clone();
                let progress = progress_slot.take();
                scope.spawn(move || write_files(&mut zip, &share, progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("an extraction thread failed".into()))
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
    let mut zip = zip::ZipArchive::new(archive.reader())
        .map_err(|e| format!("the archive is unreadable: {e}"))?;
    let mut buffer = vec![0; 256 << 10];
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
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

/// One file to write.
#[derive(Debug)]
struct FileJob {
    index: usize,
    name: String,
    target: std::path::PathBuf,
    executable: bool,
    size: u64,
}

/// Checks every entry of the units, makes their directories, and lists the
/// files to write.
fn plan<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    units: &[String],
    dest: &Path,
    dir_mode: u32,
) -> Result<Vec<FileJob>, Reason> {
    let mut dirs = DirBuilder::new();
    dirs.recursive(true).mode(dir_mode);
    // Directories made so far: one mkdir each, not one per file.
    let mut created = HashSet::new();
    let mut files = Vec::new();
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
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
                .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
            created.insert(dir.to_owned());
        }
        if !entry.is_dir() {
            files.push(FileJob {
                index,
                executable: entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0),
                size: entry.size(),
                name,
                target,
            });
        }
    }
    Ok(files)
}

fn write_files<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    files: &[&FileJob],
    mut progress: Option<&mut Progress>,
) -> Result<Extracted, Reason> {
    let mut done = Extracted::default();
    let mut buffer = vec![0; COPY_BLOCK];
    for file in files {
        if let Some(progress) = progress.as_deref_mut() {
            progress.tick();
        }
        let name = &file.name;
        let mut entry = zip
            .by_index(file.index)
            .map_err(|e| format!("cannot extract `{name}`: {e}"))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.executable { 0o755 } else { 0o644 })
            .open(&file.target)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists if file.target.is_dir() => {
                    format!("the archive holds `{name}` both as a file and as a directory")
                }
                io::ErrorKind::AlreadyExists => format!("the archive holds `{name}` twice"),
                _ => format!("cannot create `{}`: {e}", file.target.display()),
            })?;
        // The zip reader checks the CRC as the copy ends.
        done.bytes += copy_in_large_blocks(&mut entry, &mut out, &mut buffer)
            .map_err(|e| format!("cannot extract `{name}`: {e}"))?;
        done.files += 1;
    }
    Ok(done)
}

/// Bytes moved per read and write. Syscalls are costly in virtual
/// machines: with `io::copy`'s 8 KiB, the numpy app's first run made 15,000
/// writes; with this, 2,400.
const COPY_BLOCK: usize = 256 << 10;

fn copy_in_large_blocks(from: &mut impl Read, to: &mut File, buffer: &mut [u8]) -> io::Result<u64> {
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

    /// A native archive of `entries` (name, optional symlink target).
    fn archive_of(entries: &[(&str, Option<&str>)]) -> NativeArchive {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, link) in entries {
            let options = SimpleFileOptions::default();
            match link {
                Some(target) => zip.add_symlink(*name, *target, options).expect("link"),
                None => {
                    zip.start_file(*name, options).expect("start");
                    zip.write_all(b"content").expect("write");
                }
            }
        }
        let mut bytes = zip.finish().expect("finish").into_inner();
        // The writer refuses duplicates: `pkg/dup1` becomes a second `pkg/dup2`.
        for at in 0..bytes.len() - 8 {
            if &bytes[at..at + 8] == b"pkg/dup1" {
                bytes[at..at + 8].copy_from_slice(b"pkg/dup2");
            }
        }
        let count = u16::from_le_bytes([bytes[bytes.len() - 12], bytes[bytes.len() - 11]]);
        NativeArchive {
            bytes,
            entries: Some(count.into()),
        }
    }

    fn extract(entries: &[(&str, Option<&str>)]) -> Result<Extracted, Reason> {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).expect("mkdir");
        let units = ["pkg".to_owned()];
        let mut progress = Progress::new("test", false);
        let result = extract_units(&archive_of(entries), &units, &dest, 0o700, &mut progress);
        // Nothing escaped the destination.
        assert!(!dir.path().join("evil").exists());
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
        assert!(missing.0.contains("holds no file of it"), "{}", missing.0);
        let clash = extract(&[("pkg/a", None), ("pkg/a/b.py", None)]).expect_err("a clash");
        assert!(
            clash.0.contains("both as a file and as a directory"),
            "{}",
            clash.0
        );
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
