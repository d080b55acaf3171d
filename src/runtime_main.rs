//! `pyferry-runtime`: the bare runtime that `pyferry pack` writes apps on.
//! The same runtime as `pyferry`'s, without the builder (its command line,
//! pip driving, compressors): smaller, in every app.

use std::process::ExitCode;

fn main() -> ExitCode {
    pyferry::main_of("pyferry-runtime", pyferry::run_app)
}
