//! The audit trail (`[audit]`, README "Audit"): one DMTF CADF event (the
//! form of pycadf and keystonemiddleware's audit middleware, [`event`]) for
//! every change - create, update, delete, a `copy_from` started, a failed
//! import first reported `killed` - and every request refused by the
//! `[[callers]]` rules or a rate (401, 403, 429); for list and show too
//! with `reads = true`. A sink of its own ([`sink`]): JSON lines in a file
//! and/or syslog, written by a thread of its own.
//!
//! A request gathers what its event says as it goes - who called
//! ([`Caller`], from the caller step), the image ([`AuditRecord`], from the
//! ops) - and at its end ([`Audit::finish`], when its log line is written)
//! the event is formatted and queued. Requests never wait for the sink: the
//! queue is bounded (`queue_events`) and a full queue drops the event
//! (counted, and a WARN line at most every 10 s). With `required = true` a
//! change first reserves its event's place in the queue ([`Audit::reserve`],
//! before anything is sent upstream) and is refused with 503 when there is
//! none or the sink is failing; so no change goes unaudited. Reads and
//! refusals never wait for a place and are never refused for the trail.

pub mod event;
pub mod sink;

use std::borrow::Cow;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ipnet::IpNet;
use lru::LruCache;
use tokio::sync::mpsc;

use self::event::{CallerFacts, Content, Event, ImageFacts, Observer, Outcome, Reason, Resource};
use self::sink::{Item, Shared};
use crate::config::{AuditConfig, ConfigError};
use crate::connection::Peer;
use crate::error::AllianceError;
use crate::ids;
use crate::limits::Throttled;
use crate::metrics::{AuditOutcome, Metrics};
use crate::operation::Operation;
use crate::refusal::Refusal;

/// Images already reported `killed` that are remembered (so that each is
/// reported once; one forgotten is reported again when next seen killed).
const KILLED_REMEMBERED: usize = 10_000;

/// The place in the queue of a change's event, held through the request.
pub type Permit = mpsc::OwnedPermit<Item>;

/// The action of a create with `copy_from` and of its import's end: it
/// refines `create` as keystonemiddleware's `update/<action>` refines `update`.
const CREATE_COPY_FROM: &str = "create/copy_from";

/// The running trail: its settings, the queue to its writer.
pub struct Audit {
    reads: bool,
    required: bool,
    observer: Observer,
    queue: mpsc::Sender<Item>,
    shared: Arc<Shared>,
    /// Images reported `killed`.
    killed: Mutex<LruCache<Box<str>, ()>>,
    metrics: Metrics,
    dropped_warnings: Throttled,
    refused_warnings: Throttled,
    /// Sent when the writer ends.
    writer_done: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Audit {
    /// Starts the writer thread.
    pub fn start(config: &AuditConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        let (queue, receiver) = mpsc::channel(config.queue_events);
        let shared = Arc::new(Shared::default());
        let (done, writer_done) = std::sync::mpsc::channel();
        sink::spawn(config, receiver, Arc::clone(&shared), metrics.clone(), done)
            .map_err(|error| ConfigError(format!("audit: cannot start the writer: {error}")))?;
        let remembered = NonZeroUsize::new(KILLED_REMEMBERED).unwrap_or(NonZeroUsize::MIN);
        Ok(Audit {
            reads: config.reads,
            required: config.required,
            observer: Observer::new(&config.observer_id, &config.observer_name),
            queue,
            shared,
            killed: Mutex::new(LruCache::new(remembered)),
            metrics: metrics.clone(),
            dropped_warnings: Throttled::default(),
            refused_warnings: Throttled::default(),
            writer_done: Mutex::new(writer_done),
        })
    }

    /// Whether a request of `operation` that goes through is recorded.
    pub fn covers(&self, operation: Operation) -> bool {
        operation.writes() || self.reads
    }

    /// For a change with `required`: its event's place in the queue, or
    /// 503 when there is none or the sink is failing. `None`: no place
    /// needed.
    pub fn reserve(&self, operation: Operation) -> Result<Option<Permit>, AllianceError> {
        if !self.required || !operation.writes() {
            return Ok(None);
        }
        let permit = if self.shared.failing.load(Ordering::Relaxed) {
            None
        } else {
            self.queue.clone().try_reserve_owned().ok()
        };
        match permit {
            Some(permit) => Ok(Some(permit)),
            None => {
                if let Some(refused) = self.refused_warnings.due() {
                    tracing::warn!(
                        reason = Refusal::AuditUnavailable.label(),
                        refused,
                        failing = self.shared.failing.load(Ordering::Relaxed),
                        "changes refused: their audit events cannot be written"
                    );
                }
                Err(AllianceError::refused(Refusal::AuditUnavailable))
            }
        }
    }

    /// Reopen the file before the next write (SIGHUP).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Relaxed);
    }

    /// Writes what is queued and stops the writer, waiting for it at most
    /// `wait` (a sink that blocks is left behind); logs what was lost.
    pub fn close(&self, wait: Duration) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        // A full queue keeps the writer busy: it sees `stopping` after it.
        let _ = self.queue.try_send(Item::Stop);
        let ended = self
            .writer_done
            .lock()
            .map(|done| done.recv_timeout(wait).is_ok())
            .unwrap_or(false);
        let lost = self.shared.lost.load(Ordering::Relaxed);
        if !ended {
            tracing::error!(
                waiting = self.queue.max_capacity() - self.queue.capacity(),
                "the audit writer did not finish in time; the events it holds are lost"
            );
        } else if lost > 0 {
            tracing::error!(lost, "audit events lost at shutdown");
        }
    }

    /// The request's end: its event (if it has one) and the `killed`
    /// reports its operation made, queued.
    pub fn finish(&self, request: &Finished<'_>, pending: &mut Pending) {
        if let Some(record) = request.record {
            self.report_killed(request, record);
        }
        let Some(operation) = pending.operation else {
            // Refused before the operation was known: not an act on an image.
            return;
        };
        let caller_refused = matches!(
            request.refusal,
            Some(
                Refusal::CallerNotRecognised
                    | Refusal::CallerNotAllowed { .. }
                    | Refusal::CallerRateLimited { .. }
                    | Refusal::EnvironmentRateLimited { .. }
            )
        );
        if request.refusal == Some(Refusal::AuditUnavailable) || !(caller_refused || self.covers(operation)) {
            return;
        }
        let line = self.request_event(request, pending, operation).line(&self.observer);
        match pending.permit.take() {
            Some(permit) => {
                permit.send(Item::Line(line));
            }
            None => self.enqueue(line),
        }
    }

    fn request_event<'a>(&'a self, request: &'a Finished<'a>, pending: &'a Pending, operation: Operation) -> Event<'a> {
        let recorded = request.record.and_then(|record| record.image.get());
        let image_id = recorded.map(|(id, _)| &**id).or(pending.path_id.as_deref());
        let image_name = recorded
            .and_then(|(_, name)| name.as_deref())
            .or(pending.path_name.as_deref());
        let copy_from = pending.copy_from && operation == Operation::Create;
        let action = match request.refusal {
            Some(Refusal::CallerNotRecognised) => "authenticate",
            _ if copy_from => CREATE_COPY_FROM,
            _ => operation.cadf_action(),
        };
        let outcome = match Outcome::of_status(request.status) {
            Outcome::Success if copy_from => Outcome::Pending,
            outcome => outcome,
        };
        Event {
            action,
            outcome,
            reason: (request.status != 0).then(|| Reason::http(request.status)),
            initiator: pending.caller.initiator(request.peer),
            target: image(image_id, image_name, request.namespace, request.environment),
            request_id: request.request_id,
        }
    }

    /// One event per image the request's operation first saw `killed`:
    /// the failure of the `copy_from` that was pending.
    fn report_killed(&self, request: &Finished<'_>, record: &AuditRecord) {
        if !record.any_killed.load(Ordering::Relaxed) {
            return;
        }
        let killed = record
            .killed
            .lock()
            .map(|mut killed| std::mem::take(&mut *killed))
            .unwrap_or_default();
        for (id, name) in killed {
            let first = self
                .killed
                .lock()
                .map(|mut reported| reported.put(id.clone(), ()).is_none())
                .unwrap_or(true);
            if !first {
                continue;
            }
            let namespace = request.namespace.unwrap_or("-");
            let initiator = Resource {
                type_uri: event::IMAGE_SERVICE,
                id: Cow::Owned(event::derived_id("image_service", namespace)),
                name: Some(namespace),
                address: None,
                attachment: None,
            };
            let event = Event {
                action: CREATE_COPY_FROM,
                outcome: Outcome::Failure,
                reason: Some(Reason {
                    reason_type: "image_status",
                    reason_code: Cow::Borrowed("killed"),
                }),
                initiator,
                target: image(Some(&id), name.as_deref(), request.namespace, request.environment),
                request_id: request.request_id,
            };
            self.enqueue(event.line(&self.observer));
        }
    }

    fn enqueue(&self, line: Vec<u8>) {
        if self.queue.try_send(Item::Line(line)).is_err() {
            self.metrics.audit_events(AuditOutcome::QueueFull, 1);
            if let Some(dropped) = self.dropped_warnings.due() {
                tracing::warn!(
                    reason = "audit_queue_full",
                    dropped,
                    "audit events dropped: the audit sink does not keep up"
                );
            }
        }
    }
}

/// The target: the image (`unknown` when no id is known), with where it is.
fn image<'a>(
    id: Option<&'a str>,
    name: Option<&'a str>,
    namespace: Option<&'a str>,
    environment: Option<&'a str>,
) -> Resource<'a> {
    Resource {
        type_uri: event::IMAGE,
        id: Cow::Borrowed(id.unwrap_or(event::UNKNOWN)),
        name,
        address: None,
        attachment: Some(Content::Image(ImageFacts {
            namespace: namespace.unwrap_or("-"),
            project_id: environment.unwrap_or("-"),
        })),
    }
}

/// What the end of a request knows, for its event.
pub struct Finished<'a> {
    pub request_id: &'a str,
    pub namespace: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// 0: no answer was given.
    pub status: u16,
    pub refusal: Option<Refusal>,
    pub peer: &'a Peer,
    /// What the operation recorded, if it ran.
    pub record: Option<&'a AuditRecord>,
}

/// What a request gathers for its event before its operation runs.
#[derive(Debug, Default)]
pub struct Pending {
    pub caller: Caller,
    /// The operation the request asks for, once its head was read.
    pub operation: Option<Operation>,
    /// The image the path names, by id or by name.
    pub path_id: Option<String>,
    pub path_name: Option<String>,
    /// A create with `copy_from`.
    pub copy_from: bool,
    pub permit: Option<Permit>,
}

/// How the caller was recognised (README, `[[callers]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// No `[[callers]]` rules: whoever reaches the listener.
    #[default]
    Anyone,
    /// No rule recognised the caller (401).
    Unrecognised,
    ClientCertificate,
    BearerSecret,
    /// A `source_cidrs` rule, by this network of it.
    SourceNetwork(IpNet),
    KeystoneToken,
}

impl Credential {
    fn name(&self) -> &'static str {
        match self {
            Credential::Anyone => "none",
            Credential::Unrecognised => "unrecognised",
            Credential::ClientCertificate => "client_certificate",
            Credential::BearerSecret => "bearer_secret",
            Credential::SourceNetwork(_) => "source_network",
            Credential::KeystoneToken => "keystone_token",
        }
    }
}

/// The user and project of a Keystone token (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub user_id: String,
    pub project_id: Option<String>,
}

/// Who the caller step found the caller to be; the connection (address,
/// certificate) comes with [`Finished::peer`].
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub credential: Credential,
    /// The rule that recognised the caller (let it through, or refused it
    /// with 403 or 429).
    pub rule: Option<Arc<str>>,
    /// What Keystone said of its token, if it was valid.
    pub token: Option<TokenUser>,
    pub presented_bearer: bool,
    pub presented_token: bool,
}

impl Caller {
    /// The initiator: a Keystone user by its id, a certificate by its
    /// fingerprint, anything else by a UUID derived from the rule or the
    /// address (README "Audit").
    fn initiator<'a>(&'a self, peer: &'a Peer) -> Resource<'a> {
        let certificate = peer.certificate.as_deref();
        let fingerprint = certificate.map(|certificate| ids::hex(&certificate.sha256));
        let address = peer.address.to_canonical();
        let by_address = || Cow::Owned(address_id(address));
        let id = match (&self.credential, &self.token, &self.rule) {
            (Credential::KeystoneToken, Some(token), _) => Cow::Borrowed(token.user_id.as_str()),
            (Credential::BearerSecret, _, Some(rule)) => Cow::Owned(event::derived_id("bearer_secret", rule)),
            (Credential::SourceNetwork(_), ..) => by_address(),
            _ => fingerprint.clone().map_or_else(by_address, Cow::Owned),
        };
        let mut presented = Vec::new();
        if certificate.is_some() {
            presented.push(Credential::ClientCertificate.name());
        }
        if self.presented_bearer {
            presented.push(Credential::BearerSecret.name());
        }
        if self.presented_token {
            presented.push(Credential::KeystoneToken.name());
        }
        let facts = CallerFacts {
            credential: self.credential.name(),
            rule: self.rule.as_deref(),
            certificate_names: certificate.map_or(&[], |certificate| certificate.names.as_slice()),
            certificate_sha256: fingerprint,
            source_network: match &self.credential {
                Credential::SourceNetwork(network) => Some(network.to_string()),
                _ => None,
            },
            user_id: self.token.as_ref().map(|token| token.user_id.as_str()),
            project_id: self.token.as_ref().and_then(|token| token.project_id.as_deref()),
            presented,
        };
        Resource {
            type_uri: event::ACCOUNT_USER,
            id,
            name: self.rule.as_deref(),
            address: Some(address),
            attachment: Some(Content::Caller(facts)),
        }
    }
}

/// [`event::derived_id`] of an address; the last one a serving thread
/// derived is kept (callers repeat: a SHA-256 was a fifth of an event).
fn address_id(address: IpAddr) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, String)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((known, id)) if *known == address => id.clone(),
            _ => {
                let id = event::derived_id("address", &address.to_string());
                *last = Some((address, id.clone()));
                id
            }
        }
    })
}

/// What the ops learn of the image that the event names, kept with the
/// request's upstream record (`upstream::UpstreamRecord`). Filled only once
/// the request is known to be audited ([`AuditRecord::want`]): a show that
/// is not recorded pays a flag's load.
#[derive(Debug, Default)]
pub struct AuditRecord {
    wanted: AtomicBool,
    /// The image acted on.
    image: OnceLock<ImageName>,
    any_killed: AtomicBool,
    /// Images the operation shows `killed` (their import failed).
    killed: Mutex<Vec<ImageName>>,
}

/// An image's id and name.
type ImageName = (Box<str>, Option<Box<str>>);

impl AuditRecord {
    /// The request's event will be written: record the image.
    pub fn want(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// The image the operation acts on (the one Glance created, the one a
    /// name resolved to).
    pub fn image(&self, id: &str, name: Option<&str>) {
        if self.wanted.load(Ordering::Relaxed) {
            let _ = self.image.set((id.into(), name.map(Into::into)));
        }
    }

    /// The operation reports the image `killed`: a failed import (whether
    /// or not the request itself is recorded).
    pub fn killed(&self, id: &str, name: Option<&str>) {
        self.any_killed.store(true, Ordering::Relaxed);
        if let Ok(mut killed) = self.killed.lock() {
            killed.push((id.into(), name.map(Into::into)));
        }
    }
}
