//! The standalone flavor's Python, gathered from the build interpreter into
//! the `.python` unit (layout in `format::stdlib_unit`): the standard library as
//! pycs, its extension modules, and the shared libraries those need beyond
//! glibc, as the dynamic linker itself resolves them (`ldd`).
//!
//! Sources and pycs, laid out as in python's own standard library
//! (`json/decoder.py`, `json/__pycache__/decoder.cpython-311.pyc`): linters
//! (pylint's astroid), `inspect.getsource`, tracebacks and warnings read the
//! sources, and CPython names each module's code after its source file when
//! it loads the pyc. The pycs are compiled here, unchecked-hash: the
//! interpreter's own `__pycache__` files would name the build machine's
//! paths (and make two builds of the same app differ by where pyenv lives).
//! Extension modules are stripped of debug information and symbol tables
//! (when `strip` is on PATH; pyenv builds keep 8 MB of them) and their RUNPATH is
//! rewritten to find the bundled libraries (`elf::Image::rewrite_search_path`).
//! The result, a zip, is cached between packs (`prepare`).

use super::archive::{self, StdlibParts};
use super::imports::{Imports, module_imports, modules_run_as_programs, names_in_text, strings_of};
use super::prepared_zip::{self, PreparedEntry, Pycs};
use super::python::{BuildPython, CompileJob};
use super::tree::{SourceFile, Tree};
use crate::builder::kit::Kit;
use crate::builder::progress::{Phase, Progress};
use crate::error::{Error, Reason, Result, io};
use crate::format::{elf, pyc_zstd, stdlib_unit};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use zip::DateTime;

/// Parts of the standard library left out unless `--keep-stdlib` names
/// them: test suites, GUI and IDE, installers, the 2to3 tool, pydoc's data,
/// and `nis` (deprecated by PEP 594, gone in 3.13; in 3.11 it alone pulls
/// in libnsl, libtirpc and five Kerberos libraries, 1.7 MB), and `include`,
/// CPython's C headers (1.1 MB; pyferry's kit keeps them, so that pip
/// builds C extensions with the kit's python).
pub const EXCLUDED_BY_DEFAULT: &[&str] = &[
    "include",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "nis",
];

/// The excluded part a top-level module (an extension module, or the
/// module of a top-level `.py` file) belongs to, by module name.
fn module_part(module: &str) -> Option<&'static str> {
    let test_only = module.starts_with("_test")
        || module.starts_with("xxlimited")
        || ["_ctypes_test", "_xxtestfuzz"].contains(&module);
    match module {
        _ if test_only => Some("test"),
        // turtle draws with tkinter, and cannot be imported without it.
        "_tkinter" | "turtle" => Some("tkinter"),
        "nis" => Some("nis"),
        _ => None,
    }
}

/// Directories of test suites inside other packages (`ctypes/test`).
const NESTED_TEST_DIRS: &[&str] = &["test", "tests", "idle_test"];

/// What goes into the `.python` unit, before any copy or compilation.
struct Plan {
    /// Module sources, relative to the stdlib dir.
    modules: Vec<String>,
    /// Every other file, by name relative to the stdlib dir.
    data: BTreeMap<String, SourceFile>,
    extensions: Vec<PathBuf>,
    libraries: Libraries,
    /// Tcl's and Tk's script libraries, by name relative to the unit, when
    /// tkinter is kept.
    tcl_tk: BTreeMap<String, SourceFile>,
    /// CPython's C headers, by name relative to the unit, when kept.
    headers: BTreeMap<String, SourceFile>,
}

/// The top-level modules through which an app uses each part left out by
/// default (`turtle` draws with tkinter; `venv` runs `python -m ensurepip`
/// in the environment it makes, unless told `with_pip=False`). `test` is
/// left out: apps have packages of that name.
const PART_MODULES: &[(&str, &[&str])] = &[
    ("tkinter", &["tkinter", "_tkinter", "turtle"]),
    ("idlelib", &["idlelib"]),
    ("turtledemo", &["turtledemo"]),
    ("ensurepip", &["ensurepip", "venv"]),
    ("lib2to3", &["lib2to3"]),
    ("pydoc_data", &["pydoc_data"]),
    ("nis", &["nis"]),
    // CPython's C headers: for code that compiles C at run time
    // (setuptools' build_ext, pyximport, cffi's compile, cppimport).
    (
        "include",
        &["setuptools", "pyximport", "Cython", "cffi", "cppimport"],
    ),
];

/// The parts left out by default that the app's modules use: import (by
/// a look at their `import` and `from` lines), or run as programs in the
/// pythons they start (`[sys.executable, "-m", "venv", dir]`).
pub fn parts_imported(tree: &Tree) -> Result<BTreeSet<&'static str>> {
    let mut parts = BTreeSet::new();
    for (name, file) in &tree.files {
        if !name.ends_with(".py") {
            continue;
        }
        let source = fs::read(&file.path).map_err(io("read", &file.path))?;
        let source = String::from_utf8_lossy(&source);
        let mut used = module_imports(&source, None, false, false).all();
        used.extend(modules_run_as_programs(&source, true));
        for name in used {
            let module = name.split('.').next().unwrap_or(&name);
            if let Some((part, _)) = PART_MODULES
                .iter()
                .find(|(_, modules)| modules.contains(&module))
            {
                parts.insert(*part);
            }
        }
    }
    Ok(parts)
}

/// What the app's code reaches of the standard library (`names_reached`):
/// what `--stdlib minimal` starts from.
#[derive(Default)]
pub struct Reach {
    /// Every module its code names.
    pub names: BTreeSet<String>,
    /// The modules it runs as programs (the entry point, and `python -m`
    /// in the pythons it starts): their script code runs too.
    pub programs: BTreeSet<String>,
}

/// Every module the app's code names: in `import` and `from` lines of
/// its sources (anywhere, lazy imports in functions included), in their
/// text (`names_in_text`: `"logging.handlers.MemoryHandler"`,
/// `breakpoint()`, `[sys.executable, "-m", "venv"]`), and, for its native
/// code, among the strings of its shared objects (an extension module
/// imports by name, `PyImport_ImportModule("pickle")`). Dotted
/// (`xml.etree.ElementTree`), and with each name a `from` line imports
/// (which may be a submodule).
pub fn names_reached(tree: &Tree) -> Result<Reach> {
    let mut reach = Reach::default();
    for (name, file) in &tree.files {
        if name.ends_with(".py") {
            let source = fs::read(&file.path).map_err(io("read", &file.path))?;
            // The app's own script code is what runs: nothing skipped.
            let text = String::from_utf8_lossy(&source);
            reach
                .names
                .extend(module_imports(&text, None, false, false).all());
            reach.names.extend(names_in_text(&text, true));
            reach.programs.extend(modules_run_as_programs(&text, true));
        } else if name.ends_with(".so") || name.contains(".so.") {
            let image = fs::read(&file.path).map_err(io("read", &file.path))?;
            reach.names.extend(strings_of(&image));
        }
    }
    Ok(reach)
}

/// What gathering the standard library works with, besides the parts to
/// keep.
pub struct Gathering<'a> {
    pub python: &'a BuildPython,
    /// pyferry's kit, whose standard library is taken as it is.
    pub kit: Option<&'a Kit>,
    /// Its binary's build id: a new pyferry gathers anew.
    pub pyferry_id: &'a str,
    pub work_dir: &'a Path,
    pub timestamp: DateTime,
    pub progress: &'a Progress,
}

/// Returns the standard library's parts (`StdlibParts`, deflated,
/// `timestamp`ed).
///
/// Gathering and compressing it takes most of a small app's pack, and its
/// inputs rarely change: the zip is kept in pack's own cache (`cache::dir`)
/// under a key that covers every input file's identity (path, size, mtime,
/// inode), pyferry itself (`pyferry_id`: its binary's build id), the
/// options and the timestamp, and reused while they match.
pub fn prepare(gathering: &Gathering, keep: &[String]) -> Result<StdlibParts> {
    let Gathering {
        python,
        kit,
        pyferry_id,
        work_dir,
        timestamp,
        progress,
    } = *gathering;
    // The kit carries the headers, and its apps' unit is its own without
    // them; the other parts would have to be gathered.
    if let Some(kit) = kit {
        let headers = keep.iter().any(|part| part == "include");
        let keep: Vec<&String> = keep.iter().filter(|part| *part != "include").collect();
        if !keep.is_empty() {
            let keep: Vec<&str> = keep.iter().map(|part| part.as_str()).collect();
            return Err(Error::Pack {
                reason: format!(
                    "the app needs {} of the standard library (it imports it, or \
                     `--keep-stdlib` asks for it), which pyferry's own standard library \
                     leaves out, as standalone apps do by default; pack with `--python PY`, \
                     a CPython {} that has it, to gather the standard library from there",
                    keep.join(", "),
                    crate::build_python::PYTHON_FULL_VERSION,
                )
                .into(),
            });
        }
        return kit.stdlib_parts(work_dir, headers);
    }
    if let Some(unknown) = keep
        .iter()
        .find(|name| !EXCLUDED_BY_DEFAULT.contains(&name.as_str()))
    {
        return Err(Error::Usage {
            usage: format!(
                "--keep-stdlib {unknown}: only these parts are left out by default, \
                 and can be kept: {}",
                EXCLUDED_BY_DEFAULT.join(", ")
            ),
        });
    }
    let excluded =
        |part: &str| EXCLUDED_BY_DEFAULT.contains(&part) && !keep.iter().any(|k| k == part);
    let plan = plan(python, &excluded)?;
    let key = cache_key(python, keep, pyferry_id, timestamp, &plan)?;
    let cache_dir = super::cache::dir();
    let built = work_dir.join("stdlib.zip");
    // A link or a copy, not the path: a concurrent pack may replace the
    // cached zip (and the work dir may be on another filesystem).
    if let Some(cached) = cache_dir
        .as_ref()
        .map(|dir| dir.join(format!("stdlib-{key}.zip")))
        .filter(|cached| fs::hard_link(cached, &built).is_ok() || fs::copy(cached, &built).is_ok())
    {
        crate::debug::note(format_args!("standard library from {}", cached.display()));
        return split(&built, work_dir);
    }

    // Once per pyferry and build interpreter: the next packs reuse it.
    let files = materialize(python, &plan, work_dir, progress)?;
    let phase = progress.counted("writing the standard library", files.len());
    write_unit(&built, &files, timestamp, &phase)?;
    drop(phase);
    let Some(cache_dir) = cache_dir else {
        return split(&built, work_dir);
    };
    // Published whole or not at all; older zips of other inputs go.
    let cached = cache_dir.join(format!("stdlib-{key}.zip"));
    let temp = cache_dir.join(format!(".stdlib-{key}.tmp-{}", std::process::id()));
    if fs::copy(&built, &temp)
        .and_then(|_| fs::rename(&temp, &cached))
        .is_err()
    {
        let _ = fs::remove_file(&temp);
        return split(&built, work_dir);
    }
    for entry in fs::read_dir(&cache_dir).into_iter().flatten().flatten() {
        if entry.path() != cached && entry.file_name().to_string_lossy().starts_with("stdlib-") {
            let _ = fs::remove_file(entry.path());
        }
    }
    split(&built, work_dir)
}

/// Where an entry of the `.python` unit goes: imported from the archive
/// under this name, or extracted.
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    Archived(String),
    Extracted,
}

/// Splits the unit's zip (`unit`, in `work_dir`, removed after) into its
/// parts, each entry copied as it is compressed.
fn split(unit: &Path, work_dir: &Path) -> Result<StdlibParts> {
    let unreadable = archive::zip_read_error(unit);
    let mut source = archive::open_zip(unit)?;
    let names: Vec<String> = source
        .file_names()
        .map(|name| name.map(|name| name.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(&unreadable)?;
    let reading_own_files = packages_reading_their_files(&names);
    let parts = StdlibParts::in_dir(work_dir, "stdlib");
    let mut archived = archive::ZipCopy::create(&parts.archived)?;
    let mut extracted = archive::ZipCopy::create(&parts.extracted)?;
    for index in 0..source.len() {
        let entry = source.by_index_raw(index).map_err(&unreadable)?;
        let name = entry.name().map_err(&unreadable)?.into_owned();
        match destination(&name, &reading_own_files) {
            Destination::Archived(as_name) => archived.copy(entry, &as_name)?,
            Destination::Extracted => extracted.copy(entry, &name)?,
        }
    }
    archived.finish()?;
    extracted.finish()?;
    fs::remove_file(unit).map_err(io("remove", unit))?;
    Ok(parts)
}

/// The top-level modules of the extracted part (`StdlibParts::extracted`)
/// that an app imports: the extension modules, and the packages that read
/// their own files (extracted whole, with their pycs). `None` when the part
/// carries Tcl/Tk, whose script libraries the runtime points
/// `TCL_LIBRARY` at before the app starts.
pub fn extracted_modules(parts: &StdlibParts) -> Result<Option<BTreeSet<String>>> {
    let zip = archive::open_zip(&parts.extracted)?;
    let unit = format!("{}/", stdlib_unit::UNIT);
    let stdlib = format!("{unit}{}/", stdlib_unit::stdlib_dir());
    let dynload = format!("{unit}{}/", stdlib_unit::dynload_dir());
    let tcl_tk = format!("{unit}{}", stdlib_unit::TCL_LIBRARY_DIR);
    let mut modules = BTreeSet::new();
    for name in zip.file_names() {
        let name = name.map_err(archive::zip_read_error(&parts.extracted))?;
        if name.starts_with(&tcl_tk) {
            return Ok(None);
        }
        if let Some(file) = name.strip_prefix(&dynload) {
            modules.extend(file.split('.').next().map(str::to_owned));
        } else if let Some((top, _)) = name
            .strip_prefix(&stdlib)
            .filter(|_| name.ends_with(".pyc"))
            .and_then(|rest| rest.split_once('/'))
            .filter(|(top, _)| *top != "__pycache__")
        {
            modules.insert(top.to_owned());
        }
    }
    Ok(Some(modules))
}

/// `--stdlib minimal`: the standard library's parts cut to the modules
/// that `roots` (what the app names, `names_reached`) reach, and all that
/// those name in turn: every `import` line of their sources (lazy imports
/// in functions too, but not their script-only code: `module_imports`),
/// the names in the text of those that import by computed names (`dbm`'s
/// `"dbm.gnu"`: `names_in_text`), the strings of their extension modules,
/// the packages above them, and the libraries their extension modules
/// load. `encodings` stays whole (its codecs are imported by computed
/// names). When in doubt, a module stays: the cut is what no line of code
/// names. The script code of a module run as a program counts too: the
/// app's programs (`reach.programs`: `-e http.server`, `-m venv`), those
/// that kept modules run (`venv` runs `-m ensurepip`), and the package of
/// a kept `__main__`; so does what the code in the wheels a kept package
/// carries names (ensurepip's pip, which runs in the venvs it makes), and
/// a directory of data goes with its package. Returns the cut parts
/// (written to `work_dir`) and the modules left out.
pub fn cut_to_reach(
    python: &BuildPython,
    parts: &StdlibParts,
    reach: &Reach,
    work_dir: &Path,
) -> Result<(StdlibParts, Vec<String>)> {
    let prefix = stdlib_prefix();
    let dynload = format!("{}/{}/", stdlib_unit::UNIT, stdlib_unit::dynload_dir());
    let libraries = format!("{}/{}/", stdlib_unit::UNIT, stdlib_unit::LIBRARY_DIR);
    // What a standard library entry belongs to: a module (dotted), or the
    // package whose directory holds a data file; `None` for what stays
    // whatever is cut (sysconfig's files, the headers, the libraries).
    let owner = |name: &str| -> Option<(String, bool)> {
        if let Some(file) = name.strip_prefix(&dynload) {
            return file
                .split('.')
                .next()
                .map(|module| (module.to_owned(), false));
        }
        let rest = name.strip_prefix(&prefix)?;
        let top = rest.split('/').next().unwrap_or(rest);
        if !holds_modules(top) {
            return None;
        }
        let (dir, file) = rest.rsplit_once('/').unwrap_or(("", rest));
        let dir = dir
            .strip_suffix("/__pycache__")
            .or_else(|| dir.strip_suffix("__pycache__"))
            .unwrap_or(dir);
        let package = dir.replace('/', ".");
        let stem = file
            .strip_suffix(".py")
            .or_else(|| file.strip_suffix(".pyc"))
            .map(|stem| stem.split('.').next().unwrap_or(stem));
        let join = |last: &str| match package.is_empty() {
            true => last.to_owned(),
            false => format!("{package}.{last}"),
        };
        match stem {
            Some("__init__") => Some((package.clone(), true)),
            Some(stem) => Some((join(stem), false)),
            // A data file: its package's, if it is in one.
            None if !package.is_empty() => Some((package.clone(), true)),
            None => None,
        }
    };
    let mut imports: BTreeMap<String, Imports> = BTreeMap::new();
    // What each module's script-only code names, and the modules it runs
    // as programs.
    let mut script_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut programs_run: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // The modules with code, as opposed to directories of data alone.
    let mut with_code: BTreeSet<String> = BTreeSet::new();
    // The extension modules, by module name: the only accelerators whose
    // import the build interpreter is asked about.
    let mut extensions: BTreeSet<String> = BTreeSet::new();
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in [&parts.archived, &parts.extracted] {
        let mut zip = archive::open_zip(path)?;
        for index in 0..zip.len() {
            // From the central directory: the archived part's pycs are zstd
            // frames that the zip crate does not decode (`pyc_zstd`); only
            // sources and native code, in the extracted part, are read.
            let name = zip
                .by_index_data(index)
                .and_then(|entry| entry.name().map(|name| name.into_owned()))
                .map_err(archive::zip_read_error(path))?;
            let Some((module, is_package)) = owner(&name)
                .or_else(|| name.starts_with(&libraries).then(|| (String::new(), false)))
            else {
                continue;
            };
            let is_source = name.ends_with(".py");
            let is_native = name.ends_with(".so") || name.contains(".so.");
            if is_source || is_native || name.ends_with(".pyc") {
                with_code.insert(module.clone());
            }
            let is_wheel = name.ends_with(".whl");
            let mut found = Imports::default();
            if is_source || is_native || is_wheel {
                let mut bytes = Vec::new();
                zip.by_index(index)
                    .map_err(archive::zip_read_error(path))?
                    .read_to_end(&mut bytes)
                    .map_err(io("read", path))?;
                if is_wheel {
                    // ensurepip's pip and setuptools: installed into the
                    // venvs an app makes, they run on this standard
                    // library, as the package that carries them does.
                    let top = module.split('.').next().unwrap_or_default().to_owned();
                    imports
                        .entry(top)
                        .or_default()
                        .names
                        .extend(names_in_wheel(&bytes));
                } else if is_native {
                    let dependencies = elf::Image::parse(&bytes)
                        .map(|image| image.dynamic(&bytes).needed)
                        .unwrap_or_default();
                    let file = name.rsplit('/').next().unwrap_or(&name).to_owned();
                    needed.insert(file, dependencies);
                    found.names.extend(strings_of(&bytes));
                    if !module.is_empty() {
                        extensions.insert(module.clone());
                    }
                } else {
                    let text = String::from_utf8_lossy(&bytes);
                    found = module_imports(&text, Some(&module), is_package, true);
                    found.names.extend(names_in_text(&text, false));
                    let script = module_imports(&text, Some(&module), is_package, false);
                    script_names
                        .entry(module.clone())
                        .or_default()
                        .extend(script.all());
                    programs_run
                        .entry(module.clone())
                        .or_default()
                        .extend(modules_run_as_programs(&text, false));
                }
            }
            if !module.is_empty() {
                imports.entry(module).or_default().extend(found);
            }
        }
    }
    // The accelerators (extension modules only, carried or built in: a
    // Python module's import runs its code, and may fail as it goes) that
    // the build interpreter, whose modules these are, imports.
    let accelerators: BTreeSet<(String, Vec<String>)> = imports
        .values()
        .flat_map(|found| &found.fallbacks)
        .flat_map(|fallback| fallback.attempted.iter())
        .filter(|(module, _)| {
            extensions.contains(module) || python.builtin_modules.contains(module)
        })
        .cloned()
        .collect();
    let importable = match accelerators.is_empty() {
        true => BTreeSet::new(),
        false => python.importable(&accelerators)?,
    };
    let mut pending: Vec<String> = ["traceback".to_owned()]
        .into_iter()
        .chain(
            imports
                .keys()
                .filter(|m| *m == "encodings" || m.starts_with("encodings."))
                .cloned(),
        )
        .chain(reach.names.iter().cloned())
        .collect();
    let script_code_of = |program: &str| script_names.get(program).into_iter().flatten().cloned();
    pending.extend(
        reach
            .programs
            .iter()
            .flat_map(|program| script_code_of(program)),
    );
    let mut kept = BTreeSet::new();
    while let Some(name) = pending.pop() {
        let Some(found) = imports.get(&name) else {
            continue;
        };
        if !kept.insert(name.clone()) {
            continue;
        }
        pending.extend(found.names.iter().cloned());
        for program in programs_run.get(&name).into_iter().flatten() {
            pending.extend(script_code_of(program));
        }
        if let Some(package) = name.strip_suffix(".__main__") {
            pending.extend(script_code_of(package));
        }
        // An accelerator that is here spares its stand-in.
        for fallback in &found.fallbacks {
            pending.extend(fallback.attempted_names());
            if !fallback.cannot_fail(&importable) {
                pending.extend(fallback.names.iter().cloned());
            }
        }
        // Importing a submodule runs the packages above it.
        let mut parent = name.as_str();
        while let Some((above, _)) = parent.rsplit_once('.') {
            pending.push(above.to_owned());
            parent = above;
        }
        // `sysconfig` imports its build data by a computed name.
        if name == "sysconfig" {
            pending.extend(
                imports
                    .keys()
                    .filter(|m| m.starts_with("_sysconfigdata"))
                    .cloned(),
            );
        }
    }
    // A directory of data alone (`ensurepip/_bundled`'s wheels,
    // `venv/scripts/posix`) is no module that code names: it goes with the
    // nearest package above it that has code.
    let data_dirs: Vec<&String> = imports.keys().filter(|m| !with_code.contains(*m)).collect();
    for dir in data_dirs {
        let mut holder = dir.as_str();
        while !with_code.contains(holder) {
            let Some((above, _)) = holder.rsplit_once('.') else {
                break;
            };
            holder = above;
        }
        if kept.contains(holder) {
            kept.insert(dir.clone());
        }
    }
    // The libraries the kept extension modules load, and theirs.
    let mut libraries_kept = BTreeSet::new();
    let mut pending: Vec<String> = needed
        .iter()
        .filter(|(file, _)| file.split('.').next().is_some_and(|m| kept.contains(m)))
        .flat_map(|(_, dependencies)| dependencies.clone())
        .collect();
    while let Some(library) = pending.pop() {
        if libraries_kept.insert(library.clone()) {
            pending.extend(needed.get(&library).into_iter().flatten().cloned());
        }
    }
    let wanted = |name: &str| match owner(name) {
        Some((module, _)) => kept.contains(&module),
        None => name
            .strip_prefix(&libraries)
            .is_none_or(|library| libraries_kept.contains(library)),
    };
    let cut = StdlibParts::in_dir(work_dir, "stdlib-minimal");
    for (from, to) in [
        (&parts.archived, &cut.archived),
        (&parts.extracted, &cut.extracted),
    ] {
        let mut zip = archive::open_zip(from)?;
        let mut copy = archive::ZipCopy::create(to)?;
        for index in 0..zip.len() {
            let entry = zip
                .by_index_raw(index)
                .map_err(archive::zip_read_error(from))?;
            let name = entry
                .name()
                .map_err(archive::zip_read_error(from))?
                .into_owned();
            if wanted(&name) {
                copy.copy(entry, &name)?;
            }
        }
        copy.finish()?;
    }
    parts.remove()?;
    let left_out = imports
        .into_keys()
        .filter(|module| !kept.contains(module))
        .collect();
    Ok((cut, left_out))
}

/// What the Python code of a wheel (`bytes`) names, read as an app's code
/// is (`names_reached`); nothing if it is no readable zip.
fn names_in_wheel(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(mut wheel) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return names;
    };
    for index in 0..wheel.len() {
        let Ok(mut file) = wheel.by_index(index) else {
            continue;
        };
        if !file.name().is_ok_and(|name| name.ends_with(".py")) {
            continue;
        }
        let mut source = Vec::new();
        if file.read_to_end(&mut source).is_ok() {
            let text = String::from_utf8_lossy(&source);
            names.extend(module_imports(&text, None, false, false).all());
            names.extend(names_in_text(&text, true));
        }
    }
    names
}

/// The standard modules that CPython imports from the archive at every
/// start, before the app's code: `encodings` and the codec of a UTF-8
/// locale (`python -X importtime -c pass`).
const IMPORTED_AT_EVERY_START: &[&str] = &["__init__", "aliases", "utf_8"];

/// How the unit's zip holds `name` (zip's method number): the modules
/// every start imports stored, so that no start decodes them (21 KB
/// stored, 10 KB deflated) or loads the pyc dictionary; the other pycs
/// that zipimport reads from the archive as zstd frames of the
/// dictionary (`pyc_zstd`); everything else (what the runtime extracts,
/// whose compression only the cached unit sees) deflated.
fn compression_of(name: &str, reading_own_files: &BTreeSet<String>) -> u16 {
    let every_start = name
        .strip_prefix(&stdlib_prefix())
        .and_then(|rest| rest.strip_prefix("encodings/__pycache__/"))
        .and_then(|file| file.split_once('.'))
        .is_some_and(|(stem, tail)| {
            IMPORTED_AT_EVERY_START.contains(&stem) && tail.ends_with(".pyc")
        });
    match destination(name, reading_own_files) {
        _ if every_start || name == pyc_zstd::DICTIONARY_ENTRY => prepared_zip::STORED,
        Destination::Archived(_) => pyc_zstd::METHOD,
        Destination::Extracted => prepared_zip::DEFLATED,
    }
}

/// Writes the unit's zip of `files` (each a step of `phase`), each
/// compressed as `compression_of` says, and the pyc dictionary, trained
/// on the pycs it compresses; compressed in parallel.
fn write_unit(
    path: &Path,
    files: &BTreeMap<String, SourceFile>,
    timestamp: DateTime,
    phase: &Phase,
) -> Result<()> {
    let names: Vec<String> = files.keys().cloned().collect();
    let reading_own_files = packages_reading_their_files(&names);
    let files: Vec<(&str, &SourceFile, u16)> = files
        .iter()
        .map(|(name, source)| {
            (
                name.as_str(),
                source,
                compression_of(name, &reading_own_files),
            )
        })
        .collect();
    let samples: Vec<Vec<u8>> = files
        .iter()
        .filter(|(_, _, method)| *method == pyc_zstd::METHOD)
        .map(|(_, source, _)| fs::read(&source.path).map_err(io("read", &source.path)))
        .collect::<Result<_>>()?;
    let dictionary = pyc_zstd::train(&samples)
        .map_err(|e| stdlib_error(format!("cannot train the pyc dictionary: {e}")))?;
    drop(samples);
    let pycs = Pycs {
        dictionary: &dictionary,
        level: pyc_zstd::SHARED_LEVEL,
    };
    let mut entries = prepared_zip::compress(&files, &pycs, phase)?;
    entries.push(PreparedEntry {
        name: pyc_zstd::DICTIONARY_ENTRY.to_owned(),
        mode: 0o644,
        method: prepared_zip::STORED,
        crc: crc32fast::hash(&dictionary),
        size: dictionary.len() as u64,
        data: dictionary,
    });
    prepared_zip::write(path, &entries, timestamp)
}

/// `.python/lib/python3.X/`: where the unit's zips name the standard
/// library's files.
fn stdlib_prefix() -> String {
    format!("{}/{}/", stdlib_unit::UNIT, stdlib_unit::stdlib_dir())
}

/// Whether the standard library directory's top-level entry `top` is a
/// module or package, not `site-packages`, `lib-dynload` (gathered on its
/// own) or the build's `config-*` directory.
fn holds_modules(top: &str) -> bool {
    !(["lib-dynload", "site-packages"].contains(&top) || top.starts_with("config-"))
}

/// Documentation beside the modules, which no code reads: it does not make
/// its package one that reads its own files.
fn is_documentation(file: &str) -> bool {
    file.starts_with("README") || file.ends_with(".rst") || file.ends_with(".txt")
}

/// The standard library's top-level packages that hold files besides
/// their modules (`venv`'s activation scripts): their modules may open
/// them next to `__file__`, so they are extracted whole, as an app's own
/// such packages are.
fn packages_reading_their_files(names: &[String]) -> BTreeSet<String> {
    let prefix = stdlib_prefix();
    names
        .iter()
        .filter_map(|name| name.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('/'))
        .filter(|(_, inner)| {
            let file = inner.rsplit('/').next().unwrap_or(inner);
            !(file.ends_with(".py") || file.ends_with(".pyc") || is_documentation(file))
        })
        .map(|(top, _)| top.to_owned())
        .collect()
}

/// Where the unit's entry `name` goes (see `StdlibParts`).
fn destination(name: &str, reading_own_files: &BTreeSet<String>) -> Destination {
    if name == pyc_zstd::DICTIONARY_ENTRY {
        return Destination::Archived(name.to_owned());
    }
    let prefix = stdlib_prefix();
    let Some(rest) = name.strip_prefix(&prefix) else {
        return Destination::Extracted;
    };
    let (top, _) = rest.split_once('/').unwrap_or((rest, ""));
    if !holds_modules(top) || reading_own_files.contains(top) {
        return Destination::Extracted;
    }
    // `json/__pycache__/decoder.cpython-311.pyc` -> `json/decoder.pyc`.
    let pyc = rest.rsplit_once('/').and_then(|(dir, file)| {
        let stem = file.strip_suffix(".pyc")?.rsplit_once('.')?.0;
        let dir = dir.strip_suffix("__pycache__")?;
        Some(format!("{prefix}{dir}{stem}.pyc"))
    });
    match pyc {
        Some(name) => Destination::Archived(name),
        None => Destination::Extracted,
    }
}

fn plan(python: &BuildPython, excluded: &dyn Fn(&str) -> bool) -> Result<Plan> {
    let (modules, data) = walk_stdlib(&python.stdlib_dir, excluded)?;
    let extensions = extension_modules(python, excluded)?;
    let libraries = needed_libraries(&extensions)?;
    let tcl_tk = match excluded("tkinter") {
        true => BTreeMap::new(),
        false => tcl_tk_libraries(python)?,
    };
    let headers = match excluded("include") {
        true => BTreeMap::new(),
        false => headers(python)?,
    };
    Ok(Plan {
        modules,
        data,
        extensions,
        libraries,
        tcl_tk,
        headers,
    })
}

/// CPython's C headers (`include/python3.11/`, with `cpython/` and
/// `internal/`), by name in the unit, where sysconfig's `INCLUDEPY` names
/// them below the runtime's prefix.
fn headers(python: &BuildPython) -> Result<BTreeMap<String, SourceFile>> {
    let into = format!("include/python{}", python.minor_version());
    let dir = PathBuf::from(build_prefix(python)).join(&into);
    if !dir.join("Python.h").is_file() {
        return Err(stdlib_error(format!(
            "its C headers are not in `{}`, so `--keep-stdlib include` cannot keep them",
            dir.display()
        )));
    }
    let mut tree = Tree::default();
    tree.add_dir(&dir, |_| false)?;
    Ok(tree
        .files
        .into_iter()
        .map(|(name, source)| (format!("{into}/{name}"), source))
        .collect())
}

/// Tcl's and Tk's script libraries as the build interpreter's tkinter uses
/// them (Tk's beside Tcl's, as every Tcl/Tk install lays them out), by
/// name in the unit.
fn tcl_tk_libraries(python: &BuildPython) -> Result<BTreeMap<String, SourceFile>> {
    let output = python
        .command()
        .args([
            "-c",
            "import tkinter; tcl = tkinter.Tcl(); \
             print(tcl.eval('info library')); print(tcl.eval('info tclversion'))",
        ])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| stdlib_error(format!("it cannot be asked where Tcl is: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let (Some(tcl), Some(version), true) = (lines.next(), lines.next(), output.status.success())
    else {
        return Err(stdlib_error(format!(
            "its tkinter does not work, so it cannot be kept: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    };
    let tcl = PathBuf::from(tcl);
    let tk = tcl
        .parent()
        .map(|dir| dir.join(format!("tk{version}")))
        .filter(|dir| dir.join("tk.tcl").is_file())
        .ok_or_else(|| {
            stdlib_error(format!(
                "Tk's script library is not beside Tcl's (`{}`), where pack looks for it",
                tcl.display()
            ))
        })?;
    let mut files = BTreeMap::new();
    for (dir, into) in [
        (&tcl, stdlib_unit::TCL_LIBRARY_DIR),
        (&tk, stdlib_unit::TK_LIBRARY_DIR),
    ] {
        let mut tree = Tree::default();
        tree.add_dir(dir, |_| false)?;
        for (name, source) in tree.files {
            files.insert(format!("{into}/{name}"), source);
        }
    }
    Ok(files)
}

/// A hex digest of everything the `.python` zip is made from.
fn cache_key(
    python: &BuildPython,
    keep: &[String],
    pyferry_id: &str,
    timestamp: DateTime,
    plan: &Plan,
) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut text = |text: &str| {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    // A changed pyferry may gather differently: never reuse another's zip.
    text(pyferry_id);
    text(&python.path.to_string_lossy());
    text(&python.full_version());
    text(&format!("{keep:?} {timestamp:?} strip={}", has_strip()));
    let mut files: Vec<PathBuf> = Vec::new();
    for relative in &plan.modules {
        files.push(python.stdlib_dir.join(relative));
    }
    files.extend(plan.data.values().map(|source| source.path.clone()));
    files.extend(plan.tcl_tk.values().map(|source| source.path.clone()));
    files.extend(plan.headers.values().map(|source| source.path.clone()));
    files.extend(plan.extensions.iter().cloned());
    for (name, path) in &plan.libraries.paths {
        text(name);
        files.push(path.clone());
    }
    for file in files {
        let meta = fs::metadata(&file).map_err(io("inspect", &file))?;
        text(&format!(
            "{} {} {}.{} {}",
            file.display(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ino()
        ));
    }
    Ok(archive::hex(&hasher.finalize()[..16]))
}

/// Compiles the modules, copies and fixes up the native files; returns the
/// entries by archive name.
fn materialize(
    python: &BuildPython,
    plan: &Plan,
    work_dir: &Path,
    progress: &Progress,
) -> Result<BTreeMap<String, SourceFile>> {
    let unit = stdlib_unit::UNIT;
    let stdlib = format!("{unit}/{}", stdlib_unit::stdlib_dir());
    let mut files = BTreeMap::new();
    let mut jobs = Vec::new();
    let mut failed = BTreeSet::new();
    for relative in &plan.modules {
        let pyc = python.pycache_name(relative);
        let target = work_dir.join("stdlib-pyc").join(&pyc);
        let mut source_path = python.stdlib_dir.join(relative);
        if is_sysconfig_data(relative) {
            source_path = relocated_sysconfig_data(python, &source_path, work_dir)?;
        }
        jobs.push(CompileJob {
            source: source_path.clone(),
            target: target.clone(),
            display: relative.clone(),
        });
        let compiled = SourceFile {
            path: target,
            executable: false,
        };
        files.insert(format!("{stdlib}/{pyc}"), compiled);
        let source = SourceFile {
            path: source_path,
            executable: false,
        };
        files.insert(format!("{stdlib}/{relative}"), source);
    }
    // What sysconfig names besides its data: the build's Makefile and
    // pyconfig.h (not the headers, nor the 60 MB static libpython).
    for (name, found) in sysconfig_files(python) {
        let source = SourceFile {
            path: found,
            executable: false,
        };
        files.insert(format!("{unit}/{name}"), source);
    }
    // The test suite holds files that are invalid on purpose; like
    // compileall, leave out what does not compile (nothing can import it).
    let phase = progress.counted("compiling the standard library", jobs.len());
    for failure in python.compile(&jobs, &phase)? {
        crate::debug::note(format_args!(
            "left out `{}`: it does not compile",
            failure.file
        ));
        failed.insert(format!("{stdlib}/{}", failure.file));
    }
    files.retain(|name, source| !failed.contains(name) && source.path.is_file());
    for (relative, source) in &plan.data {
        files.insert(format!("{stdlib}/{relative}"), source.clone());
    }
    for (relative, source) in plan.tcl_tk.iter().chain(&plan.headers) {
        files.insert(format!("{unit}/{relative}"), source.clone());
    }

    let dynload = format!("{unit}/{}", stdlib_unit::dynload_dir());
    for (original, copy) in copy_extensions(&plan.extensions, &work_dir.join("lib-dynload"))? {
        if plan.libraries.linking.contains(&original) {
            set_search_path(&copy, stdlib_unit::EXTENSION_RPATH, true)?;
        }
        let file_name = copy.file_name().expect("a file").to_string_lossy();
        let source = SourceFile {
            path: copy.clone(),
            executable: true,
        };
        files.insert(format!("{dynload}/{file_name}"), source);
    }
    let lib_dir = work_dir.join("lib");
    fs::create_dir_all(&lib_dir).map_err(io("create", &lib_dir))?;
    for (soname, found) in &plan.libraries.paths {
        let copy = lib_dir.join(soname);
        fs::copy(found, &copy).map_err(io("copy", found))?;
        // A library with a search path of its own looks only there for its
        // dependencies: point it at its siblings.
        set_search_path(&copy, "$ORIGIN", false)?;
        let source = SourceFile {
            path: copy,
            executable: true,
        };
        files.insert(
            format!("{unit}/{}/{soname}", stdlib_unit::LIBRARY_DIR),
            source,
        );
    }
    Ok(files)
}

/// `_sysconfigdata_*.py`: the build's configuration, which `sysconfig`
/// reads.
fn is_sysconfig_data(relative: &str) -> bool {
    !relative.contains('/') && relative.starts_with("_sysconfigdata_") && relative.ends_with(".py")
}

/// The marker of the build's prefix in the relocated configuration.
const PREFIX_MARKER: &str = "@PYFERRY_PREFIX@";

/// The build's configuration as it describes this runtime instead: every
/// path below the build interpreter's prefix is below the app's `sys.prefix`
/// (where the `.python` unit is extracted), libpython is linked in
/// statically, whatever the build interpreter was, and a compiler or
/// library directory named by a path the running machine lacks (pyferry's
/// own CPython is built by Zig's toolchain, from the packing machine's
/// cache) gives way to the machine's `cc` and `c++`, as pip, setuptools
/// and `build_ext` find them. Written into `work_dir`.
fn relocated_sysconfig_data(
    python: &BuildPython,
    source: &Path,
    work_dir: &Path,
) -> Result<PathBuf> {
    let mut text = fs::read_to_string(source).map_err(io("read", source))?;
    // The prefix the build was configured with, and the one the build
    // interpreter runs from: they differ when it is reached through a link
    // (pyferry's own CPython, linked into target/portable from its cache).
    let mut prefixes = vec![build_prefix(python)];
    prefixes.extend(configured_prefix(&text).filter(|prefix| !prefixes.contains(prefix)));
    // Longest first: one may hold the other.
    prefixes.sort_by_key(|prefix| std::cmp::Reverse(prefix.len()));
    for prefix in &prefixes {
        // The build's linker flags for its shared libpython (pyenv adds an
        // RPATH to its lib/): extension modules built by pip with this
        // runtime link no libpython, and must not name the packing
        // machine's cache.
        for flag in [
            format!("-Wl,-rpath,{prefix}/lib"),
            format!("-L{prefix}/lib"),
        ] {
            text = text.replace(&format!(" {flag}"), "").replace(&flag, "");
        }
    }
    let mut relocated = prefixes
        .iter()
        .fold(text, |text, prefix| text.replace(prefix, PREFIX_MARKER));
    relocated.push_str(&format!(
        "\n\n# Added by pyferry pack: paths below this runtime's prefix, and its\n\
         # libpython, linked in statically.\n\
         def _pyferry_relocate():\n    \
             import os, sys\n    \
             for key, value in build_time_vars.items():\n        \
                 if isinstance(value, str):\n            \
                     build_time_vars[key] = value.replace({PREFIX_MARKER:?}, sys.prefix)\n    \
             static = build_time_vars.get('LIBRARY', '')\n    \
             build_time_vars.update(Py_ENABLE_SHARED=0, PY_ENABLE_SHARED=0, LDLIBRARY=static)\n    \
             compilers = dict(CC='cc', CXX='c++', CPP='cc', LINKCC='cc', LDSHARED='cc',\n        \
                              BLDSHARED='cc', LDCXXSHARED='c++', MAINCC='cc')\n    \
             for key, value in build_time_vars.items():\n        \
                 if not isinstance(value, str) or not (key in compilers or 'FLAGS' in key):\n            \
                     continue\n        \
                 words = value.split()\n        \
                 gone = words and words[0].startswith('/') and not os.path.exists(words[0])\n        \
                 if key in compilers and gone:\n            \
                     words[0] = compilers[key]\n        \
                 kept = [w for w in words if not (w.startswith('-L/') and not os.path.isdir(w[2:]))]\n        \
                 if kept != value.split():\n            \
                     build_time_vars[key] = ' '.join(kept)\n\n\
         _pyferry_relocate()\n\
         del _pyferry_relocate\n"
    ));
    let dir = work_dir.join("sysconfig");
    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let target = dir.join(source.file_name().expect("a file"));
    fs::write(&target, relocated).map_err(io("write", &target))?;
    Ok(target)
}

/// The `prefix` the build was configured with, as `_sysconfigdata` says
/// (`'prefix': '/usr/local',`).
fn configured_prefix(sysconfig_data: &str) -> Option<String> {
    let start = sysconfig_data.find("'prefix': '")? + "'prefix': '".len();
    let value = &sysconfig_data[start..];
    let prefix = &value[..value.find('\'')?];
    // Not a prefix worth replacing everywhere (`/`, or nothing).
    (prefix.len() > 1 && prefix.starts_with('/')).then(|| prefix.to_owned())
}

/// `sys.prefix` of the build interpreter: its standard library is
/// `PREFIX/lib/pythonX.Y`.
fn build_prefix(python: &BuildPython) -> String {
    python
        .stdlib_dir
        .ancestors()
        .nth(2)
        .unwrap_or(&python.stdlib_dir)
        .to_string_lossy()
        .into_owned()
}

/// The build's Makefile and pyconfig.h, by name in the unit, where the
/// build interpreter has them.
fn sysconfig_files(python: &BuildPython) -> Vec<(String, PathBuf)> {
    let prefix = PathBuf::from(build_prefix(python));
    let version = format!("{}.{}", python.version[0], python.version[1]);
    let mut found = Vec::new();
    let header = format!("include/python{version}/pyconfig.h");
    let header_path = prefix.join(&header);
    if header_path.is_file() {
        found.push((header, header_path));
    }
    let config_dirs = fs::read_dir(&python.stdlib_dir)
        .into_iter()
        .flatten()
        .flatten();
    for entry in config_dirs {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("config-{version}")) && entry.path().join("Makefile").is_file()
        {
            found.push((
                format!("{}/{name}/Makefile", stdlib_unit::stdlib_dir()),
                entry.path().join("Makefile"),
            ));
        }
    }
    found
}

fn stdlib_error(reason: String) -> Error {
    Error::Pack {
        reason: Reason(format!(
            "cannot take the standard library from the build interpreter: {reason}"
        )),
    }
}

/// The standard library's modules (`.py`) and data files, relative to its
/// directory, without `site-packages`, `lib-dynload`, the build's
/// `config-*` directory, bytecode caches and excluded parts.
fn walk_stdlib(
    root: &Path,
    excluded: &dyn Fn(&str) -> bool,
) -> Result<(Vec<String>, BTreeMap<String, SourceFile>)> {
    let mut tree = Tree::default();
    tree.add_dir(root, |top| {
        let module_of_file = top.strip_suffix(".py");
        !holds_modules(top)
            || excluded(top)
            || module_of_file.and_then(module_part).is_some_and(excluded)
    })?;
    // Test suites inside other packages (`ctypes/test/...`): any directory
    // below the top level.
    let in_nested_tests = |name: &str| {
        excluded("test")
            && name.rsplit_once('/').is_some_and(|(dirs, _)| {
                dirs.split('/')
                    .skip(1)
                    .any(|dir| NESTED_TEST_DIRS.contains(&dir))
            })
    };
    let (mut modules, mut data) = (Vec::new(), BTreeMap::new());
    for (name, source) in tree.files {
        if in_nested_tests(&name) {
            continue;
        }
        match name.ends_with(".py") {
            true => modules.push(name),
            false => {
                data.insert(name, source);
            }
        }
    }
    Ok((modules, data))
}

/// The kept extension modules of the interpreter.
fn extension_modules(
    python: &BuildPython,
    excluded: &dyn Fn(&str) -> bool,
) -> Result<Vec<PathBuf>> {
    let mut extensions = Vec::new();
    let dir = &python.dynload_dir;
    for entry in fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let module = file_name.split('.').next().unwrap_or_default();
        if file_name.ends_with(".so") && !module_part(module).is_some_and(excluded) {
            extensions.push(entry.path());
        }
    }
    extensions.sort();
    Ok(extensions)
}

/// Copies the extension modules to `dir`, stripped of debug information and
/// symbol tables when `strip` is available; returns (original, copy) pairs.
fn copy_extensions(extensions: &[PathBuf], dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let mut copies = Vec::new();
    for original in extensions {
        let copy = dir.join(original.file_name().expect("a file"));
        fs::copy(original, &copy).map_err(io("copy", original))?;
        copies.push((original.clone(), copy));
    }
    // Debug information is half the size of pyenv's extension modules, and
    // symbol tables a tenth of the rest (89 KB of the standard library's
    // native part, compressed): a module is loaded by its dynamic symbols
    // alone. The copies are ours to strip (an app's own extension modules
    // are not: strip after patchelf, as auditwheel repairs wheels, can
    // break them). Without binutils they stay as they are.
    if has_strip() {
        let _ = Command::new("strip")
            .arg("--strip-unneeded")
            .args(copies.iter().map(|(_, copy)| copy))
            .stderr(Stdio::null())
            .status();
    }
    Ok(copies)
}

fn has_strip() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("strip").is_file()))
}

/// The shared libraries beyond glibc that the extension modules need.
#[derive(Debug, Default)]
struct Libraries {
    /// By the name the modules ask for (`libssl.so.3`): where it was found.
    paths: BTreeMap<String, PathBuf>,
    /// The extension modules that need one of them, directly or not.
    linking: BTreeSet<PathBuf>,
}

/// Asks the dynamic linker (`ldd`) what each extension module loads, for
/// the modules that name a library beyond glibc (ldd takes 5 ms a file).
fn needed_libraries(extensions: &[PathBuf]) -> Result<Libraries> {
    let mut linking = Vec::new();
    for extension in extensions {
        let image = fs::read(extension).map_err(io("read", extension))?;
        let needed = elf::Image::parse(&image)
            .map(|parsed| parsed.dynamic(&image).needed)
            .unwrap_or_default();
        if needed.iter().any(|name| !is_glibc(name)) {
            linking.push(extension.clone());
        }
    }
    let extensions = linking.as_slice();
    if extensions.is_empty() {
        return Ok(Libraries::default());
    }
    let output = Command::new("ldd")
        .args(extensions)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| stdlib_error(format!("`ldd` cannot be started: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut libraries = Libraries::default();
    // With several files, ldd heads each list with `file:`.
    let mut current = extensions
        .first()
        .filter(|_| extensions.len() == 1)
        .cloned();
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            current = line.strip_suffix(':').map(PathBuf::from);
            continue;
        }
        let Some((name, found)) = line.trim().split_once(" => ") else {
            continue;
        };
        if is_glibc(name) || FROM_THE_DESKTOP.contains(&name) {
            continue;
        }
        let module = current.clone().unwrap_or_default();
        let found = found.rsplit_once(" (").map_or(found, |(path, _)| path);
        if found == "not found" {
            return Err(stdlib_error(format!(
                "its extension module `{}` needs `{name}`, which this machine does not have: \
                 install it, or use a build interpreter without that module",
                module.display()
            )));
        }
        let path = fs::canonicalize(found).map_err(io("find", Path::new(found)))?;
        libraries.paths.insert(name.to_owned(), path);
        libraries.linking.insert(module);
    }
    Ok(libraries)
}

/// Xlib and what it loads (as Debian builds it), which tkinter takes from
/// the user's desktop like every X11 program: pyferry's own `_tkinter`
/// carries Tcl/Tk inside and needs `libX11.so.6` alone. A copy from the
/// build machine would need its newer glibc.
const FROM_THE_DESKTOP: &[&str] = &[
    "libX11.so.6",
    "libxcb.so.1",
    "libXau.so.6",
    "libXdmcp.so.6",
    "libbsd.so.0",
    "libmd.so.0",
];

/// Libraries of glibc itself, which every target machine has (and which
/// must match its kernel interface, so they never travel).
fn is_glibc(name: &str) -> bool {
    const GLIBC: &[&str] = &[
        "ld-linux",
        "libc.so",
        "libm.so",
        "libmvec.so",
        "libpthread.so",
        "libdl.so",
        "librt.so",
        "libutil.so",
        "libresolv.so",
        "libanl.so",
        "libnsl.so.1",
        "libBrokenLocale.so",
        "libnss_",
        "libthread_db.so",
        "libc_malloc_debug.so",
    ];
    GLIBC.iter().any(|prefix| name.starts_with(prefix))
}

/// Rewrites the search path of the shared object at `path`; `required`
/// makes an object without one an error.
fn set_search_path(path: &Path, search_path: &str, required: bool) -> Result<()> {
    let mut image = fs::read(path).map_err(io("read", path))?;
    let fail = |why: String| {
        stdlib_error(format!(
            "`{}` cannot be pointed at its bundled libraries: {why}",
            path.display()
        ))
    };
    let parsed = elf::Image::parse(&image).map_err(|e| fail(e.to_string()))?;
    let rewritten = parsed
        .rewrite_search_path(&mut image, search_path)
        .map_err(|e| fail(e.to_string()))?;
    if !rewritten && required {
        return Err(fail(
            "it has no RUNPATH to rewrite (build the interpreter with an rpath, as pyenv does)"
                .to_owned(),
        ));
    }
    if rewritten {
        fs::write(path, &image).map_err(io("write", path))?;
    }
    Ok(())
}
