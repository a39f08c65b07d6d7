//! The fields of `{"image": {...}}` on create and update, validated by the
//! field table (`reshape::fields`): each field a client gives is checked by
//! its row's input rule and kept as the value Glance takes. A read-only
//! field is refused by name, a field of the create only is refused on
//! update, any other key is refused naming the fields allowed.

use serde_json::{Map, Value};
use url::Url;

use crate::copy_from::guard;
use crate::error::AllianceError;
use crate::ids;
use crate::reshape::fields::{self, ALIASES, FIELDS, Field, Input, Writable};

/// Glance stores names and tags in 255-character columns.
const MAX_TEXT: usize = 255;
/// Longest `copy_from` URL accepted.
const MAX_URL: usize = 2048;
/// The values of `visibility`.
const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];

/// The writable fields a client gave, validated, as Glance takes them
/// (in the table's order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFields {
    values: Vec<(&'static Field, Value)>,
}

impl ImageFields {
    /// Values already validated, in the table's order (`read` builds them
    /// for the facade).
    #[cfg(test)]
    pub fn new(values: Vec<(&'static Field, Value)>) -> Self {
        ImageFields { values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each field given and its value.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Field, &Value)> {
        self.values.iter().map(|(field, value)| (*field, value))
    }

    /// The value given for the field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|(field, _)| field.name == name)
            .map(|(_, value)| value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateImage {
    pub fields: ImageFields,
    /// The `copy_from` URL, parsed (it is also among the fields).
    pub copy_from: Option<Url>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateImage {
    /// Never empty.
    pub fields: ImageFields,
}

impl CreateImage {
    pub fn from_json(image: Map<String, Value>) -> Result<Self, AllianceError> {
        let (fields, copy_from) = read(image, true)?;
        if copy_from.is_some() {
            let missing = |name| !fields.get(name).is_some_and(Value::is_string);
            if missing("disk_format") || missing("container_format") {
                return Err(AllianceError::bad_request(
                    "copy_from needs disk_format and container_format",
                ));
            }
        }
        Ok(CreateImage { fields, copy_from })
    }
}

impl UpdateImage {
    pub fn from_json(image: Map<String, Value>) -> Result<Self, AllianceError> {
        let (fields, _) = read(image, false)?;
        if fields.is_empty() {
            return Err(AllianceError::bad_request(format!(
                "nothing to update: give at least one of {}",
                allowed(false)
            )));
        }
        Ok(UpdateImage { fields })
    }
}

/// The fields a client may give on create (`true`) or update, as the
/// refusals list them: the table's, then the aliases.
pub fn allowed(create: bool) -> String {
    fields::writable_names(create).collect::<Vec<_>>().join(", ")
}

/// Every key of `image` checked and its value validated; the parsed URL of
/// an [`Input::Url`] field.
fn read(image: Map<String, Value>, create: bool) -> Result<(ImageFields, Option<Url>), AllianceError> {
    let mut given: Vec<(&'static Field, Value)> = Vec::with_capacity(image.len());
    let mut implied: Vec<(&'static str, &'static Field, Value)> = Vec::new();
    let mut url = None;
    for (key, value) in image {
        if let Some(alias) = ALIASES.iter().find(|alias| alias.name == key) {
            let field = fields::field(alias.field).ok_or_else(|| unknown(&key, create))?;
            implied.push((alias.name, field, validate(alias.name, alias.input, value, &mut url)?));
            continue;
        }
        let field = fields::field(&key)
            .filter(|field| field.is_alliance())
            .ok_or_else(|| unknown(&key, create))?;
        if !field.writable_on(create) {
            return Err(if field.writable == Writable::OnCreate {
                AllianceError::bad_request(format!("{key} can only be given when an image is created"))
            } else {
                read_only(&key)
            });
        }
        given.push((field, validate(field.name, field.input, value, &mut url)?));
    }
    // An alias gives its field, and must agree with it when both are given.
    for (alias, field, value) in implied {
        match given.iter().find(|(given, _)| given.name == field.name) {
            Some((_, stated)) if *stated != value => {
                return Err(AllianceError::bad_request(format!(
                    "{alias} and {} disagree ({alias} implies {value})",
                    field.name
                )));
            }
            Some(_) => {}
            None => given.push((field, value)),
        }
    }
    // The table's order: the create body and the patch follow it.
    given.sort_by_key(|(field, _)| FIELDS.iter().position(|row| row.name == field.name));
    Ok((ImageFields { values: given }, url))
}

fn read_only(key: &str) -> AllianceError {
    AllianceError::bad_request(format!("field \"{key}\" is read-only"))
}

fn unknown(key: &str, create: bool) -> AllianceError {
    AllianceError::bad_request(format!("unknown field \"{key}\"; allowed fields: {}", allowed(create)))
}

/// `value` checked by `input`, as Glance takes it. `url` receives the
/// parsed URL of a [`Input::Url`] field.
fn validate(key: &str, input: Input, value: Value, url: &mut Option<Url>) -> Result<Value, AllianceError> {
    match input {
        Input::ReadOnly => Err(read_only(key)),
        Input::Text => optional_text(key, value).map(|text| text.map_or(Value::Null, Value::String)),
        Input::Count => non_negative_integer(key, &value).map(Value::from),
        Input::Visibility => value
            .as_str()
            .filter(|visibility| VISIBILITIES.contains(visibility))
            .map(Value::from)
            .ok_or_else(|| {
                AllianceError::bad_request(format!("visibility must be one of {}", VISIBILITIES.join(", ")))
            }),
        Input::IsPublic => boolean(key, &value).map(|public| Value::from(if public { "public" } else { "private" })),
        Input::Flag => boolean(key, &value).map(Value::Bool),
        Input::Tags => tags(value).map(Value::from),
        Input::Uuid => value
            .as_str()
            .filter(|id| ids::is_dashed_uuid(id))
            .map(|id| Value::from(id.to_ascii_lowercase()))
            .ok_or_else(|| AllianceError::bad_request(format!("{key} must be a dashed UUID"))),
        Input::Url => {
            let parsed = parse_url(key, &value)?;
            let text = Value::from(parsed.as_str());
            *url = Some(parsed);
            Ok(text)
        }
    }
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

/// Shape only: an absolute http(s) URL with a host. Where it may point is
/// the copy_from guard's business.
fn parse_url(key: &str, value: &Value) -> Result<Url, AllianceError> {
    let text = value
        .as_str()
        .ok_or_else(|| AllianceError::bad_request(format!("{key} must be a string URL")))?;
    if text.len() > MAX_URL {
        return Err(AllianceError::bad_request(format!(
            "{key} must be at most {MAX_URL} characters"
        )));
    }
    // The guard's parser also refuses an empty user-info `@`, which
    // `Url::parse` silently drops.
    let url = guard::parse_url(text).map_err(|rejection| AllianceError::bad_request(rejection.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(AllianceError::bad_request(format!(
            "{key} must be an http or https URL with a host"
        )));
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
        assert_eq!(image.fields.get("name"), Some(&json!("remote_image")));
        assert_eq!(
            (image.fields.get("min_ram"), image.fields.get("min_disk")),
            (Some(&json!(1)), Some(&json!(500)))
        );
        assert_eq!(image.copy_from.unwrap().host_str(), Some("cloudhyd.com"));
        assert_eq!(image.fields.get("id"), None);
        // The table's order, whatever the client's.
        let names: Vec<&str> = image.fields.iter().map(|(field, _)| field.name).collect();
        assert_eq!(
            names,
            [
                "name",
                "container_format",
                "min_ram",
                "disk_format",
                "copy_from",
                "min_disk"
            ]
        );
    }

    #[test]
    fn integer_strings_and_is_public_are_accepted() {
        let image = create(json!({"min_ram": "512", "is_public": true, "tags": ["a"], "protected": true})).unwrap();
        assert_eq!(image.fields.get("min_ram"), Some(&json!(512)));
        assert_eq!(image.fields.get("visibility"), Some(&json!("public")));
        let image = create(json!({"is_public": false, "visibility": "private"})).unwrap();
        assert_eq!(image.fields.get("visibility"), Some(&json!("private")));
        let id = create(json!({"id": "75DA8211-b8d3-4329-a12b-953e7db4690a"})).unwrap();
        assert_eq!(
            id.fields.get("id"),
            Some(&json!("75da8211-b8d3-4329-a12b-953e7db4690a"))
        );
    }

    #[test]
    fn create_refusals_name_the_field() {
        let cases = [
            (json!({"status": "active"}), "\"status\" is read-only"),
            (json!({"owner": "x"}), "\"owner\" is read-only"),
            (
                json!({"foo": 1}),
                "unknown field \"foo\"; allowed fields: name, tags, container_format, min_ram, disk_format, visibility, copy_from, protected, min_disk, id, is_public",
            ),
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
            (
                json!({"is_public": true, "visibility": "private"}),
                "is_public and visibility disagree (is_public implies \"public\")",
            ),
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
        assert_eq!(image.fields.get("disk_format"), Some(&json!("ari")));
        let cases = [
            (json!({}), "nothing to update"),
            (
                json!({"copy_from": "http://x/y"}),
                "only be given when an image is created",
            ),
            (
                json!({"id": "75da8211-b8d3-4329-a12b-953e7db4690a"}),
                "id can only be given when an image is created",
            ),
            (json!({"size": 1}), "\"size\" is read-only"),
            (
                json!({"bogus": 1}),
                "allowed fields: name, tags, container_format, min_ram, disk_format, visibility, protected, min_disk, is_public",
            ),
        ];
        for (body, expected) in cases {
            let error = update(body.clone()).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(error.message.contains(expected), "{body}: {}", error.message);
        }
    }
}
