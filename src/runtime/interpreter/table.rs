//! zipimport's table of contents of the executable's archive as a mapping
//! of the runtime's: the keys and tuples `zipimport._read_directory` would
//! make, each tuple made when zipimport looks its entry up (see
//! `runtime::zipimport`). It answers what zipimport, `pkgutil` and the
//! bootstrap ask of a table: `in`, `[]`, `get`, `len`, iteration, `keys`,
//! `values`, `items`.

use super::{Sequence, new_sequence};
use crate::runtime::zipimport::{Row, Table};
use pyo3_ffi as py;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// The table the mapping answers from (one archive per process).
static TABLE: OnceLock<Table> = OnceLock::new();

/// Keeps `table` for the life of the process; `None` if one was kept before.
pub fn keep(table: Table) -> Option<&'static Table> {
    TABLE.set(table).ok()?;
    TABLE.get()
}

/// The table `keep` kept, if it kept one.
pub fn kept() -> Option<&'static Table> {
    TABLE.get()
}

/// A new mapping over `table`, or null (with an exception set if CPython
/// failed; without one if `table` is not the one `keep` kept).
///
/// # Safety
/// The GIL must be held.
pub unsafe fn new_mapping(table: &'static Table) -> *mut py::PyObject {
    if !TABLE.get().is_some_and(|kept| std::ptr::eq(kept, table)) {
        return std::ptr::null_mut();
    }
    let mut slots = [
        slot(py::Py_mp_length, length as *mut c_void),
        slot(py::Py_mp_subscript, subscript as *mut c_void),
        slot(py::Py_sq_contains, contains as *mut c_void),
        slot(py::Py_tp_iter, iterate as *mut c_void),
        slot(py::Py_tp_dealloc, dealloc as *mut c_void),
        slot(py::Py_tp_methods, (&raw mut METHODS).cast()),
        slot(0, std::ptr::null_mut()),
    ];
    let mut spec = py::PyType_Spec {
        name: c"_pyferry_runtime.ArchiveTable".as_ptr(),
        basicsize: std::mem::size_of::<py::PyObject>() as c_int,
        itemsize: 0,
        flags: py::Py_TPFLAGS_DEFAULT as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the spec and its slots are valid for the call, CPython copies
    // them into the type (the name and the methods are static); the
    // instance holds a reference to its type, released by `dealloc`.
    unsafe {
        let kind = py::PyType_FromSpec(&mut spec);
        if kind.is_null() {
            return std::ptr::null_mut();
        }
        let mapping = py::PyType_GenericAlloc(kind.cast(), 0);
        py::Py_DECREF(kind);
        mapping
    }
}

fn slot(slot: c_int, pfunc: *mut c_void) -> py::PyType_Slot {
    py::PyType_Slot { slot, pfunc }
}

fn table() -> &'static Table {
    TABLE
        .get()
        .expect("the mapping exists only once the table is kept")
}

/// The entry named by `key`; `None` for a name not in the table and for
/// anything that is not a `str` (no exception left set).
///
/// # Safety
/// The GIL must be held and `key` be a valid reference.
unsafe fn lookup(key: *mut py::PyObject) -> Option<&'static Row> {
    // SAFETY: per this function's contract; the UTF-8 buffer belongs to
    // `key` and is only read during the lookup.
    unsafe {
        if py::PyUnicode_Check(key) == 0 {
            return None;
        }
        let mut size = 0;
        let utf8 = py::PyUnicode_AsUTF8AndSize(key, &mut size);
        if utf8.is_null() {
            // Lone surrogates: no name in the table has them.
            py::PyErr_Clear();
            return None;
        }
        let bytes = std::slice::from_raw_parts(utf8.cast::<u8>(), size as usize);
        table().get(std::str::from_utf8(bytes).ok()?)
    }
}

/// `(path, compress, data_size, file_size, file_offset, time, date, crc)`,
/// zipimport's tuple for `row`.
///
/// # Safety
/// The GIL must be held.
unsafe fn entry(row: &Row) -> *mut py::PyObject {
    let path = table().path(row);
    // SAFETY: the GIL is held; every new reference goes into the tuple,
    // which takes it, or is released if the tuple cannot be made.
    unsafe {
        let fields = [
            py::PyUnicode_FromStringAndSize(path.as_ptr().cast(), path.len() as py::Py_ssize_t),
            py::PyLong_FromUnsignedLongLong(u64::from(row.compress)),
            py::PyLong_FromUnsignedLongLong(u64::from(row.data_size)),
            py::PyLong_FromUnsignedLongLong(u64::from(row.file_size)),
            py::PyLong_FromUnsignedLongLong(row.header_offset),
            py::PyLong_FromUnsignedLongLong(u64::from(row.time)),
            py::PyLong_FromUnsignedLongLong(u64::from(row.date)),
            py::PyLong_FromUnsignedLongLong(u64::from(row.crc)),
        ];
        let tuple = match fields.iter().any(|field| field.is_null()) {
            true => std::ptr::null_mut(),
            false => py::PyTuple_New(fields.len() as py::Py_ssize_t),
        };
        if tuple.is_null() {
            for field in fields {
                py::Py_XDECREF(field);
            }
            return std::ptr::null_mut();
        }
        for (index, field) in fields.into_iter().enumerate() {
            py::PyTuple_SET_ITEM(tuple, index as py::Py_ssize_t, field);
        }
        tuple
    }
}

/// A `str` of `row`'s name.
///
/// # Safety
/// The GIL must be held.
unsafe fn name(row: &Row) -> *mut py::PyObject {
    let name = table().name(row);
    // SAFETY: the GIL is held; the bytes are valid UTF-8, copied.
    unsafe { py::PyUnicode_FromStringAndSize(name.as_ptr().cast(), name.len() as py::Py_ssize_t) }
}

/// A list of `make(row)` for every row, in the directory's order.
///
/// # Safety
/// The GIL must be held.
unsafe fn list_of(make: unsafe fn(&Row) -> *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: the GIL is held; `make` returns a new reference or null with
    // an exception set.
    unsafe { new_sequence(table().rows(), Sequence::List, |row| make(row)) }
}

/// `(name, entry)` of `row`.
///
/// # Safety
/// The GIL must be held.
unsafe fn item(row: &Row) -> *mut py::PyObject {
    // SAFETY: the GIL is held; PyTuple_Pack takes references of its own,
    // so ours are released after it.
    unsafe {
        let (key, value) = (name(row), entry(row));
        let pair = match key.is_null() || value.is_null() {
            true => std::ptr::null_mut(),
            false => py::PyTuple_Pack(2, key, value),
        };
        py::Py_XDECREF(key);
        py::Py_XDECREF(value);
        pair
    }
}

unsafe extern "C" fn length(_mapping: *mut py::PyObject) -> py::Py_ssize_t {
    table().rows().len() as py::Py_ssize_t
}

unsafe extern "C" fn subscript(
    _mapping: *mut py::PyObject,
    key: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: called by CPython with the GIL held and a valid key.
    unsafe {
        if let Some(row) = lookup(key) {
            return entry(row);
        }
        // As a dict raises it: the key as the exception's one argument,
        // even when it is a tuple.
        let arguments = py::PyTuple_Pack(1, key);
        if !arguments.is_null() {
            py::PyErr_SetObject(py::PyExc_KeyError, arguments);
            py::Py_DECREF(arguments);
        }
        std::ptr::null_mut()
    }
}

unsafe extern "C" fn contains(_mapping: *mut py::PyObject, key: *mut py::PyObject) -> c_int {
    // SAFETY: called by CPython with the GIL held and a valid key.
    c_int::from(unsafe { lookup(key) }.is_some())
}

unsafe extern "C" fn iterate(_mapping: *mut py::PyObject) -> *mut py::PyObject {
    // SAFETY: called by CPython with the GIL held; the list's only other
    // reference is the iterator's.
    unsafe {
        let names = list_of(name);
        if names.is_null() {
            return names;
        }
        let iterator = py::PyObject_GetIter(names);
        py::Py_DECREF(names);
        iterator
    }
}

unsafe extern "C" fn dealloc(mapping: *mut py::PyObject) {
    // SAFETY: called by CPython once the last reference is gone; the
    // instance was allocated by PyType_GenericAlloc (freed with
    // PyObject_Free, as its type's tp_free), and holds a reference to its
    // heap type.
    unsafe {
        let kind = py::Py_TYPE(mapping);
        py::PyObject_Free(mapping.cast());
        py::Py_DECREF(kind.cast());
    }
}

/// `get(key, default=None)`.
unsafe extern "C" fn get(
    _mapping: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    // SAFETY: called by CPython with `nargs` valid arguments and the GIL
    // held; the default is returned as a new reference.
    unsafe {
        if !(1..=2).contains(&nargs) {
            py::PyErr_SetString(
                py::PyExc_TypeError,
                c"get expected 1 or 2 arguments".as_ptr(),
            );
            return std::ptr::null_mut();
        }
        if let Some(row) = lookup(*args) {
            return entry(row);
        }
        let default = match nargs {
            2 => *args.add(1),
            _ => py::Py_None(),
        };
        py::Py_INCREF(default);
        default
    }
}

unsafe extern "C" fn keys(
    _mapping: *mut py::PyObject,
    _unused: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: called by CPython with the GIL held.
    unsafe { list_of(name) }
}

unsafe extern "C" fn values(
    _mapping: *mut py::PyObject,
    _unused: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: called by CPython with the GIL held.
    unsafe { list_of(entry) }
}

unsafe extern "C" fn items(
    _mapping: *mut py::PyObject,
    _unused: *mut py::PyObject,
) -> *mut py::PyObject {
    // SAFETY: called by CPython with the GIL held.
    unsafe { list_of(item) }
}

// CPython keeps a pointer to these for the life of the type.
static mut METHODS: [py::PyMethodDef; 5] = [
    py::PyMethodDef {
        ml_name: c"get".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunctionFast: get,
        },
        ml_flags: py::METH_FASTCALL,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"keys".as_ptr(),
        ml_meth: py::PyMethodDefPointer { PyCFunction: keys },
        ml_flags: py::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"values".as_ptr(),
        ml_meth: py::PyMethodDefPointer {
            PyCFunction: values,
        },
        ml_flags: py::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef {
        ml_name: c"items".as_ptr(),
        ml_meth: py::PyMethodDefPointer { PyCFunction: items },
        ml_flags: py::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    py::PyMethodDef::zeroed(),
];
