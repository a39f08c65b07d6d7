//! One request, start to end: inbound -> route -> ops (plan, call, reshape),
//! then the request id header and one structured log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method};
use hyper::body::Body;

use crate::body::{GuardedBody, OnBodyEnd, ResponseBody};
use crate::config::EnvironmentIdFormat;
use crate::config::{Config, ConfigError};
use crate::error::AllianceError;
use crate::inbound::{self, Caller, InboundPolicy};
use crate::ops;
use crate::request_id;
use crate::route::Clouds;

pub struct App {
    clouds: Clouds,
}

impl App {
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(App {
            clouds: Clouds::from_config(config)?,
        })
    }

    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let request_id = request_id::from_inbound(request.headers());
        let mut log = RequestLog::new(&request_id, request.method());
        let mut caller = Caller::default();
        let result = self.process(request, &request_id, &mut caller, &mut log).await;
        let mut response = result.unwrap_or_else(|error| error.into_response(&request_id));
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        log.status = response.status().as_u16();
        log.namespace = caller.namespace;
        log.environment = caller.environment;
        response.map(|body| GuardedBody::wrap(body, log))
    }

    async fn process<B>(
        &self,
        request: http::Request<B>,
        request_id: &str,
        caller: &mut Caller,
        log: &mut RequestLog,
    ) -> Result<http::Response<ResponseBody>, AllianceError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let alliance = inbound::parse(request, &self.clouds, caller).await?;
        log.operation = alliance.operation.name();
        let cloud = self
            .clouds
            .get(&alliance.namespace)
            .ok_or_else(|| AllianceError::bad_request("X-Target-Ns does not name a known namespace"))?;
        let session = cloud.session(&alliance.environment, request_id);
        log.upstream_micros = Some(session.upstream_timer());
        ops::apply(alliance.operation, cloud, session).await
    }
}

/// What inbound validation needs from the configuration.
impl InboundPolicy for Clouds {
    fn max_body_bytes(&self) -> usize {
        Clouds::max_body_bytes(self)
    }

    fn environment_id_format(&self, namespace: &str) -> Option<EnvironmentIdFormat> {
        self.get(namespace).map(|cloud| cloud.environment_id_format)
    }
}

/// The request's log line, written when its response body is done (for a
/// streamed list: after the last page, so upstream time covers every page).
struct RequestLog {
    request_id: String,
    method: Method,
    namespace: Option<String>,
    environment: Option<String>,
    operation: &'static str,
    status: u16,
    started: Instant,
    upstream_micros: Option<Arc<AtomicU64>>,
    aborted: bool,
}

impl RequestLog {
    fn new(request_id: &str, method: &Method) -> Self {
        RequestLog {
            request_id: request_id.to_owned(),
            method: method.clone(),
            namespace: None,
            environment: None,
            operation: "none",
            status: 0,
            started: Instant::now(),
            upstream_micros: None,
            aborted: false,
        }
    }
}

impl OnBodyEnd for RequestLog {
    fn body_failed(&mut self) {
        self.aborted = true;
    }
}

impl Drop for RequestLog {
    /// Text values go in as `&str` (written as they are) and times as whole
    /// microseconds: `Debug` escaping and float formatting were a tenth of a
    /// request's instructions (bench/README.md).
    fn drop(&mut self) {
        let micros = |duration: Duration| u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let upstream_us = self
            .upstream_micros
            .as_ref()
            .map_or(0, |micros| micros.load(Ordering::Relaxed));
        tracing::info!(
            target: "alliance_glance::request",
            request_id = self.request_id.as_str(),
            method = self.method.as_str(),
            namespace = self.namespace.as_deref().unwrap_or("-"),
            environment = self.environment.as_deref().unwrap_or("-"),
            operation = self.operation,
            status = self.status,
            aborted = self.aborted,
            duration_us = micros(self.started.elapsed()),
            upstream_us,
        );
    }
}
