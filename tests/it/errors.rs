//! Bad input gets one clear paragraph and a non-zero exit: no panic, no
//! traceback from pyferry's own code, nothing half-written.

use crate::context::{TestContext, describe, pyenv_pythons, stderr, wheel_dir};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn assert_clean_error(output: &Output, needles: &[&str]) {
    let text = stderr(output);
    assert!(
        !output.status.success(),
        "expected failure:\n{}",
        describe(output)
    );
    assert!(!text.contains("panicked"), "panic:\n{text}");
    assert!(!text.contains("Traceback"), "traceback:\n{text}");
    for needle in needles {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

fn hello(cx: &TestContext) -> PathBuf {
    let app = cx.write_tree("app", &[("__main__.py", "print('hello')\n")]);
    cx.pack("hello", &[app.to_str().expect("utf-8")])
}

#[test]
fn pack_without_entry_point() {
    let cx = TestContext::new();
    let app = cx.write_tree("lib", &[("lib/__init__.py", "")]);
    let output = cx.pack_output("out", &[app.to_str().expect("utf-8")]);
    assert_clean_error(
        &output,
        &["pyferry: error: no entry point", "hint: pass `-e"],
    );
    assert!(!cx.path().join("out").exists(), "no output on failure");
    let leftovers: Vec<_> = fs::read_dir(cx.path())
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("pyferry-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn pack_with_missing_entry_module_or_script() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("tool.py", "def main(): pass\n")]);
    let app = app.to_str().expect("utf-8");
    let output = cx.pack_output("out", &["-e", "tool_typo:main", app]);
    assert_clean_error(
        &output,
        &["the entry point module `tool_typo` is not in the app"],
    );
    let output = cx.pack_output("out", &["-e", "tool:main()", app]);
    assert_clean_error(&output, &["`tool:main()` is not a valid entry point"]);
    let output = cx.pack_output("out", &["-c", "nothing", app]);
    assert_clean_error(&output, &["console script `nothing`"]);
    let output = cx.pack_output("out", &[]);
    assert_clean_error(&output, &["nothing to pack", "hint: pass a directory"]);
    // Inputs that look local are never looked up on PyPI.
    for missing in [
        "./no/such/dir",
        "src/tool",
        "helo.py",
        "tool-1.0-py3-none-any.whl",
    ] {
        let output = cx.pack_output("out", &[missing]);
        assert_clean_error(
            &output,
            &[
                &format!("`{missing}` names a file or directory"),
                "no such file",
            ],
        );
        assert!(!stderr(&output).contains("satisfies the requirement"));
    }
}

#[test]
fn missing_entry_function_is_found_when_packing() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("tool.py", "def main(): pass\n")]);
    let output = cx.pack_output("tool", &["-e", "tool:mian", app.to_str().expect("utf-8")]);
    assert_clean_error(
        &output,
        &["the entry point `tool:mian` does not exist", "hint:"],
    );
    assert!(!cx.path().join("tool").exists());
}

/// A module that makes its names at run time cannot be judged when packing:
/// a wrong name is then reported by the running app, cleanly.
#[test]
fn missing_entry_function_of_a_dynamic_module_at_run_time() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("tool.py", "globals()['main'] = lambda: 0\n")]);
    let exe = cx.pack("tool", &["-e", "tool:mian", app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &[] as &[&str]);
    assert_eq!(output.status.code(), Some(1));
    assert_clean_error(
        &output,
        &["tool: error: the entry point `tool:mian` does not exist"],
    );
    // The name it does make works.
    let exe = cx.pack("tool", &["-e", "tool:main", app.to_str().expect("utf-8")]);
    assert!(cx.run(&exe, &[] as &[&str]).status.success());
}

/// `-o` is checked before pip or anything else runs.
#[test]
fn an_unusable_output_is_refused_first() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('hello')\n")]);
    let app = app.to_str().expect("utf-8");
    // A requirement that would fail (no index): the output check comes first.
    for (out, reason) in [
        ("no/such/dir/app", "does not exist"),
        ("app", "it is a directory"),
    ] {
        let output = cx.pack_output(out, &[app, "no-such-requirement-xyz", "--", "--no-index"]);
        assert_clean_error(&output, &["cannot write the executable to", reason]);
        assert!(!stderr(&output).contains("pip"), "{}", describe(&output));
    }
}

#[test]
fn wheel_for_another_python_is_refused() {
    let cx = TestContext::new();
    let numpy = fs::read_dir(wheel_dir())
        .expect("list wheels")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("numpy-"))
        .expect("numpy wheel")
        .path();
    // The same wheel, renamed for a Python other than the embedded one.
    let version = pyferry::build_python::PYTHON_VERSION;
    let ours = format!("cp{}", version.replace('.', ""));
    let other = if ours == "cp39" { "cp310" } else { "cp39" };
    let name = numpy
        .file_name()
        .expect("name")
        .to_string_lossy()
        .replace(&ours, other);
    let wrong = cx.path().join(name);
    fs::copy(&numpy, &wrong).expect("copy");
    let output = cx.pack_output("out", &["-e", "numpy", wrong.to_str().expect("utf-8")]);
    let expected = format!("cannot run on the embedded Python {version}");
    assert_clean_error(&output, &[&expected, &format!("`{other}`"), "hint:"]);
}

fn damaged_copy(
    cx: &TestContext,
    exe: &Path,
    name: &str,
    damage: impl FnOnce(&mut Vec<u8>),
) -> PathBuf {
    let mut bytes = fs::read(exe).expect("read");
    damage(&mut bytes);
    let path = cx.path().join(name);
    fs::write(&path, bytes).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn truncated_and_corrupted_executables() {
    let cx = TestContext::new();
    let exe = hello(&cx);
    // Cut into the zip, past its end record: the runtime itself still loads.
    let truncated = damaged_copy(&cx, &exe, "truncated", |b| b.truncate(b.len() - 3500));
    assert_clean_error(
        &cx.run(&truncated, &[] as &[&str]),
        &[
            "truncated: error: the executable",
            "has lost its payload",
            "hint:",
            "cuts the file short",
        ],
    );

    let corrupted = damaged_copy(&cx, &exe, "corrupted", |b| {
        // A byte inside the manifest JSON, which is the zip comment.
        let at = b
            .windows(8)
            .rposition(|w| w == b"\"pyferry")
            .expect("the manifest names the pyferry version");
        b[at + 3] ^= 0x01;
    });
    assert_clean_error(
        &cx.run(&corrupted, &[] as &[&str]),
        &["the payload of", "is corrupt", "checksum", "hint:"],
    );
}

#[test]
fn removing_the_payload_section_is_reported() {
    let cx = TestContext::new();
    let exe = hello(&cx);
    let removed = cx.path().join("removed");
    fs::copy(&exe, &removed).expect("copy");
    let status = Command::new("objcopy")
        .args(["--remove-section", ".pyferry"])
        .arg(&removed)
        .status()
        .expect("run objcopy");
    assert!(status.success());
    assert_clean_error(
        &cx.run(&removed, &[] as &[&str]),
        &["has lost its payload", "`.pyferry` section"],
    );
}

#[test]
fn unsafe_cache_directory_is_refused() {
    let cx = TestContext::new();
    let app = crate::native::build_native_app(&cx);
    let exe = cx.pack("native", &[app.to_str().expect("utf-8")]);
    let shared = cx.path().join("shared-cache");
    fs::create_dir(&shared).expect("mkdir");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).expect("chmod");
    let output = cx
        .command(&exe)
        .env("PYFERRY_CACHE_DIR", &shared)
        .output()
        .expect("run");
    assert_clean_error(
        &output,
        &[
            "cannot use the cache directory",
            "writable by group or others",
        ],
    );

    let link = cx.path().join("link-cache");
    std::os::unix::fs::symlink(cx.path().join("home"), &link).expect("symlink");
    let output = cx
        .command(&exe)
        .env("PYFERRY_CACHE_DIR", &link)
        .output()
        .expect("run");
    assert_clean_error(&output, &["is a symbolic link"]);
}

#[test]
fn the_bootstrap_module_name_is_reserved() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "print(1)\n"),
            ("_pyferry_boot.py", "x = 1\n"),
        ],
    );
    let output = cx.pack_output("out", &[app.to_str().expect("utf-8")]);
    assert_clean_error(
        &output,
        &["`_pyferry_boot.py` cannot go into the archive", "reserved"],
    );
}

#[test]
fn a_build_interpreter_unlike_the_runtime_is_refused() {
    use pyferry::build_python::{PYTHON_FULL_VERSION, PYTHON_VERSION};
    use pyferry::format::Flavor;
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('hello')\n")]);
    let mut pythons = vec![PathBuf::from("/usr/bin/python3.11")];
    pythons.extend(pyenv_pythons());
    let mut refused = 0;
    for python in pythons.iter().filter(|python| python.exists()) {
        let version = Command::new(python)
            .args(["-c", "import platform; print(platform.python_version())"])
            .output()
            .expect("run python");
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        let minor = version
            .rsplit_once('.')
            .map_or(version.as_str(), |(minor, _)| minor);
        let same_minor = minor == PYTHON_VERSION;
        // The system flavor takes the machine's standard library: any
        // 3.X.Y of its minor version will do.
        if version == PYTHON_FULL_VERSION || same_minor && Flavor::CURRENT == Flavor::System {
            continue;
        }
        let output = cx.pack_output(
            "out",
            &[
                "--python",
                python.to_str().expect("utf-8"),
                app.to_str().expect("utf-8"),
            ],
        );
        let (reason, shown) = match same_minor {
            true => ("must be the very same version", version.as_str()),
            false => ("but the runtime embeds CPython", minor),
        };
        assert_clean_error(&output, &[reason, shown]);
        assert!(!cx.path().join("out").exists());
        refused += 1;
    }
    assert!(refused > 0, "no other interpreter to try among {pythons:?}");
}

/// `pack -o h.py h.py` once wrote the executable over the user's script:
/// an output that is one of the inputs (a script, a wheel, a requirement
/// file, through another path too), or that lies inside a directory that is
/// copied into the archive, is refused, and the input is left as it was.
#[test]
fn pack_never_writes_over_its_inputs() {
    let cx = TestContext::new();
    let script = cx.path().join("h.py");
    fs::write(&script, "print('hello')\n").expect("write");
    let app = cx.write_tree("app", &[("__main__.py", "print('hello')\n")]);
    let requirements = cx.path().join("requirements.txt");
    fs::write(&requirements, "\n").expect("write");
    let pack = |output: &Path, args: &[&Path]| {
        cx.command(crate::context::pyferry())
            .args(["pack", "-o"])
            .arg(output)
            .args(args)
            .output()
            .expect("pack")
    };
    for (output, args) in [
        (script.clone(), vec![script.as_path()]),
        (PathBuf::from("./h.py"), vec![script.as_path()]),
        (app.join("tool"), vec![app.as_path()]),
        (
            requirements.clone(),
            vec![Path::new("-r"), &requirements, &script],
        ),
    ] {
        let refused = pack(&output, &args);
        assert_clean_error(
            &refused,
            &[
                "would overwrite or land inside the input",
                "hint: pass `-o`",
            ],
        );
    }
    assert_eq!(
        fs::read_to_string(&script).expect("the script"),
        "print('hello')\n"
    );
    assert_eq!(fs::read_to_string(&requirements).expect("read"), "\n");
    assert!(!app.join("tool").exists());
}

/// Pack's work directory (pip's staging, the archive before it is moved
/// into place) is private whatever the umask: under `umask 000`, what pack
/// and pip make inside it would otherwise be open to every user. `strace`
/// records the `mkdir` that makes it.
#[test]
fn packs_work_directory_is_private_under_any_umask() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('hello')\n")]);
    let (mut strace, trace) = cx.traced(&["trace=mkdir,mkdirat"]);
    let output = strace
        .args(["sh", "-c", "umask 000 && exec \"$@\"", "sh"])
        .arg(crate::context::pyferry())
        .args(["pack", "-o"])
        .arg(cx.path().join("hello"))
        .arg(&app)
        .env("TMPDIR", cx.path())
        .output()
        .expect("strace (apt-get install strace)");
    assert!(output.status.success(), "{}", describe(&output));
    let trace = fs::read_to_string(&trace).expect("trace");
    let made: Vec<&str> = trace
        .lines()
        .filter(|line| line.contains("/pyferry-pack-") && line.contains("mkdir"))
        .collect();
    assert!(
        made.first().is_some_and(|line| line.contains(", 0700)")),
        "{made:#?}"
    );
}

/// With no `-o`, pack writes `dist/NAME` in the current directory, as in a
/// project: NAME from the script, or from the directory (a bare name that
/// is a directory here is that directory, with a note, never a PyPI
/// project of that name). Each runs as python runs its source.
#[test]
fn pack_without_an_output_writes_dist_named_after_the_input() {
    let cx = TestContext::new();
    let source = "import sys\nprint('hello from', sys.argv[1:])\n";
    fs::write(cx.path().join("hello.py"), source).expect("write");
    cx.write_tree("six", &[("__main__.py", source)]);
    let expected = crate::context::success(&cx.python(&[cx.path().join("hello.py")]));
    for (input, dist) in [("hello.py", "hello"), ("six", "six")] {
        let output = cx
            .command(crate::context::pyferry())
            .args(["pack", input])
            .output()
            .expect("pack");
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(
            stderr(&output).contains("is the directory `./six` here"),
            input == "six",
            "{}",
            describe(&output)
        );
        let exe = cx.path().join("dist").join(dist);
        let ran = crate::context::success(&cx.run(&exe, &[] as &[&str]));
        assert_eq!(ran, expected, "{input}");
    }
}

/// A script or app file of the user's that is not valid Python for the
/// embedded version is refused when packing (it would fail at every
/// start), naming the file, the line python names and the version; with
/// `--keep-invalid-python` it travels as a data file. Invalid files of
/// installed packages (templates) are no error.
#[test]
fn the_apps_own_invalid_python_is_refused_when_packing() {
    let cx = TestContext::new();
    let version = pyferry::build_python::PYTHON_VERSION;
    let script = cx.path().join("broken.py");
    fs::write(&script, "print('fine')\nprint('unclosed'\n").expect("write");
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "print('the app runs')\n"),
            ("template.py", "{{ name }} = 1\n"),
        ],
    );
    let compiled = cx.python(&["-m", "py_compile", script.to_str().expect("utf-8")]);
    let python_says = stderr(&compiled);
    let line = python_says
        .split(", line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .expect("python names a line");
    for (input, file) in [(&script, "broken.py"), (&app, "template.py")] {
        let output = cx.pack_output("out", &[input.to_str().expect("utf-8")]);
        assert_clean_error(
            &output,
            &[
                &format!("{file}` is not valid Python {version}"),
                "--keep-invalid-python",
            ],
        );
        if file == "broken.py" {
            assert!(
                stderr(&output).contains(&format!("at line {line}")),
                "{python_says}"
            );
        }
        assert!(!cx.path().join("out").exists());
    }
    let exe = cx.pack(
        "kept",
        &["--keep-invalid-python", app.to_str().expect("utf-8")],
    );
    let expected = crate::context::success(&cx.python(&[app.join("__main__.py")]));
    assert_eq!(
        crate::context::success(&cx.run(&exe, &[] as &[&str])),
        expected
    );
    let archive = zip::ZipArchive::new(fs::File::open(&exe).expect("open")).expect("a zip");
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.expect("a UTF-8 name").into_owned())
        .collect();
    assert!(names.iter().any(|name| name == "template.py"), "{names:?}");
}

/// On a terminal (`script` gives pack a pty), pack's bars never count past
/// their total (`writing the executable` once ended at `7/6`).
#[test]
fn progress_bars_never_count_past_their_total() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "import helper\nhelper.main()\n"),
            ("helper.py", "def main():\n    print('hello')\n"),
        ],
    );
    let command = format!(
        "{} pack -o {} {}",
        crate::context::pyferry(),
        cx.path().join("hello").display(),
        app.display()
    );
    let output = cx
        .command("script")
        .args(["-qec", &command, "/dev/null"])
        .env("COLUMNS", "120")
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux)");
    assert!(output.status.success(), "{}", describe(&output));
    let shown = crate::context::stdout(&output);
    let counts = regex::Regex::new(r"([a-z ]+): \[[=> ]*\] (\d+)/(\d+)").expect("regex");
    let mut bars = 0;
    for bar in counts.captures_iter(&shown) {
        let (pos, len): (u64, u64) = (bar[2].parse().expect("n"), bar[3].parse().expect("n"));
        assert!(pos <= len, "`{}` showed {pos}/{len}", bar[1].trim());
        bars += 1;
    }
    assert!(bars > 0, "no bar was shown:\n{shown}");
}
