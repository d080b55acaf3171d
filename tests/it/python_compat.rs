//! A packed app behaves like `python` on the same code: processes,
//! signals, exit paths, runtime flags, interpreter mode. Each test runs
//! both and compares.

use crate::context::{
    BUILD_PYTHON, StdinBytes, TestContext, describe, output_of, stderr, stdout, success,
};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MULTIPROCESSING: &str = r#"
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


def main():
    for method in ["spawn", "forkserver", "fork"]:
        with mp.get_context(method).Pool(2) as pool:
            print(method, pool.map(square, range(5)))
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as executor:
        print("executor", list(executor.map(square, range(4))))
    # The resource tracker runs as a helper process too.
    lock = mp.get_context("spawn").Semaphore()
    print("args", sys.argv[1:], lock.acquire())
"#;

#[test]
fn multiprocessing_works_unchanged() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("work.py", MULTIPROCESSING)]);
    let exe = cx.pack("mp", &["-e", "work:main", app.to_str().expect("utf-8")]);
    // App arguments that start like a helper's stay the app's.
    let args = [
        "-c",
        "from multiprocessing.spawn import spawn_main; spawn_main()",
    ];
    let packed = success(&cx.run(&exe, &args));
    let python = cx
        .command(BUILD_PYTHON)
        .current_dir(&app)
        .args([
            "-c",
            "import sys, work; sys.argv[1:] = sys.argv[1:]; work.main()",
        ])
        .args(args)
        .output()
        .expect("python");
    assert_eq!(packed, success(&python));
    assert!(packed.contains("forkserver [0, 1, 4, 9, 16]"), "{packed}");
}

/// Starts `program args...` with the signal dispositions a terminal's shell
/// gives (a suite run as a background job or under `nohup` inherits
/// SIGINT or SIGHUP ignored, which python and the app would both keep),
/// waits for its first line on stdout, sends `signal`, and returns
/// (status, stdout, stderr).
fn interrupt(
    cx: &TestContext,
    program: &Path,
    args: &[&Path],
    signal: i32,
) -> (std::process::ExitStatus, String, String) {
    let mut child = cx
        .command("env")
        .arg("--default-signal=INT,HUP,TERM")
        .arg(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read ready line");
    assert_eq!(first, "ready\n");
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    (child.wait().expect("wait"), rest, err)
}

const SLEEPER: &str = "import atexit, sys, time\n\
    atexit.register(lambda: print('atexit ran', flush=True))\n\
    print('ready', flush=True)\n\
    time.sleep(30)\n";

#[test]
fn ctrl_c_raises_keyboard_interrupt_then_dies_by_sigint() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", SLEEPER)]);
    let exe = cx.pack("sleeper", &[app.to_str().expect("utf-8")]);
    let (status, out, err) = interrupt(&cx, &exe, &[], libc_sigint());
    let (py_status, py_out, py_err) =
        interrupt(&cx, Path::new(BUILD_PYTHON), &[&app], libc_sigint());
    assert_eq!(
        status.signal(),
        Some(libc_sigint()),
        "dies by SIGINT: {err}"
    );
    assert_eq!(status.signal(), py_status.signal());
    assert_eq!(out, "atexit ran\n");
    assert_eq!(out, py_out);
    assert!(err.contains("KeyboardInterrupt"), "{err}");
    assert_eq!(err.lines().last(), py_err.lines().last());
}

#[test]
fn sigterm_and_sighup_kill_the_one_process() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", SLEEPER)]);
    let exe = cx.pack("sleeper", &[app.to_str().expect("utf-8")]);
    // The pid we signal is the interpreter itself: no wrapper process.
    for signal in [15, 1] {
        let (status, out, _) = interrupt(&cx, &exe, &[], signal);
        let (py_status, py_out, _) = interrupt(&cx, Path::new(BUILD_PYTHON), &[&app], signal);
        assert_eq!(status.signal(), Some(signal));
        assert_eq!(status.signal(), py_status.signal());
        assert_eq!(
            out, "",
            "atexit does not run on SIGTERM or SIGHUP, as in python"
        );
        assert_eq!(out, py_out);
    }
}

fn libc_sigint() -> i32 {
    2
}

#[test]
fn exit_paths_match_python() {
    let cx = TestContext::new();
    let script = "import os, sys\n\
        mode = sys.argv[1]\n\
        print('out', flush=mode != 'os_exit')\n\
        if mode == 'os_exit': os._exit(5)\n\
        if mode == 'none': sys.exit(None)\n\
        if mode == 'obj': sys.exit([1, 2])\n\
        if mode == 'interrupt': raise KeyboardInterrupt\n\
        if mode == 'pipe':\n    sys.stdin.readline()\n    for i in range(100000): print('line', i)\n";
    let app = cx.write_tree("app", &[("__main__.py", script)]);
    let exe = cx.pack("paths", &[app.to_str().expect("utf-8")]);
    for mode in ["os_exit", "none", "obj", "interrupt"] {
        let packed = cx.run(&exe, &[mode]);
        let python = cx.python(&[app.to_str().expect("utf-8"), mode]);
        assert_eq!(
            packed.status.code(),
            python.status.code(),
            "{mode}: {}",
            describe(&packed)
        );
        assert_eq!(packed.status.signal(), python.status.signal(), "{mode}");
        assert_eq!(stdout(&packed), stdout(&python), "{mode}");
        assert_eq!(
            stderr(&packed).lines().last(),
            stderr(&python).lines().last(),
            "{mode}"
        );
    }

    // `app | head -1`: the same stderr and status as python. The reader is
    // gone before the app writes on (it waits for a line on stdin): where
    // the reader closes the pipe mid-write, python's own status varies
    // between 1 and 120 from run to run.
    let pipe = |program: &Path, args: &[&str]| {
        let mut child = cx
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"go on\n").expect("write");
        drop(stdin);
        child.wait_with_output().expect("wait")
    };
    let packed = pipe(&exe, &["pipe"]);
    let python = pipe(
        Path::new(BUILD_PYTHON),
        &[app.to_str().expect("utf-8"), "pipe"],
    );
    assert_eq!(
        packed.status.code(),
        python.status.code(),
        "{}",
        describe(&packed)
    );
    // python's traceback also shows runpy's frames and the script's full
    // path; the source line (and 3.11's carets) and the error match.
    let tail = |text: String| {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let from = lines
            .iter()
            .rposition(|line| line.starts_with("  File "))
            .map_or(0, |at| at + 1);
        lines[from..].to_vec()
    };
    assert_eq!(tail(stderr(&packed)), tail(stderr(&python)));
    assert!(stderr(&packed).ends_with("BrokenPipeError: [Errno 32] Broken pipe\n"));
}

/// The hook that prints an uncaught exception (the runtime's, which finds
/// source lines in the archive) does what python's does: it keeps the last
/// `sys.tracebacklimit` entries, reports a call that passes no exception,
/// and keeps the stderr it started with; it is `sys.__excepthook__` too, so
/// that `code.InteractiveConsole` prints from the console's code on, as
/// under python.
#[test]
fn uncaught_exceptions_print_as_pythons_hook_prints_them() {
    let cx = TestContext::new();
    let script = "import sys\n\
        mode = sys.argv[1]\n\
        def f1(): 1/0\n\
        def f2(): f1()\n\
        def f3(): f2()\n\
        if mode == 'misuse':\n    sys.excepthook(1, '1', 1)\n    print('after')\n\
        elif mode == 'console':\n\
        \x20   import code\n\
        \x20   print(sys.excepthook is sys.__excepthook__)\n\
        \x20   code.InteractiveConsole().runsource('raise ValueError from KeyError()')\n\
        elif mode == 'lost-stderr':\n\
        \x20   class Gone:\n\
        \x20       def write(self, text): sys.stderr = None\n\
        \x20   sys.stderr = Gone()\n    f3()\n\
        else:\n    sys.tracebacklimit = int(mode)\n    f3()\n";
    let app = cx.write_tree("app", &[("__main__.py", script)]);
    let main = app.join("__main__.py");
    let exe = cx.pack("hook", &[app.to_str().expect("utf-8")]);
    // The script's path differs (the archive's, the directory's).
    let file = regex::Regex::new(r#"File "[^"]*""#).expect("regex");
    let shown =
        |output: &std::process::Output| file.replace_all(&stderr(output), "File F").into_owned();
    for mode in [
        "2",
        "0",
        "-1",
        &(1u128 << 100).to_string(),
        "misuse",
        "console",
        "lost-stderr",
    ] {
        let packed = cx.run(&exe, &[mode]);
        let python = cx.python(&[main.to_str().expect("utf-8"), mode]);
        assert_eq!(
            packed.status.code(),
            python.status.code(),
            "{mode}: {}",
            describe(&packed)
        );
        assert_eq!(stdout(&packed), stdout(&python), "{mode}");
        assert_eq!(shown(&packed), shown(&python), "{mode}");
    }
}

/// A fatal signal kills the packed app as it kills python, raised by the
/// app or re-raised by faulthandler after its report: no handler of the
/// runtime's own turns a crash into a success.
#[test]
fn fatal_signals_kill_the_app_as_they_kill_python() {
    let cx = TestContext::new();
    let script = "import ctypes, faulthandler, os, signal, sys\n\
        mode = sys.argv[1]\n\
        if mode == 'raise': os.kill(os.getpid(), getattr(signal, sys.argv[2]))\n\
        if mode == 'fault':\n    faulthandler.enable()\n    ctypes.string_at(0)\n\
        print('survived')\n";
    let app = cx.write_tree("app", &[("__main__.py", script)]);
    let exe = cx.pack("crash", &[app.to_str().expect("utf-8")]);
    for args in [
        &["raise", "SIGSEGV"][..],
        &["raise", "SIGBUS"],
        &["raise", "SIGABRT"],
        &["fault"],
    ] {
        let packed = cx.run(&exe, args);
        let mut python_args = vec![app.to_str().expect("utf-8")];
        python_args.extend(args);
        let python = cx.python(&python_args);
        assert!(
            python.status.signal().is_some(),
            "{args:?}: {}",
            describe(&python)
        );
        assert_eq!(
            packed.status.signal(),
            python.status.signal(),
            "{args:?}: {}",
            describe(&packed)
        );
        assert_eq!(stdout(&packed), "", "{args:?}");
        assert_eq!(
            stderr(&packed).lines().next(),
            stderr(&python).lines().next(),
            "{args:?}"
        );
    }
}

#[test]
fn runtime_flags_from_the_environment_work() {
    let cx = TestContext::new();
    let script = "import sys, faulthandler, warnings\n\
        print(sys.flags.dev_mode, sys.flags.utf8_mode, faulthandler.is_enabled())\n\
        print(sys.stdout.encoding, sys.stdout.line_buffering or not sys.stdout.buffer.__class__.__name__ == 'BufferedWriter')\n\
        print(sys.warnoptions)\n\
        warnings.warn('careful')\n";
    let app = cx.write_tree("app", &[("__main__.py", script)]);
    let exe = cx.pack("flags", &[app.to_str().expect("utf-8")]);
    let with_flags = |program: &Path, args: &[&str]| {
        cx.command(program)
            .args(args)
            .env("PYTHONDEVMODE", "1")
            .env("PYTHONUTF8", "1")
            .env("PYTHONFAULTHANDLER", "1")
            .env("PYTHONIOENCODING", "latin-1")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONWARNINGS", "error::DeprecationWarning")
            .output()
            .expect("run")
    };
    let packed = with_flags(&exe, &[]);
    let python = with_flags(Path::new(BUILD_PYTHON), &[app.to_str().expect("utf-8")]);
    assert_eq!(stdout(&packed), stdout(&python));
    assert!(
        stdout(&packed).starts_with("True 1 True\niso8859-1"),
        "{}",
        describe(&packed)
    );
    assert!(
        stderr(&packed).contains("UserWarning: careful"),
        "{}",
        describe(&packed)
    );
}

/// PYTHONOPTIMIZE and `-O` take the asserts and `__debug__` code out of
/// the app's modules, as python compiling them at that level does, though
/// pack compiled the archive's pycs without.
#[test]
fn optimize_levels_apply_to_the_apps_modules() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "optimized-src",
        &[
            ("__main__.py", "import checks\nprint('main', __debug__)\n"),
            (
                "checks.py",
                "def check(x):\n    assert x, 'assert kept'\n    return __debug__\n\
                 print('checks', check(0) if not __debug__ else __debug__)\n",
            ),
        ],
    );
    let exe = cx.pack("optimized", &[app.to_str().expect("utf-8")]);
    for level in ["1", "2"] {
        let packed = output_of(cx.command(&exe).env("PYTHONOPTIMIZE", level));
        let python = output_of(
            cx.command(BUILD_PYTHON)
                .arg(app.join("__main__.py"))
                .env("PYTHONOPTIMIZE", level),
        );
        assert_eq!(success(&packed), success(&python), "PYTHONOPTIMIZE={level}");
        assert_eq!(success(&packed), "checks False\nmain False\n");
    }
    // python mode, as the app's children run it.
    let child = cx.run_as_python(&exe, &["-O", "-c", "import checks"]);
    assert_eq!(success(&child), "checks False\n");
}

/// Modules frozen into CPython (`os`, `codecs`) have a `__file__` in the
/// standard library, as in python, whether imported before the app starts
/// or by it (`runpy`), and `sys._stdlib_dir` is that directory, in the app
/// and in python mode; importlib imported afresh accepts them.
/// (Python 3.10 freezes none of them, and has no `_stdlib_dir`.)
#[cfg(Py_3_11)]
#[test]
fn frozen_standard_modules_have_their_files() {
    let cx = TestContext::new();
    let script = "import os, sys, codecs, runpy, importlib.util\n\
        stdlib = sys._stdlib_dir\n\
        print(os.path.isdir(stdlib), os.path.dirname(os.__file__) == stdlib)\n\
        for module in (os, codecs, runpy, importlib.util):\n    \
        print(module.__name__, os.path.relpath(module.__file__, stdlib))\n\
        saved, frozen = sys.modules.pop('importlib'), sys.modules['_frozen_importlib']\n\
        sys.modules['_frozen_importlib'] = None\n\
        import importlib as fresh\n\
        print('importlib afresh', fresh is not saved)\n\
        sys.modules.update(importlib=saved, _frozen_importlib=frozen)\n";
    let packed = runs_as_python_does(&cx, "frozen", script);
    assert!(packed.starts_with("True True\nos os.py\n"), "{packed}");
}

/// Packs `script` as an app's `__main__.py` and requires the app to print
/// what python (`-I -S`) prints for the same file, and the packed app in
/// python mode too, as the app's `sys.executable` children run it; returns
/// what they printed.
fn runs_as_python_does(cx: &TestContext, name: &str, script: &str) -> String {
    let app = cx.write_tree(&format!("{name}-src"), &[("__main__.py", script)]);
    let exe = cx.pack(name, &[app.to_str().expect("utf-8")]);
    let packed = success(&cx.run(&exe, &[] as &[&str]));
    let main = app.join("__main__.py");
    let python = cx
        .command(BUILD_PYTHON)
        .args(["-I".as_ref(), "-S".as_ref(), main.as_os_str()])
        .output()
        .expect("python");
    assert_eq!(packed, success(&python));
    let child = cx.run_as_python(&exe, &["-I".as_ref(), "-S".as_ref(), main.as_os_str()]);
    assert_eq!(success(&child), packed);
    packed
}

/// What tools that read code get from the import system, as from python:
/// a standard module's source through its loader (pyclbr, doctest, IDEs),
/// and among the files whose code runs (`trace`, coverage tools) no frame of
/// the runtime's own bootstrap named like a file, which they would try to
/// open.
#[test]
fn code_reading_tools_see_what_python_shows_them() {
    let cx = TestContext::new();
    let script = "import importlib.util, pyclbr, sys\n\
        loader = importlib.util.find_spec('json.decoder').loader\n\
        print(loader.get_source('json.decoder').splitlines()[0])\n\
        print(sorted(pyclbr.readmodule('json.decoder')))\n\
        seen = set()\n\
        def tracer(frame, event, arg):\n    seen.add(frame.f_code.co_filename)\n\
        sys.settrace(tracer)\n\
        import xml.dom.minidom\n\
        sys.settrace(None)\n\
        print([name for name in seen if '_pyferry_boot' in name and not name.startswith('<')])\n";
    runs_as_python_does(&cx, "readers", script);
}

/// An app whose demand importer wraps every finder of `sys.meta_path` in a
/// proxy (as lazy importers do) imports and reads sources as under python:
/// the bootstrap's own finders are re-entrant (its linecache watch, which
/// the proxy keeps on `sys.meta_path`, sent every import into endless
/// recursion).
#[test]
fn finders_wrapped_by_a_demand_importer_work() {
    let cx = TestContext::new();
    let script = "import sys\n\
        class Proxy:\n    \
            def __init__(self, finder):\n        self._finder = finder\n    \
            def find_spec(self, name, path=None, target=None):\n        \
                return self._finder.find_spec(name, path, target)\n    \
            def __getattr__(self, name):\n        return getattr(self._finder, name)\n\
        sys.meta_path[:] = [Proxy(finder) for finder in sys.meta_path]\n\
        import json, linecache, xml.dom.minidom\n\
        print(repr(linecache.getline(json.__file__, 1)), json.dumps([1]))\n";
    let printed = runs_as_python_does(&cx, "proxied", script);
    assert!(printed.ends_with("[1]\n"), "{printed}");
}

#[test]
fn interpreter_mode_is_a_python_cli_over_the_app() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "print('the app')\n"),
            ("helper.py", "def hi():\n    return 'hi from the archive'\n"),
        ],
    );
    let exe = cx.pack("interp", &[app.to_str().expect("utf-8")]);
    let python = |args: &[&str]| cx.run_as_python(&exe, args);
    let out = success(&python(&[
        "-c",
        "import sys, helper; print(helper.hi(), sys.argv)",
        "a",
    ]));
    assert_eq!(out, "hi from the archive ['-c', 'a']\n");
    let out = success(&python(&["-m", "helper"]));
    assert_eq!(out, "");
    let script = cx.write_tree(
        "scripts",
        &[(
            "s.py",
            "import helper, sys\nprint(helper.hi(), sys.argv[1:])\n",
        )],
    );
    let out = success(&python(&[
        script.join("s.py").to_str().expect("utf-8"),
        "x",
    ]));
    assert_eq!(out, "hi from the archive ['x']\n");
    let exit = python(&["-c", "raise SystemExit(4)"]);
    assert_eq!(exit.status.code(), Some(4));
    // `-` and a non-tty stdin: read the program from stdin, as python does.
    let output = cx
        .command(&exe)
        .env("PYFERRY_INTERPRETER", "1")
        .stdin_bytes(b"import helper\nprint(helper.hi())\n");
    assert_eq!(stdout(&output), "hi from the archive\n");
}

/// What the app's children get from `sys.executable`: python, over the
/// app's environment (its archive, its standard library), as a venv's
/// `sys.executable` is python over the venv.
const CHILDREN: &str = r#"
import os, subprocess, sys, tempfile

def child(*args, **options):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, **options)
    print(os.path.basename(args[0]), done.returncode, repr(done.stdout), done.stderr.splitlines()[-1:])

child("-c", "import sys, helper; print(helper.hi(), sys.argv)", "a", "b")
child("-m", "helper", "x")
child("-I", "-c", "import sys; print(sys.flags.isolated, sys.flags.no_user_site)")
child("-S", "-c", "print('exit' in dir(__builtins__))")
child("-c", "exit(3)")
child("-", input="import helper\nprint('stdin', helper.hi())\n")
child("-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', 'print(42)'])")
with tempfile.TemporaryDirectory() as scratch:
    script = os.path.join(scratch, "script.py")
    with open(script, "w") as file:
        file.write("import sys\nprint('script', sys.argv[1:])\n")
    # (python puts the script's directory first on sys.path, not the cwd.)
    child(script, "y")
    with open(os.path.join(scratch, "extra.py"), "w") as file:
        file.write("print('extra from PYTHONPATH')\n")
    child("-c", "import extra", env=dict(os.environ, PYTHONPATH=scratch))
    child("-E", "-c", "import extra", env=dict(os.environ, PYTHONPATH=scratch))
    # Options whose value is the next argument come before the one that counts.
    child("-X", "faulthandler", "-E", "-c", "import extra", env=dict(os.environ, PYTHONPATH=scratch))
    child("-W", "error", "-S", "-c", "print('exit' in dir(__builtins__))")
"#;

const HELPER: &str = "def hi():\n    return 'hi'\n\nif __name__ == '__main__':\n    \
                      import sys\n    print('helper as main', sys.argv[1:])\n";

#[test]
fn sys_executable_is_python_for_the_apps_children() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", CHILDREN), ("helper.py", HELPER)]);
    let exe = cx.pack("parent", &[app.to_str().expect("utf-8")]);
    let packed = success(&cx.run(&exe, &[] as &[&str]));
    // python, in the app's directory, finds `helper` as the archive does.
    let python = cx
        .command(BUILD_PYTHON)
        .current_dir(&app)
        .arg("__main__.py")
        .output()
        .expect("python");
    assert_eq!(packed, success(&python));
    assert!(
        packed.contains("-c 0 \"hi ['-c', 'a', 'b']\\n\""),
        "{packed}"
    );

    // A person who types the same arguments gets the app.
    let output = cx.run(&exe, &["-c", "print('not python')"]);
    assert_eq!(success(&output), packed);
}

#[test]
fn an_app_that_keeps_starting_itself_is_stopped() {
    let cx = TestContext::new();
    // Each run starts the app again, by its own name.
    let source = "import subprocess, sys\n\
                  print('run', flush=True)\n\
                  sys.exit(subprocess.run([sys.argv[0], 'again']).returncode)\n";
    let app = cx.write_tree("app", &[("__main__.py", source)]);
    let exe = cx.pack("looper", &[app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &[] as &[&str]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let runs = stdout(&output).lines().count();
    assert_eq!(runs, 8, "{}", describe(&output));
    let err = stderr(&output);
    assert!(
        err.contains("looper: error: `looper` was started by itself 8 times over"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn site_builtins_are_there_without_site() {
    let cx = TestContext::new();
    let source = "print(repr(exit), repr(quit), repr(help), repr(license))\n\
                  print(repr(copyright) == __import__('sys').copyright, repr(credits))\n\
                  import sys; print('---', sys.flags.no_site, [p for p in sys.path if 'site-packages' in p])\n\
                  exit(3)\n";
    let app = cx.write_tree("app", &[("__main__.py", source)]);
    let exe = cx.pack("builtins", &[app.to_str().expect("utf-8")]);
    let packed = cx.run(&exe, &[] as &[&str]);
    // python -I -S has no site-packages, and no site builtins: compare the
    // builtins with python -I, and the rest with what isolation means.
    let python = cx
        .command(BUILD_PYTHON)
        .args(["-I", app.join("__main__.py").to_str().expect("utf-8")])
        .output()
        .expect("python");
    assert_eq!(packed.status.code(), Some(3));
    assert_eq!(packed.status.code(), python.status.code());
    let (packed_out, python_out) = (stdout(&packed), stdout(&python));
    let builtins = |text: &str| text.split("---").next().unwrap_or_default().to_owned();
    assert_eq!(builtins(&packed_out), builtins(&python_out));
    assert!(packed_out.contains("Use exit() or Ctrl-D"), "{packed_out}");
    // Without site's side effects: no site-packages on sys.path.
    assert!(packed_out.ends_with("--- 1 []\n"), "{packed_out}");
}

/// Workers defined in the app's root `__main__.py` (the default entry
/// point): spawn and forkserver children import the main module again,
/// which `python app/` cannot do (its pool waits forever); the packed app
/// works as `python app/__main__.py` does.
#[test]
fn multiprocessing_workers_in_the_root_main_module() {
    let cx = TestContext::new();
    // Packs `source` as the root `__main__.py` of an app in `dir`, runs it
    // (a regression would hang: bounded, it fails instead), and runs python
    // on `python_target(app dir)`; returns both outputs.
    let packed_and_python = |dir: &str, source: &str, python_target: fn(&Path) -> PathBuf| {
        let app = cx.write_tree(dir, &[("__main__.py", source)]);
        let exe = cx.pack(&format!("{dir}-app"), &[app.to_str().expect("utf-8")]);
        let packed = run_bounded(&cx, &exe);
        let python = cx
            .command(BUILD_PYTHON)
            .arg(python_target(&app))
            .output()
            .expect("python");
        (success(&packed), success(&python))
    };
    let source = "import multiprocessing as mp\n\
                  def square(x):\n    return x * x\n\
                  if __name__ == '__main__':\n    \
                  for method in ('spawn', 'forkserver', 'fork'):\n        \
                  with mp.get_context(method).Pool(2) as pool:\n            \
                  print(method, pool.map(square, range(5)))\n";
    let (packed, python) = packed_and_python("guarded", source, |app| app.join("__main__.py"));
    assert_eq!(packed, python);
    assert!(packed.contains("spawn [0, 1, 4, 9, 16]"), "{packed}");

    // Without the guard python asks for, workers that need nothing of the
    // main module still work, as under `python app/`: a child runs the
    // main module's code only when it needs one of its names.
    let source = "import multiprocessing\nprint('top')\n\
                  with multiprocessing.get_context('spawn').Pool(2) as pool:\n    \
                  print(sum(pool.map(abs, [-1, -2, -3])))\n";
    let (packed, python) = packed_and_python("unguarded", source, Path::to_path_buf);
    assert_eq!(packed, python);
}

/// The archive's root `__main__` is the app's entry point and nothing else:
/// `runpy.run_path` of a directory without a `__main__.py` fails as in
/// python, in the app and in its python children, instead of running the app.
#[test]
fn the_root_main_module_is_only_the_entry_point() {
    let cx = TestContext::new();
    let code = "import runpy, sys, tempfile\n\
        empty = tempfile.mkdtemp()\n\
        try:\n    runpy.run_path(empty)\n\
        except ImportError as error:\n    print(type(error).__name__, str(error).replace(empty, 'DIR'))\n\
        else:\n    print('ran something')\n";
    let app = cx.write_tree("app", &[("__main__.py", code)]);
    let exe = cx.pack("runpath", &[app.to_str().expect("utf-8")]);
    let python = success(&cx.python(&["-I", "-c", code]));
    assert!(python.starts_with("ImportError"), "{python}");
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python);
    let child = cx.run_as_python(&exe, &["-c", code]);
    assert_eq!(success(&child), python);
}

/// To code that looks at it, an archived module's loader is python's own
/// zipimporter, as for the same app run by python from a zip.
#[test]
fn archived_modules_have_zipimports_loader() {
    let cx = TestContext::new();
    let main = "import helper\nloader = type(helper.__loader__)\n\
        print(loader, loader.__module__, loader.__qualname__, repr(helper.__loader__)[:22])\n";
    let app = cx.write_tree("app", &[("__main__.py", main), ("helper.py", "X = 1\n")]);
    let zipped = cx.path().join("app.zip");
    success(&cx.python(&[
        "-m".as_ref(),
        "zipfile".as_ref(),
        "-c".as_ref(),
        zipped.as_os_str(),
        app.join("__main__.py").as_os_str(),
        app.join("helper.py").as_os_str(),
    ]));
    let python = success(&cx.python(&[&zipped]));
    let exe = cx.pack("loader", &[app.to_str().expect("utf-8")]);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python);
}

/// A venv made by the app's python (`python -m venv`, as tox or nox make
/// theirs) works: its `bin/python`, a link to the app, is python over that
/// venv, with its site-packages, as a venv of python is.
#[test]
fn a_venv_made_by_the_apps_python_is_python_over_that_venv() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('the app')\n")]);
    let exe = cx.pack("venv-maker", &[app.to_str().expect("utf-8")]);
    let probe = "import os, sys, packaging\n\
        print(os.path.basename(sys.prefix), sys.prefix != sys.base_prefix)\n\
        print(os.path.relpath(packaging.__file__, sys.prefix))\n\
        print(sorted(p for p in sys.path if p.startswith(sys.prefix)))\n";
    let mut outputs = Vec::new();
    for (label, maker) in [
        ("python", Path::new(BUILD_PYTHON)),
        ("packed", exe.as_path()),
    ] {
        let env = crate::context::venv_made_by(&cx, maker, label);
        let installed = cx
            .command(BUILD_PYTHON)
            .args(["-m", "pip", "--python"])
            .arg(env.join("bin/python"))
            .args(["install", "--quiet", "--no-index", "--find-links"])
            .arg(crate::context::wheel_dir())
            .arg("packaging")
            .output()
            .expect("pip install into the venv");
        success(&installed);
        let ran = cx
            .command(env.join("bin/python"))
            .args(["-c", probe])
            .output()
            .expect("run");
        let text = success(&ran).replace(env.to_str().expect("utf-8"), "{env}");
        outputs.push(text);
    }
    assert_eq!(outputs[1], outputs[0]);
    // The app itself is still the app.
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), "the app\n");
}

/// Runs `exe` for at most two minutes: a multiprocessing regression hangs,
/// and then fails instead.
fn run_bounded(cx: &TestContext, exe: &Path) -> std::process::Output {
    cx.command("timeout")
        .args(["--kill-after=5", "120"])
        .arg(exe)
        .output()
        .expect("run")
}

/// Workers defined in an `-e module` entry point (run as `python -m
/// module`): spawn and forkserver children find them, as under python.
#[test]
fn multiprocessing_workers_in_an_entry_module() {
    let cx = TestContext::new();
    let source = "import multiprocessing as mp\n\
                  def cube(x):\n    return x ** 3\n\
                  if __name__ == '__main__':\n    \
                  for method in ('spawn', 'forkserver'):\n        \
                  with mp.get_context(method).Pool(2) as pool:\n            \
                  print(method, pool.map(cube, range(4)))\n";
    let app = cx.write_tree("app", &[("work.py", source)]);
    let exe = cx.pack("workers", &["-e", "work", app.to_str().expect("utf-8")]);
    let packed = run_bounded(&cx, &exe);
    let python = cx
        .command(BUILD_PYTHON)
        .args(["-m", "work"])
        .current_dir(&app)
        .output()
        .expect("python");
    assert_eq!(success(&packed), success(&python));
    assert!(stdout(&packed).contains("spawn [0, 1, 8, 27]"));
}

/// As python: a `sitecustomize` on PYTHONPATH runs before the command line
/// (pip's isolated build environments add their requirements with one),
/// not with `-S` or `-I`.
#[test]
fn python_mode_runs_sitecustomize_as_python_does() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('app')\n")]);
    let exe = cx.pack("custom", &[app.to_str().expect("utf-8")]);
    let custom = cx.write_tree(
        "customizing",
        &[("sitecustomize.py", "import sys\nsys.customized = 'yes'\n")],
    );
    let code = "import sys; print(getattr(sys, 'customized', 'no'))";
    for flags in [&[][..], &["-S"], &["-I"]] {
        let args: Vec<&str> = flags.iter().copied().chain(["-c", code]).collect();
        let packed = output_of(
            cx.command(&exe)
                .env("PYFERRY_INTERPRETER", "1")
                .env("PYTHONPATH", &custom)
                .args(&args),
        );
        let python = output_of(
            cx.command(BUILD_PYTHON)
                .env("PYTHONPATH", &custom)
                .args(&args),
        );
        assert_eq!(
            stdout(&packed),
            stdout(&python),
            "{flags:?}: {}",
            describe(&packed)
        );
    }
    // A sitecustomize whose own import fails is reported, not fatal.
    let broken = cx.write_tree(
        "broken",
        &[("sitecustomize.py", "import no_such_module_here\n")],
    );
    let run = |program: &Path| {
        output_of(
            cx.command(program)
                .env("PYFERRY_INTERPRETER", "1")
                .env("PYTHONPATH", &broken)
                .args(["-c", code]),
        )
    };
    let (packed, python) = (run(&exe), run(Path::new(BUILD_PYTHON)));
    assert_eq!(
        packed.status.code(),
        python.status.code(),
        "{}",
        describe(&packed)
    );
    assert_eq!(stdout(&packed), stdout(&python));
    assert_eq!(stderr(&packed), stderr(&python));
}

/// An app started with its standard streams closed (a daemon's children,
/// `app <&-`) finds them closed, as python does: `sys.stdin` is None and
/// the app's first file takes the free descriptor, rather than an empty
/// stdin and output that goes nowhere.
#[test]
fn closed_standard_streams_stay_closed() {
    let cx = TestContext::new();
    let script = "import os, sys\n\
        open_fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd') if int(fd) < 3)\n\
        with open(sys.argv[1], 'w') as report:\n    \
        print([stream is None for stream in (sys.stdin, sys.stdout, sys.stderr)],\n          \
        open_fds, report.fileno(), file=report)\n";
    let app = cx.write_tree("streams-src", &[("__main__.py", script)]);
    let exe = cx.pack("streams", &[app.to_str().expect("utf-8")]);
    let main = app.join("__main__.py");
    for (case, redirections) in [("stdin", "<&-"), ("stdout", ">&-"), ("all", "<&- >&- 2>&-")] {
        // `exec "$0" "$@"`, with the streams closed for that program only.
        let closing = format!("exec \"$0\" \"$@\" {redirections}");
        let report_of = |program: &Path, args: &[&Path], as_python: bool| {
            let report = cx.path().join(format!("{case}-report"));
            let _ = fs::remove_file(&report);
            let mut sh = cx.command("sh");
            if as_python {
                sh.env("PYFERRY_INTERPRETER", "1");
            }
            let output = sh
                .arg("-c")
                .arg(&closing)
                .arg(program)
                .args(args)
                .arg(&report)
                .output()
                .expect("sh");
            assert!(output.status.success(), "{case}: {}", describe(&output));
            fs::read_to_string(&report).expect("the app's report")
        };
        let python_args = [Path::new("-I"), Path::new("-S"), &main];
        let python = report_of(Path::new(BUILD_PYTHON), &python_args, false);
        assert_eq!(report_of(&exe, &[], false), python, "{case}");
        let child = report_of(&exe, &python_args, true);
        assert_eq!(child, python, "{case}, the app as python for its children");
    }
}
