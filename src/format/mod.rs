//! The format: what a packed executable holds, as bytes, and the contract
//! that both sides keep. The builder writes it, the runtime reads it, and
//! neither knows the other; they meet here.
//!
//! ```text
//! [runtime ELF][zip: app modules, BOOTSTRAP_MODULE, NATIVE_ARCHIVE][end record + manifest][ELF tables]
//! ```
//!
//! - `elf`: the zip lives in a `.pyferry` section that `strip` keeps.
//! - `end_record`: the zip's end record, whose comment carries the `manifest`.
//! - `stamp`: 128 bytes in the runtime's read-only data naming the archive hash.
//! - `archive_path`: which entry names are safe to write to disk.
//! - `units`: which units are extracted and why, for `inspect`.
//! - `solid`, `pyc_zstd`: the zstd of the native archive, and of the pycs.
//!
//! Pure byte work: nothing here does I/O beyond `Read + Seek`, and every
//! malformed input is a `Damage`, never a panic.

pub mod archive_hash;
pub mod archive_path;
pub mod elf;
pub mod end_record;
pub mod manifest;
pub mod pyc_zstd;
pub mod solid;
pub mod stamp;
pub mod units;

use serde::{Deserialize, Serialize};
use std::fmt;

/// The archive's directory of pyferry's own entries (below it: the inner
/// archive and the units report); no app file may be there.
pub const PYFERRY_DIR: &str = ".pyferry";

/// The inner zip that holds the units the runtime extracts (native code,
/// data files, code that reaches its own files; kept out of the central
/// directory that zipimport parses on every start): its entries stored,
/// the whole a zstd stream (`solid`), stored in the executable's zip.
pub const NATIVE_ARCHIVE: &str = ".pyferry/native.zip.zst";

/// The module, byte-compiled into every archive by `pack`, that starts the
/// app: the runtime's command calls its `main`.
pub const BOOTSTRAP_MODULE: &str = "_pyferry_boot";

/// Its source (`bootstrap.py`); the signature of `main` is the contract
/// between it and the runtime's command.
pub const BOOTSTRAP_SOURCE: &str = include_str!("bootstrap.py");

/// How the runtime gets its Python, chosen when pyferry is compiled
/// (`build.rs` sets the `pyferry_flavor` cfg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// libpython linked in; every archive carries the standard library
    /// (the `stdlib` unit).
    Standalone,
    /// The distro's shared libpython and its standard library.
    System,
}

impl Flavor {
    /// The flavor of this build.
    #[cfg(pyferry_flavor = "standalone")]
    pub const CURRENT: Flavor = Flavor::Standalone;
    #[cfg(pyferry_flavor = "system")]
    pub const CURRENT: Flavor = Flavor::System;
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Standalone => "standalone",
            Flavor::System => "system",
        })
    }
}

/// The standalone flavor's standard library: its compiled modules in the
/// executable's archive under `.python/lib/python3.X/` (`os.pyc`,
/// `json/decoder.pyc`: zipimport imports them from there), and a native
/// unit named `.python` (no import can name it), laid out like an
/// installed prefix:
///
/// ```text
/// <extraction dir>/.python/            sys.prefix
///     lib/python3.X/                   the modules' sources, and packages
///                                      that read their own files
///     lib/python3.X/lib-dynload/       its extension modules
///     lib/                             shared libraries they need
/// ```
///
/// Extension modules find those libraries through their RPATH
/// (`$ORIGIN/../..`), written at pack time: no `LD_LIBRARY_PATH`, so the
/// app's child processes load the machine's own libraries.
pub mod stdlib_unit {
    use crate::build_python::PYTHON_VERSION;

    /// The native unit that holds the standard library.
    pub const UNIT: &str = ".python";

    /// The standard library's directory, relative to the unit.
    pub fn stdlib_dir() -> String {
        format!("lib/python{PYTHON_VERSION}")
    }

    /// Its extension modules' directory, relative to the unit.
    pub fn dynload_dir() -> String {
        format!("{}/lib-dynload", stdlib_dir())
    }

    /// The shared libraries' directory, relative to the unit.
    pub const LIBRARY_DIR: &str = "lib";

    /// The RPATH of an extension module in `dynload_dir` that finds
    /// `LIBRARY_DIR`.
    pub const EXTENSION_RPATH: &str = "$ORIGIN/../..";

    /// Tcl's and Tk's script libraries (`init.tcl`, `tk.tcl`, ...), relative
    /// to the unit, when it carries tkinter: the runtime points
    /// `TCL_LIBRARY` and `TK_LIBRARY` at them.
    pub const TCL_LIBRARY_DIR: &str = "tcltk/tcl";
    pub const TK_LIBRARY_DIR: &str = "tcltk/tk";
}

/// The extracted unit that holds the libraries an app's native code takes
/// from the system where the manylinux policy lets wheels do so
/// (`libstdc++.so.6`, `libgcc_s.so.1`, `libz.so.1`), carried by the standalone flavor for
/// machines without them. The runtime loads the machine's own copy when it
/// has one (other system libraries the app loads may need its newer
/// version), this one otherwise, before the interpreter starts: extension
/// modules then find the library loaded, by its name.
pub const FALLBACK_LIBRARIES: &str = ".fallback-libs";

/// What is wrong with the bytes of a packed executable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("its manifest is cut short")]
    ManifestCutShort,
    #[error("its manifest does not match its checksum")]
    ManifestChecksum,
    #[error("its manifest is unreadable ({0})")]
    ManifestUnreadable(String),
    #[error("its manifest has a bad {field} `{value}`")]
    ManifestField { field: &'static str, value: String },
    #[error("its end record claims to start before the file does")]
    EndRecordBeforeStart,
    #[error(
        "its central directory ({size} bytes at offset {offset}) does not fit before its end \
         record (at {end_record})"
    )]
    CentralDirectoryMisplaced {
        size: u64,
        offset: u64,
        end_record: u64,
    },
    #[error("the runtime stamp is damaged")]
    StampDamaged,
    #[error("the runtime stamp is unreadable")]
    StampUnreadable,
    #[error("an archive was appended to it by hand, not by `pyferry pack`")]
    AppendedByHand,
    #[error("its archive belongs to another build (the hashes differ)")]
    OtherBuild,
    #[error("its archive was built for Python {archive}, but its runtime embeds Python {runtime}")]
    OtherPython { archive: String, runtime: String },
    #[error("its archive was built for a {archive} runtime, but its runtime is {runtime}")]
    OtherFlavor { archive: Flavor, runtime: Flavor },
    #[error("its archive carries no standard library")]
    NoStandardLibrary,
    #[error("its archive is unreadable: {0}")]
    Unreadable(String),
    #[error("its archive does not match the hash it was packed with: a damaged copy")]
    HashMismatch,
    #[error("its archive entry `{name}` cannot be read ({why})")]
    Entry { name: String, why: String },
    #[error(
        "its end record counts {counted} entries, but its central directory holds {held}: \
         zip readers would disagree on what it contains"
    )]
    EntryCountMismatch { counted: u64, held: String },
    #[error("bytes were appended to it after its archive (another zip end record follows)")]
    Appended,
    /// What the runtime's reader of the native archive found.
    #[error("{0}")]
    NativeArchive(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyferrys_entries_live_in_its_directory() {
        for entry in [NATIVE_ARCHIVE, units::REPORT] {
            assert_eq!(entry.split_once('/').map(|(dir, _)| dir), Some(PYFERRY_DIR));
        }
    }
}
