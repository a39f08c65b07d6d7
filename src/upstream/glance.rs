//! The Glance v2 API as the facade uses it: every call it makes, each with
//! its one explicit status table ([`StatusTable`], see
//! [`crate::reshape::status`]), the paths, and how answers are read. The
//! operations (`crate::ops`) decide which calls to make and in what order;
//! this module knows how each one is made.

use std::time::Duration;

use http::{HeaderMap, Method};
use serde::Deserialize;
use url::Url;

use super::{Call, JSON, JSON_PATCH, Reply, Session, UpstreamHttp, record_call};
use crate::error::AllianceError;
use crate::metrics::{LabelValue, NamespaceMetrics, UpstreamCall};
use crate::refusal::Service;
use crate::reshape::V2Image;
use crate::reshape::message::for_log;
use crate::reshape::status::StatusTable;
use crate::reshape::status::Verdict::{CredentialsRejected, No, Refused, Success};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/v2/images/{id}`; ids that come from Glance are encoded, not trusted.
pub fn image_path(id: &str) -> String {
    format!("/v2/images/{}", segment(id))
}

fn segment(text: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(text, PATH_SEGMENT)
}

/// A success body that does not parse is the upstream's fault: 502.
pub fn parse_json<'a, T: Deserialize<'a>>(reply: &'a Reply, call: UpstreamCall) -> Result<T, AllianceError> {
    crate::reshape::json_text(&reply.body)
        .and_then(serde_json::from_str)
        .map_err(|error| unusable_answer(call, &error))
}

/// The 502 for a success body of `call` that does not parse.
pub fn unusable_answer(call: UpstreamCall, error: &serde_json::Error) -> AllianceError {
    tracing::warn!(
        call = call.label(),
        reason = "upstream_unusable_answer",
        error = %for_log(error.to_string()),
        "unusable answer from the image service"
    );
    AllianceError::bad_gateway("the image service sent an unusable answer")
}

/// `table` applied to `reply`: the reply if it is the call's success.
fn checked(table: &StatusTable, reply: Reply) -> Result<Reply, AllianceError> {
    table.check(reply.status, &reply.body)?;
    Ok(reply)
}

pub const GET_IMAGE: StatusTable = StatusTable {
    call: UpstreamCall::GetImage,
    rows: &[
        (200, Success),
        (400, Refused),
        (403, Refused),
        (404, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

/// One image, detached from Glance's answer.
pub async fn get_image(session: &Session, id: &str) -> Result<V2Image<'static>, AllianceError> {
    let reply = checked(&GET_IMAGE, session.send(&GET_IMAGE, &Call::get(image_path(id))).await?)?;
    parse_json(&reply, GET_IMAGE.call).map(V2Image::into_owned)
}

pub const LIST_IMAGES: StatusTable = StatusTable {
    call: UpstreamCall::ListImages,
    rows: &[
        (200, Success),
        (400, Refused),
        (403, Refused),
        (404, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

/// One page of the image list; `call` is the first page's or a `next` link's.
pub async fn list_page(session: &Session, call: &Call) -> Result<Reply, AllianceError> {
    checked(&LIST_IMAGES, session.send(&LIST_IMAGES, call).await?)
}

pub const CREATE_IMAGE: StatusTable = StatusTable {
    call: UpstreamCall::CreateImage,
    rows: &[
        (201, Success),
        (400, Refused),
        (403, Refused),
        (404, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

/// `body`: the v2 image document. The reply carries the image and the
/// import methods this image may use (`OpenStack-image-import-methods`).
pub async fn create_image(session: &Session, body: Vec<u8>) -> Result<Reply, AllianceError> {
    let call = Call::with_body(Method::POST, "/v2/images", JSON, body);
    checked(&CREATE_IMAGE, session.send(&CREATE_IMAGE, &call).await?)
}

/// Glance's 403 (formats of a non-queued image, not the owner), 404 and 409
/// come back with their own status and message.
pub const PATCH_IMAGE: StatusTable = StatusTable {
    call: UpstreamCall::PatchImage,
    rows: &[
        (200, Success),
        (400, Refused),
        (403, Refused),
        (404, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

/// `patch`: a JSON-Patch document in Glance's dialect. The reply carries
/// the image as it now is.
pub async fn patch_image(session: &Session, id: &str, patch: Vec<u8>) -> Result<Reply, AllianceError> {
    let call = Call::with_body(Method::PATCH, image_path(id), JSON_PATCH, patch);
    checked(&PATCH_IMAGE, session.send(&PATCH_IMAGE, &call).await?)
}

pub const DELETE_IMAGE: StatusTable = StatusTable {
    call: UpstreamCall::DeleteImage,
    rows: &[
        (204, Success),
        (400, Refused),
        (403, Refused),
        (404, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

pub async fn delete_image(session: &Session, id: &str) -> Result<(), AllianceError> {
    checked(
        &DELETE_IMAGE,
        session.send(&DELETE_IMAGE, &Call::delete(image_path(id))).await?,
    )
    .map(drop)
}

/// 404 (the image just created is gone) and 415 (the facade's own request
/// was wrong) are not the client's doing, so they are left to the 502 row.
pub const IMPORT_IMAGE: StatusTable = StatusTable {
    call: UpstreamCall::ImportImage,
    rows: &[
        (202, Success),
        (400, Refused),
        (403, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

/// The web-download import of `uri` into image `id` (sent by the caller,
/// which decides what a lost answer or a conflict means).
pub fn web_download_call(id: &str, uri: &Url) -> Call {
    let body = serde_json::json!({"method": {"name": "web-download", "uri": uri.as_str()}});
    Call::with_body(
        Method::POST,
        format!("{}/import", image_path(id)),
        JSON,
        body.to_string().into_bytes(),
    )
}

/// Membership lookup: 200 when the environment is a member (any status);
/// 404 and 403 say it is not.
pub const GET_MEMBER: StatusTable = StatusTable {
    call: UpstreamCall::GetMember,
    rows: &[(200, Success), (404, No), (403, No), (401, CredentialsRejected)],
};

/// Whether `member` is a member of image `id`.
pub async fn is_member(session: &Session, id: &str, member: &str) -> Result<bool, AllianceError> {
    let call = Call::get(format!("{}/members/{}", image_path(id), segment(member)));
    let reply = session.send(&GET_MEMBER, &call).await?;
    GET_MEMBER.judge(reply.status, &reply.body)
}

pub const GET_TASKS: StatusTable = StatusTable {
    call: UpstreamCall::GetTasks,
    rows: &[
        (200, Success),
        (403, Refused),
        (404, Refused),
        (401, CredentialsRejected),
    ],
};

/// An import task of an image, as much of it as the facade reads.
#[derive(Debug, Deserialize)]
pub struct Task {
    pub status: String,
    #[serde(default)]
    pub created_at: String,
}

#[derive(Deserialize)]
struct TaskList {
    tasks: Vec<Task>,
}

/// The import tasks of image `id`.
pub async fn image_tasks(session: &Session, id: &str) -> Result<Vec<Task>, AllianceError> {
    let call = Call::get(format!("{}/tasks", image_path(id)));
    let reply = checked(&GET_TASKS, session.send(&GET_TASKS, &call).await?)?;
    parse_json::<TaskList>(&reply, GET_TASKS.call).map(|list| list.tasks)
}

pub const INFO_IMPORT: StatusTable = StatusTable {
    call: UpstreamCall::InfoImport,
    rows: &[(200, Success), (403, No), (404, No), (401, CredentialsRejected)],
};

#[derive(Deserialize)]
struct InfoImport {
    #[serde(rename = "import-methods")]
    import_methods: InfoValue,
}

#[derive(Deserialize)]
struct InfoValue {
    value: Vec<String>,
}

/// The import methods the cloud offers, or `None` when it does not say (an
/// older Glance without `/v2/info/import`, a policy hiding it, an answer
/// that does not parse).
pub async fn import_methods(session: &Session) -> Result<Option<Vec<String>>, AllianceError> {
    let reply = session.send(&INFO_IMPORT, &Call::get("/v2/info/import")).await?;
    if !INFO_IMPORT.judge(reply.status, &reply.body)? {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<InfoImport>(&reply.body)
        .map(|info| Some(info.import_methods.value))
        .unwrap_or_else(|error| {
            tracing::warn!(error = %for_log(error.to_string()), "unusable /v2/info/import answer");
            None
        }))
}

/// `OpenStack-image-import-methods: glance-direct,web-download`, as a
/// create reply gives it.
pub fn import_methods_header(reply: &Reply) -> Option<Vec<String>> {
    let value = reply.headers.get("openstack-image-import-methods")?.to_str().ok()?;
    Some(
        value
            .split(',')
            .map(|method| method.trim().to_owned())
            .filter(|method| !method.is_empty())
            .collect(),
    )
}

pub const UPLOAD_DATA: StatusTable = StatusTable {
    call: UpstreamCall::UploadData,
    rows: &[
        (204, Success),
        (400, Refused),
        (403, Refused),
        (404, Refused),
        (409, Refused),
        (413, Refused),
        (401, CredentialsRejected),
    ],
};

/// Streams image data into image `id`, bounded by `timeout` as a whole.
pub async fn upload_data(
    session: &Session,
    id: &str,
    data: reqwest::Body,
    timeout: Duration,
) -> Result<(), AllianceError> {
    let call = Call {
        method: Method::PUT,
        path_and_query: format!("{}/file", image_path(id)),
        body: None,
    };
    let reply = session.upload(&UPLOAD_DATA, &call, data, timeout).await?;
    UPLOAD_DATA.check(reply.status, &reply.body)
}

/// oslo.middleware's healthcheck, at the root of the Glance endpoint
/// (outside its authentication): 200 when Glance serves, 503 when an
/// operator disabled it by file (draining).
pub const HEALTHCHECK: StatusTable = StatusTable {
    call: UpstreamCall::Healthcheck,
    rows: &[(200, Success)],
};

/// `GET {endpoint}/healthcheck`, with no credentials (for readiness); why
/// not, in a few words.
pub async fn healthcheck(
    http: &UpstreamHttp,
    metrics: &NamespaceMetrics,
    endpoint: &Url,
    request_id: &str,
) -> Result<(), String> {
    let call = Call::get("/healthcheck");
    let started = std::time::Instant::now();
    let result = http.send(endpoint, &HeaderMap::new(), &call, request_id, true).await;
    record_call(metrics, &HEALTHCHECK, &result, started.elapsed());
    match result {
        Ok(reply) if HEALTHCHECK.verdict(reply.status) == Some(Success) => Ok(()),
        Ok(reply) => Err(format!(
            "the image service's healthcheck answered {}",
            reply.status.as_u16()
        )),
        Err(error) => Err(error.into_alliance_error(Service::Image, &call).message),
    }
}

/// Adds a custom property to image `id` (JSON-Patch `add`).
pub async fn add_property(session: &Session, id: &str, name: &str, value: &str) -> Result<(), AllianceError> {
    let patch = serde_json::json!([{"op": "add", "path": format!("/{name}"), "value": value}]);
    patch_image(session, id, patch.to_string().into_bytes()).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn image_paths_are_encoded() {
        assert_eq!(
            image_path("75da8211-b8d3-4329-a12b-953e7db4690a"),
            "/v2/images/75da8211-b8d3-4329-a12b-953e7db4690a"
        );
        assert_eq!(image_path("../x?y"), "/v2/images/..%2Fx%3Fy");
    }

    #[test]
    fn the_web_download_body() {
        let url = Url::parse("http://cloudhyd.com/openstack/images/cirros-0.3.0-i386-disk.img").unwrap();
        let call = web_download_call("i", &url);
        assert_eq!(call.path_and_query, "/v2/images/i/import");
        let (media_type, body) = call.body.unwrap();
        assert_eq!(media_type, JSON);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"method":{"name":"web-download","uri":"http://cloudhyd.com/openstack/images/cirros-0.3.0-i386-disk.img"}}"#
        );
    }

    #[test]
    fn reads_the_create_reply_header() {
        let mut reply = Reply {
            status: StatusCode::CREATED,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        };
        assert_eq!(import_methods_header(&reply), None);
        reply.headers.insert(
            "openstack-image-import-methods",
            "glance-direct, web-download".parse().unwrap(),
        );
        assert_eq!(
            import_methods_header(&reply).unwrap(),
            ["glance-direct", "web-download"]
        );
    }
}
