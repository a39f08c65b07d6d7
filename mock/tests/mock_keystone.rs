//! The mock Keystone answers like Keystone 30.0.0 in
//! `keystone-30.0.0-transcripts/` where the facade and the mock Glance rely
//! on it: token issue (20, 22-29), validation and revocation (30-44).

use openstack_mock::keystone::{self, ALPHA, GAMMA, SERVICE_PASSWORD, SERVICE_USER};
use serde_json::{Value, json};

struct Exchange {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post_token(base: &str, body: Value) -> Exchange {
    let response = reqwest::Client::new()
        .post(format!("{base}/auth/tokens"))
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

const UNAUTHORIZED: &str =
    r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;

#[tokio::test]
async fn tokens_are_issued_and_refused_as_keystone_does() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = keystone::spawn(listener, keystone::Options::standard("http://127.0.0.1:9292"))
        .await
        .unwrap();
    let base = mock.url();

    // 20: a scoped token, with roles (implied ones expanded) and the image catalog.
    let scoped = post_token(&base, password_auth(SERVICE_PASSWORD, Some(ALPHA))).await;
    assert_eq!(scoped.status, 201);
    let token = scoped.headers["x-subject-token"].to_str().unwrap().to_owned();
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
    assert_eq!(body["catalog"][0]["type"], "image");
    assert_eq!(body["catalog"][0]["endpoints"][0]["url"], "http://127.0.0.1:9292");

    // 22, 24, 25: wrong password, no role, no such project - the same 401.
    for (password, project) in [
        ("WRONG", ALPHA),
        (SERVICE_PASSWORD, GAMMA),
        (SERVICE_PASSWORD, "0123456789abcdef0123456789abcdef"),
    ] {
        let refused = post_token(&base, password_auth(password, Some(project))).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.body.to_string(), UNAUTHORIZED);
        assert!(
            refused.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Keystone uri=")
        );
    }

    // 26: malformed body.
    let malformed = post_token(&base, json!({"auth": {"identity": {"methods": ["password"]}}})).await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Expecting to find password in identity.")
    );

    // 28: unscoped - no project, no catalog. 29-style re-scope by token.
    let unscoped = post_token(&base, password_auth(SERVICE_PASSWORD, None)).await;
    assert_eq!(unscoped.status, 201);
    assert!(unscoped.body["token"].get("project").is_none() && unscoped.body["token"].get("catalog").is_none());
    let unscoped_token = unscoped.headers["x-subject-token"].to_str().unwrap().to_owned();
    let rescoped = post_token(
        &base,
        json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped_token}}, "scope": {"project": {"id": ALPHA}}}}),
    )
    .await;
    assert_eq!(rescoped.status, 201);
    assert_eq!(rescoped.body["token"]["methods"], json!(["token"]));
    assert_eq!(mock.password_checks(), 5, "re-scoping checks no password");

    // 30, 41-44: validate, revoke, validate again, revoke again.
    let client = reqwest::Client::new();
    let with_tokens = |method: reqwest::Method| {
        client
            .request(method, format!("{base}/auth/tokens"))
            .header("X-Auth-Token", &token)
            .header("X-Subject-Token", &token)
    };
    assert_eq!(with_tokens(reqwest::Method::GET).send().await.unwrap().status(), 200);
    assert_eq!(with_tokens(reqwest::Method::DELETE).send().await.unwrap().status(), 204);
    assert!(mock.validate(&token).is_none());
    let revoked = client
        .get(format!("{base}/auth/tokens"))
        .header("X-Auth-Token", &unscoped_token)
        .header("X-Subject-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 404);
    assert_eq!(
        revoked.text().await.unwrap(),
        r#"{"error":{"code":404,"message":"Failed to validate token","title":"Not Found"}}"#
    );
    // 35: a garbage caller token.
    let garbage = client
        .get(format!("{base}/auth/tokens"))
        .header("X-Auth-Token", "garbage")
        .header("X-Subject-Token", &unscoped_token)
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
}
