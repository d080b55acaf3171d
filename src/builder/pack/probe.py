# Run by `pyferry pack` with the build interpreter: what pack needs to know.
import importlib.machinery
import importlib.util
import json
import sys
import sysconfig

json.dump(
    {
        "implementation": sys.implementation.name,
        "version": list(sys.version_info[:3]),
        "cache_tag": sys.implementation.cache_tag,
        "extension_suffixes": importlib.machinery.EXTENSION_SUFFIXES,
        "stdlib_modules": sorted(getattr(sys, "stdlib_module_names", ())),
        "builtin_modules": sorted(sys.builtin_module_names),
        "platform": sysconfig.get_platform(),
        "soabi": sysconfig.get_config_var("SOABI"),
        "stdlib_dir": sysconfig.get_path("stdlib"),
        "dynload_dir": sysconfig.get_config_var("DESTSHARED"),
        "has_pip": importlib.util.find_spec("pip") is not None,
    },
    sys.stdout,
)
