//! Pack's own cache, apart from the runtime's: what pack would otherwise
//! redo at every pack (the standard library's zip, `stdlib::prepare`; its
//! compressed frames, `shared_frames`).

use crate::builder::progress::Progress;
use crate::format::solid;
use sha2::{Digest, Sha256};
use std::fs::{self, DirBuilder};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use std::time::SystemTime;

/// `$PYFERRY_PACK_CACHE_DIR`, else `pyferry-pack` in the user's cache
/// directory; used only while it is a directory of ours that no one else
/// can read or write (what it holds goes into executables).
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("PYFERRY_PACK_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::cache_dir()?.join("pyferry-pack"),
    };
    let _ = DirBuilder::new().recursive(true).mode(0o700).create(&dir);
    let meta = fs::symlink_metadata(&dir).ok()?;
    let uid = rustix::process::geteuid().as_raw();
    let private = meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0;
    if !private {
        crate::debug::note(format_args!(
            "not caching in {}: not a private directory of ours",
            dir.display()
        ));
    }
    private.then_some(dir)
}

/// Compressed parts kept: the newest used, by modification time (each
/// standard library cut by `--stdlib minimal` has frames of its own).
const FRAMES_KEPT: usize = 8;

/// `block` (the standard library's part of a native archive, the same in
/// every app) as zstd frames at `solid::SHARED_LEVEL`: seconds of work, so
/// done once per content and kept in the cache. Cached frames are decoded
/// and compared before they are used: damaged ones are made again.
pub fn shared_frames(block: &[u8], progress: &Progress) -> std::io::Result<Vec<u8>> {
    let level = solid::SHARED_LEVEL;
    let key = crate::format::archive_hash::hex(&Sha256::digest(block));
    let name = format!("frame-{level}-{key}.zst");
    let cached = dir().map(|dir| dir.join(&name));
    if let Some(path) = &cached
        && let Ok(frames) = fs::read(path)
        && decodes_to(&frames, block)
    {
        // Recently used: kept when older frames go.
        let _ = fs::File::options()
            .append(true)
            .open(path)
            .and_then(|file| file.set_modified(SystemTime::now()));
        return Ok(frames);
    }
    // Seconds that cannot be counted: a spinner, with its elapsed time.
    let spinner = progress.phase("compressing the standard library");
    spinner.message(&format!(
        "{} MB, once: later packs reuse it",
        block.len() >> 20
    ));
    let frames = solid::compress(block, level)?;
    drop(spinner);
    if let Some(path) = cached {
        let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        match fs::write(&temp, &frames).and_then(|()| fs::rename(&temp, &path)) {
            Ok(()) => forget_old_frames(&path),
            Err(_) => {
                let _ = fs::remove_file(&temp);
            }
        }
    }
    Ok(frames)
}

/// Whether `frames` decode to `block`.
fn decodes_to(frames: &[u8], block: &[u8]) -> bool {
    let Ok(decoded) = solid::decompress(frames, 0, block.len() as u64) else {
        return false;
    };
    let mut bytes = Vec::with_capacity(block.len());
    decoded.reader().read_to_end(&mut bytes).is_ok() && bytes == block
}

/// Removes all but the `FRAMES_KEPT` newest frames from the cache that
/// holds `newest`.
fn forget_old_frames(newest: &std::path::Path) {
    let Some(dir) = newest.parent() else {
        return;
    };
    let mut frames: Vec<(SystemTime, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("frame-"))
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .collect();
    frames.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, path) in frames.into_iter().skip(FRAMES_KEPT) {
        if path != newest {
            let _ = fs::remove_file(path);
        }
    }
}
