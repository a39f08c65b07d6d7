//! `PATCH /v2/images/{id}`: Glance's JSON-patch dialects (v2.1 draft-10 style and the
//! older v2.0 draft-4 style) with the same validation order and texts (transcripts
//! 072-103 and 111-113).

use super::auth::{Rule, Target, can_see, enforce_on_image, enforce_visibility};
use super::call::{Call, no_image, visible};
use super::errors::ApiError;
use super::images::{
    check_database_integers, check_minimum, is_reserved, refuse_four_byte_tags, refuse_four_byte_values, string_set,
    with_numbers_as_sent,
};
use super::model::{Image, Status, Visibility, now};
use super::reply::Reply;
use super::schema;
use crate::pyfmt;
use serde_json::{Map, Value};

const V20_MEDIA_TYPE: &str = "application/openstack-images-v2.0-json-patch";
const V21_MEDIA_TYPE: &str = "application/openstack-images-v2.1-json-patch";
const OPERATIONS: [&str; 3] = ["add", "remove", "replace"];
/// Attributes no PATCH may touch (`RequestDeserializer._readonly_properties`).
const READ_ONLY: [&str; 13] = [
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
];
/// Image attributes a PATCH can set; any other path is a custom property.
const ATTRIBUTES: [&str; 10] = [
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "owner",
    "disk_format",
    "container_format",
    "tags",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

/// One validated operation.
#[derive(Debug)]
struct Change {
    op: Op,
    path: Vec<String>,
    value: Value,
}

/// `PATCH /v2/images/{id}`.
pub(crate) fn update(call: &Call, id: &str) -> Result<Reply, ApiError> {
    let draft4 = match call.media_type() {
        V20_MEDIA_TYPE => true,
        V21_MEDIA_TYPE => false,
        _ => {
            let allowed = format!("{V20_MEDIA_TYPE}, {V21_MEDIA_TYPE}");
            return Err(ApiError::unsupported_media_type(
                call.content_type_header(),
                format!("Image PATCH expects Content-Type one of: {allowed}"),
            )
            .with_header("accept-patch", allowed));
        }
    };
    let Value::Array(raw_changes) = call.json_body()? else {
        return Err(ApiError::bad_request(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    let changes = raw_changes
        .iter()
        .map(|raw| parse_change(raw, draft4))
        .collect::<Result<Vec<_>, _>>()?;

    let mut store = call.store();
    let mut image = visible(&store, &call.who, id, no_image(id))?.clone();
    for change in &changes {
        apply(call, &mut image, change, draft4)?;
    }
    if !changes.is_empty() {
        refuse_four_byte_values(&image)?;
        check_database_integers(&image)?;
        // The database layer reads the image back after the update, as the
        // caller: an image it gave away (`add /owner`) is not visible any
        // more, and the update is rolled back.
        if !can_see(&call.who, &image) {
            return Err(ApiError::forbidden(format!(
                "Forbidding request, image {id} not visible"
            )));
        }
        image.updated_at = now();
        // Saved before the tags, which may then be refused: the other
        // changes stay.
        if let Err(refusal) = refuse_four_byte_tags(&image.tags) {
            if let Some(old) = store.get(id) {
                image.tags = old.tags.clone();
            }
            store.put(image);
            return Err(refusal);
        }
        store.put(image.clone());
    }
    let sent: Map<String, Value> = changes
        .iter()
        .filter(|change| change.op != Op::Remove)
        .map(|change| (change.path[0].clone(), change.value.clone()))
        .collect();
    Ok(Reply::json(200, with_numbers_as_sent(image.to_json_string(), &sent)))
}

/// Validates one raw operation as `RequestDeserializer.update` does.
fn parse_change(raw: &Value, draft4: bool) -> Result<Change, ApiError> {
    let Value::Object(raw) = raw else {
        return Err(ApiError::bad_request("Operations must be JSON objects."));
    };
    let (op_name, pointer) = if draft4 {
        let mut present = OPERATIONS.iter().filter(|op| raw.contains_key(**op));
        let op = present.next().ok_or_else(|| {
            ApiError::bad_request(
                "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".",
            )
        })?;
        if present.next().is_some() {
            return Err(ApiError::bad_request(
                "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".",
            ));
        }
        (op.to_string(), raw.get(*op))
    } else {
        let op = raw.get("op").ok_or_else(|| {
            ApiError::bad_request(
                "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.",
            )
        })?;
        let name = op.as_str().filter(|name| OPERATIONS.contains(name)).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid operation: `{}`. It must be one of the following: add, remove, replace.",
                pyfmt::py_str(op)
            ))
        })?;
        let path = raw
            .get("path")
            .ok_or_else(|| ApiError::bad_request("Unable to find 'path' in JSON Schema change"))?;
        (name.to_owned(), Some(path))
    };
    // A non-string pointer makes Glance call string methods on it: 500.
    let pointer = pointer.and_then(Value::as_str).ok_or_else(ApiError::internal)?;
    let path = decode_pointer(pointer)?;
    let op = match op_name.as_str() {
        "add" => Op::Add,
        "remove" => Op::Remove,
        _ => Op::Replace,
    };
    let depth = if path[0] == "locations" && op != Op::Replace {
        2
    } else {
        1
    };
    if path.len() != depth {
        return Err(ApiError::bad_request(format!(
            "Invalid JSON pointer for this resource: '/{}'",
            path.join("/")
        )));
    }
    let value = if op == Op::Remove {
        Value::Null
    } else {
        raw.get("value").cloned().ok_or_else(|| {
            ApiError::bad_request(format!("Operation \"{op_name}\" requires a member named \"value\"."))
        })?
    };
    let change = Change { op, path, value };
    validate_change(&change)?;
    Ok(change)
}

/// `_decode_json_pointer` with its validations.
fn decode_pointer(pointer: &str) -> Result<Vec<String>, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("Pointer `{pointer}` {why}"));
    if !pointer.starts_with('/') {
        return Err(bad("does not start with \"/\"."));
    }
    let tail = &pointer[1..];
    let adjacent = tail.match_indices('/').any(|(i, _)| {
        let after = &tail[i + 1..];
        after.trim_start_matches(char::is_whitespace).starts_with('/')
    });
    if adjacent {
        return Err(bad("contains adjacent \"/\"."));
    }
    if pointer.len() > 1 && pointer.ends_with('/') {
        return Err(bad("end with \"/\"."));
    }
    let bad_escape = pointer
        .match_indices('~')
        .any(|(i, _)| !matches!(pointer.as_bytes().get(i + 1), Some(b'0' | b'1')));
    if bad_escape {
        return Err(bad("contains \"~\" not part of a recognized escape sequence."));
    }
    Ok(pointer
        .trim_start_matches('/')
        .split('/')
        .map(|part| part.replace("~1", "/").replace("~0", "~").trim().to_owned())
        .collect())
}

/// `_validate_change`: read-only and reserved attributes, then the schema.
fn validate_change(change: &Change) -> Result<(), ApiError> {
    let root = change.path[0].as_str();
    if READ_ONLY.contains(&root) {
        return Err(ApiError::forbidden(format!("Attribute '{root}' is read-only.")));
    }
    if is_reserved(root) {
        return Err(ApiError::forbidden(format!("Attribute '{root}' is reserved.")));
    }
    if change.op == Op::Remove {
        return Ok(());
    }
    let value = if change.path.len() == 1 {
        change.value.clone()
    } else {
        Value::Array(vec![change.value.clone()])
    };
    let mut partial = Map::new();
    partial.insert(root.to_owned(), value);
    schema::validate_image(&partial)
}

/// The policy check every property change goes through (`update_property`).
fn may_change(call: &Call, image: &Image, root: &str, value: &Value) -> Result<(), ApiError> {
    if root == "visibility" {
        if let Some(visibility) = value.as_str().and_then(Visibility::parse) {
            enforce_visibility(&call.who, visibility, &Target::of(image, &call.who))?;
        }
    }
    enforce_on_image(&call.who, Rule::ModifyImage, image)
}

/// Applies one change like `ImagesController._do_add/_do_remove/_do_replace`.
fn apply(call: &Call, image: &mut Image, change: &Change, draft4: bool) -> Result<(), ApiError> {
    let root = change.path[0].as_str();
    let value = &change.value;
    if root == "locations" {
        return locations(call, image, change);
    }
    let is_attribute = ATTRIBUTES.contains(&root);
    match change.op {
        Op::Replace => {
            if root == "owner" && !call.who.is_admin() {
                return Err(ApiError::with_detail(403, "Owner can't be updated by non admin."));
            }
            may_change(call, image, root, value)?;
            if is_attribute {
                set_attribute(image, root, value)
            } else if image.property(root).is_some() {
                image.set_property(root, value.as_str().unwrap_or_default());
                Ok(())
            } else {
                Err(ApiError::with_detail(409, format!("Property {root} does not exist.")))
            }
        }
        Op::Add => {
            may_change(call, image, root, value)?;
            if draft4 && (is_attribute || image.property(root).is_some()) {
                return Err(ApiError::with_detail(409, format!("Property {root} already present.")));
            }
            if is_attribute {
                set_attribute(image, root, value)
            } else {
                image.set_property(root, value.as_str().unwrap_or_default());
                Ok(())
            }
        }
        Op::Remove => {
            may_change(call, image, root, value)?;
            if is_attribute {
                Err(ApiError::with_detail(
                    403,
                    format!("Property {root} may not be removed."),
                ))
            } else if image.remove_property(root) {
                Ok(())
            } else {
                Err(ApiError::with_detail(409, format!("Property {root} does not exist.")))
            }
        }
    }
}

/// The locations API is disabled by Glance's defaults (`show_multiple_locations`).
fn locations(call: &Call, image: &Image, change: &Change) -> Result<(), ApiError> {
    match change.op {
        Op::Replace if !pyfmt::is_truthy(&change.value) => {
            Err(ApiError::with_detail(403, "Cannot set locations to empty list."))
        }
        Op::Replace => {
            enforce_on_image(&call.who, Rule::SetImageLocation, image)?;
            Err(ApiError::forbidden(
                "It's not allowed to update locations if locations are invisible.",
            ))
        }
        Op::Add => {
            enforce_on_image(&call.who, Rule::SetImageLocation, image)?;
            Err(ApiError::forbidden(
                "It's not allowed to add locations if locations are invisible.",
            ))
        }
        Op::Remove => {
            enforce_on_image(&call.who, Rule::DeleteImageLocation, image)?;
            Err(ApiError::forbidden(
                "It's not allowed to remove locations if locations are invisible.",
            ))
        }
    }
}

/// Sets an image attribute with the domain model's own checks.
fn set_attribute(image: &mut Image, name: &str, value: &Value) -> Result<(), ApiError> {
    let text = value.as_str().map(str::to_owned);
    match name {
        "name" => image.name = text,
        "owner" => image.owner = text,
        "visibility" => image.visibility = text.as_deref().and_then(Visibility::parse).unwrap_or(image.visibility),
        "protected" => image.protected = value.as_bool().unwrap_or(image.protected),
        "os_hidden" => image.os_hidden = value.as_bool().unwrap_or(image.os_hidden),
        "min_ram" => image.min_ram = check_minimum("min_ram", value)?,
        "min_disk" => image.min_disk = check_minimum("min_disk", value)?,
        "tags" => image.tags = string_set(value),
        "disk_format" | "container_format" => {
            if !matches!(image.status, Status::Queued | Status::Importing) {
                return Err(ApiError::forbidden(format!(
                    "Attribute {name} can be only replaced for a queued image."
                )));
            }
            if name == "disk_format" {
                image.disk_format = text;
            } else {
                image.container_format = text;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_of(raw: Value, draft4: bool) -> u16 {
        parse_change(&raw, draft4).err().map_or(0, |e| e.status())
    }

    #[test]
    fn operation_rules() {
        assert_eq!(
            status_of(json!({"op": "replace", "path": "/name", "value": "x"}), false),
            0
        );
        assert_eq!(status_of(json!({"replace": "/name", "value": "x"}), true), 0);
        assert_eq!(
            status_of(json!({"op": "move", "from": "/name", "path": "/foo"}), false),
            400
        );
        assert_eq!(
            status_of(json!({"op": "replace", "path": "name", "value": "x"}), false),
            400
        );
        assert_eq!(status_of(json!({"op": "replace", "path": "/name"}), false), 400);
        assert_eq!(
            status_of(json!({"op": "add", "path": "/tags/-", "value": "x"}), false),
            400
        );
        assert_eq!(
            status_of(json!({"op": "replace", "path": "/status", "value": "active"}), false),
            403
        );
        assert_eq!(
            status_of(json!({"op": "add", "path": "/os_glance_x", "value": "y"}), false),
            403
        );
        assert_eq!(
            status_of(json!({"op": "add", "path": "/my_int", "value": 5}), false),
            400
        );
        assert_eq!(
            status_of(json!({"op": "add", "path": "/a//b", "value": "y"}), false),
            400
        );
        assert_eq!(
            status_of(json!({"op": "add", "path": "/a~2", "value": "y"}), false),
            400
        );
        assert_eq!(status_of(json!({"op": "add", "path": 5, "value": "y"}), false), 500);
    }
}
