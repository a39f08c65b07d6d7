//! `serve` and `check-config` as an operator runs them: the binary refuses
//! to serve beyond loopback unguarded, names the field of a bad setting, and
//! reloads its certificates on SIGHUP without dropping open connections.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use openstack_mock::glance;
use support::pki::{Ca, Issued};
use support::{ENV_A, NAMESPACE, TempDir, free_port};

const BINARY: &str = env!("CARGO_BIN_EXE_alliance-glance");

fn namespace(glance_url: &str) -> String {
    format!(
        "[namespaces.{NAMESPACE}]\nglance_url = \"{glance_url}\"\nauth = {{ type = \"trusted\", user_id = \"u\" }}\n"
    )
}

/// `alliance-glance ARGS...`: its exit status and standard error.
async fn run(args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(BINARY)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn check_config(dir: &TempDir, text: &str) -> (bool, String) {
    let path = dir.write("alliance-glance.toml", text);
    run(&["check-config", "--config", &path.display().to_string()]).await
}

#[tokio::test]
async fn serve_refuses_to_listen_beyond_loopback_unguarded() {
    let dir = TempDir::new();
    // A documentation address: were it not refused, binding it would fail
    // rather than open a port.
    let config = dir.write(
        "open.toml",
        &format!("listen = \"192.0.2.1:8080\"\n{}", namespace("http://127.0.0.1:9")),
    );
    let (ok, stderr) = run(&["serve", "--config", &config.display().to_string()]).await;
    assert!(!ok);
    assert!(
        stderr.contains("listen = \"192.0.2.1:8080\" is not a loopback address")
            && stderr.contains("[tls] and [[callers]]")
            && stderr.contains("allow_open = true"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_config_names_the_field_of_a_bad_setting() {
    let dir = TempDir::new();
    let ca = Ca::new("check CA");
    let server = ca.server("facade.test");
    let chain = dir.write("chain.pem", &server.cert_pem);
    let key = dir.write("key.pem", &server.key_pem);
    let tls = |chain: &Path, key: &Path, client_ca: &Path| {
        format!(
            "[tls]\ncert_chain_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\nclient_auth = \"request\"\n",
            chain.display(),
            key.display(),
            client_ca.display()
        )
    };
    let good_ca = dir.write("ca.pem", &ca.pem());
    let rule = "[[callers]]\nname = \"gateway\"\nclient_cert_name = \"gateway.test\"\nnamespaces = \"*\"\nenvironments = \"*\"\n";
    let base = namespace("http://127.0.0.1:9");
    let (ok, stderr) = check_config(&dir, &format!("{base}{}{rule}", tls(&chain, &key, &good_ca))).await;
    assert!(ok, "{stderr}");

    let garbage = dir.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let missing = dir.0.join("missing.pem");
    let cases = [
        (tls(&chain, &missing, &good_ca) + rule, "tls.key_file: "),
        (tls(&chain, &garbage, &good_ca) + rule, "tls.key_file: "),
        (tls(&missing, &key, &good_ca) + rule, "tls.cert_chain_file: "),
        (tls(&chain, &key, &garbage) + rule, "tls.client_ca_file: "),
        (
            tls(&chain, &key, &good_ca) + "[[callers]]\nname = \"nobody\"\nnamespaces = \"*\"\nenvironments = \"*\"\n",
            "callers[0]: a rule needs one identity",
        ),
        (
            tls(&chain, &key, &good_ca)
                + &rule.replace(
                    "client_cert_name = \"gateway.test\"",
                    "bearer_secret_file = \"/nonexistent\"",
                ),
            "callers[0].bearer_secret_file: cannot read /nonexistent",
        ),
    ];
    for (tables, field) in cases {
        let (ok, stderr) = check_config(&dir, &format!("{base}{tables}")).await;
        assert!(!ok && stderr.contains(field), "expected {field:?}: {stderr}");
    }
}

/// A TLS client connection kept open, and the certificate the server showed.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    server_certificate: Vec<u8>,
}

async fn connect(port: u16, ca: &Ca) -> Connection {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), stream)
        .await
        .expect("TLS handshake");
    let server_certificate = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    Connection {
        sender,
        server_certificate,
    }
}

impl Connection {
    async fn list(&mut self) -> u16 {
        let request = http::Request::get("/images")
            .header("host", "127.0.0.1")
            .header("x-target-ns", NAMESPACE)
            .header("x-environment-id", ENV_A)
            .body(Empty::new())
            .unwrap();
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("answered on the open connection");
        let status = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        status
    }
}

/// Waits until the facade's log holds `line` `times` times.
async fn logged_times(log: &Path, line: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(log).unwrap_or_default().matches(line).count() < times {
        assert!(Instant::now() < deadline, "not logged {times} times: {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn logged(log: &Path, line: &str) {
    logged_times(log, line, 1).await;
}

fn install(dir: &TempDir, issued: &Issued) {
    dir.write("chain.pem", &issued.cert_pem);
    dir.write("key.pem", &issued.key_pem);
}

#[tokio::test]
async fn sighup_reloads_certificates_and_callers_and_keeps_open_connections() {
    let glance = glance::spawn(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        glance::Options::default(),
    )
    .await;
    let dir = TempDir::new();
    let ca = Ca::new("reload CA");
    let (first, second) = (ca.server("first.test"), ca.server("second.test"));
    install(&dir, &first);
    let (port, admin_port) = (free_port(), free_port());
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndrain_secs = 1\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{}[tls]\ncert_chain_file = \"{}\"\nkey_file = \"{}\"\n",
        namespace(&glance.url()),
        dir.0.join("chain.pem").display(),
        dir.0.join("key.pem").display(),
    );
    let config = dir.write("facade.toml", &text);
    let log = dir.0.join("facade.log");
    let mut facade = tokio::process::Command::new(BINARY)
        .args(["serve", "--config", &config.display().to_string()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    logged(&log, "serving the Alliance API").await;
    let pid = facade.id().unwrap().to_string();
    let hangup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
    };

    let mut open = connect(port, &ca).await;
    assert_eq!(open.server_certificate, first.der());
    assert_eq!(open.list().await, 200);

    install(&dir, &second);
    assert!(hangup().success());
    logged(&log, "TLS certificates reloaded").await;
    assert_eq!(
        connect(port, &ca).await.server_certificate,
        second.der(),
        "new handshakes"
    );
    assert_eq!(open.list().await, 200, "the open connection goes on");

    // A key that does not load: the previous certificate stays in use.
    dir.write("key.pem", "not a key");
    assert!(hangup().success());
    logged(&log, "configuration reload refused; the running configuration stays").await;
    logged(&log, "tls.key_file: ").await;
    let mut after = connect(port, &ca).await;
    assert_eq!(after.server_certificate, second.der());
    assert_eq!(after.list().await, 200);
    assert_eq!(open.list().await, 200);

    // Callers are reloaded too: a rule for another network, and the open
    // connection's next request is refused.
    install(&dir, &second);
    dir.write(
        "facade.toml",
        &format!(
            "{text}[[callers]]\nname = \"elsewhere\"\nsource_cidrs = [\"10.0.0.0/8\"]\nnamespaces = \"*\"\nenvironments = \"*\"\n"
        ),
    );
    assert!(hangup().success());
    logged_times(&log, "configuration reloaded", 2).await;
    assert_eq!(open.list().await, 401);
    assert!(facade.try_wait().unwrap().is_none(), "still serving");

    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::time::timeout(Duration::from_secs(10), facade.wait()).await;
    assert!(status.is_ok_and(|status| status.is_ok_and(|status| status.success())));
    glance.shutdown().await;
}
