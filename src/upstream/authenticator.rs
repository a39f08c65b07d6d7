//! A namespace's auth mode: [`Authenticator`], each mode's [`UpstreamAuth`]
//! answers reached through [`each_mode!`], the one place that lists the modes.

use std::sync::Arc;

use url::Url;

use super::auth::{AfterRejection, Credentials, TrustedAuth, UpstreamAuth};
use super::keystone::KeystoneAuth;
use crate::error::AllianceError;

/// A namespace's auth mode.
pub enum Authenticator {
    Trusted(TrustedAuth),
    Keystone(Arc<KeystoneAuth>),
}

/// `$call` with `$auth` bound to the mode's own value: the one place that
/// lists the modes.
macro_rules! each_mode {
    ($authenticator:expr, $auth:ident => $call:expr) => {
        match $authenticator {
            Authenticator::Trusted($auth) => $call,
            Authenticator::Keystone($auth) => $call,
        }
    };
}

impl UpstreamAuth for Authenticator {
    async fn credentials(&self, environment: &str, request_id: &str) -> Result<Credentials, AllianceError> {
        each_mode!(self, auth => auth.credentials(environment, request_id).await)
    }

    async fn rejected(&self, environment: &str, rejected: &Credentials) -> AfterRejection {
        each_mode!(self, auth => auth.rejected(environment, rejected).await)
    }

    async fn ready_endpoint(&self, request_id: &str) -> Result<Option<Url>, AllianceError> {
        each_mode!(self, auth => auth.ready_endpoint(request_id).await)
    }
}
