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
//! It also validates callers' tokens (`keystone_token` callers), as
//! keystonemiddleware does: with a token of the service user scoped to
//! `service_project_id`, cached by the token's SHA-256 for
//! `caller_token_cache_secs` at most (never past its expiry), a token
//! Keystone does not recognise for [`INVALID_TOKEN_TTL`].

pub mod cache;
pub mod catalog;
pub mod client;
pub mod settings;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use governor::DefaultDirectRateLimiter;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use self::cache::{Expiring, ExpiringSet, SingleFlightCache};
use self::client::{IssuedToken, KeystoneClient, TokenFacts, TokenFailure};
use self::settings::{Identity, KeystoneSettings, Secret};
use super::{Credentials, IDENTITY_ROOM, UpstreamHttp};
use crate::config::{Rate, ScopeMethod};
use crate::error::AllianceError;
use crate::ids;
use crate::limits::gate::Gate;
use crate::limits::rate;
use crate::metrics::{NamespaceMetrics, TokenCacheResult, TokenKind};
use crate::refusal::Refusal;

const AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// Tokens are replaced this long before they expire (as keystoneauth does).
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// Failures are shared by the requests already waiting, briefly (a refused
/// scope is remembered apart, see [`KeystoneAuth::refused`]).
const FAILURE_TTL: Duration = Duration::from_secs(1);
/// A caller's token that Keystone did not recognise is refused without
/// asking again for this long.
const INVALID_TOKEN_TTL: Duration = Duration::from_secs(10);

pub fn scope_refused() -> AllianceError {
    AllianceError::forbidden("environment not accessible in this namespace")
}

fn is_scope_refused(error: &AllianceError) -> bool {
    error.status == http::StatusCode::FORBIDDEN
}

fn credentials_refused() -> AllianceError {
    tracing::warn!(
        reason = "identity_credentials_refused",
        "identity service refused the facade's own credentials"
    );
    AllianceError::bad_gateway("the identity service refused the facade's credentials")
}

/// A token scoped to one environment, and the Glance endpoint from its catalog.
#[derive(Debug)]
pub struct ScopedToken {
    id: Secret,
    refresh_at: Instant,
    endpoint: Url,
}

impl Expiring for ScopedToken {
    fn refresh_at(&self) -> Instant {
        self.refresh_at
    }

    fn same_as(&self, other: &Self) -> bool {
        self.id == other.id
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

    fn same_as(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// A caller's token as Keystone judged it: who it speaks for (`None`: not
/// valid), until `refresh_at`.
#[derive(Debug)]
struct CallerToken {
    facts: Option<TokenFacts>,
    refresh_at: Instant,
}

impl Expiring for CallerToken {
    fn refresh_at(&self) -> Instant {
        self.refresh_at
    }

    fn same_as(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// How long a caller's validated token is trusted: `ttl`, never past its expiry.
pub fn trusted_until(expires_at: OffsetDateTime, ttl: Duration, now: OffsetDateTime, now_instant: Instant) -> Instant {
    let remaining = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
    now_instant + remaining.min(ttl)
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
    /// Callers' tokens, by their SHA-256 (the cache holds no token).
    callers: SingleFlightCache<CallerToken>,
    /// Validations of callers' tokens the cache does not know.
    new_caller_tokens: DefaultDirectRateLimiter,
}

/// A token bucket of `per_sec` and `burst` (both checked positive by the
/// configuration).
fn token_bucket(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    rate::bucket(Rate {
        per_sec: NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN),
        burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
    })
}

impl KeystoneAuth {
    /// `gate`: the calls in flight to this Keystone.
    pub fn new(
        settings: KeystoneSettings,
        http: Arc<UpstreamHttp>,
        explicit_endpoint: Option<Url>,
        metrics: NamespaceMetrics,
        gate: Gate,
    ) -> Self {
        KeystoneAuth {
            client: KeystoneClient::new(http, settings.auth_url.clone(), metrics.clone(), gate),
            metrics,
            catalog_endpoint: Mutex::new(None),
            scoped: SingleFlightCache::new(settings.token_cache_size),
            unscoped: SingleFlightCache::new(1),
            refused: ExpiringSet::new(settings.refused_environments_size, settings.refused_environment_ttl),
            new_environments: token_bucket(settings.new_environments_per_sec, settings.new_environments_burst),
            new_caller_tokens: token_bucket(
                settings.caller_token_validations_per_sec,
                settings.caller_token_validations_burst,
            ),
            bound_project: OnceLock::new(),
            callers: SingleFlightCache::new(settings.caller_token_cache_size),
            settings,
            explicit_endpoint,
        }
    }

    pub async fn credentials(&self, environment: &str, request_id: &str) -> Result<Credentials, AllianceError> {
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
        let token = token.inspect_err(|error| {
            if is_scope_refused(error) {
                self.refused.insert(environment);
                self.scoped.remove(environment);
            }
        })?;
        let value = HeaderValue::from_str(token.id.expose())
            .map_err(|_| AllianceError::bad_gateway("the identity service sent an unusable token"))?;
        let mut headers = HeaderMap::with_capacity(1 + IDENTITY_ROOM);
        headers.insert(AUTH_TOKEN, value);
        Ok(Credentials {
            endpoint: token.endpoint.clone(),
            headers,
            token: Some(token),
        })
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

    /// A caller's token the facade has not judged yet costs a Keystone
    /// validation: within the namespace's rate only (a client sending
    /// random tokens must not turn into a load on Keystone).
    fn admit_new_caller_token(&self, request_id: &str) -> Result<(), AllianceError> {
        self.admit(
            &self.new_caller_tokens,
            |retry_after| Refusal::KeystoneCallerTokenRate { retry_after },
            request_id,
            "too many unknown callers' tokens at once; identity service not asked",
        )
    }

    /// `Ok` when `bucket` has room; otherwise the refusal (503 with
    /// `Retry-After`), logged.
    fn admit(
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

    /// Who a caller's token speaks for; `None` when Keystone does not
    /// recognise it (revoked, expired, not a token).
    pub async fn validate_caller_token(
        &self,
        token: &str,
        request_id: &str,
    ) -> Result<Option<TokenFacts>, AllianceError> {
        let key = ids::hex(&Sha256::digest(token.as_bytes()));
        let judged = self
            .callers
            .get_admitted(
                &key,
                || self.admit_new_caller_token(request_id),
                || self.fetch_validation(token, request_id),
                |_| FAILURE_TTL,
            )
            .await?;
        Ok(judged.facts.clone())
    }

    /// Validates with the service project's token; if Keystone refuses that
    /// token (revoked early), once more with a new one.
    async fn fetch_validation(&self, token: &str, request_id: &str) -> Result<CallerToken, AllianceError> {
        let cannot_validate = || AllianceError::bad_gateway("the facade cannot validate tokens in this namespace");
        let Some(project) = &self.settings.service_project_id else {
            tracing::warn!(
                reason = "no_service_project",
                "a caller's token cannot be validated: no service_project_id"
            );
            return Err(cannot_validate());
        };
        let subject = Secret::new(token);
        for attempt in 0..2 {
            let own = self.credentials(project, request_id).await.map_err(|error| {
                if is_scope_refused(&error) {
                    tracing::warn!(
                        request_id,
                        reason = "service_project_refused",
                        "the facade's service user has no role on service_project_id"
                    );
                    cannot_validate()
                } else {
                    error
                }
            })?;
            let Some(own_token) = &own.token else {
                return Err(cannot_validate());
            };
            let judged = match self
                .client
                .validate(TokenKind::CallerToken, &own_token.id, &subject, request_id)
                .await
            {
                Ok(valid) => Some(TokenFacts::from(valid)),
                Err(TokenFailure::NotFound) => None,
                Err(TokenFailure::Unauthorized) if attempt == 0 => {
                    self.invalidate(project, &own).await;
                    continue;
                }
                Err(TokenFailure::Unauthorized) => return Err(credentials_refused()),
                Err(TokenFailure::Failed(error)) => return Err(error),
            };
            let refresh_at = match &judged {
                Some(facts) => trusted_until(
                    facts.expires_at,
                    self.settings.caller_token_ttl,
                    OffsetDateTime::now_utc(),
                    Instant::now(),
                ),
                None => Instant::now() + INVALID_TOKEN_TTL,
            };
            return Ok(CallerToken {
                facts: judged,
                refresh_at,
            });
        }
        Err(credentials_refused())
    }

    /// Glance refused the token: forget it, so the next call gets another.
    pub async fn invalidate(&self, environment: &str, rejected: &Credentials) {
        if let Some(token) = &rejected.token {
            self.scoped.invalidate(environment, token).await;
        }
    }

    async fn fetch_scoped(&self, environment: &str, request_id: &str) -> Result<ScopedToken, AllianceError> {
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
        self.scoped_token(issued)
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
        self.unscoped.invalidate("", &unscoped).await;
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
                    Ok(UnscopedToken {
                        refresh_at: refresh_at(issued.expires_at, OffsetDateTime::now_utc(), Instant::now()),
                        id: issued.id,
                    })
                },
                |_| FAILURE_TTL,
            )
            .await
    }

    /// For the readiness probe: whether Keystone issues the namespace's own
    /// token (cached until it is due for refresh, so probes do not load
    /// Keystone), and the Glance endpoint to check - the configured one, or
    /// the one the last token's catalog named (`None` before any).
    pub async fn ready_endpoint(&self, request_id: &str) -> Result<Option<Url>, AllianceError> {
        self.unscoped_token(request_id).await?;
        Ok(self.explicit_endpoint.clone().or_else(|| {
            self.catalog_endpoint
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }))
    }

    fn scoped_token(&self, issued: IssuedToken) -> Result<ScopedToken, AllianceError> {
        let endpoint = match &self.explicit_endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let endpoint = catalog::image_endpoint(
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
                })?;
                *self.catalog_endpoint.lock().unwrap_or_else(PoisonError::into_inner) = Some(endpoint.clone());
                endpoint
            }
        };
        Ok(ScopedToken {
            refresh_at: refresh_at(issued.expires_at, OffsetDateTime::now_utc(), Instant::now()),
            id: issued.id,
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

    #[test]
    fn callers_tokens_are_trusted_for_the_ttl_and_never_past_expiry() {
        let now = OffsetDateTime::now_utc();
        let instant = Instant::now();
        let ttl = Duration::from_secs(300);
        assert_eq!(
            trusted_until(now + Duration::from_secs(3600), ttl, now, instant),
            instant + ttl
        );
        assert_eq!(
            trusted_until(now + Duration::from_secs(60), ttl, now, instant),
            instant + Duration::from_secs(60)
        );
        assert_eq!(trusted_until(now - Duration::from_secs(5), ttl, now, instant), instant);
    }
}
