//! State the replicas of one deployment share in memcached (`[shared_cache]`):
//! the namespaces' Keystone tokens, callers' token validations, refused
//! environments, and the rates' buckets. Each user keeps its in-process
//! state in front (a warm request costs memcached nothing) and comes here
//! on a miss: for a value another replica already has ([`SharedCache::fetch_shared`],
//! with a lock so that the replicas make one Keystone call between them),
//! or for a lease of rate tokens ([`SharedCache::lease`]).
//!
//! memcached lost, slow or answering garbage fails no request: every
//! exchange is bounded by the timeout, a failed server rests a while, an
//! entry that does not open (another secret, a changed byte) is ignored -
//! and each such event is counted (`alliance_glance_shared_cache_events`)
//! and reported by one WARN line per interval; the callers fall back to
//! their in-process state (rates: unless `fail_closed`).

mod memcached;
pub mod protect;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::memcached::{Answer, Failure, Op, Servers};
use self::protect::Protection;
use crate::config::{Rate, SharedCacheConfig};
use crate::logging::Throttled;
use crate::metrics::{Metrics, SharedCacheEvent};

/// How long a replica fetching a value holds its lock at most ...
const LOCK_TTL: Duration = Duration::from_secs(5);
/// ... how long the others wait for its value before fetching themselves ...
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// ... looking this often.
const LOCK_POLL: Duration = Duration::from_millis(40);
/// Compare-and-set rounds a lease tries (other replicas leasing from the
/// same bucket at the same moment) before it counts as refused for now.
const LEASE_ATTEMPTS: usize = 8;

pub struct SharedCache {
    servers: Servers,
    protection: Protection,
    metrics: Metrics,
    warnings: Throttled,
    /// Rates refuse rather than fall back while memcached is lost.
    pub fail_closed: bool,
    /// How long a rate lease lasts, and so how many tokens it asks for.
    pub lease: Duration,
}

/// What a rate bucket granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// This many tokens, to spend within the lease.
    Granted(u32),
    /// None left: one comes in `wait` (`retry_after` whole seconds).
    Refused { retry_after: u32, wait: Duration },
    /// memcached could not say.
    Unavailable,
}

impl SharedCache {
    /// The secret is read now: a missing or short one stops the start.
    pub fn from_config(config: &SharedCacheConfig, metrics: &Metrics) -> Result<Arc<Self>, String> {
        let secret = config.secret()?;
        Ok(Arc::new(SharedCache {
            servers: Servers::new(
                &config.servers,
                Duration::from_millis(config.timeout_ms),
                config.pool_size,
                Duration::from_secs(config.dead_retry_secs),
            ),
            protection: Protection::new(&secret, config.security_strategy),
            metrics: metrics.clone(),
            warnings: Throttled::default(),
            fail_closed: config.fail_closed,
            lease: Duration::from_millis(config.rate_lease_ms),
        }))
    }

    /// `op` on `cache_key`; a failure is counted and reported, and `None`.
    async fn run(&self, cache_key: &str, op: Op<'_>) -> Option<Answer> {
        match self.servers.run(cache_key, op).await {
            Ok(answer) => Some(answer),
            Err(failure) => {
                self.metrics.shared_cache(SharedCacheEvent::Error);
                if let Failure::Failed(detail) = failure
                    && let Some(failures) = self.warnings.due()
                {
                    tracing::warn!(
                        reason = "shared_cache_unavailable",
                        detail,
                        failures,
                        "memcached failed; the in-process state serves meanwhile (failures counts the \
                         failures since the last such line)"
                    );
                }
                None
            }
        }
    }

    /// The payload stored under the logical key `parts`, if memcached has
    /// one this deployment sealed; `None` on a miss, a failure or an entry
    /// that does not open.
    pub async fn get(&self, parts: &[&[u8]]) -> Option<Vec<u8>> {
        let key = self.protection.cache_key(parts);
        self.get_sealed(&key).await.map(|(payload, _)| payload)
    }

    /// The opened payload and the CAS token of `key`.
    async fn get_sealed(&self, key: &str) -> Option<(Vec<u8>, u64)> {
        match self.run(key, Op::Get).await? {
            Answer::Found(sealed, cas) => {
                let payload = self.open_or_reject(key, &sealed, Some)?;
                self.metrics.shared_cache(SharedCacheEvent::Hit);
                Some((payload, cas))
            }
            _ => {
                self.metrics.shared_cache(SharedCacheEvent::Miss);
                None
            }
        }
    }

    /// The payload of `key`'s entry `sealed` as `decode` reads it; an entry
    /// that does not open, or that `decode` refuses, is counted and
    /// reported as rejected, and `None`.
    fn open_or_reject<T>(&self, key: &str, sealed: &[u8], decode: impl FnOnce(Vec<u8>) -> Option<T>) -> Option<T> {
        let value = self.protection.open(key, sealed).and_then(decode);
        if value.is_none() {
            self.rejected();
        }
        value
    }

    fn rejected(&self) {
        self.metrics.shared_cache(SharedCacheEvent::Rejected);
        if let Some(rejected) = self.warnings.due() {
            tracing::warn!(
                reason = "shared_cache_entry_rejected",
                rejected,
                "a memcached entry did not open (another secret, or changed): ignored"
            );
        }
    }

    /// Stores `payload` under `parts` for `ttl`.
    pub async fn set(&self, parts: &[&[u8]], payload: &[u8], ttl: Duration) {
        let key = self.protection.cache_key(parts);
        self.store(&key, payload, ttl).await;
    }

    /// Seals `payload` and stores it under `key` for `ttl`, counted when stored.
    async fn store(&self, key: &str, payload: &[u8], ttl: Duration) {
        let sealed = self.protection.seal(key, payload);
        if self.run(key, Op::Set(&sealed, ttl)).await == Some(Answer::Stored) {
            self.metrics.shared_cache(SharedCacheEvent::Stored);
        }
    }

    /// Forgets what `parts` holds.
    pub async fn delete(&self, parts: &[&[u8]]) {
        let key = self.protection.cache_key(parts);
        self.run(&key, Op::Delete).await;
    }

    /// The value the replicas share under `parts`: the one memcached holds
    /// (`decode` says whether it is still good), or the one `fetch` makes -
    /// stored then for the others, as `encode` says (`None`: not stored).
    /// While one replica fetches, it holds the key's lock and the others
    /// wait for its value (up to [`LOCK_WAIT`]) instead of fetching too; a
    /// memcached that cannot say makes each fetch on its own.
    pub async fn fetch_shared<T, E, F, Fut>(
        &self,
        parts: &[&[u8]],
        decode: impl Fn(&[u8]) -> Option<T>,
        encode: impl Fn(&T) -> Option<(Vec<u8>, Duration)>,
        fetch: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = self.protection.cache_key(parts);
        if let Some(value) = self.get_sealed(&key).await.and_then(|(payload, _)| decode(&payload)) {
            return Ok(value);
        }
        let lock = format!("{key}:lock");
        let added = self.run(&lock, Op::Add(b"1", LOCK_TTL)).await;
        match added {
            Some(Answer::NotStored) => {
                let waited = tokio::time::Instant::now() + LOCK_WAIT;
                while tokio::time::Instant::now() < waited {
                    tokio::time::sleep(LOCK_POLL).await;
                    if let Some(value) = self.get_sealed(&key).await.and_then(|(payload, _)| decode(&payload)) {
                        return Ok(value);
                    }
                }
            }
            None => self.metrics.shared_cache(SharedCacheEvent::Fallback),
            Some(_) => {}
        }
        let value = fetch().await;
        if let Ok(value) = &value
            && let Some((payload, ttl)) = encode(value)
        {
            self.store(&key, &payload, ttl).await;
        }
        // Only the lock this replica took: another's is left to its holder.
        if matches!(added, Some(Answer::Stored)) {
            self.run(&lock, Op::Delete).await;
        }
        value
    }

    /// Up to `want` tokens of the bucket `parts` shared by the replicas:
    /// GCRA (the same algorithm as the in-process buckets) over a
    /// theoretical arrival time kept in memcached and advanced by
    /// compare-and-set, so that the replicas together admit what one
    /// process would.
    pub async fn lease(&self, parts: &[&[u8]], rate: Rate, want: u32) -> Lease {
        let key = self.protection.cache_key(parts);
        for _ in 0..LEASE_ATTEMPTS {
            let now = now_micros();
            let (arrival, cas) = match self.run(&key, Op::Get).await {
                None => return self.lease_fallback(),
                Some(Answer::Found(sealed, cas)) => {
                    let arrival = self.open_or_reject(&key, &sealed, |payload| {
                        <[u8; 8]>::try_from(payload).ok().map(u64::from_be_bytes)
                    });
                    (arrival.unwrap_or(now), Some(cas))
                }
                Some(_) => (now, None),
            };
            let grant = gcra(rate, want, arrival, now);
            let Some((granted, next_arrival)) = grant.granted else {
                return Lease::Refused {
                    retry_after: grant.retry_after,
                    wait: Duration::from_micros(grant.wait),
                };
            };
            let ttl = Duration::from_micros(next_arrival.saturating_sub(now)) + Duration::from_secs(1);
            let sealed = self.protection.seal(&key, &next_arrival.to_be_bytes());
            let written = match cas {
                Some(cas) => self.run(&key, Op::CompareAndSet(&sealed, ttl, cas)).await,
                None => self.run(&key, Op::Add(&sealed, ttl)).await,
            };
            match written {
                Some(Answer::Stored) => return Lease::Granted(granted),
                // Another replica leased meanwhile: read again.
                Some(_) => continue,
                None => return self.lease_fallback(),
            }
        }
        // The bucket is that busy: nothing for this request (memcached
        // answered, so no fallback to the replica's own bucket).
        Lease::Refused {
            retry_after: 1,
            wait: Duration::ZERO,
        }
    }

    fn lease_fallback(&self) -> Lease {
        self.metrics.shared_cache(SharedCacheEvent::Fallback);
        Lease::Unavailable
    }

    /// Whether memcached answers (for `/readyz` when rates fail closed).
    pub async fn reachable(&self) -> bool {
        let key = self.protection.cache_key(&[b"readiness"]);
        self.run(&key, Op::Get).await.is_some()
    }
}

/// Microseconds since the Unix epoch: the replicas' common clock (hosts
/// kept in step by NTP, as Keystone's token expiry already needs).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}

/// What a GCRA bucket grants at `now` (microseconds) to a lease of `want`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    /// How many tokens, and the bucket's theoretical arrival time after them.
    granted: Option<(u32, u64)>,
    /// When none: microseconds until one, and as whole seconds (at least 1).
    wait: u64,
    retry_after: u32,
}

/// GCRA: a bucket of `rate.burst` tokens refilled one per `1/rate.per_sec`,
/// its state the theoretical arrival time `arrival` (a past one is a full bucket).
fn gcra(rate: Rate, want: u32, arrival: u64, now: u64) -> Grant {
    let interval = 1_000_000 / u64::from(rate.per_sec.get()).max(1);
    let interval = interval.max(1);
    let base = arrival.max(now);
    let horizon = now.saturating_add(interval.saturating_mul(u64::from(rate.burst.get())));
    let available = horizon.saturating_sub(base) / interval;
    let granted = u32::try_from(available.min(u64::from(want.max(1)))).unwrap_or(u32::MAX);
    if granted == 0 {
        let wait = base.saturating_add(interval).saturating_sub(horizon);
        return Grant {
            granted: None,
            wait,
            retry_after: u32::try_from(wait.div_ceil(1_000_000).max(1)).unwrap_or(u32::MAX),
        };
    }
    Grant {
        granted: Some((granted, base + u64::from(granted) * interval)),
        wait: 0,
        retry_after: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn rate(per_sec: u32, burst: u32) -> Rate {
        Rate {
            per_sec: NonZeroU32::new(per_sec).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn gcra_grants_the_burst_then_the_rate() {
        let ten = rate(10, 10);
        let now = 1_000_000_000;
        // A new (or idle) bucket: the whole burst.
        let first = gcra(ten, 20, now - 5_000_000, now);
        assert_eq!(first.granted, Some((10, now + 1_000_000)));
        // Empty: the next token in a tenth of a second, said as 1 s.
        let empty = gcra(ten, 1, now + 1_000_000, now);
        assert_eq!((empty.granted, empty.retry_after), (None, 1));
        // Half a second later, five have come back.
        let later = gcra(ten, 3, now + 1_000_000, now + 500_000);
        assert_eq!(later.granted, Some((3, now + 1_300_000)));
        // Ten seconds at the rate: 100 tokens after the burst.
        let (mut arrival, mut admitted, mut clock) = (0, 0, now);
        while clock < now + 10_000_000 {
            if let Some((granted, next)) = gcra(ten, 1, arrival, clock).granted {
                admitted += granted;
                arrival = next;
            }
            clock += 10_000;
        }
        assert!((109..=111).contains(&admitted), "{admitted}");
    }

    #[test]
    fn slow_rates_say_when_to_retry() {
        let one_a_minute = rate(1, 1);
        let now = 5_000_000;
        let empty = gcra(one_a_minute, 1, now + 1_000_000, now);
        assert_eq!(empty.retry_after, 1);
        let far = gcra(one_a_minute, 1, now + 30_000_000, now);
        assert_eq!(far.retry_after, 30);
    }
}
