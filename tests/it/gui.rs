//! GUI apps on a real display (Xvfb, which `make test` installs): tkinter
//! travels when the app imports it, with Tcl's and Tk's script libraries,
//! and shows its window where the system has no Tcl/Tk at all; a PySide6
//! app shows its window and finds its plugins, translations and QML files,
//! and names the desktop libraries it lacks instead of Qt's abort.

use crate::context::{
    BUILD_PYTHON, TestContext, describe, download_wheels_once, stderr, stdout, success, target_dir,
    venv_with,
};
use crate::desktop::{double_click_command, fake_notifier, wait_for};
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// An X server of its own, on the first free display.
struct Display {
    server: Child,
    name: String,
}

impl Display {
    fn start() -> Display {
        let mut server = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (Debian's xvfb; `make test` installs it)");
        let mut number = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut number)
            .expect("read the display number");
        assert!(!number.trim().is_empty(), "Xvfb chose no display");
        Display {
            server,
            name: format!(":{}", number.trim()),
        }
    }

    /// The window tree, with each window's title.
    fn windows(&self) -> String {
        let output = Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &self.name])
            .output()
            .expect("xwininfo (x11-utils)");
        stdout(&output)
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

const TK_APP: &str = "import sys, tkinter\n\
    root = tkinter.Tk()\n\
    root.title('pyferry tk ' + sys.argv[1])\n\
    tkinter.Label(root, text='hello from a packed app', bg='#ff0000').pack()\n\
    root.update()\n\
    print('shown', root.tk.eval('info patchlevel'), root.winfo_exists(), flush=True)\n\
    sys.stdin.readline()\n\
    root.after(300, root.destroy)\n\
    root.mainloop()\n\
    print('closed by its timer')\n";

/// Starts `command` (the app, whose window is titled `title`), waits for
/// its window, checks that the display shows it under its title, then lets
/// it quit by its timer.
fn show_window(display: &Display, mut command: Command, title: &str) -> Output {
    let mut child = command
        .env("DISPLAY", &display.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the app");
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut first).expect("read");
    let shown = first.starts_with("shown");
    let windows = display.windows();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"quit\n");
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    let mut output = child.wait_with_output().expect("wait");
    output.stdout = format!("{first}{rest}").into_bytes();
    if shown {
        assert!(
            windows.contains(&format!("\"{title}\"")),
            "no window titled `{title}`:\n{windows}"
        );
    }
    output
}

/// The same command in a mount namespace where Tcl's and Tk's script
/// libraries, wherever the build interpreter's tkinter finds them (Debian's
/// `/usr/share/tcltk`, or beside pyferry's own CPython), are empty
/// directories.
fn without_system_tcl_tk(cx: &TestContext, program: &Path, args: &[&str]) -> Command {
    let tcl = success(&cx.python(&[
        "-c",
        "import tkinter; print(tkinter.Tcl().eval('info library'))",
    ]));
    let tcl = Path::new(tcl.trim());
    let hide: Vec<String> = [tcl.to_owned(), tcl.with_file_name("tk8.6")]
        .iter()
        .filter(|dir| dir.is_dir())
        .map(|dir| format!("mount -t tmpfs tmpfs '{}'", dir.display()))
        .collect();
    in_a_mount_namespace(cx, &hide.join(" && "), program, args)
}

/// `program args` in a private mount namespace, after `mount`.
fn in_a_mount_namespace(cx: &TestContext, mount: &str, program: &Path, args: &[&str]) -> Command {
    let mut command = cx.command("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("{mount} && exec \"$0\" \"$@\""))
        .arg(program)
        .args(args);
    command
}

#[test]
fn a_tkinter_app_shows_its_window_without_tcl_tk_on_the_system() {
    let cx = TestContext::new();
    let app = cx.write_tree("tk-app", &[("__main__.py", TK_APP)]);
    let script = app.join("__main__.py");
    let script = script.to_str().expect("utf-8");
    // Not asked for: pack finds the import.
    let exe = cx.pack("tk-packed", &[app.to_str().expect("utf-8")]);
    let display = Display::start();

    let mut python = cx.command(BUILD_PYTHON);
    python.args([script, "python"]);
    let python = show_window(&display, python, "pyferry tk python");
    assert!(python.status.success(), "{}", describe(&python));

    let mut packed = cx.command(&exe);
    packed.arg("packed");
    let packed = show_window(&display, packed, "pyferry tk packed");
    assert!(packed.status.success(), "{}", describe(&packed));
    assert_eq!(stdout(&packed), stdout(&python));

    // Hidden, python's own tkinter has no Tcl/Tk to start; the app has its own.
    let hidden = without_system_tcl_tk(&cx, Path::new(BUILD_PYTHON), &[script, "hidden"]);
    let python_hidden = show_window(&display, hidden, "pyferry tk hidden");
    assert!(
        !python_hidden.status.success()
            && String::from_utf8_lossy(&python_hidden.stderr).contains("init.tcl"),
        "{}",
        describe(&python_hidden)
    );
    let hidden = without_system_tcl_tk(&cx, &exe, &["hidden"]);
    let packed_hidden = show_window(&display, hidden, "pyferry tk hidden");
    assert!(
        packed_hidden.status.success(),
        "{}",
        describe(&packed_hidden)
    );
    assert_eq!(stdout(&packed_hidden), stdout(&python));
}

/// A tkinter app packed here shows its window on Debian 11, a system with
/// libX11 and no Tcl/Tk, as python shows it here.
#[test]
fn a_tkinter_app_packed_here_shows_its_window_on_debian_11() {
    let cx = TestContext::new();
    let app = cx.write_tree("tk-app", &[("__main__.py", TK_APP)]);
    let script = app.join("__main__.py");
    let exe = cx.pack("tk-packed", &[app.to_str().expect("utf-8")]);
    let display = Display::start();
    let mut python = cx.command(BUILD_PYTHON);
    python.arg(&script).arg("bullseye");
    let python = show_window(&display, python, "pyferry tk bullseye");
    assert!(python.status.success(), "{}", describe(&python));
    let name = exe.file_name().expect("a name").to_string_lossy();
    let packed =
        crate::old_distro::in_bullseye(&cx, cx.path(), &format!("exec /work/{name} bullseye"));
    let packed = show_window(&display, packed, "pyferry tk bullseye");
    assert!(packed.status.success(), "{}", describe(&packed));
    assert_eq!(stdout(&packed), stdout(&python));
}

/// Started with no terminal, as a desktop launcher starts it, a tkinter app
/// that cannot open its window leaves the error in its log and a notice.
#[test]
fn a_gui_app_that_fails_before_its_window_is_logged_and_announced() {
    let cx = TestContext::new();
    let app = cx.write_tree("tk-app", &[("__main__.py", TK_APP)]);
    let exe = cx.pack("tk-nowhere", &[app.to_str().expect("utf-8")]);
    let (bin, record) = fake_notifier(&cx);
    let mut command = cx.command(&exe);
    // A display nobody serves: Xvfb takes the first free numbers.
    command.arg("nowhere").env("DISPLAY", ":987");
    let output = double_click_command(&cx, command, &bin);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let notice = wait_for(&record);
    let log = cx.path().join("state/pyferry/tk-nowhere.log");
    assert!(notice.contains(log.to_str().expect("utf-8")), "{notice}");
    let text = fs::read_to_string(&log).expect("the log exists");
    assert!(
        text.contains("tk-nowhere died from an uncaught exception")
            && text.contains("_tkinter.TclError: couldn't connect to display \":987\""),
        "{text}"
    );
}

/// PySide6 from PyPI, pinned: its wheels carry Qt with its plugins.
const QT_WHEELS: &[&str] = &["PySide6-Essentials==6.12.0", "shiboken6==6.12.0"];

fn qt_wheels() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("test-qt-wheels");
        download_wheels_once(&dir, &QT_WHEELS.join(" "), QT_WHEELS);
        dir
    })
}

/// A venv of the build interpreter with PySide6, kept in `target/`.
fn qt_venv() -> PathBuf {
    let dir = target_dir().join(format!(
        "test-qt-venv-{}",
        crate::context::interpreter_tag()
    ));
    let marker = dir.join(".complete");
    if fs::read_to_string(&marker).is_ok_and(|text| text == QT_WHEELS.join(" ")) {
        return dir;
    }
    let _ = fs::remove_dir_all(&dir);
    let mut install = vec!["--no-index".as_ref(), "--find-links".as_ref()];
    install.push(qt_wheels().as_os_str());
    install.extend(QT_WHEELS.iter().map(OsStr::new));
    venv_with(&dir, &install);
    fs::write(&marker, QT_WHEELS.join(" ")).expect("marker");
    dir
}

const QT_APP: &str = r#"import os, sys
import PySide6
from PySide6.QtCore import QLibraryInfo, QTimer, QTranslator, QUrl
from PySide6.QtGui import QImageReader
from PySide6.QtQml import QQmlComponent, QQmlEngine
from PySide6.QtWidgets import QApplication, QLabel

app = QApplication(sys.argv)
label = QLabel("hello from a packed app")
label.setStyleSheet("background: #ff0000")
label.setWindowTitle("pyferry qt " + sys.argv[1])
label.show()
app.processEvents()
print("shown", label.isVisible(), app.platformName(), flush=True)
# Where the wheel put Qt's files, as Qt finds them.
package = os.path.dirname(PySide6.__file__)
for name in ("PluginsPath", "TranslationsPath", "QmlImportsPath"):
    path = QLibraryInfo.path(getattr(QLibraryInfo.LibraryPath, name))
    print(name, os.path.relpath(path, package), os.path.isdir(path))
formats = QImageReader.supportedImageFormats()
print("image formats", b" ".join(bytes(f) for f in formats).decode())
translations = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
translator = QTranslator()
print("german", translator.load("qtbase_de", translations), translator.translate("QFileDialog", "Open"))
engine = QQmlEngine()
component = QQmlComponent(engine)
component.setData(b"import QtQuick\nItem { property string word: 'from QML' }", QUrl())
item = component.create()
print("qml", item.property("word") if item else [e.toString() for e in component.errors()])
sys.stdin.readline()
QTimer.singleShot(300, app.quit)
app.exec()
print("closed by its timer")
"#;

/// The mount that hides one of the libraries Qt's xcb platform takes from
/// the desktop: an empty file over it, which `dlopen` refuses.
fn hide_xcb_icccm() -> String {
    let library = fs::canonicalize("/usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4")
        .expect("libxcb-icccm4 (`make test` installs Qt's desktop libraries)");
    format!("mount --bind /dev/null {}", library.display())
}

#[test]
fn a_qt_app_shows_its_window_and_names_the_desktop_libraries_it_lacks() {
    let cx = TestContext::new();
    let app = cx.write_tree("qt-app", &[("__main__.py", QT_APP)]);
    let wheels = qt_wheels().to_str().expect("utf-8");
    let packed_args = [
        app.to_str().expect("utf-8"),
        "--",
        "--no-index",
        "--find-links",
        wheels,
    ];
    let mut packed_args = packed_args.to_vec();
    packed_args.splice(1..1, QT_WHEELS.iter().copied());
    let exe = cx.pack("qt-packed", &packed_args);
    let venv_python = qt_venv().join("bin/python");
    let script = app.join("__main__.py");
    let script = script.to_str().expect("utf-8");
    let display = Display::start();

    let mut venv = cx.command(&venv_python);
    venv.args([script, "venv"]);
    let venv = show_window(&display, venv, "pyferry qt venv");
    assert!(venv.status.success(), "{}", describe(&venv));
    let mut packed = cx.command(&exe);
    packed.arg("packed");
    let packed = show_window(&display, packed, "pyferry qt packed");
    assert!(packed.status.success(), "{}", describe(&packed));
    assert_eq!(stdout(&packed), stdout(&venv));
    assert!(
        stdout(&packed).contains("qml from QML"),
        "{}",
        stdout(&packed)
    );

    // A desktop without libxcb-icccm: Qt aborts in the venv, naming nothing
    // it lacks; the packed app names it and what to install.
    let hide = hide_xcb_icccm();
    let venv = in_a_mount_namespace(&cx, &hide, &venv_python, &[script, "venv"]);
    let venv = show_window(&display, venv, "none");
    assert!(
        !venv.status.success() && stderr(&venv).contains("Could not load the Qt platform plugin"),
        "{}",
        describe(&venv)
    );
    let packed = in_a_mount_namespace(&cx, &hide, &exe, &["packed"]);
    let packed = show_window(&display, packed, "none");
    assert_eq!(packed.status.code(), Some(1), "{}", describe(&packed));
    let message = stderr(&packed);
    for expected in [
        "qt-packed: error: Qt cannot open this app's windows",
        "`xcb` needs libxcb-icccm.so.4",
        "sudo apt install libxcb-icccm4",
        "sudo dnf install 'libxcb-icccm.so.4()(64bit)'",
    ] {
        assert!(message.contains(expected), "no `{expected}` in:\n{message}");
    }
    assert!(stdout(&packed).is_empty(), "{}", describe(&packed));

    // Double-clicked, the same message reaches the log and a notice.
    let (bin, record) = fake_notifier(&cx);
    let mut command = in_a_mount_namespace(&cx, &hide, &exe, &["clicked"]);
    command.env("DISPLAY", &display.name);
    let clicked = double_click_command(&cx, command, &bin);
    assert_eq!(clicked.status.code(), Some(1), "{}", describe(&clicked));
    wait_for(&record);
    let log = fs::read_to_string(cx.path().join("state/pyferry/qt-packed.log")).expect("log");
    assert!(
        log.contains("qt-packed stopped with an error") && log.contains(message.trim_end()),
        "{log}"
    );
}
