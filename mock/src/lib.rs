//! In-process stand-ins for the OpenStack services the facade talks to,
//! answering like the recorded exchanges with real Glance 33.0.0 and
//! Keystone 30.0.0 (copies in `mock/tests/fixtures/`, checked by this
//! crate's tests):
//!
//! - [`glance`]: Glance v2 - images, JSON-Patch, lists with filters and
//!   paging, image data, imports (glance-direct, web-download) and their
//!   tasks, members; trusted-header or Keystone authentication; injected
//!   faults; a log of the requests received, kept only when asked
//!   ([`glance::Options::record_requests`], for tests).
//! - [`keystone`]: Keystone v3's token API (issue, validate, revoke) with
//!   counters of token requests and password checks.
//! - [`files`]: a static file server, the `copy_from` source.
//!
//! Used by the facade's tests and benchmarks, and by `alliance-glance demo`
//! and `mock-glance` (the facade's default `demo` feature). Deliberate
//! differences from the real services: `docs/mock-vs-real.md`.

pub mod files;
pub mod glance;
mod jsonschema;
pub mod keystone;
mod pyfmt;
mod server;
