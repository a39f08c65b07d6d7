//! The mock Glance v2 driven over real HTTP and checked against the Glance
//! 33.0.0 exchanges in `tests/fixtures/glance-33.0.0/`, cited as
//! "transcript NNN" (`fixtures` checks that every cited file is there).
//! One module per resource; this file holds the shared harness.

use bytes::Bytes;
use openstack_mock::glance::{self, Handle, Options};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[macro_use]
#[path = "../support/cases.rs"]
mod cases;

mod auth;
mod create;
mod data;
mod delete;
mod differential;
mod discovery;
mod faults;
mod filters;
mod fixtures;
mod import;
mod list;
mod members;
mod robustness;
mod routing;
mod scale;
mod update;
mod visibility;

pub use fixtures::recorded;

pub const A: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
pub const B: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";
pub const ADMIN_PROJECT: &str = "adadadadadad4adaadadadadadadadad";
pub const USER: &str = "0a0a0a0a0a0a40a0a0a00a0a0a0a0a0a";
pub const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";
pub const PATCH_V20: &str = "application/openstack-images-v2.0-json-patch";
pub const HTML: &str = "text/html; charset=UTF-8";
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Who sends a request (the identity headers of the transcripts).
#[derive(Debug, Clone, Copy)]
pub enum Who {
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
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Header names in the order received.
    pub fn header_names(&self) -> Vec<String> {
        self.headers.keys().map(|k| k.as_str().to_owned()).collect()
    }
}

/// A running mock and a client for it.
pub struct Mock {
    pub handle: Handle,
    pub client: reqwest::Client,
}

impl Mock {
    pub async fn start() -> Mock {
        Mock::start_with(Options::default()).await
    }

    pub async fn start_with(mut options: Options) -> Mock {
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

    /// A request with the identity headers of `who`.
    pub fn request(&self, who: Who, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, format!("{}{path}", self.handle.url()));
        for (name, value) in who.headers() {
            request = request.header(name, value);
        }
        request
    }

    /// A request with exactly these headers (no identity of [`Who`]).
    pub fn request_with(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, format!("{}{path}", self.handle.url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body");
        Answer { status, headers, body }
    }

    pub async fn get(&self, who: Who, path: &str) -> Answer {
        self.send(self.request(who, Method::GET, path)).await
    }

    /// A GET with an `Accept` header.
    pub async fn get_accepting(&self, who: Who, path: &str, accept: &str) -> Answer {
        self.send(self.request(who, Method::GET, path).header("Accept", accept))
            .await
    }

    pub async fn delete(&self, who: Who, path: &str) -> Answer {
        self.send(self.request(who, Method::DELETE, path)).await
    }

    pub async fn post_json(&self, who: Who, path: &str, body: &Value) -> Answer {
        self.post_raw(who, path, &body.to_string()).await
    }

    pub async fn post_raw(&self, who: Who, path: &str, body: &str) -> Answer {
        let request = self
            .request(who, Method::POST, path)
            .header("Content-Type", "application/json");
        self.send(request.body(body.to_owned())).await
    }

    /// A POST without body, as the image actions are sent.
    pub async fn post_empty(&self, who: Who, path: &str) -> Answer {
        self.send(self.request(who, Method::POST, path)).await
    }

    pub async fn patch(&self, who: Who, id: &str, body: &str) -> Answer {
        self.patch_as(who, id, PATCH_V21, body).await
    }

    pub async fn patch_as(&self, who: Who, id: &str, content_type: &str, body: &str) -> Answer {
        let request = self
            .request(who, Method::PATCH, &format!("/v2/images/{id}"))
            .header("Content-Type", content_type)
            .body(body.to_owned());
        self.send(request).await
    }

    pub async fn upload(&self, who: Who, id: &str, content_type: &str, data: Vec<u8>) -> Answer {
        let request = self
            .request(who, Method::PUT, &format!("/v2/images/{id}/file"))
            .header("Content-Type", content_type)
            .body(data);
        self.send(request).await
    }

    /// Creates an image and returns its document.
    pub async fn create(&self, who: Who, body: Value) -> Value {
        let answer = self.post_json(who, "/v2/images", &body).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
        answer.json()
    }

    pub async fn create_id(&self, who: Who, body: Value) -> String {
        self.create(who, body).await["id"].as_str().expect("id").to_owned()
    }

    pub async fn show(&self, who: Who, id: &str) -> Value {
        let answer = self.get(who, &format!("/v2/images/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    }

    pub async fn import(&self, who: Who, id: &str, body: Value) -> Answer {
        self.post_json(who, &format!("/v2/images/{id}/import"), &body).await
    }

    /// Polls an image until its status is no longer `importing`.
    pub async fn wait_import(&self, id: &str) -> Value {
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
pub fn expect_error(answer: &Answer, status: u16, recorded_length: usize, message: &str) {
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

/// B may see the image `id` of another project, but not modify it.
pub async fn b_may_not_edit(mock: &Mock, id: &str) {
    expect_error(
        &mock
            .patch(Who::B, id, r#"[{"op":"replace","path":"/name","value":"B-edit"}]"#)
            .await,
        403,
        177,
        "modify_image action",
    );
}

/// Checks a 405: status, `Allow` and the recorded length.
pub fn expect_error_405(answer: &Answer, allow: &str, recorded_length: usize) {
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some(allow));
    assert_eq!(answer.body.len(), recorded_length, "{}", answer.text());
}

/// Keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<String> {
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

/// The keys of an image document without custom properties, in Glance's order.
pub fn core_keys() -> Vec<String> {
    CORE_KEYS.iter().map(|k| (*k).to_owned()).collect()
}

/// Ids and `next` link of a list answer.
pub fn page_of(answer: &Answer) -> (Vec<String>, Option<String>) {
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

/// Names in a list answer (`<null>` for an unnamed image).
pub fn names_of(answer: &Answer) -> Vec<String> {
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

/// A small valid qcow2 image: header magic, version 3 and the virtual size field.
pub fn qcow2(virtual_size: u64, total: usize) -> Vec<u8> {
    let mut data = vec![0u8; total];
    data[..4].copy_from_slice(b"QFI\xfb");
    data[4..8].copy_from_slice(&3u32.to_be_bytes());
    data[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    for (i, byte) in data.iter_mut().enumerate().skip(512) {
        *byte = (i % 251) as u8;
    }
    data
}

/// Bytes of no known disk format.
pub fn garbage(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A throwaway HTTP server for web-download: serves `files`, 404 for anything else.
pub async fn file_server(files: Vec<(&'static str, Vec<u8>)>) -> SocketAddr {
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
