//! Python by name: whether a run is the app or python depends only on what
//! was executed, never on the app's arguments or on inherited variables.
//!
//! `sys.executable` is a link of the app's own, `python3` (beside it
//! `python` and `python3.X`), in the cache root the run uses:
//! `<root>/python/<hash of the executable's path>/bin/`, pointing at the
//! packed executable. A run through a file named like that which is this
//! very executable (the same inode: the link, a venv's `bin/python*` made
//! from it, a copy under that name) is python; every other run, whatever
//! its arguments and however deeply nested, is the app. The kernel tells
//! what was executed in two ways, and either counts: the path given to
//! `execve` (`AT_EXECFN`: a child run as `["python3", ...]` with
//! `executable=sys.executable`) and `argv[0]` (a `#!` line naming the link,
//! where `AT_EXECFN` is the script).
//!
//! A venv's python (`ENV/bin/python`, `pyvenv.cfg` beside its directory) is
//! python over that venv only when nobody else can have written its
//! configuration: `pyvenv.cfg` and the directory holding it belong to the
//! user or root and are writable by no one else. Anything else is ignored,
//! so another user's `pyvenv.cfg` and `.pth` files never run as the victim.
//!
//! The link is keyed by the executable's path, not by the app's version:
//! a hook file that names it keeps working when the app is updated in
//! place. A warm start reads one link; a link that points elsewhere (the
//! same archive copied to another place) is pointed at this executable
//! again, one atomic `rename` per name. `pyferry cache prune` removes the
//! links of executables that are gone (`prune_dangling`).

use crate::build_python::PYTHON_VERSION;
use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The names a python answers to, as a venv's `bin/` holds them:
/// `python3` (`sys.executable`), `python3.X` and `python`.
pub fn python_names() -> [String; 3] {
    let minor = PYTHON_VERSION
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    [
        "python3".to_owned(),
        format!("python{minor}"),
        "python".to_owned(),
    ]
}

/// How this process was started as python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsPython {
    /// The path it was started through (a link's path, not its target).
    pub invoked: PathBuf,
    /// The venv whose `bin/python*` that is, when its configuration can be
    /// trusted.
    pub venv: Option<PathBuf>,
}

/// Whether this process was executed through a python name (`python_names`)
/// that is this very executable (`exe`, as the kernel opened it), rather
/// than under the executable's own name. `argv0`: `argv[0]` as given.
pub fn started_as_python(argv0: Option<&OsStr>, exe: &Path) -> Option<AsPython> {
    let own_name = exe.file_name();
    let names = python_names();
    let executed = executed_path();
    let candidates = executed
        .as_deref()
        .map(|path| (path, false))
        .into_iter()
        .chain(argv0.map(|argv0| (argv0, true)));
    for (candidate, may_search_path) in candidates {
        let Some(name) = Path::new(candidate).file_name() else {
            continue;
        };
        // An app named `python3` is the app under its own name.
        if Some(name) == own_name || !names.iter().any(|python| OsStr::new(python) == name) {
            continue;
        }
        let Some(invoked) = resolve(candidate, may_search_path) else {
            continue;
        };
        let own = fs::metadata(exe).ok()?;
        let is_this_executable = fs::metadata(&invoked)
            .is_ok_and(|meta| meta.dev() == own.dev() && meta.ino() == own.ino());
        if is_this_executable {
            let venv = trusted_venv(&invoked);
            return Some(AsPython { invoked, venv });
        }
    }
    None
}

/// The path this process's program was executed through (`AT_EXECFN`).
fn executed_path() -> Option<OsString> {
    let path = rustix::param::linux_execfn();
    let bytes = path.to_bytes();
    (!bytes.is_empty()).then(|| OsStr::from_bytes(bytes).to_owned())
}

/// `candidate` as a path: relative to the working directory, or, for a
/// bare name in `argv[0]`, found on `PATH` as the shell found it.
fn resolve(candidate: &OsStr, may_search_path: bool) -> Option<PathBuf> {
    let path = Path::new(candidate);
    if path.components().count() > 1 || !may_search_path {
        return Some(std::env::current_dir().ok()?.join(path));
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(path))
        .find(|found| found.is_file())
}

/// The venv whose python `invoked` is (`pyvenv.cfg` in its directory or
/// the one above, as python looks), if its configuration is the user's or
/// root's alone.
fn trusted_venv(invoked: &Path) -> Option<PathBuf> {
    let bin = invoked.parent()?;
    let root = [Some(bin), bin.parent()]
        .into_iter()
        .flatten()
        .find(|dir| dir.join("pyvenv.cfg").exists())?;
    let uid = super::cache::effective_uid();
    let owned_alone = |path: &Path| {
        fs::symlink_metadata(path).is_ok_and(|meta| {
            (meta.uid() == uid || meta.uid() == 0)
                && meta.mode() & 0o022 == 0
                && !meta.file_type().is_symlink()
        })
    };
    if owned_alone(&root.join("pyvenv.cfg")) && owned_alone(root) {
        Some(root.to_owned())
    } else {
        crate::debug::note(format_args!(
            "ignoring the venv `{}`: its pyvenv.cfg or directory is another user's or \
             writable by others",
            root.display()
        ));
        None
    }
}

/// The cache root of the python link that `invoked` is or leads to through
/// links (a venv's `bin/python` leads to the app's `sys.executable`): the
/// `<root>` of `<root>/python/<key>/bin/<name>`.
pub fn root_of_link(invoked: &Path) -> Option<PathBuf> {
    let mut path = invoked.to_owned();
    // As many links as a venv of a venv of the app's python makes.
    for _ in 0..8 {
        let bin = path.parent()?;
        let key = bin.parent()?;
        let python = key.parent()?;
        let is_key = key
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|key| key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()));
        if bin.file_name() == Some(OsStr::new("bin"))
            && is_key
            && python.file_name() == Some(OsStr::new(LINK_DIR))
        {
            return python.parent().map(Path::to_path_buf);
        }
        let target = fs::read_link(&path).ok()?;
        path = bin.join(target);
    }
    None
}

/// The directory of a cache root that holds the python links.
const LINK_DIR: &str = "python";

/// Where the python links of the executable at `exe` are in cache `root`.
pub fn link_dir(root: &Path, exe: &Path) -> PathBuf {
    let digest = Sha256::digest(exe.as_os_str().as_bytes());
    let key: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    root.join(LINK_DIR).join(key).join("bin")
}

/// `sys.executable` for the executable at `exe`, whose links this makes (or
/// points at it again) in `root`, with directories of `dir_mode`.
pub fn ensure_links(root: &Path, exe: &Path, dir_mode: u32) -> io::Result<PathBuf> {
    let dir = link_dir(root, exe);
    let names = python_names();
    let executable = dir.join(&names[0]);
    if fs::read_link(&executable).is_ok_and(|target| target == exe) {
        return Ok(executable);
    }
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(&dir)?;
    // The first name last: a run that finds it right finds the others.
    for name in names.iter().rev() {
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        std::os::unix::fs::symlink(exe, &temp)?;
        fs::rename(&temp, dir.join(name))?;
    }
    Ok(executable)
}

/// Removes the links in `root` whose executable is gone (deleted or moved
/// away); returns the paths they pointed at. Best effort: links that
/// cannot be read or removed stay.
pub fn prune_dangling(root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(root.join(LINK_DIR)) else {
        return removed;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(target) = fs::read_link(dir.join("bin").join(&python_names()[0])) else {
            continue;
        };
        let gone = matches!(fs::metadata(&target), Err(e) if e.kind() == io::ErrorKind::NotFound);
        if gone && fs::remove_dir_all(&dir).is_ok() {
            removed.push(target);
        }
    }
    removed
}

/// The links of `exe` in `root` if they are there and point at it (a
/// system package's, made at install time), without writing anything.
pub fn existing_link(root: &Path, exe: &Path) -> Option<PathBuf> {
    let executable = link_dir(root, exe).join(&python_names()[0]);
    fs::read_link(&executable)
        .is_ok_and(|target| target == exe)
        .then_some(executable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_made_and_pointed_at_the_executable_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (first, second) = (dir.path().join("app"), dir.path().join("moved/app"));
        let link = ensure_links(dir.path(), &first, 0o700).expect("links");
        assert_eq!(fs::read_link(&link).expect("link"), first);
        for name in python_names() {
            let path = link.with_file_name(&name);
            assert_eq!(fs::read_link(path).expect("link"), first, "{name}");
        }
        assert_eq!(existing_link(dir.path(), &first), Some(link.clone()));
        assert_eq!(root_of_link(&link).as_deref(), Some(dir.path()));
        let venv_python = dir.path().join("python-in-venv");
        std::os::unix::fs::symlink(&link, &venv_python).expect("link");
        assert_eq!(root_of_link(&venv_python).as_deref(), Some(dir.path()));
        assert_eq!(root_of_link(&first), None);
        assert_eq!(existing_link(dir.path(), &second), None);
        // Another path has links of its own, pruned once it is gone.
        let other = ensure_links(dir.path(), &second, 0o700).expect("links");
        assert_ne!(other, link);
        fs::write(&first, "x").expect("write");
        assert_eq!(prune_dangling(dir.path()), vec![second.clone()]);
        assert!(!other.exists() && link.exists());
        // A link that points elsewhere is pointed back.
        fs::remove_file(&link).expect("remove");
        std::os::unix::fs::symlink(&second, &link).expect("link");
        assert_eq!(
            ensure_links(dir.path(), &first, 0o700).expect("links"),
            link
        );
        assert_eq!(fs::read_link(&link).expect("link"), first);
    }

    #[test]
    fn only_a_python_name_of_this_executable_is_python() {
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = dir.path().join("tool");
        fs::write(&exe, "x").expect("write");
        let link = ensure_links(dir.path(), &exe, 0o700).expect("links");
        let started = started_as_python(Some(link.as_os_str()), &exe).expect("python");
        assert_eq!(started.invoked, link);
        assert_eq!(started.venv, None);
        // The executable's own name, and a python name that is another file.
        assert_eq!(started_as_python(Some(exe.as_os_str()), &exe), None);
        let other = dir.path().join("python3");
        fs::write(&other, "x").expect("write");
        assert_eq!(started_as_python(Some(other.as_os_str()), &exe), None);
        // A name that is not python's, linked to this executable.
        let renamed = dir.path().join("tool2");
        std::os::unix::fs::symlink(&exe, &renamed).expect("link");
        assert_eq!(started_as_python(Some(renamed.as_os_str()), &exe), None);
    }

    #[test]
    fn a_venv_counts_only_when_its_configuration_is_ours_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = dir.path().join("tool");
        fs::write(&exe, "x").expect("write");
        let env = dir.path().join("env");
        fs::create_dir_all(env.join("bin")).expect("mkdir");
        fs::set_permissions(&env, fs::Permissions::from_mode(0o755)).expect("chmod");
        let python = env.join("bin/python");
        std::os::unix::fs::symlink(&exe, &python).expect("link");
        let config = env.join("pyvenv.cfg");
        fs::write(&config, "home = /x\n").expect("write");
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
        let venv = |argv0: &Path| started_as_python(Some(argv0.as_os_str()), &exe);
        assert_eq!(venv(&python).expect("python").venv, Some(env.clone()));
        fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).expect("chmod");
        assert_eq!(venv(&python).expect("python").venv, None);
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::set_permissions(&env, fs::Permissions::from_mode(0o777)).expect("chmod");
        assert_eq!(venv(&python).expect("python").venv, None);
    }
}
