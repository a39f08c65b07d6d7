//! `GET /v2/images/{id}` and who may see or touch an image: missing and
//! malformed ids, other projects' private images, ownerless, community and
//! public images, admins.

use super::*;

#[tokio::test]
async fn owner_sees_its_image() {
    // transcript 065
    let mock = Mock::start().await;
    let a1 = mock.create_id(Who::A, json!({"name": "cirros-A1"})).await;
    assert_eq!(mock.show(Who::A, &a1).await["name"], "cirros-A1");
}

/// B's request on A's private image finds nothing; `{id}` stands for the image.
async fn hidden_from_b(method: Method, path: &str, body: &'static str, length: usize, message: &str) {
    let mock = Mock::start().await;
    let a1 = mock.create_id(Who::A, json!({"name": "cirros-A1"})).await;
    let mut request = mock.request(Who::B, method.clone(), &path.replace("{id}", &a1));
    if method == Method::PUT {
        request = request.header("Content-Type", OCTET_STREAM);
    } else if method == Method::PATCH {
        request = request.header("Content-Type", PATCH_V21);
    }
    let answer = mock.send(request.body(body)).await;
    expect_error(&answer, 404, length, &message.replace("{id}", &a1));
}

cases!(hidden_from_b {
    // transcript 178
    show => (Method::GET, "/v2/images/{id}", "", 181, "No image found with ID {id}"),
    // transcript 180
    delete => (Method::DELETE, "/v2/images/{id}", "", 189, "Failed to find image {id} to delete"),
    // transcript 181
    upload => (Method::PUT, "/v2/images/{id}/file", "\u{1}\u{2}\u{3}", 181, "No image found with ID"),
    // transcript 102
    update => (
        Method::PATCH,
        "/v2/images/{id}",
        r#"[{"op":"replace","path":"/name","value":"hijack"}]"#,
        181,
        "No image found with ID",
    ),
    // transcript 122
    download => (Method::GET, "/v2/images/{id}/file", "", 181, "No image found with ID"),
});

/// A 404 as JSON, as recorded but for the id; `{id}` stands for an image of A.
async fn not_found_as_json(who: Who, path: &str, transcript: &str) {
    let mock = Mock::start().await;
    let a1 = mock.create_id(Who::A, json!({"name": "cirros-A1"})).await;
    let answer = mock
        .get_accepting(who, &path.replace("{id}", &a1), "application/json")
        .await;
    let recorded = recorded(transcript);
    let recorded_id = recorded
        .body
        .split("No image found with ID ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default();
    let expected = if path.contains("{id}") {
        recorded.body.replace(recorded_id, &a1)
    } else {
        recorded.body.clone()
    };
    assert_eq!(answer.text(), expected);
    assert_eq!(
        Some(answer.body.len().to_string().as_str()),
        recorded.header("content-length")
    );
}

cases!(not_found_as_json {
    // transcript 068
    missing => (Who::A, "/v2/images/99999999-9999-4999-8999-999999999999", "068"),
    // transcript 070
    malformed_id => (Who::A, "/v2/images/not-a-uuid", "070"),
    // transcript 179
    private_image_of_another_project => (Who::B, "/v2/images/{id}", "179"),
});

/// A show that finds nothing; `{id}` stands for an existing image of A.
async fn not_found(path: &str, length: usize, message: &str) {
    let mock = Mock::start().await;
    let a1 = mock.create_id(Who::A, json!({"name": "cirros-A1"})).await;
    expect_error(
        &mock.get(Who::A, &path.replace("{id}", &a1)).await,
        404,
        length,
        message,
    );
}

cases!(not_found {
    // transcript 067
    missing => (
        "/v2/images/99999999-9999-4999-8999-999999999999",
        181,
        "No image found with ID 99999999",
    ),
    // transcript 069
    malformed_id => ("/v2/images/not-a-uuid", 155, "No image found with ID not-a-uuid"),
    // transcript 071
    trailing_slash => ("/v2/images/{id}/", 154, "The resource could not be found."),
});

#[tokio::test]
async fn a_show_with_a_body_is_refused() {
    let mock = Mock::start().await;
    let a1 = mock.create_id(Who::A, json!({"name": "cirros-A1"})).await;
    let with_body = mock
        .send(
            mock.request(Who::A, Method::GET, &format!("/v2/images/{a1}"))
                .body("{}"),
        )
        .await;
    expect_error(&with_body, 400, 167, "A body is not expected with this request.");
}

#[tokio::test]
async fn ownerless_images_are_visible_to_anyone() {
    // Though never listed.
    let mock = Mock::start().await;
    let ownerless = mock.create_id(Who::NoProject, json!({"name": "no-project"})).await;
    assert_eq!(mock.show(Who::B, &ownerless).await["owner"], Value::Null);
}

#[tokio::test]
async fn community_images_are_visible_to_other_projects() {
    // transcript 192
    let mock = Mock::start().await;
    let c1 = mock
        .create_id(Who::A, json!({"name": "C1", "visibility": "community"}))
        .await;
    assert_eq!(mock.show(Who::B, &c1).await["visibility"], "community");
}

/// A public image of the admin project.
async fn public_image(mock: &Mock) -> String {
    mock.create_id(Who::Admin, json!({"name": "P1", "visibility": "public"}))
        .await
}

#[tokio::test]
async fn public_images_are_visible_to_other_projects() {
    // transcript 196
    let mock = Mock::start().await;
    let p1 = public_image(&mock).await;
    assert_eq!(mock.show(Who::B, &p1).await["visibility"], "public");
}

#[tokio::test]
async fn other_projects_may_not_modify_public_images() {
    // transcript 197
    let mock = Mock::start().await;
    b_may_not_edit(&mock, &public_image(&mock).await).await;
}

#[tokio::test]
async fn other_projects_may_not_delete_public_images() {
    // transcript 198
    let mock = Mock::start().await;
    let p1 = public_image(&mock).await;
    expect_error(
        &mock.delete(Who::B, &format!("/v2/images/{p1}")).await,
        403,
        177,
        "You are not authorized to complete delete_image action.",
    );
}

/// An admin sees the image of `owner`.
async fn admin_sees(owner: Who, project: &str) {
    let mock = Mock::start().await;
    let id = mock.create_id(owner, json!({"name": "private"})).await;
    assert_eq!(mock.show(Who::Admin, &id).await["owner"], project);
}

cases!(admin_sees {
    // transcript 201
    image_of_a => (Who::A, A),
    // transcript 202
    image_of_b => (Who::B, B),
});
