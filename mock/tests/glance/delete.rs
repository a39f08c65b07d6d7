//! `DELETE /v2/images/{id}`: protection, the 204, what is left of a deleted
//! image, and who may delete what.

use super::*;

/// A protected image of A.
async fn protected(mock: &Mock) -> String {
    mock.create_id(Who::A, json!({"name": "A-protected", "protected": true}))
        .await
}

/// A protected image cannot be deleted, not even by an admin.
async fn protected_image(who: Who) {
    let mock = Mock::start().await;
    let id = protected(&mock).await;
    expect_error(
        &mock.delete(who, &format!("/v2/images/{id}")).await,
        403,
        200,
        &format!("Image {id} is protected and cannot be deleted."),
    );
}

cases!(protected_image {
    // transcript 166
    by_its_owner => (Who::A),
    // transcript 167
    by_an_admin => (Who::Admin),
});

/// Unprotects (transcript 168) and deletes (transcript 169) a protected image.
async fn unprotect_and_delete(mock: &Mock) -> (String, Answer) {
    let id = protected(mock).await;
    let unprotected = mock
        .patch(Who::A, &id, r#"[{"op":"replace","path":"/protected","value":false}]"#)
        .await;
    assert_eq!(unprotected.json()["protected"], false);
    let deleted = mock.delete(Who::A, &format!("/v2/images/{id}")).await;
    (id, deleted)
}

#[tokio::test]
async fn unprotected_image_is_deleted() {
    // transcripts 168 and 169: 204 announced as HTML, without a body.
    let mock = Mock::start().await;
    let (_, deleted) = unprotect_and_delete(&mock).await;
    assert_eq!(
        (deleted.status, deleted.header("content-type"), deleted.body.len()),
        (204, Some(HTML), 0)
    );
    assert!(deleted.header("x-openstack-request-id").is_some());
}

/// A request on a deleted image finds nothing.
async fn after_deletion(who: Who, method: Method, length: usize, message: &str) {
    let mock = Mock::start().await;
    let (id, _) = unprotect_and_delete(&mock).await;
    let answer = mock.send(mock.request(who, method, &format!("/v2/images/{id}"))).await;
    expect_error(&answer, 404, length, &message.replace("{id}", &id));
}

cases!(after_deletion {
    // transcript 170
    delete_again => (Who::A, Method::DELETE, 189, "Failed to find image {id} to delete"),
    // transcript 171
    show => (Who::A, Method::GET, 181, "No image found with ID"),
    // transcript 172
    show_as_admin => (Who::Admin, Method::GET, 181, "No image found with ID"),
});

#[tokio::test]
async fn deleted_ids_are_never_reused() {
    let mock = Mock::start().await;
    let (id, _) = unprotect_and_delete(&mock).await;
    let reuse = mock
        .post_json(Who::A, "/v2/images", &json!({"id": id, "name": "again"}))
        .await;
    assert_eq!(reuse.status, 409);
}

/// A delete refused; `{id}` stands for an image of `owner`.
async fn refused(owner: Who, who: Who, path: &str, status: u16, length: usize, message: &str) {
    let mock = Mock::start().await;
    let id = mock.create_id(owner, json!({})).await;
    let answer = mock.delete(who, &path.replace("{id}", &id)).await;
    expect_error(&answer, status, length, &message.replace("{id}", &id));
}

cases!(refused {
    // transcript 173
    image_of_another_project => (
        Who::B,
        Who::A,
        "/v2/images/{id}",
        404,
        189,
        "Failed to find image {id} to delete",
    ),
    // transcript 174
    as_reader => (
        Who::A,
        Who::AReader,
        "/v2/images/{id}",
        403,
        177,
        "You are not authorized to complete delete_image action.",
    ),
    // transcript 175
    malformed_id => (
        Who::A,
        Who::A,
        "/v2/images/not-a-uuid",
        404,
        163,
        "Failed to find image not-a-uuid to delete",
    ),
});

/// An image deleted by its owner or an admin.
async fn deleted(owner: Who, who: Who) {
    let mock = Mock::start().await;
    let id = mock.create_id(owner, json!({})).await;
    assert_eq!(mock.delete(who, &format!("/v2/images/{id}")).await.status, 204);
}

cases!(deleted {
    // transcript 176
    by_its_owner => (Who::A, Who::A),
    by_an_admin => (Who::B, Who::Admin),
});
