//! Test controls of the mock: injected faults (answers, delays, dropped
//! connections) and the request log.

use super::*;
use openstack_mock::glance::{Fault, FaultAction};

/// A mock under `/image`, as the facade uses it.
async fn prefixed() -> Mock {
    Mock::start_with(Options {
        prefix: "/image".to_owned(),
        ..Options::default()
    })
    .await
}

/// A fault answering `status` with `body`.
fn respond(method: Option<Method>, path_suffix: Option<&str>, status: u16, content_type: &str, body: &str) -> Fault {
    Fault {
        method,
        path_suffix: path_suffix.map(str::to_owned),
        action: FaultAction::Respond {
            status,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        },
    }
}

#[tokio::test]
async fn a_fault_answers_the_first_matching_request_only() {
    let mock = prefixed().await;
    mock.handle.inject(respond(
        Some(Method::GET),
        Some("/v2/images"),
        503,
        "text/plain",
        "maintenance",
    ));
    // Neither the method nor the path of these match the fault.
    let id = mock.create_id(Who::A, json!({"name": "recorded"})).await;
    assert_eq!(mock.get(Who::A, &format!("/v2/images/{id}")).await.status, 200);
    let faulted = mock.get(Who::A, "/v2/images?limit=1").await;
    assert_eq!(
        (faulted.status, faulted.header("content-type"), faulted.text().as_str()),
        (503, Some("text/plain"), "maintenance")
    );
    assert_eq!(
        mock.get(Who::A, "/v2/images?limit=1").await.status,
        200,
        "a fault fires once"
    );
}

#[tokio::test]
async fn faults_fire_in_the_order_queued() {
    let mock = prefixed().await;
    for (status, body) in [(500, "first"), (502, "second")] {
        mock.handle
            .inject(respond(None, None, status, "application/json", body));
    }
    assert_eq!(mock.get(Who::A, "/v2/info/usage").await.text(), "first");
    assert_eq!(mock.get(Who::A, "/v2/info/usage").await.text(), "second");
}

#[tokio::test]
async fn a_delay_then_normal_handling() {
    let mock = prefixed().await;
    mock.handle.inject(Fault {
        method: None,
        path_suffix: Some("/v2/info/usage".to_owned()),
        action: FaultAction::Delay(Duration::from_millis(300)),
    });
    let started = Instant::now();
    let delayed = mock.get(Who::A, "/v2/info/usage").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed.text(), r#"{"usage": {}}"#);
}

/// A DELETE of `id` whose connection the mock drops without an answer.
async fn dropped_delete(mock: &Mock, id: &str) {
    mock.handle.inject(Fault {
        method: Some(Method::DELETE),
        path_suffix: None,
        action: FaultAction::CloseConnection,
    });
    let dropped = mock
        .request(Who::A, Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_not_handled() {
    let mock = prefixed().await;
    let id = mock.create_id(Who::A, json!({"name": "recorded"})).await;
    dropped_delete(&mock, &id).await;
    assert_eq!(
        mock.show(Who::A, &id).await["name"],
        "recorded",
        "the dropped request was not handled"
    );
    assert_eq!(mock.delete(Who::A, &format!("/v2/images/{id}")).await.status, 204);
}

#[tokio::test]
async fn every_request_is_recorded_faulted_ones_included() {
    let mock = prefixed().await;
    let id = mock.create_id(Who::A, json!({"name": "recorded"})).await;
    mock.get(Who::A, &format!("/v2/images/{id}")).await;
    mock.handle
        .inject(respond(Some(Method::GET), None, 503, "text/plain", "x"));
    mock.get(Who::A, "/v2/images?limit=1").await;
    mock.handle.inject(Fault {
        method: None,
        path_suffix: None,
        action: FaultAction::Delay(Duration::from_millis(10)),
    });
    mock.get(Who::A, "/v2/info/usage").await;
    dropped_delete(&mock, &id).await;
    mock.delete(Who::A, &format!("/v2/images/{id}")).await;

    let log = mock.handle.take_requests();
    let summary: Vec<(String, String, Option<String>)> = log
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.query.clone()))
        .collect();
    let image_path = format!("/image/v2/images/{id}");
    assert_eq!(
        summary,
        [
            ("POST".to_owned(), "/image/v2/images".to_owned(), None),
            ("GET".to_owned(), image_path.clone(), None),
            (
                "GET".to_owned(),
                "/image/v2/images".to_owned(),
                Some("limit=1".to_owned())
            ),
            ("GET".to_owned(), "/image/v2/info/usage".to_owned(), None),
            ("DELETE".to_owned(), image_path.clone(), None),
            ("DELETE".to_owned(), image_path, None),
        ]
    );
    let create = &log[0];
    assert_eq!(create.body.as_ref(), br#"{"name":"recorded"}"#);
    assert_eq!(create.header("X-Roles"), Some("member,reader"));
    assert_eq!(create.header("x-project-id"), Some(A));
    assert!(create.headers.iter().all(|(name, _)| *name == name.to_lowercase()));
    let names: Vec<&str> = create.headers.iter().map(|(n, _)| n.as_str()).collect();
    let position = |name: &str| names.iter().position(|n| *n == name);
    assert!(position("x-identity-status") < position("x-project-id") && position("x-project-id") < position("x-roles"));
    assert!(mock.handle.requests().is_empty(), "take_requests clears the log");
    mock.get(Who::A, "/v2/images").await;
    assert_eq!(mock.handle.requests().len(), 1);
    mock.handle.shutdown().await;
}
