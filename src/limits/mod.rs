//! Backpressure and fairness: what keeps one client, one environment or a
//! crowd of pollers from taking a namespace's Glance (and Keystone) from
//! everyone else. Three mechanisms, each used at its own step of a request:
//!
//! - [`rate`]: a token bucket per environment (nginx's `limit_req`),
//!   decided once inbound has validated the namespace and environment,
//!   before anything is sent upstream (`app`): 429;
//! - [`gate`]: at most N calls in flight to the namespace's Glance, and
//!   apart to its Keystone, the others waiting in a bounded queue for a
//!   bounded time (Envoy's circuit breakers), around each upstream call
//!   (`upstream`): 503;
//! - [`single_flight`]: identical shows share one upstream call (`ops::show`).
//!
//! A refusal is an `AllianceError` with `Retry-After` and a stable `reason`
//! for the request's log line; each limit also writes a WARN line at most
//! once per `logging::WARNING_INTERVAL`, saying how many refusals it stands for.

pub mod gate;
pub mod rate;
pub mod single_flight;

use std::time::Duration;

pub use crate::logging::Throttled;

/// Whole seconds to wait, rounded up, at least 1 (`Retry-After`).
pub fn retry_after(wait: Duration) -> u32 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(seconds.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(200)), 1);
        assert_eq!(retry_after(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after(Duration::from_millis(1001)), 2);
    }
}
