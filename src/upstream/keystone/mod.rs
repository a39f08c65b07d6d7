//! `keystone` auth: per request, a token scoped to the environment's
//! project, cached until 120 s before it expires, obtained once however many
//! requests ask at the same time, and replaced when Glance refuses it.
//!
//! Keystone answers 401 both for wrong service credentials and for a
//! project the service user has no role on (or that does not exist). The
//! facade tells them apart with an unscoped token (which needs only the
//! credentials): credentials refused -> 502; scope refused -> 403
//! "environment not accessible in this namespace".

pub mod cache;
pub mod catalog;
pub mod client;
pub mod settings;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;
use url::Url;

use self::cache::{Expiring, SingleFlightCache};
use self::client::{IssuedToken, KeystoneClient, TokenFailure};
use self::settings::{Identity, KeystoneSettings, Secret};
use super::{Credentials, IDENTITY_ROOM, UpstreamHttp};
use crate::config::ScopeMethod;
use crate::error::AllianceError;

const AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// Tokens are replaced this long before they expire (as keystoneauth does).
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// A refused scope is repeated without asking Keystone for this long.
const SCOPE_REFUSAL_TTL: Duration = Duration::from_secs(10);
/// Other failures are shared by the requests already waiting, briefly.
const FAILURE_TTL: Duration = Duration::from_secs(1);

pub fn scope_refused() -> AllianceError {
    AllianceError::forbidden("environment not accessible in this namespace")
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

/// The service user's unscoped token, re-scoped per environment.
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

/// When to replace a token: 120 s before it expires, or half-way through a
/// shorter life.
pub fn refresh_at(expires_at: OffsetDateTime, now: OffsetDateTime, now_instant: Instant) -> Instant {
    let remaining = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
    now_instant + remaining.saturating_sub(REFRESH_MARGIN.min(remaining / 2))
}

pub struct KeystoneAuth {
    client: KeystoneClient,
    settings: KeystoneSettings,
    explicit_endpoint: Option<Url>,
    scoped: SingleFlightCache<ScopedToken>,
    unscoped: SingleFlightCache<UnscopedToken>,
}

impl KeystoneAuth {
    pub fn new(settings: KeystoneSettings, http: Arc<UpstreamHttp>, explicit_endpoint: Option<Url>) -> Self {
        KeystoneAuth {
            client: KeystoneClient::new(http, settings.auth_url.clone()),
            scoped: SingleFlightCache::new(settings.token_cache_size),
            unscoped: SingleFlightCache::new(1),
            settings,
            explicit_endpoint,
        }
    }

    pub async fn credentials(&self, environment: &str, request_id: &str) -> Result<Credentials, AllianceError> {
        let token = self
            .scoped
            .get(
                environment,
                || self.fetch_scoped(environment, request_id),
                |error| {
                    if error.status == 403 {
                        SCOPE_REFUSAL_TTL
                    } else {
                        FAILURE_TTL
                    }
                },
            )
            .await?;
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

    /// Glance refused the token: forget it, so the next call gets another.
    pub async fn invalidate(&self, environment: &str, rejected: &Credentials) {
        if let Some(token) = &rejected.token {
            self.scoped.invalidate(environment, token).await;
        }
    }

    async fn fetch_scoped(&self, environment: &str, request_id: &str) -> Result<ScopedToken, AllianceError> {
        let issued = match &self.settings.identity {
            Identity::ApplicationCredential { id, secret } => {
                let issued = self
                    .client
                    .issue(&client::application_credential_body(id, secret), request_id)
                    .await
                    .map_err(|failure| self.failure(failure, credentials_refused))?;
                if issued.project_id.as_deref() != Some(environment) {
                    return Err(scope_refused());
                }
                issued
            }
            Identity::Password { user, password } => match self.settings.scope_method {
                ScopeMethod::Password => {
                    match self
                        .client
                        .issue(&client::password_body(user, password, Some(environment)), request_id)
                        .await
                    {
                        Ok(issued) => issued,
                        Err(TokenFailure::Unauthorized) => {
                            // Wrong credentials, or a refused scope? An unscoped token says.
                            self.unscoped_token(request_id).await?;
                            return Err(scope_refused());
                        }
                        Err(failure) => return Err(self.failure(failure, credentials_refused)),
                    }
                }
                ScopeMethod::Rescope => self.rescope(environment, request_id).await?,
            },
        };
        self.scoped_token(issued)
    }

    /// Re-scopes the unscoped token; if Keystone refuses, once more with a
    /// fresh unscoped token (the cached one may have been revoked) before
    /// calling the scope refused.
    async fn rescope(&self, environment: &str, request_id: &str) -> Result<IssuedToken, AllianceError> {
        for attempt in 0..2 {
            let unscoped = self.unscoped_token(request_id).await?;
            match self
                .client
                .issue(&client::rescope_body(&unscoped.id, environment), request_id)
                .await
            {
                Ok(issued) => return Ok(issued),
                Err(TokenFailure::Unauthorized | TokenFailure::NotFound) if attempt == 0 => {
                    self.unscoped.invalidate("", &unscoped).await;
                }
                Err(TokenFailure::Unauthorized | TokenFailure::NotFound) => break,
                Err(TokenFailure::Failed(error)) => return Err(error),
            }
        }
        Err(scope_refused())
    }

    async fn unscoped_token(&self, request_id: &str) -> Result<Arc<UnscopedToken>, AllianceError> {
        let Identity::Password { user, password } = &self.settings.identity else {
            return Err(AllianceError::bad_gateway("application credentials cannot be unscoped"));
        };
        self.unscoped
            .get(
                "",
                || async {
                    let issued = self
                        .client
                        .issue(&client::password_body(user, password, None), request_id)
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

    fn scoped_token(&self, issued: IssuedToken) -> Result<ScopedToken, AllianceError> {
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
}
