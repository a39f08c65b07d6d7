//! Routes: `/images` and `/images/` (list, create), `/images/{ref}` (show,
//! update, delete). Anything else is 404; a known path with another method
//! is 405 with `Allow`.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::AllianceError;
use crate::ids;

const COLLECTION_METHODS: &str = "GET, POST";
const ITEM_METHODS: &str = "GET, PATCH, PUT, DELETE";

/// How a client names an image in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A UUID: used as the Glance image id.
    Id(String),
    /// Anything else: an image name that must match exactly one image
    /// visible to the environment.
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Collection,
    Item(ImageRef),
}

pub fn route(method: &Method, path: &str) -> Result<Route, AllianceError> {
    let not_found = || AllianceError::not_found(format!("no such resource: {path}"));
    let rest = path.strip_prefix("/images").ok_or_else(not_found)?;
    let route = match rest {
        "" | "/" => Route::Collection,
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
            if ids::is_dashed_uuid(&decoded) {
                Route::Item(ImageRef::Id(decoded.to_ascii_lowercase()))
            } else {
                Route::Item(ImageRef::Name(decoded.into_owned()))
            }
        }
    };
    let allowed = matches!(
        (&route, method),
        (Route::Collection, &Method::GET | &Method::POST)
            | (
                Route::Item(_),
                &Method::GET | &Method::PATCH | &Method::PUT | &Method::DELETE
            )
    );
    if !allowed {
        let allow = match route {
            Route::Collection => COLLECTION_METHODS,
            Route::Item(_) => ITEM_METHODS,
        };
        return Err(AllianceError::method_not_allowed(allow));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_and_items() {
        assert_eq!(route(&Method::GET, "/images").unwrap(), Route::Collection);
        assert_eq!(route(&Method::POST, "/images/").unwrap(), Route::Collection);
        assert_eq!(
            route(&Method::GET, "/images/75DA8211-b8d3-4329-a12b-953e7db4690a").unwrap(),
            Route::Item(ImageRef::Id("75da8211-b8d3-4329-a12b-953e7db4690a".into()))
        );
        assert_eq!(
            route(&Method::PUT, "/images/ubuntu_image").unwrap(),
            Route::Item(ImageRef::Name("ubuntu_image".into()))
        );
        assert_eq!(
            route(&Method::DELETE, "/images/a%2Fb%20c").unwrap(),
            Route::Item(ImageRef::Name("a/b c".into()))
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
        assert_eq!((error.status.as_u16(), error.allow), (405, Some(COLLECTION_METHODS)));
        let error = route(&Method::POST, "/images/x").unwrap_err();
        assert_eq!((error.status.as_u16(), error.allow), (405, Some(ITEM_METHODS)));
        assert_eq!(route(&Method::HEAD, "/images").unwrap_err().status, 405);
    }

    #[test]
    fn odd_references_are_400() {
        assert_eq!(route(&Method::GET, "/images/%FF").unwrap_err().status, 400);
        assert_eq!(route(&Method::GET, "/images/a%0Ab").unwrap_err().status, 400);
    }
}
