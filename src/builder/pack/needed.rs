//! The shared libraries each native file of the app names (`DT_NEEDED`)
//! and the symbol versions it needs of them, each file read and parsed
//! once: the fallback libraries and Qt's platform plugins both ask, and a
//! Qt wheel holds 250 MB of them.

use crate::error::{Result, io};
use crate::format::elf;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct NeededLibraries {
    known: HashMap<PathBuf, Needs>,
}

#[derive(Default)]
struct Needs {
    sonames: Vec<String>,
    versions: elf::SymbolVersions,
}

impl NeededLibraries {
    /// The sonames `path` names; none when it is not ELF (a linker script,
    /// say): it needs nothing we can tell.
    pub fn of(&mut self, path: &Path) -> Result<&[String]> {
        Ok(&self.needs(path)?.sonames)
    }

    /// The symbol versions `path` needs of the library `soname`
    /// (`GLIBCXX_3.4.29`, ...). Only the standalone flavor carries
    /// fallback libraries, whose copies these choose.
    #[cfg_attr(pyferry_flavor = "system", allow(dead_code))]
    pub fn versions_of(&mut self, path: &Path, soname: &str) -> Result<BTreeSet<String>> {
        let needs = self.needs(path)?;
        Ok(needs
            .versions
            .needed
            .get(soname)
            .cloned()
            .unwrap_or_default())
    }

    /// The newest glibc version `path` needs (`GLIBC_2.27`: (2, 27)).
    pub fn newest_glibc(&mut self, path: &Path) -> Result<Option<(u32, u32)>> {
        let needs = self.needs(path)?;
        Ok(super::glibc::newest(
            needs.versions.needed.values().flatten(),
        ))
    }

    fn needs(&mut self, path: &Path) -> Result<&Needs> {
        if !self.known.contains_key(path) {
            let image = std::fs::read(path).map_err(io("read", path))?;
            let needs = elf::Image::parse(&image)
                .map(|parsed| Needs {
                    sonames: parsed.dynamic(&image).needed,
                    versions: parsed.symbol_versions(&image),
                })
                .unwrap_or_default();
            self.known.insert(path.to_owned(), needs);
        }
        Ok(&self.known[path])
    }
}
