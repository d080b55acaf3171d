//! GUI apps on a real display (Xvfb, which `make test` installs): tkinter
//! travels when the app imports it, with Tcl's and Tk's script libraries,
//! and shows its window where the system has no Tcl/Tk at all.

use crate::context::{BUILD_PYTHON, TestContext, describe, stdout};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

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

/// Starts `command` (the app, given `title` as its argument), waits for its
/// window, checks that the display shows it under its title, then lets it
/// quit by its timer.
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
            windows.contains(&format!("\"pyferry tk {title}\"")),
            "no window titled `pyferry tk {title}`:\n{windows}"
        );
    }
    output
}

/// The same command in a mount namespace where `/usr/share/tcltk` (Tcl's
/// and Tk's script libraries on Debian) is an empty directory.
fn without_system_tcl_tk(cx: &TestContext, program: &Path, args: &[&str]) -> Command {
    let mut command = cx.command("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs tmpfs /usr/share/tcltk && exec \"$0\" \"$@\"")
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
    let python = show_window(&display, python, "python");
    assert!(python.status.success(), "{}", describe(&python));

    let mut packed = cx.command(&exe);
    packed.arg("packed");
    let packed = show_window(&display, packed, "packed");
    assert!(packed.status.success(), "{}", describe(&packed));
    assert_eq!(stdout(&packed), stdout(&python));

    // Hidden, python's own tkinter has no Tcl/Tk to start; the app has its own.
    let hidden = without_system_tcl_tk(&cx, Path::new(BUILD_PYTHON), &[script, "hidden"]);
    let python_hidden = show_window(&display, hidden, "hidden");
    assert!(
        !python_hidden.status.success()
            && String::from_utf8_lossy(&python_hidden.stderr).contains("init.tcl"),
        "{}",
        describe(&python_hidden)
    );
    let hidden = without_system_tcl_tk(&cx, &exe, &["hidden"]);
    let packed_hidden = show_window(&display, hidden, "hidden");
    assert!(
        packed_hidden.status.success(),
        "{}",
        describe(&packed_hidden)
    );
    assert_eq!(stdout(&packed_hidden), stdout(&python));
}
