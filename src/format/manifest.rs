//! What a packed app says about itself: name, entry point, Python, the
//! top-level units extracted to the cache (and their archive's decoded
//! length), and the archive hash.
//!
//! The manifest travels as JSON in the zip comment (see `end_record`), and every
//! field is validated on read: the runtime builds paths from `name`, `hash`
//! and `extracted`, and Python source from `entry`.

use super::{Damage, Flavor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// App name: the cache directory prefix and the prefix of its errors.
    pub name: String,
    pub entry: EntryPoint,
    /// `major.minor` of the CPython the archive was byte-compiled for.
    pub python: String,
    /// Runtime flavor the executable was packed with.
    pub flavor: Flavor,
    /// Top-level packages, modules and directories extracted whole to the
    /// cache (native code, data files, code that reaches its own files) and
    /// put ahead of the archive on `sys.path`. (Called `native` by pyferry
    /// before 2026-11-29, whose executables `inspect` still reads.)
    #[serde(alias = "native")]
    pub extracted: Vec<String>,
    /// A directory that a system package fills at install time
    /// (`--extract-only --target`), used instead of the per-user cache when
    /// it holds this version and only root can have written it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_cache: Option<String>,
    /// SHA-256 of the standalone standard library's zip (the `.python`
    /// unit): apps that carry the same one share its extracted files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdlib: Option<String>,
    /// The Qt bindings the app carries with their platform plugins, which
    /// the runtime checks before Qt would abort (see `QtPlatforms`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qt_platforms: Vec<QtPlatforms>,
    /// On a first run, the `extracted` units wait until the app needs them
    /// (see `ExtractOnImport`); without it, they are extracted before the
    /// app starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_on_import: Option<ExtractOnImport>,
    /// The oldest glibc the app runs on, and the file that needs it (see
    /// `GlibcFloor`); the runtime says so on an older system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc: Option<GlibcFloor>,
    /// How large the native archive is (see `NativeArchiveSize`); absent
    /// from executables packed before 2026-12-07, and from apps without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_archive: Option<NativeArchiveSize>,
    /// pyferry itself with its kit (`builder::kit`): the builder CLI, and
    /// python for the pip and byte-compiler that pack starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub builder: bool,
    /// SHA-256 of the archive entries and of this manifest (with `hash` empty).
    pub hash: String,
    /// Version of pyferry that packed it.
    pub pyferry: String,
}

/// The newest `GLIBC_X.Y` symbol version that the runtime or a native
/// file the app carries needs: on a system with an older glibc, the dynamic
/// linker would refuse that file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlibcFloor {
    /// `X.Y`.
    pub version: String,
    /// The file that needs it, by its archive name, or `the runtime`.
    pub needed_by: String,
}

/// The size of the native archive (`NATIVE_ARCHIVE`, the inner zip whose
/// units a first run extracts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeArchiveSize {
    /// Its decoded length: its table of frames must say the same, and no
    /// reader decodes more, whatever a damaged frame header claims; also
    /// the most disk its extraction takes.
    pub len: u64,
    /// Its entries: the most files and directories its extraction creates.
    pub entries: u64,
}

/// `GlibcFloor::needed_by` when the runtime itself sets the floor.
pub const NEEDED_BY_THE_RUNTIME: &str = "the runtime";

impl GlibcFloor {
    /// (X, Y) of `version`, which is `X.Y` exactly.
    pub fn parsed(&self) -> Option<(u32, u32)> {
        glibc_version(&self.version).filter(|_| self.version.matches('.').count() == 1)
    }
}

/// (X, Y) of a glibc version: `X.Y`, or `X.Y.Z` (a symbol version such as
/// `2.2.5`, a development build's `2.36.9000`), each part 1 to 4 digits.
pub fn glibc_version(text: &str) -> Option<(u32, u32)> {
    let parts: Vec<&str> = text.split('.').collect();
    let is_number = |part: &&str| {
        !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit())
    };
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(is_number) {
        return None;
    }
    Some((parts[0].parse().ok()?, parts[1].parse().ok()?))
}

/// A Qt binding's platform plugins (`PySide6/Qt/plugins/platforms/libqxcb.so`
/// is `xcb`), each with the libraries it takes from the user's desktop,
/// itself or through the app's own libraries. Qt loads the plugin when the
/// app creates its application object, and aborts when one is missing with
/// a message that does not name it; the runtime checks them when the app
/// first imports one of `modules` (those that need Qt's GUI library:
/// `PySide6.QtGui`, `PySide6.QtWidgets`...), and names what to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QtPlatforms {
    pub modules: Vec<String>,
    pub plugins: BTreeMap<String, Vec<String>>,
}

/// What makes a first run extract the app's units: importing one of
/// `modules` (top-level names: the app's extracted packages and modules,
/// the standard library's extension modules and the packages that read
/// their own files), reading a source of the extracted standard library
/// through `linecache` (tracebacks, `inspect`), or, with `metadata`,
/// looking for installed distributions (`importlib.metadata`), whose
/// `*.dist-info` directories are extracted. An app that needs none of them
/// (a hello world) extracts nothing at all. pack writes it only when every
/// extracted unit is reached that way (a directory of native programs is
/// not: it is extracted before the app starts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractOnImport {
    pub modules: Vec<String>,
    pub metadata: bool,
}

/// `module` run like `python -m module`, or `module:function` called like a
/// console script (its return value is the exit status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPoint {
    pub module: String,
    pub function: Option<String>,
}

impl EntryPoint {
    /// Parses `pkg.mod` or `pkg.mod:func` (`func` may be dotted: `obj.attr`).
    pub fn parse(text: &str) -> Option<EntryPoint> {
        let (module, function) = match text.split_once(':') {
            Some((module, function)) => (module.trim(), Some(function.trim())),
            None => (text.trim(), None),
        };
        let entry = EntryPoint {
            module: module.to_owned(),
            function: function.map(str::to_owned),
        };
        entry.is_valid().then_some(entry)
    }

    fn is_valid(&self) -> bool {
        is_dotted_name(&self.module) && self.function.as_deref().is_none_or(is_dotted_name)
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(function) => write!(f, "{}:{}", self.module, function),
            None => write!(f, "{}", self.module),
        }
    }
}

/// `a.b.c` where each part is a Python identifier (ASCII or not).
fn is_dotted_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

/// A top-level module's name as its file names it: letters, digits and
/// underscores (an identifier, or a name that only `importlib` imports,
/// such as mypyc's `85cae5375ceb5d1ca6c6__mypyc`).
pub fn is_module_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c == '_' || c.is_alphanumeric())
}

/// App names become file names and message prefixes: keep them tame.
pub fn is_valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Manifest {
    /// Checks every field the runtime trusts; the reason names the field.
    pub fn validate(&self) -> Result<(), Damage> {
        let bad = |field: &'static str, value: &str| {
            Err(Damage::ManifestField {
                field,
                value: value.to_owned(),
            })
        };
        if !is_valid_app_name(&self.name) {
            return bad("app name", &self.name);
        }
        if !self.entry.is_valid() {
            return bad("entry point", &self.entry.to_string());
        }
        let is_hash = |hash: &str| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hash(&self.hash) {
            return bad("archive hash", &self.hash);
        }
        if let Some(stdlib) = self.stdlib.as_deref().filter(|hash| !is_hash(hash)) {
            return bad("standard library hash", stdlib);
        }
        if let Some(dir) = &self.system_cache
            && (!dir.starts_with('/') || dir.contains('\0'))
        {
            return bad("system cache directory", dir);
        }
        // Each becomes a string literal of the bootstrap command, and a
        // soname is given to `dlopen`: names only, no paths.
        let is_file_name = |name: &str| {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        };
        for qt in &self.qt_platforms {
            if let Some(module) = qt.modules.iter().find(|module| !is_dotted_name(module)) {
                return bad("Qt module", module);
            }
            for (platform, libraries) in &qt.plugins {
                if let Some(name) = std::iter::once(platform)
                    .chain(libraries)
                    .find(|name| !is_file_name(name))
                {
                    return bad("Qt platform plugin", name);
                }
            }
        }
        // Each becomes a string literal of the bootstrap command.
        if let Some(module) = self
            .extract_on_import
            .iter()
            .flat_map(|lazy| &lazy.modules)
            .find(|module| !is_module_name(module))
        {
            return bad("module that extracts on import", module);
        }
        // Shown in an error message: a version and a printable name.
        if let Some(floor) = &self.glibc {
            if floor.parsed().is_none() {
                return bad("glibc version", &floor.version);
            }
            if floor.needed_by.len() > 1024 || floor.needed_by.chars().any(char::is_control) {
                return bad("file that needs glibc", &floor.needed_by);
            }
        }
        for unit in &self.extracted {
            if unit.is_empty() || unit.contains(['/', '\\', '\0']) || unit == "." || unit == ".." {
                return bad("extracted unit", unit);
            }
        }
        Ok(())
    }

    /// The cache directory name of this app version.
    pub fn cache_key(&self) -> String {
        format!("{}-{}", self.name, &self.hash[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_parse() {
        let entry = EntryPoint::parse("black:patched_main").expect("valid");
        assert_eq!(entry.module, "black");
        assert_eq!(entry.function.as_deref(), Some("patched_main"));
        assert_eq!(entry.to_string(), "black:patched_main");
        assert_eq!(EntryPoint::parse("a.b").expect("valid").function, None);
        assert!(EntryPoint::parse("a.b:obj.attr").is_some());
        for bad in [
            "",
            "a..b",
            "1a",
            "a:",
            ":f",
            "a:b:c",
            "a-b",
            "a;import os",
            "a:f()",
        ] {
            assert!(EntryPoint::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn app_names() {
        assert!(is_valid_app_name("my-app_1.0"));
        for bad in ["", ".hidden", "a/b", "a b", "..", "ü"] {
            assert!(!is_valid_app_name(bad), "{bad:?} accepted");
        }
    }
}
