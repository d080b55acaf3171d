//! The per-user extraction cache.
//!
//! One directory per app version, `<root>/<name>-<hash16>`, keyed by the hash
//! computed at pack time. A warm start stats one marker file. A cold start
//! takes an exclusive lock (`<root>/<key>.lock`), extracts into a temporary
//! sibling, writes the marker, and renames the sibling into place: a process
//! killed at any moment leaves at most a temporary directory, which no run
//! trusts and the next extractor removes.
//!
//! The root must be a real directory owned by the user and writable by no one
//! else; otherwise another user could plant code that we would `dlopen`.

use crate::error::{Error, Reason, Result, io};
use crate::extract::{self, remove_tree};
use crate::ffi;
use crate::payload::Payload;
use std::env;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Present in a version directory only once it is complete.
const MARKER: &str = ".pyferry-complete";
/// How long a second process waits quietly before saying why it waits.
const QUIET_WAIT: Duration = Duration::from_secs(1);
const CACHE_HINT: &str = "set PYFERRY_CACHE_DIR to a directory that you own and that no one \
                          else can write";

/// Chooses and checks the cache root: `$PYFERRY_CACHE_DIR` if set (and then
/// only it), else the user's cache dir, else a private fallback.
pub fn root() -> Result<PathBuf> {
    if let Some(dir) = env::var_os("PYFERRY_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        return match prepare_root(&dir) {
            Ok(()) => Ok(dir),
            Err(reason) => Err(Error::CacheUnsafe {
                dir,
                reason,
                hint: CACHE_HINT,
            }),
        };
    }
    let mut first_failure = None;
    for dir in default_roots() {
        match prepare_root(&dir) {
            Ok(()) => return Ok(dir),
            Err(reason) => {
                first_failure.get_or_insert((dir, reason));
            }
        }
    }
    let (dir, reason) = first_failure.unwrap_or_else(|| (PathBuf::new(), "no candidate".into()));
    Err(Error::CacheUnsafe {
        dir,
        reason,
        hint: CACHE_HINT,
    })
}

/// The per-user cache dir, then private per-user directories for when it
/// cannot be used (no HOME, read-only HOME, not ours).
fn default_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = dirs::cache_dir()
        .map(|dir| dir.join("pyferry"))
        .into_iter()
        .collect();
    if let Some(runtime) = env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        roots.push(PathBuf::from(runtime).join("pyferry"));
    }
    roots.push(env::temp_dir().join(format!("pyferry-{}", ffi::effective_uid())));
    roots
}

/// Creates the root if needed (0700) and checks that it is safe to use.
fn prepare_root(dir: &Path) -> Result<(), Reason> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(_) => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("it cannot be created: {e}"))?;
            fs::symlink_metadata(dir).map_err(|e| format!("it cannot be read: {e}"))?
        }
    };
    let uid = ffi::effective_uid();
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link; pyferry follows none for its cache".into());
    }
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    if meta.uid() != uid {
        return Err(format!("it is owned by uid {}, not by you (uid {uid})", meta.uid()).into());
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {:o}); run `chmod go-w` on it",
            meta.mode() & 0o7777
        )
        .into());
    }
    Ok(())
}

/// Returns the directory holding the app's native units, extracting them
/// first if this version is not in the cache yet.
pub fn ensure_extracted(root: &Path, payload: &Payload) -> Result<PathBuf> {
    let manifest = &payload.manifest;
    let key = manifest.cache_key();
    let dir = root.join(&key);
    if dir.join(MARKER).exists() {
        return Ok(dir);
    }

    let lock_path = root.join(format!("{key}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io("create the lock file", &lock_path))?;
    lock_exclusive(&lock, &manifest.name, &dir).map_err(io("lock", &lock_path))?;
    // Someone else may have finished while we waited.
    if dir.join(MARKER).exists() {
        return Ok(dir);
    }

    // Under the lock we are the only writer for this key: whatever else
    // carries its name is debris of a killed process.
    remove_debris(root, &key)?;
    if dir.exists() {
        remove_tree(&dir).map_err(io("remove the incomplete directory", &dir))?;
    }

    let temp = root.join(format!(".{key}.tmp-{}", std::process::id()));
    DirBuilder::new()
        .mode(0o700)
        .create(&temp)
        .map_err(io("create the directory", &temp))?;
    let extracted =
        extract::extract_units(&payload.file, &manifest.native, &temp, 0o700).map_err(|source| {
            Error::Extract {
                dir: dir.clone(),
                source,
            }
        });
    let extracted = match extracted {
        Ok(extracted) => extracted,
        Err(error) => {
            let _ = remove_tree(&temp);
            return Err(error);
        }
    };
    let marker = temp.join(MARKER);
    fs::write(&marker, format!("{}\n", manifest.hash)).map_err(io("write", &marker))?;
    fs::rename(&temp, &dir).map_err(io("move the extracted files into", &dir))?;
    crate::debug::note(&format!(
        "extracted {} files ({} bytes) to {}",
        extracted.files,
        extracted.bytes,
        dir.display()
    ));
    Ok(dir)
}

fn lock_exclusive(lock: &File, app: &str, dir: &Path) -> std::io::Result<()> {
    let started = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(error)) => return Err(error),
            Err(TryLockError::WouldBlock) if started.elapsed() < QUIET_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => {
                eprintln!(
                    "{app}: waiting for another process to finish extracting to `{}`...",
                    dir.display()
                );
                return lock.lock();
            }
        }
    }
}

/// Removes temporary directories of `key` left by killed processes.
fn remove_debris(root: &Path, key: &str) -> Result<()> {
    let prefix = format!(".{key}.tmp-");
    let entries = fs::read_dir(root).map_err(io("list", root))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            remove_tree(&path).map_err(io("remove the stale directory", &path))?;
        }
    }
    Ok(())
}
