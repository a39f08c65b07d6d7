//! Image references. A UUID is an id; anything else is a name that must
//! match exactly one image visible to the environment (Glance's `name`
//! filter): none -> 404, several -> 409 naming the ids.

use super::list;
use crate::error::AllianceError;
use crate::inbound::{ImageRef, ListQuery};
use crate::reshape::V2Image;
use crate::route::Cloud;
use crate::upstream::{Session, glance};

pub async fn by_name(session: &Session, cloud: &Cloud, name: &str) -> Result<V2Image<'static>, AllianceError> {
    let mut matches = list::collect(session, cloud, &ListQuery::by_name(name)).await?;
    // Glance's filter is exact; this guards against an upstream that is not.
    matches.retain(|image| image.name.as_deref() == Some(name));
    single_match(name, matches)
}

/// The image behind a reference: fetched by id, or found by name; the
/// request's audit event names it.
pub async fn image(session: &Session, cloud: &Cloud, image_ref: &ImageRef) -> Result<V2Image<'static>, AllianceError> {
    let image = match image_ref {
        ImageRef::Id(id) => glance::get_image(session, id).await,
        ImageRef::Name(name) => by_name(session, cloud, name).await,
    }?;
    session.audit().image(&image.id, image.name.as_deref());
    Ok(image)
}

pub fn single_match<'a>(name: &str, mut matches: Vec<V2Image<'a>>) -> Result<V2Image<'a>, AllianceError> {
    match matches.len() {
        0 => Err(AllianceError::not_found(format!(
            "no image named \"{name}\" is visible to this environment"
        ))),
        1 => matches.pop().ok_or_else(|| AllianceError::not_found("no such image")),
        count => {
            let ids: Vec<&str> = matches.iter().map(|image| &*image.id).collect();
            Err(AllianceError::conflict(format!(
                "{count} images are named \"{name}\"; use one of their ids: {}",
                ids.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str) -> V2Image<'_> {
        V2Image {
            id: id.into(),
            name: Some("n".into()),
            ..V2Image::default()
        }
    }

    #[test]
    fn none_one_or_several() {
        assert_eq!(single_match("n", vec![]).unwrap_err().status, 404);
        assert_eq!(single_match("n", vec![image("a")]).unwrap().id, "a");
        let error = single_match("n", vec![image("a"), image("b")]).unwrap_err();
        assert_eq!(error.status, 409);
        assert!(
            error
                .message
                .contains("2 images are named \"n\"; use one of their ids: a, b")
        );
    }
}
