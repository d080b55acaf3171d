//! The builder: what `pyferry` does when it carries no payload.
//!
//! `cli` parses the command line; `pack` turns inputs into one executable
//! (classify inputs -> staging with pip -> entry point -> byte-compile ->
//! native units -> deterministic zip + hash -> temp file -> rename);
//! `project` reads a project's `pyproject.toml` (its script, and pack's
//! options in `[tool.pyferry]`); `inspect` reads a packed executable back;
//! `desktop_entry` writes menu entries. It writes the format (`crate::format`) and never runs the
//! runtime's code, with two exceptions that read what the runtime wrote:
//! `inspect` reads payloads through `runtime::payload`, and `pyferry cache`
//! lists and prunes through `runtime::cache`.

pub mod cli;
pub mod desktop_entry;
pub mod inspect;
pub mod kit;
pub mod pack;
pub mod progress;
pub mod project;
