//! `POST /v2/images`: the answer's headers and body, defaults, client-chosen
//! ids, and every refusal with its recorded text.

use super::*;

#[tokio::test]
async fn create_answers_as_recorded() {
    // transcript 024: headers, and the recorded body with this image's id and time.
    let mock = Mock::start().await;
    let port = mock.handle.addr().port();
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
    let expected = recorded("024").body;
    let original: Value = serde_json::from_str(&expected).unwrap_or_default();
    let expected = expected
        .replace(original["id"].as_str().unwrap_or("?"), id)
        .replace(original["created_at"].as_str().unwrap_or("?"), at);
    assert_eq!(answer.text(), expected);
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
}

#[tokio::test]
async fn custom_properties_come_first_in_request_order() {
    // transcript 025
    let mock = Mock::start().await;
    let a2 = mock
        .create(Who::A, json!({"name": "A2-with-copy_from", "disk_format": "qcow2", "container_format": "bare", "min_ram": 256, "min_disk": 2, "copy_from": "http://example.invalid/images/cirros.qcow2", "hw_disk_bus": "virtio"}))
        .await;
    let mut expected = vec!["copy_from".to_owned(), "hw_disk_bus".to_owned()];
    expected.extend(core_keys());
    assert_eq!(keys(&a2), expected);
}

#[tokio::test]
async fn an_empty_object_is_enough() {
    // transcript 026
    let mock = Mock::start().await;
    let empty = mock.create(Who::A, json!({})).await;
    assert_eq!(
        (
            empty["name"].clone(),
            empty["disk_format"].clone(),
            empty["visibility"].clone()
        ),
        (Value::Null, Value::Null, json!("shared"))
    );
}

/// The image of transcript 027: a client-chosen id, a repeated tag.
async fn create_fixed_id(mock: &Mock) -> Value {
    mock.create(Who::A, json!({"id": "11111111-2222-4333-8444-555555555555", "name": "fixed-id", "disk_format": "raw", "container_format": "bare", "tags": ["t1", "t2", "t1"]}))
        .await
}

#[tokio::test]
async fn client_chosen_id_and_unique_tags() {
    // transcript 027
    let mock = Mock::start().await;
    assert_eq!(create_fixed_id(&mock).await["tags"], json!(["t1", "t2"]));
}

#[tokio::test]
async fn duplicate_id_conflicts() {
    // transcripts 027 and 028
    let mock = Mock::start().await;
    create_fixed_id(&mock).await;
    let duplicate = mock
        .post_raw(
            Who::A,
            "/v2/images",
            r#"{"id":"11111111-2222-4333-8444-555555555555","name":"dup"}"#,
        )
        .await;
    assert_eq!(duplicate.text(), recorded("028").body);
}

#[tokio::test]
async fn unknown_disk_format_gets_the_full_jsonschema_message() {
    // transcript 029
    let mock = Mock::start().await;
    let bad_format = mock
        .post_raw(
            Who::A,
            "/v2/images",
            r#"{"name":"x","disk_format":"qcow3","container_format":"bare"}"#,
        )
        .await;
    assert_eq!(bad_format.status, 400);
    assert_eq!(bad_format.text(), recorded("029").body);
}

/// A create body refused with the recorded status, length and message.
async fn refused(body: &str, status: u16, length: usize, message: &str) {
    let mock = Mock::start().await;
    expect_error(
        &mock.post_raw(Who::A, "/v2/images", body).await,
        status,
        length,
        message,
    );
}

cases!(refused {
    // transcript 030
    min_ram_as_string => (
        r#"{"name":"x","min_ram":"512"}"#,
        400,
        513,
        "&#x27;512&#x27; is not of type &#x27;integer&#x27;\n\nFailed validating &#x27;type&#x27; in schema[&#x27;properties&#x27;][&#x27;min_ram&#x27;]:\n    {&#x27;type&#x27;: &#x27;integer&#x27;,\n     &#x27;description&#x27;: &#x27;Amount of ram (in MB) required to boot image.&#x27;}\n\nOn instance[&#x27;min_ram&#x27;]:\n    &#x27;512&#x27;<br /><br />",
    ),
    // transcript 031
    negative_min_ram => (
        r#"{"name":"x","min_ram":-1}"#,
        400,
        216,
        "Invalid value &#x27;-1&#x27; for parameter &#x27;min_ram&#x27;: Cannot be a negative value",
    ),
    // transcript 032
    non_string_custom_property => (
        r#"{"name":"x","my_int":5}"#,
        400,
        382,
        "5 is not of type &#x27;string&#x27;\n\nFailed validating &#x27;type&#x27; in schema[&#x27;additionalProperties&#x27;]:\n    {&#x27;type&#x27;: &#x27;string&#x27;}\n\nOn instance[&#x27;my_int&#x27;]:\n    5<br /><br />",
    ),
    // transcript 033
    read_only_status => (
        r#"{"name":"x","status":"active"}"#,
        403,
        164,
        "Attribute &#x27;status&#x27; is read-only.",
    ),
    // transcript 034
    read_only_checksum => (
        r#"{"name":"x","checksum":"abc"}"#,
        403,
        166,
        "Attribute &#x27;checksum&#x27; is read-only.",
    ),
    // transcript 035
    reserved_os_glance_property => (
        r#"{"name":"x","os_glance_foo":"bar"}"#,
        403,
        205,
        "Access was denied to this resource.<br /><br />\nAttribute &#x27;os_glance_foo&#x27; is reserved.\n\n\n </body>",
    ),
    // transcript 036
    public_as_member => (
        r#"{"name":"x","visibility":"public"}"#,
        403,
        180,
        "You are not authorized to complete publicize_image action.",
    ),
    // transcript 037
    owner_of_another_project => (
        r#"{"name":"x","owner":"b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2"}"#,
        403,
        249,
        "Access was denied to this resource.<br /><br />\nYou are not permitted to create images owned by &#x27;b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2&#x27;\n\n\n </body>",
    ),
    // transcript 038
    locations => (
        r#"{"name":"x","locations":[]}"#,
        403,
        166,
        "Attribute &#x27;locations&#x27; is reserved.",
    ),
    // transcript 039
    malformed_json => (r#"{"name": "#, 400, 157, "Malformed JSON in request body."),
    // transcript 040
    json_array => ("[1,2]", 500, 228, "The server has either erred"),
    empty_body => ("", 400, 151, "Body expected in request."),
    json_string => ("\"text\"", 400, 167, "Unexpected body type. Expected list/dict."),
});

/// The Content-Type of a create is not checked.
async fn any_content_type(content_type: Option<&str>, body: &'static str) {
    let mock = Mock::start().await;
    let mut request = mock.request(Who::A, Method::POST, "/v2/images");
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    assert_eq!(mock.send(request.body(body)).await.status, 201);
}

cases!(any_content_type {
    // transcript 041
    text_plain => (Some("text/plain"), r#"{"name":"text-plain"}"#),
    // transcript 042
    none => (None, r#"{"name":"no-ctype"}"#),
});

/// A created image keeps what the request set.
async fn kept(who: Who, body: Value, key: &str, expected: Value) {
    let mock = Mock::start().await;
    assert_eq!(mock.create(who, body).await[key], expected);
}

cases!(kept {
    // transcript 043
    protected => (Who::A, json!({"name": "p", "protected": true}), "protected", json!(true)),
    // transcript 191
    community => (
        Who::A,
        json!({"name": "c", "visibility": "community"}),
        "visibility",
        json!("community"),
    ),
    // transcript 194
    public_by_admin => (
        Who::Admin,
        json!({"name": "P1", "visibility": "public"}),
        "owner",
        json!(ADMIN_PROJECT),
    ),
    // transcript 195
    owner_set_by_admin => (Who::Admin, json!({"name": "for-B", "owner": B}), "owner", json!(B)),
});

#[tokio::test]
async fn json_error_when_asked_for() {
    let mock = Mock::start().await;
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
