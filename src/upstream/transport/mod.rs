//! The HTTP client for upstream services (Glance, Keystone): one interface,
//! [`Transport`], with two implementations - [`plain`] for `http` endpoints
//! (hyper's connection API under a pool of our own) and [`https`] for `https`
//! endpoints and streamed uploads (reqwest with rustls).
//!
//! The rules every call follows are written once, here: where the request
//! goes (origin-form target under the endpoint's path prefix, `Host` from the
//! endpoint), the facade's own headers (no client header is ever
//! forwarded), the time limit of a call (connecting and the whole answer
//! included), the size limit of an answer, no redirects, no proxies from the
//! environment, and the one resend of an idempotent call that a stale pooled
//! connection failed.
//!
//! Each thread gets its own transports (and connection pools): the facade
//! runs one single-threaded runtime per core, and a pooled connection is
//! driven by a task on the runtime that opened it, so a shared pool would
//! hand a request a connection of another thread - a cross-thread wake-up
//! on every call.

mod budget;
mod https;
mod plain;

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::BodyExt;
use hyper::body::Body;
use url::{Position, Url};

pub use budget::AnswerBudget;

use super::{Call, Reply};
use crate::error::AllianceError;
use crate::metrics::UpstreamOutcome;
use crate::refusal::{Refusal, Service};
use crate::request_id;
use crate::reshape::message::for_log;

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// Bound on one call, from connecting to the last byte of the answer
    /// (a resend included).
    pub request_timeout: Duration,
    /// Pooled connections idle longer than this are not used again (they are
    /// closed at the next call, or when the upstream closes them); keep it
    /// below the upstream server's keep-alive timeout (gunicorn's default is
    /// 2 s).
    pub pool_idle_timeout: Duration,
    /// Memory for answers, shared by every client of the process.
    pub budget: AnswerBudget,
}

/// Why a call got no HTTP answer.
#[derive(Debug)]
pub enum TransportError {
    /// Connection refused, the host unreachable, or its name unresolved.
    Unreachable(String),
    /// Connecting or the whole exchange took longer than allowed.
    Timeout,
    /// The connection was closed under the request before any answer:
    /// nothing was processed, so an idempotent call may go out again.
    Stale(String),
    /// Anything else: reset mid-answer, an unreadable answer, an unusable
    /// endpoint.
    Broken(String),
    /// The answer was (or announced itself) larger than this limit.
    TooLarge(usize),
    /// The answer could not get its bytes from the [`AnswerBudget`] in time.
    Busy { wanted: usize, budget: usize },
}

impl TransportError {
    /// How the call ended, for the metrics.
    pub fn outcome(&self) -> UpstreamOutcome {
        match self {
            TransportError::Unreachable(_) => UpstreamOutcome::Unreachable,
            TransportError::Timeout => UpstreamOutcome::Timeout,
            TransportError::Stale(_)
            | TransportError::Broken(_)
            | TransportError::TooLarge(_)
            | TransportError::Busy { .. } => UpstreamOutcome::Failed,
        }
    }

    pub fn into_alliance_error(self, which: Service, call: &Call) -> AllianceError {
        let target = format!("{} {}", call.method, path_only(&call.path_and_query));
        let service = which.name();
        match self {
            TransportError::Unreachable(detail) => {
                tracing::warn!(
                    %target,
                    reason = "upstream_unreachable",
                    detail = %for_log(detail),
                    "{service} unreachable"
                );
                AllianceError::service_unavailable(format!("the {service} is unreachable"))
            }
            TransportError::Timeout => {
                tracing::warn!(%target, reason = "upstream_timeout", "{service} timed out");
                AllianceError::gateway_timeout(format!("the {service} did not answer in time"))
            }
            TransportError::Stale(detail) | TransportError::Broken(detail) => {
                tracing::warn!(
                    %target,
                    reason = "upstream_exchange_failed",
                    detail = %for_log(detail),
                    "{service} exchange failed"
                );
                AllianceError::bad_gateway(format!("the {service} exchange failed"))
            }
            TransportError::TooLarge(limit) => {
                let refusal = Refusal::UpstreamAnswerTooLarge { service: which };
                tracing::warn!(%target, reason = refusal.label(), limit, "{service} answer too large");
                AllianceError::refused(refusal)
            }
            TransportError::Busy { wanted, budget } => {
                let refusal = Refusal::UpstreamBufferBudgetExhausted { service: which };
                tracing::warn!(
                    %target,
                    reason = refusal.label(),
                    wanted,
                    budget,
                    "no memory left for the {service}'s answer within the wait"
                );
                AllianceError::refused(refusal)
            }
        }
    }
}

/// Query strings may hold image names; logs keep the path only.
fn path_only(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or(path_and_query)
}

/// Headers every call adds to the identity headers: `Host`, `Accept`,
/// `User-Agent`, the request id and the body's media type.
const OWN_HEADERS: usize = 5;

/// Room an identity header map should have (`HeaderMap::with_capacity`)
/// beyond its own headers, so that the outgoing map, a clone of it, takes
/// the facade's own headers without rehashing.
pub const IDENTITY_ROOM: usize = OWN_HEADERS;

/// A request ready for the wire, built by [`UpstreamHttp`] for a transport.
pub struct Outgoing {
    pub method: Method,
    /// Host and port, as in `Host`.
    pub authority: Authority,
    /// Origin form, the endpoint's path prefix included.
    pub path_and_query: PathAndQuery,
    /// Every header to send, `Host` included.
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One exchange on one connection: a pooled one, or a new one when `fresh`.
trait Transport {
    fn exchange(&self, request: Outgoing, fresh: bool) -> impl Future<Output = Result<Reply, TransportError>>;
}

pub struct UpstreamHttp {
    options: HttpOptions,
    /// Identifies this client's per-thread transports; they go with it.
    alive: Arc<()>,
    user_agent: HeaderValue,
}

/// One thread's transports of one [`UpstreamHttp`] (both are cheap handles).
#[derive(Clone)]
struct Transports {
    plain: plain::PlainPool,
    https: https::HttpsClient,
}

impl Transports {
    fn new(options: &HttpOptions) -> Result<Self, String> {
        Ok(Transports {
            plain: plain::PlainPool::new(
                options.connect_timeout,
                options.pool_idle_timeout,
                options.budget.clone(),
            ),
            https: https::HttpsClient::new(options)?,
        })
    }
}

thread_local! {
    /// This thread's transports of each live [`UpstreamHttp`].
    static TRANSPORTS: RefCell<Vec<(Weak<()>, Transports)>> = const { RefCell::new(Vec::new()) };
}

impl UpstreamHttp {
    pub fn new(options: &HttpOptions) -> Result<Self, String> {
        // Built once here so that a bad setting fails at start-up; each
        // thread builds its own on first use.
        Transports::new(options)?;
        Ok(UpstreamHttp {
            options: options.clone(),
            alive: Arc::new(()),
            user_agent: HeaderValue::from_static(concat!("alliance-glance/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// This thread's transports (built on first use).
    fn transports(&self) -> Result<Transports, TransportError> {
        let found = TRANSPORTS.with_borrow(|all| {
            all.iter()
                .find(|(alive, _)| std::ptr::eq(alive.as_ptr(), Arc::as_ptr(&self.alive)))
                .map(|(_, transports)| transports.clone())
        });
        if let Some(transports) = found {
            return Ok(transports);
        }
        let transports = Transports::new(&self.options).map_err(TransportError::Broken)?;
        TRANSPORTS.with_borrow_mut(|all| {
            all.retain(|(alive, _)| alive.strong_count() > 0);
            all.push((Arc::downgrade(&self.alive), transports.clone()));
        });
        Ok(transports)
    }

    /// Sends `call` to `endpoint` + the call's path, with `identity` headers
    /// and the facade's own. `may_resend`: the call may go out a second time
    /// on a fresh connection if a stale pooled one failed it.
    pub async fn send(
        &self,
        endpoint: &Url,
        identity: &HeaderMap,
        call: &Call,
        request_id: &str,
        may_resend: bool,
    ) -> Result<Reply, TransportError> {
        let transports = self.transports()?;
        let (authority, path_and_query) = target(endpoint, &call.path_and_query)?;
        let outgoing = || Outgoing {
            method: call.method.clone(),
            authority: authority.clone(),
            path_and_query: path_and_query.clone(),
            headers: self.outgoing_headers(
                identity,
                &authority,
                call.body.as_ref().map(|(media, _)| *media),
                request_id,
            ),
            body: call.body.as_ref().map_or_else(Bytes::new, |(_, body)| body.clone()),
        };
        // One await per scheme, each under the time limit (an async block
        // around the match cost a future layer per call).
        let limit = self.options.request_timeout;
        match endpoint.scheme() {
            "http" => within(limit, resend_if_stale(&transports.plain, &outgoing, may_resend)).await,
            "https" => within(limit, resend_if_stale(&transports.https, &outgoing, may_resend)).await,
            other => Err(TransportError::Broken(format!("unsupported scheme {other}"))),
        }
    }

    /// Streams `body` (image data) as the payload of `call`: sent once,
    /// never resent, bounded by `timeout` instead of the usual call limit.
    pub async fn upload(
        &self,
        endpoint: &Url,
        identity: &HeaderMap,
        call: &Call,
        body: reqwest::Body,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let transports = self.transports()?;
        let (authority, path_and_query) = target(endpoint, &call.path_and_query)?;
        let headers = self.outgoing_headers(identity, &authority, Some("application/octet-stream"), request_id);
        let request = Outgoing {
            method: call.method.clone(),
            authority,
            path_and_query,
            headers,
            body: Bytes::new(),
        };
        within(timeout, transports.https.stream(request, endpoint.scheme(), body)).await
    }

    /// Every call's headers: the identity headers, then the facade's own
    /// `Host`, `Accept`, `User-Agent`, request id and the body's media type.
    fn outgoing_headers(
        &self,
        identity: &HeaderMap,
        authority: &Authority,
        media_type: Option<&'static str>,
        request_id: &str,
    ) -> HeaderMap {
        // A clone keeps the identity map's hashed slots, which have room for
        // these headers (see [`IDENTITY_ROOM`]): cheaper than appending the
        // identity headers one by one, or than growing a full map.
        let mut outgoing = identity.clone();
        outgoing.reserve(OWN_HEADERS);
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            outgoing.insert(header::HOST, host);
        }
        outgoing.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        outgoing.insert(header::USER_AGENT, self.user_agent.clone());
        if let Ok(value) = HeaderValue::from_str(request_id) {
            outgoing.insert(request_id::HEADER, value);
        }
        if let Some(media_type) = media_type {
            outgoing.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        }
        outgoing
    }
}

/// The one resend rule: a call that a stale pooled connection failed goes
/// out once more, on a fresh connection, if resending is safe.
async fn resend_if_stale(
    transport: &impl Transport,
    outgoing: &impl Fn() -> Outgoing,
    may_resend: bool,
) -> Result<Reply, TransportError> {
    match transport.exchange(outgoing(), false).await {
        Err(TransportError::Stale(detail)) if may_resend => {
            tracing::debug!(detail = %for_log(&detail), "resending on a fresh connection after a stale pooled one");
            transport.exchange(outgoing(), true).await
        }
        result => result,
    }
}

/// The one time limit rule.
fn within(
    limit: Duration,
    exchange: impl Future<Output = Result<Reply, TransportError>>,
) -> impl Future<Output = Result<Reply, TransportError>> {
    let limited = tokio::time::timeout(limit, exchange);
    async { limited.await.unwrap_or(Err(TransportError::Timeout)) }
}

/// Reads a whole answer within `budget`: its announced length (or each
/// chunk, when it has none) is taken from the budget before it is read. A
/// body that arrives in one piece is kept as it is (no copy).
async fn read_answer<B>(response: http::Response<B>, budget: &AnswerBudget) -> Result<Reply, TransportError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    let mut body = std::pin::pin!(body);
    let mut buffer = budget.answer(body.size_hint().exact()).await?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| failed(error.into().as_ref()))?;
        if let Ok(chunk) = frame.into_data() {
            buffer.push(chunk).await?;
        }
    }
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: buffer.finish(),
    })
}

/// Where a call of `path_and_query` to `endpoint` goes: its host and port,
/// and the path and query under the endpoint's path prefix. The common case
/// is built by hand; text that `Url` would percent-encode goes through
/// [`join`]. Credentials in an endpoint are never used.
fn target(endpoint: &Url, path_and_query: &str) -> Result<(Authority, PathAndQuery), TransportError> {
    let unusable = || {
        TransportError::Broken(format!(
            "unusable upstream endpoint {}",
            endpoint.origin().ascii_serialization()
        ))
    };
    // Host and port as the URL has them (a default port dropped), without
    // any credentials.
    let authority =
        Authority::try_from(&endpoint[Position::BeforeHost..Position::AfterPort]).map_err(|_| unusable())?;
    let base = endpoint.path().trim_end_matches('/');
    let plain = endpoint.query().is_none()
        && endpoint.fragment().is_none()
        && path_and_query.starts_with('/')
        && path_and_query.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'\\' | b'^' | b'|')
        });
    let path_and_query = if plain {
        let mut text = String::with_capacity(base.len() + path_and_query.len());
        text.push_str(base);
        text.push_str(path_and_query);
        PathAndQuery::try_from(text)
    } else {
        let joined = join(endpoint, path_and_query);
        PathAndQuery::try_from(&joined[Position::BeforePath..Position::AfterQuery])
    }
    .map_err(|_| unusable())?;
    Ok((authority, path_and_query))
}

/// `http://host/image` + `/v2/images?x` -> `http://host/image/v2/images?x`
/// (a plain `Url::join` would drop the `/image` prefix).
fn join(endpoint: &Url, path_and_query: &str) -> Url {
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

/// A failed exchange: [`TransportError::Stale`] when the connection was
/// closed under the request, [`TransportError::Broken`] otherwise.
fn failed(error: &(dyn std::error::Error + 'static)) -> TransportError {
    let detail = error_chain(error);
    if closed_under_the_request(error) {
        TransportError::Stale(detail)
    } else {
        TransportError::Broken(detail)
    }
}

/// The server closed a pooled keep-alive connection as the request went out.
fn closed_under_the_request(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(|hyper_error| hyper_error.is_incomplete_message() || hyper_error.is_canceled())
            || cause.downcast_ref::<std::io::Error>().is_some_and(|io_error| {
                matches!(
                    io_error.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                )
            })
    })
}

/// `error` and its causes, outermost first.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |cause| cause.source())
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
    fn the_target_is_the_joined_url_without_credentials() {
        for (endpoint, path) in [
            ("http://h/image", "/v2/images?limit=1"),
            ("http://h:9292/image/", "/v2/images/x"),
            ("http://h:9292", "/v2/images?name=a%20b&marker=m"),
            // Text that Url encodes goes through it.
            ("http://h", "/v2/images?name=a b"),
            ("http://h", "/v2/images?name={x}"),
            ("https://[::1]:9292/image", "/v2/images/x"),
            ("http://h:80/image", "/v2/images"),
        ] {
            let endpoint = Url::parse(endpoint).unwrap();
            let (authority, path_and_query) = target(&endpoint, path).unwrap();
            assert_eq!(
                format!("{}://{authority}{path_and_query}", endpoint.scheme()),
                join(&endpoint, path).as_str()
            );
        }
        // The endpoint's own query gives way to the call's.
        let queried = Url::parse("http://h/?q=1").unwrap();
        assert_eq!(target(&queried, "/v2/images").unwrap().1, "/v2/images");
        // Credentials in an endpoint are never sent.
        let (authority, _) = target(&Url::parse("http://u:p@h:1/").unwrap(), "/v2/images").unwrap();
        assert_eq!(authority, "h:1");
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
            budget: AnswerBudget::new(1 << 20, 1 << 20, Duration::from_millis(100)),
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
            Err(TransportError::Stale(_)) => {}
            other => panic!("expected a stale connection, got {:?}", other.map(|reply| reply.status)),
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
