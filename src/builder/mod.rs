//! The builder: what `pyferry` does when it carries no payload, or carries
//! its kit.
//!
//! `cli` parses the command line; `project` reads a project's
//! `pyproject.toml` (its script, and pack's options in `[tool.pyferry]`);
//! `pack` turns inputs into one executable (classify inputs -> staging with
//! pip -> entry point -> byte-compile -> native units -> deterministic zip
//! and hash -> temp file -> rename), showing its `progress`; `kit` is what
//! pyferry carries to pack with no Python on the machine; `inspect` reads a
//! packed executable back; `desktop_entry` writes menu entries. It writes
//! the format (`crate::format`) and uses the runtime's code only to read
//! what the runtime reads or wrote: `inspect` and the kit read payloads
//! through `runtime::payload`, `pyferry cache` lists and prunes through
//! `runtime::cache`, and the kit has its own files extracted by
//! `runtime::cache`, as any packed app (its python is the runtime itself,
//! started as a separate process).

pub mod cli;
pub mod desktop_entry;
pub mod inspect;
pub mod kit;
pub mod pack;
pub mod progress;
pub mod project;
