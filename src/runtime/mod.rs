//! The runtime: what a packed executable does when it runs.
//!
//! `payload` finds the archive and its manifest at the end of the file (one
//! `pread`); `invocation` decides from what was executed (`python_link`: a
//! python name of the app's own) and the first argument alone whether this
//! is the app, `--extract-only`, or python itself; `cache` picks a safe
//! per-user root and, on a first run only, has `extract` write the native
//! units under a lock into a temporary sibling that one `rename` publishes
//! (`stdlib` shares a standalone app's standard library between apps);
//! `interpreter` starts the embedded CPython with `sys.path` = [extraction
//! dir, the executable itself (zipimport), the standard library] and runs
//! the bootstrap (`format::BOOTSTRAP_SOURCE`), which starts the entry
//! point. `unattended` covers the double-clicked case: a log and a notice
//! when nobody reads stderr.
//!
//! The runtime never parses the app's arguments: it looks only at whether
//! the first one is reserved (`--extract-only`) and hands all of them, as
//! raw bytes, to `sys.argv`. It never uses the builder.

pub mod cache;
#[cfg(pyferry_flavor = "standalone")]
mod certificates;
pub mod disk_use;
pub mod extract;
#[expect(
    unsafe_code,
    reason = "CPython's C API is only reachable through FFI; this is the one module that uses it"
)]
pub mod interpreter;
pub mod invocation;
mod lazy;
pub mod payload;
pub mod python_link;
#[cfg(pyferry_flavor = "standalone")]
pub mod stdlib;
pub mod unattended;
mod verify;
pub mod zipimport;

use crate::build_python::PYTHON_VERSION;
use crate::debug::Phases;
use crate::error::{Error, Result};
use crate::format::manifest::{Manifest, QtPlatforms};
use crate::format::{Damage, Flavor};
use interpreter::{Argument, BootstrapCall, Interpreter, Launch, Mode, Started};
use invocation::{Invocation, LINEAGE_VARIABLE, Lineage, MAX_APP_DEPTH};
use payload::Payload;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Runs the app (or python, or `--extract-only`, as `invocation` says:
/// `invocation::classify`) and returns its exit status.
pub fn run(
    payload: Payload,
    argv: Vec<OsString>,
    invocation: Invocation,
    mut phases: Phases,
) -> Result<i32> {
    let manifest = &payload.manifest;
    if let Some(reason) = runtime_mismatch(manifest) {
        return Err(Error::PayloadCorrupt {
            exe: payload.path.clone(),
            reason,
        });
    }
    let app_key = &manifest.hash[..16];
    let lineage = Lineage::read(std::env::var_os(LINEAGE_VARIABLE).as_deref(), app_key);
    let args = argv.get(1..).unwrap_or_default();
    if invocation == Invocation::ExtractOnly {
        let version = match argv.get(2..).unwrap_or_default() {
            [] => cache::ensure_extracted(&payload)?,
            [flag, target] if flag == "--target" => {
                let version = cache::extract_for_system(Path::new(target), &payload)?;
                // The app's python for every user, as the cache's links
                // would be (`python_link`).
                if let Some(root) = version.dir.parent() {
                    python_link::ensure_links(root, &payload.path, 0o755)
                        .map_err(crate::error::io("make the python links in", root))?;
                }
                version
            }
            _ => {
                return Err(Error::Usage {
                    usage: format!("{} --extract-only [--target DIR]", manifest.name),
                });
            }
        };
        crate::console::print(&format!("{}\n", version.dir.display()));
        return Ok(0);
    }
    // `PYFERRY_CACHE=info|clean APP`: what the app keeps on disk, shown or
    // removed, instead of running it.
    if invocation == Invocation::App
        && let Some(request) =
            std::env::var_os(disk_use::REQUEST_VARIABLE).filter(|value| !value.is_empty())
    {
        return disk_use::serve(&payload, &request);
    }
    // On an older glibc than a native file of the app needs, the dynamic
    // linker would refuse it at its first import: say so before anything
    // runs. (Extraction alone does not load them.)
    if let Some(floor) = &manifest.glibc
        && let (Some(needed), Some(found)) = (floor.parsed(), interpreter::glibc_version())
        && found < needed
    {
        return Err(Error::OlderGlibc {
            app: manifest.name.clone(),
            needed: floor.version.clone(),
            needed_by: floor.needed_by.clone(),
            found: format!("{}.{}", found.0, found.1),
        });
    }
    let (python_executable, venv_python) = match &invocation {
        Invocation::Python { executable, venv } => (executable.clone(), *venv),
        _ => (None, false),
    };
    // The app's python uses the app's cache, whatever environment its
    // starter gave it (a hook run from an empty one).
    if let Some(root) = python_executable
        .as_deref()
        .and_then(python_link::root_of_link)
    {
        cache::prefer_root(root);
    }
    if python_executable.is_none() && invocation != Invocation::App {
        // Asked for by `PYFERRY_INTERPRETER=1`: for this process only. Its
        // children are python through `sys.executable`, and the app's own
        // name runs the app for them.
        interpreter::set_environment(invocation::INTERPRETER_VARIABLE, None);
    }

    // Every app run tells its descendants how deep it runs: an app that
    // keeps starting itself is stopped.
    let mut environment: Vec<(&str, String)> = Vec::new();
    if invocation == Invocation::App {
        let pid = std::process::id();
        let depth = lineage.app_depth(pid);
        if depth > MAX_APP_DEPTH {
            return Err(Error::SelfStartLoop {
                app: manifest.name.clone(),
                depth: MAX_APP_DEPTH,
            });
        }
        environment.push((LINEAGE_VARIABLE, Lineage::record(app_key, depth, pid)));
    }

    // Lives (and holds its shared lock) until the process exits: a version
    // in use is never pruned. An app run whose manifest allows it extracts
    // on a first run only when the app first needs its files (`lazy`).
    let deferred = invocation == Invocation::App
        && manifest.extract_on_import.is_some()
        && stdio_codec_is_pure_python();
    let (version, pending) = match manifest.extracted.is_empty() {
        true => (None, None),
        false if deferred => match cache::look_up(&payload)? {
            cache::Lookup::Ready(version) => (Some(version), None),
            cache::Lookup::Pending(root) => {
                let dir = root.join(manifest.cache_key());
                lazy::defer(&payload, root)?;
                (None, Some(dir))
            }
        },
        false => (Some(cache::ensure_extracted(&payload)?), None),
    };
    if let Some(version) = &version {
        phases.done("cache");
        if payload
            .manifest
            .extracted
            .iter()
            .any(|unit| unit == crate::format::FALLBACK_LIBRARIES)
        {
            interpreter::load_fallback_libraries(
                &version.dir.join(crate::format::FALLBACK_LIBRARIES),
            );
        }
    }
    let extraction_dir = version.as_ref().map(|v| v.dir.as_path());
    let mut python = python_location(&payload, extraction_dir.or(pending.as_deref()))?;
    let executable = match python_executable {
        Some(invoked) => invoked,
        None => own_python(&payload, version.as_ref(), pending.as_deref()),
    };
    phases.done("python link");
    let python_mode = invocation != Invocation::App;
    let python_option = |letter| invocation::has_python_option(args, letter);
    // A venv's python sees the standard library and the venv's own
    // site-packages, as a stock venv does: the app's own entries come after
    // them, and only if the venv includes the system's site-packages.
    let app_paths: Vec<PathBuf> = match venv_python {
        true => {
            let is_app_entry =
                |path: &PathBuf| *path == payload.path || Some(path.as_path()) == extraction_dir;
            let (app_paths, rest) = std::mem::take(&mut python.search_paths)
                .into_iter()
                .partition(is_app_entry);
            python.search_paths = rest;
            app_paths
        }
        false => Vec::new(),
    };
    if python_mode && !python_option('E') && !python_option('I') {
        // As in python: PYTHONPATH's directories come before the rest.
        if let Some(extra) = std::env::var_os("PYTHONPATH") {
            let extra: Vec<PathBuf> = std::env::split_paths(&extra)
                .filter(|path| !path.as_os_str().is_empty())
                .collect();
            python.search_paths.splice(0..0, extra);
        }
    }

    // Nobody reads stderr (double-clicked): an uncaught exception also
    // goes to the app's log, and a notice says where.
    let log = unattended::stderr_is_unattended()
        .then(|| unattended::prepare_log(&manifest.name))
        .flatten();
    if let Some(log) = &log {
        unattended::notify_at_exit_if_logged(&manifest.name, log);
    }
    // The app runs the bootstrap's `main`; python mode gets what python has
    // before its command line runs (the builtins of `site` unless `-S`),
    // from the bootstrap's `python`.
    let call = match python_mode {
        true => BootstrapCall {
            function: c"python",
            arguments: vec![
                Argument::Path(python.stdlib_dir.clone()),
                optional_path(python.archived_stdlib.as_deref()),
                Argument::Bool(!python_option('S')),
                Argument::Bool(venv_python),
                Argument::Path(payload.path.clone()),
                Argument::List(app_paths.into_iter().map(Argument::Path).collect()),
            ],
        },
        false => bootstrap_call(&payload, &python, log.as_deref(), pending.as_deref()),
    };
    if let Some(bundle) = python.certificate_bundle {
        environment.push(("SSL_CERT_FILE", bundle.to_owned()));
    }
    #[cfg(pyferry_flavor = "standalone")]
    environment.extend(stdlib::tcl_tk_environment(&python.home));
    // zipimport's table of the archive, read here (see `zipimport`).
    let archive_table = payload
        .path
        .to_str()
        .and_then(|archive| zipimport::Table::read(&payload, archive));
    // Before any code of the archive runs (a first run that extracts
    // nothing verifies nothing): no entry beyond those the hash covers.
    let held = archive_table
        .as_ref()
        .map(|table| table.rows().len() as u64);
    verify::check_entry_count(&payload, held).map_err(|reason| Error::PayloadCorrupt {
        exe: payload.path.clone(),
        reason,
    })?;
    let archive_table = archive_table.and_then(interpreter::keep_table);
    phases.done("archive directory");
    let _ = DAMAGED_COPY.set((manifest.name.clone(), payload.path.clone()));
    interpreter::on_damaged_entry(report_damaged_entry);
    let started = Interpreter::start(Launch {
        argv: &argv,
        // The app's python (`python_link`), or the python name it was
        // started through; a venv's python is that venv's `bin/python`:
        // `site` finds the venv's `pyvenv.cfg` beside it.
        executable: &executable,
        home: &python.home,
        // A venv's python has the venv as its prefix (`site`).
        prefix: python.prefix.as_deref().filter(|_| !venv_python),
        search_paths: &python.search_paths,
        mode: match python_mode {
            true => Mode::CommandLine { prelude: call },
            false => Mode::Bootstrap(call),
        },
        environment: &environment,
        archive: &payload.path,
        archive_file: &payload.file,
        archive_table,
    })?;
    let interpreter = match started {
        Started::Ready(interpreter) => interpreter,
        Started::Exited(status) => return Ok(status),
    };
    phases.done("interpreter init");
    let status = interpreter.run_main();
    phases.done("app");
    Ok(status)
}

/// The top-level directories that pip installs a wheel's `data` scheme
/// into, beside the app's packages (`pip install --target`): what a venv
/// has under its prefix, which code finds through `sys.prefix`; and `bin`,
/// where pack puts the native programs of the wheels' `scripts` (ruff's,
/// uv's), which their packages look for first at
/// `sysconfig.get_path("scripts")`, `sys.prefix/bin`.
const DATA_UNITS: &[&str] = &["share", "etc", "bin"];

/// Where the app's Python is: `sys.prefix`, the standard library, and the
/// complete `sys.path`.
struct PythonLocation {
    home: PathBuf,
    /// `sys.prefix`, when the app carries files of the wheels' `data` or
    /// `scripts` scheme (`DATA_UNITS`): the app's directory in the cache, where they
    /// are, as they are under a venv's prefix (`share/jupyter/...`, which
    /// jupyter and its exporters look for under `sys.prefix`). `home` is
    /// then `sys.base_prefix`, as a venv's base python's is.
    prefix: Option<PathBuf>,
    stdlib_dir: PathBuf,
    /// Where the archive holds the standard library's compiled modules
    /// (standalone), whose sources are in `stdlib_dir`.
    archived_stdlib: Option<PathBuf>,
    search_paths: Vec<PathBuf>,
    /// `SSL_CERT_FILE` for the bundled OpenSSL (standalone only).
    certificate_bundle: Option<&'static str>,
}

/// `extracted`: the app version's directory, if the app has native units.
fn python_location(payload: &Payload, extracted: Option<&Path>) -> Result<PythonLocation> {
    let mut search_paths = Vec::with_capacity(5);
    let carries_data = payload
        .manifest
        .extracted
        .iter()
        .any(|unit| DATA_UNITS.contains(&unit.as_str()));
    let prefix = extracted.filter(|_| carries_data).map(Path::to_path_buf);
    if let Some(dir) = extracted {
        // The app's own native units, if it has any besides the standard
        // library (each entry costs a lookup on every import).
        let stdlib_unit = crate::format::stdlib_unit::UNIT;
        if payload
            .manifest
            .extracted
            .iter()
            .any(|unit| unit != stdlib_unit)
        {
            search_paths.push(dir.to_owned());
        }
    }
    // zipimport reads the archive straight from the executable.
    search_paths.push(payload.path.clone());
    #[cfg(pyferry_flavor = "standalone")]
    {
        // A standalone archive carries its standard library as a native
        // unit (`runtime_mismatch`), so it was extracted.
        let dir = extracted.ok_or_else(|| Error::PayloadCorrupt {
            exe: payload.path.clone(),
            reason: Damage::NoStandardLibrary,
        })?;
        search_paths.extend(stdlib::search_paths(&payload.path, dir));
        let home = stdlib::home(dir);
        Ok(PythonLocation {
            prefix,
            stdlib_dir: home.join(crate::format::stdlib_unit::stdlib_dir()),
            archived_stdlib: Some(stdlib::archived(&payload.path)),
            home,
            search_paths,
            certificate_bundle: certificates::bundle_to_use(),
        })
    }
    #[cfg(pyferry_flavor = "system")]
    {
        use crate::build_python::{PYTHON_HOME, STDLIB_DIR, STDLIB_PATHS};
        search_paths.extend(STDLIB_PATHS.iter().map(PathBuf::from));
        Ok(PythonLocation {
            prefix,
            home: PathBuf::from(PYTHON_HOME),
            stdlib_dir: PathBuf::from(STDLIB_DIR),
            archived_stdlib: None,
            search_paths,
            certificate_bundle: None,
        })
    }
}

/// `sys.executable`: the app's python link (`python_link`) in the cache
/// root this run uses (the version's, or the one a deferred first run will
/// extract into), or in the first usable one when the app extracts
/// nothing; a system package's own when it made one. With no root to make
/// it in, the executable itself, which runs the app.
fn own_python(
    payload: &Payload,
    version: Option<&cache::Version>,
    pending: Option<&Path>,
) -> PathBuf {
    let exe = &payload.path;
    let used_root = version
        .map(|version| version.dir.as_path())
        .or(pending)
        .and_then(Path::parent);
    if let Some(link) = used_root.and_then(|root| python_link::existing_link(root, exe)) {
        return link;
    }
    let made = used_root
        .map(|root| python_link::ensure_links(root, exe, 0o700))
        .filter(Result::is_ok)
        .or_else(|| {
            let root = cache::root().ok()?;
            Some(python_link::ensure_links(&root, exe, 0o700))
        });
    match made {
        Some(Ok(link)) => link,
        Some(Err(e)) => {
            crate::debug::note(format_args!("no python link for sys.executable: {e}"));
            exe.clone()
        }
        None => {
            crate::debug::note(format_args!(
                "no cache root for the python link of sys.executable"
            ));
            exe.clone()
        }
    }
}

/// The app's name and executable, for `report_damaged_entry`.
static DAMAGED_COPY: std::sync::OnceLock<(String, PathBuf)> = std::sync::OnceLock::new();

/// An entry of the app's archive that the interpreter could not read (a
/// damaged copy), said as every error of the runtime is said, and logged
/// where no terminal shows it.
fn report_damaged_entry(name: &str, why: &str) {
    let Some((app, exe)) = DAMAGED_COPY.get() else {
        return;
    };
    let error = Error::PayloadCorrupt {
        exe: exe.clone(),
        reason: Damage::Entry {
            name: name.to_owned(),
            why: why.to_owned(),
        },
    };
    let text = error.render(app);
    eprint!("{text}");
    unattended::report_error(app, &text);
}

/// Why this runtime cannot run the archive of `manifest`, if it cannot.
fn runtime_mismatch(manifest: &Manifest) -> Option<Damage> {
    if manifest.python != PYTHON_VERSION {
        return Some(Damage::OtherPython {
            archive: manifest.python.clone(),
            runtime: PYTHON_VERSION.to_owned(),
        });
    }
    if manifest.flavor != Flavor::CURRENT {
        return Some(Damage::OtherFlavor {
            archive: manifest.flavor,
            runtime: Flavor::CURRENT,
        });
    }
    let has_stdlib = manifest
        .extracted
        .iter()
        .any(|unit| unit == crate::format::stdlib_unit::UNIT);
    (Flavor::CURRENT == Flavor::Standalone && !has_stdlib).then_some(Damage::NoStandardLibrary)
}

/// The app's call of the bootstrap's `main`.
fn bootstrap_call(
    payload: &Payload,
    python: &PythonLocation,
    log: Option<&Path>,
    pending: Option<&Path>,
) -> BootstrapCall {
    let manifest = &payload.manifest;
    let text = |text: &str| Argument::Text(text.to_owned());
    let function = manifest
        .entry
        .function
        .as_deref()
        .map_or(Argument::None, text);
    // `(dir, (module, ...), metadata)`: what extracts the version on a
    // first run that deferred it.
    let deferred = match (pending, &manifest.extract_on_import) {
        (Some(dir), Some(lazy)) => Argument::Tuple(vec![
            Argument::Path(dir.to_owned()),
            Argument::Tuple(lazy.modules.iter().map(|module| text(module)).collect()),
            Argument::Bool(lazy.metadata),
        ]),
        _ => Argument::None,
    };
    BootstrapCall {
        function: c"main",
        arguments: vec![
            text(&manifest.name),
            text(&manifest.entry.module),
            function,
            optional_path(log),
            Argument::Path(python.stdlib_dir.clone()),
            optional_path(python.archived_stdlib.as_deref()),
            qt_platforms(&manifest.qt_platforms),
            deferred,
            Argument::Path(payload.path.clone()),
        ],
    }
}

/// Whether CPython's start can encode stdio without an extension module:
/// the codecs of CJK encodings (`PYTHONIOENCODING=gbk`, an EUC-JP locale)
/// are extension modules, which a deferred extraction has not written yet
/// when CPython opens stdio.
fn stdio_codec_is_pure_python() -> bool {
    if std::env::var_os("PYTHONIOENCODING").is_some_and(|value| !value.is_empty()) {
        return false;
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    // `ll_CC.codeset@modifier`: C, POSIX and UTF-8 locales, and the
    // single-byte codesets (`encodings.iso8859_15`...) are Python.
    let codeset = locale
        .split_once('.')
        .map_or("", |(_, rest)| rest.split('@').next().unwrap_or(""));
    let multibyte = [
        "euc", "gb", "big5", "sjis", "shift", "jis", "cp9", "johab", "hz", "uhc",
    ];
    codeset.is_empty()
        || codeset.contains("utf")
        || !multibyte.iter().any(|prefix| codeset.starts_with(prefix))
}

/// A path, or `None`.
fn optional_path(path: Option<&Path>) -> Argument {
    path.map_or(Argument::None, |path| Argument::Path(path.to_owned()))
}

/// `[(("PySide6.QtGui", ...), {"xcb": ("libxcb-icccm.so.4", ...), ...})]`
fn qt_platforms(bindings: &[QtPlatforms]) -> Argument {
    let texts = |items: &[String]| {
        Argument::Tuple(
            items
                .iter()
                .map(|item| Argument::Text(item.clone()))
                .collect(),
        )
    };
    Argument::List(
        bindings
            .iter()
            .map(|binding| {
                let plugins = binding.plugins.iter().map(|(platform, libraries)| {
                    (Argument::Text(platform.clone()), texts(libraries))
                });
                Argument::Tuple(vec![
                    texts(&binding.modules),
                    Argument::Dict(plugins.collect()),
                ])
            })
            .collect(),
    )
}
