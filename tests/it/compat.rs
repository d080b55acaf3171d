//! The compatibility suite (`tests/compat/apps.toml`): popular applications
//! from PyPI, each installed in a venv of its own and packed from the same
//! wheels, run side by side on the same inputs and compared: exit status,
//! stdout, stderr and the files each run leaves in its working directory.
//!
//! `make test` runs the quick subset; `make test-compat` runs every app.

use crate::context::{
    BUILD_PYTHON, TestContext, describe, download_wheels_once, output_of, pyferry, target_dir,
};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const SUITE: &str = include_str!("../compat/apps.toml");
const REQUIREMENTS: &str = include_str!("../compat/requirements.txt");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    app: Vec<AppSpec>,
}

/// One app of the suite; the keys are described at the top of apps.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSpec {
    name: String,
    #[allow(dead_code)] // For the reader of apps.toml.
    pattern: String,
    install: Vec<String>,
    script: Option<String>,
    module: Option<String>,
    app: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    runs: Vec<Vec<String>>,
    #[serde(default)]
    replace: Vec<(String, String)>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

fn suite() -> &'static [AppSpec] {
    static SUITE_APPS: OnceLock<Vec<AppSpec>> = OnceLock::new();
    SUITE_APPS.get_or_init(|| {
        toml::from_str::<Suite>(SUITE)
            .unwrap_or_else(|error| panic!("tests/compat/apps.toml: {error}"))
            .app
    })
}

/// The quick subset runs in `make test`; the rest are `#[ignore]`d and run
/// by `make test-compat` (`cargo test -- --ignored compat::`).
macro_rules! compat_tests {
    (quick: [$($quick:ident),* $(,)?], full: [$($full:ident),* $(,)?] $(,)?) => {
        $(
            #[test]
            fn $quick() {
                check_app(stringify!($quick));
            }
        )*
        $(
            #[test]
            #[ignore = "the full compatibility suite: make test-compat"]
            fn $full() {
                check_app(stringify!($full));
            }
        )*
        const TESTED_APPS: &[&str] = &[$(stringify!($quick),)* $(stringify!($full),)*];
    };
}

compat_tests! {
    quick: [pyfiglet, yamllint, pylint, pygments, babel, pytest, cookiecutter, timezones, flask],
    full: [
        flake8, isort, httpie, sqlfluff, mypy, docutils, markdown, cowsay, tabulate, csvkit,
        csvsql, faker, ruff, sphinx, mkdocs, sqlite_utils, pip, jsonschema,
    ],
}

#[test]
fn every_app_of_the_suite_has_a_test() {
    let mut listed: Vec<&str> = suite().iter().map(|app| app.name.as_str()).collect();
    let mut tested = TESTED_APPS.to_vec();
    listed.sort_unstable();
    tested.sort_unstable();
    assert_eq!(listed, tested);
}

/// The suite's wheels (tests/compat/requirements.txt, every dependency
/// pinned), downloaded once into `target/` and reused.
fn compat_wheels() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join(format!(
            "compat-wheels-{}",
            pyferry::build_python::PYTHON_VERSION
        ));
        let requirements =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/requirements.txt");
        let args = [
            "--no-deps".as_ref(),
            "-r".as_ref(),
            requirements.as_os_str(),
        ];
        download_wheels_once(&dir, REQUIREMENTS, &args);
        dir
    })
}

/// A venv of the build interpreter holding `app.install`, kept in
/// `target/` between runs.
fn venv_of(app: &AppSpec) -> PathBuf {
    let dir = target_dir()
        .join(format!(
            "compat-venvs-{}",
            crate::context::interpreter_tag()
        ))
        .join(&app.name);
    let marker = dir.join(".complete");
    let wanted = format!("{}\n{REQUIREMENTS}", app.install.join(" "));
    if fs::read_to_string(&marker).ok() == Some(wanted.clone()) {
        return dir;
    }
    let _ = fs::remove_dir_all(&dir);
    let status = Command::new(BUILD_PYTHON)
        .args(["-m", "venv", "--without-pip"])
        .arg(&dir)
        .status()
        .expect("create a venv");
    assert!(
        status.success(),
        "creating the venv {} failed",
        dir.display()
    );
    let output = Command::new(BUILD_PYTHON)
        .args(["-m", "pip", "--python"])
        .arg(dir.join("bin/python"))
        .args([
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--no-index",
        ])
        .arg("--find-links")
        .arg(compat_wheels())
        .args(&app.install)
        .output()
        .expect("run pip install");
    assert!(
        output.status.success(),
        "installing {:?} into a venv failed:\n{}",
        app.install,
        describe(&output)
    );
    fs::write(&marker, wanted).expect("marker");
    dir
}

/// How one side (the venv or the packed app) is started.
struct Side {
    label: &'static str,
    program: PathBuf,
    leading_args: Vec<OsString>,
    work: PathBuf,
    home: PathBuf,
    /// Where this side's code lives, as both sides name it in output
    /// (tracebacks, warnings): `{site}`, `{stdlib}`, `{bin}`.
    places: Vec<(Regex, &'static str)>,
}

impl Side {
    fn new(cx: &TestContext, label: &'static str, app: &AppSpec) -> Side {
        let work = cx.path().join(format!("work-{label}"));
        let home = cx.path().join(format!("home-{label}"));
        fs::create_dir_all(&home).expect("home");
        fs::create_dir_all(&work).expect("work dir");
        if app.app.is_none() {
            write_files(&work, &app.files);
        }
        let mut places = vec![
            (literal(&work), "{work}"),
            (literal(&home), "{home}"),
            (literal(&base_stdlib()), "{stdlib}"),
        ];
        if label == "packed" {
            // The standalone flavor's standard library, then the app's
            // extracted units, in the app's cache.
            let cache = regex::escape(cx.cache_dir().to_str().expect("utf-8"));
            let version = format!("{cache}/[^/]+-[0-9a-f]{{16}}");
            let stdlib = format!(
                "{version}/\\.python/lib/python{}",
                pyferry::build_python::PYTHON_VERSION
            );
            places.push((Regex::new(&stdlib).expect("regex"), "{stdlib}"));
            places.push((Regex::new(&version).expect("regex"), "{site}"));
        }
        Side {
            label,
            program: PathBuf::new(),
            leading_args: Vec::new(),
            work,
            home,
            places,
        }
    }

    /// How the program is started, and where its code lives.
    fn start(&mut self, program: PathBuf, leading_args: Vec<OsString>, site: &Path, bin: &Path) {
        self.program = program;
        self.leading_args = leading_args;
        // With the slash: the packed app's archive is a file in `bin`.
        self.places.push((literal(&site.join("")), "{site}/"));
        self.places.push((literal(&bin.join("")), "{bin}/"));
    }

    fn run(&self, cx: &TestContext, app: &AppSpec, args: &[String]) -> Output {
        output_of(
            cx.command(&self.program)
                .envs(&app.environment)
                .args(&self.leading_args)
                .args(args)
                .current_dir(&self.work)
                .env("HOME", &self.home)
                // Sets print in hash order, which is random by default.
                .env("PYTHONHASHSEED", "0")
                .env("COLUMNS", "100")
                .env("LINES", "40"),
        )
    }

    /// Output as the other side would print it: this side's own directories
    /// named alike, then the app's replacements.
    fn normalize(&self, text: &[u8], replace: &[(Regex, String)]) -> String {
        let mut text = String::from_utf8_lossy(text).into_owned();
        for (pattern, place) in &self.places {
            text = pattern.replace_all(&text, *place).into_owned();
        }
        for (pattern, replacement) in replace {
            text = pattern
                .replace_all(&text, replacement.as_str())
                .into_owned();
        }
        text
    }
}

fn literal(path: &Path) -> Regex {
    Regex::new(&regex::escape(path.to_str().expect("utf-8"))).expect("regex")
}

/// The build interpreter's standard library, which the venvs use.
fn base_stdlib() -> PathBuf {
    Path::new(BUILD_PYTHON)
        .ancestors()
        .nth(2)
        .expect("python in PREFIX/bin")
        .join(format!(
            "lib/python{}",
            pyferry::build_python::PYTHON_VERSION
        ))
}

fn write_files(dir: &Path, files: &BTreeMap<String, String>) {
    for (name, contents) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, contents).expect("write fixture");
    }
}

fn check_app(name: &str) {
    let app = suite()
        .iter()
        .find(|app| app.name == name)
        .unwrap_or_else(|| panic!("{name} is not in tests/compat/apps.toml"));
    let cx = TestContext::new();
    let venv = venv_of(app);
    let mut venv_side = Side::new(&cx, "venv", app);
    let mut packed_side = Side::new(&cx, "packed", app);

    let mut pack_args: Vec<OsString> = Vec::new();
    let (venv_program, venv_args, program_name) = match (&app.script, &app.module, &app.app) {
        (Some(script), None, None) => {
            pack_args.extend(["-c".into(), script.into()]);
            (venv.join("bin").join(script), Vec::new(), script.clone())
        }
        (None, Some(module), None) => {
            pack_args.extend(["-e".into(), module.into()]);
            let args = vec!["-m".into(), module.into()];
            (venv.join("bin/python"), args, module.clone())
        }
        (None, None, Some(source)) => {
            let source_dir = cx.path().join("app");
            fs::create_dir_all(&source_dir).expect("app dir");
            write_files(&source_dir, &app.files);
            fs::write(source_dir.join("__main__.py"), source).expect("write app");
            pack_args.push(source_dir.clone().into());
            let args = vec![source_dir.clone().into()];
            venv_side
                .places
                .push((literal(&source_dir.join("")), "{site}/"));
            (venv.join("bin/python"), args, app.name.clone())
        }
        _ => panic!("{name}: give exactly one of script, module and app"),
    };
    let site_packages = venv.join(format!(
        "lib/python{}/site-packages",
        pyferry::build_python::PYTHON_VERSION
    ));
    venv_side.start(venv_program, venv_args, &site_packages, &venv.join("bin"));
    let packed_dir = cx.path().join("packed");
    fs::create_dir_all(&packed_dir).expect("packed dir");
    let exe = packed_dir.join(program_name);
    packed_side.start(exe.clone(), Vec::new(), &exe, &packed_dir);
    pack_args.extend(app.install.iter().map(OsString::from));
    pack_args.extend(["--".into(), "--no-index".into(), "--find-links".into()]);
    pack_args.push(compat_wheels().into());
    let pack = cx
        .command(pyferry())
        .args(["pack", "-o"])
        .arg(&packed_side.program)
        .args(&pack_args)
        .output()
        .expect("run pyferry pack");
    assert!(
        pack.status.success(),
        "{name}: pack failed:\n{}",
        describe(&pack)
    );

    let replace: Vec<(Regex, String)> = app
        .replace
        .iter()
        .map(|(pattern, with)| (Regex::new(pattern).expect("regex"), with.clone()))
        .collect();
    let runs = if app.runs.is_empty() {
        vec![Vec::new()]
    } else {
        app.runs.clone()
    };
    for args in &runs {
        let venv_run = venv_side.run(&cx, app, args);
        let packed_run = packed_side.run(&cx, app, args);
        let context = || {
            format!(
                "{name} {args:?}\n=== {}\n{}\n=== {}\n{}",
                venv_side.label,
                describe(&venv_run),
                packed_side.label,
                describe(&packed_run)
            )
        };
        assert_eq!(
            (venv_run.status.code(), venv_run.status.to_string()),
            (packed_run.status.code(), packed_run.status.to_string()),
            "exit status differs: {}",
            context()
        );
        assert_eq!(
            venv_side.normalize(&venv_run.stdout, &replace),
            packed_side.normalize(&packed_run.stdout, &replace),
            "stdout differs: {}",
            context()
        );
        assert_eq!(
            venv_side.normalize(&venv_run.stderr, &replace),
            packed_side.normalize(&packed_run.stderr, &replace),
            "stderr differs: {}",
            context()
        );
    }
    let venv_files = tree(&venv_side.work, &app.ignore);
    let packed_files = tree(&packed_side.work, &app.ignore);
    let differing: Vec<&String> = venv_files
        .keys()
        .chain(packed_files.keys())
        .filter(|path| venv_files.get(*path) != packed_files.get(*path))
        .collect();
    assert!(
        differing.is_empty(),
        "{name}: the runs left different files: {differing:?}"
    );
}

/// Every file below `root` (relative path to contents; directories as
/// `None`), but those under an ignored path.
fn tree(root: &Path, ignore: &[String]) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            if ignore
                .iter()
                .any(|ignored| relative == *ignored || relative.starts_with(&format!("{ignored}/")))
            {
                continue;
            }
            if entry.file_type().expect("type").is_dir() {
                pending.push(path);
                found.insert(relative, None);
            } else if relative.contains("__pycache__/") {
                // Bytecode names its source's path and time: compared by name.
                found.insert(relative, None);
            } else {
                found.insert(relative, Some(fs::read(&path).expect("read")));
            }
        }
    }
    found
}
