//! DELETE /images/{ref}: Glance's 204 becomes 200 with an empty body.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn deletes_with_an_empty_200() {
    let harness = Harness::start().await;
    let created = harness.glance_create(ENV_A, json!({"name": "doomed"})).await;
    let id = created["id"].as_str().unwrap();
    harness.glance.take_requests();
    let answer = send(harness.call(Method::DELETE, &format!("/images/{id}"))).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("content-type"), None);
    assert!(answer.header("x-openstack-request-id").is_some());
    let requests = harness.glance.requests();
    assert_eq!(
        lines(&requests),
        [
            format!("GET /image/v2/images/{id}"),
            format!("DELETE /image/v2/images/{id}")
        ]
    );
    for request in &requests {
        assert_trusted_identity(request, ENV_A);
    }

    let message = send(harness.call(Method::DELETE, &format!("/images/{id}")))
        .await
        .error_message(404);
    assert_eq!(message, format!("Failed to find image {id} to delete"));
}

#[tokio::test]
async fn protected_images_are_403() {
    let harness = Harness::start().await;
    let created = harness
        .glance_create(ENV_A, json!({"name": "keep", "protected": true}))
        .await;
    let id = created["id"].as_str().unwrap();
    let message = send(harness.call(Method::DELETE, "/images/keep"))
        .await
        .error_message(403);
    assert_eq!(message, format!("Image {id} is protected and cannot be deleted."));
}

#[tokio::test]
async fn another_projects_image_is_not_deletable() {
    let harness = Harness::start().await;
    let private = harness
        .glance_create(ENV_B, json!({"name": "b-private", "visibility": "private"}))
        .await;
    let id = private["id"].as_str().unwrap();
    send(harness.call(Method::DELETE, &format!("/images/{id}")))
        .await
        .error_message(404);
    let community = harness
        .glance_create(ENV_B, json!({"name": "b-community", "visibility": "community"}))
        .await;
    let message = send(harness.call(
        Method::DELETE,
        &format!("/images/{}", community["id"].as_str().unwrap()),
    ))
    .await
    .error_message(403);
    assert_eq!(message, "You are not authorized to complete delete_image action.");
}
