//! Glance v2 image -> Alliance v1 image.
//!
//! The Alliance image has exactly the document's keys, in the document's
//! order; `copy_from` appears only when the image has one; values Glance
//! leaves out are `null`; other v2 fields and custom properties are dropped.

use serde::{Deserialize, Serialize};

/// The fields of a Glance v2 image the facade reads. Unknown fields are
/// ignored; a field of the wrong type makes the whole answer unusable (502).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct V2Image {
    pub id: String,
    pub status: Option<String>,
    pub created_at: Option<String>,
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub container_format: Option<String>,
    pub min_ram: Option<u64>,
    pub disk_format: Option<String>,
    pub updated_at: Option<String>,
    pub visibility: Option<String>,
    /// Custom property the facade sets on create (Glance returns custom
    /// properties at the top level).
    pub copy_from: Option<String>,
    pub owner: Option<String>,
    pub schema: Option<String>,
    pub protected: Option<bool>,
    pub file: Option<String>,
    pub checksum: Option<String>,
    pub min_disk: Option<u64>,
    pub virtual_size: Option<u64>,
    pub size: Option<u64>,
    /// Set by Glance while an import runs.
    pub os_glance_import_task: Option<String>,
    /// Set by the facade when its own `copy_from` transfer failed.
    pub alliance_copy_from_error: Option<String>,
}

impl V2Image {
    /// Queued with a `copy_from` and no import running: either the import
    /// has not started yet or it failed (which only the image's tasks tell).
    pub fn import_outcome_unknown(&self) -> bool {
        self.copy_from.is_some()
            && self.status.as_deref() == Some("queued")
            && self.os_glance_import_task.as_deref().is_none_or(str::is_empty)
    }
}

/// One page of `GET /v2/images`.

#[derive(Debug, Clone, Default, Deserialize)]
pub struct V2ImagePage {
    pub images: Vec<V2Image>,
    pub next: Option<String>,
}

/// The image as the Alliance document shows it. Field order is the wire order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AllianceImage {
    pub status: Option<String>,
    pub created_at: Option<String>,
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub container_format: Option<String>,
    pub min_ram: Option<u64>,
    pub disk_format: Option<String>,
    pub updated_at: Option<String>,
    pub visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<String>,
    pub owner: Option<String>,
    pub schema: Option<String>,
    pub protected: Option<bool>,
    pub file: Option<String>,
    pub checksum: Option<String>,
    pub min_disk: Option<u64>,
    pub virtual_size: Option<u64>,
    pub id: String,
    pub size: Option<u64>,
}

impl From<V2Image> for AllianceImage {
    fn from(image: V2Image) -> Self {
        AllianceImage {
            status: image.status,
            created_at: image.created_at,
            name: image.name,
            tags: image.tags,
            container_format: image.container_format,
            min_ram: image.min_ram,
            disk_format: image.disk_format,
            updated_at: image.updated_at,
            visibility: image.visibility,
            copy_from: image.copy_from,
            owner: image.owner,
            schema: image.schema,
            protected: image.protected,
            file: image.file,
            checksum: image.checksum,
            min_disk: image.min_disk,
            virtual_size: image.virtual_size,
            id: image.id,
            size: image.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Glance 33's answer for an image created with copy_from (transcript 025).
    const GLANCE_IMAGE: &str = r#"{"copy_from": "http://example.invalid/images/cirros.qcow2", "hw_disk_bus": "virtio", "name": "A2-with-copy_from", "disk_format": "qcow2", "container_format": "bare", "visibility": "shared", "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false, "min_ram": 256, "min_disk": 2, "owner": "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1", "os_hidden": false, "os_hash_algo": null, "os_hash_value": null, "id": "149eb9f0-0015-462e-bdfa-0c7f22c6e997", "created_at": "2026-11-26T23:04:26Z", "updated_at": "2026-11-26T23:04:26Z", "tags": [], "self": "/v2/images/149eb9f0-0015-462e-bdfa-0c7f22c6e997", "file": "/v2/images/149eb9f0-0015-462e-bdfa-0c7f22c6e997/file", "schema": "/v2/schemas/image"}"#;

    #[test]
    fn reshapes_in_document_order_and_drops_v2_extras() {
        let image: V2Image = serde_json::from_str(GLANCE_IMAGE).unwrap();
        let alliance = serde_json::to_string(&AllianceImage::from(image)).unwrap();
        assert_eq!(
            alliance,
            r#"{"status":"queued","created_at":"2026-11-26T23:04:26Z","name":"A2-with-copy_from","tags":[],"container_format":"bare","min_ram":256,"disk_format":"qcow2","updated_at":"2026-11-26T23:04:26Z","visibility":"shared","copy_from":"http://example.invalid/images/cirros.qcow2","owner":"a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1","schema":"/v2/schemas/image","protected":false,"file":"/v2/images/149eb9f0-0015-462e-bdfa-0c7f22c6e997/file","checksum":null,"min_disk":2,"virtual_size":null,"id":"149eb9f0-0015-462e-bdfa-0c7f22c6e997","size":null}"#
        );
    }

    #[test]
    fn absent_values_are_null_and_copy_from_is_omitted() {
        let image: V2Image = serde_json::from_str(r#"{"id": "x"}"#).unwrap();
        let value = serde_json::to_value(AllianceImage::from(image)).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), 18);
        assert!(!object.contains_key("copy_from"));
        assert!(
            object
                .iter()
                .filter(|(key, _)| *key != "id")
                .all(|(_, value)| value.is_null())
        );
    }

    #[test]
    fn wrong_types_are_refused() {
        assert!(serde_json::from_str::<V2Image>(r#"{"name": "x"}"#).is_err());
        assert!(serde_json::from_str::<V2Image>(r#"{"id": "x", "size": "big"}"#).is_err());
    }
}
