//! `pyferry pack`: inputs -> staging (pip) -> entry point -> byte-compile ->
//! native units -> deterministic zip + hash -> temp file -> rename.
//!
//! Everything is planned in a private work directory before the output is
//! written; the output appears only complete, through one rename.

mod archive;
mod entry;
mod inputs;
mod python;
#[cfg(pyferry_flavor = "standalone")]
mod stdlib;
mod tree;

use crate::build_python::BUILD_PYTHON;
use crate::error::{Error, Result, io};
use crate::format::manifest::{self, Manifest};
use crate::format::{BOOTSTRAP_MODULE, BOOTSTRAP_SOURCE, Flavor, archive_path, stdlib_unit};
use archive::Entry;
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
    /// Parts of the standard library to keep that are left out by default
    /// (standalone flavor).
    pub keep_stdlib: Vec<String>,
    /// Where a system package pre-extracts the app (absolute).
    pub system_cache: Option<PathBuf>,
}

/// Packs the app; returns its manifest.
pub fn pack(options: &PackOptions) -> Result<Manifest> {
    if options.inputs.is_empty() && options.requirements.is_empty() {
        return Err(Error::NothingToPack);
    }
    let name = app_name(options)?;
    if let Some(dir) = options
        .system_cache
        .as_ref()
        .filter(|dir| !dir.is_absolute())
    {
        return Err(Error::SystemCachePath { dir: dir.clone() });
    }
    let mut phases = crate::debug::Phases::start();
    let python = BuildPython::probe(options.python.as_deref().unwrap_or(Path::new(BUILD_PYTHON)))?;
    phases.done("pack: probe");
    let inputs = inputs::classify(&options.inputs, &python)?;
    // Private (0700), and removed however pack ends.
    let work = tempfile::Builder::new()
        .prefix("pyferry-pack-")
        .tempdir()
        .map_err(io("create a work directory in", &std::env::temp_dir()))?;
    let timestamp = timestamp_from_epoch(
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|value| value.trim().parse().ok()),
    );

    // This very binary, unpacked, is the runtime of what we write.
    let runtime_path = std::env::current_exe().map_err(io("find", Path::new("/proc/self/exe")))?;
    let runtime = std::fs::read(&runtime_path).map_err(io("read", &runtime_path))?;

    // The standalone standard library does not depend on the app: gather
    // it while pip and the byte-compiler work on the app.
    #[cfg(pyferry_flavor = "standalone")]
    let pyferry_id = archive::runtime_id(&runtime);
    #[cfg(pyferry_flavor = "standalone")]
    let (app, stdlib) = std::thread::scope(|scope| {
        let stdlib = scope.spawn(|| {
            let keep = &options.keep_stdlib;
            stdlib::prepare(&python, keep, &pyferry_id, work.path(), timestamp)
        });
        let app = gather_app(options, &python, &inputs, work.path(), &mut phases);
        let stdlib = stdlib.join().unwrap_or_else(|_| {
            Err(Error::Pack {
                reason: "gathering the standard library failed".into(),
            })
        });
        (app, stdlib.map(Some))
    });
    #[cfg(pyferry_flavor = "system")]
    let (app, stdlib): (Result<_>, Result<Option<PathBuf>>) = {
        if !options.keep_stdlib.is_empty() {
            return Err(Error::Usage {
                usage: "--keep-stdlib is for the standalone flavor: a system-flavor app uses \
                        the machine's whole standard library"
                    .to_owned(),
            });
        }
        let app = gather_app(options, &python, &inputs, work.path(), &mut phases);
        (app, Ok(None))
    };
    let (entry, mut native, entries) = app?;
    let stdlib = stdlib?;
    if stdlib.is_some() {
        native.push(stdlib_unit::UNIT.to_owned());
        phases.done("pack: standard library");
    }

    let manifest = Manifest {
        name,
        entry,
        python: python.minor_version(),
        flavor: Flavor::CURRENT,
        native,
        system_cache: options
            .system_cache
            .as_ref()
            .map(|dir| dir.to_string_lossy().into_owned()),
        stdlib: stdlib.as_deref().map(archive::file_hash).transpose()?,
        hash: String::new(),
        pyferry: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let manifest = archive::write_executable(
        &runtime,
        &entries,
        manifest,
        stdlib.as_deref(),
        &options.output,
        timestamp,
        work.path(),
    )?;
    phases.done("pack: write");
    Ok(manifest)
}

/// Installs and byte-compiles the app: its entry point, native units and
/// archive entries.
fn gather_app(
    options: &PackOptions,
    python: &BuildPython,
    inputs: &inputs::Inputs,
    work_dir: &Path,
    phases: &mut crate::debug::Phases,
) -> Result<(manifest::EntryPoint, Vec<String>, BTreeMap<String, Entry>)> {
    let mut tree = Tree::default();
    for dir in &inputs.plain_dirs {
        tree.add_dir(dir, |_| false)?;
    }
    if !inputs.pip.is_empty() || !options.requirements.is_empty() {
        let staging = work_dir.join("site");
        inputs::pip_install(
            python,
            &staging,
            inputs,
            &options.requirements,
            &options.pip_args,
            options.verbose,
        )?;
        // pip --target puts console-script wrappers in bin/: not importable.
        tree.add_dir(&staging, |top| top == "bin")?;
        drop_install_paths(&mut tree, &work_dir.join("records"))?;
    }
    phases.done("pack: inputs");
    let entry = entry::resolve(
        options.entry.as_deref(),
        options.console_script.as_deref(),
        &tree,
        python,
    )?;
    let native = tree.native_units();
    add_bootstrap(&mut tree, work_dir)?;
    let entries = plan_entries(
        &tree,
        &native,
        python,
        &work_dir.join("pyc"),
        options.keep_sources,
    )?;
    phases.done("pack: byte-compile");
    Ok((entry, native, entries))
}

/// Adds the bootstrap module (`format::BOOTSTRAP_SOURCE`) to the app, to be
/// byte-compiled with it like any of its modules: compiling it from source
/// at every start cost 0.6 ms.
fn add_bootstrap(tree: &mut Tree, work_dir: &Path) -> Result<()> {
    if let Some(name) = tree
        .files
        .keys()
        .find(|name| archive_path::top_level(name) == stdlib_unit::UNIT)
    {
        return Err(Error::UnsafeName {
            name: name.clone(),
            reason: format!(
                "the name `{}` is reserved for the standard library",
                stdlib_unit::UNIT
            )
            .into(),
        });
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

/// The archive's entries: the app's files, their pycs, and directories.
///
/// Modules imported from the zip get `mod.pyc` beside `mod.py` (where
/// zipimport looks); modules of native units, which are extracted and
/// imported from disk, get `__pycache__/mod.<tag>.pyc` (where the path
/// finder looks). Sources stay, so tracebacks show their lines.
fn plan_entries(
    tree: &Tree,
    native: &[String],
    python: &BuildPython,
    pyc_dir: &Path,
    keep_sources: bool,
) -> Result<BTreeMap<String, Entry>> {
    let mut jobs = Vec::new();
    let mut pycs = BTreeMap::new();
    for (name, source) in &tree.files {
        let Some(stem) = name.strip_suffix(".py") else {
            continue;
        };
        let pyc_name = if native
            .iter()
            .any(|unit| unit == archive_path::top_level(name))
        {
            let (dir, module) = stem.rsplit_once('/').unwrap_or(("", stem));
            let dir = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            format!("{dir}__pycache__/{module}.{}.pyc", python.cache_tag)
        } else {
            format!("{stem}.pyc")
        };
        let target = pyc_dir.join(&pyc_name);
        jobs.push(CompileJob {
            source: source.path.clone(),
            target: target.clone(),
            display: name.clone(),
        });
        pycs.insert(
            pyc_name,
            SourceFile {
                path: target,
                executable: false,
            },
        );
    }
    for failure in python.compile(&jobs)? {
        eprintln!(
            "pyferry: warning: `{}` is not valid Python {}, kept as source only: {}",
            failure.file,
            python.minor_version(),
            failure.error
        );
    }
    // A file that failed to compile has no pyc (the work dir started empty).
    pycs.retain(|_, source| source.path.is_file());

    // Extracted units keep their sources: the path finder needs `.py` files
    // to use `__pycache__`; archived modules can do with the pyc alone.
    let droppable = |name: &str| {
        !keep_sources
            && pycs.contains_key(&format!("{name}c"))
            && !native
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
