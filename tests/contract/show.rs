//! GET /images/{ref}: by id, by name (none -> 404, several -> 409).

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn shows_an_image_by_id() {
    let harness = Harness::start().await;
    let image = harness
        .glance_create(ENV_A, json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512, "copy_from": "http://example.invalid/c.img", "os_distro": "cirros"}))
        .await;
    let id = image["id"].as_str().unwrap();
    harness.glance.take_requests();

    let answer = send(harness.call(Method::GET, &format!("/images/{}", id.to_uppercase()))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body, alliance_image(&image));
    assert_image_keys(&body);
    assert_eq!(body["copy_from"], "http://example.invalid/c.img");
    assert!(body.get("os_distro").is_none());

    let requests = harness.glance.requests();
    // Queued with a copy_from and no import running: its import tasks say
    // whether the import failed (it never started here).
    assert_eq!(
        lines(&requests),
        [
            format!("GET /image/v2/images/{id}"),
            format!("GET /image/v2/images/{id}/tasks")
        ]
    );

    assert_trusted_identity(&requests[0], ENV_A);
    assert_eq!(
        requests[0].header("x-openstack-request-id"),
        answer.header("x-openstack-request-id"),
        "the same id upstream and to the client"
    );
}

#[tokio::test]
async fn shows_an_image_by_its_unique_name() {
    let harness = Harness::start().await;
    let image = harness.glance_create(ENV_A, json!({"name": "cirros x"})).await;
    harness.glance_create(ENV_A, json!({"name": "cirros y"})).await;
    harness.glance.take_requests();
    let answer = send(harness.call(Method::GET, "/images/cirros%20x")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), alliance_image(&image));
    assert_eq!(
        lines(&harness.glance.requests()),
        ["GET /image/v2/images?name=cirros+x&limit=2"]
    );
}

#[tokio::test]
async fn a_name_with_a_colon_is_looked_up_literally() {
    let harness = Harness::start().await;
    let image = harness.glance_create(ENV_A, json!({"name": "in:x"})).await;
    harness.glance.take_requests();
    let answer = send(harness.call(Method::GET, "/images/in:x")).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json(), alliance_image(&image));
    assert_eq!(
        lines(&harness.glance.requests()),
        ["GET /image/v2/images?name=eq%3Ain%3Ax&limit=2"]
    );
    // Listed by that name too, where Glance would read an operator.
    let listed = send(harness.call(Method::GET, "/images?name=in:x")).await;
    assert_eq!(listed.json()[0]["images"][0]["id"], image["id"]);
}

#[tokio::test]
async fn unknown_and_ambiguous_names() {
    let harness = Harness::start().await;
    let first = harness.glance_create(ENV_A, json!({"name": "twin"})).await;
    let second = harness.glance_create(ENV_A, json!({"name": "twin"})).await;
    let third = harness.glance_create(ENV_A, json!({"name": "twin"})).await;
    harness.glance_create(ENV_B, json!({"name": "only-b"})).await;

    let message = send(harness.call(Method::GET, "/images/only-b"))
        .await
        .error_message(404);
    assert_eq!(message, "no image named \"only-b\" is visible to this environment");

    harness.glance.take_requests();
    let message = send(harness.call(Method::GET, "/images/twin")).await.error_message(409);
    for image in [&first, &second, &third] {
        assert!(message.contains(image["id"].as_str().unwrap()), "{message}");
    }
    assert!(message.starts_with("3 images are named \"twin\""));
    // Three matches over pages of two.
    assert_eq!(harness.glance.requests().len(), 2);
}

#[tokio::test]
async fn glance_not_found_is_404_with_its_message() {
    let harness = Harness::start().await;
    let private = harness
        .glance_create(ENV_B, json!({"name": "b-private", "visibility": "private"}))
        .await;
    let id = private["id"].as_str().unwrap();
    let message = send(harness.call(Method::GET, &format!("/images/{id}")))
        .await
        .error_message(404);
    assert_eq!(message, format!("No image found with ID {id}"));
}
