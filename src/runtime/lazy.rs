//! A first run that extracts nothing until the app needs its files.
//!
//! When the manifest says which imports reach the extracted units
//! (`Manifest::extract_on_import`), a first run starts the app straight
//! from the archive, with `sys.path` naming the version directory that
//! `cache::look_up` planned; the bootstrap calls back (`interpreter`'s
//! `_pyferry_runtime.extract`) on the first such import, and the version is
//! extracted then, as `cache` always does it: locked, verified, published by
//! one rename. A hello world extracts nothing at all.

use super::cache::{self, Version};
use super::interpreter;
use super::payload::Payload;
use crate::error::{Result, io};
use crate::format::FALLBACK_LIBRARIES;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// What the extraction will need: this executable, and the root
/// `cache::look_up` chose.
struct Pending {
    payload: Payload,
    root: PathBuf,
}

static PENDING: Mutex<Option<Pending>> = Mutex::new(None);

/// The version once extracted, kept (with its shared lock, so that no
/// pruner removes it) until the process exits.
static EXTRACTED: Mutex<Option<Version>> = Mutex::new(None);

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Defers the extraction of `payload` into `root` until the bootstrap asks.
pub fn defer(payload: &Payload, root: PathBuf) -> Result<()> {
    let payload = payload.try_clone().map_err(io("open", &payload.path))?;
    *locked(&PENDING) = Some(Pending { payload, root });
    interpreter::on_extract(extract_now);
    // Ctrl-C while waiting for another process's extraction raises
    // `KeyboardInterrupt`, as it would anywhere else in the app.
    cache::on_interrupt(interpreter::signal_raised);
    Ok(())
}

/// Extracts the deferred version (once; later calls do nothing). The error
/// is rendered for the user, as `main` renders it.
fn extract_now() -> std::result::Result<(), String> {
    let Some(pending) = locked(&PENDING).take() else {
        return Ok(());
    };
    let version = match cache::ensure_extracted_in(&pending.root, &pending.payload) {
        Ok(version) => version,
        Err(error) => {
            let message = error.render(&pending.payload.manifest.name);
            *locked(&PENDING) = Some(pending);
            return Err(message);
        }
    };
    let manifest = &pending.payload.manifest;
    if manifest
        .extracted
        .iter()
        .any(|unit| unit == FALLBACK_LIBRARIES)
    {
        interpreter::load_fallback_libraries(&version.dir.join(FALLBACK_LIBRARIES));
    }
    *locked(&EXTRACTED) = Some(version);
    Ok(())
}
