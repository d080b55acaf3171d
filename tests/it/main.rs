//! pyferry's integration tests: one binary, one file per area. Real
//! processes, real CPython, real dlopen, real wheels.

mod context;

mod archive;
mod basic;
mod cache;
mod desktop;
mod distro;
mod errors;
mod native;
mod python_compat;
mod standalone;
mod wheels;
