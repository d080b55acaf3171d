//! What the runtime was started for: the app itself, `--extract-only`, or
//! python itself. Decided by what was executed (`python_link`: a python
//! name that is this executable, such as the app's `sys.executable`) or by
//! the reserved `PYFERRY_INTERPRETER=1`, never by sniffing the app's
//! arguments: run under its own name, however deeply nested, the app gets
//! every argument, `-c` and `script.py` included; only a first argument of
//! `--extract-only` is reserved.
//!
//! App runs started by app runs are still counted (`LINEAGE_VARIABLE`:
//! which app, how many app runs deep, which process): past
//! `MAX_APP_DEPTH` the runtime refuses, so an app that keeps starting
//! itself by its own name cannot flood the machine.

use super::python_link::{self, AsPython};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the app's entry point with these arguments.
    App,
    /// Extract (if needed) and print the extraction directory.
    ExtractOnly,
    /// Behave like `python` with these arguments, over the app's `sys.path`.
    Python {
        /// The python name it was started through (`sys.executable`), if
        /// it was started through one rather than by `INTERPRETER_VARIABLE`.
        executable: Option<PathBuf>,
        /// Started as a venv's python (`executable` is its `bin/python*`),
        /// whose configuration can be trusted: python over that venv.
        venv: bool,
    },
}

/// The reserved first argument.
pub const EXTRACT_ONLY: &str = "--extract-only";
/// The variable that turns a packed app into a python-compatible CLI.
pub const INTERPRETER_VARIABLE: &str = "PYFERRY_INTERPRETER";

/// Whether `INTERPRETER_VARIABLE` asks for python.
pub fn interpreter_mode() -> bool {
    std::env::var_os(INTERPRETER_VARIABLE).is_some_and(|v| v == "1")
}
/// The record an app run leaves for its descendants: `HASH16:DEPTH:PID`.
pub const LINEAGE_VARIABLE: &str = "PYFERRY_APP_LINEAGE";
/// How many runs of one app may be nested, each started by the one before.
pub const MAX_APP_DEPTH: u32 = 8;

/// What the environment says about the app runs above this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lineage {
    /// Nested runs of this app above us (0: none; we were not started by it).
    pub depth: u32,
    /// The process that recorded it (ours, if we were `exec`ed by it).
    pub pid: u32,
}

impl Lineage {
    /// Reads the record (`LINEAGE_VARIABLE`'s value), if it is this app's
    /// (`app`: the first 16 digits of its archive hash).
    pub fn read(record: Option<&std::ffi::OsStr>, app: &str) -> Lineage {
        let parsed = record.and_then(|record| {
            let mut parts = record.to_str()?.split(':');
            let (hash, depth, pid) = (parts.next()?, parts.next()?, parts.next()?);
            (hash == app && parts.next().is_none())
                .then(|| Some((depth.parse().ok()?, pid.parse().ok()?)))
                .flatten()
        });
        match parsed {
            Some((depth, pid)) => Lineage { depth, pid },
            None => Lineage { depth: 0, pid: 0 },
        }
    }

    /// The depth of an app run in process `pid`: one more than the record's,
    /// unless the recorded run `exec`ed us (same process, same depth).
    pub fn app_depth(&self, pid: u32) -> u32 {
        match self.depth {
            0 => 1,
            depth if self.pid == pid => depth,
            depth => depth + 1,
        }
    }

    /// The record for an app run at `depth` in process `pid`.
    pub fn record(app: &str, depth: u32, pid: u32) -> String {
        format!("{app}:{depth}:{pid}")
    }
}

/// What this run of the executable at `exe` is for; `argv` is the whole
/// command line, `argv[0]` included.
pub fn classify(argv: &[OsString], exe: &Path) -> Invocation {
    if let Some(AsPython { invoked, venv }) =
        python_link::started_as_python(argv.first().map(OsString::as_os_str), exe)
    {
        return Invocation::Python {
            executable: Some(invoked),
            venv: venv.is_some(),
        };
    }
    from_arguments(argv.get(1..).unwrap_or_default(), interpreter_mode())
}

/// The decision for a run under the executable's own name: `args` excludes
/// `argv[0]`.
fn from_arguments(args: &[OsString], interpreter_mode: bool) -> Invocation {
    if interpreter_mode {
        Invocation::Python {
            executable: None,
            venv: false,
        }
    } else if args.first().is_some_and(|arg| arg == EXTRACT_ONLY) {
        Invocation::ExtractOnly
    } else {
        Invocation::App
    }
}

/// Whether python's own single-letter option `letter` (`E`, `I`, `S`) is
/// among the options that start a python command line `args`. As python's
/// getopt reads them: `-c` and `-m` end the options; `-W` and `-X` take
/// the rest of their argument as their value, or the next argument
/// (`-X faulthandler -E`), and so does `--check-hash-based-pycs`.
pub fn has_python_option(args: &[OsString], letter: char) -> bool {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(options) = arg.to_str().and_then(|arg| arg.strip_prefix('-')) else {
            return false;
        };
        match options.strip_prefix('-') {
            Some("check-hash-based-pycs") => {
                args.next();
                continue;
            }
            Some("") => return false,
            Some(_) => continue,
            None if options.is_empty() => return false,
            None => {}
        }
        for (at, found) in options.char_indices() {
            match found {
                'c' | 'm' => return found == letter,
                'W' | 'X' if found == letter => return true,
                'W' | 'X' => {
                    if options[at + 1..].is_empty() {
                        args.next();
                    }
                    break;
                }
                _ if found == letter => return true,
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    const PYTHON: Invocation = Invocation::Python {
        executable: None,
        venv: false,
    };

    /// Under the app's own name every argument is the app's: python's
    /// command lines, multiprocessing's helpers, scripts, `#!` files.
    #[test]
    fn the_apps_own_name_always_runs_the_app() {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("tool.py");
        std::fs::write(&script, "print(1)").expect("write");
        let shebang = dir.path().join("hook");
        std::fs::write(&shebang, "#!/usr/bin/app\n").expect("write");
        for app in [
            args(&["-c", "print(1)"]),
            args(&["-m", "pip", "install", "x"]),
            args(&["-"]),
            args(&["-q"]),
            args(&["-V"]),
            args(&["--version"]),
            args(&[
                "-c",
                "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)",
                "--multiprocessing-fork",
            ]),
            vec![script.clone().into_os_string()],
            vec![shebang.clone().into_os_string()],
            args(&["x", EXTRACT_ONLY]),
            args(&[]),
        ] {
            assert_eq!(from_arguments(&app, false), Invocation::App, "{app:?}");
        }
    }

    #[test]
    fn reserved_and_interpreter_modes() {
        assert_eq!(
            from_arguments(&args(&[EXTRACT_ONLY, "x"]), false),
            Invocation::ExtractOnly
        );
        assert_eq!(from_arguments(&args(&[EXTRACT_ONLY]), true), PYTHON);
        assert_eq!(from_arguments(&args(&[]), true), PYTHON);
    }

    #[test]
    fn lineage_records_count_nested_app_runs() {
        let app = "0123456789abcdef";
        let none = Lineage::read(None, app);
        assert_eq!(none.app_depth(100), 1);
        let record = Lineage::record(app, 1, 100);
        let child = Lineage::read(Some(record.as_ref()), app);
        assert_eq!(child.app_depth(200), 2, "started by the app");
        assert_eq!(child.app_depth(100), 1, "exec'd by the app");
        for other in [
            "fedcba9876543210:1:100",
            "garbage",
            "0123456789abcdef:x:1",
            "",
        ] {
            let read = Lineage::read(Some(std::ffi::OsStr::new(other)), app);
            assert_eq!(read.app_depth(1), 1, "{other}");
        }
    }

    #[test]
    fn python_options_are_read_as_pythons_getopt_reads_them() {
        assert!(has_python_option(&args(&["-I", "-c", "x"]), 'I'));
        assert!(has_python_option(&args(&["-sE", "script.py"]), 'E'));
        // `-X` and `-W` take a value, in the argument or the next one.
        assert!(has_python_option(
            &args(&["-X", "faulthandler", "-E", "-c", "1"]),
            'E'
        ));
        assert!(has_python_option(
            &args(&["-Xdev", "-W", "error", "-I"]),
            'I'
        ));
        assert!(!has_python_option(&args(&["-X", "E", "-c", "1"]), 'E'));
        assert!(!has_python_option(&args(&["-WE", "-c", "1"]), 'E'));
        assert!(has_python_option(
            &args(&["--check-hash-based-pycs", "never", "-S"]),
            'S'
        ));
        assert!(!has_python_option(&args(&["--", "-E"]), 'E'));
        assert!(!has_python_option(&args(&["-c", "-E"]), 'E'));
        assert!(!has_python_option(&args(&["-cE"]), 'E'));
        assert!(!has_python_option(&args(&["script.py", "-E"]), 'E'));
    }
}
