//! The load tools: `oha` (the full run; bench/run.sh builds it once), or a
//! small built-in generator (the smoke run, which must not compile a load
//! tool). Both drive one URL (`http`, or `https` trusting a given CA) with
//! fixed headers, closed loop (as fast as possible, on kept-alive
//! connections or a new connection per request) or open loop (a fixed
//! rate, latency counted from when each request was due), and report the
//! same [`Load`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::process::Command;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::procs::Result;

/// What one load run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Answers received (any status).
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub success_rate: f64,
    /// Responses that were not 200, and failed requests.
    pub non_200: u64,
}

/// How the load drives the target.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// As fast as possible with this many connections (closed loop).
    Throughput { connections: u32 },
    /// As fast as possible with this many clients, each request on a new
    /// connection (closed loop): the cost of connecting, TLS handshakes included.
    NewConnections { connections: u32 },
    /// A fixed request rate (open loop; latency counted from when each
    /// request was due, so a stall is not hidden).
    Rate { rate: u32, connections: u32 },
}

pub enum LoadTool {
    Oha(PathBuf),
    Builtin,
}

impl LoadTool {
    pub fn name(&self) -> &'static str {
        match self {
            LoadTool::Oha(_) => "oha",
            LoadTool::Builtin => "the driver's built-in generator",
        }
    }

    /// `ca_file`: the CA an `https` URL's certificate is checked against.
    pub async fn run(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        mode: Mode,
        duration: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Load> {
        match self {
            LoadTool::Oha(bin) => oha(bin, url, headers, mode, duration, ca_file).await,
            LoadTool::Builtin => builtin(url, headers, mode, duration, ca_file).await,
        }
    }
}

async fn oha(
    bin: &PathBuf,
    url: &str,
    headers: &[(&str, &str)],
    mode: Mode,
    duration: Duration,
    ca_file: Option<&Path>,
) -> Result<Load> {
    let mut command = Command::new(bin);
    command
        .arg("--no-tui")
        .args(["--output-format", "json"])
        .arg("-z")
        .arg(format!("{}ms", duration.as_millis()));
    match mode {
        Mode::Throughput { connections } => {
            command.arg("-c").arg(connections.to_string());
        }
        Mode::NewConnections { connections } => {
            command
                .arg("-c")
                .arg(connections.to_string())
                .arg("--disable-keepalive");
        }
        Mode::Rate { rate, connections } => {
            command
                .arg("-c")
                .arg(connections.to_string())
                .arg("-q")
                .arg(rate.to_string())
                .arg("--latency-correction");
        }
    }
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(ca_file) = ca_file {
        command.arg("--cacert").arg(ca_file);
    }
    command.arg(url).stdin(Stdio::null()).kill_on_drop(true);
    let output = command
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !output.status.success() {
        return Err(format!(
            "oha failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("oha printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))?;
    let number = |value: &Value| value.as_f64().unwrap_or(f64::NAN);
    let percentiles = &report["latencyPercentiles"];
    let non_200 = count_except(&report["statusCodeDistribution"], "200");
    let requests = count_except(&report["statusCodeDistribution"], "");
    // Requests still in flight when the run ends are not errors.
    let errors = count_except(&report["errorDistribution"], "aborted due to deadline");
    Ok(Load {
        requests,
        rps: number(&report["summary"]["requestsPerSec"]),
        p50_ms: number(&percentiles["p50"]) * 1000.0,
        p99_ms: number(&percentiles["p99"]) * 1000.0,
        p999_ms: number(&percentiles["p99.9"]) * 1000.0,
        success_rate: number(&report["summary"]["successRate"]),
        non_200: non_200 + errors,
    })
}

/// The counts of an oha distribution (`{"key": count, ...}`) summed,
/// leaving out `skip`.
fn count_except(distribution: &Value, skip: &str) -> u64 {
    distribution.as_object().map_or(0, |counts| {
        counts
            .iter()
            .filter(|(key, _)| key.as_str() != skip)
            .map(|(_, count)| count.as_u64().unwrap_or(0))
            .sum()
    })
}

/// One connection's results: latencies of answered requests, statuses
/// other than 200 and failures.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    non_200: u64,
    failed: u64,
}

/// How the built-in generator connects: plain TCP, or TLS trusting a CA.
#[derive(Clone)]
struct Connector {
    authority: http::uri::Authority,
    tls: Option<TlsConnector>,
}

impl Connector {
    fn new(uri: &http::Uri, ca_file: Option<&Path>) -> Result<Self> {
        let authority = uri.authority().ok_or("the URL has no host")?.clone();
        let tls = match uri.scheme_str() {
            Some("https") => Some(tls_connector(ca_file.ok_or("an https URL needs a CA file")?, true)?),
            _ => None,
        };
        Ok(Connector { authority, tls })
    }

    async fn connect(&self) -> Option<http1::SendRequest<Empty<Bytes>>> {
        let host = self.authority.host();
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let stream = tokio::net::TcpStream::connect((host, self.authority.port_u16().unwrap_or(default_port)))
            .await
            .ok()?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => handshake(TokioIo::new(stream)).await,
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned()).ok()?;
                handshake(TokioIo::new(tls.connect(name, stream).await.ok()?)).await
            }
        }
    }
}

/// A TLS client trusting the CA of `ca_file`; with `resume`, it resumes
/// sessions as browsers and HTTP libraries do.
pub fn tls_connector(ca_file: &Path, resume: bool) -> Result<TlsConnector> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, client::Resumption};
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))? {
        roots
            .add(certificate.map_err(|e| format!("{}: {e}", ca_file.display()))?)
            .map_err(|e| e.to_string())?;
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn handshake<S>(io: TokioIo<S>) -> Option<http1::SendRequest<Empty<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// `GET url` until `duration` has passed.
async fn builtin(
    url: &str,
    headers: &[(&str, &str)],
    mode: Mode,
    duration: Duration,
    ca_file: Option<&Path>,
) -> Result<Load> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let connector = Connector::new(&uri, ca_file)?;
    let authority = connector.authority.clone();
    let fresh = matches!(mode, Mode::NewConnections { .. });
    let (connections, interval) = match mode {
        Mode::Throughput { connections } | Mode::NewConnections { connections } => (connections.max(1), None),
        Mode::Rate { rate, connections } => {
            let connections = connections.max(1);
            // Each connection sends its share of the rate, evenly spaced.
            (
                connections,
                Some(Duration::from_secs_f64(f64::from(connections) / f64::from(rate.max(1)))),
            )
        }
    };
    let mut request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let template = request.body(()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for index in 0..connections {
        let (connector, template) = (connector.clone(), template.clone());
        // Open-loop connections start staggered over one interval.
        let first_due = started + interval.map_or(Duration::ZERO, |interval| interval * index / connections);
        tasks.push(tokio::spawn(async move {
            connection(&connector, &template, first_due, interval, deadline, fresh).await
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.map_err(|e| e.to_string())?;
        all.latencies.extend(tally.latencies);
        all.non_200 += tally.non_200;
        all.failed += tally.failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let percentile = |fraction: f64| {
        let last = all.latencies.len().saturating_sub(1);
        all.latencies
            .get(((last as f64) * fraction).round() as usize)
            .map_or(f64::NAN, |latency| latency.as_secs_f64() * 1000.0)
    };
    let answered = all.latencies.len() as u64;
    let attempted = answered + all.failed;
    Ok(Load {
        requests: answered,
        rps: answered as f64 / elapsed,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        p999_ms: percentile(0.999),
        success_rate: if attempted == 0 {
            0.0
        } else {
            answered as f64 / attempted as f64
        },
        non_200: all.non_200 + all.failed,
    })
}

/// One keep-alive connection's requests (with `fresh`, a new connection
/// for each); a failed connection is opened again.
async fn connection(
    connector: &Connector,
    template: &http::Request<()>,
    mut due: Instant,
    interval: Option<Duration>,
    deadline: Instant,
    fresh: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut sender = None;
    while Instant::now() < deadline {
        // Open loop: wait for the request's turn, and count its latency
        // from then.
        let start = match interval {
            Some(interval) => {
                tokio::time::sleep_until(due.into()).await;
                let start = due;
                due += interval;
                start
            }
            None => Instant::now(),
        };
        if Instant::now() >= deadline {
            break;
        }
        if sender.is_none() {
            sender = connector.connect().await;
        }
        let Some(open) = sender.as_mut() else {
            tally.failed += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut request = http::Request::new(Empty::<Bytes>::new());
        *request.method_mut() = template.method().clone();
        *request.uri_mut() = template.uri().clone();
        *request.headers_mut() = template.headers().clone();
        let answered = async {
            let response = open.send_request(request).await.ok()?;
            let status = response.status();
            response.into_body().collect().await.ok()?;
            Some(status)
        };
        match answered.await {
            Some(status) => {
                tally.latencies.push(start.elapsed());
                if status != http::StatusCode::OK {
                    tally.non_200 += 1;
                }
                if fresh {
                    sender = None;
                }
            }
            None => {
                tally.failed += 1;
                sender = None;
            }
        }
    }
    tally
}
