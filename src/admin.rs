//! The admin listener, on an address of its own (`[admin] listen`, loopback
//! by default, never the Alliance port):
//!
//! - `GET /metrics`: the Prometheus metrics (see [`crate::metrics`]), in the
//!   OpenMetrics text format; 404 with `admin.metrics = false`.
//! - `GET /healthz`: liveness, 200 while the process serves.
//! - `GET /readyz`: readiness, 200 when every namespace is ready - its
//!   Glance answers its healthcheck and, in keystone mode, Keystone issues
//!   the namespace's token - else 503 with a JSON body naming what is not.
//!   The answer is reused for `admin.readiness_cache_ms`, so that probes
//!   never load Glance or Keystone; concurrent probes share one check. From
//!   the moment shutdown begins it is 503 (`"shutting_down": true`), while
//!   in-flight requests drain.
//!
//! It serves on the calling thread's runtime (`serve` runs it beside the
//! signal handling), apart from the Alliance workers.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderValue, Method, StatusCode, header};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::app::App;
use crate::body::{self, ResponseBody};
use crate::config::AdminConfig;
use crate::metrics;
use crate::request_id;
use crate::route::Clouds;

/// A probe that has not sent its request headers after this is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    app: Arc<App>,
    stopping: AtomicBool,
    cache_for: Duration,
    check_timeout: Duration,
    last: Mutex<Option<Readiness>>,
}

/// One readiness check: of which set of namespaces, when, and its answer.
struct Readiness {
    clouds: Arc<Clouds>,
    at: Instant,
    /// Each namespace's problem, in name order (`None`: ready).
    namespaces: Vec<(String, Option<String>)>,
}

impl Admin {
    pub fn new(app: Arc<App>, config: &AdminConfig) -> Self {
        Admin {
            app,
            stopping: AtomicBool::new(false),
            cache_for: config.readiness_cache(),
            check_timeout: config.readiness_timeout(),
            last: Mutex::new(None),
        }
    }

    /// Readiness turns false for good (the first step of shutdown).
    pub fn stop_being_ready(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Serves connections from `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admin = Arc::clone(&self);
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let admin = Arc::clone(&admin);
                async move { Ok::<_, Infallible>(admin.handle(request.method(), request.uri().path()).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "admin connection ended with an error");
                }
            });
        }
    }

    pub async fn handle(&self, method: &Method, path: &str) -> http::Response<ResponseBody> {
        let known = matches!(path, "/metrics" | "/healthz" | "/readyz");
        if !known {
            return body::json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": format!("no such resource: {path}")}),
            );
        }
        if method != Method::GET {
            let mut response =
                body::json_response(StatusCode::METHOD_NOT_ALLOWED, &json!({"error": "only GET is allowed"}));
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        match path {
            "/metrics" => self.metrics(),
            "/healthz" => body::json_response(StatusCode::OK, &json!({"alive": true})),
            _ => self.readyz().await,
        }
    }

    fn metrics(&self) -> http::Response<ResponseBody> {
        let Some(text) = self.app.metrics().encode() else {
            return body::json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "metrics are off (admin.metrics = false)"}),
            );
        };
        let mut response = http::Response::new(body::full(Bytes::from(text)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
        response
    }

    async fn readyz(&self) -> http::Response<ResponseBody> {
        if self.stopping.load(Ordering::Relaxed) {
            return body::json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"ready": false, "shutting_down": true}),
            );
        }
        let clouds = self.app.clouds();
        let mut last = self.last.lock().await;
        let fresh = last
            .as_ref()
            .is_some_and(|last| Arc::ptr_eq(&last.clouds, &clouds) && last.at.elapsed() < self.cache_for);
        if !fresh {
            *last = Some(self.check(clouds).await);
        }
        let Some(readiness) = last.as_ref() else {
            return body::json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"ready": false}));
        };
        let (status, document) = readiness_document(&readiness.namespaces);
        body::json_response(status, &document)
    }

    /// Every namespace checked at once, each within the check timeout. The
    /// shared cache, the same for all, is asked once (when there is a
    /// namespace to check) and its answer counts in each namespace's time.
    async fn check(&self, clouds: Arc<Clouds>) -> Readiness {
        let request_id = request_id::generate();
        let request_id = request_id.as_str();
        let shared_cache_problem = clouds.shared_cache_problem().shared();
        let checks = clouds.all().into_iter().map(move |cloud| {
            let shared_cache_problem = shared_cache_problem.clone();
            let ready = async move {
                if let Some(problem) = shared_cache_problem.await {
                    return Err(problem);
                }
                cloud.check_ready(request_id).await
            };
            async move {
                let outcome = match tokio::time::timeout(self.check_timeout, ready).await {
                    Ok(outcome) => outcome.err(),
                    Err(_) => Some(format!("no answer within {} ms", self.check_timeout.as_millis())),
                };
                if let Some(problem) = &outcome {
                    tracing::warn!(namespace = %cloud.name, %request_id, problem, "namespace not ready");
                }
                (cloud.name.clone(), outcome)
            }
        });
        let namespaces = futures_util::future::join_all(checks).await;
        Readiness {
            clouds,
            at: Instant::now(),
            namespaces,
        }
    }
}

/// 200 when no namespace has a problem, else 503; the body names each
/// namespace's state and lists those not ready.
fn readiness_document(namespaces: &[(String, Option<String>)]) -> (StatusCode, Value) {
    let not_ready: Vec<&str> = namespaces
        .iter()
        .filter(|(_, problem)| problem.is_some())
        .map(|(name, _)| name.as_str())
        .collect();
    let states: Map<String, Value> = namespaces
        .iter()
        .map(|(name, problem)| (name.clone(), Value::from(problem.as_deref().unwrap_or("ready"))))
        .collect();
    let status = if not_ready.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        json!({"ready": not_ready.is_empty(), "not_ready": not_ready, "namespaces": states}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readiness_document_names_what_is_not_ready() {
        let (status, document) = readiness_document(&[
            ("ccsr1".into(), None),
            ("ccsr2".into(), Some("the image service is unreachable".into())),
        ]);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            document,
            json!({"ready": false, "not_ready": ["ccsr2"], "namespaces": {"ccsr1": "ready", "ccsr2": "the image service is unreachable"}})
        );
        let (status, document) = readiness_document(&[("ccsr1".into(), None)]);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(document["ready"], true);
    }
}
