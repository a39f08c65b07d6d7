//! `--serve-bare-proxy PORT UPSTREAM`: the floor of part 1. A proxy built
//! like the facade (hyper's server and client connection API, one
//! single-threaded runtime and listening socket per core, pooled upstream
//! connections) that sends `GET /images/{id}` on as `GET /v2/images/{id}`
//! with the trusted-mode identity headers and hands the answer back as it
//! came: no request parsing beyond the path, no JSON, no log line. What the
//! facade costs over it is the translation; what it costs over nginx is the
//! stack.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::common::{ENV, trusted_headers};

type Idle = Rc<RefCell<Vec<SendRequest<Empty<Bytes>>>>>;

/// Serves on 127.0.0.1:`port` until killed.
pub fn serve(port: u16, upstream: SocketAddr) -> std::process::ExitCode {
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let threads: Vec<_> = (0..workers)
        .map(|_| std::thread::spawn(move || worker(port, upstream)))
        .collect();
    for thread in threads {
        if let Ok(Err(error)) = thread.join() {
            eprintln!("bench: bare proxy: {error}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}

fn worker(port: u16, upstream: SocketAddr) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let listener = socket.listen(1024)?;
        let idle = Idle::default();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let idle = idle.clone();
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |request| forward(request, upstream, idle.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    idle: Idle,
) -> Result<Response<Full<Bytes>>, String> {
    let pooled = idle.borrow_mut().pop();
    let mut sender = match pooled {
        Some(sender) => sender,
        None => connect(upstream).await?,
    };
    let mut outgoing = Request::get(format!("/v2{}", request.uri().path())).header("host", upstream.to_string());
    for (name, value) in trusted_headers(ENV) {
        outgoing = outgoing.header(name, value);
    }
    let outgoing = outgoing.body(Empty::new()).map_err(|e| e.to_string())?;
    let response = sender.send_request(outgoing).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    idle.borrow_mut().push(sender);
    Ok(Response::from_parts(parts, Full::new(body)))
}

async fn connect(upstream: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::spawn_local(connection);
    Ok(sender)
}
