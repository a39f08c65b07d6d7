//! Contract tests: for each Alliance call, the exact Glance v2 requests the
//! facade sends (method, path, query, media type, identity headers) and the
//! exact Alliance answer, against the project's mock Glance - including bad
//! input (nothing sent upstream) and every upstream status in the tables.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod audit;
mod backpressure;
mod callers;
mod client_limits;
mod copy_from;
mod create;
mod delete;
mod inbound;
mod isolation;
mod keystone;
mod list;
mod serving;
mod shared_cache;
mod show;
mod update;
mod upstream_errors;
