//! The audit trail (`[audit]`): one CADF event for each change and each
//! refused caller - and each read with `reads = true` - naming who (the
//! rule, the kind of credential and its public identity, the address),
//! what (the image, the project, the namespace), how it ended, and the
//! request id Glance saw; for every kind of caller (client certificate,
//! bearer secret, source network, Keystone token). pycadf checks every
//! event (`every_event_is_valid_cadf`, in the test command with the venv).
//! No secret reaches the trail; rotation loses nothing; a sink that stops
//! or fails never holds a request, and with `required = true` changes are
//! refused while their events cannot be written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use alliance_glance::app::App;
use alliance_glance::callers::bearer::SaltedHash;
use openstack_mock::files::{FileServer, tiny_qcow2};
use openstack_mock::glance;

use crate::support::pki::Ca;
use crate::support::trail::*;
use crate::support::*;

const BATCH_SECRET: &str = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4a6c8e0b2d4f6a";
const WRONG_SECRET: &str = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4a6c8e0b2d4f60";

/// A folder holding a trail (`audit.jsonl`).
struct Trail(TempDir);

impl Trail {
    fn new() -> Self {
        Trail(TempDir::new())
    }

    fn file(&self) -> PathBuf {
        self.0.0.join("audit.jsonl")
    }

    fn table(&self, extra: &str) -> String {
        audit_table(&self.file(), extra)
    }
}

/// The value of `alliance_glance_audit_events_total{outcome}`.
fn audit_events(app: &App, outcome: &str) -> u64 {
    metric_value(
        app,
        &format!("alliance_glance_audit_events_total{{outcome=\"{outcome}\"}}"),
    )
}

fn created_id(answer: &Answer) -> String {
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()["id"].as_str().expect("an id").to_owned()
}

fn request_id_of(answer: &Answer) -> String {
    answer
        .header("x-openstack-request-id")
        .expect("a request id")
        .to_owned()
}

/// The status of a create of an image named `name`.
async fn create(harness: &Harness, name: &str) -> u16 {
    create_answer(harness, name).await.status
}

async fn create_answer(harness: &Harness, name: &str) -> Answer {
    create_answer_from(harness, name, None).await
}

/// A create, through a proxy naming `forwarded_for` in `X-Forwarded-For`.
async fn create_answer_from(harness: &Harness, name: &str, forwarded_for: Option<&str>) -> Answer {
    let mut request = harness
        .call(Method::POST, "/images")
        .body(json!({"image": {"name": name}}).to_string());
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    send(request).await
}

/// The request ids of the answers, in order, each checked for its status.
#[derive(Default)]
struct Answered(Vec<String>);

impl Answered {
    fn expect(&mut self, answer: Answer, status: u16) -> Answer {
        assert_eq!(answer.status, status, "{}", String::from_utf8_lossy(&answer.body));
        self.0.push(request_id_of(&answer));
        answer
    }
}

/// The image the event's target names: id, name, namespace, project.
fn target(event: &Value) -> (String, Value, String, String) {
    let facts = attachment(&event["target"], "image");
    assert_eq!(event["target"]["typeURI"], "data/image");
    (
        event["target"]["id"].as_str().unwrap_or_default().to_owned(),
        event["target"]["name"].clone(),
        facts["namespace"].as_str().unwrap_or_default().to_owned(),
        facts["project_id"].as_str().unwrap_or_default().to_owned(),
    )
}

fn every_event_has_the_observer_and_the_request_ids(events: &[Value], request_ids: &[String]) {
    let observer = &events[0]["observer"];
    assert_eq!(observer["name"], "alliance-glance");
    assert_eq!(observer["typeURI"], "service/storage/image");
    for (event, request_id) in events.iter().zip(request_ids) {
        assert_eq!(&event["observer"], observer);
        assert_eq!(event["typeURI"], "http://schemas.dmtf.org/cloud/audit/1.0/event");
        assert_eq!(event["eventType"], "activity");
        assert_eq!(event_request_id(event), request_id, "{event}");
    }
}

/// Client certificates and bearer secrets over TLS, reads recorded: the
/// five calls, `copy_from` started, an import first seen failed, 403 and
/// 401s. Returns the trail.
async fn certificates_and_bearer_secrets() -> Trail {
    let trail = Trail::new();
    let ca = Ca::new("audit test CA");
    let dir = TempDir::new();
    let server = ca.server("facade.test");
    let tables = format!(
        "[tls]\ncert_chain_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\nclient_auth = \"request\"\n\
         [[callers]]\nname = \"gateway\"\nclient_cert_name = \"gateway.test\"\nnamespaces = [\"{NAMESPACE}\"]\nenvironments = [\"{ENV_A}\"]\n\
         [[callers]]\nname = \"batch\"\nbearer_secret_sha256 = \"{}\"\nnamespaces = \"*\"\nenvironments = [\"{ENV_A}\"]\n{}",
        dir.write("chain.pem", &server.cert_pem).display(),
        dir.write("key.pem", &server.key_pem).display(),
        dir.write("client-ca.pem", &ca.pem()).display(),
        SaltedHash::new(BATCH_SECRET).unwrap(),
        trail.table("reads = true"),
    );
    let files = FileServer::start(vec![("/cirros.qcow2".into(), tiny_qcow2(1 << 20))])
        .await
        .unwrap();
    let harness = Harness::start_with(
        glance::Options {
            web_download_allowed_ports: vec![files.addr.port()],
            ..glance::Options::default()
        },
        FacadeOptions {
            tables,
            ..FacadeOptions::default()
        },
    )
    .await;
    let client = |certificate| ca.client_builder(certificate).build().unwrap();
    let gateway_certificate = ca.client("gateway.test", &[]);
    let gateway = client(Some(&gateway_certificate));
    let anonymous = client(None);
    let call = |client: &reqwest::Client, environment: &str, method: Method, path: &str| {
        alliance_call(client, &harness.facade, NAMESPACE, environment, method, path)
    };
    let mut answered = Answered::default();

    let image = json!({"image": {"name": "audited", "disk_format": "qcow2", "container_format": "bare"}});
    let created = answered.expect(
        send(call(&gateway, ENV_A, Method::POST, "/images").body(image.to_string())).await,
        201,
    );
    let id = created_id(&created);
    answered.expect(send(call(&gateway, ENV_A, Method::GET, "/images")).await, 200);
    answered.expect(send(call(&gateway, ENV_A, Method::GET, "/images/audited")).await, 200);
    answered.expect(
        send(call(&gateway, ENV_A, Method::PUT, "/images/audited").body(r#"{"image": {"name": "renamed"}}"#)).await,
        200,
    );
    let copy = json!({"image": {"name": "copied", "disk_format": "qcow2", "container_format": "bare",
                                "copy_from": files.url("/cirros.qcow2")}});
    let copied = answered.expect(
        send(call(&gateway, ENV_A, Method::POST, "/images").body(copy.to_string())).await,
        201,
    );
    let copied_id = created_id(&copied);
    answered.expect(
        send(call(&gateway, ENV_A, Method::DELETE, &format!("/images/{id}"))).await,
        200,
    );
    answered.expect(
        send(call(&gateway, ENV_A, Method::DELETE, &format!("/images/{id}"))).await,
        404,
    );
    answered.expect(
        send(call(&gateway, ENV_B, Method::DELETE, &format!("/images/{id}"))).await,
        403,
    );

    // An import that failed, shown twice: reported once.
    let failed = harness
        .glance_create(
            ENV_A,
            json!({"name": "failed", "copy_from": "http://example.invalid/x.qcow2",
                   "alliance_copy_from_error": "the copy_from source answered 404"}),
        )
        .await;
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let bearer = |secret: &str| {
        call(&anonymous, ENV_A, Method::GET, &format!("/images/{failed_id}"))
            .header("Authorization", format!("Bearer {secret}"))
    };
    let shown = answered.expect(send(bearer(BATCH_SECRET)).await, 200);
    assert_eq!(shown.json()["status"], "killed");
    answered.expect(send(bearer(BATCH_SECRET)).await, 200);
    answered.expect(send(bearer(WRONG_SECRET)).await, 401);
    answered.expect(send(call(&anonymous, ENV_A, Method::GET, "/images")).await, 401);
    // The killed report and the show that saw it share the request id.
    answered.0.insert(8, answered.0[8].clone());

    let events = events(&trail.file(), 13).await;
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(
        summaries,
        [
            "create success 201",
            "read/list success 200",
            "read success 200",
            "update success 200",
            "create/copy_from pending 201",
            "delete success 200",
            "delete failure 404",
            "delete failure 403",
            "create/copy_from failure killed",
            "read success 200",
            "read success 200",
            "authenticate failure 401",
            "authenticate failure 401",
        ]
    );
    every_event_has_the_observer_and_the_request_ids(&events, &answered.0);

    // The gateway, by its certificate.
    let fingerprint = gateway_certificate.fingerprint().replace(':', "").to_ascii_lowercase();
    for event in &events[..8] {
        let initiator = &event["initiator"];
        assert_eq!(initiator["typeURI"], "service/security/account/user");
        assert_eq!(initiator["id"], fingerprint.as_str());
        assert_eq!(initiator["name"], "gateway");
        assert_eq!(initiator["host"]["address"], "127.0.0.1");
        assert_eq!(
            caller(event),
            &json!({"credential": "client_certificate", "rule": "gateway",
                    "certificate_sha256": fingerprint, "certificate_names": ["gateway.test"],
                    "presented": ["client_certificate"]})
        );
    }
    let a = |id: &str, name: Value| (id.to_owned(), name, NAMESPACE.to_owned(), ENV_A.to_owned());
    assert_eq!(target(&events[0]), a(&id, json!("audited")));
    assert_eq!(target(&events[1]), a("unknown", Value::Null), "a list names no image");
    assert_eq!(target(&events[2]), a(&id, json!("audited")), "the name resolved");
    assert_eq!(target(&events[3]), a(&id, json!("audited")));
    assert_eq!(target(&events[4]), a(&copied_id, json!("copied")));
    assert_eq!(target(&events[5]), a(&id, json!("renamed")));
    assert_eq!(target(&events[6]), a(&id, Value::Null), "not found: the id of the path");
    assert_eq!(
        target(&events[7]),
        (id.clone(), Value::Null, NAMESPACE.to_owned(), ENV_B.to_owned()),
        "refused before the look-up"
    );

    // The failed import: reported by the image service, once.
    assert_eq!(target(&events[8]), a(&failed_id, json!("failed")));
    assert_eq!(
        (&events[8]["initiator"]["typeURI"], &events[8]["initiator"]["name"]),
        (&json!("service/storage/image"), &json!(NAMESPACE))
    );
    assert_eq!(events[8]["reason"]["reasonType"], "image_status");

    // The bearer-secret rule: one caller, whatever its address.
    assert_eq!(target(&events[9]), a(&failed_id, json!("failed")));
    // A show that took another's answer (shared shows) knows the id only.
    assert_eq!(target(&events[10]).0, failed_id);
    for event in &events[9..11] {
        assert_eq!(event["initiator"]["name"], "batch");
        assert_eq!(
            caller(event),
            &json!({"credential": "bearer_secret", "rule": "batch", "presented": ["bearer_secret"]})
        );
    }
    assert_eq!(events[9]["initiator"]["id"], events[10]["initiator"]["id"]);
    assert_ne!(events[9]["initiator"]["id"], events[11]["initiator"]["id"]);

    // Not recognised: what it presented, nothing more.
    assert_eq!(
        caller(&events[11]),
        &json!({"credential": "unrecognised", "presented": ["bearer_secret"]})
    );
    assert_eq!(
        caller(&events[12]),
        &json!({"credential": "unrecognised", "presented": []})
    );
    assert_eq!(events[12]["initiator"]["name"], Value::Null);
    assert_eq!(target(&events[12]), a("unknown", Value::Null));
    let text = std::fs::read_to_string(trail.file()).unwrap();
    assert!(!text.contains(BATCH_SECRET) && !text.contains(WRONG_SECRET));
    trail
}

/// A source network (reads not recorded): a 403, changes, a 429 over the
/// caller's rate.
async fn source_networks() -> Trail {
    let trail = Trail::new();
    let tables = format!(
        "[[callers]]\nname = \"local\"\nsource_cidrs = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\nnamespaces = \"*\"\n\
         environments = [\"{ENV_A}\"]\nrate = {{ rate_per_sec = 1, burst = 2 }}\n{}",
        trail.table("")
    );
    let harness = Harness::start_with_tables(tables).await;
    let mut answered = Answered::default();
    answered.expect(send(harness.call_as(ENV_B, Method::GET, "/images")).await, 403);
    let created = answered.expect(create_answer(&harness, "by-address").await, 201);
    let id = created_id(&created);
    let image = format!("/images/{id}");
    answered.expect(
        send(harness.call(Method::PATCH, &image).body(r#"{"image": {"min_ram": 7}}"#)).await,
        200,
    );
    answered.expect(send(harness.call(Method::DELETE, &image)).await, 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    answered.expect(send(harness.call(Method::DELETE, &image)).await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Reads are not recorded without `reads = true`.
    assert_eq!(send(harness.call(Method::GET, "/images")).await.status, 200);

    let events = events(&trail.file(), 5).await;
    assert_eq!(
        events.iter().map(summary).collect::<Vec<_>>(),
        [
            "read/list failure 403",
            "create success 201",
            "update success 200",
            "delete failure 429",
            "delete success 200",
        ]
    );
    every_event_has_the_observer_and_the_request_ids(&events, &answered.0);
    for event in &events {
        assert_eq!(event["initiator"]["name"], "local");
        assert_eq!(
            caller(event),
            &json!({"credential": "source_network", "rule": "local", "source_network": "127.0.0.0/8",
                    "presented": []})
        );
        assert_eq!(event["initiator"]["id"], events[0]["initiator"]["id"]);
    }
    assert_eq!(target(&events[0]).3, ENV_B);
    assert_eq!(target(&events[3]).0, id, "a 429 names the image of the path");
    trail
}

/// Keystone tokens: the user and project Keystone gave, 403s for another
/// project and for a reader's change, a 401 for what is no token.
async fn keystone_tokens() -> Trail {
    use openstack_mock::keystone::{ALPHA, BETA};
    let trail = Trail::new();
    let harness = KeystoneHarness::start_with_tables(
        with_service_role_and_alice,
        &format!(", service_project_id = \"{SERVICE_PROJECT}\""),
        &format!(
            "[[callers]]\nname = \"users\"\nkeystone_token = true\nnamespaces = \"*\"\nenvironments = \"*\"\n{}",
            trail.table("")
        ),
    )
    .await;
    let url = harness.keystone.url();
    let alpha = project_token(&url, ALICE, ALICE_PASSWORD, ALPHA).await;
    let beta = project_token(&url, ALICE, ALICE_PASSWORD, BETA).await;
    let call = |environment: &str, method: Method, path: &str, token: &str| {
        harness.call_as(environment, method, path).header("X-Auth-Token", token)
    };
    let mut answered = Answered::default();
    let created = answered.expect(
        send(call(ALPHA, Method::POST, "/images", &alpha).body(r#"{"image": {"name": "by-token"}}"#)).await,
        201,
    );
    let id = created_id(&created);
    answered.expect(send(call(BETA, Method::GET, "/images", &alpha)).await, 403);
    answered.expect(
        send(call(BETA, Method::POST, "/images", &beta).body(r#"{"image": {"name": "x"}}"#)).await,
        403,
    );
    answered.expect(send(call(ALPHA, Method::GET, "/images", "not-a-token")).await, 401);
    answered.expect(
        send(call(ALPHA, Method::DELETE, &format!("/images/{id}"), &alpha)).await,
        200,
    );

    let events = events(&trail.file(), 5).await;
    assert_eq!(
        events.iter().map(summary).collect::<Vec<_>>(),
        [
            "create success 201",
            "read/list failure 403",
            "create failure 403",
            "authenticate failure 401",
            "delete success 200",
        ]
    );
    every_event_has_the_observer_and_the_request_ids(&events, &answered.0);
    let user = |project: &str| {
        json!({"credential": "keystone_token", "rule": "users", "user_id": ALICE, "project_id": project,
               "presented": ["keystone_token"]})
    };
    for (index, project) in [(0, ALPHA), (1, ALPHA), (2, BETA), (4, ALPHA)] {
        assert_eq!(caller(&events[index]), &user(project), "event {index}");
        assert_eq!(events[index]["initiator"]["id"], ALICE);
    }
    assert_eq!(
        caller(&events[3]),
        &json!({"credential": "unrecognised", "presented": ["keystone_token"]})
    );
    assert_eq!(target(&events[0]).0, id);
    assert_eq!(target(&events[4]).0, id);
    trail
}

/// `syslog`: each event one message, as `syslog(3)` sends it.
#[tokio::test]
async fn events_go_to_syslog() {
    let trail = Trail::new();
    let socket = trail.0.0.join("log.socket");
    let daemon = tokio::net::UnixDatagram::bind(&socket).unwrap();
    let harness = Harness::start_with_tables(format!(
        "[audit]\nsyslog = \"{}\"\nsyslog_facility = \"local4\"\n",
        socket.display()
    ))
    .await;
    let created = create_answer(&harness, "logged").await;
    let mut buffer = vec![0u8; 64 * 1024];
    let length = tokio::time::timeout(Duration::from_secs(10), daemon.recv(&mut buffer))
        .await
        .expect("a message within 10 s")
        .unwrap();
    let message = String::from_utf8(buffer[..length].to_vec()).unwrap();
    // local4 (20) * 8 + info (6)
    assert!(message.starts_with("<166>"), "{message}");
    let (head, event) = message.split_once(": ").unwrap();
    assert!(
        head.ends_with(&format!(" alliance-glance-audit[{}]", std::process::id())),
        "{head}"
    );
    let event: Value = serde_json::from_str(event).unwrap();
    assert_eq!(summary(&event), "create success 201");
    assert_eq!(target(&event).0, created_id(&created));
    eventually("the event to be counted", || async {
        audit_events(&harness.app, "written") == 1
    })
    .await;
}

/// A show refused by its environment's rate: recorded (reads are not),
/// naming the image of the path.
#[tokio::test]
async fn a_request_over_its_environments_rate_is_audited() {
    let trail = Trail::new();
    let harness = Harness::start_with(
        glance::Options::default(),
        FacadeOptions {
            namespace_extra: "limits = { environment_rate_per_sec = 1, environment_burst = 1 }".into(),
            tables: trail.table(""),
            ..FacadeOptions::default()
        },
    )
    .await;
    let id = "9be5a037-ef2f-4ac8-9534-28719f0fecaf";
    let show = || send(harness.call(Method::GET, &format!("/images/{id}")));
    assert_eq!(show().await.status, 404);
    let refused = show().await;
    assert_eq!(refused.status, 429);
    let events = events(&trail.file(), 1).await;
    assert_eq!(summary(&events[0]), "read failure 429");
    assert_eq!(target(&events[0]).0, id);
    assert_eq!(event_request_id(&events[0]), request_id_of(&refused));
}

/// Behind a trusted proxy (`x_forwarded_for`), the initiator is the client
/// the proxy names - its address, the rule's network it is in - not the proxy.
#[tokio::test]
async fn behind_a_trusted_proxy_the_initiator_is_the_forwarded_client() {
    let trail = Trail::new();
    let harness = Harness::start_with(
        glance::Options::default(),
        FacadeOptions {
            client: "trusted_proxies = [\"127.0.0.1/32\"]\nx_forwarded_for = true".into(),
            tables: format!(
                "[[callers]]\nname = \"branch\"\nsource_cidrs = [\"10.9.8.0/24\"]\nnamespaces = \"*\"\nenvironments = \"*\"\n{}",
                trail.table("")
            ),
            ..FacadeOptions::default()
        },
    )
    .await;
    let created = create_answer_from(&harness, "forwarded", Some("10.9.8.7")).await;
    assert_eq!(created.status, 201);
    // The proxy itself (no header) is no caller of the rule.
    assert_eq!(create_answer_from(&harness, "proxy", None).await.status, 401);
    let events = events(&trail.file(), 2).await;
    assert_eq!(summary(&events[0]), "create success 201");
    assert_eq!(events[0]["initiator"]["host"]["address"], "10.9.8.7");
    assert_eq!(caller(&events[0])["source_network"], "10.9.8.0/24");
    assert_eq!(summary(&events[1]), "authenticate failure 401");
    assert_eq!(events[1]["initiator"]["host"]["address"], "127.0.0.1");
}

#[tokio::test]
async fn every_kind_of_caller_is_audited() {
    certificates_and_bearer_secrets().await;
    source_networks().await;
    keystone_tokens().await;
}

#[tokio::test]
#[ignore = "needs the venv of scripts/openstack/up.sh (pycadf): scripts/test.sh builds it"]
async fn every_event_is_valid_cadf() {
    for trail in [
        certificates_and_bearer_secrets().await,
        source_networks().await,
        keystone_tokens().await,
    ] {
        let written = events(&trail.file(), trail_lines(&trail.file()).len()).await;
        assert_eq!(checked_by_pycadf(&trail.file()), written);
    }
}

/// Bearer secrets, Keystone tokens (the caller's and the facade's own) and
/// passwords: none in the trail or the request log, whatever the answer.
#[tokio::test]
async fn no_secret_in_the_trail_or_the_request_log() {
    use openstack_mock::keystone::{ALPHA, BETA, SERVICE_PASSWORD};
    capture_request_log();
    let trail = Trail::new();
    let harness = KeystoneHarness::start_with_tables(
        with_service_role_and_alice,
        &format!(", service_project_id = \"{SERVICE_PROJECT}\""),
        &format!(
            "[[callers]]\nname = \"batch\"\nbearer_secret_sha256 = \"{}\"\nnamespaces = \"*\"\nenvironments = [\"{ALPHA}\"]\n\
             [[callers]]\nname = \"users\"\nkeystone_token = true\nnamespaces = \"*\"\nenvironments = \"*\"\n{}",
            SaltedHash::new(BATCH_SECRET).unwrap(),
            trail.table("reads = true")
        ),
    )
    .await;
    let token = project_token(&harness.keystone.url(), ALICE, ALICE_PASSWORD, ALPHA).await;
    let mut request_ids = Vec::new();
    let mut sent = |request: reqwest::RequestBuilder| {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        request_ids.push(request_id.clone());
        send(request.header("X-Openstack-Request-Id", request_id))
    };
    let bearer = |environment: &str, method: Method, secret: &str| {
        harness
            .call_as(environment, method, "/images")
            .header("Authorization", format!("Bearer {secret}"))
    };
    let token_call = |environment: &str, method: Method, token: &str| {
        harness
            .call_as(environment, method, "/images")
            .header("X-Auth-Token", token)
    };
    let body = r#"{"image": {"name": "secretive"}}"#;
    assert_eq!(
        sent(bearer(ALPHA, Method::POST, BATCH_SECRET).body(body)).await.status,
        201
    );
    assert_eq!(sent(bearer(BETA, Method::GET, BATCH_SECRET)).await.status, 403);
    assert_eq!(sent(bearer(ALPHA, Method::GET, WRONG_SECRET)).await.status, 401);
    assert_eq!(
        sent(token_call(ALPHA, Method::POST, &token).body(body)).await.status,
        201
    );
    assert_eq!(
        sent(token_call(BETA, Method::POST, &token).body(body)).await.status,
        403
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(sent(token_call(ALPHA, Method::GET, &forged)).await.status, 401);

    events(&trail.file(), 6).await;
    for request_id in &request_ids {
        request_log_line(request_id).await;
    }
    let audit = std::fs::read_to_string(trail.file()).unwrap();
    let log = captured_log();
    let facade_token = harness.glance.requests()[0]
        .header("x-auth-token")
        .expect("the facade's own token")
        .to_owned();
    for (what, secret) in [
        ("the bearer secret", BATCH_SECRET),
        ("a wrong bearer secret", WRONG_SECRET),
        ("the caller's token", &token[..]),
        ("a forged token", &forged[..]),
        ("a piece of the caller's token", &token[..16]),
        ("the last piece of the caller's token", &token[token.len() - 16..]),
        ("the facade's token", &facade_token[..]),
        ("the caller's password", ALICE_PASSWORD),
        ("the service password", SERVICE_PASSWORD),
    ] {
        assert!(!audit.contains(secret), "{what} in the audit trail");
        assert!(!log.contains(secret), "{what} in the request log");
    }
}

/// Events before and after the file is renamed away (no signal), and
/// after it is renamed and SIGHUP's reopen asked for: all there.
#[tokio::test]
async fn rotation_loses_nothing() {
    let trail = Trail::new();
    let harness = Harness::start_with_tables(trail.table("")).await;
    let rotated = |suffix: &str| PathBuf::from(format!("{}.{suffix}", trail.file().display()));
    for _ in 0..3 {
        assert_eq!(create(&harness, "rotated").await, 201);
    }
    events(&trail.file(), 3).await;
    std::fs::rename(trail.file(), rotated("1")).unwrap();
    for _ in 0..4 {
        assert_eq!(create(&harness, "rotated").await, 201);
    }
    events(&trail.file(), 4).await;
    // logrotate's `create` then SIGHUP (what `alliance-glance serve` does on it).
    std::fs::rename(trail.file(), rotated("2")).unwrap();
    std::fs::write(trail.file(), "").unwrap();
    harness.app.reopen_audit();
    for _ in 0..2 {
        assert_eq!(create(&harness, "rotated").await, 201);
    }
    events(&trail.file(), 2).await;
    assert_eq!(events(&rotated("1"), 3).await.len(), 3);
    assert_eq!(events(&rotated("2"), 4).await.len(), 4);
    assert_eq!(audit_events(&harness.app, "written"), 9);
}

/// `mkfifo PATH`.
fn fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// Reads the FIFO at `path` to its end in a thread: the lines written.
fn drain(path: PathBuf) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || std::fs::read_to_string(path).unwrap_or_default())
}

/// A sink that blocks (a FIFO nobody reads): every request is answered at
/// once; the queue's events wait, the others are dropped and counted.
#[tokio::test]
async fn a_stuck_sink_never_holds_a_request() {
    let trail = Trail::new();
    let path = trail.0.0.join("audit.fifo");
    fifo(&path);
    let harness = Harness::start_with_tables(audit_table(&path, "queue_events = 4")).await;
    for _ in 0..20 {
        let started = Instant::now();
        let answer = create_answer(&harness, "stuck").await;
        assert_eq!(answer.status, 201);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
    eventually("the dropped events to be counted", || async {
        audit_events(&harness.app, "queue_full") == 16
    })
    .await;
    assert_eq!(audit_events(&harness.app, "written"), 0);
    // A reader comes: the four queued events are written.
    let reader = drain(path);
    eventually("the queued events to be written", || async {
        audit_events(&harness.app, "written") == 4
    })
    .await;
    harness.app.close_audit(Duration::from_secs(5));
    drop(harness);
    let read = reader.join().unwrap();
    assert_eq!(read.lines().count(), 4, "{read}");
}

/// A full disk: requests served, every event given up and counted.
#[tokio::test]
async fn a_failing_sink_drops_and_counts() {
    let harness = Harness::start_with_tables(audit_table(Path::new("/dev/full"), "")).await;
    for _ in 0..5 {
        let answer = create_answer(&harness, "full").await;
        assert_eq!(answer.status, 201);
    }
    eventually("the failed events to be counted", || async {
        audit_events(&harness.app, "write_failed") == 5
    })
    .await;
    assert_eq!(audit_events(&harness.app, "written"), 0);
}

/// `required = true`: a change whose event cannot be written is refused
/// (503) before anything goes upstream; reads go on.
async fn changes_refused_reads_served(harness: &Harness, id: &str) {
    harness.glance.take_requests();
    for (method, path, body) in [
        (Method::POST, "/images".to_owned(), r#"{"image": {"name": "refused"}}"#),
        (
            Method::PATCH,
            format!("/images/{id}"),
            r#"{"image": {"name": "refused"}}"#,
        ),
        (Method::DELETE, format!("/images/{id}"), ""),
    ] {
        let answer = send(harness.call(method, &path).body(body)).await;
        assert_eq!(
            answer.error_message(503),
            "changes cannot be recorded in the audit trail at the moment; retry later"
        );
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
    assert!(harness.glance.take_requests().is_empty(), "nothing went upstream");
    assert_eq!(send(harness.call(Method::GET, "/images")).await.status, 200);
    assert_eq!(
        send(harness.call(Method::GET, &format!("/images/{id}"))).await.status,
        200
    );
}

#[tokio::test]
async fn required_audit_refuses_changes_it_cannot_record() {
    // A full disk: the first change's event fails; from then on changes
    // are refused (its event is kept and tried again).
    let full = Harness::start_with_tables(audit_table(Path::new("/dev/full"), "required = true")).await;
    let id = full.glance_create(ENV_A, json!({"name": "kept"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(create(&full, "first").await, 201);
    eventually("the failure to be seen", || async {
        send(full.call(Method::DELETE, "/images/none")).await.status == 503
    })
    .await;
    changes_refused_reads_served(&full, &id).await;
    assert_eq!(audit_events(&full.app, "write_failed"), 0, "never given up");
    full.app.close_audit(Duration::from_millis(100));

    // A blocked sink: the queue's places are taken, then changes are refused.
    let trail = Trail::new();
    let path = trail.0.0.join("audit.fifo");
    fifo(&path);
    let stuck = Harness::start_with_tables(audit_table(&path, "required = true\nqueue_events = 2")).await;
    let id = stuck.glance_create(ENV_A, json!({"name": "kept"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let answer = create_answer(&stuck, "queued").await;
        assert_eq!(answer.status, 201);
    }
    changes_refused_reads_served(&stuck, &id).await;
    // The sink moves again: the queued events are written, changes accepted.
    let reader = drain(path);
    eventually("changes to be accepted again", || async {
        send(
            stuck
                .call(Method::PATCH, &format!("/images/{id}"))
                .body(r#"{"image": {"name": "again"}}"#),
        )
        .await
        .status
            == 200
    })
    .await;
    stuck.app.close_audit(Duration::from_secs(5));
    drop(stuck);
    assert_eq!(reader.join().unwrap().lines().count(), 3);
}

/// `required = true` and a file that cannot be opened at first (its folder
/// is missing): changes refused; once it can be, accepted again.
#[tokio::test]
async fn required_audit_recovers_when_the_sink_does() {
    let trail = Trail::new();
    let folder = trail.0.0.join("later");
    let file = folder.join("audit.jsonl");
    let harness = Harness::start_with_tables(audit_table(&file, "required = true")).await;
    eventually("the failure to be seen", || async {
        create(&harness, "early").await == 503
    })
    .await;
    assert_eq!(send(harness.call(Method::GET, "/images")).await.status, 200);
    std::fs::create_dir(&folder).unwrap();
    eventually("changes to be accepted again", || async {
        create(&harness, "later").await == 201
    })
    .await;
    // Every create answered 201 is recorded: one that raced the first
    // failure (its place was taken) was written once the file could be.
    let created = send(harness.call(Method::GET, "/images")).await.json()[0]["images"]
        .as_array()
        .map_or(0, Vec::len);
    let events = events(&file, created).await;
    assert!(events.iter().all(|event| summary(event) == "create success 201"));
}
