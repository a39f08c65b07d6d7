//! Routes: `/images` and `/images/` (the collection: list, create),
//! `/images/{ref}` (an item: show, update, delete). Anything else is 404; a
//! known path with another method is 405 with `Allow`. Which call a method
//! on a resource is, is the one table of `crate::operation`.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::AllianceError;
use crate::ids;
use crate::operation::{Operation, Resource};

/// How a client names an image in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A UUID: used as the Glance image id.
    Id(String),
    /// Anything else: an image name that must match exactly one image
    /// visible to the environment.
    Name(String),
}

/// The call a request's method and path name, and the image of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub operation: Operation,
    /// `None` on the collection.
    pub image: Option<ImageRef>,
}

pub fn route(method: &Method, path: &str) -> Result<Route, AllianceError> {
    let not_found = || AllianceError::not_found(format!("no such resource: {path}"));
    let rest = path.strip_prefix("/images").ok_or_else(not_found)?;
    let image = match rest {
        "" | "/" => None,
        _ => {
            let segment = rest.strip_prefix('/').ok_or_else(not_found)?;
            if segment.contains('/') {
                return Err(not_found());
            }
            let decoded = percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| AllianceError::bad_request("image reference is not valid UTF-8"))?;
            if decoded.is_empty() || decoded.chars().any(char::is_control) {
                return Err(AllianceError::bad_request(
                    "image reference is empty or has control characters",
                ));
            }
            Some(if ids::is_dashed_uuid(&decoded) {
                ImageRef::Id(decoded.to_ascii_lowercase())
            } else {
                ImageRef::Name(decoded.into_owned())
            })
        }
    };
    let resource = if image.is_some() {
        Resource::Item
    } else {
        Resource::Collection
    };
    let operation = Operation::routed(resource, method).ok_or_else(|| AllianceError::method_not_allowed(resource))?;
    Ok(Route { operation, image })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(operation: Operation, image: Option<ImageRef>) -> Route {
        Route { operation, image }
    }

    #[test]
    fn collection_and_items() {
        assert_eq!(route(&Method::GET, "/images").unwrap(), routed(Operation::List, None));
        assert_eq!(
            route(&Method::POST, "/images/").unwrap(),
            routed(Operation::Create, None)
        );
        assert_eq!(
            route(&Method::GET, "/images/75DA8211-b8d3-4329-a12b-953e7db4690a").unwrap(),
            routed(
                Operation::Show,
                Some(ImageRef::Id("75da8211-b8d3-4329-a12b-953e7db4690a".into()))
            )
        );
        for method in [Method::PUT, Method::PATCH] {
            assert_eq!(
                route(&method, "/images/ubuntu_image").unwrap(),
                routed(Operation::Update, Some(ImageRef::Name("ubuntu_image".into())))
            );
        }
        assert_eq!(
            route(&Method::DELETE, "/images/a%2Fb%20c").unwrap(),
            routed(Operation::Delete, Some(ImageRef::Name("a/b c".into())))
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "/image",
            "/imagesx",
            "/images/a/b",
            "/images/a/",
            "/v2/images",
            "/images//",
        ] {
            assert_eq!(route(&Method::GET, path).unwrap_err().status, 404, "{path}");
        }
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        let error = route(&Method::DELETE, "/images").unwrap_err();
        assert_eq!((error.status.as_u16(), error.allow), (405, Some(Resource::Collection)));
        let error = route(&Method::POST, "/images/x").unwrap_err();
        assert_eq!((error.status.as_u16(), error.allow), (405, Some(Resource::Item)));
        assert_eq!(route(&Method::HEAD, "/images").unwrap_err().status, 405);
    }

    #[test]
    fn odd_references_are_400() {
        assert_eq!(route(&Method::GET, "/images/%FF").unwrap_err().status, 400);
        assert_eq!(route(&Method::GET, "/images/a%0Ab").unwrap_err().status, 400);
    }
}
