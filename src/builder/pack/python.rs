//! The build interpreter: the CPython that runs pip and byte-compiles. It
//! must be the same `major.minor` and ABI as the one the runtime embeds, or
//! the archive's pycs and extension modules would not load; a standalone
//! runtime also takes its standard library, so there it must be the very
//! same version.

use crate::build_python::{PYTHON_FULL_VERSION, PYTHON_SOABI, PYTHON_VERSION};
use crate::builder::progress::Phase;
use crate::error::{Error, Reason, Result, io};
use crate::format::Flavor;
use serde::{Deserialize, Serialize};
#[cfg(pyferry_flavor = "standalone")]
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What pack asks the build interpreter about itself (`probe.py`).
const PROBE_SOURCE: &str = include_str!("probe.py");
/// Reads `[[module, [name, ...]], ...]` on stdin, prints those it imports
/// with every name (`*`: the module alone).
#[cfg(pyferry_flavor = "standalone")]
const IMPORTABLE_SOURCE: &str = "import importlib, json, os, sys
answer = os.fdopen(os.dup(1), 'w')
os.dup2(2, 1)  # What a module's initialization prints is not the answer.
found = []
for module, names in json.load(sys.stdin):
    try:
        imported = importlib.import_module(module)
    except Exception:
        continue
    if all(name == '*' or hasattr(imported, name) for name in names):
        found.append([module, names])
json.dump(found, answer)
answer.close()
";
/// pack's byte-compiler, run by the build interpreter (`compile.py`).
const COMPILE_SOURCE: &str = include_str!("compile.py");

#[derive(Debug, Deserialize)]
pub struct BuildPython {
    #[serde(skip)]
    pub path: PathBuf,
    /// Variables it needs (pyferry's kit: `PYFERRY_INTERPRETER=1`).
    #[serde(skip)]
    pub env: Vec<(&'static str, &'static str)>,
    pub implementation: String,
    pub version: Vec<u32>,
    pub cache_tag: String,
    pub extension_suffixes: Vec<String>,
    pub stdlib_modules: Vec<String>,
    /// The modules linked into it (`sys.builtin_module_names`): pyferry's
    /// own CPython builds its accelerators in (the standalone flavor's
    /// `--stdlib minimal` counts them).
    #[cfg_attr(pyferry_flavor = "system", allow(dead_code))]
    pub builtin_modules: Vec<String>,
    pub platform: String,
    /// `cpython-311-x86_64-linux-gnu`: the ABI its extension modules use.
    pub soabi: String,
    /// The standard library and its extension modules (`lib-dynload`),
    /// which a standalone app carries.
    #[cfg(pyferry_flavor = "standalone")]
    pub stdlib_dir: PathBuf,
    #[cfg(pyferry_flavor = "standalone")]
    pub dynload_dir: PathBuf,
    pub has_pip: bool,
}

/// Fewer files than this per compiler process are not worth another one.
const MIN_COMPILE_SHARE: usize = 64;

/// One file to byte-compile; `display` is the name tracebacks show.
#[derive(Debug, Serialize)]
pub struct CompileJob {
    pub source: PathBuf,
    pub target: PathBuf,
    pub display: String,
}

#[derive(Debug, Deserialize)]
pub struct CompileFailure {
    pub file: String,
    pub error: String,
}

impl BuildPython {
    /// Asks `path` (started with `env`) what it is, and checks that it
    /// matches the runtime.
    pub fn probe(path: &Path, env: &[(&'static str, &'static str)]) -> Result<BuildPython> {
        let fail = |reason: String| Error::BuildPython {
            python: path.to_owned(),
            reason: Reason(reason),
        };
        let output = Command::new(path)
            .envs(env.iter().copied())
            .args(["-I", "-c", PROBE_SOURCE])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| fail(format!("it cannot be started: {e}")))?;
        if !output.status.success() {
            return Err(fail(format!(
                "it failed to describe itself ({})",
                output.status
            )));
        }
        let mut python: BuildPython = serde_json::from_slice(&output.stdout)
            .map_err(|e| fail(format!("its self-description is unreadable: {e}")))?;
        python.path = path.to_owned();
        python.env = env.to_vec();
        let found = python.minor_version();
        if python.implementation != "cpython" || found != PYTHON_VERSION {
            return Err(fail(format!(
                "it is {} {found}, but the runtime embeds CPython {PYTHON_VERSION}",
                python.implementation
            )));
        }
        if python.soabi != PYTHON_SOABI {
            return Err(fail(format!(
                "its ABI is `{}`, but the runtime embeds `{PYTHON_SOABI}` (a free-threaded or \
                 debug build cannot load the other's extension modules)",
                python.soabi
            )));
        }
        if Flavor::CURRENT == Flavor::Standalone && python.full_version() != PYTHON_FULL_VERSION {
            return Err(fail(format!(
                "it is CPython {}, but this standalone runtime embeds CPython \
                 {PYTHON_FULL_VERSION} and takes the standard library from the build \
                 interpreter, which must be the very same version",
                python.full_version()
            )));
        }
        Ok(python)
    }

    /// Which of `imports` (an extension module, and the names a `from` line
    /// takes from it) this interpreter can import: the standalone flavor's
    /// extension modules are the build interpreter's own files.
    #[cfg(pyferry_flavor = "standalone")]
    pub fn importable(
        &self,
        imports: &BTreeSet<(String, Vec<String>)>,
    ) -> Result<BTreeSet<(String, Vec<String>)>> {
        let fail = |reason: String| Error::BuildPython {
            python: self.path.clone(),
            reason: Reason(reason),
        };
        let asked = serde_json::to_vec(imports).expect("strings serialize");
        let mut child = self
            .command()
            .args(["-I", "-S", "-c", IMPORTABLE_SOURCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail(format!("it cannot be started: {e}")))?;
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(&asked));
        let output = child
            .wait_with_output()
            .map_err(|e| fail(format!("it cannot be started: {e}")))?;
        if !output.status.success() || !matches!(written, Some(Ok(()))) {
            return Err(fail(format!(
                "it failed to say which accelerator modules it imports ({})",
                output.status
            )));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|e| fail(format!("its list of importable modules is unreadable: {e}")))
    }

    /// `major.minor`, as in the manifest.
    /// Where CPython looks for the pyc of the module file `relative`
    /// (`json/decoder.py`): `json/__pycache__/decoder.cpython-311.pyc`.
    pub fn pycache_name(&self, relative: &str) -> String {
        let (dir, file) = relative.rsplit_once('/').unwrap_or(("", relative));
        let stem = file.strip_suffix(".py").unwrap_or(file);
        let dir = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        format!(
            "{dir}{}/{stem}.{}.pyc",
            super::units::PYCACHE,
            self.cache_tag
        )
    }

    pub fn minor_version(&self) -> String {
        match self.version.as_slice() {
            [major, minor, ..] => format!("{major}.{minor}"),
            _ => "unknown".to_owned(),
        }
    }

    /// `major.minor.micro`.
    pub fn full_version(&self) -> String {
        let parts: Vec<String> = self.version.iter().map(u32::to_string).collect();
        parts.join(".")
    }

    /// A command running this interpreter with a clean, fixed environment:
    /// no `PYTHON*` variables, and a fixed hash seed so that set and
    /// frozenset constants marshal in the same order every time.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PYTHON") {
                command.env_remove(key);
            }
        }
        command
            .envs(self.env.iter().copied())
            .env("PYTHONHASHSEED", "0")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUTF8", "1");
        command
    }

    /// Byte-compiles `jobs`, each a step of `phase`; returns the files that
    /// are not valid Python (they stay in the archive as source only).
    /// Compiling is CPU-bound and the files independent: one compiler
    /// process per core, each given an equal share of the source bytes.
    pub fn compile(&self, jobs: &[CompileJob], phase: &Phase) -> Result<Vec<CompileFailure>> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // A process costs ~20 ms to start: not worth it for a few files.
        let workers = cores.min(jobs.len().div_ceil(MIN_COMPILE_SHARE)).max(1);
        let shares = crate::balance::shares(jobs, workers, |job| {
            fs::metadata(&job.source).map_or(0, |meta| meta.len())
        });
        let children = shares
            .iter()
            .map(|share| self.start_compiler(share))
            .collect::<Result<Vec<_>>>()?;
        // Each compiler's report is read as it comes, by a thread of its
        // own, so that no compiler waits on a full pipe.
        let reports: Vec<Result<Vec<CompileFailure>>> = std::thread::scope(|scope| {
            let readers: Vec<_> = children
                .into_iter()
                .map(|child| scope.spawn(move || self.finish_compiler(child, phase)))
                .collect();
            readers
                .into_iter()
                .map(|reader| {
                    reader.join().unwrap_or_else(|_| {
                        Err(Error::Compile {
                            reason: Reason("reading the byte-compiler's report failed".into()),
                        })
                    })
                })
                .collect()
        });
        let mut failures = Vec::new();
        for report in reports {
            failures.extend(report?);
        }
        failures.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(failures)
    }

    fn start_compiler(&self, jobs: &[&CompileJob]) -> Result<std::process::Child> {
        let mut child = self
            .command()
            .args(["-S", "-c", COMPILE_SOURCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io("start", &self.path))?;
        // The compiler reads all its input before it writes anything.
        let input = serde_json::to_vec(jobs).expect("compile jobs serialize");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(&input).map_err(|e| Error::Compile {
            reason: Reason(format!("cannot send the file list to the compiler: {e}")),
        })?;
        Ok(child)
    }

    fn finish_compiler(
        &self,
        mut child: std::process::Child,
        phase: &Phase,
    ) -> Result<Vec<CompileFailure>> {
        let fail = |reason: String| Error::Compile {
            reason: Reason(reason),
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut failures = Vec::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.map_err(io("read the report of", &self.path))?;
            phase.step();
            if line.trim() != "{}" {
                failures.push(
                    serde_json::from_str(&line).map_err(|e| {
                        fail(format!("the byte-compiler's report is unreadable: {e}"))
                    })?,
                );
            }
        }
        let status = child.wait().map_err(io("run", &self.path))?;
        if !status.success() {
            return Err(fail(format!(
                "the byte-compiler `{}` failed ({status})",
                self.path.display(),
            )));
        }
        Ok(failures)
    }
}
