//! Where a standalone app's Python lives once extracted.
//!
//! The standalone runtime has CPython linked in but no standard library on
//! the machine, so every archive carries one (`pack::stdlib`) as a native
//! unit named `.python` (no import can name it), laid out like an installed
//! prefix:
//!
//! ```text
//! <extraction dir>/.python/            sys.prefix
//!     lib/python3.X/                   the standard library, pycs only
//!     lib/python3.X/lib-dynload/       its extension modules
//!     lib/                             shared libraries they need
//! ```
//!
//! Extension modules find those libraries through their RPATH
//! (`$ORIGIN/../..`), written at pack time: no `LD_LIBRARY_PATH`, so the
//! app's child processes load the machine's own libraries. (The one
//! variable the runtime may set is `SSL_CERT_FILE`: `certificate_bundle`.)
//! Apps carrying the same standard library share its extracted files
//! (`link_from`).

use crate::build_python::PYTHON_VERSION;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

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

/// `sys.prefix` of an app extracted to `extraction`.
pub fn home(extraction: &Path) -> PathBuf {
    extraction.join(UNIT)
}

/// The standard library's entries of `sys.path`.
pub fn search_paths(extraction: &Path) -> [PathBuf; 2] {
    let home = home(extraction);
    [home.join(stdlib_dir()), home.join(dynload_dir())]
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
            let _ = crate::extract::remove_tree(&home(dest));
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

/// Where distributions keep their CA certificates, as one file.
const CERTIFICATE_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine
];

/// The bundled OpenSSL looks for CA certificates where the build machine's
/// distribution keeps them (Debian: `/usr/lib/ssl`); elsewhere HTTPS would
/// fail to verify. Unless the user chose (`SSL_CERT_FILE`/`SSL_CERT_DIR`),
/// the runtime points `SSL_CERT_FILE` at this machine's bundle: one `stat`
/// on Debian, where it is the default anyway.
pub fn certificate_bundle() -> Option<&'static str> {
    if ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|name| std::env::var_os(name).is_some())
    {
        return None;
    }
    CERTIFICATE_BUNDLES
        .iter()
        .copied()
        .find(|path| Path::new(path).is_file())
}
