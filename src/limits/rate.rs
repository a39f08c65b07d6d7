//! Request rates per environment: a token bucket each (governor's GCRA, as
//! for Keystone calls made for new environments), as nginx's `limit_req`
//! with `burst` and `nodelay` does - a request within the bucket goes at
//! once, one over it is refused at once with 429 and `Retry-After`, never
//! delayed. The namespace's rate applies to every environment; an
//! environment may have a rate of its own (or none: rate 0).
//!
//! Memory is bounded: the buckets of environments without a rate of their
//! own are kept for the `tracked_environments` most recently seen; a bucket
//! forgotten comes back full, which is what an idle environment's bucket
//! would be. Random environment ids thus cost a bounded map, and push out
//! only the environments idle longest.
//!
//! A `[[callers]]` rule's rate is the same mechanism ([`CallerRates`]): one
//! bucket per caller the rule lets through, for the [`TRACKED_CALLERS`]
//! most recently seen.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use lru::LruCache;

use super::{Throttled, retry_after};
use crate::config::{EnvironmentIdFormat, LimitsConfig, Rate};
use crate::error::AllianceError;
use crate::refusal::Refusal;

fn quota(rate: Rate) -> Quota {
    Quota::per_second(rate.per_sec).allow_burst(rate.burst)
}

/// One token bucket of `rate`.
pub fn bucket(rate: Rate) -> DefaultDirectRateLimiter {
    DefaultDirectRateLimiter::direct(quota(rate))
}

/// One bucket per key, for the most recently seen keys.
pub struct Buckets {
    quota: Quota,
    by_key: Mutex<LruCache<String, DefaultDirectRateLimiter>>,
}

impl Buckets {
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Buckets {
            quota: quota(rate),
            by_key: Mutex::new(LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN))),
        }
    }

    /// Takes a token from `key`'s bucket; `Err(seconds until one is there)`
    /// if it is empty.
    pub fn take(&self, key: &str) -> Result<(), u32> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // One look-up; the key is copied only for a new bucket.
        take(by_key.get_or_insert_ref(key, || DefaultDirectRateLimiter::direct(self.quota)))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.lock().unwrap().len()
    }
}

/// Takes a token from `bucket`; `Err(seconds until one is there)` if it
/// is empty (`Retry-After`).
pub fn take(bucket: &DefaultDirectRateLimiter) -> Result<(), u32> {
    bucket
        .check()
        .map_err(|not_until| retry_after(not_until.wait_time_from(DefaultClock::default().now())))
}

/// The rates of a namespace's environments.
pub struct EnvironmentRates {
    /// For environments without a rate of their own; `None`: no limit.
    shared: Option<Buckets>,
    /// Environments with a rate of their own (`None`: no limit).
    own: HashMap<String, Option<DefaultDirectRateLimiter>>,
    warnings: Throttled,
}

impl EnvironmentRates {
    /// The rates of `config`; its environment ids are taken in the form
    /// `format` gives them (the configuration was checked).
    pub fn new(config: &LimitsConfig, format: EnvironmentIdFormat) -> Self {
        EnvironmentRates {
            shared: config
                .environment_rate()
                .map(|rate| Buckets::new(rate, config.tracked_environments)),
            own: config
                .environments
                .iter()
                .filter_map(|(id, rate)| {
                    let bucket = rate.limited().map(|rate| DefaultDirectRateLimiter::direct(quota(rate)));
                    Some((format.normalise(id)?, bucket))
                })
                .collect(),
            warnings: Throttled::default(),
        }
    }

    /// Admits one request of `environment`, or refuses it (429).
    pub fn admit(&self, environment: &str) -> Result<(), AllianceError> {
        let taken = match self.own.get(environment) {
            Some(Some(bucket)) => take(bucket),
            Some(None) => Ok(()),
            None => self.shared.as_ref().map_or(Ok(()), |buckets| buckets.take(environment)),
        };
        taken.map_err(|retry_after| {
            let refusal = Refusal::EnvironmentRateLimited { retry_after };
            if let Some(refused) = self.warnings.due() {
                tracing::warn!(
                    reason = refusal.label(),
                    environment,
                    refused,
                    "requests over the environment's rate refused (refused counts the refusals since the \
                     last such line, all environments of the namespace)"
                );
            }
            AllianceError::refused(refusal)
        })
    }
}

/// Callers whose buckets a rule keeps at once (the least recently seen
/// forgotten first; a forgotten bucket comes back full).
pub const TRACKED_CALLERS: usize = 10_000;

/// The rate of one `[[callers]]` rule: a bucket per caller it lets through.
pub struct CallerRates {
    buckets: Buckets,
    warnings: Throttled,
}

impl CallerRates {
    pub fn new(rate: Rate) -> Self {
        CallerRates {
            buckets: Buckets::new(rate, TRACKED_CALLERS),
            warnings: Throttled::default(),
        }
    }

    /// Admits one request of `caller` (as rule `rule` knows it), or refuses
    /// it (429).
    pub fn admit(&self, rule: &str, caller: &str) -> Result<(), AllianceError> {
        self.buckets.take(caller).map_err(|retry_after| {
            let refusal = Refusal::CallerRateLimited { retry_after };
            if let Some(refused) = self.warnings.due() {
                tracing::warn!(
                    reason = refusal.label(),
                    rule,
                    caller,
                    refused,
                    "requests over the caller's rate refused (refused counts the refusals since the last \
                     such line, all callers of the rule)"
                );
            }
            AllianceError::refused(refusal)
        })
    }
}

impl std::fmt::Debug for CallerRates {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CallerRates")
            .field("quota", &self.buckets.quota)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::RateConfig;

    const ENV_A: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
    const ENV_B: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";

    fn limits(rate_per_sec: u32, burst: Option<u32>) -> LimitsConfig {
        LimitsConfig {
            environment_rate_per_sec: rate_per_sec,
            environment_burst: burst,
            ..LimitsConfig::default()
        }
    }

    fn admitted(rates: &EnvironmentRates, environment: &str, requests: usize) -> usize {
        (0..requests).filter(|_| rates.admit(environment).is_ok()).count()
    }

    #[test]
    fn a_burst_then_refusals_with_retry_after_per_environment() {
        let rates = EnvironmentRates::new(&limits(1, Some(3)), EnvironmentIdFormat::Hex32OrUuid);
        assert_eq!(admitted(&rates, ENV_A, 3), 3);
        let refused = rates.admit(ENV_A).unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.retry_after, refused.refusal),
            (429, Some(1), Some(Refusal::EnvironmentRateLimited { retry_after: 1 }))
        );
        assert_eq!(refused.message, "too many requests for this environment; retry later");
        // Another environment has a bucket of its own.
        assert_eq!(admitted(&rates, ENV_B, 4), 3);
    }

    #[test]
    fn the_burst_is_one_seconds_worth_by_default_and_refills() {
        let rates = EnvironmentRates::new(&limits(20, None), EnvironmentIdFormat::Hex32OrUuid);
        assert_eq!(admitted(&rates, ENV_A, 25), 20);
        // One token every 50 ms.
        std::thread::sleep(Duration::from_millis(120));
        assert!(rates.admit(ENV_A).is_ok());
    }

    #[test]
    fn no_rate_is_no_limit() {
        let rates = EnvironmentRates::new(&LimitsConfig::default(), EnvironmentIdFormat::Hex32OrUuid);
        assert_eq!(admitted(&rates, ENV_A, 10_000), 10_000);
    }

    #[test]
    fn environments_with_a_rate_of_their_own() {
        let config = LimitsConfig {
            environments: BTreeMap::from([
                // Written in the dashed form: the same project as ENV_A.
                (
                    "a1a1a1a1-a1a1-4a1a-8a1a-a1a1a1a1a1a1".to_owned(),
                    RateConfig {
                        rate_per_sec: 1,
                        burst: Some(5),
                    },
                ),
                (
                    ENV_B.to_owned(),
                    RateConfig {
                        rate_per_sec: 0,
                        burst: None,
                    },
                ),
            ]),
            ..limits(1, Some(1))
        };
        let rates = EnvironmentRates::new(&config, EnvironmentIdFormat::Hex32OrUuid);
        assert_eq!(admitted(&rates, ENV_A, 10), 5);
        assert_eq!(admitted(&rates, ENV_B, 1_000), 1_000, "rate 0: no limit");
        assert_eq!(admitted(&rates, "c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3", 10), 1);
    }

    #[test]
    fn callers_have_a_bucket_each() {
        let rates = CallerRates::new(Rate {
            per_sec: std::num::NonZeroU32::MIN,
            burst: std::num::NonZeroU32::new(2).unwrap(),
        });
        assert!(rates.admit("gateway", "10.0.0.1").is_ok());
        assert!(rates.admit("gateway", "10.0.0.1").is_ok());
        let refused = rates.admit("gateway", "10.0.0.1").unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.retry_after, refused.refusal),
            (429, Some(1), Some(Refusal::CallerRateLimited { retry_after: 1 }))
        );
        assert_eq!(refused.message, "too many requests for this caller; retry later");
        assert!(rates.admit("gateway", "10.0.0.2").is_ok());
    }

    #[test]
    fn buckets_of_random_environments_are_bounded() {
        let buckets = Buckets::new(
            Rate {
                per_sec: std::num::NonZeroU32::MIN,
                burst: std::num::NonZeroU32::MIN,
            },
            100,
        );
        assert_eq!(buckets.take(ENV_A), Ok(()));
        for index in 0..10_000 {
            let _ = buckets.take(&format!("{index:032x}"));
            // A busy environment is never the least recently seen.
            if index % 50 == 0 {
                assert_eq!(buckets.take(ENV_A), Err(1), "its bucket is kept");
            }
        }
        assert_eq!(buckets.len(), 100);
    }
}
