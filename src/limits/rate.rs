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
//!
//! With a shared cache (`[shared_cache]`) a bucket is the replicas' one,
//! in memcached: a replica leases `rate_lease_ms`' worth of its tokens at a
//! time (at least one) and spends them without asking again, so that most
//! requests cost memcached nothing and the replicas together admit what one
//! process would (tokens leased and not spent within the lease are lost:
//! the error is on the side of refusing). memcached lost: each replica's
//! own bucket (fail open), or 503 (`fail_closed`).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use lru::LruCache;

use super::{Throttled, retry_after};
use crate::config::{EnvironmentIdFormat, LimitsConfig, Rate};
use crate::error::AllianceError;
use crate::refusal::Refusal;
use crate::shared_cache::{Lease, SharedCache};

fn quota(rate: Rate) -> Quota {
    Quota::per_second(rate.per_sec).allow_burst(rate.burst)
}

/// One token bucket of `rate`.
pub fn bucket(rate: Rate) -> DefaultDirectRateLimiter {
    DefaultDirectRateLimiter::direct(quota(rate))
}

/// Why no token was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// The bucket is empty: one comes in this many seconds.
    Wait(u32),
    /// The shared bucket cannot be reached and rates fail closed.
    Unreachable,
}

/// One bucket per key, for the most recently seen keys: the process's, or
/// the replicas' (leased).
pub struct Buckets {
    quota: Quota,
    by_key: Mutex<LruCache<String, DefaultDirectRateLimiter>>,
    shared: Option<SharedBuckets>,
}

/// The replicas' buckets, and this replica's leases of their tokens.
struct SharedBuckets {
    cache: Arc<SharedCache>,
    /// Whose buckets (a namespace's environments, a rule's callers).
    scope: String,
    rate: Rate,
    /// Tokens asked for at a time.
    lease_tokens: u32,
    /// Each key's leased tokens, behind an async lock held while a lease is
    /// asked for: the requests of one key in this replica ask memcached
    /// once between them, then share what came.
    leases: Mutex<LruCache<String, Arc<tokio::sync::Mutex<Leased>>>>,
}

/// Tokens leased and not spent yet; or, after a refusal, when the shared
/// bucket has a token again (no use asking memcached before: a replica
/// flooded with requests asks it once per token, not once per request).
#[derive(Default)]
struct Leased {
    tokens: u32,
    until: Option<Instant>,
    empty_until: Option<Instant>,
}

/// What the leases of a key say without asking memcached.
enum Local {
    Spent,
    /// The shared bucket is empty for this long yet.
    Empty(Duration),
    Ask,
}

fn lru<V>(capacity: usize) -> Mutex<LruCache<String, V>> {
    Mutex::new(LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)))
}

impl Buckets {
    /// `shared`: the replicas' cache and whose buckets these are.
    pub fn new(rate: Rate, capacity: usize, shared: Option<(&Arc<SharedCache>, &str)>) -> Self {
        Buckets {
            quota: quota(rate),
            by_key: lru(capacity),
            shared: shared.map(|(cache, scope)| {
                let per_lease = u128::from(rate.per_sec.get()) * cache.lease.as_millis() / 1000;
                SharedBuckets {
                    cache: Arc::clone(cache),
                    scope: scope.to_owned(),
                    rate,
                    lease_tokens: u32::try_from(per_lease).unwrap_or(u32::MAX).clamp(1, rate.burst.get()),
                    leases: lru(capacity),
                }
            }),
        }
    }

    /// Takes a token from `key`'s bucket.
    pub async fn take(&self, key: &str) -> Result<(), Empty> {
        let Some(shared) = &self.shared else {
            return self.take_here(key);
        };
        let slot = shared.slot(key);
        let mut leased = slot.lock().await;
        match leased.spend() {
            Local::Spent => return Ok(()),
            Local::Empty(wait) => return Err(Empty::Wait(retry_after(wait))),
            Local::Ask => {}
        }
        let lease = shared
            .cache
            .lease(
                &[b"rate", shared.scope.as_bytes(), key.as_bytes()],
                shared.rate,
                shared.lease_tokens,
            )
            .await;
        let now = Instant::now();
        match lease {
            Lease::Granted(tokens) => {
                *leased = Leased {
                    tokens: tokens - 1,
                    until: Some(now + shared.cache.lease),
                    empty_until: None,
                };
                Ok(())
            }
            Lease::Refused { retry_after, wait } => {
                *leased = Leased {
                    empty_until: Some(now + wait),
                    ..Leased::default()
                };
                Err(Empty::Wait(retry_after))
            }
            Lease::Unavailable if shared.cache.fail_closed => Err(Empty::Unreachable),
            Lease::Unavailable => {
                drop(leased);
                self.take_here(key)
            }
        }
    }

    /// Takes a token from this process's own bucket of `key`.
    fn take_here(&self, key: &str) -> Result<(), Empty> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // One look-up; the key is copied only for a new bucket.
        take(by_key.get_or_insert_ref(key, || DefaultDirectRateLimiter::direct(self.quota))).map_err(Empty::Wait)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.lock().unwrap().len()
    }
}

impl SharedBuckets {
    /// The lock and leases of `key` (a key forgotten comes back with none).
    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Leased>> {
        let mut leases = self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(leases.get_or_insert_ref(key, Arc::default))
    }
}

impl Leased {
    /// Spends a leased token, if one is left and its lease runs.
    fn spend(&mut self) -> Local {
        let now = Instant::now();
        match (self.until, self.empty_until) {
            (Some(until), _) if self.tokens > 0 && now < until => {
                self.tokens -= 1;
                Local::Spent
            }
            (_, Some(until)) if now < until => Local::Empty(until - now),
            _ => Local::Ask,
        }
    }
}

/// Takes a token from `bucket`; `Err(seconds until one is there)` if it
/// is empty (`Retry-After`).
pub fn take(bucket: &DefaultDirectRateLimiter) -> Result<(), u32> {
    bucket
        .check()
        .map_err(|not_until| retry_after(not_until.wait_time_from(DefaultClock::default().now())))
}

/// The refusal of a request whose bucket was `empty`.
fn refusal(empty: Empty, over_rate: fn(u32) -> Refusal) -> Refusal {
    match empty {
        Empty::Wait(retry_after) => over_rate(retry_after),
        Empty::Unreachable => Refusal::SharedRateUnavailable,
    }
}

/// The rates of a namespace's environments.
pub struct EnvironmentRates {
    /// For environments without a rate of their own; `None`: no limit.
    shared: Option<Buckets>,
    /// Environments with a rate of their own (`None`: no limit).
    own: HashMap<String, Option<Buckets>>,
    warnings: Throttled,
}

impl EnvironmentRates {
    /// The rates of `config`; its environment ids are taken in the form
    /// `format` gives them (the configuration was checked). `shared`: the
    /// replicas' cache and the namespace's name.
    pub fn new(config: &LimitsConfig, format: EnvironmentIdFormat, shared: Option<(&Arc<SharedCache>, &str)>) -> Self {
        EnvironmentRates {
            shared: config
                .environment_rate()
                .map(|rate| Buckets::new(rate, config.tracked_environments, shared)),
            own: config
                .environments
                .iter()
                .filter_map(|(id, rate)| {
                    let bucket = rate.limited().map(|rate| Buckets::new(rate, 1, shared));
                    Some((format.normalise(id)?, bucket))
                })
                .collect(),
            warnings: Throttled::default(),
        }
    }

    /// Admits one request of `environment`, or refuses it (429; 503 when
    /// the replicas' buckets cannot be reached and rates fail closed).
    pub async fn admit(&self, environment: &str) -> Result<(), AllianceError> {
        let taken = match self.own.get(environment) {
            Some(Some(buckets)) => buckets.take(environment).await,
            Some(None) => Ok(()),
            None => match &self.shared {
                Some(buckets) => buckets.take(environment).await,
                None => Ok(()),
            },
        };
        taken.map_err(|empty| {
            let refusal = refusal(empty, |retry_after| Refusal::EnvironmentRateLimited { retry_after });
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
    /// `shared`: the replicas' cache and the rule's name.
    pub fn new(rate: Rate, shared: Option<(&Arc<SharedCache>, &str)>) -> Self {
        CallerRates {
            buckets: Buckets::new(rate, TRACKED_CALLERS, shared),
            warnings: Throttled::default(),
        }
    }

    /// Admits one request of `caller` (as rule `rule` knows it), or refuses
    /// it (429; 503 as for environments).
    pub async fn admit(&self, rule: &str, caller: &str) -> Result<(), AllianceError> {
        self.buckets.take(caller).await.map_err(|empty| {
            let refusal = refusal(empty, |retry_after| Refusal::CallerRateLimited { retry_after });
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

    async fn admitted(rates: &EnvironmentRates, environment: &str, requests: usize) -> usize {
        let mut admitted = 0;
        for _ in 0..requests {
            admitted += usize::from(rates.admit(environment).await.is_ok());
        }
        admitted
    }

    #[tokio::test]
    async fn a_burst_then_refusals_with_retry_after_per_environment() {
        let rates = EnvironmentRates::new(&limits(1, Some(3)), EnvironmentIdFormat::Hex32OrUuid, None);
        assert_eq!(admitted(&rates, ENV_A, 3).await, 3);
        let refused = rates.admit(ENV_A).await.unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.retry_after, refused.refusal),
            (429, Some(1), Some(Refusal::EnvironmentRateLimited { retry_after: 1 }))
        );
        assert_eq!(refused.message, "too many requests for this environment; retry later");
        // Another environment has a bucket of its own.
        assert_eq!(admitted(&rates, ENV_B, 4).await, 3);
    }

    #[tokio::test]
    async fn the_burst_is_one_seconds_worth_by_default_and_refills() {
        let rates = EnvironmentRates::new(&limits(20, None), EnvironmentIdFormat::Hex32OrUuid, None);
        assert_eq!(admitted(&rates, ENV_A, 25).await, 20);
        // One token every 50 ms.
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(rates.admit(ENV_A).await.is_ok());
    }

    #[tokio::test]
    async fn no_rate_is_no_limit() {
        let rates = EnvironmentRates::new(&LimitsConfig::default(), EnvironmentIdFormat::Hex32OrUuid, None);
        assert_eq!(admitted(&rates, ENV_A, 10_000).await, 10_000);
    }

    #[tokio::test]
    async fn environments_with_a_rate_of_their_own() {
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
        let rates = EnvironmentRates::new(&config, EnvironmentIdFormat::Hex32OrUuid, None);
        assert_eq!(admitted(&rates, ENV_A, 10).await, 5);
        assert_eq!(admitted(&rates, ENV_B, 1_000).await, 1_000, "rate 0: no limit");
        assert_eq!(admitted(&rates, "c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3", 10).await, 1);
    }

    #[tokio::test]
    async fn callers_have_a_bucket_each() {
        let rates = CallerRates::new(
            Rate {
                per_sec: std::num::NonZeroU32::MIN,
                burst: std::num::NonZeroU32::new(2).unwrap(),
            },
            None,
        );
        assert!(rates.admit("gateway", "10.0.0.1").await.is_ok());
        assert!(rates.admit("gateway", "10.0.0.1").await.is_ok());
        let refused = rates.admit("gateway", "10.0.0.1").await.unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.retry_after, refused.refusal),
            (429, Some(1), Some(Refusal::CallerRateLimited { retry_after: 1 }))
        );
        assert_eq!(refused.message, "too many requests for this caller; retry later");
        assert!(rates.admit("gateway", "10.0.0.2").await.is_ok());
    }

    #[tokio::test]
    async fn buckets_of_random_environments_are_bounded() {
        let buckets = Buckets::new(
            Rate {
                per_sec: std::num::NonZeroU32::MIN,
                burst: std::num::NonZeroU32::MIN,
            },
            100,
            None,
        );
        assert_eq!(buckets.take(ENV_A).await, Ok(()));
        for index in 0..10_000 {
            let _ = buckets.take(&format!("{index:032x}")).await;
            // A busy environment is never the least recently seen.
            if index % 50 == 0 {
                assert_eq!(buckets.take(ENV_A).await, Err(Empty::Wait(1)), "its bucket is kept");
            }
        }
        assert_eq!(buckets.len(), 100);
    }
}
