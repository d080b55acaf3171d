//! Native code: a C extension module built here with gcc and the Python
//! headers, loading a vendored shared library through an `$ORIGIN` RPATH.

use crate::context::{BUILD_PYTHON, TestContext, stderr, stdout, success};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python_config(flag: &str) -> String {
    let output = Command::new(BUILD_PYTHON)
        .args([
            "-c",
            &format!("import sysconfig; print(sysconfig.get_config_var('{flag}'))"),
        ])
        .output()
        .expect("ask python");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn gcc(args: &[&str]) {
    let output = Command::new("gcc").args(args).output().expect("run gcc");
    assert!(
        output.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An app dir laid out like an auditwheel-repaired install: `fastpkg/` with
/// the extension module and a data file, `fastpkg.libs/` with the library.
pub fn build_native_app(cx: &TestContext) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/native");
    let app = cx.write_tree(
        "native_app",
        &[
            (
                "fastpkg/__init__.py",
                "import os\nfrom ._fastsum import scaled_sum\n\
                 def data():\n    with open(os.path.join(os.path.dirname(__file__), 'table.dat')) as f:\n        return f.read().strip()\n",
            ),
            ("fastpkg/table.dat", "data next to __file__\n"),
            (
                "__main__.py",
                "import sys, fastpkg, fastpkg._fastsum as ext\n\
                 print(fastpkg.scaled_sum([1, 2, 3, int(sys.argv[1]) if len(sys.argv) > 1 else 0]))\n\
                 print(fastpkg.data())\n\
                 print(ext.__file__)\n",
            ),
        ],
    );
    let libs = app.join("fastpkg.libs");
    fs::create_dir_all(&libs).expect("mkdir");
    let lib = libs.join("libvendored-1a2b3c4d.so");
    gcc(&[
        "-shared",
        "-fPIC",
        "-o",
        lib.to_str().expect("utf-8"),
        fixtures.join("vendored.c").to_str().expect("utf-8"),
    ]);
    let include = python_config("INCLUDEPY");
    let suffix = python_config("EXT_SUFFIX");
    let module = app.join(format!("fastpkg/_fastsum{suffix}"));
    gcc(&[
        "-shared",
        "-fPIC",
        &format!("-I{include}"),
        "-o",
        module.to_str().expect("utf-8"),
        fixtures.join("fastsum.c").to_str().expect("utf-8"),
        &format!("-L{}", libs.display()),
        "-l:libvendored-1a2b3c4d.so",
        "-Wl,-rpath,$ORIGIN/../fastpkg.libs",
    ]);
    app
}

#[test]
fn extension_module_with_vendored_library_runs() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let python = success(&cx.python(&[app.to_str().expect("utf-8"), "4"]));
    let exe = cx.pack("native", &[app.to_str().expect("utf-8")]);

    let out = success(&cx.run(&exe, &["4"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "30");
    assert_eq!(lines[..2], python.lines().collect::<Vec<_>>()[..2]);
    assert_eq!(lines[1], "data next to __file__");
    assert!(
        lines[2].starts_with(cx.cache_dir().to_str().expect("utf-8")),
        "the extension is loaded from the cache: {out}"
    );

    // A warm start reuses the extraction.
    assert_eq!(success(&cx.run(&exe, &["4"])), out);

    // Native units travel in one inner zip: the central directory that
    // zipimport parses on every start lists only what it may import.
    let listing = success(&cx.python(&["-m", "zipfile", "-l", exe.to_str().expect("utf-8")]));
    assert!(listing.contains(".pyferry/native.zip"), "{listing}");
    assert!(!listing.contains("fastpkg/table.dat"), "{listing}");
}

#[test]
fn extract_only_prints_the_extraction_directory() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("native", &[app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &["--extract-only"]);
    let dir = PathBuf::from(success(&output).trim_end());
    assert!(dir.starts_with(cx.cache_dir()), "{}", dir.display());
    assert!(dir.join("fastpkg.libs/libvendored-1a2b3c4d.so").is_file());
    assert!(dir.join("fastpkg/table.dat").is_file());
    let extension = fs::read_dir(dir.join("fastpkg"))
        .expect("list")
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().starts_with("_fastsum."));
    assert!(extension, "the extension module is extracted");
    // Pure-Python parts of a native package are byte-compiled in place.
    assert!(dir.join("fastpkg/__pycache__").is_dir());

    // Only the first argument is reserved: later ones belong to the app.
    let output = cx.run(&exe, &["5", "--extract-only"]);
    assert_eq!(stdout(&output).lines().next(), Some("33"));
}

/// An extension module whose library the system lacks fails as under
/// python, and the traceback ends with what to install.
#[test]
fn a_missing_system_library_is_named_with_what_to_install() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    // As if the library came from the system, and this one lacked it.
    fs::remove_dir_all(app.join("fastpkg.libs")).expect("remove the library");
    let python = cx.python(&[app.to_str().expect("utf-8")]);
    let exe = cx.pack("native", &[app.to_str().expect("utf-8")]);
    let packed = cx.run(&exe, &[] as &[&str]);
    let error = "ImportError: libvendored-1a2b3c4d.so: cannot open shared object file: \
                 No such file or directory\n";
    assert!(stderr(&python).ends_with(error), "{}", stderr(&python));
    let hint = "  hint: this system lacks the library libvendored-1a2b3c4d.so: install it \
                (Debian, Ubuntu: `sudo apt install libvendored-1a2b3c4d`; \
                Fedora: `sudo dnf install 'libvendored-1a2b3c4d.so()(64bit)'`), \
                then start the app again\n";
    assert!(
        stderr(&packed).ends_with(&format!("{error}{hint}")),
        "{}",
        stderr(&packed)
    );
    assert_eq!(packed.status.code(), python.status.code());
}
