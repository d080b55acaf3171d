//! The builder CLI: what `pyferry` does when it carries no payload.

use super::desktop_entry::desktop_entry;
use super::inspect;
use super::kit::Kit;
use super::pack::{self, PackOptions};
use super::project::{PYPROJECT, Project, ToolTable};
use crate::console;
use crate::error::{Error, Result, io};
use crate::format::manifest::{glibc_version, is_valid_app_name};
use crate::runtime::{cache, disk_use};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Ship a Python application as one executable file.
#[derive(Debug, Parser)]
#[command(name = "pyferry", version = crate::build_python::VERSION_TEXT, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pack an app (directories, wheels, requirements) into one executable.
    #[command(after_help = PACK_EXAMPLES)]
    Pack(Box<PackArgs>),
    /// Show what is inside a packed executable.
    Inspect {
        /// The packed executable.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Look after the extraction cache of packed apps.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Write a freedesktop `.desktop` file for a packed app, so that it
    /// appears in application menus (run it where the app is installed).
    DesktopEntry {
        /// The packed executable.
        path: PathBuf,
        #[command(flatten)]
        options: DesktopOptions,
        /// Where to write it; default: `NAME.desktop` in the current directory.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

const PACK_EXAMPLES: &str = "\
Examples:
  pyferry pack -o hello hello.py            a script (run like `python hello.py`)
  pyferry pack -o tool ./tool               a directory with `__main__.py`
  pyferry pack                              the project here: its `pyproject.toml` gives
                                            the script, and options in [tool.pyferry]
  pyferry pack -o black -c black black      a tool from PyPI, by its console script
  pyferry pack -o app -e app.cli:main ./app numpy -- --find-links ./wheels
                                            a function as the entry point, with pip's options";

#[derive(Debug, Args)]
struct DesktopOptions {
    /// Icon of the menu entry (a file path or an icon theme name).
    #[arg(long)]
    icon: Option<PathBuf>,
    /// Run the app in a terminal window (for command-line apps).
    #[arg(long)]
    terminal: bool,
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the extracted app versions and whether a process uses them.
    List,
    /// Remove every extracted app version that no process uses.
    Prune,
}

#[derive(Debug, Args)]
struct PackArgs {
    /// Where to write the executable; default `dist/NAME`, NAME from
    /// `--name`, `-c`, the project, or the first input (`hello.py`: hello).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Entry point: `pkg.mod` (run as `python -m`) or `pkg.mod:func` (called;
    /// its return value is the exit status).
    #[arg(
        short,
        long,
        value_name = "MODULE[:FUNC]",
        conflicts_with = "console_script"
    )]
    entry: Option<String>,
    /// Entry point: a console script declared by an installed distribution.
    #[arg(short = 'c', long, value_name = "CONSOLE_SCRIPT")]
    console_script: Option<String>,
    /// App name (cache directory and error prefix); default: OUT's file name.
    #[arg(long)]
    name: Option<String>,
    /// Build interpreter for pip and byte-compiling (same CPython version as
    /// the runtime); default: the one pyferry was built against.
    #[arg(long, value_name = "PY")]
    python: Option<PathBuf>,
    /// Install the requirements in FILE (like `pip install -r`).
    #[arg(short, long = "requirement", value_name = "FILE")]
    requirements: Vec<PathBuf>,
    /// Leave the `.py` sources of archived modules out (smaller; tracebacks
    /// then show no source lines).
    #[arg(long)]
    no_sources: bool,
    /// Carry a `.py` file of the app's own (a script, a file of an app
    /// directory, the entry point's module) that is not valid Python for the
    /// embedded version as source only, a data file that cannot be
    /// imported, instead of refusing to pack it.
    #[arg(long)]
    keep_invalid_python: bool,
    /// Keep a part of the standard library that standalone apps leave out by
    /// default: test, idlelib, tkinter, turtledemo, ensurepip, lib2to3,
    /// pydoc_data, nis, include (CPython's C headers) (repeatable).
    #[arg(long, value_name = "PART")]
    keep_stdlib: Vec<String>,
    /// `minimal`: carry only the standard library the app's code can reach
    /// (its imports, and theirs, lazy ones included; `--keep-stdlib NAME`
    /// keeps a module no line names). Smaller, but a module imported by a
    /// computed name is missing at run time: `pyferry inspect` lists what
    /// was left out. Default: `full`.
    #[arg(long, value_name = "WHICH", value_parser = ["full", "minimal"])]
    stdlib: Option<String>,
    /// The oldest glibc the app must run on (`2.17`): pip chooses wheels
    /// built for it or older (binary wheels only), and pack refuses a
    /// native file that needs a newer one. Default: the wheels pip chooses
    /// for this machine; pack says when they need a newer glibc than the
    /// runtime.
    #[arg(long, value_name = "X.Y")]
    glibc: Option<String>,
    /// Where a system package pre-extracts the app at install time (with
    /// `APP --extract-only --target DIR`); used instead of a per-user cache
    /// when it holds this version and only root can have written it.
    #[arg(long, value_name = "DIR")]
    system_cache: Option<PathBuf>,
    /// Extract UNIT (a top-level package, module or directory of the app) to
    /// the cache on first run, though pack would import it from the
    /// archive (repeatable; `pyferry inspect` shows each unit and why).
    #[arg(long, value_name = "UNIT")]
    extract: Vec<String>,
    /// Import UNIT straight from the archive, though pack would extract it
    /// (repeatable; not for native code).
    #[arg(long, value_name = "UNIT")]
    no_extract: Vec<String>,
    /// Also write `NAME.desktop` next to OUT, for application menus.
    #[arg(long)]
    desktop_entry: bool,
    #[command(flatten)]
    desktop: DesktopOptions,
    /// Show pip's full output, and each phase's time.
    #[arg(short, long)]
    verbose: bool,
    /// Write pyferry itself with its kit (pip, the standard library, the
    /// runtime) instead of an app: `make` does, with pip's wheel as input.
    #[arg(long, hide = true)]
    builder_kit: bool,
    /// Directories, wheels or pip requirements.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,
    /// Passed to `pip install` verbatim, e.g. `--no-index --find-links DIR`.
    #[arg(last = true, value_name = "PIP_INSTALL_ARGS")]
    pip_args: Vec<String>,
}

/// pack's options from its command line and, in a project (no inputs in a
/// directory with `pyproject.toml`, or a project directory as the only
/// input), from the project: its one script is the entry point, and
/// `[tool.pyferry]` gives the options the command line does not. Returns
/// the desktop entry's options when one is to be written, and whether the
/// output was chosen by the project.
fn pack_options(args: PackArgs) -> Result<(PackOptions, Option<DesktopOptions>, bool)> {
    let project_dir = match args.inputs.as_slice() {
        [] if args.requirements.is_empty() && Path::new(PYPROJECT).is_file() => {
            Some(PathBuf::from("."))
        }
        [only] if Path::new(only).join(PYPROJECT).is_file() => Some(PathBuf::from(only)),
        _ => None,
    };
    let project = project_dir.as_deref().map(Project::read).transpose()?;
    let no_table = ToolTable::default();
    let table = project.as_ref().map_or(&no_table, |project| &project.table);
    let (entry, console_script) = match (args.entry, args.console_script) {
        (None, None) if table.entry.is_some() || table.console_script.is_some() => {
            (table.entry.clone(), table.console_script.clone())
        }
        (None, None) => {
            let script = project
                .as_ref()
                .map(Project::default_console_script)
                .transpose()?
                .flatten();
            (None, script.map(str::to_owned))
        }
        given => given,
    };
    let name = args.name.or_else(|| table.name.clone());
    let from_project = args.output.is_none();
    let output = match (args.output, &table.output, &project) {
        (Some(output), _, _) => output,
        (None, Some(output), _) => output.clone(),
        // `dist/NAME` in the project, as its other builds go to `dist/`.
        (None, None, Some(project)) => {
            let named = name
                .as_ref()
                .or(console_script.as_ref())
                .or(project.name.as_ref());
            let Some(named) = named else {
                return Err(Error::Usage {
                    usage: "pyferry pack -o OUT: the project names no script to call the app by"
                        .to_owned(),
                });
            };
            project.dir.join("dist").join(named)
        }
        // `dist/NAME` here, NAME from the app's name, its console script
        // or its first input, as a project's.
        (None, None, None) => {
            let named = name
                .clone()
                .or_else(|| console_script.clone())
                .or_else(|| args.inputs.first().and_then(|input| name_of_input(input)));
            let Some(named) = named else {
                return Err(Error::Usage {
                    usage: "pyferry pack -o OUT [INPUT]... (or, in a directory with \
                            `pyproject.toml`: pyferry pack)"
                        .to_owned(),
                });
            };
            Path::new("dist").join(named)
        }
    };
    let mut inputs = args.inputs;
    if inputs.is_empty() && project.is_some() {
        inputs.push(".".to_owned());
    }
    inputs.extend(table.requirements.iter().cloned());
    // A list given on the command line replaces the table's.
    let or_table = |given: Vec<String>, table: &Vec<String>| match given.is_empty() {
        true => table.clone(),
        false => given,
    };
    let options = PackOptions {
        output,
        entry,
        console_script,
        name,
        python: args.python.or_else(|| table.python.clone()),
        requirements: match args.requirements.is_empty() {
            true => table.requirement_files.clone(),
            false => args.requirements,
        },
        inputs,
        pip_args: or_table(args.pip_args, &table.pip_args),
        verbose: args.verbose,
        keep_sources: !(args.no_sources || table.no_sources == Some(true)),
        keep_invalid_python: args.keep_invalid_python || table.keep_invalid_python == Some(true),
        keep_stdlib: or_table(args.keep_stdlib, &table.keep_stdlib),
        minimal_stdlib: match args.stdlib.as_deref().or(table.stdlib.as_deref()) {
            None | Some("full") => false,
            Some("minimal") => true,
            Some(other) => {
                return Err(Error::Usage {
                    usage: format!(
                        "`stdlib = {other:?}` in [tool.pyferry]: it is \"full\" or \"minimal\""
                    ),
                });
            }
        },
        system_cache: args.system_cache.or_else(|| table.system_cache.clone()),
        extract: or_table(args.extract, &table.extract),
        no_extract: or_table(args.no_extract, &table.no_extract),
        builder_kit: args.builder_kit,
        glibc: match args.glibc.as_deref().or(table.glibc.as_deref()) {
            None => None,
            Some(version) => Some(parse_glibc(version)?),
        },
    };
    let desktop =
        (args.desktop_entry || table.desktop_entry == Some(true)).then(|| DesktopOptions {
            icon: args.desktop.icon.or_else(|| table.icon.clone()),
            terminal: args.desktop.terminal || table.terminal == Some(true),
        });
    Ok((options, desktop, from_project))
}

/// The app name an input suggests: a script's or directory's name, a
/// wheel's or requirement's project; none that is no valid app name.
fn name_of_input(input: &str) -> Option<String> {
    let path = Path::new(input);
    let name = if path.is_dir() {
        // `.` and `..` by the names they stand for.
        std::fs::canonicalize(path)
            .ok()?
            .file_name()?
            .to_str()?
            .to_owned()
    } else if path.is_file() {
        let file_name = path.file_name()?.to_str()?;
        match file_name.strip_suffix(".py") {
            Some(stem) => stem.to_owned(),
            // `NAME-VERSION...` for wheels and sdists.
            None => file_name.split('-').next()?.to_owned(),
        }
    } else {
        // A requirement: its project name, before any version or extra.
        input
            .split(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .next()?
            .to_owned()
    };
    is_valid_app_name(&name).then_some(name)
}

/// `--glibc X.Y` (or `glibc = "X.Y"` in [tool.pyferry]).
fn parse_glibc(version: &str) -> Result<(u32, u32)> {
    let parsed = glibc_version(version)
        .filter(|_| version.matches('.').count() == 1)
        .filter(|(major, minor)| *major == 2 && *minor >= 17);
    parsed.ok_or_else(|| Error::Usage {
        usage: format!(
            "pyferry pack --glibc X.Y: `{version}` is not a glibc version pyferry's runtime \
             runs on (2.17 or newer, as `2.28`)"
        ),
    })
}

/// Creates the missing directory of `output`; returns it if it was made.
fn make_parent_dir(output: &Path) -> Result<Option<PathBuf>> {
    match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
            Ok(Some(dir.to_owned()))
        }
        _ => Ok(None),
    }
}

/// Runs the builder; returns the exit status.
pub fn run(argv: Vec<OsString>, kit: Option<Kit>) -> Result<i32> {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return Ok(error.exit_code());
        }
    };
    match cli.command {
        Command::Pack(args) => {
            let (options, desktop, from_project) = pack_options(*args)?;
            // A project's output goes to `dist/` (or where its table says),
            // made if need be, and removed again if pack fails.
            let made = match from_project {
                true => make_parent_dir(&options.output)?,
                false => None,
            };
            let manifest = pack::pack(&options, kit.as_ref()).inspect_err(|_| {
                if let Some(dir) = made {
                    let _ = std::fs::remove_dir(dir);
                }
            })?;
            if let Some(desktop) = desktop {
                let dir = options.output.parent().unwrap_or(Path::new("."));
                let target = dir.join(format!("{}.desktop", manifest.name));
                write_desktop_entry(&manifest.name, &options.output, &desktop, &target)?;
            }
            console::print(&format!(
                "packed `{}`: {} (entry point `{}`, Python {}, hash {})\n",
                options.output.display(),
                manifest.name,
                manifest.entry,
                manifest.python,
                &manifest.hash[..16]
            ));
            Ok(0)
        }
        Command::Cache(command) => run_cache(command),
        Command::DesktopEntry {
            path,
            options,
            output,
        } => {
            let report = inspect::inspect(&path)?;
            let target =
                output.unwrap_or_else(|| PathBuf::from(format!("{}.desktop", report.name)));
            write_desktop_entry(&report.name, &path, &options, &target)?;
            Ok(0)
        }
        Command::Inspect { path, json } => {
            let report = inspect::inspect(&path)?;
            if json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Inspect {
                    path: path.clone(),
                    reason: e.to_string().into(),
                })?;
                console::print(&format!("{text}\n"));
            } else {
                console::print(&report.to_text());
            }
            Ok(0)
        }
    }
}

fn write_desktop_entry(
    name: &str,
    exe: &Path,
    options: &DesktopOptions,
    target: &Path,
) -> Result<()> {
    let exe = std::path::absolute(exe).map_err(io("resolve", exe))?;
    let entry = desktop_entry(name, &exe, options.icon.as_deref(), options.terminal);
    std::fs::write(target, entry).map_err(io("write", target))?;
    console::print(&format!("wrote `{}`\n", target.display()));
    Ok(())
}

fn run_cache(command: CacheCommand) -> Result<i32> {
    let root = cache::root()?;
    let keys = cache::version_keys(&root, None).map_err(io("list", &root))?;
    // Versions whose extraction was killed have debris and no directory.
    let unfinished: Vec<String> = cache::debris_keys(&root)
        .map_err(io("list", &root))?
        .into_iter()
        .filter(|key| !keys.contains(key))
        .collect();
    let mut text = String::new();
    match command {
        CacheCommand::List => {
            text.push_str(&format!("cache: {}\n", root.display()));
            let now = std::time::SystemTime::now();
            for key in &keys {
                let usage = disk_use::VersionUse::measure(&root, key);
                text.push_str(&format!("{}\n", usage.describe(now)));
            }
            for key in &unfinished {
                let state = match cache::is_in_use(&root, key) {
                    true => "being extracted",
                    false => "unfinished (an extraction was killed)",
                };
                text.push_str(&format!("{key}  {state}\n"));
            }
        }
        CacheCommand::Prune => {
            for key in keys.iter().chain(&unfinished) {
                let removed =
                    cache::prune_version(&root, key).map_err(io("prune", &root.join(key)))?;
                let state = if removed { "removed" } else { "kept (in use)" };
                text.push_str(&format!("{key}  {state}\n"));
            }
            for target in crate::runtime::python_link::prune_dangling(&root) {
                text.push_str(&format!(
                    "python link to `{}`  removed (the executable is gone)\n",
                    target.display()
                ));
            }
        }
    }
    console::print(&text);
    Ok(0)
}
