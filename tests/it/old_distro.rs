//! An older distribution as its users have it: Debian 11 (glibc 2.31, as
//! on Ubuntu 20.04; Python 3.9 and pip 20.3), made once by debootstrap into
//! `target/bullseye-root`. pyferry's wheel installs there with pip and
//! packs, and apps packed here run there.

use crate::context::{TestContext, describe, output_of, stderr, success, target_dir, wheel_dir};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Beyond Debian's minimal base: Python and pip to install the wheel with,
/// and the desktop's libX11 for tkinter apps.
const PACKAGES: &str = "python3-venv,python3-pip,libx11-6";

/// The root, made once and shared by every test, which changes nothing in
/// it (`in_bullseye` gives each run an empty /tmp, /root and /opt).
/// debootstrap checks every package against the suite's signed `Release`.
pub fn bullseye_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = target_dir().join("bullseye-root");
        let root = dir.join("root");
        let complete = dir.join(format!("complete-{PACKAGES}"));
        if complete.exists() {
            return root;
        }
        let _ = fs::remove_dir_all(&dir);
        let partial = dir.join("partial");
        fs::create_dir_all(&dir).expect("mkdir");
        let made = output_of(
            Command::new("debootstrap")
                .args([
                    "--variant=minbase",
                    &format!("--include={PACKAGES}"),
                    "bullseye",
                ])
                .arg(&partial)
                .arg("https://deb.debian.org/debian"),
        );
        assert!(made.status.success(), "debootstrap: {}", describe(&made));
        fs::create_dir(partial.join("work")).expect("a mount point");
        fs::rename(&partial, &root).expect("rename");
        fs::write(&complete, "").expect("mark");
        root
    })
}

/// `script` (sh) run as root in the Debian 11 root, in a mount namespace
/// of its own: `dir` at /work, /proc, empty /tmp, /root, /opt and /dev/shm,
/// and the X server sockets of /tmp/.X11-unix.
pub fn in_bullseye(cx: &TestContext, dir: &Path, script: &str) -> Command {
    let setup = "set -e; r=\"$0\"; mount -t proc proc \"$r/proc\"; \
                 for d in tmp root opt dev/shm; do mount -t tmpfs tmpfs \"$r/$d\"; done; \
                 mount --bind \"$1\" \"$r/work\"; \
                 if [ -d /tmp/.X11-unix ]; then mkdir \"$r/tmp/.X11-unix\"; \
                 mount --bind /tmp/.X11-unix \"$r/tmp/.X11-unix\"; fi; \
                 exec chroot \"$r\" /bin/sh -c \"$2\"";
    let mut command = cx.command("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", setup])
        .arg(bullseye_root())
        .arg(dir)
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", "/root");
    command
}

/// What an app needs of the system beyond the interpreter: OpenSSL,
/// SQLite, libffi, liblzma, mpdecimal, readline.
const SYSTEM_APP: &str = "import ctypes, decimal, lzma, readline, sqlite3, ssl, sys\n\
    print(sys.version_info[:3], sys.argv[1:])\n\
    context = ssl.create_default_context()\n\
    print(ssl.OPENSSL_VERSION, context.verify_mode, context.check_hostname)\n\
    print(sqlite3.sqlite_version, sqlite3.connect(':memory:').execute('select 6 * 7').fetchone())\n\
    print(ctypes.CDLL(None).strlen(b'four'), decimal.Decimal(1) / 8)\n\
    print(lzma.decompress(lzma.compress(b'x' * 1000)) == b'x' * 1000)\n\
    readline.add_history('line')\n\
    print(readline.get_current_history_length())\n";

/// On Debian 11, pip installs pyferry's wheel (tagged for glibc 2.17), and
/// the installed pyferry packs an app that runs there as python runs it
/// here.
#[test]
fn pyferrys_wheel_installs_and_packs_on_debian_11() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", SYSTEM_APP)]);
    let wheel = crate::kit::wheel();
    let name = wheel.file_name().expect("a file name");
    fs::copy(wheel, cx.path().join(name)).expect("copy the wheel");
    let script = app.join("__main__.py");
    let expected = success(&cx.python(&[script.as_os_str(), "a".as_ref(), "b c".as_ref()]));
    let script = format!(
        "set -e; python3 -m venv /opt/venv; \
         /opt/venv/bin/pip install --quiet --no-index '/work/{}' >&2; \
         cd /tmp && /opt/venv/bin/pyferry pack -o /tmp/app /work/app >&2; \
         exec /tmp/app a 'b c'",
        name.to_string_lossy()
    );
    let run = output_of(&mut in_bullseye(&cx, cx.path(), &script));
    assert_eq!(success(&run), expected, "{}", describe(&run));
}

/// The glibc floor `pyferry inspect` reports for `exe`: (version, file).
fn glibc_floor(cx: &TestContext, exe: &Path) -> ((u32, u32), String) {
    let report = cx.inspect_json(exe);
    let version = report["glibc"]["version"].as_str().expect("a glibc floor");
    let (major, minor) = version.split_once('.').expect("X.Y");
    let needed_by = report["glibc"]["needed_by"].as_str().expect("a file");
    (
        (
            major.parse().expect("a number"),
            minor.parse().expect("a number"),
        ),
        needed_by.to_owned(),
    )
}

/// Debian 11's glibc.
const BULLSEYE_GLIBC: (u32, u32) = (2, 31);

const CRYPTO_APP: &str = "from cryptography.fernet import Fernet\n\
    token = Fernet(b'0' * 43 + b'=').encrypt(b'secret')\n\
    print(Fernet(b'0' * 43 + b'=').decrypt(token))\n";

/// pip chooses, for this machine, wheels built for a newer glibc than
/// Debian 11's (cryptography's): pack says so, `inspect` shows the floor,
/// and on Debian 11 the app says so before it starts, naming the file and
/// both versions, instead of an import error from the dynamic linker. Here
/// it runs as in its venv.
#[test]
fn an_app_whose_wheels_need_a_newer_glibc_says_so_on_an_older_one() {
    let cx = TestContext::new();
    let app = cx.write_tree("crypto-app", &[("__main__.py", CRYPTO_APP)]);
    let wheels = wheel_dir().to_str().expect("utf-8");
    let packed = cx.pack_output(
        "crypto",
        &[
            app.to_str().expect("utf-8"),
            "cryptography",
            "--",
            "--no-index",
            "--find-links",
            wheels,
        ],
    );
    assert!(packed.status.success(), "{}", describe(&packed));
    let exe = cx.path().join("crypto");
    let ((major, minor), needed_by) = glibc_floor(&cx, &exe);
    assert!(
        (major, minor) > BULLSEYE_GLIBC,
        "the wheels pip chose need glibc {major}.{minor}: no test of an older system"
    );
    let note = format!("the app runs on Linux with glibc {major}.{minor} or newer: `{needed_by}`");
    assert!(stderr(&packed).contains(&note), "{}", describe(&packed));
    assert_eq!(
        success(&cx.run(&exe, &[] as &[&str])),
        crate::context::venv_output(&cx, &app)
    );

    let run = output_of(&mut in_bullseye(&cx, cx.path(), "exec /work/crypto"));
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(run.stdout.is_empty(), "{}", describe(&run));
    let (bullseye_major, bullseye_minor) = BULLSEYE_GLIBC;
    for expected in [
        format!("crypto: error: `crypto` needs glibc {major}.{minor} or newer (`{needed_by}`"),
        format!("this system has glibc {bullseye_major}.{bullseye_minor}"),
        "pyferry pack --glibc".to_owned(),
    ] {
        assert!(
            stderr(&run).contains(&expected),
            "{expected}: {}",
            describe(&run)
        );
    }
}

const ACCELERATED_APP: &str = "import orjson, pydantic_core\n\
    print(orjson.dumps({'a': [1, 2]}))\n\
    print(pydantic_core.SchemaValidator({'type': 'int'}).validate_python('42'))\n";

/// `--glibc 2.17`: pip takes wheels built for glibc 2.17 (orjson's and
/// pydantic-core's manylinux2014) and the app runs on Debian 11 as in its
/// venv here; a project with no such wheel (numpy, here) fails in pip with
/// a hint, and a native file of the app's own that needs a newer glibc is
/// refused; nothing is written either way.
#[test]
fn glibc_option_packs_for_older_systems() {
    let cx = TestContext::new();
    let wheels = wheel_dir().to_str().expect("utf-8");
    let app = cx.write_tree("fast-app", &[("__main__.py", ACCELERATED_APP)]);
    let offline = ["--", "--no-index", "--find-links", wheels];
    let mut args = vec![
        "--glibc",
        "2.17",
        app.to_str().expect("utf-8"),
        "orjson",
        "pydantic-core",
    ];
    args.extend(offline);
    let exe = cx.pack("fast", &args);
    assert_eq!(glibc_floor(&cx, &exe).0, (2, 17));
    let run = output_of(&mut in_bullseye(&cx, cx.path(), "exec /work/fast"));
    assert_eq!(success(&run), crate::context::venv_output(&cx, &app));

    let mut args = vec!["--glibc", "2.17", app.to_str().expect("utf-8"), "numpy"];
    args.extend(offline);
    let refused = cx.pack_output("numeric", &args);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    for expected in [
        "No matching distribution found for numpy",
        "with `--glibc 2.17` it takes only wheels",
    ] {
        assert!(
            stderr(&refused).contains(expected),
            "{expected}: {}",
            describe(&refused)
        );
    }
    assert!(!cx.path().join("numeric").exists());

    // A native file of the app's own, from a wheel built for a newer glibc.
    let numpy_wheel = fs::read_dir(wheel_dir())
        .expect("the wheels")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("numpy-"))
        })
        .expect("numpy's wheel");
    let mut wheel =
        zip::ZipArchive::new(fs::File::open(&numpy_wheel).expect("open")).expect("a zip");
    let module = (0..wheel.len())
        .map(|index| {
            let entry = wheel.by_index(index).expect("an entry");
            entry.name().expect("a name").into_owned()
        })
        .find(|name| name.starts_with("numpy/_core/_multiarray_umath.") && name.ends_with(".so"))
        .expect("numpy's core module");
    let own = cx.write_tree("own-app", &[("__main__.py", "print('hello')\n")]);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut wheel.by_name(&module).expect("the module"), &mut bytes)
        .expect("read");
    fs::write(own.join("core.so"), bytes).expect("write");
    let refused = cx.pack_output("own", &["--glibc", "2.17", own.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        stderr(&refused).contains("`core.so` needs glibc 2.")
            && stderr(&refused).contains("newer than `--glibc 2.17` allows"),
        "{}",
        describe(&refused)
    );
    assert!(!cx.path().join("own").exists());

    let refused = cx.pack_output("bad", &["--glibc", "2.5", own.to_str().expect("utf-8")]);
    assert!(
        stderr(&refused).contains("`2.5` is not a glibc version"),
        "{}",
        describe(&refused)
    );
}
