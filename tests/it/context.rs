//! A small harness: a private temp dir and cache, a clean environment, and
//! `pack`/`run` that start real processes the way a user starts them.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use pyferry::build_python::BUILD_PYTHON;

pub struct TestContext {
    dir: tempfile::TempDir,
}

impl TestContext {
    pub fn new() -> TestContext {
        let dir = tempfile::Builder::new()
            .prefix("pyferry-test-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir(dir.path().join("home")).expect("home");
        TestContext { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path().join("cache")
    }

    /// Writes files (`name`, `contents`) below `dir` and returns it.
    pub fn write_tree(&self, dir: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.path().join(dir);
        for (name, contents) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, contents).expect("write fixture");
        }
        root
    }

    /// A command with a clean environment: no PYTHON* variables, a private
    /// HOME and cache, and pip's configuration from the machine.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env_clear();
        for (key, value) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text == "PATH"
                || key_text.starts_with("PIP_")
                || key_text.starts_with("LC_")
                || key_text == "LANG"
            {
                command.env(&key, value);
            }
        }
        command
            .env("HOME", self.path().join("home"))
            .env("PYFERRY_CACHE_DIR", self.cache_dir())
            .env("PYFERRY_PACK_CACHE_DIR", pack_cache_dir())
            .current_dir(self.path());
        command
    }

    /// `pyferry pack -o OUT args...`; panics with pip's and pyferry's output
    /// if it fails.
    pub fn pack(&self, out: &str, args: &[&str]) -> PathBuf {
        let output = self.pack_output(out, args);
        assert!(
            output.status.success(),
            "pack failed:\n{}",
            describe(&output)
        );
        self.path().join(out)
    }

    /// `pyferry inspect --json EXE`, parsed.
    pub fn inspect_json(&self, exe: &Path) -> serde_json::Value {
        let json = success(&output_of(
            self.command(pyferry()).args(["inspect", "--json"]).arg(exe),
        ));
        serde_json::from_str(&json).expect("json")
    }

    pub fn pack_output(&self, out: &str, args: &[&str]) -> Output {
        self.command(pyferry())
            .args(["pack", "-o"])
            .arg(self.path().join(out))
            .args(args)
            .output()
            .expect("run pyferry pack")
    }

    /// Runs a packed executable with `args`.
    pub fn run<S: AsRef<OsStr>>(&self, exe: &Path, args: &[S]) -> Output {
        output_of(self.command(exe).args(args))
    }

    /// Runs a packed executable in python mode (`PYFERRY_INTERPRETER=1`):
    /// python over the app's environment, given python's command line.
    pub fn run_as_python<S: AsRef<OsStr>>(&self, exe: &Path, args: &[S]) -> Output {
        output_of(self.command(exe).env("PYFERRY_INTERPRETER", "1").args(args))
    }

    /// Runs the build interpreter (the same CPython the runtime embeds).
    pub fn python<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command(BUILD_PYTHON)
            .args(args)
            .output()
            .expect("run python")
    }
}

pub fn pyferry() -> &'static str {
    env!("CARGO_BIN_EXE_pyferry")
}

/// Runs `command` to completion. An executable this test just wrote may be
/// held open for writing, for an instant, by a child another test thread
/// forked meanwhile (until it execs): the kernel then refuses to run it
/// (`ETXTBSY`), and we try again.
pub fn output_of(command: &mut Command) -> Output {
    let mut tries = 0;
    loop {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result.expect("run"),
        }
    }
}

/// The offset, in `bytes` (an executable's), of the middle of the data of
/// its archive's entry `name`, as compressed.
pub fn middle_of_entry(bytes: &[u8], name: &str) -> usize {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let entry = zip.by_name(name).expect("the entry");
    let start = entry.data_start().expect("its data");
    (start + entry.compressed_size() / 2) as usize
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        stdout(output),
        stderr(output)
    )
}

/// Asserts success and returns stdout.
pub fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "expected success:\n{}",
        describe(output)
    );
    stdout(output)
}

/// The app versions extracted in a cache root (`<app>-<hash16>`
/// directories), whatever else it holds (pack's cache, locks).
pub fn version_dirs(root: &Path) -> Vec<String> {
    pyferry::runtime::cache::version_keys(root, None).unwrap_or_default()
}

/// pack's standard library cache, shared by every test and test run (it is
/// keyed by the pyferry binary and the build interpreter's files).
pub fn pack_cache_dir() -> PathBuf {
    target_dir().join("test-pack-cache")
}

/// The crate's `target/` directory, for caches shared between test runs.
pub fn target_dir() -> PathBuf {
    Path::new(pyferry())
        .ancestors()
        .find(|dir| dir.file_name() == Some(OsStr::new("target")))
        .expect("pyferry is built under target/")
        .to_owned()
}

/// pyenv's CPython X.Y (`$PYENV_ROOT`, else `~/.pyenv`), as the machine
/// has it: other versions than the one pyferry embeds, for tests of what
/// pyferry does with them.
pub fn pyenv_pythons() -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")))
        .expect("HOME");
    let mut pythons: Vec<PathBuf> = fs::read_dir(root.join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin/python3"))
        .filter(|python| python.exists())
        .collect();
    pythons.sort();
    pythons
}

/// The real PyPI distributions the tests pack (with their dependencies).
pub const TEST_DISTRIBUTIONS: &[&str] = &[
    "numpy",
    "black",
    "pyyaml",
    "orjson",
    "lxml",
    "pydantic",
    "pillow",
    "cryptography",
];

/// Real PyPI wheels, downloaded once into `target/test-wheels-3.X` (one dir
/// per embedded Python) and reused.
pub fn wheel_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join(format!(
            "test-wheels-{}",
            pyferry::build_python::PYTHON_VERSION
        ));
        download_wheels_once(&dir, &TEST_DISTRIBUTIONS.join(" "), TEST_DISTRIBUTIONS);
        dir
    })
}

/// `pip download --only-binary=:all: --dest DIR ARGS`, unless DIR's marker
/// says the same `asked` was downloaded there already.
pub fn download_wheels_once(dir: &Path, asked: &str, args: &[impl AsRef<OsStr>]) {
    let marker = dir.join(".complete");
    if fs::read_to_string(&marker).is_ok_and(|text| text == asked) {
        return;
    }
    let output = Command::new(BUILD_PYTHON)
        .args(["-m", "pip", "download", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--quiet", "--dest"])
        .arg(dir)
        .args(args)
        .output()
        .expect("run pip download");
    assert!(
        output.status.success(),
        "pip download of wheels into {} failed:\n{}",
        dir.display(),
        describe(&output)
    );
    fs::write(&marker, asked).expect("marker");
}

/// A venv of the build interpreter with the test wheels installed: the
/// baseline a packed app must match.
pub fn baseline_venv() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join(format!("test-venv-{}", interpreter_tag()));
        let done = dir.join(".complete");
        if !is_complete(&done) {
            let _ = fs::remove_dir_all(&dir);
            let status = Command::new(BUILD_PYTHON)
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .expect("create venv");
            assert!(status.success(), "venv creation failed");
            let status = Command::new(dir.join("bin/python"))
                .args(["-m", "pip", "install", "--no-index", "--find-links"])
                .arg(wheel_dir())
                .args(TEST_DISTRIBUTIONS)
                .status()
                .expect("pip install into venv");
            assert!(
                status.success(),
                "installing the test wheels into the venv failed"
            );
            fs::write(&done, TEST_DISTRIBUTIONS.join(" ")).expect("marker");
        }
        dir
    })
}

/// What tells the build interpreter from others, for the venvs kept in
/// target/: pyferry's own CPython and Debian's can both be 3.11.2, and
/// differ (each flavor has its own).
pub fn interpreter_tag() -> String {
    format!(
        "{}-{}",
        pyferry::build_python::PYTHON_FULL_VERSION,
        pyferry::format::Flavor::CURRENT
    )
}

/// A cache under target/ is complete when its marker names the same
/// distributions as this version of the tests.
fn is_complete(marker: &Path) -> bool {
    fs::read_to_string(marker).is_ok_and(|text| text == TEST_DISTRIBUTIONS.join(" "))
}

/// `Command::output` with bytes on stdin.
pub trait StdinBytes {
    fn stdin_bytes(&mut self, input: &[u8]) -> std::process::Output;
}

impl StdinBytes for Command {
    fn stdin_bytes(&mut self, input: &[u8]) -> std::process::Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }
}

/// The same app run from the baseline venv: what a packed app must print.
pub fn venv_output(cx: &TestContext, app: &Path) -> String {
    let python = baseline_venv().join("bin/python");
    success(&cx.command(python).arg(app).output().expect("run the venv"))
}

/// A venv of the build interpreter at `dir`, with `pip install ARGS` (run
/// by the build interpreter's pip): the baseline a packed project must match.
pub fn venv_with(dir: &Path, args: &[&OsStr]) -> PathBuf {
    let made = Command::new(BUILD_PYTHON)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .output()
        .expect("create a venv");
    assert!(made.status.success(), "{}", describe(&made));
    let installed = Command::new(BUILD_PYTHON)
        .args(["-m", "pip", "--python"])
        .arg(dir.join("bin/python"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(args)
        .output()
        .expect("pip install");
    assert!(installed.status.success(), "{}", describe(&installed));
    dir.to_owned()
}

/// Makes a venv at `cx.path()/label/env` (no pip) with `python -m venv`,
/// where `maker` is python or a packed app (asked for python mode); returns
/// its directory.
pub fn venv_made_by(cx: &TestContext, maker: &Path, label: &str) -> PathBuf {
    let env = cx.path().join(label).join("env");
    fs::create_dir_all(env.parent().expect("parent")).expect("mkdir");
    let made = cx
        .command(maker)
        .env("PYFERRY_INTERPRETER", "1")
        .args(["-m", "venv", "--without-pip"])
        .arg(&env)
        .output()
        .expect("make a venv");
    success(&made);
    env
}

/// setuptools and wheel, as a C extension's build needs them (downloaded
/// once into `target/test-build-wheels`).
pub fn build_wheels() -> PathBuf {
    let wheels = target_dir().join("test-build-wheels");
    let requirements = ["setuptools==65.5.0", "wheel==0.45.1"];
    download_wheels_once(&wheels, &requirements.join(" "), &requirements);
    wheels
}

impl TestContext {
    /// `strace -f -o TRACE -e FILTER...` before the program the caller
    /// adds; and TRACE, where strace writes.
    pub fn traced(&self, filters: &[&str]) -> (Command, PathBuf) {
        let trace = self.path().join("trace");
        let mut command = self.command("strace");
        command.args(["-f", "-o"]).arg(&trace);
        for filter in filters {
            command.args(["-e", filter]);
        }
        (command, trace)
    }

    /// The program the caller adds (and its arguments) in a mount namespace
    /// where the compiler that built the build interpreter is hidden, when
    /// its configuration names one by path (Zig's toolchain, in a cache of
    /// this machine, built pyferry's CPython): as on every other machine.
    pub fn without_the_build_compiler(&self) -> Command {
        let compiler = success(&self.python(&[
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('CC').split()[0])",
        ]));
        let compiler = Path::new(compiler.trim());
        let hide = match compiler.parent() {
            Some(dir) if compiler.is_absolute() => {
                format!("mount -t tmpfs tmpfs {}", dir.display())
            }
            _ => "true".to_owned(),
        };
        let mut command = self.command("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{hide} && exec \"$0\" \"$@\""));
        command
    }
}
