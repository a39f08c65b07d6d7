//! One audit event as a line of JSON, in the form pycadf builds
//! (`pycadf.event.Event(...).as_dict()`) and keystonemiddleware's audit
//! middleware fills: the DMTF CADF `typeURI` of an event, a UUID, `activity`,
//! pycadf's time format, `action` and `outcome` from CADF's taxonomies,
//! `reason` as an HTTP status, and three resources - `initiator`, `target`,
//! `observer`. What CADF has no attribute for travels in attachments
//! (`typeURI`, `name`, `content`, all three set, as pycadf asks): the
//! request id on the event, the caller's public identity on the initiator,
//! the namespace and project on the target. Pure: the values come from
//! [`super`].

use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::reshape::json::JsonObject;

/// `cadftype.CADF_VERSION_1_0_0 + 'event'`.
pub const EVENT_TYPE_URI: &str = "http://schemas.dmtf.org/cloud/audit/1.0/event";

/// CADF resource types (`pycadf.cadftaxonomy`).
pub const ACCOUNT_USER: &str = "service/security/account/user";
pub const IMAGE: &str = "data/image";
pub const IMAGE_SERVICE: &str = "service/storage/image";

/// Room for one event's line, at first.
const LINE_CAPACITY: usize = 2048;

/// The `id` of a resource the facade cannot name (CADF's `unknown`, as
/// keystonemiddleware writes it).
pub const UNKNOWN: &str = "unknown";

/// `Event.outcome`: CADF's outcome taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Accepted, its effect still to come (an import started).
    Pending,
    /// No answer was given (the client left, the server shut down).
    Unknown,
}

impl Outcome {
    /// keystonemiddleware's rule: 2xx and 3xx success, else failure; no
    /// status (0), unknown.
    pub fn of_status(status: u16) -> Self {
        match status {
            0 => Outcome::Unknown,
            200..400 => Outcome::Success,
            _ => Outcome::Failure,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Pending => "pending",
            Outcome::Unknown => "unknown",
        }
    }
}

/// `Event.reason`: a code and the domain it comes from.
#[derive(Debug)]
pub struct Reason {
    pub reason_type: &'static str,
    pub reason_code: Cow<'static, str>,
}

impl Reason {
    /// The answer's status, as keystonemiddleware records it.
    pub fn http(status: u16) -> Self {
        Reason {
            reason_type: "HTTP",
            reason_code: Cow::Owned(itoa::Buffer::new().format(status).to_owned()),
        }
    }
}

/// What an attachment holds (its `content`).
#[derive(Debug)]
pub enum Content<'a> {
    Caller(CallerFacts<'a>),
    Image(ImageFacts<'a>),
}

impl Content<'_> {
    /// pycadf's `Attachment(typeURI, content, name)`.
    fn write(&self, attachment: &mut JsonObject<'_>) {
        attachment.text("typeURI", Some("application/json"));
        match self {
            Content::Caller(facts) => {
                attachment.text("name", Some("caller"));
                attachment.object("content", |content| facts.write(content));
            }
            Content::Image(facts) => {
                attachment.text("name", Some("image"));
                attachment.object("content", |content| {
                    content.text("namespace", Some(facts.namespace));
                    content.text("project_id", Some(facts.project_id));
                });
            }
        }
    }
}

/// Who called, as far as the facade could tell: never a secret or a token.
#[derive(Debug, Default)]
pub struct CallerFacts<'a> {
    /// `none` (no `[[callers]]` rules), `unrecognised`, `client_certificate`,
    /// `bearer_secret`, `source_network`, `keystone_token`.
    pub credential: &'static str,
    pub rule: Option<&'a str>,
    pub certificate_sha256: Option<String>,
    pub certificate_names: &'a [String],
    pub source_network: Option<String>,
    pub user_id: Option<&'a str>,
    pub project_id: Option<&'a str>,
    /// What the request carried: `client_certificate`, `bearer_secret`,
    /// `keystone_token` (for a refusal: what was not accepted).
    pub presented: Vec<&'static str>,
}

impl CallerFacts<'_> {
    fn write(&self, content: &mut JsonObject<'_>) {
        content.text("credential", Some(self.credential));
        let optional = [
            ("rule", self.rule),
            ("certificate_sha256", self.certificate_sha256.as_deref()),
        ];
        for (key, value) in optional.into_iter().filter(|(_, value)| value.is_some()) {
            content.text(key, value);
        }
        if !self.certificate_names.is_empty() {
            content.strings("certificate_names", self.certificate_names.iter().map(String::as_str));
        }
        let optional = [
            ("source_network", self.source_network.as_deref()),
            ("user_id", self.user_id),
            ("project_id", self.project_id),
        ];
        for (key, value) in optional.into_iter().filter(|(_, value)| value.is_some()) {
            content.text(key, value);
        }
        content.strings("presented", self.presented.iter().copied());
    }
}

/// Where an image is: the namespace (cloud) and the environment (project).
#[derive(Debug)]
pub struct ImageFacts<'a> {
    pub namespace: &'a str,
    pub project_id: &'a str,
}

/// A CADF resource (`pycadf.resource.Resource`), with at most one attachment.
#[derive(Debug)]
pub struct Resource<'a> {
    pub type_uri: &'static str,
    pub id: Cow<'a, str>,
    pub name: Option<&'a str>,
    /// `host.address`.
    pub address: Option<IpAddr>,
    pub attachment: Option<Content<'a>>,
}

impl Resource<'_> {
    fn write(&self, resource: &mut JsonObject<'_>) {
        resource.text("typeURI", Some(self.type_uri));
        resource.text("id", Some(&self.id));
        if self.name.is_some() {
            resource.text("name", self.name);
        }
        if let Some(address) = self.address {
            let mut text = [0u8; 64];
            let length = {
                let mut cursor = std::io::Cursor::new(&mut text[..]);
                // An address has at most 45 characters: it fits.
                let _ = write!(cursor, "{address}");
                usize::try_from(cursor.position()).unwrap_or(0)
            };
            let address = std::str::from_utf8(&text[..length]).unwrap_or_default();
            resource.object("host", |host| host.text("address", Some(address)));
        }
        if let Some(content) = &self.attachment {
            resource.one_object_array("attachments", |attachment| content.write(attachment));
        }
    }
}

/// The observer of every event: this facade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observer {
    pub id: String,
    pub name: String,
}

impl Observer {
    /// `id` empty: a UUID derived from the name, the same at every start.
    pub fn new(id: &str, name: &str) -> Self {
        Observer {
            id: if id.is_empty() {
                derived_id("observer", name)
            } else {
                id.to_ascii_lowercase()
            },
            name: name.to_owned(),
        }
    }

    fn resource(&self) -> Resource<'_> {
        Resource {
            type_uri: IMAGE_SERVICE,
            id: Cow::Borrowed(&self.id),
            name: Some(&self.name),
            address: None,
            attachment: None,
        }
    }
}

/// The event: everything but its id and time, which [`Event::line`] adds.
#[derive(Debug)]
pub struct Event<'a> {
    pub action: &'static str,
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    pub initiator: Resource<'a>,
    pub target: Resource<'a>,
    /// The `X-Openstack-Request-Id` the facade sent Glance.
    pub request_id: &'a str,
}

impl Event<'_> {
    /// The event as one line of JSON, `\n` included, with a new id and the
    /// current time.
    pub fn line(&self, observer: &Observer) -> Vec<u8> {
        // Unique, not secret: no system call per event (`request_id`'s way).
        let id = uuid::Builder::from_random_bytes(crate::request_id::random_bytes()).into_uuid();
        self.line_at(observer, id, OffsetDateTime::now_utc())
    }

    /// Written field by field, as `reshape` writes the Alliance image:
    /// serde's per-field machinery was two thirds of an event's cost.
    fn line_at(&self, observer: &Observer, id: uuid::Uuid, at: OffsetDateTime) -> Vec<u8> {
        // An event is about 1.2 KiB: one allocation, no growing.
        let mut bytes = Vec::with_capacity(LINE_CAPACITY);
        let mut event = JsonObject::new(&mut bytes);
        event.text("typeURI", Some(EVENT_TYPE_URI));
        event.text("eventType", Some("activity"));
        event.text(
            "id",
            Some(id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())),
        );
        event.text("eventTime", Some(&event_time(at)));
        event.text("action", Some(self.action));
        event.text("outcome", Some(self.outcome.name()));
        if let Some(reason) = &self.reason {
            event.object("reason", |object| {
                object.text("reasonType", Some(reason.reason_type));
                object.text("reasonCode", Some(&reason.reason_code));
            });
        }
        event.object("initiator", |resource| self.initiator.write(resource));
        event.object("target", |resource| self.target.write(resource));
        event.object("observer", |resource| observer.resource().write(resource));
        event.one_object_array("attachments", |attachment| {
            attachment.text("typeURI", Some("text/plain"));
            attachment.text("name", Some("request_id"));
            attachment.text("content", Some(self.request_id));
        });
        event.end();
        bytes.push(b'\n');
        bytes
    }
}

/// pycadf's `timestamp.TIME_FORMAT`, `%Y-%m-%dT%H:%M:%S.%f%z`, in UTC:
/// `2026-12-03T10:11:12.000123+0000`, as the request log writes its time.
fn event_time(at: OffsetDateTime) -> String {
    let mut text = String::with_capacity(31);
    // Writing to a String cannot fail.
    let _ = crate::logging::write_utc_time(&mut text, at.into(), "+0000");
    text
}

/// A stable UUID for what has no id of its own (a bearer-secret rule, an
/// address, an observer name): SHA-256 of `kind:value`, as an RFC 9562
/// version 8 UUID. The same input gives the same id on every facade.
pub fn derived_id(kind: &str, value: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"alliance-glance audit\0");
    digest.update(kind.as_bytes());
    digest.update(b":");
    digest.update(value.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.finalize()[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn image(id: &'static str) -> Resource<'static> {
        Resource {
            type_uri: IMAGE,
            id: Cow::Borrowed(id),
            name: Some("cirros"),
            address: None,
            attachment: Some(Content::Image(ImageFacts {
                namespace: "ccsr1",
                project_id: "54915a05b0bb43dcbb218525c426b6a5",
            })),
        }
    }

    #[test]
    fn the_line_has_the_form_pycadf_builds() {
        let names = vec!["gw.example".to_owned()];
        let event = Event {
            action: "delete",
            outcome: Outcome::Success,
            reason: Some(Reason::http(200)),
            initiator: Resource {
                type_uri: ACCOUNT_USER,
                id: Cow::Borrowed("0707"),
                name: Some("gateway"),
                address: Some(IpAddr::from([10, 0, 0, 5])),
                attachment: Some(Content::Caller(CallerFacts {
                    credential: "client_certificate",
                    rule: Some("gateway"),
                    certificate_sha256: Some("0707".into()),
                    certificate_names: &names,
                    presented: vec!["client_certificate"],
                    ..CallerFacts::default()
                })),
            },
            target: image("9be5a037-ef2f-4ac8-9534-28719f0fecaf"),
            request_id: "req-11111111-2222-4333-8444-555555555555",
        };
        let observer = Observer::new("", "alliance-glance");
        let id = uuid::Uuid::from_u128(0x1234);
        let at = time::macros::datetime!(2026-12-03 10:11:12.000123 UTC);
        let line = event.line_at(&observer, id, at);
        assert_eq!(line.last(), Some(&b'\n'));
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            value,
            json!({
                "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
                "eventType": "activity",
                "id": "00000000-0000-0000-0000-000000001234",
                "eventTime": "2026-12-03T10:11:12.000123+0000",
                "action": "delete",
                "outcome": "success",
                "reason": {"reasonType": "HTTP", "reasonCode": "200"},
                "initiator": {
                    "typeURI": "service/security/account/user", "id": "0707", "name": "gateway",
                    "host": {"address": "10.0.0.5"},
                    "attachments": [{"typeURI": "application/json", "name": "caller", "content": {
                        "credential": "client_certificate", "rule": "gateway",
                        "certificate_sha256": "0707", "certificate_names": ["gw.example"],
                        "presented": ["client_certificate"]}}]
                },
                "target": {
                    "typeURI": "data/image", "id": "9be5a037-ef2f-4ac8-9534-28719f0fecaf", "name": "cirros",
                    "attachments": [{"typeURI": "application/json", "name": "image", "content": {
                        "namespace": "ccsr1", "project_id": "54915a05b0bb43dcbb218525c426b6a5"}}]
                },
                "observer": {"typeURI": "service/storage/image", "id": observer.id, "name": "alliance-glance"},
                "attachments": [{"typeURI": "text/plain", "name": "request_id",
                    "content": "req-11111111-2222-4333-8444-555555555555"}]
            })
        );
        assert_eq!(line.iter().filter(|byte| **byte == b'\n').count(), 1, "one line");
    }

    #[test]
    fn times_have_pycadfs_format() {
        assert_eq!(
            event_time(time::macros::datetime!(2027-01-05 03:04:05 UTC)),
            "2027-01-05T03:04:05.000000+0000"
        );
        assert_eq!(
            event_time(time::macros::datetime!(2026-12-31 23:59:59.999999 +02:00)),
            "2026-12-31T21:59:59.999999+0000"
        );
    }

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(Outcome::of_status(201), Outcome::Success);
        assert_eq!(Outcome::of_status(404), Outcome::Failure);
        assert_eq!(Outcome::of_status(503), Outcome::Failure);
        assert_eq!(Outcome::of_status(0), Outcome::Unknown);
    }

    #[test]
    fn derived_ids_are_stable_uuids() {
        let id = derived_id("address", "10.0.0.5");
        assert_eq!(id, derived_id("address", "10.0.0.5"));
        assert_ne!(id, derived_id("address", "10.0.0.6"));
        assert_ne!(id, derived_id("bearer_secret", "10.0.0.5"));
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(Observer::new("", "a").id, Observer::new("", "a").id);
        assert_eq!(
            Observer::new("0B6C4A8E-2F7D-4C1B-9A3E-5D8F7E6C4B2A", "a").id,
            "0b6c4a8e-2f7d-4c1b-9a3e-5d8f7e6c4b2a"
        );
    }
}
