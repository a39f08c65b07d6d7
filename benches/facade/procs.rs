//! Processes the driver starts and measures: the facade's binary and nginx
//! (as a plain `proxy_pass`). Each is stopped by its own pid when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub type Result<T> = std::result::Result<T, String>;

/// A port that was free a moment ago (bound, then released).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until something accepts connections on `port`.
async fn wait_listening(port: u16, child: &mut Child, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before listening: {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} is not listening on port {port} after 15 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `signal` (a name such as `TERM`) to one process id.
fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops a child by its pid: `signal`, then SIGKILL after 5 s.
async fn stop(child: &mut Child, how: &str) {
    let Some(pid) = child.id() else { return };
    signal(pid, how);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// `VmRSS` and `VmHWM` (peak RSS) of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    })
}

/// The children of `parent` (nginx's workers), from `/proc/*/stat`.
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // ppid is the second field after the command name.
                let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                rest.split_whitespace().nth(1) == Some(parent.to_string().as_str())
            })
        })
        .collect()
}

/// CPU time a process (or several) has used, user and system apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
}

impl Cpu {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// What was used between `earlier` and `self`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

impl std::ops::Add for Cpu {
    type Output = Cpu;
    fn add(self, other: Cpu) -> Cpu {
        Cpu {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }
}

/// CPU time a process has used so far, all threads.
pub fn cpu_time(pid: u32) -> Result<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // here; Linux's USER_HZ is 100 on every architecture the harness runs on.
    let ticks =
        |index: usize| Duration::from_millis(fields.get(index).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 10);
    Ok(Cpu {
        user: ticks(11),
        system: ticks(12),
    })
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The facade's release binary, serving a configuration written for it.
pub struct Facade {
    child: Child,
    pub pid: u32,
    pub port: u16,
    /// The admin listener's port (`/metrics`).
    pub admin_port: u16,
    pub log: PathBuf,
}

/// How a facade is run, beyond its namespaces.
#[derive(Debug, Clone, Copy)]
pub struct FacadeSettings {
    /// `RUST_LOG` (the log level); INFO when `None`.
    pub rust_log: Option<&'static str>,
    /// `admin.metrics`.
    pub metrics: bool,
}

impl Default for FacadeSettings {
    fn default() -> Self {
        FacadeSettings {
            rust_log: None,
            metrics: true,
        }
    }
}

impl Facade {
    /// Starts `bin serve` with `namespaces` (TOML tables) under a fresh
    /// listen port; its log (INFO, text, one line per request) goes to a
    /// file beside the config.
    pub async fn start(bin: &Path, dir: &Path, name: &str, namespaces: &str) -> Result<Facade> {
        Self::start_with(bin, dir, name, namespaces, FacadeSettings::default()).await
    }

    /// Like [`Facade::start`], run as `settings` say.
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        name: &str,
        namespaces: &str,
        settings: FacadeSettings,
    ) -> Result<Facade> {
        let port = free_port()?;
        let admin_port = free_port()?;
        let config = dir.join(format!("{name}.toml"));
        let log = dir.join(format!("{name}.log"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nshutdown_grace_secs = 1\n# No drain: a stop is no measure here.\ndrain_secs = 0\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nmetrics = {}\n{namespaces}\n",
                settings.metrics
            ),
        )
        .map_err(|e| format!("{}: {e}", config.display()))?;
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(bin);
        command.arg("serve").arg("--config").arg(&config).env_remove("RUST_LOG");
        if let Some(level) = settings.rust_log {
            command.env("RUST_LOG", level);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id().ok_or("facade exited at once")?;
        if let Err(error) = wait_listening(port, &mut child, "the facade").await {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{error}\n{log_text}"));
        }
        Ok(Facade {
            child,
            pid,
            port,
            admin_port,
            log,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn memory(&self) -> Result<Memory> {
        memory(self.pid)
    }

    pub fn cpu_time(&self) -> Result<Cpu> {
        cpu_time(self.pid)
    }

    pub async fn stop(mut self) {
        stop(&mut self.child, "TERM").await;
        let _ = std::fs::remove_file(&self.log);
    }
}

/// nginx as a plain reverse proxy with upstream keep-alive, from a config
/// in its own directory (pid, logs and temp paths there), in the
/// foreground, as `nobody` when the driver runs as root.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// The driver itself as `--serve-bare-proxy` (see bare.rs), in front of
/// `upstream`.
pub struct BareProxy {
    child: Child,
    pub port: u16,
}

impl BareProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Result<BareProxy> {
        let port = free_port()?;
        let driver = std::env::current_exe().map_err(|e| format!("the driver's own path: {e}"))?;
        let mut child = Command::new(driver)
            .arg("--serve-bare-proxy")
            .arg(port.to_string())
            .arg(upstream.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the bare proxy: {e}"))?;
        wait_listening(port, &mut child, "the bare proxy").await?;
        Ok(BareProxy { child, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// CPU time of the bare proxy so far.
    pub fn cpu_time(&self) -> Result<Cpu> {
        cpu_time(self.child.id().ok_or("the bare proxy has exited")?)
    }

    pub async fn stop(mut self) {
        stop(&mut self.child, "TERM").await;
    }
}

/// Idle upstream connections each nginx worker keeps (`keepalive N`).
pub const NGINX_KEEPALIVE: u32 = 256;

impl Nginx {
    pub async fn start(bin: &Path, dir: &Path, upstream: std::net::SocketAddr) -> Result<Nginx> {
        let port = free_port()?;
        let dir = dir.join("nginx");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let d = dir.display();
        let config = format!(
            r#"# A plain proxy: no translation, upstream keep-alive.
worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    upstream glance {{
        server {upstream};
        keepalive {NGINX_KEEPALIVE};
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://glance;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).map_err(|e| format!("{}: {e}", config_path.display()))?;
        let root = running_as_root();
        if root {
            // Workers and master run as nobody: they write only here.
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).map_err(|e| format!("chown: {e}"))?;
        }
        let mut command = if root {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(bin);
            command
        } else {
            Command::new(bin)
        };
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        if let Err(error) = wait_listening(port, &mut child, "nginx").await {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("{error}\n{log}"));
        }
        Ok(Nginx { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// CPU time of the master and its workers so far.
    pub fn cpu_time(&self) -> Result<Cpu> {
        let master = self.child.id().ok_or("nginx has exited")?;
        let mut total = cpu_time(master)?;
        for worker in children(master) {
            total = total + cpu_time(worker)?;
        }
        Ok(total)
    }

    /// Fast shutdown of master and workers (SIGTERM to the master).
    pub async fn stop(mut self) {
        stop(&mut self.child, "TERM").await;
        let _ = std::fs::remove_file(self.dir.join("access.log"));
    }
}
