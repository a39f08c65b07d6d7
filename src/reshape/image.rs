//! Glance v2 image -> Alliance v1 image: the answer of show, create and
//! update, and a page of the image list read image by image. Which fields
//! there are, and in what order the Alliance image shows them, is the field
//! table's (`super::fields`).

use std::fmt;

pub use super::fields::V2Image;
use super::json::{Text, json_text};
use crate::body::{ResponseBody, json_document};

/// The answer of show, create and update: the image as the Alliance
/// document shows it.
pub fn image_response(status: http::StatusCode, image: V2Image<'_>) -> http::Response<ResponseBody> {
    json_document(status, image.alliance_json())
}

impl V2Image<'_> {
    /// Queued with a `copy_from` and no import running: either the import
    /// has not started yet or it failed (which only the image's tasks tell).
    pub fn import_outcome_unknown(&self) -> bool {
        self.copy_from.is_some()
            && self.status.as_deref() == Some("queued")
            && self.os_glance_import_task.as_deref().is_none_or(str::is_empty)
    }

    /// The Alliance image as compact JSON (see [`V2Image::write_alliance_json`]).
    pub fn alliance_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.write_alliance_json(&mut out);
        out
    }
}

/// Reads one page of `GET /v2/images` (`{"images": [...], "next": "..."}`),
/// handing each image to `on_image` as soon as it is parsed - no page-sized
/// vector of images is built - and returns the `next` link. Other keys are
/// ignored; a page without `images` is an error.
pub fn read_image_page<'de>(
    body: &'de [u8],
    on_image: impl FnMut(V2Image<'de>),
) -> serde_json::Result<Option<Text<'de>>> {
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};

    struct Page<F>(F);
    struct Images<'f, F>(&'f mut F);

    impl<'de, F: FnMut(V2Image<'de>)> Visitor<'de> for Page<F> {
        type Value = Option<Text<'de>>;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a page of images")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut next, mut images) = (None, false);
            while let Some(key) = map.next_key::<Text<'de>>()? {
                match &*key {
                    "images" => {
                        map.next_value_seed(Images(&mut self.0))?;
                        images = true;
                    }
                    "next" => next = map.next_value()?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            if images {
                Ok(next)
            } else {
                Err(A::Error::missing_field("images"))
            }
        }
    }

    impl<'de, F: FnMut(V2Image<'de>)> DeserializeSeed<'de> for Images<'_, F> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de, F: FnMut(V2Image<'de>)> Visitor<'de> for Images<'_, F> {
        type Value = ();
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a list of images")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(image) = seq.next_element()? {
                (self.0)(image);
            }
            Ok(())
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(json_text(body)?);
    let next = serde::Deserializer::deserialize_map(&mut deserializer, Page(on_image))?;
    deserializer.end()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Glance 33's answer for an image created with copy_from
    /// (mock/tests/fixtures/glance-33.0.0/025-create-A2-copy_from.txt).
    const GLANCE_IMAGE: &str = r#"{"copy_from": "http://example.invalid/images/cirros.qcow2", "hw_disk_bus": "virtio", "name": "A2-with-copy_from", "disk_format": "qcow2", "container_format": "bare", "visibility": "shared", "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false, "min_ram": 256, "min_disk": 2, "owner": "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1", "os_hidden": false, "os_hash_algo": null, "os_hash_value": null, "id": "149eb9f0-0015-462e-bdfa-0c7f22c6e997", "created_at": "2026-11-26T23:04:26Z", "updated_at": "2026-11-26T23:04:26Z", "tags": [], "self": "/v2/images/149eb9f0-0015-462e-bdfa-0c7f22c6e997", "file": "/v2/images/149eb9f0-0015-462e-bdfa-0c7f22c6e997/file", "schema": "/v2/schemas/image"}"#;

    #[test]
    fn reshapes_in_document_order_and_drops_v2_extras() {
        let image: V2Image = serde_json::from_str(GLANCE_IMAGE).unwrap();
        let alliance = String::from_utf8(image.alliance_json()).unwrap();
        assert_eq!(
            alliance,
            r#"{"status":"queued","created_at":"2026-11-26T23:04:26Z","name":"A2-with-copy_from","tags":[],"container_format":"bare","min_ram":256,"disk_format":"qcow2","updated_at":"2026-11-26T23:04:26Z","visibility":"shared","copy_from":"http://example.invalid/images/cirros.qcow2","owner":"a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1","schema":"/v2/schemas/image","protected":false,"file":"/v2/images/149eb9f0-0015-462e-bdfa-0c7f22c6e997/file","checksum":null,"min_disk":2,"virtual_size":null,"id":"149eb9f0-0015-462e-bdfa-0c7f22c6e997","size":null}"#
        );
    }

    #[test]
    fn the_written_json_is_serde_jsons() {
        let full: V2Image = serde_json::from_str(GLANCE_IMAGE).unwrap();
        let escapes: V2Image = serde_json::from_str(
            r#"{"id": "x\"y", "name": "tab\there \u00e9\u0001 \\ \/", "tags": ["a", "b\"", "\u2028"], "min_ram": 18446744073709551615, "protected": true, "size": 0}"#,
        )
        .unwrap();
        let bare: V2Image = serde_json::from_str(r#"{"id": "", "tags": null, "checksum": "\u007f"}"#).unwrap();
        for image in [full, escapes, bare] {
            assert_eq!(
                String::from_utf8(image.alliance_json()).unwrap(),
                image.alliance_value().to_string()
            );
        }
    }

    #[test]
    fn absent_values_are_null_and_copy_from_is_omitted() {
        let image: V2Image = serde_json::from_str(r#"{"id": "x"}"#).unwrap();
        let value = image.alliance_value();
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
    fn text_borrows_plain_strings_and_unescapes_the_rest() {
        let body = r#"{"id": "plain", "name": "say \"hi\" \u00e9", "tags": ["a\/b", "c"]}"#;
        let image: V2Image = serde_json::from_str(body).unwrap();
        assert!(image.id.is_borrowed());
        assert!(!image.name.as_ref().unwrap().is_borrowed());
        let owned: V2Image<'static> = image.clone().into_owned();
        assert_eq!(owned, image);
        let alliance = owned.alliance_value();
        assert_eq!(alliance["name"], "say \"hi\" é");
        assert_eq!(alliance["tags"], serde_json::json!(["a/b", "c"]));
    }

    #[test]
    fn pages_are_read_image_by_image() {
        let body = br#"{"images": [{"id": "a"}, {"id": "b", "name": "n"}], "schema": "/v2/schemas/images", "first": "/v2/images", "next": "/v2/images?marker=b"}"#;
        let mut ids = Vec::new();
        let next = read_image_page(body, |image| ids.push(image.id.to_string())).unwrap();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(next.as_deref(), Some("/v2/images?marker=b"));
        assert_eq!(read_image_page(br#"{"images": []}"#, |_| {}).unwrap(), None);
        for bad in [
            &br#"{"next": "/v2/images"}"#[..],
            br#"{"images": [{"name": "no id"}]}"#,
            br#"{"images": {}}"#,
            br#"[]"#,
            br#"{"images": []} trailing"#,
        ] {
            assert!(
                read_image_page(bad, |_| {}).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        assert!(serde_json::from_str::<V2Image>(r#"{"name": "x"}"#).is_err());
        assert!(serde_json::from_str::<V2Image>(r#"{"id": "x", "size": "big"}"#).is_err());
    }
}
