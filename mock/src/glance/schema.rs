//! The image JSON schema: the documents Glance serves, and validation that fails
//! with the messages of Python's `jsonschema` (transcripts 029-032, 092, 093).

use super::errors::ApiError;
use crate::jsonschema;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// `GET /v2/schemas/image`, byte for byte as recorded (transcript 006).
pub(crate) const IMAGE_SCHEMA: &str = include_str!("documents/schema-image.json");
/// `GET /v2/schemas/images`, byte for byte as recorded (transcript 007).
pub(crate) const IMAGES_SCHEMA: &str = include_str!("documents/schema-images.json");

/// The image schema as a document (validated against by `crate::jsonschema`).
fn image_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(IMAGE_SCHEMA).unwrap_or(Value::Null))
}

/// Validates an image document (or a PATCH's one-key partial document) against the
/// image schema; the error text is Glance's `Provided object does not match schema`.
pub(crate) fn validate_image(object: &Map<String, Value>) -> Result<(), ApiError> {
    let instance = Value::Object(object.clone());
    match jsonschema::best_match(&jsonschema::failures(&instance, image_schema())) {
        None => Ok(()),
        Some(failure) => Err(ApiError::bad_request(format!(
            "Provided object does not match schema 'image': {}",
            failure.render()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Length of the rendered HTML error body, to compare with recorded Content-Length.
    fn html_length(value: Value) -> usize {
        let Value::Object(map) = value else { return 0 };
        match validate_image(&map) {
            Ok(()) => 0,
            Err(e) => e.into_reply(None).body().len(),
        }
    }

    #[test]
    fn messages_match_transcript_lengths() {
        assert_eq!(
            html_length(json!({"name": "x", "disk_format": "qcow3", "container_format": "bare"})),
            1074
        );
        assert_eq!(html_length(json!({"name": "x", "min_ram": "512"})), 513);
        assert_eq!(html_length(json!({"name": "x", "my_int": 5})), 382);
        assert_eq!(
            html_length(json!({"name": null, "tags": ["a"], "id": "11111111-2222-4333-8444-555555555555"})),
            0
        );
    }
}
