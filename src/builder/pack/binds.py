# Run by `pyferry pack` with the build interpreter: whether the module whose
# source is argv[1] binds the name argv[2] (the first part of an entry
# point's function). Prints "yes", "no", or "unknown" when the module may
# bind names it does not spell out (`from x import *`, `globals()`, a module
# `__getattr__`, `exec`): pack then trusts the entry point.
import ast
import sys

path, name = sys.argv[1], sys.argv[2]
try:
    with open(path, "rb") as file:
        tree = ast.parse(file.read())
except (OSError, SyntaxError, ValueError):
    print("unknown")
    raise SystemExit
bound = set()
dynamic = False
for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        bound.add(node.name)
    elif isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif node.id in ("globals", "exec", "setattr", "vars", "locals"):
            dynamic = True
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name == "*":
                dynamic = True
            bound.add(alias.asname or alias.name.split(".")[0])
    elif isinstance(node, ast.MatchAs) and node.name:
        bound.add(node.name)
dynamic = dynamic or "__getattr__" in bound
print("yes" if name in bound else "unknown" if dynamic else "no")
