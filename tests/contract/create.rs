//! POST /images: the v2 create body, and copy_from as web-download import.

use reqwest::Method;
use serde_json::json;

use openstack_mock::files::{FileServer, tiny_qcow2};
use openstack_mock::glance::Options;

use crate::support::*;

#[tokio::test]
async fn creates_with_the_documented_fields() {
    let harness = Harness::start().await;
    let answer = send(harness.call(Method::POST, "/images").body(
        json!({"image": {"name": "plain", "disk_format": "qcow2", "container_format": "bare", "min_ram": "512", "min_disk": 1, "tags": ["t"], "protected": false}}).to_string(),
    ))
    .await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let image = answer.json();
    assert_image_keys(&image);
    assert_eq!(image["status"], "queued");
    assert_eq!(image["visibility"], "private");
    assert_eq!(image["owner"], ENV_A);
    assert_eq!(
        (image["min_ram"].as_u64(), image["min_disk"].as_u64()),
        (Some(512), Some(1))
    );
    assert!(image.get("copy_from").is_none());

    let requests = harness.glance.requests();
    assert_eq!(lines(&requests), ["POST /image/v2/images"]);
    assert_trusted_identity(&requests[0], ENV_A);
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        json_body(&requests[0]),
        json!({"name": "plain", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512, "min_disk": 1, "visibility": "private", "protected": false, "tags": ["t"]})
    );
    let shown = send(harness.call(Method::GET, &format!("/images/{}", image["id"].as_str().unwrap()))).await;
    assert_eq!(shown.json(), image);
}

#[tokio::test]
async fn is_public_and_client_ids() {
    let harness = Harness::start().await;
    let id = "11111111-2222-4333-8444-555555555555";
    let answer = send(
        harness
            .call(Method::POST, "/images")
            .body(json!({"image": {"id": id, "name": "mine", "is_public": false}}).to_string()),
    )
    .await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.json()["id"], id);
    assert_eq!(
        json_body(&harness.glance.requests()[0]),
        json!({"id": id, "name": "mine", "visibility": "private"})
    );

    // A retried create with the same id gets Glance's 409, not a second image.
    let message = send(
        harness
            .call(Method::POST, "/images")
            .body(json!({"image": {"id": id, "name": "mine"}}).to_string()),
    )
    .await
    .error_message(409);
    assert_eq!(message, format!("Image ID {id} already exists!"));

    // A member may not publish: Glance's 403 comes back as it is.
    let message = send(
        harness
            .call(Method::POST, "/images")
            .body(json!({"image": {"is_public": true}}).to_string()),
    )
    .await
    .error_message(403);
    assert_eq!(message, "You are not authorized to complete publicize_image action.");
}

#[tokio::test]
async fn glance_schema_errors_come_back_as_one_plain_line() {
    let harness = Harness::start().await;
    let message = send(
        harness
            .call(Method::POST, "/images")
            .body(json!({"image": {"disk_format": "qcow3"}}).to_string()),
    )
    .await
    .error_message(400);
    assert!(
        message.starts_with("Provided object does not match schema 'image': 'qcow3' is not one of"),
        "{message}"
    );
    assert!(!message.contains('\n') && !message.contains("<br") && !message.contains("Failed validating"));
}

#[tokio::test]
async fn copy_from_creates_then_imports_by_web_download() {
    let files = FileServer::start(vec![("/cirros.qcow2".into(), tiny_qcow2(1 << 20))])
        .await
        .unwrap();
    let harness = Harness::start_with(
        Options {
            web_download_allowed_ports: vec![files.addr.port()],
            ..Options::default()
        },
        FacadeOptions::default(),
    )
    .await;
    let source = files.url("/cirros.qcow2");
    let answer = send(harness.call(Method::POST, "/images").body(
        json!({"image": {"name": "remote_image", "disk_format": "qcow2", "container_format": "bare", "copy_from": source, "min_ram": 1, "min_disk": 500}}).to_string(),
    ))
    .await;
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let image = answer.json();
    assert_image_keys(&image);
    assert_eq!(image["status"], "queued");
    assert_eq!(image["copy_from"], source);
    let id = image["id"].as_str().unwrap().to_owned();

    // First whether the cloud offers web-download (asked before any image is made).
    let requests = harness.glance.requests();
    assert_eq!(
        lines(&requests),
        [
            "GET /image/v2/info/import".to_owned(),
            "POST /image/v2/images".to_owned(),
            format!("POST /image/v2/images/{id}/import")
        ]
    );
    for request in &requests {
        assert_trusted_identity(request, ENV_A);
    }
    for request in &requests[1..] {
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    assert_eq!(
        json_body(&requests[1]),
        json!({"name": "remote_image", "disk_format": "qcow2", "container_format": "bare", "min_ram": 1, "min_disk": 500, "visibility": "private", "copy_from": source})
    );
    assert_eq!(
        json_body(&requests[2]),
        json!({"method": {"name": "web-download", "uri": source}})
    );

    eventually("the import to finish", || async {
        send(harness.call(Method::GET, &format!("/images/{id}"))).await.json()["status"] == "active"
    })
    .await;
    let shown = send(harness.call(Method::GET, &format!("/images/{id}"))).await.json();
    assert_eq!(shown["size"], 1024);
    assert_eq!(shown["virtual_size"], 1 << 20);
    assert_eq!(shown["copy_from"], source);
    assert_eq!(shown["checksum"].as_str().map(str::len), Some(32));
}

#[tokio::test]
async fn a_refused_import_deletes_the_new_image() {
    // The mock, like Glance's import filtering, refuses ports it was not told about.
    let harness = Harness::start().await;
    let answer = send(harness.call(Method::POST, "/images").body(
        json!({"image": {"name": "refused", "disk_format": "raw", "container_format": "bare", "copy_from": "http://127.0.0.1:9/x.img"}}).to_string(),
    ))
    .await;
    let message = answer.error_message(400);
    assert_eq!(
        message,
        "the cloud refused copy_from: URI for web-download does not pass filtering: http://127.0.0.1:9/x.img"
    );

    let requests = harness.glance.requests();
    assert_eq!(
        lines(&requests)[..2],
        ["GET /image/v2/info/import", "POST /image/v2/images"]
    );
    assert_eq!(requests.len(), 4);
    assert!(lines(&requests)[2].ends_with("/import"));
    assert!(lines(&requests)[3].starts_with("DELETE /image/v2/images/"));
    assert_trusted_identity(&requests[3], ENV_A);
    let listed = send(harness.call(Method::GET, "/images")).await.json();
    assert_eq!(listed, json!([{"images": []}]), "no orphan image left");
}

#[tokio::test]
async fn a_cloud_without_web_download_refuses_copy_from_before_creating() {
    let harness = Harness::start_with(
        Options {
            import_methods: vec!["glance-direct".into()],
            ..Options::default()
        },
        FacadeOptions::default(),
    )
    .await;
    let answer = send(harness.call(Method::POST, "/images").body(
        json!({"image": {"name": "x", "disk_format": "raw", "container_format": "bare", "copy_from": "http://127.0.0.1/x.img"}}).to_string(),
    ))
    .await;
    let message = answer.error_message(501);
    assert_eq!(
        message,
        "this cloud does not support copy_from: its image service offers no web-download import"
    );
    assert_eq!(
        lines(&harness.glance.requests()),
        ["GET /image/v2/info/import"],
        "no image was made"
    );
}

#[tokio::test]
async fn the_ssrf_guard_refuses_before_any_upstream_call() {
    let harness = Harness::start().await;
    // Where the guard will not let anyone fetch from: 403; a malformed URL: 400.
    for (url, status, expected) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            403,
            "cloud metadata address",
        ),
        ("http://10.0.0.5/x.img", 403, "private range"),
        ("http://localhost:8080/x.img", 403, "loopback name"),
        ("http://127.0.0.1:0/x.img", 403, "port 0"),
        (
            "http://user:secret@example.com/x.img",
            400,
            "credentials in the URL are not allowed",
        ),
        ("http://[::ffff:10.0.0.1]/x.img", 403, "IPv4-mapped"),
    ] {
        let answer = send(
            harness.call(Method::POST, "/images").body(
                json!({"image": {"name": "x", "disk_format": "raw", "container_format": "bare", "copy_from": url}})
                    .to_string(),
            ),
        )
        .await;
        let message = answer.error_message(status);
        assert!(
            message.starts_with("copy_from is refused:") && message.contains(expected),
            "{url}: {message}"
        );
        assert!(!message.contains("secret"));
    }
    assert!(harness.glance.requests().is_empty());
}
