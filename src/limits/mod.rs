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
//! once per [`WARNING_INTERVAL`], saying how many refusals it stands for.

pub mod gate;
pub mod rate;
pub mod single_flight;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A limit's WARN line is written at most this often.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// A warning shared by every thread, written at most once per
/// [`WARNING_INTERVAL`].
pub struct Throttled {
    epoch: Instant,
    /// When the next warning may be written, in milliseconds from `epoch`.
    next_ms: AtomicU64,
    /// Events since the last warning.
    count: AtomicU64,
}

impl Default for Throttled {
    fn default() -> Self {
        Throttled {
            epoch: Instant::now(),
            next_ms: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Throttled {
    /// Counts one event; `Some(events since the last warning, this one
    /// included)` when a warning is due now.
    pub fn due(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(WARNING_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now < next
            || self
                .next_ms
                .compare_exchange(next, now.saturating_add(interval), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

/// Whole seconds to wait, rounded up, at least 1 (`Retry-After`).
pub fn retry_after(wait: Duration) -> u32 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(seconds.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_stands_for_the_events_since_the_last() {
        let warnings = Throttled::default();
        assert_eq!(warnings.due(), Some(1));
        assert_eq!(warnings.due(), None);
        assert_eq!(warnings.due(), None);
        // The interval passed: the next warning counts the two left out.
        warnings.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(warnings.due(), Some(3));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(200)), 1);
        assert_eq!(retry_after(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after(Duration::from_millis(1001)), 2);
    }
}
