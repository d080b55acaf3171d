# pyferry's bootstrap: runs as the `-c` command of the embedded interpreter
# (PyConfig.run_command), in `__main__`, with a call to `_pyferry_boot(...)`
# appended by the runtime. It leaves `__main__` as `python -m` would find it,
# shows tracebacks with source lines from the archive, and runs the entry
# point: a module as `__main__`, or a function like a console script.


def _pyferry_boot(app, module, function):
    import sys

    del globals()["_pyferry_boot"]

    def excepthook(exc_type, exc, tb):
        # Start the traceback at the app's code, as `python -m` shows it;
        # the C default hook cannot read source lines from a zip, linecache
        # asks the zip importer for them.
        while tb is not None and tb.tb_frame.f_code.co_filename in (
            "<string>",
            "<frozen runpy>",
        ):
            tb = tb.tb_next
        try:
            import traceback
        except BaseException:
            sys.__excepthook__(exc_type, exc, tb)
            return
        traceback.print_exception(exc_type, exc, tb)

    sys.excepthook = excepthook

    if function is None:
        import runpy

        runpy._run_module_as_main(module, alter_argv=False)
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
    sys.exit(target())
