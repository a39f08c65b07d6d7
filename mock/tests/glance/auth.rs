//! The trusted-header auth matrix: which identity headers authenticate, and
//! which roles may list, create and read.

use super::*;

/// An unauthenticated request gets the recorded HTML 401, without request id.
async fn unauthenticated(headers: &[(&str, &str)], transcript: &str) {
    let mock = Mock::start().await;
    let answer = mock.send(mock.request_with(Method::GET, "/v2/images", headers)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.text(), recorded(transcript).body);
    assert_eq!(answer.body.len(), 358);
    assert_eq!(answer.header("x-openstack-request-id"), None);
}

cases!(unauthenticated {
    // transcript 008
    no_identity_headers => (&[], "008"),
    // transcript 010
    no_identity_status => (&[("X-Project-Id", A), ("X-Roles", "member,reader")], "010"),
    // transcript 011
    identity_invalid => (&[("X-Identity-Status", "Invalid"), ("X-Project-Id", A)], "011"),
});

#[tokio::test]
async fn unauthenticated_json() {
    // transcript 009
    let mock = Mock::start().await;
    let json_401 = mock
        .get_accepting(Who::Anonymous, "/v2/images", "application/json")
        .await;
    assert_eq!(json_401.header("content-type"), Some("application/json"));
    assert_eq!(json_401.text(), recorded("009").body);
}

/// Listing needs `reader` (roles are not expanded).
async fn listing_refused(who: Who, transcript: &str) {
    let mock = Mock::start().await;
    let answer = mock.get(who, "/v2/images").await;
    expect_error(
        &answer,
        403,
        175,
        "You are not authorized to complete get_images action.",
    );
    assert_eq!(answer.text(), recorded(transcript).body);
}

cases!(listing_refused {
    // transcript 012
    no_roles => (Who::ANoRoles, "012"),
    // transcript 013
    member_only => (Who::AMember, "013"),
});

/// Readers and project-less callers list.
async fn listing_allowed(who: Who, transcript: &str) {
    let mock = Mock::start().await;
    assert_eq!(mock.get(who, "/v2/images").await.text(), recorded(transcript).body);
}

cases!(listing_allowed {
    // transcript 014
    reader_only => (Who::AReader, "014"),
    // transcript 017
    no_project => (Who::NoProject, "017"),
});

#[tokio::test]
async fn creating_needs_member() {
    // transcript 015
    let mock = Mock::start().await;
    let body = json!({"name": "reader-try", "disk_format": "raw", "container_format": "bare"});
    expect_error(
        &mock.post_json(Who::AReader, "/v2/images", &body).await,
        403,
        174,
        "You are not authorized to complete add_image action.",
    );
}

/// The image of transcript 016, created by a member-only caller.
async fn member_only_image(mock: &Mock) -> Value {
    mock.create(
        Who::AMember,
        json!({"name": "member-only-try", "disk_format": "raw", "container_format": "bare"}),
    )
    .await
}

#[tokio::test]
async fn member_only_caller_creates() {
    // transcript 016
    let mock = Mock::start().await;
    assert_eq!(member_only_image(&mock).await["owner"], A);
}

#[tokio::test]
async fn member_only_caller_cannot_read() {
    // A member-only caller cannot read images either (get_image needs reader): 404.
    let mock = Mock::start().await;
    let id = member_only_image(&mock).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    expect_error(
        &mock.get(Who::AMember, &format!("/v2/images/{id}")).await,
        404,
        154,
        "The resource could not be found.",
    );
}

#[tokio::test]
async fn no_project_header_creates_an_ownerless_image() {
    // transcript 018
    let mock = Mock::start().await;
    assert_eq!(
        mock.create(Who::NoProject, json!({"name": "no-project"})).await["owner"],
        Value::Null
    );
}

/// Creates the image of transcript 019, with X-Tenant-Id as project header.
async fn create_via_tenant_id(mock: &Mock) -> Answer {
    let headers = [
        ("X-Identity-Status", "Confirmed"),
        ("X-Tenant-Id", A),
        ("X-Roles", "member,reader"),
    ];
    let body = r#"{"name":"via-x-tenant-id","disk_format":"raw","container_format":"bare"}"#;
    mock.send(mock.request_with(Method::POST, "/v2/images", &headers).body(body))
        .await
}

#[tokio::test]
async fn tenant_id_is_the_fallback_project_header() {
    // transcript 019
    let mock = Mock::start().await;
    assert_eq!(create_via_tenant_id(&mock).await.json()["owner"], A);
}

#[tokio::test]
async fn project_id_wins_over_tenant_id() {
    // transcript 020
    let mock = Mock::start().await;
    let id = create_via_tenant_id(&mock).await.json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let headers = [
        ("X-Identity-Status", "Confirmed"),
        ("X-Project-Id", B),
        ("X-Tenant-Id", A),
        ("X-Roles", "member,reader"),
    ];
    let both = mock
        .send(mock.request_with(Method::GET, &format!("/v2/images/{id}"), &headers))
        .await;
    expect_error(&both, 404, 181, &format!("No image found with ID {id}"));
}

#[tokio::test]
async fn roles_are_trimmed_and_case_insensitive() {
    // transcript 021
    let mock = Mock::start().await;
    let headers = [
        ("X-Identity-Status", "Confirmed"),
        ("X-Project-Id", A),
        ("X-Roles", "Member, Reader"),
    ];
    let mixed = mock
        .send(mock.request_with(Method::GET, "/v2/images?limit=1", &headers))
        .await;
    assert_eq!(mixed.status, 200);
}

#[tokio::test]
async fn invalid_service_catalog_is_a_500() {
    // transcript 022: without a request id.
    let mock = Mock::start().await;
    let catalog = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Service-Catalog", "not-json"),
        )
        .await;
    assert_eq!(catalog.status, 500);
    assert_eq!(catalog.header("x-openstack-request-id"), None);
    assert_eq!(catalog.body.len(), 257);
    assert!(
        catalog
            .text()
            .contains("operation.<br /><br />\nInvalid service catalog json.\n\n\n </body>")
    );
}

#[tokio::test]
async fn admin_without_project_sees_everything() {
    // transcript 023: the other project's and the project-less image too.
    let mock = Mock::start().await;
    mock.create_id(Who::A, json!({"name": "A"})).await;
    mock.create_id(Who::B, json!({"name": "B"})).await;
    mock.create_id(Who::NoProject, json!({"name": "no-project"})).await;
    let headers = [("X-Identity-Status", "Confirmed"), ("X-Roles", "admin")];
    let admin = mock.send(mock.request_with(Method::GET, "/v2/images", &headers)).await;
    assert_eq!(admin.json()["images"].as_array().map(Vec::len), Some(3));
}
