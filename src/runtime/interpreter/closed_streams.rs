//! Standard streams the process was started without. python leaves a
//! closed fd 0, 1 or 2 closed: `sys.stdin` (or `stdout`, `stderr`) is then
//! `None`, and the app's first `open()` gets that descriptor. Rust's runtime
//! opens `/dev/null` on each before `main`, so that no file of its own lands
//! there; the app would then read an empty stdin and write into nothing,
//! where python shows it there is none.
//!
//! A constructor, which runs before Rust's runtime does, notes which were
//! closed; `close_again` closes those just before the interpreter starts.
//! Until then they keep the runtime's own files (the archive, the cache's
//! directories and lock) off descriptors that python would take for the
//! standard streams.

use std::sync::atomic::{AtomicU8, Ordering};

/// Bit `fd` is set when standard descriptor `fd` was closed at exec.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

extern "C" fn note_closed_streams() {
    let mut closed = 0;
    for fd in 0..3 {
        // SAFETY: F_GETFD reads a descriptor's flags and changes nothing;
        // it fails with EBADF exactly when the descriptor is not open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            closed |= 1 << fd;
        }
    }
    CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

/// Run by the C runtime before `main`, hence before Rust's runtime opens
/// `/dev/null` on the closed streams.
#[used]
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STREAMS: extern "C" fn() = note_closed_streams;

/// Closes the `/dev/null` that Rust's runtime put on each standard stream
/// that was closed at exec, as python finds it.
pub fn close_again() {
    let closed = CLOSED_AT_START.swap(0, Ordering::Relaxed);
    for fd in 0..3 {
        if closed & (1 << fd) != 0 {
            // SAFETY: the descriptor holds Rust's `/dev/null` placeholder,
            // which nothing in the process owns or uses.
            unsafe { libc::close(fd) };
        }
    }
}
