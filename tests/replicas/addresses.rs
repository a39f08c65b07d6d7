//! The client's address behind HAProxy: `source_cidrs` rules and
//! per-address rates see the client (each test client connects from an
//! address of its own in 127.0.0.0/8), through a PROXY v2 header (also in
//! front of TLS passed through, with a client-certificate rule) and through
//! a trusted `X-Forwarded-For`; the same headers forged by anyone else
//! change nothing.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fleet::{Balancing, Haproxy, Replica, client_from, mock_glance, three};
use crate::support::memcached::Memcached;
use crate::support::pki::{Ca, self_signed_client};
use crate::support::{ENV_A, TempDir};

/// Clients at .2 and .4 are the rule's (one request a second, two at
/// once, each address its own bucket - shared by the replicas); .3 is no one.
const RULE: &str = r#"
[[callers]]
name = "lan"
source_cidrs = ["127.0.0.2/32", "127.0.0.4/32"]
namespaces = "*"
environments = "*"
rate = { rate_per_sec = 1, burst = 2 }
"#;

async fn status(client: &reqwest::Client, url: &str, forwarded_for: Option<&str>) -> u16 {
    let mut request = client
        .get(format!("{url}/images"))
        .header("X-Target-Ns", "ccsr1")
        .header("X-Environment-Id", ENV_A);
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    request.send().await.expect("an answer").status().as_u16()
}

/// Three replicas behind HAProxy as `balancing` says, with `client` (the
/// `[client]` table's lines), the rule and `tables`, sharing a memcached.
async fn fleet(
    dir: &TempDir,
    memcached: &Memcached,
    balancing: Balancing,
    client: &str,
    tables: &str,
) -> (Vec<Replica>, Haproxy, openstack_mock::glance::Handle) {
    let (glance, namespace) = mock_glance("").await;
    let tables = format!(
        "[client]\n{client}\n{namespace}\n{RULE}\n{tables}\n{}",
        memcached.table("")
    );
    let (replicas, haproxy) = three(dir, "r", &tables, balancing).await;
    (replicas, haproxy, glance)
}

/// Rules and rates see the client through `url`, whichever replica answers.
async fn rules_and_rates_see_the_client(url: &str) {
    let (two, three, four) = (
        client_from("127.0.0.2"),
        client_from("127.0.0.3"),
        client_from("127.0.0.4"),
    );
    assert_eq!(status(&two, url, None).await, 200);
    assert_eq!(status(&two, url, None).await, 200);
    assert_eq!(
        status(&two, url, None).await,
        429,
        "127.0.0.2's own bucket, across the replicas"
    );
    assert_eq!(status(&four, url, None).await, 200, "another address, another bucket");
    assert_eq!(status(&three, url, None).await, 401, "no rule recognises 127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_proxy_header() {
    let dir = TempDir::new();
    let memcached = Memcached::start();
    let client = "trusted_proxies = [\"127.0.0.1/32\"]\nproxy_protocol = true";
    let (replicas, haproxy, _glance) = fleet(&dir, &memcached, Balancing::HttpProxyProtocol, client, "").await;
    rules_and_rates_see_the_client(&haproxy.url()).await;

    // Straight to a replica from an untrusted address, with a PROXY header
    // naming a client of the rule: the header is no header - a bad request.
    let forged = forged_connection(
        "127.0.0.3",
        replicas[0].port,
        b"PROXY TCP4 127.0.0.2 127.0.0.1 4000 80\r\n",
    )
    .await;
    assert!(forged.starts_with("HTTP/1.1 400"), "{forged}");
    // From the trusted proxy's address, but without the header it owes: closed.
    let missing = forged_connection("127.0.0.1", replicas[0].port, b"").await;
    assert_eq!(missing, "", "no answer without the PROXY header");
}

/// Connects from `source` to `port`, writes `prefix` and a request, and
/// returns what came back (empty when the connection was closed unanswered).
async fn forged_connection(source: &str, port: u16, prefix: &[u8]) -> String {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("address"))
        .expect("bind");
    let mut stream = socket
        .connect(format!("127.0.0.1:{port}").parse().expect("address"))
        .await
        .expect("connect");
    let mut request = prefix.to_vec();
    request.extend_from_slice(
        format!(
            "GET /images HTTP/1.1\r\nHost: r\r\nX-Target-Ns: ccsr1\r\nX-Environment-Id: {ENV_A}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_x_forwarded_for() {
    let dir = TempDir::new();
    let memcached = Memcached::start();
    let client = "trusted_proxies = [\"127.0.0.1/32\"]\nx_forwarded_for = true";
    let (replicas, haproxy, _glance) = fleet(&dir, &memcached, Balancing::Http, client, "").await;
    let url = haproxy.url();
    rules_and_rates_see_the_client(&url).await;
    // A client naming another in X-Forwarded-For: HAProxy appends the
    // address it saw, and that is the one taken.
    let three = client_from("127.0.0.3");
    assert_eq!(status(&three, &url, Some("127.0.0.4")).await, 401);
    // Straight to a replica from an untrusted address: the header is ignored.
    assert_eq!(status(&three, &replicas[0].url(), Some("127.0.0.4")).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_tls_passed_through_with_a_client_certificate() {
    let dir = TempDir::new();
    let memcached = Memcached::start();
    let ca = Ca::new("replicas CA");
    let server = ca.server("facade.test");
    let tls = format!(
        "[tls]\ncert_chain_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\nclient_auth = \"request\"\n\n[[callers]]\nname = \"gateway\"\nclient_cert_name = \"gw.example\"\nnamespaces = \"*\"\nenvironments = \"*\"\n",
        dir.write("chain.pem", &server.cert_pem).display(),
        dir.write("key.pem", &server.key_pem).display(),
        dir.write("ca.pem", &ca.pem()).display(),
    );
    let client = "trusted_proxies = [\"127.0.0.1/32\"]\nproxy_protocol = true";
    let (_replicas, haproxy, _glance) = fleet(&dir, &memcached, Balancing::TcpProxyProtocol, client, &tls).await;
    let https = |source: &str, certificate| {
        ca.client_builder(certificate)
            .local_address(source.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let url = format!("https://localhost:{}", haproxy.port);
    let gateway = ca.client("gw.example", &[]);
    assert_eq!(status(&https("127.0.0.3", Some(&gateway)), &url, None).await, 200);
    // The address rule, through the same passed-through TLS.
    assert_eq!(status(&https("127.0.0.2", None), &url, None).await, 200);
    assert_eq!(status(&https("127.0.0.3", None), &url, None).await, 401);
    let stranger = self_signed_client("gw.example");
    assert_eq!(status(&https("127.0.0.3", Some(&stranger)), &url, None).await, 401);
}

#[test]
fn the_contrib_haproxy_configuration_is_valid() {
    let dir = TempDir::new();
    let ca = Ca::new("contrib check");
    let server = ca.server("alliance.example");
    let pem = dir.write("alliance.pem", &format!("{}{}", server.cert_pem, server.key_pem));
    let config =
        include_str!("../../contrib/haproxy.cfg").replace("/etc/haproxy/alliance.pem", &pem.display().to_string());
    let path = dir.write("haproxy.cfg", &config);
    let output = std::process::Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("haproxy");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
