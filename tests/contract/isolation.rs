//! Tenant isolation is the facade's duty too: even when Glance hands back
//! another project's private image (broader credentials than intended), the
//! environment gets what Glance would answer it - 404 - and no data.

use reqwest::Method;
use serde_json::json;

use openstack_mock::glance::{self, Fault, FaultAction};

use crate::support::*;

fn foreign_private_image(id: &str) -> serde_json::Value {
    json!({"name": "b-secret", "disk_format": "raw", "container_format": "bare", "visibility": "private",
           "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false,
           "min_ram": 0, "min_disk": 0, "owner": ENV_B, "id": id, "created_at": "2026-11-26T23:04:26Z",
           "updated_at": "2026-11-26T23:04:26Z", "tags": [], "file": format!("/v2/images/{id}/file"), "schema": "/v2/schemas/image"})
}

fn glance_returns(method: http::Method, body: serde_json::Value) -> Fault {
    Fault {
        method: Some(method),
        path_suffix: None,
        action: FaultAction::Respond {
            status: 200,
            content_type: "application/json".into(),
            body: body.to_string(),
        },
    }
}

#[tokio::test]
async fn another_projects_private_image_is_never_shown_changed_or_deleted() {
    let harness = Harness::start().await;
    let id = "0b0b0b0b-0000-4000-8000-000000000001";
    let leaked = foreign_private_image(id);

    harness.glance.inject(glance_returns(http::Method::GET, leaked.clone()));
    let answer = send(harness.call(Method::GET, &format!("/images/{id}"))).await;
    assert_eq!(answer.error_message(404), format!("No image found with ID {id}"));
    assert!(!String::from_utf8_lossy(&answer.body).contains("b-secret"));

    harness.glance.take_requests();
    harness.glance.inject(glance_returns(http::Method::GET, leaked.clone()));
    let answer = send(
        harness
            .call(Method::PATCH, &format!("/images/{id}"))
            .body(r#"{"image": {"name": "x"}}"#),
    )
    .await;
    assert_eq!(answer.error_message(404), format!("No image found with ID {id}"));
    assert_eq!(
        lines(&harness.glance.take_requests()),
        [format!("GET /image/v2/images/{id}")],
        "no PATCH sent"
    );

    harness.glance.inject(glance_returns(http::Method::GET, leaked.clone()));
    let answer = send(harness.call(Method::DELETE, &format!("/images/{id}"))).await;
    assert_eq!(
        answer.error_message(404),
        format!("Failed to find image {id} to delete")
    );
    assert_eq!(
        lines(&harness.glance.take_requests()),
        [format!("GET /image/v2/images/{id}")],
        "no DELETE sent"
    );

    harness.glance.inject(glance_returns(
        http::Method::GET,
        json!({"images": [leaked], "first": "/v2/images", "schema": "/v2/schemas/images"}),
    ));
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.json(), json!([{"images": []}]));
}

#[tokio::test]
async fn shared_images_of_others_are_shown_to_members_only() {
    // Each show asks Glance: the second one's answer (a fault) differs from
    // the first's within the window the first's would be shared for.
    let harness = Harness::start_with(
        glance::Options::default(),
        FacadeOptions {
            namespace_extra: "limits.coalesce_window_ms = 0".into(),
            ..FacadeOptions::default()
        },
    )
    .await;
    let shared = harness
        .glance_create(ENV_B, json!({"name": "b-shared", "visibility": "shared"}))
        .await;
    let id = shared["id"].as_str().unwrap();
    harness.glance.take_requests();
    // Glance hides it from a non-member; the facade agrees.
    send(harness.call(Method::GET, &format!("/images/{id}")))
        .await
        .error_message(404);
    harness.glance.take_requests();

    // Glance (here: a fault) hands it out anyway: the facade asks Glance about membership first.
    harness.glance.inject(glance_returns(http::Method::GET, shared.clone()));
    let answer = send(harness.call(Method::GET, &format!("/images/{id}"))).await;
    answer.error_message(404);
    assert_eq!(
        lines(&harness.glance.take_requests())[1..],
        [format!("GET /image/v2/images/{id}/members/{ENV_A}")]
    );
}

#[tokio::test]
async fn a_list_shows_another_projects_shared_image_to_members_only() {
    let harness = Harness::start().await;
    let own = harness.glance_create(ENV_A, json!({"name": "a-own"})).await;
    let shared_with_a = harness
        .glance_create(ENV_B, json!({"name": "b-shared-with-a", "visibility": "shared"}))
        .await;
    let shared_with_others = harness
        .glance_create(ENV_B, json!({"name": "b-shared-with-others", "visibility": "shared"}))
        .await;
    // Only the page lists it (making a public image needs an admin).
    let mut public = own.clone();
    for (key, value) in [
        ("id", "0b0b0b0b-0000-4000-8000-000000000002"),
        ("name", "b-public"),
        ("owner", ENV_B),
        ("visibility", "public"),
    ] {
        public[key] = json!(value);
    }
    let (member_of, not_member_of) = (
        shared_with_a["id"].as_str().unwrap(),
        shared_with_others["id"].as_str().unwrap(),
    );
    let added = harness
        .glance_as(
            ENV_B,
            Method::POST,
            &format!("/v2/images/{member_of}/members"),
            &json!({"member": ENV_A}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    // Glance (here: a fault) lists all four to A, as broader credentials would.
    let page = json!({"images": [own, shared_with_a, shared_with_others, public],
                      "first": "/v2/images?limit=2", "schema": "/v2/schemas/images"});
    for _ in 0..2 {
        harness.glance.inject(Fault {
            path_suffix: Some("/v2/images".into()),
            ..glance_returns(http::Method::GET, page.clone())
        });
    }
    harness.glance.take_requests();
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.status, 200);
    // Show's rule, in Glance's order: the non-member's image is dropped.
    assert_eq!(
        answer.json(),
        json!([{"images": [alliance_image(&own), alliance_image(&shared_with_a), alliance_image(&public)]}])
    );
    let mut requests = lines(&harness.glance.take_requests());
    assert_eq!(requests.remove(0), "GET /image/v2/images?limit=2");
    requests.sort();
    let mut expected = vec![
        format!("GET /image/v2/images/{member_of}/members/{ENV_A}"),
        format!("GET /image/v2/images/{not_member_of}/members/{ENV_A}"),
    ];
    expected.sort();
    assert_eq!(requests, expected, "one membership look-up per foreign shared image");

    // The answers are kept for a while: the same list asks nothing more.
    let again = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(again.json(), answer.json());
    assert_eq!(lines(&harness.glance.take_requests()), ["GET /image/v2/images?limit=2"]);
}
