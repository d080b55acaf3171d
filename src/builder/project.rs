//! `pyferry pack` in a project: a directory whose `pyproject.toml` says
//! what to pack. Its one `[project.scripts]` entry is the entry point, and
//! a `[tool.pyferry]` table holds pack's options under the names of their
//! long flags; the command line wins over the table.
//!
//! ```toml
//! [tool.pyferry]
//! output = "dist/mytool"
//! console-script = "mytool"
//! requirements = ["rich>=13"]
//! keep-stdlib = ["tkinter"]
//! desktop-entry = true
//! icon = "assets/mytool.png"
//! ```

use crate::error::{Error, Result, io};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const PYPROJECT: &str = "pyproject.toml";

/// The `[tool.pyferry]` table: every key is a long flag of `pack`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ToolTable {
    pub output: Option<PathBuf>,
    pub name: Option<String>,
    pub entry: Option<String>,
    pub console_script: Option<String>,
    pub python: Option<PathBuf>,
    /// Requirements installed with the project (pip's syntax).
    #[serde(default)]
    pub requirements: Vec<String>,
    /// Requirement files (`-r FILE`).
    #[serde(default)]
    pub requirement_files: Vec<PathBuf>,
    #[serde(default)]
    pub pip_args: Vec<String>,
    #[serde(default)]
    pub keep_stdlib: Vec<String>,
    /// `"full"` or `"minimal"` (`--stdlib`).
    pub stdlib: Option<String>,
    #[serde(default)]
    pub extract: Vec<String>,
    #[serde(default)]
    pub no_extract: Vec<String>,
    pub no_sources: Option<bool>,
    pub keep_invalid_python: Option<bool>,
    pub system_cache: Option<PathBuf>,
    /// `"2.17"` (`--glibc`).
    pub glibc: Option<String>,
    pub desktop_entry: Option<bool>,
    pub icon: Option<PathBuf>,
    pub terminal: Option<bool>,
}

/// The keys `ToolTable` takes, to name every unknown one at once.
const KEYS: &[&str] = &[
    "output",
    "name",
    "entry",
    "console-script",
    "python",
    "requirements",
    "requirement-files",
    "pip-args",
    "keep-stdlib",
    "stdlib",
    "extract",
    "no-extract",
    "no-sources",
    "keep-invalid-python",
    "system-cache",
    "glibc",
    "desktop-entry",
    "icon",
    "terminal",
];

/// What pack takes from a project's `pyproject.toml`.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    /// `[project] name`.
    pub name: Option<String>,
    /// `[project.scripts]` names, in the file's order.
    pub scripts: Vec<String>,
    /// `[tool.pyferry]`, its paths made relative to where pack runs.
    pub table: ToolTable,
}

impl Project {
    /// Reads `dir/pyproject.toml`.
    pub fn read(dir: &Path) -> Result<Project> {
        let path = dir.join(PYPROJECT);
        let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        let bad = |reason: String| Error::ProjectConfig {
            path: path.clone(),
            reason: reason.into(),
        };
        let document: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
        let project = document.get("project").and_then(toml::Value::as_table);
        let name = project
            .and_then(|project| project.get("name"))
            .and_then(toml::Value::as_str)
            .map(str::to_owned);
        let scripts = project
            .and_then(|project| project.get("scripts"))
            .and_then(toml::Value::as_table)
            .map(|scripts| scripts.keys().cloned().collect())
            .unwrap_or_default();
        let table = match document
            .get("tool")
            .and_then(toml::Value::as_table)
            .and_then(|tool| tool.get("pyferry"))
        {
            None => ToolTable::default(),
            Some(toml::Value::Table(table)) => {
                let unknown: Vec<String> = table
                    .keys()
                    .filter(|key| !KEYS.contains(&key.as_str()))
                    .map(|key| format!("`{key}`"))
                    .collect();
                if !unknown.is_empty() {
                    return Err(bad(format!(
                        "[tool.pyferry] has unknown keys: {} (it takes {})",
                        unknown.join(", "),
                        KEYS.join(", ")
                    )));
                }
                // Key by key, so that a value of the wrong type is named.
                for (key, value) in table {
                    let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
                    toml::Value::Table(alone)
                        .try_into::<ToolTable>()
                        .map_err(|e| bad(format!("in [tool.pyferry], `{key}`: {}", e.message())))?;
                }
                let table: ToolTable = toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
                table.relative_to(dir)
            }
            Some(_) => return Err(bad("`tool.pyferry` is not a table".to_owned())),
        };
        Ok(Project {
            dir: dir.to_owned(),
            name,
            scripts,
            table,
        })
    }

    /// The console script that is the entry point when neither the command
    /// line nor the table names one: the project's only script.
    pub fn default_console_script(&self) -> Result<Option<&str>> {
        match self.scripts.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(only)),
            several => Err(Error::ProjectConfig {
                path: self.dir.join(PYPROJECT),
                reason: format!(
                    "the project declares several scripts ({}), and pack cannot tell which \
                     one is the app: choose one with `-c NAME`, or `console-script = \"NAME\"` \
                     in [tool.pyferry]",
                    several
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into(),
            }),
        }
    }
}

impl ToolTable {
    /// Paths in the table are relative to the project, as in any
    /// `pyproject.toml`.
    fn relative_to(mut self, dir: &Path) -> ToolTable {
        let under = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        };
        for path in [&mut self.output, &mut self.python, &mut self.icon]
            .into_iter()
            .flatten()
        {
            under(path);
        }
        self.requirement_files.iter_mut().for_each(under);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> Result<Project> {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(PYPROJECT), text).expect("write");
        Project::read(dir.path())
    }

    #[test]
    fn the_table_takes_pack_options_and_paths_relative_to_the_project() {
        let project = project(
            "[project]\nname = \"tool\"\n[project.scripts]\ntool = \"tool:main\"\n\
             [tool.pyferry]\noutput = \"dist/tool\"\nkeep-stdlib = [\"tkinter\"]\n\
             no-sources = true\nrequirements = [\"rich\"]\n",
        )
        .expect("valid");
        assert_eq!(project.name.as_deref(), Some("tool"));
        assert_eq!(project.default_console_script().expect("one"), Some("tool"));
        let output = project.table.output.as_ref().expect("output");
        assert!(output.ends_with("dist/tool") && output.starts_with(&project.dir));
        assert_eq!(project.table.keep_stdlib, ["tkinter"]);
        assert_eq!(project.table.no_sources, Some(true));
        assert_eq!(project.table.requirements, ["rich"]);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        let error = project("[tool.pyferry]\nouptut = \"x\"\nicon = \"a\"\nstrip = true\n")
            .expect_err("unknown keys");
        let text = error.to_string() + &error.hint().unwrap_or_default();
        assert!(format!("{error:?}").contains("`ouptut`, `strip`"), "{text}");
        let error = project("[tool.pyferry]\nkeep-stdlib = \"tkinter\"\n").expect_err("a list");
        assert!(
            format!("{error:?}").contains("`keep-stdlib`: invalid type: string"),
            "{error:?}"
        );
    }

    #[test]
    fn several_scripts_are_listed() {
        let project = project("[project.scripts]\na = \"m:a\"\nb = \"m:b\"\n").expect("valid");
        let error = project.default_console_script().expect_err("ambiguous");
        assert!(format!("{error:?}").contains("`a`, `b`"), "{error:?}");
    }
}
