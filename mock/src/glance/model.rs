//! Images, members and import tasks, and their JSON views.

use crate::pyfmt::string_literal as json_string;
use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// Glance's image states (`glance.domain.Image.valid_state_targets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Queued,
    Saving,
    Active,
    Uploading,
    Importing,
    Deactivated,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Active => "active",
            Status::Uploading => "uploading",
            Status::Importing => "importing",
            Status::Deactivated => "deactivated",
        }
    }

    /// Whether the domain model allows moving from `self` to `to`.
    pub(crate) fn can_become(self, to: Status) -> bool {
        use Status::*;
        match self {
            Queued => matches!(to, Saving | Uploading | Importing | Active),
            Saving => matches!(to, Active | Queued),
            Uploading => matches!(to, Importing | Queued),
            Importing => matches!(to, Active | Queued),
            Active => matches!(to, Deactivated),
            Deactivated => matches!(to, Active),
        }
    }
}

/// Image visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    Public,
    Community,
    Shared,
    Private,
}

impl Visibility {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Community => "community",
            Visibility::Shared => "shared",
            Visibility::Private => "private",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "community" => Some(Visibility::Community),
            "shared" => Some(Visibility::Shared),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// A project's membership of a shared image.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub member_id: String,
    pub status: &'static str,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Member {
    pub(crate) fn to_json(&self, image_id: &str) -> Value {
        json!({
            "member_id": self.member_id,
            "image_id": image_id,
            "status": self.status,
            "created_at": isotime(self.created_at),
            "updated_at": isotime(self.updated_at),
            "schema": "/v2/schemas/member",
        })
    }
}

/// An image record. `seq` orders images by creation, standing in for Glance's
/// microsecond `created_at` that many images share at second resolution.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub seq: u64,
    pub id: String,
    pub name: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub visibility: Visibility,
    pub size: Option<u64>,
    pub virtual_size: Option<u64>,
    pub status: Status,
    pub checksum: Option<String>,
    pub protected: bool,
    pub min_ram: i64,
    pub min_disk: i64,
    pub owner: Option<String>,
    pub os_hidden: bool,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// A set that keeps insertion order.
    pub tags: Vec<String>,
    /// Custom properties in insertion order; values are strings (the schema says so).
    pub properties: Vec<(String, String)>,
    /// `Some("fs1")` once the image has a location in the store.
    pub stores: Option<String>,
    pub data: Option<Bytes>,
    /// Data uploaded to `/stage`, waiting for a `glance-direct` import.
    pub staged: Option<Bytes>,
    pub members: Vec<Member>,
}

impl Image {
    /// A queued image with Glance's defaults.
    pub(crate) fn new(id: String, owner: Option<String>, now: OffsetDateTime) -> Image {
        Image {
            seq: 0,
            id,
            name: None,
            disk_format: None,
            container_format: None,
            visibility: Visibility::Shared,
            size: None,
            virtual_size: None,
            status: Status::Queued,
            checksum: None,
            protected: false,
            min_ram: 0,
            min_disk: 0,
            owner,
            os_hidden: false,
            os_hash_algo: None,
            os_hash_value: None,
            created_at: now,
            updated_at: now,
            tags: Vec::new(),
            properties: Vec::new(),
            stores: None,
            data: None,
            staged: None,
            members: Vec::new(),
        }
    }

    pub(crate) fn property(&self, key: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets a custom property, keeping the position of an existing key.
    pub(crate) fn set_property(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.properties.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.properties.push((key.to_owned(), value)),
        }
    }

    pub(crate) fn remove_property(&mut self, key: &str) -> bool {
        let before = self.properties.len();
        self.properties.retain(|(k, _)| k != key);
        self.properties.len() != before
    }

    /// Adds tags, ignoring duplicates (Glance keeps tags in a set).
    pub(crate) fn add_tags<'a>(&mut self, tags: impl IntoIterator<Item = &'a str>) {
        for tag in tags {
            if !self.tags.iter().any(|t| t == tag) {
                self.tags.push(tag.to_owned());
            }
        }
    }

    /// Moves back to `queued`, which clears the sizes as the domain model does.
    pub(crate) fn requeue(&mut self) {
        self.status = Status::Queued;
        self.size = None;
        self.virtual_size = None;
    }

    /// The member entry of `project`, if the image is shared with it.
    pub(crate) fn member(&self, project: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == project)
    }

    /// The image document of the images API, keys in Glance's order, serialized as
    /// Python's `json.dumps` does. Written directly: listings of thousands of images
    /// are the mock's hot path.
    pub(crate) fn write_json(&self, out: &mut String) {
        let text = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_owned(), json_string);
        let number = |v: Option<u64>| v.map_or_else(|| "null".to_owned(), |n| n.to_string());
        let tags: Vec<String> = self.tags.iter().map(|t| json_string(t)).collect();
        let core: [(&str, String); 22] = [
            ("name", text(&self.name)),
            ("disk_format", text(&self.disk_format)),
            ("container_format", text(&self.container_format)),
            ("visibility", json_string(self.visibility.as_str())),
            ("size", number(self.size)),
            ("virtual_size", number(self.virtual_size)),
            ("status", json_string(self.status.as_str())),
            ("checksum", text(&self.checksum)),
            ("protected", self.protected.to_string()),
            ("min_ram", self.min_ram.to_string()),
            ("min_disk", self.min_disk.to_string()),
            ("owner", text(&self.owner)),
            ("os_hidden", self.os_hidden.to_string()),
            ("os_hash_algo", text(&self.os_hash_algo)),
            ("os_hash_value", text(&self.os_hash_value)),
            ("id", json_string(&self.id)),
            ("created_at", json_string(&isotime(self.created_at))),
            ("updated_at", json_string(&isotime(self.updated_at))),
            ("tags", format!("[{}]", tags.join(", "))),
            ("self", json_string(&format!("/v2/images/{}", self.id))),
            ("file", json_string(&format!("/v2/images/{}/file", self.id))),
            ("schema", json_string("/v2/schemas/image")),
        ];
        let mut entries: Vec<(&str, &str)> = Vec::with_capacity(self.properties.len() + 23);
        let rendered: Vec<String> = self.properties.iter().map(|(_, v)| json_string(v)).collect();
        for ((key, _), value) in self.properties.iter().zip(&rendered) {
            // A custom key named like a core key keeps its place with the core value,
            // as a Python dict update would.
            let value = core
                .iter()
                .find(|(k, _)| k == key)
                .map_or(value.as_str(), |(_, v)| v.as_str());
            entries.push((key, value));
        }
        for (key, value) in &core {
            if !self.properties.iter().any(|(k, _)| k == key) {
                entries.push((key, value));
            }
        }
        let stores = self.stores.as_deref().map(json_string);
        if let Some(stores) = &stores {
            entries.push(("stores", stores));
        }
        out.push('{');
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&json_string(key));
            out.push_str(": ");
            out.push_str(value);
        }
        out.push('}');
    }

    /// The image document as a string.
    pub(crate) fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(700);
        self.write_json(&mut out);
        out
    }
}

/// State of an import task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    Processing,
    Success,
    Failure,
}

/// An `api_image_import` task as `GET /v2/images/{id}/tasks` shows it.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub id: String,
    pub image_id: String,
    pub owner: Option<String>,
    pub user_id: Option<String>,
    pub request_id: String,
    pub status: TaskStatus,
    pub input: Value,
    pub result: Option<Value>,
    pub message: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

/// Glance keeps finished tasks for `task_time_to_live` (48 hours).
const TASK_TIME_TO_LIVE: time::Duration = time::Duration::hours(48);

impl Task {
    /// Records the outcome, as `Task.succeed` / `Task.fail` do.
    pub(crate) fn finish(&mut self, status: TaskStatus, now: OffsetDateTime) {
        self.status = status;
        self.updated_at = now;
        self.expires_at = Some(now + TASK_TIME_TO_LIVE);
        match status {
            TaskStatus::Success => self.result = Some(json!({"image_id": self.image_id})),
            TaskStatus::Failure => self.message = "Task failed due to Internal Error".to_owned(),
            TaskStatus::Processing => {}
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let status = match self.status {
            TaskStatus::Processing => "processing",
            TaskStatus::Success => "success",
            TaskStatus::Failure => "failure",
        };
        json!({
            "id": self.id,
            "type": "api_image_import",
            "status": status,
            "owner": self.owner,
            "expires_at": self.expires_at.map(python_isoformat),
            "created_at": python_isoformat(self.created_at),
            "updated_at": python_isoformat(self.updated_at),
            "deleted_at": null,
            "deleted": false,
            "image_id": self.image_id,
            "request_id": self.request_id,
            "user_id": self.user_id,
            "input": self.input,
            "result": self.result,
            "message": self.message,
        })
    }
}

/// `oslo_utils.timeutils.isotime`: `2026-11-26T23:04:26Z`.
pub(crate) fn isotime(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Python's `datetime.isoformat()` of a naive UTC time, as tasks are serialized.
fn python_isoformat(t: OffsetDateTime) -> String {
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let base = t.format(&seconds).unwrap_or_default();
    match t.microsecond() {
        0 => base,
        micros => format!("{base}.{micros:06}"),
    }
}

/// The current time, truncated to microseconds like Glance's database columns.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.microsecond() * 1000).unwrap_or(now)
}
