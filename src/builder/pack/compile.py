# Run by `pyferry pack` with the build interpreter: byte-compiles the jobs
# read as JSON from stdin ([{"source", "target", "display"}]) into
# unchecked-hash pycs (PEP 552), so nothing is compiled or checked at run
# time. Prints one JSON line per job as it is done (pack counts them):
# `{}`, or the file that failed and why.
import json
import py_compile
import sys
import warnings

# What compiling a module says about its code (`"is" with a literal`) is
# for its authors, not for whoever packs it: pip keeps it quiet too.
warnings.simplefilter("ignore", SyntaxWarning)
warnings.simplefilter("ignore", DeprecationWarning)

for job in json.load(sys.stdin):
    report = {}
    try:
        py_compile.compile(
            job["source"],
            cfile=job["target"],
            dfile=job["display"],
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError as error:
        report = {"file": job["display"], "error": error.msg.strip()}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
