//! The five Alliance calls, one file each. Every file holds the Glance v2
//! calls its operation needs (as pure request builders), one explicit status
//! table per Glance call, and how the answer is reshaped.

pub mod create;
pub mod delete;
pub mod import_status;
pub mod isolation;
pub mod list;
pub mod lookup;
pub mod show;
pub mod update;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::body::{ResponseBody, json_document};
use crate::error::AllianceError;
use crate::inbound::Operation;
use crate::reshape::{AllianceImage, V2Image};
use crate::route::Cloud;
use crate::upstream::{Reply, Session};

pub async fn apply(
    operation: Operation,
    cloud: &Cloud,
    session: Session,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    match operation {
        Operation::List(query) => list::apply(session, cloud, query).await,
        Operation::Show(image_ref) => show::apply(&session, cloud, image_ref).await,
        Operation::Create(image) => create::apply(&session, cloud, image).await,
        Operation::Update(image_ref, update) => update::apply(&session, cloud, image_ref, update).await,
        Operation::Delete(image_ref) => delete::apply(&session, cloud, image_ref).await,
    }
}

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `/v2/images/{id}`; ids that come from Glance are encoded, not trusted.
pub fn image_path(id: &str) -> String {
    format!("/v2/images/{}", utf8_percent_encode(id, PATH_SEGMENT))
}

/// The answer of show, create and update: the image as the Alliance document
/// shows it.
pub fn image_response(status: http::StatusCode, image: V2Image<'_>) -> http::Response<ResponseBody> {
    json_document(status, AllianceImage::from(image).to_json())
}

/// A success body that does not parse is the upstream's fault: 502.
pub fn parse_json<'a, T: Deserialize<'a>>(reply: &'a Reply, call: &'static str) -> Result<T, AllianceError> {
    crate::reshape::json_text(&reply.body)
        .and_then(serde_json::from_str)
        .map_err(|error| unusable_answer(call, &error))
}

/// The 502 for a success body of `call` that does not parse.
pub fn unusable_answer(call: &'static str, error: &serde_json::Error) -> AllianceError {
    tracing::warn!(call, %error, "unusable answer from the image service");
    AllianceError::bad_gateway("the image service sent an unusable answer")
}

/// The writable fields as Glance v2 names and values, in a fixed order
/// (shared by the create body and the update patch).
pub fn v2_field_values(fields: &crate::inbound::ImageFields) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::Value;
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
    let mut values = Vec::new();
    if let Some(name) = &fields.name {
        values.push(("name", text(name)));
    }
    if let Some(disk_format) = &fields.disk_format {
        values.push(("disk_format", text(disk_format)));
    }
    if let Some(container_format) = &fields.container_format {
        values.push(("container_format", text(container_format)));
    }
    if let Some(min_ram) = fields.min_ram {
        values.push(("min_ram", Value::from(min_ram)));
    }
    if let Some(min_disk) = fields.min_disk {
        values.push(("min_disk", Value::from(min_disk)));
    }
    if let Some(visibility) = fields.visibility {
        values.push(("visibility", Value::from(visibility.as_str())));
    }
    if let Some(protected) = fields.protected {
        values.push(("protected", Value::Bool(protected)));
    }
    if let Some(tags) = &fields.tags {
        values.push(("tags", Value::from(tags.clone())));
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_encoded() {
        assert_eq!(
            image_path("75da8211-b8d3-4329-a12b-953e7db4690a"),
            "/v2/images/75da8211-b8d3-4329-a12b-953e7db4690a"
        );
        assert_eq!(image_path("../x?y"), "/v2/images/..%2Fx%3Fy");
    }
}
