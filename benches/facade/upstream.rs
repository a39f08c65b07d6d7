//! The fast upstream for `GET /images/{id}`: a minimal HTTP/1.1 server that
//! answers every `GET /v2/images/{id}` with one recorded Glance v2 image
//! document (recorded from the project's mock Glance at start-up), with
//! Glance's headers. It does no work per request beyond hyper's own, so the
//! proxy in front of it is what the load measures. It runs on its own
//! threads (one single-threaded runtime per core, all accepting on one
//! socket), apart from the driver's runtime, so a connection never hops
//! threads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One recorded answer: what the mock Glance sent for `GET /v2/images/{id}`.
#[derive(Clone)]
pub struct Recorded {
    pub body: Bytes,
    pub request_id: String,
}

pub struct StaticUpstream {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
}

impl StaticUpstream {
    pub async fn start(recorded: Recorded) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let recorded = Arc::new(recorded);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        for _ in 0..threads {
            let listener = listener.try_clone()?;
            let recorded = Arc::clone(&recorded);
            let mut stopped = stopped.clone();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let accepted = tokio::select! {
                            accepted = listener.accept() => accepted,
                            _ = stopped.wait_for(|stop| *stop) => break,
                        };
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let recorded = Arc::clone(&recorded);
                        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let recorded = Arc::clone(&recorded);
                            async move { Ok::<_, Infallible>(answer(&recorded, &request)) }
                        });
                        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                    }
                });
            });
        }
        Ok(StaticUpstream { addr, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StaticUpstream {
    /// Stops accepting; the threads end (and their connections close) as
    /// their runtimes are dropped.
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn answer(recorded: &Recorded, request: &http::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let is_image = request.method() == http::Method::GET
        && path
            .strip_prefix("/v2/images/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    if !is_image {
        let mut response = Response::new(Full::new(Bytes::from_static(b"404 Not Found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    }
    let mut response = Response::new(Full::new(recorded.body.clone()));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(recorded.body.len()));
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&recorded.request_id) {
        headers.insert("x-openstack-request-id", value);
    }
    response
}
