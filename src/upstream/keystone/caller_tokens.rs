//! Callers' Keystone tokens (`keystone_token` callers), validated as
//! keystonemiddleware validates them: `GET /v3/auth/tokens` with the token
//! as `X-Subject-Token`, authenticated by the facade's own token scoped to
//! `service_project_id`; the answer cached by the token's SHA-256 (never the
//! token) for `caller_token_cache_secs` at most and never past the token's
//! expiry; a token Keystone does not recognise refused without asking again
//! for [`INVALID_TOKEN_TTL`]. Validations of tokens the cache does not know
//! are rate-limited, so that forged tokens cost Keystone nothing more.
//!
//! Apart from [`KeystoneAuth`], which obtains the facade's own tokens: this
//! judges the callers' tokens, with one of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::DefaultDirectRateLimiter;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::cache::{Expiring, SingleFlightCache};
use super::client::{TokenFacts, TokenFailure};
use super::settings::Secret;
use super::{FAILURE_TTL, KeystoneAuth, credentials_refused, is_scope_refused, token_bucket};
use crate::error::AllianceError;
use crate::ids;
use crate::metrics::TokenKind;
use crate::refusal::Refusal;

/// A caller's token that Keystone did not recognise is refused without
/// asking again for this long.
const INVALID_TOKEN_TTL: Duration = Duration::from_secs(10);

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
}

/// How long a caller's validated token is trusted: `ttl`, never past its expiry.
pub fn trusted_until(expires_at: OffsetDateTime, ttl: Duration, now: OffsetDateTime, now_instant: Instant) -> Instant {
    let remaining = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
    now_instant + remaining.min(ttl)
}

/// The validator of one namespace's callers' tokens.
pub struct CallerTokens {
    /// The namespace's own tokens (one scoped to the service project
    /// authenticates each validation).
    auth: Arc<KeystoneAuth>,
    /// Judged tokens, by their SHA-256 (the cache holds no token).
    judged: SingleFlightCache<CallerToken>,
    /// Validations of tokens the cache does not know.
    new_tokens: DefaultDirectRateLimiter,
}

impl CallerTokens {
    pub fn new(auth: Arc<KeystoneAuth>) -> Self {
        let settings = auth.settings();
        CallerTokens {
            judged: SingleFlightCache::new(settings.caller_token_cache_size),
            new_tokens: token_bucket(
                settings.caller_token_validations_per_sec,
                settings.caller_token_validations_burst,
            ),
            auth,
        }
    }

    /// Who a caller's token speaks for; `None` when Keystone does not
    /// recognise it (revoked, expired, not a token).
    pub async fn validate(&self, token: &str, request_id: &str) -> Result<Option<TokenFacts>, AllianceError> {
        let key = ids::hex(&Sha256::digest(token.as_bytes()));
        let judged = self
            .judged
            .get_admitted(
                &key,
                || self.admit_new_token(request_id),
                || self.judge(token, &key, request_id),
                |_| FAILURE_TTL,
            )
            .await?;
        Ok(judged.facts.clone())
    }

    /// The replicas' judgement of the token (by its SHA-256 `digest`) when
    /// one has it, else Keystone's, which is then shared.
    async fn judge(&self, token: &str, digest: &str, request_id: &str) -> Result<CallerToken, AllianceError> {
        let validate = || async {
            let judged = self.fetch_validation(token, request_id).await?;
            Ok((judged.facts, judged.refresh_at))
        };
        let (facts, refresh_at) = match self.auth.shared() {
            None => validate().await?,
            Some(shared) => shared.judgement(digest, validate).await?,
        };
        Ok(CallerToken { facts, refresh_at })
    }

    /// A token the facade has not judged yet costs a Keystone validation:
    /// within the namespace's rate only (a client sending random tokens must
    /// not turn into a load on Keystone).
    fn admit_new_token(&self, request_id: &str) -> Result<(), AllianceError> {
        self.auth.admit(
            &self.new_tokens,
            |retry_after| Refusal::KeystoneCallerTokenRate { retry_after },
            request_id,
            "too many unknown callers' tokens at once; identity service not asked",
        )
    }

    /// Validates with the service project's token; if Keystone refuses that
    /// token (revoked early), once more with a new one.
    async fn fetch_validation(&self, token: &str, request_id: &str) -> Result<CallerToken, AllianceError> {
        let cannot_validate = || AllianceError::bad_gateway("the facade cannot validate tokens in this namespace");
        let settings = self.auth.settings();
        let Some(project) = &settings.service_project_id else {
            tracing::warn!(
                reason = "no_service_project",
                "a caller's token cannot be validated: no service_project_id"
            );
            return Err(cannot_validate());
        };
        let subject = Secret::new(token);
        for attempt in 0..2 {
            let own = self.auth.token(project, request_id).await.map_err(|error| {
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
            let judged = match self
                .auth
                .client()
                .validate(TokenKind::CallerToken, &own.id, &subject, request_id)
                .await
            {
                Ok(valid) => Some(TokenFacts::from(valid)),
                Err(TokenFailure::NotFound) => None,
                Err(TokenFailure::Unauthorized) if attempt == 0 => {
                    self.auth.drop_token(project, &own).await;
                    continue;
                }
                Err(TokenFailure::Unauthorized) => return Err(credentials_refused()),
                Err(TokenFailure::Failed(error)) => return Err(error),
            };
            let refresh_at = match &judged {
                Some(facts) => trusted_until(
                    facts.expires_at,
                    settings.caller_token_ttl,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
