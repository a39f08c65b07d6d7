//! alliance-glance: the Alliance Glance API v1 served over OpenStack Glance v2.
//!
//! A request goes through four steps, one module each:
//! 1. [`inbound`]: parse and validate the Alliance call into a typed value
//!    (the body after [`callers`] has let the caller through);
//! 2. [`route`]: namespace -> cloud, environment -> credentials;
//! 3. [`ops`] with [`upstream`]: the Glance v2 calls the operation needs;
//! 4. [`reshape`] and the per-call status tables: back to the Alliance form.

pub mod admin;
pub mod app;
pub mod body;
pub mod callers;
pub mod config;
pub mod connection;
pub mod copy_from;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod ids;
pub mod inbound;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod operation;
pub mod ops;
pub mod refusal;
pub mod reload;
pub mod request_id;
pub mod reshape;
pub mod route;
pub mod server;
pub mod tls;
pub mod upstream;

/// The commit the binary was built from (`build.rs`; `unknown` outside git).
pub const COMMIT: &str = env!("ALLIANCE_GLANCE_COMMIT");
