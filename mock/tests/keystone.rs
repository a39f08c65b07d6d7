//! The mock Keystone answers like Keystone 30.0.0 where the facade and the
//! mock Glance rely on it: token issue (keystone transcripts 20, 22, 24, 25,
//! 26 and 28) and validation and revocation (keystone transcripts 30, 35, 41,
//! 42, 93 and 95), recorded in `tests/fixtures/keystone-30.0.0/`.

#[macro_use]
#[path = "support/cases.rs"]
mod cases;

use openstack_mock::keystone::{self, ALPHA, GAMMA, SERVICE_PASSWORD, SERVICE_USER};
use serde_json::{Value, json};

struct Exchange {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Exchange {
    fn token(&self) -> String {
        self.headers["x-subject-token"].to_str().unwrap().to_owned()
    }
}

async fn start() -> keystone::Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    keystone::spawn(listener, keystone::Options::standard("http://127.0.0.1:9292"))
        .await
        .unwrap()
}

async fn post_token(mock: &keystone::Handle, body: Value) -> Exchange {
    let response = reqwest::Client::new()
        .post(format!("{}/auth/tokens", mock.url()))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    Exchange {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn password_auth(password: &str, project: Option<&str>) -> Value {
    let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": SERVICE_USER, "domain": {"id": "default"}, "password": password}}}}});
    if let Some(project) = project {
        body["auth"]["scope"] = json!({"project": {"id": project}});
    }
    body
}

/// A token request of `caller` about `subject` (validate, revoke).
fn about_token(
    mock: &keystone::Handle,
    method: reqwest::Method,
    caller: &str,
    subject: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}/auth/tokens", mock.url()))
        .header("X-Auth-Token", caller)
        .header("X-Subject-Token", subject)
}

const UNAUTHORIZED: &str =
    r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;

#[tokio::test]
async fn scoped_token() {
    // keystone transcript 20: roles (implied ones expanded) and the image catalog.
    let mock = start().await;
    let scoped = post_token(&mock, password_auth(SERVICE_PASSWORD, Some(ALPHA))).await;
    assert_eq!(scoped.status, 201);
    let token = scoped.token();
    assert_eq!(token.len(), 183);
    assert!(token.starts_with("gAAAAA"));
    let body = &scoped.body["token"];
    assert_eq!(body["project"]["id"], ALPHA);
    assert!(body["expires_at"].as_str().unwrap().ends_with(".000000Z"));
    let mut roles: Vec<&str> = body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["member", "reader"]);
    // Keystone's own entry comes first, as bootstrap made it (checked against
    // Keystone 30 by the differential test).
    assert_eq!(body["catalog"][0]["type"], "identity");
    assert_eq!(body["catalog"][1]["type"], "image");
    assert_eq!(body["catalog"][1]["endpoints"][0]["url"], "http://127.0.0.1:9292");
}

/// Wrong password, no role, no such project: the same 401. The project is
/// looked up before the password is checked (Keystone's `AuthInfo.create`).
async fn refused(password: &str, project: &str, password_checks: usize) {
    let mock = start().await;
    let refused = post_token(&mock, password_auth(password, Some(project))).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body.to_string(), UNAUTHORIZED);
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Keystone uri=")
    );
    assert_eq!(mock.password_checks(), password_checks);
}

cases!(refused {
    // keystone transcript 22
    wrong_password => ("WRONG", ALPHA, 1),
    // keystone transcript 24
    project_without_a_role => (SERVICE_PASSWORD, GAMMA, 1),
    // keystone transcript 25
    no_such_project => (SERVICE_PASSWORD, "0123456789abcdef0123456789abcdef", 0),
});

#[tokio::test]
async fn malformed_body() {
    // keystone transcript 26
    let mock = start().await;
    let malformed = post_token(&mock, json!({"auth": {"identity": {"methods": ["password"]}}})).await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Expecting to find password in identity.")
    );
    assert_eq!(mock.password_checks(), 0);
}

#[tokio::test]
async fn unscoped_token() {
    // keystone transcript 28: no project, no catalog.
    let mock = start().await;
    let unscoped = post_token(&mock, password_auth(SERVICE_PASSWORD, None)).await;
    assert_eq!(unscoped.status, 201);
    assert!(unscoped.body["token"].get("project").is_none() && unscoped.body["token"].get("catalog").is_none());
}

#[tokio::test]
async fn rescoping_by_token_checks_no_password() {
    // Not recorded: an unscoped token exchanged for a scoped one.
    let mock = start().await;
    let unscoped = post_token(&mock, password_auth(SERVICE_PASSWORD, None)).await.token();
    let rescoped = post_token(
        &mock,
        json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}}, "scope": {"project": {"id": ALPHA}}}}),
    )
    .await;
    assert_eq!(rescoped.status, 201);
    // The new token also names the methods that made its parent.
    assert_eq!(rescoped.body["token"]["methods"], json!(["token", "password"]));
    assert_eq!(rescoped.body["token"]["audit_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(mock.password_checks(), 1, "re-scoping checks no password");
}

#[tokio::test]
async fn validate_then_revoke() {
    // keystone transcripts 30, 41 and 42
    let mock = start().await;
    let token = post_token(&mock, password_auth(SERVICE_PASSWORD, Some(ALPHA)))
        .await
        .token();
    let other = post_token(&mock, password_auth(SERVICE_PASSWORD, None)).await.token();
    let validated = about_token(&mock, reqwest::Method::GET, &token, &token).send().await;
    assert_eq!(validated.unwrap().status(), 200);
    let revoked = about_token(&mock, reqwest::Method::DELETE, &token, &token).send().await;
    assert_eq!(revoked.unwrap().status(), 204);
    assert!(mock.validate(&token).is_none());
    let revoked = about_token(&mock, reqwest::Method::GET, &other, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 404);
    assert_eq!(
        revoked.text().await.unwrap(),
        r#"{"error":{"code":404,"message":"Failed to validate token","title":"Not Found"}}"#
    );
}

#[tokio::test]
async fn garbage_caller_token() {
    // keystone transcript 35
    let mock = start().await;
    let subject = post_token(&mock, password_auth(SERVICE_PASSWORD, None)).await.token();
    let garbage = about_token(&mock, reqwest::Method::GET, "garbage", &subject)
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
}

#[tokio::test]
async fn another_users_token_is_validated_with_the_service_role_only() {
    // keystone transcripts 93 (a member may not) and 95 (a service user may)
    let mut options = keystone::Options::standard("http://127.0.0.1:9292");
    for (id, name, project, role) in [
        (
            "5e5e5e5e5e5e4e5e8e5ee5e5e5e5e5e5",
            "glance",
            "5e7e5e7e5e7e4e7e8e7ee7e5e7e5e7e5",
            "service",
        ),
        ("90909090909049098909909090909090", "memberonly", ALPHA, "member"),
    ] {
        options.users.push(keystone::User {
            id: id.into(),
            name: name.into(),
            domain_id: "default".into(),
            password: format!("{name}-pass"),
        });
        options.projects.push(keystone::Project {
            id: project.into(),
            name: format!("{name}-project"),
        });
        options.assignments.push((id.into(), project.into(), role.into()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = keystone::spawn(listener, options).await.unwrap();
    let token_of = |name: &str, project: &str| json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": name, "domain": {"id": "default"}, "password": format!("{name}-pass")}}}, "scope": {"project": {"id": project}}}});
    let subject = post_token(&mock, password_auth(SERVICE_PASSWORD, Some(ALPHA)))
        .await
        .token();
    let member = post_token(&mock, token_of("memberonly", ALPHA)).await.token();
    let service = post_token(&mock, token_of("glance", "5e7e5e7e5e7e4e7e8e7ee7e5e7e5e7e5"))
        .await
        .token();
    let refused = about_token(&mock, reqwest::Method::GET, &member, &subject)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.text().await.unwrap(),
        r#"{"error":{"code":403,"message":"You are not authorized to perform the requested action: identity:validate_token.","title":"Forbidden"}}"#
    );
    let validated = about_token(&mock, reqwest::Method::GET, &service, &subject)
        .send()
        .await
        .unwrap();
    assert_eq!(validated.status(), 200);
    let body: Value = serde_json::from_slice(&validated.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token"]["project"]["id"], ALPHA);
    assert_eq!(body["token"]["user"]["name"], SERVICE_USER);
}

// Answers of real Keystone 30 that the differential test
// (`tests/differential/` of the facade) found the mock giving differently.

#[tokio::test]
async fn token_requests_are_validated_as_keystone_does() {
    let mock = start().await;
    let message = |exchange: &Exchange| {
        exchange.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // The schema: the first failure, named by its field.
    let refused = post_token(&mock, json!({"auth": {"identity": {"methods": [5]}}})).await;
    assert_eq!(refused.status, 400);
    assert!(
        message(&refused).starts_with("Invalid input for field 'identity/methods/0': 5 is not of type 'string'\n\nFailed validating 'type' in schema['properties']['identity']['properties']['methods']['items']:"),
        "{}",
        message(&refused)
    );
    let refused = post_token(
        &mock,
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {}}}}}),
    )
    .await;
    assert_eq!(
        message(&refused),
        "Invalid input for field identity/password/user: id or name must be present."
    );
    let refused = post_token(&mock, json!({"auth": {}})).await;
    assert!(
        message(&refused).starts_with("'identity' is a required property\n\nFailed validating 'required' in schema:")
    );
    for body in [json!({}), json!({"auth": null}), json!({"x": 1})] {
        let refused = post_token(&mock, body).await;
        assert!(
            message(&refused).starts_with("Expecting to find auth in request body."),
            "{}",
            message(&refused)
        );
    }
    let refused = post_token(&mock, json!([])).await;
    assert!(message(&refused).starts_with("Expecting to find valid JSON in request body."));
    let refused = post_token(&mock, json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": SERVICE_USER, "password": "x"}}}, "scope": {}}})).await;
    assert!(
        message(&refused)
            .starts_with("Expecting to find system, project, domain, OS-TRUST:trust or unscoped in scope.")
    );
    // An unsupported method names the enabled ones.
    let refused = post_token(&mock, json!({"auth": {"identity": {"methods": ["totp"], "totp": {}}}})).await;
    assert_eq!(
        (refused.status, refused.body["error"]["identity"]["methods"][1].clone()),
        (401, json!("password"))
    );
    // A project by name needs its domain.
    let mut by_name = password_auth(SERVICE_PASSWORD, None);
    by_name["auth"]["scope"] = json!({"project": {"name": "alpha"}});
    assert!(message(&post_token(&mock, by_name).await).starts_with("Expecting to find domain in project."));
    assert_eq!(mock.password_checks(), 0, "all refused before the password check");
}

#[tokio::test]
async fn a_body_past_the_size_limit_is_refused_by_oslo_middleware() {
    let mock = start().await;
    let refused = post_token(&mock, json!({"x": "a".repeat(114_700)})).await;
    assert_eq!(refused.status, 413);
}

#[tokio::test]
async fn subject_token_rules() {
    let mock = start().await;
    let token = post_token(&mock, password_auth(SERVICE_PASSWORD, Some(ALPHA)))
        .await
        .token();
    // No subject token: the policy refuses, naming the action of the method.
    for (method, action) in [
        (reqwest::Method::GET, "validate_token"),
        (reqwest::Method::HEAD, "check_token"),
        (reqwest::Method::DELETE, "revoke_token"),
    ] {
        let answer = reqwest::Client::new()
            .request(method.clone(), format!("{}/auth/tokens", mock.url()))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{method}");
        if method != reqwest::Method::HEAD {
            assert!(answer.text().await.unwrap().contains(&format!("identity:{action}")));
        }
    }
    // A 401 says where to authenticate: this Keystone.
    let refused = post_token(&mock, password_auth("WRONG", None)).await;
    assert_eq!(
        refused.headers["www-authenticate"].to_str().unwrap(),
        format!("Keystone uri=\"{}\"", mock.url())
    );
}

#[tokio::test]
async fn revocation_follows_the_audit_chain() {
    let mock = start().await;
    let root = post_token(&mock, password_auth(SERVICE_PASSWORD, None)).await.token();
    let from_root = |scope: &str| json!({"auth": {"identity": {"methods": ["token"], "token": {"id": root}}, "scope": {"project": {"id": scope}}}});
    let child = post_token(&mock, from_root(ALPHA)).await.token();
    let sibling = post_token(&mock, from_root(ALPHA)).await.token();
    // Revoking a child takes only the child.
    let revoked = about_token(&mock, reqwest::Method::DELETE, &child, &child)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert!(mock.validate(&child).is_none() && mock.validate(&sibling).is_some() && mock.validate(&root).is_some());
    // The token method on a revoked token is the 404 of validation.
    let again = post_token(
        &mock,
        json!({"auth": {"identity": {"methods": ["token"], "token": {"id": child}}}}),
    )
    .await;
    assert_eq!(
        (again.status, again.body["error"]["message"].clone()),
        (404, json!("Failed to validate token"))
    );
    // Revoking the root takes every token made from it.
    let revoked = about_token(&mock, reqwest::Method::DELETE, &root, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert!(mock.validate(&sibling).is_none());
}
