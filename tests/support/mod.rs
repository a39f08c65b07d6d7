//! Shared test harness: a mock Glance (or a real one) behind an in-process
//! facade, and helpers to call the Alliance API.
#![allow(dead_code)]

pub mod counting_proxy;
pub mod memcached;
pub mod pki;
pub mod real_env;
pub mod trail;

use std::sync::Arc;
use std::time::Duration;

use alliance_glance::app::App;
use alliance_glance::config::Config;
use alliance_glance::listener_tls::Tls;
use alliance_glance::server::RunningServer;
use openstack_mock::glance::{self, Handle, RecordedRequest};
use serde_json::Value;

pub const NAMESPACE: &str = "ccsr1";

/// The Python of the venv `scripts/openstack/up.sh` builds (it holds
/// prometheus_client, with oslo.metrics, and pycadf, with keystonemiddleware).
pub fn venv_python() -> std::path::PathBuf {
    std::env::var_os("ALLIANCE_OPENSTACK_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/openstack/33/venv"))
        .join("bin/python")
}
/// A loopback port free now (the OS gives it; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Environments (projects) used by the tests.
pub const ENV_A: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
pub const ENV_B: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";
pub const FACADE_USER: &str = "alliance-test";

/// Facade settings a test may vary.
pub struct FacadeOptions {
    pub page_size: u32,
    pub max_pages: u32,
    pub request_timeout_ms: u64,
    pub max_body_bytes: usize,
    /// More TOML lines for the namespace table.
    pub namespace_extra: String,
    /// TOML lines for the `[client]` table.
    pub client: String,
    /// TOML lines for the `[upstream]` table.
    pub upstream: String,
    /// TOML tables after the namespace's: `[tls]`, `[[callers]]`.
    pub tables: String,
}

impl Default for FacadeOptions {
    fn default() -> Self {
        FacadeOptions {
            page_size: 2,
            max_pages: 50,
            request_timeout_ms: 5_000,
            max_body_bytes: 1024 * 1024,
            namespace_extra: String::new(),
            client: String::new(),
            upstream: String::new(),
            tables: String::new(),
        }
    }
}

pub fn facade_config(glance_url: &str, options: &FacadeOptions) -> Config {
    Config::parse(&format!(
        r#"
        listen = "127.0.0.1:0"
        max_body_bytes = {max_body}
        shutdown_grace_secs = 5
        [client]
        {client}
        [upstream]
        {upstream}
        [namespaces.{NAMESPACE}]
        glance_url = "{glance_url}"
        page_size = {page_size}
        max_pages = {max_pages}
        connect_timeout_ms = 1000
        request_timeout_ms = {timeout}
        auth = {{ type = "trusted", user_id = "{FACADE_USER}" }}
        copy_from = {{ allow_cidrs = ["127.0.0.1/32"] }}
        {extra}
        {tables}
        "#,
        extra = options.namespace_extra,
        client = options.client,
        upstream = options.upstream,
        tables = options.tables,
        max_body = options.max_body_bytes,
        page_size = options.page_size,
        max_pages = options.max_pages,
        timeout = options.request_timeout_ms,
    ))
    .expect("test config parses")
}

/// The facade of `config`, over TLS if it has `[tls]`.
pub async fn start_facade(config: &Config) -> RunningServer {
    start_app(config).await.1
}

pub async fn start_facade_with_grace(config: &Config, grace: Duration) -> RunningServer {
    start_app_with_grace(config, grace).await.1
}

/// The value of one series of `app`'s metrics, named as the exposition
/// names it (`family_total{label="value"}`).
pub fn metric_value(app: &App, series: &str) -> u64 {
    let text = app.metrics().encode().expect("metrics on");
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// The facade's app (for its metrics, readiness and reloads) and its server.
pub async fn start_app(config: &Config) -> (Arc<App>, RunningServer) {
    start_app_with_grace(config, Duration::from_secs(5)).await
}

pub async fn start_app_with_grace(config: &Config, grace: Duration) -> (Arc<App>, RunningServer) {
    let app = Arc::new(App::new(config).expect("facade starts"));
    let tls = config
        .tls
        .as_ref()
        .map(|tls| Arc::new(Tls::from_config(tls).expect("TLS files load")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = RunningServer::spawn(listener, Arc::clone(&app), tls, grace).expect("serve");
    (app, server)
}

/// A mock Glance under DevStack's `/image` prefix, and a facade in front.
pub struct Harness {
    pub glance: Handle,
    pub app: Arc<App>,
    pub facade: RunningServer,
    pub client: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(glance::Options::default(), FacadeOptions::default()).await
    }

    /// The default mock, and `tables` (`[[callers]]`, `[audit]`, ...) in
    /// the facade's configuration.
    pub async fn start_with_tables(tables: String) -> Self {
        Self::start_with(
            glance::Options::default(),
            FacadeOptions {
                tables,
                ..FacadeOptions::default()
            },
        )
        .await
    }

    pub async fn start_with(mut glance_options: glance::Options, facade_options: FacadeOptions) -> Self {
        if glance_options.prefix.is_empty() {
            glance_options.prefix = "/image".into();
        }
        glance_options.record_requests = true;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let glance = glance::spawn(listener, glance_options).await;
        let (app, facade) = start_app(&facade_config(&glance.url(), &facade_options)).await;
        Harness {
            glance,
            app,
            facade,
            client: client(),
        }
    }

    /// A request with the two Alliance headers for environment A.
    pub fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.call_as(ENV_A, method, path)
    }

    pub fn call_as(&self, environment: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        alliance_call(&self.client, &self.facade, NAMESPACE, environment, method, path)
    }

    /// A call straight to the mock (bypassing the facade) as `environment`,
    /// with a JSON body.
    pub fn glance_as(
        &self,
        environment: &str,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.glance.url()))
            .header("X-Identity-Status", "Confirmed")
            .header("X-Project-Id", environment)
            .header("X-Roles", "member,reader")
            .header("Content-Type", "application/json")
            .body(body.to_string())
    }

    /// Creates an image directly in the mock as `environment` (bypassing
    /// the facade) and returns Glance's image document.
    pub async fn glance_create(&self, environment: &str, body: Value) -> Value {
        let response = self
            .glance_as(environment, reqwest::Method::POST, "/v2/images", &body)
            .send()
            .await
            .expect("mock reachable");
        assert_eq!(response.status(), 201, "mock create");
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("json")
    }
}

impl Harness {
    /// Uploads image data directly to the mock, making the image active.
    pub async fn glance_upload(&self, environment: &str, id: &str, data: Vec<u8>) {
        let response = self
            .client
            .put(format!("{}/v2/images/{id}/file", self.glance.url()))
            .header("X-Identity-Status", "Confirmed")
            .header("X-Project-Id", environment)
            .header("X-Roles", "member,reader")
            .header("Content-Type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .expect("mock reachable");
        assert_eq!(response.status(), 204, "mock upload");
    }
}

/// A call with the two Alliance headers and a JSON content type.
pub fn alliance_call(
    client: &reqwest::Client,
    facade: &RunningServer,
    namespace: &str,
    environment: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{}{path}", facade.url()))
        .header("X-Target-Ns", namespace)
        .header("X-Environment-Id", environment)
        .header("Content-Type", "application/json")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the documented error document and returns its message.
    pub fn error_message(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let document = self.json();
        let error = &document["error"];
        assert_eq!(error["code"], status);
        assert!(error["title"].is_string());
        assert_eq!(
            error["request_id"].as_str(),
            self.header("x-openstack-request-id"),
            "error request_id matches the header"
        );
        assert_eq!(document.as_object().map(|o| o.len()), Some(1));
        assert_eq!(error.as_object().map(|o| o.len()), Some(4));
        error["message"].as_str().unwrap_or_default().to_owned()
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("facade reachable");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("whole body").to_vec();
    Answer { status, headers, body }
}

/// The documented image keys, in order (`copy_from` only when present).
pub const IMAGE_KEYS: [&str; 19] = [
    "status",
    "created_at",
    "name",
    "tags",
    "container_format",
    "min_ram",
    "disk_format",
    "updated_at",
    "visibility",
    "copy_from",
    "owner",
    "schema",
    "protected",
    "file",
    "checksum",
    "min_disk",
    "virtual_size",
    "id",
    "size",
];

pub fn assert_image_keys(image: &Value) {
    let keys: Vec<&str> = image
        .as_object()
        .expect("image object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: Vec<&str> = IMAGE_KEYS
        .iter()
        .copied()
        .filter(|key| *key != "copy_from" || keys.contains(&"copy_from"))
        .collect();
    assert_eq!(keys, expected);
}

/// The Alliance image a Glance v2 image should become.
pub fn alliance_image(v2: &Value) -> Value {
    let mut image = serde_json::Map::new();
    for key in IMAGE_KEYS {
        match v2.get(key) {
            Some(value) => {
                image.insert(key.into(), value.clone());
            }
            None if key == "copy_from" => {}
            None => {
                image.insert(key.into(), Value::Null);
            }
        }
    }
    Value::Object(image)
}

/// A recorded upstream request in comparable form:
/// `"METHOD /path?query"`.
pub fn line(request: &RecordedRequest) -> String {
    match &request.query {
        Some(query) => format!("{} {}?{}", request.method, request.path, query),
        None => format!("{} {}", request.method, request.path),
    }
}

pub fn lines(requests: &[RecordedRequest]) -> Vec<String> {
    requests.iter().map(line).collect()
}

/// The headers the facade sends Glance in trusted mode, and nothing else.
pub fn assert_trusted_identity(request: &RecordedRequest, environment: &str) {
    assert_eq!(request.header("x-identity-status"), Some("Confirmed"));
    assert_eq!(request.header("x-project-id"), Some(environment));
    assert_eq!(request.header("x-user-id"), Some(FACADE_USER));
    assert_eq!(request.header("x-roles"), Some("member,reader"));
    assert_eq!(request.header("accept"), Some("application/json"));
    let mut names: Vec<&str> = request.headers.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut allowed = vec![
        "accept",
        "host",
        "user-agent",
        "x-identity-status",
        "x-openstack-request-id",
        "x-project-id",
        "x-roles",
        "x-user-id",
    ];
    if !request.body.is_empty() {
        allowed.extend(["content-length", "content-type"]);
    }
    allowed.sort_unstable();
    assert_eq!(names, allowed, "upstream headers of {}", line(request));
}

pub fn json_body(request: &RecordedRequest) -> Value {
    serde_json::from_slice(&request.body).expect("upstream body is JSON")
}

/// Polls until `check` holds (imports finish in the background).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Keystone mode: a mock Keystone, a mock Glance behind keystonemiddleware
/// (found through the catalog), and a facade namespace in `keystone` mode.
pub struct KeystoneHarness {
    pub keystone: openstack_mock::keystone::Handle,
    pub glance: Handle,
    pub app: Arc<App>,
    pub facade: RunningServer,
    pub client: reqwest::Client,
    /// The facade's configuration (for reloads).
    pub config: Config,
    _password_file: TempFile,
}

/// A folder removed, with what it holds, when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("alliance-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).expect("temp dir");
        TempDir(path)
    }

    /// Writes `name` in the folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("temp dir file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file removed when dropped.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn with_contents(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("alliance-test-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).expect("temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl KeystoneHarness {
    pub async fn start() -> Self {
        Self::start_with(|options| options, "").await
    }

    /// `adjust` edits the mock Keystone's options; `auth_extra` is added to
    /// the namespace's auth table (TOML inline-table entries).
    pub async fn start_with(
        adjust: impl FnOnce(openstack_mock::keystone::Options) -> openstack_mock::keystone::Options,
        auth_extra: &str,
    ) -> Self {
        Self::start_with_tables(adjust, auth_extra, "").await
    }

    /// [`KeystoneHarness::start_with`], and `tables` (`[[callers]]`, ...)
    /// after the namespace's.
    pub async fn start_with_tables(
        adjust: impl FnOnce(openstack_mock::keystone::Options) -> openstack_mock::keystone::Options,
        auth_extra: &str,
        tables: &str,
    ) -> Self {
        use openstack_mock::keystone;
        let glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let glance_url = format!("http://{}/image", glance_listener.local_addr().expect("addr"));
        let keystone_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        // The catalog carries a version suffix, as many deployments do.
        let keystone = keystone::spawn(
            keystone_listener,
            adjust(keystone::Options::standard(&format!("{glance_url}/v2"))),
        )
        .await
        .expect("keystone");
        let glance = glance::spawn(
            glance_listener,
            glance::Options {
                prefix: "/image".into(),
                keystone: Some(keystone.clone()),
                record_requests: true,
                ..glance::Options::default()
            },
        )
        .await;
        let password_file = TempFile::with_contents(&format!("{}\n", keystone::SERVICE_PASSWORD));
        let config = Config::parse(&format!(
            r#"
            listen = "127.0.0.1:0"
            [namespaces.{NAMESPACE}]
            page_size = 2
            request_timeout_ms = 5000
            auth = {{ type = "keystone", auth_url = "{auth_url}", username = "{user}", user_domain_id = "default", password_file = "{password_file}" {auth_extra} }}
            copy_from = {{ allow_cidrs = ["127.0.0.1/32"] }}
            {tables}
            "#,
            auth_url = keystone.url(),
            user = keystone::SERVICE_USER,
            password_file = password_file.0.display(),
        ))
        .expect("keystone config parses");
        let (app, facade) = start_app(&config).await;
        KeystoneHarness {
            keystone,
            glance,
            app,
            facade,
            client: client(),
            config,
            _password_file: password_file,
        }
    }

    pub fn call_as(&self, environment: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        alliance_call(&self.client, &self.facade, NAMESPACE, environment, method, path)
    }
}

/// The request log lines of every facade in this test binary, as JSON
/// (captured from the first call on).
pub fn capture_request_log() {
    use std::sync::OnceLock;
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter("alliance_glance::request=info")
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    });
}

fn captured_lines() -> &'static std::sync::Mutex<Vec<u8>> {
    static LINES: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
    &LINES
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        captured_lines().lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every request log line captured so far (see [`capture_request_log`]).
pub fn captured_log() -> String {
    String::from_utf8_lossy(&captured_lines().lock().expect("log lock")).into_owned()
}

/// The request log line with this request id (waits for it: a line is
/// written when the request's answer is done or dropped).
pub async fn request_log_line(request_id: &str) -> Value {
    for _ in 0..200 {
        let text = String::from_utf8_lossy(&captured_lines().lock().expect("log lock")).into_owned();
        let found = text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["request_id"] == request_id);
        if let Some(line) = found {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no request log line for {request_id}");
}

/// An answer read from a raw connection: status, headers (lower-case names)
/// and body, up to the end of the connection or of a `content-length` body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Asserts the documented error document with its request id, and
    /// returns the request id.
    pub fn assert_error(&self, status: u16) -> String {
        let answer = Answer {
            status: self.status,
            headers: self
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                        reqwest::header::HeaderValue::from_str(value).expect("value"),
                    )
                })
                .collect(),
            body: self.body.clone(),
        };
        answer.error_message(status);
        answer
            .header("x-openstack-request-id")
            .expect("a request id")
            .to_owned()
    }
}

/// Reads one answer from `stream` (fails after 10 s).
pub async fn read_raw_answer(stream: &mut tokio::net::TcpStream) -> RawAnswer {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status = lines.next().expect("status line")[9..12].parse().expect("status");
                let headers: Vec<(String, String)> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
                    .collect();
                let length: Option<usize> = headers
                    .iter()
                    .find(|(name, _)| name == "content-length")
                    .map(|(_, value)| value.parse().expect("length"));
                let body = match length {
                    Some(length) => bytes.get(end + 4..end + 4 + length).map(<[u8]>::to_vec),
                    None => dechunked(&bytes[end + 4..]),
                };
                if let Some(body) = body {
                    return RawAnswer { status, headers, body };
                }
            }
            let count = stream.read(&mut chunk).await.expect("read");
            assert!(
                count > 0,
                "connection closed before a whole answer: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            bytes.extend_from_slice(&chunk[..count]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s")
}

/// A whole chunked body, decoded; `None` while incomplete.
fn dechunked(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..line_end]).ok()?, 16).ok()?;
        let chunk = bytes.get(line_end + 2..line_end + 2 + size + 2)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
        bytes = &bytes[line_end + 2 + size + 2..];
    }
}

/// A request head with the Alliance headers of environment A.
pub fn raw_head(method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: facade\r\nX-Target-Ns: {NAMESPACE}\r\nX-Environment-Id: {ENV_A}\r\nContent-Type: application/json\r\n{extra}\r\n"
    )
}

/// The service project on which the facade's service user has the
/// `service` role, and a user `alice` of ALPHA (member) and BETA (reader).
pub const SERVICE_PROJECT: &str = "5e7e5e7e5e7e4e7e8e7ee7e5e7e5e7e5";
pub const ALICE: &str = "a11ce0000000400080000000000a11ce";

pub fn with_service_role_and_alice(
    mut options: openstack_mock::keystone::Options,
) -> openstack_mock::keystone::Options {
    use openstack_mock::keystone::{self, ALPHA, BETA, Project, User};
    options.projects.push(Project {
        id: SERVICE_PROJECT.into(),
        name: "service".into(),
    });
    options.assignments.push((
        keystone::SERVICE_USER_ID.into(),
        SERVICE_PROJECT.into(),
        "service".into(),
    ));
    options.users.push(User {
        id: ALICE.into(),
        name: "alice".into(),
        domain_id: "default".into(),
        password: ALICE_PASSWORD.into(),
    });
    options.assignments.push((ALICE.into(), ALPHA.into(), "member".into()));
    options.assignments.push((ALICE.into(), BETA.into(), "reader".into()));
    options
}

pub const ALICE_PASSWORD: &str = "alice-pass";

/// A password token of `user_id` scoped to `project`, from the Keystone at
/// `auth_url` (`.../v3`).
pub async fn project_token(auth_url: &str, user_id: &str, password: &str, project: &str) -> String {
    let response = client()
        .post(format!("{auth_url}/auth/tokens"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": password}}}, "scope": {"project": {"id": project}}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.headers()["x-subject-token"].to_str().unwrap().to_owned()
}
