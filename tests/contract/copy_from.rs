//! copy_from beyond the happy path: the facade-side fallback for clouds
//! without web-download, retried imports answered from the image's state,
//! and failure reporting that costs calls only for images that need it.

use reqwest::Method;

use serde_json::json;

use openstack_mock::files::{FileServer, tiny_qcow2};
use openstack_mock::glance::{Fault, FaultAction, Options};

use crate::support::*;

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

async fn fallback_harness(max_bytes: u64) -> Harness {
    Harness::start_with(
        Options {
            import_methods: vec!["glance-direct".into()],
            ..Options::default()
        },
        FacadeOptions {
            namespace_extra: format!("copy_from_fallback = {{ enabled = true, max_bytes = {max_bytes} }}"),
            ..FacadeOptions::default()
        },
    )
    .await
}

fn create_body(source: &str) -> String {
    json!({"image": {"name": "fallback", "disk_format": "qcow2", "container_format": "bare", "copy_from": source}})
        .to_string()
}

#[tokio::test]
async fn without_web_download_the_facade_uploads_the_data_itself() {
    let data = tiny_qcow2(1 << 20);
    let files = FileServer::start(vec![("/big.qcow2".into(), data.clone())])
        .await
        .unwrap();
    let harness = fallback_harness(1 << 30).await;
    let answer = send(
        harness
            .call(Method::POST, "/images")
            .body(create_body(&files.url("/big.qcow2"))),
    )
    .await;
    assert_eq!(answer.status, 201);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    eventually("the upload to finish", || async {
        send(harness.call(Method::GET, &format!("/images/{id}"))).await.json()["status"] == "active"
    })
    .await;
    let image = send(harness.call(Method::GET, &format!("/images/{id}"))).await.json();
    assert_eq!(image["checksum"], md5_hex(&data));
    assert_eq!(image["size"], data.len());

    // The mock records a request once its body is in, so the polling GETs
    // may come before the upload in its log.
    let requests = harness.glance.requests();
    assert_eq!(
        lines(&requests)[..2],
        ["GET /image/v2/info/import", "POST /image/v2/images"]
    );
    let uploads: Vec<_> = requests.iter().filter(|request| request.method == "PUT").collect();
    assert_eq!(uploads.len(), 1);
    let upload = uploads[0];
    assert_eq!(line(upload), format!("PUT /image/v2/images/{id}/file"));
    assert_eq!(upload.header("content-type"), Some("application/octet-stream"));
    assert_eq!(upload.body.as_ref(), data.as_ref());
    assert_eq!(upload.header("x-project-id"), Some(ENV_A));
}

#[tokio::test]
async fn a_failed_facade_upload_shows_killed() {
    let data = tiny_qcow2(1 << 20);
    let files = FileServer::start(vec![("/image.qcow2".into(), data)]).await.unwrap();
    // Too large for the cap, and missing altogether.
    let harness = fallback_harness(100).await;
    for (source, reason) in [
        (files.url("/image.qcow2"), "larger than 100 bytes"),
        (files.url("/missing.qcow2"), "the source answered 404 Not Found"),
    ] {
        let answer = send(harness.call(Method::POST, "/images").body(create_body(&source))).await;
        assert_eq!(answer.status, 201);
        let id = answer.json()["id"].as_str().unwrap().to_owned();
        eventually("the failure to be recorded", || async {
            send(harness.call(Method::GET, &format!("/images/{id}"))).await.json()["status"] == "killed"
        })
        .await;
        let recorded = harness
            .glance
            .requests()
            .into_iter()
            .find(|request| request.method == "PATCH" && request.path.ends_with(&id))
            .expect("failure recorded on the image");
        let patch = json_body(&recorded);
        assert_eq!(patch[0]["path"], "/alliance_copy_from_error");
        assert!(patch[0]["value"].as_str().unwrap().contains(reason), "{patch}");
    }
}

#[tokio::test]
async fn a_retried_import_is_answered_from_the_images_state() {
    let files = FileServer::start(vec![("/image.qcow2".into(), tiny_qcow2(1 << 20))])
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
    let source = files.url("/image.qcow2");
    let import_fault = |action| Fault {
        method: Some(http::Method::POST),
        path_suffix: Some("/import".into()),
        action,
    };

    // The import request is lost: the image is still queued, so it is sent again.
    harness.glance.inject(import_fault(FaultAction::CloseConnection));
    let answer = send(harness.call(Method::POST, "/images").body(create_body(&source))).await;
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let calls = lines(&harness.glance.take_requests());
    assert_eq!(
        calls[1..],
        [
            "POST /image/v2/images".to_owned(),
            format!("POST /image/v2/images/{id}/import"),
            format!("GET /image/v2/images/{id}"),
            format!("POST /image/v2/images/{id}/import")
        ]
    );
    eventually("the import to finish", || async {
        send(harness.call(Method::GET, &format!("/images/{id}"))).await.json()["status"] == "active"
    })
    .await;

    // Glance says 409 because an import already runs: that is a success.
    let importing = |id: &str| {
        json!({"id": id, "status": "importing", "os_glance_import_task": "t-1", "name": "fallback", "visibility": "private"}).to_string()
    };
    harness.glance.inject(import_fault(FaultAction::Respond {
        status: 409,
        content_type: "text/plain".into(),
        body: "Image status importing cannot be target for import".into(),
    }));
    harness.glance.inject(Fault {
        method: Some(http::Method::GET),
        path_suffix: None,
        action: FaultAction::Respond {
            status: 200,
            content_type: "application/json".into(),
            body: importing("00000000-0000-4000-8000-000000000000"),
        },
    });
    let answer = send(harness.call(Method::POST, "/images").body(create_body(&source))).await;
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));

    // A 409 on an image with no import under way is the cloud's refusal.
    harness.glance.inject(import_fault(FaultAction::Respond {
        status: 409,
        content_type: "text/plain".into(),
        body: "Store for identifier nope not found".into(),
    }));
    let message = send(harness.call(Method::POST, "/images").body(create_body(&source)))
        .await
        .error_message(409);
    assert_eq!(
        message,
        "the cloud refused copy_from: Store for identifier nope not found"
    );
}

#[tokio::test]
async fn failure_reporting_calls_only_for_images_that_need_it() {
    let harness = Harness::start_with(
        Options::default(),
        FacadeOptions {
            page_size: 100,
            ..FacadeOptions::default()
        },
    )
    .await;
    // Five plain images, two with a copy_from that never imported, one active.
    for index in 0..5 {
        harness
            .glance_create(ENV_A, json!({"name": format!("plain-{index}")}))
            .await;
    }
    for index in 0..2 {
        harness
            .glance_create(
                ENV_A,
                json!({"name": format!("copy-{index}"), "copy_from": "http://example.invalid/x"}),
            )
            .await;
    }
    let active = harness.glance_create(ENV_A, json!({"name": "active", "disk_format": "raw", "container_format": "bare", "copy_from": "http://example.invalid/y"})).await;
    harness
        .glance_upload(ENV_A, active["id"].as_str().unwrap(), b"data".to_vec())
        .await;
    harness.glance.take_requests();

    let answer = send(harness.call(Method::GET, "/images")).await;
    assert_eq!(answer.json()[0]["images"].as_array().unwrap().len(), 8);
    let task_calls = harness
        .glance
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/tasks"))
        .count();
    assert_eq!(task_calls, 2, "only the queued copy_from images are looked up");
}
