# pyferry's bootstrap, the module `_pyferry_boot` of every archive: `pack`
# byte-compiles it with the app, so no start pays for compiling it, and the
# runtime imports it. The runtime's `-c` command (PyConfig.run_command) is
# one line, `_pyferry_runtime.start()`, which calls `main(...)` (`python`
# in python mode) with arguments the runtime made, binding no name, so
# `__main__` stays as `python -m` would find it. It shows tracebacks with
# source lines from the archive, and runs the entry point: a module as
# `__main__`, or a function like a console script.
#
# Its shortcuts lean on CPython's internals (zipimport's table of contents,
# `_frozen_importlib._find_spec`, `_imp.find_frozen`). Each is checked before
# use and falls back to stock behaviour (slower, still correct) when a
# CPython changes them: the app must run either way.
import sys


def main(app, module, function, log, stdlib_dir, archived_stdlib, qt_platforms, deferred, archive):
    # `archive`: the packed executable, whose zip is on sys.path
    # (`sys.executable` is the app's python, a link of its own).
    import _imp
    import zipimport

    global _archive
    _archive = archive

    if sys.version_info < (3, 11):
        # No PyConfig.safe_path before 3.11: CPython put the executable's
        # directory in front of sys.path. The app sees only its own paths.
        del sys.path[0]
    else:
        _locate_frozen_modules(stdlib_dir, _imp)
    _load_archive_modules_once(archive, zipimport, archived_stdlib, stdlib_dir)
    _watch_for_linecache()
    if deferred is not None:
        global _deferred
        _deferred = _ExtractOnFirstUse(*deferred)
        sys.meta_path.insert(0, _deferred)
    if qt_platforms:
        sys.meta_path.insert(0, _QtPlatformCheck(app, qt_platforms))
    _add_site_builtins()
    own_frames = ("<string>", "<frozen runpy>", main.__code__.co_filename)

    def excepthook(exc_type, exc, tb):
        # Start the traceback at the app's code, as `python -m` shows it.
        while isinstance(exc, BaseException) and tb is not None \
                and tb.tb_frame.f_code.co_filename in own_frames:
            tb = tb.tb_next
        text = _show_traceback(exc_type, exc, tb)
        if text is not None and exc_type is not KeyboardInterrupt:
            _log_failure(log, f"{app} died from an uncaught exception", text)

    _install_excepthook(excepthook)
    try:
        _run_entry_point(app, module, function)
    except SystemExit as exit:
        # `sys.exit("message")`, a command line's error (or the Qt check's):
        # double-clicked, it is kept too, as an uncaught exception is.
        if isinstance(exit.code, str):
            _log_failure(log, f"{app} stopped with an error", exit.code + "\n")
        raise


def _run_entry_point(app, module, function):
    if function is None:
        import _frozen_importlib

        find = _spec_finder(_frozen_importlib)
        if module == "__main__":
            sys.meta_path.append(_MainAlias(find))
        _run_as_main(app, module, find)
        return

    try:
        __import__(module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (module + ".").startswith(missing + "."):
            sys.exit(
                f"{app}: error: the entry point module `{module}` is not in the app "
                f"({error})\n  hint: pack it again with the right `-e MODULE[:FUNC]`"
            )
        raise
    target = sys.modules[module]
    for attribute in function.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            sys.exit(
                f"{app}: error: the entry point `{module}:{function}` does not exist "
                f"(`{module}` has no `{function}`)\n"
                f"  hint: pack it again with the right `-e MODULE[:FUNC]`"
            )
    _call_like_a_console_script(function, getattr(sys.modules[module], function.split(".")[0]))


# CPython's own hook, which prints tracebacks from files only.
_c_excepthook = sys.__excepthook__


def _install_excepthook(hook):
    # As `sys.__excepthook__` too: code compares the two to tell whether
    # someone installed a hook (`code.InteractiveConsole` then hands it the
    # whole traceback; libraries warn that another hook is there) and
    # restores `sys.__excepthook__` to undo its own.
    sys.excepthook = sys.__excepthook__ = hook


def _show_traceback(exc_type, exc, tb):
    # What CPython's own hook prints, with source lines from the archive:
    # the C hook reads them from files only, linecache asks the zip
    # importer. Returns the text, or None if the C hook printed it.
    stderr = sys.stderr  # kept, as the C hook keeps it (bpo-43660)
    if not isinstance(exc, BaseException):
        # A call that is not an exception: the C hook says so (TypeError).
        _c_excepthook(exc_type, exc, tb)
        return None
    try:
        import traceback
    except BaseException:
        _c_excepthook(exc_type, exc, tb)
        text = None
    else:
        text = "".join(traceback.format_exception(exc_type, exc, tb, limit=_traceback_limit()))
        text += _missing_library_hint(exc)
        if stderr is not None:  # None when fd 2 is closed
            stderr.write(text)
            try:
                stderr.flush()
            except Exception:
                pass  # The C hook ignores a file that cannot flush.
    if exc_type is KeyboardInterrupt:
        # CPython dies by SIGINT after an unhandled KeyboardInterrupt,
        # remembered in a flag that any exec() of a string resets (and
        # importing traceback runs some). Set it again the same way.
        try:
            exec("raise KeyboardInterrupt")
        except KeyboardInterrupt:
            pass
    return text


def _traceback_limit():
    # `sys.tracebacklimit` as the C hook reads it: the last N entries (N
    # clamped to a C long), and none at all for N <= 0 (the traceback
    # module's own reading of it keeps the first N).
    limit = getattr(sys, "tracebacklimit", None)
    if not isinstance(limit, int):
        return None
    return -min(limit, sys.maxsize) if limit > 0 else 0


def _log_failure(log, what, text):
    # Nobody reads stderr (double-clicked): keep the message where the
    # runtime's notice will point.
    if log is None:
        return
    try:
        import time

        with open(log, "a", encoding="utf-8", errors="replace") as file:
            file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{text}")
    except OSError:
        pass


def _missing_library_hint(exc):
    # An extension module whose library the system lacks fails to import
    # with dlopen's message, `libfoo.so.1: cannot open shared object file`.
    # Say what to install, as the Qt check does.
    if not isinstance(exc, ImportError) or isinstance(exc, ModuleNotFoundError):
        return ""
    message = str(exc.msg if exc.msg is not None else exc)
    soname, found, _ = message.partition(": cannot open shared object file")
    if not found or "/" in soname or ".so" not in soname:
        return ""
    return f"  hint: this system lacks the library {soname}: {_how_to_install([soname])}\n"


def _how_to_install(sonames):
    # Debian names a library's package after its soname (libxcb-icccm.so.4:
    # libxcb-icccm4, libX11.so.6: libx11-6); Fedora installs the package
    # that provides the soname itself.
    debian = dict.fromkeys(_debian_package(soname) for soname in sonames)
    fedora = " ".join(f"'{soname}()(64bit)'" for soname in sonames)
    return (
        f"install it (Debian, Ubuntu: `sudo apt install {' '.join(debian)}`; "
        f"Fedora: `sudo dnf install {fedora}`), then start the app again"
    )


# Libraries whose Debian package is not named after them.
_DEBIAN_PACKAGES = {
    "libglib-2.0": "libglib2.0-0",
    "libgobject-2.0": "libglib2.0-0",
    "libgio-2.0": "libglib2.0-0",
    "libgmodule-2.0": "libglib2.0-0",
    "libgthread-2.0": "libglib2.0-0",
    "libGLdispatch": "libglvnd0",
}


def _debian_package(soname):
    name, _, version = soname.partition(".so")
    if name in _DEBIAN_PACKAGES:
        return _DEBIAN_PACKAGES[name]
    name = name.lower().replace("_", "-")
    version = version[1:].split(".")[0]
    if not version:
        return name
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


class _QtPlatformCheck:
    # On sys.meta_path until the app imports a Qt binding's GUI module. Qt
    # loads its platform plugin when the app creates its application
    # object, and when a library that plugin takes from the desktop is
    # missing, it aborts with a message that names none. Before the first
    # GUI module is imported, the libraries of the platforms Qt will try
    # are loaded here; if no platform has all of them, the app stops with
    # their names and what to install. Answers for no module.
    #
    # The first import of any GUI module (QtWidgets, QtQuick...) is
    # watched, not only QtGui's: the app's Python code imports that one,
    # and its extension module imports QtGui from C, where PySide turns any
    # failure into "could not import module" and drops our message.
    def __init__(self, app, bindings):
        self._app = app
        self._bindings = {}
        for modules, plugins in bindings:
            for module in modules:
                self._bindings[module] = (modules, plugins)

    def find_spec(self, name, path=None, target=None):
        binding = self._bindings.get(name)
        if binding is None:
            return None
        modules, plugins = binding
        for module in modules:
            self._bindings.pop(module, None)
        if not self._bindings:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass
        missing = _qt_platforms_missing(plugins)
        if missing:
            raise SystemExit(_qt_missing_message(self._app, missing))
        return None


def _qt_platforms_missing(plugins):
    # {platform: [missing libraries]} when every platform Qt will try lacks
    # some; empty when one has all it needs, or when Qt's choice is one we
    # cannot check (Qt then decides as it would).
    import os

    try:
        from _ctypes import dlopen
    except ImportError:
        return {}
    missing = {}
    for platform in _qt_platforms_wanted(os.environ, sys.argv):
        # `wayland-egl` and `wayland-brcm` are served by `libqwayland.so`.
        libraries = plugins.get(platform, plugins.get(platform.split("-")[0]))
        if libraries is None:
            return {}
        lacking = []
        for soname in libraries:
            try:
                dlopen(soname, os.RTLD_LAZY)
            except OSError as error:
                # A library present without one of its own: name that one.
                named, found, _ = str(error).partition(": cannot open shared object file")
                lacking.append(named if found and "/" not in named else soname)
        if not lacking:
            return {}
        missing[platform] = list(dict.fromkeys(lacking))
    return missing


def _qt_platforms_wanted(environ, argv):
    # As Qt chooses: `-platform NAME` on the command line, QT_QPA_PLATFORM
    # (`wayland;xcb` tries each in turn), else xcb, after wayland on a
    # Wayland desktop.
    chosen = None
    for i, arg in enumerate(argv[1:-1], 1):
        if arg in ("-platform", "--platform"):
            chosen = argv[i + 1]
    chosen = chosen or environ.get("QT_QPA_PLATFORM")
    if chosen:
        names = [name.split(":")[0].strip() for name in chosen.split(";")]
        return [name for name in names if name]
    if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
        return ["wayland", "xcb"]
    return ["xcb"]


def _qt_missing_message(app, missing):
    lacking = list(dict.fromkeys(soname for sonames in missing.values() for soname in sonames))
    which = "; ".join(f"`{platform}` needs {', '.join(sonames)}" for platform, sonames in missing.items())
    return (
        f"{app}: error: Qt cannot open this app's windows: this system lacks libraries "
        f"of its platform plugins ({which})\n"
        f"  hint: {_how_to_install(lacking).replace('install it', 'install them', 1)}"
    )


# pip's console-script wrapper, whose last line calls the function: in a
# venv, tracebacks and warnings (`stacklevel=2`) name this frame, as
# `File "/venv/bin/tool", line 8, in <module>`. The app names the same
# line of its executable; linecache is given the text (`_seed_linecache`).
_CONSOLE_SCRIPT_LINE = 8


def _call_like_a_console_script(function, head):
    # Indented as in pip's wrapper, for the carets under the call.
    lines = ["\n"] * (_CONSOLE_SCRIPT_LINE - 2)
    lines += ["if __name__ == '__main__':\n", f"    sys.exit({function}())\n"]
    code = compile("".join(lines), _archive, "exec", dont_inherit=True)
    _console_script_lines[:] = lines
    if "linecache" in sys.modules:
        _seed_console_script(sys.modules["linecache"])
    exec(code, {"__name__": "__main__", "sys": sys, function.split(".")[0]: head})


_console_script_lines = []
# The packed executable (`main`'s and `python`'s `archive`).
_archive = None


def python(stdlib_dir, archived_stdlib, site, venv, archive, app_paths):
    # Python mode (`PYFERRY_INTERPRETER=1`, the app's `sys.executable`
    # children, a venv's python): what python has set up before its command
    # line runs. `site`: python was not given `-S`. `venv`: started as the
    # `bin/python` of a venv (sys.executable), whose site-packages and
    # `.pth` files `site` adds, as it does for python in a venv; the app's
    # own entries of sys.path (`app_paths`, left out of a venv's) come after
    # them when the venv includes the system's site-packages, as the base
    # python's do in a stock venv.
    import _frozen_importlib
    import _imp
    import zipimport

    global _archive
    _archive = archive

    if sys.version_info >= (3, 11):
        _locate_frozen_modules(stdlib_dir, _imp)
    _load_archive_modules_once(archive, zipimport, archived_stdlib, stdlib_dir)
    _watch_for_linecache()
    _install_excepthook(_show_traceback)
    sys.meta_path.append(_MainAlias(_spec_finder(_frozen_importlib)))
    if site and venv:
        import site as site_module

        site_module.main()
        if sys.base_prefix in getattr(site_module, "PREFIXES", ()):
            sys.path.extend(app_paths)
    elif site:
        _add_site_builtins()
        _run_sitecustomize()


def _run_sitecustomize():
    # As python's `site` does: a `sitecustomize` on sys.path runs. pip's
    # isolated build environments put theirs on PYTHONPATH to add the build
    # requirements; so do other tools. Errors are reported as `site` does.
    try:
        try:
            import sitecustomize  # noqa: F401
        except ImportError as exc:
            if exc.name != "sitecustomize":
                raise  # An import inside it failed: reported below.
    except Exception as exc:
        if sys.flags.verbose:
            sys.excepthook(*sys.exc_info())
        else:
            sys.stderr.write(
                "Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                f"{type(exc).__name__}: {exc}\n"
            )


def _add_site_builtins():
    # What `site` gives every python program (`exit`, `quit`, `help`,
    # `copyright`, `credits`, `license`), without running `site` itself: it
    # would also add site-packages, .pth files and the user's site
    # directory, which the app must not see. Each is made by `site`'s own
    # function when first used, so that no start pays for importing it.
    import builtins

    for setter, names in _SITE_BUILTINS:
        for name in names:
            setattr(builtins, name, _FromSite(name, setter))


_SITE_BUILTINS = (
    ("setquit", ("exit", "quit")),
    ("sethelper", ("help",)),
    ("setcopyright", ("copyright", "credits", "license")),
)


class _FromSite:
    # Importing `site` does not run it when python starts without it
    # (`sys.flags.no_site`): only the function that makes the builtin runs,
    # and replaces this stand-in in `builtins`.
    def __init__(self, name, setter):
        self._name = name
        self._setter = setter

    def _made_by_site(self):
        import builtins
        import site

        if self._name == "license" and _deferred is not None:
            _deferred.extract()  # It reads LICENSE.txt beside `os`.

        getattr(site, self._setter)()
        return getattr(builtins, self._name)

    def __repr__(self):
        return repr(self._made_by_site())

    def __call__(self, *args, **kwargs):
        return self._made_by_site()(*args, **kwargs)


def _load_archive_modules_once(archive, zipimport, archived_stdlib=None, stdlib_dir=None):
    # To name a module's file (for its spec), zipimport loads the module's
    # code, and then loads it again to run it: every module of the archive
    # was read and unmarshalled twice. In our archive a module's file is the
    # first of zipimport's candidates that exists (pycs are never stale), so
    # naming it needs no load: a quarter off importing 300 modules. Returns
    # whether the shortcut was installed.
    #
    # The standalone standard library's compiled modules are in the archive
    # (`archived_stdlib`), their sources extracted (`stdlib_dir`): a
    # standard module's file is its source there, as under python, where
    # linters (astroid) and linecache read it.
    try:
        stock = zipimport.zipimporter
        module_path = zipimport._get_module_path
        suffixes = [suffix for suffix, _, _ in zipimport._zip_searchorder]
    except (AttributeError, TypeError, ValueError):
        return False

    def table_of_contents(importer):
        if hasattr(importer, "_get_files"):
            return importer._get_files()
        return importer._files

    def archived_file(importer, fullname):
        # The file of `fullname` as the table of contents names it: the
        # first entry of each tuple (None if anything is not as expected).
        files = table_of_contents(importer)
        path = module_path(importer, fullname)
        for suffix in suffixes:
            entry = files.get(path + suffix)
            if entry is not None:
                name = entry[0]
                if not isinstance(name, str):
                    return None
                return extracted_source(name) or name
        return None

    stdlib_prefix = None if archived_stdlib is None else archived_stdlib + "/"

    def extracted_source(name):
        # A standard module's file in the archive -> its extracted source
        # (`.../json/__init__.pyc` -> `stdlib_dir/json/__init__.py`).
        if stdlib_prefix is not None and name.startswith(stdlib_prefix):
            return stdlib_dir + name[len(archived_stdlib) : -len("c")]
        return None

    fix_co_filename = getattr(sys.modules.get("_imp"), "_fix_co_filename", None)

    # Named like its base: code that looks at a loader's class (its repr
    # included) sees what it would see under python.
    class zipimporter(stock):
        __module__ = "zipimport"
        __qualname__ = "zipimporter"

        def get_code(self, fullname):
            # Name the code after its source in the archive, as python names
            # a module's code after its file (`/path/app/pkg/mod.py`): pack
            # compiled it under a relative name, which linecache would look
            # up in the working directory, where another file of that name
            # may be. linecache finds the source through `_ARCHIVED_SOURCES`.
            if self.archive == archive and sys.flags.optimize:
                code = self._compiled_optimized(fullname)
                if code is not None:
                    return code
            code = super().get_code(fullname)
            if self.archive == archive and fix_co_filename is not None:
                try:
                    name = archived_file(self, fullname)
                except Exception:
                    name = None
                if name is not None and name.endswith(".pyc"):
                    fix_co_filename(code, name[:-1])
                    _ARCHIVED_SOURCES[name[:-1]] = (self, fullname)
                elif name is not None:
                    fix_co_filename(code, name)  # A standard module's source.
            return code

        def _compiled_optimized(self, fullname):
            # Under `-O` or PYTHONOPTIMIZE, python compiles without asserts
            # and with `__debug__` false; pack compiled the archive's pycs
            # without: an app module whose source the archive holds is
            # compiled again, at the interpreter's level (slower, as python
            # compiling a source with no pyc of that level). The standard
            # library, whose sources are not in the archive, keeps its pycs.
            try:
                source = super().get_source(fullname)
                name = archived_file(self, fullname) if source is not None else None
            except Exception:
                return None
            if name is None:
                return None
            if name.endswith(".pyc"):
                name = name[:-1]
            _ARCHIVED_SOURCES[name] = (self, fullname)
            return compile(source, name, "exec", dont_inherit=True)

        def find_spec(self, fullname, target=None):
            # The archive's root `__main__` is the app's entry point and
            # nothing else: `runpy.run_path(dir)` of a directory without a
            # `__main__.py` searches sys.path for one, and must fail there as
            # in python instead of running the app.
            if fullname == "__main__" and self.archive == archive and not _app_main_wanted:
                return None
            spec = super().find_spec(fullname, target)
            locations = getattr(spec, "submodule_search_locations", None)
            origin = getattr(spec, "origin", None)
            is_standard = isinstance(origin, str) and origin.startswith(f"{stdlib_dir}/")
            if locations and stdlib_prefix is not None and is_standard:
                # A standard package, named after its extracted source: its
                # submodules are compiled in the archive, not beside it.
                extracted = locations[0]
                locations[:] = [archived_stdlib + extracted[len(stdlib_dir) :], extracted]
            return spec

        def get_source(self, fullname):
            # A standard module's source is not in the archive (its pyc is):
            # it is the extracted file that its code is named after, which
            # python's loader would read (pyclbr, doctest, IDEs ask for it).
            source = super().get_source(fullname)
            if source is not None or self.archive != archive or stdlib_prefix is None:
                return source
            try:
                name = archived_file(self, fullname)
            except Exception:
                name = None
            if name is None or not name.startswith(f"{stdlib_dir}/"):
                return None
            deferred = _deferred
            if deferred is not None and name.startswith(deferred.dir + "/"):
                deferred.extract()  # Not yet written.
            try:
                with open(name, "rb") as file:
                    data = file.read()
            except OSError:
                return None
            return sys.modules["_frozen_importlib_external"].decode_source(data)

        def invalidate_caches(self):
            # Stock zipimport parses the archive's directory again (4 ms for
            # the standard library's); the executable's archive does not
            # change while it runs.
            if self.archive != archive:
                super().invalidate_caches()

        def get_filename(self, fullname):
            if self.archive == archive:
                try:
                    name = archived_file(self, fullname)
                except Exception:
                    name = None
                if name is not None:
                    return name
            return super().get_filename(fullname)

    # This module came from the archive through stock zipimport: the
    # shortcut must name its file as stock zipimport did, or it stays off.
    try:
        importer = sys.path_importer_cache.get(archive)
        if type(importer) is not stock:
            importer = stock(archive)
        if archived_file(importer, __name__) != __file__:
            return False
    except Exception:
        return False

    hooks = sys.path_hooks
    if stock in hooks:
        hooks[hooks.index(stock)] = zipimporter
    for path, finder in list(sys.path_importer_cache.items()):
        if type(finder) is stock:
            # The same importer with the shortcut: a new one would look
            # for its archive again (a stat of each part of its path).
            try:
                finder.__class__ = zipimporter
            except TypeError:  # A layout of its own (`__slots__`).
                sys.path_importer_cache[path] = zipimporter(path)
    if stdlib_prefix is not None:
        # Imported by stock zipimport while the interpreter started
        # (`encodings`): their files, named as the shortcut names them.
        for module in list(sys.modules.values()):
            name = getattr(module, "__file__", None)
            source = extracted_source(name) if isinstance(name, str) else None
            if source is not None:
                module.__file__ = source
                spec = getattr(module, "__spec__", None)
                if spec is not None and spec.origin == name:
                    spec.origin = source
    return True


# The pending extraction of a first run (`_ExtractOnFirstUse`), until done.
_deferred = None


class _ExtractOnFirstUse:
    # First on sys.meta_path during a first run that has not extracted the
    # app's units yet (the runtime deferred it): the first import of one of
    # `modules` (the extracted top-level modules), a look for installed
    # distributions when `metadata` (dist-info directories are extracted),
    # or linecache reading a source below `dir` (the version directory)
    # extracts them all, then the import goes on as usual. Answers for no
    # module itself.
    def __init__(self, dir, modules, metadata):
        self.dir = dir
        self.modules = frozenset(modules)
        self.metadata = metadata

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.modules:
            self.extract()
        return None

    def find_distributions(self, *args, **kwargs):
        if self.metadata:
            self.extract()
        return iter(())

    def extract(self):
        global _deferred
        import _pyferry_runtime

        try:
            _pyferry_runtime.extract()
        except RuntimeError as error:
            # The runtime's one paragraph (a cache it cannot use, a damaged
            # copy): as if the app had not started.
            sys.stderr.write(str(error))
            sys.stderr.flush()
            raise SystemExit(1) from None
        _deferred = None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        # The path finder found nothing in the version's directories while
        # they did not exist, and remembered it.
        for entry in list(sys.path_importer_cache):
            if entry == self.dir or entry.startswith(self.dir + "/"):
                del sys.path_importer_cache[entry]


# Source file name (as the code names it) -> (importer, module name), for
# the modules imported from the archive.
_ARCHIVED_SOURCES = {}


def _watch_for_linecache():
    # linecache reads sources from the file system, and from an importer
    # only when given the module's globals: tracebacks give them, warnings
    # do not, so a warning from an archived module showed no source line.
    # When linecache is first imported it learns the archive's sources; no
    # start pays for importing it.
    if "linecache" in sys.modules:
        _teach_linecache(sys.modules["linecache"])
    else:
        sys.meta_path.insert(0, _LinecacheWatch())


class _LinecacheWatch:
    # First on sys.meta_path until linecache is imported; answers for no
    # other module. Re-entrant: an app may have wrapped it in a proxy (a
    # demand importer wraps every finder), which it cannot remove from
    # sys.meta_path, and its own search for linecache then comes back to it.
    _searching = False
    _done = False

    def find_spec(self, name, path=None, target=None):
        if name != "linecache" or self._searching or self._done:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        import _frozen_importlib

        find_spec = getattr(_frozen_importlib, "_find_spec", None)
        if find_spec is None:
            return None  # Not the importlib we know: linecache as stock.
        self._searching = True
        try:
            spec = find_spec(name, None)
        finally:
            self._searching = False
        self._done = True
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _TeachAfterLoading(spec.loader)
        return spec


class _TeachAfterLoading:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module and its spec name the real loader, as under python.
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _teach_linecache(module)


def _teach_linecache(linecache):
    try:
        stock = linecache.updatecache
    except AttributeError:
        return  # Not the linecache we know: stock behaviour.

    stock_lazycache = getattr(linecache, "lazycache", None)

    def archived_globals(filename, module_globals):
        # linecache asks the loader for the source of `__name__`: the entry
        # point's module runs as `__main__`, a name the zip importer does not
        # know (python -m reads the file instead). Ask by the module's name.
        found = _ARCHIVED_SOURCES.get(filename)
        if found is None:
            return module_globals
        importer, name = found
        return {"__name__": name, "__loader__": importer}

    def updatecache(filename, module_globals=None):
        deferred = _deferred
        if deferred is not None and filename.startswith(deferred.dir + "/"):
            deferred.extract()  # A standard module's source, not yet written.
        return stock(filename, archived_globals(filename, module_globals))

    updatecache.__wrapped__ = stock
    linecache.updatecache = updatecache
    if stock_lazycache is not None:

        def lazycache(filename, module_globals):
            return stock_lazycache(filename, archived_globals(filename, module_globals))

        lazycache.__wrapped__ = stock_lazycache
        linecache.lazycache = lazycache
    _seed_console_script(linecache)


def _seed_console_script(linecache):
    cache = getattr(linecache, "cache", None)
    if _console_script_lines and isinstance(cache, dict):
        # No mtime: checkcache keeps the entry (as for sources from a loader).
        text = "".join(_console_script_lines)
        cache[_archive] = (len(text), None, list(_console_script_lines), _archive)


def _locate_frozen_modules(stdlib_dir, imp):
    # getpath leaves sys._stdlib_dir unset when the embedder sets sys.path,
    # and the standard modules frozen into CPython (os, codecs, io) then
    # have no __file__, which python gives them. Set both as python does.
    sys._stdlib_dir = stdlib_dir
    find_frozen = getattr(imp, "find_frozen", None)
    if find_frozen is None:
        return
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if spec is None or spec.origin != "frozen" or hasattr(module, "__file__"):
            continue
        try:
            _, is_package, original_name = find_frozen(name)
            relative = original_name.replace(".", "/")
            tail = "/__init__.py" if is_package else ".py"
            path = f"{stdlib_dir}/{relative}{tail}"
        except Exception:
            return  # Not the API we know: leave __file__ unset, as stock.
        module.__file__ = path
        # As python records it when it knows sys._stdlib_dir from the start:
        # importlib checks the loader state against __file__ when it is
        # imported afresh (`importlib._bootstrap._setup`).
        state = getattr(spec, "loader_state", None)
        if state is not None and hasattr(state, "filename"):
            state.filename = path
            locations = spec.submodule_search_locations
            if is_package and locations is not None and not locations:
                locations.insert(0, f"{stdlib_dir}/{relative}")


# True while the bootstrap itself looks for the archive's root `__main__`.
_app_main_wanted = False


def _find_app_main(find):
    global _app_main_wanted
    _app_main_wanted = True
    try:
        return find("__main__")
    finally:
        _app_main_wanted = False


def _spec_finder(frozen_importlib):
    # `python -m` finds a module with importlib's own `_find_spec(name,
    # path)`, without importing importlib.util (a few milliseconds). If
    # CPython changes it, the public `importlib.util.find_spec` will do.
    find_spec = getattr(frozen_importlib, "_find_spec", None)
    code = getattr(find_spec, "__code__", None)
    if code is not None and code.co_varnames[:2] == ("name", "path"):

        def find(name):
            parent = name.rpartition(".")[0]
            path = None
            if parent:
                __import__(parent)
                path = getattr(sys.modules[parent], "__path__", None)
            return find_spec(name, path)

        return find
    import importlib.util

    return importlib.util.find_spec


def _run_as_main(app, name, find):
    # What `python -m name` does (runpy._run_module_as_main), without
    # importing runpy: it pulls in importlib.util, contextlib and
    # collections, a few milliseconds on every start.
    try:
        spec = _find_app_main(find) if name == "__main__" else find(name)
        if spec is not None and spec.submodule_search_locations is not None:
            # A package runs its __main__ submodule.
            spec = find(name + ".__main__")
            if spec is None:
                sys.exit(
                    f"{app}: error: the entry point `{name}` is a package without "
                    f"`__main__.py`\n  hint: pack it again with `-e {name}.MODULE`"
                )
    except ModuleNotFoundError as error:
        spec, missing = None, error
    else:
        missing = None
    if spec is None:
        sys.exit(
            f"{app}: error: the entry point module `{name}` is not in the app"
            + (f" ({missing})" if missing else "")
            + "\n  hint: pack it again with the right `-e MODULE[:FUNC]`"
        )
    code = spec.loader.get_code(spec.name)
    main = sys.modules["__main__"].__dict__
    main.update(
        __name__="__main__",
        __file__=spec.origin if spec.has_location else None,
        __cached__=spec.cached,
        __loader__=spec.loader,
        __package__=spec.parent,
        __spec__=_aliased(spec) if name == "__main__" else spec,
    )
    if main["__file__"] is None:
        del main["__file__"]
    exec(code, main)


# multiprocessing's spawn and forkserver children import the parent's main
# module again, by the name its spec gives, but never one called
# `__main__`: the workers of an app whose code is the archive's root
# `__main__.py` found none of its functions, and the pool waited forever
# (`python app/` does the same). So the root `__main__` answers to this name
# too, in the app and in its python children. A child runs the main
# module's code only when it first needs one of its names (unpickling a
# function defined there): an app without the `if __name__ == "__main__"`
# guard that python asks for, whose workers need nothing of it, keeps
# working as it did.
MAIN_ALIAS = "__pyferry_main__"
_main_loader = None


class _MainAlias:
    # A finder, last on sys.meta_path, for MAIN_ALIAS only.
    def __init__(self, find):
        self._find = find

    def find_spec(self, name, path=None, target=None):
        if name != MAIN_ALIAS:
            return None
        spec = _find_app_main(self._find)
        if spec is None or spec.submodule_search_locations is not None:
            return None
        return _aliased(spec)


def _aliased(spec):
    # `spec` under MAIN_ALIAS, its code still loaded by name `__main__`.
    global _main_loader
    try:
        alias = type(spec)(MAIN_ALIAS, _AliasLoader(), origin=spec.origin)
        alias.has_location = spec.has_location
        alias.cached = spec.cached
    except Exception:
        return spec  # Not the ModuleSpec we know: stock behaviour.
    _main_loader = spec.loader
    return alias


_LAZY_MAIN = """\
def __getattr__(name):
    return __import__("_pyferry_boot")._main_attribute(name)
"""


class _AliasLoader:
    # What runpy runs for MAIN_ALIAS (multiprocessing's children): a module
    # `__getattr__` that runs the real code when a name is first missed.
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)

    def get_code(self, fullname):
        return compile(_LAZY_MAIN, "<pyferry main>", "exec")

    def get_source(self, fullname):
        return _main_loader.get_source("__main__")

    def is_package(self, fullname):
        return False


def _main_attribute(name):
    # In a child: the parent's main module is `__main__` (multiprocessing
    # made it `__mp_main__` too); run its code there, once, and look again.
    module = sys.modules["__main__"]
    namespace = module.__dict__
    missing = AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
    # Dunder probes (copy, pickle, import machinery) are no reason to run it.
    if name.startswith("__") or namespace.pop("__getattr__", None) is None:
        raise missing
    exec(_main_loader.get_code("__main__"), namespace)
    try:
        return namespace[name]
    except KeyError:
        raise missing from None
