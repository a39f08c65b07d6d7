//! The HTTP client for upstream services (Glance, Keystone): pooled
//! keep-alive connections, no redirects, no proxies from the environment,
//! connect and total timeouts, and one resend of a call that failed on a
//! stale pooled connection when resending is safe.
//!
//! Calls to `http` endpoints go through hyper's connection API and a pool of
//! this module's own ([`PlainPool`]); `https` endpoints and streamed uploads
//! through reqwest (TLS). The direct path does what reqwest would do for
//! these calls, at a fraction of the per-call work (reqwest re-parses the
//! URL, runs its redirect, retry and timeout layers on every call).
//!
//! Each thread gets its own clients (and connection pools): the facade runs
//! one single-threaded runtime per core, and a pooled connection is driven
//! by a task on the runtime that opened it, so a shared pool would hand a
//! request a connection of another thread - a cross-thread wake-up on
//! every call.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use http_body_util::{BodyExt, Full};
use url::Url;

use super::plain_pool::{ConnectError, PlainPool};
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
    /// Pooled connections idle longer than this are not used again (they are
    /// closed at the next call, or when the upstream closes them); keep it
    /// below the upstream server's keep-alive timeout (gunicorn's default is
    /// 2 s).
    pub pool_idle_timeout: Duration,
}

pub struct UpstreamHttp {
    options: HttpOptions,
    /// Identifies this client's per-thread instances; they go with it.
    alive: Arc<()>,
    user_agent: HeaderValue,
}

/// One thread's clients of one [`UpstreamHttp`] (both are cheap handles).
#[derive(Clone)]
struct Clients {
    /// `http` calls.
    plain: PlainPool,
    /// `https` calls and streamed uploads.
    tls: reqwest::Client,
}

thread_local! {
    /// This thread's clients of each live [`UpstreamHttp`].
    static CLIENTS: RefCell<Vec<(Weak<()>, Clients)>> = const { RefCell::new(Vec::new()) };
}

fn build_clients(options: &HttpOptions) -> Result<Clients, String> {
    let tls = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .pool_idle_timeout(options.pool_idle_timeout)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let plain = PlainPool::new(options.connect_timeout, options.pool_idle_timeout);
    Ok(Clients { plain, tls })
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
        // Built once here so that a bad setting fails at start-up; each
        // thread builds its own on first use.
        build_clients(options)?;
        Ok(UpstreamHttp {
            options: options.clone(),
            alive: Arc::new(()),
            user_agent: HeaderValue::from_static(concat!("alliance-glance/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// This thread's clients (built on first use).
    fn clients(&self) -> Result<Clients, TransportError> {
        let found = CLIENTS.with_borrow(|clients| {
            clients
                .iter()
                .find(|(alive, _)| std::ptr::eq(alive.as_ptr(), Arc::as_ptr(&self.alive)))
                .map(|(_, clients)| clients.clone())
        });
        if let Some(clients) = found {
            return Ok(clients);
        }
        let clients = build_clients(&self.options).map_err(TransportError::Broken)?;
        CLIENTS.with_borrow_mut(|kept| {
            kept.retain(|(alive, _)| alive.strong_count() > 0);
            kept.push((Arc::downgrade(&self.alive), clients.clone()));
        });
        Ok(clients)
    }

    /// Every call's headers: the identity headers, then the facade's own
    /// `Accept`, `User-Agent`, request id and the body's media type.
    fn outgoing_headers(&self, identity: &HeaderMap, call: &Call, request_id: &str) -> HeaderMap {
        // A clone keeps the identity map's hashed slots: cheaper than
        // appending its headers one by one.
        let mut outgoing = identity.clone();
        outgoing.reserve(5);
        outgoing.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        outgoing.insert(header::USER_AGENT, self.user_agent.clone());
        if let Ok(value) = HeaderValue::from_str(request_id) {
            outgoing.insert(request_id::HEADER, value);
        }
        if let Some((media_type, _)) = &call.body {
            outgoing.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        }
        outgoing
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
        let clients = self.clients()?;
        if endpoint.scheme() == "http"
            && let Some((authority, path_and_query)) = plain_target(endpoint, &call.path_and_query)
        {
            let attempt = |fresh| {
                let target = (&authority, path_and_query.clone());
                self.send_plain(&clients.plain, target, headers, call, request_id, fresh)
            };
            return match attempt(false).await {
                Err(PlainAttempt::Failed(error)) if may_resend && stale_cause(error.as_ref()) => {
                    tracing::debug!("resending on a fresh connection after a stale pooled one");
                    attempt(true).await
                }
                result => result,
            }
            .map_err(PlainAttempt::into_transport_error);
        }
        let url = join(endpoint, &call.path_and_query);
        match self.send_once(&clients.tls, &url, headers, call, request_id).await {
            Err(Attempt::Failed(error)) if may_resend && is_stale_connection(&error) => {
                tracing::debug!("resending on a fresh connection after a stale pooled one");
                self.send_once(&clients.tls, &url, headers, call, request_id).await
            }

            result => result,
        }
        .map_err(Attempt::into_transport_error)
    }

    /// One `http` call on a pooled connection (a new one if `fresh`),
    /// bounded as a whole (connecting and the answer's body included) by the
    /// request timeout.
    async fn send_plain(
        &self,
        pool: &PlainPool,
        (authority, path_and_query): (&Authority, PathAndQuery),
        headers: &HeaderMap,
        call: &Call,
        request_id: &str,
        fresh: bool,
    ) -> Result<Reply, PlainAttempt> {
        let mut request = http::Request::new(Full::new(
            call.body.as_ref().map_or_else(Bytes::new, |(_, body)| body.clone()),
        ));
        *request.method_mut() = call.method.clone();
        // Origin form on the wire, the host in `Host` (URLs here carry no
        // default port: `Url` drops `:80`).
        *request.uri_mut() = Uri::from(path_and_query);
        let mut outgoing = self.outgoing_headers(headers, call, request_id);
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            outgoing.insert(header::HOST, host);
        }
        *request.headers_mut() = outgoing;
        let exchange = async {
            let mut sender = pool.checkout(authority, fresh).await.map_err(PlainAttempt::Connect)?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| PlainAttempt::Failed(Box::new(error)))?;
            let (parts, body) = response.into_parts();
            // `collect` keeps a body that arrived in one piece as it is (no copy).
            let body = http_body_util::Limited::new(body, MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<http_body_util::LengthLimitError>() {
                        PlainAttempt::TooLarge
                    } else {
                        PlainAttempt::Failed(error)
                    }
                })?
                .to_bytes();
            pool.checkin(authority, sender);
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.options.request_timeout, exchange)
            .await
            .unwrap_or(Err(PlainAttempt::TimedOut))
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
        let mut outgoing = self.outgoing_headers(headers, call, request_id);
        outgoing.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let request = self
            .clients()?
            .tls
            .request(call.method.clone(), join(endpoint, &call.path_and_query))
            .headers(outgoing)
            .body(body)
            .timeout(timeout);
        match request.send().await {
            Ok(response) => read_reply(response).await,
            Err(error) => Err(Attempt::Failed(error)),
        }
        .map_err(Attempt::into_transport_error)
    }

    async fn send_once(
        &self,
        client: &reqwest::Client,
        url: &Url,
        headers: &HeaderMap,
        call: &Call,
        request_id: &str,
    ) -> Result<Reply, Attempt> {
        let mut request = client
            .request(call.method.clone(), url.clone())
            .headers(self.outgoing_headers(headers, call, request_id));
        if let Some((_, body)) = &call.body {
            request = request.body(body.clone());
        }
        read_reply(request.send().await.map_err(Attempt::Failed)?).await
    }
}

/// Where an `http` call of `path_and_query` to `endpoint` goes: host and
/// port, and the path and query of the URL [`join`] builds, without going
/// through `Url`; `None` where it would differ (an endpoint with a query or
/// credentials, characters `Url` would encode).
fn plain_target(endpoint: &Url, path_and_query: &str) -> Option<(Authority, PathAndQuery)> {
    if endpoint.query().is_some()
        || endpoint.fragment().is_some()
        || endpoint.authority().contains('@')
        || !path_and_query.starts_with('/')
    {
        return None;
    }
    let base = endpoint.path().trim_end_matches('/');
    let mut text = String::with_capacity(base.len() + path_and_query.len());
    text.push_str(base);
    text.push_str(path_and_query);
    // http::Uri accepts a few characters that Url would percent-encode.
    let safe = text
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'\\' | b'^' | b'|'));
    if !safe {
        return None;
    }
    let path_and_query = PathAndQuery::try_from(text).ok()?;
    let authority = Authority::try_from(endpoint.authority()).ok()?;
    Some((authority, path_and_query))
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

/// How an `http` call failed.
enum PlainAttempt {
    Connect(ConnectError),
    Failed(Box<dyn std::error::Error + Send + Sync>),
    TimedOut,
    TooLarge,
}

impl PlainAttempt {
    fn into_transport_error(self) -> TransportError {
        match self {
            PlainAttempt::TimedOut | PlainAttempt::Connect(ConnectError::TimedOut) => {
                TransportError::Timeout("operation timed out".into())
            }
            PlainAttempt::Connect(ConnectError::Unreachable(detail)) => TransportError::Unreachable(detail),
            PlainAttempt::TooLarge => TransportError::Broken(format!("answer larger than {MAX_REPLY_BYTES} bytes")),
            PlainAttempt::Failed(error) => TransportError::Broken(error_chain(error.as_ref())),
        }
    }
}

/// `error` and its causes, outermost first.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |cause| cause.source())
}

/// Whether an io error of a matching kind is in the error's chain.
fn has_io_error(error: &(dyn std::error::Error + 'static), kind: impl Fn(std::io::ErrorKind) -> bool) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io_error| kind(io_error.kind()))
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
    std::error::Error::source(error).is_some_and(stale_cause)
}

/// A cause of failure in `error`'s chain that means the connection was
/// closed under the request (see [`is_stale_connection`]).
fn stale_cause(error: &(dyn std::error::Error + 'static)) -> bool {
    let closed_by_hyper = causes(error).any(|cause| {
        cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(|hyper_error| hyper_error.is_incomplete_message() || hyper_error.is_canceled())
    });
    closed_by_hyper
        || has_io_error(error, |kind| {
            matches!(
                kind,
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        })
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

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    causes(error).map(ToString::to_string).collect::<Vec<_>>().join(": ")
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
    fn the_plain_target_is_the_joined_url_or_nothing() {
        for (endpoint, path) in [
            ("http://h/image", "/v2/images?limit=1"),
            ("http://h:9292/image/", "/v2/images/x"),
            ("http://h:9292", "/v2/images?name=a%20b&marker=m"),
        ] {
            let endpoint = Url::parse(endpoint).unwrap();
            let (authority, path_and_query) = plain_target(&endpoint, path).unwrap();
            assert_eq!(
                format!("http://{authority}{path_and_query}"),
                join(&endpoint, path).as_str()
            );
        }
        let bare = Url::parse("http://h").unwrap();
        assert!(plain_target(&bare, "/v2/images?name=a b").is_none());
        assert!(plain_target(&bare, "/v2/images?name={x}").is_none());
        assert!(plain_target(&Url::parse("http://h/?q=1").unwrap(), "/v2/images").is_none());
        assert!(plain_target(&Url::parse("http://u:p@h/").unwrap(), "/v2/images").is_none());
    }

    /// An upstream on a raw socket: answers every request on keep-alive
    /// connections, except that the requests numbered in `unanswered` (from
    /// 0, over all connections) close their connection without an answer -
    /// a server dropping an idle connection as a request arrives. Returns
    /// its URL, the number of connections it accepted and the request heads
    /// it read.
    async fn raw_upstream(
        unanswered: &'static [usize],
    ) -> (
        Url,
        Arc<std::sync::atomic::AtomicUsize>,
        Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accepted, seen) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (requests, seen) = (requests.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        // One request: its head, then the body its Content-Length announces.
                        let request_end = loop {
                            let text = String::from_utf8_lossy(&buffer).to_lowercase();
                            if let Some(head) = text.find("\r\n\r\n") {
                                let length = text[..head]
                                    .lines()
                                    .find_map(|line| line.strip_prefix("content-length: "))
                                    .map_or(0, |value| value.trim().parse::<usize>().unwrap());
                                if buffer.len() >= head + 4 + length {
                                    break head + 4 + length;
                                }
                            }
                            let mut chunk = [0; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let request: Vec<u8> = buffer.drain(..request_end).collect();
                        let text = String::from_utf8_lossy(&request);
                        let head = text.split("\r\n\r\n").next().unwrap_or_default();
                        seen.lock().unwrap().push(head.to_owned());
                        if unanswered.contains(&requests.fetch_add(1, Ordering::SeqCst)) {
                            return;
                        }
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, connections, heads)
    }

    fn test_client() -> UpstreamHttp {
        client_with_idle_timeout(Duration::from_secs(30))
    }

    fn client_with_idle_timeout(pool_idle_timeout: Duration) -> UpstreamHttp {
        UpstreamHttp::new(&HttpOptions {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            pool_idle_timeout,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_not_used_again() {
        let (url, connections, _) = raw_upstream(&[]).await;
        let http = client_with_idle_timeout(Duration::from_millis(100));
        let call = Call::get("/v2/images/x");
        http.send(&url, &HeaderMap::new(), &call, "req-1", true).await.unwrap();
        http.send(&url, &HeaderMap::new(), &call, "req-2", true).await.unwrap();
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        http.send(&url, &HeaderMap::new(), &call, "req-3", true).await.unwrap();
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn calls_share_a_keep_alive_connection() {
        let (url, connections, heads) = raw_upstream(&[]).await;
        let http = test_client();
        for _ in 0..3 {
            let reply = http
                .send(&url, &HeaderMap::new(), &Call::get("/v2/images/x"), "req-1", true)
                .await
                .unwrap();
            assert_eq!((reply.status, &reply.body[..]), (http::StatusCode::OK, &b"{}"[..]));
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Origin form, the endpoint's host and port in Host, the facade's own headers.
        let head = heads.lock().unwrap()[0].to_lowercase();
        let mut lines: Vec<&str> = head.lines().collect();
        assert_eq!(lines.remove(0), "get /v2/images/x http/1.1");
        lines.sort_unstable();
        let host = format!("host: {}", url.authority());
        let user_agent = format!("user-agent: alliance-glance/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(
            lines,
            [
                "accept: application/json",
                host.as_str(),
                user_agent.as_str(),
                "x-openstack-request-id: req-1"
            ]
        );
    }

    #[tokio::test]
    async fn a_call_dropped_on_a_pooled_connection_is_resent_only_when_safe() {
        let (url, connections, _) = raw_upstream(&[1, 3]).await;
        let http = test_client();
        let send = |call: Call, may_resend: bool| {
            let (http, url) = (&http, &url);
            async move { http.send(url, &HeaderMap::new(), &call, "req-1", may_resend).await }
        };
        send(Call::get("/v2/images/x"), true).await.unwrap();
        // Request 1 is dropped on the pooled connection; the resend (2) goes
        // out on a fresh one.
        let resent = send(Call::get("/v2/images/x"), true).await.unwrap();
        assert_eq!(resent.status, http::StatusCode::OK);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Request 3, a POST, is dropped too: it may have taken effect, so no resend.
        let post = Call::with_body(Method::POST, "/v2/images", "application/json", b"{}".to_vec());
        match send(post, false).await {
            Err(TransportError::Broken(_)) => {}
            other => panic!("expected a broken exchange, got {:?}", other.map(|reply| reply.status)),
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        match test_client()
            .send(&url, &HeaderMap::new(), &Call::get("/v2/images"), "req-1", true)
            .await
        {
            Err(TransportError::Unreachable(_)) => {}
            other => panic!("expected unreachable, got {:?}", other.map(|reply| reply.status)),
        }
    }

    #[test]
    fn only_idempotent_methods_are_retried() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::DELETE));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }
}
