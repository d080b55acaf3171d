//! Every call into C: CPython's initialization API, `geteuid`, `statvfs`,
//! and setting an environment variable (unsafe since Rust 2024).
//!
//! This is the only module allowed `unsafe`. The interpreter is configured
//! through `PyPreConfig`/`PyConfig` (not pyo3's convenience initializer,
//! which disables Python's signal handlers and so breaks Ctrl-C), every
//! `PyStatus` becomes an error naming the phase, and `Py_RunMain` runs the
//! bootstrap command with `python -c` semantics: exit status from
//! `SystemExit`, traceback and status 1 on an uncaught exception, death by
//! SIGINT after an unhandled `KeyboardInterrupt`, `atexit`, flushed output.

use crate::error::{Error, Reason, Result};
use pyo3_ffi as py;
use std::ffi::{CStr, CString, OsString, c_char};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The user id the kernel checks our file accesses against.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sets an environment variable of this process (and of its children).
/// Called before the interpreter starts, while no other thread runs.
pub fn set_environment(name: &str, value: &str) {
    // SAFETY: only the main thread exists here (extraction threads are
    // joined), so nothing reads the environment concurrently.
    unsafe { std::env::set_var(name, value) }
}

/// Everything the interpreter is started with.
pub struct Launch<'a> {
    /// `sys.argv`, byte for byte (argv[0] is the path as invoked).
    pub argv: &'a [OsString],
    /// `sys.executable`.
    pub executable: &'a Path,
    /// `PYTHONHOME`: where the standard library's prefix is.
    pub home: &'a Path,
    /// `sys.path`, complete: nothing from the environment is added.
    pub search_paths: &'a [PathBuf],
    /// What to run: the bootstrap, or python's own command line.
    pub mode: Mode<'a>,
}

pub enum Mode<'a> {
    /// Python source run as `-c` would run it (ASCII only); `argv` is left
    /// to the app, unparsed.
    Command(&'a str),
    /// `argv` is a python command line (`-c`, `-m`, a script, the REPL),
    /// parsed by CPython itself.
    CommandLine,
}

/// An initialized `PyConfig` that is cleared however we leave.
struct Config(py::PyConfig);

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: the config was initialized by PyConfig_InitPythonConfig and
        // is cleared exactly once, here.
        unsafe { py::PyConfig_Clear(&mut self.0) }
    }
}

/// Starts the interpreter as `launch` says. Returns once initialization is
/// done; `run_main` then runs the command.
pub fn initialize(launch: &Launch) -> Result<()> {
    let parse_argv = matches!(launch.mode, Mode::CommandLine);
    let argv = c_strings(launch.argv)?;
    pre_initialize(parse_argv.then_some(argv.as_slice()))?;
    let mut config = {
        let mut raw = MaybeUninit::<py::PyConfig>::uninit();
        // SAFETY: PyConfig_InitPythonConfig fully initializes the struct.
        unsafe {
            py::PyConfig_InitPythonConfig(raw.as_mut_ptr());
            Config(raw.assume_init())
        }
    };
    let c = &mut config.0;
    // The app's arguments are the app's: never parsed as interpreter options.
    c.parse_argv = i32::from(parse_argv);
    // Ctrl-C must raise KeyboardInterrupt, as in python.
    c.install_signal_handlers = 1;
    // No `site`: no user site-packages, no .pth files, a faster start.
    c.site_import = 0;
    c.user_site_directory = 0;
    c.pathconfig_warnings = 0;
    #[cfg(Py_3_11)]
    if !parse_argv {
        // Do not put the executable's directory in front of sys.path.
        c.safe_path = 1;
    }

    set_string(c, Field::Home, launch.home.as_os_str().as_bytes())?;
    set_string(
        c,
        Field::Executable,
        launch.executable.as_os_str().as_bytes(),
    )?;
    set_string(
        c,
        Field::ProgramName,
        launch.executable.as_os_str().as_bytes(),
    )?;
    if let Mode::Command(command) = launch.mode {
        set_string(c, Field::RunCommand, command.as_bytes())?;
    }
    set_argv(c, &argv)?;
    c.module_search_paths_set = 1;
    for path in launch.search_paths {
        append_path(c, path)?;
    }

    // SAFETY: the config is initialized and all its strings were set through
    // the API; CPython copies what it keeps.
    let status = unsafe { py::Py_InitializeFromConfig(&config.0) };
    check(status, "interpreter initialization")
}

/// Runs the configured command and finalizes; returns the exit status.
pub fn run_main() -> i32 {
    // SAFETY: called once, after a successful `initialize`.
    unsafe { py::Py_RunMain() }
}

/// With `argv`, python's own command line is parsed for `-E`, `-I`,
/// `-X utf8` and the like, as `python` does before anything else.
fn pre_initialize(argv: Option<&[CString]>) -> Result<()> {
    let mut pre = MaybeUninit::<py::PyPreConfig>::uninit();
    // SAFETY: PyPreConfig_InitPythonConfig fully initializes the struct; the
    // python (not isolated) preconfig honours PYTHONUTF8 and the locale, so
    // arguments, filenames and stdio decode as `python` would decode them.
    // The argument pointers are valid C strings that outlive the call and
    // are only read.
    let status = unsafe {
        py::PyPreConfig_InitPythonConfig(pre.as_mut_ptr());
        let mut pre = pre.assume_init();
        pre.parse_argv = i32::from(argv.is_some());
        match argv {
            Some(argv) => {
                let mut pointers: Vec<*mut c_char> =
                    argv.iter().map(|arg| arg.as_ptr().cast_mut()).collect();
                py::Py_PreInitializeFromBytesArgs(
                    &pre,
                    pointers.len() as py::Py_ssize_t,
                    pointers.as_mut_ptr(),
                )
            }
            None => py::Py_PreInitialize(&pre),
        }
    };
    check(status, "pre-initialization")
}

#[derive(Clone, Copy)]
enum Field {
    Home,
    Executable,
    ProgramName,
    RunCommand,
}

fn set_string(config: &mut py::PyConfig, field: Field, value: &[u8]) -> Result<()> {
    let value = c_string(value, "a configuration string")?;
    let target: *mut *mut libc::wchar_t = match field {
        Field::Home => &mut config.home,
        Field::Executable => &mut config.executable,
        Field::ProgramName => &mut config.program_name,
        Field::RunCommand => &mut config.run_command,
    };
    // SAFETY: `target` points into `config`, which is initialized; the
    // value is a NUL-terminated string that CPython decodes and copies.
    let status = unsafe { py::PyConfig_SetBytesString(config, target, value.as_ptr()) };
    check(status, "configuration")
}

fn c_strings(argv: &[OsString]) -> Result<Vec<CString>> {
    argv.iter()
        .map(|arg| c_string(arg.as_bytes(), "an argument"))
        .collect()
}

fn set_argv(config: &mut py::PyConfig, argv: &[CString]) -> Result<()> {
    let mut pointers: Vec<*const c_char> = argv.iter().map(|arg| arg.as_ptr()).collect();
    // SAFETY: `pointers` holds argc valid C strings that outlive the call;
    // CPython decodes them (surrogateescape) and copies them; it does not
    // write through the pointers.
    let status = unsafe {
        py::PyConfig_SetBytesArgv(
            config,
            pointers.len() as py::Py_ssize_t,
            pointers.as_mut_ptr(),
        )
    };
    check(status, "setting sys.argv")
}

fn append_path(config: &mut py::PyConfig, path: &Path) -> Result<()> {
    let path = c_string(path.as_os_str().as_bytes(), "a search path")?;
    // SAFETY: pre-initialization is done, so Py_DecodeLocale decodes like
    // every other filename; the wide copy is freed with PyMem_RawFree, as its
    // documentation requires, after PyWideStringList_Append copied it.
    let status = unsafe {
        let wide = py::Py_DecodeLocale(path.as_ptr(), std::ptr::null_mut());
        if wide.is_null() {
            return Err(interpreter_error(
                "configuration",
                "cannot decode a search path",
            ));
        }
        let status = py::PyWideStringList_Append(&mut config.module_search_paths, wide);
        py::PyMem_RawFree(wide.cast());
        status
    };
    check(status, "setting sys.path")
}

fn c_string(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes)
        .map_err(|_| interpreter_error("configuration", &format!("{what} contains a NUL byte")))
}

fn check(status: py::PyStatus, phase: &'static str) -> Result<()> {
    // SAFETY: a PyStatus returned by CPython; its strings are static or NULL.
    unsafe {
        if py::PyStatus_Exception(status) == 0 {
            return Ok(());
        }
        if py::PyStatus_IsExit(status) != 0 {
            std::process::exit(status.exitcode);
        }
        let text = |ptr: *const c_char| {
            (!ptr.is_null()).then(|| CStr::from_ptr(ptr).to_string_lossy().into_owned())
        };
        let message = match (text(status.func), text(status.err_msg)) {
            (Some(func), Some(msg)) => format!("{func}: {msg}"),
            (None, Some(msg)) => msg,
            _ => "unknown error".to_owned(),
        };
        Err(interpreter_error(phase, &message))
    }
}

fn interpreter_error(phase: &'static str, message: &str) -> Error {
    Error::Interpreter {
        phase,
        reason: Reason(message.to_owned()),
    }
}

/// Whether the filesystem holding `path` is mounted `noexec`, where
/// `dlopen` fails with "failed to map segment from shared object".
pub fn is_noexec(path: &Path) -> std::io::Result<bool> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    let mut stats = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stats` is writable memory of
    // the right type, which statvfs fills on success.
    let result = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialized `stats`.
    let stats = unsafe { stats.assume_init() };
    Ok(stats.f_flag & libc::ST_NOEXEC != 0)
}
