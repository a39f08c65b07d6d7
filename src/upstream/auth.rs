//! How a namespace's calls to Glance prove which project they act for: the
//! [`UpstreamAuth`] interface, which each auth mode implements (the
//! namespace's mode is `super::authenticator::Authenticator`).
//!
//! `trusted`: Glance runs a pipeline that trusts identity headers from the
//! facade (`X-Identity-Status: Confirmed`, `X-Project-Id`, `X-User-Id`,
//! `X-Roles`), so the project is simply the environment.
//!
//! `keystone`: a Keystone token scoped to the environment's project (see
//! [`super::keystone`]).
//!
//! A new mode is an implementation of [`UpstreamAuth`] (the compiler asks
//! for each of its answers), a variant of `Authenticator` and its arm in
//! `each_mode!`, and its settings: a variant of `config::AuthConfig` and of
//! `route::AuthSpec`.

use std::future::Future;

use http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::IDENTITY_ROOM;
use crate::error::AllianceError;

/// What one upstream call needs to act as a project.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Glance endpoint (with any path prefix, without `/v2`).
    pub endpoint: Url,
    /// Identity headers sent with every call.
    pub headers: HeaderMap,
}

/// What Glance's 401 to a call's credentials leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRejection {
    /// The rejected credentials were dropped: new ones may be accepted,
    /// so the call is made once more.
    Retry,
    /// New credentials would be the same: the 401 stands.
    Stand,
}

/// What every auth mode answers.
pub trait UpstreamAuth {
    /// The endpoint and identity headers of a call as `environment`.
    fn credentials(
        &self,
        environment: &str,
        request_id: &str,
    ) -> impl Future<Output = Result<Credentials, AllianceError>> + Send;

    /// Glance answered 401 to `rejected` (a token revoked early, say).
    fn rejected(&self, environment: &str, rejected: &Credentials) -> impl Future<Output = AfterRejection> + Send;

    /// For the readiness probe: the Glance endpoint to check, once the
    /// namespace's credentials are known to work; `None` when no endpoint is
    /// known yet.
    fn ready_endpoint(&self, request_id: &str) -> impl Future<Output = Result<Option<Url>, AllianceError>> + Send;
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
}

impl UpstreamAuth for TrustedAuth {
    async fn credentials(&self, environment: &str, _: &str) -> Result<Credentials, AllianceError> {
        let project = HeaderValue::from_str(environment)
            .map_err(|_| AllianceError::bad_request("X-Environment-Id is not a valid project id"))?;
        let mut headers = self.fixed.clone();
        headers.insert(PROJECT_ID, project);
        Ok(Credentials {
            endpoint: self.endpoint.clone(),
            headers,
        })
    }

    /// The same headers would be refused again.
    async fn rejected(&self, _: &str, _: &Credentials) -> AfterRejection {
        AfterRejection::Stand
    }

    async fn ready_endpoint(&self, _: &str) -> Result<Option<Url>, AllianceError> {
        Ok(Some(self.endpoint.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trusted_headers_name_the_environment() {
        let auth = TrustedAuth::new(
            Url::parse("http://g/image").unwrap(),
            "facade",
            &["member".into(), "reader".into()],
        )
        .unwrap();
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
        assert_eq!(auth.rejected("e", &credentials).await, AfterRejection::Stand);
    }
}
