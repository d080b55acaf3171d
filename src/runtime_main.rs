//! `pyferry-runtime`: the bare runtime that `pyferry pack` writes apps on.
//! The same runtime as `pyferry`'s, without the builder (its command line,
//! pip driving, compressors): smaller, in every app.

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv = std::env::args_os().collect();
    let mut prog = String::from("pyferry-runtime");
    match pyferry::run_app(argv, &mut prog) {
        // The low byte, as the kernel would keep it anyway.
        Ok(status) => ExitCode::from(status as u8),
        Err(error) => {
            let text = error.render(&prog);
            eprint!("{text}");
            pyferry::runtime::unattended::report_error(&prog, &text);
            ExitCode::FAILURE
        }
    }
}
