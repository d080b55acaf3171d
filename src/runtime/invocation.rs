//! What the runtime was started for, decided from the raw arguments without
//! parsing the app's: the app itself, `--extract-only`, or Python itself
//! (interpreter mode, or a helper process that `multiprocessing` started).
//!
//! `multiprocessing` starts its helpers as `sys.executable`, i.e. us:
//! `EXE [interpreter flags] -c 'from multiprocessing.spawn import spawn_main;
//! spawn_main(...)' --multiprocessing-fork`, and the resource tracker and
//! forkserver likewise with `-c`. Those are recognized precisely (flag
//! syntax, code prefix, trailing argument), so an app whose own arguments
//! start with `-c` still gets them; running the app again instead would
//! re-run it in every child.

use std::ffi::OsString;

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

/// `args` excludes argv[0].
pub fn classify(args: &[OsString], interpreter_mode: bool) -> Invocation {
    if interpreter_mode || is_multiprocessing_helper(args) {
        Invocation::Python
    } else if args.first().is_some_and(|arg| arg == EXTRACT_ONLY) {
        Invocation::ExtractOnly
    } else {
        Invocation::App
    }
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
            assert_eq!(classify(&helper, false), Invocation::Python, "{helper:?}");
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
            assert_eq!(classify(&app, false), Invocation::App, "{app:?}");
        }
    }

    #[test]
    fn reserved_and_interpreter_modes() {
        assert_eq!(
            classify(&args(&[EXTRACT_ONLY, "x"]), false),
            Invocation::ExtractOnly
        );
        assert_eq!(classify(&args(&[EXTRACT_ONLY]), true), Invocation::Python);
        assert_eq!(classify(&args(&[]), true), Invocation::Python);
    }
}
