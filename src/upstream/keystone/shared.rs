//! A namespace's Keystone state in the cache its replicas share
//! (`crate::shared_cache`): its tokens (the unscoped one and each
//! environment's), the environments Keystone refused, and its callers'
//! token validations. Each is looked up only where the replica would
//! otherwise call Keystone (its in-process cache missed), and stored once
//! it has called; so a replica that starts, or an environment another
//! replica has used, costs Keystone nothing.
//!
//! Entries are the namespace's: their keys include a fingerprint of who the
//! namespace is to Keystone (endpoint, user or application credential,
//! interface, region, scope method), never its password; and they are
//! sealed by the shared cache (encrypted by default: no token in clear).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::client::TokenFacts;
use super::settings::{DomainRef, Identity, KeystoneSettings, Secret, UserRef};
use crate::error::AllianceError;
use crate::shared_cache::{SharedCache, now_micros};

/// Kinds of entry, the first part of their keys (named only in this file).
const SCOPED: &str = "scoped";
const UNSCOPED: &str = "unscoped";
const REFUSED: &str = "refused";

/// A token as the replicas share it.
#[derive(Serialize, Deserialize)]
struct SharedToken {
    id: String,
    /// Unix seconds.
    expires_at: i64,
    endpoint: Option<String>,
}

/// A caller's token as Keystone judged it (`facts`: `None`, not valid),
/// trusted until `until` (Unix microseconds).
#[derive(Serialize, Deserialize)]
struct SharedJudgement {
    facts: Option<SharedFacts>,
    until: u64,
}

#[derive(Serialize, Deserialize)]
struct SharedFacts {
    user_id: String,
    project_id: Option<String>,
    roles: Vec<String>,
    expires_at: i64,
}

/// A token taken from, or given to, the shared cache.
pub struct TokenRecord {
    pub id: Secret,
    pub expires_at: OffsetDateTime,
    pub endpoint: Option<Url>,
}

pub struct SharedKeystone {
    cache: Arc<SharedCache>,
    /// Who the namespace is to Keystone, hashed.
    scope: [u8; 32],
    /// A shared token is taken only with at least this long left.
    margin: Duration,
}

impl SharedKeystone {
    /// `margin`: how long before its expiry a token is replaced.
    pub fn new(
        cache: Arc<SharedCache>,
        settings: &KeystoneSettings,
        explicit_endpoint: Option<&Url>,
        margin: Duration,
    ) -> Self {
        let mut hash = Sha256::new();
        let mut part = |text: &str| {
            hash.update((text.len() as u64).to_be_bytes());
            hash.update(text.as_bytes());
        };
        part(settings.auth_url.as_str());
        match &settings.identity {
            Identity::Password { user, .. } => match user {
                UserRef::Id(id) => part(&format!("user id {id}")),
                UserRef::Name { name, domain } => {
                    part(&format!("user name {name}"));
                    match domain {
                        DomainRef::Id(id) => part(&format!("domain id {id}")),
                        DomainRef::Name(domain) => part(&format!("domain name {domain}")),
                    }
                }
            },
            Identity::ApplicationCredential { id, .. } => part(&format!("application credential {id}")),
        }
        part(&settings.interface);
        part(settings.region.as_deref().unwrap_or_default());
        part(&format!("{:?}", settings.scope_method));
        part(explicit_endpoint.map(Url::as_str).unwrap_or_default());
        SharedKeystone {
            cache,
            scope: hash.finalize().into(),
            margin,
        }
    }

    /// The token scoped to `environment`: the replicas' if one has it with
    /// time left, else `fetch`'s, which is then shared.
    pub async fn scoped_token<F, Fut>(&self, environment: &str, fetch: F) -> Result<TokenRecord, AllianceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenRecord, AllianceError>>,
    {
        self.token(SCOPED, environment, fetch).await
    }

    /// The namespace's unscoped token, as [`Self::scoped_token`].
    pub async fn unscoped_token<F, Fut>(&self, fetch: F) -> Result<TokenRecord, AllianceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenRecord, AllianceError>>,
    {
        self.token(UNSCOPED, "", fetch).await
    }

    /// A token of `kind` for `key` (an environment; empty for the unscoped
    /// one): the replicas' if one has it with time left, else `fetch`'s,
    /// which is then shared.
    async fn token<F, Fut>(&self, kind: &str, key: &str, fetch: F) -> Result<TokenRecord, AllianceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenRecord, AllianceError>>,
    {
        let margin = self.margin;
        let decode = |payload: &[u8]| {
            let shared: SharedToken = serde_json::from_slice(payload).ok()?;
            let expires_at = OffsetDateTime::from_unix_timestamp(shared.expires_at).ok()?;
            let left = Duration::try_from(expires_at - OffsetDateTime::now_utc()).ok()?;
            (left > margin).then_some(TokenRecord {
                id: Secret::new(shared.id),
                expires_at,
                endpoint: shared.endpoint.and_then(|endpoint| Url::parse(&endpoint).ok()),
            })
        };
        let encode = |record: &TokenRecord| {
            let left = Duration::try_from(record.expires_at - OffsetDateTime::now_utc()).ok()?;
            let shared = SharedToken {
                id: record.id.expose().to_owned(),
                expires_at: record.expires_at.unix_timestamp(),
                endpoint: record.endpoint.as_ref().map(ToString::to_string),
            };
            Some((serde_json::to_vec(&shared).ok()?, left.checked_sub(margin)?))
        };
        self.cache
            .fetch_shared(&[kind.as_bytes(), &self.scope, key.as_bytes()], decode, encode, fetch)
            .await
    }

    /// Forgets the shared token scoped to `environment` (Glance refused it).
    pub async fn forget_scoped_token(&self, environment: &str) {
        self.cache
            .delete(&[SCOPED.as_bytes(), &self.scope, environment.as_bytes()])
            .await;
    }

    /// Whether a replica learned a moment ago that Keystone refuses `environment`.
    pub async fn refused(&self, environment: &str) -> bool {
        self.cache
            .get(&[REFUSED.as_bytes(), &self.scope, environment.as_bytes()])
            .await
            .is_some()
    }

    /// Tells the replicas that Keystone refuses `environment`, for `ttl`.
    pub async fn remember_refused(&self, environment: &str, ttl: Duration) {
        self.cache
            .set(&[REFUSED.as_bytes(), &self.scope, environment.as_bytes()], b"1", ttl)
            .await;
    }

    /// The judgement of the caller's token whose SHA-256 is `digest`: the
    /// replicas' if one has it, else `judge`'s (who it speaks for, and until
    /// when it is trusted), which is then shared.
    pub async fn judgement<F, Fut>(
        &self,
        digest: &str,
        judge: F,
    ) -> Result<(Option<TokenFacts>, Instant), AllianceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Option<TokenFacts>, Instant), AllianceError>>,
    {
        let decode = |payload: &[u8]| {
            let shared: SharedJudgement = serde_json::from_slice(payload).ok()?;
            let left = Duration::from_micros(shared.until.checked_sub(now_micros())?);
            let facts = match shared.facts {
                None => None,
                Some(facts) => Some(TokenFacts {
                    user_id: facts.user_id,
                    project_id: facts.project_id,
                    roles: facts.roles,
                    expires_at: OffsetDateTime::from_unix_timestamp(facts.expires_at).ok()?,
                }),
            };
            Some((facts, Instant::now() + left))
        };
        let encode = |(facts, until): &(Option<TokenFacts>, Instant)| {
            let left = until.checked_duration_since(Instant::now())?;
            let shared = SharedJudgement {
                facts: facts.as_ref().map(|facts| SharedFacts {
                    user_id: facts.user_id.clone(),
                    project_id: facts.project_id.clone(),
                    roles: facts.roles.clone(),
                    expires_at: facts.expires_at.unix_timestamp(),
                }),
                until: now_micros().saturating_add(u64::try_from(left.as_micros()).unwrap_or(u64::MAX)),
            };
            Some((serde_json::to_vec(&shared).ok()?, left))
        };
        self.cache
            .fetch_shared(&[b"caller", &self.scope, digest.as_bytes()], decode, encode, judge)
            .await
    }
}
