//! Odd requests get answers, not panics: malformed patches, imports, creates,
//! queries, paths and headers.

use super::*;

/// The image the odd requests aim at.
async fn target(mock: &Mock) -> String {
    mock.create_id(
        Who::A,
        json!({"name": "target", "disk_format": "raw", "container_format": "bare"}),
    )
    .await
}

/// One odd request (`{image}` stands for the target's path) gets `status`,
/// and the mock still serves.
async fn odd(method: Method, path: &str, content_type: Option<&str>, body: &str, status: u16) {
    let mock = Mock::start().await;
    let id = target(&mock).await;
    let path = path.replace("{image}", &format!("/v2/images/{id}"));
    let mut request = mock.request(Who::A, method.clone(), &path).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let answer = mock.send(request).await;
    assert_eq!(answer.status, status, "{method} {path} {body:.80}: {}", answer.text());
    assert_eq!(mock.get(Who::A, "/v2/images").await.status, 200);
}

const V21: Option<&str> = Some(PATCH_V21);
const V20: Option<&str> = Some(PATCH_V20);

cases!(odd {
    patch_number_as_operation => (Method::PATCH, "{image}", V21, "[1]", 400),
    patch_numeric_op => (Method::PATCH, "{image}", V21, r#"[{"op":5,"path":"/x"}]"#, 400),
    patch_list_as_path => (Method::PATCH, "{image}", V21, r#"[{"op":"add","path":["x"],"value":"y"}]"#, 500),
    patch_add_at_the_root => (Method::PATCH, "{image}", V21, r#"[{"op":"add","path":"/","value":"y"}]"#, 200),
    patch_string_body => (Method::PATCH, "{image}", V21, "\"str\"", 400),
    draft_4_patch_with_two_operations => (Method::PATCH, "{image}", V20, r#"[{"add":"/a","remove":"/b"}]"#, 400),
    draft_4_patch_without_operation => (Method::PATCH, "{image}", V20, r#"[{"nothing":"/a"}]"#, 400),
    patch_with_extra_members => (
        Method::PATCH,
        "{image}",
        V21,
        r#"[{"op":"replace","path":"/name","value":"x","extra":{"deep":[1,2,{"a":null}]}}]"#,
        200,
    ),
    patch_protected_to_a_string => (
        Method::PATCH,
        "{image}",
        V21,
        r#"[{"op":"replace","path":"/protected","value":"yes"}]"#,
        400,
    ),
    patch_tags_to_numbers => (Method::PATCH, "{image}", V21, r#"[{"op":"replace","path":"/tags","value":[1]}]"#, 400),
    import_json_list => (Method::POST, "{image}/import", None, "[]", 500),
    import_method_as_string => (Method::POST, "{image}/import", None, r#"{"method":"web-download"}"#, 500),
    import_method_without_name => (Method::POST, "{image}/import", None, r#"{"method":{}}"#, 400),
    import_numeric_method_name => (Method::POST, "{image}/import", None, r#"{"method":{"name":5}}"#, 400),
    import_numeric_uri => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download","uri":5}}"#,
        500,
    ),
    // urllib's ValueError counts as a refusal (checked against Glance 33 by
    // the differential test).
    import_uri_with_a_bad_port => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download","uri":"http://127.0.0.1:abc/"}}"#,
        400,
    ),
    import_uri_with_a_broken_ipv6_address => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download","uri":"http://[::1/x"}}"#,
        400,
    ),
    import_empty_uri => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download","uri":""}}"#,
        400,
    ),
    import_all_stores_as_string => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download"},"all_stores":"yes"}"#,
        400,
    ),
    import_stores_as_string => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download"},"stores":"fs1"}"#,
        409,
    ),
    import_numeric_stores => (
        Method::POST,
        "{image}/import",
        None,
        r#"{"method":{"name":"web-download"},"stores":5}"#,
        500,
    ),
    create_with_an_overflowing_number => (Method::POST, "/v2/images", None, r#"{"name":1e400}"#, 400),
    create_with_tags_as_string => (Method::POST, "/v2/images", None, r#"{"name":"x","tags":"notalist"}"#, 400),
    create_with_a_malformed_id => (Method::POST, "/v2/images", None, r#"{"id":"not-a-uuid"}"#, 400),
    // The database columns hold 32-bit integers ("'min_disk' value out of range").
    create_with_a_float_and_a_huge_size => (
        Method::POST,
        "/v2/images",
        None,
        r#"{"min_ram":1.0,"min_disk":18446744073709551615}"#,
        400,
    ),
    create_with_deep_nesting => (Method::POST, "/v2/images", None, &"[".repeat(100_000), 400),
    add_an_empty_member => (Method::POST, "{image}/members", None, r#"{"member":""}"#, 400),
    add_a_member_as_list => (Method::POST, "{image}/members", None, "[]", 400),
    member_answer_without_status => (Method::PUT, "{image}/members/x", None, "{}", 400),
    list_with_a_broken_query => (Method::GET, "/v2/images?%ZZ&=&&limit=%FF", None, "", 400),
    list_with_a_huge_limit => (Method::GET, "/v2/images?limit=99999999999999999999999999999", None, "", 200),
    list_after_a_long_garbage_marker => (Method::GET, &format!("/v2/images?marker={}", "x".repeat(40)), None, "", 400),
    list_with_a_bad_time => (Method::GET, "/v2/images?created_at=gt:yesterday", None, "", 400),
    list_with_an_unknown_time_operator => (
        Method::GET,
        "/v2/images?created_at=zz:2020-01-01T00:00:00Z",
        None,
        "",
        400,
    ),
    list_with_an_unclosed_quote => (Method::GET, "/v2/images?name=in:%22open", None, "", 400),
    list_with_an_unknown_range_filter => (Method::GET, "/v2/images?foo_min=1", None, "", 500),
    list_with_an_unknown_sort_direction => (Method::GET, "/v2/images?sort=name:sideways", None, "", 400),
    list_with_more_directions_than_keys => (
        Method::GET,
        "/v2/images?sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc",
        None,
        "",
        400,
    ),
    show_a_non_ascii_id => (Method::GET, "/v2/images/%E2%82%AC", None, "", 404),
    show_an_id_that_is_not_utf8 => (Method::GET, "/v2/images/%FF%FE", None, "", 404),
    download_with_an_encoded_slash => (Method::GET, "/v2/images/a%2Fb/file", None, "", 404),
    // Real Glance routes runs of `/` as one (found by the differential test).
    double_slash => (Method::GET, "/v2//images", None, "", 200),
    delete_a_nul_tag => (Method::DELETE, "{image}/tags/%00", None, "", 404),
});

/// A download with an odd range header gets `status`.
async fn odd_range(name: &str, value: &str, status: u16) {
    let mock = Mock::start().await;
    let id = target(&mock).await;
    assert_eq!(mock.upload(Who::A, &id, OCTET_STREAM, vec![7; 1000]).await.status, 204);
    let answer = mock
        .send(
            mock.request(Who::A, Method::GET, &format!("/v2/images/{id}/file"))
                .header(name, value),
        )
        .await;
    assert_eq!(answer.status, status, "{name}: {value}");
}

cases!(odd_range {
    empty_range => ("Range", "bytes=-", 500),
    range_not_a_number => ("Range", "bytes=abc", 416),
    backwards_range => ("Range", "bytes=9-3", 416),
    suffix_longer_than_the_data => ("Range", "bytes=-5000", 206),
    content_range_without_range => ("Content-Range", "bytes */*", 416),
    content_range_past_the_end => ("Content-Range", "bytes 0-2000/*", 416),
});

#[tokio::test]
async fn header_values_that_are_not_utf8_read_as_absent() {
    let mock = Mock::start().await;
    let binary_roles = reqwest::header::HeaderValue::from_bytes(b"\xffmember").expect("header value");
    let request = mock
        .request_with(
            Method::GET,
            "/v2/images",
            &[("X-Identity-Status", "Confirmed"), ("X-Project-Id", A)],
        )
        .header("X-Roles", binary_roles);
    assert_eq!(mock.send(request).await.status, 403);
}

#[tokio::test]
async fn plain_text_errors_for_clients_that_accept_neither_html_nor_json() {
    let mock = Mock::start().await;
    let plain = mock.get_accepting(Who::A, "/v2/images/nope", "text/plain").await;
    assert_eq!(plain.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(plain.text(), "404 Not Found\n\nNo image found with ID nope\n\n   ");
}
