//! Routing and middleware: unknown paths, wrong methods and their `Allow`
//! lists, the URL prefix, CORS preflights, request ids, forwarded headers.

use super::*;

#[tokio::test]
async fn unknown_path() {
    // transcript 209
    let mock = Mock::start().await;
    assert_eq!(mock.get(Who::A, "/v2/nothing").await.text(), recorded("209").body);
}

#[tokio::test]
async fn method_not_allowed() {
    // transcript 210: the exact page, `Allow` first.
    let mock = Mock::start().await;
    let wrong_method = mock
        .send(
            mock.request(Who::A, Method::PUT, "/v2/images")
                .header("Content-Type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET, POST"));
    assert_eq!(wrong_method.header_names()[0], "allow");
    assert_eq!(wrong_method.text(), recorded("210").body);
}

#[tokio::test]
async fn action_route_allows_post_only() {
    // transcript 203
    let mock = Mock::start().await;
    let id = mock.create_id(Who::A, json!({"name": "x"})).await;
    let deactivate = mock
        .delete(Who::A, &format!("/v2/images/{id}/actions/deactivate"))
        .await;
    expect_error_405(&deactivate, "POST", 190);
}

#[tokio::test]
async fn tasks_route_has_no_405_fallback() {
    let mock = Mock::start().await;
    let id = mock.create_id(Who::A, json!({"name": "x"})).await;
    let tasks = mock.post_empty(Who::A, &format!("/v2/images/{id}/tasks")).await;
    assert_eq!(tasks.status, 404);
}

#[tokio::test]
async fn nothing_outside_the_prefix() {
    let mock = Mock::start_with(Options {
        prefix: "/image".to_owned(),
        ..Options::default()
    })
    .await;
    assert_eq!(
        mock.handle.url(),
        format!("http://127.0.0.1:{}/image", mock.handle.addr().port())
    );
    let outside = mock
        .send(mock.client.get(format!("http://{}/v2/images", mock.handle.addr())))
        .await;
    assert_eq!(outside.status, 404);
}

#[tokio::test]
async fn cors_preflight() {
    // transcript 213
    let mock = Mock::start().await;
    let preflight = mock
        .send(
            mock.request(Who::Anonymous, Method::OPTIONS, "/v2/images")
                .header("Origin", "http://127.0.0.1:1234")
                .header("Access-Control-Request-Method", "GET"),
        )
        .await;
    assert_eq!((preflight.status, preflight.body.len()), (200, 0));
    assert_eq!(preflight.header("x-openstack-request-id"), None);
}

/// The request id a caller sends comes back, with `req-` in front if missing.
async fn request_id(sent: &str, echoed: &str) {
    let mock = Mock::start().await;
    let answer = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Openstack-Request-Id", sent),
        )
        .await;
    assert_eq!(answer.header("x-openstack-request-id"), Some(echoed));
}

cases!(request_id {
    // transcript 214
    passed_through => (
        "req-11111111-2222-4333-8444-555555555555",
        "req-11111111-2222-4333-8444-555555555555",
    ),
    prefixed => ("abc", "req-abc"),
});

#[tokio::test]
async fn overlong_request_id_is_a_500() {
    // transcript 215
    let mock = Mock::start().await;
    let too_long = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Openstack-Request-Id", format!("req-{}", "a".repeat(80))),
        )
        .await;
    assert_eq!((too_long.status, too_long.body.len()), (500, 228));
    assert_eq!(too_long.header("x-openstack-request-id"), None);
}

#[tokio::test]
async fn forwarded_headers_change_no_link() {
    // transcript 216: the link is relative to the endpoint, prefix or not.
    let mock = Mock::start_with(Options {
        prefix: "/image".to_owned(),
        ..Options::default()
    })
    .await;
    mock.create_id(Who::A, json!({"name": "older"})).await;
    let newest = mock.create_id(Who::A, json!({"name": "newest"})).await;
    let forwarded = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "images.example.test"),
        )
        .await;
    assert_eq!(forwarded.json()["next"], format!("/v2/images?limit=1&marker={newest}"));
}
