//! The builder's kit: what lets pyferry pack with no Python on the machine.
//!
//! `make` packs pyferry itself (`pack --builder-kit`) as a standalone app
//! whose manifest says `builder`: its archive holds pip, the standard
//! library unit every standalone app carries, and the bare runtime that
//! apps are written on (`KIT_RUNTIME`). Started as `pyferry`, it is the
//! builder; started with `PYFERRY_INTERPRETER=1`, it is python over pip
//! and that standard library, which is how pack runs pip and byte-compiles
//! (pip's own children inherit the variable). The standard library is
//! gathered once, when pyferry is built, not at each pack.

#[cfg(pyferry_flavor = "standalone")]
use crate::builder::pack::archive::{StdlibParts, ZipCopy};
use crate::error::{Error, Result};
use crate::format::FALLBACK_LIBRARIES;
#[cfg(pyferry_flavor = "standalone")]
use crate::format::{NATIVE_ARCHIVE, pyc_zstd, stdlib_unit};
use crate::runtime::invocation::INTERPRETER_VARIABLE;
use crate::runtime::payload::Payload;
use std::fs::File;
use std::io::Read;
#[cfg(pyferry_flavor = "standalone")]
use std::io::Seek;
use std::path::{Path, PathBuf};

/// The entry of the kit's archive that holds the bare runtime.
pub const KIT_RUNTIME: &str = ".pyferry/runtime";

/// pyferry with its kit: the executable and its payload.
pub struct Kit {
    pub payload: Payload,
}

impl Kit {
    /// The kit's own python: the executable, started as python.
    pub fn python(&self) -> (&Path, [(&'static str, &'static str); 1]) {
        (&self.payload.path, [(INTERPRETER_VARIABLE, "1")])
    }

    /// The GCC runtime and zlib the kit carries (`pack::fallback_libraries`),
    /// extracted: what an app takes when it needs them, with no `ldd` or
    /// system copy on the build machine.
    pub fn fallback_libraries(&self) -> Result<PathBuf> {
        let version = crate::runtime::cache::ensure_extracted(&self.payload)?;
        Ok(version.dir.join(FALLBACK_LIBRARIES))
    }

    fn archive(&self) -> Result<zip::ZipArchive<&File>> {
        zip::ZipArchive::new(&self.payload.file).map_err(|e| self.damaged(e.to_string()))
    }

    fn damaged(&self, why: String) -> Error {
        Error::Pack {
            reason: format!(
                "pyferry's own kit in `{}` is unreadable ({why}); install pyferry again",
                self.payload.path.display()
            )
            .into(),
        }
    }

    /// The bare runtime that packed apps are written on.
    pub fn runtime(&self) -> Result<Vec<u8>> {
        let mut archive = self.archive()?;
        let mut entry = archive
            .by_name(KIT_RUNTIME)
            .map_err(|e| self.damaged(format!("{KIT_RUNTIME}: {e}")))?;
        let mut runtime = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut runtime)
            .map_err(|e| self.damaged(format!("{KIT_RUNTIME}: {e}")))?;
        Ok(runtime)
    }

    /// Writes the standard library the kit carries, in the parts pack puts
    /// into an app, to `work_dir`: its entries copied as they are (the
    /// archived modules compressed, from the kit's own archive; the rest
    /// stored, from its inner archive); CPython's C headers only if `headers`
    /// (the kit keeps them for pip, apps leave them out by default).
    #[cfg(pyferry_flavor = "standalone")]
    pub fn stdlib_parts(&self, work_dir: &Path, headers: bool) -> Result<StdlibParts> {
        let parts = StdlibParts::in_dir(work_dir, "stdlib");
        let prefix = format!("{}/", stdlib_unit::UNIT);
        let mut outer = self.archive()?;
        // With the dictionary its pycs are compressed with.
        self.copy_entries(&mut outer, &parts.archived, |name| {
            name.starts_with(&prefix) || name == pyc_zstd::DICTIONARY_ENTRY
        })?;
        // The inner archive, decoded whole.
        let inner = crate::runtime::extract::open_native(
            &self.payload.file,
            self.payload.entries,
            self.payload.manifest.native_archive,
        )
        .and_then(|native| native.map(|native| native.decode_whole()).transpose())
        .map_err(|why| self.damaged(why.to_string()))?
        .ok_or_else(|| self.damaged(format!("it has no `{NATIVE_ARCHIVE}`")))?;
        let mut inner = zip::ZipArchive::new(inner.reader())
            .map_err(|e| self.damaged(format!("{NATIVE_ARCHIVE}: {e}")))?;
        let header_dir = format!("{prefix}include/");
        // pyconfig.h is a header every app carries: sysconfig reads it.
        self.copy_entries(&mut inner, &parts.extracted, |name| {
            name.starts_with(&prefix)
                && (headers || !name.starts_with(&header_dir) || name.ends_with("/pyconfig.h"))
        })?;
        Ok(parts)
    }

    /// Copies the entries of `from` whose names are `wanted` into a new zip
    /// at `path`.
    #[cfg(pyferry_flavor = "standalone")]
    fn copy_entries<R: Read + Seek>(
        &self,
        from: &mut zip::ZipArchive<R>,
        path: &Path,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let mut zip = ZipCopy::create(path)?;
        for index in 0..from.len() {
            let entry = from
                .by_index_raw(index)
                .map_err(|e| self.damaged(e.to_string()))?;
            let name = entry
                .name()
                .map_err(|e| self.damaged(e.to_string()))?
                .into_owned();
            if wanted(&name) {
                zip.copy(entry, &name)?;
            }
        }
        zip.finish()
    }
}
