//! Routes: `/images` and `/images/` (list, create), `/images/{ref}` (show,
//! update, delete). Anything else is 404; a known path with another method
//! is 405 with `Allow`. Which call a method on a resource is, and so which
//! methods a resource allows, is written once: in [`COLLECTION`] and
//! [`ITEM`].

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::AllianceError;
use crate::ids;

/// The calls on `/images`, by method.
const COLLECTION: &[(Method, Route)] = &[(Method::GET, Route::List), (Method::POST, Route::Create)];
/// An item call, given the image the path names.
type ItemRoute = fn(ImageRef) -> Route;

/// The calls on `/images/{ref}`, by method.
const ITEM: &[(Method, ItemRoute)] = &[
    (Method::GET, Route::Show),
    (Method::PATCH, Route::Update),
    (Method::PUT, Route::Update),
    (Method::DELETE, Route::Delete),
];

/// `Allow` of each resource: the methods of its table, in order.
const COLLECTION_ALLOW: &str = "GET, POST";
const ITEM_ALLOW: &str = "GET, PATCH, PUT, DELETE";

/// How a client names an image in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A UUID: used as the Glance image id.
    Id(String),
    /// Anything else: an image name that must match exactly one image
    /// visible to the environment.
    Name(String),
}

/// The five Alliance calls, as the path and method name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    List,
    Create,
    Show(ImageRef),
    Update(ImageRef),
    Delete(ImageRef),
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
    match image {
        None => find(COLLECTION, method, COLLECTION_ALLOW).cloned(),
        Some(image) => find(ITEM, method, ITEM_ALLOW).map(|route| route(image)),
    }
}

/// The entry of `table` for `method`, or 405 with `allow`.
fn find<'a, T>(table: &'a [(Method, T)], method: &Method, allow: &'static str) -> Result<&'a T, AllianceError> {
    table
        .iter()
        .find(|(allowed, _)| allowed == method)
        .map(|(_, entry)| entry)
        .ok_or_else(|| AllianceError::method_not_allowed(allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_and_items() {
        assert_eq!(route(&Method::GET, "/images").unwrap(), Route::List);
        assert_eq!(route(&Method::POST, "/images/").unwrap(), Route::Create);
        assert_eq!(
            route(&Method::GET, "/images/75DA8211-b8d3-4329-a12b-953e7db4690a").unwrap(),
            Route::Show(ImageRef::Id("75da8211-b8d3-4329-a12b-953e7db4690a".into()))
        );
        for method in [Method::PUT, Method::PATCH] {
            assert_eq!(
                route(&method, "/images/ubuntu_image").unwrap(),
                Route::Update(ImageRef::Name("ubuntu_image".into()))
            );
        }
        assert_eq!(
            route(&Method::DELETE, "/images/a%2Fb%20c").unwrap(),
            Route::Delete(ImageRef::Name("a/b c".into()))
        );
    }

    #[test]
    fn allow_lists_each_table() {
        fn methods<T>(table: &[(Method, T)]) -> String {
            table
                .iter()
                .map(|(method, _)| method.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
        assert_eq!(methods(COLLECTION), COLLECTION_ALLOW);
        assert_eq!(methods(ITEM), ITEM_ALLOW);
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
        assert_eq!((error.status.as_u16(), error.allow), (405, Some(COLLECTION_ALLOW)));
        let error = route(&Method::POST, "/images/x").unwrap_err();
        assert_eq!((error.status.as_u16(), error.allow), (405, Some(ITEM_ALLOW)));
        assert_eq!(route(&Method::HEAD, "/images").unwrap_err().status, 405);
    }

    #[test]
    fn odd_references_are_400() {
        assert_eq!(route(&Method::GET, "/images/%FF").unwrap_err().status, 400);
        assert_eq!(route(&Method::GET, "/images/a%0Ab").unwrap_err().status, 400);
    }
}
