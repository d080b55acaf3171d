//! pyferry ships a Python application as one executable file.
//!
//! One binary, two roles. Without a payload it is the builder: `pyferry pack`
//! installs the app's inputs with pip into a staging directory, picks the
//! entry point, byte-compiles every module with the build interpreter
//! (unchecked-hash pycs), finds the top-level units that hold native code,
//! and writes a copy of its own executable with a deterministic zip added as
//! an ELF section that survives `strip` (`elf`); the zip's comment carries
//! the manifest (`trailer`) and its hash is stamped into the runtime's
//! read-only data (`stamp`).
//!
//! With a payload it is the runtime: `payload` finds the manifest at the end
//! of the file (one `pread`); `invocation` decides from the first argument
//! alone whether this is the app, `--extract-only`, or python itself (a
//! `multiprocessing` helper, `PYFERRY_INTERPRETER=1`); `cache` picks a safe
//! per-user root and, on the first run only, extracts the native units (kept
//! in an inner zip) under a lock into a temporary sibling that one `rename`
//! publishes (`extract`); `ffi` configures the embedded CPython through
//! `PyConfig` with `sys.path` = [extraction dir, the executable itself
//! (zipimport), the standard library] and runs the bootstrap
//! (`src/python/bootstrap.py`), which starts the entry point with `python -m`
//! or console-script semantics. `desktop` covers the double-clicked case: a
//! log and a notice when nobody reads stderr.
//!
//! Two flavors (`build.rs`): `standalone` links libpython statically, and
//! `pack` adds the build interpreter's standard library, extension modules
//! and their shared libraries to every app as the `.python` native unit
//! (`pack::stdlib`; extracted layout in `standalone`); `system` links the
//! distro's shared libpython and uses its standard library.
//!
//! All `unsafe` lives in `ffi`.

#[expect(
    unsafe_code,
    reason = "CPython's C API and geteuid are only reachable through FFI"
)]
pub mod ffi;

pub mod archive_path;
pub mod balance;
pub mod cache;
pub mod cli;
pub mod console;
pub mod debug;
pub mod desktop;
pub mod elf;
pub mod error;
pub mod extract;
pub mod inspect;
pub mod invocation;
pub mod manifest;
pub mod pack;
pub mod payload;
pub mod runtime;
pub mod stamp;
pub mod standalone;
pub mod trailer;

/// Facts about the CPython this binary embeds, found by `build.rs`.
pub mod build_python {
    include!(concat!(env!("OUT_DIR"), "/build_python.rs"));
}

use error::{Error, Result};
use stamp::Stamp;
use std::ffi::OsString;
use std::path::Path;

/// The dispatch: a payload makes us the app; none, the builder; a broken one,
/// an error. `prog` is set to the name errors should carry.
pub fn run(argv: Vec<OsString>, prog: &mut String) -> Result<i32> {
    let mut phases = debug::Phases::start();
    let exe = std::env::current_exe().map_err(error::io("find", Path::new("/proc/self/exe")))?;
    let stamp = Stamp::own().map_err(|reason| Error::PayloadCorrupt {
        exe: exe.clone(),
        reason,
    })?;
    if let (Stamp::Packed { .. }, Some(name)) = (&stamp, exe.file_name()) {
        *prog = name.to_string_lossy().into_owned();
    }
    match payload::locate(&exe, Some(&stamp))? {
        Some(payload) => {
            prog.clone_from(&payload.manifest.name);
            phases.done("locate payload");
            runtime::run(payload, argv, phases)
        }
        None => cli::run(argv),
    }
}
