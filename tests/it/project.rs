//! `pyferry pack` in a project's directory: no inputs, the project's one
//! script as the entry point, pack's options from `[tool.pyferry]`, the
//! command line over the table; compared with the project installed in a
//! venv.

use crate::context::{TestContext, describe, output_of, pyferry, stderr, venv_with, wheel_dir};
use crate::wheels::greet_project;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

/// Appends `text` to the project's `pyproject.toml`.
fn configure(project: &Path, text: &str) {
    let path = project.join("pyproject.toml");
    let mut toml = fs::read_to_string(&path).expect("read");
    toml.push_str(text);
    fs::write(&path, toml).expect("write");
}

/// `pyferry pack ARGS` run in `dir`.
fn pack_in(cx: &TestContext, dir: &Path, args: &[&str]) -> std::process::Output {
    output_of(
        cx.command(pyferry())
            .arg("pack")
            .args(args)
            .current_dir(dir),
    )
}

#[test]
fn pack_in_a_project_takes_its_script_and_its_table() {
    let cx = TestContext::new();
    let project = greet_project(&cx, "greet_project");
    let project = Path::new(&project);
    let wheels = wheel_dir().to_str().expect("utf-8");
    configure(
        project,
        &format!(
            "\n[tool.pyferry]\noutput = \"dist/greeter\"\nrequirements = [\"pyyaml\"]\n\
             pip-args = [\"--no-build-isolation\", \"--no-index\", \"--find-links\", \"{wheels}\"]\n"
        ),
    );
    let packed = pack_in(&cx, project, &[]);
    assert!(packed.status.success(), "{}", describe(&packed));
    let exe = project.join("dist/greeter");

    // The same project installed in a venv, run by its script.
    let install = ["--no-build-isolation", "--no-index"].map(OsStr::new);
    let venv = venv_with(
        &cx.path().join("venv"),
        &[&install[..], &[project.as_os_str()]].concat(),
    );
    let expected = output_of(cx.command(venv.join("bin/greet")).args(["a", "b"]));
    let output = output_of(cx.command(&exe).args(["a", "b"]));
    assert_eq!(
        output.status.code(),
        expected.status.code(),
        "{}",
        describe(&output)
    );
    assert_eq!(output.stdout, expected.stdout, "{}", describe(&output));
    // The table's extra requirement travels.
    let import = output_of(
        cx.command(&exe)
            .env("PYFERRY_INTERPRETER", "1")
            .args(["-c", "import yaml; print(yaml.safe_load('a: 1'))"]),
    );
    assert_eq!(
        String::from_utf8_lossy(&import.stdout),
        "{'a': 1}\n",
        "{}",
        describe(&import)
    );

    // The command line wins over the table.
    fs::remove_file(&exe).expect("remove");
    let packed = pack_in(&cx, project, &["-o", "elsewhere", "--name", "other"]);
    assert!(packed.status.success(), "{}", describe(&packed));
    assert!(!exe.exists());
    let output = output_of(cx.command(project.join("elsewhere")).args(["a", "b"]));
    assert_eq!(output.stdout, expected.stdout, "{}", describe(&output));
}

#[test]
fn a_project_with_several_scripts_or_unknown_keys_is_refused_with_their_names() {
    let cx = TestContext::new();
    let project = greet_project(&cx, "greet_project");
    let project = Path::new(&project);
    configure(project, "other = \"greet.cli:main\"\n");
    let refused = pack_in(&cx, project, &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("several scripts (`greet`, `other`)") && message.contains("-c NAME"),
        "{message}"
    );
    assert!(!project.join("dist").exists());

    configure(
        project,
        "\n[tool.pyferry]\nconsole-script = \"other\"\nouptut = \"x\"\nstrip = 1\n",
    );
    let refused = pack_in(&cx, project, &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("unknown keys: `ouptut`, `strip`"),
        "{message}"
    );
    assert!(!project.join("dist").exists() && !project.join("x").exists());
}
