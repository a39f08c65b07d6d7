//! The pieces of a deployment with several replicas, on loopback: the
//! facade's binary run as separate processes, Debian's HAProxy in front of
//! them (health checks on `/readyz`, retrying nothing), and a load of
//! keep-alive clients that count every answer and every failure.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use openstack_mock::glance;

use crate::support::{ENV_A, TempDir, free_port};

/// One replica: `alliance-glance serve` with a configuration of its own.
pub struct Replica {
    pub port: u16,
    pub admin: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// `tables`: the configuration after `listen` and `[admin]` (namespaces,
    /// `[client]`, `[shared_cache]`, ...).
    pub fn start(dir: &TempDir, name: &str, tables: &str) -> Self {
        let (port, admin) = (free_port(), free_port());
        let config = dir.write(
            &format!("{name}.toml"),
            &format!("listen = \"127.0.0.1:{port}\"\n{tables}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\nreadiness_cache_ms = 100\n"),
        );
        let mut replica = Replica {
            port,
            admin,
            config,
            log: dir.0.join(format!("{name}.log")),
            child: None,
        };
        replica.resume();
        replica
    }

    /// Starts the process again (same ports, same configuration); it serves
    /// once [`wait_readyz`] returns (`/readyz` answers only after the main
    /// sockets listen).
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("replica log");
        let child = Command::new(env!("CARGO_BIN_EXE_alliance-glance"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the facade's binary");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        }
    }

    /// SIGTERM, and the wait for the process to end (its drain and grace).
    pub async fn stop(&mut self) {
        self.signal("TERM");
        if let Some(mut child) = self.child.take() {
            tokio::task::spawn_blocking(move || child.wait())
                .await
                .expect("wait")
                .expect("replica ends");
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// HAProxy in front of replicas, as `contrib/haproxy.cfg` sets it up.
pub struct Haproxy {
    pub port: u16,
    child: Child,
}

/// How HAProxy reaches the replicas.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Balancing {
    /// `mode http`, the client's address in `X-Forwarded-For`.
    Http,
    /// `mode http`, the client's address in a PROXY v2 header.
    HttpProxyProtocol,
    /// `mode tcp` (TLS passed through), the client's address in a PROXY v2 header.
    TcpProxyProtocol,
}

impl Haproxy {
    pub fn start(dir: &TempDir, replicas: &[&Replica], balancing: Balancing) -> Self {
        let port = free_port();
        let mode = if balancing == Balancing::TcpProxyProtocol {
            "tcp"
        } else {
            "http"
        };
        let proxy = if balancing == Balancing::Http {
            ""
        } else {
            " send-proxy-v2"
        };
        let forwarding = if balancing == Balancing::Http {
            "    option forwardfor\n"
        } else {
            ""
        };
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(index, replica)| {
                format!(
                    "    server r{index} 127.0.0.1:{}{proxy} check port {} inter 200ms fall 2 rise 2\n",
                    replica.port, replica.admin
                )
            })
            .collect();
        let config = dir.write(
            "haproxy.cfg",
            &format!(
                "global\n    maxconn 4096\n\ndefaults\n    mode {mode}\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    retries 0\n\nfrontend alliance\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\nbackend replicas\n    balance roundrobin\n{forwarding}    option httpchk GET /readyz\n    http-check expect status 200\n{servers}"
            ),
        );
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (Debian's haproxy package; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mock Glance in trusted mode, and the namespace table of a facade in
/// front of it (`extra` added to it).
pub async fn mock_glance(extra: &str) -> (glance::Handle, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let glance = glance::spawn(
        listener,
        glance::Options {
            prefix: "/image".into(),
            ..glance::Options::default()
        },
    )
    .await;
    let table = format!(
        "[namespaces.ccsr1]\nglance_url = \"{}\"\nauth = {{ type = \"trusted\", user_id = \"replicas\" }}\n{extra}\n",
        glance.url()
    );
    (glance, table)
}

/// Three replicas of `tables` (named `{name}0`...), ready, behind HAProxy.
pub async fn three(dir: &TempDir, name: &str, tables: &str, balancing: Balancing) -> (Vec<Replica>, Haproxy) {
    let replicas: Vec<Replica> = (0..3)
        .map(|index| Replica::start(dir, &format!("{name}{index}"), tables))
        .collect();
    // HAProxy starts after them and takes its servers as up from the
    // start: no wait for its checks.
    for replica in &replicas {
        wait_readyz(replica).await;
    }
    let haproxy = Haproxy::start(dir, &replicas.iter().collect::<Vec<_>>(), balancing);
    (replicas, haproxy)
}

/// Whether a replica's `/readyz` says ready.
pub async fn ready(replica: &Replica) -> bool {
    reqwest::get(format!("http://127.0.0.1:{}/readyz", replica.admin))
        .await
        .is_ok_and(|answer| answer.status() == 200)
}

/// Waits until the replica's `/readyz` says ready.
pub async fn wait_readyz(replica: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(replica).await {
        assert!(Instant::now() < deadline, "replica not ready: {}", replica.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a running HAProxy would see the (re)started replica ready:
/// `/readyz` says so, then time for two of its checks 200 ms apart.
pub async fn wait_seen_by_haproxy(replica: &Replica) {
    wait_readyz(replica).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
}

/// What a load saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: AtomicU64,
    /// Answers with another status, by kind.
    pub refused: AtomicU64,
    pub unavailable: AtomicU64,
    pub other_status: AtomicU64,
    /// Read errors: the connection failed under a request.
    pub failed: AtomicU64,
    pub first_failure: std::sync::Mutex<Option<String>>,
}

impl Tally {
    pub fn count(&self, field: &AtomicU64) -> u64 {
        field.load(Ordering::Relaxed)
    }

    fn failure(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_failure.lock().unwrap().get_or_insert(what);
    }

    /// Every count and the first failure, for assertion messages.
    pub fn summary(&self) -> String {
        format!(
            "ok {} refused {} unavailable {} other {} failed {} (first: {:?})",
            self.count(&self.ok),
            self.count(&self.refused),
            self.count(&self.unavailable),
            self.count(&self.other_status),
            self.count(&self.failed),
            self.first_failure.lock().unwrap()
        )
    }
}

/// `connections` keep-alive clients sending `GET path` (as [`ENV_A`] in
/// namespace `namespace`) to `port`, one request after another, until
/// `stop` is set; each answer counted. A connection that fails is counted
/// and replaced (a client would retry on a new one).
pub fn load(
    port: u16,
    connections: usize,
    namespace: &'static str,
    path: &'static str,
    stop: Arc<AtomicBool>,
) -> (Arc<Tally>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Tally::default());
    let workers = (0..connections)
        .map(|_| {
            let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one_connection(port, namespace, path, &tally, &stop).await;
                }
            })
        })
        .collect();
    (tally, workers)
}

/// One client connection of [`load`]: its requests one after another
/// until `stop` is set or the connection ends (counted when it fails).
async fn one_connection(port: u16, namespace: &str, path: &str, tally: &Tally, stop: &AtomicBool) {
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        tally.failure("connect".into());
        tokio::time::sleep(Duration::from_millis(10)).await;
        return;
    };
    let Ok((mut sender, connection)) = http1::handshake(TokioIo::new(stream)).await else {
        tally.failure("handshake".into());
        return;
    };
    tokio::spawn(connection);
    while !stop.load(Ordering::Relaxed) {
        if sender.ready().await.is_err() {
            // Closed by the other side between requests: a new connection.
            break;
        }
        let request = http::Request::get(path)
            .header("host", "alliance")
            .header("x-target-ns", namespace)
            .header("x-environment-id", ENV_A)
            .body(Empty::<Bytes>::new())
            .expect("request");
        match sender.send_request(request).await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let closing = answer.headers().get("connection").is_some_and(|value| value == "close");
                if answer.into_body().collect().await.is_err() {
                    tally.failure("body".into());
                    break;
                }
                let field = match status {
                    200 => &tally.ok,
                    429 => &tally.refused,
                    503 => &tally.unavailable,
                    _ => &tally.other_status,
                };
                field.fetch_add(1, Ordering::Relaxed);
                if status != 200 && status != 429 && status != 503 {
                    tally
                        .first_failure
                        .lock()
                        .unwrap()
                        .get_or_insert(format!("status {status}"));
                }
                if closing {
                    break;
                }
            }
            Err(error) => {
                tally.failure(error.to_string());
                break;
            }
        }
    }
}

/// A reqwest client whose connections come from `source` (a loopback
/// address of its own: Linux routes all of 127.0.0.0/8 to loopback).
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}
