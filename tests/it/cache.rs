//! The cache under concurrency, crashes, hostile directories, odd homes,
//! and across app versions.

use crate::context::{
    TestContext, describe, middle_of_entry, pyferry, stderr, stdout, success, version_dirs,
};
use crate::native::build_native_app;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The native test app plus `megabytes` of incompressible data in its
/// package, so that extracting it takes a while.
fn big_native_app(cx: &TestContext, megabytes: usize) -> PathBuf {
    let app = build_native_app(cx);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..megabytes << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(app.join("fastpkg/blob.bin"), data).expect("write blob");
    app
}

/// Entries of the cache root whose names contain `.tmp-`.
fn debris(root: &Path) -> Vec<String> {
    fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sixteen_simultaneous_first_runs_extract_once() {
    let cx = TestContext::new();
    let app = big_native_app(&cx, 16);
    let exe = cx.pack("crowd", &[app.to_str().expect("utf-8")]);
    let children: Vec<Child> = (0..16)
        .map(|i| {
            cx.command(&exe)
                .arg(i.to_string())
                .env("PYFERRY_DEBUG", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|child| child.wait_with_output().expect("wait"))
        .collect();
    let mut extractions = 0;
    for (i, output) in outputs.iter().enumerate() {
        let out = success(output);
        assert_eq!(out.lines().next(), Some((3 * (6 + i)).to_string().as_str()));
        extractions += stderr(output).matches("pyferry[debug]: extracted").count();
    }
    assert_eq!(extractions, 1, "exactly one process extracts");
    assert_eq!(debris(&cx.cache_dir()), Vec::<String>::new());
    assert_eq!(version_dirs(&cx.cache_dir()).len(), 1);
}

/// The native test app packed as `name`, its cache key, and its cache root
/// made (private) before the app's first run.
fn native_app_in_a_private_root(cx: &TestContext, name: &str) -> (PathBuf, String) {
    let app = build_native_app(cx);
    let exe = cx.pack(name, &[app.to_str().expect("utf-8")]);
    let key = cache_key(cx, &exe);
    fs::create_dir_all(cx.cache_dir()).expect("mkdir");
    fs::set_permissions(cx.cache_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    (exe, key)
}

#[test]
fn a_waiting_process_says_why_it_waits() {
    let cx = TestContext::new();
    let (exe, key) = native_app_in_a_private_root(&cx, "waiter");
    // Another "extractor" holds the lock until the app says it waits.
    let lock = File::create(cx.cache_dir().join(format!("{key}.lock"))).expect("lock file");
    lock.lock().expect("lock");
    let mut child = cx
        .command(&exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut said = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut said)
        .expect("read stderr");
    lock.unlock().expect("unlock");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        said.starts_with("waiter: waiting for another process to finish extracting"),
        "{said:?}"
    );
}

fn cache_key(cx: &TestContext, exe: &Path) -> String {
    let report = cx.inspect_json(exe);
    format!(
        "{}-{}",
        report["name"].as_str().expect("name"),
        &report["archive_hash"].as_str().expect("hash")[..16]
    )
}

/// Starts a first run of `exe` (on an empty cache) and SIGKILLs it after
/// `delay_ms`.
fn first_run_killed_after(cx: &TestContext, exe: &Path, delay_ms: u64) {
    let _ = fs::remove_dir_all(cx.cache_dir());
    let mut child = cx
        .command(exe)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    sleep(Duration::from_millis(delay_ms));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
}

#[test]
fn a_kill_at_any_moment_leaves_nothing_trusted() {
    let cx = TestContext::new();
    let app = big_native_app(&cx, 48);
    let exe = cx.pack("killed", &[app.to_str().expect("utf-8")]);
    let key = cache_key(&cx, &exe);
    let root = cx.cache_dir();
    let mut killed_mid_extraction = 0;
    for delay_ms in [0, 5, 10, 20, 40, 60, 90, 130, 180, 250] {
        first_run_killed_after(&cx, &exe, delay_ms);
        if !debris(&root).is_empty() {
            killed_mid_extraction += 1;
        }
        // A version directory exists only complete.
        let dir = root.join(&key);
        assert!(
            !dir.exists() || dir.join(".pyferry-complete").exists(),
            "after {delay_ms} ms"
        );
        // The next run succeeds and cleans up after the dead one.
        let output = cx.run(&exe, &["1"]);
        assert_eq!(
            stdout(&output).lines().next(),
            Some("21"),
            "{}",
            describe(&output)
        );
        assert_eq!(debris(&root), Vec::<String>::new(), "after {delay_ms} ms");
    }
    assert!(
        killed_mid_extraction > 0,
        "no kill landed during an extraction"
    );
}

#[test]
fn created_directories_are_private() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("private", &[app.to_str().expect("utf-8")]);
    let root = cx.path().join("fresh/cache/root");
    let output = cx
        .command(&exe)
        .env("PYFERRY_CACHE_DIR", &root)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", describe(&output));
    let mut pending = vec![cx.path().join("fresh")];
    while let Some(dir) = pending.pop() {
        let mode = fs::metadata(&dir).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for entry in fs::read_dir(&dir).expect("list").flatten() {
            if entry.file_type().expect("type").is_dir() {
                pending.push(entry.path());
            }
        }
    }
}

#[test]
fn a_cache_root_owned_by_someone_else_is_refused_or_skipped() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("owner", &[app.to_str().expect("utf-8")]);
    let foreign = cx.path().join("foreign");
    fs::create_dir(&foreign).expect("mkdir");
    fs::set_permissions(&foreign, fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&foreign, Some(12345), Some(12345)).expect("chown");

    let output = cx
        .command(&exe)
        .env("PYFERRY_CACHE_DIR", &foreign)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("it is owned by uid 12345"),
        "{}",
        describe(&output)
    );

    // The default root is skipped for the private fallback.
    let runtime = cx.path().join("runtime");
    fs::create_dir(&runtime).expect("mkdir");
    let xdg = cx.path().join("xdg");
    fs::create_dir(&xdg).expect("mkdir");
    fs::rename(&foreign, xdg.join("pyferry")).expect("move");
    let output = cx
        .command(&exe)
        .env_remove("PYFERRY_CACHE_DIR")
        .env("XDG_CACHE_HOME", &xdg)
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["--extract-only"])
        .output()
        .expect("run");
    let dir = success(&output);
    assert!(
        dir.starts_with(runtime.join("pyferry").to_str().expect("utf-8")),
        "{dir}"
    );
}

/// Runs `script` in a private mount namespace (we are root in CI), so that
/// mounts vanish with it.
fn in_mount_namespace(cx: &TestContext, script: &str) -> Command {
    let mut command = cx.command("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", script]);
    command
}

#[test]
fn noexec_and_read_only_homes_fall_back() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("mounts", &[app.to_str().expect("utf-8")]);
    let home = cx.path().join("home");
    let runtime = cx.path().join("runtime");
    fs::create_dir(&runtime).expect("mkdir");
    // After `setup` (mounts), run the app with the default cache roots and
    // a runtime dir to fall back to; `$0` is the app.
    let run = |setup: &str, then: &str| {
        in_mount_namespace(&cx, &format!("{setup} && {then}"))
            .arg(&exe)
            .env_remove("PYFERRY_CACHE_DIR")
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .expect("unshare")
    };
    let home = home.display();

    // noexec: dlopen would fail with "failed to map segment".
    let noexec = format!("mount -t tmpfs -o noexec tmpfs {home}");
    let output = run(&noexec, "\"$0\" 2 && \"$0\" --extract-only");
    let out = success(&output);
    assert_eq!(out.lines().next(), Some("24"), "{}", describe(&output));
    assert!(out.contains(runtime.to_str().expect("utf-8")), "{out}");

    // An explicit PYFERRY_CACHE_DIR on noexec is an error that says so.
    let output = run(&noexec, &format!("PYFERRY_CACHE_DIR={home}/c \"$0\""));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("mounted `noexec`"),
        "{}",
        describe(&output)
    );

    // A read-only HOME.
    let read_only = format!("mount --bind {home} {home} && mount -o remount,bind,ro {home}");
    let output = run(&read_only, "\"$0\" 2");
    assert_eq!(
        stdout(&output).lines().next(),
        Some("24"),
        "{}",
        describe(&output)
    );
}

/// A complete cache on a read-only filesystem is used as it is: the lock
/// file cannot be opened for writing, and need not be.
#[test]
fn a_complete_cache_on_a_read_only_filesystem_is_used() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("frozen-cache", &[app.to_str().expect("utf-8")]);
    let expected = success(&cx.run(&exe, &["2"]));
    let cache = cx.cache_dir();
    let cache = cache.display();
    let script = format!(
        "mount --bind {cache} {cache} && mount -o remount,bind,ro {cache} && exec \"$0\" 2"
    );
    let output = in_mount_namespace(&cx, &script)
        .arg(&exe)
        .output()
        .expect("unshare");
    assert_eq!(success(&output), expected, "{}", describe(&output));
}

/// Regression: a regular file where a version directory should be made
/// every start fail with "cannot remove ... Not a directory".
#[test]
fn a_file_in_the_place_of_a_version_directory_is_replaced() {
    let cx = TestContext::new();
    let (exe, key) = native_app_in_a_private_root(&cx, "squatted");
    fs::write(cx.cache_dir().join(&key), "not a directory").expect("write");
    let output = cx.run(&exe, &["2"]);
    assert_eq!(
        stdout(&output).lines().next(),
        Some("24"),
        "{}",
        describe(&output)
    );
    assert!(cx.cache_dir().join(&key).is_dir());
}

/// A packed app whose first run was killed mid-extraction, leaving debris
/// in the cache (first runs are killed sooner and later until one does).
fn killed_mid_extraction(cx: &TestContext) -> PathBuf {
    let app = big_native_app(cx, 8);
    let exe = cx.pack("killed", &[app.to_str().expect("utf-8")]);
    let mut delay_ms = 0;
    while debris(&cx.cache_dir()).is_empty() {
        assert!(delay_ms < 2000, "no kill landed during an extraction");
        first_run_killed_after(cx, &exe, delay_ms);
        delay_ms += 5;
    }
    exe
}

/// Regression: what a killed first run leaves (`.<key>.tmp-<pid>`, 90 MB
/// for a numpy app) was neither listed nor pruned, and stayed forever once
/// the app was updated.
#[test]
fn debris_of_killed_extractions_is_listed_and_pruned() {
    let cx = TestContext::new();
    killed_mid_extraction(&cx);
    let root = cx.cache_dir();
    let cache = |command: &str| {
        success(
            &cx.command(pyferry())
                .args(["cache", command])
                .output()
                .expect("pyferry cache"),
        )
    };
    assert!(cache("list").contains("unfinished"), "{}", cache("list"));
    assert!(cache("prune").contains("removed"));
    assert_eq!(debris(&root), Vec::<String>::new());
    assert!(!cache("list").contains("unfinished"));
}

/// Regression: the debris of a killed first run of one version stayed until
/// `pyferry cache prune`, when no later run extracted that same version (the
/// app was updated meanwhile). The next first run of any version removes
/// it, unless its lock is held (then it may be live).
#[test]
fn debris_of_another_versions_killed_extraction_is_removed_by_the_next_first_run() {
    let cx = TestContext::new();
    let exe = killed_mid_extraction(&cx);
    let root = cx.cache_dir();
    let left = debris(&root);
    // Another app with native code of its own (extracted in both flavors).
    let other = build_native_app(&cx);
    fs::write(other.join("fastpkg/other.txt"), "another version").expect("write");
    let other = cx.pack("other", &[other.to_str().expect("utf-8")]);

    // Its lock held (by a process extracting it, say): kept.
    let killed_key = cache_key(&cx, &exe);
    let lock = File::open(root.join(format!("{killed_key}.lock"))).expect("lock file");
    lock.lock().expect("lock");
    success(&cx.run(&other, &["1"]));
    assert_eq!(debris(&root), left);
    drop(lock);

    // Nobody holds it: the next first run of another version removes it.
    for key in version_dirs(&root) {
        fs::remove_dir_all(root.join(key)).expect("remove");
    }
    success(&cx.run(&other, &["1"]));
    assert_eq!(debris(&root), Vec::<String>::new());
}

/// Each path an app ran from has its python link (`sys.executable`);
/// `pyferry cache prune` removes those whose executable is gone, and
/// keeps the others.
#[test]
fn python_links_of_executables_that_are_gone_are_pruned() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[("__main__.py", "import sys\nprint(sys.executable)\n")],
    );
    let exe = cx.pack("linked", &[app.to_str().expect("utf-8")]);
    let moved = cx.path().join("moved");
    fs::copy(&exe, &moved).expect("copy");
    fs::set_permissions(&moved, fs::Permissions::from_mode(0o755)).expect("chmod");
    let kept = PathBuf::from(success(&cx.run(&exe, &[] as &[&str])).trim_end());
    let gone = PathBuf::from(success(&cx.run(&moved, &[] as &[&str])).trim_end());
    assert_ne!(kept, gone);
    assert_eq!(fs::read_link(&gone).expect("link"), moved);
    fs::remove_file(&moved).expect("remove");
    let pruned = success(
        &cx.command(pyferry())
            .args(["cache", "prune"])
            .output()
            .expect("prune"),
    );
    assert!(
        pruned.contains(&format!("python link to `{}`  removed", moved.display())),
        "{pruned}"
    );
    assert!(!gone.exists(), "{}", gone.display());
    assert_eq!(fs::read_link(&kept).expect("link"), exe);
}

#[test]
fn old_versions_are_pruned_unless_in_use() {
    let cx = TestContext::new();
    let version = |n: u32| {
        let app = build_native_app(&cx);
        fs::write(app.join("fastpkg/version.txt"), n.to_string()).expect("write");
        let main = fs::read_to_string(app.join("__main__.py")).expect("read");
        let sleeper = "import sys, time\nif sys.argv[1:] == ['sleep']:\n    \
                       print('ready', flush=True)\n    time.sleep(30)\n";
        fs::write(app.join("__main__.py"), format!("{sleeper}{main}")).expect("write");
        cx.pack(
            &format!("v{n}"),
            &["--name", "app", app.to_str().expect("utf-8")],
        )
    };
    let (v1, v2, v3) = (version(1), version(2), version(3));
    let root = cx.cache_dir();
    success(&cx.run(&v1, &["1"]));
    assert_eq!(version_dirs(&root).len(), 1);
    success(&cx.run(&v2, &["1"]));
    assert_eq!(
        version_dirs(&root).len(),
        1,
        "v1 is pruned when v2 is extracted"
    );

    // v2 keeps running while v3 is extracted: it is not pruned.
    let mut running = cx
        .command(&v2)
        .arg("sleep")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(running.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line, "ready\n");
    success(&cx.run(&v3, &["1"]));
    assert_eq!(version_dirs(&root).len(), 2, "v2 is in use");
    let listing = success(
        &cx.command(pyferry())
            .args(["cache", "list"])
            .output()
            .expect("list"),
    );
    assert!(
        listing.contains("in use") && listing.contains("unused"),
        "{listing}"
    );

    running.kill().expect("kill");
    running.wait().expect("wait");
    let pruned = success(
        &cx.command(pyferry())
            .args(["cache", "prune"])
            .output()
            .expect("prune"),
    );
    assert_eq!(pruned.matches("removed").count(), 2, "{pruned}");
    assert_eq!(version_dirs(&root), Vec::<String>::new());
    // --extract-only still works after a prune.
    let started = Instant::now();
    let dir = success(&cx.run(&v3, &["--extract-only"]));
    assert!(Path::new(dir.trim_end()).join("fastpkg").is_dir());
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Whoever can rename entries of a directory above the cache root can swap
/// the root for a tree of their own between pyferry's checks and its use:
/// such roots are refused (sticky directories such as /tmp excepted), and
/// nothing of the app runs from them.
#[test]
fn roots_below_directories_others_control_are_refused() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("ancestors", &[app.to_str().expect("utf-8")]);
    let run_below = |parent: &Path| {
        cx.command(&exe)
            .env("PYFERRY_CACHE_DIR", parent.join("cache"))
            .output()
            .expect("run")
    };

    let shared = cx.path().join("shared");
    fs::create_dir(&shared).expect("mkdir");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).expect("chmod");
    let refused = run_below(&shared);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        stderr(&refused).contains("is writable by group or others (mode 777) and not sticky"),
        "{}",
        describe(&refused)
    );
    assert_eq!(version_dirs(&shared.join("cache")), Vec::<String>::new());

    // Deeper: a parent's parent owned by another user.
    let foreign = cx.path().join("foreign");
    fs::create_dir_all(foreign.join("mine")).expect("mkdir");
    std::os::unix::fs::chown(&foreign, Some(12345), Some(12345)).expect("chown");
    let refused = run_below(&foreign.join("mine"));
    assert!(
        stderr(&refused).contains("belongs to uid 12345"),
        "{}",
        describe(&refused)
    );

    // Sticky, like /tmp: others cannot rename what is ours there.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).expect("chmod");
    success(&run_below(&shared));
    assert_eq!(version_dirs(&shared.join("cache")).len(), 1);
}

/// A start that opened the lock file, then was held up before locking it
/// while a pruner removed the version and its lock file, another start
/// extracted it again and a second pruner came: the held-up start must not
/// run on a lock that protects nothing (the second pruner would remove its
/// files). `strace` holds up every `flock` of the start by two seconds.
#[test]
fn a_start_held_up_before_its_lock_is_not_pruned_under_it() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let main = fs::read_to_string(app.join("__main__.py")).expect("read");
    let waiter = "import os, sys\n\
        if sys.argv[1:] == ['wait']:\n    \
        print('ready', flush=True)\n    sys.stdin.readline()\n    \
        import fastpkg\n    \
        print(open(os.path.join(os.path.dirname(fastpkg.__file__), 'table.dat')).read())\n    \
        sys.exit()\n";
    fs::write(app.join("__main__.py"), format!("{waiter}{main}")).expect("write");
    let exe = cx.pack("heldup", &[app.to_str().expect("utf-8")]);
    success(&cx.run(&exe, &["1"]));
    let prune = || {
        success(
            &cx.command(pyferry())
                .args(["cache", "prune"])
                .output()
                .expect("prune"),
        )
    };

    let mut held_up = cx
        .command("strace")
        .args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "inject=flock:delay_enter=2000000",
        ])
        .arg(&exe)
        .arg("wait")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (apt-get install strace)");
    sleep(Duration::from_millis(500));
    prune(); // Removes the version and its lock file.
    success(&cx.run(&exe, &["1"])); // Extracts it again, with a new lock file.
    let mut line = String::new();
    BufReader::new(held_up.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "ready\n");
    let pruned = prune();
    assert!(
        !pruned.contains("removed"),
        "the running app's version: {pruned}"
    );
    std::io::Write::write_all(&mut held_up.stdin.take().expect("stdin"), b"go\n").expect("go");
    let output = held_up.wait_with_output().expect("wait");
    let data = fs::read_to_string(app.join("fastpkg/table.dat")).expect("read");
    assert_eq!(
        stdout(&output),
        format!("{data}\n"),
        "{}",
        describe(&output)
    );
}

/// A copy of `exe` at `to` with one byte changed: the byte after the last
/// occurrence of `after` in the file.
fn damaged_copy(exe: &Path, to: &Path, at: impl Fn(&[u8]) -> usize) {
    let mut bytes = fs::read(exe).expect("read");
    let at = at(&bytes);
    bytes[at] ^= 0x01;
    fs::write(to, bytes).expect("write");
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Copies damaged after packing (a flipped bit inside the native archive's
/// compressed stream, in a compressed pyc) are refused before anything of
/// them is published or run: the genuine version's cache stays good for
/// intact copies, and an intact copy elsewhere runs.
#[test]
fn a_damaged_copy_neither_poisons_the_cache_nor_runs() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let main = fs::read_to_string(app.join("__main__.py")).expect("read");
    // A module that stays in the archive (a zstd pyc, read in place).
    fs::write(
        app.join("greeting.py"),
        "MESSAGE = 'the intact copy of the app'\n",
    )
    .expect("write");
    fs::write(
        app.join("__main__.py"),
        format!("import greeting\nprint(greeting.MESSAGE)\n{main}"),
    )
    .expect("write");
    let exe = cx.pack("copies", &[app.to_str().expect("utf-8")]);
    let damaged_native = cx.path().join("damaged-native");
    damaged_copy(&exe, &damaged_native, |bytes| {
        middle_of_entry(bytes, pyferry::format::NATIVE_ARCHIVE)
    });
    let damaged_code = cx.path().join("damaged-code");
    damaged_copy(&exe, &damaged_code, |bytes| {
        middle_of_entry(bytes, "greeting.pyc")
    });
    let refused = |output: &std::process::Output| {
        !output.status.success()
            && stderr(output).contains("does not match the hash it was packed with")
    };

    // First on an empty cache: nothing published.
    let output = cx.run(&damaged_native, &["1"]);
    assert!(refused(&output), "{}", describe(&output));
    assert_eq!(version_dirs(&cx.cache_dir()), Vec::<String>::new());
    let intact = success(&cx.run(&exe, &["1"]));
    assert!(
        intact.starts_with("the intact copy of the app\n"),
        "{intact}"
    );

    // Then on the complete cache, which the damaged copy shares a key with.
    let output = cx.run(&damaged_code, &["1"]);
    assert!(refused(&output), "{}", describe(&output));
    let output = cx.run(&damaged_native, &["1"]);
    assert!(refused(&output), "{}", describe(&output));
    assert_eq!(success(&cx.run(&exe, &["1"])), intact);
    let elsewhere = cx.path().join("elsewhere");
    fs::copy(&exe, &elsewhere).expect("copy");
    assert_eq!(success(&cx.run(&elsewhere, &["1"])), intact);

    // Four bytes appended, which zipimport would take for the end record.
    let mut bytes = fs::read(&exe).expect("read");
    bytes.extend(b"PK\x05\x06");
    let appended = cx.path().join("appended");
    fs::write(&appended, bytes).expect("write");
    fs::set_permissions(&appended, fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = cx.run(&appended, &["1"]);
    assert!(
        !output.status.success() && stderr(&output).contains("bytes were appended to it"),
        "{}",
        describe(&output)
    );
}

/// Another user who can rename entries of the root's parent swaps the root
/// for a link to a tree of theirs (a copy of the genuine version whose
/// data file they changed) right after the start checked it: `strace`
/// reports the check, and holds up every `readlink` after the first
/// (`/proc/self/exe`) by a second, so that the swap lands before the
/// root's path is resolved. The start must refuse, and never run what the
/// other user planted.
#[test]
fn a_root_swapped_while_it_is_checked_is_refused() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("swapped", &[app.to_str().expect("utf-8")]);
    success(&cx.run(&exe, &["1"]));
    let key = version_dirs(&cx.cache_dir()).remove(0);
    let planted = cx.path().join("planted");
    fs::create_dir(&planted).expect("mkdir");
    let copied = cx
        .command("cp")
        .arg("-a")
        .arg(cx.cache_dir().join(&key))
        .arg(planted.join(&key))
        .output()
        .expect("cp");
    success(&copied);
    fs::write(
        planted.join(&key).join("fastpkg/table.dat"),
        "planted by another user\n",
    )
    .expect("write");
    let chown = cx
        .command("chown")
        .args(["-R", "12345:12345"])
        .arg(&planted)
        .output()
        .expect("chown");
    success(&chown);

    let shared = cx.path().join("shared");
    fs::create_dir_all(shared.join("cache")).expect("mkdir");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).expect("chmod");
    fs::set_permissions(shared.join("cache"), fs::Permissions::from_mode(0o700)).expect("chmod");
    // strace reports each check of the root on its stderr as it is made;
    // the first one is the signal to swap.
    let mut victim = cx
        .command("strace")
        .args([
            "-f",
            "-e",
            "trace=openat,statx,newfstatat,lstat,stat,readlink",
            "-e",
            "inject=readlink:delay_enter=1000000:when=2+",
        ])
        .arg(&exe)
        .arg("1")
        .env("PYFERRY_CACHE_DIR", shared.join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (apt-get install strace)");
    let trace = BufReader::new(victim.stderr.take().expect("stderr"));
    let root = format!("{}\"", shared.join("cache").display());
    let watcher = std::thread::spawn(move || {
        let mut swapped = false;
        let mut text = String::new();
        for line in trace.lines() {
            let line = line.expect("read");
            if !swapped && line.contains(&root) {
                fs::rename(shared.join("cache"), shared.join("mine")).expect("rename");
                std::os::unix::fs::symlink(&planted, shared.join("cache")).expect("link");
                swapped = true;
            }
            text.push_str(&line);
            text.push('\n');
        }
        (swapped, text)
    });
    let status = victim.wait().expect("wait");
    let (swapped, err) = watcher.join().expect("the watcher");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut victim.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    assert!(swapped, "the root was never checked:\n{err}");
    assert!(!out.contains("planted"), "{out}\n{err}");
    assert!(
        !status.success() && err.contains("was replaced while pyferry checked it"),
        "{status}\n{out}\n{err}"
    );
}

/// A copy with one more central directory record than its end record
/// counts (`sneaky.pyc`, a name of its own for `helper.pyc`'s data, the
/// archive's tables moved to make room): the archive's hash covers the
/// counted entries only, while zipimport walks the directory by size and
/// would import the added one. Refused before any of its code runs, on a
/// first run that extracts nothing too, and in python mode.
#[test]
fn a_central_directory_entry_beyond_the_end_records_count_is_refused() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "import helper\nprint(helper.X)\n"),
            ("helper.py", "X = 'genuine'\n"),
        ],
    );
    let exe = cx.pack("counted", &[app.to_str().expect("utf-8")]);
    let craft = r#"
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
eocd = data.rfind(b"PK\x05\x06")
cd_size, = struct.unpack_from("<I", data, eocd + 12)
at = eocd - cd_size
while at < eocd:
    n, m, k = struct.unpack_from("<HHH", data, at + 28)
    if bytes(data[at + 46:at + 46 + n]) == b"helper.pyc":
        record = bytearray(data[at:at + 46 + n + m + k])
        record[46:46 + n] = b"sneaky.pyc"
        break
    at += 46 + n + m + k
else:
    sys.exit("no helper.pyc")
data[eocd:eocd] = record
struct.pack_into("<I", data, eocd + len(record) + 12, cd_size + len(record))
shoff, = struct.unpack_from("<Q", data, 0x28)
if shoff > eocd:
    struct.pack_into("<Q", data, 0x28, shoff + len(record))
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3a)
    for i in range(shnum):
        h = shoff + len(record) + i * shentsize
        offset, size = struct.unpack_from("<QQ", data, h + 0x18)
        if offset > eocd:
            struct.pack_into("<Q", data, h + 0x18, offset + len(record))
        elif offset <= eocd < offset + size:
            struct.pack_into("<Q", data, h + 0x20, size + len(record))
open(sys.argv[2], "wb").write(data)
"#;
    let crafted = cx.path().join("crafted");
    success(&cx.python(&[
        "-c".as_ref(),
        craft.as_ref(),
        exe.as_os_str(),
        crafted.as_os_str(),
    ]));
    fs::set_permissions(&crafted, fs::Permissions::from_mode(0o755)).expect("chmod");
    // zipfile sees the added entry.
    let listing = success(&cx.python(&["-m", "zipfile", "-l", crafted.to_str().expect("utf-8")]));
    assert!(listing.contains("sneaky.pyc"), "{listing}");

    let refused = |output: &std::process::Output| {
        !output.status.success()
            && stderr(output).contains("zip readers would disagree")
            && !stdout(output).contains("genuine")
    };
    let output = cx.run(&crafted, &[] as &[&str]);
    assert!(refused(&output), "{}", describe(&output));
    let output = cx.run_as_python(&crafted, &["-c", "import sneaky; print(sneaky.X)"]);
    assert!(refused(&output), "{}", describe(&output));
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), "genuine\n");
}

/// Of a cache root's entries, those that a version directory or an
/// extraction's temporary sibling would leave (not lock files, not python
/// links).
fn extraction_leftovers<'a>(entries: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    entries
        .filter(|name| {
            name.starts_with("fullfs-") && !name.ends_with(".lock") || name.contains(".tmp-")
        })
        .collect()
}

/// A first run whose cache root cannot take the app's files (a filesystem
/// without the room, or without the inodes) extracts into the next root,
/// deferred and eager runs alike, checked before anything is written; one
/// that finds the disk full halfway (filled by another process after the
/// check) removes what it wrote and does the same. With PYFERRY_CACHE_DIR,
/// the only root, the error names the full directory and says how to
/// choose another.
#[test]
fn a_full_filesystem_makes_the_next_root_serve() {
    let cx = TestContext::new();
    // More than the small filesystems below hold, in either flavor (the
    // system flavor extracts no standard library): 4 MB, 60 more files.
    let app = big_native_app(&cx, 4);
    for n in 0..60 {
        fs::write(app.join(format!("fastpkg/data-{n}.txt")), "data\n").expect("write");
    }
    let exe = cx.pack("fullfs", &[app.to_str().expect("utf-8")]);
    let home = cx.path().join("home");
    let first_root = home.join(".cache/pyferry");
    let runtime = cx.path().join("runtime");
    let next_root = runtime.join("pyferry");
    fs::create_dir(&runtime).expect("mkdir");
    // The app's output (`24`, its data, its extension's path) or
    // --extract-only's (the version's directory), from the next root.
    let served_by_next_root = |output: &std::process::Output| {
        let out = success(output);
        let paths: Vec<&str> = out.lines().filter(|line| line.starts_with('/')).collect();
        assert!(
            !paths.is_empty()
                && paths
                    .iter()
                    .all(|path| path.starts_with(next_root.to_str().expect("utf-8")))
                && (paths.len() == 1 || out.starts_with("24\n")),
            "{}",
            describe(output)
        );
        fs::remove_dir_all(&next_root).expect("empty the next root");
    };

    // Checked first: too few bytes, too few inodes. A run defers its
    // extraction; --extract-only does not.
    for options in ["size=1m", "size=512m,nr_inodes=40"] {
        let setup = format!("mount -t tmpfs -o {options} tmpfs {}", home.display());
        for then in ["\"$0\" 2", "\"$0\" --extract-only"] {
            let output = in_mount_namespace(&cx, &format!("{setup} && {then}"))
                .arg(&exe)
                .env_remove("PYFERRY_CACHE_DIR")
                .env("XDG_RUNTIME_DIR", &runtime)
                .output()
                .expect("unshare");
            served_by_next_root(&output);
        }
    }

    // The filesystem fills up after the check, while the app waits for
    // its lock (`strace` holds up its `flock` by three seconds once it
    // reports the check's `statfs`): the extraction runs out of room
    // halfway, and the next root serves.
    let home_text = home.display().to_string();
    let script = format!(
        "mount -t tmpfs -o size=256m tmpfs {home_text} && \
         strace -f -e trace=statfs,flock -e inject=flock:delay_enter=3000000 \
             \"$0\" --extract-only > out 2> log & \
         while ! grep -q 'statfs(\"{home_text}/.cache/pyferry\".*= 0' log; do sleep 0.05; done; \
         dd if=/dev/zero of={home_text}/filler bs=1M 2>/dev/null; \
         wait $!; status=$?; cat out; cat log >&2; \
         ls -a {home_text}/.cache/pyferry | sed 's/^/left: /' >&2; exit $status"
    );
    let output = in_mount_namespace(&cx, &script)
        .arg(&exe)
        .env_remove("PYFERRY_CACHE_DIR")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("PYFERRY_DEBUG", "1")
        .current_dir(cx.path())
        .output()
        .expect("unshare");
    assert!(
        stderr(&output).contains(&format!(
            "not extracting into {}: its filesystem is full: cannot ",
            first_root.display()
        )),
        "{}",
        describe(&output)
    );
    let error = stderr(&output);
    let left = error.lines().filter_map(|line| line.strip_prefix("left: "));
    assert_eq!(extraction_leftovers(left), Vec::<&str>::new());
    served_by_next_root(&output);

    // The only root: the error names it, and says how to choose another.
    let only = home.join("only");
    let output = in_mount_namespace(
        &cx,
        "mount -t tmpfs -o size=1m tmpfs $1 && exec \"$0\" --extract-only",
    )
    .arg(&exe)
    .arg(&home)
    .env("PYFERRY_CACHE_DIR", &only)
    .output()
    .expect("unshare");
    let error = stderr(&output);
    assert!(!output.status.success(), "{}", describe(&output));
    for said in [
        format!("cannot use the cache directory `{}`", only.display()),
        "its filesystem is full".to_owned(),
        "set PYFERRY_CACHE_DIR".to_owned(),
    ] {
        assert!(
            error.contains(&said),
            "{said:?} not in:\n{}",
            describe(&output)
        );
    }
}

/// A copy that fails its verification stops extracting at once, instead
/// of writing all its files first: `strace` holds up every `openat` by 20
/// ms, so the extraction would take seconds, its verification far less.
#[test]
fn a_damaged_copy_stops_extracting_when_its_verification_fails() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    fs::write(app.join("greeting.py"), "MESSAGE = 'hello'\n").expect("write");
    let exe = cx.pack("stopped", &[app.to_str().expect("utf-8")]);
    let files = cx.inspect_json(&exe)["extracted_files"]
        .as_array()
        .expect("extracted files")
        .len();
    let damaged = cx.path().join("damaged");
    damaged_copy(&exe, &damaged, |bytes| {
        middle_of_entry(bytes, "greeting.pyc")
    });
    let (mut strace, trace) = cx.traced(&["trace=openat", "inject=openat:delay_enter=20000"]);
    let output = strace
        .arg(&damaged)
        .arg("--extract-only")
        .output()
        .expect("strace (apt-get install strace)");
    assert!(
        !output.status.success()
            && stderr(&output).contains("does not match the hash it was packed with"),
        "{}",
        describe(&output)
    );
    let created = fs::read_to_string(&trace)
        .expect("trace")
        .lines()
        .filter(|line| line.contains(".tmp-") && line.contains("O_CREAT"))
        .count();
    assert!(created < files / 4, "{created} of {files} files written");
    assert_eq!(version_dirs(&cx.cache_dir()), Vec::<String>::new());
}

/// On a filesystem whose timestamps count whole seconds (ext4 with 128-byte
/// inodes, on a loop device), a copy overwritten within the second it was
/// written and run keeps its inode, size and times: the run must not have
/// remembered it as verified, or the overwritten copy (its native archive
/// damaged, which a warm start never reads) would run unverified.
#[test]
fn a_copy_changed_within_its_timestamps_second_is_verified_again() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("racy", &[app.to_str().expect("utf-8")]);
    let damaged = cx.path().join("damaged");
    damaged_copy(&exe, &damaged, |bytes| {
        middle_of_entry(bytes, pyferry::format::NATIVE_ARCHIVE)
    });
    let image = cx.path().join("coarse.img");
    File::create(&image)
        .and_then(|file| file.set_len(256 << 20))
        .expect("image");
    let made = cx
        .command("mkfs.ext4")
        .args(["-q", "-F", "-I", "128"])
        .arg(&image)
        .output()
        .expect("mkfs.ext4");
    assert!(made.status.success(), "{}", describe(&made));
    let mount = cx.path().join("coarse");
    fs::create_dir(&mount).expect("mkdir");
    // From the start of a second: the copy, its first run, the overwrite;
    // then the copy's times (both in the same second, or the try does not
    // count) and its second run.
    let script = format!(
        "mount -o loop {image} {mount} && cd {mount} && \
         python3 -c 'import time; time.sleep(1 - time.time() % 1)' && \
         cp \"$0\" app && stat -c %Y.%Z app && ./app 2 >/dev/null && \
         cat \"$1\" > app && stat -c %Y.%Z app && ./app 2",
        image = image.display(),
        mount = mount.display()
    );
    for _ in 0..5 {
        let _ = fs::remove_dir_all(cx.cache_dir());
        let output = in_mount_namespace(&cx, &script)
            .arg(&exe)
            .arg(&damaged)
            .output()
            .expect("unshare");
        let out = stdout(&output);
        let times: Vec<&str> = out.lines().take(2).collect();
        assert_eq!(times.len(), 2, "{}", describe(&output));
        if times[0] != times[1] {
            continue; // Not within one second: try again.
        }
        assert!(
            !output.status.success()
                && stderr(&output).contains("does not match the hash it was packed with"),
            "{}",
            describe(&output)
        );
        return;
    }
    panic!("five tries never ran the copy and overwrote it within one second");
}

/// The sizes of the files below `dir`, added up.
fn size_of_files(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry"))
        .map(|entry| {
            let meta = fs::symlink_metadata(entry.path()).expect("stat");
            match meta.is_dir() {
                true => size_of_files(&entry.path()),
                false if meta.is_file() => meta.len(),
                false => 0,
            }
        })
        .sum()
}

/// An app's end user, who has no pyferry, sees what the app keeps on disk
/// (`PYFERRY_CACHE=info APP`: each version, its size as its files add up,
/// its last use) and removes it (`PYFERRY_CACHE=clean APP`), after which
/// the app runs as before; the app's arguments are never read for it, a bad
/// value runs nothing, and `pyferry cache list` shows sizes and last use.
#[test]
fn an_apps_end_user_sees_and_removes_what_it_keeps_on_disk() {
    let cx = TestContext::new();
    let app = build_native_app(&cx);
    let exe = cx.pack("tidy", &[app.to_str().expect("utf-8")]);
    let expected = success(&cx.run(&exe, &["2"]));
    let keys = version_dirs(&cx.cache_dir());
    assert_eq!(keys.len(), 1, "{keys:?}");
    let size = size_of_files(&cx.cache_dir().join(&keys[0]));
    let shown_size = format!("{:.1} MB", size as f64 / 1e6);
    let ask = |value: &str| {
        cx.command(&exe)
            .env("PYFERRY_CACHE", value)
            .args(["2", "--help"])
            .output()
            .expect("run")
    };

    let info = success(&ask("info"));
    for said in [
        &keys[0],
        &shown_size,
        "used just now",
        "PYFERRY_CACHE=clean tidy",
    ] {
        assert!(info.contains(said), "{said:?} not in:\n{info}");
    }
    assert!(
        !info.contains("data next to __file__"),
        "the app ran:\n{info}"
    );
    let listed = success(
        &cx.command(pyferry())
            .args(["cache", "list"])
            .output()
            .expect("pyferry cache list"),
    );
    assert!(
        listed.contains(&format!("{}  {shown_size} in ", keys[0]))
            && listed.contains("used just now"),
        "{listed}"
    );

    let bad = ask("list");
    assert!(
        !bad.status.success()
            && stdout(&bad).is_empty()
            && stderr(&bad).contains("PYFERRY_CACHE=info tidy"),
        "{}",
        describe(&bad)
    );

    let cleaned = success(&ask("clean"));
    assert!(
        cleaned.contains(&format!("removed {}", keys[0])) && cleaned.contains("freed"),
        "{cleaned}"
    );
    assert_eq!(version_dirs(&cx.cache_dir()), Vec::<String>::new());
    assert!(success(&ask("info")).contains("keeps nothing on disk"));
    assert_eq!(success(&cx.run(&exe, &["2"])), expected);
}
