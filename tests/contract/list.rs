//! GET /images: every page, in order, through a path-prefixed endpoint.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn lists_every_page_through_the_prefixed_endpoint() {
    let harness = Harness::start().await;
    let mut created = Vec::new();
    for index in 0..5 {
        created.push(
            harness
                .glance_create(
                    ENV_A,
                    json!({"name": format!("img-{index}"), "disk_format": "raw", "container_format": "bare"}),
                )
                .await,
        );
    }
    harness.glance_create(ENV_B, json!({"name": "other-project"})).await;
    harness.glance.take_requests();

    let answer = send(
        harness
            .call(Method::GET, "/images")
            .header("X-Openstack-Request-Id", "req-11111111-2222-4333-8444-555555555555"),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.header("x-openstack-request-id"),
        Some("req-11111111-2222-4333-8444-555555555555")
    );

    // Newest first, as Glance lists them; B's image is not visible to A.
    let expected: Vec<Value> = created.iter().rev().map(alliance_image).collect();
    assert_eq!(answer.json(), json!([{"images": expected}]));
    for image in answer.json()[0]["images"].as_array().unwrap() {
        assert_image_keys(image);
    }

    let requests = harness.glance.requests();
    let id = |index: usize| created[index]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        lines(&requests),
        [
            "GET /image/v2/images?limit=2".to_owned(),
            format!("GET /image/v2/images?limit=2&marker={}", id(3)),
            format!("GET /image/v2/images?limit=2&marker={}", id(1)),
        ]
    );
    for request in &requests {
        assert_trusted_identity(request, ENV_A);
        assert_eq!(
            request.header("x-openstack-request-id"),
            Some("req-11111111-2222-4333-8444-555555555555")
        );
    }
}

#[tokio::test]
async fn an_empty_list_is_one_empty_page() {
    let harness = Harness::start().await;
    let answer = send(harness.call(Method::GET, "/images/")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, br#"[{"images":[]}]"#);
    assert_eq!(lines(&harness.glance.requests()), ["GET /image/v2/images?limit=2"]);
}

#[tokio::test]
async fn client_filters_are_passed_through() {
    let harness = Harness::start().await;
    let wanted = harness
        .glance_create(ENV_A, json!({"name": "wanted one", "tags": ["t1"]}))
        .await;
    harness
        .glance_create(ENV_A, json!({"name": "other", "tags": ["t1"]}))
        .await;
    harness.glance.take_requests();

    let answer = send(harness.call(
        Method::GET,
        "/images?name=wanted%20one&tag=t1&sort_key=name&sort_dir=asc",
    ))
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!([{"images": [alliance_image(&wanted)]}]));
    assert_eq!(
        lines(&harness.glance.requests()),
        ["GET /image/v2/images?name=wanted+one&tag=t1&sort_key=name&sort_dir=asc&limit=2"]
    );
}

#[tokio::test]
async fn glance_refusing_a_filter_is_the_clients_400() {
    let harness = Harness::start().await;
    // Glance refuses what it cannot filter by (here told to, as the values
    // it checks itself the facade checks first: below).
    harness.glance.inject(openstack_mock::glance::Fault {
        method: None,
        path_suffix: Some("/v2/images".into()),
        action: openstack_mock::glance::FaultAction::Respond {
            status: 400,
            content_type: "text/html; charset=UTF-8".into(),
            body: "<html><body><h1>400 Bad Request</h1>Invalid status value: x<br /><br />\n\n\n</body></html>".into(),
        },
    });
    let answer = send(harness.call(Method::GET, "/images?status=x")).await;
    assert_eq!(answer.error_message(400), "Invalid status value: x");

    harness.glance.take_requests();
    let answer = send(harness.call(Method::GET, "/images?sort_key=bogus")).await;
    let message = answer.error_message(400);
    assert!(
        message.starts_with("query parameter \"sort_key\" must be one of name,"),
        "{message}"
    );
    assert!(harness.glance.requests().is_empty(), "refused before Glance");
}

#[tokio::test]
async fn a_failing_later_page_aborts_the_response() {
    let harness = Harness::start().await;
    for index in 0..3 {
        harness
            .glance_create(ENV_A, json!({"name": format!("img-{index}")}))
            .await;
    }
    harness.glance.inject(openstack_mock::glance::Fault {
        method: Some(http::Method::GET),
        path_suffix: None,
        action: openstack_mock::glance::FaultAction::Delay(std::time::Duration::ZERO),
    });
    harness.glance.inject(openstack_mock::glance::Fault {
        method: Some(http::Method::GET),
        path_suffix: None,
        action: openstack_mock::glance::FaultAction::Respond {
            status: 500,
            content_type: "text/plain".into(),
            body: "boom".into(),
        },
    });
    let response = harness.call(Method::GET, "/images").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "a truncated body, not a short list");
}

#[tokio::test]
async fn too_many_pages_is_a_clean_502() {
    let harness = Harness::start_with(
        Default::default(),
        FacadeOptions {
            page_size: 1,
            max_pages: 2,
            ..Default::default()
        },
    )
    .await;
    for index in 0..2 {
        harness
            .glance_create(ENV_A, json!({"name": format!("img-{index}")}))
            .await;
    }
    // Two full pages of one image need a third request to see the end.
    let response = harness.call(Method::GET, "/images").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn failed_imports_show_killed_without_reordering_the_page() {
    let harness = Harness::start().await;
    let mut created = Vec::new();
    for index in 0..5 {
        let mut body = json!({"name": format!("img-{index}")});
        // Pages of two, newest first: [4, 3], [2, 1], [0]; each page starts
        // with an image whose outcome needs a look-up, followed by one that does not.
        if index % 2 == 0 && index > 0 {
            body["copy_from"] = json!("http://example.invalid/x.qcow2");
        }
        if index == 2 {
            // What the facade's own transfer records when it fails.
            body["alliance_copy_from_error"] = json!("the copy_from source answered 404");
        }
        created.push(harness.glance_create(ENV_A, body).await);
    }
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.status, 200);
    let mut expected: Vec<Value> = created.iter().rev().map(alliance_image).collect();
    // img-2 failed; img-4 (queued, no import task yet) stays queued.
    expected[2]["status"] = json!("killed");
    assert_eq!(answer.json(), json!([{"images": expected}]));
    assert_eq!(answer.json()[0]["images"][0]["status"], "queued");
}

#[tokio::test]
async fn a_repeated_next_marker_aborts_the_list() {
    let harness = Harness::start().await;
    let image = harness.glance_create(ENV_A, json!({"name": "looping"})).await;
    let id = image["id"].as_str().unwrap();
    // Glance answering the marker's page with the same page and the same
    // marker, for ever.
    let page = json!({"images": [image], "first": "/v2/images?limit=2", "schema": "/v2/schemas/images",
                      "next": format!("/v2/images?limit=2&marker={id}")});
    for _ in 0..3 {
        harness.glance.inject(openstack_mock::glance::Fault {
            method: Some(http::Method::GET),
            path_suffix: None,
            action: openstack_mock::glance::FaultAction::Respond {
                status: 200,
                content_type: "application/json".into(),
                body: page.to_string(),
            },
        });
    }
    harness.glance.take_requests();
    let response = harness.call(Method::GET, "/images").send().await.unwrap();
    assert_eq!(response.status(), 200, "the status is decided by the first page");
    assert!(
        response.bytes().await.is_err(),
        "a truncated body, not a complete list with the image twice"
    );
    assert_eq!(
        lines(&harness.glance.requests()),
        [
            "GET /image/v2/images?limit=2".to_owned(),
            format!("GET /image/v2/images?limit=2&marker={id}"),
        ],
        "the repeated marker is not followed"
    );
}
