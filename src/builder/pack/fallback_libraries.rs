//! The libraries beyond glibc that the manylinux policy lets wheels take
//! from the system, and that a machine with nothing but glibc lacks: the
//! GCC runtime of C++ and Rust extension modules, and zlib. When the app's native code
//! needs one that it does not carry itself, the build machine's copy goes
//! into the `format::FALLBACK_LIBRARIES` unit (standalone flavor).

use super::needed::NeededLibraries;
use super::tree::{SourceFile, Tree};
use super::units::is_native_file;
use crate::error::{Error, Result, io};
use crate::format::FALLBACK_LIBRARIES;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What manylinux lets a wheel need from the system beyond glibc, less the
/// graphics stack, which must come from the user's desktop (numpy's
/// gfortran needs zlib; C++ and Rust code the GCC runtime).
const CARRIED: &[&str] = &["libgcc_s.so.1", "libstdc++.so.6", "libz.so.1"];

/// Adds the carried libraries that the app's native files need and do not
/// bring; returns their names. `kit_copies` holds them when pyferry's kit
/// carries them; otherwise the build machine's are taken.
pub fn add(
    tree: &mut Tree,
    kit_copies: Option<&Path>,
    needed_by: &mut NeededLibraries,
) -> Result<Vec<String>> {
    let brought = |soname: &str| {
        tree.files
            .keys()
            .any(|name| name.rsplit('/').next() == Some(soname))
    };
    // Soname -> a native file of the app that needs it.
    let mut needed: BTreeMap<&str, PathBuf> = BTreeMap::new();
    for (name, file) in &tree.files {
        if !is_native_file(name) {
            continue;
        }
        for soname in needed_by.of(&file.path)? {
            if let Some(carried) = CARRIED.iter().find(|carried| *carried == soname)
                && !brought(carried)
            {
                needed.entry(carried).or_insert_with(|| file.path.clone());
            }
        }
    }
    let mut added = Vec::new();
    for (soname, needing) in needed {
        let found = match kit_copies.map(|dir| dir.join(soname)) {
            Some(copy) if copy.is_file() => copy,
            _ => locate(soname, &needing)?,
        };
        insert(tree, soname, found);
        added.push(soname.to_owned());
    }
    Ok(added)
}

/// Adds every carried library, as the dynamic linker's cache finds them:
/// pyferry's kit carries them for the apps it packs.
pub fn add_all(tree: &mut Tree) -> Result<()> {
    let output = Command::new("ldconfig")
        .arg("-p")
        .stderr(Stdio::null())
        .output()
        .map_err(io("run", Path::new("ldconfig")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    for soname in CARRIED {
        let found = text
            .lines()
            .filter_map(|line| line.trim().split_once(" => "))
            .find(|(name, _)| name.split(' ').next() == Some(soname) && name.contains("x86-64"))
            .map(|(_, path)| PathBuf::from(path))
            .ok_or_else(|| Error::Pack {
                reason: format!(
                    "pyferry's kit carries `{soname}` for the apps it packs, but this machine \
                     does not have it: install it (gcc's runtime, zlib)"
                )
                .into(),
            })?;
        let found = std::fs::canonicalize(&found).map_err(io("find", &found))?;
        insert(tree, soname, found);
    }
    Ok(())
}

fn insert(tree: &mut Tree, soname: &str, path: PathBuf) {
    let file = SourceFile {
        path,
        executable: true,
    };
    tree.files
        .insert(format!("{FALLBACK_LIBRARIES}/{soname}"), file);
}

/// Where this machine's dynamic linker finds `soname` for `needing`.
fn locate(soname: &str, needing: &Path) -> Result<PathBuf> {
    let fail = |why: String| Error::Pack {
        reason: format!(
            "`{}` needs `{soname}`, which pack carries for machines without it, but {why}",
            needing.display()
        )
        .into(),
    };
    let output = Command::new("ldd")
        .arg(needing)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| fail(format!("`ldd` cannot be started: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let found = text
        .lines()
        .filter_map(|line| line.trim().split_once(" => "))
        .find(|(name, _)| *name == soname)
        .map(|(_, found)| found.rsplit_once(" (").map_or(found, |(path, _)| path))
        .filter(|found| *found != "not found")
        .ok_or_else(|| fail("this machine does not have it: install it (gcc's runtime)".into()))?;
    std::fs::canonicalize(found).map_err(io("find", Path::new(found)))
}
