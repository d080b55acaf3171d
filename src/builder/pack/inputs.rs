//! Classifying `pack`'s inputs, and handing the installable ones to pip.
//!
//! A directory with `pyproject.toml` or `setup.py` is a project (pip); any
//! other directory is copied to the archive root as is; a `.py` file is a
//! script, put at the archive root; a `.whl` is checked against the
//! embedded Python and installed with pip; a missing path (one with a `/`,
//! or a script's, wheel's or sdist's name) is an error, never a lookup on
//! PyPI; anything else is a pip requirement. pip resolves; pyferry never
//! does.

use super::python::BuildPython;
use crate::builder::progress::Progress;
use crate::error::{Error, Reason, Result};
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[derive(Debug, Default)]
pub struct Inputs {
    /// Copied to the archive root as they are.
    pub plain_dirs: Vec<PathBuf>,
    /// Single-file scripts, put at the archive root.
    pub scripts: Vec<PathBuf>,
    /// Given to `pip install` (paths of projects and wheels, requirements).
    pub pip: Vec<OsString>,
}

pub fn classify(inputs: &[String], python: &BuildPython) -> Result<Inputs> {
    let mut classified = Inputs::default();
    for input in inputs {
        let path = Path::new(input);
        // pip reads a bare `name` as a requirement, never as a path.
        let for_pip = || std::path::absolute(path).map_err(crate::error::io("resolve", path));
        if path.is_dir() {
            if is_requirement_name(input) {
                eprintln!(
                    "pyferry: note: `{input}` is the directory `./{input}` here, not the PyPI \
                     project of that name (for that, write `{input}==VERSION`)"
                );
            }
            if path.join("pyproject.toml").is_file() || path.join("setup.py").is_file() {
                classified.pip.push(for_pip()?.into());
            } else {
                classified.plain_dirs.push(path.to_owned());
            }
        } else if path.is_file() && input.ends_with(".py") {
            classified.scripts.push(path.to_owned());
        } else if path.is_file() && (is_distribution_file(input) || input.contains('/')) {
            if input.ends_with(".whl") {
                check_wheel(path, python)?;
            }
            classified.pip.push(for_pip()?.into());
        } else if is_distribution_file(input) || input.ends_with(".py") || input.contains('/') {
            return Err(Error::InputNotFound {
                input: input.clone(),
            });
        } else {
            classified.pip.push(input.into());
        }
    }
    Ok(classified)
}

/// A bare project name, as pip reads a requirement (`black`, `zope.event`).
pub fn is_requirement_name(input: &str) -> bool {
    input
        .bytes()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A wheel or an sdist, by its name: a bare `black` is a requirement even
/// if a file of that name happens to be in the current directory.
fn is_distribution_file(input: &str) -> bool {
    [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .any(|suffix| input.ends_with(suffix))
}

/// Refuses a wheel built for another Python or platform, before pip says it
/// in its own words.
fn check_wheel(path: &Path, python: &BuildPython) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let stem = file_name.trim_end_matches(".whl");
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    let fail = |reason: String| Error::WheelIncompatible {
        wheel: path.to_owned(),
        python: python.minor_version(),
        reason: Reason(reason),
    };
    let [platforms, abi, pythons, _] = parts.as_slice() else {
        return Err(fail(
            "its file name is not `NAME-VERSION-PYTHON-ABI-PLATFORM.whl`".to_owned(),
        ));
    };
    let ours = python.minor_version().replace('.', "");
    let minor: u32 = python.version.get(1).copied().unwrap_or(0);
    let python_ok = pythons.split('.').any(|tag| match tag {
        "py3" | "py2.py3" => true,
        _ => tag
            .strip_prefix("cp3")
            .or_else(|| tag.strip_prefix("py3"))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| {
                if *abi == "abi3" || tag.starts_with("py") {
                    n <= minor
                } else {
                    n == minor
                }
            }),
    });
    let abi_ok = abi
        .split('.')
        .any(|tag| tag == "none" || tag == "abi3" || tag == format!("cp{ours}"));
    if !python_ok || !abi_ok {
        return Err(fail(format!(
            "it is built for Python tag `{pythons}` with ABI `{abi}`, not for CPython {} (`cp{ours}`)",
            python.minor_version()
        )));
    }
    // "linux-x86_64" -> "x86_64"
    let machine = python.platform.rsplit('-').next().unwrap_or_default();
    let platform_ok = platforms.split('.').any(|tag| {
        tag == "any"
            || (tag.starts_with("linux_") || tag.starts_with("manylinux"))
                && tag.ends_with(&format!("_{machine}"))
    });
    if !platform_ok {
        return Err(fail(format!(
            "it is built for platform `{platforms}`, not for {}",
            python.platform
        )));
    }
    Ok(())
}

/// `pip install --target staging ...`: pip's output goes to our stderr, so
/// that `pack`'s stdout stays its own.
pub fn pip_install(
    python: &BuildPython,
    staging: &Path,
    inputs: &Inputs,
    requirement_files: &[PathBuf],
    passthrough: &[String],
    glibc: Option<(u32, u32)>,
    progress: &Progress,
) -> Result<()> {
    if !python.has_pip {
        return Err(Error::BuildPython {
            python: python.path.clone(),
            reason: Reason(
                "it has no pip, which pack needs to install wheels and requirements".into(),
            ),
        });
    }
    let mut command = python.command();
    command
        .args(["-m", "pip", "install", "--target"])
        .arg(staging)
        .args([
            "--no-compile",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--root-user-action=ignore",
            // pip would check the app's packages against the packages of
            // the build interpreter's own environment, and report
            // conflicts that do not exist in the app.
            "--no-warn-conflicts",
        ]);
    // Wheels built for that glibc or an older one (pip takes the older
    // manylinux tags with it), and no source distribution pip would build
    // against this machine's.
    if let Some((major, minor)) = glibc {
        command.args([
            "--platform".to_owned(),
            format!("manylinux_{major}_{minor}_{}", std::env::consts::ARCH),
            "--only-binary=:all:".to_owned(),
        ]);
    }
    command.args(&inputs.pip);
    for file in requirement_files {
        command.arg("-r").arg(file);
    }
    command.args(passthrough);
    let phase = progress.phase("installing with pip");
    let status = if progress.is_shown() {
        // What pip says it is doing (collecting, downloading, building,
        // installing) becomes the phase's message; its errors and warnings
        // go to stderr as they would.
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(crate::error::io("run pip with", &python.path))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        for line in io::BufRead::lines(io::BufReader::new(stdout)).map_while(|line| line.ok()) {
            if !line.trim().is_empty() {
                phase.message(&line);
            }
        }
        child.wait()
    } else {
        // Quiet unless `-v`; pip's stdout goes to stderr, so that pack's
        // stdout stays its own.
        if !progress.is_verbose() {
            command.arg("--quiet");
        }
        let stderr = io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(crate::error::io("duplicate", Path::new("stderr")))?;
        let _ = io::stderr().flush();
        command.stdout(Stdio::from(stderr)).status()
    }
    .map_err(crate::error::io("run pip with", &python.path))?;
    drop(phase);
    if !status.success() {
        return Err(Error::Pip {
            status: status.to_string(),
            glibc: glibc.map(|(major, minor)| format!("{major}.{minor}")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python311() -> BuildPython {
        BuildPython {
            path: PathBuf::from("/usr/bin/python3.11"),
            env: Vec::new(),
            implementation: "cpython".to_owned(),
            version: vec![3, 11, 2],
            cache_tag: "cpython-311".to_owned(),
            extension_suffixes: vec![".cpython-311-x86_64-linux-gnu.so".to_owned()],
            stdlib_modules: vec![],
            builtin_modules: vec![],
            platform: "linux-x86_64".to_owned(),
            soabi: "cpython-311-x86_64-linux-gnu".to_owned(),
            #[cfg(pyferry_flavor = "standalone")]
            stdlib_dir: PathBuf::from("/usr/lib/python3.11"),
            #[cfg(pyferry_flavor = "standalone")]
            dynload_dir: PathBuf::from("/usr/lib/python3.11/lib-dynload"),
            has_pip: true,
        }
    }

    fn check(name: &str) -> bool {
        check_wheel(Path::new(name), &python311()).is_ok()
    }

    #[test]
    fn wheel_tags() {
        assert!(check("six-1.16.0-py2.py3-none-any.whl"));
        assert!(check(
            "black-24.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
        assert!(check(
            "cryptography-42.0.0-cp39-abi3-manylinux_2_28_x86_64.whl"
        ));
        assert!(check("pkg-1.0-1build-py3-none-any.whl"));
        assert!(!check("numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl"));
        assert!(!check("numpy-2.0.0-cp311-cp311-win_amd64.whl"));
        assert!(!check("numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.whl"));
        assert!(!check(
            "cryptography-42.0.0-cp312-abi3-manylinux_2_28_x86_64.whl"
        ));
        assert!(!check("garbage.whl"));
    }
}
