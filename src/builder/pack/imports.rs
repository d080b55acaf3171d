//! What code imports, read without running it: the `import` and `from`
//! lines of Python sources (`module_imports`), the names their text gives
//! the interpreter (`names_in_text`: `"dbm.gnu"`, `breakpoint()`), the
//! modules they run as programs in pythons they start
//! (`modules_run_as_programs`: `[sys.executable, "-m", "venv", dir]`), and
//! the strings of native code that could name a module (`strings_of`). Pack
//! reads them to keep the parts of the standard library an app's code names
//! (`stdlib`), and to cut it to what the app reaches (`--stdlib minimal`).

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

/// The modules `source` may import without an `import` line
/// (`names_in_code`, line by line): what `--stdlib minimal` keeps besides
/// what `module_imports` finds. In the app's own code (`is_app_code`) every
/// line counts: a docstring's `help(x)` or `'os.path'` costs a kept module
/// at worst. In the standard library's, calls of builtins do not count (its
/// docstrings have many: `help(dir)`), and text names modules only in code
/// that imports by computed names (`dbm`, `xml.sax`, `pickle`), or
/// `_compat_pickle`'s table of old names would keep half of it.
pub(super) fn names_in_text(source: &str, is_app_code: bool) -> Vec<String> {
    let literals =
        is_app_code || source.contains("__import__(") || source.contains("import_module(");
    source
        .lines()
        .map(str::trim_start)
        .filter(|code| !code.starts_with('#'))
        .flat_map(|code| names_in_code(code, literals, is_app_code))
        .collect()
}

/// Builtins whose call makes the interpreter import a module by name:
/// `breakpoint()` runs `sys.breakpointhook`, which imports pdb; `help()`
/// imports pydoc; `time.strptime` and `datetime.strptime` import
/// `_strptime` from C code, whose strings are not read.
const IMPORTED_BY_A_CALL: &[(&str, &str)] = &[
    ("breakpoint", "pdb"),
    ("help", "pydoc"),
    ("strptime", "_strptime"),
];

/// The modules a line of code may import without an `import` line: a
/// string literal that is a dotted name (`"dbm.gnu"`, which `dbm` gives to
/// `__import__`, `"logging.handlers.MemoryHandler"` for `logging.config`)
/// names the module and each one above it; a literal given straight to
/// `import_module` or `__import__` names its module; a call of one of
/// `IMPORTED_BY_A_CALL` names what the interpreter imports for it. Names
/// that are no standard module are ignored by the cut, so a string that
/// only looks like one (`"example.com"`) keeps nothing. A module run as a
/// program (`module_run_by`) counts in any code (`venv` runs ensurepip);
/// dotted literals only when `literals`; calls of builtins and command
/// lines in one literal only in the app's code (`is_app_code`).
fn names_in_code(code: &str, literals: bool, is_app_code: bool) -> Vec<String> {
    let mut names = Vec::new();
    if literals || code.contains('-') {
        names.extend(names_in_literals(code, literals, is_app_code));
    }
    if is_app_code {
        names.extend(IMPORTED_BY_A_CALL.iter().filter_map(|(builtin, module)| {
            let called = code.match_indices(builtin).any(|(start, _)| {
                let before = code[..start].chars().next_back();
                let after = code[start + builtin.len()..].trim_start();
                let follows_name = before.is_some_and(|c| c.is_alphanumeric() || c == '_');
                // `.strptime(` is a method of time and datetime; the others
                // are builtins, not methods (`parser.print_help(`, `x.help(`).
                let is_method = before == Some('.') && *builtin != "strptime";
                !follows_name && !is_method && after.starts_with('(')
            });
            called.then(|| (*module).to_owned())
        }));
    }
    names
}

/// The string literals of `code` that name modules (`names_in_code`): the
/// modules they run as programs, and, when `dotted`, the dotted names.
fn names_in_literals(code: &str, dotted: bool, is_app_code: bool) -> Vec<String> {
    let mut names = Vec::new();
    for (before, literal) in literals_of(code) {
        if let Some(program) = module_run_by(before, literal, is_app_code) {
            push_program(&mut names, program);
            continue;
        }
        if !dotted || !is_dotted_name(literal) {
            continue;
        }
        let given_to_import = ["import_module(", "__import__("]
            .iter()
            .any(|call| before.ends_with(call));
        if literal.contains('.') || given_to_import {
            push_with_parents(&mut names, literal);
        }
    }
    names
}

/// The string literals of a line of code, each with the code before it
/// (trimmed at its end).
fn literals_of(code: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at + code[at..].find(['"', '\''])?;
        let quote = code.as_bytes()[start] as char;
        let length = code[start + 1..].find(quote)?;
        at = start + length + 2;
        Some((
            code[..start].trim_end(),
            &code[start + 1..start + 1 + length],
        ))
    })
}

/// `a.b.c` names `a`, `a.b` and `a.b.c`.
fn push_with_parents(names: &mut Vec<String>, dotted: &str) {
    let mut parts = dotted.split('.');
    let mut name = parts.next().unwrap_or_default().to_owned();
    names.push(name.clone());
    for part in parts {
        name = format!("{name}.{part}");
        names.push(name.clone());
    }
}

/// A module run as a program: the module, the packages above it, and its
/// `__main__`, which `-m` runs when it is a package (`venv.__main__`).
fn push_program(names: &mut Vec<String>, program: &str) {
    push_with_parents(names, program);
    names.push(format!("{program}.__main__"));
}

/// The module that a literal (after the code `before` it) runs as a
/// program with `-m`, in a python the code starts: the argument after
/// `"-m"` (or `"-Im"`) in a list of arguments (`[sys.executable, "-m",
/// "venv", dir]`), or, in the app's code (`is_app_code`), in a command line
/// in one literal (`f"{python} -m venv {dir}"`). The standard library's
/// command lines in one literal describe how to run a module
/// (`prog='python -m tokenize'`, in its own `main`).
fn module_run_by<'a>(before: &str, literal: &'a str, is_app_code: bool) -> Option<&'a str> {
    let mut words = literal.split_whitespace();
    if words.any(is_m_option) {
        return words
            .next()
            .filter(|module| is_app_code && is_dotted_name(module));
    }
    let previous_literal = before
        .strip_suffix(',')
        .map(str::trim_end)
        .and_then(|before| {
            let quote = before.chars().last().filter(|c| ['"', '\''].contains(c))?;
            let inside = &before[..before.len() - 1];
            Some(&inside[inside.rfind(quote)? + 1..])
        });
    (previous_literal.is_some_and(is_m_option) && is_dotted_name(literal)).then_some(literal)
}

/// `-m`, or options before it in one word (`-Im`, `-Esm`): the next
/// argument is a module to run.
fn is_m_option(word: &str) -> bool {
    word.strip_prefix('-')
        .is_some_and(|flags| flags.ends_with('m') && flags.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// The modules that the code of `source` runs as programs with `-m`
/// (`module_run_by`): a module can be used without being imported.
pub(super) fn modules_run_as_programs(source: &str, is_app_code: bool) -> Vec<String> {
    source
        .lines()
        .map(str::trim_start)
        .filter(|code| !code.starts_with('#') && code.contains('-'))
        .flat_map(|code| names_in_literals(code, false, is_app_code))
        .collect()
}

/// `a`, `a.b_c.d`: identifiers joined by dots.
fn is_dotted_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
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

    #[test]
    fn modules_run_with_m_are_found_in_any_code() {
        let run = |source| modules_run_as_programs(source, true);
        assert_eq!(
            run("subprocess.run([sys.executable, \"-m\", \"venv\", path])\n"),
            ["venv", "venv.__main__"]
        );
        assert_eq!(
            run("os.system(f'{py} -m ensurepip --upgrade')\n"),
            ["ensurepip", "ensurepip.__main__"]
        );
        // venv's own call of ensurepip.
        assert_eq!(
            run("cmd = [context.env_exec_cmd, '-Im', 'ensurepip', '--upgrade']\n"),
            ["ensurepip", "ensurepip.__main__"]
        );
        assert!(run("run(['docker', '--rm', 'image'])\n").is_empty());
        // The standard library's usage texts run nothing.
        let usage = "    parser = argparse.ArgumentParser(prog='python -m tokenize')\n";
        assert_eq!(run(usage), ["tokenize", "tokenize.__main__"]);
        assert!(modules_run_as_programs(usage, false).is_empty());
        assert!(run("# [python, '-m', 'venv']\nx = ['-m', 'not a module']\n").is_empty());
        assert!(run("opts = {'venv': 1}\n").is_empty());
    }

    #[test]
    fn names_given_to_the_interpreter_as_text_are_imports() {
        let names = |source: &str| names_in_text(source, true);
        // dbm's backends, logging.config's classes.
        assert_eq!(
            names("_names = ['dbm.gnu', \"dbm.dumb\"]\n"),
            ["dbm", "dbm.gnu", "dbm", "dbm.dumb"]
        );
        assert_eq!(
            names("c = {'class': 'logging.handlers.MemoryHandler'}\n"),
            [
                "logging",
                "logging.handlers",
                "logging.handlers.MemoryHandler"
            ]
        );
        // A plain word is a module only when given to an import call.
        assert!(names("x = {'json': 1, 'a b.c': 2, '1.5': 3}\n").is_empty());
        assert_eq!(names("importlib.import_module( 'csv')\n"), ["csv"]);
        assert_eq!(names("m = __import__(\"pickle\")\n"), ["pickle"]);
        // Builtins that import, called; not methods or other names.
        assert_eq!(names("    breakpoint()\n"), ["pdb"]);
        assert_eq!(names("help (len)\n"), ["pydoc"]);
        assert_eq!(names("time.strptime(s, f)\n"), ["_strptime"]);
        assert!(names("parser.print_help()\nx.help()\nadd(help='h')\n").is_empty());
        assert!(names("# help(x)\n").is_empty());
        // Modules run as programs, in a list of arguments or in a command line.
        assert_eq!(
            names("cmd = [python, '-m', 'venv', d]\n"),
            ["venv", "venv.__main__"]
        );
        assert_eq!(
            names("run(f\"{py} -m json.tool x\")\n"),
            ["json", "json.tool", "json.tool.__main__"]
        );
        // In the standard library's code too.
        assert_eq!(
            names_in_text("cmd = [exe, '-Im', 'ensurepip']\n", false),
            ["ensurepip", "ensurepip.__main__"]
        );
        assert!(names("args = ['-m', x, 'a b']\n").is_empty());
        // The standard library's: calls of builtins are not counted, and
        // text names modules only where the code imports by computed names.
        assert!(names_in_text("    help(x)\n", false).is_empty());
        assert!(names_in_text("_map = {'Queue': 'http.client'}\n", false).is_empty());
        assert_eq!(
            names_in_text("_names = ['dbm.gnu']\nm = __import__(_names[0])\n", false),
            ["dbm", "dbm.gnu"]
        );
        assert_eq!(
            names_in_text("def f(): return importlib.import_module('csv')\n", false),
            ["csv"]
        );
    }
}
