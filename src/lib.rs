//! alliance-glance: the Alliance Glance API v1 served over OpenStack Glance v2.
//!
//! A request goes through five steps, one module each (README, "How a
//! request goes through", draws them and the layers `tests/layers.rs` holds):
//! 1. [`inbound`]: the target, the method and the two headers into a typed
//!    head (the body comes after step 2);
//! 2. [`callers`]: may this caller act so;
//! 3. [`route`]: namespace -> cloud, environment -> credentials;
//! 4. [`ops`] with [`upstream`]: the Glance v2 calls the operation needs;
//! 5. [`reshape`] and the per-call status tables: back to the Alliance form.
//!
//! Concepts written once: the five calls ([`operation`]), the image's
//! fields ([`reshape::fields`]), every refusal ([`refusal`]), the auth modes
//! ([`upstream::auth`]), the metrics ([`metrics`]), the settings ([`config`]).

pub mod admin;
pub mod app;
pub mod audit;
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
pub mod listener_tls;
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
pub mod shared_cache;
pub mod upstream;

/// The commit the binary was built from (`build.rs`; `unknown` outside git).
pub const COMMIT: &str = env!("ALLIANCE_GLANCE_COMMIT");
