//! pyferry with its kit (`make kit`, what `make install` installs): it packs
//! with its own python, runtime and standard library, in a root that holds
//! nothing but glibc, pyferry and a wheelhouse; the apps it packs behave as
//! the same code in a venv.

use crate::context::{
    BUILD_PYTHON, TestContext, describe, output_of, pyenv_pythons, pyferry, stderr, success,
    venv_output, venv_with, wheel_dir,
};
use crate::standalone::{glibc_files, is_glibc, ldd_files, list_files, run_in_root};
use crate::wheels::greet_project;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// pyferry with its kit, made from the binary under test as `make kit`
/// makes it (pip's wheel bundled with the build interpreter), once per run.
fn self_contained_pyferry() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| {
        let dir = crate::context::target_dir().join("test-kit");
        fs::create_dir_all(&dir).expect("mkdir");
        let kit = dir.join("pyferry");
        let output = Command::new("make")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["-o", "build", "kit"])
            .arg(format!("PYFERRY={}", pyferry()))
            .arg(format!("PYTHON={BUILD_PYTHON}"))
            .arg(format!("KIT={}", kit.display()))
            .env("PYFERRY_PACK_CACHE_DIR", crate::context::pack_cache_dir())
            .output()
            .expect("make kit");
        assert!(output.status.success(), "{}", describe(&output));
        kit
    })
}

const NUMERIC_APP: &str = "import numpy, pydantic_core\n\
    print(numpy.fft.fft(numpy.ones(4)).real, numpy.linalg.det(numpy.eye(3)))\n\
    print(pydantic_core.SchemaValidator({'type': 'int'}).validate_python('42'))\n";

#[test]
fn the_self_contained_pyferry_packs_where_only_glibc_is() {
    let cx = TestContext::new();
    let root = cx.path().join("root");
    glibc_files(&root, &ldd_files(self_contained_pyferry()));
    for dir in ["out", "wheels", "app"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::copy(self_contained_pyferry(), root.join("pyferry")).expect("copy pyferry");
    for wheel in fs::read_dir(wheel_dir()).expect("list wheels").flatten() {
        let name = wheel.file_name().to_string_lossy().into_owned();
        let wanted = ["numpy-", "pydantic_core-", "typing_extensions-"];
        if wanted.iter().any(|prefix| name.starts_with(prefix)) {
            fs::copy(wheel.path(), root.join("wheels").join(&name)).expect("copy a wheel");
        }
    }
    fs::write(root.join("app/__main__.py"), NUMERIC_APP).expect("write");
    let project = greet_project(&cx, "root/project");

    // Nothing but glibc, pyferry and the inputs: no Python, no ldd.
    let files = list_files(&root);
    assert!(
        files.iter().all(|name| {
            is_glibc(name)
                || ["pyferry", "dev/null"].contains(&name.as_str())
                || ["wheels/", "app/", "project/"]
                    .iter()
                    .any(|dir| name.starts_with(dir))
        }),
        "{files:?}"
    );

    let packed = run_in_root(
        &cx,
        &root,
        &[
            "/pyferry",
            "pack",
            "-o",
            "/out/numeric",
            "/app",
            "numpy",
            "pydantic-core",
        ]
        .into_iter()
        .chain(["--", "--no-index", "--find-links", "/wheels"])
        .collect::<Vec<_>>(),
    );
    assert!(packed.status.success(), "{}", describe(&packed));
    let numeric = run_in_root(&cx, &root, &["/out/numeric"]);
    let expected = venv_output(&cx, &root.join("app/__main__.py"));
    assert_eq!(success(&numeric), expected, "{}", describe(&numeric));

    // A project, built by pip with build isolation, by the kit's python.
    let packed = run_in_root(
        &cx,
        &root,
        &["/pyferry", "pack", "/project", "--", "--no-index"],
    );
    assert!(packed.status.success(), "{}", describe(&packed));
    let greet = run_in_root(&cx, &root, &["/project/dist/greet", "a", "b"]);
    let venv = venv_with(
        &cx.path().join("venv"),
        &["--no-index".as_ref(), project.as_ref()],
    );
    let expected = output_of(cx.command(venv.join("bin/greet")).args(["a", "b"]));
    assert_eq!(
        greet.status.code(),
        expected.status.code(),
        "{}",
        describe(&greet)
    );
    assert_eq!(greet.stdout, expected.stdout, "{}", describe(&greet));
}

#[test]
fn parts_of_the_standard_library_the_kit_leaves_out_need_another_python() {
    let cx = TestContext::new();
    let app = cx.write_tree("tk", &[("__main__.py", "import tkinter\n")]);
    let refused = output_of(
        cx.command(self_contained_pyferry())
            .args(["pack", "-o"])
            .arg(cx.path().join("tk-app"))
            .arg(&app),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("the app needs tkinter of the standard library")
            && message.contains("--python PY"),
        "{message}"
    );
    // With the build interpreter named, the same pyferry gathers it.
    let packed = output_of(
        cx.command(self_contained_pyferry())
            .args(["pack", "--python", BUILD_PYTHON, "-o"])
            .arg(cx.path().join("tk-app"))
            .arg(&app),
    );
    assert!(packed.status.success(), "{}", describe(&packed));
}

/// The wheel `make wheel` writes, from the binary under test.
pub fn wheel() -> &'static Path {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL.get_or_init(|| {
        let output = Command::new("make")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["-o", "build", "wheel"])
            .arg(format!("PYFERRY={}", pyferry()))
            .arg(format!("PYTHON={BUILD_PYTHON}"))
            .arg(format!("KIT={}", self_contained_pyferry().display()))
            .env("PYFERRY_PACK_CACHE_DIR", crate::context::pack_cache_dir())
            .output()
            .expect("make wheel");
        assert!(output.status.success(), "{}", describe(&output));
        let dir = crate::context::target_dir().join("wheel");
        fs::read_dir(&dir)
            .expect("target/wheel")
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
            .expect("a wheel in target/wheel")
    })
}

/// Installed into venvs of other Pythons than pyferry embeds, and with
/// `uv tool install`, the wheel gives a `pyferry` that packs and runs apps.
#[test]
fn the_wheel_installs_and_packs_under_other_pythons_and_uv() {
    let cx = TestContext::new();
    let wheel = wheel();
    let name = wheel
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // Tagged for the glibc pyferry's CPython is built for, as auditwheel
    // finds it: pip installs it on every Linux from there on.
    let (major, minor) = crate::standalone::OLDEST_GLIBC;
    assert!(
        regex::Regex::new(&format!(
            r"^pyferry-[0-9.]+-py3-none-manylinux_{major}_{minor}_x86_64\.whl$"
        ))
        .expect("regex")
        .is_match(&name),
        "{name}"
    );
    let app = cx.write_tree(
        "app",
        &[(
            "__main__.py",
            "import sys\nprint('hello from', sys.version.split()[0], sys.argv[1:])\n",
        )],
    );
    let expected = success(&cx.python(&[app.join("__main__.py").to_str().expect("utf-8"), "x"]));
    let works = |pyferry: &Path, label: &str| {
        let version = success(&output_of(cx.command(pyferry).arg("--version")));
        assert!(version.contains("standalone flavor"), "{label}: {version}");
        let out = cx.path().join(format!("hello-{label}"));
        let packed = output_of(cx.command(pyferry).args(["pack", "-o"]).arg(&out).arg(&app));
        assert!(packed.status.success(), "{label}: {}", describe(&packed));
        assert_eq!(
            success(&output_of(cx.command(&out).arg("x"))),
            expected,
            "{label}"
        );
    };

    let pyenv_312 = pyenv_pythons()
        .into_iter()
        .map(|python| python.with_file_name("python3.12"))
        .find(|python| python.exists())
        .expect("pyenv's CPython 3.12");
    for (label, python) in [
        ("debian-3.11", PathBuf::from("/usr/bin/python3.11")),
        ("pyenv-3.12", pyenv_312),
    ] {
        let venv = cx.path().join(label);
        let made = output_of(Command::new(&python).args(["-m", "venv"]).arg(&venv));
        assert!(made.status.success(), "{label}: {}", describe(&made));
        let installed = output_of(
            cx.command(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--quiet", "--no-index"])
                .arg(wheel),
        );
        assert!(
            installed.status.success(),
            "{label}: {}",
            describe(&installed)
        );
        works(&venv.join("bin/pyferry"), label);
    }

    let uv = crate::context::target_dir().join("tools-venv/bin/uv");
    let tools = cx.path().join("uv");
    let installed = output_of(
        cx.command(&uv)
            .args([
                "tool",
                "install",
                "--offline",
                "--python",
                "/usr/bin/python3.11",
            ])
            .arg(wheel)
            .env("UV_TOOL_DIR", tools.join("tools"))
            .env("UV_TOOL_BIN_DIR", tools.join("bin"))
            .env("UV_CACHE_DIR", tools.join("cache"))
            .env("UV_PYTHON_DOWNLOADS", "never"),
    );
    assert!(installed.status.success(), "uv: {}", describe(&installed));
    works(&tools.join("bin/pyferry"), "uv");
}

/// A project whose C extension pip builds: with the kit's python, the
/// kit's CPython headers and the machine's C compiler, as pip would with a
/// python of its own; compared with the project installed in a venv. The
/// compiler that built pyferry's CPython (Zig's, from a cache on this
/// machine, named by a path in its configuration) is hidden, as it is on
/// every other machine.
#[test]
fn a_project_with_a_c_extension_builds_with_the_kits_python() {
    let cx = TestContext::new();
    let wheels = crate::context::build_wheels();
    let project = cx.write_tree(
        "square",
        &[
            (
                "pyproject.toml",
                "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\
                 [project]\nname = \"square\"\nversion = \"1.0\"\n\
                 [project.scripts]\nsquare = \"square_cli:main\"\n",
            ),
            (
                "setup.py",
                "from setuptools import Extension, setup\n\
                 setup(ext_modules=[Extension('_square', ['_square.c'])], py_modules=['square_cli'])\n",
            ),
            (
                "_square.c",
                "#include <Python.h>\n\
                 static PyObject *square(PyObject *self, PyObject *arg) {\n\
                 long x = PyLong_AsLong(arg);\n\
                 if (x == -1 && PyErr_Occurred()) return NULL;\n\
                 return PyLong_FromLong(x * x);\n}\n\
                 static PyMethodDef methods[] = {{\"square\", square, METH_O, \"\"}, {NULL, NULL, 0, NULL}};\n\
                 static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, \"_square\", NULL, -1, methods};\n\
                 PyMODINIT_FUNC PyInit__square(void) { return PyModule_Create(&module); }\n",
            ),
            (
                "square_cli.py",
                "import sys, _square\n\
                 def main():\n    print([_square.square(int(a)) for a in sys.argv[1:]], _square.__name__)\n",
            ),
        ],
    );
    let pip_args = [
        "--no-index",
        "--find-links",
        wheels.to_str().expect("utf-8"),
    ];
    let packed = output_of(
        cx.without_the_build_compiler()
            .arg(self_contained_pyferry())
            .args(["pack", "-o"])
            .arg(cx.path().join("square-app"))
            .arg(&project)
            .arg("--")
            .args(pip_args),
    );
    assert!(packed.status.success(), "{}", describe(&packed));
    let mut install: Vec<&OsStr> = pip_args.iter().map(OsStr::new).collect();
    install.push(project.as_os_str());
    let venv = venv_with(&cx.path().join("venv"), &install);
    let expected = success(&output_of(
        cx.command(venv.join("bin/square")).args(["2", "3"]),
    ));
    let output = output_of(cx.command(cx.path().join("square-app")).args(["2", "3"]));
    assert_eq!(success(&output), expected, "{}", describe(&output));
}
