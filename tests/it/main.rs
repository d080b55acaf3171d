//! pyferry's integration tests: one binary, one file per area. Real
//! processes, real CPython, real dlopen, real wheels.

mod context;

mod archive;
mod basic;
mod bootstrap;
mod cache;
mod compat;
mod desktop;
mod distro;
mod errors;
mod first_run;
#[cfg(pyferry_flavor = "standalone")]
mod gui;
#[cfg(pyferry_flavor = "standalone")]
mod kit;
mod native;
#[cfg(pyferry_flavor = "standalone")]
mod old_distro;
mod project;
mod python_by_name;
mod python_compat;
#[cfg(pyferry_flavor = "standalone")]
mod standalone;
mod wheels;
