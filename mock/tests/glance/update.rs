//! `PATCH /v2/images/{id}` (both JSON-Patch dialects) and the tag routes:
//! what changes, in which key order, and every refusal with its recorded text.

use super::*;

/// The queued image A1 of transcript 024.
async fn a1(mock: &Mock) -> String {
    mock.create_id(
        Who::A,
        json!({"name": "cirros-A1", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512, "min_disk": 1}),
    )
    .await
}

/// The image document of a successful patch.
fn ok(answer: Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// One patch of A1 (in the dialect of `content_type`) sets these properties.
async fn patched(content_type: &str, body: &str, expected: &[(&str, Value)]) {
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    let image = ok(mock.patch_as(Who::A, &id, content_type, body).await);
    let set: Vec<(&str, Value)> = expected.iter().map(|(key, _)| (*key, image[key].clone())).collect();
    assert_eq!(set, expected);
}

cases!(patched {
    // transcript 072
    replace_name => (
        PATCH_V21,
        r#"[{"op":"replace","path":"/name","value":"cirros-A1-renamed"}]"#,
        &[("name", json!("cirros-A1-renamed"))],
    ),
    // transcript 073
    replace_min_ram_and_min_disk => (
        PATCH_V21,
        r#"[{"op":"replace","path":"/min_ram","value":1024},{"op":"replace","path":"/min_disk","value":3}]"#,
        &[("min_ram", json!(1024)), ("min_disk", json!(3))],
    ),
    // transcript 084
    replace_in_the_draft_4_dialect => (
        PATCH_V20,
        r#"[{"replace":"/name","value":"cirros-A1-v20"}]"#,
        &[("name", json!("cirros-A1-v20"))],
    ),
});

#[tokio::test]
async fn replace_formats_while_queued() {
    // transcripts 074 and 075
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    let formats = ok(mock.patch(Who::A, &id, r#"[{"op":"replace","path":"/disk_format","value":"raw"},{"op":"replace","path":"/container_format","value":"ovf"}]"#).await);
    assert_eq!(
        (formats["disk_format"].clone(), formats["container_format"].clone()),
        (json!("raw"), json!("ovf"))
    );
    ok(mock.patch(Who::A, &id, r#"[{"op":"replace","path":"/disk_format","value":"qcow2"},{"op":"replace","path":"/container_format","value":"bare"}]"#).await);
}

#[tokio::test]
async fn custom_properties_come_first_in_insertion_order() {
    // transcripts 076-078
    let mock = Mock::start().await;
    let id = a1(&mock).await;
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
}

/// A patch of A1 refused with the recorded status, length and message.
async fn refused(who: Who, body: &str, status: u16, length: usize, message: &str) {
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    expect_error(&mock.patch(who, &id, body).await, status, length, message);
}

const CONFLICT: &str = "There was a conflict when trying to complete your request.<br /><br />\nProperty does_not_exist does not exist.\n\n\n </body>";

cases!(refused {
    // transcript 079
    replace_of_a_missing_property => (
        Who::A,
        r#"[{"op":"replace","path":"/does_not_exist","value":"x"}]"#,
        409,
        217,
        CONFLICT,
    ),
    // transcript 080
    remove_of_a_missing_property => (Who::A, r#"[{"op":"remove","path":"/does_not_exist"}]"#, 409, 217, CONFLICT),
    // transcript 081
    remove_of_a_core_property => (
        Who::A,
        r#"[{"op":"remove","path":"/name"}]"#,
        403,
        190,
        "Access was denied to this resource.<br /><br />\nProperty name may not be removed.",
    ),
    // transcript 085
    object_instead_of_a_list => (
        Who::A,
        r#"{"op":"replace","path":"/name","value":"x"}"#,
        400,
        181,
        "Request body must be a JSON array of operation objects.",
    ),
    // transcript 086
    move_operation => (
        Who::A,
        r#"[{"op":"move","from":"/name","path":"/foo"}]"#,
        400,
        207,
        "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
    ),
    // transcript 087
    path_without_slash => (
        Who::A,
        r#"[{"op":"replace","path":"name","value":"x"}]"#,
        400,
        175,
        "Pointer `name` does not start with &quot;/&quot;.",
    ),
    // transcript 088
    malformed_json => (Who::A, r#"[{"op":"#, 400, 157, "Malformed JSON in request body."),
    // transcript 089
    missing_value => (
        Who::A,
        r#"[{"op":"replace","path":"/name"}]"#,
        400,
        198,
        "Operation &quot;replace&quot; requires a member named &quot;value&quot;.",
    ),
    // transcript 090
    read_only_status => (
        Who::A,
        r#"[{"op":"replace","path":"/status","value":"active"}]"#,
        403,
        164,
        "Attribute &#x27;status&#x27; is read-only.",
    ),
    // transcript 091
    read_only_id => (
        Who::A,
        r#"[{"op":"replace","path":"/id","value":"11111111-2222-4333-8444-000000000000"}]"#,
        403,
        160,
        "Attribute &#x27;id&#x27; is read-only.",
    ),
    // transcript 092
    non_string_custom_property => (
        Who::A,
        r#"[{"op":"add","path":"/my_int","value":5}]"#,
        400,
        382,
        "5 is not of type &#x27;string&#x27;",
    ),
    // transcript 093
    unknown_disk_format => (
        Who::A,
        r#"[{"op":"replace","path":"/disk_format","value":"qcow3"}]"#,
        400,
        1074,
        "&#x27;qcow3&#x27; is not one of [None",
    ),
    // transcript 094: publicizing needs an admin.
    publicize_as_member => (
        Who::A,
        r#"[{"op":"replace","path":"/visibility","value":"public"}]"#,
        403,
        180,
        "publicize_image action",
    ),
    // transcript 095
    add_to_tags => (
        Who::A,
        r#"[{"op":"add","path":"/tags/-","value":"newtag"}]"#,
        400,
        185,
        "Invalid JSON pointer for this resource: &#x27;/tags/-&#x27;",
    ),
    // transcript 100
    test_operation => (
        Who::A,
        r#"[{"op":"test","path":"/name","value":"cirros-A1-v20"}]"#,
        400,
        207,
        "Invalid operation: `test`.",
    ),
    // transcript 103: readers may not modify.
    as_reader => (
        Who::AReader,
        r#"[{"op":"replace","path":"/name","value":"reader"}]"#,
        403,
        177,
        "modify_image action",
    ),
    // Owners are changed by admins only; locations are not exposed.
    owner => (
        Who::A,
        &format!(r#"[{{"op":"replace","path":"/owner","value":"{B}"}}]"#),
        403,
        198,
        "Owner can&#x27;t be updated by non admin.",
    ),
    empty_locations => (
        Who::A,
        r#"[{"op":"replace","path":"/locations","value":[]}]"#,
        403,
        192,
        "Cannot set locations to empty list.",
    ),
    add_location => (
        Who::A,
        r#"[{"op":"add","path":"/locations/-","value":{"url":"http://x/y","metadata":{}}}]"#,
        403,
        188,
        "It&#x27;s not allowed to add locations if locations are invisible.",
    ),
    reserved_os_glance_property => (
        Who::A,
        r#"[{"op":"add","path":"/os_glance_x","value":"y"}]"#,
        403,
        168,
        "Attribute &#x27;os_glance_x&#x27; is reserved.",
    ),
    negative_min_ram => (
        Who::A,
        r#"[{"op":"replace","path":"/min_ram","value":-5}]"#,
        400,
        216,
        "Cannot be a negative value",
    ),
});

#[tokio::test]
async fn plain_json_is_an_unsupported_media_type() {
    // transcript 082: the exact page and its Accept-Patch header.
    let mock = Mock::start().await;
    let id = a1(&mock).await;
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
    assert_eq!(wrong_type.text(), recorded("082").body);
}

#[tokio::test]
async fn standard_json_patch_is_an_unsupported_media_type() {
    // transcript 083
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    assert_eq!(
        mock.patch_as(Who::A, &id, "application/json-patch+json", "[]")
            .await
            .body
            .len(),
        361
    );
}

#[tokio::test]
async fn draft_4_dialect_add_of_an_existing_property_conflicts() {
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    ok(mock
        .patch(Who::A, &id, r#"[{"op":"add","path":"/os_distro","value":"cirros"}]"#)
        .await);
    let v20_add = mock
        .patch_as(Who::A, &id, PATCH_V20, r#"[{"add":"/os_distro","value":"x"}]"#)
        .await;
    expect_error(&v20_add, 409, 213, "Property os_distro already present.");
}

#[tokio::test]
async fn a_failing_operation_leaves_earlier_ones_unapplied() {
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    let partial = mock
        .patch(
            Who::A,
            &id,
            r#"[{"op":"replace","path":"/name","value":"partial"},{"op":"remove","path":"/nope"}]"#,
        )
        .await;
    assert_eq!(partial.status, 409);
    assert_eq!(mock.show(Who::A, &id).await["name"], "cirros-A1");
}

#[tokio::test]
async fn tags_are_replaced_added_and_removed() {
    // transcripts 096-099
    let mock = Mock::start().await;
    let id = a1(&mock).await;
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
}

#[tokio::test]
async fn an_overlong_tag_is_refused() {
    let mock = Mock::start().await;
    let id = a1(&mock).await;
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
}

#[tokio::test]
async fn an_empty_patch_changes_nothing() {
    // transcript 101: not even updated_at, which a real change moves.
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    let before = mock.show(Who::A, &id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ok(mock.patch(Who::A, &id, "[]").await), before);
    let touched = ok(mock
        .patch(Who::A, &id, r#"[{"op":"replace","path":"/name","value":"touched"}]"#)
        .await);
    assert_ne!(touched["updated_at"], before["updated_at"]);
    assert_eq!(touched["created_at"], before["created_at"]);
}

#[tokio::test]
async fn formats_are_frozen_once_the_image_has_data() {
    // transcripts 111-113
    let mock = Mock::start().await;
    let id = a1(&mock).await;
    assert_eq!(
        mock.upload(Who::A, &id, OCTET_STREAM, qcow2(1 << 20, 4096))
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
