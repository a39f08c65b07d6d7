//! Token cache with single flight: one slot per key (an environment), each
//! behind an async lock, so that concurrent first requests for the same key
//! wait for one Keystone call instead of making one each. Bounded: the
//! least recently used slot goes when the cache is full. A failure is kept
//! briefly too, so waiters behind a failed call get its answer at once.
//! A key without a slot may be refused a slot ([`SingleFlightCache::get_admitted`]):
//! new keys are what a rate limit counts.
//!
//! [`ExpiringSet`]: keys remembered for a while (refused environments),
//! bounded the same way.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::error::AllianceError;

/// Something cached until a refresh time.
pub trait Expiring {
    /// When it should be replaced (for tokens: 120 s before `expires_at`).
    fn refresh_at(&self) -> Instant;
}

enum SlotState<T> {
    Empty,
    Ready(Arc<T>),
    Failed { error: AllianceError, until: Instant },
}

struct Slot<T> {
    state: tokio::sync::Mutex<SlotState<T>>,
}

pub struct SingleFlightCache<T> {
    slots: Mutex<LruCache<String, Arc<Slot<T>>>>,
}

impl<T: Expiring> SingleFlightCache<T> {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        SingleFlightCache {
            slots: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The key's slot; a new one only if `admit` agrees (decided under
    /// the cache's lock, so that concurrent first requests ask once).
    fn slot(
        &self,
        key: &str,
        admit: impl FnOnce() -> Result<(), AllianceError>,
    ) -> Result<Arc<Slot<T>>, AllianceError> {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = slots.get(key) {
            return Ok(Arc::clone(slot));
        }
        admit()?;
        let slot = Arc::new(Slot {
            state: tokio::sync::Mutex::new(SlotState::Empty),
        });
        slots.put(key.to_owned(), Arc::clone(&slot));
        Ok(slot)
    }

    /// The cached value if still fresh; otherwise the result of `fetch`,
    /// run by one caller while the others for the same key wait.
    /// `failure_ttl` says how long a given failure is repeated without a new call.
    pub async fn get<F, Fut>(
        &self,
        key: &str,
        fetch: F,
        failure_ttl: impl Fn(&AllianceError) -> Duration,
    ) -> Result<Arc<T>, AllianceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AllianceError>>,
    {
        self.get_admitted(key, || Ok(()), fetch, failure_ttl).await
    }

    /// [`Self::get`], where a key the cache has no slot for must first pass
    /// `admit` (its error is the answer, and nothing is cached).
    pub async fn get_admitted<F, Fut>(
        &self,
        key: &str,
        admit: impl FnOnce() -> Result<(), AllianceError>,
        fetch: F,
        failure_ttl: impl Fn(&AllianceError) -> Duration,
    ) -> Result<Arc<T>, AllianceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AllianceError>>,
    {
        let slot = self.slot(key, admit)?;
        let mut state = slot.state.lock().await;
        let now = Instant::now();
        match &*state {
            SlotState::Ready(value) if now < value.refresh_at() => return Ok(Arc::clone(value)),
            SlotState::Failed { error, until } if now < *until => return Err(error.clone()),
            _ => {}
        }
        match fetch().await {
            Ok(value) => {
                let value = Arc::new(value);
                *state = SlotState::Ready(Arc::clone(&value));
                Ok(value)
            }
            Err(error) => {
                *state = SlotState::Failed {
                    until: Instant::now() + failure_ttl(&error),
                    error: error.clone(),
                };
                Err(error)
            }
        }
    }

    /// Drops the cached value for `key` if it is the one rejected (`is_rejected`
    /// says): a newer value fetched meanwhile by another request is kept.
    pub async fn invalidate_where(&self, key: &str, is_rejected: impl FnOnce(&T) -> bool) {
        let Ok(slot) = self.slot(key, || Err(AllianceError::not_found("no slot"))) else {
            return;
        };
        let mut state = slot.state.lock().await;
        if matches!(&*state, SlotState::Ready(current) if is_rejected(current)) {
            *state = SlotState::Empty;
        }
    }

    /// Drops the key's slot (requests already waiting on it still get its
    /// answer), so that keys remembered elsewhere do not push out others.
    pub fn remove(&self, key: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.pop(key);
    }

    pub fn len(&self) -> usize {
        self.slots.lock().map(|slots| slots.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keys remembered for `ttl`, at most `capacity` of them: the least
/// recently used goes first when full.
pub struct ExpiringSet {
    entries: Mutex<LruCache<String, Instant>>,
    ttl: Duration,
}

impl ExpiringSet {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        ExpiringSet {
            entries: Mutex::new(LruCache::new(capacity)),
            ttl,
        }
    }

    pub fn insert(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.put(key.to_owned(), Instant::now() + self.ttl);
    }

    /// Whether `key` was inserted less than `ttl` ago (an expired key goes).
    pub fn contains(&self, key: &str) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get(key) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                entries.pop(key);
                false
            }
            None => false,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|entries| entries.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Token {
        id: usize,
        refresh_at: Instant,
    }

    impl Expiring for Token {
        fn refresh_at(&self) -> Instant {
            self.refresh_at
        }
    }

    fn no_retry_window(_: &AllianceError) -> Duration {
        Duration::ZERO
    }

    #[tokio::test]
    async fn concurrent_first_requests_share_one_fetch() {
        let cache = Arc::new(SingleFlightCache::<Token>::new(16));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let cache = Arc::clone(&cache);
            let fetches = Arc::clone(&fetches);
            tasks.push(tokio::spawn(async move {
                cache
                    .get(
                        "env",
                        || async {
                            let id = fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(Token {
                                id,
                                refresh_at: Instant::now() + Duration::from_secs(60),
                            })
                        },
                        no_retry_window,
                    )
                    .await
                    .map(|token| token.id)
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 0);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_values_are_refetched_and_invalidation_is_exact() {
        let cache = SingleFlightCache::<Token>::new(16);
        let stale = cache
            .get(
                "k",
                || async {
                    Ok(Token {
                        id: 1,
                        refresh_at: Instant::now(),
                    })
                },
                no_retry_window,
            )
            .await
            .unwrap();
        let fresh = cache
            .get(
                "k",
                || async {
                    Ok(Token {
                        id: 2,
                        refresh_at: Instant::now() + Duration::from_secs(60),
                    })
                },
                no_retry_window,
            )
            .await
            .unwrap();
        assert_eq!(fresh.id, 2);
        // Invalidating an older value keeps the newer one.
        cache.invalidate_where("k", |token| token.id == stale.id).await;
        let again = cache
            .get(
                "k",
                || async { Err(AllianceError::bad_gateway("unused")) },
                no_retry_window,
            )
            .await;
        assert_eq!(again.unwrap().id, 2);
        cache.invalidate_where("k", |token| token.id == fresh.id).await;
        let refetched = cache
            .get(
                "k",
                || async {
                    Ok(Token {
                        id: 3,
                        refresh_at: Instant::now() + Duration::from_secs(60),
                    })
                },
                no_retry_window,
            )
            .await
            .unwrap();
        assert_eq!(refetched.id, 3);
    }

    #[tokio::test]
    async fn failures_are_shared_for_their_window_only() {
        let cache = SingleFlightCache::<Token>::new(16);
        let failing = || async { Err::<Token, _>(AllianceError::forbidden("no")) };
        let window = |_: &AllianceError| Duration::from_millis(100);
        assert_eq!(cache.get("k", failing, window).await.unwrap_err().status, 403);
        // Within the window, no new call.
        let unused = || async {
            Ok(Token {
                id: 9,
                refresh_at: Instant::now() + Duration::from_secs(60),
            })
        };
        assert_eq!(cache.get("k", unused, window).await.unwrap_err().status, 403);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(cache.get("k", unused, window).await.unwrap().id, 9);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = SingleFlightCache::<Token>::new(3);
        for key in 0..10 {
            cache
                .get(
                    &key.to_string(),
                    || async {
                        Ok(Token {
                            id: key,
                            refresh_at: Instant::now() + Duration::from_secs(60),
                        })
                    },
                    no_retry_window,
                )
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 3);
    }

    #[tokio::test]
    async fn only_admitted_keys_get_a_slot() {
        let cache = SingleFlightCache::<Token>::new(16);
        let token = |id| async move {
            Ok(Token {
                id,
                refresh_at: Instant::now() + Duration::from_secs(60),
            })
        };
        let refuse = || Err(AllianceError::service_unavailable("not now"));
        let refused = cache.get_admitted("new", refuse, || token(1), no_retry_window).await;
        assert_eq!(refused.unwrap_err().status, 503);
        assert!(cache.is_empty(), "a refused key takes no slot");
        cache.get("known", || token(2), no_retry_window).await.unwrap();
        // A key with a slot is not asked about again.
        let known = cache.get_admitted("known", refuse, || token(3), no_retry_window).await;
        assert_eq!(known.unwrap().id, 2);
        cache.remove("known");
        assert!(cache.is_empty());
        // Invalidating an unknown key creates nothing.
        cache.invalidate_where("other", |_| true).await;
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn expiring_sets_are_bounded_and_forget() {
        let set = ExpiringSet::new(2, Duration::from_millis(100));
        for key in ["a", "b", "c"] {
            set.insert(key);
        }
        assert_eq!(set.len(), 2, "bounded");
        assert!(!set.contains("a"), "the least recently used went first");
        assert!(set.contains("b") && set.contains("c"));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!set.contains("b"), "expired");
        assert_eq!(set.len(), 1);
    }
}
