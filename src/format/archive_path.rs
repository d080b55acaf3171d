//! Names of archive entries: checked when packing and again when extracting,
//! so that no entry can land outside the extraction directory.

use std::path::{Component, Path, PathBuf};

/// Checks an entry name (`pkg/mod.py`, or `pkg/` for a directory) and
/// returns it as a relative path made of normal components only.
pub fn to_relative_path(name: &str) -> Result<PathBuf, &'static str> {
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("the name is empty");
    }
    if trimmed.starts_with('/') {
        return Err("it is an absolute path");
    }
    if trimmed.contains(['\\', '\0']) {
        return Err("it contains a backslash or a NUL byte");
    }
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("it has an empty, `.` or `..` component");
    }
    let path = PathBuf::from(trimmed);
    debug_assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
    Ok(path)
}

/// The entries a module's code can be in, with `extension` (`py`, `pyc`):
/// `pkg/mod.py` or, for a package, `pkg/mod/__init__.py`.
pub fn module_files(module: &str, extension: &str) -> [String; 2] {
    let path = module.replace('.', "/");
    [
        format!("{path}.{extension}"),
        format!("{path}/__init__.{extension}"),
    ]
}

/// The first component of an entry name: the top-level package, module or
/// directory it belongs to.
pub fn top_level(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

/// The archive name of a file below a root directory (`/` separators).
pub fn from_relative_path(path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = path
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    parts.map(|parts| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_pass() {
        assert_eq!(
            to_relative_path("pkg/mod.py"),
            Ok(PathBuf::from("pkg/mod.py"))
        );
        assert_eq!(to_relative_path("pkg/"), Ok(PathBuf::from("pkg")));
        assert_eq!(top_level("numpy/core/x.so"), "numpy");
        assert_eq!(top_level("six.py"), "six.py");
    }

    #[test]
    fn escaping_names_are_rejected() {
        for bad in [
            "",
            "/",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\\..\\b",
            "a\0b",
            "..",
        ] {
            assert!(to_relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
