//! At most N calls in flight to one upstream service of a namespace (its
//! Glance, or its Keystone), as Envoy's circuit breakers bound a cluster's
//! `max_requests` and `max_pending_requests`: a call takes a slot, or waits
//! for one in a queue of bounded length for a bounded time (first come,
//! first served), or is refused with 503 and `Retry-After` - never an
//! unbounded pile-up in the facade or in front of the service.
//!
//! A slot is held for one exchange (the answer read whole), not for a
//! whole request: a request making several calls queues for each, and never
//! holds a slot while it waits for another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::Throttled;
use crate::error::AllianceError;
use crate::refusal::{Refusal, Service};

/// The calls in flight to one service.
pub struct Gate {
    service: Service,
    slots: Semaphore,
    max_in_flight: usize,
    queued: AtomicUsize,
    max_queued: usize,
    wait: Duration,
    warnings: Throttled,
}

/// A taken slot; the next call may go when it is dropped.
pub type Slot<'a> = SemaphorePermit<'a>;

impl Gate {
    /// `max_in_flight` calls at once, `max_queued` more waiting at most
    /// `wait` each.
    pub fn new(service: Service, max_in_flight: usize, max_queued: usize, wait: Duration) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Gate {
            service,
            slots: Semaphore::new(max_in_flight),
            max_in_flight,
            queued: AtomicUsize::new(0),
            max_queued,
            wait,
            warnings: Throttled::default(),
        }
    }

    /// A slot for one call: at once if one is free (one atomic operation),
    /// else after waiting in the queue.
    pub async fn enter(&self) -> Result<Slot<'_>, AllianceError> {
        if let Ok(slot) = self.slots.try_acquire() {
            return Ok(slot);
        }
        let Some(_place) = self.queue_place() else {
            return Err(self.refuse(false));
        };
        match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(self.refuse(true)),
        }
    }

    /// A place in the queue, if it is not full; given back when dropped
    /// (the wait ended, or the request went away while waiting).
    fn queue_place(&self) -> Option<QueuePlace<'_>> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < self.max_queued).then_some(queued + 1)
            })
            .ok()
            .map(|_| QueuePlace(&self.queued))
    }

    /// The refusal of a call that found the queue full, or `waited` in it
    /// too long.
    fn refuse(&self, waited: bool) -> AllianceError {
        let refusal = match (self.service, waited) {
            (Service::Image, false) => Refusal::GlanceQueueFull,
            (Service::Image, true) => Refusal::GlanceQueueTimeout,
            (Service::Identity, false) => Refusal::KeystoneQueueFull,
            (Service::Identity, true) => Refusal::KeystoneQueueTimeout,
        };
        if let Some(refused) = self.warnings.due() {
            tracing::warn!(
                reason = refusal.label(),
                max_in_flight = self.max_in_flight,
                max_queued = self.max_queued,
                refused,
                "calls to the {} refused: every slot taken and the queue full or waited on too long \
                 (refused counts the refusals since the last such line)",
                self.service.name()
            );
        }
        AllianceError::refused(refusal)
    }

    /// Calls waiting for a slot now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn gate(max_in_flight: usize, max_queued: usize) -> Gate {
        Gate::new(Service::Image, max_in_flight, max_queued, Duration::from_millis(100))
    }

    #[tokio::test]
    async fn calls_past_the_slots_wait_in_turn() {
        let gate = std::sync::Arc::new(gate(1, 2));
        let first = gate.enter().await.unwrap();
        let waiting = {
            let gate = std::sync::Arc::clone(&gate);
            tokio::spawn(async move { gate.enter().await.map(drop) })
        };
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(first);
        waiting.await.unwrap().unwrap();
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_long_wait_refuses_later() {
        let gate = gate(1, 1);
        let _held = gate.enter().await.unwrap();
        let queued = gate.enter();
        let mut queued = std::pin::pin!(queued);
        // Polled once: it takes the one place in the queue.
        assert!(queued.as_mut().now_or_never().is_none());
        let refused = gate.enter().await.unwrap_err();
        assert_eq!(
            (
                refused.status.as_u16(),
                refused.retry_after,
                refused.refusal.map(|refusal| refusal.label())
            ),
            (503, Some(1), Some("glance_queue_full"))
        );
        assert_eq!(
            refused.message,
            "too many calls to the image service at once; retry later"
        );
        let waited = queued.await.unwrap_err();
        assert_eq!(
            (waited.status.as_u16(), waited.refusal.map(|refusal| refusal.label())),
            (503, Some("glance_queue_timeout"))
        );
        assert_eq!(gate.waiting(), 0, "the place is given back");
    }

    #[tokio::test]
    async fn a_caller_gone_while_waiting_gives_its_place_back() {
        let gate = Gate::new(Service::Identity, 1, 1, Duration::from_secs(60));
        let _held = gate.enter().await.unwrap();
        {
            let mut queued = std::pin::pin!(gate.enter());
            assert!(queued.as_mut().now_or_never().is_none());
            assert_eq!(gate.waiting(), 1);
        }
        assert_eq!(gate.waiting(), 0);
        let refused = {
            let mut queued = std::pin::pin!(gate.enter());
            assert!(queued.as_mut().now_or_never().is_none());
            gate.enter().await.unwrap_err()
        };
        assert_eq!(refused.refusal, Some(Refusal::KeystoneQueueFull));
        assert!(refused.message.contains("identity service"));
    }

    #[tokio::test]
    async fn no_queue_refuses_as_soon_as_the_slots_are_taken() {
        let gate = gate(2, 0);
        let _one = gate.enter().await.unwrap();
        let _two = gate.enter().await.unwrap();
        assert_eq!(gate.enter().await.unwrap_err().refusal, Some(Refusal::GlanceQueueFull));
    }
}
