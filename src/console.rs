//! Writing results to stdout without panicking when the reader has gone
//! (`pyferry inspect app | head -3`).

use std::io::Write;

/// Prints `text` to stdout; a closed pipe is not an error worth a word.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
