use std::process::ExitCode;

fn main() -> ExitCode {
    pyferry::main_of("pyferry", pyferry::run)
}
