//! Discovery: the versions document and version negotiation, the healthcheck,
//! `/v2/info/*` and the image schemas.

use super::*;

#[tokio::test]
async fn versions_document() {
    // transcript 001: 200 without authentication and without a request id.
    let mock = Mock::start().await;
    let port = mock.handle.addr().port();
    let versions = mock.get(Who::Anonymous, "/versions").await;
    assert_eq!(versions.status, 200);
    assert_eq!(versions.header("content-type"), Some("application/json"));
    assert_eq!(versions.header("x-openstack-request-id"), None);
    // 1682 bytes with the recorded 4-digit port; each of the 16 links carries the port.
    assert_eq!(versions.body.len(), 1682 + 16 * (port.to_string().len() - 4));
    let href = format!("http://127.0.0.1:{port}/v2/");
    assert!(versions.text().starts_with(&format!(
        r#"{{"versions": [{{"id": "v2.15", "status": "SUPPORTED", "links": [{{"rel": "self", "href": "{href}"}}]}}, {{"id": "v2.13""#
    )));
    let ids: Vec<Value> = versions.json()["versions"]
        .as_array()
        .map(|v| v.iter().map(|x| x["id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids[7], "v2.17");
    let recorded = recorded("001").body;
    assert_eq!(versions.text(), recorded.replace(":9292/", &format!(":{port}/")));
}

/// Anything unversioned is 300 with the versions document.
async fn unversioned(path: &str, accept: Option<&str>) {
    let mock = Mock::start().await;
    let versions = mock.get(Who::Anonymous, "/versions").await;
    let mut request = mock.request(Who::A, Method::GET, path);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let answer = mock.send(request).await;
    assert_eq!(answer.status, 300, "{path}");
    assert_eq!(answer.body, versions.body);
}

cases!(unversioned {
    // transcript 002
    root => ("/", None),
    // transcript 211
    v1_path => ("/v1/images", None),
    // transcript 212
    v3_path => ("/v3/images", None),
    // transcript extras/004
    unknown_minor_version => ("/v2.99/images?limit=1", None),
    // transcript extras/008
    version_in_accept_header => ("/images", Some("application/vnd.openstack.images-v2.1+json")),
});

/// A request answered with `status` (the body is not the point).
async fn answered(who: Who, path: &str, status: u16) {
    let mock = Mock::start().await;
    assert_eq!(mock.get(who, path).await.status, status, "{path}");
}

cases!(answered {
    // transcript extras/003
    known_minor_version_as_v2 => (Who::A, "/v2.17/images?limit=1", 200),
    // transcript 003
    v2_root_needs_authentication => (Who::Anonymous, "/v2/", 401),
    // transcript 005
    image_schema_needs_authentication => (Who::Anonymous, "/v2/schemas/image", 401),
});

#[tokio::test]
async fn v2_root_is_not_found() {
    // transcript extras/001
    let mock = Mock::start().await;
    expect_error(
        &mock.get(Who::A, "/v2/").await,
        404,
        154,
        "The resource could not be found.",
    );
}

#[tokio::test]
async fn v2_redirects_to_v2_root() {
    // transcript extras/002
    let mock = Mock::start().await;
    let port = mock.handle.addr().port();
    let redirect = mock.get(Who::A, "/v2").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(
        redirect.header("location"),
        Some(format!("http://127.0.0.1:{port}/v2/").as_str())
    );
}

#[tokio::test]
async fn healthcheck() {
    // transcript 004
    let mock = Mock::start().await;
    let health = mock.get(Who::Anonymous, "/healthcheck").await;
    assert_eq!((health.status, health.text().as_str()), (200, "OK"));
}

/// An info document, byte for byte as recorded.
async fn info_document(path: &str, transcript: &str) {
    let mock = Mock::start().await;
    assert_eq!(mock.get(Who::A, path).await.text(), recorded(transcript).body);
}

cases!(info_document {
    // transcript 128
    import_methods => ("/v2/info/import", "128"),
    // transcript 129
    stores => ("/v2/info/stores", "129"),
    // transcript 131
    usage => ("/v2/info/usage", "131"),
});

#[tokio::test]
async fn info_import_sends_content_type_first() {
    // transcript 128
    let mock = Mock::start().await;
    let import = mock.get(Who::A, "/v2/info/import").await;
    assert_eq!(
        import.header_names()[..2],
        ["content-type".to_owned(), "content-length".to_owned()]
    );
}

#[tokio::test]
async fn store_details_are_for_admins() {
    // transcript 130
    let mock = Mock::start().await;
    expect_error(
        &mock.get(Who::A, "/v2/info/stores/detail").await,
        403,
        183,
        "You are not authorized to complete stores_info_detail action.",
    );
    assert_eq!(
        mock.get(Who::Admin, "/v2/info/stores/detail").await.json()["stores"][0]["type"],
        "file"
    );
}

#[tokio::test]
async fn image_schema() {
    // transcript 006
    let mock = Mock::start().await;
    let schema = mock.get(Who::A, "/v2/schemas/image").await;
    assert_eq!((schema.status, schema.body.len()), (200, 4071));
    assert_eq!(schema.json()["name"], "image");
    assert_eq!(schema.text(), recorded("006").body);
}

#[tokio::test]
async fn images_schema() {
    // transcript 007
    let mock = Mock::start().await;
    let schema = mock.get(Who::A, "/v2/schemas/images").await;
    assert_eq!(schema.body.len(), 4359);
    assert_eq!(schema.text(), recorded("007").body);
}
