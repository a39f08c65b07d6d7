//! `[namespaces.X.limits]`: backpressure and fairness, and the token
//! buckets they are made of.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

/// What keeps one client, one environment or a crowd of pollers from taking
/// the namespace's Glance and Keystone from everyone else
/// (`[namespaces.X.limits]`, checked by `limits`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls in flight to the namespace's Glance at once (Envoy's
    /// `max_requests`) ...
    pub glance_max_in_flight: usize,
    /// ... and, apart, to its Keystone.
    pub keystone_max_in_flight: usize,
    /// Calls waiting for one of those slots, per service (Envoy's
    /// `max_pending_requests`); more are refused at once (503).
    pub max_queued_calls: usize,
    /// How long a call waits for a slot before its request is refused (503).
    pub queue_timeout_ms: u64,
    /// Requests a second per environment (nginx's `limit_req` rate); 0: no
    /// limit. Over it: 429.
    pub environment_rate_per_sec: u32,
    /// Requests an environment may send at once above its rate (the token
    /// bucket's size); by default one second's worth.
    pub environment_burst: Option<u32>,
    /// Environments whose buckets are kept at once (least recently seen
    /// forgotten first, as nginx's `limit_req_zone` size).
    pub tracked_environments: usize,
    /// Environments with a rate of their own, by id (in the form the
    /// facade uses: see `environment_id_format`).
    pub environments: BTreeMap<String, RateConfig>,
    /// A show of an image by id that starts within this long of an
    /// identical show's upstream call (same environment and image) gets
    /// that call's answer; 0: every show makes its own calls.
    pub coalesce_window_ms: u64,
    /// Identical shows tracked at once for that.
    pub coalesce_max_entries: usize,
    /// The bytes of the answers kept for those shows, in all; an answer
    /// past them goes only to the shows already waiting for it.
    pub coalesce_max_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            glance_max_in_flight: 64,
            keystone_max_in_flight: 16,
            max_queued_calls: 1000,
            queue_timeout_ms: 5_000,
            environment_rate_per_sec: 0,
            environment_burst: None,
            tracked_environments: 10_000,
            environments: BTreeMap::new(),
            coalesce_window_ms: 200,
            coalesce_max_entries: 10_000,
            coalesce_max_bytes: 16 << 20,
        }
    }
}

impl LimitsConfig {
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn coalesce_window(&self) -> Duration {
        Duration::from_millis(self.coalesce_window_ms)
    }

    /// The rate of environments without one of their own; `None`: no limit.
    pub fn environment_rate(&self) -> Option<Rate> {
        RateConfig {
            rate_per_sec: self.environment_rate_per_sec,
            burst: self.environment_burst,
        }
        .limited()
    }

    /// The ids of `environments` are the namespace's to check (they follow
    /// its `environment_id_format`).
    pub(super) fn validate(&self) -> Result<(), String> {
        let counts = [
            ("glance_max_in_flight", self.glance_max_in_flight),
            ("keystone_max_in_flight", self.keystone_max_in_flight),
            ("tracked_environments", self.tracked_environments),
            ("coalesce_max_entries", self.coalesce_max_entries),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(format!("limits.{name} must be positive"));
        }
        if self.queue_timeout_ms == 0 && self.max_queued_calls > 0 {
            return Err("limits.queue_timeout_ms must be positive when calls may queue".into());
        }
        let bursts = std::iter::once(self.environment_burst).chain(self.environments.values().map(|rate| rate.burst));
        if bursts.into_iter().any(|burst| burst == Some(0)) {
            return Err("limits: a burst must be positive".into());
        }
        Ok(())
    }
}

/// A token bucket: `rate_per_sec` on average, `burst` at once (one
/// second's worth when not given). A rate of 0 is no limit.
///
/// The one table without defaults: its rate must be written, and a default
/// of 0 would be a silent "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub rate_per_sec: u32,
    pub burst: Option<u32>,
}

/// A bucket's rate and size, both positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateConfig {
    /// The bucket, or `None` for no limit.
    pub fn limited(self) -> Option<Rate> {
        let per_sec = NonZeroU32::new(self.rate_per_sec)?;
        let burst = self.burst.map_or(Some(per_sec), NonZeroU32::new)?;
        Some(Rate { per_sec, burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::MINIMAL;

    #[test]
    fn limits() {
        let limits = &Config::parse(MINIMAL).unwrap().namespaces["ccsr1"].limits;
        assert_eq!(
            (
                limits.glance_max_in_flight,
                limits.keystone_max_in_flight,
                limits.max_queued_calls,
                limits.queue_timeout_ms,
                limits.coalesce_window_ms,
                limits.coalesce_max_bytes,
            ),
            (64, 16, 1000, 5000, 200, 16 << 20)
        );
        assert_eq!(limits.environment_rate(), None, "no rate limit by default");
        let rate = |per_sec: u32, burst: u32| {
            Some(Rate {
                per_sec: NonZeroU32::new(per_sec).unwrap(),
                burst: NonZeroU32::new(burst).unwrap(),
            })
        };
        let config = Config::parse(&format!(
            "{MINIMAL}
            [namespaces.ccsr1.limits]
            environment_rate_per_sec = 5
            [namespaces.ccsr1.limits.environments.54915a05-b0bb-43dc-bb21-8525c426b6a5]
            rate_per_sec = 50
            burst = 80
            [namespaces.ccsr1.limits.environments.c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3]
            rate_per_sec = 0
            "
        ))
        .unwrap();
        let limits = &config.namespaces["ccsr1"].limits;
        assert_eq!(limits.environment_rate(), rate(5, 5), "one second's worth of burst");
        let own: Vec<_> = limits.environments.values().map(|own| own.limited()).collect();
        assert_eq!(own, [rate(50, 80), None]);
        for bad in [
            "glance_max_in_flight = 0",
            "keystone_max_in_flight = 0",
            "tracked_environments = 0",
            "coalesce_max_entries = 0",
            "queue_timeout_ms = 0",
            "environment_rate_per_sec = 5\nenvironment_burst = 0",
            "environments.not-an-id = { rate_per_sec = 1 }",
            "environments.c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3 = { rate_per_sec = 1, burst = 0 }",
            "bogus = 1",
        ] {
            let text = format!("{MINIMAL}\n[namespaces.ccsr1.limits]\n{bad}");
            assert!(Config::parse(&text).is_err(), "{bad}");
        }
        // No queue, no wait needed.
        Config::parse(&format!(
            "{MINIMAL}\n[namespaces.ccsr1.limits]\nmax_queued_calls = 0\nqueue_timeout_ms = 0"
        ))
        .unwrap();
    }

    #[test]
    fn a_rate_must_be_written() {
        let text = format!(
            "{MINIMAL}\n[namespaces.ccsr1.limits]\nenvironments.c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3 = {{ burst = 5 }}"
        );
        assert!(Config::parse(&text).unwrap_err().0.contains("rate_per_sec"));
    }
}
