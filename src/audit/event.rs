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
use std::net::IpAddr;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// `cadftype.CADF_VERSION_1_0_0 + 'event'`.
pub const EVENT_TYPE_URI: &str = "http://schemas.dmtf.org/cloud/audit/1.0/event";

/// CADF resource types (`pycadf.cadftaxonomy`).
pub const ACCOUNT_USER: &str = "service/security/account/user";
pub const IMAGE: &str = "data/image";
pub const IMAGE_SERVICE: &str = "service/storage/image";

/// The `id` of a resource the facade cannot name (CADF's `unknown`, as
/// keystonemiddleware writes it).
pub const UNKNOWN: &str = "unknown";

/// `Event.outcome`: CADF's outcome taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
}

#[derive(Debug, Serialize)]
pub struct Reason<'a> {
    #[serde(rename = "reasonType")]
    pub reason_type: &'static str,
    #[serde(rename = "reasonCode")]
    pub reason_code: Cow<'a, str>,
}

impl Reason<'_> {
    /// The answer's status, as keystonemiddleware records it.
    pub fn http(status: u16) -> Self {
        Reason {
            reason_type: "HTTP",
            reason_code: Cow::Owned(status.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Host {
    pub address: IpAddr,
}

/// An attachment: pycadf's `Attachment(typeURI, content, name)`.
#[derive(Debug, Serialize)]
pub struct Attachment<'a> {
    #[serde(rename = "typeURI")]
    pub type_uri: &'static str,
    pub name: &'static str,
    pub content: Content<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Content<'a> {
    Text(&'a str),
    Caller(CallerFacts<'a>),
    Image(ImageFacts<'a>),
}

/// Who called, as far as the facade could tell: never a secret or a token.
#[derive(Debug, Default, Serialize)]
pub struct CallerFacts<'a> {
    /// `none` (no `[[callers]]` rules), `unrecognised`, `client_certificate`,
    /// `bearer_secret`, `source_network`, `keystone_token`.
    pub credential: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_sha256: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub certificate_names: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<&'a str>,
    /// What the request carried: `client_certificate`, `bearer_secret`,
    /// `keystone_token` (for a refusal: what was not accepted).
    pub presented: Vec<&'static str>,
}

/// Where an image is: the namespace (cloud) and the environment (project).
#[derive(Debug, Serialize)]
pub struct ImageFacts<'a> {
    pub namespace: &'a str,
    pub project_id: &'a str,
}

/// A CADF resource (`pycadf.resource.Resource`).
#[derive(Debug, Serialize)]
pub struct Resource<'a> {
    #[serde(rename = "typeURI")]
    pub type_uri: &'static str,
    pub id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment<'a>>,
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
            host: None,
            attachments: Vec::new(),
        }
    }
}

/// The event: everything but its id and time, which [`Event::line`] adds.
#[derive(Debug)]
pub struct Event<'a> {
    pub action: &'static str,
    pub outcome: Outcome,
    pub reason: Option<Reason<'a>>,
    pub initiator: Resource<'a>,
    pub target: Resource<'a>,
    /// The `X-Openstack-Request-Id` the facade sent Glance.
    pub request_id: &'a str,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "typeURI")]
    type_uri: &'static str,
    #[serde(rename = "eventType")]
    event_type: &'static str,
    id: String,
    #[serde(rename = "eventTime")]
    event_time: String,
    action: &'static str,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: &'a Option<Reason<'a>>,
    initiator: &'a Resource<'a>,
    target: &'a Resource<'a>,
    observer: Resource<'a>,
    attachments: [Attachment<'a>; 1],
}

impl Event<'_> {
    /// The event as one line of JSON, `\n` included, with a new id and the
    /// current time.
    pub fn line(&self, observer: &Observer) -> Vec<u8> {
        self.line_at(observer, uuid::Uuid::new_v4(), OffsetDateTime::now_utc())
    }

    fn line_at(&self, observer: &Observer, id: uuid::Uuid, at: OffsetDateTime) -> Vec<u8> {
        let line = Line {
            type_uri: EVENT_TYPE_URI,
            event_type: "activity",
            id: id.hyphenated().to_string(),
            event_time: event_time(at),
            action: self.action,
            outcome: self.outcome,
            reason: &self.reason,
            initiator: &self.initiator,
            target: &self.target,
            observer: observer.resource(),
            attachments: [Attachment {
                type_uri: "text/plain",
                name: "request_id",
                content: Content::Text(self.request_id),
            }],
        };
        // Strings, numbers and addresses: serializing cannot fail.
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// pycadf's `timestamp.TIME_FORMAT`, `%Y-%m-%dT%H:%M:%S.%f%z`, in UTC.
fn event_time(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000");
    at.format(&format).unwrap_or_default()
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
            host: None,
            attachments: vec![Attachment {
                type_uri: "application/json",
                name: "image",
                content: Content::Image(ImageFacts {
                    namespace: "ccsr1",
                    project_id: "54915a05b0bb43dcbb218525c426b6a5",
                }),
            }],
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
                host: Some(Host {
                    address: IpAddr::from([10, 0, 0, 5]),
                }),
                attachments: vec![Attachment {
                    type_uri: "application/json",
                    name: "caller",
                    content: Content::Caller(CallerFacts {
                        credential: "client_certificate",
                        rule: Some("gateway"),
                        certificate_sha256: Some("0707".into()),
                        certificate_names: &names,
                        presented: vec!["client_certificate"],
                        ..CallerFacts::default()
                    }),
                }],
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
