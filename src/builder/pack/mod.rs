//! `pyferry pack`: inputs -> staging (pip) -> entry point -> byte-compile ->
//! units to extract -> deterministic zip + hash -> temp file -> rename.
//!
//! Everything is planned in a private work directory before the output is
//! written; the output appears only complete, through one rename.

pub(crate) mod archive;
mod cache;
mod entry;
#[cfg(pyferry_flavor = "standalone")]
mod fallback_libraries;
mod glibc;
#[cfg(pyferry_flavor = "standalone")]
mod imports;
mod inputs;
mod needed;
mod prepared_zip;
mod python;
mod qt_platforms;
#[cfg(pyferry_flavor = "standalone")]
mod stdlib;
mod tree;
mod units;

use crate::build_python::BUILD_PYTHON;
use crate::builder::kit::{KIT_RUNTIME, Kit};
use crate::builder::progress::Progress;
use crate::error::{Error, Result, io};
use crate::format::manifest::{self, Manifest};
use crate::format::units::{Placement, REPORT, UnitReport, extracted_names};
use crate::format::{
    BOOTSTRAP_MODULE, BOOTSTRAP_SOURCE, FALLBACK_LIBRARIES, Flavor, PYFERRY_DIR, archive_path,
    stdlib_unit,
};
use archive::{Entry, StdlibParts};
use needed::NeededLibraries;
use python::{BuildPython, CompileJob};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tree::{SourceFile, Tree};

pub use archive::timestamp_from_epoch;

/// What the user asked `pack` for.
#[derive(Debug)]
pub struct PackOptions {
    pub output: PathBuf,
    pub entry: Option<String>,
    pub console_script: Option<String>,
    pub name: Option<String>,
    pub python: Option<PathBuf>,
    pub requirements: Vec<PathBuf>,
    pub inputs: Vec<String>,
    pub pip_args: Vec<String>,
    pub verbose: bool,
    /// Keep `.py` files next to their pycs (source lines in tracebacks).
    pub keep_sources: bool,
    /// Carry the app's own invalid Python as data instead of refusing it.
    pub keep_invalid_python: bool,
    /// Parts of the standard library to keep that are left out by default
    /// (standalone flavor).
    pub keep_stdlib: Vec<String>,
    /// `--stdlib minimal`: only the standard library the app's code can
    /// reach (`stdlib::cut_to_reach`).
    pub minimal_stdlib: bool,
    /// Where a system package pre-extracts the app (absolute).
    pub system_cache: Option<PathBuf>,
    /// Units to extract, or to import from the archive, whatever pack
    /// would decide (`--extract`, `--no-extract`).
    pub extract: Vec<String>,
    pub no_extract: Vec<String>,
    /// Write pyferry with its kit (`builder::kit`), not an app.
    pub builder_kit: bool,
    /// `--glibc X.Y`: the oldest glibc the app must run on; pip chooses
    /// wheels built for it, and pack refuses a file that needs a newer one.
    pub glibc: Option<(u32, u32)>,
}

/// Packs the app; returns its manifest. With pyferry's `kit`, its own
/// python runs pip and byte-compiles (unless `--python` names another), and
/// its runtime and standard library go into the app.
pub fn pack(options: &PackOptions, kit: Option<&Kit>) -> Result<Manifest> {
    if options.inputs.is_empty() && options.requirements.is_empty() {
        return Err(Error::NothingToPack);
    }
    let name = app_name(options)?;
    check_output(&options.output)?;
    if let Some(dir) = options
        .system_cache
        .as_ref()
        .filter(|dir| !dir.is_absolute())
    {
        return Err(Error::SystemCachePath { dir: dir.clone() });
    }
    let progress = Progress::new(options.verbose);
    let python = match (&options.python, kit) {
        (Some(path), _) => BuildPython::probe(path, &[])?,
        (None, Some(kit)) => {
            let (path, env) = kit.python();
            BuildPython::probe(path, &env)?
        }
        (None, None) => BuildPython::probe(Path::new(BUILD_PYTHON), &[])?,
    };
    let inputs = inputs::classify(&options.inputs, &python)?;
    check_output_is_not_an_input(&options.output, &inputs, &options.requirements)?;
    // Private (0700, whatever the umask), and removed however pack ends.
    let work = tempfile::Builder::new()
        .prefix("pyferry-pack-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(io("create a work directory in", &std::env::temp_dir()))?;
    let timestamp = timestamp_from_epoch(
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|value| value.trim().parse().ok()),
    );

    // What we write on: the bare runtime (`pyferry-runtime`, beside this
    // binary, or the one the kit carries); pyferry's own kit is pyferry.
    let bare_runtime = match kit {
        Some(kit) => kit.runtime()?,
        None => bare_runtime()?,
    };
    let own_binary = match options.builder_kit {
        true => Some(own_binary(kit)?),
        false => None,
    };
    let runtime: &[u8] = own_binary.as_deref().unwrap_or(&bare_runtime);

    // The standalone standard library does not depend on the app: gather
    // it while pip and the byte-compiler work on the app.
    #[cfg(pyferry_flavor = "standalone")]
    let pyferry_id = archive::runtime_id(runtime);
    #[cfg(pyferry_flavor = "standalone")]
    let gathering = stdlib::Gathering {
        python: &python,
        kit: kit.filter(|_| options.python.is_none()),
        pyferry_id: &pyferry_id,
        work_dir: work.path(),
        timestamp,
        progress: &progress,
    };
    #[cfg(pyferry_flavor = "standalone")]
    let (app, stdlib) = std::thread::scope(|scope| {
        let stdlib = scope.spawn(|| stdlib::prepare(&gathering, &kept_parts(options)));
        let app = gather_app(options, &python, &inputs, work.path(), &progress, kit);
        let stdlib = stdlib.join().unwrap_or_else(|_| {
            Err(Error::Pack {
                reason: "gathering the standard library failed".into(),
            })
        });
        (app, stdlib.map(Some))
    });
    #[cfg(pyferry_flavor = "system")]
    let (app, stdlib): (Result<_>, Result<Option<StdlibParts>>) = {
        if !options.keep_stdlib.is_empty() || options.minimal_stdlib {
            return Err(Error::Usage {
                usage: "--keep-stdlib and --stdlib are for the standalone flavor: a \
                        system-flavor app uses the machine's whole standard library"
                    .to_owned(),
            });
        }
        let app = gather_app(options, &python, &inputs, work.path(), &progress, kit);
        (app, Ok(None))
    };
    let GatheredApp {
        entry,
        mut units,
        mut entries,
        imported,
        mut reached,
        qt_platforms,
        glibc: mut glibc_floor,
    } = app?;
    #[cfg(pyferry_flavor = "standalone")]
    let stdlib = match stdlib? {
        Some(gathered) => Some(stdlib_for_the_app(
            options, &gathering, &imported, gathered,
        )?),
        None => None,
    };
    #[cfg(pyferry_flavor = "standalone")]
    let stdlib = match stdlib {
        Some(parts) if options.minimal_stdlib => {
            reached.names.insert(entry.module.clone());
            reached.names.extend(options.keep_stdlib.iter().cloned());
            // The entry point (`-e http.server`) runs as a program.
            reached.programs.insert(entry.module.clone());
            let (cut, left_out) = stdlib::cut_to_reach(&python, &parts, &reached, work.path())?;
            add_report(
                &mut entries,
                crate::format::units::LEFT_OUT,
                &left_out,
                work.path(),
            )?;
            Some(cut)
        }
        other => other,
    };
    #[cfg(pyferry_flavor = "system")]
    let stdlib = {
        let _ = (imported, &mut reached);
        stdlib?
    };
    if stdlib.is_some() {
        units.push(UnitReport {
            name: stdlib_unit::UNIT.to_owned(),
            placement: Placement::Extracted("the standard library".to_owned()),
        });
    }
    let extracted = extracted_names(&units);
    #[cfg(pyferry_flavor = "standalone")]
    let stdlib_modules = match &stdlib {
        Some(parts) => Some(stdlib::extracted_modules(parts)?),
        None => None,
    };
    #[cfg(pyferry_flavor = "system")]
    let stdlib_modules = None;
    let extract_on_import = extract_on_import(&extracted, &entries, stdlib_modules);
    add_report(&mut entries, REPORT, &units, work.path())?;
    if options.builder_kit {
        add_kit_runtime(&mut entries, &bare_runtime, work.path())?;
    }

    if let Some(parts) = &stdlib {
        glibc_floor.raise_by_zip(&parts.extracted)?;
    }
    let glibc = glibc::check(glibc_floor, runtime, options.glibc)?;
    let manifest = Manifest {
        name,
        entry,
        python: python.minor_version(),
        flavor: Flavor::CURRENT,
        extracted,
        system_cache: options
            .system_cache
            .as_ref()
            .map(|dir| dir.to_string_lossy().into_owned()),
        stdlib: stdlib
            .as_ref()
            .map(|parts| archive::zip_content_hash(&parts.extracted))
            .transpose()?,
        qt_platforms,
        extract_on_import,
        glibc,
        // Known once the archive is written.
        native_archive: None,
        builder: options.builder_kit,
        hash: String::new(),
        pyferry: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let phase = progress.counted("writing the executable", entries.len());
    let manifest = archive::write_executable(
        runtime,
        &entries,
        manifest,
        stdlib.as_ref(),
        &options.output,
        &archive::Writing {
            timestamp,
            work_dir: work.path(),
            phase: &phase,
            progress: &progress,
        },
    )?;
    Ok(manifest)
}

/// `Manifest::extract_on_import`: the top-level modules whose import
/// extracts the `extracted` units (of `entries`) on a first run, or `None`
/// when a unit is not reached through an import (a directory of native
/// programs, Tcl/Tk's scripts: `stdlib` is `Some(None)`), and so is
/// extracted before the app starts.
fn extract_on_import(
    extracted: &[String],
    entries: &BTreeMap<String, Entry>,
    stdlib: Option<Option<std::collections::BTreeSet<String>>>,
) -> Option<manifest::ExtractOnImport> {
    let is_module_file = |name: &str| {
        [".py", ".pyc", ".so"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
    };
    let mut modules = std::collections::BTreeSet::new();
    let mut metadata = false;
    for unit in extracted {
        if unit == stdlib_unit::UNIT {
            modules.extend(stdlib.clone().flatten()?);
            continue;
        }
        if unit == FALLBACK_LIBRARIES || unit == "__pycache__" {
            continue;
        }
        if unit.ends_with(".dist-info") {
            metadata = true;
            continue;
        }
        let is_package = entries
            .keys()
            .any(|name| name.starts_with(&format!("{unit}/")) && is_module_file(name));
        let module = match entries.contains_key(unit) {
            true => unit.split('.').next().filter(|_| is_module_file(unit)),
            false => Some(unit.as_str()).filter(|_| is_package),
        }?;
        // Not always an identifier: mypyc's shared modules are named
        // `85cae5375ceb5d1ca6c6__mypyc`, and imported by that name.
        if !manifest::is_module_name(module) {
            return None;
        }
        modules.insert(module.to_owned());
    }
    Some(manifest::ExtractOnImport {
        modules: modules.into_iter().collect(),
        metadata,
    })
}

/// The parts left out by default that `--keep-stdlib` keeps. With
/// `--stdlib minimal`, it may also name any other module to keep (one that
/// no line names), which the cut takes instead.
#[cfg(pyferry_flavor = "standalone")]
fn kept_parts(options: &PackOptions) -> Vec<String> {
    options
        .keep_stdlib
        .iter()
        .filter(|name| {
            !options.minimal_stdlib || stdlib::EXCLUDED_BY_DEFAULT.contains(&name.as_str())
        })
        .cloned()
        .collect()
}

/// The standard library unit for an app that uses `imported` of the parts
/// left out by default: tkinter travels when the app imports it (the GUI
/// apps people double-click), CPython's headers when it compiles C at run
/// time (1.4 MB, 0.2 MB compressed), and ensurepip, with the pip and
/// setuptools wheels it installs, when the app makes environments with
/// `venv` (pypa's `build`, pipx), gathered again with them; for the
/// others, a note says how to keep them. pyferry's kit carries no tkinter
/// and no ensurepip: it cannot pack an app that imports tkinter, and packs
/// one that uses venv without ensurepip, with that note.
#[cfg(pyferry_flavor = "standalone")]
fn stdlib_for_the_app(
    options: &PackOptions,
    gathering: &stdlib::Gathering,
    imported: &std::collections::BTreeSet<&'static str>,
    gathered: StdlibParts,
) -> Result<StdlibParts> {
    let left_out = imported
        .iter()
        .filter(|part| !options.keep_stdlib.iter().any(|kept| kept == *part));
    let asked = kept_parts(options);
    let mut keep = asked.clone();
    for part in left_out {
        let travels = match *part {
            "tkinter" | "include" => true,
            "ensurepip" => gathering.kit.is_none(),
            _ => false,
        };
        if travels {
            keep.push((*part).to_owned());
        } else {
            eprintln!(
                "pyferry: note: the app uses `{part}`, which standalone apps leave out; \
                 if it needs it, pack with `--keep-stdlib {part}`{}",
                match gathering.kit {
                    Some(_) => " and `--python PY`, a CPython that has it",
                    None => "",
                }
            );
        }
    }
    if keep.len() == asked.len() {
        return Ok(gathered);
    }
    crate::debug::note(format_args!(
        "the app uses {}: the standard library is gathered with it",
        keep[asked.len()..].join(", ")
    ));
    gathered.remove()?;
    stdlib::prepare(gathering, &keep)
}

/// What `gather_app` found and made.
struct GatheredApp {
    entry: manifest::EntryPoint,
    units: Vec<UnitReport>,
    entries: BTreeMap<String, Entry>,
    /// Parts of the standard library left out by default that it uses
    /// (`stdlib::parts_imported`).
    imported: std::collections::BTreeSet<&'static str>,
    /// What its code reaches of the standard library
    /// (`stdlib::names_reached`), with `--stdlib minimal`.
    #[cfg(pyferry_flavor = "standalone")]
    reached: stdlib::Reach,
    #[cfg(pyferry_flavor = "system")]
    reached: (),
    qt_platforms: Vec<manifest::QtPlatforms>,
    /// The oldest glibc its native files run on.
    glibc: glibc::Floor,
}

/// Installs and byte-compiles the app: its entry point, where its units go,
/// its archive entries, and the parts of the standard library left out by
/// default that it imports (standalone flavor).
fn gather_app(
    options: &PackOptions,
    python: &BuildPython,
    inputs: &inputs::Inputs,
    work_dir: &Path,
    progress: &Progress,
    kit: Option<&Kit>,
) -> Result<GatheredApp> {
    let mut tree = Tree::default();
    for dir in &inputs.plain_dirs {
        tree.add_dir(dir, |_| false)?;
    }
    let script = add_scripts(&mut tree, &inputs.scripts)?;
    if !inputs.pip.is_empty() || !options.requirements.is_empty() {
        let staging = work_dir.join("site");
        inputs::pip_install(
            python,
            &staging,
            inputs,
            &options.requirements,
            &options.pip_args,
            options.glibc,
            progress,
        )?;
        // pip --target puts console-script wrappers in bin/, and the
        // programs that wheels carry as scripts (ruff's, uv's), which their
        // packages look for there, next to the package directory.
        tree.add_dir(&staging, |top| top == "bin")?;
        add_native_programs(&mut tree, &staging.join("bin"))?;
        drop_install_paths(&mut tree, &work_dir.join("records"))?;
    }
    let mut needed = NeededLibraries::default();
    #[cfg(pyferry_flavor = "standalone")]
    {
        let mut copies: Vec<PathBuf> = kit
            .map(Kit::fallback_libraries)
            .transpose()?
            .into_iter()
            .collect();
        copies.extend(fallback_libraries::copies_of(python));
        if options.builder_kit {
            fallback_libraries::add_all(&mut tree, &copies)?;
        } else {
            fallback_libraries::add(&mut tree, &copies, &mut needed)?;
        }
    }
    #[cfg(pyferry_flavor = "system")]
    let _ = kit;
    let qt_platforms = qt_platforms::find(&tree, &mut needed)?;
    let mut glibc = glibc::Floor::default();
    glibc.raise_by_app(&tree, &mut needed)?;
    #[cfg(pyferry_flavor = "standalone")]
    let imported = stdlib::parts_imported(&tree)?;
    #[cfg(pyferry_flavor = "system")]
    let imported = std::collections::BTreeSet::new();
    #[cfg(pyferry_flavor = "standalone")]
    let reached = match options.minimal_stdlib {
        true => stdlib::names_reached(&tree)?,
        false => stdlib::Reach::default(),
    };
    #[cfg(pyferry_flavor = "system")]
    let reached = ();
    let entry = entry::resolve(
        options.entry.as_deref(),
        options.console_script.as_deref(),
        script.as_deref(),
        &tree,
        python,
    )?;
    let overrides = units::Overrides {
        extract: &options.extract,
        archive: &options.no_extract,
    };
    let units = units::place(&tree, &overrides)?;
    let extracted = extracted_names(&units);
    add_bootstrap(&mut tree, work_dir)?;
    // The app's own code (what the user wrote, not what pip installed):
    // its scripts, its directories, its entry point's module.
    let entry_files = archive_path::module_files(&entry.module, "py");
    let app_code = |name: &str, source: &Path| {
        inputs.scripts.iter().any(|script| script == source)
            || inputs.plain_dirs.iter().any(|dir| source.starts_with(dir))
            || entry_files.iter().any(|file| file == name)
    };
    let entries = plan_entries(
        &tree,
        &extracted,
        python,
        &Compiling {
            pyc_dir: &work_dir.join("pyc"),
            keep_sources: options.keep_sources,
            app_code: &app_code,
            keep_invalid: options.keep_invalid_python,
            verbose: options.verbose,
        },
        progress,
    )?;
    Ok(GatheredApp {
        glibc,
        entry,
        units,
        entries,
        imported,
        reached,
        qt_platforms,
    })
}

/// Adds the native programs of pip's `bin/` (not its console-script
/// wrappers, which name the build interpreter and which the entry point
/// replaces, nor scripts that would need that interpreter) as `bin/NAME`.
fn add_native_programs(tree: &mut Tree, bin: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(bin) else {
        return Ok(()); // Nothing installed a script.
    };
    for entry in entries {
        let entry = entry.map_err(io("list", bin))?;
        let path = entry.path();
        let mut magic = [0u8; 4];
        let is_elf = std::fs::File::open(&path)
            .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
            .is_ok()
            && magic == *b"\x7fELF";
        if is_elf {
            let name = format!("bin/{}", entry.file_name().to_string_lossy());
            let file = SourceFile {
                path,
                executable: true,
            };
            tree.files.insert(name, file);
        }
    }
    Ok(())
}

/// Puts single-file scripts at the archive root, each as the module its
/// file name says (`tool.py`: `tool`). Returns the module of the one
/// script, which is the default entry point (run like `python tool.py`).
/// A script whose name is no module name (`my-tool.py`) becomes the
/// archive's `__main__.py`.
fn add_scripts(tree: &mut Tree, scripts: &[PathBuf]) -> Result<Option<String>> {
    let mut modules = Vec::new();
    for script in scripts {
        let stem = script
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let module = match manifest::EntryPoint::parse(&stem) {
            Some(entry) if !stem.contains('.') => entry.module,
            _ if scripts.len() == 1 => "__main__".to_owned(),
            _ => {
                return Err(Error::UnsafeName {
                    name: script.display().to_string(),
                    reason: "its name is not a Python module name, and it is not the only \
                             script to pack (rename it, e.g. `my_tool.py`)"
                        .into(),
                });
            }
        };
        let name = format!("{module}.py");
        let source = SourceFile {
            path: script.clone(),
            executable: false,
        };
        if let Some(first) = tree.files.insert(name.clone(), source) {
            return Err(Error::Conflict {
                name,
                first: first.path,
                second: script.clone(),
            });
        }
        modules.push(module);
    }
    Ok(match modules.as_slice() {
        [module] => Some(module.clone()),
        _ => None,
    })
}

/// Adds `value` as the JSON entry `name` of pyferry's directory (the units
/// report, `format::units::REPORT`; the modules `--stdlib minimal` left
/// out, `LEFT_OUT`), for `inspect`.
fn add_report(
    entries: &mut BTreeMap<String, Entry>,
    name: &str,
    value: &impl serde::Serialize,
    work_dir: &Path,
) -> Result<()> {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    let path = work_dir.join(file_name);
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::Pack {
        reason: format!("cannot write `{name}`: {e}").into(),
    })?;
    std::fs::write(&path, json).map_err(io("write", &path))?;
    entries.insert(format!("{PYFERRY_DIR}/"), Entry::Dir);
    entries.insert(
        name.to_owned(),
        Entry::File(SourceFile {
            path,
            executable: false,
        }),
    );
    Ok(())
}

/// The bare runtime that apps are written on: `pyferry-runtime` beside
/// this binary, of the same build (it has the builder's code left out,
/// 2 MB less in every app); this binary itself where there is none.
fn bare_runtime() -> Result<Vec<u8>> {
    let own = std::env::current_exe().map_err(io("find", Path::new("/proc/self/exe")))?;
    let path = own.with_file_name("pyferry-runtime");
    let runtime = match std::fs::read(&path) {
        Ok(runtime) => runtime,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::debug::note(format_args!(
                "no {}: apps are written on pyferry itself",
                path.display()
            ));
            return std::fs::read(&own).map_err(io("read", &own));
        }
        Err(e) => return Err(io("read", &path)(e)),
    };
    let id = crate::build_python::BUILD_ID.as_bytes();
    if !runtime.windows(id.len()).any(|window| window == id) {
        return Err(Error::Pack {
            reason: format!(
                "`{}` is not the runtime of this pyferry (another build left it there); \
                 build pyferry again (`make`), or remove it to write apps on pyferry itself",
                path.display()
            )
            .into(),
        });
    }
    Ok(runtime)
}

/// pyferry itself, unpacked: what its kit is written on.
fn own_binary(kit: Option<&Kit>) -> Result<Vec<u8>> {
    if kit.is_some() {
        return Err(Error::Usage {
            usage: "--builder-kit: this pyferry carries a kit already; pack the kit with a \
                    pyferry built from source (`make kit`)"
                .to_owned(),
        });
    }
    let own = std::env::current_exe().map_err(io("find", Path::new("/proc/self/exe")))?;
    std::fs::read(&own).map_err(io("read", &own))
}

/// Adds the runtime that apps are written on to pyferry's kit.
fn add_kit_runtime(
    entries: &mut BTreeMap<String, Entry>,
    runtime: &[u8],
    work_dir: &Path,
) -> Result<()> {
    if Flavor::CURRENT != Flavor::Standalone {
        return Err(Error::Usage {
            usage: "--builder-kit is for the standalone flavor, whose apps carry the \
                    standard library"
                .to_owned(),
        });
    }
    let path = work_dir.join("runtime");
    std::fs::write(&path, runtime).map_err(io("write", &path))?;
    let file = SourceFile {
        path,
        executable: false,
    };
    entries.insert(KIT_RUNTIME.to_owned(), Entry::File(file));
    Ok(())
}

/// Adds the bootstrap module (`format::BOOTSTRAP_SOURCE`) to the app, to be
/// byte-compiled with it like any of its modules: compiling it from source
/// at every start cost 0.6 ms.
fn add_bootstrap(tree: &mut Tree, work_dir: &Path) -> Result<()> {
    for reserved in [stdlib_unit::UNIT, PYFERRY_DIR] {
        if let Some(name) = tree
            .files
            .keys()
            .find(|name| archive_path::top_level(name) == reserved)
        {
            return Err(Error::UnsafeName {
                name: name.clone(),
                reason: format!("the name `{reserved}` is reserved for pyferry").into(),
            });
        }
    }
    let module = BOOTSTRAP_MODULE;
    if let Some(name) = tree.files.keys().find(|name| {
        let top = archive_path::top_level(name);
        top == module
            || top
                .strip_prefix(module)
                .is_some_and(|rest| rest.starts_with('.'))
    }) {
        return Err(Error::UnsafeName {
            name: name.clone(),
            reason: format!("the name `{module}` is reserved for pyferry's bootstrap").into(),
        });
    }
    let source = work_dir.join(format!("{module}.py"));
    std::fs::write(&source, BOOTSTRAP_SOURCE).map_err(io("write", &source))?;
    tree.files.insert(
        format!("{module}.py"),
        SourceFile {
            path: source,
            executable: false,
        },
    );
    Ok(())
}

/// pip records where a local project or wheel came from in
/// `direct_url.json` (an absolute path of the build machine), and its hash
/// in `RECORD`: both would make the output depend on where it was packed.
fn drop_install_paths(tree: &mut Tree, records_dir: &Path) -> Result<()> {
    let is_direct_url = |name: &str| {
        name.strip_suffix("/direct_url.json")
            .is_some_and(|dist_info| dist_info.ends_with(".dist-info") && !dist_info.contains('/'))
    };
    let dropped: Vec<String> = tree
        .files
        .keys()
        .filter(|name| is_direct_url(name))
        .cloned()
        .collect();
    for name in &dropped {
        tree.files.remove(name);
        let record_name = name.replace("/direct_url.json", "/RECORD");
        let Some(record) = tree.files.get_mut(&record_name) else {
            continue;
        };
        let text = std::fs::read_to_string(&record.path).map_err(io("read", &record.path))?;
        let kept: String = text
            .lines()
            .filter(|line| !line.split(',').next().is_some_and(is_direct_url))
            .map(|line| format!("{line}\n"))
            .collect();
        let rewritten = records_dir.join(&record_name);
        if let Some(parent) = rewritten.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::write(&rewritten, kept).map_err(io("write", &rewritten))?;
        record.path = rewritten;
    }
    Ok(())
}

/// Whether the executable can be written where `-o` says, before any work:
/// its directory exists and is writable, and it is not a directory itself.
fn check_output(output: &Path) -> Result<()> {
    let fail = |reason: String| Error::OutputUnusable {
        path: output.to_owned(),
        reason: reason.into(),
    };
    if output.is_dir() {
        return Err(fail("it is a directory".to_owned()));
    }
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(fail(format!(
            "its directory `{}` does not exist",
            dir.display()
        )));
    }
    use rustix::fs::Access;
    rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(|e| {
        fail(format!(
            "its directory `{}` is not writable: {e}",
            dir.display()
        ))
    })
}

/// The output must not be one of the files packed (`pack -o h.py h.py`
/// would write over the user's script), nor lie inside a directory that is
/// copied into the archive as it is (the next pack would carry it).
fn check_output_is_not_an_input(
    output: &Path,
    inputs: &inputs::Inputs,
    requirement_files: &[PathBuf],
) -> Result<()> {
    let real = |path: &Path| std::fs::canonicalize(path).ok();
    // The output may not exist yet: its directory does (`check_output`).
    let output_real = real(output).or_else(|| {
        let dir = output.parent().filter(|dir| !dir.as_os_str().is_empty());
        Some(real(dir.unwrap_or(Path::new(".")))?.join(output.file_name()?))
    });
    let Some(output_real) = output_real else {
        return Ok(());
    };
    let files = inputs
        .scripts
        .iter()
        .chain(requirement_files)
        .map(PathBuf::as_path)
        .chain(
            inputs
                .pip
                .iter()
                .map(Path::new)
                .filter(|path| path.is_file()),
        );
    for input in files {
        if real(input).is_some_and(|input| input == output_real) {
            return Err(Error::OutputIsInput {
                output: output.to_owned(),
                input: input.to_owned(),
            });
        }
    }
    for dir in &inputs.plain_dirs {
        if real(dir).is_some_and(|dir| output_real.starts_with(dir)) {
            return Err(Error::OutputIsInput {
                output: output.to_owned(),
                input: dir.clone(),
            });
        }
    }
    Ok(())
}

/// `--name`, else the output's file name.
fn app_name(options: &PackOptions) -> Result<String> {
    let name = match &options.name {
        Some(name) => name.clone(),
        None => options
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if manifest::is_valid_app_name(&name) {
        Ok(name)
    } else {
        Err(Error::BadName { name })
    }
}

/// How `plan_entries` byte-compiles.
struct Compiling<'a> {
    pyc_dir: &'a Path,
    keep_sources: bool,
    /// Which files (archive name, source) are the app's own, whose
    /// invalid Python is an error (unless `keep_invalid`); others' is
    /// shown only when `verbose`.
    app_code: &'a dyn Fn(&str, &Path) -> bool,
    keep_invalid: bool,
    verbose: bool,
}

/// The archive's entries: the app's files, their pycs, and directories.
///
/// Modules imported from the zip get `mod.pyc` beside `mod.py` (where
/// zipimport looks); modules of extracted units, which are
/// imported from disk, get `__pycache__/mod.<tag>.pyc` (where the path
/// finder looks). Sources stay, so tracebacks show their lines.
fn plan_entries(
    tree: &Tree,
    extracted: &[String],
    python: &BuildPython,
    compiling: &Compiling,
    progress: &Progress,
) -> Result<BTreeMap<String, Entry>> {
    let &Compiling {
        pyc_dir,
        keep_sources,
        app_code,
        keep_invalid,
        verbose,
    } = compiling;
    let mut jobs = Vec::new();
    let mut pycs = BTreeMap::new();
    for (name, source) in &tree.files {
        let Some(stem) = name.strip_suffix(".py") else {
            continue;
        };
        let pyc_name = if extracted
            .iter()
            .any(|unit| unit == archive_path::top_level(name))
        {
            python.pycache_name(name)
        } else {
            format!("{stem}.pyc")
        };
        let target = pyc_dir.join(&pyc_name);
        // The bootstrap is the runtime's, as importlib is python's: named
        // like a frozen module, so that tracebacks, warnings, `trace` and
        // coverage tools treat its frames as python treats importlib's.
        let display = match *name == format!("{BOOTSTRAP_MODULE}.py") {
            true => format!("<frozen {BOOTSTRAP_MODULE}>"),
            false => name.clone(),
        };
        jobs.push(CompileJob {
            source: source.path.clone(),
            target: target.clone(),
            display,
        });
        pycs.insert(
            pyc_name,
            SourceFile {
                path: target,
                executable: false,
            },
        );
    }
    let phase = progress.counted("compiling", jobs.len());
    let failures = python.compile(&jobs, &phase)?;
    drop(phase);
    for failure in failures {
        // One line each: templates named `.py` (PySide6 carries some) are
        // common in installed packages, and python's report spans three.
        let mut lines = failure.error.lines().filter(|line| !line.trim().is_empty());
        let at_line = lines
            .next()
            .and_then(|first| first.rsplit_once(", line "))
            .map(|(_, line)| format!(" at line {line}"))
            .unwrap_or_default();
        let reason = lines.next_back().unwrap_or(&failure.error);
        // The app's own: it would fail at every start.
        let own = tree
            .files
            .get(&failure.file)
            .filter(|source| app_code(&failure.file, &source.path));
        match own {
            // The app's own: it would fail at every start.
            Some(source) if !keep_invalid => {
                return Err(Error::InvalidPython {
                    file: source.path.clone(),
                    python: python.minor_version(),
                    reason: format!("{reason}{at_line}"),
                });
            }
            // A template of an installed package (PySide6 carries some):
            // nothing the user can act on.
            None if !verbose => {}
            _ => eprintln!(
                "pyferry: warning: `{}` is not valid Python {} ({reason}{at_line}), kept as \
                 source only",
                failure.file,
                python.minor_version(),
            ),
        }
    }
    // A file that failed to compile has no pyc (the work dir started empty).
    pycs.retain(|_, source| source.path.is_file());

    // Extracted units keep their sources: the path finder needs `.py` files
    // to use `__pycache__`; archived modules can do with the pyc alone.
    let droppable = |name: &str| {
        !keep_sources
            && pycs.contains_key(&format!("{name}c"))
            && !extracted
                .iter()
                .any(|unit| unit == archive_path::top_level(name))
    };
    let mut entries: BTreeMap<String, Entry> = tree
        .files
        .iter()
        .filter(|(name, _)| !droppable(name))
        .map(|(name, source)| (name.clone(), Entry::File(source.clone())))
        .collect();
    for (name, source) in pycs {
        entries.insert(name, Entry::File(source));
    }
    let mut all = Tree::default();
    for (name, entry) in &entries {
        if let Entry::File(source) = entry {
            all.files.insert(name.clone(), source.clone());
        }
    }
    for dir in all.directories() {
        entries.insert(dir, Entry::Dir);
    }
    Ok(entries)
}
