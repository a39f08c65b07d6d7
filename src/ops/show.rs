//! `GET /images/{ref}` -> `GET /v2/images/{id}`; 200 with the image object.
//! A name is looked up first (see [`super::lookup`]). The image is shown only
//! if the environment may see it (see [`super::isolation`]).

use http::StatusCode;

use super::{import_status, isolation, lookup};

use crate::body::ResponseBody;
use crate::error::AllianceError;
use crate::inbound::ImageRef;
use crate::reshape::image_response;
use crate::route::Cloud;
use crate::upstream::Session;

pub async fn apply(
    session: &Session,
    cloud: &Cloud,
    image_ref: ImageRef,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    let mut image = lookup::image(session, cloud, image_ref).await?;
    isolation::ensure_visible(session, &image).await?;
    import_status::report_failed_imports(session, std::slice::from_mut(&mut image)).await;
    Ok(image_response(StatusCode::OK, image))
}
