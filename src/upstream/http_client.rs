//! The HTTP client for upstream services (Glance, Keystone): pooled
//! keep-alive connections, no redirects, no proxies from the environment,
//! connect and total timeouts, and one resend of a call that failed on a
//! stale pooled connection when resending is safe.

use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, Method, header};
use url::Url;

use super::{Call, Reply};
use crate::error::AllianceError;
use crate::request_id;

/// Largest answer read into memory (a Glance page of 1,000 images is about
/// 1 MiB).
const MAX_REPLY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Idle pooled connections are dropped after this; keep it below the
    /// upstream server's keep-alive timeout (gunicorn's default is 2 s).
    pub pool_idle_timeout: Duration,
}

pub struct UpstreamHttp {
    client: reqwest::Client,
    user_agent: HeaderValue,
}

/// Which service a call went to, for messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Image,
    Identity,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Image => "image service",
            Service::Identity => "identity service",
        }
    }
}

/// Why a call got no HTTP answer.
#[derive(Debug)]
pub enum TransportError {
    /// Connection refused or the host could not be reached.
    Unreachable(String),
    Timeout(String),
    /// Anything else: reset mid-answer, oversized or unreadable answer.
    Broken(String),
}

impl TransportError {
    pub fn into_alliance_error(self, service: Service, call: &Call) -> AllianceError {
        let target = format!("{} {}", call.method, path_only(&call.path_and_query));
        let service = service.name();
        match self {
            TransportError::Unreachable(detail) => {
                tracing::warn!(%target, %detail, "{service} unreachable");
                AllianceError::service_unavailable(format!("the {service} is unreachable"))
            }
            TransportError::Timeout(detail) => {
                tracing::warn!(%target, %detail, "{service} timed out");
                AllianceError::gateway_timeout(format!("the {service} did not answer in time"))
            }
            TransportError::Broken(detail) => {
                tracing::warn!(%target, %detail, "{service} exchange failed");
                AllianceError::bad_gateway(format!("the {service} exchange failed"))
            }
        }
    }
}

/// Query strings may hold image names; logs keep the path only.
fn path_only(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or(path_and_query)
}

impl UpstreamHttp {
    pub fn new(options: &HttpOptions) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .pool_idle_timeout(options.pool_idle_timeout)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(UpstreamHttp {
            client,
            user_agent: HeaderValue::from_static(concat!("alliance-glance/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// Sends `call` to `endpoint` + the call's path, with `headers` (identity)
    /// and the facade's own `Accept`, `User-Agent` and request id.
    /// `may_resend`: the call may go out a second time if a stale pooled
    /// connection failed it.
    pub async fn send(
        &self,
        endpoint: &Url,
        headers: &HeaderMap,
        call: &Call,
        request_id: &str,
        may_resend: bool,
    ) -> Result<Reply, TransportError> {
        let url = join(endpoint, &call.path_and_query);
        match self.send_once(&url, headers, call, request_id).await {
            Err(Attempt::Failed(error)) if may_resend && is_stale_connection(&error) => {
                tracing::debug!("resending on a fresh connection after a stale pooled one");
                self.send_once(&url, headers, call, request_id).await
            }

            result => result,
        }
        .map_err(Attempt::into_transport_error)
    }

    /// Streams `body` (image data) as the payload of a `PUT`: sent once,
    /// never resent, bounded by `timeout` instead of the usual call limit.
    pub async fn send_stream(
        &self,
        endpoint: &Url,
        headers: &HeaderMap,
        call: &Call,
        body: reqwest::Body,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let request = self
            .request(&join(endpoint, &call.path_and_query), headers, call, request_id)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .timeout(timeout);
        match request.send().await {
            Ok(response) => read_reply(response).await,
            Err(error) => Err(Attempt::Failed(error)),
        }
        .map_err(Attempt::into_transport_error)
    }

    /// The facade's own headers on every call, and the identity headers.
    fn request(&self, url: &Url, headers: &HeaderMap, call: &Call, request_id: &str) -> reqwest::RequestBuilder {
        self.client
            .request(call.method.clone(), url.clone())
            .headers(headers.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone())
            .header(request_id::HEADER, request_id)
    }

    async fn send_once(&self, url: &Url, headers: &HeaderMap, call: &Call, request_id: &str) -> Result<Reply, Attempt> {
        let mut request = self.request(url, headers, call, request_id);
        if let Some((media_type, body)) = &call.body {
            request = request.header(header::CONTENT_TYPE, *media_type).body(body.clone());
        }
        read_reply(request.send().await.map_err(Attempt::Failed)?).await
    }
}

/// Reads a whole answer, up to [`MAX_REPLY_BYTES`].
async fn read_reply(mut response: reqwest::Response) -> Result<Reply, Attempt> {
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(Attempt::Failed)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(Attempt::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        headers,
        body: body.freeze(),
    })
}

enum Attempt {
    Failed(reqwest::Error),
    TooLarge,
}

impl Attempt {
    fn into_transport_error(self) -> TransportError {
        match self {
            Attempt::Failed(error) => classify(error),
            Attempt::TooLarge => TransportError::Broken(format!("answer larger than {MAX_REPLY_BYTES} bytes")),
        }
    }
}

/// `http://host/image` + `/v2/images?x` -> `http://host/image/v2/images?x`
/// (a plain `Url::join` would drop the `/image` prefix).
pub fn join(endpoint: &Url, path_and_query: &str) -> Url {
    let mut url = endpoint.clone();
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let base = endpoint.path().trim_end_matches('/');
    url.set_path(&format!("{base}{path}"));
    url.set_query(query);
    url
}

/// Methods whose repetition has no further effect.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// The server closed a pooled keep-alive connection as the request went out:
/// nothing was processed, so an idempotent call may be sent again.
fn is_stale_connection(error: &reqwest::Error) -> bool {
    if error.is_timeout() || error.is_connect() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>()
            && (hyper_error.is_incomplete_message() || hyper_error.is_canceled())
        {
            return true;
        }
        if let Some(io_error) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io_error.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn classify(error: reqwest::Error) -> TransportError {
    let detail = error_chain(&error);
    if error.is_timeout() {
        TransportError::Timeout(detail)
    } else if error.is_connect() {
        TransportError::Unreachable(detail)
    } else {
        TransportError::Broken(detail)
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_the_path_prefix() {
        let prefixed = Url::parse("http://h/image").unwrap();
        assert_eq!(
            join(&prefixed, "/v2/images?limit=1").as_str(),
            "http://h/image/v2/images?limit=1"
        );
        let slashed = Url::parse("http://h:9292/image/").unwrap();
        assert_eq!(
            join(&slashed, "/v2/images/x").as_str(),
            "http://h:9292/image/v2/images/x"
        );
        let bare = Url::parse("http://h:9292").unwrap();
        assert_eq!(join(&bare, "/v2/images").as_str(), "http://h:9292/v2/images");
    }

    #[test]
    fn only_idempotent_methods_are_retried() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::DELETE));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }
}
