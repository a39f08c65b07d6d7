//! One request, start to end: inbound (target and headers) -> callers (may
//! this caller act so?) -> inbound (the body) -> route -> ops (plan, call,
//! reshape), then the request id header and one structured log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{HeaderValue, Method, header};
use hyper::body::Body;

use crate::audit::{Audit, Finished, Pending};
use crate::body::{GuardedBody, OnBodyEnd, ResponseBody};
use crate::callers::{Act, Callers, Tokens};
use crate::config::{ClientLimits, Config, ConfigError, EnvironmentIdFormat};
use crate::connection::{ClientConnection, Cut, Peer, WatchedBody};
use crate::error::AllianceError;
use crate::inbound::{self, BodyTimeouts, ImageRef, InboundPolicy, Input, Target};
use crate::metrics::{LabelValue, Metrics, NamespaceMetrics};
use crate::operation::Operation;
use crate::ops;
use crate::refusal::Refusal;
use crate::request_id;
use crate::route::{Changes, Clouds};
use crate::upstream::UpstreamRecord;
use crate::upstream::keystone::client::TokenFacts;

pub struct App {
    /// The namespaces, swapped whole by a reload; each request keeps the
    /// set it started with.
    clouds: ArcSwap<Clouds>,
    /// The `[[callers]]` rules, swapped whole by a reload.
    callers: ArcSwap<Callers>,
    metrics: Metrics,
    max_body_bytes: usize,
    client: ClientLimits,
    /// Leaving (SIGTERM): answers close their connections.
    draining: AtomicBool,
    /// The audit trail (`[audit]`), started with the process.
    audit: Option<Arc<Audit>>,
}

impl App {
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let metrics = if config.admin.metrics {
            Metrics::new(env!("CARGO_PKG_VERSION"), crate::COMMIT)
        } else {
            Metrics::disabled()
        };
        let clouds = Clouds::from_config(config, &metrics)?;
        let callers = Callers::from_config(config, clouds.shared_cache())?;
        Ok(App {
            clouds: ArcSwap::from_pointee(clouds),
            callers: ArcSwap::from_pointee(callers),
            max_body_bytes: config.max_body_bytes,
            client: config.client.clone(),
            draining: AtomicBool::new(false),
            audit: match &config.audit {
                Some(audit) => Some(Arc::new(Audit::start(audit, &metrics)?)),
                None => None,
            },
            metrics,
        })
    }

    /// From now on every answer says `Connection: close`, so that clients
    /// and load balancers leave while the facade still serves (a drain).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// The audit file is reopened before its next write (SIGHUP).
    pub fn reopen_audit(&self) {
        if let Some(audit) = &self.audit {
            audit.reopen();
        }
    }

    /// The audit events still queued are written, waiting at most `wait`
    /// (at shutdown, once the requests are done).
    pub fn close_audit(&self, wait: Duration) {
        if let Some(audit) = &self.audit {
            audit.close(wait);
        }
    }

    /// What clients may take (the server applies the connection limits).
    pub fn client_limits(&self) -> &ClientLimits {
        &self.client
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The namespaces as they are now.
    pub fn clouds(&self) -> Arc<Clouds> {
        self.clouds.load_full()
    }

    /// The namespaces of `config`, built (unchanged ones kept from the
    /// current set) but not yet serving: [`App::install`] swaps them in.
    pub fn prepare(&self, config: &Config) -> Result<(Clouds, Changes), ConfigError> {
        Clouds::reusing(config, &self.metrics, Some(&self.clouds.load()))
    }

    /// New requests are served by `clouds` from now on; requests under way
    /// finish with the set they started with.
    pub fn install(&self, clouds: Clouds) {
        self.clouds.store(Arc::new(clouds));
    }

    /// New requests are judged by `callers` from now on.
    pub fn install_callers(&self, callers: Callers) {
        self.callers.store(Arc::new(callers));
    }

    pub async fn handle<B>(
        &self,
        request: http::Request<B>,
        connection: &Arc<ClientConnection>,
    ) -> http::Response<ResponseBody>
    where
        B: Body + Unpin,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        connection.request_started();
        let clouds = self.clouds.load_full();
        let request_id = request_id::from_inbound(request.headers());
        let mut log = RequestLog::new(
            &request_id,
            Some(request.method()),
            Arc::clone(connection),
            self.metrics.clone(),
        );
        log.audit.clone_from(&self.audit);
        let request = request.map(|body| WatchedBody::new(body, connection));
        // Behind a trusted proxy, the client it names.
        let forwarded = if self.client.x_forwarded_for {
            connection
                .peer()
                .forwarded(request.headers(), &self.client.trusted_proxies)
        } else {
            None
        };
        if forwarded.is_some() {
            log.proto = forwarded_proto(request.headers());
        }
        log.forwarded.clone_from(&forwarded);
        let peer = forwarded.as_ref().unwrap_or(connection.peer());
        // Draining when the request came: its answer closes the connection.
        let draining = self.draining.load(Ordering::Relaxed);
        let result = self
            .process(&clouds, request, peer, &request_id, &mut log)
            .await
            .inspect_err(|error| log.refusal = error.refusal);
        let mut response = result.unwrap_or_else(|error| error.into_response(&request_id));
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        if connection.input_left_unread() || draining {
            // The client may still be sending the body, or the facade is
            // leaving (a drain): say the connection ends with this answer,
            // as nginx and Envoy do.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        log.status = response.status().as_u16();
        if log.namespace_metrics.is_none() {
            // Refused before routing: a configured namespace still counts as itself.
            log.namespace_metrics = Some(clouds.metrics_of(log.target.namespace.as_deref()).clone());
        }
        response.map(|body| GuardedBody::wrap(body, log))
    }

    /// Namespace, environment and operation go into `log` as soon as they are
    /// known, so that the line of a request cut short still names them.
    async fn process<B>(
        &self,
        clouds: &Clouds,
        request: http::Request<B>,
        peer: &Peer,
        request_id: &str,
        log: &mut RequestLog,
    ) -> Result<http::Response<ResponseBody>, AllianceError>
    where
        B: Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let policy = Policy { app: self, clouds };
        let head = inbound::head(&request, &policy, &mut log.target)?;
        let operation = head.operation();
        let audit = self.audit.as_deref();
        let audited = audit.is_some_and(|audit| audit.covers(operation));
        if audit.is_some() {
            // A refused request's event names what it tried to act on too.
            log.pending.operation = Some(operation);
            note_path_image(&mut log.pending, head.image());
        }
        let act = Act {
            namespace: &head.namespace,
            environment: &head.environment,
            operation,
        };
        log.rule = self
            .callers
            .load_full()
            .authorize(
                peer,
                request.headers(),
                &act,
                clouds,
                request_id,
                audit.is_some().then_some(&mut log.pending.caller),
            )
            .await?;
        if let Some(audit) = audit {
            // Before anything is sent upstream.
            log.pending.permit = audit.reserve(operation)?;
        }
        let alliance = inbound::parse(request, head, &policy).await?;
        log.operation = Some(operation);
        if let Input::Create(image) = &alliance.input {
            log.pending.copy_from = image.copy_from.is_some();
        }
        let cloud = clouds
            .get(&alliance.namespace)
            .ok_or_else(|| AllianceError::bad_request("X-Target-Ns does not name a known namespace"))?;
        log.namespace_metrics = Some(cloud.metrics.clone());
        // Decided before anything is sent upstream.
        cloud.rates.admit(&alliance.environment).await?;
        let session = cloud.session(&alliance.environment, request_id);
        if audited {
            session.audit().want();
        }
        log.upstream = Some(session.record());
        ops::apply(alliance.input, cloud, session).await
    }
}

/// `X-Forwarded-Proto` of a trusted proxy, when it is one of the two schemes.
fn forwarded_proto(headers: &http::HeaderMap) -> Option<&'static str> {
    let value = headers.get("x-forwarded-proto")?.as_bytes();
    if value.eq_ignore_ascii_case(b"https") {
        Some("https")
    } else if value.eq_ignore_ascii_case(b"http") {
        Some("http")
    } else {
        None
    }
}

/// The image a request's path names, for its audit event.
fn note_path_image(pending: &mut Pending, image: Option<&ImageRef>) {
    match image {
        Some(ImageRef::Id(id)) => pending.path_id = Some(id.clone()),
        Some(ImageRef::Name(name)) => pending.path_name = Some(name.clone()),
        None => {}
    }
}

/// The log line (and metrics) of an answer the HTTP layer gave to a request
/// head it could not parse (`refusal` says why); nothing of the request is known.
pub fn log_unparsed_request(
    metrics: &Metrics,
    connection: &Arc<ClientConnection>,
    request_id: &str,
    status: u16,
    refusal: Refusal,
) {
    let mut log = RequestLog::new(request_id, None, Arc::clone(connection), metrics.clone());
    log.status = status;
    log.refusal = Some(refusal);
}

/// What inbound validation needs from the configuration: the limits, and
/// the namespaces the request started with.
struct Policy<'a> {
    app: &'a App,
    clouds: &'a Clouds,
}

impl InboundPolicy for Policy<'_> {
    fn max_body_bytes(&self) -> usize {
        self.app.max_body_bytes
    }

    fn body_timeouts(&self) -> BodyTimeouts {
        BodyTimeouts {
            idle: Duration::from_secs(self.app.client.body_idle_timeout_secs),
            total: Duration::from_secs(self.app.client.body_total_timeout_secs),
        }
    }

    fn max_uri_bytes(&self) -> usize {
        self.app.client.max_uri_bytes
    }

    fn environment_id_format(&self, namespace: &str) -> Option<EnvironmentIdFormat> {
        self.clouds.get(namespace).map(|cloud| cloud.environment_id_format)
    }
}

/// A caller's Keystone token, validated by the Keystone of the namespace it
/// was sent to.
impl Tokens for Clouds {
    async fn validate(
        &self,
        namespace: &str,
        token: &str,
        request_id: &str,
    ) -> Result<Option<TokenFacts>, AllianceError> {
        match self.get(namespace).and_then(|cloud| cloud.caller_tokens.as_ref()) {
            Some(caller_tokens) => caller_tokens.validate(token, request_id).await,
            None => Ok(None),
        }
    }
}

/// The request's log line and metrics, written when its response body is
/// done (for a streamed list: after the last page, so upstream time covers
/// every page), or when the request is dropped unanswered (client gone,
/// shutdown).
struct RequestLog {
    request_id: String,
    /// `None`: the request head could not be parsed.
    method: Option<Method>,
    /// The client a trusted proxy named in `X-Forwarded-For` (else the
    /// connection's peer is the client), for the log line and the audit.
    forwarded: Option<Peer>,
    /// The scheme the client used, as a trusted proxy says (`X-Forwarded-Proto`).
    proto: Option<&'static str>,
    target: Target,
    /// The `[[callers]]` rule that let the request through.
    rule: Option<Arc<str>>,
    /// `None` until the request is parsed.
    operation: Option<Operation>,
    /// 0 until an answer is made.
    status: u16,
    started: Instant,
    upstream: Option<Arc<UpstreamRecord>>,
    /// The answer's stream failed (an upstream page).
    failed: bool,
    /// The answer was dropped before its end.
    abandoned: bool,
    /// The limit or caller rule that refused the request, if one did.
    refusal: Option<Refusal>,
    connection: Arc<ClientConnection>,
    metrics: Metrics,
    /// The namespace's series, once known.
    namespace_metrics: Option<NamespaceMetrics>,
    /// The audit trail, when there is one, and what the request's event
    /// will say.
    audit: Option<Arc<Audit>>,
    pending: Pending,
}

impl RequestLog {
    fn new(request_id: &str, method: Option<&Method>, connection: Arc<ClientConnection>, metrics: Metrics) -> Self {
        metrics.request_started();
        RequestLog {
            request_id: request_id.to_owned(),
            method: method.cloned(),
            forwarded: None,
            proto: None,
            target: Target::default(),
            rule: None,
            operation: None,
            status: 0,
            started: Instant::now(),
            upstream: None,
            failed: false,
            abandoned: false,
            refusal: None,
            connection,
            metrics,
            namespace_metrics: None,
            audit: None,
            pending: Pending::default(),
        }
    }

    /// Why the request did not end normally, if it did not: a limit's
    /// refusal, the server's cut, a failed upstream page, or the client
    /// that left.
    fn outcome(&self) -> (bool, Option<Ending>) {
        let aborted = self.status == 0 || self.failed || self.abandoned;
        let ending = self.refusal.map(Ending::Refused).or_else(|| {
            aborted.then(|| match self.connection.cut_by() {
                Some(cut) => Ending::Cut(cut),
                None if self.failed => Ending::UpstreamFailed,
                None => Ending::ClientGone,
            })
        });
        (aborted, ending)
    }
}

/// Why a request did not end as answered.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Refused(Refusal),
    Cut(Cut),
    /// A page of a streamed list failed after the first.
    UpstreamFailed,
    ClientGone,
}

impl Ending {
    /// The log line's `reason`.
    fn reason(self) -> &'static str {
        match self {
            Ending::Refused(refusal) => refusal.label(),
            Ending::Cut(cut) => cut.reason(),
            Ending::UpstreamFailed => "upstream_failed",
            Ending::ClientGone => "client_gone",
        }
    }

    /// The refusal it counts as, if any.
    fn refusal(self) -> Option<Refusal> {
        match self {
            Ending::Refused(refusal) => Some(refusal),
            Ending::Cut(cut) => cut.refusal(),
            Ending::UpstreamFailed | Ending::ClientGone => None,
        }
    }
}

impl OnBodyEnd for RequestLog {
    /// A list aborted after its first page carries why in `error`: a
    /// limit's refusal is this request's.
    fn body_failed(&mut self, error: &std::io::Error) {
        self.failed = true;
        let refused = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<AllianceError>())
            .and_then(|error| error.refusal);
        self.refusal = self.refusal.or(refused);
    }

    fn body_abandoned(&mut self) {
        self.abandoned = true;
    }
}

impl Drop for RequestLog {
    /// Text values go in as `&str` (written as they are) and times as whole
    /// microseconds: `Debug` escaping and float formatting were a tenth of a
    /// request's instructions (bench/README.md).
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let namespace_metrics = self
            .namespace_metrics
            .take()
            .unwrap_or_else(|| self.metrics.unknown_namespace());
        self.metrics
            .request_ended(&namespace_metrics, self.operation, self.status, took);
        let micros = |duration: Duration| u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let upstream_us = self.upstream.as_deref().map_or(0, UpstreamRecord::micros);
        let coalesced_with = self.upstream.as_deref().and_then(UpstreamRecord::shared_from);
        let (aborted, ending) = self.outcome();
        if let Some(refusal) = ending.and_then(Ending::refusal) {
            namespace_metrics.refused(refusal);
        }
        let reason = ending.map(Ending::reason);
        let forwarded_client = self.forwarded.as_ref().map(|peer| peer.address.to_string());
        let client = forwarded_client
            .as_deref()
            .unwrap_or_else(|| self.connection.address_text());
        tracing::info!(
            target: "alliance_glance::request",
            request_id = self.request_id.as_str(),
            method = self.method.as_ref().map_or("-", Method::as_str),
            client,
            proto = self.proto,
            namespace = self.target.namespace.as_deref().unwrap_or("-"),
            environment = self.target.environment.as_deref().unwrap_or("-"),
            caller = self.rule.as_deref().unwrap_or("-"),
            operation = self.operation.label(),
            status = self.status,
            aborted,
            duration_us = micros(took),
            upstream_us,
            coalesced_with,
            reason,
        );
        if let Some(audit) = self.audit.take() {
            let finished = Finished {
                request_id: &self.request_id,
                namespace: self.target.namespace.as_deref(),
                environment: self.target.environment.as_deref(),
                status: self.status,
                refusal: self.refusal,
                peer: self.forwarded.as_ref().unwrap_or(self.connection.peer()),
                record: self.upstream.as_deref().map(|upstream| &upstream.audit),
            };
            audit.finish(&finished, &mut self.pending);
        }
    }
}
