//! `DELETE /images/{ref}` -> the image (`GET /v2/images/{id}` or a name
//! lookup), checked to belong to the environment, then
//! `DELETE /v2/images/{id}`. Glance answers 204; the Alliance answer is 200
//! with an empty body. Protected images (403) and missing ones (404) keep
//! Glance's status and message.

use http::StatusCode;

use super::isolation::{self, Write};
use super::{lookup, show};
use crate::body::{self, ResponseBody};
use crate::error::AllianceError;
use crate::inbound::ImageRef;
use crate::route::Cloud;
use crate::upstream::{Session, glance};

pub async fn apply(
    session: &Session,
    cloud: &Cloud,
    image_ref: ImageRef,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    let image = lookup::image(session, cloud, &image_ref)
        .await
        .map_err(as_delete_not_found)?;
    isolation::ensure_writable(session, &image, Write::Delete).await?;
    let deleted = glance::delete_image(session, &image.id).await;
    // Whatever Glance answered: a failed write may have taken effect.
    show::forget(cloud, &session.environment, &image.id);
    deleted?;
    let mut response = http::Response::new(body::empty());
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Glance words a missing image differently on delete; keep its wording
/// although the facade found out with a GET.
fn as_delete_not_found(error: AllianceError) -> AllianceError {
    match error.message.strip_prefix("No image found with ID ") {
        Some(id) if error.status == StatusCode::NOT_FOUND => {
            AllianceError::not_found(format!("Failed to find image {id} to delete"))
        }
        _ => error,
    }
}
