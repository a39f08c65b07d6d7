//! Keystone v3 token requests (`POST /v3/auth/tokens`): the three bodies
//! the facade sends, and the answer it needs (the `X-Subject-Token` header,
//! `expires_at`, the project and the catalog); and token validation
//! (`GET /v3/auth/tokens`), which answers with the same document.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use super::catalog::CatalogEntry;
use super::settings::{DomainRef, Secret, UserRef};
use crate::error::AllianceError;
use crate::limits::gate::Gate;
use crate::metrics::{NamespaceMetrics, TokenKind, TokenOutcome};
use crate::refusal::Service;
use crate::reshape::message::for_log;
use crate::upstream::{Call, IDENTITY_ROOM, JSON, Reply, TransportError, UpstreamHttp};

pub struct KeystoneClient {
    http: Arc<UpstreamHttp>,
    /// Ends in `/v3`.
    auth_url: Url,
    metrics: NamespaceMetrics,
    /// The calls in flight to this Keystone (for this namespace).
    gate: Gate,
}

const AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
const SUBJECT_TOKEN: HeaderName = HeaderName::from_static("x-subject-token");

/// A token just issued (or validated).
#[derive(Debug)]
pub struct IssuedToken {
    pub id: Secret,
    pub expires_at: OffsetDateTime,
    pub project_id: Option<String>,
    pub catalog: Vec<CatalogEntry>,
    pub user_id: Option<String>,
    /// Role names, implied roles included (Keystone expands them).
    pub roles: Vec<String>,
}

/// Who a valid token speaks for (a validated token without its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    pub user_id: String,
    /// `None` for an unscoped, domain- or system-scoped token.
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    pub expires_at: OffsetDateTime,
}

impl From<IssuedToken> for TokenFacts {
    fn from(token: IssuedToken) -> Self {
        TokenFacts {
            user_id: token.user_id.unwrap_or_default(),
            project_id: token.project_id,
            roles: token.roles,
            expires_at: token.expires_at,
        }
    }
}

/// Why Keystone issued (or validated) no token.
#[derive(Debug)]
pub enum TokenFailure {
    /// 401: wrong credentials, or (scoped) no role on / no such project -
    /// Keystone does not say which; for a validation, the caller's own
    /// token is not valid.
    Unauthorized,
    /// 404: the token to re-scope (or to validate) is gone: revoked or expired.
    NotFound,
    /// Anything else, already turned into the client's answer.
    Failed(AllianceError),
}

#[derive(Deserialize)]
struct TokenDocument {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    project: Option<IdRef>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
    user: Option<IdRef>,
    #[serde(default)]
    roles: Vec<RoleRef>,
}

#[derive(Deserialize)]
struct IdRef {
    id: String,
}

#[derive(Deserialize)]
struct RoleRef {
    name: String,
}

impl KeystoneClient {
    pub fn new(http: Arc<UpstreamHttp>, auth_url: Url, metrics: NamespaceMetrics, gate: Gate) -> Self {
        KeystoneClient {
            http,
            auth_url,
            metrics,
            gate,
        }
    }

    /// One exchange with Keystone, within a slot of the gate.
    async fn send(&self, identity: &HeaderMap, call: &Call, request_id: &str) -> Result<Reply, TokenFailure> {
        let _slot = self.gate.enter().await.map_err(TokenFailure::Failed)?;
        // Issuing a token twice has no effect beyond a spare token, and a
        // validation none: resending either is safe.
        self.http
            .send(&self.auth_url, identity, call, request_id, true)
            .await
            .map_err(|error| self.failed(error, call))
    }

    /// `POST {auth_url}/auth/tokens` with `body`, a token request of `kind`
    /// (for the metrics). Status table: 201 issued; 401 unauthorized; 404
    /// token to re-scope gone; anything else 502 (the details go to the log).
    pub async fn issue(&self, kind: TokenKind, body: &Value, request_id: &str) -> Result<IssuedToken, TokenFailure> {
        let issued = self.request(body, request_id).await;
        self.count(kind, &issued);
        issued
    }

    /// A token request and how it ended, in the namespace's metrics.
    fn count(&self, kind: TokenKind, answer: &Result<IssuedToken, TokenFailure>) {
        let outcome = match answer {
            Ok(_) => TokenOutcome::Issued,
            Err(TokenFailure::Unauthorized) => TokenOutcome::Unauthorized,
            Err(TokenFailure::NotFound) => TokenOutcome::NotFound,
            Err(TokenFailure::Failed(_)) => TokenOutcome::Failed,
        };
        self.metrics.token_request(kind, outcome);
    }

    /// A transport failure of a Keystone call.
    fn failed(&self, error: TransportError, call: &Call) -> TokenFailure {
        TokenFailure::Failed(error.into_alliance_error(Service::Identity, call))
    }

    async fn request(&self, body: &Value, request_id: &str) -> Result<IssuedToken, TokenFailure> {
        let call = Call::with_body(
            Method::POST,
            "/auth/tokens",
            JSON,
            serde_json::to_vec(body).unwrap_or_default(),
        );
        let reply = self.send(&HeaderMap::new(), &call, request_id).await?;
        token_answer(&reply, 201)
    }

    /// `GET {auth_url}/auth/tokens?nocatalog`: is `subject` valid, as seen
    /// by the holder of `caller` (the same token validates itself - no
    /// password check, no role needed; another user's token needs the
    /// `service` or `admin` role, else 403, which the table makes a 502)?
    /// Same status table as [`Self::issue`], with 200 for valid and 404 for
    /// a token revoked or expired.
    pub async fn validate(
        &self,
        kind: TokenKind,
        caller: &Secret,
        subject: &Secret,
        request_id: &str,
    ) -> Result<IssuedToken, TokenFailure> {
        let validated = self.validation(caller, subject, request_id).await;
        self.count(kind, &validated);
        validated
    }

    async fn validation(
        &self,
        caller: &Secret,
        subject: &Secret,
        request_id: &str,
    ) -> Result<IssuedToken, TokenFailure> {
        let unusable = |_| {
            TokenFailure::Failed(AllianceError::bad_gateway(
                "the identity service sent an unusable token",
            ))
        };
        let mut headers = HeaderMap::with_capacity(2 + IDENTITY_ROOM);
        headers.insert(AUTH_TOKEN, HeaderValue::from_str(caller.expose()).map_err(unusable)?);
        headers.insert(
            SUBJECT_TOKEN,
            HeaderValue::from_str(subject.expose()).map_err(unusable)?,
        );
        let call = Call::get("/auth/tokens?nocatalog");
        let reply = self.send(&headers, &call, request_id).await?;
        token_answer(&reply, 200)
    }
}

/// A token document answered with `success`, and its `X-Subject-Token`.
fn token_answer(reply: &Reply, success: u16) -> Result<IssuedToken, TokenFailure> {
    match reply.status.as_u16() {
        code if code == success => {}
        401 => return Err(TokenFailure::Unauthorized),
        404 => return Err(TokenFailure::NotFound),
        status => {
            tracing::warn!(
                status,
                reason = "identity_unexpected_status",
                body = %for_log(&reply.body),
                "unexpected answer from the identity service"
            );
            let message = if reply.status.is_server_error() {
                "the identity service failed"
            } else {
                "the identity service refused the facade's token request"
            };
            return Err(TokenFailure::Failed(AllianceError::bad_gateway(message)));
        }
    }
    let unusable = |what: &str| {
        tracing::warn!(
            what,
            reason = "identity_unusable_answer",
            "unusable token answer from the identity service"
        );
        TokenFailure::Failed(AllianceError::bad_gateway(
            "the identity service sent an unusable answer",
        ))
    };
    let id = reply
        .headers
        .get("x-subject-token")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| unusable("no X-Subject-Token"))?;
    let document: TokenDocument = serde_json::from_slice(&reply.body).map_err(|_| unusable("body"))?;
    let expires_at = OffsetDateTime::parse(
        &document.token.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| unusable("expires_at"))?;
    Ok(IssuedToken {
        id: Secret::new(id),
        expires_at,
        project_id: document.token.project.map(|project| project.id),
        catalog: document.token.catalog,
        user_id: document.token.user.map(|user| user.id),
        roles: document.token.roles.into_iter().map(|role| role.name).collect(),
    })
}

/// Password authentication, scoped to `project` or unscoped.
pub fn password_body(user: &UserRef, password: &Secret, project: Option<&str>) -> Value {
    let user = match user {
        UserRef::Id(id) => json!({"id": id, "password": password.expose()}),
        UserRef::Name { name, domain } => {
            let domain = match domain {
                DomainRef::Id(id) => json!({"id": id}),
                DomainRef::Name(name) => json!({"name": name}),
            };
            json!({"name": name, "domain": domain, "password": password.expose()})
        }
    };
    let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}});
    if let Some(project) = project {
        body["auth"]["scope"] = json!({"project": {"id": project}});
    }
    body
}

/// A token re-scoped to `project`: no password check on Keystone's side.
pub fn rescope_body(token: &Secret, project: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token.expose()}}, "scope": {"project": {"id": project}}}})
}

/// An application credential is bound to its project: no scope is sent.
pub fn application_credential_body(id: &str, secret: &Secret) -> Value {
    json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret.expose()}}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_keystones_api() {
        let user = UserRef::Name {
            name: "alliance".into(),
            domain: DomainRef::Id("default".into()),
        };
        let password = Secret::new("pw");
        assert_eq!(
            password_body(&user, &password, Some("9d65e2e2366a49feaf8c5b40d7d9d168")),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "alliance", "domain": {"id": "default"}, "password": "pw"}}}, "scope": {"project": {"id": "9d65e2e2366a49feaf8c5b40d7d9d168"}}}})
        );
        assert_eq!(
            password_body(&UserRef::Id("u1".into()), &password, None),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "u1", "password": "pw"}}}}})
        );
        assert_eq!(
            rescope_body(&Secret::new("tok"), "p"),
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "tok"}}, "scope": {"project": {"id": "p"}}}})
        );
        assert_eq!(
            application_credential_body("ac", &Secret::new("s")),
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac", "secret": "s"}}}})
        );
    }
}
