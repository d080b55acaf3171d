//! The standalone flavor's standard library once extracted: where it is
//! (`sys.prefix`, its `sys.path` entries; layout in
//! `format::stdlib_unit`), and how apps that carry the same one share its
//! files instead of extracting 27 MB again (`link_from`).

use super::cache::remove_tree;
use crate::format::stdlib_unit::{TCL_LIBRARY_DIR, TK_LIBRARY_DIR, UNIT, dynload_dir, stdlib_dir};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// `sys.prefix` of an app extracted to `extraction`.
pub fn home(extraction: &Path) -> PathBuf {
    extraction.join(UNIT)
}

/// The standard library's modules in the archive of `executable`, where
/// zipimport imports them (`format::stdlib_unit`).
pub fn archived(executable: &Path) -> PathBuf {
    executable.join(UNIT).join(stdlib_dir())
}

/// The standard library's entries of `sys.path`: its modules in the
/// archive, then the extracted rest of it.
pub fn search_paths(executable: &Path, extraction: &Path) -> [PathBuf; 3] {
    let home = home(extraction);
    [
        archived(executable),
        home.join(stdlib_dir()),
        home.join(dynload_dir()),
    ]
}

/// `TCL_LIBRARY` and `TK_LIBRARY` for a unit that carries tkinter with
/// Tcl's and Tk's script libraries (`home` is the unit), unless the user
/// set them: Tcl looks for its `init.tcl` beside the executable or where
/// the build machine had it, not in the app's cache.
pub fn tcl_tk_environment(home: &Path) -> Vec<(&'static str, String)> {
    let tcl = home.join(TCL_LIBRARY_DIR);
    if !tcl.is_dir() {
        return Vec::new();
    }
    let mut environment = Vec::new();
    for (variable, dir) in [
        ("TCL_LIBRARY", tcl),
        ("TK_LIBRARY", home.join(TK_LIBRARY_DIR)),
    ] {
        if std::env::var_os(variable).is_none() {
            environment.push((variable, dir.to_string_lossy().into_owned()));
        }
    }
    environment
}

/// In an extracted `.python` unit: the hash of the standard library zip it
/// came from (the manifest's `stdlib`).
const IDENTITY: &str = ".pyferry-stdlib";

/// Records which standard library `extraction`'s `.python` holds.
pub fn record_identity(extraction: &Path, stdlib_hash: &str) -> io::Result<()> {
    fs::write(home(extraction).join(IDENTITY), format!("{stdlib_hash}\n"))
}

/// Every app carries its own copy of the standard library, but most apps of
/// a machine carry the same one: instead of extracting 27 MB again, hard
/// link the files of a complete sibling version (`donors`, directories in
/// the same private cache root) that holds the same one, into `dest`.
/// Returns the donor used, or None (then nothing is left in `dest`, and the
/// caller extracts). A donor pruned meanwhile makes a link fail, which is
/// a None; files linked before that keep their data.
pub fn link_from(
    donors: &[PathBuf],
    stdlib_hash: &str,
    dest: &Path,
    dir_mode: u32,
) -> Option<PathBuf> {
    let donor = donors.iter().find(|dir| {
        fs::read_to_string(home(dir).join(IDENTITY)).is_ok_and(|text| text.trim() == stdlib_hash)
    })?;
    match link_tree(&home(donor), &home(dest), dir_mode) {
        Ok(()) => Some(donor.clone()),
        Err(_) => {
            let _ = remove_tree(&home(dest));
            None
        }
    }
}

fn link_tree(from: &Path, to: &Path, dir_mode: u32) -> io::Result<()> {
    DirBuilder::new().mode(dir_mode).create(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            link_tree(&source, &target, dir_mode)?;
        } else if file_type.is_file() {
            if entry.file_name() != IDENTITY {
                fs::hard_link(&source, &target)?;
            }
        } else {
            return Err(io::Error::other("the standard library holds a link"));
        }
    }
    Ok(())
}
