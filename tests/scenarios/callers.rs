//! A caller known by its Keystone token: a token scoped to project A acts on
//! A through the facade, is refused on B (403), and what is no valid token
//! is refused (401); the audit trail names the token's user and project for
//! each change and refusal. Against the mock Keystone, and - with
//! `--include-ignored`, as `scripts/test.sh` runs it - the real Keystone 30,
//! whose default policy lets the facade's service user (the `service` role
//! on the service project) validate another user's token (there pycadf
//! checks the trail too).

use std::path::Path;

use alliance_glance::config::Config;
use alliance_glance::server::RunningServer;
use reqwest::Method;
use serde_json::json;

use crate::support::real_env::RealEnv;
use crate::support::trail::{audit_table, caller, events, summary};
use crate::support::*;
use crate::unique;

const RULE: &str = "[[callers]]\nname = \"users\"\nkeystone_token = true\nnamespaces = \"*\"\nenvironments = \"*\"\n";

/// What a client sees, its token scoped to `project_a`; the image it made.
async fn acts_on_its_project_only(
    facade: &RunningServer,
    namespace: &str,
    token: &str,
    project_a: &str,
    project_b: &str,
) -> String {
    let client = client();
    let call = |environment: &str, method: Method, path: &str, token: &str| {
        alliance_call(&client, facade, namespace, environment, method, path).header("X-Auth-Token", token)
    };
    let created = send(
        call(project_a, Method::POST, "/images", token)
            .body(json!({"image": {"name": unique("token-caller")}}).to_string()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(created.json()["owner"], project_a);
    let image = format!("/images/{}", created.json()["id"].as_str().unwrap());
    assert_eq!(send(call(project_a, Method::GET, &image, token)).await.status, 200);
    let refused = send(call(project_b, Method::GET, "/images", token)).await;
    assert_eq!(
        refused.error_message(403),
        "the token is scoped to another project than X-Environment-Id"
    );
    send(call(project_a, Method::GET, &image, "not-a-token"))
        .await
        .error_message(401);
    send(alliance_call(
        &client,
        facade,
        namespace,
        project_a,
        Method::GET,
        &image,
    ))
    .await
    .error_message(401);
    assert_eq!(send(call(project_a, Method::DELETE, &image, token)).await.status, 200);
    created.json()["id"].as_str().unwrap().to_owned()
}

/// The trail of [`acts_on_its_project_only`] (reads not recorded): the
/// create and the delete by the token's user, the 403 naming it too, the
/// 401s naming only what was presented.
async fn audited(trail: &Path, user: &str, project_a: &str, image: &str) -> Vec<serde_json::Value> {
    let events = events(trail, 5).await;
    assert_eq!(
        events.iter().map(summary).collect::<Vec<_>>(),
        [
            "create success 201",
            "read/list failure 403",
            "authenticate failure 401",
            "authenticate failure 401",
            "delete success 200",
        ]
    );
    for index in [0, 1, 4] {
        assert_eq!(
            caller(&events[index]),
            &json!({"credential": "keystone_token", "rule": "users", "user_id": user, "project_id": project_a,
                    "presented": ["keystone_token"]})
        );
        assert_eq!(events[index]["initiator"]["id"], user);
    }
    for (index, presented) in [(2, json!(["keystone_token"])), (3, json!([]))] {
        assert_eq!(
            caller(&events[index]),
            &json!({"credential": "unrecognised", "presented": presented})
        );
    }
    for index in [0, 4] {
        assert_eq!(events[index]["target"]["id"], image);
    }
    events
}

#[tokio::test]
async fn mock_keystone_token_caller() {
    use openstack_mock::keystone::{ALPHA, BETA};
    let trail = TempDir::new();
    let file = trail.0.join("audit.jsonl");
    let harness = KeystoneHarness::start_with_tables(
        with_service_role_and_alice,
        &format!(", service_project_id = \"{SERVICE_PROJECT}\""),
        &format!("{RULE}{}", audit_table(&file, "")),
    )
    .await;
    let token = project_token(&harness.keystone.url(), ALICE, ALICE_PASSWORD, ALPHA).await;
    let image = acts_on_its_project_only(&harness.facade, NAMESPACE, &token, ALPHA, BETA).await;
    audited(&file, ALICE, ALPHA, &image).await;
}

#[tokio::test]
#[ignore = "needs real OpenStack: scripts/test.sh starts it"]
async fn real_keystone_token_caller() {
    let _turn = crate::REAL_SERVICES.lock().await;
    let env = RealEnv::load();
    let keystone = env.get("OS_KEYSTONE_URL");
    let (alpha, beta) = (env.get("OS_PROJECT_ALPHA"), env.get("OS_PROJECT_BETA"));
    // An end user of alpha, made for this test.
    let admin = env.admin_token().await;
    let client = client();
    let password = uuid::Uuid::new_v4().simple().to_string();
    let created = client
        .post(format!("{keystone}/users"))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/json")
        .body(
            json!({"user": {"name": unique("caller"), "domain_id": "default", "password": password, "enabled": true}})
                .to_string(),
        )
        .send()
        .await
        .expect("keystone reachable");
    assert_eq!(created.status(), 201, "user created");
    let user: serde_json::Value = serde_json::from_slice(&created.bytes().await.unwrap()).unwrap();
    let user = user["user"]["id"].as_str().unwrap().to_owned();
    for role in [env.get("OS_ROLE_MEMBER_ID"), env.get("OS_ROLE_READER_ID")] {
        let granted = client
            .put(format!("{keystone}/projects/{alpha}/users/{user}/roles/{role}"))
            .header("X-Auth-Token", &admin)
            .send()
            .await
            .expect("keystone reachable");
        assert_eq!(granted.status(), 204, "role granted");
    }
    let token = project_token(keystone, &user, &password, alpha).await;

    let trail = TempDir::new();
    let file = trail.0.join("audit.jsonl");
    let config = Config::parse(&format!(
        r#"
        [namespaces.keystone]
        request_timeout_ms = 20000
        auth = {{ type = "keystone", auth_url = "{keystone}", username = "{service_user}", user_domain_id = "{domain}", password_file = "{password_file}", service_project_id = "{service_project}" }}
        {RULE}
        {audit}
        "#,
        audit = audit_table(&file, ""),
        service_user = env.get("OS_SERVICE_USER"),
        domain = env.get("OS_SERVICE_USER_DOMAIN"),
        password_file = env.get("OS_SERVICE_PASSWORD_FILE"),
        service_project = env.get("OS_PROJECT_SERVICE"),
    ))
    .expect("config");
    let facade = start_facade(&config).await;
    let image = acts_on_its_project_only(&facade, "keystone", &token, alpha, beta).await;
    let written = audited(&file, &user, alpha, &image).await;
    assert_eq!(crate::support::trail::checked_by_pycadf(&file), written);
    assert!(
        !std::fs::read_to_string(&file).unwrap().contains(&token),
        "the token is not in the trail"
    );

    let deleted = client
        .delete(format!("{keystone}/users/{user}"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("keystone reachable");
    assert_eq!(deleted.status(), 204, "user deleted");
}
