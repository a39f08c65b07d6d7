//! Bad input ends in the facade with a clear 4xx, and nothing goes upstream.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn every_bad_input_is_refused_before_any_upstream_call() {
    let harness = Harness::start().await;
    let id = "75da8211-b8d3-4329-a12b-953e7db4690a";
    let url = |path: &str| format!("{}{path}", harness.facade.url());
    let client = &harness.client;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unknown path",
            harness.call(Method::GET, "/v2/images"),
            404,
            "no such resource",
        ),
        (
            "unknown nested path",
            harness.call(Method::GET, "/images/a/b"),
            404,
            "no such resource",
        ),
        (
            "missing namespace",
            client.get(url("/images")).header("X-Environment-Id", ENV_A),
            400,
            "X-Target-Ns header is required",
        ),
        (
            "unknown namespace",
            client
                .get(url("/images"))
                .header("X-Target-Ns", "nowhere")
                .header("X-Environment-Id", ENV_A),
            400,
            "X-Target-Ns does not name a known namespace",
        ),
        (
            "missing environment",
            client.get(url("/images")).header("X-Target-Ns", NAMESPACE),
            400,
            "X-Environment-Id header is required",
        ),
        (
            "malformed environment",
            client
                .get(url("/images"))
                .header("X-Target-Ns", NAMESPACE)
                .header("X-Environment-Id", "not-a-project"),
            400,
            "X-Environment-Id must be 32 hexadecimal digits or a dashed UUID",
        ),
        (
            "create without content type",
            client
                .post(url("/images"))
                .header("X-Target-Ns", NAMESPACE)
                .header("X-Environment-Id", ENV_A)
                .body(r#"{"image": {}}"#),
            415,
            "Content-Type application/json is required",
        ),
        (
            "update as text",
            client
                .patch(url(&format!("/images/{id}")))
                .header("X-Target-Ns", NAMESPACE)
                .header("X-Environment-Id", ENV_A)
                .header("Content-Type", "text/plain")
                .body("x"),
            415,
            "not text/plain",
        ),
        (
            "two content types",
            harness
                .call(Method::POST, "/images")
                .header("Content-Type", "text/plain")
                .body("{}"),
            400,
            "content-type header must appear once",
        ),
        (
            "malformed JSON",
            harness.call(Method::POST, "/images").body("{\"image\": "),
            400,
            "not valid JSON",
        ),
        (
            "array body",
            harness.call(Method::POST, "/images").body("[1,2]"),
            400,
            "must be a JSON object",
        ),
        (
            "missing envelope",
            harness.call(Method::POST, "/images").body(r#"{"name": "x"}"#),
            400,
            "unexpected key \"name\"",
        ),
        (
            "image not an object",
            harness.call(Method::POST, "/images").body(r#"{"image": "x"}"#),
            400,
            "\"image\" must be a JSON object",
        ),
        (
            "read-only field",
            harness
                .call(Method::POST, "/images")
                .body(json!({"image": {"status": "active"}}).to_string()),
            400,
            "\"status\" is read-only",
        ),
        (
            "unknown field",
            harness
                .call(Method::POST, "/images")
                .body(json!({"image": {"foo": 1}}).to_string()),
            400,
            "unknown field \"foo\"; allowed fields: name, tags, container_format, min_ram, disk_format, visibility, copy_from,",
        ),
        (
            "negative min_ram",
            harness
                .call(Method::POST, "/images")
                .body(json!({"image": {"min_ram": -1}}).to_string()),
            400,
            "min_ram must be a non-negative integer",
        ),
        (
            "copy_from without formats",
            harness
                .call(Method::POST, "/images")
                .body(json!({"image": {"copy_from": "http://x/y"}}).to_string()),
            400,
            "copy_from needs disk_format and container_format",
        ),
        (
            "copy_from not http",
            harness.call(Method::POST, "/images").body(
                json!({"image": {"copy_from": "file:///etc/passwd", "disk_format": "raw", "container_format": "bare"}})
                    .to_string(),
            ),
            400,
            "http or https",
        ),
        (
            "empty update",
            harness
                .call(Method::PATCH, &format!("/images/{id}"))
                .body(r#"{"image": {}}"#),
            400,
            "nothing to update",
        ),
        (
            "copy_from on update",
            harness
                .call(Method::PUT, &format!("/images/{id}"))
                .body(json!({"image": {"copy_from": "http://x/y"}}).to_string()),
            400,
            "only be given when an image is created",
        ),
        (
            "unknown list filter",
            harness.call(Method::GET, "/images?limit=5"),
            400,
            "unknown query parameter \"limit\"",
        ),
    ];
    for (what, request, status, expected) in cases {
        let answer = send(request).await;
        let message = answer.error_message(status);
        assert!(message.contains(expected), "{what}: {message}");
    }
    assert!(
        harness.glance.requests().is_empty(),
        "nothing reached Glance: {:?}",
        lines(&harness.glance.requests())
    );
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let harness = Harness::start().await;
    let answer = send(harness.call(Method::DELETE, "/images")).await;
    answer.error_message(405);
    assert_eq!(answer.header("allow"), Some("GET, POST"));
    let answer = send(harness.call(Method::POST, "/images/x").body("{}")).await;
    answer.error_message(405);
    assert_eq!(answer.header("allow"), Some("GET, PATCH, PUT, DELETE"));
    assert!(harness.glance.requests().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_413_without_reading_them() {
    let harness = Harness::start_with(
        Default::default(),
        FacadeOptions {
            max_body_bytes: 1024,
            ..Default::default()
        },
    )
    .await;
    let big = json!({"image": {"name": "x".repeat(2000)}}).to_string();
    send(harness.call(Method::POST, "/images").body(big.clone()))
        .await
        .error_message(413);
    // Chunked, so the size is only known while reading.
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(100)
            .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
            .collect::<Vec<_>>(),
    );
    let answer = send(
        harness
            .call(Method::POST, "/images")
            .body(reqwest::Body::wrap_stream(stream)),
    )
    .await;
    answer.error_message(413);
    assert!(harness.glance.requests().is_empty());
}

#[tokio::test]
async fn content_type_is_accepted_on_reads_and_charset_on_writes() {
    let harness = Harness::start().await;
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.status, 200);
    let answer = send(
        harness
            .client
            .post(format!("{}/images", harness.facade.url()))
            .header("X-Target-Ns", NAMESPACE)
            .header("X-Environment-Id", ENV_A)
            .header("Content-Type", "application/json; charset=UTF-8")
            .body(r#"{"image": {"name": "charset"}}"#),
    )
    .await;

    assert_eq!(answer.status, 201);
}

#[tokio::test]
async fn a_dashed_environment_is_the_same_project() {
    let harness = Harness::start().await;
    let dashed = "a1a1a1a1-a1a1-4a1a-8a1a-a1a1a1a1a1a1";
    let answer = send(harness.call_as(dashed, Method::GET, "/images")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(harness.glance.requests()[0].header("x-project-id"), Some(ENV_A));
}
