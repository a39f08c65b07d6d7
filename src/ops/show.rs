//! `GET /images/{ref}` -> `GET /v2/images/{id}`; 200 with the image object.
//! A name is looked up first (see [`super::lookup`]). The image is shown only
//! if the environment may see it (see [`super::isolation`]).
//!
//! A show by id is shared (see [`crate::limits::single_flight`]): the
//! shows of one image by one environment within the namespace's
//! `coalesce_window_ms` take the answer of one of them - the whole
//! operation (look-up, isolation, failed-import report, reshaping), so
//! each gets what it would have got alone: the image's bytes, or the
//! refusal, rendered for each request with its own request id. Lists and
//! names (a list look-up) are never shared; a write forgets the writer's
//! shared show of the image ([`forget`]).

use bytes::Bytes;
use http::StatusCode;

use super::{import_status, isolation, lookup};

use crate::body::{ResponseBody, json_document};
use crate::error::AllianceError;
use crate::inbound::ImageRef;
use crate::route::Cloud;
use crate::upstream::Session;

/// A show's answer: the image object's bytes, or the refusal.
type Shown = Result<Bytes, AllianceError>;

pub async fn apply(
    session: &Session,
    cloud: &Cloud,
    image_ref: ImageRef,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    let shown = match &image_ref {
        ImageRef::Id(id) => {
            let key = || shared_key(id, &session.environment);
            let call = || show(session, cloud, &image_ref);
            let answer = cloud.shows.run(key, &session.request_id, reusable, weight, call).await;
            if let Some(leader) = answer.shared_from {
                session.record().set_shared_from(leader);
            }
            answer.value
        }
        ImageRef::Name(_) => show(session, cloud, &image_ref).await,
    };
    Ok(json_document(StatusCode::OK, shown?))
}

async fn show(session: &Session, cloud: &Cloud, image_ref: &ImageRef) -> Shown {
    let mut image = lookup::image(session, cloud, image_ref).await?;
    isolation::ensure_visible(session, &image).await?;
    import_status::report_failed_imports(session, std::slice::from_mut(&mut image)).await;
    Ok(Bytes::from(image.alliance_json()))
}

/// Whether a show's answer may be handed to shows that arrive after it:
/// the image, or Glance's (or the facade's) refusal of the request; not a
/// failure upstream (5xx), which only the shows already waiting share.
fn reusable(shown: &Shown) -> bool {
    shown.as_ref().err().is_none_or(|error| error.status.is_client_error())
}

/// What a kept answer costs the shared shows' byte bound.
fn weight(shown: &Shown) -> usize {
    shown.as_ref().map_or_else(|error| error.message.len(), Bytes::len)
}

/// Shows of image `id` by `environment` share answers.
fn shared_key(id: &str, environment: &str) -> String {
    let mut key = String::with_capacity(id.len() + 1 + environment.len());
    key.push_str(id);
    key.push(' ');
    key.push_str(environment);
    key
}

/// After a write to image `id`: the writer's next show makes its own
/// call, so that it reads its write.
pub fn forget(cloud: &Cloud, environment: &str, id: &str) {
    cloud.shows.forget(&shared_key(id, environment));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_upstream_are_not_reused() {
        assert!(reusable(&Ok(Bytes::from_static(b"{}"))));
        assert!(reusable(&Err(AllianceError::not_found("No image found with ID x"))));
        assert!(reusable(&Err(AllianceError::forbidden("no"))));
        assert!(!reusable(&Err(AllianceError::bad_gateway("failed"))));
        assert!(!reusable(&Err(AllianceError::gateway_timeout("slow"))));
        assert!(!reusable(&Err(AllianceError::service_unavailable("busy"))));
    }

    #[test]
    fn keys_name_the_image_and_the_environment() {
        assert_eq!(shared_key("i", "e"), "i e");
        assert_ne!(shared_key("i", "e"), shared_key("i", "f"));
    }
}
