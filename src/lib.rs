//! pyferry ships a Python application as one executable file.
//!
//! One library, two roles, in three rooms:
//!
//! - [`format`]: what a packed executable holds, as bytes: the zip in an ELF
//!   section that survives `strip`, the manifest in the zip's end record,
//!   the stamp in the runtime's read-only data, and the contract both sides
//!   keep (the inner archive of native units, the bootstrap module, the
//!   standalone standard library's layout). Pure byte work.
//! - [`runtime`]: with a payload, pyferry is the app. Locate the payload ->
//!   classify the invocation -> pick a safe cache root -> ensure the native
//!   units are extracted (lock, temporary sibling, rename; on a first run,
//!   deferred until the app first imports what needs them) -> configure the
//!   embedded CPython, whose zipimport reads the archive through the
//!   runtime -> run the bootstrap, which runs the entry point. The hot
//!   path; the only `unsafe` is its `interpreter` module.
//! - [`builder`]: without one, pyferry is the CLI. `pack` classifies inputs
//!   -> installs them with pip into a staging dir -> resolves the entry point
//!   -> byte-compiles -> finds the native units -> writes a deterministic
//!   zip and its hash -> a temp file -> one rename. `inspect` reads it back.
//!   pyferry as installed carries a payload of its own, its kit (manifest
//!   `builder`): then it is the CLI too, and its own python when started
//!   with `PYFERRY_INTERPRETER=1` (pack's pip and byte-compiler) or through
//!   its python link (`runtime::python_link`: their children).
//!
//! The runtime never uses the builder, and the builder writes only the
//! format (its `inspect` and `cache` commands, and the kit, read what the
//! runtime reads or wrote). So the runtime links alone too:
//! `pyferry-runtime` ([`run_app`]) is what pack writes apps on, 2 MB
//! smaller than `pyferry`.
//! Shared plumbing lives at the root: `error` (one error type and its
//! renderer), `console`, `debug`, `balance`, and `build_python` (facts about
//! the embedded CPython, from `build.rs`).
//!
//! Two flavors, chosen at compile time (`build.rs` sets the
//! `pyferry_flavor` cfg): `standalone` links libpython statically and every
//! app carries the standard library (gathered by `builder::pack::stdlib`,
//! laid out as `format::stdlib_unit` says, shared by `runtime::stdlib`);
//! `system` links the distro's shared libpython and uses its standard
//! library, and carries none of the standalone code.

pub mod balance;
pub mod builder;
pub mod console;
pub mod debug;
pub mod error;
pub mod format;
pub mod runtime;

/// Facts about the CPython this binary embeds, found by `build.rs`.
pub mod build_python {
    include!(concat!(env!("OUT_DIR"), "/build_python.rs"));
}

use error::{Error, Result};
use format::stamp::Stamp;
use std::ffi::OsString;
use std::path::Path;

/// A binary's `main`: runs `dispatch` (`run` or `run_app`) on the command
/// line; an error is printed (and reported where no terminal shows it),
/// under `prog` until the dispatch knows the name it should carry.
pub fn main_of(
    prog: &str,
    dispatch: fn(Vec<OsString>, &mut String) -> Result<i32>,
) -> std::process::ExitCode {
    let argv = std::env::args_os().collect();
    let mut prog = prog.to_owned();
    match dispatch(argv, &mut prog) {
        // The low byte, as the kernel would keep it anyway.
        Ok(status) => std::process::ExitCode::from(status as u8),
        Err(error) => {
            let text = error.render(&prog);
            eprint!("{text}");
            runtime::unattended::report_error(&prog, &text);
            std::process::ExitCode::FAILURE
        }
    }
}

/// The dispatch: a payload makes us the app; none, the builder; a broken one,
/// an error. `prog` is set to the name errors should carry.
pub fn run(argv: Vec<OsString>, prog: &mut String) -> Result<i32> {
    let mut phases = debug::Phases::start();
    match locate_payload(prog)? {
        Some(payload) => {
            let invocation = runtime::invocation::classify(&argv, &payload.path);
            // pyferry with its kit: the builder, unless started as python
            // (by pack, for pip and the byte-compiler, and by their
            // children).
            let as_python = matches!(invocation, runtime::invocation::Invocation::Python { .. });
            if payload.manifest.builder && !as_python {
                "pyferry".clone_into(prog);
                return builder::cli::run(argv, Some(builder::kit::Kit { payload }));
            }
            prog.clone_from(&payload.manifest.name);
            phases.done("locate payload");
            runtime::run(payload, argv, invocation, phases)
        }
        None => builder::cli::run(argv, None),
    }
}

/// The dispatch of the bare runtime (`pyferry-runtime`, what pack writes
/// apps on): the app, or an error; no builder, so that linking leaves the
/// builder's code out of every app.
pub fn run_app(argv: Vec<OsString>, prog: &mut String) -> Result<i32> {
    let mut phases = debug::Phases::start();
    match locate_payload(prog)? {
        Some(payload) if !payload.manifest.builder => {
            prog.clone_from(&payload.manifest.name);
            phases.done("locate payload");
            let invocation = runtime::invocation::classify(&argv, &payload.path);
            runtime::run(payload, argv, invocation, phases)
        }
        // The build id in the message keeps it in this binary, where pack
        // looks for it.
        _ => Err(Error::Usage {
            usage: format!(
                "this is the runtime that `pyferry pack` writes apps on ({}); it runs only as \
                 part of a packed app: run `pyferry` to pack one",
                build_python::BUILD_ID
            ),
        }),
    }
}

/// This executable's payload, if it carries one; `prog` becomes its file
/// name when it is a packed app.
fn locate_payload(prog: &mut String) -> Result<Option<runtime::payload::Payload>> {
    let exe = std::env::current_exe().map_err(error::io("find", Path::new("/proc/self/exe")))?;
    let stamp = Stamp::own().map_err(|reason| Error::PayloadCorrupt {
        exe: exe.clone(),
        reason,
    })?;
    if let (Stamp::Packed { .. }, Some(name)) = (&stamp, exe.file_name()) {
        *prog = name.to_string_lossy().into_owned();
    }
    runtime::payload::locate(&exe, Some(&stamp))
}
