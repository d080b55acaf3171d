//! What distro packagers need: installing, pre-extraction into a read-only
//! system directory, and `inspect` telling what the runtime links.

use crate::context::{TestContext, describe, pyferry, stdout, success, version_dirs};
use crate::native::build_native_app;
use pyferry::format::Flavor;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

#[test]
fn a_system_copy_serves_every_user_without_a_user_cache() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let system = cx.path().join("root/usr/lib/fastapp/pyferry");
    let exe = cx.pack(
        "fastapp",
        &[
            "--system-cache",
            system.to_str().expect("utf-8"),
            app.to_str().expect("utf-8"),
        ],
    );

    // The package's install step (as root).
    let output = cx
        .command(&exe)
        .args(["--extract-only", "--target"])
        .arg(&system)
        .output()
        .expect("pre-extract");
    let dir = PathBuf::from(success(&output).trim_end());
    assert!(dir.starts_with(&system), "{}", dir.display());
    for path in [&system, &dir, &dir.join("fastpkg")] {
        let meta = fs::metadata(path).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o755, "{}", path.display());
        assert_eq!(meta.uid(), 0);
    }

    // Every later run uses it, and creates no per-user cache.
    let output = cx.run(&exe, &["1"]);
    let out = success(&output);
    assert!(out.contains(dir.to_str().expect("utf-8")), "{out}");
    // Its python (`sys.executable`) is the link the install step made.
    let executable = success(&cx.run_as_python(&exe, &["-c", "import sys; print(sys.executable)"]));
    assert!(
        executable.starts_with(system.to_str().expect("utf-8")),
        "{executable}"
    );
    assert!(!cx.cache_dir().exists(), "a per-user cache was made");
    assert_eq!(version_dirs(&cx.cache_dir()), Vec::<String>::new());

    // A copy that others could have written is not trusted.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o775)).expect("chmod");
    let out = success(&cx.run(&exe, &["1"]));
    assert!(
        out.contains(cx.cache_dir().to_str().expect("utf-8")),
        "{out}"
    );
    assert_eq!(version_dirs(&cx.cache_dir()).len(), 1);
}

#[test]
fn extract_only_rejects_unknown_options() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("fastapp", &[app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &["--extract-only", "--targt", "/x"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("usage: fastapp --extract-only [--target DIR]"),
        "{}",
        describe(&output)
    );
}

#[test]
fn make_install_puts_pyferry_and_its_docs_under_destdir() {
    let cx = TestContext::new();
    let destdir = cx.path().join("stage");
    // The binary under test, not whatever the default target dir holds.
    let output = cx
        .command("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-o", "build", "install", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("PYFERRY={}", pyferry()))
        .arg(format!("FLAVOR={}", Flavor::CURRENT))
        .arg(format!("KIT={}", cx.path().join("kit").display()))
        .output()
        .expect("make install");
    assert!(output.status.success(), "{}", describe(&output));
    let installed = destdir.join("usr/bin/pyferry");
    assert_eq!(
        fs::metadata(&installed).expect("installed").mode() & 0o777,
        0o755
    );
    // Standalone: pyferry with its kit, which carries the bare runtime
    // built beside the binary under test; system: that binary, and the
    // bare runtime beside it.
    let bare = fs::read(env!("CARGO_BIN_EXE_pyferry-runtime")).expect("read");
    let runtime = match Flavor::CURRENT {
        Flavor::Standalone => {
            let read = cx.python(&[
                "-c",
                "import sys, zipfile; sys.stdout.buffer.write(\
                 zipfile.ZipFile(sys.argv[1]).read('.pyferry/runtime'))",
                installed.to_str().expect("utf-8"),
            ]);
            assert!(read.status.success(), "{}", describe(&read));
            read.stdout
        }
        Flavor::System => {
            assert!(
                fs::read(&installed).expect("read") == fs::read(pyferry()).expect("read"),
                "make install installed another pyferry than the one under test"
            );
            fs::read(destdir.join("usr/bin/pyferry-runtime")).expect("read")
        }
    };
    assert!(
        runtime == bare,
        "make install installed another runtime than the one under test's"
    );
    assert!(destdir.join("usr/share/doc/pyferry/README.md").is_file());
    // The installed copy works as the builder.
    let version = success(
        &cx.command(&installed)
            .arg("--version")
            .output()
            .expect("run"),
    );
    assert!(version.starts_with("pyferry "), "{version}");
}

#[test]
fn inspect_shows_what_a_packager_needs() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack(
        "fastapp",
        &[
            "--system-cache",
            "/usr/lib/fastapp/pyferry",
            app.to_str().expect("utf-8"),
        ],
    );
    let text = stdout(
        &cx.command(pyferry())
            .arg("inspect")
            .arg(&exe)
            .output()
            .expect("inspect"),
    );
    // The system flavor links the distro's libpython; standalone, glibc only.
    let links = match Flavor::CURRENT {
        Flavor::System => "links:         libpython3.",
        Flavor::Standalone => "links:         libm.so.6, libc.so.6",
    };
    assert!(text.contains(links), "{text}");
    assert!(
        text.contains("system cache:  /usr/lib/fastapp/pyferry"),
        "{text}"
    );
    assert!(
        text.contains("fastpkg.libs/libvendored-1a2b3c4d.so"),
        "{text}"
    );
    let flavor = format!("flavor:        {}", Flavor::CURRENT);
    assert!(text.contains(&flavor), "{text}");
}
