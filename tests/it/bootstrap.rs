//! The bootstrap leans on CPython's internals for speed (zipimport's table
//! of contents, `_frozen_importlib._find_spec`, `_imp.find_frozen`). A
//! CPython that changes them must get stock behaviour, not a broken app:
//! each change is simulated by handing the bootstrap a copy of the module
//! without the internal (or with another layout), in a real packed app's
//! interpreter, and the result is compared with stock zipimport's.

use crate::context::{TestContext, describe, stderr, stdout};

/// Run in the packed app's interpreter mode with a case name: installs the
/// bootstrap's shortcuts against simulated internals, then imports from the
/// archive and prints what stock machinery says about the results.
const SIMULATION: &str = r#"
import os, sys, types, zipimport, _imp, _frozen_importlib
import _pyferry_boot as boot
# The packed executable, whose zip is on sys.path (`sys.executable` is
# the app's python, a link to it).
archive = os.path.realpath(sys.executable)

def without(module, name):
    fake = types.ModuleType(module.__name__)
    fake.__dict__.update(vars(module))
    del fake.__dict__[name]
    return fake

def other_layout():
    # The table of contents with the file name no longer first.
    class changed(zipimport.zipimporter):
        def _get_files(self):
            base = zipimport.zipimporter
            files = base._get_files(self) if hasattr(base, "_get_files") else self._files
            return {key: (len(entry),) + tuple(entry) for key, entry in files.items()}
    fake = types.ModuleType("zipimport")
    fake.__dict__.update(vars(zipimport))
    fake.zipimporter = changed
    return fake

case = sys.argv[1]
zipimports = {
    "stock": zipimport,
    "no _get_module_path": without(zipimport, "_get_module_path"),
    "no _zip_searchorder": without(zipimport, "_zip_searchorder"),
    "other table layout": other_layout(),
}
frozen_imps = {
    "stock": _imp,
    "no find_frozen": without(_imp, "find_frozen"),
    "other find_frozen": types.SimpleNamespace(find_frozen=lambda name: ("changed",)),
}
spec_modules = {
    "stock": _frozen_importlib,
    "no _find_spec": without(_frozen_importlib, "_find_spec"),
}
print("installed:", boot._load_archive_modules_once(archive, zipimports.get(case, zipimport)))
import helper, pkg.sub
for module in (helper, pkg, pkg.sub):
    parent = module.__name__.rpartition(".")[0]
    stock = zipimport.zipimporter(sys.modules[parent].__path__[0] if parent else archive)
    same = module.__file__ == stock.get_filename(module.__name__) == module.__spec__.origin
    print(module.__name__, os.path.relpath(module.__file__, archive), same)
boot._locate_frozen_modules(os.path.dirname(os.__file__) if hasattr(os, "__file__") else "/stdlib",
                            frozen_imps.get(case, _imp))
print("stdlib dir set:", sys._stdlib_dir is not None)
boot._run_as_main("app", "helper", boot._spec_finder(spec_modules.get(case, _frozen_importlib)))
"#;

#[test]
fn bootstrap_shortcuts_fall_back_when_cpython_internals_change() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", "print('the app')\n"),
            (
                "helper.py",
                "if __name__ == '__main__':\n    print('helper runs as', __name__, __spec__.name)\n",
            ),
            ("pkg/__init__.py", ""),
            ("pkg/sub.py", ""),
        ],
    );
    let exe = cx.pack("internals", &[app.to_str().expect("utf-8")]);
    let simulate = |case: &str| {
        let output = cx.run_as_python(&exe, &["-c", SIMULATION, case]);
        assert!(output.status.success(), "{case}: {}", describe(&output));
        let text = stdout(&output);
        let (installed, rest) = text.split_once('\n').expect("lines");
        (installed.to_owned(), rest.to_owned())
    };
    let (installed, stock) = simulate("stock");
    assert_eq!(installed, "installed: True");
    assert!(stock.contains("helper runs as __main__ helper"), "{stock}");
    assert!(!stock.contains("False"), "{stock}");
    for case in [
        "no _get_module_path",
        "no _zip_searchorder",
        "other table layout",
    ] {
        assert_eq!(
            simulate(case),
            ("installed: False".to_owned(), stock.clone()),
            "{case}"
        );
    }
    for case in ["no find_frozen", "other find_frozen", "no _find_spec"] {
        assert_eq!(
            simulate(case),
            ("installed: True".to_owned(), stock.clone()),
            "{case}"
        );
    }
}

/// What a packed app checks of zipimport's table of its own archive (the
/// runtime's mapping) against the table CPython's `_read_directory` parses
/// from the same file.
const TABLE_CHECK: &str = r#"
import os, pkgutil, sys, zipimport
archive = os.path.realpath(sys.executable)
ours = zipimport._zip_directory_cache[archive]
stock = zipimport._read_directory(archive)
missing = "no/such/module.py"
print("the runtime's mapping:", type(ours) is not dict)
print("len:", len(ours) == len(stock) > 0)
print("keys in order:", list(ours) == list(stock) == ours.keys())
print("entries:", all(k in ours and ours[k] == v and ours.get(k) == v for k, v in stock.items()))
print("items, values:", ours.items() == list(stock.items()), ours.values() == list(stock.values()))
print("missing:", missing not in ours, 7 not in ours, ours.get(missing) is None, ours.get(missing, 7))
try:
    ours[missing]
except KeyError as error:
    print("KeyError:", error.args == (missing,))
listed = sorted(name for _, name, _ in pkgutil.iter_modules([archive]))
zipimport._zip_directory_cache[archive] = stock
print("pkgutil:", listed == sorted(name for _, name, _ in pkgutil.iter_modules([archive])))
import helper, pkg.sub
print("imported:", helper.__file__.startswith(archive), pkg.sub.VALUE)
"#;

#[test]
fn zipimports_table_of_the_archive_answers_as_cpythons_own() {
    let cx = TestContext::new();
    let app = cx.write_tree(
        "app",
        &[
            ("__main__.py", TABLE_CHECK),
            ("helper.py", ""),
            ("pkg/__init__.py", ""),
            ("pkg/sub.py", "VALUE = 'from pkg.sub'\n"),
        ],
    );
    let exe = cx.pack("table", &[app.to_str().expect("utf-8")]);
    let output = cx.run(&exe, &[] as &[&str]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        stdout(&output),
        "the runtime's mapping: True\nlen: True\nkeys in order: True\nentries: True\n\
         items, values: True True\nmissing: True True True 7\nKeyError: True\npkgutil: True\n\
         imported: True from pkg.sub\n"
    );
}

/// The bootstrap module, which the runtime imports from its compiled code,
/// against what stock zipimport makes of the same entry.
const BOOTSTRAP_MODULE_CHECK: &str = r#"
import importlib.util, os, sys, zipimport
ours = sys.modules["_pyferry_boot"]
spec = zipimport.zipimporter(os.path.realpath(sys.executable)).find_spec("_pyferry_boot")
stock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stock)
for name in ("name", "origin", "cached", "has_location", "submodule_search_locations", "parent"):
    print(name, getattr(ours.__spec__, name) == getattr(spec, name))
for name in ("__file__", "__cached__", "__name__", "__package__"):
    print(name, getattr(ours, name) == getattr(stock, name))
loader = type(ours.__loader__)
print("loader", ours.__loader__ is ours.__spec__.loader, (loader.__module__, loader.__qualname__) == ("zipimport", "zipimporter"), ours.__loader__.archive == spec.loader.archive)
print("same code", ours.main.__code__.co_code == stock.main.__code__.co_code)
"#;

#[test]
fn the_bootstrap_module_is_what_zipimport_would_make_of_it() {
    let cx = TestContext::new();
    let app = cx.write_tree("app", &[("__main__.py", BOOTSTRAP_MODULE_CHECK)]);
    let exe = cx.pack("boot", &[app.to_str().expect("utf-8")]);
    let output = cx
        .command(&exe)
        .env("PYFERRY_DEBUG", "1")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", describe(&output));
    // Not imported by zipimport after all (which would pass what follows).
    assert!(
        stderr(&output).contains("bootstrap: imported from its compiled code"),
        "{}",
        describe(&output)
    );
    let text = stdout(&output);
    assert!(!text.contains("False"), "{text}");
    assert_eq!(text.lines().count(), 12, "{text}");
}
