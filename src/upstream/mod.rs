//! The calls of step 4 of a request (README, "How a request goes through"):
//! calls to Glance v2, built from scratch, and Keystone for the credentials.
//!
//! No client header is ever forwarded: each call carries only what the facade
//! decides - `Accept: application/json`, the request id, the identity
//! headers from the namespace's authenticator, and the body's media type.

pub mod auth;
pub mod authenticator;
pub mod glance;
pub mod keystone;
pub mod membership;
mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use url::Url;

pub use auth::{AfterRejection, Credentials, UpstreamAuth};
pub use authenticator::Authenticator;
pub use membership::Memberships;
pub use transport::{AnswerBudget, HttpOptions, IDENTITY_ROOM, TransportError, UpstreamHttp, is_idempotent};

use crate::audit::AuditRecord;
use crate::error::AllianceError;
use crate::limits::gate::Gate;
use crate::metrics::{NamespaceMetrics, UpstreamOutcome};
use crate::refusal::Service;
use crate::reshape::status::{StatusTable, Verdict};

/// Media type of Glance's JSON-Patch dialect.
pub const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";
pub const JSON: &str = "application/json";

/// One Glance v2 call: a path relative to the Glance endpoint (`/v2/...`,
/// with its query) and an optional body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub path_and_query: String,
    pub body: Option<(&'static str, Bytes)>,
}

impl Call {
    pub fn get(path_and_query: impl Into<String>) -> Self {
        Call {
            method: Method::GET,
            path_and_query: path_and_query.into(),
            body: None,
        }
    }

    pub fn delete(path_and_query: impl Into<String>) -> Self {
        Call {
            method: Method::DELETE,
            path_and_query: path_and_query.into(),
            body: None,
        }
    }

    pub fn with_body(
        method: Method,
        path_and_query: impl Into<String>,
        media_type: &'static str,
        body: Vec<u8>,
    ) -> Self {
        Call {
            method,
            path_and_query: path_and_query.into(),
            body: Some((media_type, Bytes::from(body))),
        }
    }
}

/// Glance's answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One Glance call in the namespace's metrics: its time, and its outcome
/// by the call's status table.
pub fn record_call(
    metrics: &NamespaceMetrics,
    table: &StatusTable,
    result: &Result<Reply, TransportError>,
    took: Duration,
) {
    let outcome = match result {
        Ok(reply) => match table.verdict(reply.status) {
            Some(Verdict::Success) => UpstreamOutcome::Success,
            Some(Verdict::No | Verdict::Refused | Verdict::RefusedAs(_)) => UpstreamOutcome::Refused,
            Some(Verdict::CredentialsRejected) => UpstreamOutcome::CredentialsRejected,
            None => UpstreamOutcome::Unexpected,
        },
        Err(error) => error.outcome(),
    };
    metrics.upstream(table.call, outcome, took);
}

/// What a request's log line says of its upstream side: the time spent
/// waiting for Glance, and whose call answered it if another request's;
/// and what its audit event names of the image.
#[derive(Debug, Default)]
pub struct UpstreamRecord {
    micros: AtomicU64,
    shared_from: OnceLock<Arc<str>>,
    pub audit: AuditRecord,
}

impl UpstreamRecord {
    /// Time spent waiting for Glance so far, in microseconds, summed over calls.
    pub fn micros(&self) -> u64 {
        self.micros.load(Ordering::Relaxed)
    }

    /// The request whose upstream call answered this one, if another's
    /// (see [`crate::limits::single_flight`]).
    pub fn shared_from(&self) -> Option<&str> {
        self.shared_from.get().map(|leader| &**leader)
    }

    pub fn set_shared_from(&self, leader: Arc<str>) {
        let _ = self.shared_from.set(leader);
    }
}

/// The upstream side of one Alliance request: which Glance, as which
/// project, under which request id; accumulates the time spent upstream.
#[derive(Clone)]
pub struct Session {
    pub http: Arc<UpstreamHttp>,
    pub auth: Arc<Authenticator>,
    /// The namespace's membership answers (see [`Memberships`]).
    pub memberships: Arc<Memberships>,
    /// The calls in flight to the namespace's Glance.
    pub gate: Arc<Gate>,
    pub environment: String,
    pub request_id: String,
    /// The namespace's series, for the calls this session makes.
    pub metrics: NamespaceMetrics,
    record: Arc<UpstreamRecord>,
}

impl Session {
    pub fn new(
        http: Arc<UpstreamHttp>,
        auth: Arc<Authenticator>,
        memberships: Arc<Memberships>,
        metrics: NamespaceMetrics,
        gate: Arc<Gate>,
        environment: String,
        request_id: String,
    ) -> Self {
        Session {
            http,
            auth,
            memberships,
            gate,
            environment,
            request_id,
            metrics,
            record: Arc::default(),
        }
    }

    /// A shared view of what the request did upstream, for its log line.
    pub fn record(&self) -> Arc<UpstreamRecord> {
        Arc::clone(&self.record)
    }

    /// What the request's audit event names of the image, filled by the ops.
    pub fn audit(&self) -> &AuditRecord {
        &self.record.audit
    }

    /// Sends `call` with the environment's credentials. Transport failures
    /// become 503 (refused), 504 (timeout) or 502; any HTTP status is
    /// returned for the operation's table to judge (`table` also names the
    /// call in the metrics). A 401 to a cached token (revoked early) drops
    /// it and the call is made once more with a new one; a second 401 is
    /// left to the table (502).
    pub async fn send(&self, table: &StatusTable, call: &Call) -> Result<Reply, AllianceError> {
        let credentials = self.auth.credentials(&self.environment, &self.request_id).await?;
        let reply = self.send_as(&credentials, table, call).await?;
        if reply.status != http::StatusCode::UNAUTHORIZED
            || self.auth.rejected(&self.environment, &credentials).await == AfterRejection::Stand
        {
            return Ok(reply);
        }
        tracing::info!(request_id = %self.request_id, "image service refused the credentials; getting new ones");
        let credentials = self.auth.credentials(&self.environment, &self.request_id).await?;
        self.send_as(&credentials, table, call).await
    }

    /// One exchange, within a slot of the namespace's [`Gate`] (the wait
    /// for a slot is not upstream time).
    async fn send_as(
        &self,
        credentials: &Credentials,
        table: &StatusTable,
        call: &Call,
    ) -> Result<Reply, AllianceError> {
        let _slot = self.gate.enter().await?;
        let started = Instant::now();
        let result = self
            .http
            .send(
                &credentials.endpoint,
                &credentials.headers,
                call,
                &self.request_id,
                is_idempotent(&call.method),
            )
            .await;
        let took = started.elapsed();
        let elapsed = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.record.micros.fetch_add(elapsed, Ordering::Relaxed);
        record_call(&self.metrics, table, &result, took);
        result.map_err(|error| error.into_alliance_error(Service::Image, call))
    }

    /// Streams image data to Glance. Never resent (the stream is consumed),
    /// bounded by `timeout` rather than the usual per-call limit, and
    /// outside the [`Gate`]: a transfer of hours would hold a slot as long.
    pub async fn upload(
        &self,
        table: &StatusTable,
        call: &Call,
        body: reqwest::Body,
        timeout: Duration,
    ) -> Result<Reply, AllianceError> {
        let credentials = self.auth.credentials(&self.environment, &self.request_id).await?;
        let started = Instant::now();
        let result = self
            .http
            .upload(
                &credentials.endpoint,
                &credentials.headers,
                call,
                body,
                &self.request_id,
                timeout,
            )
            .await;
        record_call(&self.metrics, table, &result, started.elapsed());
        result.map_err(|error| error.into_alliance_error(Service::Image, call))
    }

    /// The endpoint of the Glance this session talks to.
    pub async fn endpoint(&self) -> Result<Url, AllianceError> {
        Ok(self
            .auth
            .credentials(&self.environment, &self.request_id)
            .await?
            .endpoint)
    }
}
