//! Image data: upload, download with ranges, format checks on the bytes,
//! chunked uploads, deactivation, and the body size limit.

use super::*;
use md5::{Digest, Md5};
use openstack_mock::glance::MAX_IMAGE_BYTES;
use sha2::Sha512;

/// The qcow2 image A1 of transcript 024.
async fn a1(mock: &Mock) -> String {
    mock.create_id(
        Who::A,
        json!({"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await
}

/// A queued raw image of A.
async fn raw(mock: &Mock, name: &str) -> String {
    mock.create_id(
        Who::A,
        json!({"name": name, "disk_format": "raw", "container_format": "bare"}),
    )
    .await
}

/// The data of transcript 108 (smaller): 200,000 bytes announcing 4 MiB.
fn a1_data() -> Vec<u8> {
    qcow2(4_194_304, 200_000)
}

/// A1 with its data uploaded (transcript 108).
async fn a1_with_data(mock: &Mock) -> String {
    let id = a1(mock).await;
    let uploaded = mock.upload(Who::A, &id, OCTET_STREAM, a1_data()).await;
    assert_eq!((uploaded.status, uploaded.header("content-type")), (204, Some(HTML)));
    id
}

#[tokio::test]
async fn no_data_yet() {
    // transcript 104
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    let nothing = mock.get(Who::A, &format!("/v2/images/{id}/file")).await;
    assert_eq!(
        (nothing.status, nothing.header("content-type"), nothing.body.len()),
        (204, None, 0)
    );
}

#[tokio::test]
async fn upload_as_json_is_an_unsupported_media_type() {
    // transcript 105
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    let wrong = mock
        .upload(Who::A, &id, "application/json", b"{\"x\":1}".to_vec())
        .await;
    assert_eq!(wrong.status, 415);
    assert_eq!(wrong.text(), recorded("105").body);
}

/// An upload refused to a caller.
async fn upload_refused(who: Who, status: u16, length: usize, message: &str) {
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    expect_error(
        &mock.upload(who, &id, OCTET_STREAM, vec![0; 10]).await,
        status,
        length,
        message,
    );
}

cases!(upload_refused {
    // transcript 106
    as_reader => (Who::AReader, 403, 177, "upload_image action"),
    // transcript 107
    by_another_project => (Who::B, 404, 181, "No image found with ID"),
});

#[tokio::test]
async fn upload_makes_the_image_active() {
    // transcripts 108 and 109
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    let data = a1_data();
    let image = mock.show(Who::A, &id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], json!(200_000));
    assert_eq!(image["virtual_size"], json!(4_194_304));
    assert_eq!(image["checksum"], json!(hex(&Md5::digest(&data))));
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["os_hash_value"], json!(hex(&Sha512::digest(&data))));
    let mut expected = core_keys();
    expected.push("stores".to_owned());
    assert_eq!(keys(&image), expected);
    assert_eq!(image["stores"], "fs1");
}

#[tokio::test]
async fn a_second_upload_conflicts() {
    // transcript 110
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    expect_error(
        &mock.upload(Who::A, &id, OCTET_STREAM, a1_data()).await,
        409,
        180,
        "Image status transition from active to saving is not allowed",
    );
}

#[tokio::test]
async fn download() {
    // transcript 114: the data, with Content-MD5.
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    let data = a1_data();
    let download = mock.get(Who::A, &format!("/v2/images/{id}/file")).await;
    assert_eq!(download.status, 200);
    assert_eq!(
        download.header_names()[..3],
        ["content-type", "content-md5", "content-length"].map(str::to_owned)
    );
    assert_eq!(download.header("content-md5"), Some(hex(&Md5::digest(&data)).as_str()));
    assert_eq!(download.body.as_ref(), data.as_slice());
}

#[tokio::test]
async fn head_is_not_a_get() {
    // transcript 115
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    let head = mock
        .send(mock.request(Who::A, Method::HEAD, &format!("/v2/images/{id}/file")))
        .await;
    assert_eq!(
        (head.status, head.header("allow"), head.header("content-length")),
        (405, Some("GET, PUT"), Some("0"))
    );
}

/// A download of A1 with one range header.
async fn ranged(mock: &Mock, id: &str, header: &str, value: &str) -> Answer {
    mock.send(
        mock.request(Who::A, Method::GET, &format!("/v2/images/{id}/file"))
            .header(header, value),
    )
    .await
}

/// A satisfiable range: 206, its Content-Range, and those bytes.
async fn partial(header: &str, value: &str, content_range: &str, bytes: std::ops::Range<usize>) {
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    let answer = ranged(&mock, &id, header, value).await;
    assert_eq!(
        (answer.status, answer.header("content-range")),
        (206, Some(content_range))
    );
    assert_eq!(answer.body.as_ref(), &a1_data()[bytes]);
}

cases!(partial {
    // transcript 116
    first_bytes => ("Range", "bytes=0-99", "bytes 0-99/200000", 0..100),
    // transcript 117
    suffix => ("Range", "bytes=-100", "bytes 199900-199999/200000", 199_900..200_000),
    // transcript 118
    open_end => ("Range", "bytes=199900-", "bytes 199900-199999/200000", 199_900..200_000),
    // transcript 121
    legacy_content_range => ("Content-Range", "bytes 0-99/*", "bytes 0-99/200000", 0..100),
});

#[tokio::test]
async fn several_ranges_are_refused() {
    // transcript 119
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    expect_error(
        &ranged(&mock, &id, "Range", "bytes=0-9,20-29").await,
        400,
        237,
        "Requests with multiple ranges are not supported in Glance.",
    );
}

#[tokio::test]
async fn unsatisfiable_range() {
    // transcript 120
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    let unsatisfiable = ranged(&mock, &id, "Range", "bytes=99999999-").await;
    assert_eq!(unsatisfiable.status, 416);
    assert!(unsatisfiable.text().contains(
        "The Range requested is not available.<br /><br />\nInvalid start position in Range header. Start position MUST be in the inclusive range [0, 199999].\n\n\n </body>"
    ));
}

#[tokio::test]
async fn bytes_that_are_not_qcow2_are_refused_but_hashed() {
    // transcripts 123 and 124
    let mock = Mock::start().await;
    let a2 = mock
        .create_id(
            Who::A,
            json!({"name": "A2", "disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let garbage = garbage(1_048_576);
    let refused = mock.upload(Who::A, &a2, OCTET_STREAM, garbage.clone()).await;
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
}

#[tokio::test]
async fn formats_come_before_data() {
    // transcript 125
    let mock = Mock::start().await;
    let a3 = mock.create_id(Who::A, json!({})).await;
    expect_error(
        &mock.upload(Who::A, &a3, OCTET_STREAM, garbage(1_048_576)).await,
        400,
        200,
        "Properties disk_format, container_format must be set prior to saving data.",
    );
}

#[tokio::test]
async fn chunked_raw_upload() {
    // transcripts 126 and 127
    let mock = Mock::start().await;
    let raw = raw(&mock, "fixed").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        garbage(1_048_576).chunks(65_536).map(|c| Ok(c.to_vec())).collect();
    let streamed = mock
        .send(
            mock.request(Who::A, Method::PUT, &format!("/v2/images/{raw}/file"))
                .header("Content-Type", OCTET_STREAM)
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))),
        )
        .await;
    assert_eq!(streamed.status, 204);
    let raw_image = mock.show(Who::A, &raw).await;
    assert_eq!(
        (raw_image["size"].clone(), raw_image["virtual_size"].clone()),
        (json!(1_048_576), json!(1_048_576))
    );
}

#[tokio::test]
async fn deactivate_and_reactivate() {
    // transcripts 204-207: the owner may deactivate, then only admins download.
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
    assert_eq!(
        mock.post_empty(Who::A, &format!("/v2/images/{id}/actions/deactivate"))
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
        mock.post_empty(Who::Admin, &format!("/v2/images/{id}/actions/reactivate"))
            .await
            .status,
        204
    );
    assert_eq!(mock.show(Who::A, &id).await["status"], "active");
}

#[tokio::test]
async fn a_queued_image_cannot_be_deactivated() {
    let mock = Mock::start().await;
    let a3 = mock.create_id(Who::A, json!({})).await;
    expect_error(
        &mock
            .post_empty(Who::A, &format!("/v2/images/{a3}/actions/deactivate"))
            .await,
        403,
        182,
        "Not allowed to deactivate image in status &#x27;queued&#x27;",
    );
}

#[tokio::test]
async fn downloading_needs_member() {
    // Even for the owner project.
    let mock = Mock::start().await;
    let id = a1_with_data(&mock).await;
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
    let id = raw(&mock, "big").await;
    let answer = mock
        .upload(Who::A, &id, OCTET_STREAM, vec![0u8; MAX_IMAGE_BYTES + 1])
        .await;
    assert_eq!(answer.status, 413);
    assert!(answer.text().contains("The incoming image is too large"));
    assert_eq!(mock.show(Who::A, &id).await["status"], "queued");
}
