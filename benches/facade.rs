//! The benchmark driver behind `bench/run.sh` (`cargo bench --bench facade --
//! --facade BIN --oha BIN --nginx BIN [--smoke] [--out FILE]`).
//!
//! Upstreams run in this process (a static upstream serving a recorded Glance
//! 33 image body, the project's mock Glance and mock Keystone); the facade
//! runs as its own release binary, so that its memory can be read from
//! `/proc`; load comes from `oha` for every target alike. Every figure is
//! printed with the ratio it is judged by; nothing here asserts timings.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use alliance_glance::mock::{glance, keystone};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

const ENV: &str = keystone::ALPHA;
const IMAGE_ID: &str = "098f1c30-6ee2-4cf4-8a10-1376274f7d1f";

/// Transcript 065: Glance 33's answer to `GET /v2/images/{id}`.
const RECORDED_IMAGE: &str = r#"{"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare", "visibility": "shared", "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false, "min_ram": 512, "min_disk": 1, "owner": "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1", "os_hidden": false, "os_hash_algo": null, "os_hash_value": null, "id": "098f1c30-6ee2-4cf4-8a10-1376274f7d1f", "created_at": "2026-11-26T23:04:26Z", "updated_at": "2026-11-26T23:04:26Z", "tags": [], "self": "/v2/images/098f1c30-6ee2-4cf4-8a10-1376274f7d1f", "file": "/v2/images/098f1c30-6ee2-4cf4-8a10-1376274f7d1f/file", "schema": "/v2/schemas/image"}"#;

struct Plan {
    smoke: bool,
    seconds: u64,
    concurrency: u32,
    rate: u32,
    list_images: usize,
    first_requests: usize,
    open_connections: usize,
}

struct Tools {
    facade: PathBuf,
    oha: PathBuf,
    nginx: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut smoke, mut out) = (false, None);
    let (mut facade, mut oha, mut nginx) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--out" => out = args.next().map(PathBuf::from),
            "--facade" => facade = args.next().map(PathBuf::from),
            "--oha" => oha = args.next().map(PathBuf::from),
            "--nginx" => nginx = args.next().map(PathBuf::from),
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let tools = Tools {
        facade: facade.ok_or("--facade is required")?,
        oha: oha.ok_or("--oha is required")?,
        nginx: nginx.ok_or("--nginx is required")?,
    };
    let plan = if smoke {
        Plan {
            smoke,
            seconds: 1,
            concurrency: 16,
            rate: 200,
            list_images: 5_000,
            first_requests: 100,
            open_connections: 100,
        }
    } else {
        Plan {
            smoke,
            seconds: 10,
            concurrency: 64,
            rate: 2_000,
            list_images: 100_000,
            first_requests: 1_000,
            open_connections: 1_000,
        }
    };
    let mut report = Report::default();
    get_image(&plan, &tools, &mut report).await?;
    list(&plan, &tools, &mut report).await?;
    keystone_mode(&plan, &tools, &mut report).await?;
    failure_reporting(&plan, &tools, &mut report).await?;
    scoping(&plan, &tools, &mut report).await?;
    memory(&plan, &tools, &mut report).await?;
    let table = report.render(&plan);
    println!("{table}");
    if let Some(out) = out {
        std::fs::write(&out, &table).map_err(|error| format!("cannot write {}: {error}", out.display()))?;
    }
    Ok(())
}

/// Rows of the final table: (section, measure, value, judgement).
#[derive(Default)]
struct Report {
    rows: Vec<[String; 4]>,
}

impl Report {
    fn add(&mut self, section: &str, measure: &str, value: String, judgement: String) {
        println!("  {section} | {measure} | {value} | {judgement}");
        self.rows
            .push([section.to_owned(), measure.to_owned(), value, judgement]);
    }

    fn render(&self, plan: &Plan) -> String {
        let mut table = String::new();
        let _ = writeln!(
            table,
            "Mode: {} (load {} s per run, concurrency {}, fixed rate {} req/s)\n",
            if plan.smoke { "smoke" } else { "full" },
            plan.seconds,
            plan.concurrency,
            plan.rate
        );
        table.push_str("| Section | Measure | Value | Target / note |\n| --- | --- | --- | --- |\n");
        for [section, measure, value, judgement] in &self.rows {
            let _ = writeln!(table, "| {section} | {measure} | {value} | {judgement} |");
        }
        table
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

// ---------------------------------------------------------------- processes

/// A free loopback port (bound and released; the race is harmless here).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| format!("no free port: {error}"))
}

fn temp_dir(label: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("alliance-bench-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    Ok(dir)
}

async fn wait_for_port(addr: SocketAddr, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} never listened on {addr}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A child process stopped (SIGTERM, then wait) when dropped.
struct Process {
    child: Child,
    dir: PathBuf,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The facade's release binary with `namespaces` (TOML) as its configuration.
async fn start_facade(tools: &Tools, namespaces: &str) -> Result<(Process, SocketAddr), String> {
    let dir = temp_dir("facade")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let config = dir.join("alliance-glance.toml");
    std::fs::write(&config, format!("listen = \"{addr}\"\n{namespaces}"))
        .map_err(|error| format!("cannot write the facade config: {error}"))?;
    let log = std::fs::File::create(dir.join("facade.log")).map_err(|error| error.to_string())?;
    let child = Command::new(&tools.facade)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", tools.facade.display()))?;
    let process = Process { child, dir };
    wait_for_port(addr, "the facade").await?;
    Ok((process, addr))
}

/// nginx as a plain keep-alive `proxy_pass` to `upstream`, in its own prefix.
async fn start_nginx(tools: &Tools, upstream: SocketAddr) -> Result<(Process, SocketAddr), String> {
    let dir = temp_dir("nginx")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    let d = dir.display();
    let conf = format!(
        "{user}worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\ndaemon off;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         upstream glance {{ server {upstream}; keepalive 64; }}\n  \
         server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://glance;\n      \
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|error| error.to_string())?;
    let child = Command::new(&tools.nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", tools.nginx.display()))?;
    let process = Process { child, dir };
    wait_for_port(addr, "nginx").await?;
    Ok((process, addr))
}

/// A static upstream: every `GET` gets the recorded Glance image.
async fn start_static_upstream() -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| error.to_string())?;
    let addr = listener.local_addr().map_err(|error| error.to_string())?;
    let body = Bytes::from_static(RECORDED_IMAGE.as_bytes());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            let service = service_fn(move |_request: http::Request<hyper::body::Incoming>| {
                let mut response = http::Response::new(Full::new(body.clone()));
                let headers = response.headers_mut();
                headers.insert("content-type", http::HeaderValue::from_static("application/json"));
                headers.insert(
                    "x-openstack-request-id",
                    http::HeaderValue::from_static("req-c225bfb0-612e-4cef-a2cc-99b724c128f9"),
                );
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Ok(addr)
}

// ---------------------------------------------------------------- load

enum Load {
    /// As many requests as `concurrency` connections carry.
    Closed { concurrency: u32 },
    /// A fixed request rate, latency corrected for coordinated omission.
    Rate { rate: u32, concurrency: u32 },
}

struct LoadResult {
    rps: f64,
    success: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

async fn oha(
    tools: &Tools,
    plan: &Plan,
    url: &str,
    headers: &[(&str, &str)],
    load: Load,
) -> Result<LoadResult, String> {
    let mut command = tokio::process::Command::new(&tools.oha);
    command
        .arg(url)
        .args(["--no-tui", "--output-format", "json", "-z"])
        .arg(format!("{}s", plan.seconds));
    match load {
        Load::Closed { concurrency } => {
            command.arg("-c").arg(concurrency.to_string());
        }
        Load::Rate { rate, concurrency } => {
            command
                .arg("-q")
                .arg(rate.to_string())
                .arg("-c")
                .arg(concurrency.to_string())
                .arg("--latency-correction");
        }
    }
    for (name, value) in headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let output = command
        .output()
        .await
        .map_err(|error| format!("cannot run oha: {error}"))?;
    if !output.status.success() {
        return Err(format!("oha failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let json: Value = serde_json::from_slice(&output.stdout).map_err(|error| format!("oha output: {error}"))?;
    let seconds = |value: &Value| value.as_f64().unwrap_or(f64::NAN) * 1000.0;
    let result = LoadResult {
        rps: json["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        success: json["summary"]["successRate"].as_f64().unwrap_or(f64::NAN),
        p50_ms: seconds(&json["latencyPercentiles"]["p50"]),
        p99_ms: seconds(&json["latencyPercentiles"]["p99"]),
        p999_ms: seconds(&json["latencyPercentiles"]["p99.9"]),
    };
    let statuses = &json["statusCodeDistribution"];
    if statuses
        .as_object()
        .is_some_and(|codes| codes.keys().any(|code| code != "200"))
    {
        return Err(format!("{url} answered other than 200: {statuses}"));
    }
    Ok(result)
}

fn alliance_headers<'a>(namespace: &'a str, environment: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Target-Ns", namespace),
        ("X-Environment-Id", environment),
        ("Content-Type", "application/json"),
    ]
}

fn trusted_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-Identity-Status", "Confirmed"),
        ("X-Project-Id", ENV),
        ("X-Roles", "member,reader"),
        ("Accept", "application/json"),
    ]
}

// ---------------------------------------------------------------- sections

/// A load target: its name, URL and request headers.
type Target<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// 1. `GET /images/{id}`: facade vs direct vs nginx, same upstream, same tool.
async fn get_image(plan: &Plan, tools: &Tools, report: &mut Report) -> Result<(), String> {
    println!("== GET /images/{{id}}");
    let upstream = start_static_upstream().await?;
    let (_nginx, nginx) = start_nginx(tools, upstream).await?;
    let (_facade, facade) = start_facade(
        tools,
        &format!("[namespaces.bench]\nglance_url = \"http://{upstream}\"\nauth = {{ type = \"trusted\", user_id = \"bench\" }}\n"),
    )
    .await?;
    let direct_url = format!("http://{upstream}/v2/images/{IMAGE_ID}");
    let nginx_url = format!("http://{nginx}/v2/images/{IMAGE_ID}");
    let facade_url = format!("http://{facade}/images/{IMAGE_ID}");
    let trusted = trusted_headers();
    let alliance = alliance_headers("bench", ENV);
    let targets: [Target; 3] = [
        ("direct", &direct_url, &trusted),
        ("nginx", &nginx_url, &trusted),
        ("facade", &facade_url, &alliance),
    ];

    let mut throughput = Vec::new();
    for (name, url, headers) in targets {
        // Warm the pools and caches first.
        let warm = Plan { seconds: 1, ..*plan };
        oha(
            tools,
            &warm,
            url,
            headers,
            Load::Closed {
                concurrency: plan.concurrency,
            },
        )
        .await?;
        let result = oha(
            tools,
            plan,
            url,
            headers,
            Load::Closed {
                concurrency: plan.concurrency,
            },
        )
        .await?;
        report.add(
            "GET /images/{id}",
            &format!("throughput, {name}, {} connections", plan.concurrency),
            format!("{:.0} req/s", result.rps),
            format!("success {:.3}", result.success),
        );
        throughput.push(result.rps);
    }
    let ratio = throughput[2] / throughput[1];
    report.add(
        "GET /images/{id}",
        "facade / nginx throughput",
        format!("{ratio:.2}x"),
        format!(">= 1.0x: {}", verdict(ratio >= 1.0)),
    );
    report.add(
        "GET /images/{id}",
        "facade / direct throughput",
        format!("{:.2}x", throughput[2] / throughput[0]),
        "(upstream alone, for scale)".into(),
    );

    let mut p99 = Vec::new();
    for (name, url, headers) in targets {
        let result = oha(
            tools,
            plan,
            url,
            headers,
            Load::Rate {
                rate: plan.rate,
                concurrency: plan.concurrency,
            },
        )
        .await?;
        report.add(
            "GET /images/{id}",
            &format!("latency at {} req/s, {name}", plan.rate),
            format!(
                "p50 {:.3} / p99 {:.3} / p99.9 {:.3} ms",
                result.p50_ms, result.p99_ms, result.p999_ms
            ),
            format!("{:.0} req/s served", result.rps),
        );
        p99.push(result.p99_ms);
    }
    let added = p99[2] - p99[0];
    report.add(
        "GET /images/{id}",
        "facade p99 - direct p99",
        format!("{added:.3} ms"),
        format!("<= 0.5 ms: {}", verdict(added <= 0.5)),
    );
    report.add(
        "GET /images/{id}",
        "nginx p99 - direct p99",
        format!("{:.3} ms", p99[1] - p99[0]),
        "(the plain proxy, for scale)".into(),
    );
    Ok(())
}

/// Follows Glance's pages directly: (pages, sum of page times).
async fn upstream_page_times(glance: &glance::Handle) -> Result<(usize, Duration), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|error| error.to_string())?;
    let mut url = format!("{}/v2/images?limit=1000", glance.url());
    let (mut pages, mut total) = (0, Duration::ZERO);
    loop {
        let started = Instant::now();
        let mut request = client.get(&url);
        for (name, value) in trusted_headers() {
            request = request.header(name, value);
        }
        let body = request.send().await.map_err(|error| error.to_string())?;
        let bytes = body.bytes().await.map_err(|error| error.to_string())?;
        total += started.elapsed();
        pages += 1;
        let page: Value = serde_json::from_slice(&bytes).map_err(|error| error.to_string())?;
        match page["next"].as_str() {
            Some(next) => url = format!("{}{next}", glance.url()),
            None => return Ok((pages, total)),
        }
    }
}

/// (time to first byte, total, images) of one Alliance list.
async fn timed_list(facade: SocketAddr, namespace: &str) -> Result<(Duration, Duration, usize), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|error| error.to_string())?;
    let started = Instant::now();
    let mut response = client
        .get(format!("http://{facade}/images"))
        .header("X-Target-Ns", namespace)
        .header("X-Environment-Id", ENV)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != 200 {
        return Err(format!("list answered {}", response.status()));
    }
    let mut first_byte = None;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| format!("list body: {error}"))? {
        first_byte.get_or_insert_with(|| started.elapsed());
        body.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let parsed: Value = serde_json::from_slice(&body).map_err(|error| format!("list JSON: {error}"))?;
    let count = parsed[0]["images"].as_array().map_or(0, Vec::len);
    Ok((first_byte.unwrap_or(total), total, count))
}

async fn seeded_glance(images: usize, record: bool) -> Result<glance::Handle, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| error.to_string())?;
    let glance = glance::spawn(
        listener,
        glance::Options {
            record_requests: record,
            ..glance::Options::default()
        },
    )
    .await;
    glance.seed_images(ENV, images, "bench-");
    Ok(glance)
}

/// 2. `GET /images` over many images: TTFB, total vs upstream, peak RSS.
async fn list(plan: &Plan, tools: &Tools, report: &mut Report) -> Result<(), String> {
    println!("== GET /images");
    let sizes = [plan.list_images / 10, plan.list_images];
    let mut peaks = Vec::new();
    for images in sizes {
        let glance = seeded_glance(images, false).await?;
        let (pages, page_sum) = upstream_page_times(&glance).await?;
        let namespace = format!(
            "[namespaces.bench]\nglance_url = \"{}\"\npage_size = 1000\nmax_pages = 10000\nrequest_timeout_ms = 120000\nauth = {{ type = \"trusted\", user_id = \"bench\" }}\n",
            glance.url()
        );
        let (facade_process, facade) = start_facade(tools, &namespace).await?;
        let (ttfb, total, count) = timed_list(facade, "bench").await?;
        if count != images {
            return Err(format!("list returned {count} of {images} images"));
        }
        let (_, peak_kib) = facade_process.memory_kib();
        let ratio = total.as_secs_f64() / page_sum.as_secs_f64();
        let label = format!("{images} images, {pages} pages");
        report.add(
            "GET /images",
            &format!("time to first byte, {label}"),
            format!("{:.1} ms", ms(ttfb)),
            String::new(),
        );
        report.add(
            "GET /images",
            &format!("total vs sum of upstream page times, {label}"),
            format!("{:.0} ms vs {:.0} ms = {ratio:.2}x", ms(total), ms(page_sum)),
            format!("<= 1.1x: {}", verdict(ratio <= 1.1)),
        );
        report.add(
            "GET /images",
            &format!("facade peak RSS, {label}"),
            format!("{:.1} MiB", peak_kib as f64 / 1024.0),
            format!("<= 32 MiB: {}", verdict(peak_kib <= 32 * 1024)),
        );
        peaks.push(peak_kib);
        glance.shutdown().await;
    }
    report.add(
        "GET /images",
        "peak RSS growth, 10x more images",
        format!("{:+.1} MiB", (peaks[1] as f64 - peaks[0] as f64) / 1024.0),
        "independent of the image count".into(),
    );
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The mock Keystone with `count` more projects the service user is a member of.
fn keystone_options(image_url: &str, projects: &[String], password_delay: Duration) -> keystone::Options {
    let mut options = keystone::Options::standard(image_url).with_password_check_delay(password_delay);
    for project in projects {
        options.projects.push(keystone::Project {
            id: project.clone(),
            name: project.clone(),
        });
        for role in ["member", "reader"] {
            options
                .assignments
                .push((keystone::SERVICE_USER_ID.into(), project.clone(), role.into()));
        }
    }
    options
}

struct KeystoneCloud {
    keystone: keystone::Handle,
    glance: glance::Handle,
    password_file: PathBuf,
}

async fn keystone_cloud(projects: &[String], password_delay: Duration) -> Result<KeystoneCloud, String> {
    let glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| error.to_string())?;
    let glance_url = format!(
        "http://{}",
        glance_listener.local_addr().map_err(|error| error.to_string())?
    );
    let keystone_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| error.to_string())?;
    let keystone = keystone::spawn(
        keystone_listener,
        keystone_options(&glance_url, projects, password_delay),
    )
    .await
    .map_err(|error| error.to_string())?;
    let glance = glance::spawn(
        glance_listener,
        glance::Options {
            keystone: Some(keystone.clone()),
            record_requests: false,
            ..glance::Options::default()
        },
    )
    .await;
    let password_file = temp_dir("password")?.join("password");
    std::fs::write(&password_file, keystone::SERVICE_PASSWORD).map_err(|error| error.to_string())?;
    Ok(KeystoneCloud {
        keystone,
        glance,
        password_file,
    })
}

fn keystone_namespace(name: &str, cloud: &KeystoneCloud, scope_method: &str) -> String {
    format!(
        "[namespaces.{name}]\nauth = {{ type = \"keystone\", auth_url = \"{}\", username = \"{}\", password_file = \"{}\", scope_method = \"{scope_method}\" }}\n",
        cloud.keystone.url(),
        keystone::SERVICE_USER,
        cloud.password_file.display()
    )
}

/// 3. Keystone mode: single flight over 10 environments; steady-state overhead.
async fn keystone_mode(plan: &Plan, tools: &Tools, report: &mut Report) -> Result<(), String> {
    println!("== keystone mode");
    let environments: Vec<String> = (0..10).map(|index| format!("{index:0>32}")).collect();
    let cloud = keystone_cloud(&environments, Duration::from_millis(0)).await?;
    let image_id = cloud.glance.seed_images(ENV, 1, "steady-").pop().ok_or("no image")?;
    let trusted_glance = seeded_glance(0, false).await?;
    let trusted_id = trusted_glance.seed_images(ENV, 1, "steady-").pop().ok_or("no image")?;
    let namespaces = format!(
        "{}[namespaces.trusted]\nglance_url = \"{}\"\nauth = {{ type = \"trusted\", user_id = \"bench\" }}\n",
        keystone_namespace("keystone", &cloud, "rescope"),
        trusted_glance.url()
    );
    let (_facade_process, facade) = start_facade(tools, &namespaces).await?;

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|error| error.to_string())?;
    let before = cloud.keystone.scoped_token_requests();
    let mut requests = Vec::new();
    for index in 0..plan.first_requests {
        let request = client
            .get(format!("http://{facade}/images"))
            .header("X-Target-Ns", "keystone")
            .header("X-Environment-Id", environments[index % environments.len()].clone())
            .send();
        requests.push(tokio::spawn(request));
    }
    let mut ok = 0;
    for request in requests {
        if matches!(request.await, Ok(Ok(response)) if response.status() == 200) {
            ok += 1;
        }
    }
    let scoped = cloud.keystone.scoped_token_requests() - before;
    report.add(
        "keystone mode",
        &format!(
            "{} simultaneous first requests over 10 environments",
            plan.first_requests
        ),
        format!("{scoped} scoped token requests, {ok} answers 200"),
        format!("exactly 10: {}", verdict(scoped == 10 && ok == plan.first_requests)),
    );

    let mut rps = Vec::new();
    for (namespace, id) in [("trusted", &trusted_id), ("keystone", &image_id)] {
        let url = format!("http://{facade}/images/{id}");
        let headers = alliance_headers(namespace, ENV);
        let result = oha(
            tools,
            plan,
            &url,
            &headers,
            Load::Closed {
                concurrency: plan.concurrency,
            },
        )
        .await?;
        report.add(
            "keystone mode",
            &format!("steady state, {namespace} mode"),
            format!("{:.0} req/s, p99 {:.3} ms", result.rps, result.p99_ms),
            String::new(),
        );
        rps.push(result.rps);
    }
    report.add(
        "keystone mode",
        "keystone / trusted throughput",
        format!("{:.2}x", rps[1] / rps[0]),
        "token cached; each mock Glance checks its own way".into(),
    );
    trusted_glance.shutdown().await;
    cloud.glance.shutdown().await;
    Ok(())
}

/// Creates `count` images with a `copy_from` that never imported.
async fn create_copy_from_images(glance: &glance::Handle, count: usize) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|error| error.to_string())?;
    for index in 0..count {
        let mut request = client
            .post(format!("{}/v2/images", glance.url()))
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"name": "cf-{index}", "copy_from": "http://example.invalid/{index}.img"}}"#
            ));
        for (name, value) in trusted_headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|error| error.to_string())?;
        if response.status() != 201 {
            return Err(format!("seeding a copy_from image: {}", response.status()));
        }
    }
    Ok(())
}

/// Extra cost of copy_from failure reporting on a list of 1,000 images.
async fn failure_reporting(plan: &Plan, tools: &Tools, report: &mut Report) -> Result<(), String> {
    println!("== failure reporting");
    let runs = if plan.smoke { 2 } else { 9 };
    let mut baseline = None;
    for needing in [0usize, 10, 1000] {
        let glance = seeded_glance(1000 - needing, true).await?;
        create_copy_from_images(&glance, needing).await?;
        let namespace = format!(
            "[namespaces.bench]\nglance_url = \"{}\"\npage_size = 1000\nauth = {{ type = \"trusted\", user_id = \"bench\" }}\n",
            glance.url()
        );
        let (_facade_process, facade) = start_facade(tools, &namespace).await?;
        timed_list(facade, "bench").await?;
        glance.take_requests();
        let mut totals = Vec::new();
        for _ in 0..runs {
            totals.push(timed_list(facade, "bench").await?.1);
        }
        totals.sort();
        let median = totals[totals.len() / 2];
        let task_calls = glance
            .take_requests()
            .iter()
            .filter(|request| request.path.ends_with("/tasks"))
            .count()
            / runs;
        let base = *baseline.get_or_insert(median);
        report.add(
            "copy_from failure reporting",
            &format!("list of 1,000 images, {needing} needing a task look-up"),
            format!("{:.1} ms (median of {runs}), {task_calls} extra calls", ms(median)),
            format!("{:.2}x the plain list", median.as_secs_f64() / base.as_secs_f64()),
        );
        glance.shutdown().await;
    }
    Ok(())
}

/// Keystone scoping: re-scoping one token vs a password check per environment.
async fn scoping(plan: &Plan, tools: &Tools, report: &mut Report) -> Result<(), String> {
    println!("== keystone scoping");
    let delay = Duration::from_millis(360);
    let count = if plan.smoke { 3 } else { 10 };
    for method in ["rescope", "password"] {
        let environments: Vec<String> = (0..count).map(|index| format!("{index:0>32}")).collect();
        let cloud = keystone_cloud(&environments, delay).await?;
        let (_facade_process, facade) = start_facade(tools, &keystone_namespace("bench", &cloud, method)).await?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|error| error.to_string())?;
        let started = Instant::now();
        for environment in &environments {
            let response = client
                .get(format!("http://{facade}/images"))
                .header("X-Target-Ns", "bench")
                .header("X-Environment-Id", environment)
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if response.status() != 200 {
                return Err(format!("first request answered {}", response.status()));
            }
        }
        let elapsed = started.elapsed();
        report.add(
            "keystone scoping",
            &format!("first requests for {count} environments, scope_method = {method}"),
            format!(
                "{:.0} ms, {} password checks",
                ms(elapsed),
                cloud.keystone.password_checks()
            ),
            "password check = 360 ms (Keystone 30 bcrypt here)".into(),
        );
        cloud.glance.shutdown().await;
    }
    Ok(())
}

/// 4. Idle RSS, RSS under many open connections, binary size.
async fn memory(plan: &Plan, tools: &Tools, report: &mut Report) -> Result<(), String> {
    println!("== memory");
    let upstream = start_static_upstream().await?;
    let (facade_process, facade) = start_facade(
        tools,
        &format!("[namespaces.bench]\nglance_url = \"http://{upstream}\"\nauth = {{ type = \"trusted\", user_id = \"bench\" }}\n"),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = facade_process.memory_kib();
    report.add(
        "memory",
        "idle RSS",
        format!("{:.1} MiB", idle as f64 / 1024.0),
        format!("<= 16 MiB: {}", verdict(idle <= 16 * 1024)),
    );

    // Open connections, each having served one request and kept alive.
    let request = format!(
        "GET /images/{IMAGE_ID} HTTP/1.1\r\nHost: {facade}\r\nX-Target-Ns: bench\r\nX-Environment-Id: {ENV}\r\n\r\n"
    );
    let mut connections = Vec::new();
    for _ in 0..plan.open_connections {
        let mut stream = tokio::net::TcpStream::connect(facade)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| error.to_string())?;
        let mut buffer = vec![0u8; 4096];
        let read = stream.read(&mut buffer).await.map_err(|error| error.to_string())?;
        if !buffer[..read].starts_with(b"HTTP/1.1 200") {
            return Err("an open connection got no 200".into());
        }
        connections.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (open, _) = facade_process.memory_kib();
    report.add(
        "memory",
        &format!("RSS with {} open client connections", plan.open_connections),
        format!("{:.1} MiB", open as f64 / 1024.0),
        format!(
            "{:.1} KiB per connection",
            (open as f64 - idle as f64) / plan.open_connections as f64
        ),
    );
    drop(connections);
    let size = std::fs::metadata(&tools.facade).map(|meta| meta.len()).unwrap_or(0);
    report.add(
        "memory",
        "release binary size",
        format!("{:.1} MiB", size as f64 / 1_048_576.0),
        String::new(),
    );
    drop(facade_process);
    Ok(())
}
