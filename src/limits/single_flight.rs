//! Identical reads share one upstream call. A read that starts within the
//! window of an identical read's call (counted from when that call
//! started) takes that call's answer: it waits for it if the call is still
//! running, or takes it at once if it is done. No one so gets an answer
//! older than their request by more than the window, and a crowd polling
//! one image costs Glance about one call per window instead of one per
//! poll.
//!
//! What is shared and what is not:
//! - a failure (`reusable` says which answers are not) is shared only by
//!   the reads already waiting for it - they started with it, and alone
//!   would have met the same trouble; a read arriving after it makes a new
//!   call;
//! - the read that makes the call runs it as part of itself (no task, no
//!   boxed future: a read nobody joins costs a look-up and an entry). If it
//!   goes away (its client left), its call goes with it and the reads that
//!   were waiting make it again - one of them for the others - so every
//!   waiting read still gets an answer;
//! - [`SingleFlight::forget`] drops an entry, so that a write's own
//!   client never reads the image as it was before its write;
//! - the answers kept for later reads are bounded in bytes as well as in
//!   number: an answer that would take the kept ones past the bound is
//!   handed to the reads already waiting and then dropped, so a client
//!   showing many large images in turn cannot make the map hold more.
//!
//! The map is one per namespace, shared by the serving threads behind a
//! mutex held for a look-up only: a map per thread would coalesce once per
//! thread (half as well on two cores), and could not be told of a write
//! made on another thread. Its entries are bounded in number; expired ones
//! are dropped as new ones come.

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lru::LruCache;
use tokio::sync::Notify;

/// The call of the reads with one key.
struct Flight<V> {
    started: Instant,
    /// The id of the request that makes the call (for the others' logs).
    leader: Arc<str>,
    outcome: OnceLock<Outcome<V>>,
    /// Told when `outcome` is set.
    settled: Notify,
    /// Whether the map holds it (changed under the map's lock).
    kept: AtomicBool,
    /// The bytes of its answer counted in the map's total (changed under
    /// the map's lock; 0 until counted).
    counted: AtomicUsize,
}

enum Outcome<V> {
    /// The call's answer, and whether later reads may take it.
    Answered(V, bool),
    /// The read making the call went away before its answer.
    Abandoned,
}

/// A read's answer, and the request whose call it came from if another's.
#[derive(Debug)]
pub struct Answer<V> {
    pub value: V,
    pub shared_from: Option<Arc<str>>,
}

/// What a read does, decided under the lock.
enum Step<V> {
    Done(V, Arc<str>),
    Join(Arc<Flight<V>>),
    Lead(Arc<Flight<V>>),
}

/// The flights by key, and the bytes of the answers they keep.
struct FlightMap<V> {
    map: LruCache<String, Arc<Flight<V>>>,
    bytes: usize,
}

impl<V> FlightMap<V> {
    /// Bookkeeping for a flight no longer in the map.
    fn discard(&mut self, flight: &Flight<V>) {
        flight.kept.store(false, Ordering::Relaxed);
        self.bytes -= flight.counted.swap(0, Ordering::Relaxed);
    }
}

pub struct SingleFlight<V> {
    window: Duration,
    max_bytes: usize,
    flights: Mutex<FlightMap<V>>,
}

impl<V: Clone> SingleFlight<V> {
    /// Reads share calls started at most `window` before them (zero: none
    /// is shared); at most `capacity` keys are tracked, and answers of at
    /// most `max_bytes` in all kept for later reads.
    pub fn new(window: Duration, capacity: usize, max_bytes: usize) -> Self {
        SingleFlight {
            window,
            max_bytes,
            flights: Mutex::new(FlightMap {
                map: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlightMap<V>> {
        self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The answer for `key()`: another read's, or that of `call()`, made by
    /// this read (as request `leader`) for the reads that come within the
    /// window. `reusable`: whether an answer may be handed to reads that
    /// arrive after it is done; `weight`: its size in bytes. (The key is
    /// made only when reads are shared; `call` only by the read that makes
    /// the call, so that its future is built in place, never moved.)
    pub async fn run<F, Fut>(
        &self,
        key: impl Fn() -> String,
        leader: &str,
        reusable: fn(&V) -> bool,
        weight: fn(&V) -> usize,
        call: F,
    ) -> Answer<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        if self.window.is_zero() {
            return Answer {
                value: call().await,
                shared_from: None,
            };
        }
        let flight = loop {
            match self.step(key(), leader) {
                Step::Done(value, leader) => {
                    return Answer {
                        value,
                        shared_from: Some(leader),
                    };
                }
                Step::Join(flight) => {
                    if let Some(value) = settled(&flight).await {
                        return Answer {
                            value,
                            shared_from: Some(Arc::clone(&flight.leader)),
                        };
                    }
                    // The read making the call went away: make it again.
                }
                Step::Lead(flight) => break flight,
            }
        };
        let leading = Leading(&flight);
        let value = call().await;
        let kept = reusable(&value) && self.count(&flight, weight(&value));
        let _ = flight.outcome.set(Outcome::Answered(value.clone(), kept));
        drop(leading);
        if !kept {
            // The reads waiting have been told; later ones make their own call.
            self.remove(&key(), &flight);
        }
        Answer {
            value,
            shared_from: None,
        }
    }

    /// One look-up: the key's flight if it is young and of use, else a new
    /// one made by this read.
    fn step(&self, key: String, leader: &str) -> Step<V> {
        let now = Instant::now();
        let new_flight = || {
            Arc::new(Flight {
                started: now,
                leader: Arc::from(leader),
                outcome: OnceLock::new(),
                settled: Notify::new(),
                kept: AtomicBool::new(true),
                counted: AtomicUsize::new(0),
            })
        };
        let mut flights = self.lock();
        self.drop_expired(&mut flights, now);
        if let Some(flight) = flights.map.get(&key) {
            if now.saturating_duration_since(flight.started) <= self.window {
                match flight.outcome.get() {
                    Some(Outcome::Answered(value, true)) => {
                        return Step::Done(value.clone(), Arc::clone(&flight.leader));
                    }
                    None => return Step::Join(Arc::clone(flight)),
                    // Not to reuse, or abandoned: a new call.
                    Some(Outcome::Answered(_, false) | Outcome::Abandoned) => {}
                }
            }
        }
        let flight = new_flight();
        // Replaces the key's old flight, or evicts the least recently used
        // one when the map is full.
        if let Some((_, old)) = flights.map.push(key, Arc::clone(&flight)) {
            flights.discard(&old);
        }
        Step::Lead(flight)
    }

    /// Counts an answer of `weight` bytes in the map's total if its flight
    /// is still kept and the total stays within the bound; whether it did.
    fn count(&self, flight: &Flight<V>, weight: usize) -> bool {
        let mut flights = self.lock();
        if !flight.kept.load(Ordering::Relaxed) || flights.bytes.saturating_add(weight) > self.max_bytes {
            return false;
        }
        flights.bytes += weight;
        flight.counted.store(weight, Ordering::Relaxed);
        true
    }

    /// Drops `flight` if it is still the one kept for `key`.
    fn remove(&self, key: &str, flight: &Arc<Flight<V>>) {
        let mut flights = self.lock();
        if flights.map.peek(key).is_some_and(|kept| Arc::ptr_eq(kept, flight))
            && let Some(removed) = flights.map.pop(key)
        {
            flights.discard(&removed);
        }
    }

    /// Entries whose window is over, from the least recently used on.
    fn drop_expired(&self, flights: &mut FlightMap<V>, now: Instant) {
        while flights
            .map
            .peek_lru()
            .is_some_and(|(_, flight)| now.saturating_duration_since(flight.started) > self.window)
        {
            if let Some((_, expired)) = flights.map.pop_lru() {
                flights.discard(&expired);
            }
        }
    }

    /// Reads of `key` from now on make a call of their own.
    pub fn forget(&self, key: &str) {
        if self.window.is_zero() {
            return;
        }
        let mut flights = self.lock();
        if let Some(forgotten) = flights.map.pop(key) {
            flights.discard(&forgotten);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// The answer of `flight` once it is settled; `None` if it was abandoned.
async fn settled<V: Clone>(flight: &Flight<V>) -> Option<V> {
    let mut notified = pin!(flight.settled.notified());
    // Registered before looking, so that a settlement in between is heard.
    notified.as_mut().enable();
    if flight.outcome.get().is_none() {
        notified.await;
    }
    match flight.outcome.get() {
        Some(Outcome::Answered(value, _)) => Some(value.clone()),
        Some(Outcome::Abandoned) | None => None,
    }
}

/// The read making a flight's call: when it ends, answered or not, the
/// waiting reads are told (an unanswered flight is abandoned).
struct Leading<'a, V>(&'a Flight<V>);

impl<V> Drop for Leading<'_, V> {
    fn drop(&mut self) {
        let _ = self.0.outcome.set(Outcome::Abandoned);
        self.0.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;
    use futures_util::future::BoxFuture;
    use tokio::sync::oneshot;

    use super::*;

    type Flights = SingleFlight<Result<u32, u32>>;

    fn always(_: &Result<u32, u32>) -> bool {
        true
    }

    fn successes(value: &Result<u32, u32>) -> bool {
        value.is_ok()
    }

    /// An answer's size: its value.
    fn weigh(value: &Result<u32, u32>) -> usize {
        value.map_or(0, |bytes| bytes as usize)
    }

    type Call = Box<dyn FnOnce() -> BoxFuture<'static, Result<u32, u32>> + Send>;

    /// A call that answers when told to, counted when it is made.
    fn call(calls: &Arc<AtomicUsize>, answer: oneshot::Receiver<Result<u32, u32>>) -> Call {
        let calls = Arc::clone(calls);
        Box::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { answer.await.unwrap_or(Err(0)) }.boxed()
        })
    }

    fn immediate(calls: &Arc<AtomicUsize>, value: Result<u32, u32>) -> Call {
        let (send, receive) = oneshot::channel();
        let _ = send.send(value);
        call(calls, receive)
    }

    fn spawn_run(
        flights: &Arc<Flights>,
        leader: &'static str,
        reusable: fn(&Result<u32, u32>) -> bool,
        call: Call,
    ) -> tokio::task::JoinHandle<Answer<Result<u32, u32>>> {
        let flights = Arc::clone(flights);
        tokio::spawn(async move { flights.run(|| "k".into(), leader, reusable, weigh, call).await })
    }

    #[tokio::test]
    async fn reads_during_a_call_wait_for_it_and_share_its_answer() {
        let flights = Arc::new(Flights::new(Duration::from_secs(60), 100, 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let (answer, receive) = oneshot::channel();
        let leader = spawn_run(&flights, "req-1", always, call(&calls, receive));
        tokio::task::yield_now().await;
        let followers: Vec<_> = (0..5)
            .map(|index| spawn_run(&flights, "req-x", always, immediate(&calls, Ok(index))))
            .collect();
        tokio::task::yield_now().await;
        answer.send(Ok(7)).unwrap();
        let led = leader.await.unwrap();
        assert_eq!((led.value, led.shared_from), (Ok(7), None));
        for follower in followers {
            let shared = follower.await.unwrap();
            assert_eq!((shared.value, shared.shared_from.as_deref()), (Ok(7), Some("req-1")));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Done, within the window: taken at once.
        let later = flights
            .run(|| "k".into(), "req-9", always, weigh, immediate(&calls, Ok(8)))
            .await;
        assert_eq!((later.value, later.shared_from.as_deref()), (Ok(7), Some("req-1")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another key: its own call.
        let other = flights
            .run(|| "j".into(), "req-10", always, weigh, immediate(&calls, Ok(9)))
            .await;
        assert_eq!((other.value, other.shared_from), (Ok(9), None));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn past_the_window_a_read_makes_its_own_call() {
        let flights = Flights::new(Duration::from_millis(30), 100, 1 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        flights
            .run(|| "k".into(), "req-1", always, weigh, immediate(&calls, Ok(1)))
            .await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        let fresh = flights
            .run(|| "k".into(), "req-2", always, weigh, immediate(&calls, Ok(2)))
            .await;
        assert_eq!((fresh.value, fresh.shared_from), (Ok(2), None));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failure_is_shared_by_the_waiting_reads_only() {
        let flights = Arc::new(Flights::new(Duration::from_secs(60), 100, 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let (answer, receive) = oneshot::channel();
        let leader = spawn_run(&flights, "req-1", successes, call(&calls, receive));
        tokio::task::yield_now().await;
        let follower = spawn_run(&flights, "req-2", successes, immediate(&calls, Ok(1)));
        tokio::task::yield_now().await;
        answer.send(Err(504)).unwrap();
        assert_eq!(
            (leader.await.unwrap().value, follower.await.unwrap().value),
            (Err(504), Err(504))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let after = flights
            .run(|| "k".into(), "req-3", successes, weigh, immediate(&calls, Ok(3)))
            .await;
        assert_eq!((after.value, after.shared_from), (Ok(3), None));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn when_the_read_making_the_call_goes_away_a_waiting_one_makes_it() {
        let flights = Arc::new(Flights::new(Duration::from_secs(60), 100, 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let (_never, receive) = oneshot::channel();
        let leader = spawn_run(&flights, "req-1", always, call(&calls, receive));
        tokio::task::yield_now().await;
        let followers: Vec<_> = ["req-2", "req-3"]
            .into_iter()
            .map(|id| spawn_run(&flights, id, always, immediate(&calls, Ok(5))))
            .collect();
        tokio::task::yield_now().await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        let mut answers = Vec::new();
        for follower in followers {
            let answer = follower.await.unwrap();
            answers.push((answer.value, answer.shared_from.map(|leader| leader.to_string())));
        }
        // One waiting read made the call again; the other shares it.
        answers.sort();
        assert!(
            answers == [(Ok(5), None), (Ok(5), Some("req-2".to_owned()))]
                || answers == [(Ok(5), None), (Ok(5), Some("req-3".to_owned()))],
            "{answers:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn forget_and_no_window() {
        let flights = Flights::new(Duration::from_secs(60), 100, 1 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        flights
            .run(|| "k".into(), "req-1", always, weigh, immediate(&calls, Ok(1)))
            .await;
        flights.forget("k");
        let fresh = flights
            .run(|| "k".into(), "req-2", always, weigh, immediate(&calls, Ok(2)))
            .await;
        assert_eq!(fresh.value, Ok(2));

        let off = Flights::new(Duration::ZERO, 100, 1 << 20);
        for index in 0..3 {
            let alone = off
                .run(|| "k".into(), "req", always, weigh, immediate(&calls, Ok(index)))
                .await;
            assert_eq!((alone.value, alone.shared_from), (Ok(index), None));
        }
        assert_eq!(off.len(), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn entries_are_bounded_and_expired_ones_dropped() {
        let flights = Flights::new(Duration::from_millis(20), 50, 1 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        for index in 0..500 {
            flights
                .run(
                    || format!("k{index}"),
                    "req",
                    always,
                    weigh,
                    immediate(&calls, Ok(index)),
                )
                .await;
        }
        assert!(flights.len() <= 50);
        tokio::time::sleep(Duration::from_millis(40)).await;
        flights
            .run(|| "new".into(), "req", always, weigh, immediate(&calls, Ok(0)))
            .await;
        assert_eq!(flights.len(), 1, "the expired entries went as a new one came");
        assert_eq!(flights.bytes(), 0, "and so did the bytes of those evicted or expired");
    }

    #[tokio::test]
    async fn answers_kept_for_later_reads_stay_within_the_bytes() {
        let flights = Arc::new(Flights::new(Duration::from_secs(60), 100, 100));
        let calls = Arc::new(AtomicUsize::new(0));
        let run = |key: &'static str, leader: &'static str, value: u32| {
            flights.run(move || key.into(), leader, always, weigh, immediate(&calls, Ok(value)))
        };
        run("a", "req-1", 60).await;
        let again = run("a", "req-2", 0).await;
        assert_eq!((again.value, again.shared_from.as_deref()), (Ok(60), Some("req-1")));
        assert_eq!(flights.bytes(), 60);

        // 50 more bytes would pass 100: the read waiting gets the answer,
        // the map does not keep it.
        let (answer, receive) = oneshot::channel();
        let leader = spawn_run(&flights, "req-3", always, call(&calls, receive));
        tokio::task::yield_now().await;
        let waiting = spawn_run(&flights, "req-4", always, immediate(&calls, Ok(0)));
        tokio::task::yield_now().await;
        answer.send(Ok(50)).unwrap();
        assert_eq!(leader.await.unwrap().value, Ok(50));
        let waited = waiting.await.unwrap();
        assert_eq!((waited.value, waited.shared_from.as_deref()), (Ok(50), Some("req-3")));
        assert_eq!((flights.len(), flights.bytes()), (1, 60));
        let later = run("k", "req-5", 30).await;
        assert_eq!((later.value, later.shared_from), (Ok(30), None), "a call of its own");
        assert_eq!((flights.len(), flights.bytes()), (2, 90));

        flights.forget("a");
        assert_eq!((flights.len(), flights.bytes()), (1, 30));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_read_gone_while_waiting_leaves_the_call_alone() {
        let flights = Arc::new(Flights::new(Duration::from_secs(60), 100, 1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let (answer, receive) = oneshot::channel();
        let leader = spawn_run(&flights, "req-1", always, call(&calls, receive));
        tokio::task::yield_now().await;
        {
            let waiting = flights.run(|| "k".into(), "req-2", always, weigh, immediate(&calls, Ok(2)));
            let mut waiting = pin!(waiting);
            assert!(waiting.as_mut().now_or_never().is_none());
        }
        answer.send(Ok(1)).unwrap();
        assert_eq!(leader.await.unwrap().value, Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
