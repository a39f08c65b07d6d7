//! Where upstream credentials come from: the single seam between "which
//! project" and "which headers prove it".
//!
//! `trusted`: Glance runs a pipeline that trusts identity headers from the
//! facade (`X-Identity-Status: Confirmed`, `X-Project-Id`, `X-User-Id`,
//! `X-Roles`), so the project is simply the environment.
//!
//! `keystone`: a Keystone token scoped to the environment's project (see
//! [`super::keystone`]).

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::IDENTITY_ROOM;
use super::keystone::client::TokenFacts;
use super::keystone::{KeystoneAuth, ScopedToken};
use crate::error::AllianceError;

/// What one upstream call needs to act as a project.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Glance endpoint (with any path prefix, without `/v2`).
    pub endpoint: Url,
    /// Identity headers sent with every call.
    pub headers: HeaderMap,
    /// The cached token behind the headers, if any (to drop it when refused).
    pub token: Option<Arc<ScopedToken>>,
}

pub enum Authenticator {
    Trusted(TrustedAuth),
    Keystone(Box<KeystoneAuth>),
}

impl Authenticator {
    pub async fn credentials(&self, environment: &str, request_id: &str) -> Result<Credentials, AllianceError> {
        match self {
            Authenticator::Trusted(trusted) => trusted.credentials(environment),
            Authenticator::Keystone(keystone) => keystone.credentials(environment, request_id).await,
        }
    }

    /// Who a caller's Keystone token speaks for, as this namespace's
    /// Keystone says; `None` when it is not valid, or when the namespace
    /// has no Keystone to ask (trusted auth).
    pub async fn validate_token(&self, token: &str, request_id: &str) -> Result<Option<TokenFacts>, AllianceError> {
        match self {
            Authenticator::Trusted(_) => Ok(None),
            Authenticator::Keystone(keystone) => keystone.validate_caller_token(token, request_id).await,
        }
    }

    /// Whether new credentials may succeed where these got a 401 (a cached
    /// token revoked early); trusted headers would only be refused again.
    pub fn can_refresh(&self) -> bool {
        matches!(self, Authenticator::Keystone(_))
    }

    /// For the readiness probe: the Glance endpoint to check, once the
    /// namespace's credentials are known to work (see
    /// [`KeystoneAuth::ready_endpoint`]); `None` when no endpoint is known yet.
    pub async fn ready_endpoint(&self, request_id: &str) -> Result<Option<Url>, AllianceError> {
        match self {
            Authenticator::Trusted(trusted) => Ok(Some(trusted.endpoint.clone())),
            Authenticator::Keystone(keystone) => keystone.ready_endpoint(request_id).await,
        }
    }

    pub async fn invalidate(&self, environment: &str, rejected: &Credentials) {
        if let Authenticator::Keystone(keystone) = self {
            keystone.invalidate(environment, rejected).await;
        }
    }
}

pub struct TrustedAuth {
    endpoint: Url,
    /// The headers every call carries whatever the project; each call's
    /// map is a clone of this one (cheaper than inserting them one by one).
    fixed: HeaderMap,
}

const IDENTITY_STATUS: HeaderName = HeaderName::from_static("x-identity-status");
const PROJECT_ID: HeaderName = HeaderName::from_static("x-project-id");
const USER_ID: HeaderName = HeaderName::from_static("x-user-id");
const ROLES: HeaderName = HeaderName::from_static("x-roles");

impl TrustedAuth {
    pub fn new(endpoint: Url, user_id: &str, roles: &[String]) -> Result<Self, String> {
        let header =
            |value: &str| HeaderValue::from_str(value).map_err(|_| format!("{value:?} is not a valid header value"));
        let mut fixed = HeaderMap::with_capacity(4 + IDENTITY_ROOM);
        fixed.insert(IDENTITY_STATUS, HeaderValue::from_static("Confirmed"));
        fixed.insert(USER_ID, header(user_id)?);
        fixed.insert(ROLES, header(&roles.join(","))?);
        Ok(TrustedAuth { endpoint, fixed })
    }

    fn credentials(&self, environment: &str) -> Result<Credentials, AllianceError> {
        let project = HeaderValue::from_str(environment)
            .map_err(|_| AllianceError::bad_request("X-Environment-Id is not a valid project id"))?;
        let mut headers = self.fixed.clone();
        headers.insert(PROJECT_ID, project);
        Ok(Credentials {
            endpoint: self.endpoint.clone(),
            headers,
            token: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trusted_headers_name_the_environment() {
        let auth = Authenticator::Trusted(
            TrustedAuth::new(
                Url::parse("http://g/image").unwrap(),
                "facade",
                &["member".into(), "reader".into()],
            )
            .unwrap(),
        );
        let credentials = auth
            .credentials("54915a05b0bb43dcbb218525c426b6a5", "req-1")
            .await
            .unwrap();

        assert_eq!(credentials.endpoint.as_str(), "http://g/image");
        let headers: Vec<_> = credentials
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                ("x-identity-status", "Confirmed"),
                ("x-user-id", "facade"),
                ("x-roles", "member,reader"),
                ("x-project-id", "54915a05b0bb43dcbb218525c426b6a5"),
            ]
        );
    }
}
