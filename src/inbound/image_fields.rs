//! The fields of `{"image": {...}}` on create and update, validated into
//! typed values.
//!
//! Create accepts the documented `name, disk_format, container_format,
//! copy_from, min_ram, min_disk`, plus `visibility, protected, tags`, v1's
//! `is_public` and a client-chosen `id`. Update accepts the same minus
//! `copy_from` and `id`. Read-only fields and unknown fields are refused by
//! name.

use serde_json::{Map, Value};
use url::Url;

use crate::copy_from::guard;
use crate::error::AllianceError;
use crate::ids;

/// Fields Glance computes; a client may not set them.
const READ_ONLY: &[&str] = &[
    "status",
    "size",
    "checksum",
    "owner",
    "created_at",
    "updated_at",
    "virtual_size",
    "file",
    "schema",
];

const CREATE_FIELDS: &str =
    "name, disk_format, container_format, copy_from, min_ram, min_disk, visibility, protected, tags, is_public, id";
const UPDATE_FIELDS: &str =
    "name, disk_format, container_format, min_ram, min_disk, visibility, protected, tags, is_public";

/// Glance stores names and tags in 255-character columns.
const MAX_TEXT: usize = 255;
/// Longest `copy_from` URL accepted.
const MAX_URL: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
    Shared,
    Community,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            "shared" => Some(Visibility::Shared),
            "community" => Some(Visibility::Community),
            _ => None,
        }
    }
}

/// Writable image fields shared by create and update. `None` = not given;
/// `Some(None)` for the text fields = an explicit JSON null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFields {
    pub name: Option<Option<String>>,
    pub disk_format: Option<Option<String>>,
    pub container_format: Option<Option<String>>,
    pub min_ram: Option<u32>,
    pub min_disk: Option<u32>,
    /// From `visibility` or v1's `is_public`.
    pub visibility: Option<Visibility>,
    pub protected: Option<bool>,
    pub tags: Option<Vec<String>>,
}

impl ImageFields {
    pub fn is_empty(&self) -> bool {
        *self == ImageFields::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateImage {
    /// A client-chosen id, so that a retried create cannot make a duplicate.
    pub id: Option<String>,
    pub fields: ImageFields,
    pub copy_from: Option<Url>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateImage {
    /// Never empty.
    pub fields: ImageFields,
}

impl CreateImage {
    pub fn from_json(image: Map<String, Value>) -> Result<Self, AllianceError> {
        let mut fields = FieldsBuilder::default();
        let mut id = None;
        let mut copy_from = None;
        for (key, value) in image {
            match key.as_str() {
                "id" => id = Some(parse_image_id(&value)?),
                "copy_from" => copy_from = Some(parse_copy_from(&value)?),
                _ => fields.accept(&key, value, CREATE_FIELDS)?,
            }
        }
        let fields = fields.finish()?;
        if copy_from.is_some() {
            let missing = |field: &Option<Option<String>>| !matches!(field, Some(Some(_)));
            if missing(&fields.disk_format) || missing(&fields.container_format) {
                return Err(AllianceError::bad_request(
                    "copy_from needs disk_format and container_format",
                ));
            }
        }
        Ok(CreateImage { id, fields, copy_from })
    }
}

impl UpdateImage {
    pub fn from_json(image: Map<String, Value>) -> Result<Self, AllianceError> {
        let mut fields = FieldsBuilder::default();
        for (key, value) in image {
            match key.as_str() {
                "copy_from" => {
                    return Err(AllianceError::bad_request(
                        "copy_from can only be given when an image is created",
                    ));
                }
                "id" => return Err(read_only("id")),
                _ => fields.accept(&key, value, UPDATE_FIELDS)?,
            }
        }
        let fields = fields.finish()?;
        if fields.is_empty() {
            return Err(AllianceError::bad_request(format!(
                "nothing to update: give at least one of {UPDATE_FIELDS}"
            )));
        }
        Ok(UpdateImage { fields })
    }
}

#[derive(Default)]
struct FieldsBuilder {
    fields: ImageFields,
    visibility: Option<Visibility>,
    is_public: Option<bool>,
}

impl FieldsBuilder {
    fn accept(&mut self, key: &str, value: Value, allowed: &str) -> Result<(), AllianceError> {
        let fields = &mut self.fields;
        match key {
            "name" => fields.name = Some(optional_text(key, value)?),
            "disk_format" => fields.disk_format = Some(optional_text(key, value)?),
            "container_format" => fields.container_format = Some(optional_text(key, value)?),
            "min_ram" => fields.min_ram = Some(non_negative_integer(key, &value)?),
            "min_disk" => fields.min_disk = Some(non_negative_integer(key, &value)?),
            "protected" => fields.protected = Some(boolean(key, &value)?),
            "is_public" => self.is_public = Some(boolean(key, &value)?),
            "visibility" => {
                let visibility = value.as_str().and_then(Visibility::parse).ok_or_else(|| {
                    AllianceError::bad_request("visibility must be one of public, private, shared, community")
                })?;
                self.visibility = Some(visibility);
            }
            "tags" => fields.tags = Some(tags(value)?),
            _ if READ_ONLY.contains(&key) => return Err(read_only(key)),
            _ => {
                return Err(AllianceError::bad_request(format!(
                    "unknown field \"{key}\"; allowed fields: {allowed}"
                )));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ImageFields, AllianceError> {
        let from_is_public = self.is_public.map(|public| {
            if public {
                Visibility::Public
            } else {
                Visibility::Private
            }
        });
        self.fields.visibility = match (self.visibility, from_is_public) {
            (Some(visibility), Some(implied)) if visibility != implied => {
                return Err(AllianceError::bad_request(format!(
                    "is_public and visibility disagree (is_public implies \"{}\")",
                    implied.as_str()
                )));
            }
            (visibility, implied) => visibility.or(implied),
        };
        Ok(self.fields)
    }
}

fn read_only(key: &str) -> AllianceError {
    AllianceError::bad_request(format!("field \"{key}\" is read-only"))
}

fn optional_text(key: &str, value: Value) -> Result<Option<String>, AllianceError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if !storable(&text) => Err(beyond_bmp(key)),
        Value::String(text) if text.chars().count() <= MAX_TEXT => Ok(Some(text)),
        Value::String(_) => Err(AllianceError::bad_request(format!(
            "{key} must be at most {MAX_TEXT} characters"
        ))),
        _ => Err(AllianceError::bad_request(format!("{key} must be a string or null"))),
    }
}

/// Glance refuses to store characters outside the Basic Multilingual Plane
/// (4-byte UTF-8: its `no_4byte_params`, for MySQL's `utf8` columns), on
/// any database; the facade refuses them first, the same on every cloud.
fn storable(text: &str) -> bool {
    text.chars().all(|c| u32::from(c) <= 0xFFFF)
}

fn beyond_bmp(key: &str) -> AllianceError {
    AllianceError::bad_request(format!(
        "{key} must not contain characters outside the Basic Multilingual Plane (4-byte UTF-8), which Glance cannot store"
    ))
}

/// `min_ram` and `min_disk`: a non-negative integer that fits Glance's
/// 32-bit column; an integer written as a string of digits (`"512"`) is
/// accepted, as old clients send it that way (no sign, no spaces: what
/// docs/openapi.yaml describes).
fn non_negative_integer(key: &str, value: &Value) -> Result<u32, AllianceError> {
    let parsed = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse::<u64>().ok(),
        _ => None,
    };
    parsed
        .filter(|number| *number <= i32::MAX as u64)
        .and_then(|number| u32::try_from(number).ok())
        .ok_or_else(|| {
            AllianceError::bad_request(format!(
                "{key} must be a non-negative integer no larger than {}",
                i32::MAX
            ))
        })
}

fn boolean(key: &str, value: &Value) -> Result<bool, AllianceError> {
    value
        .as_bool()
        .ok_or_else(|| AllianceError::bad_request(format!("{key} must be true or false")))
}

fn tags(value: Value) -> Result<Vec<String>, AllianceError> {
    let invalid = || {
        AllianceError::bad_request(format!(
            "tags must be a list of strings of at most {MAX_TEXT} characters"
        ))
    };
    let Value::Array(items) = value else {
        return Err(invalid());
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(tag) if !storable(&tag) => Err(beyond_bmp("tags")),
            Value::String(tag) if !tag.is_empty() && tag.chars().count() <= MAX_TEXT => Ok(tag),
            _ => Err(invalid()),
        })
        .collect()
}

fn parse_image_id(value: &Value) -> Result<String, AllianceError> {
    value
        .as_str()
        .filter(|id| ids::is_dashed_uuid(id))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| AllianceError::bad_request("id must be a dashed UUID"))
}

/// Shape only: an absolute http(s) URL with a host. Where it may point is
/// the copy_from guard's business.
fn parse_copy_from(value: &Value) -> Result<Url, AllianceError> {
    let text = value
        .as_str()
        .ok_or_else(|| AllianceError::bad_request("copy_from must be a string URL"))?;
    if text.len() > MAX_URL {
        return Err(AllianceError::bad_request(format!(
            "copy_from must be at most {MAX_URL} characters"
        )));
    }
    // The guard's parser also refuses an empty user-info `@`, which
    // `Url::parse` silently drops.
    let url = guard::parse_url(text).map_err(|rejection| AllianceError::bad_request(rejection.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(AllianceError::bad_request(
            "copy_from must be an http or https URL with a host",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    fn create(value: Value) -> Result<CreateImage, AllianceError> {
        CreateImage::from_json(object(value))
    }

    fn update(value: Value) -> Result<UpdateImage, AllianceError> {
        UpdateImage::from_json(object(value))
    }

    #[test]
    fn the_documented_create_request_parses() {
        let image = create(json!({
            "name": "remote_image", "disk_format": "qcow2", "container_format": "bare",
            "copy_from": "http://cloudhyd.com/openstack/images/cirros-0.3.0-i386-disk.img",
            "min_ram": 1, "min_disk": 500
        }))
        .unwrap();
        assert_eq!(image.fields.name, Some(Some("remote_image".into())));
        assert_eq!((image.fields.min_ram, image.fields.min_disk), (Some(1), Some(500)));
        assert_eq!(image.copy_from.unwrap().host_str(), Some("cloudhyd.com"));
        assert_eq!(image.id, None);
    }

    #[test]
    fn integer_strings_and_is_public_are_accepted() {
        let image = create(json!({"min_ram": "512", "is_public": true, "tags": ["a"], "protected": true})).unwrap();
        assert_eq!(image.fields.min_ram, Some(512));
        assert_eq!(image.fields.visibility, Some(Visibility::Public));
        let image = create(json!({"is_public": false, "visibility": "private"})).unwrap();
        assert_eq!(image.fields.visibility, Some(Visibility::Private));
    }

    #[test]
    fn create_refusals_name_the_field() {
        let cases = [
            (json!({"status": "active"}), "\"status\" is read-only"),
            (json!({"owner": "x"}), "\"owner\" is read-only"),
            (json!({"foo": 1}), "unknown field \"foo\"; allowed fields: name,"),
            (json!({"min_ram": -1}), "min_ram must be a non-negative integer"),
            (json!({"min_disk": 1.5}), "min_disk must be a non-negative integer"),
            (json!({"min_ram": "12a"}), "min_ram must be"),
            (json!({"min_ram": " 12"}), "min_ram must be"),
            (json!({"min_disk": "+12"}), "min_disk must be"),
            (
                json!({"name": "cirros \u{1F600}"}),
                "name must not contain characters outside",
            ),
            (
                json!({"tags": ["ok", "\u{10000}"]}),
                "tags must not contain characters outside",
            ),
            (json!({"min_ram": 4_294_967_296u64}), "min_ram must be"),
            (json!({"min_ram": null}), "min_ram must be"),
            (json!({"name": 5}), "name must be a string or null"),
            (json!({"name": "x".repeat(256)}), "at most 255"),
            (json!({"visibility": "everyone"}), "visibility must be one of"),
            (json!({"protected": "yes"}), "protected must be true or false"),
            (json!({"tags": "a"}), "tags must be a list"),
            (json!({"tags": [1]}), "tags must be a list"),
            (json!({"id": "abc"}), "id must be a dashed UUID"),
            (json!({"is_public": true, "visibility": "private"}), "disagree"),
            (
                json!({"copy_from": "ftp://x/y", "disk_format": "raw", "container_format": "bare"}),
                "http or https",
            ),
            (
                json!({"copy_from": "not a url", "disk_format": "raw", "container_format": "bare"}),
                "not a valid URL",
            ),
            (json!({"copy_from": 3}), "must be a string URL"),
            (
                json!({"copy_from": "http://x/y", "disk_format": "raw"}),
                "needs disk_format and container_format",
            ),
        ];
        for (body, expected) in cases {
            let error = create(body.clone()).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(error.message.contains(expected), "{body}: {}", error.message);
        }
    }

    #[test]
    fn update_rules() {
        let image = update(json!({"name": "ubuntu_image", "disk_format": "ari", "min_ram": 1})).unwrap();
        assert_eq!(image.fields.disk_format, Some(Some("ari".into())));
        let cases = [
            (json!({}), "nothing to update"),
            (
                json!({"copy_from": "http://x/y"}),
                "only be given when an image is created",
            ),
            (
                json!({"id": "75da8211-b8d3-4329-a12b-953e7db4690a"}),
                "\"id\" is read-only",
            ),
            (json!({"size": 1}), "\"size\" is read-only"),
            (json!({"bogus": 1}), "allowed fields: name, disk_format"),
        ];
        for (body, expected) in cases {
            let error = update(body.clone()).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(error.message.contains(expected), "{body}: {}", error.message);
        }
        assert!(!UPDATE_FIELDS.contains("copy_from"));
    }
}
