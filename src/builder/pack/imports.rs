//! What code imports, read without running it: the `import` and `from`
//! lines of Python sources (`module_imports`), and the strings of native
//! code that could name a module (`strings_of`). Pack reads them to keep the
//! parts of the standard library an app's code names (`stdlib`), and to cut
//! it to what the app reaches (`--stdlib minimal`).

use std::collections::BTreeSet;

/// The printable runs of a binary that could name a module.
pub(super) fn strings_of(image: &[u8]) -> impl Iterator<Item = String> + '_ {
    image
        .split(|&b| b == 0)
        .filter(|run| (2..80).contains(&run.len()))
        .filter_map(|run| std::str::from_utf8(run).ok())
        .filter(|text| {
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
        .map(str::to_owned)
}

/// What a module's code imports, by full dotted names (`module_imports`).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Imports {
    /// Imported whenever the code that names them runs.
    pub(super) names: Vec<String>,
    /// Imported only if an accelerator's import fails.
    pub(super) fallbacks: Vec<Fallback>,
}

/// `try:` with nothing but imports, then `except ImportError:` importing
/// something else: the C accelerator and the module that stands in for it
/// (`random`: `from _sha512 import sha512`, else `from hashlib import
/// sha512`, which would keep OpenSSL in every app that uses `random`).
#[derive(Debug, PartialEq)]
pub(super) struct Fallback {
    /// The `try` block's imports: each module, with the names a `from`
    /// line takes from it (none for `import X`).
    pub(super) attempted: Vec<(String, Vec<String>)>,
    /// What the `except` block imports.
    pub(super) names: Vec<String>,
}

impl Imports {
    /// Adds what `other` names (another file of the same module).
    pub(super) fn extend(&mut self, other: Imports) {
        self.names.extend(other.names);
        self.fallbacks.extend(other.fallbacks);
    }

    /// Every name, the fallbacks' too: what the app's own code reaches.
    pub(super) fn all(self) -> Vec<String> {
        let mut all = self.names;
        for fallback in self.fallbacks {
            all.extend(fallback.attempted_names());
            all.extend(fallback.names);
        }
        all
    }
}

impl Fallback {
    /// What the try block names, as `Imports::names` has them: each module,
    /// and `module.NAME` for each name a `from` line takes (a submodule, if
    /// one exists by that name).
    pub(super) fn attempted_names(&self) -> impl Iterator<Item = String> + '_ {
        self.attempted
            .iter()
            .flat_map(|(module, names)| named(module, names))
    }

    /// Whether the try block cannot fail here: all it imports is in
    /// `importable` (extension modules of this standard library, with the
    /// names taken from them, which the build interpreter imported).
    pub(super) fn cannot_fail(&self, importable: &BTreeSet<(String, Vec<String>)>) -> bool {
        self.attempted
            .iter()
            .all(|attempt| importable.contains(attempt))
    }
}

/// The modules that the `import` and `from` lines of `source` name, by
/// their full dotted names: `module` (dotted, `is_package` when it is a
/// package's `__init__`) resolves relative imports; a `from` line also
/// names `base.NAME` for each name it imports (a submodule, if one exists
/// by that name). Lines of code that run only when the module runs as a
/// script are skipped: its `if __name__ == "__main__":` block, and the
/// functions that block calls by convention, its command line's `main` and
/// its self-test (`ast.main` imports argparse, `pickle._test` doctest, and
/// through it pdb and pydoc); a packed app imports the standard library's
/// modules, it does not run them as scripts. What an `except ImportError:`
/// block imports after a `try:` of imports alone is a `Fallback`.
pub(super) fn module_imports(
    source: &str,
    module: Option<&str>,
    is_package: bool,
    skip_script_code: bool,
) -> Imports {
    let package: Vec<&str> = match module {
        Some(module) => {
            let mut parts: Vec<&str> = module.split('.').collect();
            if !is_package {
                parts.pop();
            }
            parts
        }
        None => Vec::new(),
    };
    let lines: Vec<&str> = source.lines().collect();
    imports_of_lines(&lines, &package, skip_script_code)
}

/// `module_imports` over `lines`, relative imports resolved in `package`.
fn imports_of_lines(lines: &[&str], package: &[&str], skip_script_code: bool) -> Imports {
    let mut imports = Imports::default();
    let mut skipping: Option<usize> = None;
    let mut at = 0;
    while let Some(line) = lines.get(at) {
        at += 1;
        let code = line.trim_start();
        let indent = line.len() - code.len();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        if let Some(block) = skipping {
            if indent > block {
                continue;
            }
            skipping = None;
        }
        let script_only = skip_script_code
            && (code.starts_with("if __name__ == \"__main__\"")
                || code.starts_with("if __name__ == '__main__'")
                || (indent == 0
                    && ["def _test(", "def test(", "def main(", "def _main("]
                        .iter()
                        .any(|start| code.starts_with(start))));
        if script_only {
            skipping = Some(indent);
            continue;
        }
        let accelerated = (code == "try:")
            .then(|| accelerator_fallback(&lines[at..], indent, package))
            .flatten();
        if let Some(found) = accelerated {
            let handler = imports_of_lines(&found.handler, package, skip_script_code);
            imports.fallbacks.push(Fallback {
                attempted: found.attempted,
                names: handler.all(),
            });
            at += found.lines;
            continue;
        }
        for (base, imported) in import_line(code, lines, &mut at, package) {
            imports.names.extend(named(&base, &imported));
        }
    }
    imports
}

/// What importing `names` from `module` names: `module.NAME` for each (a
/// submodule, if one exists by that name), then `module`.
fn named<'a>(module: &'a str, names: &'a [String]) -> impl Iterator<Item = String> + 'a {
    names
        .iter()
        .filter(|name| *name != "*")
        .map(move |name| format!("{module}.{name}"))
        .chain(std::iter::once(module.to_owned()))
}

/// The modules an `import` or `from` line (`code`) imports, each with the
/// names a `from` line takes from it; relative to `package`. A `from` line
/// with its names in parentheses goes on over `lines` from `at`.
fn import_line(
    code: &str,
    lines: &[&str],
    at: &mut usize,
    package: &[&str],
) -> Vec<(String, Vec<String>)> {
    let identifier = |text: &str| -> String {
        let text = text.trim_start();
        let end = text
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(text.len());
        text[..end].trim_end_matches('.').to_owned()
    };
    if let Some(rest) = code.strip_prefix("import ") {
        return rest
            .split(',')
            .map(identifier)
            .filter(|name| !name.is_empty())
            .map(|name| (name, Vec::new()))
            .collect();
    }
    let Some((base, imported)) = code
        .strip_prefix("from ")
        .and_then(|rest| rest.split_once(" import "))
    else {
        return Vec::new();
    };
    let base = base.trim();
    let dots = base.len() - base.trim_start_matches('.').len();
    if dots > 0 && package.is_empty() {
        // Relative to a package not named (an app's own code): one of the
        // app's modules, whose own lines are read as well.
        return Vec::new();
    }
    let base = match dots {
        0 => base.to_owned(),
        _ => {
            let keep = package.len().saturating_sub(dots - 1);
            let mut parts: Vec<&str> = package[..keep].to_vec();
            parts.extend(base[dots..].split('.').filter(|part| !part.is_empty()));
            parts.join(".")
        }
    };
    if base.is_empty() {
        return Vec::new();
    }
    // `from pkg import (a,\n    b)`: the names go on to the `)`.
    let mut imported = imported.to_owned();
    if imported.trim_start().starts_with('(') {
        while !imported.contains(')') {
            match lines.get(*at) {
                Some(next) => imported.push_str(next),
                None => break,
            }
            *at += 1;
        }
    }
    let imported = imported.replace(['(', ')'], " ");
    let names = imported
        .split(',')
        .map(|name| match identifier(name) {
            name if name.is_empty() && imported.trim() == "*" => "*".to_owned(),
            name => name,
        })
        .filter(|name| !name.is_empty())
        .collect();
    vec![(base, names)]
}

/// A `try:` block of imports alone and its `except ImportError:` block.
struct Accelerated<'a> {
    attempted: Vec<(String, Vec<String>)>,
    handler: Vec<&'a str>,
    /// The lines both blocks take, from the line after `try:`.
    lines: usize,
}

/// At a `try:` indented by `indent`, `rest` the lines after it: the try
/// block's imports and the lines of its `except ImportError:` (or
/// `ModuleNotFoundError`) block, when the try block holds nothing but
/// one-line imports and that handler comes first.
fn accelerator_fallback<'a>(
    rest: &[&'a str],
    indent: usize,
    package: &[&str],
) -> Option<Accelerated<'a>> {
    let blank = |code: &str| code.is_empty() || code.starts_with('#');
    let inside = |line: &str| {
        let code = line.trim_start();
        blank(code) || line.len() - code.len() > indent
    };
    let mut attempted = Vec::new();
    let mut at = 0;
    while let Some(line) = rest.get(at).filter(|line| inside(line)) {
        at += 1;
        let code = line.trim_start();
        if blank(code) || code == "pass" {
            continue;
        }
        if code.contains('(') || code.ends_with('\\') {
            return None; // An import over several lines, or not an import.
        }
        let imported = import_line(code, &[], &mut 0, package);
        if imported.is_empty() {
            return None;
        }
        attempted.extend(imported);
    }
    let handler = rest.get(at)?.trim_start();
    let caught = handler.strip_prefix("except ")?.split([':', ' ']).next()?;
    if attempted.is_empty() || !["ImportError", "ModuleNotFoundError"].contains(&caught) {
        return None;
    }
    at += 1;
    let body_start = at;
    while rest.get(at).is_some_and(|line| inside(line)) {
        at += 1;
    }
    Some(Accelerated {
        attempted,
        handler: rest[body_start..at].to_vec(),
        lines: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempted(module: &str, names: &[&str]) -> (String, Vec<String>) {
        let names = names.iter().map(|name| (*name).to_owned()).collect();
        (module.to_owned(), names)
    }

    #[test]
    fn an_accelerators_stand_in_is_a_fallback() {
        let source = "import os\n\
            try:\n    # the lean one first\n    from _sha512 import sha512\n\
            except ImportError:\n    from hashlib import sha512\n\
            import bisect\n";
        let imports = module_imports(source, Some("random"), false, true);
        assert_eq!(imports.names, ["os", "bisect"]);
        assert_eq!(
            imports.fallbacks,
            [Fallback {
                attempted: vec![attempted("_sha512", &["sha512"])],
                names: vec!["hashlib.sha512".to_owned(), "hashlib".to_owned()],
            }]
        );
        let importable = BTreeSet::from([attempted("_sha512", &["sha512"])]);
        assert!(imports.fallbacks[0].cannot_fail(&importable));
        assert!(!imports.fallbacks[0].cannot_fail(&BTreeSet::new()));
    }

    #[test]
    fn other_try_blocks_import_as_any_code_does() {
        for source in [
            // More than imports in the try block.
            "try:\n    import _json\n    x = _json.make\nexcept ImportError:\n    import json\n",
            // Other errors caught.
            "try:\n    import _json\nexcept (ImportError, AttributeError):\n    import json\n",
            "try:\n    import _json\nexcept Exception:\n    import json\n",
            // An import over several lines.
            "try:\n    from _json import (a,\n        b)\nexcept ImportError:\n    import json\n",
        ] {
            let imports = module_imports(source, Some("m"), false, true);
            assert!(imports.fallbacks.is_empty(), "{source}");
            assert!(imports.names.contains(&"json".to_owned()), "{source}");
            assert!(imports.names.contains(&"_json".to_owned()), "{source}");
        }
        // An app's relative imports name its own modules.
        let own = module_imports(
            "from .turtle import pen\nfrom . import json\n",
            None,
            false,
            false,
        );
        assert!(own.all().is_empty());
        // An app's code keeps both sides.
        let source = "try:\n    import ujson as json\nexcept ImportError:\n    import json\n";
        let all = module_imports(source, None, false, false).all();
        assert_eq!(all, ["ujson", "json"]);
    }
}
