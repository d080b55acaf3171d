//! Which top-level units of the app are extracted to the cache, and why.
//!
//! A unit is a top-level package, module or directory of the archive.
//! zipimport can import pure Python straight from the archive, but code
//! that reaches its own files through the file system (`open()` next to
//! `__file__`, listing its package directory, templates, plugins found by
//! directory, tools that list `sys.path` directories for distributions)
//! breaks there, and `dlopen()` needs real files. So a unit stays in the
//! archive only when it is known to be safe: Python modules alone (no data
//! files, no native code) none of which names `__file__` or `__path__`.
//! When in doubt, extract: a working app beats a fast broken one.
//! `--extract UNIT` and `--no-extract UNIT` force a unit either way (native
//! code is always extracted).

use super::tree::Tree;
use crate::error::{Error, Result, io};
use crate::format::archive_path;
use crate::format::units::{Placement, UnitReport};
use std::collections::BTreeMap;

/// What the user asked for, unit by unit.
#[derive(Debug, Default)]
pub struct Overrides<'a> {
    pub extract: &'a [String],
    pub archive: &'a [String],
}

/// Decides where each unit of `tree` goes; returns the report, sorted by
/// unit name.
pub fn place(tree: &Tree, overrides: &Overrides) -> Result<Vec<UnitReport>> {
    let mut units: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for name in tree.files.keys() {
        units
            .entry(archive_path::top_level(name))
            .or_default()
            .push(name);
    }
    for forced in overrides.extract.iter().chain(overrides.archive) {
        if !units.contains_key(forced.as_str()) {
            return Err(Error::Usage {
                usage: format!(
                    "`--extract`/`--no-extract {forced}`: the app has no unit `{forced}`; \
                     its units are: {}",
                    units.keys().copied().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    let mut reports = Vec::new();
    for (unit, files) in units {
        let placement = placement(tree, unit, &files, overrides)?;
        reports.push(UnitReport {
            name: unit.to_owned(),
            placement,
        });
    }
    // The path finder looks for the pycs of extracted top-level modules in
    // a top-level `__pycache__`: it goes with them.
    if reports
        .iter()
        .any(|unit| unit.name.ends_with(".py") && unit.is_extracted())
    {
        reports.push(UnitReport {
            name: PYCACHE.to_owned(),
            placement: Placement::Extracted(
                "the bytecode of the extracted top-level modules".to_owned(),
            ),
        });
        reports.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(reports)
}

/// Where the path finder looks for a module's bytecode, beside its source.
pub const PYCACHE: &str = "__pycache__";

fn placement(tree: &Tree, unit: &str, files: &[&str], overrides: &Overrides) -> Result<Placement> {
    let forced = |list: &[String]| list.iter().any(|name| name == unit);
    if let Some(native) = files.iter().find(|name| is_native_file(name)) {
        if forced(overrides.archive) {
            return Err(Error::Usage {
                usage: format!(
                    "`--no-extract {unit}`: it holds native code (`{native}`), which can only \
                     be loaded from a file"
                ),
            });
        }
        return Ok(Placement::Extracted(format!("native code (`{native}`)")));
    }
    if forced(overrides.extract) {
        return Ok(Placement::Extracted("asked for (`--extract`)".to_owned()));
    }
    if forced(overrides.archive) {
        return Ok(Placement::Archived("asked for (`--no-extract`)".to_owned()));
    }
    if unit == crate::format::FALLBACK_LIBRARIES {
        return Ok(Placement::Extracted(
            "libraries the app's native code takes from the system, for machines without them"
                .to_owned(),
        ));
    }
    if unit.ends_with(".dist-info") {
        return Ok(Placement::Extracted(
            "distribution metadata, which tools find by listing `sys.path` directories".to_owned(),
        ));
    }
    if let Some(data) = files.iter().find(|name| !is_code(name)) {
        return Ok(Placement::Extracted(format!("data files (`{data}`)")));
    }
    for name in files {
        let path = &tree.files[*name].path;
        let source = std::fs::read(path).map_err(io("read", path))?;
        if let Some(token) = OWN_LOCATION
            .iter()
            .find(|token| contains(&source, token.as_bytes()))
        {
            return Ok(Placement::Extracted(format!("`{name}` uses `{token}`")));
        }
    }
    Ok(Placement::Archived(
        "Python modules that do not use their own location".to_owned(),
    ))
}

/// Names through which a module reaches its own files.
const OWN_LOCATION: &[&str] = &["__file__", "__path__"];

/// Modules, type stubs and the typing marker: nothing a module reads.
fn is_code(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    name.ends_with(".py") || name.ends_with(".pyi") || file == "py.typed"
}

/// Extension modules (`.so`, `.cpython-311-x86_64-linux-gnu.so`,
/// `.abi3.so`) and shared libraries (`libfoo.so.1.2`).
pub fn is_native_file(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.ends_with(".so") || file.contains(".so.")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::pack::tree::SourceFile;
    use crate::format::units::extracted_names;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut tree = Tree::default();
        for (i, (name, text)) in files.iter().enumerate() {
            let path = dir.path().join(i.to_string());
            std::fs::write(&path, text).expect("write");
            tree.files.insert(
                (*name).to_owned(),
                SourceFile {
                    path,
                    executable: false,
                },
            );
        }
        (dir, tree)
    }

    #[test]
    fn only_code_that_ignores_its_location_stays_archived() {
        let (_dir, tree) = tree(&[
            ("pure/__init__.py", "import os\n"),
            ("pure/py.typed", ""),
            ("lister/__init__.py", "import os\nos.listdir(__path__[0])\n"),
            ("reader/conf.py", "open(__file__ + '.yaml')\n"),
            ("templated/__init__.py", ""),
            ("templated/page.html", "<p>"),
            ("fast/_speedups.abi3.so", ""),
            ("fast-1.0.dist-info/METADATA", ""),
            ("single.py", "print(1)\n"),
            ("_cffi_backend.cpython-311-x86_64-linux-gnu.so", ""),
            ("vendor/libfoo.so.1.2", ""),
        ]);
        let reports = place(&tree, &Overrides::default()).expect("placed");
        assert_eq!(
            extracted_names(&reports),
            [
                "_cffi_backend.cpython-311-x86_64-linux-gnu.so",
                "fast",
                "fast-1.0.dist-info",
                "lister",
                "reader",
                "templated",
                "vendor"
            ]
        );
        let reader = reports.iter().find(|r| r.name == "reader").expect("reader");
        assert_eq!(
            reader.placement,
            Placement::Extracted("`reader/conf.py` uses `__file__`".to_owned())
        );
    }

    #[test]
    fn overrides_force_either_way_but_native_code_is_extracted() {
        let (_dir, tree) = tree(&[
            ("pure/__init__.py", ""),
            ("data/x.json", "{}"),
            ("fast/_speedups.so", ""),
        ]);
        let (extract, archive) = (["pure".to_owned()], ["data".to_owned()]);
        let overrides = Overrides {
            extract: &extract,
            archive: &archive,
        };
        let reports = place(&tree, &overrides).expect("placed");
        assert_eq!(extracted_names(&reports), ["fast", "pure"]);
        for bad in [["fast".to_owned()], ["nothere".to_owned()]] {
            let overrides = Overrides {
                extract: &[],
                archive: &bad,
            };
            assert!(place(&tree, &overrides).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn extracted_top_level_modules_take_their_bytecode_dir() {
        let (_dir, tree) = tree(&[("tool.py", "print(__file__)\n"), ("pure.py", "")]);
        let reports = place(&tree, &Overrides::default()).expect("placed");
        assert_eq!(extracted_names(&reports), [PYCACHE, "tool.py"]);
    }
}
