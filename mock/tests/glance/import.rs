//! Interoperable import: web-download from a local file server, its refusals,
//! failed imports and their tasks, and glance-direct (stage, then import).

use super::*;
use md5::{Digest, Md5};
use sha2::Sha512;

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

/// A mock whose web-download filter admits the local file server on `port`.
async fn import_mock(port: u16) -> Mock {
    Mock::start_with(Options {
        web_download_allowed_hosts: Some(vec!["127.0.0.1".to_owned()]),
        web_download_allowed_ports: vec![80, 443, port],
        ..Options::default()
    })
    .await
}

/// A web-download import request.
fn web(uri: &str) -> Value {
    json!({"method": {"name": "web-download", "uri": uri}})
}

/// A queued qcow2 image of A, as W1-W3 of the transcripts.
async fn queued(mock: &Mock, name: &str) -> String {
    mock.create_id(
        Who::A,
        json!({"name": name, "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await
}

/// The `os_glance_*` progress properties of an image.
fn progress(image: &Value) -> (Value, Value) {
    (
        image["os_glance_importing_to_stores"].clone(),
        image["os_glance_failed_import"].clone(),
    )
}

/// Web-download of W1 (transcripts 132-136): a file server with a qcow2, the
/// mock, the image, the import request and its 202.
struct WebDownload {
    remote: Vec<u8>,
    mock: Mock,
    w1: String,
    request: Value,
    accepted: Answer,
}

async fn web_download() -> WebDownload {
    let remote = qcow2(3_145_728, 300_000);
    let server = file_server(vec![("/remote.qcow2", remote.clone())]).await;
    let mock = import_mock(server.port()).await;
    let w1 = queued(&mock, "W1-web-download").await;
    let request = web(&format!("http://127.0.0.1:{}/remote.qcow2", server.port()));
    let accepted = mock.import(Who::A, &w1, request.clone()).await;
    WebDownload {
        remote,
        mock,
        w1,
        request,
        accepted,
    }
}

#[tokio::test]
async fn web_download_is_accepted_and_locks_the_image() {
    // transcripts 133 and 134: importing, with the lock and progress properties first.
    let w = web_download().await;
    assert_eq!(
        (
            w.accepted.status,
            w.accepted.header("content-type"),
            w.accepted.header("content-length")
        ),
        (202, Some(HTML), Some("0"))
    );
    assert!(w.accepted.body.is_empty());
    let importing = w.mock.show(Who::A, &w.w1).await;
    assert_eq!(importing["status"], "importing");
    let mut expected = vec!["os_glance_import_task".to_owned()];
    expected.extend(OS_GLANCE_PROGRESS.map(str::to_owned));
    expected.extend(core_keys());
    assert_eq!(keys(&importing), expected);
    assert_eq!(progress(&importing), (json!("fs1"), json!("")));
    let busy = w.mock.import(Who::A, &w.w1, w.request.clone()).await;
    expect_error(
        &busy,
        409,
        204,
        "Image needs to be in &#x27;queued&#x27; state to use &#x27;web-download&#x27; method",
    );
}

#[tokio::test]
async fn web_download_makes_the_image_active() {
    // transcript 136: active, the lock released.
    let w = web_download().await;
    let done = w.mock.wait_import(&w.w1).await;
    let mut expected: Vec<String> = OS_GLANCE_PROGRESS.map(str::to_owned).to_vec();
    expected.extend(core_keys());
    expected.push("stores".to_owned());
    assert_eq!(keys(&done), expected);
    assert_eq!(done["status"], "active");
    assert_eq!(done["size"], json!(300_000));
    assert_eq!(done["virtual_size"], json!(3_145_728));
    assert_eq!(done["checksum"], json!(hex(&Md5::digest(&w.remote))));
    assert_eq!(done["os_hash_value"], json!(hex(&Sha512::digest(&w.remote))));
    assert_eq!(progress(&done), (json!(""), json!("")));
    assert_eq!(
        w.mock
            .get(Who::A, &format!("/v2/images/{}/file", w.w1))
            .await
            .body
            .as_ref(),
        w.remote.as_slice()
    );
}

#[tokio::test]
async fn a_finished_import_leaves_a_task() {
    // The shape of transcript 153.
    let w = web_download().await;
    let request_id = w
        .accepted
        .header("x-openstack-request-id")
        .unwrap_or_default()
        .to_owned();
    w.mock.wait_import(&w.w1).await;
    let tasks = w.mock.get(Who::A, &format!("/v2/images/{}/tasks", w.w1)).await;
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
        (json!(A), json!(USER), json!(w.w1))
    );
    assert_eq!(task["request_id"], json!(request_id));
    assert_eq!(
        task["input"],
        json!({"image_id": w.w1, "import_req": w.request, "backend": ["fs1"]})
    );
    assert_eq!(
        (task["result"].clone(), task["message"].clone()),
        // Glance's store callback reports the bytes written in whole MiB.
        (json!({"image_id": w.w1}), json!("Copied 0 MiB"))
    );
    assert!(
        task["expires_at"]
            .as_str()
            .is_some_and(|t| t.len() == 26 && !t.ends_with('Z'))
    );
}

#[tokio::test]
async fn an_active_image_cannot_be_imported() {
    // transcript 137
    let w = web_download().await;
    w.mock.wait_import(&w.w1).await;
    expect_error(
        &w.mock.import(Who::A, &w.w1, w.request.clone()).await,
        409,
        172,
        "Image with status active cannot be target for import",
    );
}

#[tokio::test]
async fn reserved_stores_are_listed_once_data_went_through_the_store() {
    // transcript 138
    let w = web_download().await;
    w.mock.wait_import(&w.w1).await;
    let created = w
        .mock
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
}

/// An import of W2 refused (`None`: without a body), leaving no trace on the
/// image (transcript 149); `{id}` in the message stands for the image.
async fn refused(who: Who, body: Option<Value>, status: u16, length: usize, message: &str) {
    let server = file_server(vec![]).await;
    let mock = import_mock(server.port()).await;
    let w2 = queued(&mock, "W2-filter-tests").await;
    let mut request = mock
        .request(who, Method::POST, &format!("/v2/images/{w2}/import"))
        .header("Content-Type", "application/json");
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let answer = mock.send(request).await;
    expect_error(&answer, status, length, &message.replace("{id}", &w2));
    let untouched = mock.show(Who::A, &w2).await;
    assert_eq!(
        (keys(&untouched), untouched["status"].clone()),
        (core_keys(), json!("queued"))
    );
}

cases!(refused {
    // transcript 139
    port_not_allowed => (
        Who::A,
        Some(web("http://127.0.0.1:9999/remote.qcow2")),
        400,
        206,
        "URI for web-download does not pass filtering: http://127.0.0.1:9999/remote.qcow2",
    ),
    // transcript 140
    host_not_allowed => (
        Who::A,
        Some(web("http://localhost:8765/remote.qcow2")),
        400,
        206,
        "URI for web-download does not pass filtering: http://localhost:8765/remote.qcow2",
    ),
    // transcript 141
    file_scheme => (
        Who::A,
        Some(web("file:///etc/passwd")),
        400,
        190,
        "URI for web-download does not pass filtering: file:///etc/passwd",
    ),
    // transcript 142
    decimal_ip => (
        Who::A,
        Some(web("http://2130706433:8765/remote.qcow2")),
        400,
        207,
        "URI for web-download does not pass filtering: http://2130706433:8765/remote.qcow2",
    ),
    // transcript 143
    missing_uri => (
        Who::A,
        Some(json!({"method": {"name": "web-download"}})),
        400,
        176,
        "URI for web-download does not pass filtering: None",
    ),
    // transcript 144
    unknown_method => (
        Who::A,
        Some(json!({"method": {"name": "copy-from-moon", "uri": "http://127.0.0.1:8765/remote.qcow2"}})),
        400,
        180,
        "Unknown import method name &#x27;copy-from-moon&#x27;.",
    ),
    // transcript 145
    disabled_method => (
        Who::A,
        Some(json!({"method": {"name": "copy-image"}})),
        400,
        176,
        "Unknown import method name &#x27;copy-image&#x27;.",
    ),
    // transcript 146
    no_body => (Who::A, None, 400, 151, "Body expected in request."),
    // transcript 147
    by_another_project => (
        Who::B,
        Some(web("http://127.0.0.1:8765/remote.qcow2")),
        404,
        181,
        "No image found with ID {id}",
    ),
    as_reader => (
        Who::AReader,
        Some(web("http://127.0.0.1:8765/remote.qcow2")),
        403,
        177,
        "modify_image action",
    ),
    // transcript 148
    unknown_store => (
        Who::A,
        Some(json!({"method": {"name": "web-download", "uri": "http://127.0.0.1:8765/remote.qcow2"}, "stores": ["nope"]})),
        409,
        155,
        "Store for identifier nope not found",
    ),
    // transcript 160
    glance_direct_before_staging => (
        Who::A,
        Some(json!({"method": {"name": "glance-direct"}})),
        409,
        196,
        "Image needs to be staged before &#x27;glance-direct&#x27; method can be used",
    ),
});

/// A web-download that fails: the image is queued again, with a failed task.
async fn failing_source(path: &str) {
    let remote = qcow2(1 << 20, 70_000);
    let server = file_server(vec![("/remote.qcow2", remote), ("/garbage.bin", garbage(1 << 20))]).await;
    let mock = import_mock(server.port()).await;
    let uri = format!("http://127.0.0.1:{}{path}", server.port());
    let id = queued(&mock, "W").await;
    assert_eq!(mock.import(Who::A, &id, web(&uri)).await.status, 202);
    let failed = mock.wait_import(&id).await;
    let mut expected: Vec<String> = OS_GLANCE_PROGRESS.map(str::to_owned).to_vec();
    expected.extend(core_keys());
    assert_eq!(keys(&failed), expected, "{uri}");
    assert_eq!(
        (failed["status"].clone(), failed["checksum"].clone()),
        (json!("queued"), Value::Null)
    );
    assert_eq!(progress(&failed), (json!(""), json!("fs1")));
    let tasks = mock.get(Who::A, &format!("/v2/images/{id}/tasks")).await.json();
    let task = &tasks["tasks"][0];
    assert_eq!(
        (task["status"].clone(), task["result"].clone()),
        (json!("failure"), Value::Null)
    );
    assert_eq!(task["message"], "Task failed due to Internal Error");
    assert_eq!(task["input"]["import_req"]["method"]["uri"], json!(uri));
}

cases!(failing_source {
    // transcripts 150-153
    missing_file => ("/no-such-file.qcow2"),
    // transcripts 155-158
    not_qcow2 => ("/garbage.bin"),
});

#[tokio::test]
async fn an_unreachable_server_fails_the_import() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mock = import_mock(closed_port).await;
    let id = queued(&mock, "W5").await;
    let unreachable = web(&format!("http://127.0.0.1:{closed_port}/x"));
    assert_eq!(mock.import(Who::A, &id, unreachable).await.status, 202);
    assert_eq!(mock.wait_import(&id).await["os_glance_failed_import"], "fs1");
}

#[tokio::test]
async fn a_failed_image_can_be_imported_again() {
    let remote = qcow2(1 << 20, 70_000);
    let server = file_server(vec![("/remote.qcow2", remote)]).await;
    let mock = import_mock(server.port()).await;
    let id = queued(&mock, "W4").await;
    let good = web(&format!("http://127.0.0.1:{}/remote.qcow2", server.port()));
    let bad = web(&format!("http://127.0.0.1:{}/gone", server.port()));
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
    // Database order, oldest first (checked against Glance 33 with curl).
    assert_eq!(statuses, [json!("failure"), json!("success")]);
    // Tasks of an image the caller cannot see.
    expect_error(
        &mock.get(Who::B, &format!("/v2/images/{id}/tasks")).await,
        404,
        154,
        "The resource could not be found.",
    );
}

#[tokio::test]
async fn glance_direct_stages_then_imports() {
    // transcripts 161-165
    let mock = Mock::start().await;
    let data = qcow2(4_194_304, 100_000);
    let id = queued(&mock, "D1-glance-direct").await;
    let staged = mock
        .send(
            mock.request(Who::A, Method::PUT, &format!("/v2/images/{id}/stage"))
                .header("Content-Type", OCTET_STREAM)
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
}

/// A mock with web-download as its only import method.
async fn web_download_only() -> Mock {
    Mock::start_with(Options {
        import_methods: vec!["web-download".to_owned()],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn no_staging_without_glance_direct() {
    let web_only = web_download_only().await;
    let other = web_only.create_id(Who::A, json!({"name": "x"})).await;
    let refused = web_only
        .send(
            web_only
                .request(Who::A, Method::PUT, &format!("/v2/images/{other}/stage"))
                .header("Content-Type", OCTET_STREAM)
                .body("x"),
        )
        .await;
    assert_eq!(refused.status, 404);
    assert!(
        refused
            .text()
            .contains("&#x27;glance-direct&#x27; method is not available at this site.")
    );
}

#[tokio::test]
async fn only_enabled_methods_are_advertised() {
    let web_only = web_download_only().await;
    assert_eq!(
        web_only
            .post_json(Who::A, "/v2/images", &json!({}))
            .await
            .header("openstack-image-import-methods"),
        Some("web-download")
    );
}
