//! PATCH and PUT /images/{ref}: one JSON-Patch of replace operations.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn patch_and_put_send_one_json_patch() {
    let harness = Harness::start().await;
    let created = harness
        .glance_create(
            ENV_A,
            json!({"name": "before", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    for method in [Method::PATCH, Method::PUT] {
        harness.glance.take_requests();
        let answer = send(harness.call(method.clone(), &format!("/images/{id}")).body(
            json!({"image": {"name": "ubuntu_image", "disk_format": "ari", "container_format": "bare", "min_ram": 1, "min_disk": 500, "is_public": false}}).to_string(),
        ))
        .await;
        assert_eq!(answer.status, 200, "{method}");
        let image = answer.json();
        assert_image_keys(&image);
        assert_eq!(
            (image["name"].as_str(), image["disk_format"].as_str()),
            (Some("ubuntu_image"), Some("ari"))
        );
        assert_eq!(
            (image["min_ram"].as_u64(), image["min_disk"].as_u64()),
            (Some(1), Some(500))
        );
        assert_eq!(image["visibility"], "private");

        // The image is read first: the facade checks it belongs to the environment.
        let requests = harness.glance.requests();
        assert_eq!(
            lines(&requests),
            [
                format!("GET /image/v2/images/{id}"),
                format!("PATCH /image/v2/images/{id}")
            ]
        );
        for request in &requests {
            assert_trusted_identity(request, ENV_A);
        }
        assert_eq!(
            requests[1].header("content-type"),
            Some("application/openstack-images-v2.1-json-patch")
        );
        assert_eq!(
            json_body(&requests[1]),
            json!([
                // One operation per field, in the field table's order.
                {"op": "replace", "path": "/name", "value": "ubuntu_image"},
                {"op": "replace", "path": "/container_format", "value": "bare"},
                {"op": "replace", "path": "/min_ram", "value": 1},
                {"op": "replace", "path": "/disk_format", "value": "ari"},
                {"op": "replace", "path": "/visibility", "value": "private"},
                {"op": "replace", "path": "/min_disk", "value": 500}
            ])
        );
    }
}

#[tokio::test]
async fn updates_by_name_look_the_image_up_first() {
    let harness = Harness::start().await;
    let created = harness.glance_create(ENV_A, json!({"name": "by-name"})).await;
    let id = created["id"].as_str().unwrap();
    harness.glance.take_requests();
    let answer = send(
        harness
            .call(Method::PUT, "/images/by-name")
            .body(json!({"image": {"tags": ["x"], "protected": true}}).to_string()),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["protected"], true);
    assert_eq!(
        lines(&harness.glance.requests()),
        [
            "GET /image/v2/images?name=by-name&limit=2".to_owned(),
            format!("PATCH /image/v2/images/{id}")
        ]
    );
}

#[tokio::test]
async fn glance_refusals_keep_their_status() {
    let harness = Harness::start().await;
    let created = harness
        .glance_create(
            ENV_A,
            json!({"name": "active", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    harness.glance_upload(ENV_A, id, b"some bytes".to_vec()).await;
    let message = send(
        harness
            .call(Method::PATCH, &format!("/images/{id}"))
            .body(json!({"image": {"disk_format": "qcow2"}}).to_string()),
    )
    .await
    .error_message(403);
    assert_eq!(
        message,
        "Attribute disk_format can be only replaced for a queued image."
    );

    let theirs = harness
        .glance_create(ENV_B, json!({"name": "b-image", "visibility": "private"}))
        .await;
    let message = send(
        harness
            .call(Method::PATCH, &format!("/images/{}", theirs["id"].as_str().unwrap()))
            .body(json!({"image": {"name": "hijack"}}).to_string()),
    )
    .await
    .error_message(404);
    assert!(message.starts_with("No image found with ID"), "{message}");

    let message = send(
        harness
            .call(Method::PATCH, &format!("/images/{id}"))
            .body(json!({"image": {"visibility": "public"}}).to_string()),
    )
    .await
    .error_message(403);
    assert_eq!(message, "You are not authorized to complete publicize_image action.");
}
