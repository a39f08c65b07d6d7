//! Every upstream status and transport failure, per operation, through the
//! tables: 400/403/404/409/413 keep status and message, 401 -> 502, other
//! statuses -> 502 with a generic message, refused -> 503, timeout -> 504.

use std::time::Duration;

use http::Method as HttpMethod;
use reqwest::Method;
use serde_json::json;

use openstack_mock::glance::{Fault, FaultAction};

use crate::support::*;

const GLANCE_HTML_ERROR: &str = "<html>\n <head>\n  <title>409 Conflict</title>\n </head>\n <body>\n  <h1>409 Conflict</h1>\n  Something &#x27;odd&#x27; happened.<br /><br />\n\n\n\n </body>\n</html>";

fn respond(method: HttpMethod, status: u16, content_type: &str, body: &str) -> Fault {
    Fault {
        method: Some(method),
        path_suffix: None,
        action: FaultAction::Respond {
            status,
            content_type: content_type.into(),
            body: body.into(),
        },
    }
}

/// One request per operation, with the method of the Glance call that
/// decides its answer.
async fn calls(harness: &Harness, id: &str) -> Vec<(&'static str, HttpMethod, reqwest::RequestBuilder)> {
    vec![
        ("list", HttpMethod::GET, harness.call(Method::GET, "/images")),
        (
            "show",
            HttpMethod::GET,
            harness.call(Method::GET, &format!("/images/{id}")),
        ),
        (
            "create",
            HttpMethod::POST,
            harness
                .call(Method::POST, "/images")
                .body(r#"{"image": {"name": "n"}}"#),
        ),
        (
            "update",
            HttpMethod::PATCH,
            harness
                .call(Method::PATCH, &format!("/images/{id}"))
                .body(r#"{"image": {"name": "n"}}"#),
        ),
        (
            "delete",
            HttpMethod::DELETE,
            harness.call(Method::DELETE, &format!("/images/{id}")),
        ),
    ]
}

#[tokio::test]
async fn table_statuses_for_every_operation() {
    let harness = Harness::start().await;
    let image = harness.glance_create(ENV_A, json!({"name": "target"})).await;
    let id = image["id"].as_str().unwrap().to_owned();
    let cases: [(u16, &str, &str, u16, &str); 10] = [
        (
            400,
            "text/html; charset=UTF-8",
            "<html><body><h1>400 Bad Request</h1>Bad thing.<br /><br /></body></html>",
            400,
            "Bad thing.",
        ),
        (
            403,
            "application/json",
            r#"{"message": "Not yours.<br /><br />\n\n\n", "code": "403 Forbidden", "title": "Forbidden"}"#,
            403,
            "Not yours.",
        ),
        (
            404,
            "text/html; charset=UTF-8",
            "<html><body><h1>404 Not Found</h1>Gone.<br /><br /></body></html>",
            404,
            "Gone.",
        ),
        (
            409,
            "text/html; charset=UTF-8",
            GLANCE_HTML_ERROR,
            409,
            "Something 'odd' happened.",
        ),
        (413, "text/plain", "Too big", 413, "Too big"),
        (
            401,
            "text/html; charset=UTF-8",
            "<html>401</html>",
            502,
            "the image service rejected the facade's credentials",
        ),
        (
            500,
            "text/html; charset=UTF-8",
            "<html>Traceback (most recent call last): secret</html>",
            502,
            "the image service answered unexpectedly",
        ),
        (
            503,
            "text/plain",
            "maintenance",
            502,
            "the image service answered unexpectedly",
        ),
        (
            418,
            "text/plain",
            "teapot",
            502,
            "the image service answered unexpectedly",
        ),
        (
            415,
            "text/plain",
            "wrong media type",
            502,
            "the image service answered unexpectedly",
        ),
    ];
    for (upstream, content_type, body, expected, message) in cases {
        for (operation, method, request) in calls(&harness, &id).await {
            harness.glance.take_requests();
            harness.glance.inject(respond(method, upstream, content_type, body));
            let answer = send(request).await;
            assert_eq!(
                answer.error_message(expected),
                message,
                "{operation} with upstream {upstream}"
            );
            // Update and delete read the image before writing it.
            let expected_calls = if matches!(operation, "update" | "delete") { 2 } else { 1 };
            assert_eq!(harness.glance.requests().len(), expected_calls, "{operation}");
        }
    }
}

#[tokio::test]
async fn unusable_success_bodies_are_502() {
    let harness = Harness::start().await;
    let image = harness.glance_create(ENV_A, json!({"name": "target"})).await;
    let id = image["id"].as_str().unwrap().to_owned();
    for (operation, method, request) in calls(&harness, &id).await {
        if operation == "delete" {
            continue;
        }
        let status = match operation {
            "create" => 201,
            _ => 200,
        };
        harness.glance.inject(respond(
            method,
            status,
            "application/json",
            r#"{"images": "nope", "id": 5}"#,
        ));
        let message = send(request).await.error_message(502);
        assert_eq!(message, "the image service sent an unusable answer", "{operation}");
    }
}

#[tokio::test]
async fn oversized_answers_are_502() {
    let harness = Harness::start_with(
        Default::default(),
        FacadeOptions {
            upstream: "max_answer_bytes = 1048576".into(),
            ..Default::default()
        },
    )
    .await;
    let image = harness.glance_create(ENV_A, json!({"name": "target"})).await;
    let id = image["id"].as_str().unwrap().to_owned();
    // Over the configured limit on a buffered answer.
    let huge = format!(r#"{{"id": "{id}", "name": "{}"}}"#, "x".repeat(1024 * 1024));
    harness
        .glance
        .inject(respond(HttpMethod::GET, 200, "application/json", &huge));
    let answer = send(harness.call(Method::GET, &format!("/images/{id}"))).await;
    assert_eq!(answer.error_message(502), "the image service exchange failed");
    // Under it, the same answer is read.
    let image = harness.glance_create(ENV_A, json!({"name": "x".repeat(255)})).await;
    let id = image["id"].as_str().unwrap();
    assert_eq!(
        send(harness.call(Method::GET, &format!("/images/{id}"))).await.status,
        200
    );
}

/// An upstream on a raw socket that answers every request with `body`
/// (announced by its `Content-Length`), except that the first answer stops
/// half-way - and says so on `holding` - until `release` is notified.
async fn upstream_holding_its_first_answer(
    body: String,
    holding: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/image", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            let (body, holding, release) = (body.clone(), holding.clone(), release.clone());
            let hold = std::mem::take(&mut first);
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0; 1];
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let (start, rest) = answer.split_at(answer.len() - body.len() / 2);
                let _ = stream.write_all(start.as_bytes()).await;
                if hold {
                    holding.notify_one();
                    release.notified().await;
                }
                let _ = stream.write_all(rest.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn answers_wait_for_the_memory_budget_then_503() {
    let id = "0c0c0c0c-0000-4000-8000-000000000001";
    let image = json!({"id": id, "name": "big", "owner": ENV_A, "visibility": "private", "status": "active"});
    // 600 KiB each, announced: two do not fit in a 1 MiB budget.
    let body = format!("{image}{}", " ".repeat(600 * 1024 - image.to_string().len()));
    let (holding, release) = (std::sync::Arc::default(), std::sync::Arc::default());
    let url =
        upstream_holding_its_first_answer(body, std::sync::Arc::clone(&holding), std::sync::Arc::clone(&release)).await;
    let options = FacadeOptions {
        upstream: "buffer_bytes = 1048576\nmax_answer_bytes = 1048576\nbuffer_wait_ms = 300".into(),
        // Each show makes its own call (the second would share the first's).
        namespace_extra: "limits.coalesce_window_ms = 0".into(),
        ..Default::default()
    };
    let facade = start_facade(&facade_config(&url, &options)).await;
    let client = client();
    let show = || {
        alliance_call(
            &client,
            &facade,
            NAMESPACE,
            ENV_A,
            Method::GET,
            &format!("/images/{id}"),
        )
    };
    // The first answer holds its 600 KiB from its headers on, while its body is held back.
    let first = tokio::spawn(send(show()));
    holding.notified().await;
    // The facade reads the head it was sent: the budget is taken then.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = send(show()).await;
    assert_eq!(
        refused.error_message(503),
        "the facade is short of memory for the image service's answers; retry later"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Once the first answer is read and answered, its memory is free again.
    release.notify_one();
    let first = first.await.unwrap();
    assert_eq!((first.status, &first.json()["name"]), (200, &json!("big")));
    assert_eq!(send(show()).await.status, 200);
}

#[tokio::test]
async fn refused_connections_are_503() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/image", closed.local_addr().unwrap());
    drop(closed);
    let facade = start_facade(&facade_config(&url, &FacadeOptions::default())).await;
    let answer = send(
        client()
            .get(format!("{}/images", facade.url()))
            .header("X-Target-Ns", NAMESPACE)
            .header("X-Environment-Id", ENV_A),
    )
    .await;
    assert_eq!(answer.error_message(503), "the image service is unreachable");
}

#[tokio::test]
async fn slow_upstreams_are_504() {
    let harness = Harness::start_with(
        Default::default(),
        FacadeOptions {
            request_timeout_ms: 300,
            ..Default::default()
        },
    )
    .await;
    harness.glance.inject(Fault {
        method: None,
        path_suffix: None,
        action: FaultAction::Delay(Duration::from_secs(2)),
    });
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.error_message(504), "the image service did not answer in time");
}

#[tokio::test]
async fn a_dropped_connection_is_retried_once_for_idempotent_calls_only() {
    let harness = Harness::start().await;
    let drop_next = |method: HttpMethod| Fault {
        method: Some(method),
        path_suffix: None,
        action: FaultAction::CloseConnection,
    };
    harness.glance.inject(drop_next(HttpMethod::GET));
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.status, 200, "one retry on a fresh connection");
    assert_eq!(harness.glance.take_requests().len(), 2);

    harness.glance.inject(drop_next(HttpMethod::GET));
    harness.glance.inject(drop_next(HttpMethod::GET));
    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.error_message(502), "the image service exchange failed");
    assert_eq!(harness.glance.take_requests().len(), 2, "never more than one retry");

    harness.glance.inject(drop_next(HttpMethod::POST));
    let answer = send(harness.call(Method::POST, "/images").body(r#"{"image": {}}"#)).await;
    assert_eq!(answer.error_message(502), "the image service exchange failed");
    assert_eq!(harness.glance.take_requests().len(), 1, "a create is never sent twice");
}
