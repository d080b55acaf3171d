//! What the cache holds of each app version: its files' size, how much of
//! it is shared with other apps (the standard library, hard-linked), and
//! when it was last used, for `pyferry cache list` and for an app's end
//! user, who has no pyferry: `PYFERRY_CACHE=info APP` shows what the app
//! keeps on disk, `PYFERRY_CACHE=clean APP` removes it. A variable, not an
//! argument: every argument belongs to the app.

use super::cache;
use super::payload::Payload;
use super::python_link;
use crate::error::{Error, Result, io};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The variable an app's end user sets to see or reclaim its cache.
pub const REQUEST_VARIABLE: &str = "PYFERRY_CACHE";

/// One version directory of the cache.
#[derive(Debug)]
pub struct VersionUse {
    pub key: String,
    /// Its files' sizes, and of those the files that other versions' hard
    /// links share (removing this version does not free them).
    pub bytes: u64,
    pub shared_bytes: u64,
    pub files: u64,
    /// The last start that used it (its lock file is touched by each).
    pub last_used: Option<SystemTime>,
    pub in_use: bool,
}

impl VersionUse {
    /// Measures the version `key` in `root`.
    pub fn measure(root: &Path, key: &str) -> VersionUse {
        let mut usage = VersionUse {
            key: key.to_owned(),
            bytes: 0,
            shared_bytes: 0,
            files: 0,
            last_used: fs::metadata(cache::lock_path(root, key))
                .and_then(|meta| meta.modified())
                .ok(),
            in_use: cache::is_in_use(root, key),
        };
        usage.add_tree(&root.join(key));
        usage
    }

    fn add_tree(&mut self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                self.add_tree(&entry.path());
            } else if meta.is_file() {
                self.files += 1;
                self.bytes += meta.len();
                if meta.nlink() > 1 {
                    self.shared_bytes += meta.len();
                }
            }
        }
    }

    /// `hello-0123456789abcdef  16.1 MB in 644 files (15.2 MB shared with
    /// other apps), used 3 minutes ago, in use` (or `unused`: no process
    /// holds it).
    pub fn describe(&self, now: SystemTime) -> String {
        let mut text = format!(
            "{}  {} in {} files",
            self.key,
            megabytes(self.bytes),
            self.files
        );
        if self.shared_bytes > 0 {
            text.push_str(&format!(
                " ({} shared with other apps)",
                megabytes(self.shared_bytes)
            ));
        }
        if let Some(used) = self.last_used {
            text.push_str(&format!(", used {}", ago(now, used)));
        }
        text.push_str(match self.in_use {
            true => ", in use",
            false => ", unused",
        });
        text
    }
}

/// `bytes` for a person: `12.3 MB`.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `3 minutes ago`, `2 days ago`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let seconds = now.duration_since(then).map_or(0, |since| since.as_secs());
    let (count, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3600 => (seconds / 60, "minute"),
        3600..86_400 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

/// `PYFERRY_CACHE=info|clean`: shows or removes what this app keeps in the
/// cache roots it may use, instead of running it.
pub fn serve(payload: &Payload, request: &OsStr) -> Result<i32> {
    let app = &payload.manifest.name;
    let clean = match request.to_str() {
        Some("info") => false,
        Some("clean") => true,
        _ => {
            return Err(Error::Usage {
                usage: format!(
                    "{REQUEST_VARIABLE}=info {app} (what the app keeps on disk) or \
                     {REQUEST_VARIABLE}=clean {app} (remove it); unset {REQUEST_VARIABLE} to run \
                     the app (`{}` is neither)",
                    request.to_string_lossy()
                ),
            });
        }
    };
    let now = SystemTime::now();
    let mut text = String::new();
    let (mut kept, mut freed) = (0, 0);
    for root in existing_roots() {
        let keys = cache::version_keys(&root, Some(app)).map_err(io("list", &root))?;
        if keys.is_empty() {
            continue;
        }
        text.push_str(&format!("{}:\n", root.display()));
        let mut all_removed = true;
        for key in keys {
            let usage = VersionUse::measure(&root, &key);
            let line = usage.describe(now);
            if !clean {
                kept += usage.bytes - usage.shared_bytes;
                text.push_str(&format!("  {line}\n"));
            } else if cache::prune_version(&root, &key).map_err(io("remove", &root.join(&key)))? {
                freed += usage.bytes - usage.shared_bytes;
                text.push_str(&format!("  removed {line}\n"));
            } else {
                all_removed = false;
                kept += usage.bytes - usage.shared_bytes;
                text.push_str(&format!(
                    "  kept (a running copy of {app} uses it) {line}\n"
                ));
            }
        }
        // Its python link too, unless a running copy may start children
        // through it.
        if clean && all_removed {
            remove_python_link(&root, &payload.path);
        }
    }
    text.push_str(&match (clean, text.is_empty()) {
        (false, true) => format!("{app} keeps nothing on disk: its next start extracts it.\n"),
        (false, false) => format!(
            "{app} keeps {} of its own on disk; `{REQUEST_VARIABLE}=clean {app}` removes it \
             (its next start extracts it again).\n",
            megabytes(kept)
        ),
        (true, true) => format!("{app} kept nothing on disk.\n"),
        (true, false) => format!(
            "freed {}{}.\n",
            megabytes(freed),
            match kept {
                0 => String::new(),
                kept => format!("; {} stays while the app runs", megabytes(kept)),
            }
        ),
    });
    crate::console::print(&text);
    Ok(0)
}

/// The cache roots this app may use that exist and are safe: nothing is
/// created to show or remove what is not there.
fn existing_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for root in cache::candidate_roots() {
        if let Some(real) = cache::existing_root(&root)
            && !roots.contains(&real)
        {
            roots.push(real);
        }
    }
    roots
}

/// This executable's python link in `root`, if any (`python_link`).
fn remove_python_link(root: &Path, exe: &Path) {
    let dir = python_link::link_dir(root, exe);
    if dir.is_dir() {
        let _ = cache::remove_tree(&dir);
    }
}
