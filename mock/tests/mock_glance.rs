//! Integration tests of the mock Glance v2 server, driven over real HTTP and checked
//! against the Glance 33.0.0 transcripts (numbers in comments refer to them).

use bytes::Bytes;
use md5::{Digest, Md5};
use openstack_mock::glance::{self, Fault, FaultAction, Handle, MAX_IMAGE_BYTES, Options};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha512;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const A: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
const B: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";
const ADMIN_PROJECT: &str = "adadadadadad4adaadadadadadadadad";
const USER: &str = "0a0a0a0a0a0a40a0a0a00a0a0a0a0a0a";
const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";
const HTML: &str = "text/html; charset=UTF-8";

/// Who sends a request (the identity headers of the transcripts).
#[derive(Debug, Clone, Copy)]
enum Who {
    /// Project A with `member,reader`.
    A,
    /// Project B with `member,reader`.
    B,
    /// Project A with `reader` only.
    AReader,
    /// Project A with `member` only.
    AMember,
    /// Project A without roles.
    ANoRoles,
    /// `admin,member,reader` in the admin project.
    Admin,
    /// `member,reader` without any project header.
    NoProject,
    /// No identity headers at all.
    Anonymous,
}

impl Who {
    fn headers(self) -> Vec<(&'static str, &'static str)> {
        let (project, roles) = match self {
            Who::A => (Some(A), Some("member,reader")),
            Who::B => (Some(B), Some("member,reader")),
            Who::AReader => (Some(A), Some("reader")),
            Who::AMember => (Some(A), Some("member")),
            Who::ANoRoles => (Some(A), None),
            Who::Admin => (Some(ADMIN_PROJECT), Some("admin,member,reader")),
            Who::NoProject => (None, Some("member,reader")),
            Who::Anonymous => return Vec::new(),
        };
        let mut headers = vec![("X-Identity-Status", "Confirmed"), ("X-User-Id", USER)];
        headers.extend(project.map(|p| ("X-Project-Id", p)));
        headers.extend(roles.map(|r| ("X-Roles", r)));
        headers
    }
}

/// A received response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Header names in the order received.
    fn header_names(&self) -> Vec<String> {
        self.headers.keys().map(|k| k.as_str().to_owned()).collect()
    }
}

/// A running mock and a client for it.
struct Mock {
    handle: Handle,
    client: reqwest::Client,
}

impl Mock {
    async fn start() -> Mock {
        Mock::start_with(Options::default()).await
    }

    async fn start_with(mut options: Options) -> Mock {
        options.record_requests = true;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let handle = glance::spawn(listener, options).await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Mock { handle, client }
    }

    fn request(&self, who: Who, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, format!("{}{path}", self.handle.url()));
        for (name, value) in who.headers() {
            request = request.header(name, value);
        }
        request
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body");
        Answer { status, headers, body }
    }

    async fn get(&self, who: Who, path: &str) -> Answer {
        self.send(self.request(who, Method::GET, path)).await
    }

    async fn delete(&self, who: Who, path: &str) -> Answer {
        self.send(self.request(who, Method::DELETE, path)).await
    }

    async fn post_json(&self, who: Who, path: &str, body: &Value) -> Answer {
        let request = self
            .request(who, Method::POST, path)
            .header("Content-Type", "application/json");
        self.send(request.body(body.to_string())).await
    }

    async fn post_raw(&self, who: Who, path: &str, body: &'static str) -> Answer {
        let request = self
            .request(who, Method::POST, path)
            .header("Content-Type", "application/json");
        self.send(request.body(body)).await
    }

    async fn patch(&self, who: Who, id: &str, body: &str) -> Answer {
        self.patch_as(who, id, PATCH_V21, body).await
    }

    async fn patch_as(&self, who: Who, id: &str, content_type: &str, body: &str) -> Answer {
        let request = self
            .request(who, Method::PATCH, &format!("/v2/images/{id}"))
            .header("Content-Type", content_type)
            .body(body.to_owned());
        self.send(request).await
    }

    async fn upload(&self, who: Who, id: &str, content_type: &str, data: Vec<u8>) -> Answer {
        let request = self
            .request(who, Method::PUT, &format!("/v2/images/{id}/file"))
            .header("Content-Type", content_type)
            .body(data);
        self.send(request).await
    }

    /// Creates an image and returns its document.
    async fn create(&self, who: Who, body: Value) -> Value {
        let answer = self.post_json(who, "/v2/images", &body).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
        answer.json()
    }

    async fn create_id(&self, who: Who, body: Value) -> String {
        self.create(who, body).await["id"].as_str().expect("id").to_owned()
    }

    async fn show(&self, who: Who, id: &str) -> Value {
        let answer = self.get(who, &format!("/v2/images/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }

    async fn import(&self, who: Who, id: &str, body: Value) -> Answer {
        self.post_json(who, &format!("/v2/images/{id}/import"), &body).await
    }

    /// Polls an image until its status is no longer `importing`.
    async fn wait_import(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let image = self.show(Who::A, id).await;
            if image["status"] != "importing" || Instant::now() > deadline {
                return image;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks an HTML error against a recorded one: status, headers, the recorded
/// Content-Length (ids in these tests have the recorded length) and the message.
fn expect_error(answer: &Answer, status: u16, recorded_length: usize, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some(HTML));
    assert!(
        answer
            .header("x-openstack-request-id")
            .is_some_and(|id| id.starts_with("req-"))
    );
    assert!(
        answer.text().contains(message),
        "expected {message:?} in {}",
        answer.text()
    );
    assert_eq!(answer.body.len(), recorded_length, "{}", answer.text());
}

/// The standard webob HTML error page, copied from the transcripts.
fn html_page(status_line: &str, message: &str) -> String {
    format!(
        "<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n  <h1>{status_line}</h1>\n  {message}<br /><br />\n\n\n\n </body>\n</html>"
    )
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

const CORE_KEYS: [&str; 22] = [
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
    "id",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
];

fn core_keys() -> Vec<String> {
    CORE_KEYS.iter().map(|k| (*k).to_owned()).collect()
}

/// A small valid qcow2 image: header magic, version 3 and the virtual size field.
fn qcow2(virtual_size: u64, total: usize) -> Vec<u8> {
    let mut data = vec![0u8; total];
    data[..4].copy_from_slice(b"QFI\xfb");
    data[4..8].copy_from_slice(&3u32.to_be_bytes());
    data[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    for (i, byte) in data.iter_mut().enumerate().skip(512) {
        *byte = (i % 251) as u8;
    }
    data
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A throwaway HTTP server for web-download: serves `files`, 404 for anything else.
async fn file_server(files: Vec<(&'static str, Vec<u8>)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let files = files.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = match files.iter().find(|(p, _)| *p == path) {
                    Some((_, data)) => ("200 OK", data.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(header.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- discovery

#[tokio::test]
async fn versions_and_version_negotiation() {
    let mock = Mock::start().await;
    let port = mock.handle.addr().port();
    // 001: 200 without authentication and without a request id.
    let versions = mock.get(Who::Anonymous, "/versions").await;
    assert_eq!(versions.status, 200);
    assert_eq!(versions.header("content-type"), Some("application/json"));
    assert_eq!(versions.header("x-openstack-request-id"), None);
    // 1682 bytes with the recorded 4-digit port; each of the 16 links carries the port.
    assert_eq!(versions.body.len(), 1682 + 16 * (port.to_string().len() - 4));
    let href = format!("http://127.0.0.1:{port}/v2/");
    assert!(versions.text().starts_with(&format!(
        r#"{{"versions": [{{"id": "v2.15", "status": "SUPPORTED", "links": [{{"rel": "self", "href": "{href}"}}]}}, {{"id": "v2.13""#
    )));
    let ids: Vec<Value> = versions.json()["versions"]
        .as_array()
        .map(|v| v.iter().map(|x| x["id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids[7], "v2.17");
    // 002, 211, 212, extras 004/008: anything unversioned is 300 with the same document.
    for path in ["/", "/v1/images", "/v3/images", "/v2.99/images?limit=1"] {
        let answer = mock.get(Who::A, path).await;
        assert_eq!(answer.status, 300, "{path}");
        assert_eq!(answer.body, versions.body);
    }
    let vnd = mock
        .send(
            mock.request(Who::A, Method::GET, "/images")
                .header("Accept", "application/vnd.openstack.images-v2.1+json"),
        )
        .await;
    assert_eq!(vnd.status, 300);
    // extras 003: a known minor version is served as v2.
    assert_eq!(mock.get(Who::A, "/v2.17/images?limit=1").await.status, 200);
    // 003: the v2 root needs authentication; extras 001/002 with it.
    assert_eq!(mock.get(Who::Anonymous, "/v2/").await.status, 401);
    expect_error(
        &mock.get(Who::A, "/v2/").await,
        404,
        154,
        "The resource could not be found.",
    );
    let redirect = mock.get(Who::A, "/v2").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(
        redirect.header("location"),
        Some(format!("http://127.0.0.1:{port}/v2/").as_str())
    );
    // 004 and 213.
    let health = mock.get(Who::Anonymous, "/healthcheck").await;
    assert_eq!((health.status, health.text().as_str()), (200, "OK"));
    let preflight = mock
        .send(
            mock.request(Who::Anonymous, Method::OPTIONS, "/v2/images")
                .header("Origin", "http://127.0.0.1:1234")
                .header("Access-Control-Request-Method", "GET"),
        )
        .await;
    assert_eq!((preflight.status, preflight.body.len()), (200, 0));
    assert_eq!(preflight.header("x-openstack-request-id"), None);
}

#[tokio::test]
async fn info_schemas_unknown_paths_and_wrong_methods() {
    let mock = Mock::start().await;
    // 128, 129, 130, 131.
    let import = mock.get(Who::A, "/v2/info/import").await;
    assert_eq!(
        import.text(),
        r#"{"import-methods": {"description": "Import methods available.", "type": "array", "value": ["glance-direct", "web-download"]}}"#
    );
    assert_eq!(
        import.header_names()[..2],
        ["content-type".to_owned(), "content-length".to_owned()]
    );
    assert_eq!(
        mock.get(Who::A, "/v2/info/stores").await.text(),
        r#"{"stores": [{"id": "fs1", "default": "true"}]}"#
    );
    expect_error(
        &mock.get(Who::A, "/v2/info/stores/detail").await,
        403,
        183,
        "You are not authorized to complete stores_info_detail action.",
    );
    assert_eq!(
        mock.get(Who::Admin, "/v2/info/stores/detail").await.json()["stores"][0]["type"],
        "file"
    );
    assert_eq!(mock.get(Who::A, "/v2/info/usage").await.text(), r#"{"usage": {}}"#);
    // 005, 006, 007.
    assert_eq!(mock.get(Who::Anonymous, "/v2/schemas/image").await.status, 401);
    let schema = mock.get(Who::A, "/v2/schemas/image").await;
    assert_eq!((schema.status, schema.body.len()), (200, 4071));
    assert_eq!(schema.json()["name"], "image");
    assert_eq!(mock.get(Who::A, "/v2/schemas/images").await.body.len(), 4359);
    // 209 and 210, with the exact bodies.
    let unknown = mock.get(Who::A, "/v2/nothing").await;
    assert_eq!(
        unknown.text(),
        html_page("404 Not Found", "The resource could not be found.")
    );
    let wrong_method = mock
        .send(
            mock.request(Who::A, Method::PUT, "/v2/images")
                .header("Content-Type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET, POST"));
    assert_eq!(wrong_method.header_names()[0], "allow");
    assert_eq!(
        wrong_method.text(),
        "<html>\n <head>\n  <title>405 Method Not Allowed</title>\n </head>\n <body>\n  <h1>405 Method Not Allowed</h1>\n  The method PUT is not allowed for this resource. <br /><br />\n\n </body>\n</html>"
    );
    // 203: the Allow list of an action route.
    let id = mock.create_id(Who::A, json!({"name": "x"})).await;
    let deactivate = mock
        .delete(Who::A, &format!("/v2/images/{id}/actions/deactivate"))
        .await;
    expect_error_405(&deactivate, "POST", 190);
    // A route without a 405 fallback.
    let tasks = mock
        .send(mock.request(Who::A, Method::POST, &format!("/v2/images/{id}/tasks")))
        .await;
    assert_eq!(tasks.status, 404);
}

fn expect_error_405(answer: &Answer, allow: &str, recorded_length: usize) {
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some(allow));
    assert_eq!(answer.body.len(), recorded_length, "{}", answer.text());
}

// ---------------------------------------------------------------- authentication

#[tokio::test]
async fn trusted_header_auth_matrix() {
    let mock = Mock::start().await;
    let unauthorized = "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.";
    // 008, 010, 011: HTML 401 without a request id.
    for answer in [
        mock.get(Who::Anonymous, "/v2/images").await,
        mock.send(
            mock.client
                .get(format!("{}/v2/images", mock.handle.url()))
                .header("X-Project-Id", A)
                .header("X-Roles", "member,reader"),
        )
        .await,
        mock.send(
            mock.client
                .get(format!("{}/v2/images", mock.handle.url()))
                .header("X-Identity-Status", "Invalid")
                .header("X-Project-Id", A),
        )
        .await,
    ] {
        assert_eq!(answer.status, 401);
        assert_eq!(answer.text(), html_page("401 Unauthorized", unauthorized));
        assert_eq!(answer.body.len(), 358);
        assert_eq!(answer.header("x-openstack-request-id"), None);
    }
    // 009: JSON flavour.
    let json_401 = mock
        .send(
            mock.request(Who::Anonymous, Method::GET, "/v2/images")
                .header("Accept", "application/json"),
        )
        .await;
    assert_eq!(json_401.header("content-type"), Some("application/json"));
    assert_eq!(
        json_401.text(),
        format!(
            r#"{{"message": "{unauthorized}<br /><br />\n\n\n", "code": "401 Unauthorized", "title": "Unauthorized"}}"#
        )
    );
    // 012, 013: listing needs `reader` (roles are not expanded).
    for who in [Who::ANoRoles, Who::AMember] {
        let answer = mock.get(who, "/v2/images").await;
        expect_error(
            &answer,
            403,
            175,
            "You are not authorized to complete get_images action.",
        );
        assert_eq!(
            answer.text(),
            html_page("403 Forbidden", "You are not authorized to complete get_images action.")
        );
    }
    // 014, 017: readers and project-less callers list.
    let empty = r#"{"images": [], "first": "/v2/images", "schema": "/v2/schemas/images"}"#;
    assert_eq!(mock.get(Who::AReader, "/v2/images").await.text(), empty);
    assert_eq!(mock.get(Who::NoProject, "/v2/images").await.text(), empty);
    // 015, 016: creating needs `member`.
    let body = json!({"name": "reader-try", "disk_format": "raw", "container_format": "bare"});
    expect_error(
        &mock.post_json(Who::AReader, "/v2/images", &body).await,
        403,
        174,
        "You are not authorized to complete add_image action.",
    );
    let member_only = mock
        .create(
            Who::AMember,
            json!({"name": "member-only-try", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    assert_eq!(member_only["owner"], A);
    // A member-only caller cannot read images either (get_image needs reader): 404.
    let id = member_only["id"].as_str().unwrap_or_default().to_owned();
    expect_error(
        &mock.get(Who::AMember, &format!("/v2/images/{id}")).await,
        404,
        154,
        "The resource could not be found.",
    );
    // 018: no project header gives an owner-less image.
    assert_eq!(
        mock.create(Who::NoProject, json!({"name": "no-project"})).await["owner"],
        Value::Null
    );
    // 019: X-Tenant-Id is the fallback project header.
    let tenant = mock
        .send(
            mock.client
                .post(format!("{}/v2/images", mock.handle.url()))
                .header("X-Identity-Status", "Confirmed")
                .header("X-Tenant-Id", A)
                .header("X-Roles", "member,reader")
                .body(r#"{"name":"via-x-tenant-id","disk_format":"raw","container_format":"bare"}"#),
        )
        .await;
    assert_eq!(tenant.json()["owner"], A);
    let tenant_id = tenant.json()["id"].as_str().unwrap_or_default().to_owned();
    // 020: X-Project-Id wins over X-Tenant-Id.
    let both = mock
        .send(
            mock.client
                .get(format!("{}/v2/images/{tenant_id}", mock.handle.url()))
                .header("X-Identity-Status", "Confirmed")
                .header("X-Project-Id", B)
                .header("X-Tenant-Id", A)
                .header("X-Roles", "member,reader"),
        )
        .await;
    expect_error(&both, 404, 181, &format!("No image found with ID {tenant_id}"));
    // 021: roles are trimmed and case-insensitive.
    let mixed = mock
        .send(
            mock.client
                .get(format!("{}/v2/images?limit=1", mock.handle.url()))
                .header("X-Identity-Status", "Confirmed")
                .header("X-Project-Id", A)
                .header("X-Roles", "Member, Reader"),
        )
        .await;
    assert_eq!(mixed.status, 200);
    // 022: an invalid service catalog is a 500 without a request id.
    let catalog = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Service-Catalog", "not-json"),
        )
        .await;
    assert_eq!(catalog.status, 500);
    assert_eq!(catalog.header("x-openstack-request-id"), None);
    assert_eq!(catalog.body.len(), 257);
    assert!(
        catalog
            .text()
            .contains("operation.<br /><br />\nInvalid service catalog json.\n\n\n </body>")
    );
    // 023: an admin without project sees everything (here: the project-less image too).
    let admin = mock
        .send(
            mock.client
                .get(format!("{}/v2/images", mock.handle.url()))
                .header("X-Identity-Status", "Confirmed")
                .header("X-Roles", "admin"),
        )
        .await;
    assert_eq!(admin.json()["images"].as_array().map(Vec::len), Some(3));
    // 214, 215: request ids.
    let echoed = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Openstack-Request-Id", "req-11111111-2222-4333-8444-555555555555"),
        )
        .await;
    assert_eq!(
        echoed.header("x-openstack-request-id"),
        Some("req-11111111-2222-4333-8444-555555555555")
    );
    let prefixed = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Openstack-Request-Id", "abc"),
        )
        .await;
    assert_eq!(prefixed.header("x-openstack-request-id"), Some("req-abc"));
    let too_long = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Openstack-Request-Id", format!("req-{}", "a".repeat(80))),
        )
        .await;
    assert_eq!((too_long.status, too_long.body.len()), (500, 228));
    assert_eq!(too_long.header("x-openstack-request-id"), None);
}

// ---------------------------------------------------------------- create

#[tokio::test]
async fn create_answers_like_glance() {
    let mock = Mock::start().await;
    let port = mock.handle.addr().port();
    // 024: headers and the exact body.
    let answer = mock
        .post_raw(
            Who::A,
            "/v2/images",
            r#"{"name":"cirros-A1","disk_format":"qcow2","container_format":"bare","min_ram":512,"min_disk":1}"#,
        )
        .await;
    assert_eq!(answer.status, 201);
    let image = answer.json();
    let id = image["id"].as_str().unwrap_or_default();
    let at = image["created_at"].as_str().unwrap_or_default();
    assert_eq!(at.len(), 20);
    assert_eq!(
        answer.text(),
        format!(
            r#"{{"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare", "visibility": "shared", "size": null, "virtual_size": null, "status": "queued", "checksum": null, "protected": false, "min_ram": 512, "min_disk": 1, "owner": "{A}", "os_hidden": false, "os_hash_algo": null, "os_hash_value": null, "id": "{id}", "created_at": "{at}", "updated_at": "{at}", "tags": [], "self": "/v2/images/{id}", "file": "/v2/images/{id}/file", "schema": "/v2/schemas/image"}}"#
        )
    );
    assert_eq!(
        answer.header_names()[..6],
        [
            "content-length",
            "content-type",
            "location",
            "openstack-image-import-methods",
            "openstack-image-store-ids",
            "x-openstack-request-id"
        ]
        .map(str::to_owned)
    );
    assert_eq!(
        answer.header("location"),
        Some(format!("http://127.0.0.1:{port}/v2/images/{id}").as_str())
    );
    assert_eq!(
        answer.header("openstack-image-import-methods"),
        Some("glance-direct,web-download")
    );
    assert_eq!(answer.header("openstack-image-store-ids"), Some("fs1"));
    assert_eq!(answer.header("content-type"), Some("application/json"));

    // 025: custom properties first, in request order.
    let a2 = mock
        .create(Who::A, json!({"name": "A2-with-copy_from", "disk_format": "qcow2", "container_format": "bare", "min_ram": 256, "min_disk": 2, "copy_from": "http://example.invalid/images/cirros.qcow2", "hw_disk_bus": "virtio"}))
        .await;
    let mut expected = vec!["copy_from".to_owned(), "hw_disk_bus".to_owned()];
    expected.extend(core_keys());
    assert_eq!(keys(&a2), expected);
    // 026: an empty object is enough.
    let empty = mock.create(Who::A, json!({})).await;
    assert_eq!(
        (
            empty["name"].clone(),
            empty["disk_format"].clone(),
            empty["visibility"].clone()
        ),
        (Value::Null, Value::Null, json!("shared"))
    );
    // 027, 028: client-chosen id and tags, then the duplicate.
    let fixed = mock
        .create(Who::A, json!({"id": "11111111-2222-4333-8444-555555555555", "name": "fixed-id", "disk_format": "raw", "container_format": "bare", "tags": ["t1", "t2", "t1"]}))
        .await;
    assert_eq!(fixed["tags"], json!(["t1", "t2"]));
    let duplicate = mock
        .post_raw(
            Who::A,
            "/v2/images",
            r#"{"id":"11111111-2222-4333-8444-555555555555","name":"dup"}"#,
        )
        .await;
    assert_eq!(
        duplicate.text(),
        html_page(
            "409 Conflict",
            "Image ID 11111111-2222-4333-8444-555555555555 already exists!"
        )
    );
    // 029: the full jsonschema message.
    let bad_format = mock
        .post_raw(
            Who::A,
            "/v2/images",
            r#"{"name":"x","disk_format":"qcow3","container_format":"bare"}"#,
        )
        .await;
    assert_eq!(bad_format.status, 400);
    assert_eq!(bad_format.text(), TRANSCRIPT_029);
    // 030-038.
    let cases: [(&str, u16, usize, &str); 9] = [
        (
            r#"{"name":"x","min_ram":"512"}"#,
            400,
            513,
            "&#x27;512&#x27; is not of type &#x27;integer&#x27;\n\nFailed validating &#x27;type&#x27; in schema[&#x27;properties&#x27;][&#x27;min_ram&#x27;]:\n    {&#x27;type&#x27;: &#x27;integer&#x27;,\n     &#x27;description&#x27;: &#x27;Amount of ram (in MB) required to boot image.&#x27;}\n\nOn instance[&#x27;min_ram&#x27;]:\n    &#x27;512&#x27;<br /><br />",
        ),
        (
            r#"{"name":"x","min_ram":-1}"#,
            400,
            216,
            "Invalid value &#x27;-1&#x27; for parameter &#x27;min_ram&#x27;: Cannot be a negative value",
        ),
        (
            r#"{"name":"x","my_int":5}"#,
            400,
            382,
            "5 is not of type &#x27;string&#x27;\n\nFailed validating &#x27;type&#x27; in schema[&#x27;additionalProperties&#x27;]:\n    {&#x27;type&#x27;: &#x27;string&#x27;}\n\nOn instance[&#x27;my_int&#x27;]:\n    5<br /><br />",
        ),
        (
            r#"{"name":"x","status":"active"}"#,
            403,
            164,
            "Attribute &#x27;status&#x27; is read-only.",
        ),
        (
            r#"{"name":"x","checksum":"abc"}"#,
            403,
            166,
            "Attribute &#x27;checksum&#x27; is read-only.",
        ),
        (
            r#"{"name":"x","os_glance_foo":"bar"}"#,
            403,
            205,
            "Access was denied to this resource.<br /><br />\nAttribute &#x27;os_glance_foo&#x27; is reserved.\n\n\n </body>",
        ),
        (
            r#"{"name":"x","visibility":"public"}"#,
            403,
            180,
            "You are not authorized to complete publicize_image action.",
        ),
        (
            r#"{"name":"x","owner":"b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2"}"#,
            403,
            249,
            "Access was denied to this resource.<br /><br />\nYou are not permitted to create images owned by &#x27;b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2&#x27;\n\n\n </body>",
        ),
        (
            r#"{"name":"x","locations":[]}"#,
            403,
            166,
            "Attribute &#x27;locations&#x27; is reserved.",
        ),
    ];
    for (body, status, length, message) in cases {
        expect_error(
            &mock.post_raw(Who::A, "/v2/images", body).await,
            status,
            length,
            message,
        );
    }
    // 039, 040 and an empty body.
    expect_error(
        &mock.post_raw(Who::A, "/v2/images", r#"{"name": "#).await,
        400,
        157,
        "Malformed JSON in request body.",
    );
    expect_error(
        &mock.post_raw(Who::A, "/v2/images", "[1,2]").await,
        500,
        228,
        "The server has either erred",
    );
    expect_error(
        &mock.post_raw(Who::A, "/v2/images", "").await,
        400,
        151,
        "Body expected in request.",
    );
    expect_error(
        &mock.post_raw(Who::A, "/v2/images", "\"text\"").await,
        400,
        167,
        "Unexpected body type. Expected list/dict.",
    );
    // 041, 042: the Content-Type of a create is not checked.
    let plain = mock
        .send(
            mock.request(Who::A, Method::POST, "/v2/images")
                .header("Content-Type", "text/plain")
                .body(r#"{"name":"text-plain"}"#),
        )
        .await;
    assert_eq!(plain.status, 201);
    let untyped = mock
        .send(
            mock.request(Who::A, Method::POST, "/v2/images")
                .body(r#"{"name":"no-ctype"}"#),
        )
        .await;
    assert_eq!(untyped.status, 201);
    // 043, 191, 194, 195.
    assert_eq!(
        mock.create(Who::A, json!({"name": "p", "protected": true})).await["protected"],
        true
    );
    assert_eq!(
        mock.create(Who::A, json!({"name": "c", "visibility": "community"}))
            .await["visibility"],
        "community"
    );
    assert_eq!(
        mock.create(Who::Admin, json!({"name": "P1", "visibility": "public"}))
            .await["owner"],
        ADMIN_PROJECT
    );
    assert_eq!(
        mock.create(Who::Admin, json!({"name": "for-B", "owner": B})).await["owner"],
        B
    );
    // A JSON error body when asked for.
    let json_error = mock
        .send(
            mock.request(Who::A, Method::POST, "/v2/images")
                .header("Accept", "application/json")
                .body(r#"{"name":"x","status":"active"}"#),
        )
        .await;
    assert_eq!(
        json_error.text(),
        r#"{"message": "Attribute 'status' is read-only.<br /><br />\n\n\n", "code": "403 Forbidden", "title": "Forbidden"}"#
    );
}

const TRANSCRIPT_029: &str = "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  Provided object does not match schema &#x27;image&#x27;: &#x27;qcow3&#x27; is not one of [None, &#x27;ami&#x27;, &#x27;ari&#x27;, &#x27;aki&#x27;, &#x27;vhd&#x27;, &#x27;vhdx&#x27;, &#x27;vmdk&#x27;, &#x27;raw&#x27;, &#x27;qcow2&#x27;, &#x27;vdi&#x27;, &#x27;iso&#x27;, &#x27;ploop&#x27;]\n\nFailed validating &#x27;enum&#x27; in schema[&#x27;properties&#x27;][&#x27;disk_format&#x27;]:\n    {&#x27;type&#x27;: [&#x27;null&#x27;, &#x27;string&#x27;],\n     &#x27;description&#x27;: &#x27;Format of the disk&#x27;,\n     &#x27;enum&#x27;: [None,\n              &#x27;ami&#x27;,\n              &#x27;ari&#x27;,\n              &#x27;aki&#x27;,\n              &#x27;vhd&#x27;,\n              &#x27;vhdx&#x27;,\n              &#x27;vmdk&#x27;,\n              &#x27;raw&#x27;,\n              &#x27;qcow2&#x27;,\n              &#x27;vdi&#x27;,\n              &#x27;iso&#x27;,\n              &#x27;ploop&#x27;]}\n\nOn instance[&#x27;disk_format&#x27;]:\n    &#x27;qcow3&#x27;<br /><br />\n\n\n\n </body>\n</html>";

// ---------------------------------------------------------------- list

/// Ids and `next` link of a list answer.
fn page_of(answer: &Answer) -> (Vec<String>, Option<String>) {
    let body = answer.json();
    let ids = body["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (ids, body["next"].as_str().map(str::to_owned))
}

fn names_of(answer: &Answer) -> Vec<String> {
    answer.json()["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .map(|i| i["name"].as_str().unwrap_or("<null>").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn list_pagination_under_a_prefix() {
    let options = Options {
        prefix: "/image".to_owned(),
        limit_default: 4,
        limit_max: 6,
        ..Options::default()
    };
    let mock = Mock::start_with(options).await;
    assert_eq!(
        mock.handle.url(),
        format!("http://127.0.0.1:{}/image", mock.handle.addr().port())
    );
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(
            mock.create_id(
                Who::A,
                json!({"name": format!("bulk-{i:02}"), "disk_format": "raw", "container_format": "bare"}),
            )
            .await,
        );
    }
    ids.reverse();
    let b_image = mock.create_id(Who::B, json!({"name": "B1-private"})).await;

    // 045: default page size, links without the prefix.
    let first = mock.get(Who::A, "/v2/images").await;
    let body = first.json();
    assert_eq!(body["first"], "/v2/images");
    assert_eq!(body["schema"], "/v2/schemas/images");
    assert_eq!(
        page_of(&first),
        (ids[..4].to_vec(), Some(format!("/v2/images?marker={}", ids[3])))
    );
    assert_eq!(keys(&body), ["images", "first", "schema", "next"]);

    // 046-048, 050: following `next` (relative to the endpoint, i.e. after the prefix).
    let mut seen = Vec::new();
    let mut link = "/v2/images?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let answer = mock.get(Who::A, &link).await;
        assert_eq!(answer.json()["first"], "/v2/images?limit=3");
        let (page, next) = page_of(&answer);
        seen.extend(page);
        pages += 1;
        match next {
            Some(next) => link = next,
            None => break,
        }
    }
    assert_eq!((seen, pages), (ids.clone(), 4));
    let full_last_page = mock.get(Who::A, &format!("/v2/images?limit=2&marker={}", ids[7])).await;
    assert_eq!(
        page_of(&full_last_page),
        (ids[8..].to_vec(), Some(format!("/v2/images?limit=2&marker={}", ids[9])))
    );
    assert_eq!(
        page_of(&mock.get(Who::A, &format!("/v2/images?limit=2&marker={}", ids[9])).await),
        (vec![], None)
    );

    // 049 and limits-api_limit_max-3: clamped, the link keeps the asked limit.
    let clamped = mock.get(Who::A, "/v2/images?limit=5000").await;
    assert_eq!(
        page_of(&clamped),
        (
            ids[..6].to_vec(),
            Some(format!("/v2/images?limit=5000&marker={}", ids[5]))
        )
    );
    // 051, 052, 053.
    assert_eq!(
        mock.get(Who::A, "/v2/images?limit=0").await.text(),
        r#"{"images": [], "first": "/v2/images?limit=0", "schema": "/v2/schemas/images"}"#
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?limit=-1").await,
        400,
        154,
        "limit param must be positive",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?limit=abc").await,
        400,
        156,
        "limit param must be an integer",
    );
    // 054, 055, and markers the caller may not see.
    expect_error(
        &mock
            .get(Who::A, "/v2/images?marker=99999999-9999-4999-8999-999999999999")
            .await,
        400,
        185,
        "No image found with ID 99999999-9999-4999-8999-999999999999",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?marker=zzz").await,
        400,
        152,
        "No image found with ID zzz",
    );
    let hidden = mock.get(Who::A, &format!("/v2/images?marker={b_image}")).await;
    assert_eq!(hidden.status, 403);
    assert!(
        hidden
            .text()
            .contains(&format!("Forbidding request, image {b_image} not visible"))
    );

    // 058, 059, 060: sorting and link encoding.
    let by_name = mock.get(Who::A, "/v2/images?sort=name:asc&limit=2").await;
    assert_eq!(names_of(&by_name), ["bulk-01", "bulk-02"]);
    assert_eq!(by_name.json()["first"], "/v2/images?sort=name%3Aasc&limit=2");
    assert_eq!(
        by_name.json()["next"],
        format!("/v2/images?sort=name%3Aasc&limit=2&marker={}", ids[8])
    );
    let next = mock
        .get(Who::A, &format!("/v2/images?sort=name%3Aasc&limit=2&marker={}", ids[8]))
        .await;
    assert_eq!(names_of(&next), ["bulk-03", "bulk-04"]);
    let desc = mock.get(Who::A, "/v2/images?sort_key=name&sort_dir=desc&limit=2").await;
    assert_eq!(names_of(&desc), ["bulk-10", "bulk-09"]);
    assert_eq!(desc.json()["first"], "/v2/images?sort_key=name&sort_dir=desc&limit=2");
    expect_error(
        &mock.get(Who::A, "/v2/images?sort_key=bogus").await,
        400,
        262,
        "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
    );
    let asc = mock.get(Who::A, "/v2/images?sort_dir=asc&limit=3").await;
    assert_eq!(page_of(&asc).0, ids.iter().rev().take(3).cloned().collect::<Vec<_>>());
    let mut by_id = ids.clone();
    by_id.sort();
    let first_by_id = mock.get(Who::A, "/v2/images?sort_key=id&sort_dir=asc&limit=3").await;
    assert_eq!(page_of(&first_by_id).0, by_id[..3]);
    let next_by_id = mock
        .get(
            Who::A,
            &format!("/v2/images?sort_key=id&sort_dir=asc&limit=3&marker={}", by_id[2]),
        )
        .await;
    assert_eq!(page_of(&next_by_id).0, by_id[3..6]);
    let mixed = mock.get(Who::A, "/v2/images?sort=status:asc,name:desc&limit=2").await;
    assert_eq!(names_of(&mixed), ["bulk-10", "bulk-09"]);
    let mixed_next = mock
        .get(
            Who::A,
            &format!("/v2/images?sort=status:asc,name:desc&limit=2&marker={}", ids[1]),
        )
        .await;
    assert_eq!(names_of(&mixed_next), ["bulk-08", "bulk-07"]);
    expect_error(
        &mock.get(Who::A, "/v2/images?sort=name&sort_key=id").await,
        400,
        171,
        "Old and new sorting syntax cannot be combined",
    );

    // Outside the prefix there is no Glance.
    let outside = mock
        .send(mock.client.get(format!("http://{}/v2/images", mock.handle.addr())))
        .await;
    assert_eq!(outside.status, 404);
    // 216: forwarded headers change nothing.
    let forwarded = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images?limit=1")
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "images.example.test"),
        )
        .await;
    assert_eq!(
        forwarded.json()["next"],
        format!("/v2/images?limit=1&marker={}", ids[0])
    );
}

#[tokio::test]
async fn list_filters_and_visibility() {
    let mock = Mock::start().await;
    let a1 = mock
        .create_id(
            Who::A,
            json!({"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512}),
        )
        .await;
    let a2 = mock
        .create_id(
            Who::A,
            json!({"name": "A2", "disk_format": "raw", "hw_disk_bus": "virtio"}),
        )
        .await;
    let fixed = mock
        .create_id(
            Who::A,
            json!({"name": "fixed", "disk_format": "raw", "container_format": "bare", "tags": ["t1", "t2"]}),
        )
        .await;
    let community = mock
        .create_id(Who::A, json!({"name": "C1", "visibility": "community"}))
        .await;
    let hidden = mock
        .create_id(Who::A, json!({"name": "hidden", "os_hidden": true}))
        .await;
    let b1 = mock.create_id(Who::B, json!({"name": "B1"})).await;
    let public = mock
        .create_id(Who::Admin, json!({"name": "P1", "visibility": "public"}))
        .await;
    let _ownerless = mock.create_id(Who::NoProject, json!({"name": "no-project"})).await;

    let ids = |answer: Answer| page_of(&answer).0;
    // Default views: own + public (+ own community), never hidden ones.
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images").await),
        [public.clone(), community.clone(), fixed.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(ids(mock.get(Who::B, "/v2/images").await), [public.clone(), b1.clone()]);
    // 199: admins see everything but other projects' community images.
    assert_eq!(ids(mock.get(Who::Admin, "/v2/images?limit=3").await).len(), 3);
    assert!(!ids(mock.get(Who::Admin, "/v2/images").await).contains(&community));
    // 193: community images on request.
    assert_eq!(
        ids(mock.get(Who::B, "/v2/images?visibility=community").await),
        vec![community.clone()]
    );
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images?os_hidden=true").await),
        vec![hidden.clone()]
    );
    // 056, 057, 061, 062, 063, 064.
    let by_name = mock.get(Who::A, "/v2/images?name=cirros-A1").await;
    assert_eq!(
        (
            ids(by_name),
            mock.get(Who::A, "/v2/images?name=cirros-A1").await.json()["first"].clone()
        ),
        (vec![a1.clone()], json!("/v2/images?name=cirros-A1"))
    );
    assert_eq!(ids(mock.get(Who::A, "/v2/images?status=queued&limit=2").await).len(), 2);
    assert_eq!(ids(mock.get(Who::A, "/v2/images?tag=t1").await), vec![fixed.clone()]);
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images?tag=t1&tag=t2").await),
        vec![fixed.clone()]
    );
    assert!(ids(mock.get(Who::A, "/v2/images?tag=t1&tag=zz").await).is_empty());
    // `first` comes from a dict of the parameters: one entry per key, last value.
    assert_eq!(
        mock.get(Who::A, "/v2/images?tag=t1&tag=t2").await.json()["first"],
        "/v2/images?tag=t2"
    );
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images?hw_disk_bus=virtio").await),
        vec![a2.clone()]
    );
    assert_eq!(
        mock.get(Who::A, "/v2/images?size_min=1").await.text(),
        r#"{"images": [], "first": "/v2/images?size_min=1", "schema": "/v2/schemas/images"}"#
    );
    assert_eq!(
        mock.get(Who::A, "/v2/images?limit=1&foo=bar").await.text(),
        r#"{"images": [], "first": "/v2/images?limit=1&foo=bar", "schema": "/v2/schemas/images"}"#
    );
    // Operators of the filtering syntax.
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images?disk_format=in:qcow2,raw").await),
        [fixed.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images?name=in:%22cirros-A1%22,nope").await),
        vec![a1.clone()]
    );
    assert_eq!(ids(mock.get(Who::A, "/v2/images?min_ram=512").await), vec![a1.clone()]);
    assert_eq!(
        ids(mock.get(Who::A, "/v2/images?created_at=gte:2000-01-01T00:00:00Z").await).len(),
        5
    );
    assert!(ids(mock.get(Who::A, "/v2/images?created_at=lt:2000-01-01T00:00:00Z").await).is_empty());
    // 200: admin filtering by owner.
    assert_eq!(
        ids(mock.get(Who::Admin, &format!("/v2/images?owner={B}")).await),
        vec![b1.clone()]
    );
    // Rejected filters.
    expect_error(
        &mock.get(Who::A, "/v2/images?visibility=bogus").await,
        400,
        157,
        "Invalid visibility value: bogus",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?member_status=bogus").await,
        400,
        147,
        "Invalid status: bogus",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?name=foo:bar").await,
        400,
        179,
        "Unable to filter by unknown operator &#x27;foo&#x27;.",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?size_min=big").await,
        400,
        179,
        "Unable to filter on a range with a non-numeric value.",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?protected=maybe").await,
        400,
        247,
        "Invalid value &#x27;maybe&#x27; for &#x27;protected&#x27; filter. Valid values are &#x27;true&#x27; or &#x27;false&#x27;.",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images?changes-since=x").await,
        400,
        192,
        "The &quot;changes-since&quot; filter is no longer available on v2.",
    );
    // Parameter validation happens before the policy check, filters after it.
    expect_error(
        &mock.get(Who::AMember, "/v2/images?limit=x").await,
        400,
        156,
        "limit param must be an integer",
    );
    expect_error(
        &mock.get(Who::AMember, "/v2/images?size_min=x").await,
        403,
        175,
        "get_images action",
    );
}

// ---------------------------------------------------------------- show, visibility, members

#[tokio::test]
async fn visibility_between_projects_and_sharing() {
    let mock = Mock::start().await;
    let a1 = mock.create_id(Who::A, json!({"name": "cirros-A1"})).await;
    // 065, 178, 179, 180, 181, 102, 122.
    assert_eq!(mock.show(Who::A, &a1).await["name"], "cirros-A1");
    expect_error(
        &mock.get(Who::B, &format!("/v2/images/{a1}")).await,
        404,
        181,
        &format!("No image found with ID {a1}"),
    );
    let as_json = mock
        .send(
            mock.request(Who::B, Method::GET, &format!("/v2/images/{a1}"))
                .header("Accept", "application/json"),
        )
        .await;
    assert_eq!(
        as_json.text(),
        format!(
            r#"{{"message": "No image found with ID {a1}<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}}"#
        )
    );
    assert_eq!(as_json.body.len(), 139);
    expect_error(
        &mock.delete(Who::B, &format!("/v2/images/{a1}")).await,
        404,
        189,
        &format!("Failed to find image {a1} to delete"),
    );
    expect_error(
        &mock
            .upload(Who::B, &a1, "application/octet-stream", vec![1, 2, 3])
            .await,
        404,
        181,
        "No image found with ID",
    );
    expect_error(
        &mock
            .patch(Who::B, &a1, r#"[{"op":"replace","path":"/name","value":"hijack"}]"#)
            .await,
        404,
        181,
        "No image found with ID",
    );
    expect_error(
        &mock.get(Who::B, &format!("/v2/images/{a1}/file")).await,
        404,
        181,
        "No image found with ID",
    );
    // 067-071.
    expect_error(
        &mock
            .get(Who::A, "/v2/images/99999999-9999-4999-8999-999999999999")
            .await,
        404,
        181,
        "No image found with ID 99999999",
    );
    expect_error(
        &mock.get(Who::A, "/v2/images/not-a-uuid").await,
        404,
        155,
        "No image found with ID not-a-uuid",
    );
    let malformed_json = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images/not-a-uuid")
                .header("Accept", "application/json"),
        )
        .await;
    assert_eq!(
        malformed_json.text(),
        r#"{"message": "No image found with ID not-a-uuid<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#
    );
    expect_error(
        &mock.get(Who::A, &format!("/v2/images/{a1}/")).await,
        404,
        154,
        "The resource could not be found.",
    );
    // A body is refused on a show.
    let with_body = mock
        .send(
            mock.request(Who::A, Method::GET, &format!("/v2/images/{a1}"))
                .body("{}"),
        )
        .await;
    expect_error(&with_body, 400, 167, "A body is not expected with this request.");
    // Owner-less images are visible to anyone (though never listed).
    let ownerless = mock.create_id(Who::NoProject, json!({"name": "no-project"})).await;
    assert_eq!(mock.show(Who::B, &ownerless).await["owner"], Value::Null);

    // 182-189: sharing S1 with B.
    let s1 = mock
        .create_id(Who::A, json!({"name": "S1-shared", "visibility": "shared"}))
        .await;
    let added = mock
        .post_json(Who::A, &format!("/v2/images/{s1}/members"), &json!({"member": B}))
        .await;
    assert_eq!(added.status, 200);
    let member = added.json();
    assert_eq!(
        keys(&member),
        ["member_id", "image_id", "status", "created_at", "updated_at", "schema"]
    );
    assert_eq!(
        (member["member_id"].clone(), member["status"].clone()),
        (json!(B), json!("pending"))
    );
    assert_eq!(member["schema"], "/v2/schemas/member");
    let listed = mock.get(Who::A, &format!("/v2/images/{s1}/members")).await.json();
    assert_eq!(keys(&listed), ["members", "schema"]);
    assert_eq!(listed["members"][0]["member_id"], B);
    assert_eq!(
        mock.post_json(Who::A, &format!("/v2/images/{s1}/members"), &json!({"member": B}))
            .await
            .status,
        409
    );
    assert_eq!(mock.show(Who::B, &s1).await["name"], "S1-shared");
    let b1 = mock.create_id(Who::B, json!({"name": "B1"})).await;
    assert_eq!(page_of(&mock.get(Who::B, "/v2/images").await).0, vec![b1.clone()]);
    assert_eq!(
        page_of(&mock.get(Who::B, "/v2/images?visibility=shared").await).0,
        vec![b1.clone()]
    );
    assert_eq!(
        page_of(&mock.get(Who::B, "/v2/images?visibility=shared&member_status=all").await).0,
        [b1.clone(), s1.clone()]
    );
    assert_eq!(
        page_of(&mock.get(Who::B, "/v2/images?member_status=pending").await).0,
        [b1.clone(), s1.clone()]
    );
    // The owner cannot answer for the member; the member can.
    let by_owner = mock
        .send(
            mock.request(Who::A, Method::PUT, &format!("/v2/images/{s1}/members/{B}"))
                .body(r#"{"status":"accepted"}"#),
        )
        .await;
    expect_error(
        &by_owner,
        403,
        178,
        "You are not authorized to complete modify_member action.",
    );
    let bad_status = mock
        .send(
            mock.request(Who::B, Method::PUT, &format!("/v2/images/{s1}/members/{B}"))
                .body(r#"{"status":"maybe"}"#),
        )
        .await;
    assert_eq!(bad_status.status, 400);
    let accepted = mock
        .send(
            mock.request(Who::B, Method::PUT, &format!("/v2/images/{s1}/members/{B}"))
                .body(r#"{"status":"accepted"}"#),
        )
        .await;
    assert_eq!(accepted.json()["status"], "accepted");
    assert_eq!(
        page_of(&mock.get(Who::B, "/v2/images").await).0,
        [b1.clone(), s1.clone()]
    );
    assert_eq!(
        mock.get(Who::B, &format!("/v2/images/{s1}/members")).await.json()["members"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        mock.get(Who::B, &format!("/v2/images/{s1}/members/{B}")).await.json()["status"],
        "accepted"
    );
    // 190: a member may not modify the image.
    expect_error(
        &mock
            .patch(Who::B, &s1, r#"[{"op":"replace","path":"/name","value":"B-edit"}]"#)
            .await,
        403,
        177,
        "modify_image action",
    );
    // Members only exist on shared images.
    let private = mock
        .create_id(Who::A, json!({"name": "private", "visibility": "private"}))
        .await;
    expect_error(
        &mock
            .post_json(Who::A, &format!("/v2/images/{private}/members"), &json!({"member": B}))
            .await,
        403,
        199,
        &format!("Not allowed to create members for image {private}."),
    );
    assert_eq!(
        mock.delete(Who::A, &format!("/v2/images/{s1}/members/{B}"))
            .await
            .status,
        204
    );
    assert_eq!(mock.get(Who::B, &format!("/v2/images/{s1}")).await.status, 404);

    // 191-198: community and public images.
    let c1 = mock
        .create_id(Who::A, json!({"name": "C1", "visibility": "community"}))
        .await;
    assert_eq!(mock.show(Who::B, &c1).await["visibility"], "community");
    let p1 = mock
        .create_id(Who::Admin, json!({"name": "P1", "visibility": "public"}))
        .await;
    assert_eq!(mock.show(Who::B, &p1).await["visibility"], "public");
    expect_error(
        &mock
            .patch(Who::B, &p1, r#"[{"op":"replace","path":"/name","value":"B-edit"}]"#)
            .await,
        403,
        177,
        "modify_image action",
    );
    expect_error(
        &mock.delete(Who::B, &format!("/v2/images/{p1}")).await,
        403,
        177,
        "You are not authorized to complete delete_image action.",
    );
    // 201, 202: admins see every image.
    assert_eq!(mock.show(Who::Admin, &a1).await["owner"], A);
    assert_eq!(mock.show(Who::Admin, &b1).await["owner"], B);
}

// ---------------------------------------------------------------- patch

#[tokio::test]
async fn patch_rules() {
    let mock = Mock::start().await;
    let created = mock.create(Who::A, json!({"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512, "min_disk": 1})).await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let ok = |answer: Answer| {
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    };
    // 072-075.
    assert_eq!(
        ok(mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"replace","path":"/name","value":"cirros-A1-renamed"}]"#
            )
            .await)["name"],
        "cirros-A1-renamed"
    );
    let sizes = ok(mock
        .patch(
            Who::A,
            &id,
            r#"[{"op":"replace","path":"/min_ram","value":1024},{"op":"replace","path":"/min_disk","value":3}]"#,
        )
        .await);
    assert_eq!(
        (sizes["min_ram"].clone(), sizes["min_disk"].clone()),
        (json!(1024), json!(3))
    );
    let formats = ok(mock.patch(Who::A, &id, r#"[{"op":"replace","path":"/disk_format","value":"raw"},{"op":"replace","path":"/container_format","value":"ovf"}]"#).await);
    assert_eq!(
        (formats["disk_format"].clone(), formats["container_format"].clone()),
        (json!("raw"), json!("ovf"))
    );
    ok(mock.patch(Who::A, &id, r#"[{"op":"replace","path":"/disk_format","value":"qcow2"},{"op":"replace","path":"/container_format","value":"bare"}]"#).await);
    // 076-078: custom properties come first, in insertion order.
    let added = ok(mock.patch(Who::A, &id, r#"[{"op":"add","path":"/os_distro","value":"cirros"},{"op":"add","path":"/copy_from","value":"http://example.invalid/x.img"}]"#).await);
    assert_eq!(keys(&added)[..3], ["os_distro", "copy_from", "name"].map(str::to_owned));
    assert_eq!(
        ok(mock
            .patch(Who::A, &id, r#"[{"op":"add","path":"/os_distro","value":"cirros2"}]"#)
            .await)["os_distro"],
        "cirros2"
    );
    let removed = ok(mock
        .patch(Who::A, &id, r#"[{"op":"remove","path":"/copy_from"}]"#)
        .await);
    assert_eq!(keys(&removed)[..2], ["os_distro", "name"].map(str::to_owned));
    // 079-081.
    let conflict = "There was a conflict when trying to complete your request.<br /><br />\nProperty does_not_exist does not exist.\n\n\n </body>";
    expect_error(
        &mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"replace","path":"/does_not_exist","value":"x"}]"#,
            )
            .await,
        409,
        217,
        conflict,
    );
    expect_error(
        &mock
            .patch(Who::A, &id, r#"[{"op":"remove","path":"/does_not_exist"}]"#)
            .await,
        409,
        217,
        conflict,
    );
    expect_error(
        &mock.patch(Who::A, &id, r#"[{"op":"remove","path":"/name"}]"#).await,
        403,
        190,
        "Access was denied to this resource.<br /><br />\nProperty name may not be removed.",
    );
    // 082, 083: the exact 415 page and its Accept-Patch header.
    let wrong_type = mock
        .patch_as(
            Who::A,
            &id,
            "application/json",
            r#"[{"op":"replace","path":"/name","value":"nope"}]"#,
        )
        .await;
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.header_names()[0], "accept-patch");
    assert_eq!(
        wrong_type.header("accept-patch"),
        Some("application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch")
    );
    assert_eq!(
        wrong_type.text(),
        "<html>\n <head>\n  <title>415 Unsupported Media Type</title>\n </head>\n <body>\n  <h1>415 Unsupported Media Type</h1>\n  The request media type application/json is not supported by this server.\n<br /><br />\nImage PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch\n </body>\n</html>"
    );
    assert_eq!(
        mock.patch_as(Who::A, &id, "application/json-patch+json", "[]")
            .await
            .body
            .len(),
        361
    );
    // 084: the draft-4 dialect.
    let v20 = mock
        .patch_as(
            Who::A,
            &id,
            "application/openstack-images-v2.0-json-patch",
            r#"[{"replace":"/name","value":"cirros-A1-v20"}]"#,
        )
        .await;
    assert_eq!(ok(v20)["name"], "cirros-A1-v20");
    let v20_add = mock
        .patch_as(
            Who::A,
            &id,
            "application/openstack-images-v2.0-json-patch",
            r#"[{"add":"/os_distro","value":"x"}]"#,
        )
        .await;
    expect_error(&v20_add, 409, 213, "Property os_distro already present.");
    // 085-095, 100.
    let cases: [(&str, u16, usize, &str); 11] = [
        (
            r#"{"op":"replace","path":"/name","value":"x"}"#,
            400,
            181,
            "Request body must be a JSON array of operation objects.",
        ),
        (
            r#"[{"op":"move","from":"/name","path":"/foo"}]"#,
            400,
            207,
            "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
        ),
        (
            r#"[{"op":"replace","path":"name","value":"x"}]"#,
            400,
            175,
            "Pointer `name` does not start with &quot;/&quot;.",
        ),
        (r#"[{"op":"#, 400, 157, "Malformed JSON in request body."),
        (
            r#"[{"op":"replace","path":"/name"}]"#,
            400,
            198,
            "Operation &quot;replace&quot; requires a member named &quot;value&quot;.",
        ),
        (
            r#"[{"op":"replace","path":"/status","value":"active"}]"#,
            403,
            164,
            "Attribute &#x27;status&#x27; is read-only.",
        ),
        (
            r#"[{"op":"replace","path":"/id","value":"11111111-2222-4333-8444-000000000000"}]"#,
            403,
            160,
            "Attribute &#x27;id&#x27; is read-only.",
        ),
        (
            r#"[{"op":"add","path":"/my_int","value":5}]"#,
            400,
            382,
            "5 is not of type &#x27;string&#x27;",
        ),
        (
            r#"[{"op":"replace","path":"/disk_format","value":"qcow3"}]"#,
            400,
            1074,
            "&#x27;qcow3&#x27; is not one of [None",
        ),
        (
            r#"[{"op":"add","path":"/tags/-","value":"newtag"}]"#,
            400,
            185,
            "Invalid JSON pointer for this resource: &#x27;/tags/-&#x27;",
        ),
        (
            r#"[{"op":"test","path":"/name","value":"cirros-A1-v20"}]"#,
            400,
            207,
            "Invalid operation: `test`.",
        ),
    ];
    for (body, status, length, message) in cases {
        expect_error(&mock.patch(Who::A, &id, body).await, status, length, message);
    }
    // 094: publicizing needs an admin; an admin may.
    expect_error(
        &mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"replace","path":"/visibility","value":"public"}]"#,
            )
            .await,
        403,
        180,
        "publicize_image action",
    );
    // A failing operation leaves earlier ones unapplied.
    let partial = mock
        .patch(
            Who::A,
            &id,
            r#"[{"op":"replace","path":"/name","value":"partial"},{"op":"remove","path":"/nope"}]"#,
        )
        .await;
    assert_eq!(partial.status, 409);
    assert_eq!(mock.show(Who::A, &id).await["name"], "cirros-A1-v20");
    // 096-099: tags.
    assert_eq!(
        ok(mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"replace","path":"/tags","value":["alpha","beta","alpha"]}]"#
            )
            .await)["tags"],
        json!(["alpha", "beta"])
    );
    let put_tag = mock
        .send(mock.request(Who::A, Method::PUT, &format!("/v2/images/{id}/tags/gamma")))
        .await;
    assert_eq!((put_tag.status, put_tag.header("content-type")), (204, Some(HTML)));
    assert_eq!(
        mock.delete(Who::A, &format!("/v2/images/{id}/tags/alpha")).await.status,
        204
    );
    expect_error(
        &mock.delete(Who::A, &format!("/v2/images/{id}/tags/nope")).await,
        404,
        154,
        "The resource could not be found.",
    );
    assert_eq!(mock.show(Who::A, &id).await["tags"], json!(["beta", "gamma"]));
    let long_tag = mock
        .send(mock.request(
            Who::A,
            Method::PUT,
            &format!("/v2/images/{id}/tags/{}", "t".repeat(256)),
        ))
        .await;
    assert_eq!(long_tag.status, 400);
    assert!(
        long_tag
            .text()
            .contains("schema[&#x27;properties&#x27;][&#x27;tags&#x27;][&#x27;items&#x27;]")
    );
    // 101: an empty patch changes nothing, not even updated_at.
    let before = mock.show(Who::A, &id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ok(mock.patch(Who::A, &id, "[]").await), before);
    let touched = ok(mock
        .patch(Who::A, &id, r#"[{"op":"replace","path":"/name","value":"touched"}]"#)
        .await);
    assert_ne!(touched["updated_at"], before["updated_at"]);
    assert_eq!(touched["created_at"], before["created_at"]);
    // 103: readers may not modify.
    expect_error(
        &mock
            .patch(
                Who::AReader,
                &id,
                r#"[{"op":"replace","path":"/name","value":"reader"}]"#,
            )
            .await,
        403,
        177,
        "modify_image action",
    );
    // Owners are changed by admins only; locations are not exposed.
    expect_error(
        &mock
            .patch(
                Who::A,
                &id,
                &format!(r#"[{{"op":"replace","path":"/owner","value":"{B}"}}]"#),
            )
            .await,
        403,
        198,
        "Owner can&#x27;t be updated by non admin.",
    );
    expect_error(
        &mock
            .patch(Who::A, &id, r#"[{"op":"replace","path":"/locations","value":[]}]"#)
            .await,
        403,
        192,
        "Cannot set locations to empty list.",
    );
    expect_error(
        &mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"add","path":"/locations/-","value":{"url":"http://x/y","metadata":{}}}]"#,
            )
            .await,
        403,
        188,
        "It&#x27;s not allowed to add locations if locations are invisible.",
    );
    expect_error(
        &mock
            .patch(Who::A, &id, r#"[{"op":"add","path":"/os_glance_x","value":"y"}]"#)
            .await,
        403,
        168,
        "Attribute &#x27;os_glance_x&#x27; is reserved.",
    );
    expect_error(
        &mock
            .patch(Who::A, &id, r#"[{"op":"replace","path":"/min_ram","value":-5}]"#)
            .await,
        400,
        216,
        "Cannot be a negative value",
    );
    // 111-113: formats are frozen once the image has data.
    assert_eq!(
        mock.upload(Who::A, &id, "application/octet-stream", qcow2(1 << 20, 4096))
            .await
            .status,
        204
    );
    expect_error(
        &mock
            .patch(Who::A, &id, r#"[{"op":"replace","path":"/disk_format","value":"raw"}]"#)
            .await,
        403,
        184,
        "Attribute disk_format can be only replaced for a queued image.",
    );
    expect_error(
        &mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"replace","path":"/container_format","value":"ovf"}]"#,
            )
            .await,
        403,
        189,
        "Attribute container_format can be only replaced for a queued image.",
    );
    assert_eq!(
        ok(mock
            .patch(
                Who::A,
                &id,
                r#"[{"op":"replace","path":"/name","value":"cirros-A1-active"}]"#
            )
            .await)["stores"],
        "fs1"
    );
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn delete_rules() {
    let mock = Mock::start().await;
    let protected = mock
        .create_id(Who::A, json!({"name": "A-protected", "protected": true}))
        .await;
    // 166, 167.
    let refusal = format!("Image {protected} is protected and cannot be deleted.");
    expect_error(
        &mock.delete(Who::A, &format!("/v2/images/{protected}")).await,
        403,
        200,
        &refusal,
    );
    expect_error(
        &mock.delete(Who::Admin, &format!("/v2/images/{protected}")).await,
        403,
        200,
        &refusal,
    );
    // 168, 169: 204 announced as HTML, without a body.
    let unprotected = mock
        .patch(
            Who::A,
            &protected,
            r#"[{"op":"replace","path":"/protected","value":false}]"#,
        )
        .await;
    assert_eq!(unprotected.json()["protected"], false);
    let deleted = mock.delete(Who::A, &format!("/v2/images/{protected}")).await;
    assert_eq!(
        (deleted.status, deleted.header("content-type"), deleted.body.len()),
        (204, Some(HTML), 0)
    );
    assert!(deleted.header("x-openstack-request-id").is_some());
    // 170-172.
    expect_error(
        &mock.delete(Who::A, &format!("/v2/images/{protected}")).await,
        404,
        189,
        &format!("Failed to find image {protected} to delete"),
    );
    expect_error(
        &mock.get(Who::A, &format!("/v2/images/{protected}")).await,
        404,
        181,
        "No image found with ID",
    );
    expect_error(
        &mock.get(Who::Admin, &format!("/v2/images/{protected}")).await,
        404,
        181,
        "No image found with ID",
    );
    // Deleted ids are never reused.
    let reuse = mock
        .post_json(Who::A, "/v2/images", &json!({"id": protected, "name": "again"}))
        .await;
    assert_eq!(reuse.status, 409);
    // 173-176.
    let b1 = mock.create_id(Who::B, json!({"name": "B1"})).await;
    expect_error(
        &mock.delete(Who::A, &format!("/v2/images/{b1}")).await,
        404,
        189,
        &format!("Failed to find image {b1} to delete"),
    );
    let a3 = mock.create_id(Who::A, json!({})).await;
    expect_error(
        &mock.delete(Who::AReader, &format!("/v2/images/{a3}")).await,
        403,
        177,
        "You are not authorized to complete delete_image action.",
    );
    expect_error(
        &mock.delete(Who::A, "/v2/images/not-a-uuid").await,
        404,
        163,
        "Failed to find image not-a-uuid to delete",
    );
    assert_eq!(mock.delete(Who::A, &format!("/v2/images/{a3}")).await.status, 204);
    // Admins delete anybody's image.
    assert_eq!(mock.delete(Who::Admin, &format!("/v2/images/{b1}")).await.status, 204);
}

// ---------------------------------------------------------------- image data

#[tokio::test]
async fn upload_and_download() {
    let mock = Mock::start().await;
    let id = mock
        .create_id(
            Who::A,
            json!({"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    // 104: no data yet.
    let nothing = mock.get(Who::A, &format!("/v2/images/{id}/file")).await;
    assert_eq!(
        (nothing.status, nothing.header("content-type"), nothing.body.len()),
        (204, None, 0)
    );
    // 105, 106, 107.
    let wrong = mock
        .upload(Who::A, &id, "application/json", b"{\"x\":1}".to_vec())
        .await;
    assert_eq!(wrong.status, 415);
    assert_eq!(
        wrong.text(),
        "<html>\n <head>\n  <title>415 Unsupported Media Type</title>\n </head>\n <body>\n  <h1>415 Unsupported Media Type</h1>\n  The request media type application/json is not supported by this server.\n<br /><br />\nInvalid content type application/json\n </body>\n</html>"
    );
    expect_error(
        &mock
            .upload(Who::AReader, &id, "application/octet-stream", vec![0; 10])
            .await,
        403,
        177,
        "upload_image action",
    );
    expect_error(
        &mock.upload(Who::B, &id, "application/octet-stream", vec![0; 10]).await,
        404,
        181,
        "No image found with ID",
    );
    // 108, 109.
    let data = qcow2(4_194_304, 200_000);
    let uploaded = mock.upload(Who::A, &id, "application/octet-stream", data.clone()).await;
    assert_eq!((uploaded.status, uploaded.header("content-type")), (204, Some(HTML)));
    let image = mock.show(Who::A, &id).await;
    let md5 = hex(&Md5::digest(&data));
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], json!(200_000));
    assert_eq!(image["virtual_size"], json!(4_194_304));
    assert_eq!(image["checksum"], json!(md5));
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["os_hash_value"], json!(hex(&Sha512::digest(&data))));
    let mut expected = core_keys();
    expected.push("stores".to_owned());
    assert_eq!(keys(&image), expected);
    assert_eq!(image["stores"], "fs1");
    // 110.
    expect_error(
        &mock.upload(Who::A, &id, "application/octet-stream", data.clone()).await,
        409,
        180,
        "Image status transition from active to saving is not allowed",
    );
    // 114: the data, with Content-MD5.
    let download = mock.get(Who::A, &format!("/v2/images/{id}/file")).await;
    assert_eq!(download.status, 200);
    assert_eq!(
        download.header_names()[..3],
        ["content-type", "content-md5", "content-length"].map(str::to_owned)
    );
    assert_eq!(download.header("content-md5"), Some(md5.as_str()));
    assert_eq!(download.body.as_ref(), data.as_slice());
    // 115: HEAD is not a GET here.
    let head = mock
        .send(mock.request(Who::A, Method::HEAD, &format!("/v2/images/{id}/file")))
        .await;
    assert_eq!(
        (head.status, head.header("allow"), head.header("content-length")),
        (405, Some("GET, PUT"), Some("0"))
    );
    // 116-121: ranges.
    let range = |spec: &'static str| {
        mock.send(
            mock.request(Who::A, Method::GET, &format!("/v2/images/{id}/file"))
                .header("Range", spec),
        )
    };
    let first = range("bytes=0-99").await;
    assert_eq!(
        (first.status, first.header("content-range")),
        (206, Some("bytes 0-99/200000"))
    );
    assert_eq!(first.body.as_ref(), &data[..100]);
    let suffix = range("bytes=-100").await;
    assert_eq!(
        (suffix.header("content-range"), suffix.body.as_ref()),
        (Some("bytes 199900-199999/200000"), &data[199_900..])
    );
    let open = range("bytes=199900-").await;
    assert_eq!(open.header("content-range"), Some("bytes 199900-199999/200000"));
    expect_error(
        &range("bytes=0-9,20-29").await,
        400,
        237,
        "Requests with multiple ranges are not supported in Glance.",
    );
    let unsatisfiable = range("bytes=99999999-").await;
    assert_eq!(unsatisfiable.status, 416);
    assert!(unsatisfiable.text().contains(
        "The Range requested is not available.<br /><br />\nInvalid start position in Range header. Start position MUST be in the inclusive range [0, 199999].\n\n\n </body>"
    ));
    let legacy = mock
        .send(
            mock.request(Who::A, Method::GET, &format!("/v2/images/{id}/file"))
                .header("Content-Range", "bytes 0-99/*"),
        )
        .await;
    assert_eq!(
        (legacy.status, legacy.header("content-range"), legacy.body.len()),
        (206, Some("bytes 0-99/200000"), 100)
    );

    // 123, 124: bytes that are not qcow2 are refused, but Glance keeps their hashes.
    let a2 = mock
        .create_id(
            Who::A,
            json!({"name": "A2", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let garbage: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let refused = mock
        .upload(Who::A, &a2, "application/octet-stream", garbage.clone())
        .await;
    assert_eq!(refused.status, 415);
    assert_eq!(refused.body.len(), 281);
    assert!(
        refused
            .text()
            .ends_with("<br /><br />\nImage disk_format qcow2 does not match stream data raw\n </body>\n</html>")
    );
    let after = mock.show(Who::A, &a2).await;
    assert_eq!(
        (after["status"].clone(), after["size"].clone()),
        (json!("queued"), Value::Null)
    );
    assert_eq!(after["checksum"], json!(hex(&Md5::digest(&garbage))));
    assert_eq!(after["stores"], "fs1");
    // 125: formats first.
    let a3 = mock.create_id(Who::A, json!({})).await;
    expect_error(
        &mock
            .upload(Who::A, &a3, "application/octet-stream", garbage.clone())
            .await,
        400,
        200,
        "Properties disk_format, container_format must be set prior to saving data.",
    );
    // 126, 127: raw data, streamed (chunked).
    let raw = mock
        .create_id(
            Who::A,
            json!({"name": "fixed", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = garbage.chunks(65_536).map(|c| Ok(c.to_vec())).collect();
    let streamed = mock
        .send(
            mock.request(Who::A, Method::PUT, &format!("/v2/images/{raw}/file"))
                .header("Content-Type", "application/octet-stream")
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))),
        )
        .await;
    assert_eq!(streamed.status, 204);
    let raw_image = mock.show(Who::A, &raw).await;
    assert_eq!(
        (raw_image["size"].clone(), raw_image["virtual_size"].clone()),
        (json!(1_048_576), json!(1_048_576))
    );

    // 203-207: deactivation.
    assert_eq!(
        mock.send(mock.request(Who::A, Method::POST, &format!("/v2/images/{id}/actions/deactivate")))
            .await
            .status,
        204
    );
    expect_error(
        &mock.get(Who::A, &format!("/v2/images/{id}/file")).await,
        403,
        197,
        "The requested image has been deactivated. Image data download is forbidden.",
    );
    assert_eq!(mock.get(Who::Admin, &format!("/v2/images/{id}/file")).await.status, 200);
    assert_eq!(
        mock.send(mock.request(Who::Admin, Method::POST, &format!("/v2/images/{id}/actions/reactivate")))
            .await
            .status,
        204
    );
    assert_eq!(mock.show(Who::A, &id).await["status"], "active");
    let queued_deactivate = mock
        .send(mock.request(Who::A, Method::POST, &format!("/v2/images/{a3}/actions/deactivate")))
        .await;
    expect_error(
        &queued_deactivate,
        403,
        182,
        "Not allowed to deactivate image in status &#x27;queued&#x27;",
    );
    // Downloading needs `member`, even for the owner project.
    expect_error(
        &mock.get(Who::AReader, &format!("/v2/images/{id}/file")).await,
        403,
        179,
        "download_image action",
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let mock = Mock::start().await;
    let id = mock
        .create_id(
            Who::A,
            json!({"name": "big", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let answer = mock
        .upload(Who::A, &id, "application/octet-stream", vec![0u8; MAX_IMAGE_BYTES + 1])
        .await;
    assert_eq!(answer.status, 413);
    assert!(answer.text().contains("The incoming image is too large"));
    assert_eq!(mock.show(Who::A, &id).await["status"], "queued");
}

// ---------------------------------------------------------------- interoperable import

const OS_GLANCE_PROGRESS: [&str; 2] = ["os_glance_importing_to_stores", "os_glance_failed_import"];
const TASK_KEYS: [&str; 15] = [
    "id",
    "type",
    "status",
    "owner",
    "expires_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "image_id",
    "request_id",
    "user_id",
    "input",
    "result",
    "message",
];

fn garbage(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// A mock whose web-download filter admits the local file server on `port`.
async fn import_mock(port: u16) -> Mock {
    Mock::start_with(Options {
        web_download_allowed_hosts: Some(vec!["127.0.0.1".to_owned()]),
        web_download_allowed_ports: vec![80, 443, port],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn web_download_import_reaches_active() {
    let remote = qcow2(3_145_728, 300_000);
    let server = file_server(vec![("/remote.qcow2", remote.clone())]).await;
    let mock = import_mock(server.port()).await;
    let w1 = mock
        .create_id(
            Who::A,
            json!({"name": "W1-web-download", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let request =
        json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{}/remote.qcow2", server.port())}});
    // 133.
    let accepted = mock.import(Who::A, &w1, request.clone()).await;
    assert_eq!(
        (
            accepted.status,
            accepted.header("content-type"),
            accepted.header("content-length")
        ),
        (202, Some(HTML), Some("0"))
    );
    assert!(accepted.body.is_empty());
    let request_id = accepted.header("x-openstack-request-id").unwrap_or_default().to_owned();
    // 134: importing, with the import lock and progress properties first.
    let importing = mock.show(Who::A, &w1).await;
    assert_eq!(importing["status"], "importing");
    let mut expected = vec!["os_glance_import_task".to_owned()];
    expected.extend(OS_GLANCE_PROGRESS.map(str::to_owned));
    expected.extend(core_keys());
    assert_eq!(keys(&importing), expected);
    assert_eq!(
        (
            importing["os_glance_importing_to_stores"].clone(),
            importing["os_glance_failed_import"].clone()
        ),
        (json!("fs1"), json!(""))
    );
    let busy = mock.import(Who::A, &w1, request.clone()).await;
    expect_error(
        &busy,
        409,
        204,
        "Image needs to be in &#x27;queued&#x27; state to use &#x27;web-download&#x27; method",
    );
    // 136: active, lock released.
    let done = mock.wait_import(&w1).await;
    let mut expected: Vec<String> = OS_GLANCE_PROGRESS.map(str::to_owned).to_vec();
    expected.extend(core_keys());
    expected.push("stores".to_owned());
    assert_eq!(keys(&done), expected);
    assert_eq!(done["status"], "active");
    assert_eq!(done["size"], json!(300_000));
    assert_eq!(done["virtual_size"], json!(3_145_728));
    assert_eq!(done["checksum"], json!(hex(&Md5::digest(&remote))));
    assert_eq!(done["os_hash_value"], json!(hex(&Sha512::digest(&remote))));
    assert_eq!(
        (
            done["os_glance_importing_to_stores"].clone(),
            done["os_glance_failed_import"].clone()
        ),
        (json!(""), json!(""))
    );
    assert_eq!(
        mock.get(Who::A, &format!("/v2/images/{w1}/file")).await.body.as_ref(),
        remote.as_slice()
    );
    // The task record (shape of 153).
    let tasks = mock.get(Who::A, &format!("/v2/images/{w1}/tasks")).await;
    assert_eq!(
        tasks.header_names()[..2],
        ["content-type".to_owned(), "content-length".to_owned()]
    );
    let task = tasks.json()["tasks"][0].clone();
    assert_eq!(keys(&task), TASK_KEYS.map(str::to_owned));
    assert_eq!(
        (task["type"].clone(), task["status"].clone()),
        (json!("api_image_import"), json!("success"))
    );
    assert_eq!(
        (task["owner"].clone(), task["user_id"].clone(), task["image_id"].clone()),
        (json!(A), json!(USER), json!(w1))
    );
    assert_eq!(task["request_id"], json!(request_id));
    assert_eq!(
        task["input"],
        json!({"image_id": w1, "import_req": request, "backend": ["fs1"]})
    );
    assert_eq!(
        (task["result"].clone(), task["message"].clone()),
        (json!({"image_id": w1}), json!(""))
    );
    assert!(
        task["expires_at"]
            .as_str()
            .is_some_and(|t| t.len() == 26 && !t.ends_with('Z'))
    );
    // 137.
    expect_error(
        &mock.import(Who::A, &w1, request.clone()).await,
        409,
        172,
        "Image with status active cannot be target for import",
    );

    // 138: once data went through the store, the reserved stores are listed too.
    let created = mock
        .post_json(
            Who::A,
            "/v2/images",
            &json!({"name": "W2-filter-tests", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    assert_eq!(
        created.header("openstack-image-store-ids"),
        Some("fs1,os_glance_staging_store,os_glance_tasks_store")
    );
    let w2 = created.json()["id"].as_str().unwrap_or_default().to_owned();
    // 139-148: rejections.
    let web = |uri: &str| json!({"method": {"name": "web-download", "uri": uri}});
    let cases: [(Value, u16, usize, &str); 8] = [
        (
            web("http://127.0.0.1:9999/remote.qcow2"),
            400,
            206,
            "URI for web-download does not pass filtering: http://127.0.0.1:9999/remote.qcow2",
        ),
        (
            web("http://localhost:8765/remote.qcow2"),
            400,
            206,
            "URI for web-download does not pass filtering: http://localhost:8765/remote.qcow2",
        ),
        (
            web("file:///etc/passwd"),
            400,
            190,
            "URI for web-download does not pass filtering: file:///etc/passwd",
        ),
        (
            web("http://2130706433:8765/remote.qcow2"),
            400,
            207,
            "URI for web-download does not pass filtering: http://2130706433:8765/remote.qcow2",
        ),
        (
            json!({"method": {"name": "web-download"}}),
            400,
            176,
            "URI for web-download does not pass filtering: None",
        ),
        (
            json!({"method": {"name": "copy-from-moon", "uri": "http://127.0.0.1:8765/remote.qcow2"}}),
            400,
            180,
            "Unknown import method name &#x27;copy-from-moon&#x27;.",
        ),
        (
            json!({"method": {"name": "copy-image"}}),
            400,
            176,
            "Unknown import method name &#x27;copy-image&#x27;.",
        ),
        (
            json!({"method": {"name": "web-download", "uri": "http://127.0.0.1:8765/remote.qcow2"}, "stores": ["nope"]}),
            409,
            155,
            "Store for identifier nope not found",
        ),
    ];
    for (body, status, length, message) in cases {
        expect_error(&mock.import(Who::A, &w2, body).await, status, length, message);
    }
    let no_body = mock
        .send(
            mock.request(Who::A, Method::POST, &format!("/v2/images/{w2}/import"))
                .header("Content-Type", "application/json"),
        )
        .await;
    expect_error(&no_body, 400, 151, "Body expected in request.");
    expect_error(
        &mock
            .import(Who::B, &w2, web("http://127.0.0.1:8765/remote.qcow2"))
            .await,
        404,
        181,
        &format!("No image found with ID {w2}"),
    );
    expect_error(
        &mock
            .import(Who::AReader, &w2, web("http://127.0.0.1:8765/remote.qcow2"))
            .await,
        403,
        177,
        "modify_image action",
    );
    // 149: rejections leave no trace.
    let untouched = mock.show(Who::A, &w2).await;
    assert_eq!(
        (keys(&untouched), untouched["status"].clone()),
        (core_keys(), json!("queued"))
    );
    // 160.
    expect_error(
        &mock
            .import(Who::A, &w2, json!({"method": {"name": "glance-direct"}}))
            .await,
        409,
        196,
        "Image needs to be staged before &#x27;glance-direct&#x27; method can be used",
    );
}

#[tokio::test]
async fn failing_imports_return_to_queued_with_a_failed_task() {
    let remote = qcow2(1 << 20, 70_000);
    let server = file_server(vec![("/remote.qcow2", remote), ("/garbage.bin", garbage(1 << 20))]).await;
    let mock = import_mock(server.port()).await;
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let sources = [
        format!("http://127.0.0.1:{}/no-such-file.qcow2", server.port()),
        format!("http://127.0.0.1:{}/garbage.bin", server.port()),
    ];
    for uri in sources {
        let id = mock
            .create_id(
                Who::A,
                json!({"name": "W", "disk_format": "qcow2", "container_format": "bare"}),
            )
            .await;
        assert_eq!(
            mock.import(Who::A, &id, json!({"method": {"name": "web-download", "uri": uri}}))
                .await
                .status,
            202
        );
        // 152, 157.
        let failed = mock.wait_import(&id).await;
        let mut expected: Vec<String> = OS_GLANCE_PROGRESS.map(str::to_owned).to_vec();
        expected.extend(core_keys());
        assert_eq!(keys(&failed), expected, "{uri}");
        assert_eq!(
            (failed["status"].clone(), failed["checksum"].clone()),
            (json!("queued"), Value::Null)
        );
        assert_eq!(
            (
                failed["os_glance_importing_to_stores"].clone(),
                failed["os_glance_failed_import"].clone()
            ),
            (json!(""), json!("fs1"))
        );
        // 153, 158.
        let tasks = mock.get(Who::A, &format!("/v2/images/{id}/tasks")).await.json();
        let task = &tasks["tasks"][0];
        assert_eq!(
            (task["status"].clone(), task["result"].clone()),
            (json!("failure"), Value::Null)
        );
        assert_eq!(task["message"], "Task failed due to Internal Error");
        assert_eq!(task["input"]["import_req"]["method"]["uri"], json!(uri));
    }
    // An unreachable server fails the same way, and a failed image can be imported again.
    let id = mock
        .create_id(
            Who::A,
            json!({"name": "W4", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let unreachable = json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{closed_port}/x")}});
    let unreachable_mock = import_mock(closed_port).await;
    let other = unreachable_mock
        .create_id(
            Who::A,
            json!({"name": "W5", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    assert_eq!(unreachable_mock.import(Who::A, &other, unreachable).await.status, 202);
    assert_eq!(
        unreachable_mock.wait_import(&other).await["os_glance_failed_import"],
        "fs1"
    );
    let good =
        json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{}/remote.qcow2", server.port())}});
    let bad = json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{}/gone", server.port())}});
    assert_eq!(mock.import(Who::A, &id, bad).await.status, 202);
    assert_eq!(mock.wait_import(&id).await["status"], "queued");
    assert_eq!(mock.import(Who::A, &id, good).await.status, 202);
    let retried = mock.wait_import(&id).await;
    assert_eq!(
        (retried["status"].clone(), retried["os_glance_failed_import"].clone()),
        (json!("active"), json!(""))
    );
    let statuses: Vec<Value> = mock.get(Who::A, &format!("/v2/images/{id}/tasks")).await.json()["tasks"]
        .as_array()
        .map(|tasks| tasks.iter().map(|t| t["status"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, [json!("success"), json!("failure")]);
    // Tasks of an image the caller cannot see.
    expect_error(
        &mock.get(Who::B, &format!("/v2/images/{id}/tasks")).await,
        404,
        154,
        "The resource could not be found.",
    );
}

#[tokio::test]
async fn glance_direct_import() {
    let mock = Mock::start().await;
    let data = qcow2(4_194_304, 100_000);
    let id = mock
        .create_id(
            Who::A,
            json!({"name": "D1-glance-direct", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    // 161, 162.
    let staged = mock
        .send(
            mock.request(Who::A, Method::PUT, &format!("/v2/images/{id}/stage"))
                .header("Content-Type", "application/octet-stream")
                .body(data.clone()),
        )
        .await;
    assert_eq!((staged.status, staged.header("content-type")), (204, Some(HTML)));
    let uploading = mock.show(Who::A, &id).await;
    assert_eq!(
        (
            uploading["status"].clone(),
            uploading["size"].clone(),
            uploading["checksum"].clone()
        ),
        (json!("uploading"), json!(100_000), Value::Null)
    );
    // 163-165.
    assert_eq!(
        mock.import(Who::A, &id, json!({"method": {"name": "glance-direct"}}))
            .await
            .status,
        202
    );
    let done = mock.wait_import(&id).await;
    assert_eq!(
        (done["status"].clone(), done["virtual_size"].clone()),
        (json!("active"), json!(4_194_304))
    );
    assert_eq!(done["checksum"], json!(hex(&Md5::digest(&data))));
    assert_eq!(keys(&done)[..2], OS_GLANCE_PROGRESS.map(str::to_owned));
    // Without glance-direct enabled there is no staging.
    let web_only = Mock::start_with(Options {
        import_methods: vec!["web-download".to_owned()],
        ..Options::default()
    })
    .await;
    let other = web_only.create_id(Who::A, json!({"name": "x"})).await;
    let refused = web_only
        .send(
            web_only
                .request(Who::A, Method::PUT, &format!("/v2/images/{other}/stage"))
                .header("Content-Type", "application/octet-stream")
                .body("x"),
        )
        .await;
    assert_eq!(refused.status, 404);
    assert!(
        refused
            .text()
            .contains("&#x27;glance-direct&#x27; method is not available at this site.")
    );
    assert_eq!(
        web_only
            .post_json(Who::A, "/v2/images", &json!({}))
            .await
            .header("openstack-image-import-methods"),
        Some("web-download")
    );
}

// ---------------------------------------------------------------- faults and recording

#[tokio::test]
async fn fault_injection_and_recording() {
    let mock = Mock::start_with(Options {
        prefix: "/image".to_owned(),
        ..Options::default()
    })
    .await;
    mock.handle.inject(Fault {
        method: Some(Method::GET),
        path_suffix: Some("/v2/images".to_owned()),
        action: FaultAction::Respond {
            status: 503,
            content_type: "text/plain".to_owned(),
            body: "maintenance".to_owned(),
        },
    });
    // Neither the method nor the path of these match the fault.
    let id = mock.create_id(Who::A, json!({"name": "recorded"})).await;
    assert_eq!(mock.get(Who::A, &format!("/v2/images/{id}")).await.status, 200);
    let faulted = mock.get(Who::A, "/v2/images?limit=1").await;
    assert_eq!(
        (faulted.status, faulted.header("content-type"), faulted.text().as_str()),
        (503, Some("text/plain"), "maintenance")
    );
    assert_eq!(
        mock.get(Who::A, "/v2/images?limit=1").await.status,
        200,
        "a fault fires once"
    );

    // Faults queue up in order.
    for (status, body) in [(500, "first"), (502, "second")] {
        mock.handle.inject(Fault {
            method: None,
            path_suffix: None,
            action: FaultAction::Respond {
                status,
                content_type: "application/json".to_owned(),
                body: body.to_owned(),
            },
        });
    }
    assert_eq!(mock.get(Who::A, "/v2/info/usage").await.text(), "first");
    assert_eq!(mock.get(Who::A, "/v2/info/usage").await.text(), "second");

    // A delay, then normal handling.
    mock.handle.inject(Fault {
        method: None,
        path_suffix: Some("/v2/info/usage".to_owned()),
        action: FaultAction::Delay(Duration::from_millis(300)),
    });
    let started = Instant::now();
    let delayed = mock.get(Who::A, "/v2/info/usage").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed.text(), r#"{"usage": {}}"#);

    // A dropped connection.
    mock.handle.inject(Fault {
        method: Some(Method::DELETE),
        path_suffix: None,
        action: FaultAction::CloseConnection,
    });
    let dropped = mock
        .request(Who::A, Method::DELETE, &format!("/v2/images/{id}"))
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(
        mock.show(Who::A, &id).await["name"],
        "recorded",
        "the dropped request was not handled"
    );
    assert_eq!(mock.delete(Who::A, &format!("/v2/images/{id}")).await.status, 204);

    // Everything was recorded, faulted requests included.
    let log = mock.handle.take_requests();
    let summary: Vec<(String, String, Option<String>)> = log
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.query.clone()))
        .collect();
    let image_path = format!("/image/v2/images/{id}");
    let usage = ("GET".to_owned(), "/image/v2/info/usage".to_owned(), None);
    assert_eq!(
        summary,
        [
            ("POST".to_owned(), "/image/v2/images".to_owned(), None),
            ("GET".to_owned(), image_path.clone(), None),
            (
                "GET".to_owned(),
                "/image/v2/images".to_owned(),
                Some("limit=1".to_owned())
            ),
            (
                "GET".to_owned(),
                "/image/v2/images".to_owned(),
                Some("limit=1".to_owned())
            ),
            usage.clone(),
            usage.clone(),
            usage,
            ("DELETE".to_owned(), image_path.clone(), None),
            ("GET".to_owned(), image_path.clone(), None),
            ("DELETE".to_owned(), image_path, None),
        ]
    );
    let create = &log[0];
    assert_eq!(create.body.as_ref(), br#"{"name":"recorded"}"#);
    assert_eq!(create.header("X-Roles"), Some("member,reader"));
    assert_eq!(create.header("x-project-id"), Some(A));
    assert!(create.headers.iter().all(|(name, _)| *name == name.to_lowercase()));
    let names: Vec<&str> = create.headers.iter().map(|(n, _)| n.as_str()).collect();
    let position = |name: &str| names.iter().position(|n| *n == name);
    assert!(position("x-identity-status") < position("x-project-id") && position("x-project-id") < position("x-roles"));
    assert!(mock.handle.requests().is_empty(), "take_requests clears the log");
    mock.get(Who::A, "/v2/images").await;
    assert_eq!(mock.handle.requests().len(), 1);
    mock.handle.shutdown().await;
}

#[tokio::test]
async fn concurrent_clients() {
    let mock = Mock::start().await;
    let creations = (0..40).map(|i| mock.create_id(Who::A, json!({"name": format!("c-{i}")})));
    let ids = futures_util::future::join_all(creations).await;
    let listed = mock.get(Who::A, "/v2/images?limit=100").await;
    let mut seen = page_of(&listed).0;
    seen.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(seen, expected);
}

// ---------------------------------------------------------------- scale

#[tokio::test]
async fn a_hundred_thousand_images_page_quickly() {
    let mock = Mock::start().await;
    let started = Instant::now();
    let ids = mock.handle.seed_images(A, 100_000, "img-");
    let seeding = started.elapsed();
    assert_eq!(ids.len(), 100_000);
    assert!(seeding < Duration::from_secs(10), "seeding took {seeding:?}");

    // Every page of the default listing (newest first), following `next`.
    let mut link = "/v2/images?limit=1000".to_owned();
    let (mut count, mut slowest) = (0, Duration::ZERO);
    let paging = Instant::now();
    loop {
        let started = Instant::now();
        let answer = mock.get(Who::A, &link).await;
        slowest = slowest.max(started.elapsed());
        // Parsing 600 kB of JSON per page in a debug build would dominate the test.
        let text = answer.text();
        let page: Vec<&str> = text
            .split(r#""id": ""#)
            .skip(1)
            .filter_map(|rest| rest.get(..36))
            .collect();
        let next = text
            .split(r#""next": ""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
        let expected: Vec<&str> = ids.iter().rev().skip(count).take(1000).map(String::as_str).collect();
        assert_eq!(page, expected, "page after {count} images");
        count += page.len();
        match next {
            Some(next) if !page.is_empty() => link = next,
            _ => break,
        }
    }
    eprintln!(
        "seeding took {seeding:?}, 100 pages {:?}, slowest page {slowest:?}",
        paging.elapsed()
    );
    assert_eq!(count, 100_000);
    assert!(slowest < Duration::from_millis(900), "slowest page took {slowest:?}");

    // Deep pages of other orders, and a caller who sees none of them.
    let checks = [
        (
            Who::A,
            format!("/v2/images?marker={}", ids[50_000]),
            Some(ids[49_999].clone()),
        ),
        (
            Who::A,
            format!("/v2/images?sort=name:asc&marker={}", ids[70_000]),
            Some(ids[70_001].clone()),
        ),
        (
            Who::A,
            format!("/v2/images?sort_key=updated_at&sort_dir=asc&limit=5&marker={}", ids[10]),
            Some(ids[11].clone()),
        ),
        (Who::B, "/v2/images".to_owned(), None),
    ];
    for (who, path, first) in checks {
        let started = Instant::now();
        let answer = mock.get(who, &path).await;
        let elapsed = started.elapsed();
        assert_eq!(page_of(&answer).0.first(), first.as_ref(), "{path}");
        assert!(elapsed < Duration::from_millis(900), "{path} took {elapsed:?}");
    }
}

// ---------------------------------------------------------------- robustness

#[tokio::test]
async fn odd_requests_get_answers_not_panics() {
    let mock = Mock::start().await;
    let id = mock
        .create_id(
            Who::A,
            json!({"name": "target", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let image = format!("/v2/images/{id}");
    let import = format!("{image}/import");
    let deeply_nested = "[".repeat(100_000);
    let expectations: Vec<(Method, String, Option<&str>, &str, u16)> = vec![
        (Method::PATCH, image.clone(), Some(PATCH_V21), "[1]", 400),
        (
            Method::PATCH,
            image.clone(),
            Some(PATCH_V21),
            r#"[{"op":5,"path":"/x"}]"#,
            400,
        ),
        (
            Method::PATCH,
            image.clone(),
            Some(PATCH_V21),
            r#"[{"op":"add","path":["x"],"value":"y"}]"#,
            500,
        ),
        (
            Method::PATCH,
            image.clone(),
            Some(PATCH_V21),
            r#"[{"op":"add","path":"/","value":"y"}]"#,
            200,
        ),
        (Method::PATCH, image.clone(), Some(PATCH_V21), "\"str\"", 400),
        (
            Method::PATCH,
            image.clone(),
            Some("application/openstack-images-v2.0-json-patch"),
            r#"[{"add":"/a","remove":"/b"}]"#,
            400,
        ),
        (
            Method::PATCH,
            image.clone(),
            Some("application/openstack-images-v2.0-json-patch"),
            r#"[{"nothing":"/a"}]"#,
            400,
        ),
        (
            Method::PATCH,
            image.clone(),
            Some(PATCH_V21),
            r#"[{"op":"replace","path":"/name","value":"x","extra":{"deep":[1,2,{"a":null}]}}]"#,
            200,
        ),
        (
            Method::PATCH,
            image.clone(),
            Some(PATCH_V21),
            r#"[{"op":"replace","path":"/protected","value":"yes"}]"#,
            400,
        ),
        (
            Method::PATCH,
            image.clone(),
            Some(PATCH_V21),
            r#"[{"op":"replace","path":"/tags","value":[1]}]"#,
            400,
        ),
        (Method::POST, import.clone(), None, "[]", 500),
        (Method::POST, import.clone(), None, r#"{"method":"web-download"}"#, 500),
        (Method::POST, import.clone(), None, r#"{"method":{}}"#, 400),
        (Method::POST, import.clone(), None, r#"{"method":{"name":5}}"#, 400),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download","uri":5}}"#,
            500,
        ),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download","uri":"http://127.0.0.1:abc/"}}"#,
            500,
        ),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download","uri":"http://[::1/x"}}"#,
            500,
        ),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download","uri":""}}"#,
            400,
        ),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download"},"all_stores":"yes"}"#,
            400,
        ),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download"},"stores":"fs1"}"#,
            409,
        ),
        (
            Method::POST,
            import.clone(),
            None,
            r#"{"method":{"name":"web-download"},"stores":5}"#,
            500,
        ),
        (Method::POST, "/v2/images".to_owned(), None, r#"{"name":1e400}"#, 400),
        (
            Method::POST,
            "/v2/images".to_owned(),
            None,
            r#"{"name":"x","tags":"notalist"}"#,
            400,
        ),
        (
            Method::POST,
            "/v2/images".to_owned(),
            None,
            r#"{"id":"not-a-uuid"}"#,
            400,
        ),
        (
            Method::POST,
            "/v2/images".to_owned(),
            None,
            r#"{"min_ram":1.0,"min_disk":18446744073709551615}"#,
            201,
        ),
        (Method::POST, "/v2/images".to_owned(), None, &deeply_nested, 400),
        (Method::POST, format!("{image}/members"), None, r#"{"member":""}"#, 400),
        (Method::POST, format!("{image}/members"), None, "[]", 400),
        (Method::PUT, format!("{image}/members/x"), None, "{}", 400),
        (Method::GET, "/v2/images?%ZZ&=&&limit=%FF".to_owned(), None, "", 400),
        (
            Method::GET,
            "/v2/images?limit=99999999999999999999999999999".to_owned(),
            None,
            "",
            200,
        ),
        (
            Method::GET,
            format!("/v2/images?marker={}", "x".repeat(40)),
            None,
            "",
            400,
        ),
        (
            Method::GET,
            "/v2/images?created_at=gt:yesterday".to_owned(),
            None,
            "",
            400,
        ),
        (
            Method::GET,
            "/v2/images?created_at=zz:2020-01-01T00:00:00Z".to_owned(),
            None,
            "",
            400,
        ),
        (Method::GET, "/v2/images?name=in:%22open".to_owned(), None, "", 400),
        (Method::GET, "/v2/images?foo_min=1".to_owned(), None, "", 500),
        (Method::GET, "/v2/images?sort=name:sideways".to_owned(), None, "", 400),
        (
            Method::GET,
            "/v2/images?sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc".to_owned(),
            None,
            "",
            400,
        ),
        (Method::GET, "/v2/images/%E2%82%AC".to_owned(), None, "", 404),
        (Method::GET, "/v2/images/%FF%FE".to_owned(), None, "", 404),
        (Method::GET, "/v2/images/a%2Fb/file".to_owned(), None, "", 404),
        (Method::GET, "/v2//images".to_owned(), None, "", 404),
        (Method::DELETE, format!("{image}/tags/%00"), None, "", 404),
    ];
    for (method, path, content_type, body, status) in expectations {
        let mut request = mock.request(Who::A, method.clone(), &path).body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let answer = mock.send(request).await;
        assert_eq!(answer.status, status, "{method} {path} {body:.80}: {}", answer.text());
    }
    // Ranges on an image with data.
    assert_eq!(
        mock.upload(Who::A, &id, "application/octet-stream", vec![7; 1000])
            .await
            .status,
        204
    );
    for (name, value, status) in [
        ("Range", "bytes=-", 500),
        ("Range", "bytes=abc", 416),
        ("Range", "bytes=9-3", 416),
        ("Range", "bytes=-5000", 206),
        ("Content-Range", "bytes */*", 416),
        ("Content-Range", "bytes 0-2000/*", 416),
    ] {
        let answer = mock
            .send(
                mock.request(Who::A, Method::GET, &format!("{image}/file"))
                    .header(name, value),
            )
            .await;
        assert_eq!(answer.status, status, "{name}: {value}");
    }
    // Header values that are not UTF-8 read as absent.
    let binary_roles = reqwest::header::HeaderValue::from_bytes(b"\xffmember").expect("header value");
    let request = mock
        .client
        .get(format!("{}/v2/images", mock.handle.url()))
        .header("X-Identity-Status", "Confirmed")
        .header("X-Project-Id", A)
        .header("X-Roles", binary_roles);
    assert_eq!(mock.send(request).await.status, 403);
    // Plain-text errors for clients that accept neither HTML nor JSON.
    let plain = mock
        .send(
            mock.request(Who::A, Method::GET, "/v2/images/nope")
                .header("Accept", "text/plain"),
        )
        .await;
    assert_eq!(plain.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(plain.text(), "404 Not Found\n\nNo image found with ID nope\n\n   ");
    // Still serving.
    assert_eq!(mock.get(Who::A, "/v2/images").await.status, 200);
}
