//! Pure-Python apps: entry-point forms, argv, exit statuses, tracebacks.

use crate::context::{
    BUILD_PYTHON, StdinBytes, TestContext, describe, output_of, stderr, stdout, success,
};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

const SCRIPT: &str = r#"
import os, sys, json, sqlite3, zlib, hashlib
db = sqlite3.connect(":memory:")
print(json.dumps({
    "sum": db.execute("select 20 + 22").fetchone()[0],
    "crc": zlib.crc32(b"pyferry"),
    "sha": hashlib.sha256(b"pyferry").hexdigest()[:12],
    "name": __name__,
}))
"#;

#[test]
fn pure_app_prints_what_python_prints() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", SCRIPT)]);
    let exe = cx.pack("hello", &[app.to_str().expect("utf-8")]);
    let packed = success(&cx.run(&exe, &[] as &[&str]));
    let python = success(&cx.python(&[&app]));
    assert_eq!(packed, python);
    assert!(packed.contains("\"name\": \"__main__\""), "{packed}");
}

#[test]
fn argv_passes_through_byte_for_byte() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[(
            "__main__.py",
            "import os, sys\nfor arg in sys.argv: print(os.fsencode(arg).hex())\n",
        )],
    );
    let exe = cx.pack("echo", &[app.to_str().expect("utf-8")]);
    let args: Vec<OsString> = [
        &b"-c"[..],
        b"print(1)",
        b"--extract-only",
        b"-m",
        b"",
        b"two words",
        b"caf\xc3\xa9",
        b"\xff\xfe not utf-8",
        b"--",
    ]
    .iter()
    .map(|arg| OsString::from_vec(arg.to_vec()))
    .collect();
    let out = success(&cx.run(&exe, &args));
    let lines: Vec<&str> = out.lines().collect();
    let expected_argv0 = hex(exe.as_os_str().as_encoded_bytes());
    assert_eq!(lines[0], expected_argv0, "argv[0] is the path as invoked");
    let passed: Vec<String> = args.iter().map(|arg| hex(arg.as_encoded_bytes())).collect();
    assert_eq!(lines[1..], passed);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn exit_statuses_match_python() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[(
            "__main__.py",
            "import sys\n\
             mode = sys.argv[1]\n\
             if mode == 'code': sys.exit(int(sys.argv[2]))\n\
             if mode == 'text': sys.exit('fatal: the text goes to stderr')\n\
             if mode == 'raise': raise ValueError('boom in the app')\n\
             print('fell through')\n",
        )],
    );
    let exe = cx.pack("status", &[app.to_str().expect("utf-8")]);
    for args in [
        &["code", "0"][..],
        &["code", "3"],
        &["code", "255"],
        &["text"],
        &["raise"],
        &["none"],
    ] {
        let packed = cx.run(&exe, args);
        let mut python_args = vec![app.to_str().expect("utf-8")];
        python_args.extend(args);
        let python = cx.python(&python_args);
        assert_eq!(
            packed.status.code(),
            python.status.code(),
            "{args:?}: {}",
            describe(&packed)
        );
        assert_eq!(stdout(&packed), stdout(&python), "{args:?}");
        if args[0] == "text" {
            assert_eq!(stderr(&packed), stderr(&python));
        }
    }
}

#[test]
fn tracebacks_show_source_lines_from_the_archive() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "import helper\nhelper.explode()\n"),
            (
                "helper.py",
                "def explode():\n    raise RuntimeError('explode was called')\n",
            ),
        ],
    );
    let exe = cx.pack("tb", &[app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &[] as &[&str]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.starts_with("Traceback (most recent call last):"),
        "{text}"
    );
    assert!(
        text.contains("    raise RuntimeError('explode was called')"),
        "{text}"
    );
    assert!(text.contains("    helper.explode()"), "{text}");
    assert!(
        text.ends_with("RuntimeError: explode was called\n"),
        "{text}"
    );
    assert!(
        !text.contains("_pyferry_boot"),
        "bootstrap frames leak: {text}"
    );
}

/// The entry module runs as `__main__`, a name the archive does not know
/// it by: its frames show their source lines as `python -m` shows them,
/// and so do a warning's and `inspect.getsource`.
#[test]
fn an_entry_modules_traceback_matches_python_m() {
    let cx = TestContext::new();
    let cli = "import inspect, sys, warnings\n\
        def fail(n):\n    return n / 0\n\
        if sys.argv[1:] == ['source']:\n    print(inspect.getsource(fail), end='')\n\
        elif sys.argv[1:] == ['warn']:\n    warnings.warn('careful')\n\
        else:\n    fail(1)\n";
    let app = cx.write_tree("app", &[("tool/__init__.py", ""), ("tool/cli.py", cli)]);
    let app_dir = app.to_str().expect("utf-8");
    let exe = cx.pack("tool", &["-e", "tool.cli", app_dir]);
    // Frames named alike: python's are the file's path, runpy's frames
    // (no source lines) are python's own.
    let frames = |text: String, root: &str| -> Vec<String> {
        text.replace(root, "ROOT")
            .lines()
            .filter(|line| !line.contains("<frozen runpy>"))
            .map(str::to_owned)
            .collect()
    };
    for args in [&[][..], &["source"], &["warn"]] {
        let packed = cx.run(&exe, args);
        let python = output_of(
            cx.command(BUILD_PYTHON)
                .current_dir(&app)
                .args(["-m", "tool.cli"])
                .args(args),
        );
        assert_eq!(packed.status.code(), python.status.code(), "{args:?}");
        assert_eq!(stdout(&packed), stdout(&python), "{args:?}");
        let python_text = frames(stderr(&python), app_dir);
        // What the test is for: python shows the source lines.
        let shows_lines = python_text
            .iter()
            .any(|line| line.starts_with("  ") && !line.starts_with("  File "));
        assert!(python_text.is_empty() || shows_lines, "{python_text:?}");
        assert_eq!(
            frames(stderr(&packed), exe.to_str().expect("utf-8")),
            python_text,
            "{args:?}"
        );
    }
}

#[test]
fn sources_can_be_left_out() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "import helper\nhelper.explode()\n"),
            (
                "helper.py",
                "def explode():\n    raise RuntimeError('no source here')\n",
            ),
        ],
    );
    let exe = cx.pack("nosrc", &["--no-sources", app.to_str().expect("utf-8")]);
    let listing = success(&cx.python(&["-m", "zipfile", "-l", exe.to_str().expect("utf-8")]));
    assert!(
        listing.contains("helper.pyc") && !listing.contains("helper.py "),
        "{listing}"
    );
    let output = cx.run(&exe, &[] as &[&str]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.ends_with("RuntimeError: no source here\n"), "{text}");
    assert!(!text.contains("raise RuntimeError"), "{text}");
}

/// A module of the archive is read and unmarshalled once (zipimport alone
/// does it twice: once to name its file), and keeps the file names and
/// loader zipimport gives it.
#[test]
fn archive_modules_are_loaded_once() {
    let cx = TestContext::new();
    let main = "import os, sys, zipimport\n\
        archive = os.path.realpath(sys.argv[0])\n\
        loads = []\n\
        sys.addaudithook(lambda event, args: loads.append(event) if event == 'marshal.loads' else None)\n\
        import pkg.mod\n\
        print(len(loads), pkg.mod.VALUE)\n\
        print(pkg.__file__ == archive + '/pkg/__init__.pyc', pkg.mod.__file__ == archive + '/pkg/mod.pyc')\n\
        print(pkg.__path__ == [archive + '/pkg'], pkg.mod.__spec__.origin == pkg.mod.__file__)\n\
        print(isinstance(pkg.mod.__loader__, zipimport.zipimporter))\n";
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", main),
            ("pkg/__init__.py", ""),
            ("pkg/mod.py", "VALUE = 42\n"),
        ],
    );
    let exe = cx.pack("once", &[app.to_str().expect("utf-8")]);
    assert_eq!(
        success(&cx.run(&exe, &[] as &[&str])),
        "2 42\nTrue True\nTrue True\nTrue\n"
    );
}

#[test]
fn entry_point_forms() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("tool/__init__.py", ""),
            (
                "tool/cli.py",
                "import sys\n\
                 def main():\n    print('main called with', sys.argv[1:])\n    return 7\n\
                 class Commands:\n    @staticmethod\n    def go():\n        print('nested'); return 0\n\
                 if __name__ == '__main__':\n    print('run as __main__')\n",
            ),
            ("tool/__main__.py", "print('package main')\n"),
        ],
    );
    let app = app.to_str().expect("utf-8");

    let exe = cx.pack("func", &["-e", "tool.cli:main", app]);
    let output = cx.run(&exe, &["x"]);
    assert_eq!(
        output.status.code(),
        Some(7),
        "return value is the exit status"
    );
    assert_eq!(stdout(&output), "main called with ['x']\n");

    let exe = cx.pack("nested", &["-e", "tool.cli:Commands.go", app]);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), "nested\n");

    let exe = cx.pack("module", &["-e", "tool.cli", app]);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), "run as __main__\n");

    let exe = cx.pack("package", &["-e", "tool", app]);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), "package main\n");

    let exe = cx.pack("stdlib", &["-e", "json.tool", app]);
    let output = cx
        .command(&exe)
        .arg("--compact")
        .stdin_bytes(b"{\"a\": [1, 2]}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "{\"a\":[1,2]}\n");
}

#[test]
fn runtime_environment_is_isolated() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[(
            "__main__.py",
            "import sys, os\n\
             archive = os.path.realpath(sys.argv[0])\n\
             print('site' in sys.modules, sys.flags.no_user_site)\n\
             print(os.path.realpath(sys.executable) == archive, os.path.basename(sys.executable))\n\
             print(all(p.startswith((sys.base_prefix, archive)) for p in sys.path), len(sys.path))\n\
             print(type(__loader__).__name__, __file__.startswith(archive + '/__main__.py'))\n",
        )],
    );
    // Imported from the archive, though it names `__file__`.
    let exe = cx.pack(
        "isolated",
        &["--no-extract", "__main__.py", app.to_str().expect("utf-8")],
    );
    let output = cx
        .command(&exe)
        .env("PYTHONPATH", cx.path())
        .env("PYTHONHOME", "/nonexistent")
        .output()
        .expect("run");
    let out = success(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "False 1", "{out}");
    // `sys.executable` is the app's python, a link to the executable.
    assert_eq!(lines[1], "True python3", "{out}");
    assert!(lines[2].starts_with("True"), "{out}");
    assert_eq!(lines[3], "zipimporter True", "{out}");
}

/// Code that reaches its own files through the file system: a plugin
/// directory listed next to `__file__`, a data file opened next to it, and
/// the same data read as a resource. Such units are extracted, the rest
/// stays in the archive, and `inspect` says which and why.
#[test]
fn code_that_reaches_its_own_files_works() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            (
                "__main__.py",
                "import importlib.resources, plugins, conf, tool\n\
                 print(plugins.names())\n\
                 print(conf.load())\n\
                 print(importlib.resources.files('conf').joinpath('default.yaml').read_text())\n\
                 print(tool.run())\n",
            ),
            (
                "plugins/__init__.py",
                "import os\n\
                 def names():\n    \
                 here = os.path.dirname(__file__)\n    \
                 return sorted(n for n in os.listdir(here) if n.endswith('.py'))\n",
            ),
            ("plugins/alpha.py", ""),
            ("plugins/beta.py", ""),
            (
                "conf/__init__.py",
                "import os.path\n\
                 def load():\n    \
                 with open(os.path.join(os.path.dirname(__file__), 'default.yaml')) as f:\n        \
                 return f.read()\n",
            ),
            ("conf/default.yaml", "rules: strict\n"),
            ("tool.py", "def run():\n    return 'pure'\n"),
        ],
    );
    let exe = cx.pack("files", &[app.to_str().expect("utf-8")]);
    let packed = success(&cx.run(&exe, &[] as &[&str]));
    let python = cx
        .command(crate::context::BUILD_PYTHON)
        .arg(app.join("__main__.py"))
        .output()
        .expect("python");
    assert_eq!(packed, success(&python));

    let report = cx.inspect_json(&exe);
    let placement = |unit: &str| {
        let units = report["units"].as_array().expect("units");
        let found = units.iter().find(|u| u["name"] == unit).expect("a unit");
        found["placement"].as_str().expect("placement").to_owned()
    };
    assert_eq!(placement("plugins"), "extracted");
    assert_eq!(placement("conf"), "extracted");
    assert_eq!(placement("tool.py"), "archived");
    assert_eq!(placement("__main__.py"), "archived");

    // Forced the other way, `plugins` cannot list itself: the option works.
    let forced = cx.pack(
        "forced",
        &["--no-extract", "plugins", app.to_str().expect("utf-8")],
    );
    let output = cx.run(&forced, &[] as &[&str]);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        stderr(&output).contains("NotADirectoryError"),
        "{}",
        describe(&output)
    );
}

/// `pyferry pack -o tool tool.py`: one script is an app, run as `python
/// tool.py` runs it.
#[test]
fn a_single_script_is_an_app() {
    let cx = TestContext::new();
    let source = "import os, sys\n\
                  print(__name__, os.path.basename(__file__), sys.argv[1:])\n";
    let dir = cx.write_tree("scripts", &[("tool.py", source), ("my-tool.py", source)]);
    let exe = cx.pack("tool", &[dir.join("tool.py").to_str().expect("utf-8")]);
    let packed = success(&cx.run(&exe, &["a", "b"]));
    let python = cx
        .command(crate::context::BUILD_PYTHON)
        .arg(dir.join("tool.py"))
        .args(["a", "b"])
        .output()
        .expect("python");
    assert_eq!(packed, success(&python));
    // A file name that is no module name still makes an app.
    let exe = cx.pack(
        "my-tool",
        &[dir.join("my-tool.py").to_str().expect("utf-8")],
    );
    let packed = success(&cx.run(&exe, &["c"]));
    assert!(
        packed.starts_with("__main__ ") && packed.ends_with("['c']\n"),
        "{packed}"
    );
}
