//! When nobody reads stderr: a double-clicked app has no terminal, and
//! whatever it prints is lost. Then pyferry's own errors, and an app's death
//! from an uncaught exception, also go to a per-user log
//! (`$XDG_STATE_HOME/pyferry/<app>.log`, rotated at 1 MiB), and a desktop
//! notice names that log when a desktop session offers one. None of this
//! may block or fail the app: every step is best effort.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A log larger than this is moved to `<app>.log.1` before the next write.
const MAX_LOG_BYTES: u64 = 1 << 20;

/// Whether stderr goes nowhere a person reads: closed, `/dev/null`, or a
/// socket (the desktop session's journal). A terminal, a file or a pipe is
/// read by someone.
pub fn stderr_is_unattended() -> bool {
    let stderr = std::io::stderr();
    if stderr.is_terminal() {
        return false;
    }
    let Ok(fd) = stderr.as_fd().try_clone_to_owned() else {
        return true; // closed
    };
    let Ok(meta) = fs::File::from(fd).metadata() else {
        return true;
    };
    let file_type = meta.file_type();
    let is_dev_null = file_type.is_char_device()
        && fs::metadata("/dev/null").is_ok_and(|null| null.rdev() == meta.rdev());
    is_dev_null || file_type.is_socket()
}

/// The app's log file, rotated if it grew too large; `None` if there is no
/// usable state directory.
pub fn prepare_log(app: &str) -> Option<PathBuf> {
    let dir = dirs::state_dir()?.join("pyferry");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    let log = dir.join(format!("{app}.log"));
    if fs::metadata(&log).is_ok_and(|meta| meta.len() > MAX_LOG_BYTES) {
        let _ = fs::rename(&log, dir.join(format!("{app}.log.1")));
    }
    Some(log)
}

/// Size of the log now, to tell later whether something was written.
fn log_size(log: &Path) -> u64 {
    fs::metadata(log).map_or(0, |meta| meta.len())
}

/// Appends `text` to the app's log and shows a notice: for pyferry's own
/// errors when nobody reads stderr.
pub fn report_error(app: &str, text: &str) {
    if !stderr_is_unattended() {
        return;
    }
    let Some(log) = prepare_log(app) else {
        return;
    };
    let appended = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .and_then(|mut file| {
            file.write_all(format!("--- {app} failed to start\n{text}").as_bytes())
        });
    // Once the app's start watches its log, the exit shows the notice.
    if appended.is_ok() && WATCHED_LOG.get().is_none() {
        notify(app, &log);
    }
}

/// The app, its log's size when it started, and the process that watches
/// it, for `at_exit`.
struct WatchedLog {
    app: String,
    log: PathBuf,
    size: u64,
    pid: u32,
}

static WATCHED_LOG: OnceLock<WatchedLog> = OnceLock::new();

/// Shows the notice when the process exits, however it exits, if the log
/// grew meanwhile: only failures write to it (an uncaught exception, a
/// toolkit the desktop cannot run). CPython exits from inside `Py_RunMain`
/// on `SystemExit`, so this cannot wait for the app's exit status.
pub fn notify_at_exit_if_logged(app: &str, log: &Path) {
    let watched = WatchedLog {
        app: app.to_owned(),
        log: log.to_owned(),
        size: log_size(log),
        pid: std::process::id(),
    };
    if WATCHED_LOG.set(watched).is_ok() {
        super::interpreter::at_exit(notify_if_logged);
    }
}

extern "C" fn notify_if_logged() {
    // A forked child that exits through `exit()` runs the handler too: the
    // notice is the watching process's alone.
    if let Some(watched) = WATCHED_LOG.get()
        && watched.pid == std::process::id()
        && log_size(&watched.log) > watched.size
    {
        notify(&watched.app, &watched.log);
    }
}

/// Shows "APP failed, see LOG" through the desktop's notifier, if there is
/// a desktop session and one of the usual tools; never waits for it.
fn notify(app: &str, log: &Path) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    if !desktop {
        return;
    }
    let summary = format!("{app} stopped with an error");
    let body = format!("Details are in {}", log.display());
    let attempts: [(&str, Vec<String>); 3] = [
        (
            "notify-send",
            vec![
                format!("--app-name={app}"),
                "--urgency=critical".into(),
                summary.clone(),
                body.clone(),
            ],
        ),
        (
            "zenity",
            vec![
                "--error".into(),
                format!("--title={app}"),
                format!("--text={summary}\n{body}"),
            ],
        ),
        (
            "kdialog",
            vec![
                format!("--title={app}"),
                "--error".into(),
                format!("{summary}\n{body}"),
            ],
        ),
    ];
    for (program, args) in attempts {
        let started = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if started.is_ok() {
            return;
        }
    }
}
