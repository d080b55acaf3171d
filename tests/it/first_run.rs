//! A first run extracts only when the app needs its files (`runtime::lazy`):
//! nothing for an app that never does, everything at the first import that
//! does. Each app is compared with python or its venv.

use crate::context::{
    TestContext, describe, middle_of_entry, stderr, success, venv_output, version_dirs, wheel_dir,
};
use pyferry::format::Flavor;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// An app of pure modules, its own and the standard library's, runs from
/// the archive alone: nothing is extracted, on its first run or later.
/// (Most of the standard library's C accelerators are extension modules of
/// their own in this CPython, `_heapq` for `collections`: an app that
/// imports one extracts.)
#[test]
fn an_app_that_needs_no_files_extracts_nothing() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            (
                "__main__.py",
                "import helper, textwrap\n\
                 print(helper.greet(), textwrap.shorten('a b c d', 5))\n",
            ),
            ("helper.py", "def greet():\n    return 'hi'\n"),
        ],
    );
    let exe = cx.pack("hello", &[app.to_str().expect("utf-8")]);
    let python = python_output(&cx, &app);
    for _ in 0..2 {
        assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python);
    }
    assert_eq!(version_dirs(&cx.cache_dir()), Vec::<String>::new());
}

/// A package that reads a file beside its module is extracted (with the
/// rest of what the app extracts) when it is first imported, not before.
#[test]
fn the_first_import_that_needs_files_extracts_them() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            (
                "__main__.py",
                "import sys\nprint('before', file=sys.stderr)\n\
                 import data_pkg\nprint(data_pkg.TEXT)\n",
            ),
            (
                "data_pkg/__init__.py",
                "import os\n\
                 with open(os.path.join(os.path.dirname(__file__), 'data.txt')) as f:\n    \
                 TEXT = f.read().strip()\n",
            ),
            ("data_pkg/data.txt", "read from a file beside the module\n"),
        ],
    );
    let exe = cx.pack("data", &[app.to_str().expect("utf-8")]);
    let python = python_output(&cx, &app);
    let first = cx
        .command(&exe)
        .env("PYFERRY_DEBUG", "1")
        .output()
        .expect("run");
    assert_eq!(success(&first), python);
    // Extracted after the app started, at the import.
    let text = stderr(&first);
    let (before, extracted) = (text.find("before\n"), text.find("extracted "));
    assert!(
        before.zip(extracted).is_some_and(|(b, e)| b < e),
        "{}",
        describe(&first)
    );
    assert_eq!(version_dirs(&cx.cache_dir()).len(), 1);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python);
}

/// `importlib.metadata` finds the app's distributions on a first run: the
/// look for them extracts their `*.dist-info` directories.
#[test]
fn distribution_metadata_is_there_on_a_first_run() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[(
            "__main__.py",
            "import importlib.metadata as metadata\n\
             print(metadata.version('typing_extensions'))\n\
             print(sorted(p.name for p in metadata.files('typing_extensions') if p.suffix == '.py'))\n",
        )],
    );
    let expected = venv_output(&cx, &app.join("__main__.py"));
    let exe = cx.pack(
        "metadata",
        &[
            app.to_str().expect("utf-8"),
            "typing_extensions",
            "--",
            "--no-index",
            "--find-links",
            wheel_dir().to_str().expect("utf-8"),
        ],
    );
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), expected);
}

/// A damaged copy that extracts nothing is never verified as a whole: the
/// module read from its damaged entry fails against the entry's CRC-32,
/// with a message that says what to do (and no traceback), instead of
/// running corrupt bytecode; so does a module that CPython's own start
/// imports from the archive (`encodings`), instead of CPython's dump of
/// its configuration.
#[test]
fn a_damaged_module_fails_its_checksum_instead_of_running() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            (
                "__main__.py",
                "import sys\nimport helper\nif sys.argv[1:] == ['textwrap']:\n    import textwrap\n\
                 helper.greet()\n",
            ),
            (
                "helper.py",
                "def greet():\n    print('greetings from an intact module')\n",
            ),
        ],
    );
    let exe = cx.pack("intact", &[app.to_str().expect("utf-8")]);
    let intact = success(&cx.run(&exe, &["textwrap"]));
    assert_eq!(intact, "greetings from an intact module\n");
    // A standard module of pure Python (in a standalone app's archive): the
    // app extracts nothing, and so does not verify its archive as a whole
    // first.
    let archive = zip::ZipArchive::new(fs::File::open(&exe).expect("open")).expect("a zip");
    let textwrap = archive
        .file_names()
        .map(|name| name.expect("a UTF-8 name").into_owned())
        .find(|name| name.starts_with(".python/") && name.ends_with("/textwrap.pyc"));
    assert_eq!(textwrap.is_some(), Flavor::CURRENT == Flavor::Standalone);
    // The entry point's pyc, stored; the app's other pycs and the standard
    // library's, zstd frames (of the archive's dictionary in a standalone
    // app): one flipped bit in the middle of each.
    let standard = textwrap.as_deref().map(|name| (name, "/textwrap.pyc"));
    let encodings = textwrap
        .as_deref()
        .map(|name| name.replace("/textwrap.pyc", "/encodings/__init__.pyc"));
    let at_start = encodings
        .as_deref()
        .map(|name| (name, "/encodings/__init__.pyc"));
    for (entry, failing) in [
        ("__main__.pyc", "__main__.pyc"),
        ("helper.pyc", "helper.pyc"),
    ]
    .into_iter()
    .chain(standard)
    .chain(at_start)
    {
        let mut bytes = fs::read(&exe).expect("read");
        let at = middle_of_entry(&bytes, entry);
        bytes[at] ^= 0x20;
        let damaged = cx.path().join("damaged");
        fs::write(&damaged, &bytes).expect("write");
        fs::set_permissions(&damaged, fs::Permissions::from_mode(0o755)).expect("chmod");
        let output = cx.run(&damaged, &["textwrap"]);
        assert!(!output.status.success(), "{entry}: {}", describe(&output));
        assert!(!String::from_utf8_lossy(&output.stdout).contains("greetings"));
        let error = stderr(&output);
        assert!(
            error.contains(&format!("{failing}` cannot be read ("))
                && error.contains("pack the app again or fetch a fresh copy")
                && !error.contains("Traceback")
                && !error.contains("Python path configuration"),
            "{entry}: {}",
            describe(&output)
        );
        assert_eq!(output.status.code(), Some(1), "{entry}");
    }
}

/// Namespace packages imported from the archive (no `__init__.py`, two
/// portions in one directory tree), and a standard package's submodules,
/// as under python.
#[test]
fn namespace_packages_and_standard_submodules_import_from_the_archive() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            (
                "__main__.py",
                "import nspkg.first, nspkg.inner.second, json.decoder, email.mime.text\n\
                 print(nspkg.first.NAME, nspkg.inner.second.NAME)\n\
                 print(json.decoder.JSONDecodeError.__module__, email.mime.text.MIMEText.__name__)\n",
            ),
            ("nspkg/first.py", "NAME = 'first'\n"),
            ("nspkg/inner/second.py", "NAME = 'second'\n"),
        ],
    );
    let exe = cx.pack("namespaces", &[app.to_str().expect("utf-8")]);
    let python = python_output(&cx, &app);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python);
}

/// What python prints running the app's `__main__.py` as a script, its
/// directory first on `sys.path`, without the environment's or the user's
/// site: the baseline of these apps.
fn python_output(cx: &TestContext, app: &Path) -> String {
    let script = app.join("__main__.py");
    success(&cx.python(&[
        "-E".as_ref(),
        "-s".as_ref(),
        "-S".as_ref(),
        script.as_os_str(),
    ]))
}

/// Ctrl-C while a first run that deferred its extraction waits for another
/// process's (its lock held here, as that process would hold it) raises
/// `KeyboardInterrupt` at once, and the app dies by SIGINT as python does
/// when interrupted in a wait; it used to wait for the lock regardless.
#[test]
fn ctrl_c_while_waiting_for_another_extraction_interrupts_the_app() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;
    let cx = TestContext::new();
    let (exe, key) = data_package_app(&cx);
    fs::create_dir(cx.cache_dir()).expect("mkdir");
    fs::set_permissions(cx.cache_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let lock = fs::File::create(cx.cache_dir().join(format!("{key}.lock"))).expect("lock file");
    lock.lock().expect("lock");

    // With the dispositions a terminal's shell gives (a suite run in the
    // background inherits SIGINT ignored).
    let mut child = cx
        .command("env")
        .arg("--default-signal=INT")
        .arg(&exe)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(2500));
    let sent = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = exit_within(&mut child, Duration::from_secs(30))
        .expect("the app went on waiting after Ctrl-C");
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert_eq!(out, "started\n", "{err}");
    assert_eq!(status.signal(), Some(libc::SIGINT), "{err}");
    assert!(err.contains("KeyboardInterrupt"), "{err}");
    assert!(err.contains("waiting for another process"), "{err}");
}

/// A first run that waited for another process's extraction uses the
/// version once that process publishes it, while the process goes on
/// holding it (as every running copy holds its version's lock, shared). It
/// used to go on waiting for the lock itself, for as long as the other
/// process ran: a pool of workers started through `sys.executable`, one
/// extracting while the others queued, waited for each other until the
/// pool's timeout.
#[test]
fn a_first_run_that_waited_for_an_extraction_uses_it_once_published() {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;
    let cx = TestContext::new();
    let (exe, key) = data_package_app(&cx);
    // The other process's extraction, made beforehand in a cache of its
    // own on the same filesystem, and published below by one rename.
    let other_cache = cx.path().join("other-cache");
    let warm = cx
        .command(&exe)
        .env("PYFERRY_CACHE_DIR", &other_cache)
        .output()
        .expect("run");
    assert_eq!(success(&warm), "started\nimported\n");

    fs::create_dir(cx.cache_dir()).expect("mkdir");
    fs::set_permissions(cx.cache_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let lock = fs::File::create(cx.cache_dir().join(format!("{key}.lock"))).expect("lock file");
    lock.lock().expect("lock");
    let mut child = cx
        .command(&exe)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "started\n");
    // Long enough for the import to wait for the lock.
    std::thread::sleep(Duration::from_millis(500));
    fs::rename(other_cache.join(&key), cx.cache_dir().join(&key)).expect("publish");
    lock.lock_shared()
        .expect("hold the version as a running copy does");

    let status = exit_within(&mut child, Duration::from_secs(20))
        .expect("the first run went on waiting for the lock of a published version");
    line.clear();
    out.read_line(&mut line).expect("read");
    assert!(status.success(), "{status:?}");
    assert_eq!(line, "imported\n");
    drop(lock);
}

/// An app that prints `started`, then imports a package that reads a file
/// beside its module (extracted in both flavors, when first imported) and
/// prints `imported`; packed as `waiter`, with its version's name in the
/// cache.
fn data_package_app(cx: &TestContext) -> (std::path::PathBuf, String) {
    let app = cx.write_tree(
        "app",
        &[
            (
                "__main__.py",
                "print('started', flush=True)\nimport data_pkg\nprint('imported')\n",
            ),
            (
                "data_pkg/__init__.py",
                "import os\nopen(os.path.join(os.path.dirname(__file__), 'data.txt')).close()\n",
            ),
            ("data_pkg/data.txt", "beside the module\n"),
        ],
    );
    let exe = cx.pack("waiter", &[app.to_str().expect("utf-8")]);
    let report = cx.inspect_json(&exe);
    let key = format!(
        "{}-{}",
        report["name"].as_str().expect("name"),
        &report["archive_hash"].as_str().expect("hash")[..16]
    );
    (exe, key)
}

/// How `child` exited, if it did within `limit`; otherwise it is killed.
fn exit_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
