//! The oldest glibc an app runs on: the newest `GLIBC_X.Y` symbol version
//! that the runtime, the standard library's native files or the app's own
//! need. A wheel built for a newer manylinux than the runtime (numpy's
//! `manylinux_2_27`, cryptography's `manylinux_2_34`: pip picks the newest
//! that the packing machine takes) raises it. The manifest records it, and
//! on an older system the runtime says so before the app starts, where the
//! dynamic linker would fail at the module's first import.

use super::archive;
use super::needed::NeededLibraries;
use super::tree::Tree;
use super::units::is_native_file;
use crate::error::{Error, Result, io};
use crate::format::manifest::{GlibcFloor, NEEDED_BY_THE_RUNTIME, glibc_version};
use crate::format::{FALLBACK_LIBRARIES, elf};
use std::io::Read;
use std::path::Path;

/// `X.Y` of the newest `GLIBC_X.Y[.Z]` among `versions`.
pub fn newest<'v>(versions: impl IntoIterator<Item = &'v String>) -> Option<(u32, u32)> {
    versions
        .into_iter()
        .filter_map(|version| glibc_version(version.strip_prefix("GLIBC_")?))
        .max()
}

/// The newest glibc version one ELF image needs.
pub fn of_image(image: &[u8]) -> Option<(u32, u32)> {
    let versions = elf::Image::parse(image).ok()?.symbol_versions(image);
    newest(versions.needed.values().flatten())
}

/// The floor so far and what set it.
#[derive(Debug, Default)]
pub struct Floor {
    newest: Option<((u32, u32), String)>,
}

impl Floor {
    /// Counts `version`, needed by `by` (an archive name).
    pub fn raise(&mut self, version: Option<(u32, u32)>, by: &str) {
        if let Some(version) = version
            && self
                .newest
                .as_ref()
                .is_none_or(|(newest, _)| version > *newest)
        {
            self.newest = Some((version, by.to_owned()));
        }
    }

    /// Counts the app's native files and programs, less the fallback
    /// libraries: an app loads those only where the machine has none of
    /// its own.
    pub fn raise_by_app(&mut self, tree: &Tree, needed_by: &mut NeededLibraries) -> Result<()> {
        for (name, file) in &tree.files {
            let native = is_native_file(name) || (file.executable && is_elf(&file.path)?);
            if native && !name.starts_with(&format!("{FALLBACK_LIBRARIES}/")) {
                self.raise(needed_by.newest_glibc(&file.path)?, name);
            }
        }
        Ok(())
    }

    /// Counts the native files in a zip (the standard library's extracted
    /// part).
    pub fn raise_by_zip(&mut self, path: &Path) -> Result<()> {
        let mut zip = archive::open_zip(path)?;
        for index in 0..zip.len() {
            let mut entry = zip.by_index(index).map_err(archive::zip_read_error(path))?;
            let name = entry
                .name()
                .map_err(archive::zip_read_error(path))?
                .into_owned();
            if !is_native_file(&name) {
                continue;
            }
            let mut image = Vec::new();
            entry.read_to_end(&mut image).map_err(io("read", path))?;
            self.raise(of_image(&image), &name);
        }
        Ok(())
    }

    pub fn into_manifest(self) -> Option<GlibcFloor> {
        self.newest.map(|((major, minor), needed_by)| GlibcFloor {
            version: format!("{major}.{minor}"),
            needed_by,
        })
    }
}

/// Whether the file starts as an ELF image does (a native program).
fn is_elf(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(io("read", path))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == *b"\x7fELF")
}

/// The app's floor, counting the runtime's own (read from its image), and
/// checked against `--glibc` (`asked`): a file that needs a newer glibc is
/// an error. Without `--glibc`, a note says when the app's files raise the
/// floor above the runtime's own.
pub fn check(
    mut floor: Floor,
    runtime: &[u8],
    asked: Option<(u32, u32)>,
) -> Result<Option<GlibcFloor>> {
    let runtime_needs = of_image(runtime);
    floor.raise(runtime_needs, NEEDED_BY_THE_RUNTIME);
    let Some(floor) = floor.into_manifest() else {
        return Ok(None);
    };
    let Some(found) = floor.parsed() else {
        return Ok(Some(floor));
    };
    match asked {
        Some(asked) if found > asked => Err(Error::GlibcTooNew {
            needed_by: floor.needed_by,
            needed: floor.version,
            asked: format!("{}.{}", asked.0, asked.1),
        }),
        Some(_) => Ok(Some(floor)),
        None => {
            if let Some(own) = runtime_needs.filter(|own| found > *own) {
                eprintln!(
                    "pyferry: note: the app runs on Linux with glibc {} or newer: `{}` needs it \
                     (pip chose wheels for this machine); `--glibc {}.{}` chooses wheels for \
                     every system the runtime runs on, where their projects publish them",
                    floor.version, floor.needed_by, own.0, own.1
                );
            }
            Ok(Some(floor))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_glibc_version_is_found_among_others() {
        let versions: Vec<String> = [
            "GLIBC_2.2.5",
            "GLIBC_2.27",
            "GLIBC_2.3",
            "GLIBC_PRIVATE",
            "GLIBCXX_3.4.29",
            "CXXABI_1.3",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(newest(&versions), Some((2, 27)));
        assert_eq!(newest(&versions[3..]), None);
        assert_eq!(glibc_version("2.2.5"), Some((2, 2)));
        for bad in ["2", "2.x", "2.17.a", "", "2.+17", "2.17.1.1"] {
            assert_eq!(glibc_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_floor_is_the_newest_need_and_names_its_file() {
        let mut floor = Floor::default();
        floor.raise(Some((2, 17)), "the runtime");
        floor.raise(None, "data.so");
        floor.raise(Some((2, 28)), "a.so");
        floor.raise(Some((2, 27)), "b.so");
        floor.raise(Some((2, 28)), "c.so");
        let recorded = floor.into_manifest().expect("a floor");
        assert_eq!(
            (recorded.version.as_str(), recorded.needed_by.as_str()),
            ("2.28", "a.so")
        );
        assert_eq!(Floor::default().into_manifest(), None);
    }
}
