//! Choosing the entry point: `-e`, `-c` (a console script declared by an
//! installed distribution), `__main__.py` at the archive root, or the one
//! script given as input.

use super::python::BuildPython;
use super::tree::Tree;
use crate::error::{Error, Result, io};
use crate::format::archive_path;
use crate::format::manifest::EntryPoint;
use std::fs;

pub fn resolve(
    entry: Option<&str>,
    console_script: Option<&str>,
    script: Option<&str>,
    tree: &Tree,
    python: &BuildPython,
) -> Result<EntryPoint> {
    let entry = match (entry, console_script) {
        (Some(text), _) => EntryPoint::parse(text).ok_or_else(|| Error::EntryPointSyntax {
            value: text.to_owned(),
        })?,
        (None, Some(name)) => find_console_script(name, tree)?,
        (None, None) if tree.files.contains_key("__main__.py") => EntryPoint {
            module: "__main__".to_owned(),
            function: None,
        },
        (None, None) => match script {
            Some(module) => EntryPoint {
                module: module.to_owned(),
                function: None,
            },
            None => return Err(Error::NoEntryPoint),
        },
    };
    if !module_exists(&entry, tree, python) {
        return Err(Error::EntryModuleMissing {
            module: entry.module,
        });
    }
    if let Some(function) = &entry.function
        && !function_may_exist(&entry.module, function, tree, python)?
    {
        return Err(Error::EntryFunctionMissing {
            entry: entry.to_string(),
        });
    }
    Ok(entry)
}

/// Whether `module` binds the first part of `function`, as far as its
/// source tells (`binds.py`): a typo is found now, not when a user runs
/// the app. A module without source in the app (an extension, the
/// standard library) or one that binds names dynamically is trusted.
fn function_may_exist(
    module: &str,
    function: &str,
    tree: &Tree,
    python: &BuildPython,
) -> Result<bool> {
    const BINDS_SOURCE: &str = include_str!("binds.py");
    let Some(source) = archive_path::module_files(module, "py")
        .iter()
        .find_map(|name| tree.files.get(name))
    else {
        return Ok(true);
    };
    let name = function.split('.').next().unwrap_or(function);
    let output = python
        .command()
        .args(["-I", "-S", "-c", BINDS_SOURCE])
        .arg(&source.path)
        .arg(name)
        .output()
        .map_err(io("run", &python.path))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() != "no")
}

/// Whether `import module` (or `python -m module`) can work in the app.
fn module_exists(entry: &EntryPoint, tree: &Tree, python: &BuildPython) -> bool {
    let top = entry.module.split('.').next().unwrap_or_default();
    if python.stdlib_modules.iter().any(|name| name == top) {
        return true;
    }
    let path = entry.module.replace('.', "/");
    let is_package = tree
        .files
        .keys()
        .any(|name| name.starts_with(&format!("{path}/")));
    let runnable_package = match entry.function {
        // `python -m pkg` runs `pkg/__main__.py`.
        None => tree.files.contains_key(&format!("{path}/__main__.py")),
        Some(_) => is_package,
    };
    runnable_package
        || tree.files.contains_key(&format!("{path}.py"))
        || python
            .extension_suffixes
            .iter()
            .any(|suffix| tree.files.contains_key(&format!("{path}{suffix}")))
}

fn find_console_script(name: &str, tree: &Tree) -> Result<EntryPoint> {
    let mut available = Vec::new();
    for (file, source) in &tree.files {
        let Some(dist_info) = file.strip_suffix("/entry_points.txt") else {
            continue;
        };
        if !dist_info.ends_with(".dist-info") || dist_info.contains('/') {
            continue;
        }
        let text = fs::read_to_string(&source.path).map_err(io("read", &source.path))?;
        for (script, target) in console_scripts(&text) {
            if script == name {
                return EntryPoint::parse(target).ok_or_else(|| Error::EntryPointSyntax {
                    value: target.to_owned(),
                });
            }
            available.push(script.to_owned());
        }
    }
    available.sort();
    Err(Error::ConsoleScriptMissing {
        name: name.to_owned(),
        available,
    })
}

/// `(name, "module:function")` pairs of the `[console_scripts]` section.
fn console_scripts(text: &str) -> Vec<(&str, &str)> {
    let mut in_section = false;
    let mut scripts = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[console_scripts]";
        } else if in_section
            && !line.starts_with(['#', ';'])
            && let Some((script, target)) = line.split_once('=')
        {
            // Drop extras: `pkg.mod:func [extra]`.
            let target = target.split('[').next().unwrap_or_default().trim();
            scripts.push((script.trim(), target));
        }
    }
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_scripts_section_is_read() {
        let text = "[console_scripts]\nblack = black:patched_main\nblackd = blackd:patched_main [d]\n\
                    \n[gui_scripts]\nother = x:y\n";
        assert_eq!(
            console_scripts(text),
            [
                ("black", "black:patched_main"),
                ("blackd", "blackd:patched_main")
            ]
        );
    }
}
