//! The shared libraries each native file of the app names (`DT_NEEDED`),
//! each file read and parsed once: the fallback libraries and Qt's platform
//! plugins both ask, and a Qt wheel holds 250 MB of them.

use crate::error::{Result, io};
use crate::format::elf;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct NeededLibraries {
    known: HashMap<PathBuf, Vec<String>>,
}

impl NeededLibraries {
    /// The sonames `path` names; none when it is not ELF (a linker script,
    /// say): it needs nothing we can tell.
    pub fn of(&mut self, path: &Path) -> Result<&[String]> {
        if !self.known.contains_key(path) {
            let image = std::fs::read(path).map_err(io("read", path))?;
            let needed = elf::Image::parse(&image)
                .map(|parsed| parsed.dynamic(&image).needed)
                .unwrap_or_default();
            self.known.insert(path.to_owned(), needed);
        }
        Ok(&self.known[path])
    }
}
