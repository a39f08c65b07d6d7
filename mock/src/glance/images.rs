//! The images resource: list, create, show, delete, tags, (de)activation and the
//! import tasks of an image.

use super::auth::{Rule, Target, allowed, enforce, enforce_on_image, enforce_visibility};
use super::call::{Call, no_image, visible};
use super::errors::ApiError;
use super::model::{Image, Status, Visibility, now};
use super::reply::Reply;
use super::{listing, schema};
use crate::pyfmt;
use serde_json::{Map, Value, json};

/// Keys the request deserializer refuses outright on create.
const DISALLOWED_ON_CREATE: [&str; 5] = ["direct_url", "self", "file", "schema", "stores"];
/// Keys that map to image attributes rather than custom properties.
const BASE_PROPERTIES: [&str; 17] = [
    "checksum",
    "created_at",
    "container_format",
    "disk_format",
    "id",
    "min_disk",
    "min_ram",
    "name",
    "size",
    "virtual_size",
    "status",
    "tags",
    "owner",
    "updated_at",
    "visibility",
    "protected",
    "os_hidden",
];
/// The domain factory's read-only attributes that reach it, in the order it
/// checks them. (`os_hash_algo` and `os_hash_value` are no base properties:
/// on create they become custom properties, hidden behind the empty columns.)
const READ_ONLY_ON_CREATE: [&str; 6] = ["created_at", "updated_at", "status", "checksum", "size", "virtual_size"];
/// Longest custom property name Glance accepts.
const MAX_PROPERTY_NAME: usize = 255;

/// Whether `key` is reserved for Glance (`os_glance_*` and a few database columns).
pub(crate) fn is_reserved(key: &str) -> bool {
    ["location", "deleted", "deleted_at"].contains(&key) || key.starts_with("os_glance")
}

/// An integer schema value (`5`, or `5.0` which newer jsonschema drafts accept).
pub(crate) fn as_integer(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// `min_ram` / `min_disk` must not be negative (`InvalidParameterValue`).
pub(crate) fn check_minimum(param: &str, value: &Value) -> Result<i64, ApiError> {
    let number = as_integer(value).unwrap_or(0);
    if number < 0 {
        return Err(ApiError::bad_request(format!(
            "Invalid value '{}' for parameter '{param}': Cannot be a negative value",
            pyfmt::py_str(value)
        )));
    }
    Ok(number)
}

/// Strings of a JSON array, deduplicated in order (tags).
pub(crate) fn string_set(value: &Value) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in value.as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// Whether `text` holds a character outside the Basic Multilingual Plane
/// (four bytes in UTF-8), which Glance's database layer refuses.
fn has_four_byte_character(text: &str) -> bool {
    text.chars().any(|c| c.len_utf8() == 4)
}

/// `utils.no_4byte_params` on the values `ImageRepo` saves: the string
/// columns in the order of `_format_image_to_db`, then the custom properties.
pub(crate) fn refuse_four_byte_values(image: &Image) -> Result<(), ApiError> {
    let columns = [
        ("name", &image.name),
        ("checksum", &image.checksum),
        ("os_hash_algo", &image.os_hash_algo),
        ("os_hash_value", &image.os_hash_value),
        ("owner", &image.owner),
        ("disk_format", &image.disk_format),
        ("container_format", &image.container_format),
    ];
    let columns = columns
        .into_iter()
        .map(|(key, value)| (key, value.as_deref().unwrap_or_default()));
    let properties = image
        .properties
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()));
    for (key, value) in columns.chain(properties) {
        if has_four_byte_character(key) {
            return Err(ApiError::bad_request("Property names can't contain 4 byte unicode."));
        }
        if has_four_byte_character(value) {
            return Err(ApiError::bad_request(format!(
                "{} can't contain 4 byte unicode characters.",
                pyfmt::title(key)
            )));
        }
    }
    Ok(())
}

/// `_validate_db_int`: the database columns hold 32-bit integers.
pub(crate) fn check_database_integers(image: &Image) -> Result<(), ApiError> {
    let max = i64::from(i32::MAX);
    for (param, value) in [("min_disk", image.min_disk), ("min_ram", image.min_ram)] {
        if value > max {
            return Err(ApiError::bad_request(format!(
                "'{param}' value out of range, must not exceed {max}."
            )));
        }
    }
    Ok(())
}

/// The answer to a create or update shows the domain object, which keeps a
/// number as the client sent it: `1.0` stays a float until read back from
/// the database.
pub(crate) fn with_numbers_as_sent(document: String, sent: &Map<String, Value>) -> String {
    let mut document = document;
    for key in ["min_ram", "min_disk"] {
        let Some(number) = sent.get(key).filter(|v| v.is_f64()).and_then(as_integer) else {
            continue;
        };
        let stored = format!("\"{key}\": {number},");
        if let Some(at) = document.find(&stored) {
            document.replace_range(at..at + stored.len(), &format!("\"{key}\": {number}.0,"));
        }
    }
    document
}

/// The same check on each tag (`_image_tag_create`), made after the image is saved.
pub(crate) fn refuse_four_byte_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.iter().any(|tag| has_four_byte_character(tag)) {
        return Err(ApiError::bad_request("Param values can't contain 4 byte unicode."));
    }
    Ok(())
}

/// `GET /v2/images`.
pub(crate) fn list(call: &Call) -> Result<Reply, ApiError> {
    let options = &call.shared.options;
    let query = listing::parse(call.query, options.limit_default, options.limit_max)?;
    let target = Target {
        owner: call.who.project.as_deref(),
        visibility: Visibility::Private,
        member_id: None,
    };
    enforce(&call.who, Rule::GetImages, &target)?;
    let page = call.store().list(&call.who, &query)?;
    let mut body = format!(
        "{{\"images\": [{}], \"first\": {}, \"schema\": \"/v2/schemas/images\"",
        page.images.join(", "),
        pyfmt::string_literal(&query.first)
    );
    if let Some(marker) = page.next_marker {
        body.push_str(&format!(
            ", \"next\": {}",
            pyfmt::string_literal(&query.next_link(&marker))
        ));
    }
    body.push('}');
    Ok(Reply::json(200, body))
}

/// `POST /v2/images`.
pub(crate) fn create(call: &Call) -> Result<Reply, ApiError> {
    // A JSON list passes validation and then breaks Glance's deserializer: 500 (transcript 040).
    let Value::Object(body) = call.json_body()? else {
        return Err(ApiError::internal());
    };
    if let Some(key) = DISALLOWED_ON_CREATE.iter().find(|k| body.contains_key(**k)) {
        return Err(ApiError::forbidden(format!("Attribute '{key}' is read-only.")));
    }
    schema::validate_image(&body)?;
    let is_base = |key: &str| BASE_PROPERTIES.contains(&key);
    let base: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| is_base(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let extra: Vec<(&String, &Value)> = body.iter().filter(|(k, _)| !is_base(k)).collect();
    for (key, _) in &extra {
        if key.chars().count() > MAX_PROPERTY_NAME {
            return Err(ApiError::bad_request(
                "Custom property should not be greater than 255 characters.",
            ));
        }
        if is_reserved(key) {
            return Err(ApiError::with_detail(403, format!("Attribute '{key}' is reserved.")));
        }
    }

    let who = &call.who;
    let owner = match base.get("owner") {
        Some(value) => value.as_str().map(str::to_owned),
        None => who.project.clone(),
    };
    let requested_visibility = base
        .get("visibility")
        .and_then(Value::as_str)
        .and_then(Visibility::parse);
    let target = Target {
        owner: owner.as_deref(),
        visibility: requested_visibility.unwrap_or(Visibility::Private),
        member_id: None,
    };
    if !allowed(who, Rule::AddImage, &target) {
        if who.project.as_deref().unwrap_or("None") != owner.as_deref().unwrap_or("None") {
            return Err(ApiError::with_detail(
                403,
                format!(
                    "You are not permitted to create images owned by '{}'",
                    owner.as_deref().unwrap_or("None")
                ),
            ));
        }
        return Err(ApiError::not_authorized(Rule::AddImage.name()));
    }
    enforce_visibility(who, target.visibility, &target)?;

    if let Some(key) = READ_ONLY_ON_CREATE.iter().find(|k| body.contains_key(**k)) {
        return Err(ApiError::forbidden(format!("Attribute '{key}' is read-only.")));
    }
    if extra.iter().any(|(k, _)| *k == "locations") {
        return Err(ApiError::forbidden("Attribute 'locations' is reserved."));
    }
    let min_disk = base.get("min_disk").map(|v| check_minimum("min_disk", v)).transpose()?;
    let min_ram = base.get("min_ram").map(|v| check_minimum("min_ram", v)).transpose()?;

    let id = base
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let text = |key: &str| base.get(key).and_then(Value::as_str).map(str::to_owned);
    let flag = |key: &str| base.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut image = Image::new(id.clone(), owner, now());
    image.name = text("name");
    image.disk_format = text("disk_format");
    image.container_format = text("container_format");
    image.visibility = requested_visibility.unwrap_or(Visibility::Shared);
    image.protected = flag("protected");
    image.os_hidden = flag("os_hidden");
    image.min_disk = min_disk.unwrap_or(0);
    image.min_ram = min_ram.unwrap_or(0);
    image.tags = base.get("tags").map(string_set).unwrap_or_default();
    image.properties = extra
        .iter()
        .map(|(k, v)| ((*k).clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();

    refuse_four_byte_values(&image)?;
    check_database_integers(&image)?;
    let mut store = call.store();
    if store.id_taken(&id) {
        return Err(ApiError::conflict(format!("Image ID {id} already exists!")));
    }
    // The image is stored before its tags, which the database layer may
    // then refuse: the 400 leaves an image without tags behind.
    if let Err(refusal) = refuse_four_byte_tags(&image.tags) {
        image.tags.clear();
        store.insert(image);
        return Err(refusal);
    }
    let document = with_numbers_as_sent(image.to_json_string(), &base);
    let store_ids = if store.data_written {
        "fs1,os_glance_staging_store,os_glance_tasks_store"
    } else {
        "fs1"
    };
    store.insert(image);
    drop(store);

    // webob joins the relative location with the request URL, which drops any prefix.
    let location = format!("http://{}/v2/images/{id}", call.host);
    let mut reply = Reply::json(201, document).header("location", location);
    let methods = &call.shared.options.import_methods;
    if !methods.is_empty() {
        reply = reply.header("openstack-image-import-methods", methods.join(","));
    }
    Ok(reply.header("openstack-image-store-ids", store_ids))
}

/// `GET /v2/images/{id}`.
pub(crate) fn show(call: &Call, id: &str) -> Result<Reply, ApiError> {
    call.reject_body()?;
    let store = call.store();
    let image = visible(&store, &call.who, id, no_image(id))?;
    enforce_on_image(&call.who, Rule::GetImage, image)?;
    Ok(Reply::json(200, image.to_json_string()))
}

/// `DELETE /v2/images/{id}`.
pub(crate) fn delete(call: &Call, id: &str) -> Result<Reply, ApiError> {
    call.reject_body()?;
    let mut store = call.store();
    let image = visible(&store, &call.who, id, || {
        ApiError::not_found(format!("Failed to find image {id} to delete"))
    })?;
    enforce_on_image(&call.who, Rule::DeleteImage, image)?;
    if image.protected {
        return Err(ApiError::forbidden(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    store.remove(id);
    Ok(Reply::empty_html(204))
}

fn image_not_found(id: &str) -> impl FnOnce() -> ApiError + '_ {
    move || ApiError::not_found(format!("Image {id} not found."))
}

/// `PUT /v2/images/{id}/tags/{tag}`.
pub(crate) fn put_tag(call: &Call, id: &str, tag: &str) -> Result<Reply, ApiError> {
    let mut partial = Map::new();
    partial.insert("tags".to_owned(), json!([tag]));
    schema::validate_image(&partial)?;
    let mut store = call.store();
    let image = visible(&store, &call.who, id, image_not_found(id))?;
    enforce_on_image(&call.who, Rule::ModifyImage, image)?;
    refuse_four_byte_tags(&[tag.to_owned()])?;
    let mut image = image.clone();
    image.add_tags([tag]);
    image.updated_at = now();
    store.put(image);
    Ok(Reply::empty_html(204))
}

/// `DELETE /v2/images/{id}/tags/{tag}`.
pub(crate) fn delete_tag(call: &Call, id: &str, tag: &str) -> Result<Reply, ApiError> {
    let mut store = call.store();
    let image = visible(&store, &call.who, id, image_not_found(id))?;
    enforce_on_image(&call.who, Rule::ModifyImage, image)?;
    if !image.tags.iter().any(|t| t == tag) {
        return Err(ApiError::default_for(404));
    }
    let mut image = image.clone();
    image.tags.retain(|t| t != tag);
    image.updated_at = now();
    store.put(image);
    Ok(Reply::empty_html(204))
}

/// `POST /v2/images/{id}/actions/deactivate` and `.../reactivate`.
pub(crate) fn set_active(call: &Call, id: &str, active: bool) -> Result<Reply, ApiError> {
    let mut store = call.store();
    let image = visible(&store, &call.who, id, no_image(id))?;
    let (rule, verb) = if active {
        (Rule::Reactivate, "reactivate")
    } else {
        (Rule::Deactivate, "deactivate")
    };
    enforce_on_image(&call.who, rule, image)?;
    let status = match (active, image.status) {
        (false, Status::Active | Status::Deactivated) => Status::Deactivated,
        (true, Status::Active | Status::Deactivated) => Status::Active,
        (_, other) => {
            return Err(ApiError::forbidden(format!(
                "Not allowed to {verb} image in status '{}'",
                other.as_str()
            )));
        }
    };
    let mut image = image.clone();
    image.status = status;
    image.updated_at = now();
    store.put(image);
    Ok(Reply::empty_html(204))
}

/// `GET /v2/images/{id}/tasks`: the image's import tasks, in database order
/// (Glance's query has no ORDER BY: SQLite gives them oldest first).
pub(crate) fn tasks(call: &Call, id: &str) -> Result<Reply, ApiError> {
    call.reject_body()?;
    let store = call.store();
    let image = visible(&store, &call.who, id, || ApiError::default_for(404))?;
    enforce_on_image(&call.who, Rule::GetImage, image)?;
    let tasks: Vec<Value> = store.tasks(id).iter().map(|t| t.to_json()).collect();
    Ok(Reply::json_type_first(
        200,
        pyfmt::dumps(&json!({ "tasks": tasks }), true),
    ))
}
