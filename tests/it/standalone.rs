//! The standalone flavor: one file that runs where there is no Python.
//! (Compiled for that flavor only: the system flavor needs the distro's
//! Python by design.)

use crate::context::{BUILD_PYTHON, StdinBytes, TestContext, describe, output_of, stderr, success};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Exercises the standard library's native parts, each through the shared
/// libraries it needs (libssl, libsqlite3, libffi, liblzma, ...).
const BATTERIES: &str = r#"
import asyncio, bz2, ctypes, decimal, hashlib, lzma, multiprocessing, os
import sqlite3, ssl, sys, unicodedata, uuid, zlib
import xml.etree.ElementTree as ET

context = ssl.create_default_context()
assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
# The certificates are where Fedora keeps them, not where the build
# machine's OpenSSL looks: found anyway.
assert context.cert_store_stats()["x509_ca"] > 0, context.cert_store_stats()
print("ssl", ssl.OPENSSL_VERSION.split()[0])
print("sqlite3", sqlite3.connect(":memory:").execute("select 6 * 7").fetchone()[0])
print("ctypes", ctypes.CDLL(None).strlen(b"four"))
print("decimal", decimal.Decimal(1) / decimal.Decimal(8))
data = b"pyferry " * 1000
for codec in (lzma, bz2, zlib):
    assert codec.decompress(codec.compress(data)) == data, codec
print("codecs", "ok")
print("sha3", hashlib.sha3_256(b"").hexdigest()[:8])
print("blake2", hashlib.blake2b(b"").hexdigest()[:8])
print("md5", hashlib.md5(b"").hexdigest()[:8])
import _uuid
print("uuid", uuid.uuid1().version, uuid.uuid4().version)

async def answer():
    await asyncio.sleep(0)
    return 42

print("asyncio", asyncio.run(answer()))
print("xml", ET.fromstring("<a><b>text</b></a>").find("b").text)
print("unicodedata", unicodedata.name("\u00e9"))
with multiprocessing.get_context("spawn").Pool(2) as pool:
    print("multiprocessing", sum(pool.map(abs, [-1, -2, -3])))
print("library path set", any(k.startswith("LD_") for k in os.environ))
print("python here", any(os.path.exists(p) for p in ("/usr/bin/python3", "/usr/lib/python3.11")))
print("prefix", sys.prefix.startswith("/tmp/pyferry-") and sys.prefix.endswith("/.python"))
"#;

const EXPECTED: &str = "ssl OpenSSL
sqlite3 42
ctypes 4
decimal 0.125
codecs ok
sha3 a7ffc6f8
blake2 786a02f7
md5 d41d8cd9
uuid 1 4
asyncio 42
xml text
unicodedata LATIN SMALL LETTER E WITH ACUTE
multiprocessing 6
library path set False
python here False
prefix True
";

/// glibc's own files, which every target machine has.
pub fn is_glibc(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    [
        "ld-linux-x86-64.so.2",
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
    ]
    .contains(&name)
}

/// The files `ldd` says the executable loads.
pub fn ldd_files(exe: &Path) -> Vec<String> {
    let output = std::process::Command::new("ldd")
        .arg(exe)
        .output()
        .expect("ldd");
    let text = success(&output);
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = line.split_once("=> ").map_or(line, |(_, path)| path);
            let path = path.rsplit_once(" (").map_or(path, |(path, _)| path);
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect()
}

#[test]
fn runs_in_a_chroot_that_holds_only_glibc() {
    let cx = TestContext::new();
    let app = cx.write_tree("batteries-app", &[("__main__.py", BATTERIES)]);
    let exe = cx.pack("batteries", &[app.to_str().expect("utf-8")]);

    let needed = ldd_files(&exe);
    assert!(
        needed.iter().all(|path| is_glibc(path)),
        "the executable needs more than glibc: {needed:?}"
    );
    assert!(needed.iter().any(|path| path.ends_with("/libc.so.6")));

    let root = glibc_root(&cx, &exe, &needed);
    let run = || run_in_root(&cx, &root, &["/app"]);
    let first = run();
    assert_eq!(success(&first), EXPECTED, "{}", describe(&first));
    // Extracted once, to the fallback cache inside the root; reused.
    let caches: Vec<PathBuf> = fs::read_dir(root.join("tmp"))
        .expect("list /tmp")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(caches.len(), 1, "{caches:?}");
    let second = run();
    assert_eq!(success(&second), EXPECTED, "{}", describe(&second));
    assert!(stderr(&second).is_empty(), "{}", describe(&second));
}

/// A root that holds glibc's files at their paths (`needed`), the app as
/// `/app`, and what `glibc_files` lays out.
fn glibc_root(cx: &TestContext, exe: &Path, needed: &[String]) -> PathBuf {
    let root = cx.path().join("root");
    glibc_files(&root, needed);
    fs::copy(exe, root.join("app")).expect("copy the app");
    let files = list_files(&root);
    assert!(
        files
            .iter()
            .all(|f| f == "app" || f == "dev/null" || is_glibc(f)),
        "the root holds more than glibc and the app: {files:?}"
    );
    // Data, not code: CA certificates, at Fedora's path.
    let bundle = root.join("etc/pki/tls/certs/ca-bundle.crt");
    fs::create_dir_all(bundle.parent().expect("parent")).expect("mkdir");
    fs::copy("/etc/ssl/certs/ca-certificates.crt", &bundle).expect("copy certificates");
    root
}

/// Lays out in `root` glibc's files at their paths (`needed`, and the rest
/// of glibc's libraries, which extension modules may name), an empty /tmp
/// (the cache falls back there: no HOME, no passwd), and mount points for
/// /proc (the runtime reads /proc/self/exe), /dev/shm (multiprocessing
/// semaphores) and /dev/null (what `Command::output` gives a child's stdin).
pub fn glibc_files(root: &Path, needed: &[String]) {
    let libc = needed
        .iter()
        .find(|path| path.ends_with("/libc.so.6"))
        .expect("the executable needs libc");
    let lib_dir = Path::new(libc).parent().expect("libc's directory");
    let siblings = [
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
    ]
    .iter()
    .map(|name| lib_dir.join(name).to_string_lossy().into_owned())
    .filter(|path| Path::new(path).exists());
    let glibc: BTreeSet<String> = needed.iter().cloned().chain(siblings).collect();
    for path in &glibc {
        let copy = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
        fs::copy(path, &copy).expect("copy a glibc file");
    }
    for dir in ["tmp", "proc", "dev/shm"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::write(root.join("dev/null"), "").expect("a mount point");
}

/// Runs `args` chrooted into `root` (laid out by `glibc_files`), in a mount
/// namespace of its own.
pub fn run_in_root(cx: &TestContext, root: &Path, args: &[&str]) -> Output {
    let script = "mount -t proc proc \"$0/proc\" && mount -t tmpfs tmpfs \"$0/dev/shm\" \
                  && mount --bind /dev/null \"$0/dev/null\" && exec chroot \"$0\" \"$@\"";
    cx.command("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").expect("PATH"))
        .output()
        .expect("unshare")
}

const NATIVE_WHEELS_APP: &str = "import numpy, pydantic_core\n\
    print(numpy.fft.fft(numpy.ones(4)).real, numpy.linalg.det(numpy.eye(3)))\n\
    print(pydantic_core.SchemaValidator({'type': 'int'}).validate_python('42'))\n\
    with open('/proc/self/maps') as maps:\n    \
    carried = sorted({line.rsplit('/', 1)[1].strip() for line in maps if '/.fallback-libs/' in line})\n\
    print('carried', carried)\n";

/// `NATIVE_WHEELS_APP` with numpy and pydantic-core from the test wheels:
/// its source directory and the packed app.
fn pack_native_wheels_app(cx: &TestContext) -> (PathBuf, PathBuf) {
    let app = cx.write_tree("native-app", &[("__main__.py", NATIVE_WHEELS_APP)]);
    let wheels = crate::context::wheel_dir().to_str().expect("utf-8");
    let exe = cx.pack(
        "native",
        &[
            app.to_str().expect("utf-8"),
            "numpy",
            "pydantic-core",
            "--",
            "--no-index",
            "--find-links",
            wheels,
        ],
    );
    (app, exe)
}

/// numpy's C++ and pydantic-core's Rust need libstdc++ and libgcc_s, which
/// manylinux lets wheels take from the system: where the machine has none,
/// the app's own copies are loaded; where it has them, the machine's.
#[test]
fn native_wheels_run_in_a_chroot_that_holds_only_glibc() {
    let cx = TestContext::new();
    let (app, exe) = pack_native_wheels_app(&cx);
    let venv = crate::context::venv_output(&cx, &app);
    assert!(venv.ends_with("carried []\n"), "{venv}");
    // This machine has both: its own are loaded.
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), venv);

    let root = glibc_root(&cx, &exe, &ldd_files(&exe));
    let chrooted = run_in_root(&cx, &root, &["/app"]);
    let expected = venv.replace(
        "carried []",
        &format!("carried {}", carried_libraries(&cx, &exe)),
    );
    assert_eq!(success(&chrooted), expected, "{}", describe(&chrooted));
}

/// The fallback libraries `exe` carries, as Python prints their list
/// (`['libgcc_s.so.1', ...]`): numpy's C++ and pydantic-core's Rust need
/// the GCC runtime at least (zlib depends on how numpy was built).
pub fn carried_libraries(cx: &TestContext, exe: &Path) -> String {
    let mut carried: Vec<String> = cx.inspect_json(exe)["extracted_files"]
        .as_array()
        .expect("extracted files")
        .iter()
        .filter_map(|file| file["name"].as_str()?.strip_prefix(".fallback-libs/"))
        .map(|name| format!("'{name}'"))
        .collect();
    carried.sort();
    for needed in ["'libgcc_s.so.1'", "'libstdc++.so.6'"] {
        assert!(carried.iter().any(|name| name == needed), "{carried:?}");
    }
    format!("[{}]", carried.join(", "))
}

pub fn list_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("below root");
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    files
}

#[test]
fn left_out_parts_of_the_standard_library_can_be_kept() {
    let cx = TestContext::new();
    let probe = "import importlib.util\n\
                 for name in ('pydoc_data', 'lib2to3', 'test', '_testcapi', 'nis', 'turtle', 'json'):\n    \
                 print(name, importlib.util.find_spec(name) is not None)\n";
    let app = cx.write_tree("probe-app", &[("__main__.py", probe)]);
    // What python has (a build may lack `nis`), kept by the app or not.
    let in_python = success(&cx.python(&[app.join("__main__.py")]));
    let expected = |kept: &[&str]| {
        in_python
            .lines()
            .map(|line| {
                let (name, found) = line.split_once(' ').expect("name found");
                let found = found == "True" && kept.contains(&name);
                format!("{name} {}\n", if found { "True" } else { "False" })
            })
            .collect::<String>()
    };
    let app = app.to_str().expect("utf-8");
    let default = cx.pack("default", &[app]);
    assert_eq!(
        success(&cx.run(&default, &[] as &[&str])),
        expected(&["json"])
    );
    let kept = cx.pack(
        "kept",
        &[
            "--keep-stdlib",
            "pydoc_data",
            "--keep-stdlib",
            "test",
            "--keep-stdlib",
            "nis",
            app,
        ],
    );
    assert_eq!(
        success(&cx.run(&kept, &[] as &[&str])),
        expected(&["pydoc_data", "test", "_testcapi", "nis", "json"])
    );
    assert!(
        in_python.contains("test True\n_testcapi True"),
        "{in_python}"
    );
    // turtle goes with tkinter, which an app that imports it keeps.
    let source = "import turtle\nprint(turtle.Vec2D(1, 2) * 3)\n";
    let turtle_app = cx.write_tree("turtle-app", &[("__main__.py", source)]);
    let packed = cx.pack("turtle", &[turtle_app.to_str().expect("utf-8")]);
    assert_eq!(
        success(&cx.run(&packed, &[] as &[&str])),
        success(&cx.python(&[turtle_app.join("__main__.py")]))
    );
    let output = cx.pack_output("bogus", &["--keep-stdlib", "json", app]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--keep-stdlib json: only these parts"),
        "{}",
        describe(&output)
    );
}

/// An app that makes environments with pip (pypa's `build`, pipx) runs
/// `python -m venv`, which runs `python -m ensurepip` in the new
/// environment: ensurepip, left out by default, travels with the app, and
/// the environment, whose python is the packed app, gets pip as python's.
#[test]
fn an_app_that_makes_environments_with_pip_carries_ensurepip() {
    let cx = TestContext::new();
    let script = "import os, subprocess, sys, tempfile\n\
        with tempfile.TemporaryDirectory() as home:\n    \
        env = os.path.join(home, 'env')\n    \
        subprocess.run([sys.executable, '-m', 'venv', env], check=True)\n    \
        probe = 'import os, pip, sys; print(pip.__version__, os.path.samefile(sys.prefix, sys.argv[1]))'\n    \
        subprocess.run([os.path.join(env, 'bin', 'python'), '-c', probe, env], check=True)\n";
    let app = cx.write_tree("venv-app", &[("__main__.py", script)]);
    let packed = cx.pack("venv-maker", &[app.to_str().expect("utf-8")]);
    assert_eq!(
        success(&cx.run(&packed, &[] as &[&str])),
        success(&cx.python(&[app.join("__main__.py")]))
    );
}

/// A traceback through the carried standard library names its files where
/// they are, in the app's cache, with their source lines, as python's
/// tracebacks do: nothing of the build machine's paths.
#[test]
fn standard_library_frames_name_their_files_and_lines() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "import json\njson.loads('{')\n")]);
    let exe = cx.pack("frames", &[app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &[] as &[&str]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    let decoder = format!(
        "/.python/lib/python{}/json/decoder.py\", line ",
        pyferry::build_python::PYTHON_VERSION
    );
    assert!(text.contains(&decoder), "{text}");
    let python = cx.python(&[app.join("__main__.py")]);
    let source_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with("    ") && !line.trim_start().starts_with('^'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(source_lines(&text), source_lines(&stderr(&python)));
    let build_prefix = pyferry::build_python::PYTHON_HOME;
    assert!(!text.contains(build_prefix), "{text}");
    assert!(text.ends_with("(char 1)\n"), "{text}");
}

/// An app that prints its name with `json`, packed as `name`. It imports
/// `ctypes` too, whose extension module is a file in every CPython build
/// (the others may be built in): its first run extracts the standard
/// library.
fn pack_json_app(cx: &TestContext, name: &str) -> PathBuf {
    let source = format!("import ctypes, json\nprint(json.dumps({name:?}))\n");
    let app = cx.write_tree(&format!("{name}-src"), &[("__main__.py", source.as_str())]);
    cx.pack(name, &[app.to_str().expect("utf-8")])
}

/// The standard library extracted in the cache's version `key`.
fn extracted_stdlib(cx: &TestContext, key: &str) -> PathBuf {
    cx.cache_dir()
        .join(key)
        .join(".python/lib")
        .join(format!("python{}", pyferry::build_python::PYTHON_VERSION))
}

#[test]
fn apps_share_one_extracted_standard_library() {
    use crate::context::{pyferry, version_dirs};
    use std::os::unix::fs::MetadataExt;
    let cx = TestContext::new();
    let (first, second) = (pack_json_app(&cx, "first"), pack_json_app(&cx, "second"));
    let run = |exe: &Path| {
        let output = cx
            .command(exe)
            .env("PYFERRY_DEBUG", "1")
            .output()
            .expect("run");
        success(&output);
        stderr(&output)
    };
    assert!(!run(&first).contains("linked the standard library"));
    assert!(run(&second).contains("linked the standard library"));
    let os_module = |key: &String| extracted_stdlib(&cx, key).join("os.py");
    let keys = version_dirs(&cx.cache_dir());
    assert_eq!(keys.len(), 2, "{keys:?}");
    let inodes: Vec<u64> = keys
        .iter()
        .map(|key| fs::metadata(os_module(key)).expect("os.py").ino())
        .collect();
    assert_eq!(inodes[0], inodes[1], "one copy on disk");

    // Either can go: the other keeps the files.
    let prune = cx
        .command(pyferry())
        .args(["cache", "prune"])
        .output()
        .expect("prune");
    success(&prune);
    assert_eq!(version_dirs(&cx.cache_dir()), Vec::<String>::new());
    assert!(!run(&second).contains("linked the standard library"));
    assert!(run(&first).contains("linked the standard library"));
    for exe in [&first, &second] {
        assert!(success(&cx.run(exe, &[] as &[&str])).ends_with("\"\n"));
    }
}

/// A damaged standard library in one app's version is not hard-linked into
/// another app's: each linked file is checked against the second app's own
/// archive, and the second app extracts its own copy instead.
#[test]
fn a_damaged_standard_library_is_not_shared() {
    use crate::context::version_dirs;
    let cx = TestContext::new();
    let (first, second) = (pack_json_app(&cx, "first"), pack_json_app(&cx, "second"));
    success(&cx.run(&first, &[] as &[&str]));
    let keys = version_dirs(&cx.cache_dir());
    // A source that tracebacks and linters read (the compiled modules are
    // in each app's own archive).
    let json_init = extracted_stdlib(&cx, &keys[0]).join("json/__init__.py");
    let pristine = fs::read(&json_init).expect("read the source");
    let mut damaged = pristine.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    damaged[20] ^= 0xff;
    fs::write(&json_init, &damaged).expect("damage");

    let output = cx
        .command(&second)
        .env("PYFERRY_DEBUG", "1")
        .output()
        .expect("run");
    assert_eq!(success(&output), "\"second\"\n", "{}", describe(&output));
    assert!(
        stderr(&output).contains("not sharing the standard library"),
        "{}",
        describe(&output)
    );
    let second_key = version_dirs(&cx.cache_dir())
        .into_iter()
        .find(|key| *key != keys[0])
        .expect("the second app's version");
    let own = fs::read(extracted_stdlib(&cx, &second_key).join("json/__init__.py"));
    assert_eq!(own.expect("its own copy"), pristine);
}

/// `sysconfig` describes the runtime, not the build interpreter: paths
/// below the app's own `sys.prefix`, libpython linked in statically, and
/// the files it names (Makefile, pyconfig.h) there.
#[test]
fn sysconfig_describes_the_runtime() {
    let cx = TestContext::new();
    let script = "import os, sys, sysconfig\n\
        values = sysconfig.get_config_vars()\n\
        print(values['Py_ENABLE_SHARED'], values['LDLIBRARY'] == values['LIBRARY'])\n\
        print(values['prefix'] == sys.prefix, values['INCLUDEPY'].startswith(sys.prefix))\n\
        print(os.path.isfile(sysconfig.get_makefile_filename()))\n\
        print(os.path.isfile(sysconfig.get_config_h_filename()))\n\
        print(sysconfig.get_paths()['stdlib'] == os.path.dirname(os.__file__))\n\
        print([key for key, value in values.items() if sys.argv[1] in str(value)])\n";
    let app = cx.write_tree("app", &[("__main__.py", script)]);
    let exe = cx.pack("sysconfig", &[app.to_str().expect("utf-8")]);
    let output = success(&cx.run(&exe, &[pyferry::build_python::PYTHON_HOME]));
    assert_eq!(
        output, "0 True\nTrue True\nTrue\nTrue\nTrue\n[]\n",
        "{output}"
    );
}

/// On a first run that has extracted nothing, a traceback through the
/// standard library shows its source lines as python's does: linecache,
/// reading them, extracts the sources (`runtime::lazy`).
#[test]
fn a_first_runs_traceback_through_the_standard_library_has_its_lines() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[("__main__.py", "import textwrap\ntextwrap.wrap(5)\n")],
    );
    let exe = cx.pack("lines", &[app.to_str().expect("utf-8")]);
    let packed = cx.run(&exe, &[] as &[&str]);
    let script = app.join("__main__.py");
    let python = cx.python(&["-I".as_ref(), "-S".as_ref(), script.as_os_str()]);
    // Everything but the frames' paths.
    let lines = |output: &Output| -> Vec<String> {
        stderr(output)
            .lines()
            .filter(|line| !line.starts_with("  File "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(packed.status.code(), python.status.code());
    assert_eq!(lines(&packed), lines(&python), "{}", describe(&packed));
    assert!(
        lines(&packed)
            .iter()
            .any(|line| line.contains("text.expandtabs")),
        "{}",
        describe(&packed)
    );
}

/// `--stdlib minimal` keeps what the app's code reaches, the modules its
/// imports import lazily included (`urllib.request` takes `ssl` in a `try`,
/// and goes without HTTPS if it is missing): each app runs as under python,
/// and `inspect` lists what was left out.
#[test]
fn a_minimal_standard_library_runs_apps_as_python_does() {
    let cx = TestContext::new();
    let apps = [
        ("hello", "print('hello')\n"),
        // The app's own script code runs: its imports count.
        (
            "cli",
            "def main():\n    import argparse\n    \
             parser = argparse.ArgumentParser(prog='cli')\n    \
             parser.add_argument('--n', type=int, default=3)\n    \
             print(parser.parse_args([]).n)\n\
             if __name__ == '__main__':\n    main()\n",
        ),
        (
            "https",
            "import urllib.request\n\
             print(hasattr(urllib.request, 'HTTPSHandler'))\n\
             context = urllib.request.ssl.create_default_context()\n\
             print(context.verify_mode, context.check_hostname)\n",
        ),
        // `random` takes sha512 from its C accelerator, which is here:
        // hashlib (and OpenSSL) only when the app names it.
        (
            "hashes",
            "import hashlib, random\n\
             random.seed(7)\n\
             print(random.random(), random.randbytes(4).hex())\n\
             print(hashlib.sha256(b'x').hexdigest(), hashlib.pbkdf2_hmac('sha256', b'p', b's', 2).hex())\n",
        ),
        (
            "batteries",
            "import asyncio, multiprocessing, sqlite3\n\
             def square(n):\n    return n * n\n\
             async def answer():\n    await asyncio.sleep(0)\n    return 42\n\
             if __name__ == '__main__':\n    \
             print(sqlite3.connect(':memory:').execute('select 6 * 7').fetchone())\n    \
             print(asyncio.run(answer()))\n    \
             with multiprocessing.get_context('spawn').Pool(2) as pool:\n        \
             print(pool.map(square, range(4)))\n",
        ),
        // Modules imported by name, not by an import line: dbm's backends
        // and xml.sax's parser (names in the standard library's text), a
        // handler class given to logging.config and a module to
        // import_module (in the app's), what breakpoint(), help() and
        // time.strptime import.
        (
            "by-name",
            "import dbm, importlib, importlib.util, logging.config, os, sys, tempfile, time, xml.sax\n\
             path = os.path.join(tempfile.mkdtemp(), 'db')\n\
             with dbm.open(path, 'c') as db:\n    db[b'k'] = b'v'\n\
             print(dbm.whichdb(path), type(xml.sax.make_parser()).__module__)\n\
             handler = {'class': 'logging.handlers.MemoryHandler', 'capacity': 1}\n\
             logging.config.dictConfig({'version': 1, 'handlers': {'h': handler}, 'root': {'handlers': ['h']}})\n\
             print(type(logging.getLogger().handlers[0]).__name__)\n\
             print(importlib.import_module('csv').__name__, time.strptime('2020', '%Y').tm_year)\n\
             if len(sys.argv) > 9:\n    breakpoint()\n    help(len)\n\
             print([importlib.util.find_spec(name) is not None for name in ('pdb', 'pydoc')])\n",
        ),
        // Modules the app runs as programs in pythons it starts, with
        // their script code (json.tool's `main`) and their data (venv's
        // activation scripts, ensurepip's wheels), and what the pip that
        // ensurepip installs needs of the standard library.
        (
            "programs",
            "import os, subprocess, sys, tempfile\n\
             tool = subprocess.run([sys.executable, '-m', 'json.tool', '--sort-keys'], input='{\"b\": 1, \"a\": 2}',\n    \
             capture_output=True, text=True)\n\
             print(tool.stdout, tool.stderr)\n\
             env = os.path.join(tempfile.mkdtemp(), 'env')\n\
             subprocess.run([sys.executable, '-m', 'venv', env], check=True)\n\
             print(sorted(name for name in os.listdir(os.path.join(env, 'bin')) if name.startswith('activate')))\n\
             pip = [os.path.join(env, 'bin', 'python'), '-m', 'pip', 'list', '--disable-pip-version-check']\n\
             print(subprocess.run(pip, capture_output=True, text=True).stdout)\n",
        ),
    ];
    for (name, source) in apps {
        let app = cx.write_tree(name, &[("__main__.py", source)]);
        let script = app.join("__main__.py");
        let python = success(&cx.python(&[
            "-E".as_ref(),
            "-s".as_ref(),
            "-S".as_ref(),
            script.as_os_str(),
        ]));
        let exe = cx.pack(
            &format!("{name}-minimal"),
            &["--stdlib", "minimal", app.to_str().expect("utf-8")],
        );
        assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python, "{name}");
        let inspected = success(&output_of(
            cx.command(crate::context::pyferry())
                .arg("inspect")
                .arg(&exe),
        ));
        let left_out = inspected
            .lines()
            .find(|line| line.starts_with("standard library: minimal"))
            .unwrap_or_else(|| panic!("{inspected}"));
        // None of these apps reaches curses (but the pip of CPython
        // 3.11.2's ensurepip, which `programs` installs, may: its
        // `pep517.colorlog` tries it).
        if name != "programs" {
            assert!(left_out.contains(" curses,"), "{name}: {left_out}");
        }
        if name == "hello" {
            // argparse: the standard library's own command lines (`main()`,
            // `prog='python -m tokenize'`) are not what hello runs.
            let unreached = [
                " sqlite3,",
                " hashlib,",
                " pdb,",
                " pydoc,",
                " dbm,",
                " argparse,",
            ];
            for module in unreached {
                assert!(left_out.contains(module), "{module}: {left_out}");
            }
        }
    }
    // A standard module as the entry point runs as a script: what its
    // `if __name__ == "__main__":` block and `main()` import stays.
    let dir = cx.write_tree("none", &[("placeholder.py", "")]);
    let exe = cx.pack(
        "json-tool",
        &[
            "--stdlib",
            "minimal",
            "-e",
            "json.tool",
            dir.to_str().expect("utf-8"),
        ],
    );
    let input = b"{\"b\": 1, \"a\": [1, 2]}";
    let packed = cx.command(&exe).arg("--sort-keys").stdin_bytes(input);
    let python = cx
        .command(BUILD_PYTHON)
        .args(["-I", "-m", "json.tool", "--sort-keys"])
        .stdin_bytes(input);
    assert_eq!(success(&packed), success(&python));
}

/// The oldest glibc pyferry's own CPython is built for
/// (tools/portable-python), and the one `manylinux2014` means.
pub const OLDEST_GLIBC: (u32, u32) = (2, 17);

/// The glibc symbol versions an ELF file needs (`objdump -p`'s version
/// references, as auditwheel reads them); none for a file that is not ELF.
fn glibc_versions_needed(path: &Path) -> BTreeSet<(u32, u32)> {
    let output = std::process::Command::new("objdump")
        .arg("-p")
        .arg(path)
        .output()
        .expect("objdump (binutils)");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let (major, minor) = version.split_once('.')?;
            let minor = minor.split('.').next()?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
        .collect()
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0; 4];
    fs::File::open(path).is_ok_and(|mut file| file.read_exact(&mut magic).is_ok())
        && magic == *b"\x7fELF"
}

/// What pyferry is made of and writes into apps (the runtime, and every
/// native file of the CPython whose standard library apps carry) needs no
/// glibc newer than the oldest the build targets: the app runs on every
/// Linux from there on.
#[test]
fn nothing_pyferry_writes_into_an_app_needs_a_newer_glibc() {
    let runtime_dir = Path::new(crate::context::pyferry())
        .parent()
        .expect("target/release");
    let prefix = Path::new(BUILD_PYTHON)
        .ancestors()
        .nth(2)
        .expect("PREFIX/bin/python3.X");
    let mut files = vec![
        runtime_dir.join("pyferry"),
        runtime_dir.join("pyferry-runtime"),
    ];
    files.extend(
        list_files(prefix)
            .into_iter()
            .map(|file| prefix.join(file))
            .filter(|path| !path.is_symlink() && is_elf(path)),
    );
    assert!(
        files
            .iter()
            .any(|file| file.to_string_lossy().contains("lib-dynload/")),
        "no extension module of the standard library among {files:?}"
    );
    // The one exception: the libstdc++ carried for wheels on machines
    // without one (`lib/pyferry-fallback`: Debian 11's, the oldest build
    // within reach, needs GLIBC_2.18 for `__cxa_thread_atexit_impl`). An
    // app loads it only where the machine has no libstdc++ of its own.
    let allowed = |file: &Path| match file.ends_with("pyferry-fallback/libstdc++.so.6") {
        true => (2, 18),
        false => OLDEST_GLIBC,
    };
    assert!(
        files
            .iter()
            .any(|file| file.ends_with("pyferry-fallback/libgcc_s.so.1")),
        "no fallback libraries among {files:?}"
    );
    let newer: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let newest = glibc_versions_needed(file).into_iter().max()?;
            (newest > allowed(file))
                .then(|| format!("{} needs GLIBC_{}.{}", file.display(), newest.0, newest.1))
        })
        .collect();
    assert!(newer.is_empty(), "{}", newer.join("\n"));
}

/// Debian 11's glibc (2.31, as on Ubuntu 20.04; RHEL 8 has 2.28), its
/// package pinned by hash, downloaded once and unpacked into target/.
fn bullseye_glibc() -> PathBuf {
    const DEB: &str = "libc6_2.31-13+deb11u11_amd64.deb";
    const URL: &str =
        "https://deb.debian.org/debian/pool/main/g/glibc/libc6_2.31-13+deb11u11_amd64.deb";
    const SHA256: &str = "05f7264da867b37f4c5ce49266b558ea1e81e05a9464f623152fca70f3550282";
    let dir = crate::context::target_dir().join("bullseye-glibc");
    let root = dir.join("root");
    if root.join("lib64/ld-linux-x86-64.so.2").is_symlink() {
        return root;
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("mkdir");
    let deb = dir.join(DEB);
    let fetched = std::process::Command::new("curl")
        .args(["-sSfL", "-o"])
        .arg(&deb)
        .arg(URL)
        .output()
        .expect("curl");
    assert!(fetched.status.success(), "{}", describe(&fetched));
    let sum = output_of(std::process::Command::new("sha256sum").arg(&deb));
    assert!(
        success(&sum).starts_with(SHA256),
        "{URL} changed: {}",
        success(&sum)
    );
    let unpacked = output_of(
        std::process::Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(dir.join("unpacking")),
    );
    assert!(unpacked.status.success(), "{}", describe(&unpacked));
    fs::rename(dir.join("unpacking"), &root).expect("rename");
    root
}

/// Apps packed here run on an older distribution's glibc: a root that
/// holds nothing but Debian 11's glibc and the apps. Their wheels' C++ and
/// Rust code finds the GCC runtime and zlib the app carries.
#[test]
fn runs_on_an_older_glibc() {
    let cx = TestContext::new();
    let app = cx.write_tree("batteries-app", &[("__main__.py", BATTERIES)]);
    let exe = cx.pack("batteries", &[app.to_str().expect("utf-8")]);
    let (native_app, native) = pack_native_wheels_app(&cx);
    let root = cx.path().join("root");
    let copied = output_of(cx.command("cp").arg("-a").arg(bullseye_glibc()).arg(&root));
    assert!(copied.status.success(), "{}", describe(&copied));
    for dir in ["tmp", "proc", "dev/shm"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::write(root.join("dev/null"), "").expect("a mount point");
    fs::copy(&exe, root.join("app")).expect("copy the app");
    let bundle = root.join("etc/pki/tls/certs/ca-bundle.crt");
    fs::create_dir_all(bundle.parent().expect("parent")).expect("mkdir");
    fs::copy("/etc/ssl/certs/ca-certificates.crt", &bundle).expect("copy certificates");
    let run = run_in_root(&cx, &root, &["/app"]);
    assert_eq!(success(&run), EXPECTED, "{}", describe(&run));

    fs::copy(&native, root.join("native")).expect("copy the app");
    let expected = crate::context::venv_output(&cx, &native_app).replace(
        "carried []",
        &format!("carried {}", carried_libraries(&cx, &native)),
    );
    let run = run_in_root(&cx, &root, &["/native"]);
    assert_eq!(success(&run), expected, "{}", describe(&run));
}

/// An app that compiles a C extension at run time (setuptools' `build_ext`,
/// as import hooks and binders do) gets CPython's headers, which apps
/// otherwise leave out, and the machine's compiler (the one that built
/// pyferry's CPython is hidden, as on every other machine): it builds and
/// imports its module as it does in a venv.
#[test]
fn an_app_that_compiles_c_at_run_time_carries_the_headers() {
    let cx = TestContext::new();
    let wheels = crate::context::build_wheels();
    let script = r#"
import os, sys, tempfile
from setuptools import Distribution, Extension
from setuptools.command.build_ext import build_ext

SOURCE = """
#include <Python.h>
static PyObject *cube(PyObject *self, PyObject *arg) {
    long x = PyLong_AsLong(arg);
    return PyLong_FromLong(x * x * x);
}
static PyMethodDef methods[] = {{"cube", cube, METH_O, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cube", NULL, -1, methods};
PyMODINIT_FUNC PyInit__cube(void) { return PyModule_Create(&module); }
"""

with tempfile.TemporaryDirectory() as work:
    source = os.path.join(work, "_cube.c")
    with open(source, "w") as file:
        file.write(SOURCE)
    command = build_ext(Distribution({"ext_modules": [Extension("_cube", [source])]}))
    command.build_lib = command.build_temp = work
    command.ensure_finalized()
    command.run()
    sys.path.insert(0, work)
    import _cube
    print(_cube.cube(3), os.path.basename(_cube.__file__))
"#;
    let app = cx.write_tree("compiler", &[("__main__.py", script)]);
    let find_links = [
        "--no-index",
        "--find-links",
        wheels.to_str().expect("utf-8"),
    ];
    let venv = crate::context::venv_with(
        &cx.path().join("venv"),
        &[find_links.as_slice(), &["setuptools==65.5.0"]]
            .concat()
            .iter()
            .map(std::ffi::OsStr::new)
            .collect::<Vec<_>>(),
    );
    let expected = success(
        &cx.command(venv.join("bin/python"))
            .arg(app.join("__main__.py"))
            .output()
            .expect("venv"),
    );
    let mut args = vec![app.to_str().expect("utf-8"), "setuptools==65.5.0", "--"];
    args.extend(find_links);
    let exe = cx.pack("compiling-app", &args);
    let output = cx
        .without_the_build_compiler()
        .arg(&exe)
        .output()
        .expect("unshare");
    assert_eq!(success(&output), expected);
}
