//! A proxy on loopback in front of Keystone that counts the requests, and
//! the password checks among them: what the facade costs a real Keystone.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::client;

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub password_checks: AtomicUsize,
    /// `POST .../auth/tokens`: tokens asked for (password or re-scope).
    pub token_requests: AtomicUsize,
}

/// A proxy on loopback to `target` (an origin, no path) that counts.
pub async fn counting_proxy(target: String) -> (String, Arc<Counts>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let counts = Arc::new(Counts::default());
    let (counted, upstream) = (Arc::clone(&counts), client());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (counts, upstream, target) = (Arc::clone(&counted), upstream.clone(), target.clone());
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (counts, upstream, target) = (Arc::clone(&counts), upstream.clone(), target.clone());
                async move { Ok::<_, Infallible>(forward(&counts, &upstream, &target, request).await) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (url, counts)
}

async fn forward(
    counts: &Counts,
    upstream: &reqwest::Client,
    target: &str,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    counts.requests.fetch_add(1, Ordering::SeqCst);
    if parts.method == http::Method::POST && parts.uri.path().ends_with("/auth/tokens") {
        counts.token_requests.fetch_add(1, Ordering::SeqCst);
    }
    let methods =
        serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default()["auth"]["identity"]["methods"].clone();
    if methods
        .as_array()
        .is_some_and(|methods| methods.iter().any(|method| method == "password"))
    {
        counts.password_checks.fetch_add(1, Ordering::SeqCst);
    }
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut outgoing = upstream.request(parts.method, format!("{target}{path}")).body(body);
    for name in [
        "content-type",
        "x-auth-token",
        "x-subject-token",
        "x-openstack-request-id",
    ] {
        if let Some(value) = parts.headers.get(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.expect("keystone reachable");
    let mut response = http::Response::builder().status(answer.status());
    for name in ["content-type", "x-subject-token"] {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Full::new(body)).expect("a response")
}
