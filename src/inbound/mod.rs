//! Step 1 of a request (README, "How a request goes through"): parse and validate the Alliance call into a typed
//! [`AllianceRequest`]. Every bad input ends here with a 4xx, before anything
//! is sent upstream.
//!
//! In two parts, so that the caller is judged (`callers`) before its body
//! is read: [`head`] - target length (414), path and method (404/405),
//! `X-Target-Ns` and `X-Environment-Id` (400) - then [`parse`] -
//! `Content-Type` on writes (415), body size and time (413, 408), body shape
//! and fields (400).

mod body;
mod headers;
pub mod image_fields;
pub mod list_query;
mod path;

use hyper::body::Body;

use crate::config::EnvironmentIdFormat;
use crate::error::AllianceError;
use crate::operation::Operation;
use crate::refusal::Refusal;
pub use body::BodyTimeouts;
pub use image_fields::{CreateImage, ImageFields, UpdateImage};
pub use list_query::ListQuery;
pub use path::ImageRef;
use path::Route;

/// A validated Alliance call.
#[derive(Debug, Clone, PartialEq)]
pub struct AllianceRequest {
    pub namespace: String,
    /// The project id, normalised by the namespace's rule.
    pub environment: String,
    pub input: Input,
}

/// What each of the five calls was given, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    List(ListQuery),
    Show(ImageRef),
    Create(CreateImage),
    Update(ImageRef, UpdateImage),
    Delete(ImageRef),
}

#[cfg(test)]
impl Input {
    /// The call parsed (the request head's `operation` serves the facade).
    pub fn operation(&self) -> Operation {
        match self {
            Input::List(_) => Operation::List,
            Input::Show(_) => Operation::Show,
            Input::Create(_) => Operation::Create,
            Input::Update(..) => Operation::Update,
            Input::Delete(_) => Operation::Delete,
        }
    }
}

/// What inbound validation needs to know from the configuration.
pub trait InboundPolicy {
    fn max_body_bytes(&self) -> usize;
    fn body_timeouts(&self) -> BodyTimeouts;
    /// Longest request target (path and query) accepted.
    fn max_uri_bytes(&self) -> usize;
    /// The environment id rule of a configured namespace; `None` when the
    /// namespace is unknown.
    fn environment_id_format(&self, namespace: &str) -> Option<EnvironmentIdFormat>;
}

/// Which cloud and project a request is for, as far as validated: filled
/// in as soon as each is known so that the request log line can show them
/// even on later errors.
#[derive(Debug, Default, Clone)]
pub struct Target {
    pub namespace: Option<String>,
    pub environment: Option<String>,
}

/// What the target, the method and the two headers say.
#[derive(Debug)]
pub struct Head {
    route: Route,
    pub namespace: String,
    /// The project id, normalised by the namespace's rule.
    pub environment: String,
}

impl Head {
    pub fn operation(&self) -> Operation {
        self.route.operation
    }

    /// The image the path names (`None` on the collection).
    pub fn image(&self) -> Option<&ImageRef> {
        self.route.image.as_ref()
    }
}

/// The first part: the target, the method and the two headers.
pub fn head<B>(
    request: &http::Request<B>,
    policy: &impl InboundPolicy,
    target: &mut Target,
) -> Result<Head, AllianceError> {
    let length = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if length > policy.max_uri_bytes() {
        return Err(AllianceError::refused(Refusal::UriTooLong {
            limit: Some(policy.max_uri_bytes()),
        }));
    }
    let route = path::route(request.method(), request.uri().path())?;
    let headers = request.headers();
    let namespace = headers::target_namespace(headers)?;
    let format = policy
        .environment_id_format(&namespace)
        .ok_or_else(|| AllianceError::bad_request("X-Target-Ns does not name a known namespace"))?;
    target.namespace = Some(namespace.clone());
    let environment = headers::environment_id(headers, format)?;
    target.environment = Some(environment.clone());
    Ok(Head {
        route,
        namespace,
        environment,
    })
}

/// The second part: the query or the body the route takes.
pub async fn parse<B>(
    request: http::Request<B>,
    head: Head,
    policy: &impl InboundPolicy,
) -> Result<AllianceRequest, AllianceError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Head {
        route,
        namespace,
        environment,
    } = head;
    let input = match (route.operation, route.image) {
        (Operation::List, _) => Input::List(ListQuery::parse(request.uri().query())?),
        (Operation::Create, _) => Input::Create(CreateImage::from_json(read_image_object(request, policy).await?)?),
        (Operation::Show, Some(image_ref)) => Input::Show(image_ref),
        (Operation::Delete, Some(image_ref)) => Input::Delete(image_ref),
        (Operation::Update, Some(image_ref)) => {
            let image = read_image_object(request, policy).await?;
            Input::Update(image_ref, UpdateImage::from_json(image)?)
        }
        // The routes give an image to every item call.
        (Operation::Show | Operation::Delete | Operation::Update, None) => {
            return Err(AllianceError::not_found("no such resource"));
        }
    };
    Ok(AllianceRequest {
        namespace,
        environment,
        input,
    })
}

async fn read_image_object<B>(
    request: http::Request<B>,
    policy: &impl InboundPolicy,
) -> Result<serde_json::Map<String, serde_json::Value>, AllianceError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    headers::require_json_content_type(request.headers())?;
    let bytes = body::read_limited(request, policy.max_body_bytes(), policy.body_timeouts()).await?;
    body::image_object(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    struct Policy;

    impl InboundPolicy for Policy {
        fn max_body_bytes(&self) -> usize {
            64
        }

        fn body_timeouts(&self) -> BodyTimeouts {
            BodyTimeouts {
                idle: std::time::Duration::from_secs(5),
                total: std::time::Duration::from_secs(5),
            }
        }

        fn max_uri_bytes(&self) -> usize {
            64
        }

        fn environment_id_format(&self, namespace: &str) -> Option<EnvironmentIdFormat> {
            (namespace == "ccsr1").then_some(EnvironmentIdFormat::Hex32OrUuid)
        }
    }

    const ENV: &str = "54915a05b0bb43dcbb218525c426b6a5";

    fn request(method: &str, uri: &str, body: &str) -> http::Request<Full<bytes::Bytes>> {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("x-target-ns", "ccsr1")
            .header("x-environment-id", ENV)
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.to_owned())))
            .unwrap()
    }

    async fn parse_one(request: http::Request<Full<bytes::Bytes>>) -> Result<AllianceRequest, AllianceError> {
        let head = head(&request, &Policy, &mut Target::default())?;
        parse(request, head, &Policy).await
    }

    #[tokio::test]
    async fn parses_each_operation() {
        let list = parse_one(request("GET", "/images/", "")).await.unwrap();
        assert_eq!(list.input, Input::List(ListQuery::default()));
        assert_eq!(list.environment, ENV);
        let show = parse_one(request("GET", "/images/cirros%20x", "")).await.unwrap();
        assert_eq!(show.input, Input::Show(ImageRef::Name("cirros x".into())));
        let delete = parse_one(request("DELETE", "/images/75da8211-b8d3-4329-a12b-953e7db4690a", ""))
            .await
            .unwrap();
        assert_eq!(delete.input.operation(), Operation::Delete);
        let create = parse_one(request("POST", "/images", r#"{"image": {"name": "a"}}"#))
            .await
            .unwrap();
        assert_eq!(create.input.operation(), Operation::Create);
        for method in ["PUT", "PATCH"] {
            let update = parse_one(request(method, "/images/a", r#"{"image": {"name": "b"}}"#))
                .await
                .unwrap();
            assert_eq!(update.input.operation(), Operation::Update);
        }
    }

    #[test]
    fn the_head_says_whether_the_call_writes() {
        let writes = |method: &str, uri: &str| {
            head(&request(method, uri, ""), &Policy, &mut Target::default()).map(|head| head.operation().writes())
        };
        assert_eq!(writes("GET", "/images"), Ok(false));
        assert_eq!(writes("GET", "/images/x"), Ok(false));
        for (method, uri) in [
            ("POST", "/images"),
            ("PUT", "/images/x"),
            ("PATCH", "/images/x"),
            ("DELETE", "/images/x"),
        ] {
            assert_eq!(writes(method, uri), Ok(true), "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn long_targets_are_414_before_anything_else() {
        let at_limit = format!("/images/{}", "a".repeat(56));
        assert!(parse_one(request("GET", &at_limit, "")).await.is_ok());
        let mut long = request("GET", &format!("/nothing?{}", "a".repeat(60)), "");
        long.headers_mut().remove("x-target-ns");
        assert_eq!(parse_one(long).await.unwrap_err().status, 414);
    }

    #[tokio::test]
    async fn path_errors_come_before_header_errors() {
        let mut bad = request("GET", "/nothing", "");
        bad.headers_mut().remove("x-target-ns");
        assert_eq!(parse_one(bad).await.unwrap_err().status, 404);
    }

    #[tokio::test]
    async fn unknown_namespace_is_400_without_listing_names() {
        let mut bad = request("GET", "/images", "");
        bad.headers_mut().insert("x-target-ns", "other".parse().unwrap());
        let error = parse_one(bad).await.unwrap_err();
        assert_eq!(error.status, 400);
        assert!(!error.message.contains("ccsr1"));
    }

    #[tokio::test]
    async fn body_checks() {
        let mut no_type = request("POST", "/images", r#"{"image": {}}"#);
        no_type.headers_mut().remove("content-type");
        assert_eq!(parse_one(no_type).await.unwrap_err().status, 415);
        let big = format!(r#"{{"image": {{"name": "{}"}}}}"#, "x".repeat(100));
        assert_eq!(
            parse_one(request("POST", "/images", &big)).await.unwrap_err().status,
            413
        );
        assert_eq!(
            parse_one(request("POST", "/images", "{")).await.unwrap_err().status,
            400
        );
        // GET and DELETE accept (and ignore) a JSON content type.
        assert!(parse_one(request("GET", "/images/x", "")).await.is_ok());
    }
}
