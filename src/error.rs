//! The one error type a request can end with, and its JSON rendering.
//!
//! Every failure - bad input, refused by Glance, upstream trouble - becomes an
//! [`AllianceError`] and is answered as
//! `{"error": {"code": 404, "title": "Not Found", "message": "...", "request_id": "req-..."}}`.

use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::body::{self, ResponseBody};

/// A failed request, ready to be rendered for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllianceError {
    pub status: StatusCode,
    pub message: String,
    /// Methods allowed on the resource, for 405 answers.
    pub allow: Option<&'static str>,
    /// Seconds after which a retry may succeed, for 429 and 503 answers (`Retry-After`).
    pub retry_after: Option<u32>,
    /// Why a limit refused the request: the `reason` of its log line.
    pub reason: Option<&'static str>,
}

impl AllianceError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
            retry_after: None,
            reason: None,
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

    /// The caller presented nothing a `[[callers]]` rule recognises.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method not allowed here; allowed: {allow}"),
            allow: Some(allow),
            retry_after: None,
            reason: None,
        }
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    /// The request body did not arrive in time.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, message)
    }

    pub fn uri_too_long(limit: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than the limit of {limit} bytes"),
        )
    }

    /// The upstream answered something the facade cannot use. The details
    /// belong in the log, not in the client's answer.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, message)
    }

    /// Tells the client when to try again.
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Names the limit that refused the request, for its log line.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
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
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
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
        let response = AllianceError::method_not_allowed("GET, POST").into_response("req-1");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
