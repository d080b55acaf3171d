//! Build script: ties the runtime to one CPython, linked one of two ways.
//!
//! pyo3's build configuration picks the interpreter (`PYO3_PYTHON`); pyo3
//! itself is told not to link libpython (`PYO3_BUILD_EXTENSION_MODULE` in
//! `.cargo/config.toml`) because the flavor decides how, here:
//!
//! - `standalone` (the default): `libpython3.X.a` linked whole, its symbols
//!   exported for the extension modules it will `dlopen`; the standard
//!   library travels in every archive (see `builder::pack::stdlib`).
//! - `system` (`PYFERRY_FLAVOR=system`): the interpreter's shared
//!   `libpython3.X.so`, and its installed standard library.
//!
//! The flavor becomes the `pyferry_flavor` cfg. We ask the interpreter
//! about itself, so the runtime can set `sys.path` itself instead of letting `PYTHONPATH`/`PYTHONHOME` leak in. The facts are
//! written to `$OUT_DIR/build_python.rs`.

#![expect(
    clippy::disallowed_macros,
    reason = "cargo reads a build script's directives from its stdout"
)]

use std::env;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Asked of the build interpreter; one fact per line, paths last.
const PROBE: &str = "\
import sys, sysconfig
v = sysconfig.get_config_var
print(sys.base_prefix)
print(sys.executable)
print('.'.join(map(str, sys.version_info[:3])))
print(v('SOABI'))
print(v('LIBPL'))
print(v('LIBRARY'))
print(' '.join(f if f.startswith('-l') else '-l' + f.rsplit('/', 1)[-1][3:-2] for f in f\"{v('LIBS')} {v('SYSLIBS')} {v('MODLIBS') or ''}\".split() if f.startswith('-l') or f.endswith('.a')))
print(sysconfig.get_path('stdlib'))
print(*[p for p in sys.path if p], sep='\\n')";

/// The file in the prefix of pyferry's own CPython that says so (and names
/// the target it was built for): `tools/portable-python/build` writes it.
const PORTABLE_MARK: &str = "pyferry-portable-target";

/// The facts the probe prints, in order.
struct Facts<'a> {
    prefix: &'a str,
    executable: &'a str,
    full_version: &'a str,
    soabi: &'a str,
    static_dir: &'a str,
    static_library: &'a str,
    system_libraries: &'a str,
    stdlib_dir: &'a str,
    stdlib: Vec<&'a str>,
}

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYFERRY_FLAVOR");
    // Another build of the interpreter at the same path is a change too:
    // pyferry's own CPython is a link into its cache, which a new build
    // points elsewhere (cargo follows the link to the newer file).
    if let Some(python) = std::env::var_os("PYO3_PYTHON").filter(|path| Path::new(path).is_file()) {
        println!("cargo:rerun-if-changed={}", Path::new(&python).display());
    }

    let config = pyo3_build_config::get();
    let python = config
        .executable()
        .expect("pyo3 found no Python executable: set PYO3_PYTHON")
        .to_owned();
    let version = config.version();

    let output = Command::new(&python)
        .args(["-I", "-S", "-c", PROBE])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the build interpreter `{python}`: {e}"));
    assert!(
        output.status.success(),
        "`{python}` failed to describe itself: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("interpreter paths must be UTF-8");
    let mut lines = text.lines();
    let mut next = || lines.next().expect("the probe prints every fact");
    let facts = Facts {
        prefix: next(),
        executable: next(),
        full_version: next(),
        soabi: next(),
        static_dir: next(),
        static_library: next(),
        system_libraries: next(),
        stdlib_dir: next(),
        stdlib: lines.collect(),
    };

    let flavor = env::var("PYFERRY_FLAVOR").unwrap_or_else(|_| "standalone".to_owned());
    match flavor.as_str() {
        "standalone" => link_static(&python, &facts),
        "system" => link_shared(&python, config),
        _ => panic!("unknown PYFERRY_FLAVOR `{flavor}` (this build knows: standalone, system)"),
    }
    // The flavor is a compile-time choice: code and tests of the other
    // flavor are not compiled at all.
    println!("cargo::rustc-check-cfg=cfg(pyferry_flavor, values(\"standalone\", \"system\"))");
    println!("cargo:rustc-cfg=pyferry_flavor=\"{flavor}\"");
    // A digest of the linked binary, which `pack` keys its cache with.
    println!("cargo:rustc-link-arg=-Wl,--build-id=sha1");
    // Not position-independent, as Debian links its own python3: the
    // linker resolves the ~36,000 absolute addresses in CPython's static
    // data (type objects, deep-frozen modules) instead of the loader at
    // every start, which leaves 0.9 MB of relocations out of every app and
    // those pages clean.
    println!("cargo:rustc-link-arg-bins=-no-pie");
    // The build that `tools/bolt-runtime` lays out again (the `bolt-input`
    // profile): BOLT moves code only where the link kept its relocations.
    // Without unwind tables: BOLT would write them anew and keep the old
    // ones too (0.9 MB in every app), and nothing in a running app needs
    // them: panic = "abort" never unwinds; CPython's C does not take C++
    // exceptions through its frames; glibc's `pthread_exit` unwinds to the
    // first frame without them ("end of unwind data") and jumps from there
    // to the thread's start, as it would past C frames, which have no
    // cleanups to run. A debugger's backtrace through the runtime's own
    // frames is what they cost.
    println!("cargo:rerun-if-env-changed=PYFERRY_LINK_FOR_BOLT");
    let portable = flavor == "standalone" && is_portable(&facts);
    if env::var_os("PYFERRY_LINK_FOR_BOLT").is_some() {
        let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
        let script = Path::new(&out_dir).join("no-unwind-tables.ld");
        fs::write(
            &script,
            "SECTIONS { /DISCARD/ : { *(.eh_frame) } } INSERT AFTER .text;\n",
        )
        .expect("write a linker script to OUT_DIR");
        // Zig's linker driver refuses it: tools/portable-python/zig-link
        // asks ld.lld itself, for the same variable.
        if !portable {
            println!("cargo:rustc-link-arg-bin=pyferry-runtime=-Wl,--emit-relocs");
        }
        println!(
            "cargo:rustc-link-arg-bin=pyferry-runtime=-Wl,-T,{}",
            script.display()
        );
    }

    let out = format!(
        "/// `major.minor` of the CPython this runtime embeds.
pub const PYTHON_VERSION: &str = \"{major}.{minor}\";
/// Its full version: a standalone archive's standard library must match it.
pub const PYTHON_FULL_VERSION: &str = {full_version:?};
/// Its ABI tag (`cpython-311-x86_64-linux-gnu`), which extension modules carry.
pub const PYTHON_SOABI: &str = {soabi:?};
/// The interpreter that was linked; the default build interpreter for `pack`.
pub const BUILD_PYTHON: &str = {executable:?};
/// `sys.base_prefix` of that interpreter (its `PYTHONHOME`, system flavor).
pub const PYTHON_HOME: &str = {prefix:?};
/// Its standard library directories, in `sys.path` order (system flavor).
pub const STDLIB_PATHS: &[&str] = &{stdlib:?};
/// The one of them that holds `os.py` (system flavor).
pub const STDLIB_DIR: &str = {stdlib_dir:?};
/// What `pyferry --version` says after its name.
pub const VERSION_TEXT: &str = \"{pyferry_version} ({flavor} flavor, CPython {full_version})\";
",
        pyferry_version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION"),
        major = version.major,
        minor = version.minor,
        full_version = facts.full_version,
        soabi = facts.soabi,
        executable = facts.executable,
        prefix = facts.prefix,
        stdlib = facts.stdlib,
        stdlib_dir = facts.stdlib_dir,
    );
    let out = format!(
        "{out}
/// What tells this build of pyferry from others (its sources, flavor and
/// CPython): `pyferry` writes apps only on a `pyferry-runtime` of the same
/// build.
pub const BUILD_ID: &str = \"pyferry-build-{build_id:016x}\";
",
        build_id = build_id(&flavor, facts.full_version),
    );
    let out_dir = env::var("OUT_DIR").expect("OUT_DIR");
    fs::write(Path::new(&out_dir).join("build_python.rs"), out).expect("write build_python.rs");
}

/// A hash of every source file (path and bytes), the lock file, the flavor
/// and the CPython version: the same for the two binaries of one build.
fn build_id(flavor: &str, python: &str) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let mut files = vec![Path::new("Cargo.lock").to_owned()];
    let mut dirs = vec![Path::new("src").to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("read src").path();
            match path.is_dir() {
                true => dirs.push(path),
                false => files.push(path),
            }
        }
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    hasher.write(flavor.as_bytes());
    hasher.write(python.as_bytes());
    for file in files {
        hasher.write(file.to_string_lossy().as_bytes());
        hasher.write(&fs::read(&file).expect("read a source file"));
    }
    hasher.finish()
}

/// Links `libpython3.X.a` whole, so that every C API function an extension
/// module may call is present, and exports its symbols (`dlopen`ed
/// extensions resolve them against the executable).
fn link_static(python: &str, facts: &Facts) {
    let archive = Path::new(facts.static_dir).join(facts.static_library);
    assert!(
        archive.is_file(),
        "the standalone flavor links a static libpython, and `{python}` has none at `{}`: \
         use an interpreter built with one (pyenv's have it), or PYFERRY_FLAVOR=system",
        archive.display()
    );
    println!("cargo:rerun-if-changed={}", archive.display());
    let name = facts
        .static_library
        .strip_prefix("lib")
        .and_then(|name| name.strip_suffix(".a"))
        .expect("LIBRARY is libNAME.a");
    // As libraries (not trailing link arguments), so that they come before
    // std's `-lgcc_s` on the linker's command line.
    println!("cargo:rustc-link-search=native={}", facts.static_dir);
    println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={name}");
    println!("cargo:rustc-link-arg=-Wl,--export-dynamic");
    // The libraries its modules use: static ones where they lie beside
    // libpython (pyferry's own CPython puts them there), glibc's shared.
    let mut named = std::collections::BTreeSet::new();
    for library in facts.system_libraries.split_whitespace() {
        let library = library.strip_prefix("-l").expect("only -l flags");
        if !named.insert(library) {
            continue; // rustc takes each once
        }
        match Path::new(facts.static_dir)
            .join(format!("lib{library}.a"))
            .is_file()
        {
            true => println!("cargo:rustc-link-lib=static:-bundle={library}"),
            false => println!("cargo:rustc-link-lib={library}"),
        }
    }
    // pyferry's own CPython (tools/portable-python) is linked by Zig's
    // linker, which brings its compiler runtime and unwinder and links for
    // the glibc the build targets: nothing of the machine's gcc may join.
    // (No rerun-if-changed on the mark: one on a missing file reruns this
    // script at every cargo run, and relinks the runtime BOLT laid out.
    // Another CPython is another PYO3_PYTHON.)
    if is_portable(facts) {
        return;
    }
    // Rust's std unwinds through libgcc_s.so.1, and libpython may call
    // libgcc helpers (`__popcountdi2`): none of it is part of glibc. Their
    // static twins, met first, keep the executable's needs to glibc alone.
    let unwind = gcc_file("libgcc_eh.a").expect("gcc knows where libgcc_eh.a is");
    let gcc_dir = Path::new(&unwind).parent().expect("a file has a directory");
    println!("cargo:rustc-link-search=native={}", gcc_dir.display());
    println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    println!("cargo:rustc-link-lib=static:-bundle=gcc");
}

/// Whether the build interpreter is pyferry's own CPython.
fn is_portable(facts: &Facts) -> bool {
    Path::new(facts.prefix).join(PORTABLE_MARK).is_file()
}

/// Links the interpreter's shared libpython.
fn link_shared(python: &str, config: &pyo3_build_config::InterpreterConfig) {
    assert!(
        config.shared(),
        "the system flavor needs a shared libpython (Py_ENABLE_SHARED=1): `{python}` has none"
    );
    let lib_name = config.lib_name().expect("pyo3 knows libpython's name");
    println!("cargo:rustc-link-lib={lib_name}");
    if let Some(lib_dir) = config.lib_dir() {
        println!("cargo:rustc-link-search=native={lib_dir}");
        // A libpython outside the linker's default directories (pyenv, a
        // custom prefix) must be found at run time without LD_LIBRARY_PATH.
        if !is_default_library_dir(lib_dir) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        }
    }
}

/// A file of the C compiler's own runtime (`gcc -print-file-name`).
fn gcc_file(name: &str) -> Option<String> {
    let output = Command::new("gcc")
        .arg(format!("-print-file-name={name}"))
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    Path::new(&path).is_absolute().then_some(path)
}

fn is_default_library_dir(dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    ["/lib", "/lib64", "/usr/lib", "/usr/lib64"].contains(&dir)
        || (dir.starts_with("/usr/lib/") || dir.starts_with("/lib/")) && dir.ends_with("-linux-gnu")
}
