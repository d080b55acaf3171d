//! The libraries beyond glibc that the manylinux policy lets wheels take
//! from the system, and that a machine with nothing but glibc lacks: the
//! GCC runtime of C++ and Rust extension modules, and zlib. When the app's native code
//! needs one that it does not carry itself, a copy goes into the
//! `format::FALLBACK_LIBRARIES` unit (standalone flavor): pyferry's kit's,
//! or those that come with pyferry's own CPython (Debian 11's builds, which
//! need no newer glibc than the runtime), or else the build machine's.

use super::needed::NeededLibraries;
use super::python::BuildPython;
use super::tree::{SourceFile, Tree};
use super::units::is_native_file;
use crate::error::{Error, Result, io};
use crate::format::{FALLBACK_LIBRARIES, elf};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What manylinux lets a wheel need from the system beyond glibc, less the
/// graphics stack, which must come from the user's desktop (numpy's
/// gfortran needs zlib; C++ and Rust code the GCC runtime).
const CARRIED: &[&str] = &["libgcc_s.so.1", "libstdc++.so.6", "libz.so.1"];

/// The copies that come with the build interpreter when it is pyferry's
/// own CPython (tools/portable-python puts them in `PREFIX/lib/pyferry-fallback`).
pub fn copies_of(python: &BuildPython) -> Option<PathBuf> {
    let prefix = python.stdlib_dir.ancestors().nth(2)?;
    Some(prefix.join("lib/pyferry-fallback")).filter(|dir| dir.is_dir())
}

/// Adds the carried libraries that the app's native files need and do not
/// bring; returns their names. Each is taken from the first of `copies`
/// (directories, best first) whose copy defines every symbol version the
/// app's files need of it (a wheel built against a newer libstdc++ needs
/// a newer copy), else from the build machine.
pub fn add(
    tree: &mut Tree,
    copies: &[PathBuf],
    needed_by: &mut NeededLibraries,
) -> Result<Vec<String>> {
    let brought = |soname: &str| {
        tree.files
            .keys()
            .any(|name| name.rsplit('/').next() == Some(soname))
    };
    // Soname -> the native files of the app that need it.
    let mut needed: BTreeMap<&str, Vec<PathBuf>> = BTreeMap::new();
    for (name, file) in &tree.files {
        if !is_native_file(name) {
            continue;
        }
        for soname in needed_by.of(&file.path)? {
            if let Some(carried) = CARRIED.iter().find(|carried| *carried == soname)
                && !brought(carried)
            {
                needed.entry(carried).or_default().push(file.path.clone());
            }
        }
    }
    let mut added = Vec::new();
    for (soname, needing) in needed {
        let mut versions = BTreeSet::new();
        for file in &needing {
            versions.extend(needed_by.versions_of(file, soname)?);
        }
        let found = match copies
            .iter()
            .map(|dir| dir.join(soname))
            .find(|copy| defines_all(copy, &versions))
        {
            Some(copy) => copy,
            None => locate(soname, &needing[0])?,
        };
        insert(tree, soname, found);
        added.push(soname.to_owned());
    }
    Ok(added)
}

/// Whether the library at `path` defines every symbol version in
/// `versions`: the dynamic linker refuses to load a file that needs one it
/// lacks.
fn defines_all(path: &Path, versions: &BTreeSet<String>) -> bool {
    let Ok(image) = std::fs::read(path) else {
        return false;
    };
    elf::Image::parse(&image)
        .is_ok_and(|parsed| versions.is_subset(&parsed.symbol_versions(&image).defined))
}

/// Adds every carried library, from the first of `copies` that has it,
/// else as the dynamic linker's cache finds it: pyferry's kit carries them
/// for the apps it packs.
pub fn add_all(tree: &mut Tree, copies: &[PathBuf]) -> Result<()> {
    let output = Command::new("ldconfig")
        .arg("-p")
        .stderr(Stdio::null())
        .output()
        .map_err(io("run", Path::new("ldconfig")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    for soname in CARRIED {
        if let Some(copy) = copies
            .iter()
            .map(|dir| dir.join(soname))
            .find(|copy| copy.is_file())
        {
            let copy = std::fs::canonicalize(&copy).map_err(io("find", &copy))?;
            insert(tree, soname, copy);
            continue;
        }
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
