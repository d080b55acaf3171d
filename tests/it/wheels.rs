//! pip inputs: a project directory, console scripts, requirement files, and
//! real PyPI wheels (numpy with OpenBLAS in `numpy.libs/`, mypyc-compiled
//! black), compared with the same code run from a venv.

use crate::context::{
    TEST_DISTRIBUTIONS, TestContext, baseline_venv, describe, stdout, success, venv_output,
    wheel_dir,
};
use std::fs;
use std::path::Path;

/// A copy of the pip project fixture at `dir` below the test's directory:
/// pip's setuptools build writes `build/` and `*.egg-info` next to the
/// sources, which must not land in the repository.
pub fn greet_project(cx: &TestContext, dir: &str) -> String {
    let project = cx.path().join(dir);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/greet_project"),
        &project,
    );
    project.to_str().expect("utf-8").to_owned()
}

#[test]
fn project_directory_console_script_and_metadata() {
    let cx = TestContext::new();
    let project = greet_project(&cx, "greet_project");
    let exe = cx.pack(
        "greet",
        &[
            "-c",
            "greet",
            &project,
            "--",
            "--no-build-isolation",
            "--no-index",
        ],
    );
    let output = cx.run(&exe, &["a", "b"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(
        stdout(&output),
        "version 1.2.3\nscripts ['greet']\nresource Hello from a data file\n\
         get_data Hello from a data file\nargs ['a', 'b']\n"
    );
}

#[test]
fn requirement_files_and_pip_passthrough() {
    let cx = TestContext::new();
    let wheels = cx.path().join("wheels");
    let built = cx.python(&[
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        wheels.to_str().expect("utf-8"),
        &greet_project(&cx, "greet_project"),
    ]);
    assert!(built.status.success(), "{}", describe(&built));
    fs::write(cx.path().join("requirements.txt"), "greet==1.2.3\n").expect("write");
    let exe = cx.pack(
        "greet",
        &[
            "-e",
            "greet.cli:main",
            "-r",
            "requirements.txt",
            "--",
            "--no-index",
            "--find-links",
            wheels.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(cx.run(&exe, &[] as &[&str]).status.code(), Some(0));
    assert!(stdout(&cx.run(&exe, &["x"])).contains("version 1.2.3"));

    // Regression: a requirement named like a file in the current directory
    // is still a requirement (it was handed to pip as a path).
    fs::write(cx.path().join("greet"), "not a distribution").expect("write");
    let wheels = wheels.to_str().expect("utf-8");
    let args = [
        "-e",
        "greet.cli:main",
        "greet",
        "--",
        "--no-index",
        "--find-links",
        wheels,
    ];
    let exe = cx.pack("greet2", &args);
    assert!(stdout(&cx.run(&exe, &["x"])).contains("version 1.2.3"));
}

const NUMPY_APP: &str = "import numpy as np\n\
    a = np.arange(12, dtype=np.float64).reshape(3, 4)\n\
    print(a.sum(), a.T @ a)\n\
    print(np.linalg.inv(np.array([[4.0, 7.0], [2.0, 6.0]])))\n\
    print(np.fft.fft(np.ones(4)).real)\n";

#[test]
fn numpy_app_matches_the_venv() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", NUMPY_APP)]);
    let expected = venv_output(&cx, &app);
    let exe = cx.pack(
        "numpy-app",
        &[
            app.to_str().expect("utf-8"),
            "numpy",
            "--",
            "--no-index",
            "--find-links",
            wheel_dir().to_str().expect("utf-8"),
        ],
    );
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), expected);
    let extracted = success(&cx.run(&exe, &["--extract-only"]));
    assert!(Path::new(extracted.trim_end()).join("numpy.libs").is_dir());
}

#[test]
fn black_matches_the_venv() {
    let cx = TestContext::new();
    let exe = cx.pack(
        "black",
        &[
            "-c",
            "black",
            "black",
            "--",
            "--no-index",
            "--find-links",
            wheel_dir().to_str().expect("utf-8"),
        ],
    );
    let venv_black = baseline_venv().join("bin/black");
    let version = success(&cx.run(&exe, &["--version"]));
    assert!(version.contains("(compiled: yes)"), "{version}");
    assert_eq!(
        version.lines().next(),
        success(
            &cx.command(&venv_black)
                .arg("--version")
                .output()
                .expect("venv black")
        )
        .lines()
        .next()
    );

    let source = "def f(a,b):\n  return {'x':a,\n'y':[b,b,]}\nclass  C( object ):\n    pass\n";
    let packed_file = cx.path().join("packed.py");
    let venv_file = cx.path().join("venv.py");
    fs::write(&packed_file, source).expect("write");
    fs::write(&venv_file, source).expect("write");
    let packed = cx.run(&exe, &[&packed_file]);
    let venv = cx
        .command(&venv_black)
        .arg(&venv_file)
        .output()
        .expect("venv black");
    assert_eq!(
        packed.status.code(),
        venv.status.code(),
        "{}",
        describe(&packed)
    );
    assert_eq!(
        fs::read(&packed_file).expect("read"),
        fs::read(&venv_file).expect("read")
    );
    // Nothing to do: black's "unchanged" exit path.
    let again = cx.run(&exe, &["--check", packed_file.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
}

const POPULAR_APP: &str = r#"
import io
import lxml.etree as etree
import orjson
import PIL.Image
import pydantic
import yaml
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes

print("yaml", yaml.__with_libyaml__, yaml.load("a: [1, 2]", Loader=yaml.CLoader))
print("orjson", orjson.dumps({"a": [1, 2.5, None]}))
root = etree.fromstring(b"<r><x a='1'/><x a='2'/></r>")
print("lxml", [x.get("a") for x in root.iter("x")], etree.LXML_VERSION)

class Model(pydantic.BaseModel):
    a: int
    b: list[str] = []

print("pydantic", Model(a="3", b=["x"]).model_dump(), pydantic.VERSION)
image = PIL.Image.new("RGB", (4, 4), (255, 0, 0))
buffer = io.BytesIO()
image.save(buffer, "PNG")
print("pillow", image.getpixel((1, 1)), PIL.Image.open(buffer).size)
digest = hashes.Hash(hashes.SHA256())
digest.update(b"pyferry")
print("sha256", digest.finalize().hex())
fernet = Fernet(Fernet.generate_key())
print("fernet", fernet.decrypt(fernet.encrypt(b"secret")))
"#;

/// Wheels with C, C++ and Rust extensions and vendored libraries.
#[test]
fn popular_native_wheels_match_the_venv() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", POPULAR_APP)]);
    let expected = venv_output(&cx, &app);
    let mut args = vec![app.to_str().expect("utf-8")];
    // Every test distribution but numpy and black, which have tests of their own.
    args.extend(
        TEST_DISTRIBUTIONS
            .iter()
            .filter(|d| !["numpy", "black"].contains(d)),
    );
    let wheels = wheel_dir().to_str().expect("utf-8");
    args.extend(["--", "--no-index", "--find-links", wheels]);
    let exe = cx.pack("popular", &args);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), expected);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("list").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Builds a wheel whose `data` scheme holds files under `share/` and
/// `etc/`, as Jupyter's packages do (nbconvert's templates, kernel specs,
/// server extensions' configuration), into `dir`; returns its path.
fn wheel_with_data_files(dir: &Path) -> std::path::PathBuf {
    let code = "import os, sys\n\
        def main():\n    \
        for relative in ('share/datafiles/banner.txt', 'etc/datafiles/settings.ini'):\n        \
        path = os.path.join(sys.prefix, relative)\n        \
        print(relative, open(path).read().strip())\n    \
        print(sys.prefix != sys.base_prefix, os.path.isdir(os.path.join(sys.base_prefix, 'lib')))\n";
    let build = format!(
        "import base64, hashlib, sys, zipfile\n\
         files = {{'datafiles/__init__.py': {code:?},\n  \
           'datafiles-1.0.data/data/share/datafiles/banner.txt': 'a banner\\n',\n  \
           'datafiles-1.0.data/data/etc/datafiles/settings.ini': '[s]\\n',\n  \
           'datafiles-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\\nName: datafiles\\nVersion: 1.0\\n',\n  \
           'datafiles-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'}}\n\
         def line(name, data):\n    \
           digest = base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b'=').decode()\n    \
           return f'{{name}},sha256={{digest}},{{len(data.encode())}}\\n'\n\
         record = ''.join(line(n, d) for n, d in files.items()) + 'datafiles-1.0.dist-info/RECORD,,\\n'\n\
         files['datafiles-1.0.dist-info/RECORD'] = record\n\
         with zipfile.ZipFile(sys.argv[1], 'w') as wheel:\n    \
           for name, data in files.items():\n        \
             wheel.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)\n"
    );
    fs::create_dir_all(dir).expect("wheel dir");
    let wheel = dir.join("datafiles-1.0-py3-none-any.whl");
    let built = std::process::Command::new(crate::context::BUILD_PYTHON)
        .args(["-c", &build])
        .arg(&wheel)
        .output()
        .expect("build the wheel");
    assert!(built.status.success(), "{}", describe(&built));
    wheel
}

/// A wheel's data files (`NAME.data/data/share/...`) are where a venv has
/// them: under `sys.prefix`, which is then the app's directory in the cache
/// and not `sys.base_prefix` (the standard library's), as in a venv.
#[test]
fn data_files_of_wheels_are_under_sys_prefix_as_in_a_venv() {
    let cx = TestContext::new();
    let wheel = wheel_with_data_files(&cx.path().join("wheels"));
    let venv = crate::context::venv_with(&cx.path().join("venv"), &[wheel.as_os_str()]);
    let run_main = "import datafiles; datafiles.main()";
    let expected = success(
        &cx.command(venv.join("bin/python"))
            .args(["-c", run_main])
            .output()
            .expect("run the venv"),
    );
    let wheel = wheel.to_str().expect("utf-8");
    let exe = cx.pack("datafiles", &["-e", "datafiles:main", wheel]);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), expected);
    // The app's python, for its children, too.
    let child = cx.run_as_python(&exe, &["-c", run_main]);
    assert_eq!(success(&child), expected);
}

/// A wheel's native program (ruff's, among its `scripts`) is where a venv
/// has it: in `sysconfig.get_path("scripts")`, where ruff's own package
/// and other tools look for it first; it runs from there.
#[test]
fn a_wheels_programs_are_in_the_scripts_directory_as_in_a_venv() {
    let cx = TestContext::new();
    let wheels = crate::context::target_dir().join("test-ruff-wheels");
    let ruff = "ruff==0.17.6";
    crate::context::download_wheels_once(&wheels, ruff, &[ruff]);
    let script = "import os, subprocess, sysconfig\n\
        program = os.path.join(sysconfig.get_path('scripts'), 'ruff')\n\
        ran = subprocess.run([program, '--version'], capture_output=True, text=True)\n\
        print(os.path.isfile(program), ran.stdout.strip())\n";
    let app = cx.write_tree("scripts-app", &[("__main__.py", script)]);
    let find_links = [
        "--no-index",
        "--find-links",
        wheels.to_str().expect("utf-8"),
    ];
    let mut install: Vec<&std::ffi::OsStr> = find_links.iter().map(std::ffi::OsStr::new).collect();
    install.push(std::ffi::OsStr::new(ruff));
    let venv = crate::context::venv_with(&cx.path().join("venv"), &install);
    let expected = success(
        &cx.command(venv.join("bin/python"))
            .arg(app.join("__main__.py"))
            .output()
            .expect("run the venv"),
    );
    let mut args = vec![app.to_str().expect("utf-8"), ruff, "--"];
    args.extend(find_links);
    let exe = cx.pack("scripts", &args);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), expected);
}
