//! The writable Alliance fields in Glance v2's terms, shared by the create
//! body and the update patch.

use crate::inbound::ImageFields;

/// The writable fields as Glance v2 names and values, in a fixed order
/// (shared by the create body and the update patch).
pub fn v2_values(fields: &ImageFields) -> Vec<(&'static str, serde_json::Value)> {
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
