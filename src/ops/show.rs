//! `GET /images/{ref}` -> `GET /v2/images/{id}`; 200 with the image object.
//! A name is looked up first (see [`super::lookup`]). The image is shown only
//! if the environment may see it (see [`super::isolation`]).

use http::StatusCode;

use super::{image_path, image_response, import_status, isolation, lookup, parse_json};

use crate::body::ResponseBody;
use crate::error::AllianceError;
use crate::inbound::ImageRef;
use crate::reshape::V2Image;
use crate::route::Cloud;
use crate::upstream::status::{CLIENT_REFUSALS, StatusTable};
use crate::upstream::{Call, Session};

pub const GET_IMAGE: StatusTable = StatusTable {
    call: "GET /v2/images/{id}",
    success: 200,
    refused: CLIENT_REFUSALS,
};

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

pub async fn get_image(session: &Session, id: &str) -> Result<V2Image<'static>, AllianceError> {
    let reply = session.send(&Call::get(image_path(id))).await?;
    GET_IMAGE.check(&reply)?;
    parse_json(&reply, GET_IMAGE.call).map(V2Image::into_owned)
}
