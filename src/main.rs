use std::process::ExitCode;

fn main() -> ExitCode {
    let argv = std::env::args_os().collect();
    let mut prog = String::from("pyferry");
    match pyferry::run(argv, &mut prog) {
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
