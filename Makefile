# pyferry's two commands: `make run` (build, pack payload/, run it) and
# `make test` (format, lints, build, tests). Everything they need is here.

# The CPython the runtime embeds (system flavor: its shared libpython).
PYTHON ?= /usr/bin/python3.11
export PYO3_PYTHON := $(PYTHON)

CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
PYFERRY := target/release/pyferry
SAMPLE := target/wordstats

.PHONY: all build run test test-matrix fmt-check clippy install bench bench-rivals clean

all: build

build:
	$(CARGO) build --release --locked

run: build
	$(PYFERRY) pack -o $(SAMPLE) payload
	./$(SAMPLE)

test: fmt-check clippy build
	$(CARGO) test --release --locked

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

# The tests against other CPython versions from pyenv (system flavor: each
# links that version's shared libpython), each in its own target dir.
MATRIX ?= 3.10 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv
test-matrix:
	set -e; for version in $(MATRIX); do \
	    python=$$(ls -d $(PYENV_ROOT)/versions/$$version.*/bin/python$$version | tail -1); \
	    echo "=== CPython $$version: $$python"; \
	    PYO3_PYTHON=$$python CARGO_TARGET_DIR=target/matrix-$$version $(CARGO) test --release --locked; \
	done

install: build
	install -Dm755 $(PYFERRY) $(DESTDIR)$(PREFIX)/bin/pyferry
	install -Dm644 README.md $(DESTDIR)$(PREFIX)/share/doc/pyferry/README.md

bench: build
	bench/run

# pyferry against PyInstaller, shiv and pex (installed into target/bench-venv).
bench-rivals: build
	test -x target/bench-venv/bin/pex || { $(PYTHON) -m venv target/bench-venv && \
	    target/bench-venv/bin/pip install pyinstaller shiv pex numpy black; }
	bench/rivals

clean:
	$(CARGO) clean
