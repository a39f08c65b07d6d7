//! The process-wide budget for upstream answers held in memory.
//!
//! Every answer is read whole before it is judged (see [`super::read_answer`]),
//! so memory would otherwise grow with the number of calls in flight times
//! the size of their answers: 32 concurrent 32 MiB answers took the process
//! to 745 MB. Each answer's bytes are taken from one budget shared by every
//! namespace and thread before they are read, and given back when the last
//! reference to the answer's bytes goes (the budget travels inside the
//! [`Bytes`] of the answer). An answer announced (or growing) past the
//! per-answer limit is refused at once (502); one that cannot get its bytes
//! within the wait is refused with 503, so that a request never waits
//! unbounded for memory.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::TransportError;

/// Limits of the memory upstream answers may take.
#[derive(Debug, Clone)]
pub struct AnswerBudget {
    /// One permit per byte.
    bytes: Arc<Semaphore>,
    total: usize,
    max_answer: usize,
    wait: Duration,
}

impl AnswerBudget {
    /// `total` bytes for all answers at once, `max_answer` for one (at most
    /// `total`), `wait`: how long an answer may wait for its bytes.
    pub fn new(total: usize, max_answer: usize, wait: Duration) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        AnswerBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            max_answer: max_answer.min(total),
            wait,
        }
    }

    /// Bytes not taken by answers now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// An empty answer, reading `declared` bytes if the length is known.
    pub async fn answer(&self, declared: Option<u64>) -> Result<AnswerBuffer, TransportError> {
        let mut buffer = AnswerBuffer {
            budget: self.clone(),
            permit: None,
            reserved: 0,
            first: None,
            rest: BytesMut::new(),
        };
        if let Some(declared) = declared {
            let declared = usize::try_from(declared).unwrap_or(usize::MAX);
            buffer.reserve(declared).await?;
        }
        Ok(buffer)
    }
}

/// One answer being read: its bytes so far and the budget they hold.
pub struct AnswerBuffer {
    budget: AnswerBudget,
    permit: Option<OwnedSemaphorePermit>,
    reserved: usize,
    /// The first chunk, kept as it came: most answers arrive in one.
    first: Option<Bytes>,
    rest: BytesMut,
}

impl AnswerBuffer {
    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.rest.len()
    }

    /// Takes budget for the answer to hold `length` bytes in all.
    async fn reserve(&mut self, length: usize) -> Result<(), TransportError> {
        if length > self.budget.max_answer {
            return Err(TransportError::TooLarge(self.budget.max_answer));
        }
        let more = length.saturating_sub(self.reserved);
        if more == 0 {
            return Ok(());
        }
        // Below the answer limit, itself below u32::MAX (checked in the configuration).
        let count = u32::try_from(more).map_err(|_| TransportError::TooLarge(self.budget.max_answer))?;
        let permit = match Arc::clone(&self.budget.bytes).try_acquire_many_owned(count) {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(
                self.budget.wait,
                Arc::clone(&self.budget.bytes).acquire_many_owned(count),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(TransportError::Busy {
                wanted: length,
                budget: self.budget.total,
            })?,
        };
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.reserved = length;
        Ok(())
    }

    /// Adds a chunk of the answer, taking budget for it if its length was
    /// not known (or is exceeded).
    pub async fn push(&mut self, chunk: Bytes) -> Result<(), TransportError> {
        let length = self.len() + chunk.len();
        self.reserve(length).await?;
        match self.first.take() {
            None if self.rest.is_empty() => self.first = Some(chunk),
            first => {
                if let Some(first) = first {
                    // A second chunk: from here on, one contiguous buffer.
                    self.rest.reserve(self.reserved.max(length) - self.rest.len());
                    self.rest.extend_from_slice(&first);
                }
                self.rest.extend_from_slice(&chunk);
            }
        }
        Ok(())
    }

    /// The whole answer; its budget is given back when the last reference
    /// to these bytes is dropped.
    pub fn finish(self) -> Bytes {
        let bytes = match self.first {
            Some(first) => first,
            None => self.rest.freeze(),
        };
        match self.permit {
            Some(permit) if !bytes.is_empty() => Bytes::from_owner(Budgeted { bytes, _permit: permit }),
            // Nothing to hold (an empty answer): the permit, if any, goes now.
            _ => bytes,
        }
    }
}

/// An answer's bytes with the budget they hold.
struct Budgeted {
    bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: usize, max_answer: usize) -> AnswerBudget {
        AnswerBudget::new(total, max_answer, Duration::from_millis(50))
    }

    async fn read(
        budget: &AnswerBudget,
        declared: Option<u64>,
        chunks: &[&'static [u8]],
    ) -> Result<Bytes, TransportError> {
        let mut buffer = budget.answer(declared).await?;
        for chunk in chunks {
            buffer.push(Bytes::from_static(chunk)).await?;
        }
        Ok(buffer.finish())
    }

    #[tokio::test]
    async fn answers_hold_their_bytes_until_dropped() {
        let budget = budget(100, 60);
        let one = read(&budget, Some(5), &[b"hello"]).await.unwrap();
        assert_eq!((&one[..], budget.available()), (&b"hello"[..], 95));
        let two = read(&budget, None, &[b"ab", b"cd", b"e"]).await.unwrap();
        assert_eq!((&two[..], budget.available()), (&b"abcde"[..], 90));
        // A slice keeps the whole answer (and its budget) alive.
        let part = two.slice(1..2);
        drop(two);
        assert_eq!(budget.available(), 90);
        drop(part);
        drop(one);
        assert_eq!(budget.available(), 100);
        // Empty answers take nothing.
        let empty = read(&budget, Some(0), &[]).await.unwrap();
        assert!(empty.is_empty());
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn too_large_is_refused_before_reading_or_as_it_grows() {
        let budget = budget(100, 8);
        assert!(matches!(budget.answer(Some(9)).await, Err(TransportError::TooLarge(8))));
        let grown = read(&budget, None, &[b"12345", b"6789"]).await;
        assert!(matches!(grown, Err(TransportError::TooLarge(8))));
        assert_eq!(budget.available(), 100, "a refused answer gives its budget back");
    }

    #[tokio::test]
    async fn an_exhausted_budget_waits_then_refuses_or_proceeds() {
        let budget = budget(10, 10);
        let held = read(&budget, Some(8), &[b"12345678"]).await.unwrap();
        // No room within the wait: busy.
        match read(&budget, Some(5), &[b"12345"]).await {
            Err(TransportError::Busy { wanted: 5, budget: 10 }) => {}
            other => panic!("expected busy, got {:?}", other.map(|bytes| bytes.len())),
        }
        // Room made while waiting: it proceeds.
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { read(&budget, Some(5), &[b"12345"]).await.map(|bytes| bytes.len()) })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap().unwrap(), 5);
        assert_eq!(budget.available(), 10);
    }
}
