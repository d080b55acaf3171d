//! What the runtime was started for, decided from the raw arguments without
//! parsing the app's: the app itself, `--extract-only`, or Python itself
//! (interpreter mode, a helper process that `multiprocessing` started, or a
//! python command line from the app's own descendants).
//!
//! `sys.executable` is the packed executable, and code that runs python as
//! `sys.executable -c ...` (pip, test runners, build backends) would start
//! the app again, which would start it again. So every app run records
//! itself in the environment its descendants inherit (`LINEAGE_VARIABLE`:
//! which app, how many app runs deep, which process); a process of this
//! same app that finds the record and a python command line (`-c`, `-m`,
//! `-`, interpreter options, a script) behaves as python. A person who runs
//! the app from a shell has no record: every argument is the app's. And app
//! runs started by app runs are counted: past `MAX_APP_DEPTH` the runtime
//! refuses, so an app that keeps starting itself cannot flood the machine.
//!
//! `multiprocessing` starts its helpers as `sys.executable`, i.e. us:
//! `EXE [interpreter flags] -c 'from multiprocessing.spawn import spawn_main;
//! spawn_main(...)' --multiprocessing-fork`, and the resource tracker and
//! forkserver likewise with `-c`. Those are recognized precisely (flag
//! syntax, code prefix, trailing argument), so an app whose own arguments
//! start with `-c` still gets them; running the app again instead would
//! re-run it in every child.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// Run the app's entry point with these arguments.
    App,
    /// Extract (if needed) and print the extraction directory.
    ExtractOnly,
    /// Behave like `python` with these arguments, over the app's `sys.path`.
    Python,
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

    /// Whether a run of this app started us (or a process it started).
    pub fn is_descendant(&self) -> bool {
        self.depth > 0
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

const HELPERS: &[(&str, &[&str])] = &[
    (
        "from multiprocessing.spawn import spawn_main; spawn_main(",
        &["--multiprocessing-fork"],
    ),
    (
        "from multiprocessing.resource_tracker import main;main(",
        &[],
    ),
    ("from multiprocessing.forkserver import main; main(", &[]),
];

/// `args` excludes argv[0]; `descendant`: a run of this app started us.
pub fn classify(args: &[OsString], interpreter_mode: bool, descendant: bool) -> Invocation {
    let python = interpreter_mode
        || is_multiprocessing_helper(args)
        || descendant && is_python_command_line(args);
    if python {
        Invocation::Python
    } else if args.first().is_some_and(|arg| arg == EXTRACT_ONLY) {
        Invocation::ExtractOnly
    } else {
        Invocation::App
    }
}

/// The path of a venv's python through which the app was started
/// (`ENV/bin/python`, a link to the app's executable that a venv made by
/// the app's python holds), when `argv0` is one: its directory or the one
/// above holds `pyvenv.cfg`, and it is this very executable (`exe`). Such
/// a start is python, for that venv.
pub fn venv_python(argv0: &OsStr, exe: &Path) -> Option<PathBuf> {
    let argv0 = Path::new(argv0);
    // As invoked: a path, or a name found on PATH.
    let invoked = if argv0.components().count() > 1 {
        std::env::current_dir().ok()?.join(argv0)
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(argv0))
            .find(|candidate| candidate.is_file())?
    };
    let dir = invoked.parent()?;
    let has_config = dir.join("pyvenv.cfg").is_file()
        || dir
            .parent()
            .is_some_and(|up| up.join("pyvenv.cfg").is_file());
    let is_this_executable =
        std::fs::canonicalize(&invoked).ok()? == std::fs::canonicalize(exe).ok()?;
    (has_config && is_this_executable).then_some(invoked)
}

fn is_multiprocessing_helper(args: &[OsString]) -> bool {
    let flags = args
        .iter()
        .take_while(|arg| is_interpreter_flag(arg))
        .count();
    let [dash_c, code, rest @ ..] = &args[flags..] else {
        return false;
    };
    let Some(code) = code.to_str() else {
        return false;
    };
    dash_c == "-c"
        && code.ends_with(')')
        && HELPERS.iter().any(|(prefix, trailing)| {
            code.starts_with(prefix)
                && rest
                    .iter()
                    .map(|a| a.to_str())
                    .eq(trailing.iter().map(|t| Some(*t)))
        })
}

/// Whether `args` is what one passes python: options first (`-c CODE`,
/// `-m MODULE`, `-` for stdin, `-I`, `-Wd`, `--version`, ...), or a script:
/// a `.py`, `.pyw`, `.pyc` or `.pyz` file, a file that starts with `#!`
/// (run through its shebang), or a directory holding `__main__.py`. No
/// arguments at all are the app's (an app restarting itself).
fn is_python_command_line(args: &[OsString]) -> bool {
    let Some(first) = args.first() else {
        return false;
    };
    match first.to_str() {
        Some("-") => true,
        Some(long) if long.starts_with("--") => PYTHON_LONG_OPTIONS.contains(&long),
        Some(short) if short.starts_with('-') => is_python_short_options(&short[1..]),
        _ => is_script(std::path::Path::new(first)),
    }
}

const PYTHON_LONG_OPTIONS: &[&str] = &[
    "--version",
    "--help",
    "--help-env",
    "--help-xoptions",
    "--help-all",
    "--check-hash-based-pycs",
];

/// `-Esc`, `-u`, `-Wdefault`, `-mpip`: python's single-letter options, as
/// its getopt reads them (`c`, `m`, `W`, `X` take the rest as their value).
fn is_python_short_options(options: &str) -> bool {
    let mut any = false;
    for letter in options.chars() {
        match letter {
            'c' | 'm' | 'W' | 'X' => return true,
            _ if "bBdEhiIOPqRsSuvVx?".contains(letter) => any = true,
            _ => return false,
        }
    }
    any
}

fn is_script(path: &std::path::Path) -> bool {
    let suffix = path.extension().and_then(|suffix| suffix.to_str());
    if path.is_dir() {
        return path.join("__main__.py").is_file() || path.join("__main__.pyc").is_file();
    }
    if matches!(suffix, Some("py" | "pyw" | "pyc" | "pyz")) {
        return path.is_file();
    }
    let mut start = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut start))
        .is_ok_and(|()| start == *b"#!")
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

/// One token of `subprocess._args_from_interpreter_flags()`: `-B`, `-S`,
/// `-OO`, `-vv`, `-I`, `-E`, `-s`, `-P`, `-Wopt`, `-Xopt`.
fn is_interpreter_flag(arg: &OsString) -> bool {
    let Some(flag) = arg.to_str().and_then(|a| a.strip_prefix('-')) else {
        return false;
    };
    let mut chars = flag.chars();
    match chars.next() {
        Some('W' | 'X') => flag.len() > 1,
        Some(letter) if "dBSvbqOIEsP".contains(letter) => {
            flag.len() <= 3 && chars.all(|c| c == letter)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    const SPAWN: &str =
        "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)";

    #[test]
    fn multiprocessing_helpers_are_recognized() {
        for helper in [
            args(&[
                "-B",
                "-S",
                "-s",
                "-P",
                "-c",
                SPAWN,
                "--multiprocessing-fork",
            ]),
            args(&[
                "-I",
                "-OO",
                "-Wdefault",
                "-Xfaulthandler",
                "-c",
                SPAWN,
                "--multiprocessing-fork",
            ]),
            args(&[
                "-c",
                "from multiprocessing.resource_tracker import main;main(6)",
            ]),
            args(&[
                "-S",
                "-c",
                "from multiprocessing.forkserver import main; main(8, 9, ['__main__'], **{'sys_path': []})",
            ]),
        ] {
            assert_eq!(
                classify(&helper, false, false),
                Invocation::Python,
                "{helper:?}"
            );
        }
    }

    #[test]
    fn app_arguments_that_look_alike_stay_the_apps() {
        for app in [
            args(&["-c", "print(1)"]),
            args(&["-c", SPAWN]),
            args(&["-c", SPAWN, "--multiprocessing-fork", "extra"]),
            args(&["--verbose", "-c", SPAWN, "--multiprocessing-fork"]),
            args(&["-S", "-c"]),
            args(&[
                "-c",
                "from multiprocessing.spawn import spawn_main; spawn_main(1); evil",
                "--multiprocessing-fork",
            ]),
            args(&["x", EXTRACT_ONLY]),
            args(&[]),
        ] {
            assert_eq!(classify(&app, false, false), Invocation::App, "{app:?}");
        }
    }

    #[test]
    fn reserved_and_interpreter_modes() {
        assert_eq!(
            classify(&args(&[EXTRACT_ONLY, "x"]), false, false),
            Invocation::ExtractOnly
        );
        assert_eq!(
            classify(&args(&[EXTRACT_ONLY]), true, false),
            Invocation::Python
        );
        assert_eq!(classify(&args(&[]), true, false), Invocation::Python);
    }

    #[test]
    fn descendants_get_python_for_python_command_lines_only() {
        for python in [
            &["-c", "print(1)"][..],
            &["-m", "pip", "install", "x"],
            &["-"],
            &["-I", "-c", "x"],
            &["-Esc", "x"],
            &["-mpip"],
            &["-Wdefault", "-u"],
            &["--version"],
            &["-cz"],
        ] {
            assert_eq!(
                classify(&args(python), false, true),
                Invocation::Python,
                "{python:?}"
            );
            // The same arguments from a shell are the app's.
            assert_eq!(
                classify(&args(python), false, false),
                Invocation::App,
                "{python:?}"
            );
        }
        for app in [
            &[][..],
            &["--verbose"],
            &["-z"],
            &["install", "x"],
            &["/nonexistent/script.py"],
        ] {
            assert_eq!(
                classify(&args(app), false, true),
                Invocation::App,
                "{app:?}"
            );
        }
        assert_eq!(
            classify(&args(&[EXTRACT_ONLY]), false, true),
            Invocation::ExtractOnly
        );
    }

    #[test]
    fn scripts_are_recognized_by_name_or_shebang() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path.into_os_string()
        };
        let python = [
            write("tool.py", "print(1)"),
            write("pip", "#!/usr/bin/app\nimport pip\n"),
        ];
        let data = [write("notes.txt", "hello"), write("input", "x")];
        for script in python {
            assert_eq!(classify(&[script], false, true), Invocation::Python);
        }
        for file in data {
            assert_eq!(classify(&[file], false, true), Invocation::App);
        }
        std::fs::write(dir.path().join("__main__.py"), "").expect("write");
        let dir_arg = dir.path().as_os_str().to_owned();
        assert_eq!(classify(&[dir_arg], false, true), Invocation::Python);
    }

    #[test]
    fn lineage_records_count_nested_app_runs() {
        let app = "0123456789abcdef";
        let none = Lineage::read(None, app);
        assert!(!none.is_descendant());
        assert_eq!(none.app_depth(100), 1);
        let record = Lineage::record(app, 1, 100);
        let child = Lineage::read(Some(record.as_ref()), app);
        assert!(child.is_descendant());
        assert_eq!(child.app_depth(200), 2, "started by the app");
        assert_eq!(child.app_depth(100), 1, "exec'd by the app");
        for other in [
            "fedcba9876543210:1:100",
            "garbage",
            "0123456789abcdef:x:1",
            "",
        ] {
            let read = Lineage::read(Some(std::ffi::OsStr::new(other)), app);
            assert!(!read.is_descendant(), "{other}");
        }
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
