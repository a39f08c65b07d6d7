//! Is the environment a member of another project's shared image? Glance
//! says (`GET /v2/images/{id}/members/{member}`, see [`glance::is_member`]);
//! its answers are kept briefly per namespace, so that a list showing many
//! shared images, or a request looking an image up twice (a name, then the
//! image), asks once.
//!
//! Only the facade's own isolation check reads these answers, and it
//! matters only when Glance hands out an image it should not have (broader
//! credentials than intended): with the intended credentials Glance itself
//! never returns a shared image to a non-member. A membership removed in
//! Glance may so be honoured by the facade up to the cache's lifetime late.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use super::{Session, glance};
use crate::error::AllianceError;

pub struct Memberships {
    /// `(environment, image id)` -> member, and until when that is trusted.
    answers: Mutex<LruCache<(String, String), (bool, Instant)>>,
    ttl: Duration,
    concurrency: usize,
}

impl Memberships {
    /// At most `capacity` answers, each kept `ttl`; `concurrency`: look-ups
    /// one request may have in flight at once.
    pub fn new(capacity: usize, ttl: Duration, concurrency: usize) -> Self {
        Memberships {
            answers: Mutex::new(LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN))),
            ttl,
            concurrency: concurrency.max(1),
        }
    }

    /// How many look-ups one request may have in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Whether the session's environment is a member of image `id`.
    pub async fn is_member(&self, session: &Session, id: &str) -> Result<bool, AllianceError> {
        let key = (session.environment.clone(), id.to_owned());
        if let Some(member) = self.cached(&key) {
            return Ok(member);
        }
        let member = glance::is_member(session, id, &session.environment).await?;
        if !self.ttl.is_zero() {
            let mut answers = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            answers.put(key, (member, Instant::now() + self.ttl));
        }
        Ok(member)
    }

    fn cached(&self, key: &(String, String)) -> Option<bool> {
        let mut answers = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match answers.get(key) {
            Some(&(member, until)) if Instant::now() < until => Some(member),
            Some(_) => {
                answers.pop(key);
                None
            }
            None => None,
        }
    }
}
