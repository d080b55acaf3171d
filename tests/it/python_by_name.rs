//! Whether a run is the app or python depends only on what was executed:
//! the app's own name always runs the app, with every argument; the app's
//! `sys.executable` (a python name of its own) is python wherever it is
//! run from, with or without the app's environment. Each test compares
//! with python running the same code.

use crate::context::{BUILD_PYTHON, TestContext, describe, stdout, success};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Runs the app `source` packed and under python (`__main__.py` of its
/// directory), and requires the same output; returns it.
fn packed_as_python_runs_it(cx: &TestContext, name: &str, source: &str) -> String {
    let app = cx.write_tree(&format!("{name}-src"), &[("__main__.py", source)]);
    let exe = cx.pack(name, &[app.to_str().expect("utf-8")]);
    let packed = success(&cx.run(&exe, &[] as &[&str]));
    let python = cx
        .command(BUILD_PYTHON)
        .current_dir(&app)
        .arg("__main__.py")
        .output()
        .expect("python");
    assert_eq!(packed, success(&python));
    packed
}

/// A hook or shell the app started runs the tool by its name again, with
/// arguments that python would take for its own (`-q`, `-V`, a script, a
/// `#!` file, a FIFO): the nested run is the app, and gets them all. Under
/// python, the same app runs itself as `python __main__.py ARGS`.
#[test]
fn nested_runs_under_the_apps_own_name_are_the_app() {
    let cx = TestContext::new();
    let source = r##"
import os, subprocess, sys, tempfile
if os.environ.get("NESTED_RUN"):
    print("the app got", sys.argv[1:], flush=True)
    sys.exit(0)
me = [sys.executable, sys.argv[0]] if sys.argv[0].endswith(".py") else [sys.argv[0]]
scratch = tempfile.mkdtemp()
script = os.path.join(scratch, "tool.py")
with open(script, "w") as file:
    file.write("print('the script ran')\n")
hook = os.path.join(scratch, "hook")
with open(hook, "w") as file:
    file.write("#!/bin/sh\necho the hook ran\n")
os.chmod(hook, 0o755)
fifo = os.path.join(scratch, "fifo")
os.mkfifo(fifo)
env = dict(os.environ, NESTED_RUN="1")
for args in (["-q"], ["-v"], ["-h"], ["-V"], ["--version"], ["-c", "print('python')"],
             ["-m", "json.tool"], ["-"], [script, "x"], [hook], [fifo], ["-I", "-S", "-c", "1"]):
    done = subprocess.run(me + args, env=env, input="", capture_output=True, text=True, timeout=60)
    print(done.returncode, done.stdout.replace(scratch, "{scratch}"), done.stderr, end="")
"##;
    let output = packed_as_python_runs_it(&cx, "nested", source);
    assert_eq!(output.matches("the app got").count(), 12, "{output}");
}

/// A `pyvenv.cfg` beside or above the app (the app copied into a venv's
/// `bin/`, or another user's in a shared directory above it) does not make
/// the app python: it runs the app with its arguments. Through a python
/// name linked to it there, it is python, without the venv of a
/// configuration another user wrote (no `.pth` of theirs runs).
#[test]
fn a_pyvenv_cfg_near_the_app_does_not_make_it_python() {
    let cx = TestContext::new();
    let source = "import sys\nprint('the app', sys.argv[1:])\n";
    let app = cx.write_tree("app", &[("__main__.py", source)]);
    let exe = cx.pack("tool", &[app.to_str().expect("utf-8")]);
    let data = cx.path().join("notes.py");
    fs::write(&data, "print('the data file ran as python')\n").expect("write");
    let expected = success(&cx.run(&exe, &[&data]));
    assert!(expected.starts_with("the app"), "{expected}");

    // The app in a venv of the user's, where pip puts a wheel's scripts.
    let venv = cx.path().join("env");
    fs::create_dir_all(venv.join("bin")).expect("mkdir");
    fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").expect("write");
    fs::copy(&exe, venv.join("bin/tool")).expect("copy");
    assert_eq!(success(&cx.run(&venv.join("bin/tool"), &[&data])), expected);

    // Another user's venv configuration in a shared sticky directory.
    let shared = cx.path().join("shared");
    let site = shared.join(format!(
        "lib/python{}/site-packages",
        pyferry::build_python::PYTHON_VERSION
    ));
    fs::create_dir_all(&site).expect("mkdir");
    fs::create_dir_all(shared.join("bin")).expect("mkdir");
    fs::write(
        shared.join("pyvenv.cfg"),
        "home = /usr/bin\ninclude-system-site-packages = false\n",
    )
    .expect("write");
    fs::write(
        site.join("planted.pth"),
        "import sys; print('the other user ran code')\n",
    )
    .expect("write");
    fs::copy(&exe, shared.join("bin/tool")).expect("copy");
    std::os::unix::fs::symlink(&exe, shared.join("bin/python3")).expect("link");
    let chown = cx
        .command("chown")
        .args(["-R", "12345:12345"])
        .arg(shared.join("pyvenv.cfg"))
        .arg(shared.join("lib"))
        .output()
        .expect("chown");
    success(&chown);
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).expect("chmod");
    assert_eq!(
        success(&cx.run(&shared.join("bin/tool"), &[&data])),
        expected
    );
    let python = success(&cx.run(
        &shared.join("bin/python3"),
        &[
            "-c",
            "import sys; print('python', sys.prefix == sys.base_prefix)",
        ],
    ));
    assert_eq!(python, "python True\n");
}

/// `sys.executable` used where nothing of the app's environment is
/// inherited: a `#!` hook written with it and run from an empty
/// environment, a child given a filtered environment, a command line
/// saved in a config file and run later through a shell.
#[test]
fn sys_executable_is_python_without_the_apps_environment() {
    let cx = TestContext::new();
    // A `sys.executable` that runs the app again would start it without
    // end (no environment tells it it runs nested): the marker file stops
    // a second run.
    let source = r##"
import os, subprocess, sys, tempfile
marker = os.path.realpath(sys.argv[0]) + ".started"
if os.path.exists(marker):
    sys.exit("the app ran again")
open(marker, "w").close()
scratch = tempfile.mkdtemp()
hook = os.path.join(scratch, "pre-commit")
with open(hook, "w") as file:
    file.write(f"#!{sys.executable}\nimport sys\nprint('hook', sys.argv[1:])\n")
os.chmod(hook, 0o755)
script = os.path.join(scratch, "query.py")
with open(script, "w") as file:
    file.write("import sys\nprint('query', sys.version_info[:2] == (3, 11), sys.argv[1:])\n")
for command in ([hook, "-q", "x"], [sys.executable, script, "-V"], [sys.executable, "-V"]):
    done = subprocess.run(command, env={}, capture_output=True, text=True)
    print(done.returncode, done.stdout, done.stderr, end="")
config = os.path.join(scratch, "next.sh")
with open(config, "w") as file:
    file.write(f"'{sys.executable}' -c 'print(\"later\", 6 * 7)'\n")
done = subprocess.run(["/bin/sh", config], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
print(done.returncode, done.stdout, end="")
"##;
    let output = packed_as_python_runs_it(&cx, "hooks", source);
    assert!(output.contains("0 hook ['-q', 'x']"), "{output}");
    assert!(output.contains("later 42"), "{output}");
}

/// `sys.executable` with no arguments on a terminal is python's REPL
/// (terminal-driving libraries start it so), as python's is.
#[test]
fn sys_executable_starts_pythons_repl_on_a_terminal() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('the app')\n")]);
    let exe = cx.pack("repl", &[app.to_str().expect("utf-8")]);
    let executable =
        success(&cx.run_as_python(&exe, &["-c", "import sys; print(sys.executable, end='')"]));
    assert_ne!(Path::new(&executable), exe.as_path());
    let driver = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1]])
os.write(fd, b"print(6 * 7, __name__)\nexit()\n")
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
text = out.decode(errors="replace")
print(os.waitstatus_to_exitcode(status), ">>> " in text, "42 __main__" in text)
"#;
    let mut results = Vec::new();
    for python in [BUILD_PYTHON, executable.as_str()] {
        let output = cx
            .command(BUILD_PYTHON)
            .args(["-c", driver, python])
            .output()
            .expect("drive the REPL");
        results.push(stdout(&output));
        assert!(output.status.success(), "{}", describe(&output));
    }
    assert_eq!(results[1], results[0]);
    assert_eq!(results[0], "0 True True\n");
}

/// A venv made by the app's python (as environment managers make theirs)
/// sees the standard library and its own site-packages only, as a venv of
/// python does: a module the app carries and the venv installs too is the
/// venv's, and the app's other modules are not there. With
/// `include-system-site-packages = true`, the app's modules come after the
/// venv's, where a base python's site-packages come.
#[test]
fn a_venv_made_by_the_apps_python_sees_its_own_packages_only() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "print('the app')\n"),
            ("shadowed.py", "WHO = 'the app'\n"),
            ("only_in_app.py", ""),
        ],
    );
    let exe = cx.pack("maker", &[app.to_str().expect("utf-8")]);
    let probe = "import importlib.util, shadowed, sys\n\
                 print(shadowed.WHO, importlib.util.find_spec('only_in_app') is not None)\n";
    let make_venv = |label: &str, maker: &Path| {
        let env = crate::context::venv_made_by(&cx, maker, label);
        let site = env.join(format!(
            "lib/python{}/site-packages",
            pyferry::build_python::PYTHON_VERSION
        ));
        fs::write(site.join("shadowed.py"), "WHO = 'the venv'\n").expect("write");
        env
    };
    let run = |env: &Path| success(&cx.run(&env.join("bin/python"), &["-c", probe]));
    let python_env = make_venv("python", Path::new(BUILD_PYTHON));
    let packed_env = make_venv("packed", &exe);
    assert_eq!(run(&packed_env), run(&python_env));
    assert_eq!(run(&packed_env), "the venv False\n");

    let config = packed_env.join("pyvenv.cfg");
    let text = fs::read_to_string(&config).expect("read");
    let text = text.replace(
        "include-system-site-packages = false",
        "include-system-site-packages = true",
    );
    fs::write(&config, text).expect("write");
    assert_eq!(run(&packed_env), "the venv True\n");
}
