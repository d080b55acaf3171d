//! The one error type, and the one place that shows it to a user.
//!
//! Every variant is a failure a user can meet. Its message says what failed,
//! `Caused by:` lines say why (the `#[source]` chain), and `hint()` says
//! what to do about it.

use crate::format::Damage;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {op} `{}`", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("the executable `{}` has lost its payload: its runtime was packed, but the app's archive is not in the file", exe.display())]
    PayloadMissing { exe: PathBuf },

    #[error("the payload of `{}` is corrupt: {reason}", exe.display())]
    PayloadCorrupt { exe: PathBuf, reason: Damage },

    #[error("cannot show what `{}` holds", path.display())]
    Inspect {
        path: PathBuf,
        #[source]
        reason: Reason,
    },

    #[error("`{}` is not an executable packed by pyferry", path.display())]
    NotPacked { path: PathBuf },

    #[error("cannot use the cache directory `{}`", dir.display())]
    CacheUnsafe {
        dir: PathBuf,
        #[source]
        reason: Reason,
        hint: &'static str,
    },

    #[error("cannot extract the native files of the app to `{}`", dir.display())]
    Extract {
        dir: PathBuf,
        #[source]
        source: Reason,
    },

    #[error("cannot start the embedded Python: {phase} failed")]
    Interpreter {
        phase: &'static str,
        #[source]
        reason: Reason,
    },

    #[error("nothing to pack: no input was given")]
    NothingToPack,

    #[error("no entry point: the app has no `__main__.py` at its root")]
    NoEntryPoint,

    #[error("the entry point module `{module}` is not in the app")]
    EntryModuleMissing { module: String },

    #[error("`{value}` is not a valid entry point")]
    EntryPointSyntax { value: String },

    #[error("the entry point `{entry}` does not exist: its module defines no such function")]
    EntryFunctionMissing { entry: String },

    #[error("cannot write the executable to `{}`", path.display())]
    OutputUnusable {
        path: PathBuf,
        #[source]
        reason: Reason,
    },

    #[error("the output `{}` would overwrite or land inside the input `{}`", output.display(), input.display())]
    OutputIsInput { output: PathBuf, input: PathBuf },

    #[error("no installed distribution declares the console script `{name}`")]
    ConsoleScriptMissing {
        name: String,
        available: Vec<String>,
    },

    #[error("`{}` is not valid Python {python}: {reason}", file.display())]
    InvalidPython {
        file: PathBuf,
        python: String,
        reason: String,
    },

    #[error(
        "the input `{input}` names a file or directory (no pip requirement looks so), but \
         there is no such file or directory"
    )]
    InputNotFound { input: String },

    #[error("the wheel `{}` cannot run on the embedded Python {python}", wheel.display())]
    WheelIncompatible {
        wheel: PathBuf,
        python: String,
        #[source]
        reason: Reason,
    },

    #[error("cannot use `{}` as the build interpreter", python.display())]
    BuildPython {
        python: PathBuf,
        #[source]
        reason: Reason,
    },

    #[error("pip could not install the app's inputs (pip exited with {status})")]
    Pip {
        status: String,
        /// `--glibc X.Y`, which limits pip to wheels for it.
        glibc: Option<String>,
    },

    #[error("cannot pack the app")]
    Pack {
        #[source]
        reason: Reason,
    },

    #[error("cannot byte-compile the app")]
    Compile {
        #[source]
        reason: Reason,
    },

    #[error("the app file `{name}` cannot go into the archive")]
    UnsafeName {
        name: String,
        #[source]
        reason: Reason,
    },

    #[error("`{name}` comes from two inputs: `{}` and `{}`", first.display(), second.display())]
    Conflict {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("the system cache directory `{}` is not an absolute path", dir.display())]
    SystemCachePath { dir: PathBuf },

    #[error("usage: {usage}")]
    Usage { usage: String },

    #[error("cannot pack the project of `{}`", path.display())]
    ProjectConfig {
        path: PathBuf,
        #[source]
        reason: Reason,
    },

    #[error("the app name `{name}` is not usable")]
    BadName { name: String },

    #[error(
        "`{app}` was started by itself {depth} times over, each run starting the next: \
         refusing to start it again"
    )]
    SelfStartLoop { app: String, depth: u32 },

    #[error("`{needed_by}` needs glibc {needed}, newer than `--glibc {asked}` allows")]
    GlibcTooNew {
        needed_by: String,
        needed: String,
        asked: String,
    },

    #[error(
        "`{app}` needs glibc {needed} or newer (`{needed_by}` was built for it), and this \
         system has glibc {found}"
    )]
    OlderGlibc {
        app: String,
        needed: String,
        needed_by: String,
        found: String,
    },
}

/// A plain-text cause, for failures whose reason is ours rather than an
/// `io::Error` (shown as a `Caused by:` line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reason(pub String);

impl From<String> for Reason {
    fn from(text: String) -> Self {
        Reason(text)
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Self {
        Reason(text.to_owned())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `map_err` helper: every I/O error names the operation and the path.
pub fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

impl Error {
    /// What the user can do about it, when we know.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::PayloadMissing { .. } => {
                "an interrupted download or copy cuts the file short, and removing its \
                 `.pyferry` section (`objcopy -R .pyferry`, `strip -R .pyferry`) deletes the \
                 archive; plain `strip` is fine. Ship the file as `pyferry pack` wrote it"
                    .to_owned()
            }
            Error::PayloadCorrupt { .. } => {
                "the file was damaged after packing (disk, download or editing); pack the app \
                 again or fetch a fresh copy"
                    .to_owned()
            }
            Error::CacheUnsafe { hint, .. } => (*hint).to_owned(),
            Error::NothingToPack => {
                "pass a directory, a wheel or a pip requirement, or `-r FILE`, \
                                     e.g. `pyferry pack -o app ./src`, or run `pyferry pack` in \
                                     a project's directory (one with `pyproject.toml`)"
                    .to_owned()
            }
            Error::ProjectConfig { .. } => "pack's options in `[tool.pyferry]` are named like \
                                            its long flags (`pyferry pack --help`); the README \
                                            shows an example"
                .to_owned(),
            Error::NoEntryPoint => "pass `-e MODULE[:FUNC]` or `-c CONSOLE_SCRIPT`, or add a \
                                    directory that holds `__main__.py`"
                .to_owned(),
            Error::EntryModuleMissing { .. } => {
                "check the spelling, and that the package providing it is among the inputs"
                    .to_owned()
            }
            Error::EntryFunctionMissing { .. } => {
                "check the spelling after the `:`, or pass the module alone (`-e MODULE`) to \
                 run it as `python -m` would"
                    .to_owned()
            }
            Error::OutputUnusable { .. } => {
                "pass `-o` a file path in an existing directory that you can write".to_owned()
            }
            Error::OutputIsInput { .. } => {
                "pass `-o` a path outside what is packed: pack never writes over its inputs, \
                 and an executable inside a directory it copies would be packed the next time"
                    .to_owned()
            }
            Error::EntryPointSyntax { .. } => {
                "write it as `package.module` or `package.module:function`".to_owned()
            }
            Error::ConsoleScriptMissing { available, .. } if available.is_empty() => {
                "none of the inputs declares console scripts; use `-e MODULE:FUNC`".to_owned()
            }
            Error::ConsoleScriptMissing { available, .. } => {
                format!("the inputs declare: {}", available.join(", "))
            }
            Error::InvalidPython { python, .. } => format!(
                "fix it for Python {python}, or pack with `--keep-invalid-python` to carry it as \
                 a data file that is never imported"
            ),
            Error::InputNotFound { .. } => {
                "check the path (relative ones start from the current directory); a script ends \
                 in `.py`, a wheel in `.whl`, and a requirement from PyPI is a bare name such as \
                 `requests` or `requests==2.32.3`"
                    .to_owned()
            }
            Error::WheelIncompatible { python, .. } => format!(
                "use a wheel built for CPython {python} on this platform (tag `cp{}`), or its sdist",
                python.replace('.', "")
            ),
            Error::BuildPython { .. } => format!(
                "pass `--python` an interpreter of the same version as the runtime (CPython {})",
                crate::build_python::PYTHON_VERSION
            ),
            Error::Pip { glibc: None, .. } => {
                "pip's own message above says which input failed".to_owned()
            }
            Error::Pip {
                glibc: Some(glibc), ..
            } => format!(
                "pip's own message above says which input failed; with `--glibc {glibc}` it \
                 takes only wheels built for glibc {glibc} or older: a project that publishes \
                 none (\"No matching distribution\") needs an older version of it \
                 (`NAME==VERSION`), or a newer `--glibc`"
            ),
            Error::NotPacked { .. } => "`pyferry pack -o OUT ...` makes one".to_owned(),
            Error::Conflict { .. } => "remove the file from one of the inputs".to_owned(),
            Error::SystemCachePath { .. } => {
                "pass the directory where the installed package keeps the extracted files, \
                 e.g. `--system-cache /usr/lib/APP/pyferry`"
                    .to_owned()
            }
            Error::SelfStartLoop { .. } => {
                "a run of the app starts the app again by its own name (`sys.argv[0]`, \
                 or its path); to run python, start `sys.executable`, the app's python; see \
                 the README's section on `sys.executable`"
                    .to_owned()
            }
            Error::GlibcTooNew { needed_by, .. }
                if needed_by == crate::format::manifest::NEEDED_BY_THE_RUNTIME =>
            {
                "this pyferry's runtime was built against a newer glibc: build pyferry on its \
                 own CPython (`make`, the default), or pack for a newer glibc"
                    .to_owned()
            }
            Error::GlibcTooNew { .. } => {
                "pip chooses wheels built for that glibc or older, where the project publishes \
                 one; a wheel given as a file, or one pip found no older build of, is taken as \
                 it is: pass an older version of it (`NAME==VERSION`), or a newer `--glibc`"
                    .to_owned()
            }
            Error::OlderGlibc { .. } => {
                "run it on a newer system, or ask its publisher for a build packed with \
                 `pyferry pack --glibc` set to this system's version"
                    .to_owned()
            }
            Error::BadName { .. } => {
                "use letters, digits, `.`, `_` and `-` only (`--name`)".to_owned()
            }
            _ => return None,
        })
    }

    /// Renders the error as one paragraph for stderr, with `prog` as prefix
    /// (a packed app uses its own name).
    pub fn render(&self, prog: &str) -> String {
        let mut text = format!("{prog}: error: {self}\n");
        let mut cause = std::error::Error::source(self);
        while let Some(reason) = cause {
            text.push_str(&format!("  Caused by: {reason}\n"));
            cause = reason.source();
        }
        if let Some(hint) = self.hint() {
            text.push_str(&format!("  hint: {hint}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_cause_and_hint() {
        let error = Error::CacheUnsafe {
            dir: PathBuf::from("/home/a/.cache/pyferry"),
            reason: "it is owned by uid 1001, not by you (uid 1000)".into(),
            hint: "set PYFERRY_CACHE_DIR to a directory you own",
        };
        assert_eq!(
            error.render("pyferry"),
            "pyferry: error: cannot use the cache directory `/home/a/.cache/pyferry`\n  \
             Caused by: it is owned by uid 1001, not by you (uid 1000)\n  \
             hint: set PYFERRY_CACHE_DIR to a directory you own\n"
        );
    }
}
