//! The admin side: what `/metrics` counts (read back with the Prometheus
//! project's own OpenMetrics parser), readiness following Glance and
//! Keystone, and reloads keeping what did not change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method as HttpMethod;
use http_body_util::BodyExt;
use reqwest::Method;
use serde_json::Value;

use alliance_glance::admin::Admin;
use alliance_glance::app::App;
use alliance_glance::config::{AdminConfig, Config};
use openstack_mock::glance::{Fault, FaultAction};

use crate::support::*;

/// One sample of a scrape: its name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// `text` read by prometheus_client's OpenMetrics parser, which refuses
/// anything the format does not allow (a missing `# EOF`, a counter
/// without `_total`, buckets out of order, bad escaping).
fn parse_openmetrics(text: &str) -> Vec<Sample> {
    use std::io::Write;
    const READER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        out.append([sample.name, sample.labels, sample.value])
print(json.dumps(out))
"#;
    let python = venv_python();
    let mut child = std::process::Command::new(&python)
        .args(["-c", READER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error} (scripts/test.sh builds the venv with scripts/openstack/up.sh)",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to the parser");
    let output = child.wait_with_output().expect("parser ran");
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&output.stdout).expect("parser output");
    rows.into_iter()
        .map(|(name, labels, value)| Sample { name, labels, value })
        .collect()
}

async fn body_text(response: http::Response<alliance_glance::body::ResponseBody>) -> String {
    let bytes = response.into_body().collect().await.expect("admin body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

async fn scrape(admin: &Admin) -> Vec<Sample> {
    let response = admin.handle(&HttpMethod::GET, "/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    parse_openmetrics(&body_text(response).await)
}

/// A scrape once no request is in flight: a request is counted when its
/// answer is done, a moment after the client has read it.
async fn settled_scrape(admin: &Admin) -> Vec<Sample> {
    for _ in 0..100 {
        let samples = scrape(admin).await;
        if value(&samples, "alliance_glance_requests_in_flight", &[]) == 0.0 {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("requests stayed in flight");
}

/// The value of the one sample named `name` with (at least) `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .collect();
    assert_eq!(found.len(), 1, "one sample {name} {labels:?}: {found:?}");
    found[0].value
}

fn admin_for(app: &Arc<App>, readiness_cache_ms: u64) -> Admin {
    Admin::new(
        Arc::clone(app),
        &AdminConfig {
            readiness_cache_ms,
            ..AdminConfig::default()
        },
    )
}

async fn readyz(admin: &Admin) -> (u16, Value) {
    let response = admin.handle(&HttpMethod::GET, "/readyz").await;
    let status = response.status().as_u16();
    let text = body_text(response).await;
    (status, serde_json::from_str(&text).expect("readiness JSON"))
}

#[tokio::test]
#[ignore = "needs the venv of scripts/openstack/up.sh (prometheus_client's parser): scripts/test.sh builds it"]
async fn metrics_count_what_was_served_with_bounded_labels() {
    let harness = Harness::start_with(
        openstack_mock::glance::Options::default(),
        FacadeOptions {
            max_body_bytes: 64,
            ..FacadeOptions::default()
        },
    )
    .await;
    let admin = admin_for(&harness.app, 5_000);
    let missing = "0badbeef-0000-4000-8000-000000000000";
    assert_eq!(send(harness.call(Method::GET, "/images")).await.status, 200);
    assert_eq!(
        send(harness.call(Method::GET, &format!("/images/{missing}")))
            .await
            .status,
        404
    );
    let big = format!(r#"{{"image": {{"name": "{}"}}}}"#, "x".repeat(100));
    assert_eq!(send(harness.call(Method::POST, "/images").body(big)).await.status, 413);
    let elsewhere = alliance_call(
        &harness.client,
        &harness.facade,
        "nowhere",
        ENV_A,
        Method::GET,
        "/images",
    );
    assert_eq!(send(elsewhere).await.status, 400);
    // The [client] limits: a target over max_uri_bytes, a head over max_header_bytes.
    let long = format!("/images/{}", "x".repeat(9000));
    assert_eq!(send(harness.call(Method::GET, &long)).await.status, 414);
    let huge_header = harness
        .call(Method::GET, "/images")
        .header("X-Padding", "p".repeat(40_000));
    assert_eq!(send(huge_header).await.status, 431);

    let samples = settled_scrape(&admin).await;
    let requests = |namespace: &str, operation: &str, class: &str| {
        value(
            &samples,
            "alliance_glance_requests_total",
            &[
                ("namespace", namespace),
                ("operation", operation),
                ("status_class", class),
            ],
        )
    };
    assert_eq!(requests(NAMESPACE, "list", "2xx"), 1.0);
    assert_eq!(requests(NAMESPACE, "show", "4xx"), 1.0);
    assert_eq!(
        requests(NAMESPACE, "none", "4xx"),
        1.0,
        "the 413, before the operation was known"
    );
    assert_eq!(
        requests("-", "none", "4xx"),
        3.0,
        "an unknown namespace counts as -, and so do the 414 and 431 refused before any header was read"
    );
    assert_eq!(
        requests(NAMESPACE, "show", "2xx"),
        0.0,
        "every series exists from the start"
    );
    let upstream = |call: &str, outcome: &str| {
        value(
            &samples,
            "alliance_glance_upstream_requests_total",
            &[("namespace", NAMESPACE), ("call", call), ("outcome", outcome)],
        )
    };
    assert_eq!(upstream("GET /v2/images", "success"), 1.0);
    assert_eq!(upstream("GET /v2/images/{id}", "refused"), 1.0);
    assert_eq!(
        value(
            &samples,
            "alliance_glance_upstream_request_duration_seconds_count",
            &[("namespace", NAMESPACE), ("call", "GET /v2/images/{id}")],
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "alliance_glance_request_duration_seconds_count",
            &[("operation", "list")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "alliance_glance_request_duration_seconds_bucket",
            &[("operation", "list"), ("le", "+Inf")]
        ),
        1.0
    );
    for (namespace, reason) in [
        (NAMESPACE, "body_too_large"),
        ("-", "uri_too_long"),
        ("-", "headers_too_large"),
    ] {
        assert_eq!(
            value(
                &samples,
                "alliance_glance_refused_total",
                &[("namespace", namespace), ("reason", reason)]
            ),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        value(
            &samples,
            "alliance_glance_list_images_streamed_total",
            &[("namespace", NAMESPACE)]
        ),
        0.0
    );
    assert!(value(&samples, "alliance_glance_connections_accepted_total", &[]) >= 1.0);
    let build = samples
        .iter()
        .find(|sample| sample.name == "alliance_glance_build_info")
        .expect("build info");
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(!build.labels["commit"].is_empty());

    // Bounded: no environment, image id or unknown namespace name in any label.
    for sample in &samples {
        for value in sample.labels.values() {
            assert!(
                !value.contains(ENV_A) && !value.contains(missing) && !value.contains("nowhere"),
                "{sample:?}"
            );
        }
    }
}

#[tokio::test]
#[ignore = "needs the venv of scripts/openstack/up.sh (prometheus_client's parser): scripts/test.sh builds it"]
async fn backpressure_refusals_are_counted_by_namespace_and_reason() {
    let limited = "5b1d3f7a9c2e4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4a6c8e";
    let harness = Harness::start_with(
        openstack_mock::glance::Options::default(),
        FacadeOptions {
            namespace_extra: [
                "limits.environment_rate_per_sec = 1",
                "limits.environment_burst = 1",
                "limits.glance_max_in_flight = 1",
                "limits.max_queued_calls = 0",
            ]
            .join("\n"),
            tables: format!(
                "[[callers]]\nname = \"limited\"\nbearer_secret_sha256 = \"{}\"\nnamespaces = \"*\"\n\
                 environments = \"*\"\nrate = {{ rate_per_sec = 1, burst = 1 }}\n\
                 [[callers]]\nname = \"local\"\nsource_cidrs = [\"127.0.0.0/8\"]\nnamespaces = \"*\"\n\
                 environments = \"*\"\n",
                alliance_glance::callers::bearer::SaltedHash::new(limited).unwrap()
            ),
            ..FacadeOptions::default()
        },
    )
    .await;
    let admin = admin_for(&harness.app, 5_000);
    const ENV_C: &str = "c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3";
    const ENV_D: &str = "d4d4d4d4d4d44d4d8d4dd4d4d4d4d4d4";
    // The limited caller's second request, at once.
    for expected in [200, 429] {
        let call = harness
            .call_as(ENV_C, Method::GET, "/images")
            .header("Authorization", format!("Bearer {limited}"));
        assert_eq!(send(call).await.status, expected);
    }
    // An environment's second request, at once.
    for expected in [200, 429] {
        assert_eq!(
            send(harness.call_as(ENV_A, Method::GET, "/images")).await.status,
            expected
        );
    }
    // A slow show holds the one slot to Glance; another finds no room to wait.
    let image = harness.glance_create(ENV_B, serde_json::json!({"name": "slow"})).await;
    let id = image["id"].as_str().unwrap().to_owned();
    harness.glance.inject(Fault {
        method: Some(http::Method::GET),
        path_suffix: Some(id.clone()),
        action: FaultAction::Delay(Duration::from_millis(1000)),
    });
    harness.glance.take_requests();
    let path = format!("/images/{id}");
    let slow = tokio::spawn(send(harness.call_as(ENV_B, Method::GET, &path)));
    eventually("the slow show to reach Glance", || async {
        !harness.glance.requests().is_empty()
    })
    .await;
    assert_eq!(send(harness.call_as(ENV_D, Method::GET, &path)).await.status, 503);
    assert_eq!(slow.await.unwrap().status, 200);
    let samples = settled_scrape(&admin).await;
    for reason in ["caller_rate_limited", "environment_rate_limited", "glance_queue_full"] {
        assert_eq!(
            value(
                &samples,
                "alliance_glance_refused_total",
                &[("namespace", NAMESPACE), ("reason", reason)]
            ),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        value(
            &samples,
            "alliance_glance_refused_total",
            &[("namespace", NAMESPACE), ("reason", "glance_queue_timeout")]
        ),
        0.0
    );
}

#[tokio::test]
#[ignore = "needs the venv of scripts/openstack/up.sh (prometheus_client's parser): scripts/test.sh builds it"]
async fn keystone_tokens_and_list_streams_are_counted() {
    // One new environment at a time (a burst of one, refilled slowly).
    let harness = KeystoneHarness::start_with(
        |options| options,
        ", new_environments_per_sec = 1, new_environments_burst = 1",
    )
    .await;
    let admin = admin_for(&harness.app, 5_000);
    for _ in 0..3 {
        assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    }
    // Three images over pages of two: a stream of two pages.
    for index in 0..3 {
        let created = send(
            harness
                .call_as(ENV_A, Method::POST, "/images")
                .body(format!(r#"{{"image": {{"name": "m{index}"}}}}"#)),
        )
        .await;
        assert_eq!(created.status, 201);
    }
    let listed = send(harness.call_as(ENV_A, Method::GET, "/images")).await;
    assert_eq!(listed.json()[0]["images"].as_array().map(Vec::len), Some(3));
    // A second environment at once: over the rate, refused without asking Keystone.
    assert_eq!(send(harness.call_as(ENV_B, Method::GET, "/images")).await.status, 503);
    let samples = settled_scrape(&admin).await;
    assert_eq!(
        value(
            &samples,
            "alliance_glance_refused_total",
            &[
                ("namespace", NAMESPACE),
                ("reason", "keystone_new_environment_rate_limited")
            ]
        ),
        1.0
    );
    let tokens = |kind: &str| {
        value(
            &samples,
            "alliance_glance_keystone_token_requests_total",
            &[("namespace", NAMESPACE), ("kind", kind), ("outcome", "issued")],
        )
    };
    assert_eq!(tokens("password_unscoped"), 1.0);
    assert_eq!(tokens("rescope"), 1.0);
    assert_eq!(tokens("password_scoped"), 0.0);
    let cache = |result: &str| {
        value(
            &samples,
            "alliance_glance_token_cache_lookups_total",
            &[("namespace", NAMESPACE), ("result", result)],
        )
    };
    // Seven requests of A, each looking its token up once per Glance call
    // (the first a miss); and B's, a miss refused by the rate.
    assert_eq!(cache("miss"), 2.0);
    assert_eq!(cache("cached_failure"), 0.0);
    assert!(cache("hit") >= 6.0);
    assert_eq!(
        value(
            &samples,
            "alliance_glance_list_images_streamed_total",
            &[("namespace", NAMESPACE)]
        ),
        3.0
    );
}

#[tokio::test]
async fn readiness_follows_glance_and_is_cached() {
    let harness = Harness::start().await;
    let admin = admin_for(&harness.app, 0);
    let (status, document) = readyz(&admin).await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(
        document,
        serde_json::json!({"ready": true, "not_ready": [], "namespaces": {"ccsr1": "ready"}})
    );
    let healthchecks = harness.glance.take_requests();
    assert_eq!(lines(&healthchecks), ["GET /image/healthcheck"]);
    assert_eq!(healthchecks[0].header("x-auth-token"), None);
    assert_eq!(healthchecks[0].header("x-project-id"), None);

    let disabled = || Fault {
        method: None,
        path_suffix: Some("/healthcheck".into()),
        action: FaultAction::Respond {
            status: 503,
            content_type: "text/plain".into(),
            body: "disabled by file".into(),
        },
    };
    harness.glance.inject(disabled());
    let (status, document) = readyz(&admin).await;
    assert_eq!(status, 503);
    assert_eq!(document["not_ready"], serde_json::json!(["ccsr1"]));
    assert_eq!(
        document["namespaces"]["ccsr1"],
        "the image service's healthcheck answered 503"
    );

    // Cached: a second admin whose answers last a minute asks Glance once.
    let cached = admin_for(&harness.app, 60_000);
    harness.glance.inject(disabled());
    harness.glance.take_requests();
    for _ in 0..5 {
        assert_eq!(readyz(&cached).await.0, 503);
    }
    assert_eq!(harness.glance.take_requests().len(), 1);

    harness.glance.shutdown().await;
    let (status, document) = readyz(&admin).await;
    assert_eq!(status, 503);
    assert_eq!(document["namespaces"]["ccsr1"], "the image service is unreachable");
    admin.stop_being_ready();
    let (status, document) = readyz(&admin).await;
    assert_eq!(status, 503);
    assert_eq!(document, serde_json::json!({"ready": false, "shutting_down": true}));
}

#[tokio::test]
async fn readiness_in_keystone_mode_needs_a_token() {
    let harness = KeystoneHarness::start().await;
    let admin = admin_for(&harness.app, 0);
    // Before any request, Glance's endpoint (from a catalog) is unknown:
    // Keystone's token alone decides.
    let (status, document) = readyz(&admin).await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(harness.keystone.password_checks(), 1);
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    harness.glance.take_requests();
    for _ in 0..3 {
        assert_eq!(readyz(&admin).await.0, 200);
    }
    // The token is reused; Glance's healthcheck is asked each time (no cache here).
    assert_eq!(harness.keystone.password_checks(), 1);
    assert_eq!(lines(&harness.glance.take_requests()), ["GET /image/healthcheck"; 3]);

    harness.keystone.shutdown().await;
    let mut config = harness.config.clone();
    // A changed namespace starts with an empty token cache: Keystone is asked.
    config.namespaces.get_mut(NAMESPACE).expect("namespace").page_size = 3;
    let (clouds, _) = harness.app.prepare(&config).expect("valid");
    harness.app.install(clouds);
    let (status, document) = readyz(&admin).await;
    assert_eq!(status, 503);
    assert_eq!(
        document["namespaces"][NAMESPACE],
        "identity: the identity service is unreachable"
    );
}

/// `config` with a second namespace, `ccsr9`, a copy of the first.
fn with_second_namespace(config: &Config) -> Config {
    let mut config = config.clone();
    let first = config.namespaces[NAMESPACE].clone();
    config.namespaces.insert("ccsr9".into(), first);
    config
}

#[tokio::test]
async fn a_reload_keeps_unchanged_namespaces_and_their_tokens() {
    let harness = KeystoneHarness::start().await;
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    let before = harness.app.clouds();
    let tokens = harness.keystone.token_requests();

    let config = with_second_namespace(&harness.config);
    let (clouds, changes) = harness.app.prepare(&config).expect("valid");
    assert_eq!(changes.added, ["ccsr9"]);
    assert_eq!(changes.kept, [NAMESPACE]);
    assert!(changes.changed.is_empty() && changes.removed.is_empty());
    harness.app.install(clouds);
    let after = harness.app.clouds();
    assert!(Arc::ptr_eq(
        before.get(NAMESPACE).expect("before"),
        after.get(NAMESPACE).expect("after")
    ));
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    assert_eq!(harness.keystone.token_requests(), tokens, "the cached token served");
    let other = alliance_call(&harness.client, &harness.facade, "ccsr9", ENV_A, Method::GET, "/images");
    assert_eq!(send(other).await.status, 200);

    // The password file changes (a rotation): the namespace is rebuilt.
    let mut rotated = config.clone();
    let password = TempFile::with_contents(&format!("{}\n", openstack_mock::keystone::SERVICE_PASSWORD));
    if let alliance_glance::config::AuthConfig::Keystone(keystone) =
        &mut rotated.namespaces.get_mut(NAMESPACE).expect("namespace").auth
    {
        keystone.password_file = Some(password.0.clone());
    }
    let (clouds, changes) = harness.app.prepare(&rotated).expect("valid");
    assert_eq!(changes.changed, [NAMESPACE]);
    assert_eq!(changes.kept, ["ccsr9"]);
    harness.app.install(clouds);
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    assert!(
        harness.keystone.token_requests() > tokens,
        "a new namespace gets new tokens"
    );

    // A namespace removed: unknown from the next request on.
    let (clouds, changes) = harness.app.prepare(&harness.config).expect("valid");
    assert_eq!(changes.removed, ["ccsr9"]);
    harness.app.install(clouds);
    let gone = alliance_call(&harness.client, &harness.facade, "ccsr9", ENV_A, Method::GET, "/images");
    assert_eq!(send(gone).await.status, 400);
}

#[tokio::test]
async fn a_namespace_added_under_load_loses_no_request() {
    let harness =
        Arc::new(Harness::start_with(openstack_mock::glance::Options::default(), FacadeOptions::default()).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let harness = Arc::clone(&harness);
        let stop = Arc::clone(&stop);
        workers.push(tokio::spawn(async move {
            let mut answered = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let answer = send(harness.call(Method::GET, "/images")).await;
                assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
                answered += 1;
            }
            answered
        }));
    }
    let base = facade_config(&harness.glance.url(), &FacadeOptions::default());
    let grown = with_second_namespace(&base);
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let config = if round % 2 == 0 { &grown } else { &base };
        let (clouds, _) = harness.app.prepare(config).expect("valid");
        harness.app.install(clouds);
    }
    let added = alliance_call(&harness.client, &harness.facade, "ccsr9", ENV_A, Method::GET, "/images");
    assert_eq!(send(added).await.status, 400, "the last reload removed it again");
    let (clouds, _) = harness.app.prepare(&grown).expect("valid");
    harness.app.install(clouds);
    let added = alliance_call(&harness.client, &harness.facade, "ccsr9", ENV_A, Method::GET, "/images");
    assert_eq!(send(added).await.status, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answered = 0;
    for worker in workers {
        answered += worker.await.expect("no request failed");
    }
    assert!(answered > 0);
}
