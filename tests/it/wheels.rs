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
