//! One authenticated API call: request data, caller identity and shared state.

use super::Shared;
use super::auth::Identity;
use super::errors::ApiError;
use super::model::Image;
use super::state::Store;
use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::Value;
use std::sync::{Arc, MutexGuard};

/// Everything a handler needs to answer one request.
pub(crate) struct Call<'a> {
    pub shared: &'a Arc<Shared>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: &'a Bytes,
    pub who: Identity,
    /// The host the client addressed, as webob's `host_url` shows it.
    pub host: String,
}

impl Call<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store()
    }

    /// The raw `Content-Type` header, as webob's `${CONTENT_TYPE}` shows it:
    /// without one, the placeholder stays as it is.
    pub(crate) fn content_type_header(&self) -> &str {
        self.header("content-type").unwrap_or("${CONTENT_TYPE}")
    }

    /// The media type without parameters (webob's `request.content_type`).
    pub(crate) fn media_type(&self) -> &str {
        let header = self.header("content-type").unwrap_or_default();
        header.split(';').next().unwrap_or_default().trim()
    }

    /// `JSONRequestDeserializer.has_body`.
    pub(crate) fn has_body(&self) -> bool {
        let encoding = self
            .header("transfer-encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let streams = ["chunked", "compress", "deflate", "gzip", "identity"].contains(&encoding.as_str())
            && [Method::POST, Method::PUT, Method::PATCH].contains(self.method);
        let length = self
            .header("content-length")
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap_or(0);
        streams || length > 0
    }

    /// The JSON body of a POST/PUT/PATCH, with Glance's rejections of bad bodies.
    pub(crate) fn json_body(&self) -> Result<Value, ApiError> {
        if !self.has_body() {
            return Err(ApiError::bad_request("Body expected in request."));
        }
        let value: Value =
            serde_json::from_slice(self.body).map_err(|_| ApiError::bad_request("Malformed JSON in request body."))?;
        if !value.is_object() && !value.is_array() {
            return Err(ApiError::bad_request("Unexpected body type. Expected list/dict."));
        }
        Ok(value)
    }

    /// Routes marked `body_reject` refuse any body.
    pub(crate) fn reject_body(&self) -> Result<(), ApiError> {
        if self.has_body() {
            return Err(ApiError::bad_request("A body is not expected with this request."));
        }
        Ok(())
    }
}

/// An image the caller can see, or `not_found()` (the image repository's `get`,
/// which hides images that fail the database visibility check).
pub(crate) fn visible<'s>(
    store: &'s Store,
    who: &Identity,
    id: &str,
    not_found: impl FnOnce() -> ApiError,
) -> Result<&'s Image, ApiError> {
    match store.get(id) {
        Some(image) if super::auth::can_see(who, image) => Ok(image),
        _ => Err(not_found()),
    }
}

/// The image repository's "No image found with ID x" (404).
pub(crate) fn no_image(id: &str) -> impl FnOnce() -> ApiError + '_ {
    move || ApiError::not_found(format!("No image found with ID {id}"))
}
