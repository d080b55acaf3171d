//! `PYFERRY_DEBUG=1`: each startup phase and its time, on stderr.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var_os("PYFERRY_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

/// Times the phases of a start; prints each as it ends.
pub struct Phases {
    last: Instant,
}

impl Phases {
    pub fn start() -> Phases {
        Phases {
            last: Instant::now(),
        }
    }

    /// Ends the phase `name`, started when the previous one ended.
    pub fn done(&mut self, name: &str) {
        let now = Instant::now();
        if enabled() {
            let ms = (now - self.last).as_secs_f64() * 1000.0;
            eprintln!("pyferry[debug]: {name:<24} {ms:8.3} ms");
        }
        self.last = now;
    }
}

/// A free-form debug line, formatted only when it is printed: the notes of
/// a start (timings) must not cost the start that prints none.
pub fn note(text: std::fmt::Arguments<'_>) {
    if enabled() {
        eprintln!("pyferry[debug]: {text}");
    }
}
