//! Backpressure and fairness (`[namespaces.X.limits]`): shows shared by
//! identical concurrent reads, each answered as it would have been alone;
//! rates per environment (429); calls in flight to Glance and Keystone
//! (503 once the queue is full or waited on too long). Slow upstreams are
//! the mocks' injected delays.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use openstack_mock::glance::{self, Fault, FaultAction};
use openstack_mock::keystone::GAMMA;

use crate::support::*;

fn with_limits(limits: &[&str]) -> FacadeOptions {
    FacadeOptions {
        namespace_extra: limits.iter().map(|line| format!("limits.{line}\n")).collect(),
        ..FacadeOptions::default()
    }
}

fn delay(glance: &glance::Handle, path_suffix: &str, delay: Duration) {
    glance.inject(Fault {
        method: Some(http::Method::GET),
        path_suffix: Some(path_suffix.to_owned()),
        action: FaultAction::Delay(delay),
    });
}

fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// `GET path` as `environment`, `count` times at once, each with its own
/// request id: (request id, answer), in the order sent.
async fn at_once(
    client: &reqwest::Client,
    facade: &alliance_glance::server::RunningServer,
    environment: &str,
    path: &str,
    count: usize,
) -> Vec<(String, Answer)> {
    join_all((0..count).map(|_| async move {
        let id = new_request_id();
        let answer = send(
            alliance_call(client, facade, NAMESPACE, environment, Method::GET, path)
                .header("X-Openstack-Request-Id", &id),
        )
        .await;
        (id, answer)
    }))
    .await
}

/// All a client sees of an answer but its own request id (the header and,
/// in an error document, its copy) and the date: status, headers, body.
fn seen_but_request_id(answer: &Answer) -> (u16, Vec<(String, String)>, String) {
    let request_id = answer.header("x-openstack-request-id").expect("a request id");
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-openstack-request-id" | "date"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    let body = String::from_utf8_lossy(&answer.body).replace(request_id, "REQUEST-ID");
    (answer.status, headers, body)
}

/// Each shared answer is the one the request would have got alone, and
/// carries its own request id; the log says whose call answered it.
async fn assert_shared_like_alone(answers: &[(String, Answer)], alone: &Answer) {
    let expected = seen_but_request_id(alone);
    let mut leaders = Vec::new();
    for (id, answer) in answers {
        assert_eq!(answer.header("x-openstack-request-id"), Some(id.as_str()));
        assert_eq!(seen_but_request_id(answer), expected, "answer to {id}");
        let line = request_log_line(id).await;
        assert_eq!(line["status"], alone.status);
        match line["coalesced_with"].as_str() {
            Some(leader) => assert!(answers.iter().any(|(id, _)| id == leader), "{line}"),
            None => leaders.push(id.clone()),
        }
    }
    assert_eq!(leaders.len(), 1, "one request made the call: {leaders:?}");
}

/// `GET path` as ENV_A through a facade in front of the same mock Glance
/// that shares no show: the answer a client gets alone.
async fn shown_alone(harness: &Harness, path: &str) -> Answer {
    let alone = start_facade(&facade_config(
        &harness.glance.url(),
        &with_limits(&["coalesce_window_ms = 0"]),
    ))
    .await;
    send(alliance_call(
        &harness.client,
        &alone,
        NAMESPACE,
        ENV_A,
        Method::GET,
        path,
    ))
    .await
}

#[tokio::test]
async fn concurrent_shows_of_an_image_share_one_call_each_answered_as_alone() {
    capture_request_log();
    let harness = Harness::start_with(glance::Options::default(), with_limits(&["coalesce_window_ms = 2000"])).await;
    let image = harness
        .glance_create(
            ENV_A,
            json!({"name": "polled", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let id = image["id"].as_str().unwrap();
    let path = format!("/images/{id}");
    harness.glance.take_requests();
    delay(&harness.glance, id, Duration::from_millis(400));

    let answers = at_once(&harness.client, &harness.facade, ENV_A, &path, 20).await;
    assert_eq!(
        lines(&harness.glance.take_requests()),
        [format!("GET /image/v2/images/{id}")],
        "one upstream call for the twenty shows"
    );

    let solo = shown_alone(&harness, &path).await;
    assert_eq!(solo.status, 200);
    assert_eq!(solo.json(), alliance_image(&image));
    assert_shared_like_alone(&answers, &solo).await;
}

#[tokio::test]
async fn a_shared_not_found_is_each_clients_own_404() {
    capture_request_log();
    let harness = Harness::start_with(glance::Options::default(), with_limits(&["coalesce_window_ms = 2000"])).await;
    let id = "0f0f0f0f-0000-4000-8000-000000000404";
    let path = format!("/images/{id}");
    delay(&harness.glance, id, Duration::from_millis(400));

    let answers = at_once(&harness.client, &harness.facade, ENV_A, &path, 10).await;
    assert_eq!(harness.glance.take_requests().len(), 1);

    let solo = shown_alone(&harness, &path).await;
    assert_eq!(solo.error_message(404), format!("No image found with ID {id}"));
    for (_, answer) in &answers {
        answer.error_message(404);
    }
    assert_shared_like_alone(&answers, &solo).await;
}

#[tokio::test]
async fn a_shared_refusal_of_the_environment_is_each_clients_own_403() {
    capture_request_log();
    // Keystone checks the password slowly: the shows meet while the first waits.
    let harness = KeystoneHarness::start_with_tables(
        |options| options.with_password_check_delay(Duration::from_millis(400)),
        ", scope_method = \"password\"",
        &format!("[namespaces.{NAMESPACE}.limits]\ncoalesce_window_ms = 600"),
    )
    .await;
    let path = "/images/0f0f0f0f-0000-4000-8000-000000000403";

    let answers = at_once(&harness.client, &harness.facade, GAMMA, path, 10).await;
    for (_, answer) in &answers {
        assert_eq!(
            answer.error_message(403),
            "environment not accessible in this namespace"
        );
    }
    // Past the window, alone (the refusal is remembered: no Keystone call).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let solo = send(harness.call_as(GAMMA, Method::GET, path)).await;
    solo.error_message(403);
    assert!(request_log_line(solo.header("x-openstack-request-id").unwrap()).await["coalesced_with"].is_null());
    assert_shared_like_alone(&answers, &solo).await;
}

#[tokio::test]
async fn a_timeout_is_shared_by_the_waiting_shows_only() {
    let harness = Harness::start_with(
        glance::Options::default(),
        FacadeOptions {
            request_timeout_ms: 300,
            ..with_limits(&["coalesce_window_ms = 5000"])
        },
    )
    .await;
    let image = harness.glance_create(ENV_A, json!({"name": "slow"})).await;
    let id = image["id"].as_str().unwrap();
    let path = format!("/images/{id}");
    harness.glance.take_requests();
    delay(&harness.glance, id, Duration::from_secs(1));

    let answers = at_once(&harness.client, &harness.facade, ENV_A, &path, 5).await;
    for (_, answer) in &answers {
        assert_eq!(answer.error_message(504), "the image service did not answer in time");
    }
    assert_eq!(harness.glance.take_requests().len(), 1);
    // A show after the failure makes a call of its own, within the window.
    let after = send(harness.call(Method::GET, &path)).await;
    assert_eq!(after.status, 200);
    assert_eq!(
        lines(&harness.glance.take_requests()),
        [format!("GET /image/v2/images/{id}")]
    );
}

#[tokio::test]
async fn when_the_first_client_goes_away_the_others_still_get_the_answer() {
    capture_request_log();
    let harness = Harness::start_with(glance::Options::default(), with_limits(&["coalesce_window_ms = 5000"])).await;
    let image = harness.glance_create(ENV_A, json!({"name": "awaited"})).await;
    let id = image["id"].as_str().unwrap();
    let path = format!("/images/{id}");
    harness.glance.take_requests();
    delay(&harness.glance, id, Duration::from_millis(800));

    let first = new_request_id();
    let gone = {
        let request = harness
            .call(Method::GET, &path)
            .header("X-Openstack-Request-Id", &first)
            .timeout(Duration::from_millis(300));
        tokio::spawn(request.send())
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let others = at_once(&harness.client, &harness.facade, ENV_A, &path, 5).await;
    assert!(gone.await.unwrap().is_err(), "the first client gave up");

    let first_line = request_log_line(&first).await;
    assert_eq!(
        (&first_line["status"], &first_line["reason"]),
        (&json!(0), &json!("client_gone"))
    );
    // Its call went with it; one of the waiting shows made it again for the others.
    assert_eq!(harness.glance.take_requests().len(), 2);
    let solo = shown_alone(&harness, &path).await;
    assert_eq!(solo.json(), alliance_image(&image));
    assert_shared_like_alone(&others, &solo).await;
}

#[tokio::test]
async fn a_write_is_read_back_by_its_environment_at_once() {
    let harness = Harness::start_with(glance::Options::default(), with_limits(&["coalesce_window_ms = 60000"])).await;
    let image = harness.glance_create(ENV_A, json!({"name": "before"})).await;
    let id = image["id"].as_str().unwrap();
    let path = format!("/images/{id}");
    assert_eq!(send(harness.call(Method::GET, &path)).await.json()["name"], "before");
    let updated = send(
        harness
            .call(Method::PATCH, &path)
            .body(r#"{"image": {"name": "after"}}"#),
    )
    .await;
    assert_eq!(updated.status, 200);
    assert_eq!(send(harness.call(Method::GET, &path)).await.json()["name"], "after");
    let deleted = send(harness.call(Method::DELETE, &path)).await;
    assert_eq!(deleted.status, 200);
    send(harness.call(Method::GET, &path)).await.error_message(404);
}

#[tokio::test]
async fn lists_names_and_other_environments_are_never_shared() {
    let harness = Harness::start_with(glance::Options::default(), with_limits(&["coalesce_window_ms = 60000"])).await;
    let image = harness
        .glance_create(ENV_A, json!({"name": "by-name", "visibility": "community"}))
        .await;
    let id = image["id"].as_str().unwrap();
    harness.glance.take_requests();
    for path in ["/images", "/images/by-name"] {
        for _ in 0..2 {
            assert_eq!(send(harness.call(Method::GET, path)).await.status, 200);
        }
    }
    for environment in [ENV_A, ENV_B] {
        assert_eq!(
            send(harness.call_as(environment, Method::GET, &format!("/images/{id}")))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        lines(&harness.glance.take_requests()),
        [
            "GET /image/v2/images?limit=2".to_owned(),
            "GET /image/v2/images?limit=2".to_owned(),
            "GET /image/v2/images?name=by-name&limit=2".to_owned(),
            "GET /image/v2/images?name=by-name&limit=2".to_owned(),
            format!("GET /image/v2/images/{id}"),
            format!("GET /image/v2/images/{id}"),
        ]
    );
}

#[tokio::test]
async fn an_environment_over_its_rate_is_refused_with_429_others_are_not() {
    capture_request_log();
    let harness = Harness::start_with(
        glance::Options::default(),
        with_limits(&[
            "environment_rate_per_sec = 1",
            "environment_burst = 2",
            &format!("environments.{ENV_B} = {{ rate_per_sec = 0 }}"),
        ]),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(send(harness.call(Method::GET, "/images")).await.status, 200);
    }
    harness.glance.take_requests();
    let id = new_request_id();
    let refused = send(
        harness
            .call(Method::GET, "/images")
            .header("X-Openstack-Request-Id", &id),
    )
    .await;
    assert_eq!(
        refused.error_message(429),
        "too many requests for this environment; retry later"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(harness.glance.take_requests().is_empty(), "nothing sent upstream");
    let line = request_log_line(&id).await;
    assert_eq!(
        (&line["status"], &line["reason"], &line["environment"]),
        (&json!(429), &json!("environment_rate_limited"), &json!(ENV_A))
    );
    // An environment with no limit of its own.
    for _ in 0..10 {
        assert_eq!(send(harness.call_as(ENV_B, Method::GET, "/images")).await.status, 200);
    }
}

#[tokio::test]
async fn calls_to_glance_past_the_slots_wait_then_are_refused_with_503() {
    capture_request_log();
    let harness = Harness::start_with(
        glance::Options::default(),
        with_limits(&[
            "glance_max_in_flight = 1",
            "max_queued_calls = 1",
            "queue_timeout_ms = 300",
        ]),
    )
    .await;
    let image = harness.glance_create(ENV_A, json!({"name": "gated"})).await;
    let id = image["id"].as_str().unwrap();
    harness.glance.take_requests();
    delay(&harness.glance, id, Duration::from_secs(2));
    // The slow call holds the one slot ...
    let holder = tokio::spawn(send(harness.call(Method::GET, &format!("/images/{id}"))));
    eventually("the slow call to reach Glance", || async {
        !harness.glance.requests().is_empty()
    })
    .await;
    // ... one call waits for it and is refused after the wait, one finds the
    // queue full and is refused at once (which is which depends on arrival).
    let refused = at_once(&harness.client, &harness.facade, ENV_A, "/images", 2).await;
    let mut reasons = Vec::new();
    for (request_id, answer) in &refused {
        assert_eq!(
            answer.error_message(503),
            "too many calls to the image service at once; retry later"
        );
        assert_eq!(answer.header("retry-after"), Some("1"));
        reasons.push(request_log_line(request_id).await["reason"].clone());
    }
    reasons.sort_by_key(|reason| reason.to_string());
    assert_eq!(reasons, [json!("glance_queue_full"), json!("glance_queue_timeout")]);
    assert_eq!(holder.await.unwrap().status, 200);
    assert_eq!(
        harness.glance.take_requests().len(),
        1,
        "the refused calls were never sent"
    );
    assert_eq!(send(harness.call(Method::GET, "/images")).await.status, 200);
}

#[tokio::test]
async fn calls_to_keystone_past_the_slots_are_refused_with_503() {
    capture_request_log();
    // Two environments' first requests each need a slow password check; one slot, no queue.
    let harness = KeystoneHarness::start_with_tables(
        |options| options.with_password_check_delay(Duration::from_millis(400)),
        ", scope_method = \"password\"",
        &format!("[namespaces.{NAMESPACE}.limits]\nkeystone_max_in_flight = 1\nmax_queued_calls = 0"),
    )
    .await;
    let (a, b) = tokio::join!(
        send(harness.call_as(ENV_A, Method::GET, "/images")),
        send(harness.call_as(ENV_B, Method::GET, "/images")),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503]);
    let refused = if a.status == 503 { &a } else { &b };
    assert_eq!(
        refused.error_message(503),
        "too many calls to the identity service at once; retry later"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    let line = request_log_line(refused.header("x-openstack-request-id").unwrap()).await;
    assert_eq!(line["reason"], "keystone_queue_full");
    assert_eq!(
        harness.keystone.password_checks(),
        1,
        "the refused one never reached Keystone"
    );
}
