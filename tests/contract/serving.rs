//! Request ids, keep-alive, client headers that must not reach Glance, and
//! graceful shutdown.

use std::time::Duration;

use reqwest::Method;

use alliance_glance::request_id::is_openstack_request_id;
use openstack_mock::glance::{Fault, FaultAction};

use crate::support::*;

#[tokio::test]
async fn request_ids_are_reused_only_in_the_openstack_form() {
    let harness = Harness::start().await;
    let good = "req-0a1b2c3d-0000-4000-8000-000000000001";
    let answer = send(
        harness
            .call(Method::GET, "/images")
            .header("X-Openstack-Request-Id", good),
    )
    .await;
    assert_eq!(answer.header("x-openstack-request-id"), Some(good));
    assert_eq!(
        harness.glance.take_requests()[0].header("x-openstack-request-id"),
        Some(good)
    );

    let answer = send(
        harness
            .call(Method::GET, "/images")
            .header("X-Openstack-Request-Id", "req-<script>"),
    )
    .await;
    let id = answer.header("x-openstack-request-id").unwrap();
    assert!(is_openstack_request_id(id) && id != "req-<script>");
    assert_eq!(
        harness.glance.take_requests()[0].header("x-openstack-request-id"),
        Some(id)
    );

    // Errors carry one too, matching their body.
    let answer = send(harness.client.get(format!("{}/images", harness.facade.url()))).await;
    answer.error_message(400);
}

#[tokio::test]
async fn client_headers_are_never_forwarded() {
    let harness = Harness::start().await;
    let answer = send(
        harness
            .call(Method::GET, "/images")
            .header("X-Roles", "admin")
            .header("X-Auth-Token", "stolen")
            .header("X-Project-Id", ENV_B)
            .header("X-Identity-Status", "Confirmed")
            .header("X-Tenant-Id", ENV_B)
            .header("X-Service-Catalog", "not-json")
            .header("Authorization", "Basic x")
            .header("Cookie", "a=b"),
    )
    .await;
    assert_eq!(answer.status, 200);
    let requests = harness.glance.requests();
    assert_trusted_identity(&requests[0], ENV_A);
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let harness = Harness::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..5 {
        let response = client
            .get(format!("{}/images", harness.facade.url()))
            .header("X-Target-Ns", NAMESPACE)
            .header("X-Environment-Id", ENV_A)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_ne!(
            response.headers().get("connection").map(|v| v.to_str().unwrap()),
            Some("close")
        );
        response.bytes().await.unwrap();
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let harness = Harness::start().await;
    harness.glance.inject(Fault {
        method: None,
        path_suffix: None,
        action: FaultAction::Delay(Duration::from_millis(500)),
    });
    let url = format!("{}/images", harness.facade.url());
    let in_flight = tokio::spawn(send(harness.call(Method::GET, "/images")));
    tokio::time::sleep(Duration::from_millis(150)).await;
    harness.facade.shutdown().await;
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200, "the in-flight request completed");
    assert!(client().get(url).send().await.is_err(), "no longer accepting");
}
