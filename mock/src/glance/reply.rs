//! A response under construction: status, ordered headers and a complete body.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The header Glance's context middleware adds to every response it lets through.
pub(crate) const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// A response whose headers keep the order Glance sends them in.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    reason: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Reply {
    pub(crate) fn new(status: u16) -> Self {
        Reply {
            status,
            reason: None,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A JSON document preceded by `Content-Length` then `Content-Type` (webob's order
    /// when a controller sets `unicode_body` first, as the images API does).
    pub(crate) fn json(status: u16, body: String) -> Self {
        Reply::new(status).body_with_length("application/json", Bytes::from(body))
    }

    /// A JSON document with `Content-Type` before `Content-Length` (Glance's generic
    /// JSON serializer: tasks, info, versions).
    pub(crate) fn json_type_first(status: u16, body: String) -> Self {
        let body = Bytes::from(body);
        Reply::new(status)
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string())
            .with_body(body)
    }

    /// An empty body announced as HTML, as webob does for 202 and 204 answers.
    pub(crate) fn empty_html(status: u16) -> Self {
        let reply = Reply::new(status).header("content-type", "text/html; charset=UTF-8");
        if status == 204 {
            reply
        } else {
            reply.header("content-length", "0")
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body with `Content-Length` and `Content-Type` headers, in that order.
    pub(crate) fn body_with_length(self, content_type: &str, body: Bytes) -> Self {
        self.header("content-length", body.len().to_string())
            .header("content-type", content_type.to_owned())
            .with_body(body)
    }

    /// The answer to a HEAD request: webob sends the headers with an empty body.
    pub(crate) fn without_body(mut self) -> Self {
        for (name, value) in &mut self.headers {
            if *name == "content-length" {
                *value = "0".to_owned();
            }
        }
        self.body = Bytes::new();
        self
    }

    pub(crate) fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    pub(crate) fn reason(mut self, reason: Option<&'static str>) -> Self {
        self.reason = reason;
        self
    }

    #[cfg(test)]
    pub(crate) fn body(&self) -> &Bytes {
        &self.body
    }

    /// Builds the hyper response, adding the request id header last when given.
    pub(crate) fn into_response(self, request_id: Option<&str>) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        let request_id = request_id.map(|id| (REQUEST_ID_HEADER, id.to_owned()));
        for (name, value) in self.headers.into_iter().chain(request_id) {
            // Values echo client input (Host, request ids); drop any that are not valid.
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        if let Some(reason) = self.reason {
            response
                .extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
        }
        response
    }
}
