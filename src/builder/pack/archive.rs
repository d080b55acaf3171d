//! Writing the executable: runtime image, deterministic zip in a `.pyferry`
//! ELF section (see `elf`), manifest in the zip comment, ELF header and
//! stamp patched last; through a temp file and one rename.
//!
//! Native units go into an inner zip (`with_native_archive`), its entries
//! stored and the whole compressed with zstd (`format::solid`); in the outer
//! zip, that inner archive and the bytecode every start reads are stored
//! (see `compression_for`), the other pycs are zstd frames of the standard
//! library's dictionary (`compress_app_pycs`, `format::pyc_zstd`), the rest
//! deflated.
//! Determinism: entries in sorted order, one fixed timestamp
//! (`SOURCE_DATE_EPOCH`, else 1980-01-01), modes normalized to 0644/0755.
//! The hash covers every entry (name, mode, bytes) and the manifest.

use super::prepared_zip::{self, Pycs};
use super::tree::SourceFile;
use crate::builder::progress::{Phase, Progress};
use crate::error::{Error, Reason, Result, io};
use crate::format::archive_hash::{ArchiveHasher, DIR_MODE};
use crate::format::manifest::{EntryPoint, Manifest, NativeArchiveSize};
use crate::format::stamp::{self, Stamp};
use crate::format::{
    BOOTSTRAP_MODULE, NATIVE_ARCHIVE, PYFERRY_DIR, archive_path, elf, end_record, pyc_zstd, solid,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// How pack writes: the archive's one timestamp, a private work directory,
/// and the phase each entry written is a step of.
pub struct Writing<'a> {
    pub timestamp: DateTime,
    pub work_dir: &'a Path,
    pub phase: &'a Phase,
    /// Where a step that cannot be counted shows (`cache::shared_frames`).
    pub progress: &'a Progress,
}

/// One archive entry: a directory or a file's bytes from disk.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir,
    File(SourceFile),
}

/// Writes `runtime` + the zip of `entries` (and of the standard library's
/// `stdlib` parts) to `output`; returns the manifest with its hash filled in.
pub fn write_executable(
    runtime: &[u8],
    entries: &BTreeMap<String, Entry>,
    mut manifest: Manifest,
    stdlib: Option<&StdlibParts>,
    output: &Path,
    writing: &Writing,
) -> Result<Manifest> {
    let Writing {
        timestamp,
        work_dir,
        phase,
        progress,
    } = *writing;
    let pack_error = |reason: String| Error::Pack {
        reason: Reason(reason),
    };
    let stamp_at = stamp::find_unpacked(runtime).ok_or_else(|| {
        pack_error("this pyferry binary has no unique runtime stamp; rebuild pyferry".into())
    })?;
    let image = elf::Image::parse(runtime)
        .map_err(|e| pack_error(format!("this pyferry binary cannot be a runtime: {e}")))?;
    if image.has_payload_section() {
        return Err(pack_error(
            "the runtime already carries a `.pyferry` section".into(),
        ));
    }
    let temp = temp_path(output);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&temp)
        .map_err(io("create", &temp))?;
    let mut guard = RemoveOnDrop(Some(temp.clone()));

    let mut out = BufWriter::with_capacity(1 << 20, file);
    let zip_offset = runtime.len().next_multiple_of(16) as u64;
    out.write_all(runtime)
        .and_then(|()| out.write_all(&vec![0; zip_offset as usize - runtime.len()]))
        .map_err(io("write", &temp))?;
    let mut zip = ZipWriter::new(ZipStart {
        inner: out,
        start: zip_offset,
    });
    let mut hasher = ArchiveHasher::default();
    let (mut outer, native_archive) = with_native_archive(
        entries,
        &manifest.extracted,
        stdlib.map(|parts| parts.extracted.as_path()),
        work_dir,
        timestamp,
        (phase, progress),
    )?;
    let app_pycs = compress_app_pycs(&mut outer, stdlib, &manifest.entry, writing)?;
    write_entries(
        &mut zip,
        &outer,
        timestamp,
        Some(&mut hasher),
        &temp,
        compression_for,
        Some(phase),
    )?;
    // What decodes the zstd pycs to hash them: the app's, when it has
    // any, are compressed with the standard library's dictionary (or none).
    let mut pycs = None;
    if let Some(app_pycs) = app_pycs {
        pycs = Some(
            pyc_zstd::Decompressor::new(&app_pycs.dictionary)
                .map_err(|e| pack_error(format!("the pyc dictionary is unusable: {e}")))?,
        );
        copy_archived(&mut zip, &app_pycs.zip, &mut hasher, &mut pycs, &temp)?;
        fs::remove_file(&app_pycs.zip).map_err(io("remove", &app_pycs.zip))?;
    }
    if let Some(parts) = stdlib {
        copy_archived(&mut zip, &parts.archived, &mut hasher, &mut pycs, &temp)?;
    }
    manifest.native_archive = native_archive;
    manifest.hash = hasher.finish(&manifest);

    let comment = end_record::encode_comment(&manifest);
    let comment_len = comment.len() as u64;
    zip.set_raw_comment(comment.into_boxed_slice())
        .map_err(zip_error(&temp))?;
    let mut out = zip.finish().map_err(zip_error(&temp))?.inner;
    let zip_end = out.stream_position().map_err(io("write", &temp))?;
    let (tables, shoff, shnum) = image.tables_after(zip_offset, zip_end - zip_offset, zip_end);
    // zipimport finds the end record only in the last 64 KiB, and takes the
    // last end-record signature there.
    let after_end_record = 22 + comment_len + tables.len() as u64;
    if after_end_record > end_record::MAX_TAIL_LEN as u64 {
        return Err(pack_error(format!(
            "the manifest and section tables take {after_end_record} bytes after the zip's end \
             record, more than zipimport reads (65557)"
        )));
    }
    if tables.windows(4).any(|w| w == b"PK\x05\x06") {
        return Err(pack_error(
            "the runtime's section tables contain a zip end-record signature".into(),
        ));
    }
    let stamp = Stamp::Packed {
        hash: manifest.hash.clone(),
    };
    out.write_all(&tables)
        .and_then(|()| out.seek(SeekFrom::Start(elf::SHOFF_AT)))
        .and_then(|_| out.write_all(&shoff.to_le_bytes()))
        .and_then(|()| out.seek(SeekFrom::Start(elf::SHNUM_AT)))
        .and_then(|_| out.write_all(&shnum.to_le_bytes()))
        .and_then(|()| out.seek(SeekFrom::Start(stamp_at as u64)))
        .and_then(|_| out.write_all(&stamp.encode()))
        .and_then(|()| out.flush())
        .map_err(io("write", &temp))?;
    let file = out.into_inner().map_err(|e| Error::Io {
        op: "write",
        path: temp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("flush", &temp))?;
    fs::rename(&temp, output).map_err(io("move the packed executable to", output))?;
    guard.0 = None;
    Ok(manifest)
}

/// Takes the app's pycs out of `outer` and compresses them with the
/// standard library's pyc dictionary (`format::pyc_zstd`; without one in
/// the system flavor, which carries no standard library) into a zip in the
/// work directory: 1.6 MB of black's pycs become 0.55 MB. Left stored in
/// `outer`: what every start reads (the bootstrap, the entry point's
/// module and the packages above it), so that a start that imports
/// nothing else from the archive (a hello) never makes a decoder or loads
/// the dictionary (0.2 ms).
fn compress_app_pycs(
    outer: &mut BTreeMap<String, Entry>,
    stdlib: Option<&StdlibParts>,
    entry_point: &EntryPoint,
    writing: &Writing,
) -> Result<Option<CompressedPycs>> {
    let dictionary = match stdlib {
        Some(parts) => pyc_dictionary(parts)?,
        None => Vec::new(),
    };
    let mut every_start = vec![format!("{BOOTSTRAP_MODULE}.pyc")];
    let path = entry_point.module.replace('.', "/");
    every_start.extend(archive_path::module_files(&entry_point.module, "pyc"));
    let mut above = path.as_str();
    while let Some((package, _)) = above.rsplit_once('/') {
        every_start.push(format!("{package}/__init__.pyc"));
        above = package;
    }
    let names: Vec<String> = outer
        .iter()
        .filter(|(name, entry)| {
            name.ends_with(".pyc") && matches!(entry, Entry::File(_)) && !every_start.contains(name)
        })
        .map(|(name, _)| name.clone())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let taken: Vec<(String, SourceFile)> = names
        .into_iter()
        .filter_map(|name| match outer.remove(&name) {
            Some(Entry::File(source)) => Some((name, source)),
            _ => None,
        })
        .collect();
    let files: Vec<(&str, &SourceFile, u16)> = taken
        .iter()
        .map(|(name, source)| (name.as_str(), source, pyc_zstd::METHOD))
        .collect();
    let pycs = Pycs {
        dictionary: &dictionary,
        level: pyc_zstd::APP_LEVEL,
    };
    let entries = prepared_zip::compress(&files, &pycs, writing.phase)?;
    let zip = writing.work_dir.join("app-pycs.zip");
    prepared_zip::write(&zip, &entries, writing.timestamp)?;
    Ok(Some(CompressedPycs { zip, dictionary }))
}

/// The zip of an app's compressed pycs, and the dictionary they need.
struct CompressedPycs {
    zip: PathBuf,
    dictionary: Vec<u8>,
}

/// The pyc dictionary of the standard library's archived part (empty if
/// it has none).
fn pyc_dictionary(parts: &StdlibParts) -> Result<Vec<u8>> {
    let path = &parts.archived;
    pyc_zstd::dictionary_of(&mut open_zip(path)?).map_err(|e| match e {
        zip::result::ZipError::Io(e) => io("read", path)(e),
        e => zip_read_error(path)(e),
    })
}

/// Makes the zip's offsets relative to its own first byte, as if it were a
/// file of its own. `strip` moves the `.pyferry` section (usually toward the
/// start, as it drops symbol tables), and readers locate a zip whose data
/// begins later than its offsets say, never earlier.
struct ZipStart<W> {
    inner: W,
    start: u64,
}

impl<W: Write> Write for ZipStart<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for ZipStart<W> {
    fn seek(&mut self, position: SeekFrom) -> std::io::Result<u64> {
        let position = match position {
            SeekFrom::Start(offset) => SeekFrom::Start(offset + self.start),
            other => other,
        };
        let absolute = self.inner.seek(position)?;
        absolute
            .checked_sub(self.start)
            .ok_or_else(|| std::io::Error::other("seek before the start of the zip"))
    }
}

/// Moves the native units' entries into an inner zip, stored as one entry
/// (`NATIVE_ARCHIVE`): zipimport parses the whole central directory of the
/// executable on every start (numpy's 1500 files cost 7 ms), and it never
/// imports from the native units, which are extracted. `prebuilt` is a zip
/// of more native entries (the standard library), written first: its part
/// of the inner zip is then the same bytes in every app, zstd frames
/// compressed once (`cache::shared_frames`), the app's own part others.
/// Also returns the inner zip's size, if there is one.
fn with_native_archive(
    entries: &BTreeMap<String, Entry>,
    native: &[String],
    prebuilt: Option<&Path>,
    work_dir: &Path,
    timestamp: DateTime,
    (phase, progress): (&Phase, &Progress),
) -> Result<(BTreeMap<String, Entry>, Option<NativeArchiveSize>)> {
    let is_native = |name: &str| {
        native
            .iter()
            .any(|unit| unit == archive_path::top_level(name))
    };
    let (inner, mut outer): (BTreeMap<_, _>, BTreeMap<_, _>) = entries
        .iter()
        .map(|(name, entry)| (name.clone(), entry.clone()))
        .partition(|(name, _)| is_native(name));
    if inner.is_empty() && prebuilt.is_none() {
        return Ok((outer, None));
    }
    // Every entry is a step: the inner ones now, the outer ones (and the
    // two added below) when the executable's zip is written.
    let added = [format!("{PYFERRY_DIR}/"), NATIVE_ARCHIVE.to_owned()]
        .iter()
        .filter(|name| !outer.contains_key(*name))
        .count();
    phase.set_len(inner.len() + outer.len() + added);
    let zip_path = work_dir.join("native.zip");
    let parts = write_native_zip(&zip_path, prebuilt, &inner, timestamp, phase)?;
    let size = parts.size;
    let path = work_dir.join("native.zip.zst");
    compress_native(&zip_path, parts, &path, progress)?;
    outer.insert(format!("{PYFERRY_DIR}/"), Entry::Dir);
    outer.insert(
        NATIVE_ARCHIVE.to_owned(),
        Entry::File(SourceFile {
            path,
            executable: false,
        }),
    );
    Ok((outer, Some(size)))
}

/// Where the parts of the inner zip end: `prebuilt`'s entries, then the
/// app's (the central directory follows); and the whole zip's size.
struct NativeParts {
    shared_end: u64,
    directory_start: u64,
    size: NativeArchiveSize,
}

/// Writes the inner zip to `path`, every entry stored (the whole is
/// compressed): the entries of the zip `prebuilt`, then `entries`.
fn write_native_zip(
    path: &Path,
    prebuilt: Option<&Path>,
    entries: &BTreeMap<String, Entry>,
    timestamp: DateTime,
    phase: &Phase,
) -> Result<NativeParts> {
    let file = fs::File::create(path).map_err(io("create", path))?;
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut prebuilt_entries = 0;
    if let Some(prebuilt) = prebuilt {
        let unreadable = zip_read_error(prebuilt);
        let mut source = open_zip(prebuilt)?;
        for index in 0..source.len() {
            let mut entry = source.by_index(index).map_err(&unreadable)?;
            let name = entry.name().map_err(&unreadable)?.into_owned();
            let mode = match entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0) {
                true => 0o755,
                false => 0o644,
            };
            let options = options(timestamp, mode).compression_method(CompressionMethod::Stored);
            if entry.is_dir() {
                zip.add_directory(name.trim_end_matches('/'), options)
                    .map_err(zip_error(path))?;
            } else {
                let options = options.large_file(entry.size() >= u64::from(u32::MAX));
                zip.start_file(name.as_str(), options)
                    .map_err(zip_error(path))?;
                std::io::copy(&mut entry, &mut zip).map_err(io("read", prebuilt))?;
            }
        }
        prebuilt_entries = source.len();
    }
    let stored = |_: &str| CompressionMethod::Stored;
    finish_with(zip, entries, timestamp, path, stored, phase)?;
    let mut written = open_zip(path)?;
    let directory_start = written.central_directory_start();
    let shared_end = match prebuilt_entries < written.len() {
        true => written
            .by_index_raw(prebuilt_entries)
            .map_err(zip_read_error(path))?
            .header_start(),
        false => directory_start,
    };
    let size = NativeArchiveSize {
        len: fs::metadata(path).map_err(io("read", path))?.len(),
        entries: written.len() as u64,
    };
    Ok(NativeParts {
        shared_end,
        directory_start,
        size,
    })
}

/// Compresses the inner zip at `zip_path` into `path`: the standard
/// library's part (cached), the app's, and the central directory, each in
/// frames of their own, with the table of frames in front.
fn compress_native(
    zip_path: &Path,
    parts: NativeParts,
    path: &Path,
    progress: &Progress,
) -> Result<()> {
    let zip = fs::read(zip_path).map_err(io("read", zip_path))?;
    let (shared, rest) = zip.split_at(parts.shared_end as usize);
    let (own, directory) = rest.split_at((parts.directory_start - parts.shared_end) as usize);
    let compress_error = |e: std::io::Error| io("compress", zip_path)(e);
    let mut frames = match shared.is_empty() {
        true => Vec::new(),
        false => super::cache::shared_frames(shared, progress).map_err(compress_error)?,
    };
    for part in [own, directory] {
        frames.extend(solid::compress(part, solid::APP_LEVEL).map_err(compress_error)?);
    }
    let stream =
        solid::with_table(&frames, parts.directory_start).map_err(|reason| Error::Pack {
            reason: Reason(format!("the native archive's frames: {reason}")),
        })?;
    fs::write(path, stream).map_err(io("write", path))?;
    fs::remove_file(zip_path).map_err(io("remove", zip_path))
}

/// Writes `entries` into the zip at `path` (each a step of `phase`) and
/// finishes it.
fn finish_with(
    mut zip: ZipWriter<BufWriter<fs::File>>,
    entries: &BTreeMap<String, Entry>,
    timestamp: DateTime,
    path: &Path,
    compression: fn(&str) -> CompressionMethod,
    phase: &Phase,
) -> Result<()> {
    write_entries(
        &mut zip,
        entries,
        timestamp,
        None,
        path,
        compression,
        Some(phase),
    )?;
    zip.finish()
        .map_err(zip_error(path))?
        .flush()
        .map_err(io("write", path))
}

/// Copies the entries of the zip `from` into the executable's zip as they
/// are compressed (the runtime reads them for zipimport), hashing what
/// each holds; `pycs` decodes the zstd pycs (`ArchiveHasher::zip_entry_at`).
fn copy_archived<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    from: &Path,
    hasher: &mut ArchiveHasher,
    pycs: &mut Option<pyc_zstd::Decompressor>,
    zip_path: &Path,
) -> Result<()> {
    let unreadable = zip_read_error(from);
    let mut source = open_zip(from)?;
    for index in 0..source.len() {
        hasher
            .zip_entry_at(&mut source, index, pycs)
            .map_err(|damage| {
                io("read", from)(std::io::Error::new(std::io::ErrorKind::InvalidData, damage))
            })?;
        let entry = source.by_index_raw(index).map_err(&unreadable)?;
        zip.raw_copy_file(entry).map_err(zip_error(zip_path))?;
    }
    Ok(())
}

/// Writes `entries` in order, streaming each file, and feeds `hasher` with
/// what it wrote (name, mode, bytes).
fn write_entries<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    entries: &BTreeMap<String, Entry>,
    timestamp: DateTime,
    mut hasher: Option<&mut ArchiveHasher>,
    zip_path: &Path,
    compression: fn(&str) -> CompressionMethod,
    phase: Option<&Phase>,
) -> Result<()> {
    let mut buffer = vec![0; 1 << 20];
    for (name, entry) in entries {
        if let Some(phase) = phase {
            phase.step();
        }
        match entry {
            Entry::Dir => {
                zip.add_directory(name.trim_end_matches('/'), options(timestamp, 0o755))
                    .map_err(zip_error(zip_path))?;
                if let Some(hasher) = hasher.as_deref_mut() {
                    hasher.entry(name, DIR_MODE, 0);
                }
            }
            Entry::File(source) => {
                let mode = if source.executable { 0o755 } else { 0o644 };
                let mut file = fs::File::open(&source.path).map_err(io("read", &source.path))?;
                let len = file.metadata().map_err(io("read", &source.path))?.len();
                let method = compression(name);
                let options = options(timestamp, mode)
                    .compression_method(method)
                    .compression_level(
                        (method == CompressionMethod::Deflated).then_some(DEFLATE_LEVEL),
                    )
                    .large_file(len >= u64::from(u32::MAX));
                zip.start_file(name.as_str(), options)
                    .map_err(zip_error(zip_path))?;
                if let Some(hasher) = hasher.as_deref_mut() {
                    hasher.entry(name, mode, len);
                }
                let mut copied = 0;
                loop {
                    let read = file.read(&mut buffer).map_err(io("read", &source.path))?;
                    if read == 0 {
                        break;
                    }
                    zip.write_all(&buffer[..read])
                        .map_err(io("write", zip_path))?;
                    if let Some(hasher) = hasher.as_deref_mut() {
                        hasher.bytes(&buffer[..read]);
                    }
                    copied += read as u64;
                }
                if copied != len {
                    return Err(Error::Pack {
                        reason: Reason(format!(
                            "`{}` changed while it was packed",
                            source.path.display()
                        )),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The standard library an app carries, in two zips: the compiled modules
/// that zipimport imports straight from the executable's archive
/// (`archived`, as `json/decoder.pyc`, where zipimport looks for them), and
/// the rest of the `.python` unit, which the runtime extracts (`extracted`:
/// the modules' sources, which linters and tracebacks read as files beside
/// `__file__`, extension modules and the libraries they load, packages
/// that read their own files, sysconfig's files).
pub struct StdlibParts {
    pub archived: PathBuf,
    pub extracted: PathBuf,
}

// Made and cut by the standalone flavor's `stdlib` (the system flavor
// carries none).
#[cfg(pyferry_flavor = "standalone")]
impl StdlibParts {
    /// The parts' paths in `work_dir`, their file names starting `stem`.
    pub fn in_dir(work_dir: &Path, stem: &str) -> StdlibParts {
        StdlibParts {
            archived: work_dir.join(format!("{stem}-archived.zip")),
            extracted: work_dir.join(format!("{stem}-extracted.zip")),
        }
    }

    pub fn remove(&self) -> Result<()> {
        for path in [&self.archived, &self.extracted] {
            fs::remove_file(path).map_err(io("remove", path))?;
        }
        Ok(())
    }
}

/// A zip made of entries of other zips, each copied as it is compressed.
#[cfg(pyferry_flavor = "standalone")]
pub struct ZipCopy {
    path: PathBuf,
    zip: ZipWriter<BufWriter<fs::File>>,
}

#[cfg(pyferry_flavor = "standalone")]
impl ZipCopy {
    pub fn create(path: &Path) -> Result<ZipCopy> {
        let file = fs::File::create(path).map_err(io("create", path))?;
        Ok(ZipCopy {
            path: path.to_owned(),
            zip: ZipWriter::new(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Copies `entry` in under `name`.
    pub fn copy<R: Read>(&mut self, entry: zip::read::ZipFile<'_, R>, name: &str) -> Result<()> {
        self.zip
            .raw_copy_file_rename(entry, name)
            .map_err(zip_error(&self.path))
    }

    pub fn finish(self) -> Result<()> {
        self.zip
            .finish()
            .map_err(zip_error(&self.path))?
            .flush()
            .map_err(io("write", &self.path))
    }
}

/// Opens the zip at `path` for reading.
pub fn open_zip(path: &Path) -> Result<zip::ZipArchive<fs::File>> {
    let file = fs::File::open(path).map_err(io("read", path))?;
    zip::ZipArchive::new(file).map_err(zip_read_error(path))
}

/// `map_err` helper: a zip reader's error names the zip being read.
pub fn zip_read_error(path: &Path) -> impl Fn(zip::result::ZipError) -> Error + '_ {
    move |e| Error::Io {
        op: "read",
        path: path.to_owned(),
        source: std::io::Error::other(e),
    }
}

/// `map_err` helper: a zip writer's error names the archive being written.
fn zip_error(path: &Path) -> impl Fn(zip::result::ZipError) -> Error + '_ {
    move |e| Error::Io {
        op: "write the archive into",
        path: path.to_owned(),
        source: std::io::Error::other(e),
    }
}

/// Deflate at its best: what is deflated is read by zipimport as it is (the
/// standard library's modules, made once and cached, 90 KB smaller than at
/// the default 6) or small (an app's sources and data).
const DEFLATE_LEVEL: i64 = 9;

fn options(timestamp: DateTime, mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(timestamp)
        .unix_permissions(mode)
}

/// In the outer zip, bytecode is stored (but what `compress_app_pycs`
/// compresses): the runtime reads it with no inflate. The native archive is
/// stored too (it is a zstd stream), so that the runtime reads it in
/// place. Everything else is deflated.
fn compression_for(name: &str) -> CompressionMethod {
    if name.ends_with(".pyc") || name == NATIVE_ARCHIVE {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    }
}

/// What the standard library unit's zip holds, as a hash: every entry's
/// name, mode, size and CRC-32, in order. Not the zip's own bytes: the same
/// unit written by another route (raw-copied from pyferry's kit, or
/// gathered and deflated here) has other local headers, and must hash the
/// same, so that apps carrying it share its extracted files (whose bytes
/// the runtime checks against these CRCs before sharing them).
pub fn zip_content_hash(path: &Path) -> Result<String> {
    let mut zip = open_zip(path)?;
    let mut hasher = Sha256::new();
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index).map_err(zip_read_error(path))?;
        let name = entry.name_raw();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name);
        hasher.update(entry.unix_mode().unwrap_or(0).to_le_bytes());
        hasher.update(entry.size().to_le_bytes());
        hasher.update(entry.crc32().to_le_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// What identifies this pyferry binary: its build id, or, failing that, the
/// SHA-256 of its bytes.
#[cfg(pyferry_flavor = "standalone")]
pub fn runtime_id(runtime: &[u8]) -> String {
    let build_id = elf::Image::parse(runtime)
        .ok()
        .and_then(|image| image.build_id(runtime).map(hex));
    build_id.unwrap_or_else(|| hex(&Sha256::digest(runtime)))
}

pub use crate::format::archive_hash::hex;

/// `dir/.name.pyferry-tmp-PID`: a sibling, so the final rename is atomic.
fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.pyferry-tmp-{}", std::process::id()))
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// The zip timestamp for `SOURCE_DATE_EPOCH` (seconds since 1970, UTC),
/// clamped to what zip can store; 1980-01-01 when unset.
pub fn timestamp_from_epoch(epoch: Option<u64>) -> DateTime {
    let Some(seconds) = epoch else {
        return DateTime::default();
    };
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year < 1980 {
        return DateTime::default();
    }
    let year = year.min(2107);
    DateTime::from_date_and_time(
        year as u16,
        month as u8,
        day as u8,
        (rest / 3600) as u8,
        (rest % 3600 / 60) as u8,
        (rest % 60) as u8,
    )
    .unwrap_or_default()
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn timestamps_clamp() {
        assert_eq!(timestamp_from_epoch(None), DateTime::default());
        assert_eq!(timestamp_from_epoch(Some(0)), DateTime::default());
        let t = timestamp_from_epoch(Some(1_700_000_000));
        assert_eq!((t.year(), t.month(), t.day()), (2023, 11, 14));
        assert_eq!((t.hour(), t.minute(), t.second() / 2 * 2), (22, 13, 20));
    }
}
