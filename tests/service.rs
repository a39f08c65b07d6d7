//! The binary run as a service: `--version`, the admin listener, SIGHUP
//! reloads (under load, and of a broken file), and SIGTERM turning
//! readiness false before in-flight requests drain.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openstack_mock::glance::{self, Fault, FaultAction};

#[path = "support/mod.rs"]
mod support;
use support::{eventually, free_port};

const ENV: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";

/// `alliance-glance serve` on fresh ports, its log in a file; killed when dropped.
struct Service {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    port: u16,
    admin_port: u16,
    client: reqwest::Client,
}

impl Service {
    async fn start(glance_url: &str, extra_namespaces: &[&str]) -> Service {
        Self::start_with(glance_url, extra_namespaces, "").await
    }

    /// `tables`: more TOML after the configuration's own.
    async fn start_with(glance_url: &str, extra_namespaces: &[&str], tables: &str) -> Service {
        let dir = std::env::temp_dir().join(format!("alliance-service-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (config, port, admin_port) = (dir.join("alliance-glance.toml"), free_port(), free_port());
        let text = config_text(port, admin_port, glance_url, extra_namespaces) + tables;
        std::fs::write(&config, text).expect("config");
        let log = std::fs::File::create(dir.join("log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_alliance-glance"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("facade starts");
        let service = Service {
            child,
            dir,
            config,
            port,
            admin_port,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        };
        for _ in 0..200 {
            if service.admin("/healthz").await.is_some_and(|(status, _)| status == 200) {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the facade did not start: {}", service.log());
    }

    fn write_config(&self, glance_url: &str, extra_namespaces: &[&str]) {
        let text = config_text(self.port, self.admin_port, glance_url, extra_namespaces);
        std::fs::write(&self.config, text).expect("config written");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    async fn admin(&self, path: &str) -> Option<(u16, String)> {
        let response = self
            .client
            .get(format!("http://127.0.0.1:{}{path}", self.admin_port))
            .send()
            .await
            .ok()?;
        Some((response.status().as_u16(), response.text().await.ok()?))
    }

    async fn list(&self, namespace: &str) -> u16 {
        self.client
            .get(format!("http://127.0.0.1:{}/images", self.port))
            .header("X-Target-Ns", namespace)
            .header("X-Environment-Id", ENV)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    }

    /// The value of the sample written exactly as `series` in `/metrics`.
    async fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.admin("/metrics").await?;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

/// Namespace `ccsr1`, and copies of it under `extra_namespaces`.
fn config_text(port: u16, admin_port: u16, glance_url: &str, extra_namespaces: &[&str]) -> String {
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\nshutdown_grace_secs = 5\ndrain_secs = 2\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nreadiness_cache_ms = 0\n"
    );
    for name in std::iter::once(&"ccsr1").chain(extra_namespaces) {
        text.push_str(&format!(
            "[namespaces.{name}]\nglance_url = \"{glance_url}\"\nauth = {{ type = \"trusted\", user_id = \"alliance-test\" }}\n"
        ));
    }
    text
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn mock_glance() -> glance::Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    glance::spawn(
        listener,
        glance::Options {
            prefix: "/image".into(),
            ..glance::Options::default()
        },
    )
    .await
}

/// A SIGHUP that arrives while `serve` is still starting - here: blocked
/// reading its configuration from a FIFO - is kept and handled as a reload
/// once serving, never the default action that ends the process (what
/// `systemctl reload` right after a start would otherwise do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_while_starting_is_a_reload_not_the_end() {
    /// Kills the process when the test ends, however it ends.
    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let glance = mock_glance().await;
    let dir = std::env::temp_dir().join(format!("alliance-service-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("config.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs")
            .success()
    );
    let (port, admin_port) = (free_port(), free_port());
    let log_file = std::fs::File::create(dir.join("log")).expect("log file");
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_alliance-glance"))
            .args(["serve", "--config"])
            .arg(&fifo)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("facade starts"),
    );
    // `serve` now waits for a writer of its configuration.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kill = Command::new("kill").arg("-HUP").arg(child.0.id().to_string()).status();
    assert!(kill.expect("kill runs").success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exited = child.0.try_wait().expect("status readable");
    assert_eq!(exited, None, "a SIGHUP during start-up ended the process");
    // The configuration is read twice: at start, and for the kept SIGHUP
    // (the reload runs on the admin listener's thread, which waits for it).
    let text = config_text(port, admin_port, &glance.url(), &[]);
    let write = |text: String| {
        let fifo = fifo.clone();
        tokio::task::spawn_blocking(move || std::fs::write(fifo, text))
    };
    write(text.clone())
        .await
        .expect("writer")
        .expect("config written to the FIFO");
    let log = || std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    // The workers serve (the first read is over) before the second write.
    eventually("the facade serves after a SIGHUP during start-up", || {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{port}/images"))
                .header("X-Target-Ns", "ccsr1")
                .header("X-Environment-Id", ENV)
                .send()
                .await
                .is_ok_and(|response| response.status() == 200)
        }
    })
    .await;
    write(text).await.expect("writer").expect("config written to the FIFO");
    eventually("the SIGHUP handled as a reload", || async {
        log().contains("configuration reloaded")
    })
    .await;
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    glance.shutdown().await;
}

#[test]
fn version_names_the_commit() {
    let output = Command::new(env!("CARGO_BIN_EXE_alliance-glance"))
        .arg("--version")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let head = String::from_utf8(head.stdout).expect("UTF-8");
    assert_eq!(
        text.trim(),
        format!("alliance-glance {} (commit {})", env!("CARGO_PKG_VERSION"), head.trim())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_a_namespace_under_load_and_refuses_a_broken_file() {
    let glance = mock_glance().await;
    let service = Arc::new(Service::start(&glance.url(), &[]).await);
    assert_eq!(service.list("ccsr9").await, 400, "not configured yet");

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let service = Arc::clone(&service);
        let stop = Arc::clone(&stop);
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                statuses.push(service.list("ccsr1").await);
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    service.write_config(&glance.url(), &["ccsr9"]);
    service.signal("HUP");
    eventually("ccsr9 to be served", || async { service.list("ccsr9").await == 200 }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for task in load {
        let statuses = task.await.expect("load task");
        assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
        answered += statuses.len();
    }
    assert!(answered > 0);
    assert_eq!(
        service
            .metric("alliance_glance_config_reloads_total{outcome=\"applied\"}")
            .await,
        Some(1.0)
    );

    std::fs::write(&service.config, "listen = [this is not TOML").expect("broken config");
    service.signal("HUP");
    eventually("the refused reload to be counted", || async {
        service
            .metric("alliance_glance_config_reloads_total{outcome=\"refused\"}")
            .await
            == Some(1.0)
    })
    .await;
    assert_eq!(service.list("ccsr9").await, 200, "the running configuration stays");
    let log = service.log();
    let refusal = log
        .lines()
        .find(|line| line.contains("configuration reload refused"))
        .unwrap_or_else(|| panic!("no refusal in the log:\n{log}"));
    assert!(
        refusal.contains(&service.config.display().to_string()) && refusal.contains("TOML"),
        "the line names the file and the error: {refusal}"
    );
    glance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_false_while_requests_drain() {
    let glance = mock_glance().await;
    let mut service = Service::start(&glance.url(), &[]).await;
    let (status, _) = service.admin("/readyz").await.expect("admin answers");
    assert_eq!(status, 200);

    glance.inject(Fault {
        method: None,
        path_suffix: Some("/v2/images".into()),
        action: FaultAction::Delay(Duration::from_millis(1500)),
    });
    let client = service.client.clone();
    let url = format!("http://127.0.0.1:{}/images", service.port);
    let in_flight = tokio::spawn(async move {
        client
            .get(url)
            .header("X-Target-Ns", "ccsr1")
            .header("X-Environment-Id", ENV)
            .send()
            .await
            .map(|response| response.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.signal("TERM");
    let mut drained_ready = None;
    for _ in 0..40 {
        if let Some((503, body)) = service.admin("/readyz").await {
            drained_ready = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = drained_ready.expect("readiness turned false while the request was in flight");
    assert_eq!(body, r#"{"ready":false,"shutting_down":true}"#);
    assert!(!in_flight.is_finished(), "readiness turned false first");
    let signalled = std::time::Instant::now();
    assert_eq!(in_flight.await.expect("task").expect("answered"), 200);
    // The drain: new requests are still served, each closing its
    // connection, so that balancers and clients leave on their own.
    let during = service
        .client
        .get(format!("http://127.0.0.1:{}/images", service.port))
        .header("X-Target-Ns", "ccsr1")
        .header("X-Environment-Id", ENV)
        .send()
        .await
        .expect("served during the drain");
    assert_eq!(during.status(), 200);
    assert_eq!(during.headers()["connection"], "close");
    let status = service.child.wait().expect("exits");
    assert!(status.success(), "{}", service.log());
    assert!(
        signalled.elapsed() >= Duration::from_millis(1_500),
        "served for the drain's 2 s before stopping"
    );
    // Then it accepts no more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", service.port)).is_err());
    glance.shutdown().await;
}

/// logrotate's way - the audit file renamed, then SIGHUP - loses nothing:
/// the events before are in the old file, those after in the new one; and
/// SIGTERM writes every queued event before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_audit_file_and_sigterm_writes_what_is_queued() {
    let glance = mock_glance().await;
    let trail = support::TempDir::new();
    let file = trail.0.join("audit.jsonl");
    let rotated = trail.0.join("audit.jsonl.1");
    let mut service =
        Service::start_with(&glance.url(), &[], &format!("[audit]\nfile = \"{}\"\n", file.display())).await;
    let create = || {
        service
            .client
            .post(format!("http://127.0.0.1:{}/images", service.port))
            .header("X-Target-Ns", "ccsr1")
            .header("X-Environment-Id", ENV)
            .header("Content-Type", "application/json")
            .body(r#"{"image": {"name": "rotated"}}"#)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(create().await.expect("answered").status(), 201);
    }
    assert_eq!(support::trail::events(&file, 3).await.len(), 3);
    std::fs::rename(&file, &rotated).expect("rotated");
    service.signal("HUP");
    eventually("the reload", || async {
        service.log().contains("configuration reloaded")
    })
    .await;
    for _ in 0..20 {
        assert_eq!(create().await.expect("answered").status(), 201);
    }
    service.signal("TERM");
    let status = service.child.wait().expect("exits");
    assert!(status.success(), "{}", service.log());
    assert_eq!(support::trail::trail_lines(&rotated).len(), 3);
    assert_eq!(support::trail::trail_lines(&file).len(), 20, "{}", service.log());
    glance.shutdown().await;
}
