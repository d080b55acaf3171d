//! Writing the native units of an archive into a fresh directory.
//!
//! Only the top-level units the manifest names are written (whole: a package
//! with native code keeps its data files next to `__file__`). Every name is
//! checked again here, links are refused, and files are created with
//! `create_new`, so a duplicate name or anything already in the way is an
//! error instead of a silent overwrite.

use crate::archive_path;
use crate::error::Reason;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// What was written, for `PYFERRY_DEBUG`.
#[derive(Debug, Default)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Extracts the entries of `units` from the zip in `archive` into `dest`
/// (an existing, empty directory). Directories are created with `dir_mode`.
pub fn extract_units(
    archive: &File,
    units: &[String],
    dest: &Path,
    dir_mode: u32,
) -> Result<Extracted, Reason> {
    let mut zip =
        zip::ZipArchive::new(archive).map_err(|e| format!("the archive is unreadable: {e}"))?;
    let mut done = Extracted::default();
    let mut dirs = DirBuilder::new();
    dirs.recursive(true).mode(dir_mode);
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
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
        if entry.is_dir() {
            dirs.create(&target)
                .map_err(|e| format!("cannot create `{}`: {e}", target.display()))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            dirs.create(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .open(&target)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => format!("the archive holds `{name}` twice"),
                _ => format!("cannot create `{}`: {e}", target.display()),
            })?;
        // The zip reader checks the CRC as the copy ends.
        done.bytes +=
            io::copy(&mut entry, &mut file).map_err(|e| format!("cannot extract `{name}`: {e}"))?;
        done.files += 1;
    }
    Ok(done)
}

/// Removes a directory tree, treating "already gone" as success.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
