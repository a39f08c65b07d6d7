//! Filtered lists and who sees what in them: the default views, visibility,
//! tags, custom properties, operators, and refused filters.

use super::*;

/// The images of the filter tests, each created by its owner.
struct Images {
    a1: String,
    a2: String,
    fixed: String,
    community: String,
    hidden: String,
    b1: String,
    public: String,
}

async fn images(mock: &Mock) -> Images {
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
    mock.create_id(Who::NoProject, json!({"name": "no-project"})).await;
    Images {
        a1,
        a2,
        fixed,
        community,
        hidden,
        b1,
        public,
    }
}

/// The ids `who` gets for `path`: `expected` picks them from the images.
async fn listed(who: Who, path: &str, expected: fn(Images) -> Vec<String>) {
    let mock = Mock::start().await;
    let images = images(&mock).await;
    assert_eq!(page_of(&mock.get(who, path).await).0, expected(images), "{path}");
}

cases!(listed {
    // Own, public and own community images, never hidden ones.
    default_view => (Who::A, "/v2/images", |i| vec![i.public, i.community, i.fixed, i.a2, i.a1]),
    default_view_of_b => (Who::B, "/v2/images", |i| vec![i.public, i.b1]),
    // transcript 193
    community_on_request => (Who::B, "/v2/images?visibility=community", |i| vec![i.community]),
    hidden_on_request => (Who::A, "/v2/images?os_hidden=true", |i| vec![i.hidden]),
    // transcript 056
    by_name => (Who::A, "/v2/images?name=cirros-A1", |i| vec![i.a1]),
    // transcript 061
    by_tag => (Who::A, "/v2/images?tag=t1", |i| vec![i.fixed]),
    by_two_tags => (Who::A, "/v2/images?tag=t1&tag=t2", |i| vec![i.fixed]),
    by_a_missing_tag => (Who::A, "/v2/images?tag=t1&tag=zz", |_| vec![]),
    // transcript 062
    by_custom_property => (Who::A, "/v2/images?hw_disk_bus=virtio", |i| vec![i.a2]),
    with_in_operator => (Who::A, "/v2/images?disk_format=in:qcow2,raw", |i| vec![i.fixed, i.a2, i.a1]),
    with_in_operator_and_quotes => (Who::A, "/v2/images?name=in:%22cirros-A1%22,nope", |i| vec![i.a1]),
    by_min_ram => (Who::A, "/v2/images?min_ram=512", |i| vec![i.a1]),
    created_before_2000 => (Who::A, "/v2/images?created_at=lt:2000-01-01T00:00:00Z", |_| vec![]),
    // cf. transcript 200: an admin filters by owner.
    by_owner_as_admin => (Who::Admin, &format!("/v2/images?owner={B}"), |i| vec![i.b1]),
});

/// How many images `who` gets for `path`.
async fn counted(who: Who, path: &str, count: usize) {
    let mock = Mock::start().await;
    images(&mock).await;
    assert_eq!(page_of(&mock.get(who, path).await).0.len(), count, "{path}");
}

cases!(counted {
    // transcript 199
    admin_with_limit => (Who::Admin, "/v2/images?limit=3", 3),
    // transcript 057
    queued_with_limit => (Who::A, "/v2/images?status=queued&limit=2", 2),
    created_since_2000 => (Who::A, "/v2/images?created_at=gte:2000-01-01T00:00:00Z", 5),
});

#[tokio::test]
async fn admins_do_not_see_other_projects_community_images() {
    let mock = Mock::start().await;
    let images = images(&mock).await;
    let ids = page_of(&mock.get(Who::Admin, "/v2/images").await).0;
    assert!(!ids.contains(&images.community));
}

/// The `first` link of a filtered list.
async fn first_link(path: &str, expected: &str) {
    let mock = Mock::start().await;
    images(&mock).await;
    assert_eq!(mock.get(Who::A, path).await.json()["first"], expected);
}

cases!(first_link {
    // transcript 056
    name_filter => ("/v2/images?name=cirros-A1", "/v2/images?name=cirros-A1"),
    // From a dict of the parameters: one entry per key, the last value.
    repeated_tag => ("/v2/images?tag=t1&tag=t2", "/v2/images?tag=t2"),
});

/// An empty result, byte for byte as recorded.
async fn empty_as_recorded(path: &str, transcript: &str) {
    let mock = Mock::start().await;
    images(&mock).await;
    assert_eq!(mock.get(Who::A, path).await.text(), recorded(transcript).body);
}

cases!(empty_as_recorded {
    // transcript 063
    size_min => ("/v2/images?size_min=1", "063"),
    // transcript 064
    unknown_parameter => ("/v2/images?limit=1&foo=bar", "064"),
});

/// A filter refused with the recorded status, length and message.
async fn refused(who: Who, path: &str, status: u16, length: usize, message: &str) {
    let mock = Mock::start().await;
    expect_error(&mock.get(who, path).await, status, length, message);
}

cases!(refused {
    unknown_visibility => (Who::A, "/v2/images?visibility=bogus", 400, 157, "Invalid visibility value: bogus"),
    unknown_member_status => (Who::A, "/v2/images?member_status=bogus", 400, 147, "Invalid status: bogus"),
    unknown_operator => (
        Who::A,
        "/v2/images?name=foo:bar",
        400,
        179,
        "Unable to filter by unknown operator &#x27;foo&#x27;.",
    ),
    non_numeric_range => (
        Who::A,
        "/v2/images?size_min=big",
        400,
        179,
        "Unable to filter on a range with a non-numeric value.",
    ),
    protected_neither_true_nor_false => (
        Who::A,
        "/v2/images?protected=maybe",
        400,
        247,
        "Invalid value &#x27;maybe&#x27; for &#x27;protected&#x27; filter. Valid values are &#x27;true&#x27; or &#x27;false&#x27;.",
    ),
    changes_since => (
        Who::A,
        "/v2/images?changes-since=x",
        400,
        192,
        "The &quot;changes-since&quot; filter is no longer available on v2.",
    ),
    // Parameters are validated before the policy check, filters after it.
    bad_limit_before_policy => (Who::AMember, "/v2/images?limit=x", 400, 156, "limit param must be an integer"),
    bad_filter_after_policy => (Who::AMember, "/v2/images?size_min=x", 403, 175, "get_images action"),
});
