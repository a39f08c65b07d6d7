//! `keystone` auth: project-scoped tokens per environment, cached and
//! shared, the Glance endpoint from the catalog, revocation recovery, and
//! Keystone's failures mapped for the client.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use openstack_mock::glance::{self, Fault, FaultAction};
use openstack_mock::keystone::{self, GAMMA, Project, SERVICE_USER_ID};

use crate::support::*;

#[tokio::test]
async fn a_scoped_token_from_the_catalog_is_used_and_cached() {
    let harness = KeystoneHarness::start().await;
    let answer = send(
        harness
            .call_as(ENV_A, Method::POST, "/images")
            .body(r#"{"image": {"name": "ks"}}"#),
    )
    .await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.json()["owner"], ENV_A, "the token's project owns the image");
    // One password check for the unscoped token, one re-scope to the environment.
    assert_eq!(
        (harness.keystone.token_requests(), harness.keystone.password_checks()),
        (2, 1)
    );

    let requests = harness.glance.take_requests();
    assert_eq!(
        lines(&requests),
        ["POST /image/v2/images"],
        "catalog URL without its /v2 suffix"
    );
    let request = &requests[0];
    let token = request.header("x-auth-token").expect("token sent");
    assert_eq!(
        harness.keystone.validate(token).unwrap().project_id.as_deref(),
        Some(ENV_A)
    );
    for trusted in ["x-identity-status", "x-project-id", "x-roles", "x-user-id"] {
        assert_eq!(request.header(trusted), None, "{trusted} is not sent in keystone mode");
    }

    for _ in 0..3 {
        assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    }
    assert_eq!(harness.keystone.token_requests(), 2, "the token is cached");
    // Another environment: a re-scope only, no second password check.
    assert_eq!(send(harness.call_as(ENV_B, Method::GET, "/images")).await.status, 200);
    assert_eq!(
        (harness.keystone.token_requests(), harness.keystone.password_checks()),
        (3, 1)
    );
}

#[tokio::test]
async fn a_thousand_simultaneous_first_requests_make_one_token_request() {
    let harness = Arc::new(
        KeystoneHarness::start_with(
            |options| options.with_password_check_delay(Duration::from_millis(300)),
            "",
        )
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let harness = Arc::clone(&harness);
        tasks.push(tokio::spawn(async move {
            send(harness.call_as(ENV_A, Method::GET, "/images")).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(harness.keystone.scoped_token_requests(), 1);
    assert_eq!(harness.keystone.token_requests(), 2, "one unscoped, one scoped");
}

#[tokio::test]
async fn ten_environments_make_ten_scoped_token_requests() {
    let environments: Vec<String> = (0..10).map(|index| format!("{index:0>32}")).collect();
    let projects = environments.clone();
    let harness = Arc::new(
        KeystoneHarness::start_with(
            move |mut options| {
                for id in &projects {
                    options.projects.push(Project {
                        id: id.clone(),
                        name: id.clone(),
                    });
                    options
                        .assignments
                        .push((SERVICE_USER_ID.into(), id.clone(), "member".into()));
                }
                options
            },
            "",
        )
        .await,
    );
    let mut tasks = Vec::new();
    for index in 0..1000 {
        let harness = Arc::clone(&harness);
        let environment = environments[index % 10].clone();
        tasks.push(tokio::spawn(async move {
            send(harness.call_as(&environment, Method::GET, "/images")).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(harness.keystone.scoped_token_requests(), 10);
}

#[tokio::test]
async fn an_environment_without_a_role_is_403_and_remembered() {
    let harness = KeystoneHarness::start().await;
    let answer = send(harness.call_as(GAMMA, Method::GET, "/images")).await;
    assert_eq!(
        answer.error_message(403),
        "environment not accessible in this namespace"
    );
    // The unscoped token (the one password check), the refused re-scope,
    // and the unscoped token's validation of itself, which shows it is
    // still good: the scope is what Keystone refused.
    assert_eq!(
        (harness.keystone.requests(), harness.keystone.password_checks()),
        (3, 1)
    );
    // An unknown project looks the same to Keystone, and so to the client:
    // a re-scope and a validation, no password check.
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        send(harness.call_as(unknown, Method::GET, "/images"))
            .await
            .error_message(403),
        "environment not accessible in this namespace"
    );
    assert_eq!(
        (harness.keystone.requests(), harness.keystone.password_checks()),
        (5, 1)
    );
    // Refusals are remembered: no Keystone call.
    for environment in [GAMMA, unknown] {
        send(harness.call_as(environment, Method::GET, "/images"))
            .await
            .error_message(403);
    }
    assert_eq!(harness.keystone.requests(), 5, "refusals are remembered");
    assert!(harness.glance.requests().is_empty(), "nothing reached Glance");
    // An environment with a role still works, with the same unscoped token.
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    assert_eq!(harness.keystone.password_checks(), 1);
}

#[tokio::test]
async fn a_thousand_random_environments_cost_one_password_check() {
    let harness = Arc::new(
        KeystoneHarness::start_with(
            |options| options,
            ", new_environments_per_sec = 1, new_environments_burst = 20",
        )
        .await,
    );
    // A known environment: its token is cached before the flood.
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    let before = harness.keystone.requests();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let harness = Arc::clone(&harness);
        let environment = uuid::Uuid::new_v4().simple().to_string();
        tasks.push(tokio::spawn(async move {
            let answer = send(harness.call_as(&environment, Method::GET, "/images")).await;
            let retry_after = answer.header("retry-after").map(str::to_owned);
            (answer.status, answer.error_message(answer.status), retry_after)
        }));
    }
    let (mut refused, mut limited) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (403, message, None) if message == "environment not accessible in this namespace" => refused += 1,
            (503, message, Some(_))
                if message == "too many new environments at once in this namespace; retry later" =>
            {
                limited += 1
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(refused + limited, 1000);
    // The burst of 20, less the known environment's first request.
    assert!(refused >= 19, "the burst is served: {refused}");
    assert_eq!(harness.keystone.password_checks(), 1, "the unscoped token is kept");
    assert_eq!(
        harness.keystone.requests() - before,
        2 * refused,
        "a re-scope and a validation per admitted environment, none for the rest"
    );
    // The known environment is served from its cached token meanwhile.
    let requests = harness.keystone.requests();
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    assert_eq!(harness.keystone.requests(), requests);
}

#[tokio::test]
async fn a_revoked_unscoped_token_is_replaced_before_a_scope_is_refused() {
    let harness = KeystoneHarness::start().await;
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    // As a password change does: the unscoped token goes too.
    harness.keystone.revoke_user_tokens(SERVICE_USER_ID);
    // Beta has a role: the re-scope fails only because the token is gone,
    // which its validation shows; a new unscoped token then re-scopes.
    assert_eq!(send(harness.call_as(ENV_B, Method::GET, "/images")).await.status, 200);
    assert_eq!(harness.keystone.password_checks(), 2);
    // Gamma, with the new token: refused, no further password check.
    send(harness.call_as(GAMMA, Method::GET, "/images"))
        .await
        .error_message(403);
    assert_eq!(harness.keystone.password_checks(), 2);
}

#[tokio::test]
async fn wrong_service_credentials_are_502_not_the_clients_fault() {
    let harness = KeystoneHarness::start_with(
        |mut options| {
            options.users[0].password = "rotated".into();
            options
        },
        "",
    )
    .await;
    let answer = send(harness.call_as(ENV_A, Method::GET, "/images")).await;
    assert_eq!(
        answer.error_message(502),
        "the identity service refused the facade's credentials"
    );
}

#[tokio::test]
async fn password_scoping_tells_a_refused_scope_from_refused_credentials() {
    let harness = KeystoneHarness::start_with(|options| options, r#", scope_method = "password""#).await;
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    assert_eq!(send(harness.call_as(ENV_B, Method::GET, "/images")).await.status, 200);
    assert_eq!(
        harness.keystone.password_checks(),
        2,
        "one password check per environment"
    );
    send(harness.call_as(GAMMA, Method::GET, "/images"))
        .await
        .error_message(403);
}

#[tokio::test]
async fn a_token_revoked_while_cached_is_replaced_with_one_retry() {
    let harness = KeystoneHarness::start().await;
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    harness.glance.take_requests();
    // As a password change does: every token of the service user goes.
    assert!(harness.keystone.revoke_user_tokens(SERVICE_USER_ID) >= 2);
    let answer = send(harness.call_as(ENV_A, Method::GET, "/images")).await;
    assert_eq!(answer.status, 200);
    let requests = harness.glance.take_requests();
    assert_eq!(requests.len(), 2, "the refused call, then the retry");
    assert_ne!(requests[0].header("x-auth-token"), requests[1].header("x-auth-token"));

    // Glance refusing twice: 502, and no third attempt.
    for _ in 0..2 {
        harness.glance.inject(Fault {
            method: None,
            path_suffix: None,
            action: FaultAction::Respond {
                status: 401,
                content_type: "application/json".into(),
                body: r#"{"message": "This server could not verify that you are authorized", "code": "401 Unauthorized", "title": "Unauthorized"}"#.into(),
            },
        });
    }
    let answer = send(harness.call_as(ENV_A, Method::GET, "/images")).await;
    assert_eq!(
        answer.error_message(502),
        "the image service rejected the facade's credentials"
    );
    assert_eq!(harness.glance.take_requests().len(), 2);
}

#[tokio::test]
async fn identity_service_failures() {
    // Nothing listens: 503.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/v3", closed.local_addr().unwrap());
    drop(closed);
    let password_file = TempFile::with_contents(keystone::SERVICE_PASSWORD);
    let config = |auth_url: &str, timeout_ms: u64| {
        alliance_glance::config::Config::parse(&format!(
            r#"
            [namespaces.{NAMESPACE}]
            glance_url = "http://127.0.0.1:9/image"
            request_timeout_ms = {timeout_ms}
            auth = {{ type = "keystone", auth_url = "{auth_url}", username = "alliance", password_file = "{}" }}
            "#,
            password_file.0.display()
        ))
        .unwrap()
    };
    let facade = start_facade(&config(&dead_url, 2000)).await;
    let get = |facade: &alliance_glance::server::RunningServer| {
        client()
            .get(format!("{}/images", facade.url()))
            .header("X-Target-Ns", NAMESPACE)
            .header("X-Environment-Id", ENV_A)
    };
    assert_eq!(
        send(get(&facade)).await.error_message(503),
        "the identity service is unreachable"
    );

    // A Keystone that fails (a mock server with injected answers standing in): 502, then 504.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let recording = glance::Options {
        record_requests: true,
        ..glance::Options::default()
    };
    let failing = glance::spawn(listener, recording).await;
    failing.inject(Fault {
        method: None,
        path_suffix: None,
        action: FaultAction::Respond {
            status: 500,
            content_type: "application/json".into(),
            body: r#"{"error": {"code": 500, "message": "db down", "title": "Internal Server Error"}}"#.into(),
        },
    });
    let facade = start_facade(&config(&format!("{}/v3", failing.url()), 300)).await;
    assert_eq!(
        send(get(&facade)).await.error_message(502),
        "the identity service failed"
    );
    // Failures are shared only for a moment.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    failing.inject(Fault {
        method: None,
        path_suffix: None,
        action: FaultAction::Delay(Duration::from_secs(2)),
    });
    assert_eq!(
        send(get(&facade)).await.error_message(504),
        "the identity service did not answer in time"
    );
    let requests = failing.requests();
    assert_eq!(lines(&requests)[0], "POST /v3/auth/tokens");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert!(
        !String::from_utf8_lossy(&requests[0].body).contains("scope"),
        "unscoped first, for re-scoping"
    );
}

#[tokio::test]
async fn application_credentials_bind_one_project() {
    let secret = TempFile::with_contents("app-secret\n");
    let harness = KeystoneHarness::start_with(
        |mut options| {
            options.application_credentials.push(keystone::ApplicationCredential {
                id: "app-cred-1".into(),
                secret: "app-secret".into(),
                user_id: SERVICE_USER_ID.into(),
                project_id: ENV_A.into(),
            });
            options
        },
        &format!(
            r#", application_credential_id = "app-cred-1", application_credential_secret_file = "{}""#,
            secret.0.display()
        ),
    )
    .await;
    let answer = send(
        harness
            .call_as(ENV_A, Method::POST, "/images")
            .body(json!({"image": {"name": "app"}}).to_string()),
    )
    .await;
    assert_eq!(answer.status, 201);
    assert_eq!(harness.keystone.password_checks(), 0);
    send(harness.call_as(ENV_B, Method::GET, "/images"))
        .await
        .error_message(403);
}
