//! The embedded CPython: the one module of the crate with `unsafe`.
//!
//! The interpreter is configured through `PyPreConfig`/`PyConfig` (not
//! pyo3's convenience initializer, which disables Python's signal handlers
//! and so breaks Ctrl-C), every `PyStatus` becomes an error naming the
//! phase, and `Py_RunMain` runs the bootstrap command with `python -c`
//! semantics: exit status from `SystemExit`, traceback and status 1 on an
//! uncaught exception, death by SIGINT after an unhandled
//! `KeyboardInterrupt`, `atexit`, flushed output.
//!
//! The contract is in the types: `Interpreter::start` is the only way to an
//! `Interpreter`, it succeeds once per process, and `run_main` consumes it.

mod bootstrap;
mod closed_streams;
mod table;

pub use bootstrap::{Argument, BootstrapCall};
pub use table::keep as keep_table;

use crate::error::{Error, Reason, Result};
use crate::runtime::zipimport::Table;
use pyo3_ffi as py;
use std::ffi::{CStr, CString, OsString, c_char};
use std::fs::File;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Runs `handler` when the process exits through `exit()`, which is also
/// how CPython ends it from inside `Py_RunMain` on `SystemExit`: the
/// runtime's code after `run_main` does not run then.
pub fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function without arguments, valid for
    // the life of the process; atexit only stores the pointer.
    unsafe {
        libc::atexit(handler);
    }
}

/// Everything the interpreter is started with.
pub struct Launch<'a> {
    /// `sys.argv`, byte for byte (argv[0] is the path as invoked).
    pub argv: &'a [OsString],
    /// `sys.executable`.
    pub executable: &'a Path,
    /// `PYTHONHOME`: where the standard library's prefix is.
    pub home: &'a Path,
    /// `sys.prefix` and `sys.exec_prefix`, when not `home` (which then
    /// stays `sys.base_prefix`, as in a venv).
    pub prefix: Option<&'a Path>,
    /// `sys.path`, complete: nothing from the environment is added.
    pub search_paths: &'a [PathBuf],
    /// What to run: the bootstrap, or python's own command line.
    pub mode: Mode,
    /// Variables to set in the process environment first (inherited by the
    /// app's children).
    pub environment: &'a [(&'a str, String)],
    /// The executable whose archive is on `sys.path`, and zipimport's table
    /// of its contents (`runtime::zipimport`), if the runtime read one.
    pub archive: &'a Path,
    pub archive_file: &'a File,
    pub archive_table: Option<&'static Table>,
}

pub enum Mode {
    /// The bootstrap's call, run as `python -c` would run it; `argv` is
    /// left to the app, unparsed.
    Bootstrap(BootstrapCall),
    /// `argv` is a python command line (`-c`, `-m`, a script, the REPL),
    /// parsed by CPython itself; the bootstrap's `prelude` call runs in
    /// `__main__` first, binding no name there.
    CommandLine { prelude: BootstrapCall },
}

/// Rust's runtime catches SIGSEGV and SIGBUS (to report a stack overflow
/// of its own); python starts with the kernel's defaults. Left installed,
/// Rust's handler swallows a raised SIGSEGV (the process then exits 0) and
/// faulthandler's re-raise after its report: a crash would pass for a
/// success. Python installs its own handlers (SIGINT, SIGPIPE, SIGXFSZ)
/// during initialization.
fn restore_fatal_signal_defaults() {
    for signal in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: setting a signal's disposition to SIG_DFL has no memory
        // effects; Rust's handler needs no teardown (its alternate signal
        // stack stays mapped, unused).
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

/// This system's glibc version, as (2, 31).
pub fn glibc_version() -> Option<(u32, u32)> {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    crate::format::manifest::glibc_version(version.to_str().ok()?)
}

/// Loads the libraries of `format::FALLBACK_LIBRARIES` (in `dir`): the
/// machine's own copy of each where it has one, the app's otherwise. The
/// extension modules that need one then find it loaded, by its name.
pub fn load_fallback_libraries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return; // Not extracted: the extension modules will say what is missing.
    };
    let mut libraries: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    // libgcc_s before libstdc++, which needs it.
    libraries.sort();
    for library in libraries {
        let soname = library.file_name().map(|name| name.as_bytes().to_vec());
        let (Ok(soname), Ok(path)) = (
            CString::new(soname.unwrap_or_default()),
            CString::new(library.as_os_str().as_bytes()),
        ) else {
            continue;
        };
        // SAFETY: dlopen with NUL-terminated names. The library's
        // initializers run now rather than when an extension module needs
        // it; the handles stay open for the life of the process, as the
        // extension modules' would.
        unsafe {
            if libc::dlopen(soname.as_ptr(), libc::RTLD_LAZY).is_null() {
                libc::dlopen(path.as_ptr(), libc::RTLD_LAZY);
            }
        }
    }
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

/// An initialized interpreter, ready to run its command. Tied to the thread
/// that started it (CPython's main thread).
pub struct Interpreter {
    _main_thread_only: PhantomData<*const ()>,
}

/// What initialization ended in.
pub enum Started {
    Ready(Interpreter),
    /// CPython asked to exit with this status before running anything (a
    /// python command line such as `--version`, or a bad option).
    Exited(i32),
}

/// Set by the first `Interpreter::start`: CPython is initialized once.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Set once CPython's start is complete (`_Py_InitializeMain` returned):
/// before, an exception ends in CPython's dump of its configuration.
static RUNNING: AtomicBool = AtomicBool::new(false);

impl Interpreter {
    /// Sets the environment and starts the interpreter as `launch` says.
    pub fn start(launch: Launch) -> Result<Started> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(interpreter_error(
                "initialization",
                "the interpreter was already started in this process",
            ));
        }
        for (name, value) in launch.environment {
            set_environment(name, Some(value));
        }
        restore_fatal_signal_defaults();
        let parse_argv = matches!(launch.mode, Mode::CommandLine { .. });
        let argv = c_strings(launch.argv)?;
        if let Some(exit) = pre_initialize(parse_argv.then_some(argv.as_slice()))? {
            return Ok(Started::Exited(exit));
        }
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
        if let Mode::Bootstrap(_) = launch.mode {
            set_string(c, Field::RunCommand, bootstrap::START.to_bytes())?;
        }
        set_argv(c, &argv)?;
        c.module_search_paths_set = 1;
        for path in launch.search_paths {
            append_path(c, path)?;
        }
        // In two steps: the core (builtin and frozen modules), then, once
        // zipimport has what the runtime gives it, the rest, which imports
        // `encodings` from the archive.
        c._init_main = 0;
        add_runtime_module()?;
        closed_streams::close_again();

        // SAFETY: the config is initialized and all its strings were set
        // through the API; CPython copies what it keeps.
        let status = unsafe { py::Py_InitializeFromConfig(&config.0) };
        if let Some(exit) = check(status, "interpreter initialization")? {
            return Ok(Started::Exited(exit));
        }
        prepare_zipimport(launch.archive, launch.archive_file, launch.archive_table)?;
        // SAFETY: the core is initialized (above) and its main part is not.
        let status = unsafe { _Py_InitializeMain() };
        if let Some(exit) = check(status, "interpreter initialization")? {
            return Ok(Started::Exited(exit));
        }
        RUNNING.store(true, Ordering::Release);
        if let Some(prefix) = launch.prefix {
            // CPython derives its prefixes from `home`, whatever the
            // configuration says, and sets them again as its main part
            // starts: the prefix moves once it has.
            set_sys_path(c"prefix", prefix)?;
            set_sys_path(c"exec_prefix", prefix)?;
        }
        if let Some(table) = launch.archive_table {
            // SAFETY: the interpreter is initialized, and this thread holds
            // the GIL.
            unsafe { bootstrap::import(table, launch.archive_file) };
        }
        match launch.mode {
            Mode::Bootstrap(call) => bootstrap::prepare(call),
            Mode::CommandLine { prelude } => {
                bootstrap::prepare(prelude);
                // SAFETY: the interpreter is initialized and this thread
                // holds the GIL (initialization leaves it so); the source is
                // a valid C string. A failing prelude prints its traceback
                // and returns -1: python's command line still runs, as it
                // would without it.
                unsafe { py::PyRun_SimpleString(bootstrap::START.as_ptr()) };
            }
        }
        Ok(Started::Ready(Interpreter {
            _main_thread_only: PhantomData,
        }))
    }

    /// Runs the configured command and finalizes; returns the exit status.
    pub fn run_main(self) -> i32 {
        // SAFETY: `self` exists only after a successful initialization, and
        // is consumed here: Py_RunMain runs once, on the starting thread
        // (`Interpreter` is neither Send nor Sync).
        unsafe { py::Py_RunMain() }
    }
}

unsafe extern "C" {
    /// The second step of an initialization with `_init_main = 0`
    /// (CPython's `pylifecycle.h`, 3.8 and later).
    fn _Py_InitializeMain() -> py::PyStatus;
}

/// The built-in module through which zipimport reaches the runtime.
const RUNTIME_MODULE: &CStr = c"_pyferry_runtime";

/// `_pyferry_runtime.inflate(data, wbits=-15)`: `zlib.decompress` for
/// zipimport's raw deflate streams.
unsafe extern "C" fn inflate(
    _module: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    // SAFETY: CPython calls this with `nargs` valid argument references and
    // the GIL held; the bytes' buffer lives as long as the argument, for
    // the whole call, and is only read.
    unsafe {
        if nargs < 1 {
            py::PyErr_SetString(py::PyExc_TypeError, c"inflate() needs the data".as_ptr());
            return std::ptr::null_mut();
        }
        let (mut data, mut len) = (std::ptr::null_mut(), 0);
        if py::PyBytes_AsStringAndSize(*args, &mut data, &mut len) != 0 {
            return std::ptr::null_mut();
        }
        let data = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
        // zlib's first guess at the size: three times the data.
        let capacity = (data.len() as u64).saturating_mul(3);
        bytes_or_raise(
            super::zipimport::inflate(data, capacity),
            py::PyExc_ValueError,
        )
    }
}

/// What `get_data` needs, set once by `prepare_zipimport` with the GIL held
/// and read only with it held: the executable's archive (its path as
/// `sys.path` holds it, and the open file), zipimport's own `_get_data`
/// for other archives, and `zipimport.ZipImportError`.
static ARCHIVE_PATH: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());
static ARCHIVE_FILE: OnceLock<File> = OnceLock::new();
static STOCK_GET_DATA: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());
static ZIP_IMPORT_ERROR: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// `zipimport._get_data(archive, toc_entry)` as the runtime does it: for
/// the executable's own archive, read in Rust and checked against the
/// entry's CRC-32 (`runtime::zipimport::read_entry`); for any other zip,
/// zipimport's own.
unsafe extern "C" fn get_data(
    _module: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    // SAFETY: CPython calls this with `nargs` valid argument references and
    // the GIL held; the statics were set (with references kept) before
    // zipimport could call this, and are only read here.
    unsafe {
        let stock = STOCK_GET_DATA.load(Ordering::Acquire);
        let ours = ARCHIVE_PATH.load(Ordering::Acquire);
        if nargs != 2 || stock.is_null() || ours.is_null() {
            py::PyErr_SetString(
                py::PyExc_TypeError,
                c"_get_data(archive, toc_entry)".as_ptr(),
            );
            return std::ptr::null_mut();
        }
        let (archive, entry) = (*args, *args.add(1));
        let file = ARCHIVE_FILE.get();
        let is_ours =
            py::PyUnicode_Check(archive) != 0 && py::PyUnicode_Compare(archive, ours) == 0;
        let table_entry = match (is_ours, file) {
            (true, Some(_)) => table_entry(entry),
            _ => None,
        };
        let (Some(file), Some(table_entry)) = (file, table_entry) else {
            py::PyErr_Clear();
            return py::PyObject_CallFunctionObjArgs(
                stock,
                archive,
                entry,
                std::ptr::null_mut::<py::PyObject>(),
            );
        };
        let read = match table::kept() {
            Some(table) => table.read_entry(file, &table_entry),
            None => {
                use super::zipimport::{PycDictionary, read_entry};
                static DICTIONARY: PycDictionary = PycDictionary::unlocated();
                read_entry(file, &table_entry, &DICTIONARY)
            }
        };
        let read = match read {
            Ok(bytes) => Ok(bytes),
            Err(why) => {
                let name = text_of(py::PyTuple_GetItem(entry, 0))
                    .unwrap_or_else(|| String::from("an entry"));
                py::PyErr_Clear();
                if let Some(report) = DAMAGE_REPORT.get() {
                    report(&name, &why);
                    // Before the start is complete, CPython would bury
                    // the error under its configuration; after, an exit
                    // with no traceback, through the app's `finally`
                    // blocks and `atexit` handlers.
                    if !RUNNING.load(Ordering::Acquire) {
                        std::process::exit(1);
                    }
                    let status = py::PyLong_FromLong(1);
                    py::PyErr_SetObject(py::PyExc_SystemExit, status);
                    py::Py_XDECREF(status);
                    return std::ptr::null_mut();
                }
                Err(format!(
                    "this copy of the app is damaged: `{name}` in its archive cannot be read \
                     ({why}); download or install the app again"
                ))
            }
        };
        let error = ZIP_IMPORT_ERROR.load(Ordering::Acquire);
        let class = if error.is_null() {
            py::PyExc_ImportError
        } else {
            error
        };
        bytes_or_raise(read, class)
    }
}

/// A `bytes` of `result`, or `class` raised with its message.
///
/// # Safety
/// The GIL must be held, and `class` be an exception class.
unsafe fn bytes_or_raise(
    result: std::result::Result<Vec<u8>, String>,
    class: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: per this function's contract; the bytes are copied.
    unsafe {
        match result {
            Ok(bytes) => {
                py::PyBytes_FromStringAndSize(bytes.as_ptr().cast(), bytes.len() as py::Py_ssize_t)
            }
            Err(message) => {
                let message = CString::new(message).unwrap_or_default();
                py::PyErr_SetString(class, message.as_ptr());
                std::ptr::null_mut()
            }
        }
    }
}

/// Which sequence `new_sequence` makes.
#[derive(Clone, Copy)]
enum Sequence {
    Tuple,
    List,
}

/// A new tuple or list of `make(item)` for each of `items`, or null with
/// an exception set.
///
/// # Safety
/// The GIL must be held, and `make` return a new reference, or null with
/// an exception set.
unsafe fn new_sequence<T>(
    items: &[T],
    kind: Sequence,
    make: impl Fn(&T) -> *mut py::PyObject,
) -> *mut py::PyObject {
    let len = items.len() as py::Py_ssize_t;
    // SAFETY: the GIL is held; each item is a new reference that the
    // sequence takes; a failed item releases the sequence.
    unsafe {
        let sequence = match kind {
            Sequence::Tuple => py::PyTuple_New(len),
            Sequence::List => py::PyList_New(len),
        };
        if sequence.is_null() {
            return sequence;
        }
        for (index, item) in items.iter().enumerate() {
            let item = make(item);
            if item.is_null() {
                py::Py_DECREF(sequence);
                return std::ptr::null_mut();
            }
            let index = index as py::Py_ssize_t;
            match kind {
                Sequence::Tuple => py::PyTuple_SET_ITEM(sequence, index, item),
                Sequence::List => py::PyList_SET_ITEM(sequence, index, item),
            }
        }
        sequence
    }
}

/// The text of a `str` object, if it is one (`object` may be null).
///
/// # Safety
/// The GIL must be held, and `object` be null or a valid reference.
unsafe fn text_of(object: *mut py::PyObject) -> Option<String> {
    if object.is_null() {
        return None;
    }
    // SAFETY: per this function's contract; the UTF-8 buffer belongs to the
    // object, which outlives this copy of it.
    unsafe {
        let utf8 = py::PyUnicode_AsUTF8(object);
        if utf8.is_null() {
            py::PyErr_Clear();
            return None;
        }
        Some(CStr::from_ptr(utf8).to_string_lossy().into_owned())
    }
}

/// The fields of a table-of-contents tuple that `read_entry` needs.
///
/// # Safety
/// The GIL must be held and `entry` be a valid reference.
unsafe fn table_entry(entry: *mut py::PyObject) -> Option<super::zipimport::TableEntry> {
    // SAFETY: per this function's contract; borrowed items of a tuple
    // checked to have 8 of them.
    unsafe {
        if py::PyTuple_Check(entry) == 0 || py::PyTuple_Size(entry) != 8 {
            return None;
        }
        let number = |index| {
            let item = py::PyTuple_GetItem(entry, index);
            let value = py::PyLong_AsUnsignedLongLong(item);
            (py::PyErr_Occurred().is_null()).then_some(value)
        };
        Some(super::zipimport::TableEntry {
            compress: u16::try_from(number(1)?).ok()?,
            data_size: number(2)?,
            file_size: number(3)?,
            header_offset: number(4)?,
            crc: u32::try_from(number(7)?).ok()?,
        })
    }
}

/// How the runtime tells the user that an entry of the app's archive
/// (its name, and why) cannot be read: the copy is damaged.
static DAMAGE_REPORT: OnceLock<fn(&str, &str)> = OnceLock::new();

/// Sets how a damaged entry of the app's archive is reported; the
/// interpreter then exits with status 1 (`SystemExit` once the app runs)
/// instead of raising `ZipImportError`.
pub fn on_damaged_entry(report: fn(&str, &str)) {
    let _ = DAMAGE_REPORT.set(report);
}

/// What `_pyferry_runtime.extract()` runs (`runtime::lazy`).
static EXTRACTOR: OnceLock<fn() -> std::result::Result<(), String>> = OnceLock::new();

/// Sets what `_pyferry_runtime.extract()` runs.
pub fn on_extract(extract: fn() -> std::result::Result<(), String>) {
    let _ = EXTRACTOR.set(extract);
}

/// Runs the handlers of signals that arrived (Python's run only between
/// bytecodes, which a wait inside `extract` holds up); whether one raised
/// (Ctrl-C: `KeyboardInterrupt`, left set for `extract` to pass on). Only
/// called from `extract`, on the main thread with the GIL held.
pub fn signal_raised() -> bool {
    // SAFETY: `lazy` registers this only for waits inside `extract`, which
    // CPython calls with the GIL held; PyErr_CheckSignals does nothing off
    // the main thread.
    unsafe { py::PyErr_CheckSignals() != 0 }
}

/// `_pyferry_runtime.extract()`: extracts the app's units now, on a first
/// run that deferred it; `RuntimeError` with the message for the user.
unsafe extern "C" fn extract(
    _module: *mut py::PyObject,
    _unused: *mut py::PyObject,
) -> *mut py::PyObject {
    let result = EXTRACTOR.get().map_or(Ok(()), |extract| extract());
    // SAFETY: called by CPython with the GIL held.
    unsafe {
        match result {
            Ok(()) => {
                let none = py::Py_None();
                py::Py_INCREF(none);
                none
            }
            // A signal's handler raised (`signal_raised`): that exception
            // (`KeyboardInterrupt`) goes on.
            Err(_) if !py::PyErr_Occurred().is_null() => std::ptr::null_mut(),
            Err(message) => {
                let message = CString::new(message).unwrap_or_default();
                py::PyErr_SetString(py::PyExc_RuntimeError, message.as_ptr());
                std::ptr::null_mut()
            }
        }
    }
}

/// `_pyferry_runtime.decompress_func()`: what zipimport's own
/// `_get_decompress_func` returns, without importing `zlib`.
unsafe extern "C" fn decompress_func(
    module: *mut py::PyObject,
    _unused: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: `module` is this module, alive during the call.
    unsafe { py::PyObject_GetAttrString(module, c"inflate".as_ptr()) }
}

// CPython keeps pointers to these for the life of the process, and writes
// to the module definition's base once, when it creates the module.
static mut RUNTIME_METHODS: [py::PyMethodDef; 6] = [
    py::PyMethodDef {
        ml_name: c"start".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunction: bootstrap::start,
        },
        ml_flags: py::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"extract".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunction: extract,
        },
        ml_flags: py::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"get_data".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunctionFast: get_data,
        },
        ml_flags: py::METH_FASTCALL,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"inflate".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunctionFast: inflate,
        },
        ml_flags: py::METH_FASTCALL,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"decompress_func".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunction: decompress_func,
        },
        ml_flags: py::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef::zeroed(),
];

static mut RUNTIME_DEFINITION: py::PyModuleDef = py::PyModuleDef {
    m_base: py::PyModuleDef_HEAD_INIT,
    m_name: RUNTIME_MODULE.as_ptr(),
    m_doc: std::ptr::null(),
    m_size: 0,
    m_methods: &raw mut RUNTIME_METHODS as *mut py::PyMethodDef,
    m_slots: std::ptr::null_mut(),
    m_traverse: None,
    m_clear: None,
    m_free: None,
};

unsafe extern "C" fn init_runtime_module() -> *mut py::PyObject {
    // SAFETY: called once by CPython's import of the built-in module, with
    // the GIL held; the definition is static.
    unsafe { py::PyModule_Create(&raw mut RUNTIME_DEFINITION) }
}

fn add_runtime_module() -> Result<()> {
    // SAFETY: before initialization, as PyImport_AppendInittab requires;
    // the name and the function are static.
    let added =
        unsafe { py::PyImport_AppendInittab(RUNTIME_MODULE.as_ptr(), Some(init_runtime_module)) };
    match added {
        0 => Ok(()),
        _ => Err(interpreter_error(
            "configuration",
            "cannot add the runtime's built-in module",
        )),
    }
}

/// Between the two steps of initialization: zipimport inflates with the
/// runtime's `inflate`, and takes the table of `archive` as the runtime's
/// mapping over `table` instead of parsing it (when the runtime's text of
/// the path is the one `sys.path` holds).
fn prepare_zipimport(archive: &Path, file: &File, table: Option<&'static Table>) -> Result<()> {
    let failed = || {
        // SAFETY: the GIL is held; the exception, if one is set, is taken
        // and released here.
        let why = unsafe {
            let (mut kind, mut error, mut traceback) = (
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            py::PyErr_Fetch(&mut kind, &mut error, &mut traceback);
            py::Py_XDECREF(kind);
            py::Py_XDECREF(traceback);
            let text = match error.is_null() {
                true => std::ptr::null_mut(),
                false => py::PyObject_Str(error),
            };
            let why = text_of(text).unwrap_or_else(|| String::from("no reason given"));
            py::Py_XDECREF(text);
            py::Py_XDECREF(error);
            py::PyErr_Clear();
            why
        };
        interpreter_error(
            "interpreter initialization",
            &format!("cannot give zipimport the runtime's inflate and table of contents: {why}"),
        )
    };
    let archive_c = c_string(archive.as_os_str().as_bytes(), "the executable's path")?;
    // SAFETY: the core is initialized and this thread holds the GIL; every
    // new reference is released once, null results are checked first.
    unsafe {
        let zipimport = py::PyImport_ImportModule(c"zipimport".as_ptr());
        if zipimport.is_null() {
            return Err(failed());
        }
        let runtime = py::PyImport_ImportModule(RUNTIME_MODULE.as_ptr());
        let function = match runtime.is_null() {
            true => std::ptr::null_mut(),
            false => py::PyObject_GetAttrString(runtime, c"decompress_func".as_ptr()),
        };
        let patched = !function.is_null()
            && py::PyObject_SetAttrString(zipimport, c"_get_decompress_func".as_ptr(), function)
                == 0;
        py::Py_XDECREF(function);
        // `_get_data`: the runtime's for its own archive. The statics keep
        // their references for the life of the process.
        // Before the codecs are set up, CPython decodes with the locale's
        // functions, which need a NUL-terminated string.
        let path = py::PyUnicode_DecodeFSDefault(archive_c.as_ptr());
        let stock = py::PyObject_GetAttrString(zipimport, c"_get_data".as_ptr());
        let error = py::PyObject_GetAttrString(zipimport, c"ZipImportError".as_ptr());
        let ours = match runtime.is_null() {
            true => std::ptr::null_mut(),
            false => py::PyObject_GetAttrString(runtime, c"get_data".as_ptr()),
        };
        let patched = patched
            && !path.is_null()
            && !stock.is_null()
            && !error.is_null()
            && !ours.is_null()
            && file
                .try_clone()
                .is_ok_and(|file| ARCHIVE_FILE.set(file).is_ok());
        if patched {
            ARCHIVE_PATH.store(path, Ordering::Release);
            STOCK_GET_DATA.store(stock, Ordering::Release);
            ZIP_IMPORT_ERROR.store(error, Ordering::Release);
        } else {
            py::Py_XDECREF(path);
            py::Py_XDECREF(stock);
            py::Py_XDECREF(error);
        }
        let patched =
            patched && py::PyObject_SetAttrString(zipimport, c"_get_data".as_ptr(), ours) == 0;
        py::Py_XDECREF(ours);
        py::Py_XDECREF(runtime);
        if !patched {
            py::Py_DECREF(zipimport);
            return Err(failed());
        }
        let table = match (table, archive.to_str()) {
            (Some(table), Some(text)) => {
                // `path`: the text `sys.path` holds, decoded as CPython
                // decodes it (kept by `ARCHIVE_PATH`).
                let key = path;
                let expected = py::PyUnicode_FromStringAndSize(
                    text.as_ptr().cast(),
                    text.len() as py::Py_ssize_t,
                );
                let same = !key.is_null()
                    && !expected.is_null()
                    && py::PyUnicode_Compare(key, expected) == 0;
                py::Py_XDECREF(expected);
                let toc = match same {
                    true => table::new_mapping(table),
                    false => std::ptr::null_mut(),
                };
                let cache = py::PyObject_GetAttrString(zipimport, c"_zip_directory_cache".as_ptr());
                let stored =
                    !toc.is_null() && !cache.is_null() && py::PyDict_SetItem(cache, key, toc) == 0;
                py::Py_XDECREF(cache);
                py::Py_XDECREF(toc);
                stored
            }
            _ => true,
        };
        py::Py_DECREF(zipimport);
        if !table {
            // zipimport reads the directory itself: slower, as correct.
            py::PyErr_Clear();
        }
    }
    Ok(())
}

/// Sets (`Some`) or removes (`None`) a variable of this process's
/// environment (and of its children's), which is only sound while no other
/// thread may read the environment: the kernel's count of our threads is
/// checked first. If it cannot be checked, or other threads run, the
/// environment is left as it is.
pub fn set_environment(name: &str, value: Option<&str>) {
    if value.is_none() && std::env::var_os(name).is_none() {
        return;
    }
    if !single_threaded() {
        crate::debug::note(format_args!(
            "not changing {name}: this process may have other threads"
        ));
        return;
    }
    // SAFETY: this process has one thread (`single_threaded`), so nothing
    // reads the environment concurrently.
    unsafe {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    }
}

/// Whether this process has one thread: procfs links one entry per thread
/// below `task`, besides `.` and `..`.
fn single_threaded() -> bool {
    std::fs::metadata("/proc/self/task")
        .is_ok_and(|task| std::os::unix::fs::MetadataExt::nlink(&task) == 3)
}

/// With `argv`, python's own command line is parsed for `-E`, `-I`,
/// `-X utf8` and the like, as `python` does before anything else.
fn pre_initialize(argv: Option<&[CString]>) -> Result<Option<i32>> {
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
    check(status, "configuration").and_then(no_exit)
}

/// Sets `sys.NAME` to `path`, decoded as the bootstrap's path arguments
/// are (as python decodes file names).
fn set_sys_path(name: &CStr, path: &Path) -> Result<()> {
    // SAFETY: the interpreter is initialized and this thread holds the GIL;
    // the name is NUL-terminated. `PySys_SetObject` takes its own
    // reference, so ours is released after.
    let set = unsafe {
        let value = bootstrap::object(&Argument::Path(path.to_owned()));
        let set = !value.is_null() && py::PySys_SetObject(name.as_ptr(), value) == 0;
        py::Py_XDECREF(value);
        if !set {
            py::PyErr_Clear();
        }
        set
    };
    match set {
        true => Ok(()),
        false => Err(interpreter_error(
            "initialization",
            &format!("cannot set sys.{}", name.to_string_lossy()),
        )),
    }
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
    check(status, "setting sys.argv").and_then(no_exit)
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
    check(status, "setting sys.path").and_then(no_exit)
}

fn c_string(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes)
        .map_err(|_| interpreter_error("configuration", &format!("{what} contains a NUL byte")))
}

/// `Ok(None)`: success; `Ok(Some(status))`: CPython asks to exit.
fn check(status: py::PyStatus, phase: &'static str) -> Result<Option<i32>> {
    // SAFETY: a PyStatus returned by CPython; its strings are static or NULL.
    unsafe {
        if py::PyStatus_Exception(status) == 0 {
            return Ok(None);
        }
        if py::PyStatus_IsExit(status) != 0 {
            return Ok(Some(status.exitcode));
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

/// Setting a configuration value never asks to exit; if it did, say so.
fn no_exit(exit: Option<i32>) -> Result<()> {
    match exit {
        None => Ok(()),
        Some(status) => Err(interpreter_error(
            "configuration",
            &format!("CPython asked to exit with status {status}"),
        )),
    }
}
