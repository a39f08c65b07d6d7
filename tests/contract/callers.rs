//! Who may call: TLS on the listener, and `[[callers]]` rules recognising a
//! client certificate, a source network, a bearer secret or a Keystone
//! token. A refusal is the documented JSON error (401: not recognised, 403:
//! recognised, not allowed) and nothing is sent upstream; the client's
//! credentials never reach Glance.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use alliance_glance::callers::bearer::SaltedHash;
use openstack_mock::glance;
use openstack_mock::keystone::{self, ALPHA, BETA};

use crate::support::pki::{self, Ca, Issued};
use crate::support::*;

/// A facade over TLS (its certificate from `ca`, which also issues client
/// certificates when `client_auth` is given) in front of a mock Glance.
struct Secure {
    harness: Harness,
    ca: Ca,
    dir: TempDir,
}

impl Secure {
    async fn start(client_auth: Option<&str>, callers: &str) -> Self {
        let ca = Ca::new("alliance test CA");
        let dir = TempDir::new();
        let server = ca.server("facade.test");
        let mut tables = format!(
            "[tls]\ncert_chain_file = \"{}\"\nkey_file = \"{}\"\n",
            dir.write("chain.pem", &server.cert_pem).display(),
            dir.write("key.pem", &server.key_pem).display(),
        );
        if let Some(client_auth) = client_auth {
            tables += &format!(
                "client_ca_file = \"{}\"\nclient_auth = \"{client_auth}\"\n",
                dir.write("client-ca.pem", &ca.pem()).display()
            );
        }
        tables += callers;
        let harness = Harness::start_with(
            glance::Options::default(),
            FacadeOptions {
                tables,
                ..FacadeOptions::default()
            },
        )
        .await;
        Secure { harness, ca, dir }
    }

    /// A client that trusts the test CA, presenting `certificate`.
    fn client(&self, certificate: Option<&Issued>) -> reqwest::Client {
        self.ca.client_builder(certificate).https_only(true).build().unwrap()
    }

    fn call(&self, client: &reqwest::Client, environment: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        alliance_call(client, &self.harness.facade, NAMESPACE, environment, method, path)
    }

    /// What Glance received since the last look.
    fn upstream(&self) -> Vec<String> {
        lines(&self.harness.glance.take_requests())
    }
}

fn rule(name: &str, identity: &str, environments: &str, extra: &str) -> String {
    format!(
        "[[callers]]\nname = \"{name}\"\n{identity}\nnamespaces = [\"{NAMESPACE}\"]\nenvironments = {environments}\n{extra}\n"
    )
}

#[tokio::test]
async fn the_five_calls_over_tls() {
    let secure = Secure::start(None, "").await;
    let client = secure.client(None);
    let created =
        send(secure.call(&client, ENV_A, Method::POST, "/images").body(
            json!({"image": {"name": "over-tls", "disk_format": "raw", "container_format": "bare"}}).to_string(),
        ))
        .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let listed = send(secure.call(&client, ENV_A, Method::GET, "/images")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()[0]["images"][0]["id"], id.as_str());
    let shown = send(secure.call(&client, ENV_A, Method::GET, &format!("/images/{id}"))).await;
    assert_eq!(shown.status, 200);
    let updated = send(
        secure
            .call(&client, ENV_A, Method::PUT, &format!("/images/{id}"))
            .body(r#"{"image": {"name": "renamed"}}"#),
    )
    .await;
    assert_eq!(
        (updated.status, updated.json()["name"].as_str()),
        (200, Some("renamed"))
    );
    let deleted = send(secure.call(&client, ENV_A, Method::DELETE, &format!("/images/{id}"))).await;
    assert_eq!(deleted.status, 200);

    // curl, at most TLS 1.2, offering h2: HTTP/1.1 over TLS 1.2.
    let ca_file = secure.dir.write("curl-ca.pem", &secure.ca.pem());
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--http2", "--tls-max", "1.2", "--cacert"])
        .arg(&ca_file)
        .args(["-H", &format!("X-Target-Ns: {NAMESPACE}")])
        .args(["-H", &format!("X-Environment-Id: {ENV_A}")])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .arg(format!("{}/images", secure.harness.facade.url()))
        .output()
        .await
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, status) = stdout.rsplit_once('\n').expect("curl's status line");
    assert_eq!(
        status,
        "200 1.1",
        "curl: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        json!([{"images": []}])
    );
}

#[tokio::test]
async fn only_http_1_1_is_offered_and_tls_1_2_is_the_oldest() {
    use std::sync::Arc;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let secure = Secure::start(None, "").await;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(secure.ca.pem().as_bytes()).unwrap())
        .unwrap();
    let connect = |alpn: &[&[u8]], versions: &[&'static tokio_rustls::rustls::SupportedProtocolVersion]| {
        let mut config = ClientConfig::builder_with_protocol_versions(versions)
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        let connector = TlsConnector::from(Arc::new(config));
        let addr = secure.harness.facade.addr;
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let stream = connector
                .connect(ServerName::try_from("127.0.0.1").unwrap(), stream)
                .await?;
            let (_, connection) = stream.get_ref();
            Ok::<_, std::io::Error>((
                connection.alpn_protocol().map(<[u8]>::to_vec),
                connection.protocol_version(),
            ))
        }
    };
    use tokio_rustls::rustls::{ProtocolVersion, version};
    assert_eq!(
        connect(&[b"h2", b"http/1.1"], &[&version::TLS13]).await.unwrap(),
        (Some(b"http/1.1".to_vec()), Some(ProtocolVersion::TLSv1_3))
    );
    assert_eq!(
        connect(&[], &[&version::TLS12]).await.unwrap(),
        (None, Some(ProtocolVersion::TLSv1_2))
    );
    assert!(
        connect(&[b"h2"], &[&version::TLS13]).await.is_err(),
        "h2 alone is refused"
    );
}

#[tokio::test]
async fn client_certificates_act_as_their_environments() {
    let pinned = pki::self_signed_client("pinned.test");
    let callers = format!(
        "{}{}",
        rule(
            "gateway",
            "client_cert_name = \"gateway.test\"",
            &format!("[\"{ENV_A}\"]"),
            ""
        ),
        rule(
            "pinned",
            &format!("client_cert_sha256 = \"{}\"", pinned.fingerprint()),
            &format!("[\"{ENV_B}\"]"),
            "read_only = true"
        ),
    );
    let secure = Secure::start(Some("request"), &callers).await;
    let by_cn = secure.client(Some(&secure.ca.client("gateway.test", &[])));
    let by_san = secure.client(Some(&secure.ca.client("some host", &["gateway.test"])));
    let list =
        |client: &reqwest::Client, environment: &str| send(secure.call(client, environment, Method::GET, "/images"));
    for client in [&by_cn, &by_san] {
        assert_eq!(list(client, ENV_A).await.status, 200);
        assert_eq!(secure.upstream().len(), 1);
        let refused = list(client, ENV_B).await.error_message(403);
        assert_eq!(refused, "this caller may not act on this environment");
        assert!(secure.upstream().is_empty(), "nothing upstream for a refusal");
    }

    // The same name from another CA, an unknown certificate, none: not recognised.
    let impostor = Ca::new("another CA").client("gateway.test", &[]);
    for client in [
        secure.client(Some(&impostor)),
        secure.client(Some(&pki::self_signed_client("stranger.test"))),
        secure.client(None),
    ] {
        let message = list(&client, ENV_A).await.error_message(401);
        assert!(message.starts_with("authentication required"), "{message}");
    }
    assert!(secure.upstream().is_empty());

    // Pinned by fingerprint, whoever issued it; read-only.
    let pinned = secure.client(Some(&pinned));
    assert_eq!(list(&pinned, ENV_B).await.status, 200);
    assert_eq!(
        list(&pinned, ENV_A).await.error_message(403),
        "this caller may not act on this environment"
    );
    let create = send(
        secure
            .call(&pinned, ENV_B, Method::POST, "/images")
            .body(r#"{"image": {"name": "x"}}"#),
    )
    .await;
    assert_eq!(create.error_message(403), "this caller may only list and show images");
    assert_eq!(secure.upstream().len(), 1, "only the allowed list went upstream");
}

#[tokio::test]
async fn require_refuses_connections_without_a_certificate() {
    let callers = rule("gateway", "client_cert_name = \"gateway.test\"", "\"*\"", "");
    let secure = Secure::start(Some("require"), &callers).await;
    let without = secure
        .call(&secure.client(None), ENV_A, Method::GET, "/images")
        .send()
        .await;
    assert!(without.is_err(), "the handshake fails: {without:?}");
    let with = secure.client(Some(&secure.ca.client("gateway.test", &[])));
    assert_eq!(
        send(secure.call(&with, ENV_A, Method::GET, "/images")).await.status,
        200
    );
}

/// A plain-HTTP facade on loopback with `callers` (the local gateway's case).
async fn plain_with_callers(callers: String) -> Harness {
    Harness::start_with_tables(callers).await
}

#[tokio::test]
async fn source_networks() {
    let local = plain_with_callers(rule(
        "local",
        "source_cidrs = [\"127.0.0.0/8\"]",
        &format!("[\"{ENV_A}\"]"),
        "",
    ))
    .await;
    assert_eq!(send(local.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    let refused = send(local.call_as(ENV_B, Method::GET, "/images")).await;
    assert_eq!(
        refused.error_message(403),
        "this caller may not act on this environment"
    );
    let elsewhere = plain_with_callers(rule("elsewhere", "source_cidrs = [\"10.0.0.0/8\"]", "\"*\"", "")).await;
    send(elsewhere.call_as(ENV_A, Method::GET, "/images"))
        .await
        .error_message(401);
    assert_eq!(local.glance.requests().len(), 1);
    assert!(elsewhere.glance.requests().is_empty());
}

#[tokio::test]
async fn a_caller_over_its_rules_rate_is_refused_with_429() {
    capture_request_log();
    let harness = plain_with_callers(rule(
        "local",
        "source_cidrs = [\"127.0.0.0/8\"]",
        "\"*\"",
        "rate = { rate_per_sec = 1, burst = 2 }",
    ))
    .await;
    // The caller's bucket, whatever the environment.
    assert_eq!(send(harness.call_as(ENV_A, Method::GET, "/images")).await.status, 200);
    assert_eq!(send(harness.call_as(ENV_B, Method::GET, "/images")).await.status, 200);
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let refused = send(
        harness
            .call_as(ENV_A, Method::GET, "/images")
            .header("X-Openstack-Request-Id", &request_id),
    )
    .await;
    assert_eq!(
        refused.error_message(429),
        "too many requests for this caller; retry later"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        harness.glance.requests().len(),
        2,
        "nothing of the refused request sent upstream"
    );
    let line = request_log_line(&request_id).await;
    assert_eq!(
        (&line["status"], &line["reason"], &line["caller"]),
        (&json!(429), &json!("caller_rate_limited"), &json!("-"))
    );
}

#[tokio::test]
async fn bearer_secrets() {
    let batch = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4a6c8e0b2d4f6a";
    let filed = "0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e";
    let secrets = TempDir::new();
    let file = secrets.write("filed.secret", &format!("{filed}\n"));
    let callers = format!(
        "{}{}",
        rule(
            "batch",
            &format!("bearer_secret_sha256 = \"{}\"", SaltedHash::new(batch).unwrap()),
            &format!("[\"{ENV_A}\"]"),
            ""
        ),
        rule(
            "filed",
            &format!("bearer_secret_file = \"{}\"", file.display()),
            &format!("[\"{ENV_B}\"]"),
            "read_only = true"
        ),
    );
    let harness = plain_with_callers(callers).await;
    let call = |environment: &str, method: Method, authorization: Option<String>| {
        let request = harness.call_as(environment, method, "/images");
        match authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        }
    };
    let answer = send(call(ENV_A, Method::GET, Some(format!("Bearer {batch}")))).await;
    assert_eq!(answer.status, 200);
    // The secret went no further than the facade.
    assert_trusted_identity(&harness.glance.take_requests()[0], ENV_A);
    assert_eq!(
        send(call(ENV_B, Method::GET, Some(format!("Bearer {batch}"))))
            .await
            .error_message(403),
        "this caller may not act on this environment"
    );
    assert_eq!(
        send(call(ENV_B, Method::GET, Some(format!("bearer {filed}"))))
            .await
            .status,
        200
    );
    let create = call(ENV_B, Method::POST, Some(format!("Bearer {filed}"))).body(r#"{"image": {}}"#);
    assert_eq!(
        send(create).await.error_message(403),
        "this caller may only list and show images"
    );

    // A wrong secret (one character off) and an unknown one get the same answer.
    let wrong = format!("{}0", &batch[..batch.len() - 1]);
    let unknown = "7".repeat(batch.len());
    let mut answers = Vec::new();
    for secret in [wrong, unknown] {
        let answer = send(call(ENV_A, Method::GET, Some(format!("Bearer {secret}")))).await;
        let message = answer.error_message(401);
        let mut names: Vec<String> = answer.headers.keys().map(ToString::to_string).collect();
        names.sort();
        let mut document = answer.json();
        document["error"]["request_id"] = json!("-");
        answers.push((message, names, document));
    }
    assert_eq!(answers[0], answers[1]);
    for authorization in [None, Some(format!("Basic {batch}")), Some("Bearer".to_owned())] {
        send(call(ENV_A, Method::GET, authorization)).await.error_message(401);
    }
    assert_eq!(harness.glance.requests().len(), 1, "the refusals sent nothing upstream");
}

#[tokio::test]
async fn keystone_token_callers_act_on_their_project() {
    let harness = KeystoneHarness::start_with_tables(
        with_service_role_and_alice,
        &format!(", service_project_id = \"{SERVICE_PROJECT}\", caller_token_cache_secs = 1"),
        &rule("users", "keystone_token = true", "\"*\"", ""),
    )
    .await;
    let keystone = &harness.keystone;
    let alpha = project_token(&keystone.url(), ALICE, ALICE_PASSWORD, ALPHA).await;
    let call = |environment: &str, method: Method, token: &str| {
        harness
            .call_as(environment, method, "/images")
            .header("X-Auth-Token", token)
    };
    assert_eq!(send(call(ALPHA, Method::GET, &alpha)).await.status, 200);
    let sent = harness.glance.take_requests();
    let upstream_token = sent[0].header("x-auth-token").unwrap();
    assert_ne!(
        upstream_token, alpha,
        "Glance gets the facade's token, never the caller's"
    );
    assert_eq!(
        keystone.validate(upstream_token).unwrap().user_id,
        keystone::SERVICE_USER_ID
    );
    assert_eq!(keystone.validations(), 1);
    assert_eq!(send(call(ALPHA, Method::GET, &alpha)).await.status, 200);
    assert_eq!(keystone.validations(), 1, "a validated token is cached");

    let refused = send(call(BETA, Method::GET, &alpha)).await;
    assert_eq!(
        refused.error_message(403),
        "the token is scoped to another project than X-Environment-Id"
    );
    // A reader may list, not create.
    let beta = project_token(&keystone.url(), ALICE, ALICE_PASSWORD, BETA).await;
    assert_eq!(send(call(BETA, Method::GET, &beta)).await.status, 200);
    let create = call(BETA, Method::POST, &beta).body(r#"{"image": {}}"#);
    assert!(
        send(create)
            .await
            .error_message(403)
            .starts_with("the token's roles do not allow")
    );

    // Not a token, twice: asked once, refused both times.
    let before = keystone.validations();
    for _ in 0..2 {
        send(call(ALPHA, Method::GET, "not-a-token")).await.error_message(401);
    }
    assert_eq!(keystone.validations(), before + 1);

    // Revoked: refused once the cached validation is older than caller_token_cache_secs.
    keystone.revoke_user_tokens(ALICE);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(call(ALPHA, Method::GET, &alpha)).await.error_message(401);
    assert_eq!(
        harness.glance.take_requests().len(),
        2,
        "only the allowed lists went upstream"
    );
}

/// A client sending tokens nobody issued costs Keystone one validation per
/// new token within `caller_token_validations_per_sec` and its burst only;
/// past them, 503 with `Retry-After`, and nothing goes upstream.
#[tokio::test]
async fn unknown_tokens_cost_keystone_within_the_rate() {
    let harness = KeystoneHarness::start_with_tables(
        with_service_role_and_alice,
        &format!(
            ", service_project_id = \"{SERVICE_PROJECT}\", caller_token_validations_per_sec = 1, caller_token_validations_burst = 3"
        ),
        &rule("users", "keystone_token = true", "\"*\"", ""),
    )
    .await;
    let keystone = &harness.keystone;
    let started = std::time::Instant::now();
    let (mut unrecognised, mut limited) = (0, 0);
    for attempt in 0..30 {
        let answer = send(
            harness
                .call_as(ALPHA, Method::GET, "/images")
                .header("X-Auth-Token", format!("forged-token-{attempt}")),
        )
        .await;
        match answer.status {
            401 => unrecognised += 1,
            503 => {
                assert!(answer.header("retry-after").is_some(), "503 says when to retry");
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // The facade's own service-project token is one validation-free token
    // request; every validation is of a forged token.
    let allowed = 3 + started.elapsed().as_secs() as usize + 1;
    assert!(
        keystone.validations() <= allowed,
        "{} validations for 30 forged tokens (at most {allowed})",
        keystone.validations()
    );
    assert_eq!(unrecognised, keystone.validations());
    assert_eq!(unrecognised + limited, 30);
    assert!(limited >= 30 - allowed);
    assert!(harness.glance.requests().is_empty(), "nothing went upstream");
}
