//! A double-clicked app has no terminal: errors go to a log and a desktop
//! notice; a terminal gets the usual output and progress.

use crate::context::{TestContext, describe, output_of, pyferry, stdout, success};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const CRASH: &str = "def explode():\n    raise ValueError('nobody saw this')\nexplode()\n";

/// A stand-in `notify-send`, first on PATH, that records its arguments.
pub fn fake_notifier(cx: &TestContext) -> (PathBuf, PathBuf) {
    let bin = cx.path().join("fakebin");
    fs::create_dir_all(&bin).expect("mkdir");
    let record = cx.path().join("notices.txt");
    let script = bin.join("notify-send");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            record.display()
        ),
    )
    .expect("write");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    (bin, record)
}

/// Runs `exe` as a file manager would: no terminal, all stdio on /dev/null.
fn double_click(cx: &TestContext, exe: &Path, bin: &Path) {
    let mut command = cx.command(exe);
    command.env("DISPLAY", ":0");
    let output = double_click_command(cx, command, bin);
    assert_eq!(output.status.code(), Some(1));
}

/// Runs `command` as a file manager would (no terminal, all stdio on
/// /dev/null), with the stand-in notifier of `bin` and a private state dir.
pub fn double_click_command(cx: &TestContext, mut command: Command, bin: &Path) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    output_of(
        command
            .env("PATH", path)
            .env("XDG_STATE_HOME", cx.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// The notifier runs detached: wait a little for its record.
pub fn wait_for(path: &Path) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(text) = fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        sleep(Duration::from_millis(20));
    }
    panic!("no notice was shown ({} does not exist)", path.display());
}

#[test]
fn an_unseen_crash_is_logged_and_announced() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", CRASH)]);
    let exe = cx.pack("crasher", &[app.to_str().expect("utf-8")]);
    let (bin, record) = fake_notifier(&cx);
    double_click(&cx, &exe, &bin);
    let log = cx.path().join("state/pyferry/crasher.log");
    let notice = wait_for(&record);
    assert!(
        notice.contains(log.to_str().expect("utf-8")),
        "the notice names the log: {notice}"
    );
    let text = fs::read_to_string(&log).expect("the log exists");
    assert!(
        text.contains("crasher died from an uncaught exception"),
        "{text}"
    );
    assert!(
        text.contains("    raise ValueError('nobody saw this')"),
        "{text}"
    );
    assert!(text.ends_with("ValueError: nobody saw this\n"), "{text}");
}

#[test]
fn an_unseen_exit_message_is_logged_and_announced() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[(
            "__main__.py",
            "import sys\nsys.exit('no settings file: ~/.toolrc')\n",
        )],
    );
    let exe = cx.pack("quitter", &[app.to_str().expect("utf-8")]);
    let (bin, record) = fake_notifier(&cx);
    double_click(&cx, &exe, &bin);
    wait_for(&record);
    let text = fs::read_to_string(cx.path().join("state/pyferry/quitter.log")).expect("log");
    assert!(
        text.contains("quitter stopped with an error\nno settings file: ~/.toolrc\n"),
        "{text}"
    );
}

#[test]
fn pyferrys_own_errors_are_logged_too() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('hi')\n")]);
    let exe = cx.pack("damaged", &[app.to_str().expect("utf-8")]);
    let mut bytes = fs::read(&exe).expect("read");
    bytes.truncate(bytes.len() - 3500);
    fs::write(&exe, bytes).expect("write");
    let (bin, record) = fake_notifier(&cx);
    double_click(&cx, &exe, &bin);
    wait_for(&record);
    let text = fs::read_to_string(cx.path().join("state/pyferry/damaged.log")).expect("log");
    assert!(text.contains("has lost its payload"), "{text}");
}

#[test]
fn in_a_terminal_the_traceback_is_printed_and_nothing_logged() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", CRASH)]);
    let exe = cx.pack("crasher", &[app.to_str().expect("utf-8")]);
    let (bin, record) = fake_notifier(&cx);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // `script` gives the app a pseudo-terminal.
    let output = cx
        .command("script")
        .args(["-qec", exe.to_str().expect("utf-8"), "/dev/null"])
        .env("PATH", path)
        .env("DISPLAY", ":0")
        .env("XDG_STATE_HOME", cx.path().join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let out = stdout(&output);
    assert!(
        out.contains("ValueError: nobody saw this"),
        "{}",
        describe(&output)
    );
    // The notice follows only a write to the log, which the app makes
    // before it exits: no log, no notice, with nothing to wait for.
    assert!(!cx.path().join("state/pyferry/crasher.log").exists());
    assert!(!record.exists());
}

#[test]
fn a_long_first_run_shows_progress_on_a_terminal_only() {
    let cx = TestContext::new();
    let app = crate::native::build_native_app(&cx);
    fs::write(app.join("fastpkg/zeros.bin"), vec![0u8; 70 << 20]).expect("write");
    let exe = cx.pack("bigapp", &[app.to_str().expect("utf-8")]);
    let output = cx
        .command("script")
        .args(["-qec", exe.to_str().expect("utf-8"), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let out = stdout(&output);
    assert!(
        out.contains("extracting bigapp (") && out.contains(" MB)... done in "),
        "{}",
        describe(&output)
    );

    let _ = fs::remove_dir_all(cx.cache_dir());
    let output = cx.run(&exe, &[] as &[&str]);
    assert!(output.status.success());
    assert!(output.stderr.is_empty(), "{}", describe(&output));
}

#[test]
fn pack_shows_its_progress_on_a_terminal_and_its_phases_with_verbose() {
    let cx = TestContext::new();
    let project = crate::wheels::greet_project(&cx, "greet_project");
    let pack = |out: &str| {
        format!(
            "{} pack -o {out} -c greet {project} -- --no-build-isolation --no-index",
            pyferry()
        )
    };
    let output = cx
        .command("script")
        .args(["-qec", &pack("on-a-terminal"), "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let shown = stdout(&output);
    for phase in [
        "installing with pip",
        "compiling: [",
        "writing the executable: [",
    ] {
        assert!(
            shown.contains(phase),
            "no `{phase}`:\n{}",
            describe(&output)
        );
    }

    // Not on a terminal: nothing but pack's own line on stdout.
    let quiet = cx.pack_output("piped", &["-c", "greet", &project, "--", "--no-index"]);
    assert!(quiet.status.success(), "{}", describe(&quiet));
    assert!(quiet.stderr.is_empty(), "{}", describe(&quiet));

    let args = [
        "-v",
        "-c",
        "greet",
        &project,
        "--",
        "--no-build-isolation",
        "--no-index",
    ];
    let verbose = cx.pack_output("verbose", &args);
    let text = String::from_utf8_lossy(&verbose.stderr);
    for phase in ["installing with pip", "compiling", "writing the executable"] {
        let timed =
            regex::Regex::new(&format!("(?m)^pyferry: {phase}: [0-9.]+ s$")).expect("regex");
        assert!(timed.is_match(&text), "no time for `{phase}`:\n{text}");
    }
}

#[test]
fn desktop_entry_subcommand_points_at_the_installed_app() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", "print('hi')\n")]);
    let dir = cx.path().join("opt/my apps");
    fs::create_dir_all(&dir).expect("mkdir");
    let exe = cx.pack(
        "opt/my apps/notes",
        &[
            "--desktop-entry",
            "--terminal",
            app.to_str().expect("utf-8"),
        ],
    );
    let entry = fs::read_to_string(dir.join("notes.desktop")).expect("written next to the app");
    assert!(
        entry.starts_with("[Desktop Entry]\nType=Application\nName=notes\n"),
        "{entry}"
    );
    assert!(
        entry.contains(&format!("Exec=\"{}\"\n", exe.display())),
        "{entry}"
    );
    assert!(entry.contains("Terminal=true\n"), "{entry}");

    let output = cx
        .command(pyferry())
        .args([
            "desktop-entry",
            "--icon",
            "/usr/share/icons/notes.png",
            "-o",
            "menu.desktop",
        ])
        .arg(&exe)
        .output()
        .expect("desktop-entry");
    success(&output);
    let entry = fs::read_to_string(cx.path().join("menu.desktop")).expect("written");
    assert!(
        entry.contains("Icon=/usr/share/icons/notes.png\nTerminal=false")
            || entry.contains("Terminal=false\nIcon=/usr/share/icons/notes.png\n"),
        "{entry}"
    );
}
