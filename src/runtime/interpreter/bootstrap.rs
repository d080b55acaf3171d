//! The bootstrap: its module, imported from its compiled code in the
//! archive, and the call of one of its functions that starts the app.
//!
//! The call's arguments (the app's name, its entry point, paths) are made
//! Python objects here, and `_pyferry_runtime.start()` makes the call: the
//! interpreter's `-c` command is that one short line. With the arguments
//! written into the command as literals, CPython's parser took a million
//! instructions (0.1 ms) to read it at every start.
//!
//! The module is imported from its compiled code in the archive,
//! unmarshalled once. Imported by zipimport, it was unmarshalled twice:
//! once to name its file for its spec (`get_filename`), once to run it
//! (the bootstrap's own fix for this, for the app's modules, lives in the
//! bootstrap). The module gets what zipimport would give it: a zipimporter
//! of the archive as its loader, a spec with the entry as its origin,
//! `__file__` and `__cached__`.

use super::{ARCHIVE_PATH, Sequence, new_sequence};
use crate::format::BOOTSTRAP_MODULE;
use crate::runtime::zipimport::{Row, Table, TableEntry};
use pyo3_ffi as py;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// The `-c` command of an app, and the prelude of python mode.
pub const START: &CStr = c"__import__('_pyferry_runtime').start()\n";

/// A call of a function of the bootstrap module.
pub struct BootstrapCall {
    pub function: &'static CStr,
    pub arguments: Vec<Argument>,
}

/// An argument of a `BootstrapCall`, as the Python object it becomes.
pub enum Argument {
    None,
    Bool(bool),
    /// A `str` of the text.
    Text(String),
    /// A `str` of the path, decoded as CPython decodes file names.
    Path(PathBuf),
    Tuple(Vec<Argument>),
    List(Vec<Argument>),
    Dict(Vec<(Argument, Argument)>),
}

/// What `_pyferry_runtime.start()` calls, once.
static CALL: Mutex<Option<BootstrapCall>> = Mutex::new(None);

/// Sets the call that `_pyferry_runtime.start()` makes.
pub fn prepare(call: BootstrapCall) {
    if let Ok(mut slot) = CALL.lock() {
        *slot = Some(call);
    }
}

/// `_pyferry_runtime.start()`: imports the bootstrap module and makes the
/// prepared call, returning what it returns (its exceptions, `SystemExit`
/// included, go to the command that called it, as before).
pub unsafe extern "C" fn start(
    _module: *mut py::PyObject,
    _unused: *mut py::PyObject,
) -> *mut py::PyObject {
    let call = CALL.lock().ok().and_then(|mut slot| slot.take());
    // SAFETY: called by CPython with the GIL held; every new reference is
    // released once, null results are checked before use.
    unsafe {
        let Some(call) = call else {
            py::PyErr_SetString(
                py::PyExc_RuntimeError,
                c"the app has started already".as_ptr(),
            );
            return std::ptr::null_mut();
        };
        let Ok(name) = CString::new(BOOTSTRAP_MODULE) else {
            return std::ptr::null_mut();
        };
        let module = Owned(py::PyImport_ImportModule(name.as_ptr()));
        if module.0.is_null() {
            return std::ptr::null_mut();
        }
        let function = Owned(py::PyObject_GetAttrString(module.0, call.function.as_ptr()));
        let arguments = Owned(new_sequence(&call.arguments, Sequence::Tuple, |item| {
            object(item)
        }));
        if function.0.is_null() || arguments.0.is_null() {
            return std::ptr::null_mut();
        }
        py::PyObject_Call(function.0, arguments.0, std::ptr::null_mut())
    }
}

/// A new reference to the object `argument` stands for, or null with an
/// exception set.
///
/// # Safety
/// The GIL must be held.
pub(super) unsafe fn object(argument: &Argument) -> *mut py::PyObject {
    // SAFETY: the GIL is held; the text and path bytes are copied.
    unsafe {
        match argument {
            Argument::None => {
                let none = py::Py_None();
                py::Py_INCREF(none);
                none
            }
            Argument::Bool(value) => py::PyBool_FromLong(i64::from(*value) as _),
            Argument::Text(text) => {
                py::PyUnicode_FromStringAndSize(text.as_ptr().cast(), text.len() as py::Py_ssize_t)
            }
            Argument::Path(path) => {
                let bytes = path.as_os_str().as_bytes();
                py::PyUnicode_DecodeFSDefaultAndSize(
                    bytes.as_ptr().cast(),
                    bytes.len() as py::Py_ssize_t,
                )
            }
            Argument::Tuple(items) => new_sequence(items, Sequence::Tuple, |item| object(item)),
            Argument::List(items) => new_sequence(items, Sequence::List, |item| object(item)),
            Argument::Dict(pairs) => {
                let dict = py::PyDict_New();
                for (key, value) in pairs {
                    if dict.is_null() {
                        break;
                    }
                    let (key, value) = (Owned(object(key)), Owned(object(value)));
                    if key.0.is_null()
                        || value.0.is_null()
                        || py::PyDict_SetItem(dict, key.0, value.0) != 0
                    {
                        py::Py_DECREF(dict);
                        return std::ptr::null_mut();
                    }
                }
                dict
            }
        }
    }
}

/// Imports the bootstrap module into `sys.modules`. On any failure nothing
/// is left behind (no module, no exception): the bootstrap's command then
/// imports it through zipimport, as before.
///
/// # Safety
/// The interpreter must be initialized and this thread hold the GIL.
pub unsafe fn import(table: &Table, file: &File) {
    let Some(row) = table.get(&format!("{BOOTSTRAP_MODULE}.pyc")) else {
        return;
    };
    let Some(code) = compiled_code(table, row, file) else {
        return;
    };
    // SAFETY: per this function's contract.
    let imported = unsafe { import_code(&table.path(row), &code) };
    match imported {
        true => crate::debug::note(format_args!("bootstrap: imported from its compiled code")),
        // SAFETY: the GIL is held; an exception, if one is set, goes.
        false => unsafe { py::PyErr_Clear() },
    }
}

/// The marshalled code of the bootstrap's pyc, if the pyc is one this
/// CPython reads without looking at a source (an unchecked hash-based pyc,
/// which pack writes).
fn compiled_code(table: &Table, row: &Row, file: &File) -> Option<Vec<u8>> {
    let mut pyc = table.read_entry(file, &TableEntry::from(row)).ok()?;
    // SAFETY: a plain query of a constant.
    let magic = unsafe { py::PyImport_GetMagicNumber() };
    let header = pyc.get(..8)?;
    let same_magic = i64::from(u32::from_le_bytes(header[..4].try_into().ok()?)) == magic as i64;
    let unchecked_hash_based = u32::from_le_bytes(header[4..8].try_into().ok()?) == 1;
    (same_magic && unchecked_hash_based && pyc.len() > 16).then(|| pyc.split_off(16))
}

/// `spec_from_file_location(name, path, loader=zipimporter(archive),
/// submodule_search_locations=None)`, a module with it in `sys.modules`,
/// then `PyImport_ExecCodeModuleObject`; false with an exception set, or
/// none.
///
/// # Safety
/// The GIL must be held.
unsafe fn import_code(path: &str, code: &[u8]) -> bool {
    let archive = ARCHIVE_PATH.load(Ordering::Acquire);
    let Ok(name) = CString::new(BOOTSTRAP_MODULE) else {
        return false;
    };
    if archive.is_null() {
        return false;
    }
    // SAFETY: per this function's contract; `Owned` releases each new
    // reference once, when it goes out of scope.
    unsafe {
        let code = Owned(py::PyMarshal_ReadObjectFromString(
            code.as_ptr().cast(),
            code.len() as py::Py_ssize_t,
        ));
        if code.0.is_null() || py::PyCode_Check(code.0) == 0 {
            return false;
        }
        let name = Owned(py::PyUnicode_FromString(name.as_ptr()));
        let path = Owned(py::PyUnicode_FromStringAndSize(
            path.as_ptr().cast(),
            path.len() as py::Py_ssize_t,
        ));
        let zipimport = Owned(py::PyImport_ImportModule(c"zipimport".as_ptr()));
        let external = Owned(py::PyImport_ImportModule(
            c"_frozen_importlib_external".as_ptr(),
        ));
        if [name.0, path.0, zipimport.0, external.0]
            .iter()
            .any(|o| o.is_null())
        {
            return false;
        }
        let importer_class = Owned(py::PyObject_GetAttrString(
            zipimport.0,
            c"zipimporter".as_ptr(),
        ));
        let spec_from_file_location = Owned(py::PyObject_GetAttrString(
            external.0,
            c"spec_from_file_location".as_ptr(),
        ));
        if importer_class.0.is_null() || spec_from_file_location.0.is_null() {
            return false;
        }
        let importer = Owned(py::PyObject_CallOneArg(importer_class.0, archive));
        let arguments = Owned(py::PyTuple_Pack(2, name.0, path.0));
        let keywords = Owned(py::PyDict_New());
        if importer.0.is_null() || arguments.0.is_null() || keywords.0.is_null() {
            return false;
        }
        if py::PyDict_SetItemString(keywords.0, c"loader".as_ptr(), importer.0) != 0
            || py::PyDict_SetItemString(
                keywords.0,
                c"submodule_search_locations".as_ptr(),
                py::Py_None(),
            ) != 0
        {
            return false;
        }
        let spec = Owned(py::PyObject_Call(
            spec_from_file_location.0,
            arguments.0,
            keywords.0,
        ));
        if spec.0.is_null() {
            return false;
        }
        let package = Owned(py::PyObject_GetAttrString(spec.0, c"parent".as_ptr()));
        // A borrowed reference to the new, empty module in sys.modules.
        let module = match package.0.is_null() {
            true => std::ptr::null_mut(),
            false => py::PyImport_AddModuleObject(name.0),
        };
        if module.is_null()
            || py::PyObject_SetAttrString(module, c"__spec__".as_ptr(), spec.0) != 0
            || py::PyObject_SetAttrString(module, c"__loader__".as_ptr(), importer.0) != 0
            || py::PyObject_SetAttrString(module, c"__package__".as_ptr(), package.0) != 0
        {
            forget(name.0);
            return false;
        }
        // Sets `__file__` and `__cached__` (keeping the spec and loader
        // above), runs the code, and removes the module again if it fails.
        let imported = Owned(py::PyImport_ExecCodeModuleObject(
            name.0, code.0, path.0, path.0,
        ));
        !imported.0.is_null()
    }
}

/// Removes the module of `name` from `sys.modules`. Any exception set is
/// dropped: the caller falls back to zipimport's import.
///
/// # Safety
/// The GIL must be held and `name` be a valid `str`.
unsafe fn forget(name: *mut py::PyObject) {
    // SAFETY: per this function's contract; no exception is set while the
    // dict is changed.
    unsafe {
        py::PyErr_Clear();
        if py::PyDict_DelItem(py::PyImport_GetModuleDict(), name) != 0 {
            py::PyErr_Clear();
        }
    }
}

/// A new reference (or null), released when dropped.
struct Owned(*mut py::PyObject);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the pointer is null or a new reference owned by this
        // value, and every `Owned` lives within a function whose contract
        // says the GIL is held.
        unsafe { py::Py_XDECREF(self.0) }
    }
}
