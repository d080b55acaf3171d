//! The files that go into the archive, by archive name.

use crate::error::{Error, Reason, Result, io};
use crate::format::archive_path;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub executable: bool,
}

#[derive(Debug, Default)]
pub struct Tree {
    pub files: BTreeMap<String, SourceFile>,
}

impl Tree {
    /// Adds every file below `root`, except stale bytecode (pack compiles
    /// its own) and top-level names for which `skip` is true.
    pub fn add_dir(&mut self, root: &Path, skip: impl Fn(&str) -> bool) -> Result<()> {
        let mut pending = vec![root.to_owned()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).map_err(io("list", &dir))? {
                let entry = entry.map_err(io("list", &dir))?;
                let path = entry.path();
                let relative = path.strip_prefix(root).expect("below root");
                let name = archive_path::from_relative_path(relative).ok_or_else(|| {
                    unsafe_name(&relative.to_string_lossy(), "its name is not valid UTF-8")
                })?;
                let file_type = entry.file_type().map_err(io("inspect", &path))?;
                if relative.components().count() == 1 && skip(&name) {
                    continue;
                }
                if file_type.is_symlink() {
                    return Err(unsafe_name(
                        &name,
                        "it is a symbolic link; archives hold no links",
                    ));
                }
                if file_type.is_dir() {
                    if entry.file_name() != "__pycache__" {
                        pending.push(path);
                    }
                    continue;
                }
                if name.ends_with(".pyc") {
                    continue;
                }
                archive_path::to_relative_path(&name).map_err(|why| unsafe_name(&name, why))?;
                let mode = entry
                    .metadata()
                    .map_err(io("inspect", &path))?
                    .permissions()
                    .mode();
                let source = SourceFile {
                    path,
                    executable: mode & 0o111 != 0,
                };
                if let Some(first) = self.files.get(&name) {
                    return Err(Error::Conflict {
                        name,
                        first: first.path.clone(),
                        second: source.path,
                    });
                }
                self.files.insert(name, source);
            }
        }
        Ok(())
    }

    /// Every directory that holds a file, as `dir/` entries: zipimport
    /// finds namespace packages only through explicit directory entries.
    pub fn directories(&self) -> BTreeSet<String> {
        let mut dirs = BTreeSet::new();
        for name in self.files.keys() {
            let mut end = 0;
            while let Some(slash) = name[end..].find('/') {
                end += slash + 1;
                dirs.insert(name[..end].to_owned());
            }
        }
        dirs
    }
}

fn unsafe_name(name: &str, why: &str) -> Error {
    Error::UnsafeName {
        name: name.to_owned(),
        reason: Reason(why.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(names: &[&str]) -> Tree {
        let mut tree = Tree::default();
        for name in names {
            tree.files.insert(
                (*name).to_owned(),
                SourceFile {
                    path: PathBuf::from(name),
                    executable: false,
                },
            );
        }
        tree
    }

    #[test]
    fn directories_are_listed() {
        let tree = tree(&["a/b/c.py", "a/d.py", "e.py"]);
        let dirs: Vec<_> = tree.directories().into_iter().collect();
        assert_eq!(dirs, ["a/", "a/b/"]);
    }
}
