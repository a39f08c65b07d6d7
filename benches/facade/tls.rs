//! Part 8: what TLS on the Alliance listener costs, in one run against the
//! same static upstream as part 1: `GET /images/{id}` over TLS against plain
//! HTTP on kept-alive connections (the facade's CPU per request, throughput
//! and latency) and with a new connection per request, and new connections
//! alone - full TLS 1.3 handshakes (no resumption) against plain TCP
//! connects - timed by the driver's own client and counted in the facade's
//! CPU time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::common::*;
use crate::cpu::{self, Measured};
use crate::load::{Load, Mode, tls_connector};
use crate::procs::Facade;
use crate::report::{ms, ratio, rps};
use crate::show::record_image;
use crate::upstream::StaticUpstream;

const PART: &str = "8 TLS";

/// Clients opening connections at once in the handshake runs.
const HANDSHAKE_CLIENTS: usize = 4;

/// A CA and the facade's certificate (ECDSA P-256, rcgen's default), as files.
struct Certificates {
    ca_file: PathBuf,
    chain_file: PathBuf,
    key_file: PathBuf,
}

impl Certificates {
    fn write(dir: &Path) -> Result<Self, String> {
        let fail = |error: rcgen::Error| error.to_string();
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca.distinguished_name.push(DnType::CommonName, "alliance bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(fail)?).map_err(fail)?;
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).map_err(fail)?;
        server
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let key = KeyPair::generate().map_err(fail)?;
        let certificate = server.signed_by(&key, &ca).map_err(fail)?;
        let certificates = Certificates {
            ca_file: dir.join("tls-ca.pem"),
            chain_file: dir.join("tls-chain.pem"),
            key_file: dir.join("tls-key.pem"),
        };
        for (path, contents) in [
            (&certificates.ca_file, ca.pem()),
            (&certificates.chain_file, certificate.pem()),
            (&certificates.key_file, key.serialize_pem()),
        ] {
            std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(certificates)
    }

    fn table(&self) -> String {
        format!(
            "[tls]\ncert_chain_file = \"{}\"\nkey_file = \"{}\"\n",
            self.chain_file.display(),
            self.key_file.display()
        )
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    let (recorded, id) = record_image(ctx, false).await?;
    let upstream = StaticUpstream::start(recorded).await.map_err(|e| e.to_string())?;
    let certificates = Certificates::write(&ctx.dir)?;
    let namespace = trusted_namespace(&upstream.url(), ctx.plan.page_size);
    let plain = ctx.facade("tls-plain", &namespace).await?;
    let secure = ctx
        .facade("tls", &format!("{namespace}{}", certificates.table()))
        .await?;
    let outcome = measure(ctx, &plain, &secure, &certificates, &id).await;
    plain.stop().await;
    secure.stop().await;
    outcome
}

async fn measure(
    ctx: &mut Ctx,
    plain: &Facade,
    secure: &Facade,
    certificates: &Certificates,
    id: &str,
) -> Result<(), String> {
    let path = format!("/images/{id}");
    let targets = || {
        [
            Target {
                name: "facade, plain HTTP".into(),
                url: format!("{}{path}", plain.url()),
                headers: alliance_headers(ENV),
                ca_file: None,
            },
            Target {
                name: "facade, TLS".into(),
                url: format!("https://127.0.0.1:{}{path}", secure.port),
                headers: alliance_headers(ENV),
                ca_file: Some(certificates.ca_file.clone()),
            },
        ]
    };
    let kept_alive = compare(ctx, &targets()).await?;
    let [plain_target, tls_target] = targets();
    let cpu = cpu::per_request(
        ctx,
        &[
            Measured {
                target: plain_target,
                cpu_time: Box::new(|| plain.cpu_time()),
            },
            Measured {
                target: tls_target,
                cpu_time: Box::new(|| secure.cpu_time()),
            },
        ],
    )
    .await?;
    let targets = targets();
    let fresh = new_connection_per_request(ctx, &targets).await?;
    let plain_connects = connections(ctx, plain, None).await?;
    let handshakes = connections(ctx, secure, Some(tls_connector(&certificates.ca_file, false)?)).await?;

    let plan = ctx.plan.clone();
    let report = &mut ctx.report;
    let ((plain_load, plain_rate), (tls_load, tls_rate)) = (kept_alive[0], kept_alive[1]);
    report
        .row(
            PART,
            "facade CPU per request, kept-alive connections: TLS / plain HTTP",
            format!("{} / {}", cpu[1].text(), cpu[0].text()),
        )
        .compared(format!(
            "{} of plain HTTP; {} connections",
            ratio(cpu[1].total / cpu[0].total),
            plan.connections
        ));
    report
        .row(
            PART,
            "throughput, plain HTTP, kept-alive connections",
            rps(plain_load.rps),
        )
        .compared(format!(
            "{} connections, {} x {:.1} s, median",
            plan.connections,
            plan.rounds,
            plan.load.as_secs_f64()
        ));
    report
        .row(PART, "throughput, TLS, kept-alive connections", rps(tls_load.rps))
        .compared(format!("{} of plain HTTP", ratio(tls_load.rps / plain_load.rps)));
    for (name, load) in [("plain HTTP", plain_rate), ("TLS", tls_rate)] {
        report
            .row(
                PART,
                format!("latency p50 / p99 / p99.9, {name}"),
                format!("{} / {} / {}", ms(load.p50_ms), ms(load.p99_ms), ms(load.p999_ms)),
            )
            .compared(format!("at {} req/s, {} connections", plan.rate, plan.rate_connections));
    }
    let (fresh_plain, fresh_tls) = (fresh[0], fresh[1]);
    report
        .row(
            PART,
            "throughput, plain HTTP, a new connection per request",
            rps(fresh_plain.rps),
        )
        .compared(format!("{} clients", plan.rate_connections));
    report
        .row(
            PART,
            "throughput, TLS, a new connection per request",
            rps(fresh_tls.rps),
        )
        .compared(format!("{} of plain HTTP", ratio(fresh_tls.rps / fresh_plain.rps)));
    report
        .row(
            PART,
            "new connections per second: full TLS 1.3 handshakes / plain TCP connects",
            format!("{:.0} / {:.0}", handshakes.per_second, plain_connects.per_second),
        )
        .compared(format!(
            "{HANDSHAKE_CLIENTS} clients connecting and closing, no request"
        ));
    report
        .row(
            PART,
            "facade CPU time per new connection: full TLS handshake / plain",
            format!(
                "{:.0} / {:.0} us",
                handshakes.facade_cpu_micros, plain_connects.facade_cpu_micros
            ),
        )
        .compared(format!(
            "a handshake costs the facade about {:.0} us of CPU",
            handshakes.facade_cpu_micros - plain_connects.facade_cpu_micros
        ));
    report
        .row(
            PART,
            "time to connect, p50 / p99: TLS handshake / plain TCP",
            format!(
                "{} / {} vs {} / {}",
                ms(handshakes.p50_ms),
                ms(handshakes.p99_ms),
                ms(plain_connects.p50_ms),
                ms(plain_connects.p99_ms)
            ),
        )
        .compared("the client's view, the certificate chain checked");
    let failures: u64 = kept_alive
        .iter()
        .map(|(a, b)| a.non_200 + b.non_200)
        .chain(fresh.iter().map(|load| load.non_200))
        .sum::<u64>()
        + handshakes.failed
        + plain_connects.failed;
    report
        .row(PART, "non-200 answers or errors during the runs", failures.to_string())
        .target("0", failures == 0);
    report.note(
        "Part 8: the facade's TLS is rustls (ring) with an ECDSA P-256 certificate; the handshakes are \
         TLS 1.3 with X25519, the client checking the chain and resuming no session (a client that \
         resumes pays less). Throughput on kept-alive connections shows the cost of encryption; a new \
         connection per request adds a handshake to every request.",
    );
    Ok(())
}

/// Throughput with a new connection for every request, both targets in
/// interleaved rounds (median).
async fn new_connection_per_request(ctx: &Ctx, targets: &[Target]) -> Result<Vec<Load>, String> {
    let mode = Mode::NewConnections {
        connections: ctx.plan.rate_connections,
    };
    let mut runs: Vec<Vec<Load>> = vec![Vec::new(); targets.len()];
    for round in 0..ctx.plan.rounds {
        for (index, target) in targets.iter().enumerate() {
            let headers: Vec<(&str, &str)> = target.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let load = ctx
                .load_tool
                .run(&target.url, &headers, mode, ctx.plan.load, target.ca_file.as_deref())
                .await?;
            eprintln!(
                "    round {} {:<28} {:>8.0} req/s, a new connection each",
                round + 1,
                target.name,
                load.rps
            );
            runs[index].push(load);
        }
    }
    Ok(runs.iter().map(|runs| median_load(runs)).collect())
}

/// What opening (and closing) connections cost.
struct Connections {
    per_second: f64,
    facade_cpu_micros: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
}

/// [`HANDSHAKE_CLIENTS`] clients connect to `facade` - with `tls`, through a
/// full handshake - and close, again and again for the plan's load time.
async fn connections(ctx: &Ctx, facade: &Facade, tls: Option<TlsConnector>) -> Result<Connections, String> {
    let port = facade.port;
    let cpu_before = facade.cpu_time()?;
    let started = Instant::now();
    let deadline = started + ctx.plan.load;
    let mut clients = Vec::new();
    for _ in 0..HANDSHAKE_CLIENTS {
        let tls = tls.clone();
        clients.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut failed = 0u64;
            while Instant::now() < deadline {
                match connect_once(port, tls.as_ref()).await {
                    Ok(time) => times.push(time),
                    Err(_) => failed += 1,
                }
            }
            (times, failed)
        }));
    }
    let mut times = Vec::new();
    let mut failed = 0;
    for client in clients {
        let (client_times, client_failed) = client.await.map_err(|e| e.to_string())?;
        times.extend(client_times);
        failed += client_failed;
    }
    let elapsed = started.elapsed();
    // The facade's last closes are counted too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = facade.cpu_time()?.since(cpu_before).total();
    times.sort_unstable();
    let count = times.len().max(1) as f64;
    let percentile = |fraction: f64| {
        let last = times.len().saturating_sub(1);
        times
            .get(((last as f64) * fraction).round() as usize)
            .map_or(f64::NAN, |time| time.as_secs_f64() * 1000.0)
    };
    Ok(Connections {
        per_second: times.len() as f64 / elapsed.as_secs_f64(),
        facade_cpu_micros: cpu.as_secs_f64() * 1e6 / count,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        failed,
    })
}

/// One connection, through the TLS handshake if `tls`, closed at once
/// (with a TLS close_notify); returns the time to connect (and handshake).
async fn connect_once(port: u16, tls: Option<&TlsConnector>) -> std::io::Result<Duration> {
    let start = Instant::now();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let Some(tls) = tls else {
        return Ok(start.elapsed());
    };
    let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    let mut stream = tls.connect(name, stream).await?;
    let time = start.elapsed();
    let _ = stream.shutdown().await;
    Ok(time)
}
