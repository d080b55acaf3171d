//! Running a packed app: reserved arguments, the cache, the interpreter.
//!
//! The runtime never parses the app's arguments: it looks only at whether
//! the first one is reserved (`--extract-only`) and hands all of them, as raw
//! bytes, to `sys.argv`.

use crate::build_python::{FLAVOR, PYTHON_HOME, PYTHON_VERSION, STDLIB_DIR, STDLIB_PATHS};
use crate::cache;
use crate::debug::Phases;
use crate::desktop;
use crate::error::{Error, Result};
use crate::ffi::{self, Launch, Mode};
use crate::invocation::{self, INTERPRETER_VARIABLE, Invocation};
use crate::manifest::Manifest;
use crate::payload::Payload;
use crate::standalone;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Runs the app and returns its exit status.
pub fn run(payload: Payload, argv: Vec<OsString>, mut phases: Phases) -> Result<i32> {
    let manifest = &payload.manifest;
    if let Some(reason) = runtime_mismatch(manifest) {
        return Err(Error::PayloadCorrupt {
            exe: payload.path.clone(),
            reason,
        });
    }
    let interpreter_mode = std::env::var_os(INTERPRETER_VARIABLE).is_some_and(|v| v == "1");
    let invocation = invocation::classify(argv.get(1..).unwrap_or_default(), interpreter_mode);
    if invocation == Invocation::ExtractOnly {
        let version = match argv.get(2..).unwrap_or_default() {
            [] => cache::ensure_extracted(&payload)?,
            [flag, target] if flag == "--target" => {
                cache::extract_for_system(Path::new(target), &payload)?
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

    let mut search_paths = Vec::with_capacity(STDLIB_PATHS.len() + 2);
    // Lives (and holds its shared lock) until the process exits: a version
    // in use is never pruned.
    let version = match manifest.native.is_empty() {
        true => None,
        false => Some(cache::ensure_extracted(&payload)?),
    };
    if let Some(version) = &version {
        // The app's own native units, if it has any besides the standard
        // library (each entry costs a lookup on every import).
        if manifest.native.iter().any(|unit| unit != standalone::UNIT) {
            search_paths.push(version.dir.clone());
        }
        phases.done("cache");
    }
    // zipimport reads the archive straight from the executable.
    search_paths.push(payload.path.clone());
    let (home, stdlib_dir) = match (FLAVOR, &version) {
        ("standalone", Some(version)) => {
            search_paths.extend(standalone::search_paths(&version.dir));
            if let Some(bundle) = standalone::certificate_bundle() {
                ffi::set_environment("SSL_CERT_FILE", bundle);
            }
            let home = standalone::home(&version.dir);
            let stdlib_dir = home.join(standalone::stdlib_dir());
            (home, stdlib_dir)
        }
        _ => {
            search_paths.extend(STDLIB_PATHS.iter().map(PathBuf::from));
            (PathBuf::from(PYTHON_HOME), PathBuf::from(STDLIB_DIR))
        }
    };

    // Nobody reads stderr (double-clicked): an uncaught exception also
    // goes to the app's log, and a notice says where.
    let log = desktop::stderr_is_unattended()
        .then(|| desktop::prepare_log(&manifest.name))
        .flatten();
    let log_size = log.as_deref().map(desktop::log_size);
    let command = bootstrap_command(&payload, &stdlib_dir, log.as_deref());
    ffi::initialize(&Launch {
        argv: &argv,
        executable: &payload.path,
        home: &home,
        search_paths: &search_paths,
        mode: match invocation {
            Invocation::Python => Mode::CommandLine,
            _ => Mode::Command(&command),
        },
    })?;
    phases.done("interpreter init");
    let status = ffi::run_main();
    phases.done("app");
    if let (Some(log), Some(before)) = (&log, log_size)
        && status != 0
        && desktop::log_size(log) > before
    {
        desktop::notify(&manifest.name, log);
    }
    Ok(status)
}

/// Why this runtime cannot run the archive of `manifest`, if it cannot.
fn runtime_mismatch(manifest: &Manifest) -> Option<String> {
    if manifest.python != PYTHON_VERSION {
        return Some(format!(
            "its archive was built for Python {}, but its runtime embeds Python {PYTHON_VERSION}",
            manifest.python
        ));
    }
    if manifest.flavor != FLAVOR {
        return Some(format!(
            "its archive was built for a {} runtime, but its runtime is {FLAVOR}",
            manifest.flavor
        ));
    }
    let has_stdlib = manifest.native.iter().any(|unit| unit == standalone::UNIT);
    (FLAVOR == "standalone" && !has_stdlib)
        .then(|| "its archive carries no standard library".to_owned())
}

/// The module, byte-compiled into every archive by `pack`, that starts the
/// app (`src/python/bootstrap.py`).
pub const BOOTSTRAP_MODULE: &str = "_pyferry_boot";

/// The `-c` command: one call into the bootstrap, binding no name in
/// `__main__`.
fn bootstrap_command(payload: &Payload, stdlib_dir: &Path, log: Option<&Path>) -> String {
    let manifest = &payload.manifest;
    let function = manifest
        .entry
        .function
        .as_deref()
        .map_or_else(|| "None".to_owned(), python_string);
    let log = log.map_or_else(
        || "None".to_owned(),
        |path| python_string(&path.to_string_lossy()),
    );
    format!(
        "__import__({}).main({}, {}, {function}, {log}, {})\n",
        python_string(BOOTSTRAP_MODULE),
        python_string(&manifest.name),
        python_string(&manifest.entry.module),
        python_string(&stdlib_dir.to_string_lossy()),
    )
}

/// A Python string literal in pure ASCII (the command is decoded with the
/// locale's encoding, which may not be UTF-8).
pub fn python_string(text: &str) -> String {
    let mut literal = String::from("\"");
    for c in text.chars() {
        match c {
            ' '..='~' if c != '"' && c != '\\' => literal.push(c),
            _ => literal.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_strings_are_ascii_and_escaped() {
        assert_eq!(python_string("a.b"), "\"a.b\"");
        assert_eq!(python_string("q\"\\"), "\"q\\U00000022\\U0000005c\"");
        assert_eq!(python_string("é"), "\"\\U000000e9\"");
    }
}
