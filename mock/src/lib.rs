//! In-process stand-ins for the OpenStack services the facade talks to.
//! Used by the tests, by `alliance-glance demo` and by the benchmarks.

pub mod files;
pub mod glance;
pub mod keystone;
mod server;
