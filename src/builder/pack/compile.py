# Run by `pyferry pack` with the build interpreter: byte-compiles the jobs
# read as JSON from stdin ([{"source", "target", "display"}]) into
# unchecked-hash pycs (PEP 552), so nothing is compiled or checked at run
# time. Prints the files that failed, as JSON.
import json
import py_compile
import sys
import warnings

# What compiling a module says about its code (`"is" with a literal`) is
# for its authors, not for whoever packs it: pip keeps it quiet too.
warnings.simplefilter("ignore", SyntaxWarning)
warnings.simplefilter("ignore", DeprecationWarning)

failures = []
for job in json.load(sys.stdin):
    try:
        py_compile.compile(
            job["source"],
            cfile=job["target"],
            dfile=job["display"],
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError as error:
        failures.append({"file": job["display"], "error": error.msg.strip()})
json.dump(failures, sys.stdout)
