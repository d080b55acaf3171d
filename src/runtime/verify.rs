//! Before a copy of an app is trusted, its archive is hashed again and
//! compared with the hash it was packed with (`format::archive_hash`): a
//! damaged copy must neither publish misnamed or corrupt files under the
//! genuine version's key, where intact copies would then load them, nor run
//! corrupt bytecode from its own archive (zipimport checks no CRC).
//!
//! A pass over the whole archive is too slow for every start, so it is made
//! once per copy: by the first run, before it extracts, and then once for
//! every other executable file (by device, inode, size, mtime and ctime)
//! that runs the version, which a marker file in the version directory
//! remembers (`VERIFIED_DIR`). Not for a file changed in the last
//! `RACY_WINDOW`: where timestamps count whole seconds, a change within
//! the same second would keep its identity.

use super::payload::{Payload, Window};
use crate::format::Damage;
use crate::format::archive_hash::ArchiveHasher;
use crate::format::end_record;
use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// In a version directory: one empty file per verified copy, named by its
/// identity.
pub const VERIFIED_DIR: &str = ".pyferry-verified";

/// How long after its last change a file's identity cannot tell it from
/// a later change: filesystems with one-second timestamps (ext4 with small
/// inodes, many network filesystems), or FAT's two seconds, give a copy
/// overwritten within the same tick the same times, size and inode. Such a
/// copy is verified again at its next start (as git re-reads a file that
/// changed within its index's second).
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Hashes the archive of `payload` again; `Err` unless it is the hash the
/// manifest records.
pub fn archive(payload: &Payload) -> Result<(), Damage> {
    let started = std::time::Instant::now();
    let verified = hash_again(payload);
    crate::debug::note(format_args!(
        "verified this copy's archive in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    verified
}

fn hash_again(payload: &Payload) -> Result<(), Damage> {
    // Read in place, by offset: extraction reads the same file meanwhile.
    let whole = Window::over(&payload.file, 0, payload.len);
    let mut zip = zip::ZipArchive::new(whole).map_err(|e| Damage::Unreadable(e.to_string()))?;
    check_entry_count(payload, None)?;
    let mut hasher = ArchiveHasher::default();
    let mut pycs = None;
    for index in 0..zip.len() {
        hasher.zip_entry_at(&mut zip, index, &mut pycs)?;
    }
    match hasher.finish(&payload.manifest) == payload.manifest.hash {
        true => Ok(()),
        false => Err(Damage::HashMismatch),
    }
}

/// The central directory must hold exactly the entries its end record
/// counts (which the zip crate reads, and the archive's hash covers): the
/// runtime's zipimport table, `zipfile` and stock zipimport walk it by
/// size, and would import an entry added behind the counted ones, unhashed.
/// `held`: the count a walk already made (the runtime's table), if any.
pub fn check_entry_count(payload: &Payload, held: Option<u64>) -> Result<(), Damage> {
    let (Some(counted), Some(directory)) = (payload.entries, payload.central_directory) else {
        return Ok(());
    };
    let held = match held {
        Some(held) => Some(held),
        None => {
            let size =
                usize::try_from(directory.size).map_err(|e| Damage::Unreadable(e.to_string()))?;
            let mut bytes = vec![0; size];
            std::os::unix::fs::FileExt::read_exact_at(
                &payload.file,
                &mut bytes,
                directory.position,
            )
            .map_err(|e| Damage::Unreadable(e.to_string()))?;
            end_record::central_records(&bytes)
        }
    };
    match held {
        Some(held) if held == counted => Ok(()),
        held => Err(Damage::EntryCountMismatch {
            counted,
            held: held.map_or("records that do not fill it".to_owned(), |held| {
                held.to_string()
            }),
        }),
    }
}

/// Whether `file` changed (its data or its inode) less than `window` ago,
/// or is dated in the future.
fn changed_within(file: &File, window: Duration) -> io::Result<bool> {
    let meta = file.metadata()?;
    let changed = meta.ctime().max(meta.mtime());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    Ok(now.saturating_sub(changed) < window.as_secs() as i64)
}

/// What tells this copy of the executable from others: a file with this
/// identity and the same hash was verified already.
pub fn identity(file: &File) -> io::Result<String> {
    let meta = file.metadata()?;
    Ok(format!(
        "{:x}-{:x}-{:x}-{}.{}-{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// Where the version directory `dir` remembers that this copy (`file`) was
/// verified; `None` if the copy cannot be told from others.
pub fn marker(dir: &Path, file: &File) -> Option<PathBuf> {
    Some(dir.join(VERIFIED_DIR).join(identity(file).ok()?))
}

/// Remembers in the version directory `dir` that this copy was verified,
/// unless it changed too recently for its identity to tell (`RACY_WINDOW`).
pub fn remember(dir: &Path, file: &File, dir_mode: u32) -> io::Result<()> {
    if changed_within(file, RACY_WINDOW)? {
        return Ok(());
    }
    match DirBuilder::new()
        .mode(dir_mode)
        .create(dir.join(VERIFIED_DIR))
    {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if let Some(marker) = marker(dir, file) {
        File::create(marker)?;
    }
    Ok(())
}
