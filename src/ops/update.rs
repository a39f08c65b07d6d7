//! `PATCH`/`PUT /images/{ref}` -> the image (`GET /v2/images/{id}` or a name
//! lookup), checked to belong to the environment, then one
//! `PATCH /v2/images/{id}` with `application/openstack-images-v2.1-json-patch`
//! and one operation per field given, as the field table says (see
//! [`fields::json_patch`]).

use super::isolation::{self, Write};
use super::{fields, import_status, lookup, show};
use http::StatusCode;

use crate::body::ResponseBody;
use crate::error::AllianceError;
use crate::inbound::{ImageRef, UpdateImage};
use crate::reshape::{V2Image, image_response};
use crate::route::Cloud;
use crate::upstream::Session;
use crate::upstream::glance::{self, PATCH_IMAGE};

pub async fn apply(
    session: &Session,
    cloud: &Cloud,
    image_ref: ImageRef,
    update: UpdateImage,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    let image = lookup::image(session, cloud, &image_ref).await?;
    isolation::ensure_writable(session, &image, Write::Modify).await?;
    let patch = serde_json::to_vec(&fields::json_patch(&update.fields, &image)).unwrap_or_default();
    let reply = glance::patch_image(session, &image.id, patch).await;
    // Whatever Glance answered: a failed write may have taken effect.
    show::forget(cloud, &session.environment, &image.id);
    let reply = reply?;
    let mut image: V2Image = glance::parse_json(&reply, PATCH_IMAGE.call)?;
    import_status::report_failed_imports(session, std::slice::from_mut(&mut image)).await;
    Ok(image_response(StatusCode::OK, image))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn update(value: Value) -> UpdateImage {
        match value {
            Value::Object(map) => UpdateImage::from_json(map).unwrap(),
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn one_replace_per_core_field_in_the_tables_order() {
        let update = update(
            json!({"name": "ubuntu_image", "disk_format": "ari", "container_format": "bare", "min_ram": 1, "min_disk": 500, "is_public": false, "protected": false, "tags": []}),
        );
        assert_eq!(
            fields::json_patch(&update.fields, &V2Image::default()).to_string(),
            concat!(
                r#"[{"op":"replace","path":"/name","value":"ubuntu_image"},"#,
                r#"{"op":"replace","path":"/tags","value":[]},"#,
                r#"{"op":"replace","path":"/container_format","value":"bare"},"#,
                r#"{"op":"replace","path":"/min_ram","value":1},"#,
                r#"{"op":"replace","path":"/disk_format","value":"ari"},"#,
                r#"{"op":"replace","path":"/visibility","value":"private"},"#,
                r#"{"op":"replace","path":"/protected","value":false},"#,
                r#"{"op":"replace","path":"/min_disk","value":500}]"#
            )
        );
    }
}
