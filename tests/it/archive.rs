//! The file itself: a valid zip, reproducible, and readable by `inspect`.

use crate::context::{TestContext, describe, pyferry, stderr, stdout, success};
use pyferry::format::Flavor;
use std::fs;

const APP: &[(&str, &str)] = &[
    ("__main__.py", "import tool\ntool.run()\n"),
    (
        "tool/__init__.py",
        "def run():\n    print({'b', 'a', 'c'} == {'a', 'b', 'c'})\n",
    ),
    ("tool/data/info.txt", "data\n"),
];

#[test]
fn archive_is_a_valid_zip() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", APP);
    // `tool` holds data, so pack would extract it: kept in the outer zip
    // here, which must hold every kind of entry.
    let exe = cx.pack(
        "zipcheck",
        &["--no-extract", "tool", app.to_str().expect("utf-8")],
    );
    let listing = success(&cx.python(&["-m", "zipfile", "-l", exe.to_str().expect("utf-8")]));
    for name in [
        "__main__.py",
        "__main__.pyc",
        "tool/__init__.pyc",
        "tool/data/info.txt",
    ] {
        assert!(listing.contains(name), "{name} missing from:\n{listing}");
    }
    // unzip warns about the runtime in front of the zip, and then tests
    // every entry but the zstd pycs, which it skips (exit status 81:
    // "unsupported compression method"; the runtime checks them,
    // `first_run::a_damaged_module_...`). A standalone app's are frames of
    // its dictionary; a system app has none.
    let unzip = cx
        .command("unzip")
        .arg("-t")
        .arg(&exe)
        .output()
        .expect("run unzip");
    assert!(unzip.status.code() == Some(81), "{}", describe(&unzip));
    let report = stdout(&unzip);
    assert!(
        report.contains("No errors detected"),
        "{}",
        describe(&unzip)
    );
    let skipped: Vec<&str> = report
        .lines()
        .filter_map(|line| line.trim().strip_prefix("skipping: "))
        .collect();
    assert!(!skipped.is_empty(), "{}", describe(&unzip));
    for line in skipped {
        assert!(
            line.contains(".pyc ") && line.ends_with("unsupported compression method 93"),
            "{line}"
        );
    }
    let standalone = Flavor::CURRENT == Flavor::Standalone;
    let dictionary = standalone.then_some(".pyferry/pyc-dictionary");
    for name in ["tool/data/info.txt", "__main__.py"]
        .into_iter()
        .chain(dictionary)
    {
        assert!(
            report.lines().any(|line| {
                line.trim_start().starts_with(&format!("testing: {name} ")) && line.ends_with("OK")
            }),
            "{name} not tested:\n{report}"
        );
    }
}

#[test]
fn packing_is_reproducible() {
    let first = TestContext::new();
    let second = TestContext::new();
    let a = first.pack(
        "app",
        &[first.write_tree("src", APP).to_str().expect("utf-8")],
    );
    let b = second.pack(
        "app",
        &[second.write_tree("elsewhere", APP).to_str().expect("utf-8")],
    );
    assert!(
        fs::read(&a).expect("read") == fs::read(&b).expect("read"),
        "outputs differ"
    );
    // Again, where the standalone standard library now comes from the pack
    // cache: the same bytes.
    let again = first.pack("again", &["--name", "app", "src"]);
    assert!(
        fs::read(&again).expect("read") == fs::read(&a).expect("read"),
        "a cached standard library changed the output"
    );

    let dated = first
        .command(pyferry())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["pack", "-o", "dated", "src"])
        .output()
        .expect("pack");
    assert!(dated.status.success(), "{}", describe(&dated));
    let listing = stdout(
        &first
            .command("unzip")
            .args(["-l", "dated"])
            .output()
            .expect("unzip"),
    );
    assert!(listing.contains("2023-11-14 22:13"), "{listing}");
}

#[test]
fn inspect_reads_back_the_manifest() {
    let cx = TestContext::new();
    let app = crate::native::build_native_app(&cx);
    let exe = cx.pack(
        "native",
        &["--name", "fast-app", app.to_str().expect("utf-8")],
    );
    let report = cx.inspect_json(&exe);
    assert_eq!(report["name"], "fast-app");
    assert_eq!(report["entry_point"], "__main__");
    assert_eq!(report["python"], pyferry::build_python::PYTHON_VERSION);
    // A standalone app also carries its standard library, extracted too.
    // `__main__.py` names `__file__` (of another module, but pack cannot
    // tell), so it is extracted too.
    let mut units = vec!["__main__.py", "__pycache__", "fastpkg", "fastpkg.libs"];
    if Flavor::CURRENT == Flavor::Standalone {
        units.push(pyferry::format::stdlib_unit::UNIT);
    }
    assert_eq!(report["extracted_units"], serde_json::json!(units));
    let files: Vec<&str> = report["extracted_files"]
        .as_array()
        .expect("list")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert!(
        files.contains(&"fastpkg.libs/libvendored-1a2b3c4d.so"),
        "{files:?}"
    );
    assert_eq!(report["file_size"], fs::metadata(&exe).expect("stat").len());

    let text = success(
        &cx.command(pyferry())
            .arg("inspect")
            .arg(&exe)
            .output()
            .expect("inspect"),
    );
    assert!(text.contains("entry point:   __main__"), "{text}");

    let plain = cx
        .command(pyferry())
        .arg("inspect")
        .arg(pyferry())
        .output()
        .expect("inspect");
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("is not an executable packed by pyferry")
    );
}

#[test]
fn packed_apps_survive_every_strip_mode() {
    let cx = TestContext::new();
    let app = crate::native::build_native_app(&cx);
    let exe = cx.pack("stripped", &[app.to_str().expect("utf-8")]);
    let expected = success(&cx.run(&exe, &["1"]));
    for (i, mode) in [
        &[][..],
        &["--strip-all"],
        &["--strip-debug"],
        &["--strip-unneeded"],
    ]
    .into_iter()
    .enumerate()
    {
        let copy = cx.path().join("copy");
        fs::copy(&exe, &copy).expect("copy");
        let status = cx
            .command("strip")
            .args(mode)
            .arg(&copy)
            .status()
            .expect("strip");
        assert!(status.success());
        assert_ne!(
            fs::read(&copy).expect("read"),
            fs::read(&exe).expect("read")
        );
        // Imports from the archive and a first run's extraction from the
        // stripped file (a fresh cache) both still work.
        let cache = cx.path().join(format!("cache-{i}"));
        let output = cx
            .command(&copy)
            .arg("1")
            .env("PYFERRY_CACHE_DIR", &cache)
            .env("PYFERRY_DEBUG", "1")
            .output()
            .expect("run");
        let expected = expected.replace(
            cx.cache_dir().to_str().expect("utf-8"),
            cache.to_str().expect("utf-8"),
        );
        assert_eq!(success(&output), expected, "strip {mode:?}");
        assert!(
            stderr(&output).contains("pyferry[debug]: extracted"),
            "strip {mode:?}: {}",
            describe(&output)
        );
    }
}

#[test]
fn pip_installed_projects_pack_reproducibly_from_anywhere() {
    let first = TestContext::new();
    let second = TestContext::new();
    let pack = |cx: &TestContext, dir: &str| {
        let project = crate::wheels::greet_project(cx, dir);
        let args = [
            "-c",
            "greet",
            project.as_str(),
            "--",
            "--no-build-isolation",
            "--no-index",
        ];
        fs::read(cx.pack("greet", &args)).expect("read")
    };
    // pip records a local project's path (direct_url.json): it must not leak.
    assert!(
        pack(&first, "one") == pack(&second, "some/other/place"),
        "outputs differ"
    );
}

/// More than 65,535 files: the native archive is zip64, whose entry count
/// (for the check that no two entries share a name) is in the zip64 end
/// record.
#[test]
fn an_app_with_more_than_65535_files_packs_and_runs() {
    let cx = TestContext::new();
    let app = cx.path().join("many-app");
    let data = app.join("many/data");
    fs::create_dir_all(&data).expect("mkdir");
    for i in 0..66_000 {
        fs::write(data.join(format!("{i}.txt")), i.to_string()).expect("write");
    }
    fs::write(app.join("many/__init__.py"), "").expect("write");
    let main = "import os, many\n\
        data = os.path.join(os.path.dirname(many.__file__), 'data')\n\
        print(len(os.listdir(data)), open(os.path.join(data, '65999.txt')).read())\n";
    fs::write(app.join("__main__.py"), main).expect("write");
    let python = success(&cx.python(&[app.join("__main__.py")]));
    let exe = cx.pack("many", &[app.to_str().expect("utf-8")]);
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), python);
}

/// Apps are written on `pyferry-runtime` (the runtime without the builder),
/// beside pyferry; one of another build is refused, and with none pyferry
/// writes apps on itself. Each app runs as python runs it.
#[test]
fn apps_are_written_on_the_bare_runtime_of_the_same_build() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", APP);
    let app = app.to_str().expect("utf-8");
    let expected = success(&cx.python(&[app]));
    let runtime_size = |exe: &std::path::Path| {
        cx.inspect_json(exe)["runtime_size"]
            .as_u64()
            .expect("a size")
    };
    let bare = env!("CARGO_BIN_EXE_pyferry-runtime");
    let bare_len = fs::metadata(bare).expect("pyferry-runtime").len();
    let own_len = fs::metadata(pyferry()).expect("pyferry").len();
    assert!(bare_len < own_len, "{bare_len} vs {own_len}");

    let exe = cx.pack("on-bare", &[app]);
    assert_eq!(runtime_size(&exe), bare_len.next_multiple_of(16));
    assert_eq!(success(&cx.run(&exe, &[] as &[&str])), expected);

    // A copy of pyferry alone, and one beside a stranger's runtime.
    let alone = cx.path().join("alone");
    fs::create_dir(&alone).expect("mkdir");
    fs::copy(pyferry(), alone.join("pyferry")).expect("copy");
    let pack_with = |dir: &std::path::Path, out: &str| {
        cx.command(dir.join("pyferry"))
            .args(["pack", "-o"])
            .arg(cx.path().join(out))
            .arg(app)
            .output()
            .expect("pack")
    };
    success(&pack_with(&alone, "on-itself"));
    let on_itself = cx.path().join("on-itself");
    assert_eq!(runtime_size(&on_itself), own_len.next_multiple_of(16));
    assert_eq!(success(&cx.run(&on_itself, &[] as &[&str])), expected);

    let stranger = cx.path().join("stranger");
    fs::create_dir(&stranger).expect("mkdir");
    fs::copy(pyferry(), stranger.join("pyferry")).expect("copy");
    fs::copy("/bin/true", stranger.join("pyferry-runtime")).expect("copy");
    let refused = pack_with(&stranger, "on-stranger");
    assert!(
        !refused.status.success()
            && stderr(&refused).contains("is not the runtime of this pyferry"),
        "{}",
        describe(&refused)
    );
    assert!(!cx.path().join("on-stranger").exists());
}

/// The standalone runtime apps are written on is the one `make build` laid
/// out by how apps use it (`tools/bolt-runtime`: BOLT keeps the code it
/// moved from as `.bolt.org.text`), with no unwind tables. After an edit,
/// `cargo test` links a plain runtime again, which is not what users get:
/// `make build` first.
#[cfg(pyferry_flavor = "standalone")]
#[test]
fn the_standalone_runtime_is_laid_out_by_its_profile() {
    let runtime = env!("CARGO_BIN_EXE_pyferry-runtime");
    let headers = success(
        &std::process::Command::new("readelf")
            .args(["-SW", runtime])
            .output()
            .expect("readelf (binutils)"),
    );
    let sections: Vec<&str> = headers
        .lines()
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with('.')))
        .collect();
    assert!(
        sections.contains(&".bolt.org.text"),
        "{runtime} is not laid out by tools/bolt-runtime (build with `make build`): {sections:?}"
    );
    assert!(!sections.contains(&".eh_frame"), "{sections:?}");
}
