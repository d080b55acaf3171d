//! An older distribution as its users have it: Debian 11 (glibc 2.31, as
//! on Ubuntu 20.04; Python 3.9 and pip 20.3), made once by debootstrap into
//! `target/bullseye-root`. pyferry's wheel installs there with pip and
//! packs, and apps packed here run there.

use crate::context::{TestContext, describe, output_of, success, target_dir};
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
