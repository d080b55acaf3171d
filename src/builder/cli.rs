//! The builder CLI: what `pyferry` does when it carries no payload.

use super::desktop_entry::desktop_entry;
use super::inspect;
use super::pack::{self, PackOptions};
use crate::console;
use crate::error::{Error, Result, io};
use crate::runtime::cache;
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
    /// Where to write the executable.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
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
    /// Keep a part of the standard library that standalone apps leave out by
    /// default: test, idlelib, tkinter, turtledemo, ensurepip, lib2to3,
    /// pydoc_data, nis (repeatable).
    #[arg(long, value_name = "PART")]
    keep_stdlib: Vec<String>,
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
    /// Show pip's full output.
    #[arg(short, long)]
    verbose: bool,
    /// Directories, wheels or pip requirements.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,
    /// Passed to `pip install` verbatim, e.g. `--no-index --find-links DIR`.
    #[arg(last = true, value_name = "PIP_INSTALL_ARGS")]
    pip_args: Vec<String>,
}

/// Runs the builder; returns the exit status.
pub fn run(argv: Vec<OsString>) -> Result<i32> {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return Ok(error.exit_code());
        }
    };
    match cli.command {
        Command::Pack(args) => {
            let options = PackOptions {
                output: args.output,
                entry: args.entry,
                console_script: args.console_script,
                name: args.name,
                python: args.python,
                requirements: args.requirements,
                inputs: args.inputs,
                pip_args: args.pip_args,
                verbose: args.verbose,
                keep_sources: !args.no_sources,
                keep_stdlib: args.keep_stdlib,
                system_cache: args.system_cache,
                extract: args.extract,
                no_extract: args.no_extract,
            };
            let manifest = pack::pack(&options)?;
            if args.desktop_entry {
                let dir = options.output.parent().unwrap_or(Path::new("."));
                let target = dir.join(format!("{}.desktop", manifest.name));
                write_desktop_entry(&manifest.name, &options.output, &args.desktop, &target)?;
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
            for key in &keys {
                let in_use = cache::is_in_use(&root, key);
                let state = if in_use { "in use" } else { "unused" };
                text.push_str(&format!("{key}  {state}\n"));
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
        }
    }
    console::print(&text);
    Ok(0)
}
