//! The per-user extraction cache.
//!
//! One directory per app version, `<root>/<name>-<hash16>`, keyed by the hash
//! computed at pack time, with a lock file `<root>/<name>-<hash16>.lock`
//! beside it.
//!
//! - Warm start: the version's marker file exists; take a shared lock on its
//!   lock file (held until the process exits, so that no pruner removes a
//!   version in use) and check the marker again.
//! - Cold start: take the exclusive lock, remove debris of killed extractors,
//!   extract into a temporary sibling while another thread verifies this
//!   copy's archive (`verify`), write the marker, publish it with one
//!   `rename` (a damaged copy publishes nothing), downgrade to a shared
//!   lock, and prune older versions of the same app that no process holds. A process killed at any moment leaves
//!   at most a temporary directory, which no run trusts.
//!
//! Roots: `$PYFERRY_CACHE_DIR` (and then only it), else the user's cache dir,
//! else private fallbacks. A root must be a real directory owned by the user,
//! writable by no one else, and on a filesystem that allows executing mapped
//! code; otherwise another user could plant code that we would `dlopen`, or
//! `dlopen` would fail.

use super::extract::{self, Failure};
use super::payload::Payload;
use super::verify;
use crate::error::{Error, Result};
use crate::format::Damage;
use crate::format::manifest::{Manifest, NativeArchiveSize};
use rustix::fs::StatVfsMountFlags;
use std::env;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, IsTerminal};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Present in a version directory only once it is complete.
const MARKER: &str = ".pyferry-complete";
/// How long a second process waits quietly before saying why it waits.
const QUIET_WAIT: Duration = Duration::from_secs(1);
/// How long a process waits for another's lock before it gives up: far
/// longer than any extraction takes, so a holder that long has hung.
const LOCK_WAIT_LIMIT: Duration = Duration::from_secs(300);
const HINT: &str = "set PYFERRY_CACHE_DIR to a directory that you own, that no one else can \
                    write, on a filesystem with room for the app and not mounted `noexec`";

/// Why a root on a `noexec` filesystem cannot serve.
const NOEXEC: &str =
    "it is on a filesystem mounted `noexec`, where extension modules cannot be loaded";

/// An extracted app version, protected from pruning while this lives.
#[derive(Debug)]
pub struct Version {
    pub dir: PathBuf,
    /// None for a system package's read-only copy, which nobody prunes.
    _shared_lock: Option<File>,
    /// Whether this process verified its copy as it extracted the version.
    verified: bool,
}

/// Modes of what an extraction creates: private in a per-user cache,
/// world-readable in a system directory that root fills for every user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    User,
    System,
}

impl Audience {
    fn dir_mode(self) -> u32 {
        match self {
            Audience::User => 0o700,
            Audience::System => 0o755,
        }
    }
}

/// Why one candidate root could not serve: try the next, or give up.
enum Attempt {
    Unusable(String),
    Fatal(Error),
}

impl From<Error> for Attempt {
    fn from(error: Error) -> Self {
        Attempt::Fatal(error)
    }
}

/// The root that holds the python link this process was started through
/// (`python_link::root_of_link`): the app's python uses the app's cache,
/// whatever environment it was given.
static LINK_ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Puts `root` (where the python link that started us is) before every
/// other candidate root; checked as every root is.
pub fn prefer_root(root: PathBuf) {
    let _ = LINK_ROOT.set(root);
}

/// The candidate roots: the root of the python link that started us, if
/// any; then `$PYFERRY_CACHE_DIR` alone if set, else the user's cache dir,
/// then private per-user fallbacks (no HOME, a read-only or `noexec` HOME,
/// a cache dir that is not ours).
pub fn candidate_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = LINK_ROOT.get().cloned().into_iter().collect();
    if let Some(dir) = env::var_os("PYFERRY_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        roots.push(PathBuf::from(dir));
        return roots;
    }
    roots.extend(dirs::cache_dir().map(|dir| dir.join("pyferry")));
    if let Some(runtime) = env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        roots.push(PathBuf::from(runtime).join("pyferry"));
    }
    roots.push(env::temp_dir().join(format!("pyferry-{}", effective_uid())));
    roots
}

/// The first usable root, for `pyferry cache`.
pub fn root() -> Result<PathBuf> {
    let mut failures = Vec::new();
    for root in candidate_roots() {
        match prepare_root(&root, Audience::User) {
            Ok(real) => return Ok(real),
            Err(reason) => failures.push((root, reason)),
        }
    }
    Err(unusable(failures))
}

/// Returns the app version's directory, extracting it first if needed.
pub fn ensure_extracted(payload: &Payload) -> Result<Version> {
    if let Some(dir) = system_version(&payload.manifest) {
        return Ok(Version {
            dir,
            _shared_lock: None,
            verified: false,
        });
    }
    let mut failures = Vec::new();
    for root in candidate_roots() {
        let attempt = prepare_root(&root, Audience::User)
            .map_err(Attempt::Unusable)
            .and_then(|real| open_version(&real, payload, Audience::User));
        match attempt {
            Ok(version) => {
                verify_copy(&version, payload)?;
                return Ok(version);
            }
            Err(Attempt::Unusable(reason)) => {
                crate::debug::note(format_args!(
                    "not extracting into {}: {reason}",
                    root.display()
                ));
                failures.push((root, reason));
            }
            Err(Attempt::Fatal(error)) => return Err(error),
        }
    }
    Err(unusable(failures))
}

/// Where a first run stands before it extracts anything.
pub enum Lookup {
    /// The version is there (extracted by an earlier run, or by a system
    /// package), locked against pruning.
    Ready(Version),
    /// Not extracted yet: `ensure_extracted_in` will extract it into this root,
    /// at `root/<cache key>`.
    Pending(PathBuf),
}

/// The app's version if it is extracted already, else the root that
/// `ensure_extracted` would extract it into (the first usable one), for a
/// first run that extracts only when the app needs its files
/// (`runtime::lazy`).
pub fn look_up(payload: &Payload) -> Result<Lookup> {
    if let Some(dir) = system_version(&payload.manifest) {
        return Ok(Lookup::Ready(Version {
            dir,
            _shared_lock: None,
            verified: false,
        }));
    }
    let mut failures = Vec::new();
    for root in candidate_roots() {
        let real = match prepare_root(&root, Audience::User) {
            Ok(real) => real,
            Err(reason) => {
                failures.push((root, reason));
                continue;
            }
        };
        if real
            .join(payload.manifest.cache_key())
            .join(MARKER)
            .exists()
        {
            return ensure_extracted_in(&real, payload).map(Lookup::Ready);
        }
        match filesystem_refusal(&real, needed_room(payload)) {
            None => return Ok(Lookup::Pending(real)),
            Some(why) => failures.push((root, why)),
        }
    }
    Err(unusable(failures))
}

/// The app's version in `root` (a root `look_up` chose), extracted first
/// if needed.
pub fn ensure_extracted_in(root: &Path, payload: &Payload) -> Result<Version> {
    match open_version(root, payload, Audience::User) {
        Ok(version) => {
            verify_copy(&version, payload)?;
            Ok(version)
        }
        Err(Attempt::Unusable(reason)) => Err(unusable(vec![(root.to_owned(), reason)])),
        Err(Attempt::Fatal(error)) => Err(error),
    }
}

/// Verifies this copy of the executable (`verify`), unless the version
/// directory says it was verified already.
fn verify_copy(version: &Version, payload: &Payload) -> Result<()> {
    let dir = &version.dir;
    if version.verified || verify::marker(dir, &payload.file).is_some_and(|marker| marker.exists())
    {
        return Ok(());
    }
    verify::archive(payload).map_err(|reason| Error::PayloadCorrupt {
        exe: payload.path.clone(),
        reason,
    })?;
    // Best effort: a read-only cache verifies the copy at every start.
    let _ = verify::remember(dir, &payload.file, Audience::User.dir_mode());
    Ok(())
}

fn unusable(failures: Vec<(PathBuf, String)>) -> Error {
    let mut failures = failures.into_iter();
    let (dir, mut reason) = failures
        .next()
        .unwrap_or_else(|| (PathBuf::from("?"), "no cache directory to try".to_owned()));
    for (other, why) in failures {
        reason.push_str(&format!("; the fallback `{}` too: {why}", other.display()));
    }
    Error::CacheUnsafe {
        dir,
        reason: reason.into(),
        hint: HINT,
    }
}

/// Extracts the app into `root` for every user (a system package's install
/// step, run as root): world-readable, and never pruned by the app.
pub fn extract_for_system(root: &Path, payload: &Payload) -> Result<Version> {
    let unusable_root = |reason: String| unusable(vec![(root.to_owned(), reason)]);
    let real = prepare_root(root, Audience::System).map_err(unusable_root)?;
    match open_version(&real, payload, Audience::System) {
        Ok(version) => Ok(version),
        Err(Attempt::Unusable(reason)) => Err(unusable_root(reason)),
        Err(Attempt::Fatal(error)) => Err(error),
    }
}

/// The system package's copy of this version, if there is one that only
/// root can have written and that holds this very archive.
fn system_version(manifest: &Manifest) -> Option<PathBuf> {
    let given = Path::new(manifest.system_cache.as_deref()?);
    // By its path without symbolic links, whose every ancestor must be
    // root's alone (`check_ancestors`): no user can swap it. The directory
    // itself is checked by an open handle, which must be what that path
    // names.
    let root = &fs::canonicalize(given).ok()?;
    let dir = root.join(manifest.cache_key());
    let marker = fs::read_to_string(dir.join(MARKER)).ok()?;
    let trusted =
        |meta: &fs::Metadata| meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o022 == 0;
    let checked = |path: &Path| {
        let meta = open_directory(path).ok()?.metadata().ok()?;
        (trusted(&meta) && names(path, &meta)).then_some(())
    };
    let usable = check_ancestors(root, 0).is_ok()
        && checked(root).is_some()
        && checked(&dir).is_some()
        && marker.trim() == manifest.hash;
    if !usable {
        crate::debug::note(format_args!(
            "ignoring the system copy in {}: not root's alone, writable by others, or another \
             version",
            dir.display()
        ));
    }
    usable.then_some(dir)
}

/// Creates the root if needed and checks that it is safe to use; returns it
/// without symbolic links, as every later step names it.
///
/// The checks are made on one open handle of the directory, never on a path
/// that could name something else a moment later: the path as given is
/// opened without following a final link, the handle's owner and mode are
/// checked, then the path without links is resolved, its ancestors are
/// checked (from then on nobody else can change what it names) and it must
/// still name the very directory checked. Another user who swaps the root
/// for a link between two steps makes the start refuse, never use theirs.
fn prepare_root(dir: &Path, audience: Audience) -> Result<PathBuf, String> {
    let uid = effective_uid();
    let handle = match open_directory(dir) {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(audience.dir_mode())
                .create(dir)
                .map_err(|e| format!("it cannot be created: {e}"))?;
            open_directory(dir).map_err(|e| why_not_a_directory(dir, e))?
        }
        Err(e) => return Err(why_not_a_directory(dir, e)),
    };
    let meta = handle
        .metadata()
        .map_err(|e| format!("it cannot be read: {e}"))?;
    check_owner_and_mode(&meta, uid)?;
    let real = fs::canonicalize(dir).map_err(|e| format!("it cannot be resolved: {e}"))?;
    check_ancestors(&real, uid)?;
    if !names(&real, &meta) {
        return Err(format!(
            "it was replaced while pyferry checked it (it now leads to `{}`): someone who can \
             rename entries of its parent directory swapped it",
            real.display()
        ));
    }
    Ok(real)
}

/// Opens `dir` itself, never what a link there leads to.
fn open_directory(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
}

/// Why `dir` could not be opened as a directory.
fn why_not_a_directory(dir: &Path, e: io::Error) -> String {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            "it is a symbolic link; pyferry follows none for its cache".to_owned()
        }
        Ok(meta) if !meta.is_dir() => "it is not a directory".to_owned(),
        _ => format!("it cannot be opened: {e}"),
    }
}

/// A root must be `uid`'s, and writable by no one else.
fn check_owner_and_mode(meta: &fs::Metadata, uid: u32) -> Result<(), String> {
    if meta.uid() != uid {
        return Err(format!(
            "it is owned by uid {}, not by {} (uid {uid})",
            meta.uid(),
            if uid == 0 { "root" } else { "you" }
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Whoever may rename entries of one of the root's ancestors can swap the
/// root, between our checks and our use of it, for a tree of their own, and
/// the app would run their code. So every ancestor of the root (of its path
/// without symbolic links, the one used from then on) must belong to root
/// or to `uid`, and be writable by no one else, unless it is sticky (as
/// `/tmp` is: there, others cannot rename or remove what is ours).
fn check_ancestors(root: &Path, uid: u32) -> Result<(), String> {
    for ancestor in root.ancestors().skip(1) {
        let meta = fs::metadata(ancestor)
            .map_err(|e| format!("its parent `{}` cannot be read: {e}", ancestor.display()))?;
        if meta.uid() != 0 && meta.uid() != uid {
            return Err(format!(
                "its parent directory `{}` belongs to uid {}, who could replace the cache \
                 with files of their own",
                ancestor.display(),
                meta.uid()
            ));
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(format!(
                "its parent directory `{}` is writable by group or others (mode {:o}) and not \
                 sticky: they could replace the cache with files of their own",
                ancestor.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// How many times a start takes the version's lock again after finding it
/// taken on a lock file that a pruner had removed meanwhile.
const LOCK_ATTEMPTS: usize = 8;

/// A pruner removes a version only while it holds the exclusive lock of the
/// version's lock file, and unlinks that file before it lets go. So a shared
/// lock keeps a version only if it is on the lock file that is at the path
/// once locked, with the version complete: a start checks both after every
/// lock it takes, and starts over when a pruner got in between (its open
/// and its lock, or the exclusive-to-shared change, which `flock` does not
/// make atomic).
fn open_version(root: &Path, payload: &Payload, audience: Audience) -> Result<Version, Attempt> {
    for _ in 0..LOCK_ATTEMPTS {
        if let Some(version) = open_version_once(root, payload, audience)? {
            return Ok(version);
        }
    }
    Err(Attempt::Unusable(format!(
        "its version `{}` was removed {LOCK_ATTEMPTS} times while this app locked it \
         (another process pruning the cache in a loop?)",
        payload.manifest.cache_key()
    )))
}

/// One try of `open_version`; `None` when a pruner got in between.
fn open_version_once(
    root: &Path,
    payload: &Payload,
    audience: Audience,
) -> Result<Option<Version>, Attempt> {
    let manifest = &payload.manifest;
    let key = manifest.cache_key();
    let dir = root.join(&key);
    let lock_path = lock_path(root, &key);
    let cannot = |what: &str, path: &Path, e: io::Error| {
        Attempt::Unusable(format!("cannot {what} `{}`: {e}", path.display()))
    };

    if dir.join(MARKER).exists() {
        let lock = match open_lock(&lock_path) {
            Ok(lock) => lock,
            // A complete version on a read-only filesystem (a cache made
            // read-only, a read-only image): a shared lock needs no write
            // access, and with no lock file at all, nothing can prune it.
            Err(e) if e.kind() == io::ErrorKind::ReadOnlyFilesystem => {
                match File::open(&lock_path) {
                    Ok(lock) => lock,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Ok(Some(Version {
                            dir,
                            _shared_lock: None,
                            verified: false,
                        }));
                    }
                    Err(e) => return Err(cannot("open", &lock_path, e)),
                }
            }
            Err(e) => return Err(cannot("open", &lock_path, e)),
        };
        wait_for_lock(&lock, Lock::Shared, &manifest.name, &dir)
            .map_err(|e| cannot("lock", &lock_path, e))?;
        if dir.join(MARKER).exists() && is_same_file(&lock, &lock_path) {
            mark_used(&lock);
            return Ok(Some(Version {
                dir,
                _shared_lock: Some(lock),
                verified: false,
            }));
        }
        // Pruned while we waited for the lock: extract it again.
    }

    if let Some(why) = filesystem_refusal(root, needed_room(payload)) {
        return Err(Attempt::Unusable(why));
    }
    let lock = lock_exclusive(&lock_path, &manifest.name, &dir)
        .map_err(|e| cannot("lock", &lock_path, e))?;
    // Not when another process published it, before we locked or while we
    // waited (then we hold no lock yet).
    let extracting = lock.extracting && !dir.join(MARKER).exists();
    if extracting {
        extract_version(root, &key, &dir, payload, audience)?;
        prune_other_versions(root, manifest);
    }
    let lock = lock.file;
    wait_for_lock(&lock, Lock::Shared, &manifest.name, &dir)
        .map_err(|e| cannot("lock", &lock_path, e))?;
    let kept = dir.join(MARKER).exists() && is_same_file(&lock, &lock_path);
    if kept {
        mark_used(&lock);
    }
    Ok(kept.then_some(Version {
        dir,
        _shared_lock: Some(lock),
        verified: extracting,
    }))
}

/// Under the exclusive lock: temporary sibling, extraction, marker, rename.
fn extract_version(
    root: &Path,
    key: &str,
    dir: &Path,
    payload: &Payload,
    audience: Audience,
) -> Result<(), Attempt> {
    // Verifying this copy (hashing its whole archive again) and extracting
    // it overlap: extraction spends most of its time in the kernel, creating
    // files. Nothing is published before the verdict, so a damaged copy
    // publishes nothing under the genuine version's key, and a verdict
    // against it stops the extraction at its next file.
    let damaged = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let verdict = scope.spawn(|| {
            let verified = verify::archive(payload);
            damaged.store(verified.is_err(), Ordering::Relaxed);
            verified
        });
        let started = Instant::now();
        let extracted = extract_into_temp(root, key, dir, payload, audience, &damaged);
        let verified = verdict
            .join()
            .unwrap_or_else(|_| Err(Damage::Unreadable("the verifying thread failed".into())));
        let (temp, extracted) = extracted?;
        let failed = |attempt| {
            let _ = remove_tree(&temp);
            Err(attempt)
        };
        if let Err(reason) = verified {
            return failed(Attempt::Fatal(Error::PayloadCorrupt {
                exe: payload.path.clone(),
                reason,
            }));
        }
        let extracted = match extracted {
            Ok(extracted) => extracted,
            // Another root may have room (`ensure_extracted` tries it).
            Err(Failure::NoRoom(why)) => {
                return failed(Attempt::Unusable(format!("its filesystem is full: {why}")));
            }
            Err(failure) => {
                return failed(Attempt::Fatal(Error::Extract {
                    dir: dir.to_owned(),
                    source: failure.to_string().into(),
                }));
            }
        };
        if let Err(error) = publish(&temp, dir, payload, audience) {
            return failed(Attempt::Fatal(error));
        }
        crate::debug::note(format_args!(
            "extracted {} files ({} bytes) to {} in {:.1} ms",
            extracted.files,
            extracted.bytes,
            dir.display(),
            started.elapsed().as_secs_f64() * 1000.0
        ));
        Ok(())
    })
}

/// The room a first run's extraction needs, at most: the native archive's
/// decoded length and entries hold the extracted files and directories
/// (and zip headers, and units not extracted; less is needed when the
/// standard library is linked from another app).
fn needed_room(payload: &Payload) -> NativeArchiveSize {
    payload.manifest.native_archive.unwrap_or_default()
}

/// Extracts the app's units into a new temporary sibling of `dir`, which
/// no run trusts, until `stop`; returns it, and what was extracted. Only
/// an unusable root fails here; an extraction's error comes with the
/// directory, to be removed.
fn extract_into_temp(
    root: &Path,
    key: &str,
    dir: &Path,
    payload: &Payload,
    audience: Audience,
    stop: &AtomicBool,
) -> Result<(PathBuf, Result<extract::Extracted, Failure>), Attempt> {
    // Under the lock we are the only writer for this key: whatever else
    // carries its name is debris of a killed process.
    remove_debris(root, key).map_err(|e| Attempt::Unusable(format!("cannot clean it: {e}")))?;
    remove_tree(dir)
        .map_err(|e| Attempt::Unusable(format!("cannot remove `{}`: {e}", dir.display())))?;
    let temp = root.join(format!(".{key}.tmp-{}", std::process::id()));
    DirBuilder::new()
        .mode(audience.dir_mode())
        .create(&temp)
        .map_err(|e| Attempt::Unusable(format!("cannot write in it: {e}")))?;

    let manifest = &payload.manifest;
    #[cfg(pyferry_flavor = "standalone")]
    let linked = link_shared_stdlib(root, key, payload, &temp, audience);
    #[cfg(pyferry_flavor = "system")]
    let linked = false;
    let units: Vec<String> = manifest
        .extracted
        .iter()
        .filter(|unit| !linked || *unit != crate::format::stdlib_unit::UNIT)
        .cloned()
        .collect();
    let mut progress = extract::Progress::new(&manifest.name, io::stderr().is_terminal());
    let extracted = extract::open_native(
        &payload.file,
        payload.entries,
        payload.manifest.native_archive,
    )
    .map_err(Failure::from)
    .and_then(|native| match native {
        Some(archive) => extract::extract_units(
            &archive,
            &units,
            &temp,
            audience.dir_mode(),
            &mut progress,
            stop,
        ),
        None if units.is_empty() => Ok(extract::Extracted::default()),
        None => Err(format!(
            "the manifest lists units to extract, but the archive has no `{}`",
            crate::format::NATIVE_ARCHIVE
        )
        .into()),
    });
    Ok((temp, extracted))
}

/// Makes the verified, extracted `temp` the version directory `dir`: its
/// markers, written after everything else reached the disk, then one
/// rename.
fn publish(temp: &Path, dir: &Path, payload: &Payload, audience: Audience) -> Result<()> {
    #[cfg(pyferry_flavor = "standalone")]
    if let Some(hash) = &payload.manifest.stdlib {
        super::stdlib::record_identity(temp, hash).map_err(crate::error::io("write in", temp))?;
    }
    // This copy was verified while it was extracted.
    verify::remember(temp, &payload.file, audience.dir_mode())
        .map_err(crate::error::io("write in", temp))?;
    // After a power loss right after the rename, the marker must not stand
    // in front of files whose data never reached the disk: everything
    // written goes to the disk first, the marker and the rename after.
    sync_filesystem(temp)?;
    let marker = temp.join(MARKER);
    fs::write(&marker, format!("{}\n", payload.manifest.hash))
        .map_err(crate::error::io("write", &marker))?;
    fs::rename(temp, dir).map_err(crate::error::io("move the extracted files into", dir))
}

/// Writes the data of the filesystem holding `dir` to the disk: one
/// `syncfs`, which costs far less than an `fsync` per extracted file.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let sync = |dir: &Path| -> io::Result<()> {
        let handle = File::open(dir)?;
        rustix::fs::syncfs(&handle)?;
        Ok(())
    };
    sync(dir).map_err(crate::error::io("write to the disk", dir))
}

/// Hard-links the standard library of another complete version that holds
/// the same one into `temp`; whether it did.
#[cfg(pyferry_flavor = "standalone")]
fn link_shared_stdlib(
    root: &Path,
    key: &str,
    payload: &Payload,
    temp: &Path,
    audience: Audience,
) -> bool {
    let Some(hash) = payload.manifest.stdlib.as_deref() else {
        return false;
    };
    let started = Instant::now();
    let donors: Vec<PathBuf> = version_keys(root, None)
        .unwrap_or_default()
        .into_iter()
        .filter(|other| other != key)
        .map(|other| root.join(other))
        .filter(|other| other.join(MARKER).exists())
        .collect();
    let Some(donor) = super::stdlib::link_from(&donors, hash, temp, audience.dir_mode()) else {
        return false;
    };
    // The donor's files must be what our own archive holds (which is
    // verified before anything is published).
    let unit = crate::format::stdlib_unit::UNIT;
    let verified = extract::open_native(
        &payload.file,
        payload.entries,
        payload.manifest.native_archive,
    )
    .and_then(|native| match native {
        Some(archive) => extract::verify_unit(&archive, unit, temp),
        None => Err("the archive has no native part".into()),
    });
    if let Err(why) = verified {
        crate::debug::note(format_args!(
            "not sharing the standard library of {}: {why}",
            donor.display()
        ));
        let _ = remove_tree(&temp.join(unit));
        return false;
    }
    crate::debug::note(format_args!(
        "linked the standard library from {} in {:.1} ms",
        donor.display(),
        started.elapsed().as_secs_f64() * 1000.0
    ));
    true
}

/// The lock file of the version `key` in `root`.
pub fn lock_path(root: &Path, key: &str) -> PathBuf {
    root.join(format!("{key}.lock"))
}

/// `root` checked as a first run checks it, if it exists: nothing is made.
pub fn existing_root(root: &Path) -> Option<PathBuf> {
    root.is_dir()
        .then(|| prepare_root(root, Audience::User).ok())
        .flatten()
}

/// Marks the version of `lock` used now (its lock file's time, which
/// `disk_use` shows); best effort: a read-only cache keeps its times.
fn mark_used(lock: &File) {
    let _ = lock.set_modified(std::time::SystemTime::now());
}

fn open_lock(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
}

/// The lock file of a version about to be extracted.
struct ExtractionLock {
    file: File,
    /// Whether we hold it exclusively, to extract; not when another
    /// process published the version while we waited.
    extracting: bool,
}

/// Takes the exclusive lock of `path`, unless the version (`dir`) is
/// published while we wait: the processes that use it hold its shared lock
/// as long as they run, and one of them may be waiting for us (a pool of
/// workers started through `sys.executable`). A pruner may unlink the lock
/// file between our `open` and our lock: then the lock is on a dead file,
/// and we retry.
fn lock_exclusive(path: &Path, app: &str, dir: &Path) -> io::Result<ExtractionLock> {
    let published = dir.join(MARKER);
    loop {
        let file = open_lock(path)?;
        let extracting = wait_for_lock(&file, Lock::ExclusiveUnless(&published), app, dir)?;
        if !extracting || is_same_file(&file, path) {
            return Ok(ExtractionLock { file, extracting });
        }
    }
}

/// Whether the user interrupted the app (Ctrl-C), for a wait that runs
/// while the app does (a deferred extraction, `lazy`): the interpreter's
/// signal handlers cannot run until the wait ends.
static INTERRUPTED: OnceLock<fn() -> bool> = OnceLock::new();

/// Makes every later wait for a lock end when `interrupted` says so.
pub fn on_interrupt(interrupted: fn() -> bool) {
    let _ = INTERRUPTED.set(interrupted);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock<'a> {
    Shared,
    /// Exclusive, unless the file appears meanwhile: then no lock is taken.
    ExclusiveUnless(&'a Path),
}

/// Locks `lock` (false: not, as `Lock::ExclusiveUnless` allows), saying why
/// after a quiet second if another process holds it, and giving up with an
/// error after `LOCK_WAIT_LIMIT`.
fn wait_for_lock(lock: &File, kind: Lock, app: &str, dir: &Path) -> io::Result<bool> {
    let started = Instant::now();
    let mut said = false;
    loop {
        if INTERRUPTED.get().is_some_and(|interrupted| interrupted()) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "interrupted while waiting for it",
            ));
        }
        let tried = match kind {
            Lock::Shared => lock.try_lock_shared(),
            Lock::ExclusiveUnless(_) => lock.try_lock(),
        };
        match tried {
            Ok(()) => return Ok(true),
            Err(TryLockError::Error(error)) => return Err(error),
            Err(TryLockError::WouldBlock) if matches!(kind, Lock::ExclusiveUnless(file) if file.exists()) =>
            {
                return Ok(false);
            }
            Err(TryLockError::WouldBlock) if started.elapsed() > LOCK_WAIT_LIMIT => {
                return Err(io::Error::other(format!(
                    "another process has held it for {} s without finishing `{}`; if it \
                     hangs, end it (`fuser -v` on the lock file names it) and start the app \
                     again",
                    LOCK_WAIT_LIMIT.as_secs(),
                    dir.display()
                )));
            }
            Err(TryLockError::WouldBlock) if said || started.elapsed() < QUIET_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => {
                eprintln!(
                    "{app}: waiting for another process to finish extracting to `{}`...",
                    dir.display()
                );
                said = true;
            }
        }
    }
}

fn is_same_file(file: &File, path: &Path) -> bool {
    file.metadata().is_ok_and(|open| names(path, &open))
}

/// Whether `path` names the file whose metadata (from an open handle) is
/// `open`.
fn names(path: &Path, open: &fs::Metadata) -> bool {
    fs::metadata(path).is_ok_and(|named| open.dev() == named.dev() && open.ino() == named.ino())
}

/// Removes temporary directories left by killed processes: those of `key`
/// (whose exclusive lock we hold: none of them is live), and those of any
/// other version whose lock nobody holds (an extraction or a prune of it
/// that was killed), so that a killed first run of one version is cleaned
/// up by the next first run of any.
fn remove_debris(root: &Path, key: &str) -> io::Result<()> {
    remove_temporaries(root, key)?;
    for other in debris_keys(root)?.iter().filter(|other| *other != key) {
        // Best effort: another version's debris stays while its lock is held.
        let _ = remove_debris_of_unlocked(root, other);
    }
    Ok(())
}

/// Removes the temporary directories of version `key` if nobody holds its
/// lock (a version's are made only under it).
fn remove_debris_of_unlocked(root: &Path, key: &str) -> io::Result<()> {
    let lock_path = root.join(format!("{key}.lock"));
    let lock = open_lock(&lock_path)?;
    match lock.try_lock() {
        Ok(()) if is_same_file(&lock, &lock_path) => remove_temporaries(root, key),
        Ok(()) | Err(TryLockError::WouldBlock) => Ok(()),
        Err(TryLockError::Error(error)) => Err(error),
    }
}

/// Removes every temporary directory of version `key`.
fn remove_temporaries(root: &Path, key: &str) -> io::Result<()> {
    let prefix = format!(".{key}.tmp-");
    for entry in fs::read_dir(root)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// The keys with debris in `root`: the temporary directories
/// (`.<key>.tmp-<pid>`, `.<key>.tmp-prune-<pid>`) of extractions and prunes
/// that were killed. The next extraction of any version removes those
/// whose lock nobody holds, and so does `pyferry cache prune`.
pub fn debris_keys(root: &Path) -> io::Result<Vec<String>> {
    let mut keys = Vec::new();
    for entry in fs::read_dir(root)?.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let key = name
            .strip_prefix('.')
            .and_then(|rest| rest.split_once(".tmp-"))
            .map(|(key, _)| key)
            .filter(|key| is_version_key(key, None));
        if let Some(key) = key
            && !keys.iter().any(|known| known == key)
        {
            keys.push(key.to_owned());
        }
    }
    keys.sort();
    Ok(keys)
}

/// `<name>-<hash16>`, of `app` if given.
fn is_version_key(name: &str, app: Option<&str>) -> bool {
    name.rsplit_once('-').is_some_and(|(app_name, hash)| {
        hash.len() == 16
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && app.is_none_or(|app| app == app_name)
    })
}

/// The version keys (`<name>-<hash16>`) in `root`, optionally of one app.
pub fn version_keys(root: &Path, app: Option<&str>) -> io::Result<Vec<String>> {
    let mut keys = Vec::new();
    for entry in fs::read_dir(root)?.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_key = is_version_key(&name, app) && entry.file_type().is_ok_and(|t| t.is_dir());
        if is_key {
            keys.push(name);
        }
    }
    keys.sort();
    Ok(keys)
}

/// Removes the other versions of the app that no process uses. Best effort:
/// a version in use, or one that cannot be removed, stays.
fn prune_other_versions(root: &Path, manifest: &Manifest) {
    let ours = manifest.cache_key();
    let Ok(keys) = version_keys(root, Some(&manifest.name)) else {
        return;
    };
    for key in keys.iter().filter(|key| **key != ours) {
        match prune_version(root, key) {
            Ok(true) => crate::debug::note(format_args!("pruned the unused version {key}")),
            Ok(false) => crate::debug::note(format_args!("kept {key}: in use")),
            Err(e) => crate::debug::note(format_args!("cannot prune {key}: {e}")),
        }
    }
}

/// Removes one version (and its debris) if no process holds its lock;
/// `Ok(false)` if in use.
pub fn prune_version(root: &Path, key: &str) -> io::Result<bool> {
    let lock_path = lock_path(root, key);
    let lock = open_lock(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    if !is_same_file(&lock, &lock_path) {
        return Ok(false);
    }
    // Renamed first, so that no run trusts a half-removed directory.
    let dir = root.join(key);
    let doomed = root.join(format!(".{key}.tmp-prune-{}", std::process::id()));
    if dir.exists() {
        fs::rename(&dir, &doomed)?;
    }
    remove_temporaries(root, key)?;
    fs::remove_file(&lock_path)?;
    Ok(true)
}

/// Whether some process holds the version's lock (uses it, or extracts it).
pub fn is_in_use(root: &Path, key: &str) -> bool {
    let Ok(lock) = File::open(root.join(format!("{key}.lock"))) else {
        return false;
    };
    matches!(lock.try_lock(), Err(TryLockError::WouldBlock))
}

/// Removes a directory tree, or whatever else is at `path` (a file where a
/// directory should be), treating "already gone" as success.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The user id the kernel checks our file accesses against.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why `root` cannot take an extraction of `needed` bytes, if it cannot:
/// its filesystem is mounted `noexec` (where `dlopen` fails with "failed
/// to map segment from shared object") or read-only, the directory is not
/// writable, or there is not room enough. Checked before a first run
/// starts to extract, or to plan a deferred extraction, so that the next
/// root serves instead (an extraction that finds no room halfway says so
/// too, `Failure::NoRoom`).
fn filesystem_refusal(root: &Path, needed: NativeArchiveSize) -> Option<String> {
    let stats = match rustix::fs::statvfs(root) {
        Ok(stats) => stats,
        Err(e) => return Some(format!("cannot inspect its filesystem: {e}")),
    };
    if stats.f_flag.contains(StatVfsMountFlags::NOEXEC) {
        return Some(NOEXEC.to_owned());
    }
    if stats.f_flag.contains(StatVfsMountFlags::RDONLY) {
        return Some("it is on a read-only filesystem".to_owned());
    }
    let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
    if let Err(e) = rustix::fs::access(root, access) {
        return Some(format!("cannot write in it: {e}"));
    }
    // Each file takes whole blocks: up to one more than its bytes.
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    let needed_bytes = needed
        .len
        .saturating_add(needed.entries.saturating_mul(stats.f_frsize));
    if free < needed_bytes {
        return Some(format!(
            "its filesystem is full: it has {} free, and the app needs up to {} for its files",
            super::disk_use::megabytes(free),
            super::disk_use::megabytes(needed_bytes)
        ));
    }
    // Filesystems without a fixed number of inodes report none at all.
    if stats.f_files > 0 && stats.f_favail < needed.entries {
        return Some(format!(
            "its filesystem is full: it has room for {} more files, and the app needs {}",
            stats.f_favail, needed.entries
        ));
    }
    None
}
