//! `keystone` auth: per request, a token scoped to the environment's
//! project, cached until 120 s before it expires, obtained once however many
//! requests ask at the same time, and replaced when Glance refuses it.
//!
//! Keystone answers 401 both for wrong service credentials and for a
//! project the service user has no role on (or that does not exist). The
//! facade tells them apart with an unscoped token (which needs only the
//! credentials): credentials refused -> 502; scope refused -> 403
//! "environment not accessible in this namespace". A re-scope of the
//! unscoped token answers 401 too both when that token is no longer valid
//! and when the scope is refused: the token's validation of itself tells
//! which, so a refused scope costs no password check.
//!
//! What an environment the facade holds no token for may cost Keystone is
//! bounded: a refused scope is remembered (bounded, for a while), and the
//! Keystone calls for other environments without a token are rate-limited
//! per namespace (a token bucket), so that requests with random
//! environment ids cannot make the facade hammer Keystone.
//!
//! Callers' own tokens (`keystone_token` callers) are judged apart, by
//! [`caller_tokens::CallerTokens`], with one of these tokens.

pub mod cache;
pub mod caller_tokens;
pub mod catalog;
pub mod client;
pub mod settings;
pub mod shared;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use governor::DefaultDirectRateLimiter;
use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;
use url::Url;

use self::cache::{Expiring, ExpiringSet, SingleFlightCache};
use self::client::{IssuedToken, KeystoneClient, TokenFailure};
use self::settings::{Identity, KeystoneSettings, Secret};
use self::shared::{SharedKeystone, TokenRecord};
use super::auth::{AfterRejection, Credentials, UpstreamAuth};
use super::{IDENTITY_ROOM, UpstreamHttp};
use crate::config::{Rate, ScopeMethod};
use crate::error::AllianceError;
use crate::limits::gate::Gate;
use crate::limits::rate;
use crate::metrics::{NamespaceMetrics, TokenCacheResult, TokenKind};
use crate::refusal::Refusal;
use crate::shared_cache::SharedCache;

const AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// Tokens are replaced this long before they expire (as keystoneauth does).
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// Failures are shared by the requests already waiting, briefly (a refused
/// scope is remembered apart, see [`KeystoneAuth::refused`]).
pub(super) const FAILURE_TTL: Duration = Duration::from_secs(1);

pub fn scope_refused() -> AllianceError {
    AllianceError::forbidden("environment not accessible in this namespace")
}

pub(super) fn is_scope_refused(error: &AllianceError) -> bool {
    error.status == http::StatusCode::FORBIDDEN
}

pub(super) fn credentials_refused() -> AllianceError {
    tracing::warn!(
        reason = "identity_credentials_refused",
        "identity service refused the facade's own credentials"
    );
    AllianceError::bad_gateway("the identity service refused the facade's credentials")
}

/// A token scoped to one environment, and the Glance endpoint from its catalog.
#[derive(Debug)]
pub struct ScopedToken {
    pub(super) id: Secret,
    refresh_at: Instant,
    endpoint: Url,
}

impl Expiring for ScopedToken {
    fn refresh_at(&self) -> Instant {
        self.refresh_at
    }
}

/// The service user's unscoped token, re-scoped per environment (or, with
/// an application credential, its token, used only by the readiness probe).
#[derive(Debug)]
struct UnscopedToken {
    id: Secret,
    refresh_at: Instant,
}

impl Expiring for UnscopedToken {
    fn refresh_at(&self) -> Instant {
        self.refresh_at
    }
}

/// When to replace a token: 120 s before it expires, or half-way through a
/// shorter life.
pub fn refresh_at(expires_at: OffsetDateTime, now: OffsetDateTime, now_instant: Instant) -> Instant {
    let remaining = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
    now_instant + remaining.saturating_sub(REFRESH_MARGIN.min(remaining / 2))
}

pub struct KeystoneAuth {
    client: KeystoneClient,
    metrics: NamespaceMetrics,
    settings: KeystoneSettings,
    explicit_endpoint: Option<Url>,
    /// The image endpoint of the last token's catalog, for the readiness probe.
    catalog_endpoint: Mutex<Option<Url>>,
    scoped: SingleFlightCache<ScopedToken>,
    unscoped: SingleFlightCache<UnscopedToken>,
    /// Environments whose scope Keystone refused, for a while. Kept apart
    /// from the tokens, so that refused ids never push valid tokens out.
    refused: ExpiringSet,
    /// Keystone calls for environments with no token (nor refusal) cached.
    new_environments: DefaultDirectRateLimiter,
    /// An application credential's project, once Keystone has named it:
    /// other environments are refused without asking again.
    bound_project: OnceLock<String>,
    /// What the replicas share, when they share (`[shared_cache]`).
    shared: Option<SharedKeystone>,
}

/// A token bucket of `per_sec` and `burst` (both checked positive by the
/// configuration).
pub(super) fn token_bucket(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    rate::bucket(Rate {
        per_sec: NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN),
        burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
    })
}

impl KeystoneAuth {
    pub(super) fn client(&self) -> &KeystoneClient {
        &self.client
    }

    pub(super) fn settings(&self) -> &KeystoneSettings {
        &self.settings
    }

    pub(super) fn shared(&self) -> Option<&SharedKeystone> {
        self.shared.as_ref()
    }

    /// The environment's token: cached, or obtained once however many
    /// requests ask at the same time.
    pub(super) async fn token(&self, environment: &str, request_id: &str) -> Result<Arc<ScopedToken>, AllianceError> {
        if self.refused.contains(environment) {
            tracing::info!(
                request_id,
                reason = "environment_refused_remembered",
                "environment refused by the identity service a moment ago"
            );
            self.metrics.token_cache(TokenCacheResult::CachedFailure);
            return Err(scope_refused());
        }
        // Whether this caller found no token (a miss), or was answered from the cache.
        let missed = AtomicBool::new(false);
        let token = self
            .scoped
            .get_admitted(
                environment,
                || {
                    missed.store(true, Ordering::Relaxed);
                    self.admit_new_environment(request_id)
                },
                || {
                    missed.store(true, Ordering::Relaxed);
                    self.fetch_scoped(environment, request_id)
                },
                |_| FAILURE_TTL,
            )
            .await;
        self.metrics
            .token_cache(match (missed.load(Ordering::Relaxed), &token) {
                (true, _) => TokenCacheResult::Miss,
                (false, Ok(_)) => TokenCacheResult::Hit,
                (false, Err(_)) => TokenCacheResult::CachedFailure,
            });
        token.inspect_err(|error| {
            if is_scope_refused(error) {
                self.refused.insert(environment);
                self.scoped.remove(environment);
            }
        })
    }

    /// Forgets `rejected` if it is still the environment's token (and the
    /// replicas' copy: a token refused early is refused everywhere).
    pub(super) async fn drop_token(&self, environment: &str, rejected: &ScopedToken) {
        self.forget_scoped(environment, |token| token.id == rejected.id).await;
    }

    /// Forgets the environment's token if `is_rejected` says it is the one
    /// refused, and in any case the replicas' copy.
    async fn forget_scoped(&self, environment: &str, is_rejected: impl FnOnce(&ScopedToken) -> bool) {
        self.scoped.invalidate_where(environment, is_rejected).await;
        if let Some(shared) = &self.shared {
            shared.forget_scoped_token(environment).await;
        }
    }

    /// `gate`: the calls in flight to this Keystone; `shared`: the cache
    /// shared with the other replicas, if any.
    pub fn new(
        settings: KeystoneSettings,
        http: Arc<UpstreamHttp>,
        explicit_endpoint: Option<Url>,
        metrics: NamespaceMetrics,
        gate: Gate,
        shared: Option<Arc<SharedCache>>,
    ) -> Self {
        KeystoneAuth {
            client: KeystoneClient::new(http, settings.auth_url.clone(), metrics.clone(), gate),
            metrics,
            catalog_endpoint: Mutex::new(None),
            scoped: SingleFlightCache::new(settings.token_cache_size),
            unscoped: SingleFlightCache::new(1),
            refused: ExpiringSet::new(settings.refused_environments_size, settings.refused_environment_ttl),
            new_environments: token_bucket(settings.new_environments_per_sec, settings.new_environments_burst),
            bound_project: OnceLock::new(),
            shared: shared
                .map(|cache| SharedKeystone::new(cache, &settings, explicit_endpoint.as_ref(), REFRESH_MARGIN)),
            settings,
            explicit_endpoint,
        }
    }

    /// A token for an environment the facade holds none for costs Keystone
    /// calls: within the namespace's rate only.
    fn admit_new_environment(&self, request_id: &str) -> Result<(), AllianceError> {
        self.admit(
            &self.new_environments,
            |retry_after| Refusal::KeystoneNewEnvironmentRate { retry_after },
            request_id,
            "too many environments without a token at once; identity service not asked",
        )
    }

    /// `Ok` when `bucket` has room; otherwise the refusal (503 with
    /// `Retry-After`), logged.
    pub(super) fn admit(
        &self,
        bucket: &DefaultDirectRateLimiter,
        refusal: fn(u32) -> Refusal,
        request_id: &str,
        log: &'static str,
    ) -> Result<(), AllianceError> {
        rate::take(bucket).map_err(|retry_after| {
            let refusal = refusal(retry_after);
            tracing::warn!(request_id, reason = refusal.label(), "{log}");
            AllianceError::refused(refusal)
        })
    }

    /// The environment's token from the replicas' shared cache when one
    /// has it, else from Keystone (then shared); a refusal a replica
    /// learned a moment ago is shared too.
    async fn fetch_scoped(&self, environment: &str, request_id: &str) -> Result<ScopedToken, AllianceError> {
        let record = match &self.shared {
            None => self.issue_scoped(environment, request_id).await?,
            Some(shared) => {
                if shared.refused(environment).await {
                    return Err(self.refuse_scope(environment, request_id));
                }
                let record = shared
                    .scoped_token(environment, || self.issue_scoped(environment, request_id))
                    .await;
                if let Err(error) = &record
                    && is_scope_refused(error)
                {
                    shared
                        .remember_refused(environment, self.settings.refused_environment_ttl)
                        .await;
                }
                record?
            }
        };
        self.scoped_from(record)
    }

    /// A token scoped to the environment, from Keystone.
    async fn issue_scoped(&self, environment: &str, request_id: &str) -> Result<TokenRecord, AllianceError> {
        let issued = match &self.settings.identity {
            Identity::ApplicationCredential { id, secret } => {
                if self.bound_project.get().is_some_and(|project| project != environment) {
                    return Err(self.refuse_scope(environment, request_id));
                }
                let issued = self
                    .client
                    .issue(
                        TokenKind::ApplicationCredential,
                        &client::application_credential_body(id, secret),
                        request_id,
                    )
                    .await
                    .map_err(|failure| self.failure(failure, credentials_refused))?;
                if let Some(project) = &issued.project_id {
                    let _ = self.bound_project.set(project.clone());
                }
                if issued.project_id.as_deref() != Some(environment) {
                    return Err(self.refuse_scope(environment, request_id));
                }
                issued
            }
            Identity::Password { user, password } => match self.settings.scope_method {
                ScopeMethod::Password => {
                    match self
                        .client
                        .issue(
                            TokenKind::PasswordScoped,
                            &client::password_body(user, password, Some(environment)),
                            request_id,
                        )
                        .await
                    {
                        Ok(issued) => issued,
                        Err(TokenFailure::Unauthorized) => {
                            // Wrong credentials, or a refused scope? An unscoped token says.
                            self.unscoped_token(request_id).await?;
                            return Err(self.refuse_scope(environment, request_id));
                        }
                        Err(failure) => return Err(self.failure(failure, credentials_refused)),
                    }
                }
                ScopeMethod::Rescope => self.rescope(environment, request_id).await?,
            },
        };
        self.record_of(issued)
    }

    /// Re-scopes the unscoped token. If Keystone refuses, the unscoped
    /// token's validation of itself says why: still valid, the scope is
    /// refused (no password check spent on it); gone (revoked, expired),
    /// the re-scope is tried once more with a new unscoped token.
    async fn rescope(&self, environment: &str, request_id: &str) -> Result<IssuedToken, AllianceError> {
        let unscoped = self.unscoped_token(request_id).await?;
        let gone = match self.try_rescope(&unscoped, environment, request_id).await? {
            Some(issued) => return Ok(issued),
            None => match self
                .client
                .validate(TokenKind::Validate, &unscoped.id, &unscoped.id, request_id)
                .await
            {
                Ok(_) => false,
                Err(TokenFailure::Unauthorized | TokenFailure::NotFound) => true,
                Err(TokenFailure::Failed(error)) => return Err(error),
            },
        };
        if !gone {
            return Err(self.refuse_scope(environment, request_id));
        }
        self.unscoped
            .invalidate_where("", |token| token.id == unscoped.id)
            .await;
        let unscoped = self.unscoped_token(request_id).await?;
        match self.try_rescope(&unscoped, environment, request_id).await? {
            Some(issued) => Ok(issued),
            None => Err(self.refuse_scope(environment, request_id)),
        }
    }

    /// The re-scoped token, or `None` if Keystone refused (401, 404).
    async fn try_rescope(
        &self,
        unscoped: &UnscopedToken,
        environment: &str,
        request_id: &str,
    ) -> Result<Option<IssuedToken>, AllianceError> {
        match self
            .client
            .issue(
                TokenKind::Rescope,
                &client::rescope_body(&unscoped.id, environment),
                request_id,
            )
            .await
        {
            Ok(issued) => Ok(Some(issued)),
            Err(TokenFailure::Unauthorized | TokenFailure::NotFound) => Ok(None),
            Err(TokenFailure::Failed(error)) => Err(error),
        }
    }

    /// The refusal of a scope Keystone refused, logged.
    fn refuse_scope(&self, environment: &str, request_id: &str) -> AllianceError {
        tracing::info!(
            request_id,
            environment,
            reason = "environment_not_accessible",
            "the identity service refused the environment's scope"
        );
        scope_refused()
    }

    /// The service user's unscoped token (password identity), or the
    /// application credential's token: what re-scoping starts from, and
    /// the readiness probe's proof that Keystone takes the credentials.
    async fn unscoped_token(&self, request_id: &str) -> Result<Arc<UnscopedToken>, AllianceError> {
        self.unscoped
            .get(
                "",
                || async {
                    let record = match &self.shared {
                        None => self.issue_unscoped(request_id).await?,
                        Some(shared) => shared.unscoped_token(|| self.issue_unscoped(request_id)).await?,
                    };
                    Ok(UnscopedToken {
                        refresh_at: refresh_at(record.expires_at, OffsetDateTime::now_utc(), Instant::now()),
                        id: record.id,
                    })
                },
                |_| FAILURE_TTL,
            )
            .await
    }

    /// The unscoped token (or the application credential's), from Keystone.
    async fn issue_unscoped(&self, request_id: &str) -> Result<TokenRecord, AllianceError> {
        let (kind, body) = match &self.settings.identity {
            Identity::Password { user, password } => {
                (TokenKind::PasswordUnscoped, client::password_body(user, password, None))
            }
            Identity::ApplicationCredential { id, secret } => (
                TokenKind::ApplicationCredential,
                client::application_credential_body(id, secret),
            ),
        };
        let issued = self
            .client
            .issue(kind, &body, request_id)
            .await
            .map_err(|failure| self.failure(failure, credentials_refused))?;
        Ok(TokenRecord {
            id: issued.id,
            expires_at: issued.expires_at,
            endpoint: None,
        })
    }

    /// An issued token with the Glance endpoint its catalog names (or the
    /// configured one).
    fn record_of(&self, issued: IssuedToken) -> Result<TokenRecord, AllianceError> {
        let endpoint = match &self.explicit_endpoint {
            Some(endpoint) => endpoint.clone(),
            None => catalog::image_endpoint(
                &issued.catalog,
                &self.settings.interface,
                self.settings.region.as_deref(),
            )
            .ok_or_else(|| {
                tracing::warn!(
                    reason = "no_image_endpoint",
                    interface = %self.settings.interface,
                    region = ?self.settings.region,
                    "no image endpoint in the catalog"
                );
                AllianceError::bad_gateway("no image endpoint in the service catalog")
            })?,
        };
        Ok(TokenRecord {
            id: issued.id,
            expires_at: issued.expires_at,
            endpoint: Some(endpoint),
        })
    }

    fn scoped_from(&self, record: TokenRecord) -> Result<ScopedToken, AllianceError> {
        let endpoint = record
            .endpoint
            .ok_or_else(|| AllianceError::bad_gateway("no image endpoint in the service catalog"))?;
        if self.explicit_endpoint.is_none() {
            *self.catalog_endpoint.lock().unwrap_or_else(PoisonError::into_inner) = Some(endpoint.clone());
        }
        Ok(ScopedToken {
            refresh_at: refresh_at(record.expires_at, OffsetDateTime::now_utc(), Instant::now()),
            id: record.id,
            endpoint,
        })
    }

    fn failure(&self, failure: TokenFailure, unauthorized: fn() -> AllianceError) -> AllianceError {
        match failure {
            TokenFailure::Unauthorized | TokenFailure::NotFound => unauthorized(),
            TokenFailure::Failed(error) => error,
        }
    }
}

impl UpstreamAuth for KeystoneAuth {
    async fn credentials(&self, environment: &str, request_id: &str) -> Result<Credentials, AllianceError> {
        let token = self.token(environment, request_id).await?;
        let value = HeaderValue::from_str(token.id.expose())
            .map_err(|_| AllianceError::bad_gateway("the identity service sent an unusable token"))?;
        let mut headers = HeaderMap::with_capacity(1 + IDENTITY_ROOM);
        headers.insert(AUTH_TOKEN, value);
        Ok(Credentials {
            endpoint: token.endpoint.clone(),
            headers,
        })
    }

    /// Glance refused the token: it is forgotten (unless another request
    /// replaced it meanwhile), so the call is made again with another.
    async fn rejected(&self, environment: &str, rejected: &Credentials) -> AfterRejection {
        if let Some(value) = rejected.headers.get(AUTH_TOKEN) {
            self.forget_scoped(environment, |token| token.id.expose().as_bytes() == value.as_bytes())
                .await;
        }
        AfterRejection::Retry
    }

    /// For the readiness probe: whether Keystone issues the namespace's own
    /// token (cached until it is due for refresh, so probes do not load
    /// Keystone), and the Glance endpoint to check - the configured one, or
    /// the one the last token's catalog named (`None` before any).
    async fn ready_endpoint(&self, request_id: &str) -> Result<Option<Url>, AllianceError> {
        self.unscoped_token(request_id).await?;
        Ok(self.explicit_endpoint.clone().or_else(|| {
            self.catalog_endpoint
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_120_seconds_early() {
        let now = OffsetDateTime::now_utc();
        let instant = Instant::now();
        assert_eq!(
            refresh_at(now + Duration::from_secs(3600), now, instant),
            instant + Duration::from_secs(3480)
        );
        // A short life: refreshed half-way rather than never used.
        assert_eq!(
            refresh_at(now + Duration::from_secs(100), now, instant),
            instant + Duration::from_secs(50)
        );
        assert_eq!(refresh_at(now - Duration::from_secs(5), now, instant), instant);
    }
}
