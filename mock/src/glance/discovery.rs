//! Version documents and the discovery resources: `/versions` (transcripts 001,
//! 002, 211 and 212), `/v2/info/*` (transcripts 128-131) and `/v2/schemas/*`
//! (transcripts 006 and 007).

use super::auth::{Rule, Target, enforce};
use super::call::Call;
use super::data::STORE_ID;
use super::errors::ApiError;
use super::model::Visibility;
use super::reply::Reply;
use super::schema::{IMAGE_SCHEMA, IMAGES_SCHEMA};
use crate::pyfmt;
use serde_json::{Value, json};

/// Version ids in the order Glance lists them, with their status.
const VERSIONS: [(&str, &str); 16] = [
    ("v2.15", "SUPPORTED"),
    ("v2.13", "SUPPORTED"),
    ("v2.12", "SUPPORTED"),
    ("v2.11", "SUPPORTED"),
    ("v2.10", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.8", "SUPPORTED"),
    ("v2.17", "CURRENT"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

/// Whether the version negotiation middleware maps `version` to the v2 API.
pub(crate) fn is_known_version(version: &str) -> bool {
    version == "v2" || VERSIONS.iter().any(|(id, _)| *id == version)
}

/// The versions document: 200 for `/versions`, 300 for anything unversioned.
pub(crate) fn versions(base_url: &str, status: u16) -> Reply {
    let href = format!("{base_url}/v2/");
    let versions: Vec<Value> = VERSIONS
        .iter()
        .map(|(id, state)| json!({"id": id, "status": state, "links": [{"rel": "self", "href": href}]}))
        .collect();
    Reply::json_type_first(status, pyfmt::dumps(&json!({ "versions": versions }), true))
}

/// `GET /v2/info/import`.
pub(crate) fn import_info(call: &Call) -> Reply {
    let body = json!({"import-methods": {
        "description": "Import methods available.",
        "type": "array",
        "value": call.shared.options.import_methods,
    }});
    Reply::json_type_first(200, pyfmt::dumps(&body, true))
}

/// `GET /v2/info/stores`.
pub(crate) fn stores_info() -> Reply {
    let body = json!({"stores": [{"id": STORE_ID, "default": "true"}]});
    Reply::json_type_first(200, pyfmt::dumps(&body, true))
}

/// `GET /v2/info/stores/detail` (admins only).
pub(crate) fn stores_detail(call: &Call) -> Result<Reply, ApiError> {
    let target = Target {
        owner: call.who.project.as_deref(),
        visibility: Visibility::Private,
        member_id: None,
    };
    enforce(&call.who, Rule::StoresInfoDetail, &target)?;
    let body = json!({"stores": [{
        "id": STORE_ID,
        "default": "true",
        "type": "file",
        "properties": {"data_dir": "/var/lib/glance/images/", "chunk_size": 65536, "thin_provisioning": false},
        "weight": 0,
    }]});
    Ok(Reply::json_type_first(200, pyfmt::dumps(&body, true)))
}

/// `GET /v2/info/usage` with quotas disabled.
pub(crate) fn usage() -> Reply {
    Reply::json(200, pyfmt::dumps(&json!({"usage": {}}), true))
}

/// `GET /v2/schemas/image`.
pub(crate) fn image_schema() -> Reply {
    Reply::json_type_first(200, IMAGE_SCHEMA.to_owned())
}

/// `GET /v2/schemas/images`.
pub(crate) fn images_schema() -> Reply {
    Reply::json_type_first(200, IMAGES_SCHEMA.to_owned())
}
