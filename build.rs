//! Build script: ties the runtime to one CPython.
//!
//! pyo3's build configuration picks the interpreter (`PYO3_PYTHON`), and we
//! ask that same interpreter where its standard library lives, so the runtime
//! can set `sys.path` itself instead of letting `PYTHONPATH`/`PYTHONHOME`
//! leak in. The facts are written to `$OUT_DIR/build_python.rs`.

#![expect(
    clippy::disallowed_macros,
    reason = "cargo reads a build script's directives from its stdout"
)]

use std::env;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Asked of the build interpreter; one fact per line, paths last.
const PROBE: &str = "import sys; print(sys.base_prefix); print(sys.executable); print(*[p for p in sys.path if p], sep='\\n')";

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYFERRY_FLAVOR");

    let config = pyo3_build_config::get();
    let python = config
        .executable()
        .expect("pyo3 found no Python executable: set PYO3_PYTHON")
        .to_owned();
    let version = config.version();
    assert!(
        config.shared(),
        "the system flavor needs a shared libpython (Py_ENABLE_SHARED=1): `{python}` has none"
    );

    // A libpython outside the linker's default directories (pyenv, a custom
    // prefix) must be found at run time without LD_LIBRARY_PATH.
    if let Some(lib_dir) = config.lib_dir().filter(|dir| !is_default_library_dir(dir)) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }

    let output = Command::new(&python)
        .args(["-I", "-S", "-c", PROBE])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the build interpreter `{python}`: {e}"));
    assert!(
        output.status.success(),
        "`{python}` failed to describe itself"
    );
    let text = String::from_utf8(output.stdout).expect("interpreter paths must be UTF-8");
    let mut lines = text.lines();
    let prefix = lines.next().expect("sys.base_prefix");
    let executable = lines.next().expect("sys.executable");
    let stdlib: Vec<&str> = lines.collect();

    let flavor = env::var("PYFERRY_FLAVOR").unwrap_or_else(|_| "system".to_owned());
    assert!(
        flavor == "system",
        "unknown PYFERRY_FLAVOR `{flavor}` (this build knows: system)"
    );

    let out = format!(
        "/// `major.minor` of the CPython this runtime embeds.
pub const PYTHON_VERSION: &str = \"{major}.{minor}\";
/// The interpreter that was linked; the default build interpreter for `pack`.
pub const BUILD_PYTHON: &str = {executable:?};
/// `sys.base_prefix` of that interpreter (its `PYTHONHOME`).
pub const PYTHON_HOME: &str = {prefix:?};
/// Its standard library directories, in `sys.path` order.
pub const STDLIB_PATHS: &[&str] = &{stdlib:?};
/// How the runtime gets its Python: `system` links the shared libpython.
pub const FLAVOR: &str = {flavor:?};
",
        major = version.major,
        minor = version.minor,
    );
    let out_dir = env::var("OUT_DIR").expect("OUT_DIR");
    fs::write(Path::new(&out_dir).join("build_python.rs"), out).expect("write build_python.rs");
}

fn is_default_library_dir(dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    ["/lib", "/lib64", "/usr/lib", "/usr/lib64"].contains(&dir)
        || (dir.starts_with("/usr/lib/") || dir.starts_with("/lib/")) && dir.ends_with("-linux-gnu")
}
