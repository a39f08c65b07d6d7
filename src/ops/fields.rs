//! The fields a client gave, in Glance v2's terms, as the field table
//! (`reshape::fields`) says: the `POST /v2/images` body and the update's
//! JSON-Patch. Pure functions.

use serde_json::{Map, Value, json};

use crate::inbound::ImageFields;
use crate::reshape::V2Image;
use crate::reshape::fields::Property;

/// v1 images were private unless made public; Glance v2 would make them
/// `shared`, so the facade asks for `private` when the client says nothing.
const DEFAULT_VISIBILITY: &str = "private";

/// The `POST /v2/images` body: each field given (a custom property only
/// with a value: Glance refuses a null one), the visibility private by
/// default.
pub fn create_body(fields: &ImageFields) -> Value {
    let mut body = Map::new();
    for (field, value) in fields.iter() {
        if field.property == Property::Core || !value.is_null() {
            body.insert(field.name.to_owned(), value.clone());
        }
    }
    if fields.get("visibility").is_none() {
        body.insert("visibility".to_owned(), Value::from(DEFAULT_VISIBILITY));
    }
    Value::Object(body)
}

/// The JSON-Patch of an update of `current`: `replace` for a core property
/// (it always exists); for a custom one, `add` for a value and `remove` for
/// null - only when `current` has it, as Glance answers 409 to a `replace`
/// or `remove` of a property that does not exist.
pub fn json_patch(fields: &ImageFields, current: &V2Image<'_>) -> Value {
    let path = |name: &str| format!("/{name}");
    let operations = fields.iter().filter_map(|(field, value)| match field.property {
        Property::Core => Some(json!({"op": "replace", "path": path(field.name), "value": value})),
        Property::Custom if !value.is_null() => Some(json!({"op": "add", "path": path(field.name), "value": value})),
        Property::Custom => current
            .has(field.name)
            .then(|| json!({"op": "remove", "path": path(field.name)})),
    });
    Value::Array(operations.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reshape::fields::field;

    fn given(values: &[(&str, Value)]) -> ImageFields {
        ImageFields::new(
            values
                .iter()
                .map(|(name, value)| (field(name).unwrap(), value.clone()))
                .collect(),
        )
    }

    #[test]
    fn custom_properties_are_added_and_removed_never_replaced() {
        let having = V2Image {
            copy_from: Some("http://x/y".into()),
            ..V2Image::default()
        };
        let url = given(&[("copy_from", json!("http://x/z")), ("name", json!("n"))]);
        assert_eq!(
            json_patch(&url, &V2Image::default()).to_string(),
            r#"[{"op":"add","path":"/copy_from","value":"http://x/z"},{"op":"replace","path":"/name","value":"n"}]"#
        );
        let null = given(&[("copy_from", Value::Null)]);
        assert_eq!(
            json_patch(&null, &having).to_string(),
            r#"[{"op":"remove","path":"/copy_from"}]"#
        );
        // Not there: nothing to remove (Glance would answer 409).
        assert_eq!(json_patch(&null, &V2Image::default()).to_string(), "[]");
    }

    #[test]
    fn the_create_body_leaves_out_null_custom_properties() {
        let fields = given(&[("name", Value::Null), ("copy_from", Value::Null)]);
        assert_eq!(
            create_body(&fields).to_string(),
            r#"{"name":null,"visibility":"private"}"#
        );
    }
}
