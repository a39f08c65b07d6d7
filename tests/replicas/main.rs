//! Several replicas of the facade (its binary, as separate processes)
//! behind Debian's HAProxy, sharing Debian's memcached - both started here
//! on loopback: a rolling restart and reloads under load losing no request,
//! one rate for the replicas together, memcached lost under load, the
//! client's address through the balancer (PROXY protocol v2, with TLS
//! passed through; `X-Forwarded-For`) and forged by others; and, against
//! real Keystone 30 and Glance 33 (`--include-ignored`, as
//! `scripts/test.sh` runs it), what the replicas' tokens cost Keystone.

#[path = "../support/mod.rs"]
mod support;

mod addresses;
mod fleet;
mod load;
mod tokens;
