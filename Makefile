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

.PHONY: all build run test fmt-check clippy install bench bench-rivals clean

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
