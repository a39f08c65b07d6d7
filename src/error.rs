//! The one error type a request can end with, and its JSON rendering.
//!
//! Every failure - bad input, refused by Glance, upstream trouble, a limit
//! or a caller rule refusing - becomes an [`AllianceError`] and is answered as
//! `{"error": {"code": 404, "title": "Not Found", "message": "...", "request_id": "req-..."}}`.
//! A limit's refusal is made from its [`Refusal`], which the error carries
//! to the request's log line and metrics.

use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::body::{self, ResponseBody};
use crate::operation::Resource;
use crate::refusal::Refusal;

/// A failed request, ready to be rendered for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllianceError {
    pub status: StatusCode,
    pub message: String,
    /// The resource whose methods a 405 answer lists in `Allow`.
    pub allow: Option<Resource>,
    /// Seconds after which a retry may succeed, for 429 and 503 answers (`Retry-After`).
    pub retry_after: Option<u32>,
    /// The limit or caller rule that refused the request, if one did.
    pub refusal: Option<Refusal>,
}

impl AllianceError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
            retry_after: None,
            refusal: None,
        }
    }

    /// The answer `refusal` makes: its status, message and `Retry-After`.
    pub fn refused(refusal: Refusal) -> Self {
        let status = refusal
            .status()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        Self {
            status,
            message: refusal.message(),
            allow: None,
            retry_after: refusal.retry_after(),
            refusal: Some(refusal),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn method_not_allowed(resource: Resource) -> Self {
        Self {
            allow: Some(resource),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed here; allowed: {}", resource.allow()),
            )
        }
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    /// The upstream answered something the facade cannot use. The details
    /// belong in the log, not in the client's answer.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, message)
    }

    /// The JSON error document.
    pub fn to_json(&self, request_id: &str) -> serde_json::Value {
        json!({
            "error": {
                "code": self.status.as_u16(),
                "title": self.status.canonical_reason().unwrap_or("Error"),
                "message": self.message,
                "request_id": request_id,
            }
        })
    }

    pub fn into_response(self, request_id: &str) -> http::Response<ResponseBody> {
        let mut response = body::json_response(self.status, &self.to_json(request_id));
        if let Some(allow) = self
            .allow
            .and_then(|resource| HeaderValue::from_str(&resource.allow()).ok())
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for AllianceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for AllianceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_error_shape() {
        let error = AllianceError::not_found("No image found with ID x");
        assert_eq!(
            error.to_json("req-1").to_string(),
            r#"{"error":{"code":404,"title":"Not Found","message":"No image found with ID x","request_id":"req-1"}}"#
        );
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let response = AllianceError::method_not_allowed(Resource::Collection).into_response("req-1");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn a_refusal_makes_the_answer() {
        let error = AllianceError::refused(Refusal::EnvironmentRateLimited { retry_after: 2 });
        assert_eq!(
            (error.status.as_u16(), error.retry_after, error.message.as_str()),
            (429, Some(2), "too many requests for this environment; retry later")
        );
        let response = error.into_response("req-1");
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
