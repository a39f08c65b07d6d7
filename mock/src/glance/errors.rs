//! Error responses rendered the way webob renders Glance's exceptions.
//!
//! webob picks HTML, JSON or plain text from the request's `Accept` header and fills one
//! of a few templates; the whitespace of those templates is part of the recorded bytes
//! (see transcripts 067, 068, 082, 210), so it is reproduced literally here.

use super::reply::Reply;
use crate::pyfmt;
use bytes::Bytes;
use serde_json::json;

/// Which webob template produced the body.
#[derive(Debug, Clone)]
enum Template {
    /// `${explanation}<br /><br />\n${detail}\n\n`: almost every Glance error.
    Standard { explanation: String, detail: String },
    /// `HTTPMethodNotAllowed`, which names the request method.
    MethodNotAllowed { method: String },
    /// `HTTPUnsupportedMediaType`, which names the request's Content-Type.
    UnsupportedMediaType { content_type: String, detail: String },
}

/// An HTTP error as Glance would raise it; rendered by [`ApiError::into_reply`].
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: u16,
    template: Template,
    /// Headers that precede the body headers (`Allow`, `Accept-Patch`).
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn standard(status: u16, explanation: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            template: Template::Standard {
                explanation: explanation.into(),
                detail: detail.into(),
            },
            headers: Vec::new(),
        }
    }

    /// An error with the given explanation (`raise HTTPXxx(explanation=msg)`).
    pub(crate) fn new(status: u16, explanation: impl Into<String>) -> Self {
        Self::standard(status, explanation, "")
    }

    /// An error with webob's default explanation and `detail` below it (`raise HTTPXxx(msg)`).
    pub(crate) fn with_detail(status: u16, detail: impl Into<String>) -> Self {
        Self::standard(status, default_explanation(status), detail)
    }

    /// An error carrying only webob's default explanation (`raise HTTPXxx()`).
    pub(crate) fn default_for(status: u16) -> Self {
        Self::standard(status, default_explanation(status), "")
    }

    pub(crate) fn bad_request(explanation: impl Into<String>) -> Self {
        Self::new(400, explanation)
    }

    pub(crate) fn forbidden(explanation: impl Into<String>) -> Self {
        Self::new(403, explanation)
    }

    pub(crate) fn not_found(explanation: impl Into<String>) -> Self {
        Self::new(404, explanation)
    }

    pub(crate) fn conflict(explanation: impl Into<String>) -> Self {
        Self::new(409, explanation)
    }

    pub(crate) fn internal() -> Self {
        Self::default_for(500)
    }

    /// The policy refusal text of oslo.policy (`PolicyNotAuthorized`).
    pub(crate) fn not_authorized(action: &str) -> Self {
        Self::forbidden(format!("You are not authorized to complete {action} action."))
    }

    /// 405 from Glance's `RejectMethodController`.
    pub(crate) fn method_not_allowed(method: &str, allowed: &str) -> Self {
        ApiError {
            status: 405,
            template: Template::MethodNotAllowed {
                method: method.to_owned(),
            },
            headers: vec![("allow", allowed.to_owned())],
        }
    }

    /// 415 for a request body of the wrong media type.
    pub(crate) fn unsupported_media_type(content_type: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status: 415,
            template: Template::UnsupportedMediaType {
                content_type: content_type.to_owned(),
                detail: detail.into(),
            },
            headers: Vec::new(),
        }
    }

    /// Adds a header sent before the body headers.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The HTTP status code.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// Renders the error for a request with the given `Accept` header.
    pub(crate) fn into_reply(self, accept: Option<&str>) -> Reply {
        let title = title(self.status);
        let status_line = format!("{} {}", self.status, title);
        let (content_type, body) = match negotiate(accept) {
            Format::Html => {
                let body = self.body_text(true);
                let html = format!(
                    "<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n  \
                     <h1>{status_line}</h1>\n  {body}\n </body>\n</html>"
                );
                ("text/html; charset=UTF-8", html)
            }
            Format::Json => {
                let document = json!({
                    "message": self.body_text(false),
                    "code": status_line,
                    "title": title,
                });
                ("application/json", pyfmt::dumps(&document, true))
            }
            Format::Plain => {
                let text = format!("{status_line}\n\n{}", strip_tags(&self.body_text(false)));
                ("text/plain; charset=UTF-8", text)
            }
        };
        let mut reply = Reply::new(self.status);
        for (name, value) in self.headers {
            reply = reply.header(name, value);
        }
        reply
            .body_with_length(content_type, Bytes::from(body))
            .reason(reason_phrase(self.status))
    }

    fn body_text(&self, html: bool) -> String {
        let esc = |s: &str| if html { html_escape(s) } else { s.to_owned() };
        match &self.template {
            Template::Standard { explanation, detail } => {
                format!("{}<br /><br />\n{}\n\n", esc(explanation), esc(detail))
            }
            Template::MethodNotAllowed { method } => {
                format!(
                    "The method {} is not allowed for this resource. <br /><br />\n",
                    esc(method)
                )
            }
            Template::UnsupportedMediaType { content_type, detail } => format!(
                "The request media type {} is not supported by this server.\n<br /><br />\n{}",
                esc(content_type),
                esc(detail)
            ),
        }
    }
}

/// The explanation webob puts in an exception raised without one.
fn default_explanation(status: u16) -> &'static str {
    match status {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        401 => {
            "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required."
        }
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        409 => "There was a conflict when trying to complete your request.",
        413 => "The request is larger than the server is willing or able to process.",
        416 => "The Range requested is not available.",
        _ => "The server has either erred or is incapable of performing the requested operation.",
    }
}

/// webob's exception titles.
fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Request Range Not Satisfiable",
        _ => "Internal Server Error",
    }
}

/// Status-line reason phrases where webob's differ from hyper's canonical ones.
fn reason_phrase(status: u16) -> Option<&'static str> {
    match status {
        413 => Some("Request Entity Too Large"),
        416 => Some("Request Range Not Satisfiable"),
        _ => None,
    }
}

/// `html.escape(s, quote=True)`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// webob's `strip_tags`, used for the plain-text rendering.
fn strip_tags(body: &str) -> String {
    let flat = body.replace('\n', " ").replace('\r', "");
    let mut out = String::with_capacity(flat.len());
    let mut rest = flat.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        match tag.find('>') {
            Some(end) => {
                if tag[1..].to_ascii_lowercase().starts_with("br") {
                    out.push('\n');
                }
                rest = &tag[end + 1..];
            }
            None => {
                out.push_str(tag);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
    Plain,
}

/// webob's `acceptable_offers(['text/html', 'application/json'])`, first best offer wins.
fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Format::Html;
    };
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            if range.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").map(str::trim))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((range, q))
        })
        .collect();
    let quality = |offer: &str| -> f32 {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let mut best: Option<(u8, f32)> = None;
        for (range, q) in &ranges {
            let specificity = if range == offer {
                3
            } else if range.strip_suffix("/*") == Some(kind) {
                2
            } else if range == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, *q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let html = quality("text/html");
    let json = quality("application/json");
    if html <= 0.0 && json <= 0.0 {
        Format::Plain
    } else if json > html {
        Format::Json
    } else {
        Format::Html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(reply: &Reply) -> String {
        String::from_utf8_lossy(reply.body()).into_owned()
    }

    #[test]
    fn html_matches_transcript_067() {
        let reply =
            ApiError::not_found("No image found with ID 99999999-9999-4999-8999-999999999999").into_reply(Some("*/*"));
        let expected = "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID 99999999-9999-4999-8999-999999999999<br /><br />\n\n\n\n </body>\n</html>";
        assert_eq!(body_of(&reply), expected);
        assert_eq!(reply.body().len(), 181);
    }

    #[test]
    fn json_matches_transcript_068() {
        let reply = ApiError::not_found("No image found with ID 99999999-9999-4999-8999-999999999999")
            .into_reply(Some("application/json"));
        assert_eq!(
            body_of(&reply),
            r#"{"message": "No image found with ID 99999999-9999-4999-8999-999999999999<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#
        );
    }

    #[test]
    fn detail_and_special_templates_match_lengths() {
        // Transcript 035: explanation plus detail; transcript 210: the 405
        // template; transcript 082: the 415 template.
        let reserved = ApiError::with_detail(403, "Attribute 'os_glance_foo' is reserved.").into_reply(None);
        assert_eq!(reserved.body().len(), 205);
        let not_allowed = ApiError::method_not_allowed("PUT", "GET, POST").into_reply(None);
        assert_eq!(not_allowed.body().len(), 187);
        let media = ApiError::unsupported_media_type(
            "application/json",
            "Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch",
        )
        .into_reply(None);
        assert_eq!(media.body().len(), 350);
        let unauthorized = ApiError::default_for(401).into_reply(Some("application/json"));
        assert_eq!(unauthorized.body().len(), 316);
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None), Format::Html);
        assert_eq!(negotiate(Some("application/json")), Format::Json);
        assert_eq!(negotiate(Some("application/json, text/html")), Format::Html);
        assert_eq!(negotiate(Some("text/html;q=0.5, application/json")), Format::Json);
        assert_eq!(negotiate(Some("text/plain")), Format::Plain);
        assert_eq!(negotiate(Some("*/*")), Format::Html);
    }
}
