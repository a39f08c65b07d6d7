//! A mock OpenStack Glance v2 server that answers like Glance 33.0.0.
//!
//! It reproduces the recorded behaviour of a real Glance (trusted-header "context"
//! authentication, multi-store file backend `fs1`): status codes, headers, body
//! shapes and key order, and the exact error texts, rendered as HTML, JSON or plain
//! text like webob does. On top of that it records every request and can inject
//! faults, so tests can check what a client sent and how it copes with failures.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use openstack_mock::glance::{self, Options};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let glance = glance::spawn(listener, Options { prefix: "/image".into(), ..Options::default() }).await;
//! let ids = glance.seed_images("a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1", 3, "seed-");
//! println!("{} serves {} images", glance.url(), ids.len());
//! glance.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod call;
mod data;
mod discovery;
mod errors;
mod images;
mod import;
mod listing;
mod members;
mod model;
mod patch;
mod reply;
mod router;
mod schema;
mod state;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::server::Server;

/// Largest request body (and web-download) the mock accepts, in bytes. Bodies are
/// held in memory; a larger upload is answered 413 like Glance's `image_size_cap`.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;

/// Configuration of a mock server; the defaults match the recorded deployment.
#[derive(Debug, Clone)]
pub struct Options {
    /// URL path prefix all routes live under: `""`, or e.g. `"/image"` as in DevStack.
    /// Like real Glance, links inside bodies (`self`, `next`, ...) never include it.
    pub prefix: String,
    /// Enabled import methods (`enabled_import_methods`), advertised in the
    /// `OpenStack-image-import-methods` header and `/v2/info/import`. Only
    /// `glance-direct` and `web-download` actually import data.
    pub import_methods: Vec<String>,
    /// `[import_filtering_opts] allowed_hosts` for web-download; `None` (or an empty
    /// list, as in Glance) allows any host. Entries are compared with the URI's host
    /// normalised like Glance does (`127.0.0.1`, not `localhost`). Unlike Glance, the
    /// mock does not check that host names resolve.
    pub web_download_allowed_hosts: Option<Vec<String>>,
    /// `[import_filtering_opts] allowed_ports`; empty allows any port.
    pub web_download_allowed_ports: Vec<u16>,
    /// `limit_param_default`: page size when the request has no `limit`.
    pub limit_default: usize,
    /// `api_limit_max`: larger `limit` values are clamped to it.
    pub limit_max: usize,
    /// Least time an import stays `importing` before it finishes.
    pub import_delay: Duration,
    /// `Some`: the keystone paste flavor - `X-Auth-Token` validated by this
    /// Keystone, identity headers ignored. `None`: the trusted-auth flavor.
    pub keystone: Option<crate::keystone::Handle>,
    /// Keep every request for [`Handle::requests`]. Off by default: the log
    /// only grows, so it is for tests, never for a long-running mock.
    pub record_requests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: String::new(),
            import_methods: vec!["glance-direct".to_owned(), "web-download".to_owned()],
            web_download_allowed_hosts: None,
            web_download_allowed_ports: vec![80, 443],
            limit_default: 25,
            limit_max: 1000,
            import_delay: Duration::from_millis(100),
            keystone: None,
            record_requests: false,
        }
    }
}

/// A request as the mock received it. Requests are logged once their body has been
/// read, before any fault applies.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `"PATCH"`.
    pub method: String,
    /// The full path, prefix included, still percent-encoded.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body (empty when it exceeded [`MAX_IMAGE_BYTES`]).
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of a header, looked up case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fault for the next request that matches `method` and `path_suffix` (`None`
/// matches anything). Each fault fires once; faults are tried in the order queued.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The method to match; `None` matches any.
    pub method: Option<http::Method>,
    /// Matched against the end of the request path (prefix included, no query
    /// string); `None` matches any.
    pub path_suffix: Option<String>,
    /// What happens to the matched request.
    pub action: FaultAction,
}

/// What an injected fault does.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Answer with this status, `Content-Type` and body instead of handling the
    /// request (no request id or other Glance headers; an invalid status becomes 500).
    Respond {
        /// HTTP status code.
        status: u16,
        /// Value of the `Content-Type` header.
        content_type: String,
        /// The whole body.
        body: String,
    },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Drop the TCP connection without answering.
    CloseConnection,
}

/// State shared by the server, its connections and background imports.
pub(crate) struct Shared {
    options: Options,
    addr: SocketAddr,
    store: Mutex<state::Store>,
    log: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Client for web-download; `None` if it could not be built (imports then fail).
    http: Option<reqwest::Client>,
    background: Mutex<JoinSet<()>>,
}

/// Locks a mutex, recovering the data if a thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, state::Store> {
        lock(&self.store)
    }

    /// Runs an import in the background; shutdown aborts what is still running.
    pub(crate) fn spawn_background(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.background);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    fn record(&self, parts: &http::request::Parts, body: &Bytes) {
        if !self.options.record_requests {
            return;
        }
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        lock(&self.log).push(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            body: body.clone(),
        });
    }

    fn take_fault(&self, method: &http::Method, path: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|fault| {
            fault.method.as_ref().is_none_or(|m| m == method)
                && fault.path_suffix.as_deref().is_none_or(|suffix| path.ends_with(suffix))
        })?;
        faults.remove(index).map(|fault| fault.action)
    }
}

/// Control of a running mock server. Clones share the same server; it stops on
/// [`Handle::shutdown`] or when every clone has been dropped.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    server: Arc<Mutex<Option<Server>>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("url", &self.url()).finish()
    }
}

/// Starts a mock Glance serving on `listener`, with an empty store. The prefix is
/// normalised (`"image/"` becomes `"/image"`).
pub async fn spawn(listener: TcpListener, mut options: Options) -> Handle {
    let prefix = options.prefix.trim_end_matches('/');
    options.prefix = if prefix.is_empty() || prefix.starts_with('/') {
        prefix.to_owned()
    } else {
        format!("/{prefix}")
    };
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let shared = Arc::new(Shared {
        http: import::http_client(&options),
        options,
        addr,
        store: Mutex::default(),
        log: Mutex::default(),
        faults: Mutex::default(),
        background: Mutex::default(),
    });
    let serving = Arc::clone(&shared);
    let server = Server::spawn(listener, move |request| handle(Arc::clone(&serving), request));
    Handle {
        shared,
        server: Arc::new(Mutex::new(Some(server))),
    }
}

impl Handle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Base URL of the API on the address the server listens on:
    /// `http://127.0.0.1:PORT{prefix}` on loopback, `http://0.0.0.0:PORT{prefix}`
    /// on every interface (`mock-glance --listen 0.0.0.0:9292` logs this URL:
    /// it names where the mock listens, not an address it was reached by).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.shared.addr, self.shared.options.prefix)
    }

    /// Every request received so far, in the order their bodies were complete
    /// (faulted ones included).
    ///
    /// # Panics
    /// When the mock was started without [`Options::record_requests`]: an
    /// empty log would make "nothing was sent" pass for the wrong reason.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.assert_recording();
        lock(&self.shared.log).clone()
    }

    /// Like [`Handle::requests`], and clears the log.
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        self.assert_recording();
        std::mem::take(&mut *lock(&self.shared.log))
    }

    fn assert_recording(&self) {
        assert!(
            self.shared.options.record_requests,
            "this mock Glance was started without Options::record_requests"
        );
    }

    /// Queues a fault for the next matching request.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push_back(fault);
    }

    /// Inserts `count` queued images owned by `owner` at once and returns their ids
    /// in creation order. Names are `name_prefix` followed by the 1-based index,
    /// zero-padded to the width of `count` (`img-001` ... `img-100`), so name order
    /// is creation order; formats are `raw`/`bare` and visibility `shared`.
    pub fn seed_images(&self, owner: &str, count: usize, name_prefix: &str) -> Vec<String> {
        let width = count.to_string().len();
        let now = model::now();
        let mut store = self.shared.store();
        (1..=count)
            .map(|index| {
                let id = uuid::Uuid::new_v4().to_string();
                let mut image = model::Image::new(id.clone(), Some(owner.to_owned()), now);
                image.name = Some(format!("{name_prefix}{index:0width$}"));
                image.disk_format = Some("raw".to_owned());
                image.container_format = Some("bare".to_owned());
                store.insert(image);
                id
            })
            .collect()
    }

    /// Stops accepting connections, lets open requests finish (for a short grace
    /// period) and aborts imports still running.
    pub async fn shutdown(self) {
        let server = lock(&self.server).take();
        if let Some(server) = server {
            server.stop().await;
        }
        lock(&self.shared.background).abort_all();
    }
}

/// Reads the whole body. Past [`MAX_IMAGE_BYTES`] the bytes are discarded but still
/// read, so the client finishes sending and gets the 413 instead of a reset.
async fn read_body(mut body: Incoming) -> Result<(Bytes, bool), DropConnection> {
    let mut data = BytesMut::new();
    let mut too_large = false;
    while let Some(frame) = body.frame().await {
        // The client went away mid-body: nobody is left to answer.
        let frame = frame.map_err(|_| DropConnection)?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if too_large {
            continue;
        }
        if data.len() + chunk.len() > MAX_IMAGE_BYTES {
            too_large = true;
            data = BytesMut::new();
        } else {
            data.extend_from_slice(&chunk);
        }
    }
    Ok((data.freeze(), too_large))
}

/// gunicorn's `limit_request_line` (4094): a longer request line (method,
/// target and protocol, as sent) is answered 414 before Glance sees it.
/// gunicorn reads 8192 bytes at a time: past that it reports what it read.
fn gunicorn_request_line_limit(parts: &http::request::Parts) -> Option<Response<Full<Bytes>>> {
    const LIMIT: usize = 4094;
    const READ_SIZE: usize = 8192;
    let target = parts.uri.path_and_query().map_or("/", |target| target.as_str());
    let line = parts.method.as_str().len() + 1 + target.len() + " HTTP/1.1".len();
    if line <= LIMIT {
        return None;
    }
    let length = if line + 2 <= READ_SIZE { line } else { READ_SIZE };
    let body = format!(
        "<html>\n  <head>\n    <title>URI Too Long</title>\n  </head>\n  <body>\n    \
         <h1><p>URI Too Long</p></h1>\n    Request Line is too large ({length} &gt; {LIMIT})\n  </body>\n</html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::URI_TOO_LONG;
    let headers = response.headers_mut();
    headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Some(response)
}

/// An error page as webob renders it for `accept` (HTML, JSON or plain text),
/// for the services that share Glance's WSGI stack (oslo.middleware in Keystone).
pub(crate) fn webob_error(status: u16, explanation: &str, accept: Option<&str>) -> Response<Full<Bytes>> {
    errors::ApiError::new(status, explanation)
        .into_reply(accept)
        .into_response(None)
}

/// Returned by the service to make hyper drop the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = request.into_parts();
    let (body, too_large) = read_body(body).await?;
    shared.record(&parts, &body);
    if let Some(refusal) = gunicorn_request_line_limit(&parts) {
        return Ok(refusal);
    }
    if too_large {
        let error = errors::ApiError::new(413, "The incoming image is too large: The provided image is too large.");
        let accept = parts.headers.get("accept").and_then(|v| v.to_str().ok());
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        return Ok(error.into_reply(accept).into_response(Some(&request_id)));
    }
    match shared.take_fault(&parts.method, parts.uri.path()) {
        Some(FaultAction::Respond {
            status,
            content_type,
            body,
        }) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(http::header::CONTENT_TYPE, value);
            }
            return Ok(response);
        }
        Some(FaultAction::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(FaultAction::CloseConnection) => return Err(DropConnection),
        None => {}
    }
    Ok(router::respond(&shared, &parts, &body))
}
